/*
 * p's command line, listen addresses and the tokens file.
 *
 * Every bad value stops p with exit status 2 and one line saying which flag
 * and why (README, bin/p flags); nothing here logs, the caller prints `err`.
 */
#include "proxy/config.h"

#include "proto/conffile.h"
#include "proto/text.h"
#include "proto/tls.h"

#include "proto/http1.h"
#include "proto/log.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

static void cfg_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void cfg_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* --- Addresses ---------------------------------------------------------- */

int tt_px_parse_addr(const char *s, struct tt_px_addr *out, char *err, size_t errlen)
{
    char host[64];
    memset(out, 0, sizeof(*out));
    /* A listen address: ":port" means every address, and the port is
     * checked below as a listen port (0 lets the kernel pick). */
    struct tt_hostport a;
    switch (tt_http1_hostport_parse(s ? s : "", s ? strlen(s) : 0, sizeof(host) - 1,
                                    TT_HOSTPORT_EMPTY_HOST, &a)) {
    case TT_HOSTPORT_OK:
        break;
    case TT_HOSTPORT_EEMPTY:
        cfg_err(err, errlen, "empty address (want host:port, [v6]:port or :port)");
        return -1;
    case TT_HOSTPORT_EBRACKET:
        cfg_err(err, errlen, "bad address '%s' (want [v6]:port)", s);
        return -1;
    case TT_HOSTPORT_ECOLONS:
        cfg_err(err, errlen, "bad address '%s' (put an IPv6 address in brackets)", s);
        return -1;
    default: /* TT_HOSTPORT_EFORM; no other without STRICT */
        cfg_err(err, errlen, "bad address '%s' (want host:port, [v6]:port or :port)", s);
        return -1;
    }
    memcpy(host, a.host, a.host_len);
    host[a.host_len] = 0;
    const char *port = a.port; /* runs to the end of s: NUL-terminated */
    char *end;
    errno = 0;
    long pn = strtol(port, &end, 10);
    if (!*port || *end || errno || pn < 0 || pn > 65535) {
        cfg_err(err, errlen, "bad port in address '%s'", s);
        return -1;
    }
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    int rc = getaddrinfo(host[0] ? host : NULL, port, &hints, &res);
    if (rc != 0 || !res) {
        cfg_err(err, errlen, "cannot resolve address '%s': %s", s, gai_strerror(rc));
        return -1;
    }
    /* ":port" means every address: prefer the IPv6 wildcard (dual stack)
     * only when asked for; 0.0.0.0 is what people expect. */
    struct addrinfo *pick = res;
    if (!host[0])
        for (struct addrinfo *ai = res; ai; ai = ai->ai_next)
            if (ai->ai_family == AF_INET) {
                pick = ai;
                break;
            }
    memcpy(&out->ss, pick->ai_addr, pick->ai_addrlen);
    out->len = pick->ai_addrlen;
    freeaddrinfo(res);
    snprintf(out->text, sizeof(out->text), "%s", s);
    return 0;
}

void tt_px_sockaddr_text(const struct sockaddr *sa, char *out, size_t outlen, char *ip,
                         size_t iplen)
{
    char a[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &in->sin_addr, a, sizeof(a));
        port = ntohs(in->sin_port);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, a, sizeof(a));
        port = ntohs(in6->sin6_port);
    }
    if (out) {
        if (sa->sa_family == AF_INET6)
            snprintf(out, outlen, "[%s]:%u", a, port);
        else
            snprintf(out, outlen, "%s:%u", a, port);
    }
    if (ip)
        snprintf(ip, iplen, "%s", a);
}

int tt_px_c_command(char *out, size_t outlen, const char *bound, const char *name,
                    const char *token_file, const char *fp)
{
    char dial[96];
    const char *colon = strrchr(bound, ':');
    int wild = colon && (bound[0] == ':' || !strncmp(bound, "0.0.0.0:", 8) ||
                         !strncmp(bound, "[::]:", 5));
    if (wild)
        snprintf(dial, sizeof(dial), "127.0.0.1%s", colon);
    else
        snprintf(dial, sizeof(dial), "%s", bound);
    int n = snprintf(out, outlen, "bin/c --proxy %s --name %s --token-file %s --fingerprint %s --root DIR\n",
                     dial, name, token_file, fp);
    if (n < 0 || (size_t)n >= outlen)
        return -1;
    if (wild) {
        int m = snprintf(out + n, outlen - (size_t)n,
                         "# p listens for tunnels on every address (%s): from another machine, "
                         "put this host's public name or address in place of 127.0.0.1, and "
                         "copy %s there (it holds the secret)\n",
                         bound, token_file);
        if (m < 0 || (size_t)m >= outlen - (size_t)n)
            return -1;
        n += m;
    }
    return n;
}

void tt_px_c_token_path(char *out, size_t outlen, const char *state_dir, const char *name)
{
    char abs[PATH_MAX];
    /* Absolute, so a printed command works from any folder. */
    if (!realpath(state_dir, abs))
        snprintf(abs, sizeof(abs), "%s", state_dir);
    snprintf(out, outlen, "%s/c-%s.token", abs, name);
}

int tt_px_tokens_header(char *out, size_t outlen)
{
    int n = snprintf(out, outlen,
                     "# tether tokens: \"NAME sha256:HASH [calls=NAME,NAME...|calls=*]\" per line,\n"
                     "# the SHA-256 of each name's token (a plain \"NAME TOKEN\" is read too).\n"
                     "# Edit with 'p token add|list|revoke'; c reads its token from its own file.\n");
    return n < 0 || (size_t)n >= outlen ? 0 : n;
}

int tt_px_tokens_line(char *out, size_t outlen, const char *name, const char *token,
                      size_t token_len, const char *calls)
{
    uint8_t h[32];
    char hex[65];
    tt_sha256(token, token_len, h);
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", h[i]);
    int n = snprintf(out, outlen, "%s sha256:%s%s%s\n", name, hex, calls ? " calls=" : "",
                     calls ? calls : "");
    return n < 0 || (size_t)n >= outlen ? 0 : n;
}

int tt_px_write_file(const char *path, const void *data, size_t len, mode_t mode, char *err,
                     size_t errlen)
{
    char tmp[4200], dir[4200];
    snprintf(dir, sizeof(dir), "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash == dir)
        dir[1] = 0;
    else if (slash)
        *slash = 0;
    else
        snprintf(dir, sizeof(dir), ".");
    unsigned char r[6];
    if (tt_random_bytes(r, sizeof(r)) != 0) {
        cfg_err(err, errlen, "%s: no randomness for a temporary name", path);
        return -1;
    }
    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp-%02x%02x%02x%02x%02x%02x", path, r[0], r[1], r[2],
                         r[3], r[4], r[5]) >= sizeof(tmp)) {
        cfg_err(err, errlen, "%s: path too long", path);
        return -1;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0) {
        cfg_err(err, errlen, "%s: %s", tmp, strerror(errno));
        return -1;
    }
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(fd, (const char *)data + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            goto fail;
        off += (size_t)w;
    }
    if (fchmod(fd, mode) != 0 || fsync(fd) != 0)
        goto fail;
    if (close(fd) != 0) {
        fd = -1;
        goto fail;
    }
    fd = -1;
    if (rename(tmp, path) != 0)
        goto fail;
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        (void)fsync(dfd); /* the rename itself on disk */
        close(dfd);
    }
    return 0;
fail:;
    int e = errno ? errno : EIO;
    if (fd >= 0)
        close(fd);
    unlink(tmp);
    cfg_err(err, errlen, "%s: %s", path, strerror(e));
    return -1;
}

/* --- Names and tokens --------------------------------------------------- */

/* A name is a DNS label (it routes <name>.DOMAIN) that is also safe as a path
 * segment and in a log line: letters, digits, '-' and '_', 1..63 bytes. */
int tt_px_name_valid(const char *s, size_t len)
{
    if (len == 0 || len > TT_PX_NAME_MAX)
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '-' || ch == '_'))
            return 0;
    }
    return 1;
}

void tt_px_tokens_free(struct tt_px_tokens *t)
{
    for (size_t i = 0; i < t->n; i++)
        tt_mem_free(t->v[i].calls);
    tt_mem_free(t->v);
    memset(t, 0, sizeof(*t));
}

static int tok_is_space(char c) { return c == ' ' || c == '\t' || c == '\r'; }

/* "a,b,c" of valid names, or "*". */
static int tok_calls_valid(const char *s, size_t len)
{
    if (len == 1 && s[0] == '*')
        return 0;
    size_t st = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && s[i] != ',')
            continue;
        if (!tt_px_name_valid(s + st, i - st))
            return -1;
        st = i + 1;
    }
    return 0;
}

const struct tt_px_token *tt_px_tokens_find(const struct tt_px_tokens *t, const char *name,
                                            size_t name_len)
{
    for (size_t k = 0; k < t->n; k++)
        if (strlen(t->v[k].name) == name_len && strncasecmp(t->v[k].name, name, name_len) == 0)
            return &t->v[k];
    return NULL;
}

int tt_px_token_may_call(const struct tt_px_token *tk, const char *name, size_t name_len)
{
    const char *s = tk ? tk->calls : NULL;
    if (!s)
        return 0;
    if (!strcmp(s, "*"))
        return 1;
    while (*s) {
        const char *e = strchr(s, ',');
        size_t l = e ? (size_t)(e - s) : strlen(s);
        if (l == name_len && strncasecmp(s, name, l) == 0)
            return 1;
        if (!e)
            break;
        s = e + 1;
    }
    return 0;
}

int tt_px_tokens_parse(struct tt_px_tokens *t, const char *text, size_t len, const char *file,
                       char *err, size_t errlen)
{
    memset(t, 0, sizeof(*t));
    size_t line = 0, pos = 0;
    while (pos < len) {
        line++;
        const char *ls = text + pos;
        const char *nl = memchr(ls, '\n', len - pos);
        size_t ll = nl ? (size_t)(nl - ls) : len - pos;
        pos += ll + (nl ? 1 : 0);
        if (memchr(ls, '\0', ll)) {
            cfg_err(err, errlen, "tokens %s:%zu: NUL byte in line", file, line);
            goto fail;
        }
        /* Split into fields on spaces and tabs; '#' starts a comment only at
         * the start of a field, so tokens may not contain one mid-field... */
        const char *f[4];
        size_t fl[4];
        int nf = 0;
        size_t i = 0;
        while (i < ll) {
            while (i < ll && tok_is_space(ls[i]))
                i++;
            if (i >= ll || ls[i] == '#')
                break;
            size_t st = i;
            while (i < ll && !tok_is_space(ls[i]))
                i++;
            if (nf < 4) {
                f[nf] = ls + st;
                fl[nf] = i - st;
            }
            nf++;
        }
        if (nf == 0)
            continue;
        if (nf == 1) {
            cfg_err(err, errlen, "tokens %s:%zu: missing token after the name (want NAME TOKEN)",
                    file, line);
            goto fail;
        }
        if (nf > 3 || (nf == 3 && (fl[2] < 6 || memcmp(f[2], "calls=", 6) != 0))) {
            cfg_err(err, errlen,
                    "tokens %s:%zu: too many fields (want NAME TOKEN [calls=NAME,NAME...|calls=*])",
                    file, line);
            goto fail;
        }
        if (nf == 3 && tok_calls_valid(f[2] + 6, fl[2] - 6) < 0) {
            cfg_err(err, errlen,
                    "tokens %s:%zu: bad calls= list (names separated by ',', or '*' for all)",
                    file, line);
            goto fail;
        }
        if (!tt_px_name_valid(f[0], fl[0])) {
            cfg_err(err, errlen,
                    "tokens %s:%zu: bad name (letters, digits, '-' and '_', at most %d)", file,
                    line, TT_PX_NAME_MAX);
            goto fail;
        }
        uint8_t hash[32];
        int plain = 1;
        if (fl[1] >= 7 && !strncmp(f[1], "sha256:", 7)) {
            /* What p writes: the hash of a 256-bit token. */
            plain = 0;
            if (fl[1] != 7 + 64) {
                cfg_err(err, errlen, "tokens %s:%zu: sha256: wants 64 hex digits", file, line);
                goto fail;
            }
            for (int k = 0; k < 32; k++) {
                int hi = tt_hex_value(f[1][7 + 2 * k]), lo = tt_hex_value(f[1][8 + 2 * k]);
                if (hi < 0 || lo < 0) {
                    cfg_err(err, errlen, "tokens %s:%zu: sha256: wants 64 hex digits", file,
                            line);
                    goto fail;
                }
                hash[k] = (uint8_t)(hi << 4 | lo);
            }
        }
        if (plain && fl[1] < 8) {
            cfg_err(err, errlen, "tokens %s:%zu: token too short (at least 8 characters)", file,
                    line);
            goto fail;
        }
        if (fl[1] > 1024) {
            cfg_err(err, errlen, "tokens %s:%zu: token too long (at most 1024 characters)", file,
                    line);
            goto fail;
        }
        for (size_t k = 0; plain && k < fl[1]; k++) {
            unsigned char ch = (unsigned char)f[1][k];
            if (ch < 0x21 || ch > 0x7e) {
                cfg_err(err, errlen, "tokens %s:%zu: token has a character that is not printable ASCII",
                        file, line);
                goto fail;
            }
        }
        if (plain)
            tt_sha256(f[1], fl[1], hash);
        for (size_t k = 0; k < t->n; k++) {
            if (strlen(t->v[k].name) == fl[0] && strncasecmp(t->v[k].name, f[0], fl[0]) == 0) {
                cfg_err(err, errlen, "tokens %s:%zu: name %.*s appears twice", file, line,
                        (int)fl[0], f[0]);
                goto fail;
            }
            /* A token belongs to one name (DESIGN.md): 403 depends on it. */
            if (memcmp(t->v[k].hash, hash, 32) == 0) {
                cfg_err(err, errlen, "tokens %s:%zu: this token is already given to name %s", file,
                        line, t->v[k].name);
                goto fail;
            }
        }
        if (t->n == t->cap) {
            size_t nc = t->cap ? t->cap * 2 : 8;
            struct tt_px_token *nv = tt_mem_realloc(t->v, nc * sizeof(*nv));
            if (!nv) {
                cfg_err(err, errlen, "tokens %s: out of memory", file);
                goto fail;
            }
            t->v = nv;
            t->cap = nc;
        }
        struct tt_px_token *tk = &t->v[t->n];
        memset(tk, 0, sizeof(*tk));
        memcpy(tk->name, f[0], fl[0]);
        memcpy(tk->hash, hash, 32);
        tk->line = line;
        tk->plain = (uint8_t)plain;
        if (plain && !t->n_plain++)
            t->first_plain_line = line;
        t->n++; /* counted now: a failure below frees it with the rest */
        if (nf == 3 && !(tk->calls = tt_mem_alloc(fl[2] - 6 + 1))) {
            cfg_err(err, errlen, "tokens %s: out of memory", file);
            goto fail;
        }
        if (nf == 3) {
            memcpy(tk->calls, f[2] + 6, fl[2] - 6);
            tk->calls[fl[2] - 6] = 0;
        }
    }
    /* No line at all is a file whose last name was revoked: every tunnel
     * is refused (main.c says so), not an error. */
    return 0;
fail:
    tt_px_tokens_free(t);
    return -1;
}

int tt_px_tokens_load(struct tt_px_tokens *t, const char *file, char *err, size_t errlen)
{
    int fd = open(file, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        cfg_err(err, errlen, "tokens %s: %s", file, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > 16 * 1024 * 1024) {
        cfg_err(err, errlen, "tokens %s: not a regular file of sane size", file);
        close(fd);
        return -1;
    }
    size_t n = (size_t)st.st_size;
    char *buf = tt_mem_alloc(n + 1);
    if (!buf) {
        close(fd);
        cfg_err(err, errlen, "tokens %s: out of memory", file);
        return -1;
    }
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    int rc = tt_px_tokens_parse(t, buf, got, file, err, errlen);
    memset(buf, 0, got);
    tt_mem_free(buf);
    return rc;
}

int tt_px_tokens_check(const struct tt_px_tokens *t, const char *name, size_t name_len,
                       const uint8_t *token, size_t token_len)
{
    /* Compare against every entry, whatever matches first, so the time taken
     * says nothing about which token or name is close. */
    int own = 0, other = 0;
    uint8_t h[32];
    tt_sha256(token, token_len, h);
    for (size_t i = 0; i < t->n; i++) {
        int eq = tt_ct_equal(t->v[i].hash, 32, h, 32);
        int same_name =
            strlen(t->v[i].name) == name_len && strncasecmp(t->v[i].name, name, name_len) == 0;
        own |= eq & same_name;
        other |= eq & !same_name;
    }
    if (own)
        return 0;
    return other ? 403 : 401;
}

int tt_px_tokens_still(const struct tt_px_tokens *t, const char *name, const uint8_t hash[32])
{
    const struct tt_px_token *e = tt_px_tokens_find(t, name, strlen(name));
    return e && tt_ct_equal(e->hash, 32, hash, 32);
}

/* --- Flags ---------------------------------------------------------------- */

void tt_px_config_usage(FILE *out)
{
    fprintf(out,
            "usage: p [flags]\n"
            "tether proxy: clients send HTTP here; origins (bin/c) dial in over TLS.\n"
            "\n"
            "  --listen ADDR          client front, HTTP/1.1 and h2c (host:port, [v6]:port,\n"
            "                         :port), or 'off' [default 0.0.0.0:8080]\n"
            "  --https-listen ADDR    HTTPS client front: h2 or HTTP/1.1 by ALPN [default: off]\n"
            "  --https-cert FILE      its certificate chain (PEM) [default: the tunnel's, --cert]\n"
            "  --https-key FILE       its private key (PEM) [default: the tunnel's, --key]\n"
            "  --tunnel-listen ADDR   TLS listener where c dials in [default 0.0.0.0:7443]\n"
            "  --admin-listen ADDR    /metrics, /status, /api/tunnels, /ready, /live; keep it on\n"
            "                         loopback or a private network [default: off]\n"
            "  --drain-delay SECS     on SIGTERM, /ready says 503 this long while p still serves,\n"
            "                         then it drains (a balancer's time to notice) [default 0]\n"
            "  --proxy-protocol on|off  client fronts (HTTP and HTTPS) take a PROXY protocol v2\n"
            "                         header first, from an L4 balancer: its client address is\n"
            "                         the one logged and forwarded; none -> closed [default off]\n"
            "  --cert FILE            tunnel certificate (PEM) [default: self-signed in --state-dir]\n"
            "  --key FILE             tunnel private key (PEM) [default: self-signed in --state-dir]\n"
            "  --state-dir DIR        where the self-signed certificate and the tokens file are\n"
            "                         kept [default ./tether-state]\n"
            "  --tokens FILE          'NAME TOKEN' per line, # comments [default: DIR/tokens,\n"
            "                         made with a random token for name 'default']\n"
            "  --domain DOMAIN        route <name>.DOMAIN by Host [default: none]\n"
            "  --path-prefix PREFIX   route PREFIX<name>/rest to name, prefix stripped\n"
            "                         [default: none]\n"
            "  --default NAME         name for everything else [default: the only connected name]\n"
            "  --log-level LEVEL      error|warn|info|debug [default info]\n"
            "  --log-format text|json one line of text per event, or one JSON object with\n"
            "                         the line's key=value fields [default text]\n"
            "  --ping-interval SECS   keepalive PING on an idle tunnel [default 15]\n"
            "  --ping-timeout SECS    no answer within this: tunnel dropped [default 10]\n"
            "  --max-tunnels N        more tunnels are refused with 503 [default 10000]\n"
            "  --client-idle SECS     close a client connection (HTTP/1.1 keep-alive or HTTP/2)\n"
            "                         with no request under way after this [default 60]\n"
            "  --stream-idle SECS     close a WebSocket or --tcp-listen stream that moved no\n"
            "                         byte either way for this long [default: never]\n"
            "  --max-clients N        client connections at once; more are closed at once\n"
            "                         [default: 3/4 of the open-file limit]\n"
            "  --underscore-fields drop|keep\n"
            "                         request fields with '_' in their names (CGI/WSGI apps\n"
            "                         read them as the '-' ones) [default drop]\n"
            "  --service NAME=URL     a service on p's side (http://HOST:PORT, h2c://HOST:PORT,\n"
            "                         or tcp://HOST:PORT for c --local-tcp) that origins may\n"
            "                         call by NAME over their forward link; repeatable\n"
            "  --tcp-listen ADDR=NAME each TCP connection accepted at ADDR goes to NAME as a\n"
            "                         CONNECT stream (c --tcp HOST:PORT serves it); repeatable\n"
            "  --affinity-header NAME requests with the same value of this header go to the same\n"
            "                         pool member while it is up (rendezvous hashing)\n"
            "  --config FILE          read these flags from FILE, 'key = value' a line, each key\n"
            "                         a flag without '--' (docs/examples/p.conf); flags given\n"
            "                         here override it\n"
            "  --help                 this text\n"
            "  --version              print the version\n"
            "\n"
            "  p token add NAME [--calls LIST] | list | revoke NAME  [flags]\n"
            "                         edit the tokens file and tell a running p (p token --help)\n"
            "SIGHUP reloads the tokens file; SIGTERM/SIGINT drain.\n");
}

/* RFC 9110 §5.1: a field name is a token. */
static int cfg_field_name_valid(const char *v)
{
    if (!*v)
        return 0;
    for (; *v; v++)
        if (!isalnum((unsigned char)*v) && !strchr("!#$%&'*+-.^_`|~", *v))
            return 0;
    return 1;
}

static int cfg_uint(const char *flag, const char *v, uint32_t min, uint32_t max, uint32_t *out,
                    char *err, size_t errlen)
{
    char *end;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    if (!*v || *end || errno || v[0] == '-' || n < min || n > max) {
        cfg_err(err, errlen, "%s: '%s' is not a whole number from %u to %u", flag, v, min, max);
        return -1;
    }
    *out = (uint32_t)n;
    return 0;
}

/* Every flag that takes a value; a --config file has the same keys, without
 * the "--" ("config" itself excepted). */
static const char *const cfg_with_value[] = {
    "--listen", "--https-listen", "--admin-listen", "--https-cert", "--https-key", "--tunnel-listen", "--cert", "--key", "--state-dir", "--tokens", "--domain",
    "--path-prefix", "--default", "--log-level", "--log-format", "--ping-interval", "--ping-timeout",
    "--max-tunnels", "--client-idle", "--stream-idle", "--drain-delay", "--proxy-protocol", "--underscore-fields", "--max-clients", "--service",
    "--affinity-header", "--tcp-listen", "--config"};

static int cfg_known(const char *flag)
{
    for (size_t k = 0; k < sizeof(cfg_with_value) / sizeof(cfg_with_value[0]); k++)
        if (!strcmp(flag, cfg_with_value[k]))
            return 1;
    return 0;
}

/* Values read from a --config file live as long as the configuration. */
struct tt_px_cfg_str {
    struct tt_px_cfg_str *next;
    char s[];
};

void tt_px_config_free(struct tt_px_config *cfg)
{
    while (cfg->owned) {
        struct tt_px_cfg_str *o = cfg->owned;
        cfg->owned = o->next;
        tt_mem_free(o);
    }
}

/* One flag and its value, from the command line or the file. */
static int cfg_set(struct tt_px_config *cfg, const char *flag, const char *v, char *err,
                   size_t errlen)
{
    /* Addresses and names are checked here too, so an error in a --config
     * file names its line; the checks after the flags need them all. */
    struct tt_px_addr a;
    char why[160];
    if ((!strcmp(flag, "--listen") || !strcmp(flag, "--https-listen") ||
         !strcmp(flag, "--tunnel-listen") || !strcmp(flag, "--admin-listen")) &&
        strcmp(v, "off") && tt_px_parse_addr(v, &a, why, sizeof(why)) < 0) {
        cfg_err(err, errlen, "%s: %s%s", flag, why, strcmp(flag, "--tunnel-listen") ? " (or 'off')" : "");
        return -1;
    }
    if (!strcmp(flag, "--default") && !tt_px_name_valid(v, strlen(v))) {
        cfg_err(err, errlen, "--default: '%s' is not a valid name (letters, digits, '-', '_')", v);
        return -1;
    }
    if (!strcmp(flag, "--path-prefix") && v[0] != '/') {
        cfg_err(err, errlen, "--path-prefix: '%s' must start with '/'", v);
        return -1;
    }
    if (!strcmp(flag, "--listen"))
        cfg->listen = v;
    else if (!strcmp(flag, "--https-listen"))
        cfg->https_listen = v;
    else if (!strcmp(flag, "--https-cert"))
        cfg->https_cert = v;
    else if (!strcmp(flag, "--https-key"))
        cfg->https_key = v;
    else if (!strcmp(flag, "--tunnel-listen"))
        cfg->tunnel_listen = v;
    else if (!strcmp(flag, "--admin-listen"))
        cfg->admin_listen = strcmp(v, "off") ? v : NULL;
    else if (!strcmp(flag, "--cert"))
        cfg->cert = v;
    else if (!strcmp(flag, "--key"))
        cfg->key = v;
    else if (!strcmp(flag, "--state-dir"))
        cfg->state_dir = v;
    else if (!strcmp(flag, "--tokens"))
        cfg->tokens_file = v;
    else if (!strcmp(flag, "--domain"))
        cfg->domain = v;
    else if (!strcmp(flag, "--path-prefix"))
        cfg->path_prefix = v;
    else if (!strcmp(flag, "--default"))
        cfg->default_name = v;
    else if (!strcmp(flag, "--log-level")) {
        int l = tt_log_parse_level(v);
        if (l < 0) {
            cfg_err(err, errlen, "--log-level: '%s' is not one of error|warn|info|debug", v);
            return -1;
        }
        cfg->log_level = l;
    } else if (!strcmp(flag, "--log-format")) {
        if (strcmp(v, "text") && strcmp(v, "json")) {
            cfg_err(err, errlen, "--log-format: '%s' is not text or json", v);
            return -1;
        }
        cfg->log_json = !strcmp(v, "json");
    } else if (!strcmp(flag, "--ping-interval")) {
        if (cfg_uint(flag, v, 1, 86400, &cfg->ping_interval_s, err, errlen) < 0)
            return -1;
    } else if (!strcmp(flag, "--ping-timeout")) {
        if (cfg_uint(flag, v, 1, 86400, &cfg->ping_timeout_s, err, errlen) < 0)
            return -1;
    } else if (!strcmp(flag, "--client-idle")) {
        if (cfg_uint(flag, v, 1, 86400, &cfg->client_idle_s, err, errlen) < 0)
            return -1;
    } else if (!strcmp(flag, "--stream-idle")) {
        if (cfg_uint(flag, v, 0, 604800, &cfg->stream_idle_s, err, errlen) < 0)
            return -1;
    } else if (!strcmp(flag, "--drain-delay")) {
        if (cfg_uint(flag, v, 0, 3600, &cfg->drain_delay_s, err, errlen) < 0)
            return -1;
    } else if (!strcmp(flag, "--proxy-protocol")) {
        if (strcmp(v, "on") && strcmp(v, "off")) {
            cfg_err(err, errlen, "--proxy-protocol: '%s' is not on or off", v);
            return -1;
        }
        cfg->proxy_protocol = !strcmp(v, "on");
    } else if (!strcmp(flag, "--max-clients")) {
        if (cfg_uint(flag, v, 1, 10000000, &cfg->max_clients, err, errlen) < 0)
            return -1;
    } else if (!strcmp(flag, "--underscore-fields")) {
        if (strcmp(v, "drop") && strcmp(v, "keep")) {
            cfg_err(err, errlen, "--underscore-fields: '%s' is not drop or keep", v);
            return -1;
        }
        cfg->keep_underscores = !strcmp(v, "keep");
    } else if (!strcmp(flag, "--service")) {
        const char *eqs = strchr(v, '=');
        if (!eqs || !tt_px_name_valid(v, (size_t)(eqs - v)) ||
            (strncmp(eqs + 1, "http://", 7) && strncmp(eqs + 1, "h2c://", 6) &&
             strncmp(eqs + 1, "tcp://", 6))) {
            cfg_err(err, errlen,
                    "--service: '%s' is not NAME=http://HOST:PORT, NAME=h2c://HOST:PORT or "
                    "NAME=tcp://HOST:PORT", v);
            return -1;
        }
        for (size_t k = 0; k < cfg->n_services; k++)
            if (strlen(cfg->services[k].name) == (size_t)(eqs - v) &&
                !strncasecmp(cfg->services[k].name, v, (size_t)(eqs - v))) {
                cfg_err(err, errlen, "--service: name '%.*s' given twice", (int)(eqs - v), v);
                return -1;
            }
        if (cfg->n_services == TT_PX_SERVICES_MAX) {
            cfg_err(err, errlen, "--service: at most %d", TT_PX_SERVICES_MAX);
            return -1;
        }
        struct tt_px_service *sv = &cfg->services[cfg->n_services++];
        memcpy(sv->name, v, (size_t)(eqs - v));
        sv->name[eqs - v] = 0;
        sv->url = eqs + 1;
    } else if (!strcmp(flag, "--tcp-listen")) {
        const char *eqs = strrchr(v, '=');
        char addr[96];
        if (!eqs || !tt_px_name_valid(eqs + 1, strlen(eqs + 1)) ||
            (size_t)(eqs - v) >= sizeof(addr)) {
            cfg_err(err, errlen, "--tcp-listen: '%s' is not ADDR=NAME", v);
            return -1;
        }
        if (cfg->n_tcp == TT_PX_TCP_LISTEN_MAX) {
            cfg_err(err, errlen, "--tcp-listen: at most %d", TT_PX_TCP_LISTEN_MAX);
            return -1;
        }
        struct tt_px_tcp_listen *tl = &cfg->tcp[cfg->n_tcp];
        memcpy(addr, v, (size_t)(eqs - v));
        addr[eqs - v] = 0;
        if (tt_px_parse_addr(addr, &tl->addr, why, sizeof(why)) < 0) {
            cfg_err(err, errlen, "--tcp-listen %s: %s", v, why);
            return -1;
        }
        snprintf(tl->name, sizeof(tl->name), "%s", eqs + 1);
        cfg->n_tcp++;
    } else if (!strcmp(flag, "--affinity-header")) {
        if (!cfg_field_name_valid(v)) {
            cfg_err(err, errlen, "--affinity-header: '%s' is not a header name", v);
            return -1;
        }
        cfg->affinity_header = v;
    } else if (!strcmp(flag, "--max-tunnels")) {
        if (cfg_uint(flag, v, 1, 1000000, &cfg->max_tunnels, err, errlen) < 0)
            return -1;
    }
    return 0;
}

struct cfg_file_ctx {
    struct tt_px_config *cfg;
};

static int cfg_file_key(void *ud, const char *key, const char *value, char *err, size_t errlen)
{
    struct tt_px_config *cfg = ((struct cfg_file_ctx *)ud)->cfg;
    char flag[40];
    if (strlen(key) + 3 > sizeof(flag) || (snprintf(flag, sizeof(flag), "--%s", key), !cfg_known(flag)) ||
        !strcmp(key, "config")) {
        cfg_err(err, errlen, "unknown key (the keys are p's flags without '--': see p --help)");
        return -1;
    }
    size_t n = strlen(value);
    struct tt_px_cfg_str *o = tt_mem_alloc(sizeof(*o) + n + 1);
    if (!o) {
        cfg_err(err, errlen, "out of memory");
        return -1;
    }
    memcpy(o->s, value, n + 1);
    o->next = cfg->owned;
    cfg->owned = o;
    return cfg_set(cfg, flag, o->s, err, errlen);
}


int tt_px_config_parse(struct tt_px_config *cfg, int argc, char **argv, char *err, size_t errlen)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->listen = "0.0.0.0:8080";
    cfg->tunnel_listen = "0.0.0.0:7443";
    cfg->state_dir = "./tether-state";
    cfg->log_level = TT_LOG_INFO;
    cfg->ping_interval_s = 15;
    cfg->ping_timeout_s = 10;
    cfg->max_tunnels = 10000;
    cfg->client_idle_s = 60;

    /* --config first, whatever its place: the flags override the file. */
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--config") && i + 1 < argc)
            cfg->config_file = argv[++i];
        else if (!strncmp(argv[i], "--config=", 9))
            cfg->config_file = argv[i] + 9;
    }
    if (cfg->config_file) {
        struct cfg_file_ctx fc = {.cfg = cfg};
        char why[1200];
        if (tt_conffile_read(cfg->config_file, cfg_file_key, &fc, why, sizeof(why)) < 0) {
            cfg_err(err, errlen, "--config %s", why);
            return -1;
        }
    }
    /* Repeatable flags on the command line replace the file's list. */
    int cli_services = 0, cli_tcp = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            tt_px_config_usage(stdout);
            return 1;
        }
        if (!strcmp(a, "--version")) {
            printf("tether-p %s\n", TT_VERSION);
            return 1;
        }
        char flag[32];
        const char *v = NULL;
        const char *eq = strchr(a, '=');
        if (strncmp(a, "--", 2) == 0 && eq && (size_t)(eq - a) < sizeof(flag)) {
            memcpy(flag, a, (size_t)(eq - a));
            flag[eq - a] = 0;
            v = eq + 1;
        } else {
            snprintf(flag, sizeof(flag), "%s", a);
        }
        if (!cfg_known(flag)) {
            cfg_err(err, errlen, "unknown flag '%s' (see --help)", a);
            return -1;
        }
        if (!v) {
            if (i + 1 >= argc) {
                cfg_err(err, errlen, "%s needs a value", flag);
                return -1;
            }
            v = argv[++i];
        }
        if (!strcmp(flag, "--config"))
            continue;
        if (!strcmp(flag, "--service") && !cli_services++)
            cfg->n_services = 0;
        if (!strcmp(flag, "--tcp-listen") && !cli_tcp++)
            cfg->n_tcp = 0;
        if (cfg_set(cfg, flag, v, err, errlen) < 0)
            return -1;
    }
    char why[160];
    cfg->listen_off = !strcmp(cfg->listen, "off");
    if (cfg->https_listen && !strcmp(cfg->https_listen, "off"))
        cfg->https_listen = NULL;
    if (!cfg->listen_off && tt_px_parse_addr(cfg->listen, &cfg->listen_addr, why, sizeof(why)) < 0) {
        cfg_err(err, errlen, "--listen: %s (or 'off')", why);
        return -1;
    }
    if (cfg->admin_listen &&
        tt_px_parse_addr(cfg->admin_listen, &cfg->admin_addr, why, sizeof(why)) < 0) {
        cfg_err(err, errlen, "--admin-listen: %s", why);
        return -1;
    }
    if (cfg->https_listen &&
        tt_px_parse_addr(cfg->https_listen, &cfg->https_addr, why, sizeof(why)) < 0) {
        cfg_err(err, errlen, "--https-listen: %s", why);
        return -1;
    }
    if (cfg->listen_off && !cfg->https_listen) {
        cfg_err(err, errlen, "--listen off leaves no client front: add --https-listen ADDR");
        return -1;
    }
    if ((cfg->https_cert != NULL) != (cfg->https_key != NULL)) {
        cfg_err(err, errlen, "--https-cert and --https-key go together: give both");
        return -1;
    }
    if (cfg->https_cert && !cfg->https_listen) {
        cfg_err(err, errlen, "--https-cert and --https-key need --https-listen ADDR");
        return -1;
    }
    if (tt_px_parse_addr(cfg->tunnel_listen, &cfg->tunnel_addr, why, sizeof(why)) < 0) {
        cfg_err(err, errlen, "--tunnel-listen: %s", why);
        return -1;
    }
    if ((cfg->cert != NULL) != (cfg->key != NULL)) {
        cfg_err(err, errlen, "--cert and --key go together");
        return -1;
    }
    if (!*cfg->state_dir) {
        cfg_err(err, errlen, "--state-dir: empty");
        return -1;
    }
    if (cfg->domain) {
        while (*cfg->domain == '.')
            cfg->domain++;
        size_t dl = strlen(cfg->domain);
        if (dl == 0 || dl > 253) {
            cfg_err(err, errlen, "--domain: empty or too long");
            return -1;
        }
        for (size_t k = 0; k < dl; k++) {
            unsigned char ch = (unsigned char)cfg->domain[k];
            if (!(ch == '.' || ch == '-' || (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') ||
                  (ch >= 'A' && ch <= 'Z'))) {
                cfg_err(err, errlen, "--domain: '%s' is not a domain name", cfg->domain);
                return -1;
            }
        }
    }
    if (cfg->path_prefix) {
        const char *p = cfg->path_prefix;
        if (p[0] != '/') {
            cfg_err(err, errlen, "--path-prefix: '%s' must start with '/'", p);
            return -1;
        }
        for (; *p; p++)
            if (*p <= 0x20 || *p == '?' || *p == '#' || *p == '%' || *p == 0x7f) {
                cfg_err(err, errlen, "--path-prefix: '%s' has a character not allowed in a prefix",
                        cfg->path_prefix);
                return -1;
            }
    }
    if (cfg->default_name && !tt_px_name_valid(cfg->default_name, strlen(cfg->default_name))) {
        cfg_err(err, errlen, "--default: '%s' is not a valid name (letters, digits, '-', '_')",
                cfg->default_name);
        return -1;
    }
    return 0;
}
