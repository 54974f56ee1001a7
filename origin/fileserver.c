/*
 * The --root file server (see fileserver.h for the contract).
 *
 * A request is answered in two steps.  tt_fs_open() looks at the head: it
 * decodes the path once, resolves it with realpath() and checks the result is
 * under the root (a symlink inside the root that leads inside is fine, one
 * that leads out is refused), evaluates the conditionals and the Range, and
 * fills the response head.  The body is then pulled with tt_fs_read() as the
 * caller's flow-control window opens: each call preads at most `cap` bytes of
 * the file (or of the in-memory listing), runs them through deflate when the
 * response is gzip'd, or emits the next multipart/byteranges part header.
 * A stream holds one file descriptor, a few hundred bytes of state, and for
 * gzip one deflate state (about 128 KiB) plus a 16 KiB input buffer, whatever
 * the file's size.
 *
 * Range policy (RFC 9110 §14.2 lets a server ignore or coalesce): a Range
 * with more than FS_MAX_RANGES ranges is ignored (200, whole body); ranges
 * that overlap or touch are coalesced into ascending order, so a request for
 * "0-,0-,0-..." costs one copy of the file, not many.
 *
 * PUT (--allow-put) writes into ".tether-upload-XXXXXXXXXXXX" in the target's
 * directory (O_EXCL), which listings hide and GET refuses; on completion the
 * file is fsync'd and renamed into place, so a reader sees the old file or
 * the whole new one, never a part; an unfinished upload is unlinked.
 *
 * size: one file because streams, GET, PUT and the entry all work on the
 * private struct tt_fs_stream and its invariants (what is open, what is
 * owed, which part comes next), behind one header.  The seam, if it grows:
 * the pure pieces (dates, path decoding, validators, Range parsing, about
 * 470 lines) need none of that and can leave as one file; the fuzzer's
 * link list (FUZZ_ORIGIN_FS in the Makefile) must then name it too.
 */
#include "fileserver.h"

#include "codec/buf.h"
#include "listing.h"
#include "proto/text.h"
#include "mime.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#define UPLOAD_PREFIX ".tether-upload-"
#define FS_GZIP_IN 16384
#define FS_PART_HDR_MAX 256
#define FS_MAX_RANGES 64 /* more in one Range: ignored (200) */

enum fs_kind {
    FS_BODY = 1,
    FS_UPLOAD,
};

struct fs_range {
    int64_t first, last; /* inclusive, as in Content-Range */
};

struct tt_fs_stream {
    enum fs_kind kind;
    int fd;

    /* Body source: the file `fd`, or `mem` (a listing) when fd < 0. */
    tt_buf mem;
    int64_t size;

    /* Ranges to send: one covering the whole body when there is no Range. */
    struct fs_range ranges[FS_MAX_RANGES];
    size_t nranges, cur;
    int64_t pos; /* next byte of ranges[cur] */
    int multipart, trailer_done;
    char boundary[40];
    const char *ctype;
    char part[FS_PART_HDR_MAX]; /* pending part header or closing delimiter */
    size_t part_len, part_off;

    /* gzip */
    int gzip, zeof, zdone;
    z_stream z;
    uint8_t *zin;
    int64_t zpos;

    /* upload */
    int dirfd, finished;
    char tmpname[64];
    char name[NAME_MAX + 1];
};

/* ---- response head ---------------------------------------------------- */

static void resp_reset(struct tt_fs_response *r, int status)
{
    r->status = status;
    r->count = 0;
    r->strbuf_len = 0;
    r->content_length = -1;
    r->has_body = 0;
}

/* Names are static lowercase strings; values are copied into strbuf.  The
 * sizes are chosen so that a response never runs out of room; if one did,
 * the field is dropped rather than overflowing. */
static void resp_add(struct tt_fs_response *r, const char *name, const char *value, size_t vlen)
{
    if (r->count == TT_FS_MAX_RESP_HDRS || vlen > sizeof(r->strbuf) - r->strbuf_len)
        return;
    char *v = r->strbuf + r->strbuf_len;
    memcpy(v, value, vlen);
    r->strbuf_len += vlen;
    struct tt_header *h = &r->hdrs[r->count++];
    h->name = name;
    h->name_len = (uint32_t)strlen(name);
    h->value = v;
    h->value_len = (uint32_t)vlen;
    h->flags = 0;
}

static void resp_adds(struct tt_fs_response *r, const char *name, const char *value)
{
    resp_add(r, name, value, strlen(value));
}

__attribute__((format(printf, 3, 4))) static void resp_addf(struct tt_fs_response *r, const char *name,
                                                            const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n >= 0 && (size_t)n < sizeof(tmp))
        resp_add(r, name, tmp, (size_t)n);
}

/* Writes `v` in base 10 or 16 at `out` (room for 20 digits).  Returns the
 * end.  By hand: vfprintf was a visible part of a small request's cost. */
static char *fs_put_u64(char *out, uint64_t v, unsigned base)
{
    char tmp[20];
    size_t n = 0;
    do {
        tmp[n++] = "0123456789abcdef"[v % base];
        v /= base;
    } while (v);
    while (n)
        *out++ = tmp[--n];
    return out;
}

static void resp_length(struct tt_fs_response *r, int64_t len)
{
    char tmp[24];
    r->content_length = len;
    char *e = len < 0 ? (*tmp = '-', fs_put_u64(tmp + 1, (uint64_t)-len, 10)) : fs_put_u64(tmp, (uint64_t)len, 10);
    resp_add(r, "content-length", tmp, (size_t)(e - tmp));
}

/* An answer without a body.  Errors carry "content-length: 0" so that an
 * HTTP/1.1 client on the far side of p knows the body is empty. */
static void resp_error(struct tt_fs_response *r, int status)
{
    resp_reset(r, status);
    resp_length(r, 0);
}

static void resp_allow(struct tt_fs_response *r, const struct tt_fs_config *cfg)
{
    resp_adds(r, "allow", cfg->allow_put ? "GET, HEAD, PUT, OPTIONS" : "GET, HEAD, OPTIONS");
}

/* ---- request fields --------------------------------------------------- */

static int iov_eq(tt_iov v, const char *s)
{
    size_t n = strlen(s);
    return v.len == n && memcmp(v.base, s, n) == 0;
}

static int hdr_is(const struct tt_header *h, const char *name)
{
    size_t n = strlen(name);
    return h->name_len == n && strncasecmp(h->name, name, n) == 0;
}

/* The only field of that name, or NULL when absent; `*dup` is set when the
 * field appears more than once. */
static const struct tt_header *req_field(const struct tt_fs_request *req, const char *name, int *dup)
{
    const struct tt_header *found = NULL;
    *dup = 0;
    for (size_t i = 0; i < req->count; i++) {
        if (!hdr_is(&req->hdrs[i], name))
            continue;
        if (found)
            *dup = 1;
        else
            found = &req->hdrs[i];
    }
    return found;
}

static int is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* ---- dates (RFC 9110 §5.6.7) ------------------------------------------ */

static const char *const fs_months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                        "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
static const char *const fs_wdays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};

static char *fs_put_2d(char *out, int v)
{
    out[0] = (char)('0' + v / 10);
    out[1] = (char)('0' + v % 10);
    return out + 2;
}

/* IMF-fixdate of `t` into `out` (cap >= 30).  The calendar is computed here
 * rather than with gmtime_r(), whose time zone lock and conversion showed in
 * the profile of small requests: days since 1970 are counted from a year
 * that starts on 1 March, so that the leap day is the last day of its year
 * and each 400-year cycle (146097 days) repeats exactly. */
static void fs_imf_date(char *out, size_t cap, time_t t)
{
    int64_t secs = (int64_t)t, days = secs / 86400, sod = secs % 86400;
    if (sod < 0) {
        sod += 86400;
        days--;
    }
    int64_t z = days + 719468; /* days from 0000-03-01 to 1970-01-01 */
    int64_t cycle = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doc = z - cycle * 146097;                                   /* [0, 146096] */
    int64_t yoc = (doc - doc / 1460 + doc / 36524 - doc / 146096) / 365; /* [0, 399] */
    int64_t doy = doc - (365 * yoc + yoc / 4 - yoc / 100);               /* [0, 365], from 1 March */
    int64_t mp = (5 * doy + 2) / 153;                                    /* 0 = March */
    int mday = (int)(doy - (153 * mp + 2) / 5 + 1);
    int mon = (int)(mp < 10 ? mp + 2 : mp - 10); /* 0 = January */
    int64_t year = yoc + cycle * 400 + (mon < 2);
    if (cap >= 30 && year >= 0 && year <= 9999) {
        int wday = (int)((days % 7 + 11) % 7); /* 1970-01-01 was a Thursday */
        char *o = out;
        memcpy(o, fs_wdays[wday], 3);
        o[3] = ',';
        o[4] = ' ';
        o = fs_put_2d(o + 5, mday);
        *o++ = ' ';
        memcpy(o, fs_months[mon], 3);
        o[3] = ' ';
        o = fs_put_2d(o + 4, (int)(year / 100));
        o = fs_put_2d(o, (int)(year % 100));
        *o++ = ' ';
        o = fs_put_2d(o, (int)(sod / 3600));
        *o++ = ':';
        o = fs_put_2d(o, (int)(sod / 60 % 60));
        *o++ = ':';
        o = fs_put_2d(o, (int)(sod % 60));
        memcpy(o, " GMT", 5);
        return;
    }
    struct tm tm;
    if (!gmtime_r(&t, &tm)) {
        snprintf(out, cap, "Thu, 01 Jan 1970 00:00:00 GMT");
        return;
    }
    /* Written by hand rather than strftime: the names must be English
     * whatever the locale. */
    snprintf(out, cap, "%s, %02d %s %04d %02d:%02d:%02d GMT", fs_wdays[tm.tm_wday], tm.tm_mday,
             fs_months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

static int fs_month(const char *m)
{
    for (int i = 0; i < 12; i++)
        if (strcmp(m, fs_months[i]) == 0)
            return i;
    return -1;
}

/* Parses IMF-fixdate, and the obsolete RFC 850 and asctime forms that a
 * recipient must also accept.  Returns 0 and sets *out, or -1. */
static int fs_parse_date(const char *s, size_t len, time_t *out)
{
    char buf[64], mon[4];
    struct tm tm;
    int day, year, h, mi, sec, n = 0;

    if (len >= sizeof(buf))
        return -1;
    memcpy(buf, s, len);
    buf[len] = '\0';
    memset(&tm, 0, sizeof(tm));
    if (len == 29 && buf[3] == ',') {
        if (sscanf(buf, "%*3[A-Za-z], %2d %3[A-Za-z] %4d %2d:%2d:%2d GMT%n", &day, mon, &year, &h, &mi,
                   &sec, &n) != 6 || (size_t)n != len)
            return -1;
    } else if (strchr(buf, ',')) {
        if (sscanf(buf, "%*[A-Za-z], %2d-%3[A-Za-z]-%2d %2d:%2d:%2d GMT%n", &day, mon, &year, &h, &mi, &sec,
                   &n) != 6 || (size_t)n != len)
            return -1;
        /* Two-digit years: RFC 9110 §5.6.7 reads a year more than 50
         * years ahead as the past; with 70 as the pivot that holds until
         * 2050. */
        year += year < 70 ? 2000 : 1900;
    } else {
        if (sscanf(buf, "%*3[A-Za-z] %3[A-Za-z] %2d %2d:%2d:%2d %4d%n", mon, &day, &h, &mi, &sec, &year,
                   &n) != 6 || (size_t)n != len)
            return -1;
    }
    int m = fs_month(mon);
    if (m < 0 || day < 1 || day > 31 || h > 23 || mi > 59 || sec > 60 || year < 1900)
        return -1;
    tm.tm_year = year - 1900;
    tm.tm_mon = m;
    tm.tm_mday = day;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    *out = timegm(&tm);
    return 0;
}

/* ---- path ------------------------------------------------------------- */

struct fs_path {
    char rel[PATH_MAX];  /* decoded, "a/b/c" without leading or trailing '/' */
    size_t rel_len;
    size_t last_off;     /* start of the last segment in rel */
    int trailing_slash;
    const uint8_t *query; /* after '?', raw; NULL when none */
    size_t query_len;
};

/* Decodes `:path` once (RFC 3986 §2.1).  Returns 0, or the status to answer
 * with: 400 for a malformed or hostile path (bad %XX, NUL, an encoded '/' or
 * a '\' that would split a segment differently than the client meant, a ".."
 * segment), 404 for the upload temporaries, 414 when too long. */
static int fs_parse_path(tt_iov raw, struct fs_path *p)
{
    size_t end = 0;
    int last_was_dot = 0;

    p->rel_len = 0;
    p->last_off = 0;
    p->query = NULL;
    p->query_len = 0;
    if (raw.len == 0 || raw.base[0] != '/')
        return 400;
    while (end < raw.len && raw.base[end] != '?' && raw.base[end] != '#')
        end++;
    if (end < raw.len && raw.base[end] == '?') {
        size_t q = end + 1, qe = q;
        while (qe < raw.len && raw.base[qe] != '#')
            qe++;
        p->query = raw.base + q;
        p->query_len = qe - q;
    }
    p->trailing_slash = raw.base[end - 1] == '/';

    size_t i = 1;
    while (i <= end) {
        size_t seg_start = p->rel_len;
        if (seg_start) {
            if (p->rel_len + 1 >= sizeof(p->rel))
                return 414;
            p->rel[p->rel_len++] = '/';
        }
        size_t dec_start = p->rel_len;
        while (i < end && raw.base[i] != '/') {
            int c = raw.base[i];
            if (c == '%') {
                int hi = i + 2 < end ? tt_hex_value(raw.base[i + 1]) : -1;
                int lo = i + 2 < end ? tt_hex_value(raw.base[i + 2]) : -1;
                if (hi < 0 || lo < 0)
                    return 400;
                c = hi << 4 | lo;
                if (c == '/')
                    return 400;
                i += 3;
            } else {
                i++;
            }
            if (c == '\0' || c == '\\')
                return 400;
            if (p->rel_len + 1 >= sizeof(p->rel))
                return 414;
            p->rel[p->rel_len++] = (char)c;
        }
        i++; /* the '/' or the end */
        size_t dlen = p->rel_len - dec_start;
        const char *seg = p->rel + dec_start;
        if (dlen == 2 && seg[0] == '.' && seg[1] == '.')
            return 400;
        if (dlen == 0 || (dlen == 1 && seg[0] == '.')) {
            /* "//" and "/./" name the same place; drop the segment. */
            last_was_dot = dlen == 1;
            p->rel_len = seg_start;
            continue;
        }
        last_was_dot = 0;
        if (dlen >= sizeof(UPLOAD_PREFIX) - 1 && memcmp(seg, UPLOAD_PREFIX, sizeof(UPLOAD_PREFIX) - 1) == 0)
            return 404;
        p->last_off = dec_start;
    }
    p->rel[p->rel_len] = '\0';
    if (last_was_dot)
        p->trailing_slash = 1; /* "/dir/." is "/dir/" */
    return 0;
}

/* Maps errno from realpath/open to a status that reveals nothing beyond
 * "not here" or "not allowed". */
static int fs_errno_status(int e)
{
    switch (e) {
    case EACCES:
    case EPERM:
        return 403;
    case ENAMETOOLONG:
        return 414;
    default:
        return 404;
    }
}

/* ---- validators and conditionals (RFC 9110 §8.8, §13) ----------------- */

struct fs_validators {
    char etag[96];    /* identity representation, strong */
    char etag_gz[96]; /* the gzip'd representation is another one (§8.8.3) */
    char lastmod[40];
    time_t mtime;
};

static void fs_make_validators(const struct stat *st, struct fs_validators *v)
{
    unsigned long long ns =
        (unsigned long long)st->st_mtim.tv_sec * 1000000000ull + (unsigned long long)st->st_mtim.tv_nsec;
    /* "INO-SIZE-MTIMENS" in hex; the gzip'd variant adds "-gz". */
    char *o = v->etag;
    *o++ = '"';
    o = fs_put_u64(o, (uint64_t)st->st_ino, 16);
    *o++ = '-';
    o = fs_put_u64(o, (uint64_t)st->st_size, 16);
    *o++ = '-';
    o = fs_put_u64(o, ns, 16);
    size_t n = (size_t)(o - v->etag);
    memcpy(v->etag_gz, v->etag, n);
    memcpy(v->etag_gz + n, "-gz\"", 5);
    memcpy(o, "\"", 2);
    v->mtime = st->st_mtime;
    fs_imf_date(v->lastmod, sizeof(v->lastmod), st->st_mtime);
}

/* If-None-Match: 1 when any listed tag matches one of ours under the weak
 * comparison (§8.8.3.2), or the list is "*".  Every field of that name is a
 * part of one list (§5.3). */
static int fs_inm_match(const struct tt_fs_request *req, const struct fs_validators *v, int *present)
{
    *present = 0;
    for (size_t i = 0; i < req->count; i++) {
        const struct tt_header *h = &req->hdrs[i];
        if (!hdr_is(h, "if-none-match"))
            continue;
        *present = 1;
        const char *s = h->value, *e = h->value + h->value_len;
        while (s < e) {
            while (s < e && (is_ows(*s) || *s == ','))
                s++;
            if (s == e)
                break;
            if (*s == '*')
                return 1;
            if (e - s >= 2 && s[0] == 'W' && s[1] == '/')
                s += 2;
            if (s == e || *s != '"')
                break; /* malformed: no match from here */
            const char *q = memchr(s + 1, '"', (size_t)(e - s - 1));
            if (!q)
                break;
            size_t n = (size_t)(q - s + 1);
            if ((n == strlen(v->etag) && memcmp(s, v->etag, n) == 0) ||
                (n == strlen(v->etag_gz) && memcmp(s, v->etag_gz, n) == 0))
                return 1;
            s = q + 1;
        }
    }
    return 0;
}

static void trim_ows(const char **s, const char **e)
{
    while (*s < *e && is_ows(**s))
        (*s)++;
    while (*e > *s && is_ows((*e)[-1]))
        (*e)--;
}

/* If-Range (§13.1.5): 1 when the Range may be honoured.  An entity-tag must
 * match strongly (a weak one never does); a date must equal Last-Modified. */
static int fs_if_range_ok(const struct tt_fs_request *req, const struct fs_validators *v)
{
    int dup;
    const struct tt_header *h = req_field(req, "if-range", &dup);
    if (!h)
        return 1;
    if (dup)
        return 0;
    const char *s = h->value, *e = h->value + h->value_len;
    trim_ows(&s, &e);
    if (e - s >= 2 && s[0] == 'W' && s[1] == '/')
        return 0;
    if (s < e && *s == '"')
        return (size_t)(e - s) == strlen(v->etag) && memcmp(s, v->etag, (size_t)(e - s)) == 0;
    time_t t;
    return fs_parse_date(s, (size_t)(e - s), &t) == 0 && t == v->mtime;
}

/* Accept-Encoding (§12.5.3): 1 when gzip is acceptable.  An explicit "gzip"
 * (or "x-gzip") decides; otherwise "*" does; q=0 means "not acceptable". */
static int fs_accepts_gzip(const struct tt_fs_request *req)
{
    int gzip_q = -1, star_q = -1;
    for (size_t i = 0; i < req->count; i++) {
        const struct tt_header *h = &req->hdrs[i];
        if (!hdr_is(h, "accept-encoding"))
            continue;
        const char *s = h->value, *end = h->value + h->value_len;
        while (s < end) {
            const char *el_end = memchr(s, ',', (size_t)(end - s));
            if (!el_end)
                el_end = end;
            const char *semi = memchr(s, ';', (size_t)(el_end - s));
            const char *ts = s, *te = semi ? semi : el_end;
            trim_ows(&ts, &te);
            int q = 1;
            if (semi) {
                const char *ps = semi + 1, *pe = el_end;
                trim_ows(&ps, &pe);
                if (pe - ps >= 2 && (ps[0] == 'q' || ps[0] == 'Q') && ps[1] == '=') {
                    /* qvalue: 0 only when every digit is 0 (§12.4.2). */
                    q = 0;
                    for (const char *c = ps + 2; c < pe; c++)
                        if (*c >= '1' && *c <= '9')
                            q = 1;
                }
            }
            size_t tl = (size_t)(te - ts);
            if ((tl == 4 && strncasecmp(ts, "gzip", 4) == 0) || (tl == 6 && strncasecmp(ts, "x-gzip", 6) == 0))
                gzip_q = gzip_q > 0 ? gzip_q : q;
            else if (tl == 1 && *ts == '*')
                star_q = q;
            s = el_end + (el_end < end);
        }
    }
    return gzip_q >= 0 ? gzip_q > 0 : star_q > 0;
}

/* ---- Range (RFC 9110 §14.1.2) ----------------------------------------- */

enum fs_range_result {
    FS_RANGE_IGNORE = 0, /* absent, invalid, or refused: send 200 */
    FS_RANGE_OK,
    FS_RANGE_UNSAT, /* 416 */
};

/* Reads 1*DIGIT, saturating at INT64_MAX.  Returns the end, or NULL. */
static const char *fs_digits(const char *s, const char *e, int64_t *out)
{
    const char *start = s;
    int64_t v = 0;
    while (s < e && *s >= '0' && *s <= '9') {
        int d = *s - '0';
        v = v > (INT64_MAX - d) / 10 ? INT64_MAX : v * 10 + d;
        s++;
    }
    *out = v;
    return s == start ? NULL : s;
}

static int fs_range_cmp(const void *a, const void *b)
{
    const struct fs_range *x = a, *y = b;
    return x->first < y->first ? -1 : x->first > y->first;
}

static enum fs_range_result fs_parse_range(const char *s, size_t len, int64_t size, struct fs_range *out,
                                           size_t *nout)
{
    const char *e = s + len;
    size_t n = 0;
    int any_suffix = 0, any_spec = 0;

    trim_ows(&s, &e);
    if (e - s < 6 || strncasecmp(s, "bytes=", 6) != 0)
        return FS_RANGE_IGNORE; /* a unit we do not know: ignore (§14.2) */
    s += 6;
    while (s < e) {
        while (s < e && (is_ows(*s) || *s == ','))
            s++;
        if (s == e)
            break;
        int64_t first, last = -1;
        if (*s == '-') {
            int64_t suffix;
            s = fs_digits(s + 1, e, &suffix);
            if (!s)
                return FS_RANGE_IGNORE;
            any_spec = 1;
            if (suffix > 0) {
                any_suffix = 1;
                if (size > 0) {
                    if (n == FS_MAX_RANGES)
                        return FS_RANGE_IGNORE;
                    out[n].first = suffix >= size ? 0 : size - suffix;
                    out[n].last = size - 1;
                    n++;
                }
            }
        } else {
            s = fs_digits(s, e, &first);
            if (!s || s == e || *s != '-')
                return FS_RANGE_IGNORE;
            s++;
            if (s < e && *s >= '0' && *s <= '9') {
                s = fs_digits(s, e, &last);
                if (last < first)
                    return FS_RANGE_IGNORE; /* invalid int-range (§14.1.1) */
            }
            any_spec = 1;
            if (first < size) {
                if (n == FS_MAX_RANGES)
                    return FS_RANGE_IGNORE;
                out[n].first = first;
                out[n].last = last < 0 || last >= size ? size - 1 : last;
                n++;
            }
        }
        while (s < e && is_ows(*s))
            s++;
        if (s < e && *s != ',')
            return FS_RANGE_IGNORE;
    }
    if (!any_spec)
        return FS_RANGE_IGNORE;
    if (n == 0) {
        /* §14.1.1: with a zero-length representation a suffix-range of
         * non-zero length is the one satisfiable form, yet there is no byte
         * to send; the whole (empty) representation in a 200 answers it. */
        return size == 0 && any_suffix ? FS_RANGE_IGNORE : FS_RANGE_UNSAT;
    }
    /* Coalesce overlapping or touching ranges (§14.2 allows it). */
    int overlap = 0;
    struct fs_range sorted[FS_MAX_RANGES];
    memcpy(sorted, out, n * sizeof(*out));
    qsort(sorted, n, sizeof(*sorted), fs_range_cmp);
    for (size_t i = 1; i < n; i++)
        if (sorted[i].first <= sorted[i - 1].last + 1)
            overlap = 1;
    if (overlap) {
        size_t m = 0;
        for (size_t i = 0; i < n; i++) {
            if (m && sorted[i].first <= out[m - 1].last + 1) {
                if (sorted[i].last > out[m - 1].last)
                    out[m - 1].last = sorted[i].last;
            } else {
                out[m++] = sorted[i];
            }
        }
        n = m;
    }
    *nout = n;
    return FS_RANGE_OK;
}

/* ---- multipart/byteranges (RFC 9110 §14.6) ---------------------------- */

static size_t fs_part_header(const struct tt_fs_stream *s, size_t i, char *out, size_t cap)
{
    int n = snprintf(out, cap, "%s--%s\r\nContent-Type: %s\r\nContent-Range: bytes %lld-%lld/%lld\r\n\r\n",
                     i ? "\r\n" : "", s->boundary, s->ctype, (long long)s->ranges[i].first,
                     (long long)s->ranges[i].last, (long long)s->size);
    return n < 0 || (size_t)n >= cap ? 0 : (size_t)n;
}

static size_t fs_part_trailer(const struct tt_fs_stream *s, char *out, size_t cap)
{
    int n = snprintf(out, cap, "\r\n--%s--\r\n", s->boundary);
    return n < 0 || (size_t)n >= cap ? 0 : (size_t)n;
}

/* ---- streams ---------------------------------------------------------- */

static struct tt_fs_stream *fs_stream_new(enum fs_kind kind)
{
    struct tt_fs_stream *s = tt_mem_calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->kind = kind;
    s->fd = -1;
    s->dirfd = -1;
    tt_buf_init(&s->mem, 0);
    return s;
}

/* zlib's state goes through tt_mem_* like every other allocation, so that
 * tests can make it fail (and count it). */
static voidpf fs_zalloc(voidpf opaque, uInt items, uInt size)
{
    (void)opaque;
    /* Not zeroed, as zlib's own allocator does not: the state is ~128 KiB. */
    if (size && items > SIZE_MAX / size)
        return Z_NULL;
    return tt_mem_alloc((size_t)items * size);
}

static void fs_zfree(voidpf opaque, voidpf p)
{
    (void)opaque;
    tt_mem_free(p);
}

static int fs_gzip_start(struct tt_fs_stream *s)
{
    s->zin = tt_mem_alloc(FS_GZIP_IN);
    if (!s->zin)
        return -1;
    s->z.zalloc = fs_zalloc;
    s->z.zfree = fs_zfree;
    s->z.opaque = Z_NULL;
    /* windowBits + 16 asks zlib for the gzip wrapper (RFC 1952).  A 16 KiB
     * window and memLevel 7 hold the state near 128 KiB a stream (the
     * defaults take twice that) at a small cost in ratio. */
    if (deflateInit2(&s->z, 6, Z_DEFLATED, 14 + 16, 7, Z_DEFAULT_STRATEGY) != Z_OK) {
        tt_mem_free(s->zin);
        s->zin = NULL;
        return -1;
    }
    s->gzip = 1;
    s->zeof = s->size == 0;
    return 0;
}

/* Reads up to n bytes of the source at `off`.  Returns the count or -1. */
static ssize_t fs_src_read(struct tt_fs_stream *s, int64_t off, uint8_t *out, size_t n)
{
    if (s->fd < 0) {
        size_t avail = tt_buf_len(&s->mem) - (size_t)off;
        if (n > avail)
            n = avail;
        memcpy(out, tt_buf_data(&s->mem) + off, n);
        return (ssize_t)n;
    }
    for (;;) {
        ssize_t r = pread(s->fd, out, n, (off_t)off);
        if (r < 0 && errno == EINTR)
            continue;
        return r;
    }
}

static ssize_t fs_read_gzip(struct tt_fs_stream *s, uint8_t *out, size_t cap)
{
    if (s->zdone)
        return 0;
    s->z.next_out = out;
    s->z.avail_out = cap > UINT32_MAX ? UINT32_MAX : (uInt)cap;
    uInt start = s->z.avail_out;
    while (s->z.avail_out > 0) {
        if (s->z.avail_in == 0 && !s->zeof) {
            int64_t left = s->size - s->zpos;
            size_t want = left < FS_GZIP_IN ? (size_t)left : FS_GZIP_IN;
            ssize_t r = fs_src_read(s, s->zpos, s->zin, want);
            if (r <= 0)
                return -1; /* an error, or the file shrank under us */
            s->zpos += r;
            s->z.next_in = s->zin;
            s->z.avail_in = (uInt)r;
            s->zeof = s->zpos == s->size;
        }
        int zr = deflate(&s->z, s->zeof ? Z_FINISH : Z_NO_FLUSH);
        if (zr == Z_STREAM_END) {
            s->zdone = 1;
            break;
        }
        if (zr != Z_OK && zr != Z_BUF_ERROR)
            return -1;
    }
    return (ssize_t)(start - s->z.avail_out);
}

ssize_t tt_fs_read(struct tt_fs_stream *s, uint8_t *out, size_t cap)
{
    size_t done = 0;

    if (!s || s->kind != FS_BODY)
        return -1;
    if (s->gzip)
        return fs_read_gzip(s, out, cap);
    while (done < cap) {
        if (s->part_off < s->part_len) {
            size_t n = s->part_len - s->part_off;
            if (n > cap - done)
                n = cap - done;
            memcpy(out + done, s->part + s->part_off, n);
            s->part_off += n;
            done += n;
            continue;
        }
        if (s->cur < s->nranges && s->pos <= s->ranges[s->cur].last) {
            int64_t left = s->ranges[s->cur].last - s->pos + 1;
            size_t n = cap - done;
            if ((uint64_t)left < n)
                n = (size_t)left;
            ssize_t r = fs_src_read(s, s->pos, out + done, n);
            if (r <= 0) /* an error, or the file shrank: never a short body */
                return done ? (ssize_t)done : -1; /* the next call fails */
            s->pos += r;
            done += (size_t)r;
            continue;
        }
        if (!s->multipart || s->trailer_done)
            break;
        if (s->cur + 1 < s->nranges) {
            s->cur++;
            s->pos = s->ranges[s->cur].first;
            s->part_len = fs_part_header(s, s->cur, s->part, sizeof(s->part));
        } else {
            s->cur = s->nranges;
            s->part_len = fs_part_trailer(s, s->part, sizeof(s->part));
            s->trailer_done = 1;
        }
        s->part_off = 0;
    }
    return (ssize_t)done;
}

int tt_fs_is_upload(const struct tt_fs_stream *s)
{
    return s && s->kind == FS_UPLOAD;
}

void tt_fs_close(struct tt_fs_stream *s)
{
    if (!s)
        return;
    if (s->fd >= 0)
        close(s->fd);
    if (s->kind == FS_UPLOAD && !s->finished && s->dirfd >= 0 && s->tmpname[0])
        unlinkat(s->dirfd, s->tmpname, 0);
    if (s->dirfd >= 0)
        close(s->dirfd);
    if (s->gzip)
        deflateEnd(&s->z);
    tt_mem_free(s->zin);
    tt_buf_free(&s->mem);
    tt_mem_free(s);
}

/* ---- GET and HEAD ----------------------------------------------------- */

/* Adds Vary for a type that has a gzip variant: caches must key on
 * Accept-Encoding for both variants (§12.5.5). */
static void fs_add_vary(struct tt_fs_response *r, int compressible)
{
    if (compressible)
        resp_adds(r, "vary", "accept-encoding");
}

/* Serves the open regular file `fd` (taken over: closed here unless it
 * becomes the stream's). */
static struct tt_fs_stream *fs_serve_file(const struct tt_fs_request *req, int is_head, int fd,
                                          const struct stat *st, const char *ctype,
                                          struct tt_fs_response *resp)
{
    struct fs_validators v;
    struct tt_fs_stream *s = NULL;
    int compressible = tt_mime_compressible(ctype);
    int gzip = compressible && st->st_size > 0 && fs_accepts_gzip(req);
    int64_t size = st->st_size;

    fs_make_validators(st, &v);
    const char *etag = gzip ? v.etag_gz : v.etag;

    /* §13.2.2: If-None-Match, and If-Modified-Since only without it. */
    int inm_present, not_modified = fs_inm_match(req, &v, &inm_present);
    if (!inm_present) {
        int dup;
        const struct tt_header *ims = req_field(req, "if-modified-since", &dup);
        time_t t;
        if (ims && !dup && fs_parse_date(ims->value, ims->value_len, &t) == 0 && v.mtime <= t)
            not_modified = 1;
    }
    if (not_modified) {
        resp_reset(resp, 304);
        resp_adds(resp, "etag", etag);
        resp_adds(resp, "last-modified", v.lastmod);
        fs_add_vary(resp, compressible);
        close(fd);
        return NULL;
    }

    s = fs_stream_new(FS_BODY);
    if (!s) {
        close(fd);
        resp_error(resp, 500);
        return NULL;
    }
    s->fd = fd;
    s->size = size;
    s->ctype = ctype;

    enum fs_range_result rr = FS_RANGE_IGNORE;
    int dup;
    const struct tt_header *range = req_field(req, "range", &dup);
    if (range && !dup && fs_if_range_ok(req, &v))
        rr = fs_parse_range(range->value, range->value_len, size, s->ranges, &s->nranges);

    if (rr == FS_RANGE_UNSAT) {
        resp_error(resp, 416);
        resp_addf(resp, "content-range", "bytes */%lld", (long long)size);
        resp_adds(resp, "accept-ranges", "bytes");
        tt_fs_close(s);
        return NULL;
    }

    if (rr == FS_RANGE_OK) {
        resp_reset(resp, 206);
        if (s->nranges == 1) {
            resp_adds(resp, "content-type", ctype);
            resp_length(resp, s->ranges[0].last - s->ranges[0].first + 1);
            resp_addf(resp, "content-range", "bytes %lld-%lld/%lld", (long long)s->ranges[0].first,
                      (long long)s->ranges[0].last, (long long)size);
        } else {
            uint8_t rnd[12];
            if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
                /* Uniqueness within the body is what matters (the boundary
                 * must not occur in the parts); fall back to the clock. */
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                memcpy(rnd, &ts, sizeof(rnd) < sizeof(ts) ? sizeof(rnd) : sizeof(ts));
            }
            int off = snprintf(s->boundary, sizeof(s->boundary), "tether-");
            for (size_t i = 0; i < sizeof(rnd); i++)
                off += snprintf(s->boundary + off, sizeof(s->boundary) - (size_t)off, "%02x", rnd[i]);
            s->multipart = 1;
            int64_t total = 0;
            char tmp[FS_PART_HDR_MAX];
            for (size_t i = 0; i < s->nranges; i++)
                total += (int64_t)fs_part_header(s, i, tmp, sizeof(tmp)) + s->ranges[i].last -
                         s->ranges[i].first + 1;
            total += (int64_t)fs_part_trailer(s, tmp, sizeof(tmp));
            resp_addf(resp, "content-type", "multipart/byteranges; boundary=%s", s->boundary);
            resp_length(resp, total);
            s->part_len = fs_part_header(s, 0, s->part, sizeof(s->part));
        }
        s->pos = s->ranges[0].first;
    } else {
        resp_reset(resp, 200);
        resp_adds(resp, "content-type", ctype);
        s->nranges = size > 0;
        s->ranges[0].first = 0;
        s->ranges[0].last = size - 1;
        s->pos = 0;
        if (gzip) {
            if (!is_head && fs_gzip_start(s)) {
                tt_fs_close(s);
                resp_error(resp, 500);
                return NULL;
            }
            resp_adds(resp, "content-encoding", "gzip");
        } else {
            resp_length(resp, size);
        }
    }
    resp_adds(resp, "accept-ranges", "bytes");
    resp_adds(resp, "etag", rr == FS_RANGE_OK ? v.etag : etag);
    resp_adds(resp, "last-modified", v.lastmod);
    if (rr != FS_RANGE_OK)
        fs_add_vary(resp, compressible);

    resp->has_body = !is_head && resp->content_length != 0;
    if (!resp->has_body) {
        tt_fs_close(s);
        return NULL;
    }
    return s;
}

static struct tt_fs_stream *fs_serve_listing(const struct tt_fs_config *cfg, size_t root_len,
                                             const struct tt_fs_request *req, int is_head, int dirfd,
                                             const char *dir_real, const struct fs_path *p,
                                             struct tt_fs_response *resp)
{
    struct tt_fs_stream *s = fs_stream_new(FS_BODY);
    char shown[PATH_MAX + 2];

    if (!s) {
        close(dirfd);
        resp_error(resp, 500);
        return NULL;
    }
    /* 10000 entries of even the longest escaped names fit. */
    s->mem.max = 32u << 20;
    snprintf(shown, sizeof(shown), "/%s%s", p->rel, p->rel_len ? "/" : "");
    int rc = tt_fs_listing(&s->mem, dirfd, cfg->root, root_len, dir_real, shown, p->rel_len == 0);
    close(dirfd);
    if (rc) {
        tt_fs_close(s);
        resp_error(resp, errno == EACCES ? 403 : 500);
        return NULL;
    }
    s->size = (int64_t)tt_buf_len(&s->mem);
    s->ctype = "text/html; charset=utf-8";
    s->nranges = 1;
    s->ranges[0].first = 0;
    s->ranges[0].last = s->size - 1;

    resp_reset(resp, 200);
    resp_adds(resp, "content-type", s->ctype);
    /* Listings change with their entries, which a directory's mtime does
     * not follow: no validators, and no Range either. */
    if (fs_accepts_gzip(req)) {
        if (!is_head && fs_gzip_start(s)) {
            tt_fs_close(s);
            resp_error(resp, 500);
            return NULL;
        }
        resp_adds(resp, "content-encoding", "gzip");
    } else {
        resp_length(resp, s->size);
    }
    fs_add_vary(resp, 1);
    resp->has_body = !is_head;
    if (is_head) {
        tt_fs_close(s);
        return NULL;
    }
    return s;
}

/* Joins root and rel into `out`.  Returns 0 or -1 when too long. */
static int fs_join(char *out, size_t cap, const char *root, size_t root_len, const char *rel, size_t rel_len)
{
    if (root_len + 1 + rel_len + 1 > cap)
        return -1;
    memcpy(out, root, root_len);
    size_t n = root_len;
    if (rel_len) {
        if (n == 0 || out[n - 1] != '/')
            out[n++] = '/';
        memcpy(out + n, rel, rel_len);
        n += rel_len;
    }
    if (n == 0)
        out[n++] = '/';
    out[n] = '\0';
    return 0;
}

/* Resolves `full` to a canonical path under the root and opens it.
 * Returns the fd, or -status. */
static int fs_open_under(const char *root, size_t root_len, const char *full, char *real, struct stat *st)
{
    if (!realpath(full, real))
        return -fs_errno_status(errno);
    if (!tt_fs_under_root(root, root_len, real))
        return -403; /* a symlink that leads out of the root */
    /* O_NONBLOCK: opening a FIFO must not hang the loop; it is refused
     * below as not a regular file or directory. */
    int fd = open(real, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0)
        return -fs_errno_status(errno);
    if (fstat(fd, st) != 0) {
        close(fd);
        return -500;
    }
    if (!S_ISREG(st->st_mode) && !S_ISDIR(st->st_mode)) {
        close(fd);
        return -403;
    }
    return fd;
}

int tt_fs_open_root(const char *root)
{
    return open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
}

/* The fast way to a regular file: one openat2() beneath the root fd, where
 * the kernel walks the path and refuses to leave the root (RESOLVE_BENEATH:
 * "..", absolute symlinks and symlinks out all fail with EXDEV) or to follow
 * /proc-style magic links.  Relative symlinks that stay inside are followed,
 * as the realpath() route does.  Returns the fd (a regular file, `st` filled),
 * FS_SLOW when the realpath() route must decide (no openat2, EXDEV: an
 * absolute symlink may still lead inside, EAGAIN: a concurrent rename, a
 * directory: listings and index.html want the canonical path), or -status. */
#define FS_SLOW (-1)
static int fs_open_fast(const struct tt_fs_config *cfg, const struct fs_path *p, struct stat *st)
{
    if (cfg->root_fd <= 0)
        return FS_SLOW;
    struct open_how how;
    memset(&how, 0, sizeof how);
    how.flags = O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY; /* O_NONBLOCK: see fs_open_under */
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
    int fd = (int)syscall(SYS_openat2, cfg->root_fd, p->rel_len ? p->rel : ".", &how, sizeof how);
    if (fd < 0) {
        switch (errno) {
        case ENOENT:
        case ENOTDIR:
        case EACCES:
        case ENAMETOOLONG:
            return -fs_errno_status(errno);
        default:
            return FS_SLOW;
        }
    }
    if (fstat(fd, st) != 0) {
        close(fd);
        return -500;
    }
    if (S_ISREG(st->st_mode))
        return fd;
    close(fd);
    return S_ISDIR(st->st_mode) ? FS_SLOW : -403;
}

static struct tt_fs_stream *fs_get(const struct tt_fs_config *cfg, size_t root_len,
                                   const struct tt_fs_request *req, int is_head, const struct fs_path *p,
                                   struct tt_fs_response *resp)
{
    char full[PATH_MAX], real[PATH_MAX];
    struct stat st;

    int ffd = fs_open_fast(cfg, p, &st);
    if (ffd >= 0) {
        if (p->trailing_slash) {
            close(ffd);
            resp_error(resp, 404);
            return NULL;
        }
        /* The type comes from the name asked for; the realpath() route
         * below names it after a symlink's target. */
        return fs_serve_file(req, is_head, ffd, &st, tt_mime_type(p->rel), resp);
    }
    if (ffd != FS_SLOW) {
        resp_error(resp, -ffd);
        return NULL;
    }
    if (fs_join(full, sizeof(full), cfg->root, root_len, p->rel, p->rel_len)) {
        resp_error(resp, 414);
        return NULL;
    }
    int fd = fs_open_under(cfg->root, root_len, full, real, &st);
    if (fd < 0) {
        resp_error(resp, -fd);
        return NULL;
    }
    if (S_ISREG(st.st_mode)) {
        if (p->trailing_slash) {
            close(fd);
            resp_error(resp, 404);
            return NULL;
        }
        return fs_serve_file(req, is_head, fd, &st, tt_mime_type(real), resp);
    }

    /* A directory. */
    if (!p->trailing_slash && p->rel_len) {
        /* RFC 9110 §15.4.2; relative so that it holds under any prefix p
         * strips (RFC 3986 §5.2 resolves "name/" against ".../name"). */
        tt_buf loc;
        const char *last = p->rel + p->last_off;
        close(fd);
        tt_buf_init(&loc, sizeof(resp->strbuf) / 2);
        int bad = tt_fs_url_encode(&loc, last, strlen(last)) || tt_buf_append(&loc, "/", 1);
        if (!bad && p->query) {
            int clean = 1;
            for (size_t i = 0; i < p->query_len; i++)
                if (p->query[i] <= 0x20 || p->query[i] >= 0x7f)
                    clean = 0;
            if (clean)
                bad = tt_buf_append(&loc, "?", 1) || tt_buf_append(&loc, p->query, p->query_len);
        }
        resp_error(resp, bad ? 500 : 301);
        if (!bad)
            resp_add(resp, "location", (const char *)tt_buf_data(&loc), tt_buf_len(&loc));
        tt_buf_free(&loc);
        return NULL;
    }

    char idx[PATH_MAX], idx_real[PATH_MAX];
    struct stat ist;
    if (snprintf(idx, sizeof(idx), "%s/index.html", strcmp(real, "/") ? real : "") < (int)sizeof(idx)) {
        int ifd = fs_open_under(cfg->root, root_len, idx, idx_real, &ist);
        if (ifd >= 0) {
            if (S_ISREG(ist.st_mode)) {
                close(fd);
                return fs_serve_file(req, is_head, ifd, &ist, "text/html; charset=utf-8", resp);
            }
            close(ifd);
        }
    }
    return fs_serve_listing(cfg, root_len, req, is_head, fd, real, p, resp);
}

/* ---- PUT -------------------------------------------------------------- */

static struct tt_fs_stream *fs_put(const struct tt_fs_config *cfg, size_t root_len, const struct fs_path *p,
                                   struct tt_fs_response *resp)
{
    char full[PATH_MAX], real[PATH_MAX];
    struct stat st;

    if (p->rel_len == 0 || p->trailing_slash) {
        resp_error(resp, 405); /* a directory is not something PUT replaces */
        resp_allow(resp, cfg);
        return NULL;
    }
    const char *name = p->rel + p->last_off;
    size_t parent_len = p->last_off ? p->last_off - 1 : 0;
    if (fs_join(full, sizeof(full), cfg->root, root_len, p->rel, parent_len) || strlen(name) > NAME_MAX) {
        resp_error(resp, 414);
        return NULL;
    }
    /* §9.3.4: a target whose parent is missing is a conflict with the
     * state of the resource. */
    if (!realpath(full, real)) {
        resp_error(resp, errno == EACCES ? 403 : 409);
        return NULL;
    }
    if (!tt_fs_under_root(cfg->root, root_len, real)) {
        resp_error(resp, 403);
        return NULL;
    }
    int dirfd = open(real, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0) {
        resp_error(resp, errno == EACCES ? 403 : 409);
        return NULL;
    }
    if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISREG(st.st_mode)) {
        /* A directory, symlink or special file is not replaced by a
         * rename: refuse rather than surprise. */
        close(dirfd);
        resp_error(resp, 409);
        return NULL;
    }

    struct tt_fs_stream *s = fs_stream_new(FS_UPLOAD);
    if (!s) {
        close(dirfd);
        resp_error(resp, 500);
        return NULL;
    }
    s->dirfd = dirfd;
    memcpy(s->name, name, strlen(name) + 1);
    for (int tries = 0; tries < 16 && s->fd < 0; tries++) {
        uint8_t rnd[6];
        if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
            break;
        snprintf(s->tmpname, sizeof(s->tmpname), UPLOAD_PREFIX "%02x%02x%02x%02x%02x%02x", rnd[0], rnd[1],
                 rnd[2], rnd[3], rnd[4], rnd[5]);
        s->fd = openat(dirfd, s->tmpname, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (s->fd < 0 && errno != EEXIST)
            break;
    }
    if (s->fd < 0) {
        int e = errno;
        s->tmpname[0] = '\0';
        tt_fs_close(s);
        resp_error(resp, e == EACCES || e == EROFS ? 403 : 500);
        return NULL;
    }
    /* The answer comes from tt_fs_finish_upload. */
    resp_reset(resp, 0);
    return s;
}

int tt_fs_write(struct tt_fs_stream *s, const uint8_t *data, size_t len)
{
    if (!s || s->kind != FS_UPLOAD || s->fd < 0 || s->finished)
        return -1;
    while (len) {
        ssize_t w = write(s->fd, data, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        data += w;
        len -= (size_t)w;
    }
    return 0;
}

int tt_fs_finish_upload(struct tt_fs_stream *s, struct tt_fs_response *resp)
{
    struct stat st;

    if (!s || s->kind != FS_UPLOAD || s->fd < 0 || s->finished) {
        resp_error(resp, 500);
        return -1;
    }
    /* Durable before visible: a crash after the rename must not leave an
     * empty or partial file under the final name. */
    if (fsync(s->fd) != 0) {
        resp_error(resp, 500);
        return -1;
    }
    close(s->fd);
    s->fd = -1;
    int existed = fstatat(s->dirfd, s->name, &st, AT_SYMLINK_NOFOLLOW) == 0;
    if (existed && !S_ISREG(st.st_mode)) {
        resp_error(resp, 409);
        return -1;
    }
    if (renameat(s->dirfd, s->tmpname, s->dirfd, s->name) != 0) {
        resp_error(resp, errno == EISDIR ? 409 : 500);
        return -1;
    }
    s->finished = 1;
    fsync(s->dirfd);
    if (existed) {
        resp_reset(resp, 204);
        return 0;
    }
    resp_error(resp, 201);
    tt_buf loc;
    tt_buf_init(&loc, sizeof(resp->strbuf) / 2);
    if (tt_fs_url_encode(&loc, s->name, strlen(s->name)) == 0)
        resp_add(resp, "location", (const char *)tt_buf_data(&loc), tt_buf_len(&loc));
    tt_buf_free(&loc);
    return 0;
}

/* ---- entry ------------------------------------------------------------ */

struct tt_fs_stream *tt_fs_open(const struct tt_fs_config *cfg, const struct tt_fs_request *req,
                                struct tt_fs_response *resp)
{
    struct fs_path p;
    size_t root_len = strlen(cfg->root);
    int is_get = iov_eq(req->method, "GET"), is_head = iov_eq(req->method, "HEAD");
    int is_put = cfg->allow_put && iov_eq(req->method, "PUT");

    while (root_len > 1 && cfg->root[root_len - 1] == '/')
        root_len--;
    resp_reset(resp, 500);
    if (iov_eq(req->method, "OPTIONS")) {
        resp_reset(resp, 204);
        resp_allow(resp, cfg);
        return NULL;
    }
    if (iov_eq(req->method, "CONNECT")) {
        /* A WebSocket (extended CONNECT) or a TCP tunnel: files are
         * neither; c --upstream and --tcp carry those. */
        resp_error(resp, 501);
        return NULL;
    }
    if (!is_get && !is_head && !is_put) {
        /* RFC 9110 §15.5.6: 405 lists what is allowed. */
        resp_error(resp, 405);
        resp_allow(resp, cfg);
        return NULL;
    }
    int status = fs_parse_path(req->path, &p);
    if (status) {
        resp_error(resp, status);
        return NULL;
    }
    if (is_put)
        return fs_put(cfg, root_len, &p, resp);
    return fs_get(cfg, root_len, req, is_head, &p, resp);
}
