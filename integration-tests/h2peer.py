#!/usr/bin/python3
"""Hostile and conformance HTTP/2 peers for tether's real binaries.

Frames are crafted byte by byte (struct, plus hpack for header blocks) so
that they can be wrong on purpose; received frames are split with
hyperframe's header parser.  Two peers:

  h2peer.py fakep WORKDIR CASE...
      A fake bin/p: a TLS listener (cert WORKDIR/fp-cert.pem, key
      WORKDIR/fp-key.pem) on a free 127.0.0.1 port that starts the real
      bin/c (env TT_C) once per case, checks c's PUT, answers 101 and then
      speaks HTTP/2 as the client.  After the case it checks that c is
      still running and dials in again (a new, valid PUT), and that a GET
      on that new tunnel is served.  On first use it makes its identity
      (a throwaway P-256 certificate with openssl), a token and c's root
      WORKDIR/root (hello.txt, a 300 KiB big.bin, a 2 GiB sparse huge.bin).
  h2peer.py fakec WORKDIR HTTP_PORT TUN_PORT CASE...
      A fake bin/c against the real bin/p (already running, tokens of the
      shared test environment): TLS to TUN_PORT, the PUT, then a hostile
      HTTP/2 server; client requests are made with curl on HTTP_PORT.

Every case prints "  ok: ..." or "  FAIL: ..." lines; the exit status is 1
when any check failed.  `h2peer.py list` prints the cases.
All waits are bounded; nothing here asserts on timing.
"""
import hashlib
import os
import select
import signal
import socket
import ssl
import struct
import subprocess
import sys
import time

import hpack
from hyperframe.frame import Frame

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, \
    WINDOW_UPDATE, CONTINUATION = range(10)
FTYPE = {0: "DATA", 1: "HEADERS", 2: "PRIORITY", 3: "RST_STREAM", 4: "SETTINGS",
         5: "PUSH_PROMISE", 6: "PING", 7: "GOAWAY", 8: "WINDOW_UPDATE", 9: "CONTINUATION"}
END_STREAM, ACK, END_HEADERS, PADDED, PRIO = 0x1, 0x1, 0x4, 0x8, 0x20

ERR = {0: "NO_ERROR", 1: "PROTOCOL_ERROR", 2: "INTERNAL_ERROR", 3: "FLOW_CONTROL_ERROR",
       4: "SETTINGS_TIMEOUT", 5: "STREAM_CLOSED", 6: "FRAME_SIZE_ERROR", 7: "REFUSED_STREAM",
       8: "CANCEL", 9: "COMPRESSION_ERROR", 10: "CONNECT_ERROR", 11: "ENHANCE_YOUR_CALM",
       12: "INADEQUATE_SECURITY", 13: "HTTP_1_1_REQUIRED"}
CODE = {v: k for k, v in ERR.items()}
S_HEADER_TABLE_SIZE, S_ENABLE_PUSH, S_MAX_CONCURRENT, S_INITIAL_WINDOW, S_MAX_FRAME, \
    S_MAX_HEADER_LIST = range(1, 7)
S_ENABLE_CONNECT = 8  # RFC 8441 §3

FAILS = 0
VERBOSE = os.environ.get("H2PEER_VERBOSE") == "1"


def ok(msg):
    print("  ok: " + msg, flush=True)


def bad(msg):
    global FAILS
    FAILS += 1
    print("  FAIL: " + msg, flush=True)


def check(cond, msg, why=""):
    if cond:
        ok(msg)
    else:
        bad(msg + (": " + why if why else ""))
    return cond


def note(msg):
    print("  - " + msg, flush=True)


class CaseFailed(Exception):
    pass


# ---------------------------------------------------------------- frames

def frame(ftype, flags, sid, payload=b""):
    """One frame, byte by byte (RFC 9113 §4.1): any length, type, flags, id."""
    n = len(payload)
    return struct.pack(">BHBBL", n >> 16, n & 0xFFFF, ftype, flags, sid) + payload


def settings(*pairs, ack=False):
    return frame(SETTINGS, ACK if ack else 0, 0, b"".join(struct.pack(">HL", k, v) for k, v in pairs))


def ping(opaque=b"\0" * 8, ack=False):
    return frame(PING, ACK if ack else 0, 0, opaque)


def window_update(sid, inc):
    return frame(WINDOW_UPDATE, 0, sid, struct.pack(">L", inc))


def rst(sid, code):
    return frame(RST_STREAM, 0, sid, struct.pack(">L", code))


def goaway(last, code, debug=b""):
    return frame(GOAWAY, 0, 0, struct.pack(">LL", last, code) + debug)


def hpack_int(value, prefix_bits, first):
    """RFC 7541 §5.1 integer with `first` holding the pattern bits."""
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first | value])
    out = [first | limit]
    value -= limit
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def literal(name, value):
    """A literal field without indexing, new name, no Huffman (RFC 7541 §6.2.2):
    whatever bytes we like, uppercase names included."""
    if isinstance(name, str):
        name = name.encode()
    if isinstance(value, str):
        value = value.encode()
    return b"\x00" + hpack_int(len(name), 7, 0) + name + hpack_int(len(value), 7, 0) + value


def raw_block(fields):
    return b"".join(literal(n, v) for n, v in fields)


class Conn:
    """One HTTP/2 connection over a (TLS) socket, driven by hand."""

    def __init__(self, sock, early=b"", role="client"):
        self.sock = sock
        self.buf = bytearray(early)
        self.enc = hpack.Encoder()
        self.dec = hpack.Decoder()
        self.dec.max_allowed_table_size = 65536
        self.role = role
        self.remote_settings = {}
        self.closed = False
        self.write_closed = False
        self.out = bytearray()
        self.eof_how = "clean end of stream"
        self.log = []

    # -- I/O: one thread, a select loop that writes our queued bytes and
    # reads the peer's at the same time (so neither side can deadlock on a
    # full socket buffer).  The socket is non-blocking.
    def send(self, *chunks, read=True, timeout=10.0):
        """Queues bytes and writes them all (reading meanwhile unless
        read=False).  Returns False when the peer stopped taking them."""
        self.out += b"".join(chunks)
        deadline = time.time() + timeout
        while self.out and not self.write_closed:
            if time.time() > deadline:
                raise CaseFailed("the peer did not take our %d queued bytes within %.0f s"
                                 % (len(self.out), timeout))
            self._io(deadline, read)
        return not self.write_closed

    def _recv_some(self):
        got = False
        while True:
            try:
                chunk = self.sock.recv(262144)
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
                return got
            except (ConnectionResetError, BrokenPipeError, ssl.SSLError, OSError) as e:
                self.eof_how = "%s: %s" % (type(e).__name__, e)
                chunk = b""
            if not chunk:
                self.closed = True
                return got
            self.buf += chunk
            got = True

    def _io(self, deadline, read=True):
        """One select round: returns True if bytes were read."""
        left = max(0.0, deadline - time.time())
        if read and isinstance(self.sock, ssl.SSLSocket) and self.sock.pending():
            return self._recv_some()
        rl = [self.sock] if read and not self.closed else []
        wl = [self.sock] if self.out and not self.write_closed else []
        if not rl and not wl:
            return False
        r, w, _ = select.select(rl, wl, [], left)
        got = False
        if w:
            try:
                n = self.sock.send(self.out[:65536])
                del self.out[:n]
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
                pass
            except OSError as e:
                self.write_closed = True
                self.eof_how = "%s: %s" % (type(e).__name__, e)
                self.out.clear()
        if r:
            got = self._recv_some()
        return got

    def block(self, fields):
        return self.enc.encode(fields)

    def headers(self, sid, fields, end_stream=True, raw=None):
        blk = raw if raw is not None else self.block(fields)
        return frame(HEADERS, END_HEADERS | (END_STREAM if end_stream else 0), sid, blk)

    # -- input
    def _fill(self, deadline):
        while True:
            if self.closed:
                return False
            if time.time() >= deadline:
                raise TimeoutError
            if self._io(deadline):
                return True

    def read_frame(self, timeout=5.0):
        """(type, flags, sid, payload), or None at EOF.  Raises TimeoutError."""
        deadline = time.time() + timeout
        while True:
            if len(self.buf) >= 9:
                f, n = Frame.parse_frame_header(memoryview(bytes(self.buf[:9])))
                ftype = self.buf[3]
                if len(self.buf) >= 9 + n:
                    payload = bytes(self.buf[9:9 + n])
                    flags = self.buf[4]
                    sid = struct.unpack(">L", self.buf[5:9])[0] & 0x7FFFFFFF
                    del self.buf[:9 + n]
                    fr = (ftype, flags, sid, payload)
                    self.log.append(fr)
                    if VERBOSE:
                        print("    <- %s" % describe(fr), flush=True)
                    return fr
            if self.closed or not self._fill(deadline):
                return None

    def read_exact(self, n, timeout=5.0):
        deadline = time.time() + timeout
        while len(self.buf) < n:
            if self.closed or not self._fill(deadline):
                return None
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def decode(self, block):
        return [(k.decode() if isinstance(k, bytes) else k, v.decode() if isinstance(v, bytes) else v)
                for k, v in self.dec.decode(block, raw=True)]

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            self.sock.close()
        except OSError:
            pass
        self.closed = True


def describe(fr):
    t, fl, sid, p = fr
    name = FTYPE.get(t, "type0x%x" % t)
    extra = ""
    if t == GOAWAY and len(p) >= 8:
        last, code = struct.unpack(">LL", p[:8])
        extra = " last=%d code=%s debug=%r" % (last & 0x7FFFFFFF, ERR.get(code, code), p[8:60])
    elif t == RST_STREAM and len(p) == 4:
        extra = " code=%s" % ERR.get(struct.unpack(">L", p)[0], p.hex())
    elif t == WINDOW_UPDATE and len(p) == 4:
        extra = " inc=%d" % struct.unpack(">L", p)[0]
    elif t in (DATA, HEADERS):
        extra = " len=%d%s" % (len(p), " END_STREAM" if fl & END_STREAM else "")
    elif t == PING:
        extra = " %s%s" % (p.hex(), " ACK" if fl & ACK else "")
    elif t == SETTINGS:
        extra = " ACK" if fl & ACK else " " + str(parse_settings(p))
    return "%s sid=%d flags=0x%x%s" % (name, sid, fl, extra)


def parse_settings(p):
    return {struct.unpack(">H", p[i:i + 2])[0]: struct.unpack(">L", p[i + 2:i + 6])[0]
            for i in range(0, len(p) - len(p) % 6, 6)}


# ---------------------------------------------------------------- helpers: the client role (fake p)

class Response:
    def __init__(self):
        self.status = None
        self.headers = []
        self.body = bytearray()
        self.ended = False
        self.rst = None

    def header(self, name):
        for k, v in self.headers:
            if k == name:
                return v
        return None


def until(conn, want, timeout=8.0, answer_pings=True, ack_settings=True, what="a frame"):
    """Reads frames until want(frame) is true; returns that frame, or None at
    EOF.  Raises CaseFailed when nothing matching comes within `timeout`."""
    deadline = time.time() + timeout
    while True:
        try:
            fr = conn.read_frame(max(0.01, deadline - time.time()))
        except TimeoutError:
            raise CaseFailed("no %s within %.0f s (frames seen: %s)" % (
                what, timeout, ", ".join(describe(f) for f in conn.log[-6:]) or "none"))
        if fr is None:
            return None
        t, fl, sid, p = fr
        if want(fr):
            return fr
        if t == PING and not fl & ACK and answer_pings:
            conn.send(ping(p, ack=True))
        elif t == SETTINGS and not fl & ACK and ack_settings:
            conn.remote_settings.update(parse_settings(p))
            conn.send(settings(ack=True))


def expect_goaway(conn, code, what, timeout=8.0):
    """c must end the connection with GOAWAY(code) (RFC 9113 §5.4.1) and close."""
    fr = until(conn, lambda f: f[0] == GOAWAY, timeout, what="GOAWAY")
    if fr is None:
        bad("%s: expected GOAWAY %s, the connection closed without one (%s)" % (what, ERR[code], conn.eof_how))
        return False
    last, got = struct.unpack(">LL", fr[3][:8])
    if not check(got == code, "%s -> GOAWAY %s" % (what, ERR[code]),
                 "saw GOAWAY %s (debug %r)" % (ERR.get(got, got), fr[3][8:80])):
        return False
    # After a connection error the sender closes (§5.4.1).
    try:
        rest = until(conn, lambda f: False, timeout=8.0)
    except CaseFailed:
        bad("%s: c sent GOAWAY %s but kept the connection open 8 s" % (what, ERR[code]))
        return False
    return rest is None


def expect_rst(conn, sid, code, what, timeout=8.0):
    """A stream error (§5.4.2): RST_STREAM(code) on sid; the connection lives."""
    fr = until(conn, lambda f: (f[0] == RST_STREAM and f[2] == sid) or f[0] == GOAWAY,
               timeout, what="RST_STREAM on stream %d" % sid)
    if fr is None:
        bad("%s: expected RST_STREAM %s, the connection closed" % (what, ERR[code]))
        return False
    if fr[0] == GOAWAY:
        last, got = struct.unpack(">LL", fr[3][:8])
        bad("%s: expected RST_STREAM %s on stream %d, saw GOAWAY %s (a connection error)"
            % (what, ERR[code], sid, ERR.get(got, got)))
        return False
    got = struct.unpack(">L", fr[3])[0]
    return check(got == code, "%s -> RST_STREAM %s on stream %d" % (what, ERR[code], sid),
                 "saw RST_STREAM %s" % ERR.get(got, got))


def expect_ping_ack(conn, opaque, what, timeout=8.0):
    fr = until(conn, lambda f: f[0] == PING and f[1] & ACK or f[0] == GOAWAY, timeout,
               what="PING ACK")
    if fr is None:
        return check(False, what, "connection closed instead of a PING ACK")
    if fr[0] == GOAWAY:
        return check(False, what, "saw %s" % describe(fr))
    return check(fr[3] == opaque, what, "ACK payload %s, sent %s" % (fr[3].hex(), opaque.hex()))


def request(conn, sid, path, extra=(), method="GET", timeout=10.0, window=True, max_body=None):
    """Sends a GET and reads its response; returns Response (body is the DATA)."""
    fields = [(":method", method), (":scheme", "http"), (":authority", "tether.test"),
              (":path", path)] + list(extra)
    conn.send(conn.headers(sid, fields, end_stream=True))
    return read_response(conn, sid, timeout, window, max_body)


def read_response(conn, sid, timeout=10.0, window=True, max_body=None):
    r = Response()
    block = b""
    deadline = time.time() + timeout
    while not r.ended:
        fr = until(conn, lambda f: f[2] == sid or f[0] == GOAWAY, max(0.1, deadline - time.time()),
                   what="the response on stream %d" % sid)
        if fr is None:
            raise CaseFailed("connection closed before the response on stream %d ended" % sid)
        t, fl, s, p = fr
        if t == GOAWAY:
            raise CaseFailed("GOAWAY while waiting for stream %d: %s" % (sid, describe(fr)))
        if t in (HEADERS, CONTINUATION):
            if t == HEADERS:
                p = strip_headers_payload(fl, p)
            block += p
            if fl & END_HEADERS:
                fields = conn.decode(block)
                block = b""
                st = dict(fields).get(":status")
                if st and not st.startswith("1"):
                    r.status = int(st)
                    r.headers = fields
                if fl & END_STREAM:
                    r.ended = True
        elif t == DATA:
            if fl & PADDED:
                p = p[1:len(p) - p[0]]
            r.body += p
            if window and len(fr[3]):
                conn.send(window_update(0, len(fr[3])), window_update(sid, len(fr[3])))
            if fl & END_STREAM:
                r.ended = True
            if max_body is not None and len(r.body) >= max_body:
                return r
        elif t == RST_STREAM:
            r.rst = struct.unpack(">L", p)[0]
            raise CaseFailed("stream %d reset by c: %s" % (sid, ERR.get(r.rst, r.rst)))
    return r


def strip_headers_payload(fl, p):
    if fl & PADDED:
        pad = p[0]
        p = p[1:len(p) - pad]
    if fl & PRIO:
        p = p[5:]
    return p


# ---------------------------------------------------------------- the fake p

class FakeP:
    def __init__(self, work):
        self.work = work
        self.root = os.path.join(work, "root")
        self.token = open(os.path.join(work, "fp-token")).read().strip()
        self.name = "media"
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(os.path.join(work, "fp-cert.pem"), os.path.join(work, "fp-key.pem"))
        ctx.set_alpn_protocols(["http/1.1"])
        self.ctx = ctx
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(16)
        self.port = self.lsock.getsockname()[1]
        self.fpr = open(os.path.join(work, "fp-fingerprint")).read().strip()
        self.c = None
        self.clog = None

    def start_c(self, label, extra=()):
        logf = os.path.join(self.work, "%s.log" % label)
        self.clog = logf
        env = dict(os.environ)
        env["TETHER_TOKEN"] = self.token
        argv = [os.environ.get("TT_C", "bin/c"), "--proxy", "127.0.0.1:%d" % self.port,
                "--name", self.name, "--fingerprint", self.fpr, "--root", self.root,
                "--auth-backoff", "1"] + list(extra)
        self.c = subprocess.Popen(argv, stdout=open(os.path.join(self.work, "%s.out" % label), "ab"),
                                  stderr=open(logf, "ab"), env=env)
        with open(os.path.join(self.work, "pids"), "a") as f:
            f.write("%d %s\n" % (self.c.pid, label))
        return self.c

    def stop_c(self):
        if self.c and self.c.poll() is None:
            self.c.terminate()
            try:
                self.c.wait(5)
            except subprocess.TimeoutExpired:
                self.c.kill()
                self.c.wait()
        self.c = None

    def accept(self, timeout=10.0):
        """Accepts c's next tunnel: TLS, the PUT checked field by field.
        Returns (tls socket, request head dict, bytes past the head)."""
        self.lsock.settimeout(timeout)
        try:
            raw, _ = self.lsock.accept()
        except socket.timeout:
            raise CaseFailed("c did not dial in within %.0f s (c %s)" % (
                timeout, "exited %s" % self.c.returncode if self.c and self.c.poll() is not None else "running"))
        raw.settimeout(10)
        tls = self.ctx.wrap_socket(raw, server_side=True)
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = tls.recv(4096)
            if not chunk:
                raise CaseFailed("c closed before its PUT head was complete: %r" % head)
            head += chunk
            if len(head) > 65536:
                raise CaseFailed("c's PUT head is over 64 KiB")
        head, rest = head.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        req = {"line": lines[0]}
        for ln in lines[1:]:
            k, _, v = ln.partition(":")
            req[k.strip().lower()] = v.strip()
        return tls, req, rest

    def check_put(self, req):
        probs = []
        if req["line"] != "PUT /.well-known/tether/tunnel HTTP/1.1":
            probs.append("request line %r" % req["line"])
        if req.get("authorization") != "Bearer " + self.token:
            probs.append("Authorization is not 'Bearer <the token>'")
        if req.get("tether-name") != self.name:
            probs.append("Tether-Name %r" % req.get("tether-name"))
        if req.get("tether-version") != "1":
            probs.append("Tether-Version %r" % req.get("tether-version"))
        if (req.get("upgrade") or "").lower() != "tether-h2r":
            probs.append("Upgrade %r" % req.get("upgrade"))
        if "upgrade" not in (req.get("connection") or "").lower():
            probs.append("Connection %r" % req.get("connection"))
        if not req.get("host"):
            probs.append("no Host")
        return probs

    def tunnel(self, our_settings=((S_ENABLE_PUSH, 0), (S_INITIAL_WINDOW, 1 << 20)),
               conn_window=16 << 20, ack=True, timeout=10.0):
        """Accepts c, answers 101 and runs the HTTP/2 client preface.  Returns
        Conn after c's SETTINGS arrived (and were ACKed when `ack`)."""
        tls, req, rest = self.accept(timeout)
        probs = self.check_put(req)
        if probs:
            raise CaseFailed("c's PUT is wrong: " + "; ".join(probs))
        tls.sendall(b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
                    b"Upgrade: tether-h2r\r\n\r\n" + PREFACE + settings(*our_settings)
                    + (window_update(0, conn_window - 65535) if conn_window > 65535 else b""))
        tls.setblocking(False)
        conn = Conn(tls, rest)
        fr = until(conn, lambda f: f[0] == SETTINGS and not f[1] & ACK, 8.0, ack_settings=False,
                   what="c's SETTINGS")
        if fr is None:
            raise CaseFailed("c closed before sending SETTINGS after the 101")
        conn.remote_settings.update(parse_settings(fr[3]))
        if ack:
            conn.send(settings(ack=True))
        return conn


def file_sha(path, start=0, end=None):
    with open(path, "rb") as f:
        f.seek(start)
        data = f.read() if end is None else f.read(end - start + 1)
    return data


# ---- fake p cases: each gets a fresh tunnel `conn` from a fresh c

def fp_get(fp, conn):
    """A normal GET: 200, right headers, DATA equal to the file."""
    want = file_sha(os.path.join(fp.root, "big.bin"))
    r = request(conn, 1, "/big.bin")
    check(r.status == 200, "GET /big.bin -> 200", "saw %s" % r.status)
    check(r.header("content-length") == str(len(want)), "content-length is the file size",
          "saw %s" % r.header("content-length"))
    check(bytes(r.body) == want, "DATA equals the file (%d bytes)" % len(want),
          "got %d bytes, sha256 %s" % (len(r.body), hashlib.sha256(r.body).hexdigest()[:16]))
    r = request(conn, 3, "/hello.txt")
    check(r.status == 200 and bytes(r.body) == file_sha(os.path.join(fp.root, "hello.txt")),
          "a second stream on the tunnel is served too", "status %s" % r.status)


def fp_range(fp, conn):
    want = file_sha(os.path.join(fp.root, "big.bin"), 512, 2047)
    r = request(conn, 1, "/big.bin", [("range", "bytes=512-2047")])
    check(r.status == 206, "Range bytes=512-2047 -> 206", "saw %s" % r.status)
    check(r.header("content-range") == "bytes 512-2047/%d" % os.path.getsize(os.path.join(fp.root, "big.bin")),
          "content-range is right", "saw %s" % r.header("content-range"))
    check(bytes(r.body) == want, "range DATA equals bytes 512..2047", "got %d bytes" % len(r.body))


def fp_continuation(fp, conn):
    """A request split into HEADERS + 2 CONTINUATION frames (§6.10)."""
    blk = conn.block([(":method", "GET"), (":scheme", "http"), (":authority", "tether.test"),
                      (":path", "/hello.txt"), ("user-agent", "h2peer/" + "x" * 200),
                      ("accept", "*/*")])
    a, b = len(blk) // 3, 2 * len(blk) // 3
    conn.send(frame(HEADERS, END_STREAM, 1, blk[:a]), frame(CONTINUATION, 0, 1, blk[a:b]),
              frame(CONTINUATION, END_HEADERS, 1, blk[b:]))
    r = read_response(conn, 1)
    check(r.status == 200 and bytes(r.body) == file_sha(os.path.join(fp.root, "hello.txt")),
          "HEADERS + CONTINUATION request -> 200 with the file", "status %s, %d bytes" % (r.status, len(r.body)))


def fp_ping(fp, conn):
    opaque = b"\x01\x23\x45\x67\x89\xab\xcd\xef"
    conn.send(ping(opaque))
    expect_ping_ack(conn, opaque, "PING -> PING ACK with the same 8 bytes")
    conn.send(frame(PING, 0, 0, b"\0" * 7))
    expect_goaway(conn, CODE["FRAME_SIZE_ERROR"], "PING of 7 bytes (§6.7)")


def fp_unknown_frame(fp, conn):
    opaque = b"unknown!"
    conn.send(frame(0x20, 0xFF, 0, b"ignore me"), frame(0xFA, 0, 1, b"x" * 100), ping(opaque))
    expect_ping_ack(conn, opaque, "unknown frame types are ignored (§4.1, §5.5): PING still answered")
    r = request(conn, 1, "/hello.txt")
    check(r.status == 200, "and a request after them is served", "saw %s" % r.status)


def fp_frame_too_big(fp, conn):
    mfs = conn.remote_settings.get(S_MAX_FRAME, 16384)
    blk = conn.block([(":method", "GET"), (":scheme", "http"), (":authority", "t"), (":path", "/hello.txt")])
    blk += raw_block([("x-pad", "p" * (mfs + 10))])
    conn.send(frame(HEADERS, END_HEADERS | END_STREAM, 1, blk[:mfs + 1]))
    expect_goaway(conn, CODE["FRAME_SIZE_ERROR"], "HEADERS of %d bytes, max frame size %d (§4.2)" % (mfs + 1, mfs))


def fp_even_stream(fp, conn):
    conn.send(conn.headers(2, [(":method", "GET"), (":scheme", "http"), (":authority", "t"),
                               (":path", "/hello.txt")]))
    expect_goaway(conn, CODE["PROTOCOL_ERROR"], "HEADERS on even stream 2 (§5.1.1)")


def fp_stream_backwards(fp, conn):
    r = request(conn, 5, "/hello.txt")
    check(r.status == 200, "GET on stream 5 served", "saw %s" % r.status)
    conn.send(conn.headers(3, [(":method", "GET"), (":scheme", "http"), (":authority", "t"),
                               (":path", "/hello.txt")]))
    expect_goaway(conn, CODE["PROTOCOL_ERROR"], "HEADERS on stream 3 after stream 5 (§5.1.1)")


def malformed(conn, sid, fields, what):
    conn.send(frame(HEADERS, END_HEADERS | END_STREAM, sid, raw_block(fields)))
    expect_rst(conn, sid, CODE["PROTOCOL_ERROR"], what)


def fp_malformed(fp, conn):
    base = [(":method", "GET"), (":scheme", "http"), (":authority", "t"), (":path", "/hello.txt")]
    malformed(conn, 1, base + [("X-Upper", "1")], "uppercase header name (§8.2.1)")
    malformed(conn, 3, base[:3], "no :path (§8.3.1)")
    malformed(conn, 5, base + [("connection", "keep-alive")], "connection-specific header (§8.2.2)")
    malformed(conn, 7, base + [("te", "gzip")], "TE other than trailers (§8.2.2)")
    malformed(conn, 9, [(":method", "GET"), (":path", "/hello.txt"), (":scheme", "http"),
                        (":authority", "t"), (":path", "/x")], "duplicate :path (§8.3.1)")
    malformed(conn, 11, [("accept", "*/*")] + base, "pseudo-header after a regular one (§8.3)")
    malformed(conn, 13, base + [("x-bad", "a\r\nb")], "CR LF in a header value (§8.2.1)")
    # Malformed requests are stream errors: the connection still serves.
    r = request(conn, 15, "/hello.txt")
    check(r.status == 200, "the tunnel still serves after the malformed requests", "saw %s" % r.status)


def fp_window_update_zero(fp, conn):
    # Keep stream 1 open: a big file and a window that stays shut.
    conn.send(settings((S_INITIAL_WINDOW, 1024)))
    until(conn, lambda f: f[0] == SETTINGS and f[1] & ACK, what="SETTINGS ACK")
    conn.send(conn.headers(1, [(":method", "GET"), (":scheme", "http"), (":authority", "t"),
                               (":path", "/huge.bin")]))
    until(conn, lambda f: f[0] == HEADERS and f[2] == 1, what="the response HEADERS on stream 1")
    conn.send(window_update(1, 0))
    expect_rst(conn, 1, CODE["PROTOCOL_ERROR"], "WINDOW_UPDATE 0 on an open stream (§6.9)")
    conn.send(window_update(0, 0))
    expect_goaway(conn, CODE["PROTOCOL_ERROR"], "WINDOW_UPDATE 0 on the connection (§6.9)")


def fp_window_overflow(fp, conn):
    conn.send(settings((S_INITIAL_WINDOW, 1024)))
    until(conn, lambda f: f[0] == SETTINGS and f[1] & ACK, what="SETTINGS ACK")
    conn.send(conn.headers(1, [(":method", "GET"), (":scheme", "http"), (":authority", "t"),
                               (":path", "/huge.bin")]))
    until(conn, lambda f: f[0] == HEADERS and f[2] == 1, what="the response HEADERS on stream 1")
    # Twice: c may have spent its 1024 bytes, so one increment could fit.
    conn.send(window_update(1, 0x7FFFFFFF), window_update(1, 0x7FFFFFFF))
    expect_rst(conn, 1, CODE["FLOW_CONTROL_ERROR"], "stream window past 2^31-1 (§6.9.1)")
    conn.send(window_update(0, 0x7FFFFFFF), window_update(0, 0x7FFFFFFF))
    expect_goaway(conn, CODE["FLOW_CONTROL_ERROR"], "connection window past 2^31-1 (§6.9.1)")


def fp_bad_settings(fp, conn):
    conn.send(settings((S_INITIAL_WINDOW, 0x80000000)))
    expect_goaway(conn, CODE["FLOW_CONTROL_ERROR"], "SETTINGS_INITIAL_WINDOW_SIZE 2^31 (§6.5.2)")


def fp_bad_settings2(fp, conn):
    conn.send(settings((S_MAX_FRAME, 16383)))
    expect_goaway(conn, CODE["PROTOCOL_ERROR"], "SETTINGS_MAX_FRAME_SIZE 16383 (§6.5.2)")


def fp_bad_settings3(fp, conn):
    conn.send(settings((S_ENABLE_PUSH, 2)))
    expect_goaway(conn, CODE["PROTOCOL_ERROR"], "SETTINGS_ENABLE_PUSH 2 (§6.5.2)")


def fp_settings_len(fp, conn):
    conn.send(frame(SETTINGS, 0, 0, b"\0\4\0\0\0"))
    expect_goaway(conn, CODE["FRAME_SIZE_ERROR"], "SETTINGS of 5 bytes (§6.5)")


def fp_data_idle(fp, conn):
    conn.send(frame(DATA, END_STREAM, 1, b"hello"))
    expect_goaway(conn, CODE["PROTOCOL_ERROR"], "DATA on idle stream 1 (§5.1)")


def fp_data_half_closed(fp, conn):
    conn.send(settings((S_INITIAL_WINDOW, 1024)))
    until(conn, lambda f: f[0] == SETTINGS and f[1] & ACK, what="SETTINGS ACK")
    conn.send(conn.headers(1, [(":method", "GET"), (":scheme", "http"), (":authority", "t"),
                               (":path", "/big.bin")], end_stream=True))
    until(conn, lambda f: f[0] == HEADERS and f[2] == 1, what="the response HEADERS")
    conn.send(frame(DATA, 0, 1, b"more"))
    fr = until(conn, lambda f: (f[0] == RST_STREAM and f[2] == 1) or f[0] == GOAWAY, what="an error")
    code = struct.unpack(">L", fr[3][-4:] if fr[0] == RST_STREAM else fr[3][4:8])[0] if fr else None
    check(fr is not None and code == CODE["STREAM_CLOSED"],
          "DATA after END_STREAM (half-closed remote) -> STREAM_CLOSED (§5.1)",
          "saw %s" % (describe(fr) if fr else "close"))


def drain_frames(conn, on_frame):
    """Hands every complete frame already read to on_frame (no waiting);
    returns True when on_frame did, or the peer closed."""
    while True:
        try:
            fr = conn.read_frame(0.0)
        except TimeoutError:
            return False
        if fr is None:
            return True
        if on_frame(fr):
            return True


def blast(conn, chunks, on_frame, limit_s=15.0, read=True, sample=None):
    """Sends chunks one by one, reading the peer meanwhile, handing its
    frames to on_frame; stops early when on_frame returns True or the peer
    stops reading/closes.  Returns how many chunks went out."""
    n = 0
    end = time.time() + limit_s
    for ch in chunks:
        if time.time() > end:
            break
        try:
            if not conn.send(ch, read=read, timeout=max(0.5, end - time.time())):
                break
        except CaseFailed:
            break
        n += 1
        if sample:
            sample()
        if read and drain_frames(conn, on_frame):
            return n
    return n


def fp_flow_window(fp, conn):
    """DATA past the window c granted: c must flag FLOW_CONTROL_ERROR, or
    have granted (WINDOW_UPDATE) every byte it accepted (§6.9)."""
    stream_window = conn.remote_settings.get(S_INITIAL_WINDOW, 65535)
    # c's SETTINGS are ACKed by now, but c may enforce only 65535 until it
    # sees the ACK (§6.9.2): count its largest advertised value.
    stream_window = max(stream_window, 65535)
    conn.send(conn.headers(1, [(":method", "PUT"), (":scheme", "http"), (":authority", "t"),
                               (":path", "/upload.bin"), ("content-length", "99999999")],
                           end_stream=False))
    nframes = stream_window // 16384 + 5
    st = {"s": 0, "c": 0, "err": None}

    def on_frame(fr):
        t, fl, sid, p = fr
        if t == WINDOW_UPDATE:
            st["s" if sid == 1 else "c"] += struct.unpack(">L", p)[0]
        elif t == RST_STREAM and sid == 1:
            st["err"] = ("RST_STREAM", struct.unpack(">L", p)[0])
            return True
        elif t == GOAWAY:
            st["err"] = ("GOAWAY", struct.unpack(">L", p[4:8])[0])
            return True
        elif t == PING and not fl & ACK:
            conn.out += ping(p, ack=True)
        return False
    chunk = frame(DATA, 0, 1, b"\xab" * 16384)
    n = blast(conn, [chunk] * nframes, on_frame)
    sent = n * 16384
    # What c says after the last byte: up to a PING's answer.
    conn.send(ping(b"flowflow"))
    try:
        until(conn, lambda f: on_frame(f) or (f[0] == PING and f[1] & ACK), 8, what="PING ACK")
    except CaseFailed:
        pass
    err = st["err"]
    if err and err[1] == CODE["FLOW_CONTROL_ERROR"]:
        ok("%d DATA bytes on a %d-byte window -> %s FLOW_CONTROL_ERROR" % (sent, stream_window, err[0]))
    elif err:
        bad("DATA past the window: expected FLOW_CONTROL_ERROR or window updates, saw %s %s"
            % (err[0], ERR.get(err[1], err[1])))
    else:
        check(stream_window + st["s"] >= sent,
              "c accepted %d DATA bytes only as far as it granted window (%d + %d)"
              % (sent, stream_window, st["s"]),
              "c accepted %d bytes on a stream window of %d + %d granted, without FLOW_CONTROL_ERROR"
              % (sent, stream_window, st["s"]))


def fp_rapid_reset(fp, conn, path="/big.bin"):
    """CVE-2023-44487 on a 300 KiB file (c has output queued when it gives up)."""
    n = 2000
    chunks = []
    for i in range(n):
        sid = 1 + 2 * i
        chunks.append(conn.headers(sid, [(":method", "GET"), (":scheme", "http"), (":authority", "t"),
                                         (":path", path)]) + rst(sid, CODE["CANCEL"]))
    got = []
    sent = blast(conn, [b"".join(chunks[i:i + 50]) for i in range(0, n, 50)],
                 lambda f: f[0] == GOAWAY and not got.append(f))
    fr = got[0] if got else until(conn, lambda f: f[0] == GOAWAY, 10.0, what="GOAWAY")
    if fr is None:
        bad("rapid reset: the connection ended without a GOAWAY reaching us (%s; %d frames received: %s)"
            % (conn.eof_how, len(conn.log), ", ".join(describe(f) for f in conn.log[-4:])))
        return
    code = struct.unpack(">L", fr[3][4:8])[0]
    check(code == CODE["ENHANCE_YOUR_CALM"],
          "%d HEADERS+RST_STREAM pairs sent -> GOAWAY ENHANCE_YOUR_CALM (last stream %d)"
          % (min(n, sent * 50), struct.unpack(">L", fr[3][:4])[0]), "saw GOAWAY %s" % ERR.get(code, code))


def rss_kib(pid):
    try:
        for ln in open("/proc/%d/status" % pid):
            if ln.startswith("VmRSS:"):
                return int(ln.split()[1])
    except OSError:
        pass
    return 0


def fp_continuation_flood(fp, conn):
    """CVE-2024-27316: CONTINUATION without END_HEADERS, forever."""
    rss0 = rss_kib(fp.c.pid)
    peak = [rss0]
    blk = conn.block([(":method", "GET"), (":scheme", "http"), (":authority", "t"), (":path", "/hello.txt")])
    conn.send(frame(HEADERS, END_STREAM, 1, blk))
    piece = frame(CONTINUATION, 0, 1, literal("x-flood", "f" * 4000)) * 16
    got = []
    sent = blast(conn, [piece] * 1250, lambda f: f[0] == GOAWAY and not got.append(f),
                 sample=lambda: peak.__setitem__(0, max(peak[0], rss_kib(fp.c.pid))))
    fr = got[0] if got else until(conn, lambda f: f[0] == GOAWAY, 10.0, what="GOAWAY")
    if fr is None:
        bad("CONTINUATION flood: the connection ended without a GOAWAY reaching us (%s)" % conn.eof_how)
    else:
        code = struct.unpack(">L", fr[3][4:8])[0]
        check(code in (CODE["ENHANCE_YOUR_CALM"], CODE["PROTOCOL_ERROR"], CODE["COMPRESSION_ERROR"],
                       CODE["FRAME_SIZE_ERROR"]),
              "CONTINUATION flood (%d frames sent) -> GOAWAY %s" % (sent * 16, ERR.get(code, code)),
              "saw GOAWAY %s" % ERR.get(code, code))
    check(peak[0] - rss0 < 32 * 1024, "c's RSS grew by less than 32 MiB during the flood",
          "grew from %d KiB to %d KiB" % (rss0, peak[0]))


def fp_no_window(fp, conn):
    """A client that never returns window: c holds one window's worth, not
    the file (2 GiB sparse).  A memory bound, checked by RSS."""
    size = os.path.getsize(os.path.join(fp.root, "huge.bin"))
    conn.send(settings((S_INITIAL_WINDOW, 65535)))
    until(conn, lambda f: f[0] == SETTINGS and f[1] & ACK, what="SETTINGS ACK")
    # No connection WINDOW_UPDATE either: this tunnel was made with the
    # default 65535-byte connection window.
    rss0 = rss_kib(fp.c.pid)
    conn.send(conn.headers(1, [(":method", "GET"), (":scheme", "http"), (":authority", "t"),
                               (":path", "/huge.bin")]))
    got = 0
    status = None
    peak = rss0
    opaque = b"rsscheck"
    # Read what c sends; PING now and then to know c has processed
    # everything before us.  The wait is bounded; no timing is asserted.
    for rnd in range(20):
        conn.send(ping(opaque))
        while True:
            fr = until(conn, lambda f: f[0] in (DATA, HEADERS, GOAWAY, RST_STREAM)
                       or (f[0] == PING and f[1] & ACK), 8.0, what="frames")
            if fr is None:
                raise CaseFailed("c closed the tunnel while the window was shut")
            t, fl, sid, p = fr
            if t == HEADERS:
                st = dict(conn.decode(strip_headers_payload(fl, p))).get(":status")
                status = st
            elif t == DATA:
                got += len(p)
            elif t in (GOAWAY, RST_STREAM):
                raise CaseFailed("c ended the stream: %s" % describe(fr))
            else:
                break
        peak = max(peak, rss_kib(fp.c.pid))
        time.sleep(0.1)
    check(status == "200", "GET /huge.bin (%d bytes) -> 200" % size, "saw %s" % status)
    check(got <= 65535, "c sent at most the 65535-byte window (%d bytes)" % got,
          "c sent %d DATA bytes into a 65535-byte window (§6.9.1)" % got)
    check(got > 0, "c used the window it had", "no DATA at all")
    check(peak - rss0 < 16 * 1024, "c's RSS stayed bounded (from %d KiB, peak %d KiB)" % (rss0, peak),
          "RSS grew from %d KiB to %d KiB while the window was shut" % (rss0, peak))
    # Opening the window resumes the stream.
    conn.send(window_update(0, 1 << 20), window_update(1, 1 << 20))
    fr = until(conn, lambda f: f[0] == DATA and f[2] == 1, 8.0, what="DATA after WINDOW_UPDATE")
    check(fr is not None, "DATA resumes once window is returned")


def fp_no_ping_answer(fp, conn):
    """c started with --ping-interval 1 --ping-timeout 1: a peer that stays
    silent is dropped.  We read and answer nothing."""
    t0 = time.time()
    pings = 0
    fr = None
    while time.time() - t0 < 15:
        try:
            fr = conn.read_frame(1.0)
        except TimeoutError:
            continue
        if fr is None:
            break
        if fr[0] == PING and not fr[1] & ACK:
            pings += 1
    check(pings >= 1, "c PINGed the idle tunnel (%d PINGs)" % pings, "no PING from c")
    check(fr is None, "c dropped the tunnel whose PINGs were never answered",
          "the connection was still open after 15 s")


FAKEP_CASES = {
    "get": (fp_get, {}),
    "range": (fp_range, {}),
    "continuation": (fp_continuation, {}),
    "ping": (fp_ping, {}),
    "unknown-frame": (fp_unknown_frame, {}),
    "frame-too-big": (fp_frame_too_big, {}),
    "even-stream": (fp_even_stream, {}),
    "stream-backwards": (fp_stream_backwards, {}),
    "malformed": (fp_malformed, {}),
    "window-update-zero": (fp_window_update_zero, {"conn_window": 65535}),
    "window-overflow": (fp_window_overflow, {"conn_window": 65535}),
    "bad-settings-window": (fp_bad_settings, {}),
    "bad-settings-frame-size": (fp_bad_settings2, {}),
    "bad-settings-push": (fp_bad_settings3, {}),
    "settings-length": (fp_settings_len, {}),
    "data-idle": (fp_data_idle, {}),
    "data-half-closed": (fp_data_half_closed, {}),
    "flow-window": (fp_flow_window, {}),
    "rapid-reset": (fp_rapid_reset, {}),
    "continuation-flood": (fp_continuation_flood, {}),
    "no-window": (fp_no_window, {"conn_window": 65535}),
    "no-ping-answer": (fp_no_ping_answer, {"c_args": ["--ping-interval", "1", "--ping-timeout", "1"]}),
}


def setup_fakep(work):
    """The fake p's identity (a throwaway self-signed P-256 certificate), the
    token c sends, and c's root: a small text file, a 300 KiB random file and
    a 2 GiB sparse file."""
    root = os.path.join(work, "root")
    os.makedirs(root, exist_ok=True)
    with open(os.path.join(root, "hello.txt"), "w") as f:
        f.write("hello from the origin\n" * 10)
    with open(os.path.join(root, "big.bin"), "wb") as f:
        f.write(os.urandom(300 * 1024 + 17))
    with open(os.path.join(root, "huge.bin"), "wb") as f:
        f.truncate(2 << 30)
    cert, key = os.path.join(work, "fp-cert.pem"), os.path.join(work, "fp-key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-subj", "/CN=127.0.0.1", "-days", "2", "-keyout", key, "-out", cert],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    der = subprocess.run(["openssl", "x509", "-in", cert, "-outform", "DER"], check=True,
                         stdout=subprocess.PIPE).stdout
    with open(os.path.join(work, "fp-fingerprint"), "w") as f:
        f.write("sha256:" + hashlib.sha256(der).hexdigest())
    with open(os.path.join(work, "fp-token"), "w") as f:
        f.write(os.urandom(24).hex())


def run_fakep(work, cases):
    if not os.path.exists(os.path.join(work, "fp-token")):
        setup_fakep(work)
    fp = FakeP(work)
    note("fake p listening on 127.0.0.1:%d" % fp.port)
    for name in cases:
        fn, opts = FAKEP_CASES[name]
        print("  [case %s] %s" % (name, (fn.__doc__ or "").strip().split("\n")[0]), flush=True)
        fails0 = FAILS
        label = "c-" + name
        try:
            fp.start_c(label, opts.get("c_args", ()))
            conn = fp.tunnel(conn_window=opts.get("conn_window", 16 << 20))
            ok("c's PUT has the method, path, Bearer token, Tether-Name, Tether-Version 1 and Upgrade")
            fn(fp, conn)
            conn.close()
            # c stays alive and dials in again; the new tunnel serves.
            time.sleep(0.05)
            if not check(fp.c.poll() is None, "c is still running after the case",
                         "c exited with status %s" % fp.c.returncode):
                raise CaseFailed("c died")
            conn2 = fp.tunnel(timeout=15.0)
            r = request(conn2, 1, "/hello.txt")
            check(r.status == 200 and bytes(r.body) == file_sha(os.path.join(fp.root, "hello.txt")),
                  "c dialed in again (a new, valid PUT) and the new tunnel serves",
                  "status %s" % r.status)
            conn2.close()
        except CaseFailed as e:
            bad("%s: %s" % (name, e))
        except Exception as e:  # a bug here or an unexpected peer behaviour
            bad("%s: unexpected %s: %s" % (name, type(e).__name__, e))
        finally:
            alive = fp.c.poll() is None if fp.c else False
            fp.stop_c()
            if FAILS > fails0 and fp.clog:
                with open(fp.clog, "rb") as f:
                    tail = f.read().decode("utf-8", "replace").splitlines()[-6:]
                for ln in tail:
                    print("    | " + ln)
            if not alive and FAILS == fails0:
                bad("%s: c was not running at the end" % name)


# ---------------------------------------------------------------- the fake c

class FakeC:
    def __init__(self, work, http_port, tun_port):
        self.work = work
        self.http_port = http_port
        self.tun_port = tun_port
        shared = os.environ["TT_SHARED"]
        self.token = open(os.path.join(shared, "token.media")).read().strip()
        self.other = open(os.path.join(shared, "token.other")).read().strip()
        self.plog = os.path.join(work, "p.log")
        self.curls = []

    def dial(self):
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.set_alpn_protocols(["http/1.1"])
        s = socket.create_connection(("127.0.0.1", self.tun_port), timeout=10)
        return ctx.wrap_socket(s, server_hostname="127.0.0.1")

    def put(self, head):
        """Sends a raw handshake; returns (status, head text, bytes after, sock)."""
        tls = self.dial()
        tls.sendall(head)
        buf = b""
        while b"\r\n\r\n" not in buf:
            try:
                chunk = tls.recv(4096)
            except (ConnectionResetError, ssl.SSLError):
                chunk = b""
            if not chunk:
                break
            buf += chunk
        hd, _, rest = buf.partition(b"\r\n\r\n")
        try:
            status = int(hd.split(b" ")[1])
        except (IndexError, ValueError):
            status = None
        return status, hd.decode("latin-1"), rest, tls

    def handshake_head(self, token=None, name="media", upgrade=True):
        h = "PUT /.well-known/tether/tunnel HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        if token:
            h += "Authorization: Bearer %s\r\n" % token
        h += "Tether-Name: %s\r\nTether-Version: 1\r\n" % name
        if upgrade:
            h += "Connection: Upgrade\r\nUpgrade: tether-h2r\r\n"
        return (h + "Content-Length: 0\r\n\r\n").encode()

    def tunnel(self, our_settings=((S_MAX_CONCURRENT, 100), (S_INITIAL_WINDOW, 1 << 20)),
               conn_window=16 << 20):
        """A real tunnel as c would make it: 101, p's preface, then we are the
        HTTP/2 server."""
        n_up = count(self.plog, "tunnel up name=media")
        status, hd, rest, tls = self.put(self.handshake_head(self.token))
        if status != 101:
            raise CaseFailed("the valid PUT got %s, not 101: %r" % (status, hd))
        tls.setblocking(False)
        conn = Conn(tls, rest, role="server")
        pre = conn.read_exact(len(PREFACE), 8.0)
        if pre != PREFACE:
            raise CaseFailed("p's first bytes after the 101 are not the HTTP/2 preface: %r" % pre)
        conn.send(settings(*our_settings) + (window_update(0, conn_window - 65535) if conn_window > 65535 else b""))
        fr = until(conn, lambda f: f[0] == SETTINGS and not f[1] & ACK, what="p's SETTINGS")
        if fr is None:
            raise CaseFailed("p closed the tunnel before its SETTINGS")
        conn.remote_settings.update(parse_settings(fr[3]))
        conn.send(settings(ack=True))
        if not wait_for(lambda: count(self.plog, "tunnel up name=media") > n_up, 5):
            raise CaseFailed("p did not log 'tunnel up name=media' for the fake c")
        return conn

    def curl(self, path, extra=()):
        """Starts curl in the background: returns (Popen, body file, meta file)."""
        i = len(self.curls)
        body = os.path.join(self.work, "curl%d.body" % i)
        meta = os.path.join(self.work, "curl%d.meta" % i)
        p = subprocess.Popen(["curl", "-s", "-S", "--max-time", "8", "-o", body, "-w",
                              "%{http_code} %{size_download}", "-D", meta + ".hdrs"] + list(extra)
                             + ["http://127.0.0.1:%d%s" % (self.http_port, path)],
                             stdout=open(meta, "wb"), stderr=open(meta + ".err", "wb"))
        self.curls.append(p)
        return p, body, meta

    def curl_result(self, cp, timeout=25):
        p, body, meta = cp
        try:
            rc = p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            rc = "timeout"
        out = open(meta).read().split()
        code = out[0] if out else "000"
        err = open(meta + ".err").read().strip()
        return rc, code, open(body, "rb").read() if os.path.exists(body) else b"", err

    def stop_curls(self):
        for p in self.curls:
            if p.poll() is None:
                p.kill()
                p.wait()


def count(path, needle):
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace").count(needle)
    except OSError:
        return 0


def wait_for(cond, timeout, step=0.05):
    end = time.time() + timeout
    while time.time() < end:
        if cond():
            return True
        time.sleep(step)
    return cond()


def next_request(conn, timeout=10.0):
    """Reads p's next request (HEADERS [+ CONTINUATION]); returns (sid, fields, end_stream)."""
    fr = until(conn, lambda f: f[0] == HEADERS or f[0] == GOAWAY, timeout, what="a request from p")
    if fr is None:
        raise CaseFailed("p closed the tunnel instead of sending the request")
    if fr[0] == GOAWAY:
        raise CaseFailed("p sent %s instead of the request" % describe(fr))
    t, fl, sid, p = fr
    block = strip_headers_payload(fl, p)
    while not fl & END_HEADERS:
        c = until(conn, lambda f: f[0] == CONTINUATION, 5, what="CONTINUATION")
        if c is None:
            raise CaseFailed("p closed mid header block")
        block += c[3]
        fl |= c[1]
    return sid, conn.decode(block), bool(fr[1] & END_STREAM)


def data_frames(sid, payload, end_stream=False, size=16384):
    """DATA frames of at most `size` bytes (the peer's default max frame size)."""
    out = []
    for i in range(0, max(1, len(payload)), size):
        last = i + size >= len(payload)
        out.append(frame(DATA, END_STREAM if (last and end_stream) else 0, sid, payload[i:i + size]))
    return b"".join(out)


def resp_headers(conn, sid, fields, end_stream=False):
    return conn.headers(sid, fields, end_stream=end_stream)


# ---- fake c cases

def fc_handshakes(fc):
    """The PUT listener's answers (DESIGN.md step 3)."""
    cases = [
        ("no token", fc.handshake_head(None), 401),
        ("a wrong token", fc.handshake_head("x" * 48), 401),
        ("another name's token", fc.handshake_head(fc.other), 403),
        ("no Upgrade", fc.handshake_head(fc.token, upgrade=False), 426),
        ("a malformed request", b"PUT /.well-known/tether/tunnel HTTP/1.1\r\nHost 127.0.0.1\r\n\r\n", 400),
        ("not HTTP at all", b"\x16\x03\x01hello\r\n\r\n", 400),
        ("a bad Tether-Version", fc.handshake_head(fc.token).replace(b"Tether-Version: 1", b"Tether-Version: 99"), None),
    ]
    for what, head, want in cases:
        status, hd, rest, tls = fc.put(head)
        if want is None:
            check(status is not None and status != 101, "PUT with %s -> refused (%s)" % (what, status),
                  "saw %s" % status)
        else:
            check(status == want, "PUT with %s -> %d" % (what, want), "saw %s (%r)" % (status, hd[:80]))
        tls.settimeout(5)
        try:
            more = tls.recv(1)
        except (socket.timeout, ssl.SSLError, OSError) as e:
            more = b"" if not isinstance(e, socket.timeout) else None
        check(more == b"", "  ... and p closes the connection after it", "still open after 5 s")
        tls.close()
    conn = fc.tunnel()
    ok("a valid PUT -> 101, then p's HTTP/2 preface on the same connection")
    cp = fc.curl("/through")
    sid, fields, es = next_request(conn)
    d = dict(fields)
    check(d.get(":method") == "GET" and d.get(":path") == "/through" and sid % 2 == 1,
          "p sends the client's request on odd stream %d" % sid, "saw %s" % fields)
    check(not any(k in ("connection", "keep-alive", "transfer-encoding", "upgrade") for k, _ in fields),
          "no hop-by-hop header reaches c", "saw %s" % [k for k, _ in fields])
    conn.send(resp_headers(conn, sid, [(":status", "200"), ("content-length", "5")]),
              frame(DATA, END_STREAM, sid, b"hello"))
    rc, code, body, err = fc.curl_result(cp)
    check(rc == 0 and code == "200" and body == b"hello", "the client gets c's answer through p",
          "curl rc %s code %s body %r %s" % (rc, code, body[:40], err))
    conn.close()


def fc_content_length(fc):
    """A response whose content-length disagrees with its DATA."""
    conn = fc.tunnel()
    cp = fc.curl("/short")
    sid, fields, es = next_request(conn)
    conn.send(resp_headers(conn, sid, [(":status", "200"), ("content-length", "1000")]),
              data_frames(sid, b"x" * 400, True))
    rc, code, body, err = fc.curl_result(cp)
    check(rc != 0, "content-length 1000 with 400 bytes of DATA: curl reports an error (rc %s: %s)" % (rc, err),
          "curl exit 0, status %s, %d bytes: a short body that looks complete" % (code, len(body)))
    check(len(body) != 1000, "the client never sees 1000 bytes", "it did")
    # Longer than announced.
    cp = fc.curl("/long")
    sid, fields, es = next_request(conn)
    conn.send(resp_headers(conn, sid, [(":status", "200"), ("content-length", "10")]),
              frame(DATA, END_STREAM, sid, b"y" * 50))
    rc, code, body, err = fc.curl_result(cp)
    check(not (rc == 0 and len(body) == 50), "content-length 10 with 50 bytes of DATA is not passed on whole",
          "curl got all 50 bytes with rc 0")
    check(len(body) <= 10,
          "the client gets at most the 10 announced bytes (%d)" % len(body), "got %d bytes" % len(body))
    conn.close()


def serve_until_done(fc, conn, cp, answer, limit_s=12.0):
    """Answers every request p sends with answer(conn, sid, fields) until the
    curl `cp` ends; returns (attempts, curl result).  p may retry a request:
    each attempt gets the same answer."""
    attempts = 0
    end = time.time() + limit_s
    while cp[0].poll() is None and time.time() < end:
        try:
            fr = until(conn, lambda f: f[0] == HEADERS or f[0] == GOAWAY, 0.2, what="request")
        except CaseFailed:
            continue
        if fr is None:
            if cp[0].poll() is None:
                conn = fc.tunnel()  # p dropped it: offer a new one
            continue
        if fr[0] == GOAWAY:
            continue
        fields = conn.decode(strip_headers_payload(fr[1], fr[3]))
        attempts += 1
        answer(conn, fr[2], fields)
    return attempts, fc.curl_result(cp), conn


def fc_bad_header(fc):
    """A response with an invalid header: p answers the client 502."""
    conn = fc.tunnel()
    for i, (what, blk) in enumerate([
            ("an uppercase header name", raw_block([(":status", "200"), ("X-Upper", "1"), ("content-length", "2")])),
            ("a CR LF in a value (response splitting)", raw_block([(":status", "200"), ("x-a", "1\r\nset-cookie: evil=1")])),
            ("no :status", raw_block([("content-type", "text/plain")])),
            ("a connection-specific header", raw_block([(":status", "200"), ("connection", "close")])),
            ("a request pseudo-header", raw_block([(":status", "200"), (":path", "/x")]))]):
        cp = fc.curl("/bad%d" % i)
        attempts, (rc, code, body, err), conn = serve_until_done(
            fc, conn, cp, lambda c, sid, f: c.send(frame(HEADERS, END_HEADERS, sid, blk),
                                                   frame(DATA, END_STREAM, sid, b"ok")))
        check(code == "502", "a response with %s -> 502 to the client (%d attempt(s) at c)" % (what, attempts),
              "curl rc %s code %s body %r after %d attempt(s) at c%s" % (
                  rc, code, body[:60], attempts,
                  ": p never answered the client" if rc == 28 else ""))
        # The origin's invalid answer is its answer: p must not send the
        # request again (only lost or refused requests are retried).
        check(attempts == 1, "p sent the GET once, not again after the invalid response",
              "p sent it %d times" % attempts)
        if conn.closed:
            conn = fc.tunnel()
    conn.close()


def fc_huge_headers(fc):
    """A response header block far over p's limits."""
    conn = fc.tunnel()
    cp = fc.curl("/huge-head")
    sid, fields, es = next_request(conn)
    mfs = conn.remote_settings.get(S_MAX_FRAME, 16384)
    blk = raw_block([(":status", "200")] + [("x-h%04d" % i, "v" * 1000) for i in range(1100)])
    frames = [frame(HEADERS, 0, sid, blk[:mfs])]
    for i in range(mfs, len(blk), mfs):
        last = i + mfs >= len(blk)
        frames.append(frame(CONTINUATION, END_HEADERS if last else 0, sid, blk[i:i + mfs]))
    try:
        conn.send(*frames)
    except OSError:
        pass
    rc, code, body, err = fc.curl_result(cp)
    check(code in ("502", "000") and code != "200", "a ~1.1 MB header block -> the client gets 502 (or an abort), never 200",
          "curl rc %s code %s" % (rc, code))
    fr = None
    try:
        fr = until(conn, lambda f: f[0] in (GOAWAY, RST_STREAM), 5, what="p's answer")
    except CaseFailed:
        pass
    check(fr is not None or conn.closed, "p refused the block (RST_STREAM/GOAWAY or close)",
          "p said nothing on the tunnel")
    if fr is not None:
        note("p answered %s" % describe(fr))
    conn.close()


def fc_goaway_retry(fc):
    """GOAWAY with last-stream-id below the in-flight stream: p retries on
    another tunnel of the pool, else 502."""
    a = fc.tunnel()
    cp = fc.curl("/retry-me")
    sid, fields, es = next_request(a)
    b = fc.tunnel()
    a.send(goaway(0 if sid > 0 else 0, CODE["NO_ERROR"]))
    # The request must now come over b.
    try:
        sid2, fields2, es2 = next_request(b, 10)
        check(dict(fields2).get(":path") == "/retry-me", "after GOAWAY(last=0) p retried the GET on the other tunnel",
              "saw %s" % fields2)
        b.send(resp_headers(b, sid2, [(":status", "200"), ("content-length", "7")]),
               frame(DATA, END_STREAM, sid2, b"retried"))
    except CaseFailed as e:
        bad("p did not retry on the other tunnel: %s" % e)
    rc, code, body, err = fc.curl_result(cp)
    check(rc == 0 and code == "200" and body == b"retried", "the client gets the retried answer",
          "curl rc %s code %s body %r" % (rc, code, body[:40]))
    a.close()
    # Alone in the pool now: GOAWAY below the stream -> 502 (nowhere to retry)
    # or a retry that finds no tunnel (503); never a hang or a 200.
    cp = fc.curl("/no-retry")
    sid, fields, es = next_request(b)
    b.send(goaway(0, CODE["NO_ERROR"]))
    rc, code, body, err = fc.curl_result(cp)
    check(code in ("502", "503"), "GOAWAY below the only tunnel's stream -> %s" % code,
          "curl rc %s code %s" % (rc, code))
    b.close()


def fc_refused_stream(fc):
    """RST_STREAM REFUSED_STREAM: p retries (§8.7: not processed)."""
    a = fc.tunnel()
    b = fc.tunnel()
    cp = fc.curl("/refused")
    # p picks either tunnel: read from both.
    got = None
    end = time.time() + 10
    while got is None and time.time() < end:
        for conn in (a, b):
            try:
                fr = until(conn, lambda f: f[0] == HEADERS, 0.2, what="request")
            except CaseFailed:
                continue
            if fr is not None:
                got = (conn, fr)
                break
    if got is None:
        raise CaseFailed("no request reached either tunnel")
    first, fr = got
    sid = fr[2]
    first.dec.decode(strip_headers_payload(fr[1], fr[3]))
    first.send(rst(sid, CODE["REFUSED_STREAM"]))
    # The retry may come on either tunnel (the refuser is still a member).
    served = False
    end = time.time() + 10
    while not served and time.time() < end:
        for conn in (a, b):
            try:
                fr = until(conn, lambda f: f[0] == HEADERS, 0.2, what="request")
            except CaseFailed:
                continue
            if fr is not None:
                fields = conn.decode(strip_headers_payload(fr[1], fr[3]))
                check(dict(fields).get(":path") == "/refused", "p retried the refused GET (stream %d)" % fr[2],
                      "saw %s" % fields)
                conn.send(resp_headers(conn, fr[2], [(":status", "200"), ("content-length", "2")]),
                          frame(DATA, END_STREAM, fr[2], b"ok"))
                served = True
                break
    check(served, "a retry of the refused stream arrived", "none within 10 s")
    rc, code, body, err = fc.curl_result(cp)
    check(rc == 0 and code == "200" and body == b"ok", "the client gets the retried answer",
          "curl rc %s code %s body %r" % (rc, code, body[:40]))
    a.close()
    b.close()


def fc_one_policy(fc):
    """Both fronts follow the one retry policy: a reset is the origin's answer, a refusal is replayed with its body."""
    for front, flags in (("HTTP/1.1", ["--http1.1"]), ("h2c", ["--http2-prior-knowledge"])):
        conn = fc.tunnel()
        # RST_STREAM(INTERNAL_ERROR) before the head: c processed it and said
        # no; sending it again would only repeat that.
        cp = fc.curl("/reset-me", flags)
        attempts, (rc, code, body, err), conn = serve_until_done(
            fc, conn, cp, lambda c, sid, fields: c.send(rst(sid, CODE["INTERNAL_ERROR"])))
        check(attempts == 1 and code == "502",
              "%s: a GET the origin resets before its head -> 502, sent once" % front,
              "%d attempts, status %s" % (attempts, code))
        # RST_STREAM(REFUSED_STREAM) after p sent a small body: never
        # processed (RFC 9113 §8.7), so p sends it again, body included.
        state = {"n": 0}

        def answer(c, sid, fields):
            state["n"] += 1
            if state["n"] == 1:
                c.send(rst(sid, CODE["REFUSED_STREAM"]))
                return
            got = b""
            end = time.time() + 8
            while time.time() < end:
                fr = until(c, lambda f: f[0] == DATA and f[2] == sid, 8, what="request DATA")
                if fr is None:
                    break
                got += fr[3]
                if fr[1] & END_STREAM:
                    break
            c.send(resp_headers(c, sid, [(":status", "200"), ("content-length", str(len(got)))]),
                   frame(DATA, END_STREAM, sid, got))

        cp = fc.curl("/refused-post", flags + ["--data-binary", "replay-me-please"])
        attempts, (rc, code, body, err), conn = serve_until_done(fc, conn, cp, answer)
        check(attempts == 2 and code == "200" and body == b"replay-me-please",
              "%s: a POST refused after its body went out is sent again with the body" % front,
              "%d attempts, status %s, body %r (%s)" % (attempts, code, body[:40], err))
        conn.close()


def fc_die_mid_body(fc):
    """The fake c dies mid-body: the client sees an aborted transfer."""
    for what, hdrs in (("content-length 100000", [(":status", "200"), ("content-length", "100000")]),
                       ("no content-length (chunked to the client)", [(":status", "200")])):
        conn = fc.tunnel()
        cp = fc.curl("/mid")
        sid, fields, es = next_request(conn)
        conn.send(resp_headers(conn, sid, hdrs), data_frames(sid, b"z" * 30000))
        # curl's stdio buffer may hold the tail: ask for the first 16 KiB.
        streamed = wait_for(lambda: os.path.exists(cp[1]) and os.path.getsize(cp[1]) >= 16384, 5)
        check(streamed, "%s: p streams the body to the client as it arrives (before the end)" % what,
              "the client had %d bytes after 5 s" % (os.path.getsize(cp[1]) if os.path.exists(cp[1]) else 0))
        conn.close()
        rc, code, body, err = fc.curl_result(cp)
        check(rc != 0 and len(body) < 100000,
              "%s: the tunnel dies mid-body -> curl sees an aborted transfer (rc %s: %s)" % (what, rc, err),
              "curl rc %s with %d bytes: a short body that looks complete" % (rc, len(body)))


def fc_no_ping_answer(fc):
    """p with --ping-interval 1 --ping-timeout 1: a tunnel that never answers
    PING is dropped, and clients then get 503."""
    n_down = count(fc.plog, "tunnel down name=media")
    conn = fc.tunnel()
    pings = 0
    end = time.time() + 15
    while time.time() < end:
        try:
            fr = conn.read_frame(0.5)
        except TimeoutError:
            continue
        if fr is None:
            break
        if fr[0] == PING and not fr[1] & ACK:
            pings += 1
    check(pings >= 1, "p PINGed the idle tunnel (%d)" % pings, "no PING from p")
    check(conn.closed, "p closed the tunnel whose PINGs were never answered", "still open after 15 s")
    check(wait_for(lambda: count(fc.plog, "tunnel down name=media") > n_down, 5),
          "p logged 'tunnel down name=media'", "no such line")
    rc, code, body, err = fc.curl_result(fc.curl("/after"))
    check(code == "503", "a client then gets 503", "saw %s" % code)


def fc_flow_control(fc):
    """DATA past p's receive window: FLOW_CONTROL_ERROR (§6.9.1)."""
    conn = fc.tunnel()
    # A client that sends its GET and never reads, with a tiny receive
    # buffer: p can write little to it, so it may grant little window.
    cl = socket.socket()
    cl.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    cl.connect(("127.0.0.1", fc.http_port))
    cl.sendall(b"GET /flood HTTP/1.1\r\nHost: x\r\n\r\n")
    sid, fields, es = next_request(conn)
    window = conn.remote_settings.get(S_INITIAL_WINDOW, 65535)
    conn.send(resp_headers(conn, sid, [(":status", "200")]))
    # The whole stream window, ignoring every WINDOW_UPDATE, then 8 MiB more:
    # more than the client's socket can hold, so p cannot honestly have
    # given that much back.
    nframes = (window + 8 * 1024 * 1024) // 16384 + 1
    st = {"granted": 0, "err": None}

    def on_frame(fr):
        if fr[0] == WINDOW_UPDATE and fr[2] == sid:
            st["granted"] += struct.unpack(">L", fr[3])[0]
        elif fr[0] in (GOAWAY, RST_STREAM):
            st["err"] = fr
            return True
        return False
    n = blast(conn, [frame(DATA, 0, sid, b"f" * 16384)] * nframes, on_frame)
    sent = n * 16384
    if st["err"] is None:
        try:
            until(conn, on_frame, 5, what="p's answer")
        except CaseFailed:
            pass
    fr = st["err"]
    if fr is not None:
        code = struct.unpack(">L", fr[3][-4:] if fr[0] == RST_STREAM else fr[3][4:8])[0]
        check(code == CODE["FLOW_CONTROL_ERROR"], "%d bytes into a %d-byte window -> %s FLOW_CONTROL_ERROR"
              % (sent, window, FTYPE[fr[0]]), "saw %s" % describe(fr))
    else:
        check(window + st["granted"] >= sent, "p granted every byte it accepted",
              "p accepted %d bytes on a %d-byte window + %d granted, without FLOW_CONTROL_ERROR"
              % (sent, window, st["granted"]))
    conn.close()
    cl.close()


def fc_settings_flood(fc):
    """SETTINGS frames while never reading the ACKs: p ends it with GOAWAY
    ENHANCE_YOUR_CALM, and its memory stays bounded."""
    conn = fc.tunnel()
    ppid = int(open(os.path.join(fc.work, "p.pid")).read())
    rss0 = rss_kib(ppid)
    peak = [rss0]
    one = settings((S_MAX_CONCURRENT, 100), (S_INITIAL_WINDOW, 1 << 20)) * 1000
    # read=False: p's ACKs pile up in its output unless p stops the flood.
    n = blast(conn, [one] * 400, lambda f: False, limit_s=10.0, read=False,
              sample=lambda: peak.__setitem__(0, max(peak[0], rss_kib(ppid))))
    fr = None
    try:
        fr = until(conn, lambda f: f[0] == GOAWAY, 5, ack_settings=False, what="GOAWAY")
    except CaseFailed:
        pass
    if fr is not None:
        code = struct.unpack(">L", fr[3][4:8])[0]
        check(code == CODE["ENHANCE_YOUR_CALM"], "SETTINGS flood (%d frames) -> GOAWAY ENHANCE_YOUR_CALM" % (n * 1000),
              "saw %s" % describe(fr))
    else:
        bad("SETTINGS flood (%d frames, ACKs never read): p neither sent GOAWAY nor closed (%s)"
            % (n * 1000, conn.eof_how))
    check(peak[0] - rss0 < 64 * 1024, "p's RSS stayed bounded (%d -> %d KiB)" % (rss0, peak[0]),
          "grew from %d to %d KiB" % (rss0, peak[0]))
    conn.close()
    rc, code, body, err = fc.curl_result(fc.curl("/after-flood"))
    check(code == "503", "p still answers clients afterwards (503: no tunnel)", "saw %s" % code)


def ws_handshake(port, path):
    """A WebSocket opening handshake to p's HTTP front (RFC 6455 §4.1), sent
    at once; returns the socket (the answer is read with ws_answer)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(("GET %s HTTP/1.1\r\nHost: media\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
               "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
               % path).encode())
    return s


def ws_answer(s):
    buf = b""
    while b"\r\n\r\n" not in buf:
        try:
            chunk = s.recv(4096)
        except OSError:
            chunk = b""
        if not chunk:
            break
        buf += chunk
    s.close()
    return buf.decode("latin-1")


def fc_websocket(fc):
    """A WebSocket before c's first SETTINGS waits for them; a c that does not offer extended CONNECT gets 501."""
    # c's SETTINGS held back: p has the tunnel (after the PUT) but cannot
    # know yet whether c takes extended CONNECT (RFC 8441 §3).
    n_up = count(fc.plog, "tunnel up name=media")
    status, hd, rest, tls = fc.put(fc.handshake_head(fc.token))
    if status != 101:
        raise CaseFailed("the valid PUT got %s, not 101" % status)
    tls.setblocking(False)
    conn = Conn(tls, rest, role="server")
    if conn.read_exact(len(PREFACE), 8.0) != PREFACE:
        raise CaseFailed("p's first bytes after the 101 are not the HTTP/2 preface")
    if not wait_for(lambda: count(fc.plog, "tunnel up name=media") > n_up, 5):
        raise CaseFailed("p did not log 'tunnel up name=media' for the fake c")
    ws = ws_handshake(fc.http_port, "/early")
    try:
        early = until(conn, lambda f: f[0] == HEADERS, 1.0, ack_settings=False, what="HEADERS")
        check(False, "no stream opened before c's SETTINGS", "p opened one: %s" % (describe(early) if early else "EOF"))
    except CaseFailed:
        check(True, "no stream opened before c's SETTINGS (1 s)", "")
    conn.send(settings((S_INITIAL_WINDOW, 1 << 20), (S_ENABLE_CONNECT, 1)))
    sid, fields, es = next_request(conn)
    f = dict(fields)
    check(f.get(":method") == "CONNECT" and f.get(":protocol") == "websocket" and f.get(":path") == "/early",
          "after them, the socket opens as extended CONNECT on the tunnel", "saw %r" % (fields,))
    conn.send(resp_headers(conn, sid, [(":status", "200")]))
    ans = ws_answer(ws)
    check(ans.startswith("HTTP/1.1 101") and "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in ans,
          "the client gets 101 with the right Sec-WebSocket-Accept", "saw %r" % ans[:200])
    conn.close()
    # A c whose SETTINGS do not offer extended CONNECT (an older c).
    conn = fc.tunnel()
    ans = ws_answer(ws_handshake(fc.http_port, "/old"))
    check(ans.startswith("HTTP/1.1 501"), "a c without extended CONNECT: the client gets 501",
          "saw %r" % ans[:200])
    conn.close()


FAKEC_CASES = {
    "handshakes": fc_handshakes,
    "content-length": fc_content_length,
    "bad-header": fc_bad_header,
    "huge-headers": fc_huge_headers,
    "goaway-retry": fc_goaway_retry,
    "refused-stream": fc_refused_stream,
    "one-policy": fc_one_policy,
    "die-mid-body": fc_die_mid_body,
    "no-ping-answer": fc_no_ping_answer,
    "flow-control": fc_flow_control,
    "settings-flood": fc_settings_flood,
    "websocket": fc_websocket,
}


def run_fakec(work, http_port, tun_port, cases):
    fc = FakeC(work, int(http_port), int(tun_port))
    for name in cases:
        fn = FAKEC_CASES[name]
        print("  [case %s] %s" % (name, (fn.__doc__ or "").strip().split("\n")[0]), flush=True)
        try:
            fn(fc)
        except CaseFailed as e:
            bad("%s: %s" % (name, e))
        except Exception as e:
            bad("%s: unexpected %s: %s" % (name, type(e).__name__, e))
        finally:
            fc.stop_curls()
        # Let p notice the closed tunnels before the next case.
        time.sleep(0.2)


def main(argv):
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(143))
    if len(argv) < 2 or argv[1] == "list":
        print("fakep:", " ".join(FAKEP_CASES))
        print("fakec:", " ".join(FAKEC_CASES))
        return 0
    if argv[1] == "fakep":
        run_fakep(argv[2], argv[3:])
    elif argv[1] == "fakec":
        run_fakec(argv[2], argv[3], argv[4], argv[5:])
    else:
        print(__doc__)
        return 2
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
