/*
 * The extension table: the types users meet when they serve a folder of
 * photos, videos, music and web pages.  Kept sorted by extension so that a
 * reader finds an entry; lookup is a linear scan (the table is small and a
 * lookup happens once a request).
 */
#include "mime.h"

#include <string.h>
#include <strings.h>

struct mime_entry {
    const char *ext;
    const char *type;
};

static const struct mime_entry mime_table[] = {
    {"aac", "audio/aac"},
    {"avi", "video/x-msvideo"},
    {"avif", "image/avif"},
    {"bmp", "image/bmp"},
    {"css", "text/css; charset=utf-8"},
    {"csv", "text/csv; charset=utf-8"},
    {"flac", "audio/flac"},
    {"gif", "image/gif"},
    {"gz", "application/gzip"},
    {"htm", "text/html; charset=utf-8"},
    {"html", "text/html; charset=utf-8"},
    {"ico", "image/x-icon"},
    {"jpeg", "image/jpeg"},
    {"jpg", "image/jpeg"},
    {"js", "text/javascript; charset=utf-8"},
    {"json", "application/json"},
    {"m3u8", "application/vnd.apple.mpegurl"},
    {"m4a", "audio/mp4"},
    {"m4v", "video/mp4"},
    {"md", "text/markdown; charset=utf-8"},
    {"mjs", "text/javascript; charset=utf-8"},
    {"mkv", "video/x-matroska"},
    {"mov", "video/quicktime"},
    {"mp3", "audio/mpeg"},
    {"mp4", "video/mp4"},
    {"mpd", "application/dash+xml"},
    {"oga", "audio/ogg"},
    {"ogg", "audio/ogg"},
    {"ogv", "video/ogg"},
    {"opus", "audio/ogg"},
    {"pdf", "application/pdf"},
    {"png", "image/png"},
    {"srt", "application/x-subrip"},
    {"svg", "image/svg+xml"},
    {"tar", "application/x-tar"},
    {"ts", "video/mp2t"},
    {"txt", "text/plain; charset=utf-8"},
    {"vtt", "text/vtt; charset=utf-8"},
    {"wasm", "application/wasm"},
    {"wav", "audio/wav"},
    {"webm", "video/webm"},
    {"webmanifest", "application/manifest+json"},
    {"webp", "image/webp"},
    {"xml", "application/xml"},
    {"zip", "application/zip"},
};

const char *tt_mime_type(const char *name)
{
    const char *slash = strrchr(name, '/');
    const char *base = slash ? slash + 1 : name;
    const char *dot = strrchr(base, '.');

    /* A leading dot names a hidden file, not an extension (".bashrc"). */
    if (dot && dot != base && dot[1] != '\0') {
        for (size_t i = 0; i < sizeof(mime_table) / sizeof(mime_table[0]); i++)
            if (strcasecmp(dot + 1, mime_table[i].ext) == 0)
                return mime_table[i].type;
    }
    return "application/octet-stream";
}

static int mime_prefix(const char *type, const char *prefix)
{
    return strncasecmp(type, prefix, strlen(prefix)) == 0;
}

int tt_mime_compressible(const char *type)
{
    /* Subtitles (srt, vtt) are text too and compress well. */
    return mime_prefix(type, "text/") || mime_prefix(type, "application/json") ||
           mime_prefix(type, "application/xml") || mime_prefix(type, "application/javascript") ||
           mime_prefix(type, "application/x-subrip") || mime_prefix(type, "image/svg+xml") ||
           mime_prefix(type, "application/vnd.apple.mpegurl") ||
           mime_prefix(type, "application/dash+xml") ||
           mime_prefix(type, "application/manifest+json") || mime_prefix(type, "application/wasm");
}
