/*
 * Unit tests of bin/c's pure parts: the command line (what a person typing
 * it sees: accepted values, defaults, one-line reasons) and the reconnect
 * backoff (bounds, growth, cap, reset), with an injected random source.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "origin/origin.h"
#include "proto/log.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmpdir[PATH_MAX];
static char realtmp[PATH_MAX];

static int setup_dir(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/tt-origin-test-XXXXXX");
    if (!mkdtemp(tmpdir))
        return -1;
    if (!realpath(tmpdir, realtmp))
        return -1;
    return 0;
}

static int teardown_dir(void **state)
{
    (void)state;
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

/* Parses a NULL-terminated list of arguments (argv[0] added). */
static int parse(struct tt_origin_opts *o, char *err, size_t errlen, const char *env, ...)
{
    char *argv[64];
    int argc = 0;
    argv[argc++] = "c";
    va_list ap;
    va_start(ap, env);
    const char *a;
    while ((a = va_arg(ap, const char *)) != NULL && argc < 63)
        argv[argc++] = (char *)a;
    va_end(ap);
    argv[argc] = NULL;
    err[0] = 0;
    return tt_origin_parse_args(argc, argv, env, o, err, errlen);
}

static void test_defaults(void **state)
{
    (void)state;
    struct tt_origin_opts o;
    char err[256];
    int rc = parse(&o, err, sizeof err, NULL, "--proxy", "127.0.0.1:7443", "--token", "s3cret",
                   "--root", tmpdir, NULL);
    assert_int_equal(rc, TT_ORIGIN_RUN);
    assert_string_equal(o.proxy, "127.0.0.1:7443");
    assert_string_equal(o.proxy_host, "127.0.0.1");
    assert_string_equal(o.proxy_port, "7443");
    assert_string_equal(o.name, "default");
    assert_string_equal(o.token, "s3cret");
    assert_int_equal(o.verify, TT_TLS_VERIFY_SYSTEM);
    assert_string_equal(o.root, realtmp);
    assert_int_equal(o.allow_put, 0);
    assert_int_equal(o.connections, 1);
    assert_int_equal(o.log_level, TT_LOG_INFO);
    assert_int_equal(o.ping_interval_ms, 15000);
    assert_int_equal(o.ping_timeout_ms, 10000);
    assert_int_equal(o.auth_backoff_ms, 300000);
    tt_origin_opts_free(&o);
    assert_null(o.token);
}

/* --upstream-timeout's default hangs on the scheme: an HTTP/1.1 app has 60 s
 * to begin its answer, an h2c (gRPC) app no limit -- its calls' deadlines
 * govern; the app is never pinged unless asked. */
static void test_local_listen(void **state)
{
    (void)state;
    struct tt_origin_opts o;
    char err[256];
    /* Calling out only: no --root or --upstream, no tunnel. */
    assert_int_equal(parse(&o, err, sizeof err, NULL, "--proxy", "h:1", "--token", "t",
                           "--local-listen", "127.0.0.1:9000", "--local-to", "svc", NULL),
                     TT_ORIGIN_RUN);
    assert_string_equal(o.local_listen, "127.0.0.1:9000");
    assert_string_equal(o.local_to, "svc");
    assert_int_equal(o.connections, 0);
    tt_origin_opts_free(&o);
    /* Both ways at once keeps its tunnels. */
    assert_int_equal(parse(&o, err, sizeof err, NULL, "--proxy", "h:1", "--token", "t",
                           "--local-listen", ":9000", "--upstream", "h2c://127.0.0.1:1", NULL),
                     TT_ORIGIN_RUN);
    assert_int_equal(o.connections, 1);
    tt_origin_opts_free(&o);
    assert_int_equal(parse(&o, err, sizeof err, NULL, "--proxy", "h:1", "--token", "t",
                           "--root", "/", "--local-to", "svc", NULL),
                     TT_ORIGIN_BAD);
    assert_non_null(strstr(err, "--local-to goes with --local-listen"));
    assert_int_equal(parse(&o, err, sizeof err, NULL, "--proxy", "h:1", "--token", "t",
                           "--local-listen", ":1", "--local-to", "a.b", NULL),
                     TT_ORIGIN_BAD);
    assert_non_null(strstr(err, "--local-to 'a.b'"));
    assert_int_equal(parse(&o, err, sizeof err, NULL, "--proxy", "h:1", "--token", "t",
                           "--local-tcp", "127.0.0.1:2222=ssh", "--local-tcp", ":5432=db", NULL),
                     TT_ORIGIN_RUN);
    assert_int_equal(o.n_local_tcp, 2);
    assert_string_equal(o.local_tcp[0].addr, "127.0.0.1:2222");
    assert_string_equal(o.local_tcp[0].name, "ssh");
    assert_string_equal(o.local_tcp[1].name, "db");
    assert_int_equal(o.connections, 0);
    tt_origin_opts_free(&o);
    assert_int_equal(parse(&o, err, sizeof err, NULL, "--proxy", "h:1", "--token", "t",
                           "--local-tcp", "127.0.0.1:2222", NULL),
                     TT_ORIGIN_BAD);
    assert_non_null(strstr(err, "want ADDR=NAME"));
    assert_int_equal(parse(&o, err, sizeof err, NULL, "--proxy", "h:1", "--token", "t", NULL),
                     TT_ORIGIN_BAD);
    assert_non_null(strstr(err, "unless c only calls out"));
}

/* --tcp: one target, a host name, IPv4 or [v6]; with --local-listen too. */
static void test_tcp(void **state)
{
    (void)state;
    struct tt_origin_opts o;
    char err[256];
    assert_int_equal(parse(&o, err, sizeof err, NULL, "--proxy", "h:1", "--token", "t", "--tcp",
                           "127.0.0.1:22", NULL),
                     TT_ORIGIN_RUN);
    assert_true(o.has_tcp);
    assert_false(o.has_upstream);
    assert_string_equal(o.root, "");
    assert_string_equal(o.tcp, "127.0.0.1:22");
    assert_string_equal(o.tcp_host, "127.0.0.1");
    assert_string_equal(o.tcp_port, "22");
    assert_int_equal(o.connections, 1);
    tt_origin_opts_free(&o);
    assert_int_equal(parse(&o, err, sizeof err, NULL, "--proxy", "h:1", "--token", "t",
                           "--tcp=[::1]:5432", "--local-listen", "127.0.0.1:9000", NULL),
                     TT_ORIGIN_RUN);
    assert_string_equal(o.tcp_host, "::1");
    assert_string_equal(o.tcp_port, "5432");
    assert_string_equal(o.local_listen, "127.0.0.1:9000");
    assert_int_equal(o.connections, 1); /* serves and calls out */
    tt_origin_opts_free(&o);
    assert_int_equal(parse(&o, err, sizeof err, NULL, "--proxy", "h:1", "--token", "t", "--tcp",
                           "db.internal:5432", NULL),
                     TT_ORIGIN_RUN);
    assert_string_equal(o.tcp_host, "db.internal");
    tt_origin_opts_free(&o);
}

static void test_upstream_defaults(void **state)
{
    (void)state;
    struct tt_origin_opts o;
    char err[256];
    assert_int_equal(parse(&o, err, sizeof err, NULL, "--proxy", "h:1", "--token", "t",
                           "--upstream", "http://127.0.0.1:8000", NULL),
                     TT_ORIGIN_RUN);
    assert_int_equal(o.upstream.head_timeout_ms, 60000);
    assert_int_equal(o.upstream.ping_interval_ms, 0);
    tt_origin_opts_free(&o);
    assert_int_equal(parse(&o, err, sizeof err, NULL, "--proxy", "h:1", "--token", "t",
                           "--upstream", "h2c://127.0.0.1:50051", NULL),
                     TT_ORIGIN_RUN);
    assert_true(o.upstream_url.h2c);
    assert_int_equal(o.upstream.head_timeout_ms, 0);
    assert_int_equal(o.upstream.ping_interval_ms, 0);
    tt_origin_opts_free(&o);
    /* Set, it holds for both kinds; 0 is no limit for HTTP/1.1 too. */
    assert_int_equal(parse(&o, err, sizeof err, NULL, "--proxy", "h:1", "--token", "t",
                           "--upstream-timeout", "2.5", "--upstream", "h2c://a:1",
                           "--upstream-ping=600", "--ping-timeout", "3", NULL),
                     TT_ORIGIN_RUN);
    assert_int_equal(o.upstream.head_timeout_ms, 2500);
    assert_int_equal(o.upstream.ping_interval_ms, 600000);
    assert_int_equal(o.upstream.ping_timeout_ms, 3000);
    tt_origin_opts_free(&o);
    assert_int_equal(parse(&o, err, sizeof err, NULL, "--proxy", "h:1", "--token", "t",
                           "--upstream", "http://a:1", "--upstream-timeout=0", NULL),
                     TT_ORIGIN_RUN);
    assert_int_equal(o.upstream.head_timeout_ms, 0);
    tt_origin_opts_free(&o);
}

static void test_every_flag(void **state)
{
    (void)state;
    struct tt_origin_opts o;
    char err[256];
    char rootflag[PATH_MAX + 16];
    snprintf(rootflag, sizeof rootflag, "--root=%s/.", tmpdir);
    int rc = parse(&o, err, sizeof err, NULL, "--proxy=[::1]:8443", "--name", "media",
                   "--token=abc", rootflag, "--allow-put", "--connections", "4",
                   "--log-level=debug", "--ping-interval", "0.5", "--ping-timeout", "2",
                   "--auth-backoff", "0", "--insecure", NULL);
    assert_int_equal(rc, TT_ORIGIN_RUN);
    assert_string_equal(o.proxy_host, "::1");
    assert_string_equal(o.proxy_port, "8443");
    assert_string_equal(o.name, "media");
    assert_string_equal(o.root, realtmp); /* realpath'd: no "/." */
    assert_int_equal(o.allow_put, 1);
    assert_int_equal(o.connections, 4);
    assert_int_equal(o.log_level, TT_LOG_DEBUG);
    assert_int_equal(o.ping_interval_ms, 500);
    assert_int_equal(o.ping_timeout_ms, 2000);
    assert_int_equal(o.auth_backoff_ms, 0);
    assert_int_equal(o.verify, TT_TLS_VERIFY_NONE);
    tt_origin_opts_free(&o);
}

static void expect_bad(const char *want_in_err, ...)
{
    char *argv[64];
    int argc = 0;
    argv[argc++] = "c";
    va_list ap;
    va_start(ap, want_in_err);
    const char *a;
    while ((a = va_arg(ap, const char *)) != NULL && argc < 63)
        argv[argc++] = (char *)a;
    va_end(ap);
    argv[argc] = NULL;
    struct tt_origin_opts o;
    char err[512] = "";
    int rc = tt_origin_parse_args(argc, argv, NULL, &o, err, sizeof err);
    if (rc != TT_ORIGIN_BAD || !strstr(err, want_in_err))
        fail_msg("want a failure saying '%s', got rc=%d err='%s'", want_in_err, rc, err);
    assert_null(strchr(err, '\n')); /* one line */
    assert_null(o.token);
}

static void test_bad_values(void **state)
{
    (void)state;
    expect_bad("--proxy is required (HOST:PORT)", "--token", "t", "--root", tmpdir, NULL);
    expect_bad("--proxy 'nohost'", "--proxy", "nohost", "--token", "t", "--root", tmpdir, NULL);
    expect_bad("--proxy 'h:0'", "--proxy", "h:0", "--token", "t", "--root", tmpdir, NULL);
    expect_bad("--proxy 'h:70000'", "--proxy", "h:70000", "--token", "t", "--root", tmpdir, NULL);
    expect_bad("--proxy ':7443'", "--proxy", ":7443", "--token", "t", "--root", tmpdir, NULL);
    expect_bad("--proxy '::1:80'", "--proxy", "::1:80", "--token", "t", "--root", tmpdir, NULL);
    expect_bad("--proxy 'h:80x'", "--proxy", "h:80x", "--token", "t", "--root", tmpdir, NULL);
    expect_bad("a token is required", "--proxy", "h:1", "--root", tmpdir, NULL);
    expect_bad("--token: the token must be visible ASCII", "--proxy", "h:1", "--token", "a b",
               "--root", tmpdir, NULL);
    expect_bad("--root DIR, --upstream URL or --tcp HOST:PORT is required", "--proxy", "h:1",
               "--token", "t", NULL);
    expect_bad("--tcp serves a TCP service on its own: use it without --root", "--proxy", "h:1",
               "--token", "t", "--root", tmpdir, "--tcp", "127.0.0.1:22", NULL);
    expect_bad("--tcp serves a TCP service on its own: use it without --upstream", "--proxy",
               "h:1", "--token", "t", "--tcp", "127.0.0.1:22", "--upstream", "http://a:1", NULL);
    expect_bad("--tcp 'nohost': want HOST:PORT or [IPv6]:PORT", "--proxy", "h:1", "--token", "t",
               "--tcp", "nohost", NULL);
    expect_bad("--tcp '::1:22'", "--proxy", "h:1", "--token", "t", "--tcp", "::1:22", NULL);
    expect_bad("--tcp 'h:0'", "--proxy", "h:1", "--token", "t", "--tcp", "h:0", NULL);
    expect_bad("--upstream-timeout and --upstream-ping go with --upstream", "--proxy", "h:1",
               "--token", "t", "--tcp", "h:22", "--upstream-timeout", "5", NULL);
    expect_bad("--allow-put goes with --root", "--proxy", "h:1", "--token", "t", "--tcp", "h:22",
               "--allow-put", NULL);
    expect_bad("use --root or --upstream, not both", "--proxy", "h:1", "--token", "t", "--root",
               tmpdir, "--upstream", "http://127.0.0.1:8000", NULL);
    expect_bad("--upstream-timeout '-1': want seconds from 0 (none) to 86400", "--proxy", "h:1",
               "--token", "t", "--upstream", "h2c://a:1", "--upstream-timeout", "-1", NULL);
    expect_bad("--upstream-ping 'x'", "--proxy", "h:1", "--token", "t", "--upstream",
               "h2c://a:1", "--upstream-ping", "x", NULL);
    expect_bad("--upstream-ping is for h2c:// apps", "--proxy", "h:1", "--token", "t",
               "--upstream", "http://a:1", "--upstream-ping", "600", NULL);
    expect_bad("--upstream-timeout and --upstream-ping go with --upstream", "--proxy", "h:1",
               "--token", "t", "--root", tmpdir, "--upstream-timeout", "5", NULL);
    expect_bad("--upstream 'https://a:1': https is not supported", "--proxy", "h:1", "--token",
               "t", "--upstream", "https://a:1", NULL);
    expect_bad("--upstream 'http://a:1/api': a path is not supported", "--proxy", "h:1",
               "--token", "t", "--upstream", "http://a:1/api", NULL);
    expect_bad("No such file or directory", "--proxy", "h:1", "--token", "t", "--root",
               "/nonexistent/tether-dir", NULL);
    expect_bad("--connections '0'", "--proxy", "h:1", "--token", "t", "--root", tmpdir,
               "--connections", "0", NULL);
    expect_bad("--connections 'x'", "--proxy", "h:1", "--token", "t", "--root", tmpdir,
               "--connections", "x", NULL);
    expect_bad("--connections '257'", "--proxy", "h:1", "--token", "t", "--root", tmpdir,
               "--connections", "257", NULL);
    expect_bad("--log-level 'loud'", "--proxy", "h:1", "--token", "t", "--root", tmpdir,
               "--log-level", "loud", NULL);
    expect_bad("--ping-interval '0'", "--proxy", "h:1", "--token", "t", "--root", tmpdir,
               "--ping-interval", "0", NULL);
    expect_bad("--ping-timeout 'soon'", "--proxy", "h:1", "--token", "t", "--root", tmpdir,
               "--ping-timeout", "soon", NULL);
    expect_bad("--auth-backoff '-1'", "--proxy", "h:1", "--token", "t", "--root", tmpdir,
               "--auth-backoff", "-1", NULL);
    expect_bad("--name 'a b'", "--proxy", "h:1", "--token", "t", "--root", tmpdir, "--name",
               "a b", NULL);
    expect_bad("unknown flag --frobnicate", "--proxy", "h:1", "--frobnicate", NULL);
    expect_bad("--name needs a value", "--proxy", "h:1", "--name", NULL);
    expect_bad("--insecure takes no value", "--insecure=yes", NULL);
    expect_bad("unexpected argument 'stray'", "stray", NULL);
    expect_bad("only one of --fingerprint, --ca and --insecure", "--proxy", "h:1", "--token", "t",
               "--root", tmpdir, "--insecure",
               "--fingerprint",
               "sha256:0000000000000000000000000000000000000000000000000000000000000000", NULL);
    expect_bad("--ca /nonexistent/ca.pem", "--proxy", "h:1", "--token", "t", "--root", tmpdir,
               "--ca", "/nonexistent/ca.pem", NULL);
}

static void test_root_not_a_dir(void **state)
{
    (void)state;
    char file[PATH_MAX + 16];
    snprintf(file, sizeof file, "%s/plain", tmpdir);
    FILE *f = fopen(file, "w");
    assert_non_null(f);
    fclose(f);
    expect_bad("not a directory", "--proxy", "h:1", "--token", "t", "--root", file, NULL);
    unlink(file);
}

static void test_help_version(void **state)
{
    (void)state;
    struct tt_origin_opts o;
    char err[256];
    /* --help wins even when the rest is incomplete. */
    assert_int_equal(parse(&o, err, sizeof err, NULL, "--help", NULL), TT_ORIGIN_HELP);
    assert_int_equal(parse(&o, err, sizeof err, NULL, "--version", NULL), TT_ORIGIN_VERSION);
    const char *u = tt_origin_usage();
    static const char *const flags[] = {
        "--proxy",         "--name",         "--token ",     "--token-file", "--fingerprint",
        "--ca",            "--insecure",     "--root",       "--allow-put",  "--connections",
        "--log-level",     "--ping-interval", "--ping-timeout", "--auth-backoff", "--help",
        "--local-listen",  "--local-to", "--local-tcp",    "--tcp HOST:PORT", "--upstream ",
        "--version",       "TETHER_TOKEN",   "default: 1)",  "default: 15)", "default: 10)",
        "default: 300)",   "default: info)", "default: default)"};
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++)
        if (!strstr(u, flags[i]))
            fail_msg("--help does not mention '%s'", flags[i]);
}

static void test_token_sources(void **state)
{
    (void)state;
    struct tt_origin_opts o;
    char err[256];
    /* The environment. */
    assert_int_equal(parse(&o, err, sizeof err, "from-env", "--proxy", "h:1", "--root", tmpdir,
                           NULL),
                     TT_ORIGIN_RUN);
    assert_string_equal(o.token, "from-env");
    tt_origin_opts_free(&o);
    /* The flag wins over the environment. */
    assert_int_equal(parse(&o, err, sizeof err, "from-env", "--proxy", "h:1", "--token", "flag",
                           "--root", tmpdir, NULL),
                     TT_ORIGIN_RUN);
    assert_string_equal(o.token, "flag");
    tt_origin_opts_free(&o);
    /* A file: the first line, trimmed. */
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/token", tmpdir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("  tok-123\r\nsecond line\n", f);
    fclose(f);
    assert_int_equal(parse(&o, err, sizeof err, NULL, "--proxy", "h:1", "--token-file", path,
                           "--root", tmpdir, NULL),
                     TT_ORIGIN_RUN);
    assert_string_equal(o.token, "tok-123");
    tt_origin_opts_free(&o);
    /* Both flags: refused. */
    assert_int_equal(parse(&o, err, sizeof err, NULL, "--proxy", "h:1", "--token", "x",
                           "--token-file", path, "--root", tmpdir, NULL),
                     TT_ORIGIN_BAD);
    assert_non_null(strstr(err, "not both"));
    /* An empty file. */
    f = fopen(path, "w");
    assert_non_null(f);
    fclose(f);
    assert_int_equal(parse(&o, err, sizeof err, NULL, "--proxy", "h:1", "--token-file", path,
                           "--root", tmpdir, NULL),
                     TT_ORIGIN_BAD);
    assert_non_null(strstr(err, "empty"));
    /* A missing file. */
    assert_int_equal(parse(&o, err, sizeof err, NULL, "--proxy", "h:1", "--token-file",
                           "/nonexistent/tok", "--root", tmpdir, NULL),
                     TT_ORIGIN_BAD);
    assert_non_null(strstr(err, "/nonexistent/tok"));
    /* p's tokens file given by mistake (issue 12 C.2): the error says what
     * the file must hold and where p wrote c's. */
    f = fopen(path, "w");
    assert_non_null(f);
    fputs("# tether tokens: one \"NAME TOKEN\" per line\ndefault 0123456789abcdef\n", f);
    fclose(f);
    char big[512];
    assert_int_equal(parse(&o, big, sizeof big, NULL, "--proxy", "h:1", "--token-file", path,
                           "--root", tmpdir, NULL),
                     TT_ORIGIN_BAD);
    assert_non_null(strstr(big, "must hold only the token"));
    assert_non_null(strstr(big, "c-NAME.token"));
    f = fopen(path, "w");
    assert_non_null(f);
    fputs("default 0123456789abcdef\n", f);
    fclose(f);
    assert_int_equal(parse(&o, big, sizeof big, NULL, "--proxy", "h:1", "--token-file", path,
                           "--root", tmpdir, NULL),
                     TT_ORIGIN_BAD);
    assert_non_null(strstr(big, "must hold only the token"));
    /* The hash p keeps is not the token either. */
    f = fopen(path, "w");
    assert_non_null(f);
    fputs("sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n", f);
    fclose(f);
    assert_int_equal(parse(&o, big, sizeof big, NULL, "--proxy", "h:1", "--token-file", path,
                           "--root", tmpdir, NULL),
                     TT_ORIGIN_BAD);
    assert_non_null(strstr(big, "the hash p keeps"));
    unlink(path);
}

static void test_fingerprint(void **state)
{
    (void)state;
    struct tt_origin_opts o;
    char err[256];
    uint8_t want[32];
    for (int i = 0; i < 32; i++)
        want[i] = (uint8_t)(i * 7 + 1);
    char plain[80], colons[120];
    size_t n = (size_t)snprintf(plain, sizeof plain, "sha256:");
    size_t m = (size_t)snprintf(colons, sizeof colons, "sha256:");
    for (int i = 0; i < 32; i++) {
        n += (size_t)snprintf(plain + n, sizeof plain - n, "%02x", want[i]);
        m += (size_t)snprintf(colons + m, sizeof colons - m, "%s%02X", i ? ":" : "", want[i]);
    }
    assert_int_equal(parse(&o, err, sizeof err, NULL, "--proxy", "p.example:7443", "--token", "t",
                           "--root", tmpdir, "--fingerprint", plain, NULL),
                     TT_ORIGIN_RUN);
    assert_int_equal(o.verify, TT_TLS_VERIFY_PIN);
    assert_memory_equal(o.pin, want, 32);
    tt_origin_opts_free(&o);

    /* Colons between the pairs, upper case: the same pin. */
    assert_int_equal(parse(&o, err, sizeof err, NULL, "--proxy", "p.example:7443", "--token", "t",
                           "--root", tmpdir, "--fingerprint", colons, NULL),
                     TT_ORIGIN_RUN);
    assert_int_equal(o.verify, TT_TLS_VERIFY_PIN);
    assert_memory_equal(o.pin, want, 32);
    tt_origin_opts_free(&o);

    expect_bad("--fingerprint 'sha256:abcd'", "--proxy", "h:1", "--token", "t", "--root", tmpdir,
               "--fingerprint", "sha256:abcd", NULL);
    plain[10] = 'g';
    expect_bad("want sha256: and 64 hex digits", "--proxy", "h:1", "--token", "t", "--root",
               tmpdir, "--fingerprint", plain, NULL);
    expect_bad("want sha256: and 64 hex digits", "--proxy", "h:1", "--token", "t", "--root",
               tmpdir, "--fingerprint", colons + 7, NULL);
}

static void test_split_hostport(void **state)
{
    (void)state;
    char h[64], p[8];
    assert_int_equal(tt_origin_split_hostport("example.org:443", h, sizeof h, p, sizeof p), 0);
    assert_string_equal(h, "example.org");
    assert_string_equal(p, "443");
    assert_int_equal(tt_origin_split_hostport("[fe80::1]:7443", h, sizeof h, p, sizeof p), 0);
    assert_string_equal(h, "fe80::1");
    assert_int_equal(tt_origin_split_hostport("[::1]7443", h, sizeof h, p, sizeof p), -1);
    assert_int_equal(tt_origin_split_hostport("[]:1", h, sizeof h, p, sizeof p), -1);
    assert_int_equal(tt_origin_split_hostport("h:", h, sizeof h, p, sizeof p), -1);
    assert_int_equal(tt_origin_split_hostport("h:123456", h, sizeof h, p, sizeof p), -1);
    assert_int_equal(tt_origin_split_hostport("user@h:1", h, sizeof h, p, sizeof p), -1);
    assert_int_equal(tt_origin_split_hostport("h:65535", h, sizeof h, p, sizeof p), 0);
}

/* ---- backoff ------------------------------------------------------------ */

static uint64_t fixed_rand(void *ud) { return *(uint64_t *)ud; }

static void test_backoff_growth_and_cap(void **state)
{
    (void)state;
    static const uint64_t ceilings[] = {200, 400, 800, 1600, 3200, 6400, 12800, 25600, 30000,
                                        30000, 30000};
    for (size_t i = 0; i < sizeof ceilings / sizeof ceilings[0]; i++)
        assert_int_equal(tt_backoff_ceiling_ms((unsigned)i), ceilings[i]);
    assert_int_equal(tt_backoff_ceiling_ms(1000), 30000);
    assert_int_equal(tt_backoff_ceiling_ms(UINT32_MAX), 30000);

    /* The largest draw reaches the ceiling exactly: uniform over [0, ceiling]. */
    uint64_t r;
    struct tt_backoff b = {.failures = 0, .rand = fixed_rand, .rand_ud = &r};
    for (size_t i = 0; i < sizeof ceilings / sizeof ceilings[0]; i++) {
        r = ceilings[i];
        assert_int_equal(tt_backoff_next_ms(&b), ceilings[i]);
        assert_int_equal(b.failures, i + 1);
    }
    /* The smallest draw is raised to 50 ms: never a busy loop. */
    r = 0;
    assert_int_equal(tt_backoff_next_ms(&b), TT_BACKOFF_MIN_MS);
    /* Many failures never overflow. */
    for (int i = 0; i < 200; i++) {
        r = UINT64_MAX;
        assert_true(tt_backoff_next_ms(&b) <= TT_BACKOFF_CAP_MS);
    }
}

static void test_backoff_bounds_random(void **state)
{
    (void)state;
    uint64_t seed = 12345;
    struct tt_backoff b = {.failures = 0, .rand = tt_backoff_default_rand, .rand_ud = &seed};
    for (unsigned round = 0; round < 50; round++) {
        b.failures = 0;
        for (unsigned f = 0; f < 12; f++) {
            uint64_t ceiling = tt_backoff_ceiling_ms(b.failures);
            uint64_t w = tt_backoff_next_ms(&b);
            assert_true(w >= TT_BACKOFF_MIN_MS);
            assert_true(w <= ceiling);
        }
    }
    /* Full jitter: the waits at the cap spread over the range. */
    uint64_t lo = UINT64_MAX, hi = 0;
    for (int i = 0; i < 1000; i++) {
        b.failures = 20;
        uint64_t w = tt_backoff_next_ms(&b);
        lo = w < lo ? w : lo;
        hi = w > hi ? w : hi;
    }
    assert_true(lo < 3000);
    assert_true(hi > 27000);
}

static void test_backoff_reset_rule(void **state)
{
    (void)state;
    uint64_t r = UINT64_MAX;
    struct tt_backoff b = {.failures = 0, .rand = fixed_rand, .rand_ud = &r};
    for (int i = 0; i < 6; i++)
        (void)tt_backoff_next_ms(&b);
    assert_int_equal(b.failures, 6);
    /* Up for less than 30 s: the next wait keeps growing. */
    tt_backoff_was_up(&b, 29999);
    assert_int_equal(b.failures, 6);
    assert_int_equal(tt_backoff_ceiling_ms(b.failures), 12800);
    /* Up for 30 s: back to the small wait. */
    tt_backoff_was_up(&b, 30000);
    assert_int_equal(b.failures, 0);
    r = 199;
    assert_int_equal(tt_backoff_next_ms(&b), 199);
    tt_backoff_was_up(&b, 3600000);
    assert_int_equal(b.failures, 0);
}

static void test_session_config(void **state)
{
    (void)state;
    struct tt_origin_opts o;
    char err[256];
    assert_int_equal(parse(&o, err, sizeof err, NULL, "--proxy", "h:1", "--token", "t", "--root",
                           tmpdir, "--ping-interval", "3", "--ping-timeout", "1.5", NULL),
                     TT_ORIGIN_RUN);
    struct tt_session_config cfg;
    tt_origin_session_config(&o, &cfg);
    assert_int_equal(cfg.ping_interval_ms, 3000);
    assert_int_equal(cfg.ping_timeout_ms, 1500);
    assert_int_equal(cfg.h2.max_concurrent_streams, 1000);
    assert_int_equal(cfg.h2.initial_window_size, 1u << 20);
    assert_true(cfg.h2.max_output >= (1u << 20));
    tt_origin_opts_free(&o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_upstream_defaults),
        cmocka_unit_test(test_tcp),
        cmocka_unit_test(test_local_listen),
        cmocka_unit_test(test_every_flag),
        cmocka_unit_test(test_bad_values),
        cmocka_unit_test(test_root_not_a_dir),
        cmocka_unit_test(test_help_version),
        cmocka_unit_test(test_token_sources),
        cmocka_unit_test(test_fingerprint),
        cmocka_unit_test(test_split_hostport),
        cmocka_unit_test(test_backoff_growth_and_cap),
        cmocka_unit_test(test_backoff_bounds_random),
        cmocka_unit_test(test_backoff_reset_rule),
        cmocka_unit_test(test_session_config),
    };
    return cmocka_run_group_tests_name("origin", tests, setup_dir, teardown_dir);
}
