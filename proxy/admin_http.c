#include "proxy/admin_http.h"

#include "llhttp.h"
#include "proto/list.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define ADMIN_HEAD_MAX 8192

struct adm_server {
    struct tt_loop *loop;
    struct tt_io io;
    tt_admin_page_fn page;
    void *ud;
    size_t n; /* connections open */
};

struct adm_conn {
    struct adm_server *s;
    struct tt_io io;
    struct tt_timer timer;
    struct tt_defer free_d;
    llhttp_t parser;
    char url[512];
    size_t url_len, in_len;
    uint8_t done, dead;
    tt_buf out;
};

void tt_admin_put(tt_buf *b, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    /* Past the buffer's bound the page is cut short. */
    if (n > 0 && tt_buf_append(b, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1))
        return;
}

/* Names and peers are [A-Za-z0-9_-] and "ip:port", but an escape costs
 * nothing and keeps the page and the JSON well formed whatever they hold. */
void tt_admin_put_escaped(tt_buf *b, const char *s, int html)
{
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (html && (ch == '<' || ch == '>' || ch == '&' || ch == '"'))
            tt_admin_put(b, "&#%u;", ch);
        else if (!html && (ch == '"' || ch == '\\' || ch < 0x20 || ch >= 0x7f))
            tt_admin_put(b, "\\u%04x", ch);
        else if (tt_buf_append(b, s, 1))
            return;
    }
}

unsigned long long tt_admin_rss(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long size = 0, res = 0;
    if (f) {
        if (fscanf(f, "%lu %lu", &size, &res) != 2)
            res = 0;
        fclose(f);
    }
    return (unsigned long long)res * (unsigned long long)sysconf(_SC_PAGESIZE);
}

static void adm_on_free(struct tt_loop *loop, struct tt_defer *d)
{
    struct adm_conn *a = d->data;
    (void)loop;
    tt_buf_free(&a->out);
    tt_mem_free(a);
}

static void adm_close(struct adm_conn *a)
{
    if (a->dead)
        return;
    a->dead = 1;
    tt_timer_stop(a->s->loop, &a->timer);
    int fd = a->io.fd;
    tt_io_stop(a->s->loop, &a->io);
    if (fd >= 0)
        close(fd);
    a->s->n--;
    tt_defer_queue(a->s->loop, &a->free_d);
}

static const char *adm_reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 503: return "Service Unavailable";
    default: return "Error";
    }
}

static void adm_answer(struct adm_conn *a)
{
    tt_buf body;
    tt_buf_init(&body, TT_ADMIN_BODY_MAX);
    const char *type = "text/plain; charset=utf-8";
    int method = llhttp_get_method(&a->parser);
    int status;
    if (method != HTTP_GET && method != HTTP_HEAD) {
        tt_admin_put(&body, "only GET and HEAD here\n");
        status = 405;
    } else {
        status = a->s->page(a->s->ud, a->url, strcspn(a->url, "?"), &body, &type);
    }
    char head[256];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d %s\r\ncontent-type: %s\r\ncontent-length: %zu\r\n"
                     "cache-control: no-store\r\nconnection: close\r\n\r\n",
                     status, adm_reason(status), type, tt_buf_len(&body));
    if (tt_buf_append(&a->out, head, (size_t)n) ||
        (method != HTTP_HEAD && tt_buf_append(&a->out, tt_buf_data(&body), tt_buf_len(&body))))
        tt_buf_consume(&a->out, tt_buf_len(&a->out)); /* over the bound: say nothing */
    tt_buf_free(&body);
}

static int adm_on_url(llhttp_t *p, const char *at, size_t len)
{
    struct adm_conn *a = p->data;
    if (a->url_len + len >= sizeof a->url)
        return HPE_USER;
    memcpy(a->url + a->url_len, at, len);
    a->url_len += len;
    a->url[a->url_len] = 0;
    return 0;
}

static int adm_on_headers_complete(llhttp_t *p)
{
    struct adm_conn *a = p->data;
    a->done = 1;
    return HPE_PAUSED;
}

static const llhttp_settings_t *adm_settings(void)
{
    static llhttp_settings_t s;
    static int init;
    if (!init) {
        llhttp_settings_init(&s);
        s.on_url = adm_on_url;
        s.on_headers_complete = adm_on_headers_complete;
        init = 1;
    }
    return &s;
}

static void adm_write(struct adm_conn *a)
{
    while (tt_buf_len(&a->out)) {
        ssize_t n = write(a->io.fd, tt_buf_data(&a->out), tt_buf_len(&a->out));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            tt_io_modify(a->s->loop, &a->io, TT_IO_WRITE);
            return;
        }
        if (n <= 0)
            break;
        tt_buf_consume(&a->out, (size_t)n);
    }
    adm_close(a);
}

static void adm_on_io(struct tt_loop *loop, struct tt_io *io, unsigned events)
{
    struct adm_conn *a = io->data;
    (void)loop;
    if (a->done) {
        if (events & (TT_IO_WRITE | TT_IO_ERROR))
            adm_write(a);
        return;
    }
    char buf[2048];
    ssize_t n = read(io->fd, buf, sizeof buf);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n <= 0 || (a->in_len += (size_t)n) > ADMIN_HEAD_MAX) {
        adm_close(a);
        return;
    }
    llhttp_errno_t e = llhttp_execute(&a->parser, buf, (size_t)n);
    if (a->done) {
        adm_answer(a);
        adm_write(a);
    } else if (e != HPE_OK) {
        adm_close(a);
    }
}

static void adm_on_timer(struct tt_loop *loop, struct tt_timer *t)
{
    (void)loop;
    adm_close(t->data);
}

static void adm_on_accept(struct tt_loop *loop, struct tt_io *io, unsigned events)
{
    struct adm_server *s = io->data;
    (void)events;
    for (int k = 0; k < 16; k++) {
        int fd = accept4(io->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return; /* EAGAIN, or out of descriptors: the next event tries again */
        struct adm_conn *a = s->n < TT_ADMIN_CONNS ? tt_mem_calloc(1, sizeof *a) : NULL;
        if (!a) {
            close(fd);
            continue;
        }
        a->s = s;
        tt_buf_init(&a->out, TT_ADMIN_BODY_MAX + 512);
        tt_defer_init(&a->free_d, adm_on_free, a);
        tt_timer_init(&a->timer, adm_on_timer, a);
        llhttp_init(&a->parser, HTTP_REQUEST, adm_settings());
        a->parser.data = a;
        if (tt_io_start(loop, &a->io, fd, TT_IO_READ, adm_on_io, a) < 0) {
            close(fd);
            tt_mem_free(a);
            continue;
        }
        s->n++;
        tt_timer_start(loop, &a->timer, TT_ADMIN_TIMEOUT_MS);
    }
}

int tt_admin_http_start(struct tt_loop *loop, int fd, tt_admin_page_fn page, void *ud)
{
    /* Lives as long as the process: one per program, never torn down. */
    struct adm_server *s = tt_mem_calloc(1, sizeof *s);
    if (!s) {
        close(fd);
        return -1;
    }
    s->loop = loop;
    s->page = page;
    s->ud = ud;
    if (tt_io_start(loop, &s->io, fd, TT_IO_READ, adm_on_accept, s) < 0) {
        close(fd);
        tt_mem_free(s);
        return -1;
    }
    return 0;
}
