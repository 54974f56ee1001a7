/*
 * libFuzzer target: the --root file server's request handling
 * (origin/fileserver.c), the part of c that reads attacker-controlled input
 * arriving through the tunnel: the :path decoding, Range, the conditionals
 * and Accept-Encoding, against a real temporary directory.
 *
 * Input, in the shape of an HTTP/1 head so that seeds stay readable:
 *   "METHOD SP PATH\n" then any number of "name: value\n" lines.
 * A line without ':' becomes a field with an empty value.  The sum of the
 * input's bytes picks the resolution route (openat2 beneath the root fd, or
 * realpath()) and the chunk size tt_fs_read() is drained with.  --allow-put
 * is off, so PUT is answered 405 and nothing is ever written.
 *
 * Fixture (made once, removed at exit): base/root holds the files served;
 * base/canary.txt and base/outside/ sit next to it, reached only through
 * "..", encoded dots or the symlinks root/out-abs, root/out-rel and
 * root/out-dir.  The canary's content must never appear in a body, nor the
 * content or name of the upload temporary root/.tether-upload-*.  A FIFO
 * (must not hang), a dangling and a /proc magic link complete it.
 *
 * Checks: a status in 100..599; at most TT_FS_MAX_RESP_HDRS fields, no CR,
 * LF or NUL in a value (c's answers reach HTTP/1.1 clients through p);
 * content-length present exactly when content_length >= 0 and equal to it;
 * a stream exactly when has_body; tt_fs_read never fails on these files and
 * produces content_length bytes; a 200 body (inflated when gzip'd) is a
 * whole fixture file or a listing; a 206 body (each part of a multipart one)
 * is the bytes of the file its Content-Range names, within that file.
 */
#include "origin/fileserver.h"

#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CANARY "CANARY-7f3a9c-outside-the-root"
#define CANARY_NAME "canary-7f3a9c"
#define PARTIAL "PARTIAL-UPLOAD-9d2e"
#define FZ_MAX_FIELDS 24
#define FZ_MAX_BODY (1u << 20)

/* The files a body may come from.  Their sizes differ, so a size in a
 * Content-Range names one. */
struct fz_file {
    const char *rel;
    uint8_t *data;
    size_t len;
};

static char fz_base[PATH_MAX], fz_root[PATH_MAX];
static struct tt_fs_config fz_cfg_fast, fz_cfg_slow;
static struct fz_file fz_files[8];
static size_t fz_nfiles;
static uint8_t *fz_body, *fz_plain;
static int fz_trace; /* FZ_FS_TRACE=1: one line per input, to see what a corpus reaches */

__attribute__((noreturn)) static void fz_die(const char *what)
{
    fprintf(stderr, "fuzz_fileserver: %s\n", what);
    abort();
}

static void fz_write(const char *dir, const char *rel, const void *data, size_t len)
{
    char path[PATH_MAX * 2];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0)
        fz_die("cannot write the fixture");
}

static void fz_add(const char *rel, const void *data, size_t len)
{
    struct fz_file *f = &fz_files[fz_nfiles++];
    f->rel = rel;
    f->len = len;
    f->data = malloc(len ? len : 1);
    if (!f->data)
        fz_die("out of memory");
    memcpy(f->data, data, len);
    fz_write(fz_root, rel, data, len);
}

static void fz_link(const char *target, const char *rel)
{
    char path[PATH_MAX * 2];
    snprintf(path, sizeof path, "%s/%s", fz_root, rel);
    if (symlink(target, path) != 0)
        fz_die("cannot make a symlink");
}

static int fz_rm(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    remove(path);
    return 0;
}

static void fz_cleanup(void)
{
    if (fz_base[0])
        nftw(fz_base, fz_rm, 16, FTW_DEPTH | FTW_PHYS);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    char tmpl[] = "/tmp/tt-fuzz-fs-XXXXXX";
    char path[PATH_MAX * 2];
    if (!mkdtemp(tmpl) || !realpath(tmpl, fz_base))
        fz_die("mkdtemp");
    atexit(fz_cleanup);
    snprintf(fz_root, sizeof fz_root, "%s/root", fz_base);
    snprintf(path, sizeof path, "%s/outside", fz_base);
    if (mkdir(fz_root, 0755) || mkdir(path, 0755))
        fz_die("mkdir");
    fz_write(fz_base, "canary.txt", CANARY "\n", sizeof(CANARY));
    fz_write(path, CANARY_NAME ".txt", CANARY "\n", sizeof(CANARY));

    static uint8_t bin[65536];
    for (size_t i = 0; i < sizeof bin; i++)
        bin[i] = (uint8_t)(i * 131 + (i >> 9) * 7 + 1);
    static char text[3000];
    size_t off = 0;
    for (int i = 0; off + 40 < sizeof text; i++)
        off += (size_t)snprintf(text + off, sizeof text - off, "line %d: the quick brown fox\n", i);
    snprintf(path, sizeof path, "%s/sub", fz_root);
    if (mkdir(path, 0755))
        fz_die("mkdir sub");
    snprintf(path, sizeof path, "%s/dir two", fz_root);
    if (mkdir(path, 0755))
        fz_die("mkdir dir two");

    fz_add("a.txt", "hello, world\n", 13);
    fz_add("bin.dat", bin, sizeof bin);
    fz_add("sub/index.html", "<!doctype html><h1>sub</h1>\n", 28);
    fz_add("dir two/caf\xc3\xa9 men\xc3\xbc.txt", "menu\n", 5);
    fz_add("style.css", text, off);
    fz_add("empty.txt", "", 0);
    fz_add("movie.mp4", bin, 4099);
    fz_link("a.txt", "alias.txt");        /* inside, relative */
    fz_link("../a.txt", "sub/up.txt");    /* inside, through ".." */
    snprintf(path, sizeof path, "%s/canary.txt", fz_base);
    fz_link(path, "out-abs");             /* absolute, outside */
    fz_link("../canary.txt", "out-rel");  /* relative, outside */
    snprintf(path, sizeof path, "%s/outside", fz_base);
    fz_link(path, "out-dir");             /* a directory outside */
    fz_link("/proc/self/cwd", "magic");   /* a magic link */
    fz_link("nowhere", "dangling");
    snprintf(path, sizeof path, "%s/pipe", fz_root);
    if (mkfifo(path, 0644))
        fz_die("mkfifo");
    /* An upload in progress: GET and listings must not show it. */
    fz_write(fz_root, ".tether-upload-0123456789ab", PARTIAL, sizeof(PARTIAL) - 1);

    fz_cfg_fast.root = fz_root;
    fz_cfg_fast.root_fd = tt_fs_open_root(fz_root);
    if (fz_cfg_fast.root_fd <= 0)
        fz_die("tt_fs_open_root");
    fz_cfg_slow.root = fz_root;
    fz_cfg_slow.root_fd = -1;
    fz_trace = getenv("FZ_FS_TRACE") != NULL;
    fz_body = malloc(FZ_MAX_BODY);
    fz_plain = malloc(FZ_MAX_BODY);
    if (!fz_body || !fz_plain)
        fz_die("out of memory");
    return 0;
}

/* ---- checks ----------------------------------------------------------- */

static const struct tt_header *fz_resp_field(const struct tt_fs_response *r, const char *name)
{
    for (size_t i = 0; i < r->count; i++)
        if (r->hdrs[i].name_len == strlen(name) && memcmp(r->hdrs[i].name, name, strlen(name)) == 0)
            return &r->hdrs[i];
    return NULL;
}

/* The field's value as a C string (values are at most sizeof strbuf). */
static const char *fz_value(const struct tt_fs_response *r, const char *name, char *buf, size_t cap)
{
    const struct tt_header *h = fz_resp_field(r, name);
    if (!h)
        return NULL;
    if (h->value_len >= cap)
        fz_die("value too long");
    memcpy(buf, h->value, h->value_len);
    buf[h->value_len] = '\0';
    return buf;
}

static void fz_no_canary(const uint8_t *b, size_t n)
{
    if (memmem(b, n, "CANARY-7f3a9c", 13) || memmem(b, n, CANARY_NAME, sizeof(CANARY_NAME) - 1))
        fz_die("a body shows what lies outside the root");
    if (memmem(b, n, PARTIAL, sizeof(PARTIAL) - 1) || memmem(b, n, ".tether-upload-", 15))
        fz_die("a body shows an unfinished upload");
}

/* `b` is bytes first..last of the fixture file of size `size`. */
static void fz_check_range(const uint8_t *b, size_t n, long long first, long long last, long long size)
{
    if (first < 0 || last < first || last >= size || (long long)n != last - first + 1)
        fz_die("range outside the file or of the wrong length");
    for (size_t i = 0; i < fz_nfiles; i++)
        if ((long long)fz_files[i].len == size) {
            if (memcmp(b, fz_files[i].data + first, n) != 0)
                fz_die("range bytes differ from the file");
            return;
        }
    fz_die("range of a file of unknown size");
}

/* A whole 200 body: one fixture file, or (text/html) a listing. */
static void fz_check_whole(const uint8_t *b, size_t n, const char *ctype)
{
    for (size_t i = 0; i < fz_nfiles; i++)
        if (fz_files[i].len == n && memcmp(b, fz_files[i].data, n) == 0)
            return;
    if (ctype && strncmp(ctype, "text/html", 9) == 0 && n > 0)
        return; /* a listing */
    fz_die("a 200 body that is no fixture file");
}

static void fz_check_multipart(const uint8_t *b, size_t n, const char *ctype)
{
    const char *bd = ctype ? strstr(ctype, "boundary=") : NULL;
    if (!bd)
        fz_die("multipart without a boundary");
    bd += 9;
    size_t bl = strlen(bd), off = 0;
    int parts = 0;
    for (;;) {
        if (parts && (n - off < 2 || memcmp(b + off, "\r\n", 2) != 0))
            fz_die("multipart: no CRLF before a delimiter");
        if (parts)
            off += 2;
        if (n - off < 2 + bl || memcmp(b + off, "--", 2) != 0 || memcmp(b + off + 2, bd, bl) != 0)
            fz_die("multipart: bad delimiter");
        off += 2 + bl;
        if (n - off >= 4 && memcmp(b + off, "--\r\n", 4) == 0) {
            if (off + 4 != n || parts < 2)
                fz_die("multipart: bad close");
            return;
        }
        const uint8_t *hend = memmem(b + off, n - off, "\r\n\r\n", 4);
        if (!hend)
            fz_die("multipart: part header unterminated");
        char head[512];
        size_t hl = (size_t)(hend - (b + off));
        if (hl >= sizeof head)
            fz_die("multipart: part header too long");
        memcpy(head, b + off, hl);
        head[hl] = '\0';
        const char *cr = strstr(head, "Content-Range: bytes ");
        long long first, last, size;
        if (!cr || sscanf(cr + 21, "%lld-%lld/%lld", &first, &last, &size) != 3)
            fz_die("multipart: no Content-Range");
        off += hl + 4;
        if (last < first || (unsigned long long)(last - first + 1) > n - off)
            fz_die("multipart: part runs past the body");
        fz_check_range(b + off, (size_t)(last - first + 1), first, last, size);
        off += (size_t)(last - first + 1);
        parts++;
    }
}

/* Inflates a gzip body into fz_plain.  Returns the length. */
static size_t fz_gunzip(const uint8_t *b, size_t n)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, 16 + 15) != Z_OK)
        fz_die("inflateInit2");
    z.next_in = (uint8_t *)b;
    z.avail_in = (uInt)n;
    z.next_out = fz_plain;
    z.avail_out = FZ_MAX_BODY;
    int rc = inflate(&z, Z_FINISH);
    size_t out = FZ_MAX_BODY - z.avail_out;
    int rest = z.avail_in;
    inflateEnd(&z);
    if (rc != Z_STREAM_END || rest != 0)
        fz_die("gzip body does not inflate to its end");
    return out;
}

/* ---- one request ------------------------------------------------------ */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct tt_header fields[FZ_MAX_FIELDS];
    struct tt_fs_request req;
    size_t nf = 0, i = 0, sum = 0;

    if (size > 4096)
        return 0;
    for (size_t k = 0; k < size; k++)
        sum += data[k];
    /* Request line: method up to the first space, path up to the end. */
    size_t eol = 0;
    while (eol < size && data[eol] != '\n')
        eol++;
    size_t sp = 0;
    while (sp < eol && data[sp] != ' ')
        sp++;
    req.method = (tt_iov){data, sp};
    req.path = sp < eol ? (tt_iov){data + sp + 1, eol - sp - 1} : (tt_iov){data + eol, 0};
    i = eol + 1;
    while (i < size && nf < FZ_MAX_FIELDS) {
        size_t e = i;
        while (e < size && data[e] != '\n')
            e++;
        size_t c = i;
        while (c < e && data[c] != ':')
            c++;
        size_t v = c < e ? c + 1 : e;
        while (v < e && data[v] == ' ')
            v++;
        struct tt_header *h = &fields[nf++];
        h->name = (const char *)data + i;
        h->name_len = (uint32_t)(c - i);
        h->value = (const char *)data + v;
        h->value_len = (uint32_t)(e - v);
        h->flags = 0;
        i = e + 1;
    }
    req.hdrs = fields;
    req.count = nf;

    const struct tt_fs_config *cfg = (sum & 1) ? &fz_cfg_slow : &fz_cfg_fast;
    static const size_t chunks[8] = {1, 7, 100, 1000, 4096, 16384, 3, 65536};
    size_t chunk = chunks[(sum >> 1) & 7];
    int is_head = req.method.len == 4 && memcmp(req.method.base, "HEAD", 4) == 0;

    struct tt_fs_response resp;
    memset(&resp, 0xa5, sizeof resp); /* tt_fs_open must fill every part we read */
    struct tt_fs_stream *s = tt_fs_open(cfg, &req, &resp);

    if (resp.status < 100 || resp.status > 599)
        fz_die("status out of range");
    if (resp.count > TT_FS_MAX_RESP_HDRS || resp.strbuf_len > sizeof resp.strbuf)
        fz_die("response head overflows");
    for (size_t k = 0; k < resp.count; k++) {
        const struct tt_header *h = &resp.hdrs[k];
        if (h->name_len == 0)
            fz_die("empty field name");
        for (uint32_t b = 0; b < h->value_len; b++)
            if (h->value[b] == '\r' || h->value[b] == '\n' || h->value[b] == '\0')
                fz_die("CR, LF or NUL in a response field");
        /* No canary check here: a Location echoes the request's query. */
    }
    char clbuf[32], ctbuf[256], crbuf[128];
    const char *cl = fz_value(&resp, "content-length", clbuf, sizeof clbuf);
    if ((cl != NULL) != (resp.content_length >= 0))
        fz_die("content-length field and content_length disagree");
    if (cl && strtoll(cl, NULL, 10) != resp.content_length)
        fz_die("content-length value differs from content_length");
    if ((s != NULL) != (resp.has_body != 0))
        fz_die("a stream without a body, or a body without a stream");
    if (s && is_head)
        fz_die("a body for HEAD");
    if (tt_fs_is_upload(s))
        fz_die("an upload without --allow-put");
    if (fz_trace)
        fprintf(stderr, "trace: %d %s%s\n", resp.status, cfg == &fz_cfg_slow ? "slow" : "fast",
                fz_resp_field(&resp, "content-encoding") ? " gzip" : "");
    if (!s)
        return 0;

    size_t n = 0;
    for (;;) {
        if (n + chunk > FZ_MAX_BODY)
            fz_die("body larger than any fixture");
        ssize_t r = tt_fs_read(s, fz_body + n, chunk);
        if (r < 0)
            fz_die("tt_fs_read failed on a file that does not change");
        if (r == 0)
            break;
        if ((size_t)r > chunk)
            fz_die("tt_fs_read wrote past cap");
        n += (size_t)r;
    }
    if (tt_fs_read(s, fz_body + n, chunk) != 0)
        fz_die("bytes after the end of the body");
    tt_fs_close(s);

    if (resp.content_length >= 0 && (int64_t)n != resp.content_length)
        fz_die("body length differs from content-length");
    const char *ctype = fz_value(&resp, "content-type", ctbuf, sizeof ctbuf);
    const uint8_t *plain = fz_body;
    size_t plen = n;
    const struct tt_header *ce = fz_resp_field(&resp, "content-encoding");
    if (ce) {
        if (ce->value_len != 4 || memcmp(ce->value, "gzip", 4) != 0 || resp.status != 200)
            fz_die("unexpected content-encoding");
        plen = fz_gunzip(fz_body, n);
        plain = fz_plain;
    }
    fz_no_canary(plain, plen);
    if (resp.status == 200) {
        fz_check_whole(plain, plen, ctype);
    } else if (resp.status == 206) {
        const char *cr = fz_value(&resp, "content-range", crbuf, sizeof crbuf);
        long long first, last, fsize;
        if (cr) {
            if (sscanf(cr, "bytes %lld-%lld/%lld", &first, &last, &fsize) != 3)
                fz_die("bad content-range");
            fz_check_range(plain, plen, first, last, fsize);
        } else {
            fz_check_multipart(plain, plen, ctype);
        }
    } else {
        fz_die("a body with a status other than 200 or 206");
    }
    return 0;
}
