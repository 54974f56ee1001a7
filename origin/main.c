/*
 * bin/c, the origin connector: holds --connections tunnels to p and serves
 * --root through them.  See origin/origin.h for the parts.
 *
 * Exit codes: 0 after a drain (SIGTERM/SIGINT), 1 when the runtime fails
 * (no loop, no TLS context), 2 for a bad command line.
 */
#include "origin/origin.h"

#include "codec/buf.h"
#include "proto/log.h"
#include "proto/loop.h"

#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAIN_GRACE_MS 10000u
/* The drain's last resort, should a session outlive its own grace. */
#define MAIN_HARD_STOP_MS (MAIN_GRACE_MS + 2000u)

struct main_ctx {
    struct tt_origin o;
    struct tt_files *files; /* --root: the file handler's state */
    struct tt_dialer **dialers;
    unsigned ndialers;
    struct tt_timer hard_stop;
    int signals;
};

static void main_all_stopped(struct tt_origin *o)
{
    tt_log_info("all tunnels closed: exiting");
    tt_loop_stop(o->loop);
}

static void main_hard_stop(struct tt_loop *loop, struct tt_timer *t)
{
    (void)t;
    tt_log_warn("drain took too long: exiting");
    tt_loop_stop(loop);
}

static void main_stop_defer(struct tt_loop *loop, struct tt_defer *d)
{
    (void)d;
    tt_loop_stop(loop);
}

static void main_on_signal(struct tt_loop *loop, int signo, void *data)
{
    struct main_ctx *m = data;
    if (m->signals++ > 0) {
        /* A second signal: the person wants out now. */
        tt_log_warn("second %s: exiting without waiting", signo == SIGINT ? "SIGINT" : "SIGTERM");
        tt_loop_stop(loop);
        return;
    }
    tt_log_info("%s: draining (in-flight requests get %u s)", signo == SIGINT ? "SIGINT" : "SIGTERM",
                MAIN_GRACE_MS / 1000);
    m->o.draining = 1;
    tt_timer_start(loop, &m->hard_stop, MAIN_HARD_STOP_MS);
    if (m->o.live == 0) {
        tt_loop_stop(loop);
        return;
    }
    for (unsigned i = 0; i < m->ndialers; i++)
        tt_dialer_drain(m->dialers[i], MAIN_GRACE_MS);
}

int main(int argc, char **argv)
{
    struct tt_origin_opts opts;
    char err[512];
    int rc = tt_origin_parse_args(argc, argv, getenv("TETHER_TOKEN"), &opts, err, sizeof err);
    if (rc == TT_ORIGIN_HELP) {
        fputs(tt_origin_usage(), stdout);
        return 0;
    }
    if (rc == TT_ORIGIN_VERSION) {
        printf("tether-c %s\n", TT_VERSION);
        return 0;
    }
    if (rc != TT_ORIGIN_RUN) {
        fprintf(stderr, "c: %s\n", err);
        return 2;
    }

    tt_log_init("c", (enum tt_log_level)opts.log_level);
    /* The codec frees its output buffer whenever it drains (idle tunnels
     * hold none) and a busy tunnel allocates it again at once: keep blocks
     * of that size (1 MiB and up) in the heap rather than mmap'ing them
     * fresh, which costs a page fault per 4 KiB on every refill. */
    mallopt(M_MMAP_THRESHOLD, 16 << 20);
    mallopt(M_TRIM_THRESHOLD, 64 << 20);
    /* A peer that vanishes mid-write must be an error code, not a death. */
    signal(SIGPIPE, SIG_IGN);

    SSL_CTX *ctx = tt_tls_client_ctx_new(opts.verify, opts.ca_file,
                                         opts.verify == TT_TLS_VERIFY_PIN ? opts.pin : NULL, err,
                                         sizeof err);
    if (!ctx) {
        fprintf(stderr, "c: %s\n", err);
        tt_origin_opts_free(&opts);
        return opts.verify == TT_TLS_VERIFY_CA ? 2 : 1;
    }
    struct tt_loop *loop = tt_loop_new();
    if (!loop) {
        fprintf(stderr, "c: cannot make the event loop\n");
        SSL_CTX_free(ctx);
        tt_origin_opts_free(&opts);
        return 1;
    }

    struct main_ctx m;
    memset(&m, 0, sizeof m);
    m.o.loop = loop;
    m.o.opts = &opts;
    m.o.ssl_ctx = ctx;
    m.o.fs.root = opts.root;
    m.o.fs.root_fd = tt_fs_open_root(opts.root); /* -1: realpath() resolution, slower but the same */
    m.o.fs.allow_put = opts.allow_put;
    tt_origin_session_config(&opts, &m.o.scfg);
    if (opts.has_upstream) {
        m.o.upstream = tt_upstream_new(loop, &opts.upstream_url, &opts.upstream);
        m.o.handler = &tt_upstream_handler;
        m.o.hctx = m.o.upstream;
    } else {
        m.files = tt_files_new(&m.o.fs);
        m.o.handler = &tt_files_handler;
        m.o.hctx = m.files;
    }
    if (!m.o.hctx) {
        fprintf(stderr, "c: out of memory\n");
        return 1;
    }
    m.o.on_all_stopped = main_all_stopped;
    tt_timer_init(&m.hard_stop, main_hard_stop, &m);

    if (tt_loop_on_signal(loop, SIGTERM, main_on_signal, &m) ||
        tt_loop_on_signal(loop, SIGINT, main_on_signal, &m)) {
        fprintf(stderr, "c: cannot watch signals\n");
        return 1;
    }

    const char *trust = opts.verify == TT_TLS_VERIFY_PIN    ? "pinned certificate fingerprint"
                        : opts.verify == TT_TLS_VERIFY_CA   ? "CA file"
                        : opts.verify == TT_TLS_VERIFY_NONE ? "NOTHING (--insecure)"
                                                            : "system trust store";
    char what[4400];
    if (opts.has_upstream)
        snprintf(what, sizeof what, "the app at %s://%s", opts.upstream_url.h2c ? "h2c" : "http",
                 opts.upstream_url.hostport);
    else
        snprintf(what, sizeof what, "%s%s", opts.root, opts.allow_put ? " (PUT allowed)" : "");
    tt_log_info("tether-c %s: serving %s as %s through %s, %u tunnel%s, trust: %s", TT_VERSION,
                what, opts.name, opts.proxy,
                opts.connections, opts.connections == 1 ? "" : "s", trust);
    if (opts.verify == TT_TLS_VERIFY_NONE)
        tt_log_warn("WARNING: --insecure: the proxy's certificate is NOT verified; anyone on the "
                    "path can read this tunnel and impersonate the proxy. Use --fingerprint.");

    m.dialers = tt_mem_calloc(opts.connections, sizeof *m.dialers);
    if (!m.dialers) {
        fprintf(stderr, "c: out of memory\n");
        return 1;
    }
    for (unsigned i = 0; i < opts.connections; i++) {
        m.dialers[i] = tt_dialer_new(&m.o, i + 1);
        if (!m.dialers[i]) {
            fprintf(stderr, "c: out of memory\n");
            return 1;
        }
        m.ndialers++;
    }

    tt_log_set_buffered(1); /* access lines: one write a loop iteration */
    rc = tt_loop_run(loop);
    /* The app's h2c connections close on the loop: queued behind their
     * closes, a stop gives the loop one more turn to run them, so that
     * nothing of theirs is left at exit. */
    if (rc == 0 && tt_upstream_close_sessions(m.o.upstream) > 0) {
        struct tt_defer stop;
        tt_defer_init(&stop, main_stop_defer, NULL);
        tt_defer_queue(loop, &stop);
        rc = tt_loop_run(loop);
    }

    for (unsigned i = 0; i < m.ndialers; i++)
        tt_dialer_free(m.dialers[i]);
    tt_mem_free(m.dialers);
    tt_upstream_free(m.o.upstream);
    tt_files_free(m.files);
    tt_loop_free(loop);
    SSL_CTX_free(ctx);
    tt_origin_opts_free(&opts);
    return rc == 0 ? 0 : 1;
}
