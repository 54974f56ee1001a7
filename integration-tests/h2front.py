#!/usr/bin/python3
"""p's HTTP/2 client front (h2c with prior knowledge), frame by frame.

  h2front.py WORKDIR HTTP_PORT TUN_PORT CASE...

A hand-driven HTTP/2 client on p's --listen port (plaintext, the preface
first), and for most cases a fake c: a tunnel under the name "other"
(token from the shared test environment) that answers as the case needs.
Requests for the fake c use the path prefix /t/other/ (p runs with
--path-prefix /t/).  The real c serving "media" (--default) answers the rest.

Cases:
  client-rst       GET a big file from the real c, RST_STREAM(CANCEL) it after
                   some DATA; the same connection then gets a whole response.
  trailers         the fake c answers HEADERS, DATA, trailers (grpc-status):
                   the client gets all three, te: trailers and the
                   x-forwarded-* / forwarded fields reached c; then the
                   client resets a second stream and c sees RST_STREAM CANCEL.
  die-mid-body     the fake c sends a head and part of a body, then drops the
                   tunnel: the client sees RST_STREAM(INTERNAL_ERROR), not
                   END_STREAM.
  die-before-head  a POST with a body, the tunnel dropped before any answer:
                   502 (not safe to retry).

Prints "  ok: ..." / "  FAIL: ..." lines; exit status 1 if any check failed.
"""
import os
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import h2peer  # noqa: E402
from h2peer import (DATA, HEADERS, RST_STREAM, SETTINGS, END_STREAM, ACK,  # noqa: E402
                    ERR, CaseFailed, Conn, PREFACE, S_MAX_CONCURRENT,
                    S_INITIAL_WINDOW, bad, check, count, frame, note, parse_settings,
                    read_response, rst, settings, until, wait_for, window_update)


def client(port, window=1 << 20):
    """A plaintext HTTP/2 connection to p's front, past the SETTINGS exchange."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.setblocking(False)
    conn = Conn(s, role="client")
    conn.send(PREFACE, settings((S_INITIAL_WINDOW, window)), window_update(0, 16 << 20))
    fr = until(conn, lambda f: f[0] == SETTINGS and not f[1] & ACK, what="p's SETTINGS")
    if fr is None:
        raise CaseFailed("p closed the h2c connection before its SETTINGS")
    conn.remote_settings.update(parse_settings(fr[3]))
    conn.send(settings(ack=True))
    return conn


def until_d(conn, want, timeout=8.0, what="a frame"):
    """until(), but header blocks it passes over are decoded, so that the
    HPACK table stays in step with p's encoder."""
    def w(f):
        if want(f):
            return True
        if f[0] == HEADERS:
            conn.decode(h2peer.strip_headers_payload(f[1], f[3]))
        return False
    return until(conn, w, timeout, what=what)


def req_fields(path, method="GET", extra=()):
    return [(":method", method), (":scheme", "http"), (":authority", "proxy.test"),
            (":path", path)] + list(extra)


class FakeOther(h2peer.FakeC):
    def tunnel_other(self):
        """A tunnel for the name "other" (c2 of the shell test is stopped)."""
        plog = self.plog
        n_up = count(plog, "tunnel up name=other")
        status, hd, rest, tls = self.put(self.handshake_head(self.other, name="other"))
        if status != 101:
            raise CaseFailed("the PUT for 'other' got %s, not 101: %r" % (status, hd))
        tls.setblocking(False)
        conn = Conn(tls, rest, role="server")
        pre = conn.read_exact(len(PREFACE), 8.0)
        if pre != PREFACE:
            raise CaseFailed("no HTTP/2 preface from p after the 101: %r" % pre)
        conn.send(settings((S_MAX_CONCURRENT, 100), (S_INITIAL_WINDOW, 1 << 20)),
                  window_update(0, (16 << 20) - 65535))
        fr = until(conn, lambda f: f[0] == SETTINGS and not f[1] & ACK, what="p's SETTINGS")
        if fr is None:
            raise CaseFailed("p closed the tunnel before its SETTINGS")
        conn.send(settings(ack=True))
        if not wait_for(lambda: count(plog, "tunnel up name=other") > n_up, 5):
            raise CaseFailed("p did not log 'tunnel up name=other'")
        return conn


def read_request(tun, timeout=8.0):
    """The next request p opens on the fake tunnel: (sid, fields, body, ended)."""
    fr = until(tun, lambda f: f[0] == HEADERS, timeout, what="a request on the tunnel")
    if fr is None:
        raise CaseFailed("p closed the tunnel instead of sending a request")
    t, fl, sid, p = fr
    fields = tun.decode(h2peer.strip_headers_payload(fl, p))
    return sid, fields, fl & END_STREAM


def case_client_rst(http_port, fc):
    conn = client(http_port, window=256 << 10)
    conn.send(conn.headers(1, req_fields("/big-random.bin")))
    got = 0
    # Read a little (no WINDOW_UPDATE: p is held back), then reset.
    deadline = time.time() + 10
    while got < 100000 and time.time() < deadline:
        fr = until(conn, lambda f: f[2] == 1, 10, what="the response on stream 1")
        if fr is None:
            raise CaseFailed("connection closed during the download")
        if fr[0] == HEADERS:
            conn.decode(h2peer.strip_headers_payload(fr[1], fr[3]))
        if fr[0] == DATA:
            got += len(fr[3])
        if fr[0] == RST_STREAM:
            raise CaseFailed("p reset stream 1: %s" % ERR.get(struct.unpack(">L", fr[3])[0]))
    check(got >= 100000, "some of big-random.bin arrived on stream 1 (%d bytes)" % got)
    conn.send(rst(1, 8), window_update(0, 1 << 20))  # CANCEL
    conn.send(conn.headers(3, req_fields("/data.json")))
    r = read_response(conn, 3)
    want = open(os.path.join(os.environ["TT_MEDIA"], "data.json"), "rb").read()
    check(r.status == 200 and r.body == want,
          "after the client's RST_STREAM, stream 3 on the same connection gets data.json",
          "status %s, %d bytes" % (r.status, len(r.body)))
    conn.close()


def case_trailers(http_port, fc):
    tun = fc.tunnel_other()
    conn = client(http_port)
    conn.send(conn.headers(1, req_fields("/t/other/pkg.Svc/Call", "POST",
                                         [("content-type", "application/grpc"),
                                          ("te", "trailers")]), end_stream=False),
              frame(DATA, END_STREAM, 1, b"\0\0\0\0\x05hello"))
    sid, fields, ended = read_request(tun)
    d = dict(fields)
    check(d.get(":path") == "/pkg.Svc/Call", "c sees :path with the prefix stripped",
          repr(d.get(":path")))
    check(d.get("te") == "trailers", "te: trailers reached c")
    check(d.get("x-forwarded-for") == "127.0.0.1" and d.get("x-forwarded-proto") == "http"
          and d.get("x-forwarded-host") == "proxy.test" and "for=127.0.0.1" in d.get("forwarded", ""),
          "x-forwarded-for/-proto/-host and forwarded reached c", repr(fields))
    check(d.get("x-forwarded-prefix") == "/t/other", "x-forwarded-prefix: /t/other")
    body = b""
    while not ended:
        fr = until(tun, lambda f: f[2] == sid, what="the request body")
        if fr is None:
            raise CaseFailed("tunnel closed during the request body")
        if fr[0] == DATA:
            body += fr[3]
            ended = fr[1] & END_STREAM
    check(body == b"\0\0\0\0\x05hello", "the request body reached c whole")
    tun.send(tun.headers(sid, [(":status", "200"), ("content-type", "application/grpc")],
                         end_stream=False),
             frame(DATA, 0, sid, b"\0\0\0\0\x05world"),
             tun.headers(sid, [("grpc-status", "0"), ("grpc-message", "fine")], end_stream=True))
    # The client: head, DATA, then trailers with END_STREAM.
    blocks, data, ended = [], b"", False
    while not ended:
        fr = until(conn, lambda f: f[2] == 1, what="the response on stream 1")
        if fr is None:
            raise CaseFailed("p closed the client connection")
        if fr[0] == HEADERS:
            blocks.append(conn.decode(h2peer.strip_headers_payload(fr[1], fr[3])))
        elif fr[0] == DATA:
            data += fr[3]
        elif fr[0] == RST_STREAM:
            raise CaseFailed("p reset stream 1: %s" % ERR.get(struct.unpack(">L", fr[3])[0]))
        ended = fr[1] & END_STREAM if fr[0] in (HEADERS, DATA) else False
    check(len(blocks) == 2 and dict(blocks[0]).get(":status") == "200",
          "the client got the response head", repr(blocks))
    check(data == b"\0\0\0\0\x05world", "the client got the DATA")
    check(len(blocks) == 2 and dict(blocks[1]) == {"grpc-status": "0", "grpc-message": "fine"},
          "the client got the trailers (grpc-status: 0) with END_STREAM", repr(blocks))

    # A client reset reaches c as RST_STREAM(CANCEL).
    conn.send(conn.headers(3, req_fields("/t/other/slow")))
    sid2, fields, _ = read_request(tun)
    tun.send(tun.headers(sid2, [(":status", "200")], end_stream=False),
             frame(DATA, 0, sid2, b"x" * 1000))
    until_d(conn, lambda f: f[2] == 3 and f[0] == DATA, what="DATA on stream 3")
    conn.send(rst(3, 8))
    fr = until(tun, lambda f: f[0] == RST_STREAM and f[2] == sid2, what="RST_STREAM at c")
    code = struct.unpack(">L", fr[3])[0] if fr else None
    check(code == 8, "the client's RST_STREAM reached c as RST_STREAM CANCEL",
          "saw %s" % (ERR.get(code, code) if fr else "the tunnel closed"))
    conn.close()
    tun.close()


def case_die_mid_body(http_port, fc):
    tun = fc.tunnel_other()
    conn = client(http_port)
    conn.send(conn.headers(1, req_fields("/t/other/video.mp4")))
    sid, _, _ = read_request(tun)
    tun.send(tun.headers(sid, [(":status", "200"), ("content-length", "100000")],
                         end_stream=False),
             frame(DATA, 0, sid, b"v" * 5000))
    until_d(conn, lambda f: f[2] == 1 and f[0] == DATA, what="the first DATA")
    tun.close()  # the tunnel dies mid-body
    fr = until_d(conn, lambda f: f[2] == 1 and (f[0] == RST_STREAM or f[1] & END_STREAM),
                 what="the end of stream 1")
    if fr is None:
        bad("the client connection closed instead of a RST_STREAM on stream 1")
    elif fr[0] == RST_STREAM:
        code = struct.unpack(">L", fr[3])[0]
        check(code == 2, "tunnel lost mid-body -> RST_STREAM INTERNAL_ERROR to the client",
              "saw %s" % ERR.get(code, code))
    else:
        bad("tunnel lost mid-body but the client saw END_STREAM (a short body that looks complete)")
    # The connection itself lives.
    conn.send(conn.headers(3, req_fields("/data.json")))
    r = read_response(conn, 3)
    check(r.status == 200, "the client connection still serves after the abort")
    conn.close()


def case_die_before_head(http_port, fc):
    tun = fc.tunnel_other()
    conn = client(http_port)
    conn.send(conn.headers(1, req_fields("/t/other/form", "POST"), end_stream=False),
              frame(DATA, END_STREAM, 1, b"a=1&b=2"))
    sid, _, ended = read_request(tun)
    while not ended:
        fr = until(tun, lambda f: f[2] == sid and f[0] == DATA, what="the POST body")
        ended = fr is None or fr[1] & END_STREAM
    tun.close()
    r = read_response(conn, 1)
    check(r.status == 502, "tunnel lost before the head of a POST with a body -> 502",
          "status %s" % r.status)
    conn.close()


CASES = {
    "client-rst": case_client_rst,
    "trailers": case_trailers,
    "die-mid-body": case_die_mid_body,
    "die-before-head": case_die_before_head,
}


def main():
    work, http_port, tun_port = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    fc = FakeOther(work, http_port, tun_port)
    for name in sys.argv[4:]:
        note("case %s" % name)
        try:
            CASES[name](http_port, fc)
        except (CaseFailed, TimeoutError, OSError) as e:
            bad("%s: %s" % (name, e))
    sys.exit(1 if h2peer.FAILS else 0)


if __name__ == "__main__":
    main()
