/*
 * The file server of `c --root DIR`, made for media: GET/HEAD, ranges
 * (single, suffix, open-ended, multi -> multipart/byteranges), conditional
 * requests, directory listings, index.html, gzip for compressible types, and
 * PUT uploads (--allow-put) that only appear once complete.
 *
 * Transport-free: the caller hands in a request head and gets a response head
 * plus a body producer it pulls from as flow-control window opens, so memory
 * per stream is bounded whatever the file's size.  PUT bodies are pushed in.
 */
#ifndef TT_FILESERVER_H
#define TT_FILESERVER_H

#include "codec/hpack.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct tt_fs_config {
    const char *root;   /* absolute, resolved (realpath) */
    /* An O_PATH directory descriptor of `root` (tt_fs_open_root), or <= 0:
     * then every path is resolved with realpath(), which costs a readlink
     * per component.  With it, a GET opens the file with one openat2()
     * that the kernel confines beneath the root. */
    int root_fd;
    int allow_put;
};

/* Opens the O_PATH descriptor for tt_fs_config.root_fd.  Returns it, or -1
 * (errno set); -1 is harmless: the server then resolves with realpath(). */
int tt_fs_open_root(const char *root);

struct tt_fs_request {
    tt_iov method;
    tt_iov path;      /* ":path" as received, with query */
    const struct tt_header *hdrs; /* regular fields (pseudo-headers may be there too: ignored) */
    size_t count;
};

#define TT_FS_MAX_RESP_HDRS 16

/* The header fields are complete as they stand: "content-length" is among
 * them whenever content_length >= 0 (the caller must not add another).  The
 * values point into this struct's strbuf: use the struct where it was
 * filled, do not copy it. */
struct tt_fs_response {
    int status;
    struct tt_header hdrs[TT_FS_MAX_RESP_HDRS]; /* lowercase names, point into `strbuf` or static strings */
    size_t count;
    char strbuf[2048];
    size_t strbuf_len;
    int64_t content_length; /* -1 when unknown (gzip): no content-length header then */
    int has_body;           /* 0 for HEAD, 304, 204, ...: end the stream after headers */
};

struct tt_fs_stream;

/* Handles a request head.  Always fills `resp`.  Returns a stream that
 * produces the body (GET) or takes the upload (PUT), or NULL when the
 * response is complete as it stands (errors, HEAD, 304, redirects) or when
 * out of memory (resp is then a 500).
 * For a PUT that is accepted, the returned stream takes the body and `resp`
 * has status 0: the answer comes from tt_fs_finish_upload(). */
struct tt_fs_stream *tt_fs_open(const struct tt_fs_config *cfg, const struct tt_fs_request *req,
                                struct tt_fs_response *resp);

/* Body producer: writes up to `cap` (> 0) bytes into `out`.  Returns bytes written
 * (> 0), 0 at the end of the body, or -1 on an I/O error (the caller resets
 * the stream: the client must not see a short body that looks complete). */
ssize_t tt_fs_read(struct tt_fs_stream *s, uint8_t *out, size_t cap);

/* 1 if this stream takes an upload (PUT) rather than producing a body. */
int tt_fs_is_upload(const struct tt_fs_stream *s);
/* Upload: appends body bytes to the temporary file.  Returns 0 or -1. */
int tt_fs_write(struct tt_fs_stream *s, const uint8_t *data, size_t len);
/* Upload: the body is complete.  Renames the temporary file into place and
 * fills `resp` (201 created, 204 replaced, or 500).  Returns 0 or -1. */
int tt_fs_finish_upload(struct tt_fs_stream *s, struct tt_fs_response *resp);

/* Frees the stream; an unfinished upload's temporary file is removed. */
void tt_fs_close(struct tt_fs_stream *s);

#endif
