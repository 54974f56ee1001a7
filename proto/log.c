/*
 * Logging: one line per event on stderr, written with a single write(2) so
 * that lines from several processes sharing a terminal or a file do not
 * interleave mid-line.
 *
 *   2026-11-21T20:52:46.123Z p info tunnel up name=media peer=127.0.0.1:5555
 *
 * The program name and level are process-wide settings made once at start
 * (the only mutable globals of proto/, set before any loop runs).
 */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX 2048

static char log_prog[32] = "tether";
static enum tt_log_level log_level = TT_LOG_INFO;

static const char *const log_words[] = {"error", "warn", "info", "debug"};

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

void tt_log(enum tt_log_level level, const char *fmt, ...)
{
    if (!tt_log_enabled(level))
        return;
    int saved_errno = errno;
    char line[LOG_LINE_MAX];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int lvl = (int)level;
    if (lvl < 0 || lvl > TT_LOG_DEBUG)
        lvl = TT_LOG_DEBUG;
    int n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s %s ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, ts.tv_nsec / 1000000L, log_prog, log_words[lvl]);
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
    line[len++] = '\n';
    ssize_t w;
    do {
        w = write(STDERR_FILENO, line, len);
    } while (w < 0 && errno == EINTR);
    errno = saved_errno;
}
