/*
 * The --root file server, driven through its transport-free API against a
 * temporary directory: what a client would see (status, header fields,
 * body bytes) for files, listings, ranges, conditionals, gzip, traversal
 * attempts and uploads.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "codec/buf.h"
#include "origin/fileserver.h"
#include "origin/listing.h"
#include "origin/mime.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

static char g_root[PATH_MAX];
static char g_outside[PATH_MAX];

/* ---- fixture ---------------------------------------------------------- */

static void put_file(const char *rel, const void *data, size_t len)
{
    char path[PATH_MAX * 2];
    snprintf(path, sizeof(path), "%s/%s", g_root, rel);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static void put_str(const char *rel, const char *s)
{
    put_file(rel, s, strlen(s));
}

static void make_dir(const char *rel)
{
    char path[PATH_MAX * 2];
    snprintf(path, sizeof(path), "%s/%s", g_root, rel);
    assert_int_equal(mkdir(path, 0755), 0);
}

static uint8_t g_bin[100000];
static char g_text[20000];
static struct tt_fs_config g_cfg;
static int g_realpath_only;

static int setup(void **state)
{
    (void)state;
    char tmpl[] = "/tmp/tt-fs-test-XXXXXX";
    char otmpl[] = "/tmp/tt-fs-out-XXXXXX";
    assert_non_null(mkdtemp(tmpl));
    assert_non_null(mkdtemp(otmpl));
    assert_non_null(realpath(tmpl, g_root));
    assert_non_null(realpath(otmpl, g_outside));

    for (size_t i = 0; i < sizeof(g_bin); i++)
        g_bin[i] = (uint8_t)(i * 7 + (i >> 8));
    size_t off = 0;
    for (int i = 0; off + 64 < sizeof(g_text); i++)
        off += (size_t)snprintf(g_text + off, sizeof(g_text) - off, "line %d: the quick brown fox\n", i);

    put_str("hello.txt", g_text);
    put_file("video.mp4", g_bin, sizeof(g_bin));
    put_file("empty.txt", "", 0);
    make_dir("sub");
    put_str("sub/inner.txt", "inner\n");
    make_dir("site");
    put_str("site/index.html", "<h1>site</h1>\n");
    make_dir("my dir");
    make_dir("list");
    make_dir("list/zdir");
    make_dir("list/Adir");
    put_str("list/b file.txt", "b");
    put_str("list/a#b?c%d.txt", "x");
    put_str("list/<b>&\"x\".txt", "y");
    put_str("list/\xc3\xa9t\xc3\xa9.mp3", "z");
    put_str("list/.tether-upload-abcdef", "partial");

    char path[PATH_MAX * 2], target[PATH_MAX * 2];
    snprintf(target, sizeof(target), "%s/secret.txt", g_outside);
    FILE *f = fopen(target, "w");
    assert_non_null(f);
    fputs("secret\n", f);
    fclose(f);
    snprintf(path, sizeof(path), "%s/list/out-link", g_root);
    assert_int_equal(symlink(target, path), 0);
    snprintf(path, sizeof(path), "%s/leak", g_root);
    assert_int_equal(symlink(target, path), 0);
    snprintf(path, sizeof(path), "%s/leakdir", g_root);
    assert_int_equal(symlink(g_outside, path), 0);
    snprintf(path, sizeof(path), "%s/alias.txt", g_root);
    assert_int_equal(symlink("sub/inner.txt", path), 0);
    snprintf(path, sizeof(path), "%s/list/in-link.txt", g_root);
    snprintf(target, sizeof(target), "%s/hello.txt", g_root); /* absolute, inside */
    assert_int_equal(symlink(target, path), 0);
    snprintf(path, sizeof(path), "%s/sub/up.txt", g_root); /* relative through "..", inside */
    assert_int_equal(symlink("../hello.txt", path), 0);
    snprintf(path, sizeof(path), "%s/relleak", g_root); /* relative, out */
    snprintf(target, sizeof(target), "../%s/secret.txt", strrchr(g_outside, '/') + 1);
    assert_int_equal(symlink(target, path), 0);
    snprintf(path, sizeof(path), "%s/magic", g_root); /* a /proc magic link to the outside */
    assert_int_equal(symlink("/proc/self/cwd", path), 0);
    g_cfg.root_fd = g_realpath_only ? -1 : tt_fs_open_root(g_root);
    assert_true(g_realpath_only || g_cfg.root_fd > 0);
    return 0;
}

/* The same tests again with no root fd: every path goes the realpath()
 * route, as on a kernel without openat2. */
static int setup_realpath(void **state)
{
    g_realpath_only = 1;
    int rc = setup(state);
    g_realpath_only = 0;
    return rc;
}

static int rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int teardown(void **state)
{
    (void)state;
    if (g_cfg.root_fd > 0)
        close(g_cfg.root_fd);
    g_cfg.root_fd = -1;
    nftw(g_root, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    nftw(g_outside, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}

/* ---- requests --------------------------------------------------------- */

struct result {
    struct tt_fs_response resp;
    struct tt_fs_stream *stream;
    uint8_t *body;
    size_t len;
};

/* Sends a request; reads the whole body with reads of at most `chunk`
 * bytes.  Header arguments are name, value pairs ending with NULL. */
static struct result *request_chunked(int allow_put, size_t chunk, const char *method, const char *path, ...)
{
    struct tt_header hdrs[32];
    size_t n = 0;
    va_list ap;
    va_start(ap, path);
    for (;;) {
        const char *name = va_arg(ap, const char *);
        if (!name)
            break;
        const char *value = va_arg(ap, const char *);
        hdrs[n].name = name;
        hdrs[n].name_len = (uint32_t)strlen(name);
        hdrs[n].value = value;
        hdrs[n].value_len = (uint32_t)strlen(value);
        hdrs[n].flags = 0;
        n++;
    }
    va_end(ap);

    struct tt_fs_request req = {
        .method = {(const uint8_t *)method, strlen(method)},
        .path = {(const uint8_t *)path, strlen(path)},
        .hdrs = hdrs,
        .count = n,
    };
    struct result *r = calloc(1, sizeof(*r));
    assert_non_null(r);
    g_cfg.root = g_root;
    g_cfg.allow_put = allow_put;
    r->stream = tt_fs_open(&g_cfg, &req, &r->resp);
    if (r->stream && !tt_fs_is_upload(r->stream)) {
        assert_true(r->resp.has_body);
        size_t cap = 0;
        uint8_t *tmp = malloc(chunk);
        assert_non_null(tmp);
        for (;;) {
            ssize_t got = tt_fs_read(r->stream, tmp, chunk);
            assert_true(got >= 0);
            assert_true((size_t)got <= chunk);
            if (got == 0)
                break;
            if (r->len + (size_t)got > cap) {
                cap = (r->len + (size_t)got) * 2;
                r->body = realloc(r->body, cap);
                assert_non_null(r->body);
            }
            memcpy(r->body + r->len, tmp, (size_t)got);
            r->len += (size_t)got;
        }
        free(tmp);
        tt_fs_close(r->stream);
        r->stream = NULL;
    } else if (!r->stream) {
        assert_false(r->resp.has_body);
    }
    return r;
}

#define request(...) request_chunked(0, 4096, __VA_ARGS__)

static void result_free(struct result *r)
{
    if (r->stream)
        tt_fs_close(r->stream);
    free(r->body);
    free(r);
}

/* The value of header `name` as a C string (static buffer), or NULL. */
static const char *hval(const struct result *r, const char *name)
{
    static char buf[2048];
    const char *found = NULL;
    for (size_t i = 0; i < r->resp.count; i++) {
        const struct tt_header *h = &r->resp.hdrs[i];
        for (const char *c = h->name; c < h->name + h->name_len; c++)
            assert_false(*c >= 'A' && *c <= 'Z'); /* lowercase names */
        if (h->name_len == strlen(name) && memcmp(h->name, name, h->name_len) == 0) {
            assert_null(found); /* never twice */
            memcpy(buf, h->value, h->value_len);
            buf[h->value_len] = '\0';
            found = buf;
        }
    }
    return found;
}

static void assert_header(const struct result *r, const char *name, const char *want)
{
    const char *v = hval(r, name);
    if (!v)
        fail_msg("header %s missing", name);
    assert_string_equal(v, want);
}

static void assert_body(const struct result *r, const void *want, size_t len)
{
    assert_int_equal(r->len, len);
    assert_memory_equal(r->body, want, len);
    /* Content-Length, when there is one, equals what was produced. */
    const char *cl = hval(r, "content-length");
    if (cl)
        assert_int_equal(strtoull(cl, NULL, 10), len);
}

static char *copy_header(const struct result *r, const char *name)
{
    const char *v = hval(r, name);
    assert_non_null(v);
    return strdup(v);
}

/* ---- tests: plain GET / HEAD ----------------------------------------- */

static void test_get_file(void **state)
{
    (void)state;
    struct result *r = request("GET", "/hello.txt", NULL);
    assert_int_equal(r->resp.status, 200);
    assert_body(r, g_text, strlen(g_text));
    assert_int_equal(r->resp.content_length, (int64_t)strlen(g_text));
    assert_header(r, "content-type", "text/plain; charset=utf-8");
    assert_header(r, "accept-ranges", "bytes");
    assert_header(r, "vary", "accept-encoding");
    const char *etag = hval(r, "etag");
    assert_non_null(etag);
    unsigned long long a, b, c;
    char tail;
    assert_int_equal(sscanf(etag, "\"%llx-%llx-%llx%c", &a, &b, &c, &tail), 4);
    assert_int_equal(tail, '"');
    assert_int_equal(b, strlen(g_text));
    const char *lm = hval(r, "last-modified");
    assert_non_null(lm);
    assert_int_equal(strlen(lm), 29);
    assert_string_equal(lm + 25, " GMT");
    assert_null(hval(r, "content-encoding"));
    result_free(r);

    r = request("GET", "/video.mp4?t=10", NULL);
    assert_int_equal(r->resp.status, 200);
    assert_body(r, g_bin, sizeof(g_bin));
    assert_header(r, "content-type", "video/mp4");
    assert_null(hval(r, "vary"));
    result_free(r);

    /* Reads of one byte produce the same body. */
    r = request_chunked(0, 1, "GET", "/video.mp4", NULL);
    assert_body(r, g_bin, sizeof(g_bin));
    result_free(r);

    r = request("GET", "/empty.txt", NULL);
    assert_int_equal(r->resp.status, 200);
    assert_header(r, "content-length", "0");
    assert_int_equal(r->len, 0);
    result_free(r);
}

static void test_head(void **state)
{
    (void)state;
    struct result *g = request("GET", "/video.mp4", NULL);
    struct result *h = request("HEAD", "/video.mp4", NULL);
    assert_int_equal(h->resp.status, 200);
    assert_null(h->stream);
    assert_false(h->resp.has_body);
    assert_int_equal(h->len, 0);
    assert_int_equal(h->resp.count, g->resp.count);
    const char *names[] = {"content-type", "content-length", "etag", "last-modified", "accept-ranges"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        char *gv = copy_header(g, names[i]);
        assert_header(h, names[i], gv);
        free(gv);
    }
    assert_int_equal(h->resp.content_length, (int64_t)sizeof(g_bin));
    result_free(g);
    result_free(h);
}

static void test_mime(void **state)
{
    (void)state;
    struct {
        const char *name, *type;
    } cases[] = {
        {"a.jpg", "image/jpeg"},
        {"a.JPEG", "image/jpeg"},
        {"a.png", "image/png"},
        {"a.gif", "image/gif"},
        {"a.webp", "image/webp"},
        {"a.svg", "image/svg+xml"},
        {"a.avif", "image/avif"},
        {"a.mp4", "video/mp4"},
        {"a.M4V", "video/mp4"},
        {"a.mkv", "video/x-matroska"},
        {"a.avi", "video/x-msvideo"},
        {"a.webm", "video/webm"},
        {"a.mov", "video/quicktime"},
        {"a.ts", "video/mp2t"},
        {"a.m3u8", "application/vnd.apple.mpegurl"},
        {"a.mpd", "application/dash+xml"},
        {"a.mp3", "audio/mpeg"},
        {"a.m4a", "audio/mp4"},
        {"a.flac", "audio/flac"},
        {"a.ogg", "audio/ogg"},
        {"a.opus", "audio/ogg"},
        {"a.wav", "audio/wav"},
        {"a.txt", "text/plain; charset=utf-8"},
        {"a.html", "text/html; charset=utf-8"},
        {"a.htm", "text/html; charset=utf-8"},
        {"a.css", "text/css; charset=utf-8"},
        {"a.js", "text/javascript; charset=utf-8"},
        {"a.json", "application/json"},
        {"a.pdf", "application/pdf"},
        {"a.srt", "application/x-subrip"},
        {"a.vtt", "text/vtt; charset=utf-8"},
        {"a.wasm", "application/wasm"},
        {"a.3gp", "video/3gpp"},
        {"seg-1.m4s", "video/iso.segment"},
        {"a.mka", "audio/x-matroska"},
        {"a.MPG", "video/mpeg"},
        {"a.m2ts", "video/mp2t"},
        {"a.woff2", "font/woff2"},
        {"a.zip", "application/zip"},
        {"dir.d/noext", "application/octet-stream"},
        {".bashrc", "application/octet-stream"},
        {"a.", "application/octet-stream"},
        {"a.unknown", "application/octet-stream"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        assert_string_equal(tt_mime_type(cases[i].name), cases[i].type);
    assert_true(tt_mime_compressible("text/plain; charset=utf-8"));
    assert_true(tt_mime_compressible("image/svg+xml"));
    assert_true(tt_mime_compressible("application/json"));
    assert_false(tt_mime_compressible("video/mp4"));
    assert_false(tt_mime_compressible("image/jpeg"));
    assert_false(tt_mime_compressible("application/zip"));
}

/* ---- tests: paths ----------------------------------------------------- */

static void test_traversal(void **state)
{
    (void)state;
    struct {
        const char *path;
        int status;
    } cases[] = {
        {"/../etc/passwd", 400},
        {"/%2e%2e/etc/passwd", 400},
        {"/%2E%2E/%2e%2e/etc/passwd", 400},
        {"/sub/../../etc/passwd", 400},
        {"/sub/%2e%2e/hello.txt", 400},
        {"/sub%2finner.txt", 400},
        {"/sub%2Finner.txt", 400},
        {"/sub%5cinner.txt", 400},
        {"/sub\\inner.txt", 400},
        {"/hello.txt%00.png", 400},
        {"/%zz", 400},
        {"/%4", 400},
        {"hello.txt", 400},
        {"/leak", 403},
        {"/relleak", 403},
        {"/magic", 403},
        {"/leakdir/secret.txt", 403},
        {"/leakdir/", 403},
        {"/nope.txt", 404},
        {"/hello.txt/", 404},
        {"/hello.txt/x", 404},
        {"/list/.tether-upload-abcdef", 404},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct result *r = request("GET", cases[i].path, NULL);
        if (r->resp.status != cases[i].status)
            fail_msg("%s: status %d, want %d", cases[i].path, r->resp.status, cases[i].status);
        assert_int_equal(r->len, 0);
        assert_header(r, "content-length", "0");
        result_free(r);
    }

    /* Decoded once: "%252e%252e" is the name "%2e%2e", not "..". */
    put_str("%2e%2e", "literal");
    struct result *r = request("GET", "/%252e%252e", NULL);
    assert_int_equal(r->resp.status, 200);
    assert_body(r, "literal", 7);
    result_free(r);

    /* Symlinks that stay inside the root are served. */
    r = request("GET", "/alias.txt", NULL);
    assert_int_equal(r->resp.status, 200);
    assert_body(r, "inner\n", 6);
    result_free(r);
    r = request("GET", "/list/in-link.txt", NULL);
    assert_int_equal(r->resp.status, 200);
    assert_body(r, g_text, strlen(g_text));
    result_free(r);
    r = request("GET", "/sub/up.txt", NULL);
    assert_int_equal(r->resp.status, 200);
    assert_body(r, g_text, strlen(g_text));
    result_free(r);

    /* "//" and "/./" collapse. */
    r = request("GET", "//sub/./inner.txt", NULL);
    assert_int_equal(r->resp.status, 200);
    assert_body(r, "inner\n", 6);
    result_free(r);

    /* Percent-encoded UTF-8 and spaces. */
    r = request("GET", "/list/%C3%A9t%C3%A9.mp3", NULL);
    assert_int_equal(r->resp.status, 200);
    assert_header(r, "content-type", "audio/mpeg");
    assert_body(r, "z", 1);
    result_free(r);
    r = request("GET", "/list/a%23b%3Fc%25d.txt", NULL);
    assert_int_equal(r->resp.status, 200);
    assert_body(r, "x", 1);
    result_free(r);
}

static void test_directories(void **state)
{
    (void)state;
    struct result *r = request("GET", "/sub", NULL);
    assert_int_equal(r->resp.status, 301);
    assert_header(r, "location", "sub/");
    result_free(r);

    r = request("GET", "/sub?x=1", NULL);
    assert_int_equal(r->resp.status, 301);
    assert_header(r, "location", "sub/?x=1");
    result_free(r);

    r = request("GET", "/my%20dir", NULL);
    assert_int_equal(r->resp.status, 301);
    assert_header(r, "location", "my%20dir/");
    result_free(r);

    r = request("GET", "/site/", NULL);
    assert_int_equal(r->resp.status, 200);
    assert_header(r, "content-type", "text/html; charset=utf-8");
    assert_body(r, "<h1>site</h1>\n", 14);
    assert_non_null(hval(r, "etag"));
    result_free(r);
}

static void test_listing(void **state)
{
    (void)state;
    struct result *r = request("GET", "/list/", NULL);
    assert_int_equal(r->resp.status, 200);
    assert_header(r, "content-type", "text/html; charset=utf-8");
    assert_header(r, "vary", "accept-encoding");
    char *html = strndup((const char *)r->body, r->len);
    assert_non_null(html);
    char *cl = copy_header(r, "content-length");
    assert_int_equal(strtoull(cl, NULL, 10), r->len);
    free(cl);

    assert_non_null(strstr(html, "<meta charset=\"utf-8\">"));
    assert_non_null(strstr(html, "<title>Index of /list/</title>"));
    assert_non_null(strstr(html, "<a href=\"../\">"));
    /* Relative links only. */
    assert_null(strstr(html, "href=\"/"));
    assert_null(strstr(html, "href=\"http"));
    /* Escaped text, encoded hrefs. */
    assert_non_null(strstr(html, "href=\"b%20file.txt\">b file.txt</a>"));
    assert_non_null(strstr(html, "href=\"a%23b%3Fc%25d.txt\">a#b?c%d.txt</a>"));
    assert_non_null(strstr(html, "href=\"%3Cb%3E%26%22x%22.txt\">&lt;b&gt;&amp;&quot;x&quot;.txt</a>"));
    assert_non_null(strstr(html, "href=\"%C3%A9t%C3%A9.mp3\">\xc3\xa9t\xc3\xa9.mp3</a>"));
    assert_null(strstr(html, "<b>&"));
    /* Directories first, marked with '/', then files, by name. */
    const char *order[] = {"href=\"Adir/\">Adir/</a>", "href=\"zdir/\">zdir/</a>", ">&lt;b&gt;",
                           ">a#b?c%d.txt<",           ">b file.txt<",             ">in-link.txt<",
                           ">\xc3\xa9t\xc3\xa9.mp3<"};
    const char *prev = html;
    for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
        const char *at = strstr(html, order[i]);
        if (!at || at < prev)
            fail_msg("listing order: %s", order[i]);
        prev = at;
    }
    /* Hidden: upload temporaries, and a symlink leading out. */
    assert_null(strstr(html, ".tether-upload-"));
    assert_null(strstr(html, "out-link"));
    /* Sizes and dates. */
    assert_non_null(strstr(html, "title=\"1 bytes\">1 B</td>"));
    char year[16];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    snprintf(year, sizeof(year), "%04d-", tm.tm_year + 1900);
    assert_non_null(strstr(html, year));
    free(html);
    result_free(r);

    /* The root has no parent link. */
    r = request("GET", "/", NULL);
    assert_int_equal(r->resp.status, 200);
    html = strndup((const char *)r->body, r->len);
    assert_null(strstr(html, "href=\"../\""));
    assert_non_null(strstr(html, "href=\"hello.txt\""));
    assert_non_null(strstr(html, "href=\"my%20dir/\""));
    assert_null(strstr(html, "\"leak\""));
    free(html);
    result_free(r);

    /* HEAD of a listing. */
    r = request("HEAD", "/list/", NULL);
    assert_int_equal(r->resp.status, 200);
    assert_non_null(hval(r, "content-length"));
    assert_int_equal(r->len, 0);
    result_free(r);
}

/* ---- tests: ranges ---------------------------------------------------- */

static void test_range_single(void **state)
{
    (void)state;
    char want[64];
    struct result *r = request("GET", "/video.mp4", "range", "bytes=10-19", NULL);
    assert_int_equal(r->resp.status, 206);
    assert_body(r, g_bin + 10, 10);
    snprintf(want, sizeof(want), "bytes 10-19/%zu", sizeof(g_bin));
    assert_header(r, "content-range", want);
    assert_header(r, "content-type", "video/mp4");
    result_free(r);

    /* Suffix. */
    r = request("GET", "/video.mp4", "range", "bytes=-100", NULL);
    assert_int_equal(r->resp.status, 206);
    assert_body(r, g_bin + sizeof(g_bin) - 100, 100);
    snprintf(want, sizeof(want), "bytes %zu-%zu/%zu", sizeof(g_bin) - 100, sizeof(g_bin) - 1, sizeof(g_bin));
    assert_header(r, "content-range", want);
    result_free(r);

    /* Suffix longer than the file: the whole file. */
    r = request("GET", "/video.mp4", "range", "bytes=-999999", NULL);
    assert_int_equal(r->resp.status, 206);
    assert_body(r, g_bin, sizeof(g_bin));
    result_free(r);

    /* Open-ended, and a last-pos past the end. */
    r = request("GET", "/video.mp4", "range", "bytes=99990-", NULL);
    assert_int_equal(r->resp.status, 206);
    assert_body(r, g_bin + 99990, 10);
    result_free(r);
    r = request("GET", "/video.mp4", "range", "Bytes=512-2047000", NULL);
    assert_int_equal(r->resp.status, 206);
    assert_body(r, g_bin + 512, sizeof(g_bin) - 512);
    result_free(r);

    /* HEAD answers with the GET's head. */
    r = request("HEAD", "/video.mp4", "range", "bytes=512-2047", NULL);
    assert_int_equal(r->resp.status, 206);
    assert_header(r, "content-length", "1536");
    assert_int_equal(r->len, 0);
    result_free(r);

    /* Overlapping ranges are coalesced into one. */
    r = request("GET", "/video.mp4", "range", "bytes=0-10, 5-20,21-30", NULL);
    assert_int_equal(r->resp.status, 206);
    assert_body(r, g_bin, 31);
    snprintf(want, sizeof(want), "bytes 0-30/%zu", sizeof(g_bin));
    assert_header(r, "content-range", want);
    result_free(r);

    /* Unsatisfiable ranges among satisfiable ones are dropped. */
    r = request("GET", "/video.mp4", "range", "bytes=200000-,0-3", NULL);
    assert_int_equal(r->resp.status, 206);
    assert_body(r, g_bin, 4);
    result_free(r);
}

/* Builds the multipart body the server should send, from its boundary. */
static size_t expect_multipart(char *out, const char *boundary, const char *ctype, const int64_t (*rg)[2],
                               size_t n, size_t size)
{
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        off += (size_t)sprintf(out + off, "%s--%s\r\nContent-Type: %s\r\nContent-Range: bytes %lld-%lld/%zu\r\n\r\n",
                               i ? "\r\n" : "", boundary, ctype, (long long)rg[i][0], (long long)rg[i][1], size);
        memcpy(out + off, g_bin + rg[i][0], (size_t)(rg[i][1] - rg[i][0] + 1));
        off += (size_t)(rg[i][1] - rg[i][0] + 1);
    }
    off += (size_t)sprintf(out + off, "\r\n--%s--\r\n", boundary);
    return off;
}

static void test_range_multi(void **state)
{
    (void)state;
    size_t chunks[] = {1, 7, 100, 65536};
    for (size_t c = 0; c < sizeof(chunks) / sizeof(chunks[0]); c++) {
        struct result *r = request_chunked(0, chunks[c], "GET", "/video.mp4", "range", "bytes=0-9,1000-1099,-5",
                                           NULL);
        assert_int_equal(r->resp.status, 206);
        const char *ct = hval(r, "content-type");
        assert_non_null(ct);
        const char *pfx = "multipart/byteranges; boundary=";
        assert_int_equal(strncmp(ct, pfx, strlen(pfx)), 0);
        char boundary[128];
        snprintf(boundary, sizeof(boundary), "%s", ct + strlen(pfx));
        assert_true(strlen(boundary) >= 16);
        int64_t rg[3][2] = {{0, 9}, {1000, 1099}, {sizeof(g_bin) - 5, sizeof(g_bin) - 1}};
        char want[4096];
        size_t wlen = expect_multipart(want, boundary, "video/mp4", rg, 3, sizeof(g_bin));
        assert_int_equal(r->resp.content_length, (int64_t)wlen);
        assert_body(r, want, wlen);
        assert_null(hval(r, "content-range"));
        result_free(r);
    }

    /* Boundaries differ between responses. */
    struct result *a = request("GET", "/video.mp4", "range", "bytes=0-1,5-6", NULL);
    struct result *b = request("GET", "/video.mp4", "range", "bytes=0-1,5-6", NULL);
    char *ca = copy_header(a, "content-type");
    assert_string_not_equal(ca, hval(b, "content-type"));
    free(ca);
    result_free(a);
    result_free(b);
}

static void test_range_refused(void **state)
{
    (void)state;
    char want[64];
    snprintf(want, sizeof(want), "bytes */%zu", sizeof(g_bin));
    struct result *r = request("GET", "/video.mp4", "range", "bytes=200000-", NULL);
    assert_int_equal(r->resp.status, 416);
    assert_header(r, "content-range", want);
    assert_int_equal(r->len, 0);
    result_free(r);
    r = request("GET", "/video.mp4", "range", "bytes=100000-100001,200000-", NULL);
    assert_int_equal(r->resp.status, 416);
    result_free(r);
    r = request("GET", "/video.mp4", "range", "bytes=-0", NULL);
    assert_int_equal(r->resp.status, 416);
    result_free(r);

    /* Syntactically invalid, or another unit: ignored, 200. */
    const char *ignored[] = {"bytes=5-2", "items=0-1", "bytes=abc", "bytes=1-2;x", "bytes=", "bytes=--1", "0-1"};
    for (size_t i = 0; i < sizeof(ignored) / sizeof(ignored[0]); i++) {
        r = request("GET", "/video.mp4", "range", ignored[i], NULL);
        if (r->resp.status != 200)
            fail_msg("range %s: status %d", ignored[i], r->resp.status);
        assert_body(r, g_bin, sizeof(g_bin));
        result_free(r);
    }

    /* More than 64 ranges: ignored (range abuse), whole body. */
    char many[2048];
    size_t off = (size_t)snprintf(many, sizeof(many), "bytes=");
    for (int i = 0; i < 65; i++)
        off += (size_t)snprintf(many + off, sizeof(many) - off, "%s%d-%d", i ? "," : "", i * 100, i * 100 + 1);
    r = request("GET", "/video.mp4", "range", many, NULL);
    assert_int_equal(r->resp.status, 200);
    result_free(r);

    /* Many copies of the whole file: coalesced to one part. */
    off = (size_t)snprintf(many, sizeof(many), "bytes=");
    for (int i = 0; i < 60; i++)
        off += (size_t)snprintf(many + off, sizeof(many) - off, "%s0-", i ? "," : "");
    r = request("GET", "/video.mp4", "range", many, NULL);
    assert_int_equal(r->resp.status, 206);
    assert_body(r, g_bin, sizeof(g_bin));
    result_free(r);

    /* A zero-length file: int-range unsatisfiable, suffix-range 200. */
    r = request("GET", "/empty.txt", "range", "bytes=0-", NULL);
    assert_int_equal(r->resp.status, 416);
    assert_header(r, "content-range", "bytes */0");
    result_free(r);
    r = request("GET", "/empty.txt", "range", "bytes=-5", NULL);
    assert_int_equal(r->resp.status, 200);
    assert_header(r, "content-length", "0");
    result_free(r);

    /* Two Range fields: ignored. */
    r = request("GET", "/video.mp4", "range", "bytes=0-1", "range", "bytes=2-3", NULL);
    assert_int_equal(r->resp.status, 200);
    result_free(r);
}

/* ---- tests: conditionals ---------------------------------------------- */

static void test_conditionals(void **state)
{
    (void)state;
    struct result *r = request("GET", "/video.mp4", NULL);
    char *etag = copy_header(r, "etag");
    char *lm = copy_header(r, "last-modified");
    result_free(r);
    char list[512], weak[256];

    r = request("GET", "/video.mp4", "if-none-match", etag, NULL);
    assert_int_equal(r->resp.status, 304);
    assert_header(r, "etag", etag);
    assert_header(r, "last-modified", lm);
    assert_null(hval(r, "content-length"));
    assert_false(r->resp.has_body);
    assert_int_equal(r->len, 0);
    result_free(r);

    snprintf(list, sizeof(list), "\"nope\", W/%s", etag);
    r = request("GET", "/video.mp4", "if-none-match", list, NULL);
    assert_int_equal(r->resp.status, 304);
    result_free(r);
    r = request("HEAD", "/video.mp4", "if-none-match", "*", NULL);
    assert_int_equal(r->resp.status, 304);
    result_free(r);

    /* A non-matching If-None-Match wins over a matching If-Modified-Since. */
    r = request("GET", "/video.mp4", "if-none-match", "\"other\"", "if-modified-since", lm, NULL);
    assert_int_equal(r->resp.status, 200);
    assert_body(r, g_bin, sizeof(g_bin));
    result_free(r);

    r = request("GET", "/video.mp4", "if-modified-since", lm, NULL);
    assert_int_equal(r->resp.status, 304);
    result_free(r);
    r = request("GET", "/video.mp4", "if-modified-since", "Fri, 31 Dec 2100 23:59:59 GMT", NULL);
    assert_int_equal(r->resp.status, 304);
    result_free(r);
    r = request("GET", "/video.mp4", "if-modified-since", "Sun, 06 Nov 1994 08:49:37 GMT", NULL);
    assert_int_equal(r->resp.status, 200);
    result_free(r);
    /* The obsolete forms (RFC 9110 §5.6.7). */
    r = request("GET", "/video.mp4", "if-modified-since", "Sunday, 06-Nov-94 08:49:37 GMT", NULL);
    assert_int_equal(r->resp.status, 200);
    result_free(r);
    r = request("GET", "/video.mp4", "if-modified-since", "Fri Dec 31 23:59:59 2100", NULL);
    assert_int_equal(r->resp.status, 304);
    result_free(r);
    r = request("GET", "/video.mp4", "if-modified-since", "garbage", NULL);
    assert_int_equal(r->resp.status, 200);
    result_free(r);

    /* If-Range. */
    r = request("GET", "/video.mp4", "range", "bytes=0-9", "if-range", etag, NULL);
    assert_int_equal(r->resp.status, 206);
    assert_body(r, g_bin, 10);
    result_free(r);
    r = request("GET", "/video.mp4", "range", "bytes=0-9", "if-range", lm, NULL);
    assert_int_equal(r->resp.status, 206);
    result_free(r);
    r = request("GET", "/video.mp4", "range", "bytes=0-9", "if-range", "\"changed\"", NULL);
    assert_int_equal(r->resp.status, 200);
    assert_body(r, g_bin, sizeof(g_bin));
    result_free(r);
    snprintf(weak, sizeof(weak), "W/%s", etag);
    r = request("GET", "/video.mp4", "range", "bytes=0-9", "if-range", weak, NULL);
    assert_int_equal(r->resp.status, 200);
    result_free(r);
    r = request("GET", "/video.mp4", "range", "bytes=0-9", "if-range", "Sun, 06 Nov 1994 08:49:37 GMT", NULL);
    assert_int_equal(r->resp.status, 200);
    result_free(r);

    /* A change of the file changes the ETag. */
    struct timespec ts[2] = {{0, UTIME_OMIT}, {1000000000, 123456789}};
    char path[PATH_MAX * 2];
    snprintf(path, sizeof(path), "%s/video.mp4", g_root);
    assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
    r = request("GET", "/video.mp4", "if-none-match", etag, NULL);
    assert_int_equal(r->resp.status, 200);
    assert_string_not_equal(hval(r, "etag"), etag);
    result_free(r);

    free(etag);
    free(lm);

    /* Last-Modified is IMF-fixdate (RFC 9110 §5.6.7) for any mtime: leap
     * days, century years, before 1970, the end of a year. */
    const time_t when[] = {0, 1, -1, 86399, 951782400 /* 2000-02-29 */, 951868800, 4107542400 /* 2100-03-01 */,
                           1700000000, 1735689599, -2208988800 /* 1900-01-01 */, 253402300799 /* 9999 */,
                           68256000, 1582934400 /* 2020-02-29 */};
    for (size_t i = 0; i < sizeof(when) / sizeof(when[0]); i++) {
        struct timespec t2[2] = {{0, UTIME_OMIT}, {when[i], 0}};
        assert_int_equal(utimensat(AT_FDCWD, path, t2, 0), 0);
        struct stat st; /* some file systems clamp the time they store */
        assert_int_equal(stat(path, &st), 0);
        struct tm tm;
        char want[64];
        static const char *const wd[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
        static const char *const mo[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
        assert_non_null(gmtime_r(&st.st_mtime, &tm));
        snprintf(want, sizeof(want), "%s, %02d %s %04d %02d:%02d:%02d GMT", wd[tm.tm_wday], tm.tm_mday,
                 mo[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
        r = request("HEAD", "/video.mp4", NULL);
        assert_header(r, "last-modified", want);
        result_free(r);
    }
    for (time_t t = -400LL * 86400; t < 3000LL * 366 * 86400; t += 7919LL * 3607) {
        struct timespec t2[2] = {{0, UTIME_OMIT}, {t, 0}};
        assert_int_equal(utimensat(AT_FDCWD, path, t2, 0), 0);
        struct stat st;
        assert_int_equal(stat(path, &st), 0);
        struct tm tm;
        char want[64];
        assert_non_null(gmtime_r(&st.st_mtime, &tm));
        strftime(want, sizeof(want), "%d %b %Y %H:%M:%S GMT", &tm); /* C locale: English names */
        r = request("HEAD", "/video.mp4", NULL);
        const char *got = hval(r, "last-modified");
        assert_non_null(got);
        if (strcmp(got + 5, want) != 0)
            fail_msg("mtime %lld: %s, want ... %s", (long long)t, got, want);
        result_free(r);
    }
}

/* ---- tests: gzip ------------------------------------------------------ */

static void inflate_all(const uint8_t *in, size_t len, uint8_t **out, size_t *out_len)
{
    z_stream z;
    memset(&z, 0, sizeof(z));
    assert_int_equal(inflateInit2(&z, 15 + 16), Z_OK);
    size_t cap = 1 << 20;
    *out = malloc(cap);
    z.next_in = (uint8_t *)in;
    z.avail_in = (uInt)len;
    z.next_out = *out;
    z.avail_out = (uInt)cap;
    assert_int_equal(inflate(&z, Z_FINISH), Z_STREAM_END);
    assert_int_equal(z.avail_in, 0); /* nothing after the gzip member */
    *out_len = cap - z.avail_out;
    inflateEnd(&z);
}

static void test_gzip(void **state)
{
    (void)state;
    size_t chunks[] = {1, 13, 4096};
    for (size_t c = 0; c < sizeof(chunks) / sizeof(chunks[0]); c++) {
        struct result *r = request_chunked(0, chunks[c], "GET", "/hello.txt", "accept-encoding", "br;q=1.0, gzip;q=0.8",
                                           NULL);
        assert_int_equal(r->resp.status, 200);
        assert_header(r, "content-encoding", "gzip");
        assert_header(r, "vary", "accept-encoding");
        assert_null(hval(r, "content-length"));
        assert_int_equal(r->resp.content_length, -1);
        assert_true(r->len < strlen(g_text) / 2);
        uint8_t *plain;
        size_t plen;
        inflate_all(r->body, r->len, &plain, &plen);
        assert_int_equal(plen, strlen(g_text));
        assert_memory_equal(plain, g_text, plen);
        free(plain);
        const char *etag = hval(r, "etag");
        assert_non_null(etag);
        assert_non_null(strstr(etag, "-gz\""));
        result_free(r);
    }

    const char *refuse[] = {"gzip;q=0", "identity", "br", "gzip;q=0.000, *", "*;q=0"};
    for (size_t i = 0; i < sizeof(refuse) / sizeof(refuse[0]); i++) {
        struct result *r = request("GET", "/hello.txt", "accept-encoding", refuse[i], NULL);
        assert_null(hval(r, "content-encoding"));
        assert_body(r, g_text, strlen(g_text));
        assert_header(r, "vary", "accept-encoding");
        result_free(r);
    }
    struct result *r = request("GET", "/hello.txt", "accept-encoding", "*", NULL);
    assert_header(r, "content-encoding", "gzip");
    result_free(r);
    r = request("GET", "/hello.txt", "accept-encoding", "deflate", "accept-encoding", "GZIP", NULL);
    assert_header(r, "content-encoding", "gzip");
    result_free(r);

    /* Never on media, never on ranges. */
    r = request("GET", "/video.mp4", "accept-encoding", "gzip", NULL);
    assert_null(hval(r, "content-encoding"));
    assert_body(r, g_bin, sizeof(g_bin));
    result_free(r);
    r = request("GET", "/hello.txt", "accept-encoding", "gzip", "range", "bytes=0-99", NULL);
    assert_int_equal(r->resp.status, 206);
    assert_null(hval(r, "content-encoding"));
    assert_body(r, g_text, 100);
    result_free(r);

    /* HEAD of the gzip variant: same head, no length. */
    r = request("HEAD", "/hello.txt", "accept-encoding", "gzip", NULL);
    assert_header(r, "content-encoding", "gzip");
    assert_null(hval(r, "content-length"));
    result_free(r);

    /* The gzip variant's ETag revalidates it. */
    r = request("GET", "/hello.txt", "accept-encoding", "gzip", NULL);
    char *etag = copy_header(r, "etag");
    result_free(r);
    r = request("GET", "/hello.txt", "accept-encoding", "gzip", "if-none-match", etag, NULL);
    assert_int_equal(r->resp.status, 304);
    assert_header(r, "etag", etag);
    assert_header(r, "vary", "accept-encoding");
    result_free(r);
    free(etag);

    /* Listings are gzip'd too. */
    struct result *plain_l = request("GET", "/list/", NULL);
    r = request("GET", "/list/", "accept-encoding", "gzip, deflate", NULL);
    assert_header(r, "content-encoding", "gzip");
    uint8_t *plain;
    size_t plen;
    inflate_all(r->body, r->len, &plain, &plen);
    assert_int_equal(plen, plain_l->len);
    assert_memory_equal(plain, plain_l->body, plen);
    free(plain);
    result_free(r);
    result_free(plain_l);
}

/* ---- tests: methods --------------------------------------------------- */

static void test_methods(void **state)
{
    (void)state;
    const char *methods[] = {"POST", "DELETE", "PATCH", "PUT", "get"};
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
        struct result *r = request(methods[i], "/hello.txt", NULL);
        assert_int_equal(r->resp.status, 405);
        assert_header(r, "allow", "GET, HEAD, OPTIONS");
        assert_null(r->stream);
        result_free(r);
    }
    /* A tunnel (CONNECT, or a WebSocket's extended CONNECT) is no method
     * of a file server: not implemented, rather than not allowed here. */
    struct result *r = request("CONNECT", "/hello.txt", NULL);
    assert_int_equal(r->resp.status, 501);
    assert_null(r->stream);
    result_free(r);
    r = request_chunked(1, 4096, "POST", "/hello.txt", NULL);
    assert_int_equal(r->resp.status, 405);
    assert_header(r, "allow", "GET, HEAD, PUT, OPTIONS");
    result_free(r);
    r = request("OPTIONS", "*", NULL);
    assert_int_equal(r->resp.status, 204);
    assert_header(r, "allow", "GET, HEAD, OPTIONS");
    result_free(r);
}

/* ---- tests: PUT ------------------------------------------------------- */

static int count_temps(const char *rel)
{
    char path[PATH_MAX * 2];
    snprintf(path, sizeof(path), "%s/%s", g_root, rel);
    DIR *d = opendir(path);
    assert_non_null(d);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        if (!strncmp(de->d_name, ".tether-upload-", 15))
            n++;
    closedir(d);
    return n;
}

static void test_put(void **state)
{
    (void)state;
    make_dir("up");
    struct result *r = request_chunked(1, 4096, "PUT", "/up/new%20file.txt", NULL);
    assert_non_null(r->stream);
    assert_true(tt_fs_is_upload(r->stream));
    assert_int_equal(count_temps("up"), 1);
    /* While uploading, nothing shows under the final name or in listings. */
    struct result *g = request("GET", "/up/new%20file.txt", NULL);
    assert_int_equal(g->resp.status, 404);
    result_free(g);
    g = request("GET", "/up/", NULL);
    assert_int_equal(g->resp.status, 200);
    assert_null(memmem(g->body, g->len, "tether-upload", 13));
    result_free(g);
    for (size_t off = 0; off < sizeof(g_bin); off += 1000)
        assert_int_equal(tt_fs_write(r->stream, g_bin + off, 1000), 0);
    struct tt_fs_response fin;
    assert_int_equal(tt_fs_finish_upload(r->stream, &fin), 0);
    assert_int_equal(fin.status, 201);
    int has_loc = 0;
    for (size_t i = 0; i < fin.count; i++)
        if (fin.hdrs[i].name_len == 8 && !memcmp(fin.hdrs[i].name, "location", 8)) {
            has_loc = 1;
            assert_int_equal(fin.hdrs[i].value_len, strlen("new%20file.txt"));
            assert_memory_equal(fin.hdrs[i].value, "new%20file.txt", fin.hdrs[i].value_len);
        }
    assert_true(has_loc);
    result_free(r);
    assert_int_equal(count_temps("up"), 0);
    g = request("GET", "/up/new%20file.txt", NULL);
    assert_int_equal(g->resp.status, 200);
    assert_body(g, g_bin, sizeof(g_bin));
    result_free(g);

    /* Replace: 204. */
    r = request_chunked(1, 4096, "PUT", "/up/new%20file.txt", NULL);
    assert_non_null(r->stream);
    assert_int_equal(tt_fs_write(r->stream, (const uint8_t *)"v2", 2), 0);
    assert_int_equal(tt_fs_finish_upload(r->stream, &fin), 0);
    assert_int_equal(fin.status, 204);
    result_free(r);
    g = request("GET", "/up/new%20file.txt", NULL);
    assert_body(g, "v2", 2);
    result_free(g);

    /* Aborted: the old file stays, the temporary goes. */
    r = request_chunked(1, 4096, "PUT", "/up/new%20file.txt", NULL);
    assert_int_equal(tt_fs_write(r->stream, g_bin, 5000), 0);
    result_free(r); /* closes without finishing */
    assert_int_equal(count_temps("up"), 0);
    g = request("GET", "/up/new%20file.txt", NULL);
    assert_body(g, "v2", 2);
    result_free(g);
    r = request_chunked(1, 4096, "PUT", "/up/never.bin", NULL);
    assert_int_equal(tt_fs_write(r->stream, g_bin, 5000), 0);
    result_free(r);
    assert_int_equal(count_temps("up"), 0);
    g = request("GET", "/up/never.bin", NULL);
    assert_int_equal(g->resp.status, 404);
    result_free(g);

    /* Refusals. */
    struct {
        const char *path;
        int status;
    } cases[] = {
        {"/missing/x.txt", 409}, {"/up", 409},         {"/up/", 405},        {"/", 405},
        {"/../x.txt", 400},      {"/leakdir/x", 403},  {"/a%2fb", 400},      {"/hello.txt/x", 409},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        r = request_chunked(1, 4096, "PUT", cases[i].path, NULL);
        if (r->resp.status != cases[i].status)
            fail_msg("PUT %s: status %d, want %d", cases[i].path, r->resp.status, cases[i].status);
        assert_null(r->stream);
        result_free(r);
    }
    char path[PATH_MAX * 2];
    snprintf(path, sizeof(path), "%s/x", g_outside);
    assert_int_equal(access(path, F_OK), -1);
}

/* ---- tests: big files, failures ---------------------------------------- */

static void test_large_sparse(void **state)
{
    (void)state;
    const int64_t size = 3ll << 30;
    char path[PATH_MAX * 2], want[128];
    snprintf(path, sizeof(path), "%s/big.mkv", g_root);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, size), 0);
    assert_int_equal(pwrite(fd, "TAILMARK", 8, size - 8), 8);
    assert_int_equal(pwrite(fd, "HEAD", 4, 0), 4);
    close(fd);

    struct result *r = request("HEAD", "/big.mkv", NULL);
    assert_int_equal(r->resp.status, 200);
    assert_header(r, "content-length", "3221225472");
    assert_header(r, "content-type", "video/x-matroska");
    result_free(r);

    /* A suffix of 16 KiB, read in bounded chunks. */
    r = request_chunked(0, 1000, "GET", "/big.mkv", "range", "bytes=-16384", NULL);
    assert_int_equal(r->resp.status, 206);
    snprintf(want, sizeof(want), "bytes %lld-%lld/%lld", (long long)(size - 16384), (long long)(size - 1),
             (long long)size);
    assert_header(r, "content-range", want);
    assert_int_equal(r->len, 16384);
    assert_memory_equal(r->body + 16384 - 8, "TAILMARK", 8);
    result_free(r);

    r = request("GET", "/big.mkv", "range", "bytes=3221225400-", NULL);
    assert_int_equal(r->resp.status, 206);
    assert_header(r, "content-range", "bytes 3221225400-3221225471/3221225472");
    assert_int_equal(r->len, 72);
    assert_memory_equal(r->body + 64, "TAILMARK", 8);
    result_free(r);

    /* A whole-file GET: the stream hands out the first chunks without
     * reading ahead; closing it early is fine. */
    struct tt_fs_request req = {
        .method = {(const uint8_t *)"GET", 3},
        .path = {(const uint8_t *)"/big.mkv", 8},
    };
    struct tt_fs_response resp;
    g_cfg.root = g_root;
    g_cfg.allow_put = 0;
    struct tt_fs_stream *s = tt_fs_open(&g_cfg, &req, &resp);
    assert_non_null(s);
    assert_int_equal(resp.content_length, size);
    uint8_t buf[16384];
    assert_int_equal(tt_fs_read(s, buf, sizeof(buf)), sizeof(buf));
    assert_memory_equal(buf, "HEAD", 4);
    assert_int_equal(tt_fs_read(s, buf, sizeof(buf)), sizeof(buf));
    tt_fs_close(s);
    assert_int_equal(unlink(path), 0);
}

static void test_file_shrinks(void **state)
{
    (void)state;
    put_file("shrink.bin", g_bin, sizeof(g_bin));
    struct tt_fs_request req = {
        .method = {(const uint8_t *)"GET", 3},
        .path = {(const uint8_t *)"/shrink.bin", 11},
    };
    struct tt_fs_response resp;
    g_cfg.root = g_root;
    struct tt_fs_stream *s = tt_fs_open(&g_cfg, &req, &resp);
    assert_non_null(s);
    uint8_t buf[4096];
    assert_int_equal(tt_fs_read(s, buf, sizeof(buf)), sizeof(buf));
    char path[PATH_MAX * 2];
    snprintf(path, sizeof(path), "%s/shrink.bin", g_root);
    assert_int_equal(truncate(path, 5000), 0);
    ssize_t got = tt_fs_read(s, buf, sizeof(buf));
    assert_int_equal(got, 5000 - 4096);
    /* The body would now end short of Content-Length: an error, not 0. */
    assert_int_equal(tt_fs_read(s, buf, sizeof(buf)), -1);
    tt_fs_close(s);
}

static void test_helpers(void **state)
{
    (void)state;
    assert_true(tt_fs_under_root("/srv/m", 6, "/srv/m"));
    assert_true(tt_fs_under_root("/srv/m", 6, "/srv/m/a"));
    assert_false(tt_fs_under_root("/srv/m", 6, "/srv/media"));
    assert_false(tt_fs_under_root("/srv/m", 6, "/srv"));
    assert_true(tt_fs_under_root("/", 1, "/etc"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_helpers),
        cmocka_unit_test(test_mime),
        cmocka_unit_test_setup_teardown(test_get_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_head, setup, teardown),
        cmocka_unit_test_setup_teardown(test_traversal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_traversal, setup_realpath, teardown),
        cmocka_unit_test_setup_teardown(test_get_file, setup_realpath, teardown),
        cmocka_unit_test_setup_teardown(test_conditionals, setup_realpath, teardown),
        cmocka_unit_test_setup_teardown(test_directories, setup, teardown),
        cmocka_unit_test_setup_teardown(test_listing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_range_single, setup, teardown),
        cmocka_unit_test_setup_teardown(test_range_multi, setup, teardown),
        cmocka_unit_test_setup_teardown(test_range_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_conditionals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gzip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_methods, setup, teardown),
        cmocka_unit_test_setup_teardown(test_put, setup, teardown),
        cmocka_unit_test_setup_teardown(test_large_sparse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_shrinks, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
