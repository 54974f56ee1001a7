/*
 * HTML directory listings.
 *
 * The listing is built whole into a bounded buffer (TT_FS_LISTING_MAX_ENTRIES
 * entries of at most NAME_MAX bytes each), then served like a small file.
 * Every link is relative ("name", "dir/", "../") so the page works under
 * whatever path prefix p strips before the request reaches c.  Names are
 * percent-encoded in hrefs (a name with ':' would otherwise read as a scheme,
 * '#' and '?' as fragment and query) and HTML-escaped in text.
 */
#include "listing.h"

#include "codec/err.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define UPLOAD_PREFIX ".tether-upload-"

struct ls_entry {
    char *name;
    int is_dir;
    int64_t size;
    time_t mtime;
};

int tt_fs_under_root(const char *root, size_t root_len, const char *path)
{
    if (root_len == 1 && root[0] == '/')
        return path[0] == '/';
    return strncmp(path, root, root_len) == 0 && (path[root_len] == '\0' || path[root_len] == '/');
}

int tt_fs_html_escape(tt_buf *out, const char *s, size_t len)
{
    size_t start = 0;
    for (size_t i = 0; i < len; i++) {
        const char *rep;
        switch (s[i]) {
        case '&': rep = "&amp;"; break;
        case '<': rep = "&lt;"; break;
        case '>': rep = "&gt;"; break;
        case '"': rep = "&quot;"; break;
        case '\'': rep = "&#39;"; break;
        default: continue;
        }
        if (tt_buf_append(out, s + start, i - start) || tt_buf_append(out, rep, strlen(rep)))
            return TT_ERR_NOMEM;
        start = i + 1;
    }
    return tt_buf_append(out, s + start, len - start);
}

static int ls_unreserved(unsigned char c)
{
    /* RFC 3986 §2.3 */
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

int tt_fs_url_encode(tt_buf *out, const char *s, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (ls_unreserved(c)) {
            if (tt_buf_append(out, &s[i], 1))
                return TT_ERR_NOMEM;
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            if (tt_buf_append(out, e, 3))
                return TT_ERR_NOMEM;
        }
    }
    return 0;
}

static int ls_cmp(const void *a, const void *b)
{
    const struct ls_entry *x = a, *y = b;
    if (x->is_dir != y->is_dir)
        return y->is_dir - x->is_dir; /* directories first */
    int c = strcasecmp(x->name, y->name);
    return c ? c : strcmp(x->name, y->name);
}

static int ls_puts(tt_buf *out, const char *s)
{
    return tt_buf_append(out, s, strlen(s));
}

static void ls_human_size(char *buf, size_t cap, int64_t size)
{
    static const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    double v = (double)size;
    unsigned u = 0;
    if (size < 1024) {
        snprintf(buf, cap, "%lld B", (long long)size);
        return;
    }
    while (v >= 1024 && u + 1 < sizeof(units) / sizeof(units[0])) {
        v /= 1024;
        u++;
    }
    snprintf(buf, cap, "%.1f %s", v, units[u]);
}

/* A symlink is listed only when it leads somewhere inside the root, so that a
 * listing never shows the size or date of a file outside. */
static int ls_link_inside(const char *root, size_t root_len, const char *dir_real, const char *name)
{
    char path[PATH_MAX], real[PATH_MAX];
    int n = snprintf(path, sizeof(path), "%s/%s", dir_real, name);
    if (n < 0 || (size_t)n >= sizeof(path) || !realpath(path, real))
        return 0;
    return tt_fs_under_root(root, root_len, real);
}

static int ls_row(tt_buf *out, const struct ls_entry *e)
{
    char size[64], date[64], exact[32];
    struct tm tm;
    size_t nlen = strlen(e->name);

    if (gmtime_r(&e->mtime, &tm) == NULL || strftime(date, sizeof(date), "%Y-%m-%d %H:%M", &tm) == 0)
        snprintf(date, sizeof(date), "-");
    if (e->is_dir) {
        snprintf(size, sizeof(size), "-");
        exact[0] = '\0';
    } else {
        ls_human_size(size, sizeof(size), e->size);
        snprintf(exact, sizeof(exact), "%lld", (long long)e->size);
    }
    if (ls_puts(out, "<tr><td><a href=\"") || tt_fs_url_encode(out, e->name, nlen) ||
        ls_puts(out, e->is_dir ? "/\">" : "\">") || tt_fs_html_escape(out, e->name, nlen) ||
        ls_puts(out, e->is_dir ? "/</a></td><td class=\"s\">" : "</a></td><td class=\"s\"") ||
        (!e->is_dir && (ls_puts(out, " title=\"") || ls_puts(out, exact) || ls_puts(out, " bytes\">"))) ||
        ls_puts(out, size) || ls_puts(out, "</td><td>") || ls_puts(out, date) ||
        ls_puts(out, "</td></tr>\n"))
        return -1;
    return 0;
}

int tt_fs_listing(tt_buf *out, int dirfd, const char *root, size_t root_len, const char *dir_real,
                  const char *shown, int at_root)
{
    struct ls_entry *ents = NULL;
    size_t n = 0, cap = 0;
    int truncated = 0, rc = -1;
    int fd = dup(dirfd);
    DIR *d;

    if (fd < 0)
        return -1;
    d = fdopendir(fd);
    if (!d) {
        close(fd);
        return -1;
    }
    rewinddir(d);
    for (;;) {
        struct dirent *de = readdir(d);
        struct stat st;
        if (!de)
            break;
        const char *name = de->d_name;
        if (!strcmp(name, ".") || !strcmp(name, "..") ||
            !strncmp(name, UPLOAD_PREFIX, sizeof(UPLOAD_PREFIX) - 1))
            continue;
        if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
            continue;
        if (S_ISLNK(st.st_mode)) {
            if (!ls_link_inside(root, root_len, dir_real, name) || fstatat(dirfd, name, &st, 0) != 0)
                continue;
        }
        if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode))
            continue;
        if (n == TT_FS_LISTING_MAX_ENTRIES) {
            truncated = 1;
            break;
        }
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 64;
            struct ls_entry *ne = tt_mem_realloc(ents, ncap * sizeof(*ents));
            if (!ne)
                goto out;
            ents = ne;
            cap = ncap;
        }
        size_t len = strlen(name);
        char *copy = tt_mem_alloc(len + 1);
        if (!copy)
            goto out;
        memcpy(copy, name, len + 1);
        ents[n].name = copy;
        ents[n].is_dir = S_ISDIR(st.st_mode);
        ents[n].size = (int64_t)st.st_size;
        ents[n].mtime = st.st_mtime;
        n++;
    }
    if (n)
        qsort(ents, n, sizeof(*ents), ls_cmp);

    size_t slen = strlen(shown);
    if (ls_puts(out, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">\n"
                     "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
                     "<title>Index of ") ||
        tt_fs_html_escape(out, shown, slen) ||
        ls_puts(out, "</title>\n<style>body{font-family:sans-serif;margin:1em 2em}"
                     "table{border-collapse:collapse}td,th{padding:.2em 1em;text-align:left}"
                     "td.s{text-align:right}tr:nth-child(even){background:#f4f4f4}</style>\n"
                     "</head><body>\n<h1>Index of ") ||
        tt_fs_html_escape(out, shown, slen) ||
        ls_puts(out, "</h1>\n<table>\n<thead><tr><th>Name</th><th>Size</th><th>Modified (UTC)</th></tr>"
                     "</thead>\n<tbody>\n"))
        goto out;
    if (!at_root && ls_puts(out, "<tr><td><a href=\"../\">../</a></td><td class=\"s\">-</td><td>-</td></tr>\n"))
        goto out;
    for (size_t i = 0; i < n; i++)
        if (ls_row(out, &ents[i]))
            goto out;
    if (ls_puts(out, "</tbody>\n</table>\n") ||
        (truncated && ls_puts(out, "<p>This folder has more entries than a listing shows.</p>\n")) ||
        ls_puts(out, "</body></html>\n"))
        goto out;
    rc = 0;
out:
    for (size_t i = 0; i < n; i++)
        tt_mem_free(ents[i].name);
    tt_mem_free(ents);
    closedir(d);
    return rc;
}
