#!/usr/bin/python3
"""A real gRPC server and client on Debian's python3-grpcio (test-43-grpc.sh).

No protoc step: the service is registered with generic handlers and every
message is raw bytes (identity serializers), so a message can be any size.
The Node twin (grpc_node.js) serves and calls the same methods the same way.

  grpc_py.py server PORTFILE [--strict-keepalive]
      Binds 127.0.0.1 on a free port, writes it to PORTFILE, serves until
      killed; one line per event on stderr ("pyserver: ...").
      --strict-keepalive: grpc core's ping enforcement at its tightest (the
      default 5 min without data, one strike allowed), so a client that
      pings an idle stream is sent GOAWAY ENHANCE_YOUR_CALM within 45 s.

  grpc_py.py client TARGET CASE...
      Runs each CASE against TARGET (host:port of p) and prints one line per
      check: "CHECK <case>: ok <detail>" or "CHECK <case>: FAIL <why>".
      $TT_GRPC_AUTHORITY, when set, is the :authority (p routes by it).

The service tt.Test (message bytes, parameters in metadata):
  Echo      unary: the request back; client metadata x-* echoed as initial
            metadata echo-*; trailing metadata x-trailer, x-trailer-bin;
            x-fail: CODE -> that status, message "failed on purpose" and
            grpc-status-details-bin
  Sleep     unary: waits x-sleep-ms for a cancel; logs "sleep <id>
            cancelled after N ms" or answers "slept"
  Count     server stream: x-count messages of x-size bytes
  Sum       client stream: "<count> <sha256 of all bytes>"
  Bidi      each message echoed as it comes
  Idle      server stream: "first", then x-idle-ms of silence, then
            "second"; logs "idle <id> done" or "idle <id> cancelled"
  Endless   server stream: 1 KiB every 50 ms until cancelled; logs
            "endless <id> cancelled"
"""
import hashlib
import os
import sys
import threading
import time
from concurrent import futures

import grpc

MAX_MSG = 64 << 20
SVC = "tt.Test"
OPTS = [
    ("grpc.max_send_message_length", MAX_MSG),
    ("grpc.max_receive_message_length", MAX_MSG),
]


def log(s):
    sys.stderr.write("pyserver: %s\n" % s)
    sys.stderr.flush()


def ident(b):
    return b


def md(context):
    return {k: v for k, v in context.invocation_metadata()}


def wait_cancel(context, ms):
    """Waits up to ms for the RPC to end early; returns True if it did."""
    done = threading.Event()
    context.add_callback(done.set)
    return done.wait(ms / 1000.0) or not context.is_active()


# ---- server --------------------------------------------------------------


def h_echo(req, context):
    m = md(context)
    context.send_initial_metadata(
        tuple(("echo-" + k[2:], v) for k, v in m.items() if k.startswith("x-"))
    )
    if "x-fail" in m:
        context.set_trailing_metadata(
            (("grpc-status-details-bin", b"\x08\x05details\x00\xff"), ("x-trailer", "failed"))
        )
        code = grpc.StatusCode[m["x-fail"]]
        context.abort(code, "failed on purpose")
    context.set_trailing_metadata((("x-trailer", "done"), ("x-trailer-bin", b"\x00\x01\xfe\xff")))
    return req


def h_sleep(req, context):
    m = md(context)
    rid = m.get("x-id", "-")
    t0 = time.monotonic()
    if wait_cancel(context, int(m.get("x-sleep-ms", "1000"))):
        log("sleep %s cancelled after %d ms" % (rid, (time.monotonic() - t0) * 1000))
        return b""
    log("sleep %s answered after %d ms" % (rid, (time.monotonic() - t0) * 1000))
    return b"slept"


def h_count(req, context):
    m = md(context)
    n, size = int(m.get("x-count", "10")), int(m.get("x-size", "10"))
    for i in range(n):
        yield bytes([i % 256]) * size


def h_sum(it, context):
    h = hashlib.sha256()
    n = 0
    for msg in it:
        h.update(msg)
        n += 1
    return ("%d %s" % (n, h.hexdigest())).encode()


def h_bidi(it, context):
    for msg in it:
        yield msg


def h_idle(req, context):
    m = md(context)
    rid = m.get("x-id", "-")
    yield b"first"
    log("idle %s: first sent, silent for %s ms" % (rid, m.get("x-idle-ms")))
    if wait_cancel(context, int(m.get("x-idle-ms", "1000"))):
        log("idle %s cancelled" % rid)
        return
    yield b"second"
    log("idle %s done" % rid)


def h_endless(req, context):
    m = md(context)
    rid = m.get("x-id", "-")
    log("endless %s started" % rid)
    chunk = b"e" * 1024
    while True:
        if wait_cancel(context, 50):
            log("endless %s cancelled" % rid)
            return
        yield chunk


def serve(portfile, strict):
    opts = list(OPTS)
    if strict:
        # grpc core's defaults are already 5 min without data between pings
        # and 2 strikes; one strike makes the third early ping fatal.
        opts += [
            ("grpc.http2.min_ping_interval_without_data_ms", 300000),
            ("grpc.http2.max_ping_strikes", 1),
        ]
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=256), options=opts)
    u = lambda f: grpc.unary_unary_rpc_method_handler(f, ident, ident)
    us = lambda f: grpc.unary_stream_rpc_method_handler(f, ident, ident)
    su = lambda f: grpc.stream_unary_rpc_method_handler(f, ident, ident)
    ss = lambda f: grpc.stream_stream_rpc_method_handler(f, ident, ident)
    handlers = {
        "Echo": u(h_echo),
        "Sleep": u(h_sleep),
        "Count": us(h_count),
        "Sum": su(h_sum),
        "Bidi": ss(h_bidi),
        "Idle": us(h_idle),
        "Endless": us(h_endless),
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SVC, handlers),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    with open(portfile + ".tmp", "w") as f:
        f.write(str(port))
    os.rename(portfile + ".tmp", portfile)
    log("listening on %d%s" % (port, " (strict keepalive)" if strict else ""))
    server.wait_for_termination()


# ---- client --------------------------------------------------------------


class Client:
    def __init__(self, target):
        opts = list(OPTS)
        if os.environ.get("TT_GRPC_AUTHORITY"):  # p routes by it (--domain)
            opts.append(("grpc.default_authority", os.environ["TT_GRPC_AUTHORITY"]))
        self.ch = grpc.insecure_channel(target, options=opts)
        grpc.channel_ready_future(self.ch).result(timeout=20)

    def _m(self, kind, name):
        f = getattr(self.ch, kind)
        return f("/%s/%s" % (SVC, name), request_serializer=ident, response_deserializer=ident)

    def unary(self, name):
        return self._m("unary_unary", name)

    def ustream(self, name):
        return self._m("unary_stream", name)

    def sunary(self, name):
        return self._m("stream_unary", name)

    def sstream(self, name):
        return self._m("stream_stream", name)


def check(case, ok, detail):
    print("CHECK %s: %s %s" % (case, "ok" if ok else "FAIL", detail), flush=True)


def c_unary(c):
    resp, call = c.unary("Echo").with_call(
        b"hello", timeout=20, metadata=(("x-meta", "v1"), ("x-blob-bin", b"\x00\xff\x10"))
    )
    init = dict(call.initial_metadata())
    trail = dict(call.trailing_metadata())
    check("unary", resp == b"hello" and call.code() == grpc.StatusCode.OK, "resp=%r" % resp)
    check(
        "metadata",
        init.get("echo-meta") == "v1" and init.get("echo-blob-bin") == b"\x00\xff\x10",
        "initial=%r" % init,
    )
    check(
        "trailers",
        trail.get("x-trailer") == "done" and trail.get("x-trailer-bin") == b"\x00\x01\xfe\xff",
        "trailing=%r" % trail,
    )


def c_status(c):
    try:
        c.unary("Echo")(b"x", timeout=20, metadata=(("x-fail", "FAILED_PRECONDITION"),))
        check("status", False, "the call succeeded")
    except grpc.RpcError as e:
        trail = dict(e.trailing_metadata() or ())
        ok = (
            e.code() == grpc.StatusCode.FAILED_PRECONDITION
            and e.details() == "failed on purpose"
            and trail.get("grpc-status-details-bin") == b"\x08\x05details\x00\xff"
        )
        check("status", ok, "code=%s details=%r trailing=%r" % (e.code(), e.details(), trail))


def c_big(c):
    msg = os.urandom(16 << 20)
    t0 = time.monotonic()
    try:
        resp = c.unary("Echo")(msg, timeout=float(os.environ.get("TT_GRPC_BIG_DEADLINE", "10")))
        check(
            "big",
            resp == msg,
            "16 MiB each way in %.1f s, %s" % (time.monotonic() - t0, "intact" if resp == msg else "CORRUPT"),
        )
    except grpc.RpcError as e:
        check("big", False, "%s after %.1f s: %s" % (e.code(), time.monotonic() - t0, e.details()))


def c_server_stream(c):
    n = 0
    total = 0
    bad = 0
    for i, msg in enumerate(
        c.ustream("Count")(b"", timeout=60, metadata=(("x-count", "10000"), ("x-size", "100")))
    ):
        n += 1
        total += len(msg)
        if msg != bytes([i % 256]) * 100:
            bad += 1
    check("server-stream", n == 10000 and total == 1000000 and bad == 0, "%d messages, %d bytes" % (n, total))


def c_client_stream(c):
    msgs = [os.urandom(1000 + i) for i in range(2000)]
    h = hashlib.sha256()
    for m in msgs:
        h.update(m)
    resp = c.sunary("Sum")(iter(msgs), timeout=60)
    want = ("%d %s" % (len(msgs), h.hexdigest())).encode()
    check("client-stream", resp == want, "resp=%r" % resp)


def c_bidi(c):
    import queue

    q = queue.Queue()
    rounds = 1000

    def gen():
        for i in range(rounds):
            yield b"round %d" % i
            if q.get(timeout=20) != b"round %d" % i:
                return

    got = 0
    for msg in c.sstream("Bidi")(gen(), timeout=60):
        q.put(msg)
        got += 1
    check("bidi", got == rounds, "%d rounds" % got)


def c_deadline(c):
    t0 = time.monotonic()
    try:
        c.unary("Sleep")(b"", timeout=1.0, metadata=(("x-sleep-ms", "20000"), ("x-id", "py-deadline")))
        check("deadline", False, "answered")
    except grpc.RpcError as e:
        check(
            "deadline",
            e.code() == grpc.StatusCode.DEADLINE_EXCEEDED,
            "%s after %.1f s" % (e.code(), time.monotonic() - t0),
        )


def c_cancel(c):
    fut = c.unary("Sleep").future(b"", timeout=30, metadata=(("x-sleep-ms", "20000"), ("x-id", "py-cancel")))
    time.sleep(0.5)
    fut.cancel()
    check("cancel", fut.cancelled(), "cancelled=%s" % fut.cancelled())


def c_concurrent(c):
    futs = [c.unary("Echo").future(b"c%d" % i, timeout=30) for i in range(100)]
    ok = sum(1 for i, f in enumerate(futs) if f.result() == b"c%d" % i)
    check("concurrent", ok == 100, "%d of 100 answered right" % ok)


def c_long(c):
    """A unary RPC longer than c's HTTP/1.1 head timeout (60 s)."""
    ms = int(os.environ.get("TT_GRPC_LONG_MS", "65000"))
    t0 = time.monotonic()
    try:
        resp = c.unary("Sleep")(
            b"", timeout=ms / 1000.0 + 60, metadata=(("x-sleep-ms", str(ms)), ("x-id", "py-long"))
        )
        check("long", resp == b"slept", "answered %r after %.1f s" % (resp, time.monotonic() - t0))
    except grpc.RpcError as e:
        check("long", False, "%s after %.1f s: %s" % (e.code(), time.monotonic() - t0, e.details()))


def c_idle(c):
    """A server stream that stays silent longer than the app's keepalive
    enforcement would let a pinging client live."""
    ms = int(os.environ.get("TT_GRPC_IDLE_MS", "65000"))
    t0 = time.monotonic()
    got = []
    try:
        for msg in c.ustream("Idle")(
            b"", timeout=ms / 1000.0 + 60, metadata=(("x-idle-ms", str(ms)), ("x-id", "py-idle"))
        ):
            got.append(msg)
        check("idle", got == [b"first", b"second"], "got %r after %.1f s" % (got, time.monotonic() - t0))
    except grpc.RpcError as e:
        check("idle", False, "%s after %.1f s (got %r): %s" % (e.code(), time.monotonic() - t0, got, e.details()))


def c_head_timeout(c):
    """Through a c with --upstream-timeout: c gives up, the app hears it."""
    try:
        c.unary("Sleep")(b"", timeout=30, metadata=(("x-sleep-ms", "20000"), ("x-id", "py-gaveup")))
        check("head-timeout", False, "answered")
    except grpc.RpcError as e:
        check("head-timeout", e.code() == grpc.StatusCode.UNAVAILABLE, "%s: %s" % (e.code(), e.details()))


def c_denied(c):
    """A call p refuses (TT_GRPC_AUTHORITY names what the caller may not
    call): p answers as gRPC does, PERMISSION_DENIED with p's reason."""
    try:
        c.unary("Echo")(b"hello", timeout=20)
        check("denied", False, "the call was answered")
    except grpc.RpcError as e:
        check("denied", e.code() == grpc.StatusCode.PERMISSION_DENIED and "may not call" in (e.details() or ""),
              "%s: %s" % (e.code(), e.details()))


def c_killed(c):
    """Endless server stream; the test kills c meanwhile (it waits for the
    'endless py-killed started' line): UNAVAILABLE, what a client retries."""
    n = 0
    try:
        for _ in c.ustream("Endless")(b"", timeout=60, metadata=(("x-id", "py-killed"),)):
            n += 1
        check("killed", False, "the stream ended OK after %d messages" % n)
    except grpc.RpcError as e:
        check("killed", e.code() == grpc.StatusCode.UNAVAILABLE, "%s after %d messages: %s" % (e.code(), n, e.details()))


def c_pinger(target):
    """The control for "idle": straight to a --strict-keepalive server, a
    client that PINGs its idle stream every second is cut off by the app
    (GOAWAY ENHANCE_YOUR_CALM "too_many_pings") long before the stream's
    second message: the enforcement the idle case outlives is real."""
    opts = OPTS + [
        ("grpc.keepalive_time_ms", 1000),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.max_pings_without_data", 0),
        ("grpc.http2.min_time_between_pings_ms", 1000),
    ]
    ch = grpc.insecure_channel(target, options=opts)
    m = ch.unary_stream("/%s/Idle" % SVC, request_serializer=ident, response_deserializer=ident)
    got = []
    try:
        for msg in m(b"", timeout=60, metadata=(("x-idle-ms", "30000"), ("x-id", "py-pinger"))):
            got.append(msg)
        check("pinger", False, "the pinging client's idle stream lived (got %r)" % got)
    except grpc.RpcError as e:
        check("pinger", e.code() == grpc.StatusCode.UNAVAILABLE and got == [b"first"],
              "%s (got %r): %s" % (e.code(), got, e.details()))


CASES = {
    "unary": c_unary,
    "status": c_status,
    "big": c_big,
    "server-stream": c_server_stream,
    "client-stream": c_client_stream,
    "bidi": c_bidi,
    "deadline": c_deadline,
    "cancel": c_cancel,
    "concurrent": c_concurrent,
    "long": c_long,
    "idle": c_idle,
    "head-timeout": c_head_timeout,
    "killed": c_killed,
    "denied": c_denied,
}


def client(target, cases):
    if cases == ["pinger"]:  # its own channel, straight to the app
        return c_pinger(target)
    c = Client(target)
    for name in cases:
        try:
            CASES[name](c)
        except Exception as e:  # a check that blew up is a failed check
            check(name, False, "%s: %s" % (type(e).__name__, e))


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "server":
        serve(sys.argv[2], "--strict-keepalive" in sys.argv[3:])
    elif len(sys.argv) >= 4 and sys.argv[1] == "client":
        client(sys.argv[2], sys.argv[3:])
    else:
        sys.exit(__doc__)
