/*
 * `p token add|list|revoke NAME`: the tokens file edited by p itself
 * (README "Tokens").
 *
 * The file stays the operator's: comments and the order of lines are kept,
 * a new entry is appended, a revoked one is cut out.  Every edit is checked
 * by parsing the result as p will, written to a temporary file in the same
 * folder, fsynced and renamed over the old one (tt_px_write_file), under a
 * lock on the folder so two edits at once cannot lose one.  Then a running
 * p is told with SIGHUP (its pid in STATE/p.pid) and reloads.
 *
 * `add` makes a 256-bit random token, writes only its hash to the tokens
 * file and the token itself to c's token file (STATE/c-NAME.token, 0600),
 * and prints the c command that reads it: the secret never appears on a
 * command line (ps) or in p's files.
 */
#include "proxy/proxy.h"

#include "proto/log.h"
#include "proto/tls.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define TOK_FILE_MAX (16u << 20)

static const char tok_usage[] =
    "usage: p token add NAME [--calls NAME,NAME...|--calls '*'] [p's flags]\n"
    "       p token list [p's flags]\n"
    "       p token revoke NAME [p's flags]\n"
    "\n"
    "Edits p's tokens file (--tokens, or --state-dir's tokens; --config FILE\n"
    "gives them too) and tells a running p to reload (SIGHUP, its pid in\n"
    "STATE/p.pid).  add makes a 256-bit random token, keeps only its SHA-256\n"
    "in the tokens file, writes the token to c's file STATE/c-NAME.token and\n"
    "prints the c command that reads it.  list shows names and calls=, never\n"
    "a token.  revoke removes NAME (and its c token file): p closes its\n"
    "tunnels.\n";

/* The whole file, NUL-terminated; *len 0 and 0 returned when it does not
 * exist yet.  Returns -1 with err on failure. */
static int tok_read(const char *path, char **out, size_t *len, char *err, size_t errlen)
{
    *out = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return 0;
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (size_t)st.st_size > TOK_FILE_MAX) {
        snprintf(err, errlen, "%s: not a regular file of sane size", path);
        close(fd);
        return -1;
    }
    char *buf = tt_mem_alloc((size_t)st.st_size + 2);
    if (!buf) {
        close(fd);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    buf[got] = 0;
    *out = buf;
    *len = got;
    return 0;
}

static void tok_wipe_free(char *p, size_t n)
{
    if (!p)
        return;
    volatile char *v = p;
    for (size_t i = 0; i < n; i++)
        v[i] = 0;
    tt_mem_free(p);
}

/* 1 when the line [ls, ls+ll) is the entry of `name` (its first field). */
static int tok_line_is(const char *ls, size_t ll, const char *name)
{
    size_t i = 0;
    while (i < ll && (ls[i] == ' ' || ls[i] == '\t'))
        i++;
    size_t st = i;
    while (i < ll && ls[i] != ' ' && ls[i] != '\t' && ls[i] != '\r')
        i++;
    size_t nl = strlen(name);
    return i - st == nl && nl && ls[st] != '#' && strncasecmp(ls + st, name, nl) == 0;
}

int tt_px_tokens_text_remove(const char *text, size_t len, const char *name, char *out,
                             size_t *out_len)
{
    size_t pos = 0, o = 0;
    int found = 0;
    while (pos < len) {
        const char *ls = text + pos;
        const char *nl = memchr(ls, '\n', len - pos);
        size_t ll = nl ? (size_t)(nl - ls) : len - pos;
        size_t step = ll + (nl ? 1 : 0);
        if (tok_line_is(ls, ll, name))
            found = 1;
        else {
            memcpy(out + o, ls, step);
            o += step;
        }
        pos += step;
    }
    *out_len = o;
    return found;
}

/* Tells the p whose pid is in STATE/p.pid to reload, when it is this very
 * program (a stale pid file must not make us signal some other process). */
static void tok_signal_p(const char *state_dir)
{
    char path[4200], buf[32];
    snprintf(path, sizeof(path), "%s/p.pid", state_dir);
    FILE *f = fopen(path, "r");
    if (!f) {
        printf("no running p found (%s): p reads the tokens file when it starts\n", path);
        return;
    }
    long pid = 0;
    if (fgets(buf, sizeof(buf), f))
        pid = strtol(buf, NULL, 10);
    fclose(f);
    char exe[64];
    struct stat a, b;
    snprintf(exe, sizeof(exe), "/proc/%ld/exe", pid);
    if (pid <= 1 || stat(exe, &a) != 0 || stat("/proc/self/exe", &b) != 0 ||
        a.st_dev != b.st_dev || a.st_ino != b.st_ino) {
        printf("no running p found (%s names pid %ld, which is not this p): p reads the tokens "
               "file when it starts; send a running p SIGHUP to reload\n",
               path, pid);
        return;
    }
    if (kill((pid_t)pid, SIGHUP) != 0)
        printf("could not signal p (pid %ld): %s; send it SIGHUP to reload\n", pid, strerror(errno));
    else
        printf("told p (pid %ld) to reload\n", pid);
}

static int tok_check_calls(const char *v)
{
    if (!strcmp(v, "*"))
        return 0;
    const char *s = v;
    for (;;) {
        const char *e = strchr(s, ',');
        size_t l = e ? (size_t)(e - s) : strlen(s);
        if (!tt_px_name_valid(s, l))
            return -1;
        if (!e)
            return 0;
        s = e + 1;
    }
}

int tt_px_token_cmd(int argc, char **argv)
{
    /* argv: p token VERB [NAME] [flags...] */
    if (argc < 3 || !strcmp(argv[2], "--help") || !strcmp(argv[2], "-h")) {
        fputs(tok_usage, argc < 3 ? stderr : stdout);
        return argc < 3 ? 2 : 0;
    }
    const char *verb = argv[2];
    int want_name = !strcmp(verb, "add") || !strcmp(verb, "revoke");
    if (!want_name && strcmp(verb, "list")) {
        fprintf(stderr, "p token: unknown '%s' (add, list or revoke)\n", verb);
        return 2;
    }
    const char *name = NULL;
    int first = 3;
    if (want_name) {
        if (argc < 4 || argv[3][0] == '-') {
            fprintf(stderr, "p token %s: NAME is missing\n", verb);
            return 2;
        }
        name = argv[3];
        first = 4;
        if (!tt_px_name_valid(name, strlen(name))) {
            fprintf(stderr, "p token %s: '%s' is not a name (letters, digits, '-', '_', at most %d)\n",
                    verb, name, TT_PX_NAME_MAX);
            return 2;
        }
    }
    /* --calls is ours; every other flag is p's, parsed as p would. */
    const char *calls = NULL;
    char *pargv[256];
    int pargc = 0;
    pargv[pargc++] = argv[0];
    for (int i = first; i < argc && pargc < 255; i++) {
        if (!strcmp(verb, "add") && !strcmp(argv[i], "--calls") && i + 1 < argc)
            calls = argv[++i];
        else if (!strcmp(verb, "add") && !strncmp(argv[i], "--calls=", 8))
            calls = argv[i] + 8;
        else
            pargv[pargc++] = argv[i];
    }
    pargv[pargc] = NULL;
    if (calls && tok_check_calls(calls) < 0) {
        fprintf(stderr, "p token add: --calls '%s': names separated by ',', or '*' for all\n", calls);
        return 2;
    }
    struct tt_px_config cfg;
    char err[4400];
    int rc = tt_px_config_parse(&cfg, pargc, pargv, err, sizeof(err));
    if (rc != 0) {
        if (rc < 0)
            fprintf(stderr, "p token %s: %s\n", verb, err);
        tt_px_config_free(&cfg);
        return rc < 0 ? 2 : 0;
    }
    char tokens_path[4200];
    if (cfg.tokens_file)
        snprintf(tokens_path, sizeof(tokens_path), "%s", cfg.tokens_file);
    else
        snprintf(tokens_path, sizeof(tokens_path), "%s/tokens", cfg.state_dir);
    int ret = 1;
    char *text = NULL, *out = NULL;
    size_t len = 0, out_len = 0;
    struct tt_px_tokens t;
    memset(&t, 0, sizeof(t));

    /* The folder of the tokens file, locked for the whole edit. */
    char dir[4200];
    snprintf(dir, sizeof(dir), "%s", tokens_path);
    char *slash = strrchr(dir, '/');
    if (slash == dir)
        dir[1] = 0;
    else if (slash)
        *slash = 0;
    else
        snprintf(dir, sizeof(dir), ".");
    if (!strcmp(verb, "add") && !cfg.tokens_file && mkdir(cfg.state_dir, 0700) != 0 &&
        errno != EEXIST) {
        fprintf(stderr, "p token add: --state-dir %s: %s\n", cfg.state_dir, strerror(errno));
        tt_px_config_free(&cfg);
        return 1;
    }
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || flock(dfd, LOCK_EX) != 0) {
        fprintf(stderr, "p token %s: %s: %s\n", verb, dir, strerror(errno));
        goto out;
    }
    if (tok_read(tokens_path, &text, &len, err, sizeof(err)) < 0) {
        fprintf(stderr, "p token %s: tokens %s\n", verb, err);
        goto out;
    }
    if (!text && strcmp(verb, "add")) {
        fprintf(stderr, "p token %s: tokens %s: no such file\n", verb, tokens_path);
        goto out;
    }
    if (text && tt_px_tokens_parse(&t, text, len, tokens_path, err, sizeof(err)) < 0) {
        fprintf(stderr, "p token %s: %s (fix the file first)\n", verb, err);
        goto out;
    }

    if (!strcmp(verb, "list")) {
        for (size_t i = 0; i < t.n; i++)
            printf("%-20s calls=%s%s\n", t.v[i].name, t.v[i].calls ? t.v[i].calls : "(none)",
                   t.v[i].plain ? "  (token in plain text: revoke and add it again)" : "");
        if (!t.n)
            printf("(no names in %s)\n", tokens_path);
        ret = 0;
        goto out;
    }
    const struct tt_px_token *had = tt_px_tokens_find(&t, name, strlen(name));
    if (!strcmp(verb, "revoke")) {
        if (!had) {
            fprintf(stderr, "p token revoke: no name %s in %s\n", name, tokens_path);
            goto out;
        }
        if (!(out = tt_mem_alloc(len + 1)))
            goto oom;
        tt_px_tokens_text_remove(text, len, name, out, &out_len);
        if (tt_px_write_file(tokens_path, out, out_len, 0600, err, sizeof(err)) < 0) {
            fprintf(stderr, "p token revoke: %s\n", err);
            goto out;
        }
        char cpath[4400];
        tt_px_c_token_path(cpath, sizeof(cpath), cfg.state_dir, had->name);
        if (unlink(cpath) == 0)
            printf("removed %s\n", cpath);
        printf("revoked %s in %s\n", name, tokens_path);
        tok_signal_p(cfg.state_dir);
        ret = 0;
        goto out;
    }

    /* add */
    if (had) {
        fprintf(stderr, "p token add: %s already has a token in %s (line %zu): 'p token revoke %s' "
                "first to replace it\n", name, tokens_path, had->line, name);
        goto out;
    }
    unsigned char rnd[32];
    char tok[2 * sizeof(rnd) + 2];
    if (tt_random_bytes(rnd, sizeof(rnd)) != 0) {
        fprintf(stderr, "p token add: no randomness for a token\n");
        goto out;
    }
    for (size_t i = 0; i < sizeof(rnd); i++)
        snprintf(tok + 2 * i, 3, "%02x", rnd[i]);
    memset(rnd, 0, sizeof(rnd));
    size_t cap = len + 1024 + (calls ? strlen(calls) : 0);
    if (!(out = tt_mem_alloc(cap)))
        goto oom;
    if (text) {
        memcpy(out, text, len);
        out_len = len;
        if (len && text[len - 1] != '\n')
            out[out_len++] = '\n';
    } else {
        out_len = (size_t)tt_px_tokens_header(out, cap);
    }
    out_len += (size_t)tt_px_tokens_line(out + out_len, cap - out_len, name, tok, strlen(tok), calls);
    struct tt_px_tokens check;
    if (tt_px_tokens_parse(&check, out, out_len, tokens_path, err, sizeof(err)) < 0) {
        fprintf(stderr, "p token add: %s\n", err); /* cannot be: checked above */
        memset(tok, 0, sizeof(tok));
        goto out;
    }
    tt_px_tokens_free(&check);
    /* c's file first: a tokens file naming a token nobody holds is
     * harmless, a token whose hash never reached p is a puzzle. */
    char cpath[4400], cmd[9000], fp[80];
    tt_px_c_token_path(cpath, sizeof(cpath), cfg.state_dir, name);
    size_t tl = strlen(tok);
    tok[tl] = '\n';
    rc = tt_px_write_file(cpath, tok, tl + 1, 0600, err, sizeof(err));
    memset(tok, 0, sizeof(tok));
    if (rc < 0 || tt_px_write_file(tokens_path, out, out_len, 0600, err, sizeof(err)) < 0) {
        fprintf(stderr, "p token add: %s\n", err);
        if (rc == 0)
            unlink(cpath);
        goto out;
    }
    char certp[4200];
    if (cfg.cert)
        snprintf(certp, sizeof(certp), "%s", cfg.cert);
    else
        snprintf(certp, sizeof(certp), "%s/tunnel-cert.pem", cfg.state_dir);
    if (tt_tls_file_fingerprint(certp, fp, sizeof(fp)) < 0)
        snprintf(fp, sizeof(fp), "sha256:(the fingerprint p logs at start)");
    printf("added %s to %s; its token is in %s (copy it to the origin host: it is the secret)\n",
           name, tokens_path, cpath);
    if (tt_px_c_command(cmd, sizeof(cmd), cfg.tunnel_listen, name, cpath, fp) > 0)
        fputs(cmd, stdout);
    tok_signal_p(cfg.state_dir);
    ret = 0;
    goto out;
oom:
    fprintf(stderr, "p token %s: out of memory\n", verb);
out:
    if (dfd >= 0)
        close(dfd); /* the lock goes with it */
    tt_px_tokens_free(&t);
    tok_wipe_free(text, len);
    tok_wipe_free(out, out_len);
    tt_px_config_free(&cfg);
    return ret;
}
