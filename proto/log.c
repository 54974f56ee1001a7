/*
 * Logging: one line per event on stderr, written with a single write(2) so
 * that lines from several processes sharing a terminal or a file do not
 * interleave mid-line.
 *
 *   2026-11-21T20:52:46.123Z p info tunnel up name=media peer=127.0.0.1:5555
 *
 * The program name and level are process-wide settings made once at start
 * (the only mutable globals of proto/, set before any loop runs), and so is
 * the buffered mode the mains turn on before their loop runs: info and debug
 * lines (p writes one access line per request) then gather in a buffer that
 * the loop writes once an iteration, before it sleeps (tt_log_flush), and at
 * exit.  Lines stay whole; warnings and errors flush it and go out at once,
 * so they are never behind an exit or a crash.
 */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX 2048

static char log_prog[32] = "tether";
static enum tt_log_level log_level = TT_LOG_INFO;

static const char *const log_words[] = {"error", "warn", "info", "debug"};

#define LOG_BUF_MAX (64 * 1024)
static char log_buf[LOG_BUF_MAX];
static size_t log_buf_len;
static int log_buffered, log_atexit_done;
static int log_json; /* --log-format json */
/* "YYYY-MM-DDTHH:MM:SS." of log_sec: formatted once a second, not per line. */
static time_t log_sec = (time_t)-1;
static char log_stamp[32];
static size_t log_stamp_len;

static void log_write_all(const char *p, size_t len)
{
    while (len) {
        ssize_t w = write(STDERR_FILENO, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return; /* nowhere to report it */
        p += w;
        len -= (size_t)w;
    }
}

void tt_log_flush(void)
{
    if (!log_buf_len)
        return;
    int saved_errno = errno;
    log_write_all(log_buf, log_buf_len);
    log_buf_len = 0;
    errno = saved_errno;
}

static void log_flush_at_exit(void) { tt_log_flush(); }

void tt_log_set_buffered(int on)
{
    if (on && !log_atexit_done)
        log_atexit_done = atexit(log_flush_at_exit) == 0;
    if (!on || !log_atexit_done)
        tt_log_flush();
    log_buffered = on && log_atexit_done;
}

void tt_log_init(const char *prog, enum tt_log_level level)
{
    if (prog) {
        const char *slash = strrchr(prog, '/');
        snprintf(log_prog, sizeof(log_prog), "%s", slash ? slash + 1 : prog);
    }
    log_level = level;
}

int tt_log_parse_level(const char *s)
{
    if (!s)
        return -1;
    for (int i = 0; i < (int)(sizeof(log_words) / sizeof(log_words[0])); i++)
        if (strcasecmp(s, log_words[i]) == 0)
            return i;
    if (strcasecmp(s, "warning") == 0)
        return TT_LOG_WARN;
    return -1;
}

int tt_log_enabled(enum tt_log_level level) { return level <= log_level; }

void tt_log_set_json(int on) { log_json = on; }

/* Appends s[0..n) as the inside of a JSON string: quote, backslash and
 * every byte outside printable ASCII escaped, so the line is valid JSON
 * whatever a peer put in the message. */
static size_t log_json_put(char *out, size_t at, size_t cap, const char *s, size_t n)
{
    for (size_t i = 0; i < n && at + 7 < cap; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"' || ch == '\\') {
            out[at++] = '\\';
            out[at++] = (char)ch;
        } else if (ch < 0x20 || ch >= 0x7f) {
            at += (size_t)snprintf(out + at, cap - at, "\\u%04x", ch);
        } else {
            out[at++] = (char)ch;
        }
    }
    return at;
}

/* The JSON form of one line: ts, prog, level, event (the words before the
 * first key=value), each key=value of the message as a field, and the
 * whole message as msg. */
static size_t log_json_line(char *out, size_t cap, const char *stamp, size_t stamp_len, int ms,
                            int lvl, const char *msg, size_t mlen)
{
    size_t at = (size_t)snprintf(out, cap, "{\"ts\":\"%.*s%03dZ\",\"prog\":\"%s\",\"level\":\"%s\"",
                                 (int)stamp_len, stamp, ms, log_prog, log_words[lvl]);
    size_t i = 0, event_end = 0;
    int fields = 0;
    while (i < mlen && at + 64 < cap) {
        size_t st = i;
        while (i < mlen && msg[i] != ' ')
            i++;
        size_t k = st;
        while (k < i && ((msg[k] >= 'a' && msg[k] <= 'z') || msg[k] == '_' ||
                         (k > st && ((msg[k] >= '0' && msg[k] <= '9') || msg[k] == '-'))))
            k++;
        if (k > st && k < i && msg[k] == '=') {
            if (!fields++) {
                at += (size_t)snprintf(out + at, cap - at, ",\"event\":\"");
                at = log_json_put(out, at, cap, msg, event_end);
                out[at++] = '"';
            }
            at += (size_t)snprintf(out + at, cap - at, ",\"%.*s\":\"", (int)(k - st), msg + st);
            at = log_json_put(out, at, cap, msg + k + 1, i - k - 1);
            out[at++] = '"';
        } else if (!fields) {
            event_end = i;
        }
        while (i < mlen && msg[i] == ' ')
            i++;
    }
    at += (size_t)snprintf(out + at, cap - at, ",\"msg\":\"");
    at = log_json_put(out, at, cap, msg, mlen);
    if (at + 3 > cap)
        at = cap - 3;
    out[at++] = '"';
    out[at++] = '}';
    return at;
}

void tt_log(enum tt_log_level level, const char *fmt, ...)
{
    if (!tt_log_enabled(level))
        return;
    int saved_errno = errno;
    char line[LOG_LINE_MAX];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (ts.tv_sec != log_sec) {
        struct tm tm;
        gmtime_r(&ts.tv_sec, &tm);
        int k = snprintf(log_stamp, sizeof(log_stamp), "%04d-%02d-%02dT%02d:%02d:%02d.", tm.tm_year + 1900,
                         tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
        log_stamp_len = k > 0 && (size_t)k < sizeof(log_stamp) ? (size_t)k : 0;
        log_sec = ts.tv_sec;
    }
    int lvl = (int)level;
    if (lvl < 0 || lvl > TT_LOG_DEBUG)
        lvl = TT_LOG_DEBUG;
    int ms = (int)(ts.tv_nsec / 1000000L);
    int n = snprintf(line, sizeof(line), "%.*s%03dZ %s %s ", (int)log_stamp_len, log_stamp, ms, log_prog,
                     log_words[lvl]);
    if (n < 0 || (size_t)n >= sizeof(line))
        n = 0;
    size_t head = (size_t)n;

    va_list ap;
    va_start(ap, fmt);
    errno = saved_errno; /* so that %m names the caller's error */
    int m = vsnprintf(line + head, sizeof(line) - head - 1, fmt, ap);
    va_end(ap);
    size_t len = head;
    if (m > 0)
        len += (size_t)m < sizeof(line) - head - 1 ? (size_t)m : sizeof(line) - head - 2;
    /* One event, one line: control characters in the message (a peer's
     * header value, a file name) become '?' so nobody can forge lines. */
    for (size_t i = head; i < len; i++) {
        unsigned char ch = (unsigned char)line[i];
        if (ch < 0x20 || ch == 0x7f)
            line[i] = '?';
    }
    char json[LOG_LINE_MAX * 3];
    char *out = line;
    if (log_json) {
        len = log_json_line(json, sizeof(json) - 1, log_stamp, log_stamp_len, ms, lvl, line + head,
                            len - head);
        out = json;
    }
    out[len++] = '\n';
    if (log_buffered && level >= TT_LOG_INFO) {
        if (LOG_BUF_MAX - log_buf_len < len)
            tt_log_flush();
        memcpy(log_buf + log_buf_len, out, len);
        log_buf_len += len;
    } else {
        tt_log_flush(); /* keep the order of lines */
        log_write_all(out, len);
    }
    errno = saved_errno;
}

int tt_log_limit_pass(struct tt_log_limit *l, uint64_t now_ms, uint64_t window_ms,
                      uint32_t burst, uint64_t *held)
{
    if (!l->window_ms || now_ms - l->window_ms >= window_ms) {
        l->window_ms = now_ms ? now_ms : 1;
        l->lines = 0;
    }
    if (l->lines >= burst) {
        l->held++;
        return 0;
    }
    l->lines++;
    *held = l->held;
    l->held = 0;
    return 1;
}
