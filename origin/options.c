/*
 * bin/c's flags (README.md "bin/c flags").  Every bad value becomes one line
 * saying which flag and why; main prints it as "c: <reason>" and exits 2.
 * Flags take their value as the next argument or after '='.
 */
#include "origin/origin.h"

#include "codec/buf.h"
#include "proto/conffile.h"
#include "proto/http1.h"
#include "proto/log.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char opt_usage[] =
    "usage: c --proxy HOST:PORT (--root DIR | --upstream URL | --tcp HOST:PORT) [options]\n"
    "\n"
    "tether's origin connector: dials out to the proxy (bin/p) over TLS and\n"
    "serves the requests that come back through that tunnel.\n"
    "\n"
    "  --proxy HOST:PORT       the proxy's tunnel listener (required; [v6]:port for IPv6);\n"
    "                          repeatable (at most 8): --connections tunnels to each p\n"
    "  --name NAME             the name this origin serves (default: default)\n"
    "  --token TOKEN           the name's token (visible in ps: prefer --token-file)\n"
    "  --token-file FILE       read the token from FILE, which holds only the token (p\n"
    "                          writes one as c-NAME.token in its state folder)\n"
    "                          (one of --token, --token-file or $TETHER_TOKEN is required)\n"
    "  --fingerprint sha256:HEX  pin the proxy's certificate (colons in HEX allowed)\n"
    "  --ca FILE               verify the proxy against this CA and its host name\n"
    "                          (neither: the system trust store and host name)\n"
    "  --insecure              do not verify the proxy at all (INSECURE; tests only)\n"
    "  --root DIR              serve the files under DIR\n"
    "  --allow-put             accept PUT uploads under --root (default: off)\n"
    "  --upstream URL          forward every request to a local app instead:\n"
    "                          http://HOST:PORT (HTTP/1.1, keep-alive pool) or\n"
    "                          h2c://HOST:PORT (HTTP/2 prior knowledge, e.g. gRPC)\n"
    "  --tcp HOST:PORT         serve one local TCP service instead ([v6]:port for IPv6):\n"
    "                          each TCP connection a client makes to p's --tcp-listen\n"
    "                          arrives as an HTTP/2 CONNECT stream and is piped to\n"
    "                          HOST:PORT (never to what the request names); connecting\n"
    "                          may take 10 s, then 502; no idle timeout\n"
    "                          (one of --root, --upstream and --tcp is required)\n"
    "  --upstream-timeout SECS the app must begin its answer within SECS, else 504 and\n"
    "                          its request is cancelled; 0 = no limit (default: 60 for\n"
    "                          http://, none for h2c://, where gRPC deadlines govern)\n"
    "  --upstream-ping SECS    h2c://: PING the app connection after SECS with nothing\n"
    "                          from it while a request is open, drop it after\n"
    "                          --ping-timeout without an answer; 0 = never (default: 0;\n"
    "                          gRPC servers refuse pings more often than every 300 s)\n"
    "  --connections N         tunnels to hold open, a pool at the proxy (default: 1)\n"
    "  --local-listen ADDR     take HTTP/1.1 and h2c from local apps here (host:port) and\n"
    "                          send each request over a forward link to p, to the origin or\n"
    "                          p --service named by its Host (without port); p's tokens\n"
    "                          file must allow it (calls=). Without --root, --upstream or\n"
    "                          --tcp, c only calls out\n"
    "  --local-to NAME         send every --local-listen request to NAME, whatever its Host\n"
    "  --local-tcp ADDR=NAME   take TCP connections here and join each to NAME's TCP\n"
    "                          service (an origin's --tcp, or p --service NAME=tcp://...)\n"
    "                          over the forward link; repeatable\n"
    "  --admin-listen ADDR     /metrics, /status, /api/tunnels, /ready, /live of this c;\n"
    "                          keep it on loopback (default: off)\n"
    "  --log-level LEVEL       error|warn|info|debug (default: info)\n"
    "  --log-format text|json  a line of text per event, or one JSON object with the\n"
    "                          line's key=value fields (default: text)\n"
    "  --ping-interval SECS    PING an idle tunnel after this long (default: 15)\n"
    "  --ping-timeout SECS     drop a tunnel whose PING gets no answer (default: 10)\n"
    "  --auth-backoff SECS     wait after the proxy refuses the token, 401/403 (default: 300)\n"
    "  --config FILE           read these flags from FILE, 'key = value' a line, each key\n"
    "                          a flag without '--', yes/no for --insecure and --allow-put\n"
    "                          (docs/examples/c.conf); flags given here override it\n"
    "  --help                  this text\n"
    "  --version               the version\n"
    "\n"
    "Reconnects forever: exponential backoff with full jitter from 0.2 s up to 30 s,\n"
    "reset once a tunnel has stayed up 30 s.  SIGTERM/SIGINT drain: in-flight\n"
    "requests get 10 s to finish, then c exits 0.\n";

const char *tt_origin_usage(void) { return opt_usage; }

static int opt_fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int opt_fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return TT_ORIGIN_BAD;
}

/* Seconds as a decimal number (tests use fractions) within [min, max]. */
static int opt_seconds(const char *v, double min, double max, uint32_t *ms)
{
    char *end;
    errno = 0;
    double d = strtod(v, &end);
    if (errno || end == v || *end || !isfinite(d) || d < min || d > max)
        return -1;
    *ms = (uint32_t)(d * 1000.0 + 0.5);
    return 0;
}

/* A token travels in a header line: visible ASCII only, so it can neither
 * break the request head nor hide in it. */
static int opt_token_ok(const char *t)
{
    size_t n = strlen(t);
    if (n == 0 || n > TT_ORIGIN_MAX_TOKEN)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)t[i] <= ' ' || (unsigned char)t[i] >= 0x7f)
            return 0;
    return 1;
}

static char *opt_strdup(const char *s, size_t n)
{
    char *d = tt_mem_alloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = 0;
    }
    return d;
}

/* The first line of the file, without surrounding white space. */
static int opt_read_token_file(const char *path, char **out, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return opt_fail(err, errlen, "--token-file %s: %s", path, strerror(errno));
    char line[TT_ORIGIN_MAX_TOKEN + 2];
    if (!fgets(line, sizeof line, f)) {
        fclose(f);
        return opt_fail(err, errlen, "--token-file %s: the file is empty", path);
    }
    fclose(f);
    char *s = line;
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    s[n] = 0;
    /* The usual mistake is to give c p's tokens file (a comment, then
     * NAME TOKEN lines): say what the file must hold and where p put it. */
    if (!opt_token_ok(s) || s[0] == '#')
        return opt_fail(err, errlen,
                        "--token-file %s: the file must hold only the token, on its first line "
                        "(visible ASCII, no spaces); p's tokens file (NAME TOKEN per line) is not "
                        "one: p writes c's token file as c-NAME.token in its state folder",
                        path);
    if (!strncmp(s, "sha256:", 7))
        return opt_fail(err, errlen,
                        "--token-file %s: this is the hash p keeps of a token, not the token: "
                        "use the c-NAME.token file p wrote, or 'p token add NAME' for a new one",
                        path);
    *out = opt_strdup(s, n);
    return *out ? 0 : opt_fail(err, errlen, "out of memory");
}

static int opt_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > TT_ORIGIN_MAX_NAME)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '-' || ch == '_'))
            return 0;
    }
    return 1;
}

/* Values read from a --config file live as long as the options. */
struct tt_origin_str {
    struct tt_origin_str *next;
    char s[];
};

void tt_origin_opts_free(struct tt_origin_opts *o)
{
    while (o->owned) {
        struct tt_origin_str *s = o->owned;
        o->owned = s->next;
        tt_mem_free(s);
    }
    if (o->token) {
        /* Not in memory longer than needed. */
        memset(o->token, 0, strlen(o->token));
        tt_mem_free(o->token);
        o->token = NULL;
    }
}

/* Flags that take a value. */
static const char *const opt_valued[] = {
    "--proxy",     "--name",      "--token",         "--token-file",
    "--fingerprint", "--ca",      "--root",          "--connections",
    "--upstream",  "--upstream-timeout", "--upstream-ping",
    "--log-level", "--log-format", "--ping-interval", "--ping-timeout", "--auth-backoff",
    "--local-listen", "--admin-listen", "--local-to", "--local-tcp", "--tcp", "--config",
};
/* Flags without. */
static const char *const opt_plain[] = {"--insecure", "--allow-put", "--help", "--version"};

/* What the flags say before the checks that need all of them. */
struct opt_state {
    const char *proxies[TT_ORIGIN_MAX_PROXIES];
    unsigned n_proxies;
    const char *token, *token_file, *fingerprint, *ca, *root, *upstream, *tcp;
    int insecure, upstream_timeout_set;
};

/* One flag and its value (NULL for those without), from the command line
 * or the --config file.  Returns 0, TT_ORIGIN_HELP, TT_ORIGIN_VERSION or
 * TT_ORIGIN_BAD with err. */
static int opt_set(struct tt_origin_opts *o, struct opt_state *st, const char *flag,
                   const char *val, char *err, size_t errlen)
{
    int rc;
    /* Values that stand alone are checked here, so an error in a --config
     * file names its line; the checks below the loop need them all. */
    char h[256], port[8], why[200];
    uint8_t pin[32];
    struct tt_upstream_url url;
    if ((!strcmp(flag, "--proxy") || !strcmp(flag, "--tcp")) &&
        (strlen(val) >= sizeof o->proxy ||
         tt_origin_split_hostport(val, h, sizeof h, port, sizeof port)))
        return opt_fail(err, errlen, "%s '%s': want HOST:PORT or [IPv6]:PORT, port 1-65535", flag,
                        val);
    if (!strcmp(flag, "--fingerprint") && tt_tls_parse_fingerprint(val, pin))
        return opt_fail(err, errlen,
                        "--fingerprint '%s': want sha256: and 64 hex digits (colons allowed)", val);
    if (!strcmp(flag, "--upstream") && tt_upstream_parse_url(val, &url, why, sizeof why))
        return opt_fail(err, errlen, "--upstream '%s': %s", val, why);
    if (!strcmp(flag, "--help")) {
        rc = TT_ORIGIN_HELP;
        return rc;
    } else if (!strcmp(flag, "--version")) {
        rc = TT_ORIGIN_VERSION;
        return rc;
    } else if (!strcmp(flag, "--insecure")) {
        st->insecure = 1;
    } else if (!strcmp(flag, "--allow-put")) {
        o->allow_put = 1;
    } else if (!strcmp(flag, "--proxy")) {
        if (st->n_proxies == TT_ORIGIN_MAX_PROXIES)
            return opt_fail(err, errlen, "--proxy: at most %d", TT_ORIGIN_MAX_PROXIES);
        st->proxies[st->n_proxies++] = val;
    } else if (!strcmp(flag, "--name")) {
        if (!opt_name_ok(val)) {
            rc = opt_fail(err, errlen,
                          "--name '%s': use 1 to %d letters, digits, '-' or '_'", val,
                          TT_ORIGIN_MAX_NAME);
            return rc;
        }
        snprintf(o->name, sizeof o->name, "%s", val);
    } else if (!strcmp(flag, "--token")) {
        st->token = val;
    } else if (!strcmp(flag, "--token-file")) {
        st->token_file = val;
    } else if (!strcmp(flag, "--fingerprint")) {
        st->fingerprint = val;
    } else if (!strcmp(flag, "--ca")) {
        st->ca = val;
    } else if (!strcmp(flag, "--root")) {
        st->root = val;
    } else if (!strcmp(flag, "--upstream")) {
        st->upstream = val;
    } else if (!strcmp(flag, "--tcp")) {
        st->tcp = val;
    } else if (!strcmp(flag, "--upstream-timeout")) {
        if (opt_seconds(val, 0, 86400, &o->upstream.head_timeout_ms)) {
            rc = opt_fail(err, errlen, "--upstream-timeout '%s': want seconds from 0 (none) to 86400", val);
            return rc;
        }
        st->upstream_timeout_set = 1;
    } else if (!strcmp(flag, "--upstream-ping")) {
        if (opt_seconds(val, 0, 86400, &o->upstream.ping_interval_ms)) {
            rc = opt_fail(err, errlen, "--upstream-ping '%s': want seconds from 0 (never) to 86400", val);
            return rc;
        }
    } else if (!strcmp(flag, "--connections")) {
        char *end;
        errno = 0;
        long n = strtol(val, &end, 10);
        if (errno || end == val || *end || n < 1 || n > TT_ORIGIN_MAX_CONNECTIONS) {
            rc = opt_fail(err, errlen, "--connections '%s': want a whole number from 1 to %d",
                          val, TT_ORIGIN_MAX_CONNECTIONS);
            return rc;
        }
        o->connections = (unsigned)n;
    } else if (!strcmp(flag, "--log-level")) {
        int lv = tt_log_parse_level(val);
        if (lv < 0) {
            rc = opt_fail(err, errlen, "--log-level '%s': want error, warn, info or debug", val);
            return rc;
        }
        o->log_level = lv;
    } else if (!strcmp(flag, "--log-format")) {
        if (strcmp(val, "text") && strcmp(val, "json"))
            return opt_fail(err, errlen, "--log-format '%s': want text or json", val);
        o->log_json = !strcmp(val, "json");
    } else if (!strcmp(flag, "--admin-listen")) {
        if (strlen(val) >= sizeof o->admin_listen)
            return opt_fail(err, errlen, "--admin-listen '%s': too long", val);
        snprintf(o->admin_listen, sizeof o->admin_listen, "%s", val);
    } else if (!strcmp(flag, "--ping-interval")) {
        if (opt_seconds(val, 0.05, 86400, &o->ping_interval_ms)) {
            rc = opt_fail(err, errlen, "--ping-interval '%s': want seconds from 0.05 to 86400", val);
            return rc;
        }
    } else if (!strcmp(flag, "--ping-timeout")) {
        if (opt_seconds(val, 0.05, 86400, &o->ping_timeout_ms)) {
            rc = opt_fail(err, errlen, "--ping-timeout '%s': want seconds from 0.05 to 86400", val);
            return rc;
        }
    } else if (!strcmp(flag, "--local-listen")) {
        if (strlen(val) >= sizeof o->local_listen) {
            rc = opt_fail(err, errlen, "--local-listen '%s': too long", val);
            return rc;
        }
        snprintf(o->local_listen, sizeof o->local_listen, "%s", val);
    } else if (!strcmp(flag, "--local-to")) {
        if (!opt_name_ok(val)) {
            rc = opt_fail(err, errlen,
                          "--local-to '%s': want a name (letters, digits, '-', '_'; at most %d)",
                          val, TT_ORIGIN_MAX_NAME);
            return rc;
        }
        snprintf(o->local_to, sizeof o->local_to, "%s", val);
    } else if (!strcmp(flag, "--local-tcp")) {
        const char *sep = strrchr(val, '=');
        if (!sep || !opt_name_ok(sep + 1) || sep == val ||
            (size_t)(sep - val) >= sizeof o->local_tcp[0].addr) {
            rc = opt_fail(err, errlen, "--local-tcp '%s': want ADDR=NAME (e.g. 127.0.0.1:2222=ssh)", val);
            return rc;
        }
        if (o->n_local_tcp == TT_ORIGIN_LOCAL_TCP_MAX) {
            rc = opt_fail(err, errlen, "--local-tcp: at most %d", TT_ORIGIN_LOCAL_TCP_MAX);
            return rc;
        }
        snprintf(o->local_tcp[o->n_local_tcp].addr, sizeof o->local_tcp[0].addr, "%.*s",
                 (int)(sep - val), val);
        snprintf(o->local_tcp[o->n_local_tcp].name, sizeof o->local_tcp[0].name, "%s", sep + 1);
        o->n_local_tcp++;
    } else if (!strcmp(flag, "--auth-backoff")) {
        if (opt_seconds(val, 0, 86400, &o->auth_backoff_ms)) {
            rc = opt_fail(err, errlen, "--auth-backoff '%s': want seconds from 0 to 86400", val);
            return rc;
        }
    }
    (void)rc;
    return 0;
}

struct opt_file_ctx {
    struct tt_origin_opts *o;
    struct opt_state *st;
};

static int opt_is(const char *flag, const char *const *list, size_t n)
{
    for (size_t k = 0; k < n; k++)
        if (!strcmp(flag, list[k]))
            return 1;
    return 0;
}

static int opt_file_key(void *ud, const char *key, const char *value, char *err, size_t errlen)
{
    struct opt_file_ctx *fc = ud;
    char flag[40];
    if (strlen(key) + 3 > sizeof flag)
        return opt_fail(err, errlen, "unknown key (the keys are c's flags without '--': see c --help)");
    snprintf(flag, sizeof flag, "--%s", key);
    int valued = opt_is(flag, opt_valued, sizeof opt_valued / sizeof opt_valued[0]);
    int yesno = !strcmp(flag, "--insecure") || !strcmp(flag, "--allow-put");
    if ((!valued && !yesno) || !strcmp(key, "config"))
        return opt_fail(err, errlen, "unknown key (the keys are c's flags without '--': see c --help)");
    if (yesno) {
        /* A flag without a value is a yes/no key. */
        if (!strcmp(value, "yes") || !strcmp(value, "true") || !strcmp(value, "1"))
            return opt_set(fc->o, fc->st, flag, NULL, err, errlen) == 0 ? 0 : -1;
        if (!strcmp(value, "no") || !strcmp(value, "false") || !strcmp(value, "0"))
            return 0;
        return opt_fail(err, errlen, "'%s' is not yes or no", value);
    }
    size_t n = strlen(value);
    struct tt_origin_str *s = tt_mem_alloc(sizeof(*s) + n + 1);
    if (!s)
        return opt_fail(err, errlen, "out of memory");
    memcpy(s->s, value, n + 1);
    s->next = fc->o->owned;
    fc->o->owned = s;
    return opt_set(fc->o, fc->st, flag, s->s, err, errlen) == 0 ? 0 : -1;
}

int tt_origin_parse_args(int argc, char **argv, const char *env_token,
                         struct tt_origin_opts *o, char *err, size_t errlen)
{
    memset(o, 0, sizeof *o);
    snprintf(o->name, sizeof o->name, "default");
    o->verify = TT_TLS_VERIFY_SYSTEM;
    o->connections = 1;
    o->log_level = TT_LOG_INFO;
    o->ping_interval_ms = 15000;
    o->ping_timeout_ms = 10000;
    o->auth_backoff_ms = 300000;

    struct opt_state fs;
    struct opt_state *st = &fs;
    memset(st, 0, sizeof *st);
    int rc;
    const char *config = NULL;

    /* --config first, wherever it is: the flags override the file. */
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--config") && i + 1 < argc)
            config = argv[++i];
        else if (!strncmp(argv[i], "--config=", 9))
            config = argv[i] + 9;
    }
    if (config) {
        struct opt_file_ctx fc = {.o = o, .st = st};
        char why[1200];
        if (tt_conffile_read(config, opt_file_key, &fc, why, sizeof why) < 0) {
            rc = opt_fail(err, errlen, "--config %s", why);
            goto bad;
        }
    }
    int cli_local_tcp = 0, cli_proxy = 0;

    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        char flag[32];
        const char *val = NULL;
        const char *eq = strchr(arg, '=');
        size_t fl = eq ? (size_t)(eq - arg) : strlen(arg);
        if (strncmp(arg, "--", 2) != 0 || fl >= sizeof flag) {
            rc = opt_fail(err, errlen, "unexpected argument '%s' (see --help)", arg);
            goto bad;
        }
        memcpy(flag, arg, fl);
        flag[fl] = 0;

        int valued = -1;
        if (opt_is(flag, opt_valued, sizeof opt_valued / sizeof opt_valued[0]))
            valued = 1;
        if (opt_is(flag, opt_plain, sizeof opt_plain / sizeof opt_plain[0]))
            valued = 0;
        if (valued < 0) {
            rc = opt_fail(err, errlen, "unknown flag %s (see --help)", flag);
            goto bad;
        }
        if (valued) {
            if (eq)
                val = eq + 1;
            else if (i + 1 < argc)
                val = argv[++i];
            else {
                rc = opt_fail(err, errlen, "%s needs a value", flag);
                goto bad;
            }
        } else if (eq) {
            rc = opt_fail(err, errlen, "%s takes no value", flag);
            goto bad;
        }
        if (!strcmp(flag, "--config"))
            continue;
        /* A repeatable flag on the command line replaces the file's list. */
        if (!strcmp(flag, "--local-tcp") && !cli_local_tcp++)
            o->n_local_tcp = 0;
        if (!strcmp(flag, "--proxy") && !cli_proxy++)
            st->n_proxies = 0;
        if ((rc = opt_set(o, st, flag, val, err, errlen)) != 0)
            goto bad;
    }
    const char *proxy = st->n_proxies ? st->proxies[0] : NULL;
    const char *token = st->token, *token_file = st->token_file;
    const char *fingerprint = st->fingerprint, *ca = st->ca, *root = st->root;
    const char *upstream = st->upstream, *tcp = st->tcp;
    int insecure = st->insecure, upstream_timeout_set = st->upstream_timeout_set;

    if (!proxy) {
        rc = opt_fail(err, errlen, "--proxy is required (HOST:PORT)");
        goto bad;
    }
    if (strlen(proxy) >= sizeof o->proxy ||
        tt_origin_split_hostport(proxy, o->proxy_host, sizeof o->proxy_host, o->proxy_port,
                                 sizeof o->proxy_port)) {
        rc = opt_fail(err, errlen, "--proxy '%s': want HOST:PORT or [IPv6]:PORT, port 1-65535",
                      proxy);
        goto bad;
    }
    snprintf(o->proxy, sizeof o->proxy, "%s", proxy);
    for (unsigned i = 0; i < st->n_proxies; i++) {
        struct tt_origin_proxy *px = &o->proxies[i];
        /* Each was checked as it came (opt_set). */
        snprintf(px->text, sizeof px->text, "%s", st->proxies[i]);
        (void)tt_origin_split_hostport(st->proxies[i], px->host, sizeof px->host, px->port,
                                       sizeof px->port);
        for (unsigned k = 0; k < i; k++)
            if (!strcmp(o->proxies[k].text, px->text)) {
                rc = opt_fail(err, errlen, "--proxy '%s' given twice", px->text);
                goto bad;
            }
    }
    o->n_proxies = st->n_proxies;

    if (token && token_file) {
        rc = opt_fail(err, errlen, "use --token or --token-file, not both");
        goto bad;
    }
    if (token_file) {
        if ((rc = opt_read_token_file(token_file, &o->token, err, errlen)) != 0)
            goto bad;
    } else {
        const char *t = token ? token : env_token;
        const char *from = token ? "--token" : "TETHER_TOKEN";
        if (!t || !*t) {
            rc = opt_fail(err, errlen,
                          "a token is required: --token, --token-file FILE or the environment "
                          "variable TETHER_TOKEN");
            goto bad;
        }
        if (!opt_token_ok(t)) {
            rc = opt_fail(err, errlen, "%s: the token must be visible ASCII without spaces", from);
            goto bad;
        }
        if (!(o->token = opt_strdup(t, strlen(t)))) {
            rc = opt_fail(err, errlen, "out of memory");
            goto bad;
        }
    }

    if (!!fingerprint + !!ca + insecure > 1) {
        rc = opt_fail(err, errlen, "use only one of --fingerprint, --ca and --insecure");
        goto bad;
    }
    if (fingerprint) {
        if (tt_tls_parse_fingerprint(fingerprint, o->pin)) {
            rc = opt_fail(err, errlen,
                          "--fingerprint '%s': want sha256: and 64 hex digits (colons allowed)",
                          fingerprint);
            goto bad;
        }
        o->verify = TT_TLS_VERIFY_PIN;
    } else if (ca) {
        struct stat sb;
        if (stat(ca, &sb)) {
            rc = opt_fail(err, errlen, "--ca %s: %s", ca, strerror(errno));
            goto bad;
        }
        if (!S_ISREG(sb.st_mode)) {
            rc = opt_fail(err, errlen, "--ca %s: not a regular file", ca);
            goto bad;
        }
        o->verify = TT_TLS_VERIFY_CA;
        o->ca_file = ca;
    } else if (insecure) {
        o->verify = TT_TLS_VERIFY_NONE;
    }

    if (root && upstream) {
        rc = opt_fail(err, errlen, "use --root or --upstream, not both");
        goto bad;
    }
    if (o->local_to[0] && !o->local_listen[0]) {
        rc = opt_fail(err, errlen, "--local-to goes with --local-listen");
        goto bad;
    }
    if (tcp && (root || upstream)) {
        rc = opt_fail(err, errlen, "--tcp serves a TCP service on its own: use it without %s",
                      root ? "--root" : "--upstream");
        goto bad;
    }
    if (!root && !upstream && !tcp && (o->local_listen[0] || o->n_local_tcp)) {
        /* Only calls out: no tunnel, nothing served. */
        o->connections = 0;
        return TT_ORIGIN_RUN;
    }
    if (!root && !upstream && !tcp) {
        rc = opt_fail(err, errlen,
                      "--root DIR, --upstream URL or --tcp HOST:PORT is required (the files, the "
                      "app or the TCP service to serve), unless c only calls out (--local-listen, --local-tcp)");
        goto bad;
    }
    if (upstream) {
        char why[200];
        if (tt_upstream_parse_url(upstream, &o->upstream_url, why, sizeof why)) {
            rc = opt_fail(err, errlen, "--upstream '%s': %s", upstream, why);
            goto bad;
        }
        if (!upstream_timeout_set)
            o->upstream.head_timeout_ms = o->upstream_url.h2c ? 0 : TT_UPSTREAM_H1_HEAD_TIMEOUT_MS;
        if (o->upstream.ping_interval_ms && !o->upstream_url.h2c) {
            rc = opt_fail(err, errlen, "--upstream-ping is for h2c:// apps (an HTTP/1.1 app is not pinged)");
            goto bad;
        }
        o->upstream.ping_timeout_ms = o->ping_timeout_ms;
        o->has_upstream = 1;
        return TT_ORIGIN_RUN;
    }
    if (upstream_timeout_set || o->upstream.ping_interval_ms) {
        rc = opt_fail(err, errlen, "--upstream-timeout and --upstream-ping go with --upstream");
        goto bad;
    }
    if (tcp) {
        /* The one target of every CONNECT stream: a request never names
         * where c connects (its :authority is only p's name for us). */
        if (strlen(tcp) >= sizeof o->tcp ||
            tt_origin_split_hostport(tcp, o->tcp_host, sizeof o->tcp_host, o->tcp_port,
                                     sizeof o->tcp_port)) {
            rc = opt_fail(err, errlen, "--tcp '%s': want HOST:PORT or [IPv6]:PORT, port 1-65535",
                          tcp);
            goto bad;
        }
        if (o->allow_put) {
            rc = opt_fail(err, errlen, "--allow-put goes with --root");
            goto bad;
        }
        snprintf(o->tcp, sizeof o->tcp, "%s", tcp);
        o->has_tcp = 1;
        return TT_ORIGIN_RUN;
    }
    {
        char resolved[PATH_MAX];
        struct stat sb;
        if (!realpath(root, resolved)) {
            rc = opt_fail(err, errlen, "--root %s: %s", root, strerror(errno));
            goto bad;
        }
        if (stat(resolved, &sb) || !S_ISDIR(sb.st_mode)) {
            rc = opt_fail(err, errlen, "--root %s: not a directory", root);
            goto bad;
        }
        if (strlen(resolved) >= sizeof o->root) {
            rc = opt_fail(err, errlen, "--root %s: path too long", root);
            goto bad;
        }
        snprintf(o->root, sizeof o->root, "%s", resolved);
    }
    return TT_ORIGIN_RUN;

bad:
    tt_origin_opts_free(o);
    return rc;
}

void tt_origin_session_config(const struct tt_origin_opts *opts, struct tt_session_config *cfg)
{
    tt_session_config_default(cfg);
    cfg->ping_interval_ms = opts->ping_interval_ms;
    cfg->ping_timeout_ms = opts->ping_timeout_ms;
    /* c is the HTTP/2 server of the tunnel: p opens the streams.  Many
     * viewers share one tunnel, hence the stream limit; the receive window
     * governs uploads (PUT) only. */
    cfg->h2.max_concurrent_streams = 1000;
    cfg->h2.initial_window_size = 1u << 20;
    /* p paces the resets it sends for clients that left (proxy/registry.h:
     * 200 at once, 50 a second): c allows twice that, and still cuts off a
     * peer that floods resets (CVE-2023-44487). */
    cfg->h2.rst_budget = 400;
    cfg->rst_refill_per_s = 100;
    cfg->h2.max_output = 1u << 20;
    /* p may open WebSockets as extended CONNECT streams (RFC 8441). */
    cfg->h2.enable_connect_protocol = 1;
}
