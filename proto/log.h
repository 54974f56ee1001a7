/*
 * Logging: one line per event on stderr,
 *   2026-11-21T20:52:46.123Z p info tunnel up name=media peer=127.0.0.1:5555
 * The level and program name are process-wide settings made once at start.
 * Never pass a token or other secret to these functions.
 */
#ifndef TT_LOG_H
#define TT_LOG_H

#include <stdint.h>

enum tt_log_level {
    TT_LOG_ERROR = 0,
    TT_LOG_WARN = 1,
    TT_LOG_INFO = 2,
    TT_LOG_DEBUG = 3,
};

void tt_log_init(const char *prog, enum tt_log_level level);
/* Parses "error", "warn", "info", "debug"; returns the level or -1. */
int tt_log_parse_level(const char *s);
int tt_log_enabled(enum tt_log_level level);
void tt_log(enum tt_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Buffered mode (off by default): info and debug lines wait in a buffer
 * until tt_log_flush(), which the loop calls once an iteration before it
 * sleeps, or until exit; warn and error lines flush it and go out at once. */
void tt_log_set_buffered(int on);
/* One JSON object per line instead of text (--log-format json). */
void tt_log_set_json(int on);
void tt_log_flush(void);

/* A rate limit for a kind of line that a peer can cause at will (refused
 * connections, failed accepts): at most `burst` lines in each `window_ms`;
 * the first line of a window says how many were held back before it.  Zero
 * it to start. */
struct tt_log_limit {
    uint64_t window_ms; /* start of the current window */
    uint32_t lines;     /* written in it */
    uint64_t held;
};
/* Returns 1 when a line may go out now (then *held is how many were not
 * written since the last one), or 0 (counted). */
int tt_log_limit_pass(struct tt_log_limit *l, uint64_t now_ms, uint64_t window_ms,
                      uint32_t burst, uint64_t *held);

#define tt_log_error(...) tt_log(TT_LOG_ERROR, __VA_ARGS__)
#define tt_log_warn(...) tt_log(TT_LOG_WARN, __VA_ARGS__)
#define tt_log_info(...) tt_log(TT_LOG_INFO, __VA_ARGS__)
#define tt_log_debug(...)                                                      \
    do {                                                                       \
        if (tt_log_enabled(TT_LOG_DEBUG))                                      \
            tt_log(TT_LOG_DEBUG, __VA_ARGS__);                                 \
    } while (0)

#endif
