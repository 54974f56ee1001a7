/*
 * What p says of an exchange by itself: the head of its own answers (a
 * text body, or for a gRPC request a trailers-only gRPC response), the
 * access line at the end and the duration it adds to /metrics.  None
 * touches a tunnel.
 */
#include "proxy.h"

#include "proto/log.h"

#include <stdio.h>
#include <string.h>

void tt_px_local_head(struct tt_px_exchange *x, int status, const char *body, int retry_after,
                      const struct tt_header *extra, struct tt_px_local_head *o)
{
    size_t bl = strlen(body);
    snprintf(o->st, sizeof(o->st), "%d", status);
    snprintf(o->cl, sizeof(o->cl), "%zu", bl);
    snprintf(o->ra, sizeof(o->ra), "%d", retry_after);
    struct tt_header *h = o->h;
    h[0] = (struct tt_header){":status", o->st, 7, (uint32_t)strlen(o->st), 0};
    h[1] = (struct tt_header){"content-type", "text/plain; charset=utf-8", 12, 25, 0};
    h[2] = (struct tt_header){"content-length", o->cl, 14, (uint32_t)strlen(o->cl), 0};
    h[3] = (struct tt_header){"retry-after", o->ra, 11, (uint32_t)strlen(o->ra), 0};
    if (x->req_grpc) {
        /* A gRPC client reads grpc-status, not a text body: the same answer
         * as a trailers-only gRPC response (PERMISSION_DENIED for 403,
         * UNAVAILABLE for 503...), its text as grpc-message. */
        x->grpc = 1;
        x->grpc_status = (int16_t)tt_px_grpc_local(status, body, o->gm, sizeof(o->gm));
        snprintf(o->cl, sizeof(o->cl), "%d", x->grpc_status);
        h[0] = (struct tt_header){":status", "200", 7, 3, 0};
        h[1] = (struct tt_header){"content-type", "application/grpc", 12, 16, 0};
        h[2] = (struct tt_header){"grpc-status", o->cl, 11, (uint32_t)strlen(o->cl), 0};
        h[3] = (struct tt_header){"grpc-message", o->gm, 12, (uint32_t)strlen(o->gm), 0};
        x->status = 200;
        bl = 0;
        retry_after = 0; /* all four fields */
    } else if (extra) {
        h[3] = *extra; /* in retry-after's place: never both */
        retry_after = 0;
    }
    o->body_len = bl;
    o->hh = (struct tt_h2_headers){
        .kind = TT_H2_HDRS_RESPONSE,
        .end_stream = x->head_method || bl == 0,
        .hdrs = h,
        .count = retry_after >= 0 ? 4 : 3,
        .status = status,
        .content_length = (int64_t)bl,
    };
}

void tt_px_access_line(const struct tt_px_exchange *x, uint64_t now)
{
    char end[40], grpc[24] = "", req[40] = "";
    static const char *const ends[] = {"ok",          "client-gone", "client-stalled",
                                       "reset-by-origin", "tunnel-lost", "failed",
                                       "stream-idle"};
    if (x->end_how == TT_PX_END_ORIGIN_RESET)
        snprintf(end, sizeof end, "%s(%s)", ends[x->end_how], tt_h2_strerror(x->end_code));
    else
        snprintf(end, sizeof end, "%s", ends[x->end_how]);
    if (x->grpc_status >= 0)
        snprintf(grpc, sizeof grpc, " grpc-status=%d", x->grpc_status);
    /* A byte stream's other direction: what the client sent. */
    if (x->byte_stream || x->upgrade)
        snprintf(req, sizeof req, " req_bytes=%llu", (unsigned long long)x->body_sent);
    tt_log_info("access client=%s method=%s path=%s status=%d bytes=%llu%s dur_ms=%llu origin=%s"
                "%s%s%s%s%s%s%s end=%s%s",
                x->peer, x->method ? x->method : "-", x->log_path ? x->log_path : "", x->status,
                (unsigned long long)x->bytes, req, (unsigned long long)(now - x->start_ms),
                x->name[0] ? x->name : "-", x->proto ? " proto=" : "", x->proto ? x->proto : "",
                x->tls ? " tls=1" : "", x->upgrade ? " upgrade=" : "",
                x->upgrade ? x->upgrade : "", x->caller ? " caller=" : "",
                x->caller ? x->caller->name : "", end, grpc);
}

const uint32_t TT_PX_DUR_BOUNDS_MS[TT_PX_DUR_BUCKETS - 1] = {5,   10,   25,   50,   100, 250,
                                                              500, 1000, 2500, 5000, 10000};

void tt_px_count_duration(struct tt_px_counters *k, uint64_t ms)
{
    size_t i = 0;
    while (i < TT_PX_DUR_BUCKETS - 1 && ms > TT_PX_DUR_BOUNDS_MS[i])
        i++;
    k->dur[i]++;
    k->dur_sum_ms += ms;
}
