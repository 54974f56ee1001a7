/*
 * p's configuration (config.c): the flags, the listen addresses and the
 * tokens file that says who may serve which name.
 */
#ifndef TT_PX_CONFIG_H
#define TT_PX_CONFIG_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/types.h>

#define TT_PX_NAME_MAX 63

struct tt_px_addr {
    struct sockaddr_storage ss;
    socklen_t len;
    char text[80]; /* "host:port" as given, for the log */
};

/* A tokens file line: NAME, what checks its token, calls=.  p keeps only
 * the SHA-256 of a token (the file says `sha256:HEX`; a plain token is
 * still read, hashed as it is read, and counted in n_plain so p can warn).
 * Tokens are 256 random bits, so an unsalted fast hash is enough: nothing
 * short enough to guess is ever hashed. */
struct tt_px_token {
    char name[TT_PX_NAME_MAX + 1];
    uint8_t hash[32];
    size_t line;  /* in the file, for messages */
    uint8_t plain; /* the file holds the token itself, not its hash */
    char *calls; /* "calls=" column: "a,b" or "*"; NULL: this name calls nothing */
};

struct tt_px_tokens {
    struct tt_px_token *v;
    size_t n, cap;
    size_t n_plain;          /* entries kept in plain text */
    size_t first_plain_line; /* the first of them */
};

/* A p-side service origins may call by name (--service NAME=URL). */
#define TT_PX_SERVICES_MAX 64
struct tt_px_service {
    char name[TT_PX_NAME_MAX + 1];
    const char *url; /* "http://host:port" or "h2c://host:port" */
};

/* A TCP listener whose connections go to a name (--tcp-listen ADDR=NAME). */
#define TT_PX_TCP_LISTEN_MAX 16
struct tt_px_tcp_listen {
    char name[TT_PX_NAME_MAX + 1];
    struct tt_px_addr addr;
    const char *via; /* the pool to send it on (c: the forward link); NULL: NAME's */
};

struct tt_px_cfg_str;

struct tt_px_config {
    const char *listen;        /* "0.0.0.0:8080"; "off": no plaintext front */
    const char *https_listen;  /* NULL: no HTTPS front */
    const char *admin_listen;  /* NULL: no admin listener */
    const char *https_cert, *https_key; /* NULL: the tunnel identity */
    int listen_off;
    const char *tunnel_listen; /* "0.0.0.0:7443" */
    const char *cert, *key;
    const char *state_dir; /* "./tether-state" */
    const char *tokens_file;
    const char *domain;      /* lowercase, no leading dot */
    const char *path_prefix; /* starts with '/' */
    const char *default_name;
    int log_level;
    int log_json;     /* --log-format json */
    uint32_t ping_interval_s, ping_timeout_s;
    uint32_t client_idle_s; /* a client connection with no request under way */
    uint32_t stream_idle_s; /* a WebSocket or TCP stream with no byte either way; 0: never */
    uint32_t drain_delay_s; /* SIGTERM: /ready is 503 this long before the drain */
    int proxy_protocol;     /* client fronts expect a PROXY protocol v2 header */
    uint32_t max_tunnels;
    int keep_underscores; /* --underscore-fields keep */
    uint32_t max_clients; /* 0: from the open-file limit (main.c) */
    struct tt_px_addr listen_addr, tunnel_addr, https_addr, admin_addr;
    struct tt_px_service services[TT_PX_SERVICES_MAX];
    size_t n_services;
    const char *affinity_header; /* lowercase; NULL: none */
    struct tt_px_tcp_listen tcp[TT_PX_TCP_LISTEN_MAX];
    size_t n_tcp;
    const char *config_file;        /* --config FILE; NULL: none */
    struct tt_px_cfg_str *owned;    /* the file's values (tt_px_config_free) */
};

/* Parses argv into cfg.  Returns 0 to run, 1 when --help/--version printed
 * (exit 0), or -1 with a one-line reason in err (exit 2). */
int tt_px_config_parse(struct tt_px_config *cfg, int argc, char **argv, char *err, size_t errlen);
void tt_px_config_usage(FILE *out);
/* Frees what parsing kept (the values read from --config FILE). */
void tt_px_config_free(struct tt_px_config *cfg);
/* "host:port", "[v6]:port", ":port" (all addresses).  Returns 0 or -1. */
int tt_px_parse_addr(const char *s, struct tt_px_addr *out, char *err, size_t errlen);
/* A name usable in a tokens file, a Host label and a path segment. */
int tt_px_name_valid(const char *s, size_t len);

/* Parses a tokens file's text.  `file` is used in messages only: "FILE:LINE:
 * why".  Returns 0, or -1 with err set (tokens freed). */
int tt_px_tokens_parse(struct tt_px_tokens *t, const char *text, size_t len, const char *file,
                       char *err, size_t errlen);
int tt_px_tokens_load(struct tt_px_tokens *t, const char *file, char *err, size_t errlen);
void tt_px_tokens_free(struct tt_px_tokens *t);
/* The outcome of checking a PUT's name and token, in constant time over all
 * tokens: 0 valid for the name, 401 unknown name or token, 403 the token is
 * valid but for another name. */
int tt_px_tokens_check(const struct tt_px_tokens *t, const char *name, size_t name_len,
                       const uint8_t *token, size_t token_len);
/* 1 when `t` still has an entry for `name` checked by `hash` (a tunnel that
 * came in with it may stay after a reload). */
int tt_px_tokens_still(const struct tt_px_tokens *t, const char *name, const uint8_t hash[32]);

/* Copies the tokens file's text to `out` (room for `len` bytes) without
 * the entry line(s) of `name`, comments and other lines as they were.
 * Returns 1 when one was there, 0 when not. */
int tt_px_tokens_text_remove(const char *text, size_t len, const char *name, char *out,
                             size_t *out_len);
/* `p token add|list|revoke ...` (token_cmd.c): argv as main got it.
 * Returns the exit status. */
int tt_px_token_cmd(int argc, char **argv);

/* The entry of `name`, or NULL. */
const struct tt_px_token *tt_px_tokens_find(const struct tt_px_tokens *t, const char *name,
                                            size_t name_len);
/* 1 when the tokens file lets `tk` call `name` over its forward link. */
int tt_px_token_may_call(const struct tt_px_token *tk, const char *name, size_t name_len);

/* The bin/c command line that connects to the tunnel listener bound at
 * `bound` ("ip:port" as getsockname gave it) as `name`, reading its token
 * from `token_file`, pinning `fp`.  A wildcard address is not something c
 * can dial: the command says 127.0.0.1 and a second line says to put the
 * public host name there.  Writes one or two lines (each ending in '\n');
 * returns the length, or -1 when out is too small. */
int tt_px_c_command(char *out, size_t outlen, const char *bound, const char *name,
                    const char *token_file, const char *fp);
/* The file c reads its token from (--token-file) for `name`: c-NAME.token
 * in the state folder, holding only the token (mode 0600), made absolute. */
void tt_px_c_token_path(char *out, size_t outlen, const char *state_dir, const char *name);
/* The comment p puts at the top of a tokens file it makes; the line of one
 * entry, "NAME sha256:HEX [calls=...]\n", the token hashed.  Each returns
 * its length (0 when out is too small). */
int tt_px_tokens_header(char *out, size_t outlen);
int tt_px_tokens_line(char *out, size_t outlen, const char *name, const char *token,
                      size_t token_len, const char *calls);
/* Writes `len` bytes to `path` so that a reader sees the old file or the
 * new one, never a part: a temporary file in the same folder (mode `mode`),
 * fsync, rename over `path`, fsync of the folder.  Returns 0, or -1 with err
 * set (the temporary file removed). */
int tt_px_write_file(const char *path, const void *data, size_t len, mode_t mode, char *err,
                     size_t errlen);

/* "ip:port" of a sockaddr, and the address alone in `ip` when not NULL. */
void tt_px_sockaddr_text(const struct sockaddr *sa, char *out, size_t outlen, char *ip,
                         size_t iplen);

#endif
