#!/usr/bin/python3
"""An h2spec-like conformance run against an h2c (prior knowledge) server.

  h2conf.py [--host H] [--timeout S] [--only REGEX] [--tls] [-v] PORT

With --tls the server is h2 over TLS instead (ALPN "h2", certificate not
checked, :scheme https), e.g. bin/p's --https-listen port.

The cases follow the catalogue of the conformance tool h2spec (groups
"generic", "http2" for RFC 9113 / RFC 7540 and "hpack" for RFC 7541), with
its numbering, plus a few more marked with an "x" number (e.g.
http2/6.9.1/x1).  Every case opens its own connection, does the handshake
(preface, SETTINGS with INITIAL_WINDOW_SIZE 65535, both SETTINGS ACKed) and
judges the answer the way h2spec does:

  connection error: GOAWAY with an expected code, or the connection closed;
  stream error:     RST_STREAM or GOAWAY with an expected code, or closed;
  (a GOAWAY or RST_STREAM with any other code fails here at once, where
   h2spec would keep reading: we want to see the wrong code.)

Each wait for a frame lasts at most --timeout seconds (2, h2spec's default).
Requests use :authority 127.0.0.1:PORT and :path / (whatever the server
answers there must have a body of 5 bytes or more, as h2spec assumes).

Prints "PASS <id> <description>" or "FAIL <id> <description>: expected X,
got Y" per case, then a summary per section; exit status 1 if any failed.
Frames are built byte by byte (h2peer.py's helpers) so they can be wrong.
"""
import argparse
import os
import re
import socket
import ssl
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hpack  # noqa: E402
from hpack.huffman import HuffmanEncoder  # noqa: E402
from hpack.huffman_constants import REQUEST_CODES, REQUEST_CODES_LENGTH  # noqa: E402
from h2peer import (ACK, CONTINUATION, DATA, END_HEADERS, END_STREAM, ERR, GOAWAY,  # noqa: E402
                    HEADERS, PADDED, PING, PREFACE, PRIO, PRIORITY, PUSH_PROMISE,
                    RST_STREAM, SETTINGS, WINDOW_UPDATE, describe, frame, goaway,
                    hpack_int, literal, parse_settings, ping, rst, settings,
                    window_update)

S_HEADER_TABLE_SIZE, S_ENABLE_PUSH, S_MAX_CONCURRENT, S_INITIAL_WINDOW, S_MAX_FRAME, \
    S_MAX_HEADER_LIST = range(1, 7)
NO_ERROR, PROTOCOL_ERROR, INTERNAL_ERROR, FLOW_CONTROL_ERROR, SETTINGS_TIMEOUT, \
    STREAM_CLOSED, FRAME_SIZE_ERROR, REFUSED_STREAM, CANCEL, COMPRESSION_ERROR = range(10)
DEFAULT_WINDOW = 65535
MAX_HEADER_LEN = 4000  # h2spec's default --max-header-length (its dummy headers)

OPT = None
HUFF = HuffmanEncoder(REQUEST_CODES, REQUEST_CODES_LENGTH)


class Fail(Exception):
    def __init__(self, expected, got):
        Exception.__init__(self, "expected %s, got %s" % (expected, got))


class Skip(Exception):
    pass


def note(c, how):
    c.how = how


def ev_str(ev):
    kind, val = ev
    if kind == "frame":
        return describe(val)
    if kind == "closed":
        return "connection closed (%s)" % val
    return "timeout (%.1f s, nothing more)" % OPT.timeout


def code_names(codes):
    return " or ".join(ERR.get(c, str(c)) for c in codes)


# ---------------------------------------------------------------- the connection

class Conn:
    def __init__(self):
        self.sock = socket.create_connection((OPT.host, OPT.port), timeout=OPT.timeout)
        if OPT.tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            ctx.set_alpn_protocols(["h2"])
            self.sock = ctx.wrap_socket(self.sock)
        self.buf = bytearray()
        self.closed = False
        self.eof_how = "EOF"
        self.enc = hpack.Encoder()
        self.dec = hpack.Decoder()
        self.settings = {}  # the server's
        self.auto_window = True
        self.win = {0: DEFAULT_WINDOW}  # h2spec-like bookkeeping of what we granted
        self.authority = "%s:%d" % (OPT.host, OPT.port)
        self.how = ""  # how the last verifier passed (shown after PASS)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def send(self, *chunks):
        data = b"".join(chunks)
        if OPT.verbose:
            print("     --> %d bytes: %s" % (len(data), data[:48].hex()))
        try:
            self.sock.sendall(data)
        except OSError:
            pass  # the peer closed; the verifier will see it when it reads

    def event(self, timeout=None):
        """("frame", (type, flags, sid, payload)) | ("closed", why) | ("timeout", None)."""
        deadline = time.time() + (OPT.timeout if timeout is None else timeout)
        while True:
            if len(self.buf) >= 9:
                n = int.from_bytes(self.buf[0:3], "big")
                if len(self.buf) >= 9 + n:
                    fr = (self.buf[3], self.buf[4],
                          struct.unpack(">L", self.buf[5:9])[0] & 0x7FFFFFFF,
                          bytes(self.buf[9:9 + n]))
                    del self.buf[:9 + n]
                    if OPT.verbose:
                        print("     <-- %s" % describe(fr))
                    if fr[0] == DATA:
                        self._refill(fr)
                    return ("frame", fr)
            if self.closed:
                return ("closed", self.eof_how)
            left = deadline - time.time()
            if left <= 0:
                return ("timeout", None)
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(1 << 18)
            except socket.timeout:
                return ("timeout", None)
            except OSError as e:
                self.eof_how = "%s" % (e.strerror or e)
                chunk = b""
            if not chunk:
                self.closed = True
                if OPT.verbose:
                    print("     <-- closed (%s)" % self.eof_how)
                continue
            self.buf += chunk

    def _refill(self, fr):
        """Gives window back as h2spec does: once a window it tracks from
        65535 reaches 0, it grants it back whole."""
        n = len(fr[3])
        if not self.auto_window or n == 0:
            return
        for sid in (fr[2], 0):
            w = self.win.get(sid, DEFAULT_WINDOW) - n
            if w <= 0:
                self.send(window_update(sid, DEFAULT_WINDOW - w))
                w = DEFAULT_WINDOW
            self.win[sid] = w

    def handshake(self, our=((S_INITIAL_WINDOW, DEFAULT_WINDOW),)):
        self.send(PREFACE, settings(*our))
        local = remote = False
        while not (local and remote):
            ev = self.event()
            if ev[0] != "frame":
                raise Fail("the server's SETTINGS and SETTINGS ACK (handshake)", ev_str(ev))
            t, fl, sid, p = ev[1]
            if t == SETTINGS:
                if fl & ACK:
                    local = True
                else:
                    remote = True
                    self.settings.update(parse_settings(p))
                    self.send(settings(ack=True))

    # -- building blocks
    def common(self, method="GET", path="/"):
        return [(":method", method), (":scheme", "https" if OPT.tls else "http"), (":path", path),
                (":authority", self.authority)]

    def block(self, fields, huffman=True):
        return self.enc.encode(fields, huffman=huffman)

    def dummy_block(self, n=1):
        return self.block([("x-dummy%d" % i, "x" * MAX_HEADER_LEN) for i in range(n)],
                          huffman=False)

    def max_frame(self):
        return self.settings.get(S_MAX_FRAME, 16384)


def headers(sid, block, es=True, eh=True, pad=None, prio=None):
    fl = (END_STREAM if es else 0) | (END_HEADERS if eh else 0)
    payload = block
    if prio is not None:
        dep, weight, excl = prio
        fl |= PRIO
        payload = struct.pack(">LB", dep | (0x80000000 if excl else 0), weight - 1) + payload
    if pad is not None:
        fl |= PADDED
        payload = bytes([pad]) + payload + b"\0" * pad
    return frame(HEADERS, fl, sid, payload)


def data(sid, payload, es=True, pad=None):
    fl = END_STREAM if es else 0
    if pad is not None:
        fl |= PADDED
        payload = bytes([pad]) + payload + b"\0" * pad
    return frame(DATA, fl, sid, payload)


def continuation(sid, block, eh=True):
    return frame(CONTINUATION, END_HEADERS if eh else 0, sid, block)


def priority(sid, dep=0, weight=16, excl=False):
    return frame(PRIORITY, 0, sid, struct.pack(">LB", dep | (0x80000000 if excl else 0), weight - 1))


# ---------------------------------------------------------------- verifiers (h2spec's)

def verify_connection_error(c, *codes):
    while True:
        ev = c.event()
        if ev[0] == "closed":
            return note(c, "closed without GOAWAY")
        if ev[0] == "timeout":
            raise Fail("GOAWAY %s or connection close" % code_names(codes), ev_str(ev))
        t, fl, sid, p = ev[1]
        if t == GOAWAY:
            code = struct.unpack(">L", p[4:8])[0]
            if code in codes:
                return note(c, "GOAWAY %s" % ERR.get(code))
            raise Fail("GOAWAY %s or connection close" % code_names(codes), ev_str(ev))


def verify_stream_error(c, *codes, sid=None):
    while True:
        ev = c.event()
        if ev[0] == "closed":
            return note(c, "closed without RST_STREAM or GOAWAY")
        if ev[0] == "timeout":
            raise Fail("RST_STREAM or GOAWAY %s, or connection close" % code_names(codes), ev_str(ev))
        t, fl, s, p = ev[1]
        if t == GOAWAY or (t == RST_STREAM and (sid is None or s == sid)):
            code = struct.unpack(">L", p[-4:] if t == RST_STREAM else p[4:8])[0]
            if code in codes:
                return note(c, "%s %s%s" % (FNAME[t], ERR.get(code),
                                            " on stream %d" % s if t == RST_STREAM else ""))
            raise Fail("RST_STREAM or GOAWAY %s, or connection close" % code_names(codes), ev_str(ev))


def verify_connection_close(c):
    while True:
        ev = c.event()
        if ev[0] == "closed":
            return
        if ev[0] == "timeout":
            raise Fail("connection close", ev_str(ev))


def verify_stream_close(c, sid=None):
    """A HEADERS or DATA frame with END_STREAM (on sid if given)."""
    last = None
    while True:
        ev = c.event()
        if ev[0] != "frame":
            raise Fail("a HEADERS or DATA frame with END_STREAM", ev_str(ev) if last is None
                       else "%s after %s" % (ev_str(ev), ev_str(last)))
        last = ev
        t, fl, s, p = ev[1]
        if t == HEADERS:
            c.dec.decode(strip(fl, p))
        if t in (HEADERS, DATA) and fl & END_STREAM and (sid is None or s == sid):
            return
        if t in (RST_STREAM, GOAWAY) and (sid is None or s in (sid, 0)):
            raise Fail("a HEADERS or DATA frame with END_STREAM", ev_str(ev))


def verify_event_type(c, ftype, sid=None):
    while True:
        ev = c.event()
        if ev[0] != "frame":
            raise Fail("a %s frame" % FNAME[ftype], ev_str(ev))
        t, fl, s, p = ev[1]
        if t == ftype and (sid is None or s == sid):
            return ev[1]
        if t == GOAWAY:
            raise Fail("a %s frame" % FNAME[ftype], ev_str(ev))


def verify_ping_ack(c, opaque, close_ok=False):
    while True:
        ev = c.event()
        if ev[0] == "closed" and close_ok:
            return
        if ev[0] != "frame":
            raise Fail("PING ACK %s" % opaque.hex(), ev_str(ev))
        t, fl, s, p = ev[1]
        if t == PING and fl & ACK and p == opaque:
            return
        if t == GOAWAY:
            raise Fail("PING ACK %s" % opaque.hex(), ev_str(ev))


def verify_data_length(c, want, sid=1):
    """h2spec's WaitEventByType(DATA) and a length check: the first DATA."""
    fr = verify_event_type(c, DATA)
    if len(fr[3]) != want or fr[2] != sid:
        raise Fail("DATA of length %d on stream %d" % (want, sid), describe(fr))


def strip(fl, p):
    if fl & PADDED:
        p = p[1:len(p) - p[0]]
    if fl & PRIO:
        p = p[5:]
    return p


FNAME = {DATA: "DATA", HEADERS: "HEADERS", PRIORITY: "PRIORITY", RST_STREAM: "RST_STREAM",
         SETTINGS: "SETTINGS", PUSH_PROMISE: "PUSH_PROMISE", PING: "PING", GOAWAY: "GOAWAY",
         WINDOW_UPDATE: "WINDOW_UPDATE", CONTINUATION: "CONTINUATION"}


def read_response(c, sid):
    """(status, fields, body) of one whole response on sid."""
    status, fields, body, block = None, [], bytearray(), b""
    while True:
        ev = c.event()
        if ev[0] != "frame":
            raise Fail("the response on stream %d" % sid, ev_str(ev))
        t, fl, s, p = ev[1]
        if t == GOAWAY or (t == RST_STREAM and s == sid):
            raise Fail("the response on stream %d" % sid, ev_str(ev))
        if t in (HEADERS, CONTINUATION):
            block += strip(fl, p) if t == HEADERS else p
            if fl & END_HEADERS:
                got = [(k.decode(), v.decode()) for k, v in c.dec.decode(block, raw=True)]
                block = b""
                if s == sid:
                    st = dict(got).get(":status")
                    if st and not st.startswith("1"):
                        status, fields = int(st), got
        if s == sid and t == DATA:
            body += strip(fl, p)
        if s == sid and t in (HEADERS, DATA) and fl & END_STREAM:
            return status, fields, bytes(body)


# ---------------------------------------------------------------- HPACK pieces

def huff_bits(symbols):
    """Huffman bits (RFC 7541 Appendix B) of a list of symbols (256 = EOS),
    as (value, nbits)."""
    v, n = 0, 0
    for s in symbols:
        v = (v << REQUEST_CODES_LENGTH[s]) | REQUEST_CODES[s]
        n += REQUEST_CODES_LENGTH[s]
    return v, n


def huff_string(symbols, pad_bits=None, pad_value=None, extra_bytes=0):
    """An HPACK string literal, Huffman flag set, whose padding we choose:
    pad_bits of pad_value (default: the EOS prefix, i.e. ones, to a byte)."""
    v, n = huff_bits(symbols)
    if pad_bits is None:
        pad_bits = (8 - n % 8) % 8
    if pad_value is None:
        pad_value = (1 << pad_bits) - 1
    v = (v << pad_bits) | pad_value
    n += pad_bits
    assert n % 8 == 0
    raw = v.to_bytes(n // 8, "big") + b"\xff" * extra_bytes
    return hpack_int(len(raw), 7, 0x80) + raw


def plain_string(s):
    s = s.encode() if isinstance(s, str) else s
    return hpack_int(len(s), 7, 0) + s


def lit_new(name, value_repr, first=0x00):
    """A literal with a new name (first: 0x00 without indexing, 0x10 never
    indexed, 0x40 incremental indexing), the value already encoded."""
    return bytes([first]) + plain_string(name) + value_repr


# ---------------------------------------------------------------- the cases

CASES = []


def case(cid, desc, handshake=True):
    def reg(fn):
        CASES.append((cid, desc, fn, handshake))
        return fn
    return reg


def get(c, sid=1, es=True, method="GET", path="/", extra=()):
    return headers(sid, c.block(c.common(method, path) + list(extra)), es=es)


# ---- generic

@case("generic/1/1", "Sends a client connection preface")
def g_1_1(c):
    pass  # the handshake is the test


@case("generic/2/1", "Sends a PRIORITY frame on idle stream")
def g_2_1(c):
    c.send(priority(1, 0, 256), ping(b"\0" * 8))
    verify_ping_ack(c, b"\0" * 8)


@case("generic/2/2", "Sends a WINDOW_UPDATE frame on half-closed (remote) stream")
def g_2_2(c):
    c.send(settings((S_INITIAL_WINDOW, 0)), get(c), window_update(1, 1))
    verify_event_type(c, DATA)


@case("generic/2/3", "Sends a PRIORITY frame on half-closed (remote) stream")
def g_2_3(c):
    c.send(settings((S_INITIAL_WINDOW, 0)), get(c), priority(1, 0, 256), window_update(1, 1))
    verify_event_type(c, DATA)


@case("generic/2/4", "Sends a RST_STREAM frame on half-closed (remote) stream")
def g_2_4(c):
    c.send(get(c), rst(1, CANCEL), ping(b"\0" * 8))
    verify_ping_ack(c, b"\0" * 8, close_ok=True)


@case("generic/2/5", "Sends a PRIORITY frame on closed stream")
def g_2_5(c):
    c.send(get(c))
    verify_stream_close(c, 1)
    c.send(priority(1, 0, 256), ping(b"\0" * 8))
    verify_ping_ack(c, b"\0" * 8)


@case("generic/3.1/1", "Sends a DATA frame")
def g_3_1_1(c):
    c.send(get(c, method="POST", es=False), data(1, b"test"))
    verify_stream_close(c, 1)


@case("generic/3.1/2", "Sends multiple DATA frames")
def g_3_1_2(c):
    c.send(get(c, method="POST", es=False), data(1, b"test", es=False), data(1, b"test"))
    verify_stream_close(c, 1)


@case("generic/3.1/3", "Sends a DATA frame with padding")
def g_3_1_3(c):
    c.send(get(c, method="POST", es=False), data(1, b"test", pad=8))
    verify_stream_close(c, 1)


@case("generic/3.2/1", "Sends a HEADERS frame")
def g_3_2_1(c):
    c.send(get(c))
    verify_stream_close(c, 1)


@case("generic/3.2/2", "Sends a HEADERS frame with padding")
def g_3_2_2(c):
    c.send(headers(1, c.block(c.common()), pad=8))
    verify_stream_close(c, 1)


@case("generic/3.2/3", "Sends a HEADERS frame with priority")
def g_3_2_3(c):
    c.send(headers(1, c.block(c.common()), prio=(0, 255, False)))
    verify_stream_close(c, 1)


@case("generic/3.3/1", "Sends a PRIORITY frame with priority 1")
def g_3_3_1(c):
    c.send(priority(1, 0, 1), get(c))
    verify_stream_close(c, 1)


@case("generic/3.3/2", "Sends a PRIORITY frame with priority 256")
def g_3_3_2(c):
    c.send(priority(1, 0, 256), get(c))
    verify_stream_close(c, 1)


@case("generic/3.3/3", "Sends a PRIORITY frame with stream dependency")
def g_3_3_3(c):
    c.send(priority(1, 0, 16), priority(3, 1, 16), get(c, sid=3))
    verify_stream_close(c, 3)


@case("generic/3.3/4", "Sends a PRIORITY frame with exclusive")
def g_3_3_4(c):
    c.send(priority(1, 0, 16), priority(3, 1, 16, excl=True), get(c, sid=3))
    verify_stream_close(c, 3)


@case("generic/3.3/5", "Sends a PRIORITY frame for an idle stream, then send a HEADER frame for a lower stream ID")
def g_3_3_5(c):
    c.send(priority(3, 0, 16), get(c, sid=1))
    verify_stream_close(c, 1)


@case("generic/3.4/1", "Sends a RST_STREAM frame")
def g_3_4_1(c):
    c.send(get(c, method="POST", es=False), rst(1, CANCEL), ping(b"\0" * 8))
    verify_ping_ack(c, b"\0" * 8)


@case("generic/3.5/1", "Sends a SETTINGS frame")
def g_3_5_1(c):
    c.send(settings((S_ENABLE_PUSH, 0)))
    fr = verify_event_type(c, SETTINGS)
    if not fr[1] & ACK:
        raise Fail("SETTINGS ACK", describe(fr))


@case("generic/3.7/1", "Sends a PING frame")
def g_3_7_1(c):
    c.send(ping(b"h2conf!!"))
    verify_ping_ack(c, b"h2conf!!")


@case("generic/3.8/1", "Sends a GOAWAY frame")
def g_3_8_1(c):
    c.send(goaway(0, NO_ERROR), ping(b"\0" * 8))
    verify_ping_ack(c, b"\0" * 8, close_ok=True)


@case("generic/3.9/1", "Sends a WINDOW_UPDATE frame with stream ID 0")
def g_3_9_1(c):
    c.send(window_update(0, 1), ping(b"\0" * 8))
    verify_ping_ack(c, b"\0" * 8)


@case("generic/3.9/2", "Sends a WINDOW_UPDATE frame with arbitrary stream ID")
def g_3_9_2(c):
    c.send(get(c), window_update(1, 1))
    verify_stream_close(c, 1)


@case("generic/3.10/1", "Sends a CONTINUATION frame")
def g_3_10_1(c):
    blk = c.block(c.common())
    c.send(headers(1, blk[:3], eh=False), continuation(1, blk[3:]))
    verify_stream_close(c, 1)


@case("generic/3.10/2", "Sends multiple CONTINUATION frames")
def g_3_10_2(c):
    blk = c.block(c.common())
    c.send(headers(1, blk[:2], eh=False), continuation(1, blk[2:5], eh=False),
           continuation(1, blk[5:9], eh=False), continuation(1, blk[9:]))
    verify_stream_close(c, 1)


@case("generic/4/1", "Sends a GET request")
def g_4_1(c):
    c.send(get(c))
    verify_stream_close(c, 1)


@case("generic/4/2", "Sends a HEAD request")
def g_4_2(c):
    c.send(get(c, method="HEAD"))
    fr = verify_event_type(c, HEADERS, 1)
    if not fr[1] & END_STREAM:
        # A HEAD response has no body: END_STREAM on the HEADERS, or an empty DATA.
        fr2 = verify_event_type(c, DATA, 1)
        if fr2[3] or not fr2[1] & END_STREAM:
            raise Fail("no body for HEAD", describe(fr2))


@case("generic/4/3", "Sends a POST request")
def g_4_3(c):
    c.send(get(c, method="POST", es=False), data(1, b"test"))
    verify_stream_close(c, 1)


@case("generic/4/4", "Sends a POST request with trailers")
def g_4_4(c):
    c.send(get(c, method="POST", es=False, extra=[("te", "trailers")]), data(1, b"test", es=False),
           headers(1, c.block([("x-trailer", "ok")])))
    verify_stream_close(c, 1)


def hpack_case(rep, prepend=False):
    def run(c):
        blk = c.block(c.common())
        c.send(headers(1, rep + blk if prepend else blk + rep))
        verify_event_type(c, HEADERS, 1)
    return run


UA = b"h2conf"
_G5 = [
    ("Sends a indexed header field representation", hpack_int(58, 7, 0x80)),  # user-agent: ""
    ("Sends a literal header field with incremental indexing - indexed name",
     hpack_int(58, 6, 0x40) + plain_string(UA)),
    ("Sends a literal header field with incremental indexing - indexed name (with Huffman coding)",
     hpack_int(58, 6, 0x40) + huff_string(list(UA))),
    ("Sends a literal header field with incremental indexing - new name",
     lit_new("x-test", plain_string(UA), 0x40)),
    ("Sends a literal header field with incremental indexing - new name (with Huffman coding)",
     b"\x40" + huff_string(list(b"x-test")) + huff_string(list(UA))),
    ("Sends a literal header field without indexing - indexed name",
     hpack_int(58, 4, 0x00) + plain_string(UA)),
    ("Sends a literal header field without indexing - indexed name (with Huffman coding)",
     hpack_int(58, 4, 0x00) + huff_string(list(UA))),
    ("Sends a literal header field without indexing - new name", lit_new("x-test", plain_string(UA))),
    ("Sends a literal header field without indexing - new name (huffman encoded)",
     b"\x00" + huff_string(list(b"x-test")) + huff_string(list(UA))),
    ("Sends a literal header field never indexed - indexed name",
     hpack_int(58, 4, 0x10) + plain_string(UA)),
    ("Sends a literal header field never indexed - indexed name (huffman encoded)",
     hpack_int(58, 4, 0x10) + huff_string(list(UA))),
    ("Sends a literal header field never indexed - new name", lit_new("x-test", plain_string(UA), 0x10)),
    ("Sends a literal header field never indexed - new name (huffman encoded)",
     b"\x10" + huff_string(list(b"x-test")) + huff_string(list(UA))),
]
for _i, (_d, _rep) in enumerate(_G5):
    case("generic/5/%d" % (_i + 1), _d)(hpack_case(_rep))
case("generic/5/14", "Sends a dynamic table size update")(hpack_case(b"\x20", prepend=True))
case("generic/5/15", "Sends multiple dynamic table size update")(
    hpack_case(b"\x20" + hpack_int(4096, 5, 0x20), prepend=True))


@case("generic/x1", "Many streams on one connection (60, 20 at a time), all 200 with a body")
def g_x1(c):
    limit = min(20, c.settings.get(S_MAX_CONCURRENT, 100))
    sid, done = 1, 0
    while done < 60:
        batch = []
        for _ in range(limit):
            c.send(get(c, sid=sid, path="/data.json" if sid % 4 == 1 else "/"))
            batch.append(sid)
            sid += 2
        for s in batch:
            st, _, body = read_response(c, s)
            if st != 200 or not body:
                raise Fail("200 with a body on stream %d" % s, "%s, %d bytes" % (st, len(body)))
            done += 1


@case("generic/x2", "SETTINGS with every defined parameter, then a GET")
def g_x2(c):
    c.send(settings((S_HEADER_TABLE_SIZE, 4096), (S_ENABLE_PUSH, 0), (S_MAX_CONCURRENT, 100),
                    (S_INITIAL_WINDOW, 65535), (S_MAX_FRAME, 16384), (S_MAX_HEADER_LIST, 65536)))
    fr = verify_event_type(c, SETTINGS)
    if not fr[1] & ACK:
        raise Fail("SETTINGS ACK", describe(fr))
    c.send(get(c))
    st, _, body = read_response(c, 1)
    if st != 200:
        raise Fail("200", st)


@case("generic/x3", "GET whose header block is split mid-field over HEADERS + 4 CONTINUATION")
def g_x3(c):
    blk = c.block(c.common(path="/data.json") + [("user-agent", "h2conf/1"), ("accept", "*/*")])
    cuts = [1, 4, 9, 15, len(blk)]
    parts = [blk[a:b] for a, b in zip([0] + cuts[:-1], cuts)]
    out = [headers(1, parts[0], eh=False)]
    for i, p in enumerate(parts[1:]):
        out.append(continuation(1, p, eh=(i == len(parts) - 2)))
    c.send(*out)
    st, _, body = read_response(c, 1)
    want = open(os.path.join(OPT.media, "data.json"), "rb").read() if OPT.media else None
    if st != 200 or (want is not None and body != want):
        raise Fail("200 and data.json", "%s, %d bytes" % (st, len(body)))


@case("generic/x4", "POST with content-length and padded DATA frames (padding is not body)")
def g_x4(c):
    c.send(get(c, method="POST", es=False, extra=[("content-length", "8")]),
           data(1, b"test", es=False, pad=20), data(1, b"", es=False, pad=3), data(1, b"test", pad=0))
    verify_stream_close(c, 1)


@case("generic/x5", "A request with a 3 KB header value (Huffman off), then another on stream 3")
def g_x5(c):
    c.send(headers(1, c.block(c.common() + [("x-big", "y" * 3000)], huffman=False)))
    st, _, _ = read_response(c, 1)
    c.send(get(c, sid=3))
    st3, _, _ = read_response(c, 3)
    if (st, st3) != (200, 200):
        raise Fail("200, 200", "%s, %s" % (st, st3))


# ---- http2: 3.5 preface

@case("http2/3.2/1", "Sends client connection preface (h2c, prior knowledge)", handshake=False)
@case("http2/3.5/1", "Sends client connection preface", handshake=False)
def h_3_5_1(c):
    c.send(PREFACE, settings((S_INITIAL_WINDOW, DEFAULT_WINDOW)))
    fr = verify_event_type(c, SETTINGS)
    if fr[1] & ACK:
        raise Fail("a SETTINGS frame without ACK first", describe(fr))


@case("http2/3.5/2", "Sends invalid connection preface", handshake=False)
def h_3_5_2(c):
    c.send(b"INVALID CONNECTION PREFACE\r\n\r\n")
    verify_connection_close(c)


@case("http2/3.5/x1", "Sends a preface that is right for 16 bytes, then wrong", handshake=False)
def h_3_5_x1(c):
    c.send(PREFACE[:16] + b"XX\r\n\r\n" + settings())
    verify_connection_close_or_error(c, PROTOCOL_ERROR)


@case("http2/3.5/x2", "Sends the preface but a PING instead of SETTINGS first", handshake=False)
def h_3_5_x2(c):
    c.send(PREFACE, ping(b"\0" * 8))
    verify_connection_close_or_error(c, PROTOCOL_ERROR)


def verify_connection_close_or_error(c, *codes):
    """Any frames (the server preface), then GOAWAY(code) or a close."""
    verify_connection_error(c, *codes)


# ---- 4.1 frame format

@case("http2/4.1/1", "Sends a frame with unknown type")
def h_4_1_1(c):
    c.send(frame(0x16, 0, 0, b"\0" * 8), ping(b"\0" * 8))
    verify_ping_ack(c, b"\0" * 8)


@case("http2/4.1/2", "Sends a frame with undefined flag")
def h_4_1_2(c):
    c.send(frame(PING, 0x16, 0, b"undefine"))
    verify_ping_ack(c, b"undefine")


@case("http2/4.1/3", "Sends a frame with reserved field bit")
def h_4_1_3(c):
    c.send(b"\x00\x00\x08\x06\x00\x80\x00\x00\x00" + b"reserved")
    verify_ping_ack(c, b"reserved")


# ---- 4.2 frame size

@case("http2/4.2/1", "Sends a DATA frame with 2^14 octets in length")
def h_4_2_1(c):
    c.send(get(c, method="POST", es=False), data(1, b"x" * c.max_frame()))
    verify_event_type(c, HEADERS)


@case("http2/4.2/2", "Sends a large size DATA frame that exceeds the SETTINGS_MAX_FRAME_SIZE")
def h_4_2_2(c):
    c.send(get(c, method="POST", es=False), data(1, b"x" * (c.max_frame() + 1)))
    verify_stream_error(c, FRAME_SIZE_ERROR)


@case("http2/4.2/3", "Sends a large size HEADERS frame that exceeds the SETTINGS_MAX_FRAME_SIZE")
def h_4_2_3(c):
    # h2spec sends this block (5 fields of 4000 octets, ~20 KB) whatever the
    # server advertised: a server whose SETTINGS_MAX_FRAME_SIZE is larger
    # answers the request instead, and h2spec fails it.
    blk = c.block(c.common()) + c.dummy_block(5)
    c.send(headers(1, blk))
    try:
        verify_connection_error(c, FRAME_SIZE_ERROR)
    except Fail as e:
        if len(blk) <= c.max_frame():
            raise Fail("GOAWAY FRAME_SIZE_ERROR or connection close",
                       "%s (p advertises SETTINGS_MAX_FRAME_SIZE %d, so h2spec's %d-octet HEADERS "
                       "is legal here)" % (str(e).split("got ", 1)[-1], c.max_frame(), len(blk)))
        raise


@case("http2/4.2/x1", "Sends a HEADERS frame one octet over the advertised SETTINGS_MAX_FRAME_SIZE")
def h_4_2_x1(c):
    blk = c.block(c.common())
    limit = c.max_frame()
    while len(blk) <= limit:
        n = max(1, min(4000, limit + 1 - len(blk) - 12))
        blk += lit_new("x-fill", plain_string(b"f" * n))
    c.send(headers(1, blk))
    verify_connection_error(c, FRAME_SIZE_ERROR)


def frame_sizes(c, sid, path):
    """Sizes of the DATA frames of a whole response (windows kept open)."""
    c.send(get(c, sid=sid, path=path))
    sizes = []
    while True:
        ev = c.event()
        if ev[0] != "frame":
            raise Fail("the whole response", ev_str(ev))
        t, fl, s, p = ev[1]
        if t == GOAWAY or (t == RST_STREAM and s == sid):
            raise Fail("the whole response", describe(ev[1]))
        if t == HEADERS:
            c.dec.decode(strip(fl, p))
        if s == sid and t == DATA:
            sizes.append(len(p))
        if s == sid and t in (HEADERS, DATA) and fl & END_STREAM:
            return sizes


@case("http2/4.2/x2", "p's DATA frames keep to our SETTINGS_MAX_FRAME_SIZE (default 16384)")
def h_4_2_x2(c):
    c.send(settings((S_INITIAL_WINDOW, 8 << 20)), window_update(0, 32 << 20))
    sizes = frame_sizes(c, 1, "/notes.txt")
    if sum(sizes) != 226913 or max(sizes) > 16384:
        raise Fail("226913 octets in frames of at most 16384", "%d octets, largest frame %d"
                   % (sum(sizes), max(sizes or [0])))


@case("http2/4.2/x3", "p's DATA frames keep to a SETTINGS_MAX_FRAME_SIZE of 20000 we set")
def h_4_2_x3(c):
    c.send(settings((S_INITIAL_WINDOW, 8 << 20), (S_MAX_FRAME, 20000)), window_update(0, 32 << 20))
    verify_event_type(c, SETTINGS)
    sizes = frame_sizes(c, 1, "/notes.txt")
    if sum(sizes) != 226913 or max(sizes) > 20000:
        raise Fail("226913 octets in frames of at most 20000", "%d octets, largest frame %d"
                   % (sum(sizes), max(sizes or [0])))


# ---- 4.3 header compression

@case("http2/4.3/1", "Sends invalid header block fragment")
def h_4_3_1(c):
    # A literal whose name claims 10 octets and has 2: a truncated block.
    c.send(headers(1, b"\x00\x0ax-"))
    verify_connection_error(c, COMPRESSION_ERROR)


@case("http2/4.3/2", "Sends a PRIORITY frame while sending the header blocks")
def h_4_3_2(c):
    blk = c.block(c.common())
    c.send(headers(1, blk[:4], eh=False), priority(1, 0, 16), continuation(1, blk[4:]))
    verify_connection_error(c, PROTOCOL_ERROR)


@case("http2/4.3/3", "Sends a HEADERS frame to another stream while sending the header blocks")
def h_4_3_3(c):
    blk = c.block(c.common())
    c.send(headers(1, blk, eh=False), headers(3, blk))
    verify_connection_error(c, PROTOCOL_ERROR)


# ---- 5.1 stream states

@case("http2/5.1/1", "idle: Sends a DATA frame")
def h_5_1_1(c):
    c.send(data(1, b"test"))
    verify_connection_error(c, PROTOCOL_ERROR)


@case("http2/5.1/2", "idle: Sends a RST_STREAM frame")
def h_5_1_2(c):
    c.send(rst(1, CANCEL))
    verify_connection_error(c, PROTOCOL_ERROR)


@case("http2/5.1/3", "idle: Sends a WINDOW_UPDATE frame")
def h_5_1_3(c):
    c.send(window_update(1, 100))
    verify_connection_error(c, PROTOCOL_ERROR)


@case("http2/5.1/4", "idle: Sends a CONTINUATION frame")
def h_5_1_4(c):
    c.send(continuation(1, c.block(c.common())))
    verify_connection_error(c, PROTOCOL_ERROR)


@case("http2/5.1/5", "half closed (remote): Sends a DATA frame")
def h_5_1_5(c):
    c.send(get(c), data(1, b"test"))
    verify_stream_error(c, STREAM_CLOSED)


@case("http2/5.1/6", "half closed (remote): Sends a HEADERS frame")
def h_5_1_6(c):
    c.send(get(c), get(c))
    verify_stream_error(c, STREAM_CLOSED)


@case("http2/5.1/7", "half closed (remote): Sends a CONTINUATION frame")
def h_5_1_7(c):
    blk = c.block(c.common())
    c.send(headers(1, blk), continuation(1, blk))
    verify_stream_error(c, STREAM_CLOSED, PROTOCOL_ERROR)


@case("http2/5.1/8", "closed: Sends a DATA frame after sending RST_STREAM frame")
def h_5_1_8(c):
    c.send(get(c, es=False), rst(1, CANCEL), data(1, b"test"))
    verify_stream_error(c, STREAM_CLOSED)


@case("http2/5.1/9", "closed: Sends a HEADERS frame after sending RST_STREAM frame")
def h_5_1_9(c):
    c.send(get(c, es=False), rst(1, CANCEL), get(c))
    verify_stream_error(c, STREAM_CLOSED)


@case("http2/5.1/10", "closed: Sends a CONTINUATION frame after sending RST_STREAM frame")
def h_5_1_10(c):
    c.send(get(c, es=False), rst(1, CANCEL), continuation(1, c.dummy_block(1)))
    verify_stream_error(c, STREAM_CLOSED, PROTOCOL_ERROR)


@case("http2/5.1/11", "closed: Sends a DATA frame")
def h_5_1_11(c):
    c.send(get(c))
    verify_stream_close(c, 1)
    c.send(data(1, b"test"))
    verify_connection_error(c, STREAM_CLOSED)


@case("http2/5.1/12", "closed: Sends a HEADERS frame")
def h_5_1_12(c):
    c.send(get(c))
    verify_stream_close(c, 1)
    c.send(get(c))
    verify_connection_error(c, STREAM_CLOSED)


@case("http2/5.1/13", "closed: Sends a CONTINUATION frame")
def h_5_1_13(c):
    c.send(get(c))
    verify_stream_close(c, 1)
    c.send(continuation(1, c.dummy_block(1)))
    verify_connection_error(c, STREAM_CLOSED, PROTOCOL_ERROR)


# ---- 5.1.1 stream identifiers

@case("http2/5.1.1/1", "Sends even-numbered stream identifier")
def h_5_1_1_1(c):
    c.send(get(c, sid=2))
    verify_connection_error(c, PROTOCOL_ERROR)


@case("http2/5.1.1/2", "Sends stream identifier that is numerically smaller than previous")
def h_5_1_1_2(c):
    c.send(get(c, sid=5), get(c, sid=3))
    verify_connection_error(c, PROTOCOL_ERROR)


@case("http2/5.1.1/3", "Sends HEADERS frame with the stream which is in half-closed (remote) state")
def h_5_1_1_3(c):
    c.send(get(c, sid=5), get(c, sid=5))
    verify_stream_error(c, STREAM_CLOSED)


# ---- 5.1.2 concurrency

@case("http2/5.1.2/1", "Sends HEADERS frames that causes their advertised concurrent stream limit to be exceeded")
def h_5_1_2_1(c):
    n = c.settings.get(S_MAX_CONCURRENT)
    if n is None:
        raise Skip("no SETTINGS_MAX_CONCURRENT_STREAMS")
    c.send(settings((S_INITIAL_WINDOW, 0)))
    blk = c.block(c.common())
    c.send(*[headers(1 + 2 * i, blk) for i in range(n + 1)])
    verify_stream_error(c, PROTOCOL_ERROR, REFUSED_STREAM)


# ---- 5.3.1 stream dependencies

@case("http2/5.3.1/1", "Sends HEADERS frame that depends on itself")
def h_5_3_1_1(c):
    c.send(headers(1, c.block(c.common()), prio=(1, 16, False)))
    verify_stream_error(c, PROTOCOL_ERROR)


@case("http2/5.3.1/2", "Sends PRIORITY frame that depend on itself")
def h_5_3_1_2(c):
    c.send(priority(2, 2, 16))
    verify_stream_error(c, PROTOCOL_ERROR)


# ---- 5.4.1 connection error handling

@case("http2/5.4.1/1", "Sends an invalid PING frame for connection close")
def h_5_4_1_1(c):
    c.send(frame(PING, 0, 3, b"\0" * 8))
    verify_connection_close(c)


@case("http2/5.4.1/2", "Sends an invalid PING frame to receive GOAWAY frame")
def h_5_4_1_2(c):
    c.send(frame(PING, 0, 3, b"\0" * 8))
    verify_event_type(c, GOAWAY)


@case("http2/5.4.1/x1", "After a served stream 1, a connection error's GOAWAY names stream 1 as the last")
def h_5_4_1_x1(c):
    c.send(get(c))
    verify_stream_close(c, 1)
    c.send(frame(PING, 0, 0, b"\0" * 6))
    fr = verify_event_type(c, GOAWAY)
    last, code = struct.unpack(">LL", fr[3][:8])
    if last != 1 or code != FRAME_SIZE_ERROR:
        raise Fail("GOAWAY last-stream-id 1, FRAME_SIZE_ERROR", describe(fr))


# ---- 5.5 extending HTTP/2

@case("http2/5.5/1", "Sends an unknown extension frame")
def h_5_5_1(c):
    c.send(frame(0xff, 0xff, 0, b"unknown!"), frame(0x20, 0, 1, b"x"), ping(b"\0" * 8))
    verify_ping_ack(c, b"\0" * 8)


@case("http2/5.5/2", "Sends an unknown extension frame in the middle of a header block")
def h_5_5_2(c):
    blk = c.block(c.common())
    c.send(headers(1, blk, eh=False), frame(0xff, 0, 1, b"unknown!"), continuation(1, c.dummy_block(1)))
    verify_connection_error(c, PROTOCOL_ERROR)


# ---- 6.1 DATA

@case("http2/6.1/1", "Sends a DATA frame with 0x0 stream identifier")
def h_6_1_1(c):
    c.send(data(0, b"test"))
    verify_connection_error(c, PROTOCOL_ERROR)


@case("http2/6.1/2", "Sends a DATA frame on the stream that is not in \"open\" or \"half-closed (local)\" state")
def h_6_1_2(c):
    c.send(get(c), data(1, b"test"))
    verify_stream_error(c, STREAM_CLOSED)


@case("http2/6.1/3", "Sends a DATA frame with invalid pad length")
def h_6_1_3(c):
    c.send(get(c, method="POST", es=False),
           frame(DATA, PADDED | END_STREAM, 1, b"\x06" + b"Test"))
    verify_connection_error(c, PROTOCOL_ERROR)


@case("http2/6.1/x1", "Sends a DATA frame whose pad length equals the rest of the payload")
def h_6_1_x1(c):
    c.send(get(c, method="POST", es=False), frame(DATA, PADDED | END_STREAM, 1, b"\x04" + b"Test"))
    verify_stream_close(c, 1)  # legal: 4 octets of padding, empty body


# ---- 6.2 HEADERS

@case("http2/6.2/1", "Sends a HEADERS frame without the END_HEADERS flag, and a PRIORITY frame")
def h_6_2_1(c):
    c.send(headers(1, c.block(c.common()), eh=False), priority(1, 0, 16))
    verify_connection_error(c, PROTOCOL_ERROR)


@case("http2/6.2/2", "Sends a HEADERS frame to another stream while sending a HEADERS frame")
def h_6_2_2(c):
    blk = c.block(c.common())
    c.send(headers(1, blk, eh=False), headers(3, blk))
    verify_connection_error(c, PROTOCOL_ERROR)


@case("http2/6.2/3", "Sends a HEADERS frame with 0x0 stream identifier")
def h_6_2_3(c):
    c.send(get(c, sid=0))
    verify_connection_error(c, PROTOCOL_ERROR)


@case("http2/6.2/4", "Sends a HEADERS frame with invalid pad length")
def h_6_2_4(c):
    blk = c.block(c.common())
    c.send(frame(HEADERS, PADDED | END_HEADERS | END_STREAM, 1, bytes([len(blk) + 2]) + blk))
    verify_connection_error(c, PROTOCOL_ERROR)


@case("http2/6.2/x1", "Sends a HEADERS frame without the END_HEADERS flag, and a DATA frame")
def h_6_2_x1(c):
    c.send(headers(1, c.block(c.common("POST")), es=False, eh=False), data(1, b"test"))
    verify_connection_error(c, PROTOCOL_ERROR)


@case("http2/6.2/x2", "Sends a HEADERS frame with PRIORITY and PADDED whose padding covers the block")
def h_6_2_x2(c):
    blk = c.block(c.common())
    payload = bytes([len(blk) + 1]) + struct.pack(">LB", 0, 15) + blk
    c.send(frame(HEADERS, PADDED | PRIO | END_HEADERS | END_STREAM, 1, payload))
    verify_connection_error(c, PROTOCOL_ERROR)


# ---- 6.3 PRIORITY

@case("http2/6.3/1", "Sends a PRIORITY frame with 0x0 stream identifier")
def h_6_3_1(c):
    c.send(priority(0, 1, 16))
    verify_connection_error(c, PROTOCOL_ERROR)


@case("http2/6.3/2", "Sends a PRIORITY frame with a length other than 5 octets")
def h_6_3_2(c):
    c.send(get(c, method="POST", es=False), frame(PRIORITY, 0, 1, b"\x80\x00\x00\x03"))
    verify_stream_error(c, FRAME_SIZE_ERROR)


# ---- 6.4 RST_STREAM

@case("http2/6.4/1", "Sends a RST_STREAM frame with 0x0 stream identifier")
def h_6_4_1(c):
    c.send(rst(0, CANCEL))
    verify_connection_error(c, PROTOCOL_ERROR)


@case("http2/6.4/2", "Sends a RST_STREAM frame on a idle stream")
def h_6_4_2(c):
    c.send(rst(1, CANCEL))
    verify_connection_error(c, PROTOCOL_ERROR)


@case("http2/6.4/3", "Sends a RST_STREAM frame with a length other than 4 octets")
def h_6_4_3(c):
    c.send(get(c, method="POST", es=False), frame(RST_STREAM, 0, 1, b"\x00\x00\x08"))
    verify_connection_error(c, FRAME_SIZE_ERROR)


# ---- 6.5 SETTINGS

@case("http2/6.5/1", "Sends a SETTINGS frame with ACK flag and payload")
def h_6_5_1(c):
    c.send(frame(SETTINGS, ACK, 0, struct.pack(">HL", S_ENABLE_PUSH, 0)))
    verify_connection_error(c, FRAME_SIZE_ERROR)


@case("http2/6.5/2", "Sends a SETTINGS frame with a stream identifier other than 0x0")
def h_6_5_2(c):
    c.send(frame(SETTINGS, 0, 1, struct.pack(">HL", S_ENABLE_PUSH, 0)))
    verify_connection_error(c, PROTOCOL_ERROR)


@case("http2/6.5/3", "Sends a SETTINGS frame with a length other than a multiple of 6 octets")
def h_6_5_3(c):
    c.send(frame(SETTINGS, 0, 0, b"\x00\x02\x00\x00"))
    verify_connection_error(c, FRAME_SIZE_ERROR)


# ---- 6.5.2 defined SETTINGS parameters

@case("http2/6.5.2/1", "SETTINGS_ENABLE_PUSH (0x2): Sends the value other than 0 or 1")
def h_6_5_2_1(c):
    c.send(settings((S_ENABLE_PUSH, 2)))
    verify_connection_error(c, PROTOCOL_ERROR)


@case("http2/6.5.2/2", "SETTINGS_INITIAL_WINDOW_SIZE (0x4): Sends the value above the maximum flow control window size")
def h_6_5_2_2(c):
    c.send(settings((S_INITIAL_WINDOW, 1 << 31)))
    verify_connection_error(c, FLOW_CONTROL_ERROR)


@case("http2/6.5.2/3", "SETTINGS_MAX_FRAME_SIZE (0x5): Sends the value below the initial value")
def h_6_5_2_3(c):
    c.send(settings((S_MAX_FRAME, 16383)))
    verify_connection_error(c, PROTOCOL_ERROR)


@case("http2/6.5.2/4", "SETTINGS_MAX_FRAME_SIZE (0x5): Sends the value above the maximum allowed frame size")
def h_6_5_2_4(c):
    c.send(settings((S_MAX_FRAME, 1 << 24)))
    verify_connection_error(c, PROTOCOL_ERROR)


@case("http2/6.5.2/5", "Sends a SETTINGS frame with unknown identifier")
def h_6_5_2_5(c):
    c.send(settings((0xFF, 1), (0x1234, 0xFFFFFFFF)))
    fr = verify_event_type(c, SETTINGS)
    if not fr[1] & ACK:
        raise Fail("SETTINGS ACK", describe(fr))


# ---- 6.5.3 settings synchronization

@case("http2/6.5.3/1", "Sends multiple values of SETTINGS_INITIAL_WINDOW_SIZE")
def h_6_5_3_1(c):
    c.send(settings((S_INITIAL_WINDOW, 100), (S_INITIAL_WINDOW, 1)))
    verify_event_type(c, SETTINGS)
    c.send(get(c))
    verify_data_length(c, 1)


@case("http2/6.5.3/2", "Sends a SETTINGS frame without ACK flag")
def h_6_5_3_2(c):
    c.send(settings((S_ENABLE_PUSH, 0)))
    fr = verify_event_type(c, SETTINGS)
    if not fr[1] & ACK:
        raise Fail("SETTINGS ACK", describe(fr))


# ---- 6.7 PING

@case("http2/6.7/1", "Sends a PING frame")
def h_6_7_1(c):
    c.send(ping(b"h2spec\0\0"))
    verify_ping_ack(c, b"h2spec\0\0")


@case("http2/6.7/2", "Sends a PING frame with ACK")
def h_6_7_2(c):
    c.send(ping(b"invalid\0", ack=True), ping(b"h2spec\0\0"))
    while True:
        ev = c.event()
        if ev[0] != "frame":
            raise Fail("PING ACK h2spec", ev_str(ev))
        t, fl, s, p = ev[1]
        if t == PING and p == b"invalid\0":
            raise Fail("no answer to a PING ACK", describe(ev[1]))
        if t == PING and fl & ACK and p == b"h2spec\0\0":
            return


@case("http2/6.7/3", "Sends a PING frame with a stream identifier field value other than 0x0")
def h_6_7_3(c):
    c.send(frame(PING, 0, 1, b"\0" * 8))
    verify_connection_error(c, PROTOCOL_ERROR)


@case("http2/6.7/4", "Sends a PING frame with a length field value other than 8")
def h_6_7_4(c):
    c.send(frame(PING, 0, 0, b"\0" * 6))
    verify_connection_error(c, FRAME_SIZE_ERROR)


@case("http2/6.7/x1", "Sends a PING frame of length 6 on stream 1 (older h2spec's bytes)")
def h_6_7_x1(c):
    c.send(frame(PING, 0, 1, b"\0" * 6))
    verify_connection_error(c, PROTOCOL_ERROR, FRAME_SIZE_ERROR)


# ---- 6.8 GOAWAY

@case("http2/6.8/1", "Sends a GOAWAY frame with a stream identifier other than 0x0")
def h_6_8_1(c):
    c.send(frame(GOAWAY, 0, 1, struct.pack(">LL", 0, NO_ERROR)))
    verify_connection_error(c, PROTOCOL_ERROR)


# ---- 6.9 WINDOW_UPDATE

@case("http2/6.9/1", "Sends a WINDOW_UPDATE frame with a flow control window increment of 0")
def h_6_9_1(c):
    c.send(window_update(0, 0))
    verify_connection_error(c, PROTOCOL_ERROR)


@case("http2/6.9/2", "Sends a WINDOW_UPDATE frame with a flow control window increment of 0 on a stream")
def h_6_9_2(c):
    c.send(get(c, method="POST", es=False), window_update(1, 0))
    verify_stream_error(c, PROTOCOL_ERROR)


@case("http2/6.9/3", "Sends a WINDOW_UPDATE frame with a length other than 4 octets")
def h_6_9_3(c):
    c.send(frame(WINDOW_UPDATE, 0, 0, b"\x00\x00\x01"))
    verify_connection_error(c, FRAME_SIZE_ERROR)


# ---- 6.9.1 the flow-control window

@case("http2/6.9.1/1", "Sends SETTINGS frame to set the initial window size to 1 and sends HEADERS frame")
def h_6_9_1_1(c):
    c.send(settings((S_INITIAL_WINDOW, 1)))
    verify_event_type(c, SETTINGS)
    c.send(get(c))
    verify_data_length(c, 1)


@case("http2/6.9.1/2", "Sends multiple WINDOW_UPDATE frames increasing the flow control window to above 2^31-1")
def h_6_9_1_2(c):
    c.send(window_update(0, 0x7FFFFFFF), window_update(0, 0x7FFFFFFF))
    fr = verify_event_type(c, GOAWAY)
    code = struct.unpack(">L", fr[3][4:8])[0]
    if code != FLOW_CONTROL_ERROR:
        raise Fail("GOAWAY FLOW_CONTROL_ERROR", describe(fr))


@case("http2/6.9.1/3", "Sends multiple WINDOW_UPDATE frames increasing the flow control window to above 2^31-1 on a stream")
def h_6_9_1_3(c):
    c.send(get(c, es=False), window_update(1, 0x7FFFFFFF), window_update(1, 0x7FFFFFFF))
    fr = verify_event_type(c, RST_STREAM)
    if fr[2] != 1 or struct.unpack(">L", fr[3])[0] != FLOW_CONTROL_ERROR:
        raise Fail("RST_STREAM FLOW_CONTROL_ERROR on stream 1", describe(fr))


def data_until_quiet(c, sid, quiet=0.6):
    """DATA bytes on sid until nothing comes for `quiet` s (the window is
    used up) or the stream ends; (bytes, ended, frames)."""
    got, ended = 0, False
    while not ended:
        ev = c.event(timeout=quiet)
        if ev[0] == "timeout":
            break
        if ev[0] == "closed":
            raise Fail("DATA up to the window", ev_str(ev))
        t, fl, s, p = ev[1]
        if t == HEADERS:
            c.dec.decode(strip(fl, p))
        if t in (GOAWAY,) or (t == RST_STREAM and s == sid):
            raise Fail("DATA up to the window", describe(ev[1]))
        if s == sid and t == DATA:
            got += len(p)
        if s == sid and t in (DATA, HEADERS) and fl & END_STREAM:
            ended = True
    return got, ended


@case("http2/6.9.1/x1", "A stream window of 1000: p sends 1000 octets, then the rest after WINDOW_UPDATE")
def h_6_9_1_x1(c):
    c.auto_window = False
    c.send(settings((S_INITIAL_WINDOW, 1000)))
    verify_event_type(c, SETTINGS)
    c.send(get(c, path="/photo.jpg"))
    got, ended = data_until_quiet(c, 1)
    if got != 1000 or ended:
        raise Fail("exactly 1000 octets of DATA, stream still open", "%d octets%s" % (got, ", ended" if ended else ""))
    c.send(window_update(1, 1 << 20))
    more, ended = data_until_quiet(c, 1, quiet=OPT.timeout)
    if not ended or got + more != 38049:
        raise Fail("the rest of photo.jpg (38049 octets in all)", "%d octets%s" % (got + more, ", ended" if ended else ""))


@case("http2/6.9.1/x2", "The connection window (65535): p stops there until a connection WINDOW_UPDATE")
def h_6_9_1_x2(c):
    c.auto_window = False
    c.send(settings((S_INITIAL_WINDOW, 1 << 20)))
    verify_event_type(c, SETTINGS)
    c.send(get(c, path="/notes.txt"))
    got, ended = data_until_quiet(c, 1)
    if got != DEFAULT_WINDOW or ended:
        raise Fail("exactly 65535 octets of DATA", "%d octets%s" % (got, ", ended" if ended else ""))
    c.send(window_update(0, 1 << 20))
    more, ended = data_until_quiet(c, 1, quiet=OPT.timeout)
    if not ended or got + more != 226913:
        raise Fail("the rest of notes.txt (226913 octets)", "%d octets%s" % (got + more, ", ended" if ended else ""))


@case("http2/6.9.1/x3", "A stream window of 0: no DATA at all (HEADERS only) until WINDOW_UPDATE")
def h_6_9_1_x3(c):
    c.auto_window = False
    c.send(settings((S_INITIAL_WINDOW, 0)))
    verify_event_type(c, SETTINGS)
    c.send(get(c, path="/data.json"))
    got, ended = data_until_quiet(c, 1)
    if got != 0 or ended:
        raise Fail("no DATA", "%d octets%s" % (got, ", ended" if ended else ""))
    c.send(window_update(1, 1000))
    more, ended = data_until_quiet(c, 1, quiet=OPT.timeout)
    if not ended or more != 103:
        raise Fail("data.json (103 octets)", "%d octets%s" % (more, ", ended" if ended else ""))


# ---- 6.9.2 initial flow-control window size

@case("http2/6.9.2/1", "Changes SETTINGS_INITIAL_WINDOW_SIZE after sending HEADERS frame")
def h_6_9_2_1(c):
    c.send(settings((S_INITIAL_WINDOW, 0)))
    verify_event_type(c, SETTINGS)
    c.send(get(c), settings((S_INITIAL_WINDOW, 1)))
    verify_event_type(c, SETTINGS)
    verify_data_length(c, 1)


@case("http2/6.9.2/2", "Sends a SETTINGS frame for window size to be negative")
def h_6_9_2_2(c):
    c.send(settings((S_INITIAL_WINDOW, 3)))
    verify_event_type(c, SETTINGS)
    c.send(get(c))
    verify_event_type(c, DATA)
    c.send(settings((S_INITIAL_WINDOW, 2)))
    verify_event_type(c, SETTINGS)
    c.send(window_update(1, 2))
    verify_data_length(c, 1)


@case("http2/6.9.2/3", "Sends a SETTINGS_INITIAL_WINDOW_SIZE settings with an exceeded maximum window size value")
def h_6_9_2_3(c):
    c.send(frame(SETTINGS, 0, 0, struct.pack(">HL", S_INITIAL_WINDOW, 0x80000000)))
    verify_connection_error(c, FLOW_CONTROL_ERROR)


@case("http2/6.9.2/x1", "INITIAL_WINDOW_SIZE raised on an open stream so its window passes 2^31-1")
def h_6_9_2_x1(c):
    c.send(settings((S_INITIAL_WINDOW, 0)))
    verify_event_type(c, SETTINGS)
    c.send(get(c, method="POST", es=False), window_update(1, 0x7FFFFFFF),
           settings((S_INITIAL_WINDOW, 10)))
    verify_connection_error(c, FLOW_CONTROL_ERROR)


# ---- 6.10 CONTINUATION

@case("http2/6.10/1", "Sends multiple CONTINUATION frames preceded by a HEADERS frame")
def h_6_10_1(c):
    c.send(headers(1, c.block(c.common()), eh=False), continuation(1, c.dummy_block(1), eh=False),
           continuation(1, c.dummy_block(1)))
    verify_event_type(c, HEADERS)


@case("http2/6.10/2", "Sends a CONTINUATION frame followed by any frame other than CONTINUATION")
def h_6_10_2(c):
    c.send(headers(1, c.block(c.common("POST")), es=False, eh=False),
           continuation(1, c.dummy_block(1), eh=False), data(1, b"test"))
    verify_connection_error(c, PROTOCOL_ERROR)


@case("http2/6.10/3", "Sends a CONTINUATION frame with 0x0 stream identifier")
def h_6_10_3(c):
    c.send(headers(1, c.block(c.common()), eh=False), continuation(0, c.dummy_block(1)))
    verify_connection_error(c, PROTOCOL_ERROR)


@case("http2/6.10/4", "Sends a CONTINUATION frame preceded by a HEADERS frame with END_HEADERS flag")
def h_6_10_4(c):
    c.send(get(c), continuation(1, c.dummy_block(1)))
    verify_connection_error(c, PROTOCOL_ERROR)


@case("http2/6.10/5", "Sends a CONTINUATION frame preceded by a CONTINUATION frame with END_HEADERS flag")
def h_6_10_5(c):
    c.send(headers(1, c.block(c.common()), eh=False), continuation(1, c.dummy_block(1)),
           continuation(1, c.dummy_block(1)))
    verify_connection_error(c, PROTOCOL_ERROR)


@case("http2/6.10/6", "Sends a CONTINUATION frame preceded by a DATA frame")
def h_6_10_6(c):
    c.send(get(c, method="POST", es=False), data(1, b"test"),
           continuation(1, c.dummy_block(1), eh=False), continuation(0, c.dummy_block(1)))
    verify_connection_error(c, PROTOCOL_ERROR)


@case("http2/6.10/x1", "Sends a CONTINUATION frame on another stream while a header block is open")
def h_6_10_x1(c):
    c.send(headers(1, c.block(c.common()), eh=False), continuation(3, c.dummy_block(1)))
    verify_connection_error(c, PROTOCOL_ERROR)


# ---- 7 error codes

@case("http2/7/1", "Sends a GOAWAY frame with unknown error code")
def h_7_1(c):
    c.send(goaway(0, 0xff))
    verify_connection_close(c)


@case("http2/7/2", "Sends a RST_STREAM frame with unknown error code")
def h_7_2(c):
    c.send(get(c, method="POST", es=False), rst(1, 0xff), ping(b"\0" * 8))
    verify_event_type(c, PING)


# ---- 8.1 request/response exchange

@case("http2/8.1/1", "Sends a second HEADERS frame without the END_STREAM flag")
def h_8_1_1(c):
    c.send(get(c, method="POST", es=False), data(1, b"test", es=False),
           headers(1, c.block([("x-test", "ok")]), es=False))
    verify_stream_error(c, PROTOCOL_ERROR)


@case("http2/8.1/x1", "Sends DATA after trailers (HEADERS with END_STREAM)")
def h_8_1_x1(c):
    c.send(get(c, method="POST", es=False), data(1, b"test", es=False),
           headers(1, c.block([("x-test", "ok")])), data(1, b"late"))
    verify_stream_error(c, STREAM_CLOSED)


def malformed(cid, desc, fields_fn, raw=False):
    def run(c):
        f = fields_fn(c)
        blk = b"".join(literal(n, v) for n, v in f) if raw else c.block(f)
        c.send(headers(1, blk))
        verify_stream_error(c, PROTOCOL_ERROR)
    case(cid, desc)(run)


def _c(c, method="GET"):
    return c.common(method)


malformed("http2/8.1.2/1", "Sends a HEADERS frame that contains the header field name in uppercase letters",
          lambda c: _c(c) + [("X-TEST", "ok")], raw=True)
malformed("http2/8.1.2.1/1", "Sends a HEADERS frame that contains a unknown pseudo-header field",
          lambda c: _c(c) + [(":test", "ok")])
malformed("http2/8.1.2.1/2", "Sends a HEADERS frame that contains the pseudo-header field defined for response",
          lambda c: _c(c) + [(":status", "200")])
malformed("http2/8.1.2.1/4", "Sends a HEADERS frame that contains a pseudo-header field that appears in a header block after a regular header field",
          lambda c: _c(c)[:3] + [("x-test", "ok"), _c(c)[3]])
malformed("http2/8.1.2.2/1", "Sends a HEADERS frame that contains the connection-specific header field",
          lambda c: _c(c) + [("connection", "keep-alive")])
malformed("http2/8.1.2.2/2", "Sends a HEADERS frame that contains the TE header field with any value other than \"trailers\"",
          lambda c: _c(c) + [("te", "trailers, deflate")])
for _n, (_name, _val) in enumerate([("keep-alive", "timeout=5"), ("proxy-connection", "keep-alive"),
                                    ("transfer-encoding", "chunked"), ("upgrade", "h2c")]):
    malformed("http2/8.1.2.2/x%d" % (_n + 1), "Sends a HEADERS frame with the connection-specific field %s" % _name,
              lambda c, _name=_name, _val=_val: _c(c) + [(_name, _val)])
malformed("http2/8.1.2.3/1", "Sends a HEADERS frame with empty \":path\" pseudo-header field",
          lambda c: [(k, "" if k == ":path" else v) for k, v in _c(c)])
malformed("http2/8.1.2.3/2", "Sends a HEADERS frame that omits \":method\" pseudo-header field",
          lambda c: [f for f in _c(c) if f[0] != ":method"])
malformed("http2/8.1.2.3/3", "Sends a HEADERS frame that omits \":scheme\" pseudo-header field",
          lambda c: [f for f in _c(c) if f[0] != ":scheme"])
malformed("http2/8.1.2.3/4", "Sends a HEADERS frame that omits \":path\" pseudo-header field",
          lambda c: [f for f in _c(c) if f[0] != ":path"])
malformed("http2/8.1.2.3/5", "Sends a HEADERS frame with duplicated \":method\" pseudo-header field",
          lambda c: _c(c)[:1] + _c(c))
malformed("http2/8.1.2.3/6", "Sends a HEADERS frame with duplicated \":scheme\" pseudo-header field",
          lambda c: _c(c)[:2] + _c(c)[1:])
malformed("http2/8.1.2.3/7", "Sends a HEADERS frame with duplicated \":path\" pseudo-header field",
          lambda c: _c(c)[:3] + _c(c)[2:])
malformed("http2/8.1.2.3/x1", "Sends a HEADERS frame with duplicated \":authority\" pseudo-header field",
          lambda c: _c(c) + _c(c)[3:])
malformed("http2/8.1.2/x1", "Sends a HEADERS frame whose field value has a NUL / CR / LF",
          lambda c: _c(c) + [("x-test", "a\r\nb: c")], raw=True)
malformed("http2/8.1.2/x2", "Sends a HEADERS frame with an empty field name",
          lambda c: _c(c) + [("", "empty")], raw=True)
malformed("http2/8.1.2/x3", "Sends a HEADERS frame with a field name holding a space",
          lambda c: _c(c) + [("x test", "ok")], raw=True)


@case("http2/8.1.2.1/3", "Sends a HEADERS frame that contains a pseudo-header field as trailers")
def h_8_1_2_1_3(c):
    c.send(get(c, method="POST", es=False), data(1, b"test", es=False),
           headers(1, c.block([(":method", "POST")])))
    verify_stream_error(c, PROTOCOL_ERROR)


@case("http2/8.1.2.6/1", "Sends a HEADERS frame with the \"content-length\" header field which does not equal the DATA frame payload length")
def h_8_1_2_6_1(c):
    c.send(get(c, method="POST", es=False, extra=[("content-length", "1")]), data(1, b"test"))
    verify_stream_error(c, PROTOCOL_ERROR)


@case("http2/8.1.2.6/2", "Sends a HEADERS frame with the \"content-length\" header field which does not equal the sum of the multiple DATA frames payload length")
def h_8_1_2_6_2(c):
    c.send(get(c, method="POST", es=False, extra=[("content-length", "1")]),
           data(1, b"test", es=False), data(1, b"test"))
    verify_stream_error(c, PROTOCOL_ERROR)


@case("http2/8.1.2.6/x1", "content-length larger than the body that ends (END_STREAM early)")
def h_8_1_2_6_x1(c):
    c.send(get(c, method="POST", es=False, extra=[("content-length", "10")]), data(1, b"test"))
    verify_stream_error(c, PROTOCOL_ERROR)


@case("http2/8.2/1", "Sends a PUSH_PROMISE frame")
def h_8_2_1(c):
    c.send(frame(PUSH_PROMISE, END_HEADERS, 1, struct.pack(">L", 3) + c.block(c.common())))
    verify_connection_error(c, PROTOCOL_ERROR)


# ---- hpack

def hpack_err(cid, desc, rep_fn, prepend=False):
    def run(c):
        rep = rep_fn(c)
        blk = c.block(c.common())
        c.send(headers(1, rep + blk if prepend else blk + rep))
        verify_connection_error(c, COMPRESSION_ERROR)
    case(cid, desc)(run)


hpack_err("hpack/2.3.3/1", "Sends a indexed header field representation with invalid index",
          lambda c: hpack_int(61 + 100, 7, 0x80))
hpack_err("hpack/2.3.3/2", "Sends a literal header field representation with invalid index",
          lambda c: hpack_int(61 + 100, 6, 0x40) + plain_string("x"))
hpack_err("hpack/4.2/1", "Sends a dynamic table size update at the end of header block",
          lambda c: b"\x21")
hpack_err("hpack/4.2/x1", "Sends a dynamic table size update between two fields",
          lambda c: b"\x20" + lit_new("x-test", plain_string("ok")))
hpack_err("hpack/5.2/1", "Sends a Huffman-encoded string literal representation with padding longer than 7 bits",
          lambda c: lit_new("x-test", huff_string(list(b"test"), extra_bytes=1)))
hpack_err("hpack/5.2/2", "Sends a Huffman-encoded string literal representation padded by zero",
          lambda c: lit_new("x-test", huff_string(list(b"test"), pad_value=0)))
hpack_err("hpack/5.2/3", "Sends a Huffman-encoded string literal representation containing the EOS symbol",
          lambda c: lit_new("x-test", huff_string([ord("t"), ord("e"), 256, ord("s"), ord("t")])))
hpack_err("hpack/6.1/1", "Sends a indexed header field representation with index 0",
          lambda c: b"\x80")
hpack_err("hpack/6.3/1", "Sends a dynamic table size update larger than the value of SETTINGS_HEADER_TABLE_SIZE",
          lambda c: hpack_int(c.settings.get(S_HEADER_TABLE_SIZE, 4096) + 1, 5, 0x20), prepend=True)
hpack_err("hpack/5.1/x1", "Sends an HPACK integer that overflows (10 continuation octets)",
          lambda c: b"\x7f" + b"\xff" * 10 + b"\x01")
hpack_err("hpack/5.2/x1", "Sends a string literal longer than the rest of the block",
          lambda c: b"\x00\x05x-abc\x7f\x10ab")


@case("hpack/x1", "SETTINGS_HEADER_TABLE_SIZE 0: p's header blocks decode with no dynamic table")
def hp_x1(c):
    c.send(settings((S_HEADER_TABLE_SIZE, 0)))
    fr = verify_event_type(c, SETTINGS)
    c.dec.max_allowed_table_size = 0
    c.dec.header_table_size = 0
    for sid in (1, 3, 5):
        c.send(get(c, sid=sid))
        try:
            st, _, _ = read_response(c, sid)
        except hpack.HPACKError as e:
            raise Fail("blocks decodable with a 0-octet table", "%s: %s" % (type(e).__name__, e))
        if st != 200:
            raise Fail("200", st)
    del fr


# ---------------------------------------------------------------- runner

def run_case(cid, desc, fn, hs):
    c = None
    try:
        c = Conn()
        if hs:
            c.handshake()
        fn(c)
        return "PASS", ("[%s]" % c.how) if c.how else ""
    except Skip as e:
        return "SKIP", str(e)
    except Fail as e:
        return "FAIL", str(e)
    except (OSError, hpack.HPACKError) as e:
        return "FAIL", "%s: %s" % (type(e).__name__, e)
    finally:
        if c:
            c.close()


def section(cid):
    g, s = cid.split("/")[:2]
    return "%s/%s" % (g, s)


def main():
    global OPT
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("port", type=int)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--tls", action="store_true", help="h2 over TLS (ALPN h2)")
    ap.add_argument("--timeout", type=float, default=2.0)
    ap.add_argument("--only", default=None, help="regex on case ids")
    ap.add_argument("--media", default=os.environ.get("TT_MEDIA"), help="the files c serves")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("-v", "--verbose", action="store_true")
    OPT = ap.parse_args()
    sel = [x for x in CASES if not OPT.only or re.search(OPT.only, x[0])]
    if OPT.list:
        for cid, desc, _, _ in sel:
            print(cid, desc)
        return 0
    stats, fails = {}, []
    t0 = time.time()
    for cid, desc, fn, hs in sel:
        if OPT.verbose:
            print("  -- %s" % cid)
        verdict, why = run_case(cid, desc, fn, hs)
        line = "%s %s %s" % (verdict, cid, desc)
        if why:
            line += (" " if verdict == "PASS" else ": ") + why
        print(line, flush=True)
        st = stats.setdefault(section(cid), [0, 0, 0])
        st[{"PASS": 0, "FAIL": 1, "SKIP": 2}[verdict]] += 1
        if verdict == "FAIL":
            fails.append(line)
    print("")
    print("by section (pass/fail/skip):")
    for sec in stats:
        p, f, s = stats[sec]
        print("  %-16s %3d %3d %3d" % (sec, p, f, s))
    tp = sum(v[0] for v in stats.values())
    tf = sum(v[1] for v in stats.values())
    ts = sum(v[2] for v in stats.values())
    print("%d cases: %d passed, %d failed, %d skipped (%.1f s)" % (len(sel), tp, tf, ts, time.time() - t0))
    if fails:
        print("failures:")
        for f in fails:
            print("  " + f)
    return 1 if tf else 0


if __name__ == "__main__":
    sys.exit(main())
