/*
 * The extension table: the types users meet when they serve a folder of
 * photos, videos, music and web pages.  Kept sorted by extension so that a
 * reader finds an entry and so that a lookup is a binary search (it happens
 * once a request).
 */
#include "mime.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

struct mime_entry {
    const char *ext;
    const char *type;
};

static const struct mime_entry mime_table[] = {
    {"3gp", "video/3gpp"},
    {"aac", "audio/aac"},
    {"aiff", "audio/aiff"},
    {"ass", "text/x-ssa; charset=utf-8"},
    {"avi", "video/x-msvideo"},
    {"avif", "image/avif"},
    {"bmp", "image/bmp"},
    {"cbz", "application/vnd.comicbook+zip"},
    {"css", "text/css; charset=utf-8"},
    {"csv", "text/csv; charset=utf-8"},
    {"epub", "application/epub+zip"},
    {"flac", "audio/flac"},
    {"gif", "image/gif"},
    {"gz", "application/gzip"},
    {"heic", "image/heic"},
    {"htm", "text/html; charset=utf-8"},
    {"html", "text/html; charset=utf-8"},
    {"ico", "image/x-icon"},
    {"jpe", "image/jpeg"},
    {"jpeg", "image/jpeg"},
    {"jpg", "image/jpeg"},
    {"js", "text/javascript; charset=utf-8"},
    {"json", "application/json"},
    {"jxl", "image/jxl"},
    {"m2ts", "video/mp2t"},
    {"m3u8", "application/vnd.apple.mpegurl"},
    {"m4a", "audio/mp4"},
    {"m4s", "video/iso.segment"},
    {"m4v", "video/mp4"},
    {"md", "text/markdown; charset=utf-8"},
    {"mjs", "text/javascript; charset=utf-8"},
    {"mk3d", "video/x-matroska"},
    {"mka", "audio/x-matroska"},
    {"mkv", "video/x-matroska"},
    {"mov", "video/quicktime"},
    {"mp3", "audio/mpeg"},
    {"mp4", "video/mp4"},
    {"mpd", "application/dash+xml"},
    {"mpeg", "video/mpeg"},
    {"mpg", "video/mpeg"},
    {"nfo", "text/plain; charset=utf-8"},
    {"oga", "audio/ogg"},
    {"ogg", "audio/ogg"},
    {"ogv", "video/ogg"},
    {"opus", "audio/ogg"},
    {"otf", "font/otf"},
    {"pdf", "application/pdf"},
    {"png", "image/png"},
    {"srt", "application/x-subrip"},
    {"ssa", "text/x-ssa; charset=utf-8"},
    {"svg", "image/svg+xml"},
    {"tar", "application/x-tar"},
    {"tif", "image/tiff"},
    {"tiff", "image/tiff"},
    {"ts", "video/mp2t"},
    {"ttf", "font/ttf"},
    {"txt", "text/plain; charset=utf-8"},
    {"vtt", "text/vtt; charset=utf-8"},
    {"wasm", "application/wasm"},
    {"wav", "audio/wav"},
    {"weba", "audio/webm"},
    {"webm", "video/webm"},
    {"webmanifest", "application/manifest+json"},
    {"webp", "image/webp"},
    {"wmv", "video/x-ms-wmv"},
    {"woff", "font/woff"},
    {"woff2", "font/woff2"},
    {"xml", "application/xml"},
    {"zip", "application/zip"},
};

const char *tt_mime_type(const char *name)
{
    const char *slash = strrchr(name, '/');
    const char *base = slash ? slash + 1 : name;
    const char *dot = strrchr(base, '.');

    /* A leading dot names a hidden file, not an extension (".bashrc"). */
    if (!dot || dot == base || dot[1] == '\0')
        return "application/octet-stream";
    /* Lowercased once, then a binary search of the sorted table: this runs
     * for every request, and a miss used to cost a case-folding compare
     * with every entry. */
    char ext[16];
    size_t n = 0;
    for (const char *c = dot + 1; *c; c++) {
        if (n + 1 == sizeof(ext))
            return "application/octet-stream"; /* longer than any we know */
        ext[n++] = (char)tolower((unsigned char)*c);
    }
    ext[n] = '\0';
    size_t lo = 0, hi = sizeof(mime_table) / sizeof(mime_table[0]);
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int cmp = strcmp(ext, mime_table[mid].ext);
        if (cmp == 0)
            return mime_table[mid].type;
        if (cmp < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return "application/octet-stream";
}

int tt_mime_compressible(const char *type)
{
    /* Subtitles (srt, vtt) are text too and compress well. */
    static const struct {
        const char *s;
        size_t n;
    } prefixes[] = {
#define MP(x) {x, sizeof(x) - 1}
        MP("text/"),
        MP("application/json"),
        MP("application/xml"),
        MP("application/javascript"),
        MP("application/x-subrip"),
        MP("image/svg+xml"),
        MP("application/vnd.apple.mpegurl"),
        MP("application/dash+xml"),
        MP("application/manifest+json"),
        MP("application/wasm"),
#undef MP
    };
    int c0 = tolower((unsigned char)type[0]);
    if (c0 != 't' && c0 != 'a' && c0 != 'i')
        return 0; /* video/, audio/ and most of image/ at the cost of one compare */
    for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++)
        if (strncasecmp(type, prefixes[i].s, prefixes[i].n) == 0)
            return 1;
    return 0;
}
