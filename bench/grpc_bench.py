#!/usr/bin/python3
"""gRPC figures for bench/run.sh (scenario 8): Debian's python3-grpcio as
server and client, raw-bytes messages (identity serializers, no protoc).

  grpc_bench.py server PORTFILE [--sync]
      Binds 127.0.0.1 on a free port, writes it to PORTFILE, serves until
      killed.  By default the asyncio server (grpc.aio: one thread, no
      thread-pool hand-off per call, the fastest grpcio server);
      --sync: the classic thread-pool server.
        /tb.Bench/Echo   unary: the request back
        /tb.Bench/Count  server stream: x-count messages of x-size bytes,
                         one prebuilt message object sent again and again

  grpc_bench.py client TARGET PHASE ARGS... [--authority NAME]
      One phase of one pass against TARGET (host:port), on a fresh channel
      whose first Echo (not timed) proves the path; --authority sets the
      calls' :authority (grpc.default_authority) to NAME, as tether's
      forward link needs (c --local-listen routes by it to p --service NAME):
        unary WARM N      WARM calls of warm-up, then N sequential unary
                          calls of 16 bytes, each timed alone
                          (time.perf_counter_ns around the blocking call)
        stream N SIZE     one server stream of N messages of SIZE bytes,
                          timed from the call to its last message
        big BYTES REPS    REPS unary calls of BYTES each way (median)
      Every answer is checked (size and bytes); a wrong one is a failure.
      Prints one JSON object on stdout (unary_p50_us, unary_p99_us,
      unary_mean_us; stream_msgs_per_s, stream_s; big_s); exit status 1 and
      {"error": ...} on any failure.  No figure is judged here.
"""
import json
import os
import statistics
import sys
import time

import grpc

MAX_MSG = 64 << 20
OPTS = [
    ("grpc.max_send_message_length", MAX_MSG),
    ("grpc.max_receive_message_length", MAX_MSG),
]


def ident(b):
    return b


# ---- server --------------------------------------------------------------


def serve(portfile, sync):
    def write_port(port):
        with open(portfile + ".tmp", "w") as f:
            f.write(str(port))
        os.rename(portfile + ".tmp", portfile)

    if sync:
        from concurrent import futures

        def echo(req, context):
            return req

        def count(req, context):
            m = dict(context.invocation_metadata())
            n, size = int(m.get("x-count", "10")), int(m.get("x-size", "10"))
            msg = b"m" * size
            for _ in range(n):
                yield msg

        server = grpc.server(futures.ThreadPoolExecutor(max_workers=8), options=OPTS)
        handlers = {
            "Echo": grpc.unary_unary_rpc_method_handler(echo, ident, ident),
            "Count": grpc.unary_stream_rpc_method_handler(count, ident, ident),
        }
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("tb.Bench", handlers),))
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        write_port(port)
        server.wait_for_termination()
        return

    import asyncio

    async def echo(req, context):
        return req

    async def count(req, context):
        m = dict(context.invocation_metadata())
        n, size = int(m.get("x-count", "10")), int(m.get("x-size", "10"))
        msg = b"m" * size
        for _ in range(n):
            await context.write(msg)

    async def main():
        server = grpc.aio.server(options=OPTS)
        handlers = {
            "Echo": grpc.unary_unary_rpc_method_handler(echo, ident, ident),
            "Count": grpc.unary_stream_rpc_method_handler(count, ident, ident),
        }
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("tb.Bench", handlers),))
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        write_port(port)
        await server.wait_for_termination()

    asyncio.run(main())


# ---- client --------------------------------------------------------------


def pct(sorted_vals, q):
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_vals:
        return None
    k = max(0, min(len(sorted_vals) - 1, int(round(q / 100.0 * len(sorted_vals) + 0.5)) - 1))
    return sorted_vals[k]


def client(target, phase, args, authority=None):
    opts = OPTS + ([("grpc.default_authority", authority)] if authority else [])
    ch = grpc.insecure_channel(target, options=opts)
    grpc.channel_ready_future(ch).result(timeout=20)
    echo = ch.unary_unary("/tb.Bench/Echo", request_serializer=ident, response_deserializer=ident)
    count = ch.unary_stream("/tb.Bench/Count", request_serializer=ident, response_deserializer=ident)
    small = b"0123456789abcdef"
    if echo(small, timeout=20) != small:
        raise RuntimeError("first call: a wrong echo")
    clock = time.perf_counter_ns
    out = {"phase": phase}
    if phase == "unary":
        warm, n = args
        for _ in range(warm):
            if echo(small, timeout=20) != small:
                raise RuntimeError("warm-up: a wrong echo")
        lat = []
        for _ in range(n):
            t0 = clock()
            r = echo(small, timeout=20)
            lat.append(clock() - t0)
            if r != small:
                raise RuntimeError("unary: a wrong echo")
        lat.sort()
        out["unary_n"] = n
        out["unary_p50_us"] = round(statistics.median(lat) / 1e3, 1)
        out["unary_p99_us"] = round(pct(lat, 99) / 1e3, 1)
        out["unary_mean_us"] = round(statistics.fmean(lat) / 1e3, 1)
    elif phase == "stream":
        n, size = args
        want = b"m" * size
        got = bad = 0
        t0 = clock()
        for msg in count(b"", timeout=300, metadata=(("x-count", str(n)), ("x-size", str(size)))):
            got += 1
            if msg != want:
                bad += 1
        secs = (clock() - t0) / 1e9
        if got != n or bad:
            raise RuntimeError("stream: %d of %d messages, %d wrong" % (got, n, bad))
        out["stream_n"] = n
        out["stream_s"] = round(secs, 4)
        out["stream_msgs_per_s"] = round(n / secs, 1)
    elif phase == "big":
        nbytes, reps = args
        msg = os.urandom(nbytes)
        times = []
        for _ in range(reps):
            t0 = clock()
            r = echo(msg, timeout=120)
            times.append((clock() - t0) / 1e9)
            if r != msg:
                raise RuntimeError("big: %d bytes back, not the %d sent" % (len(r), len(msg)))
        out["big_bytes"] = nbytes
        out["big_s"] = round(statistics.median(times), 4)
    else:
        raise RuntimeError("unknown phase %r" % phase)
    ch.close()
    return out


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "server":
        serve(sys.argv[2], "--sync" in sys.argv[3:])
    elif len(sys.argv) in (6, 8) and sys.argv[1] == "client" and \
            (len(sys.argv) == 6 or sys.argv[6] == "--authority"):
        try:
            res = client(sys.argv[2], sys.argv[3], [int(x) for x in sys.argv[4:6]],
                         sys.argv[7] if len(sys.argv) == 8 else None)
        except (grpc.RpcError, RuntimeError, grpc.FutureTimeoutError, ValueError) as e:
            detail = e.details() if isinstance(e, grpc.RpcError) else str(e)
            code = e.code().name if isinstance(e, grpc.RpcError) else type(e).__name__
            print(json.dumps({"error": "%s: %s" % (code, detail)}))
            sys.exit(1)
        print(json.dumps(res))
    else:
        sys.exit(__doc__)
