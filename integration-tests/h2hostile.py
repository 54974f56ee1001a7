#!/usr/bin/python3
"""Hostile and edge-case requests on p's h2c front, beyond h2conf.py's cases.

  h2hostile.py [--timeout S] [--only REGEX] [--gaps] [-v] PORT

Reuses h2conf.py's connection, frame builders and verifiers (h2spec's way
of judging).  Each case cites the RFC section it checks.  Cases marked as
known gaps (p does not do what the RFC asks yet) run only with --gaps; their
failures are what integration-tests/test-33-h2-front-hostile.sh guards with
TT_KNOWN_GAPS=1.  Expects p's default name served by c --root with the test
media (GET / and /data.json answer 200).

Prints "PASS <id> <desc>" / "FAIL <id> <desc>: why" / "GAP-PASS" / "GAP-FAIL"
per case; exit 1 if a non-gap case failed, or with --gaps if any failed.
"""
import argparse
import os
import re
import sys
import types

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import h2conf as hc  # noqa: E402
from h2conf import (DATA, HEADERS, PROTOCOL_ERROR, Fail, continuation, data, headers,  # noqa: E402
                    read_response, verify_stream_error)
from h2peer import literal  # noqa: E402

CASES = []


def case(cid, desc, gap=False):
    def reg(fn):
        CASES.append((cid, desc, fn, gap))
        return fn
    return reg


def req(c, method="GET", path="/data.json", extra=(), authority=True):
    f = [(":method", method), (":scheme", "http"), (":path", path)]
    if authority:
        f.append((":authority", c.authority))
    return f + list(extra)


def raw(fields):
    return b"".join(literal(n, v) for n, v in fields)


def expect_refused(c, sid=1):
    """Malformed (RFC 9113 §8.1.1): a stream error PROTOCOL_ERROR, or a 4xx
    answer (a proxy may answer 400 instead of resetting)."""
    while True:
        ev = c.event()
        if ev[0] == "closed":
            return hc.note(c, "connection closed")
        if ev[0] == "timeout":
            raise Fail("RST_STREAM PROTOCOL_ERROR or a 4xx", hc.ev_str(ev))
        t, fl, s, p = ev[1]
        if t == hc.RST_STREAM and s == sid:
            code = int.from_bytes(p[-4:], "big")
            if code == PROTOCOL_ERROR:
                return hc.note(c, "RST_STREAM PROTOCOL_ERROR")
            raise Fail("RST_STREAM PROTOCOL_ERROR or a 4xx", hc.ev_str(ev))
        if t == hc.GOAWAY:
            return hc.note(c, hc.ev_str(ev))
        if t == HEADERS and s == sid:
            got = dict((k.decode(), v.decode()) for k, v in c.dec.decode(hc.strip(fl, p), raw=True))
            st = got.get(":status", "")
            if st.startswith("4"):
                return hc.note(c, "status %s" % st)
            raise Fail("RST_STREAM PROTOCOL_ERROR or a 4xx", "status %s" % st)


def expect_status(c, want, sid=1):
    st, fields, body = read_response(c, sid)
    if isinstance(want, int):
        want = (want,)
    if st not in want:
        raise Fail("status %s" % " or ".join(map(str, want)), "status %s (%r)" % (st, body[:80]))
    hc.note(c, "status %s, %d body bytes" % (st, len(body)))
    return st, fields, body


# ---- passing behaviour (RFC-backed) -------------------------------------------------

@case("host-only", "no :authority, a host field: served (RFC 9113 §8.3.1, host stands in)")
def c_host_only(c):
    c.send(headers(1, c.block(req(c, authority=False, extra=[("host", c.authority)]))))
    expect_status(c, 200)


@case("te-trailers", "te: trailers is the one TE value allowed (RFC 9113 §8.2.2)")
def c_te_trailers(c):
    c.send(headers(1, c.block(req(c, extra=[("te", "trailers")]))))
    expect_status(c, 200)


@case("head-no-data", "a HEAD response carries no DATA payload (RFC 9110 §9.3.2)")
def c_head(c):
    c.send(headers(1, c.block(req(c, method="HEAD"))))
    st, fields, body = expect_status(c, 200)
    if body:
        raise Fail("no body bytes on HEAD", "%d bytes" % len(body))


@case("options-star", "OPTIONS with :path * is well-formed (RFC 9113 §8.3.1): answered, not reset")
def c_options_star(c):
    c.send(headers(1, c.block(req(c, method="OPTIONS", path="*"))))
    st, _, _ = read_response(c, 1)
    if st is None or st >= 500:
        raise Fail("an answer below 500", st)
    hc.note(c, "status %s" % st)


@case("connect-plain", "CONNECT (:method, :authority only, RFC 9113 §8.5): refused with 405/501, not served")
def c_connect(c):
    c.send(headers(1, c.block([(":method", "CONNECT"), (":authority", "example.com:443")]), es=False))
    expect_status(c, (405, 501))


@case("trailer-uppercase", "request trailers with an uppercase name are malformed (RFC 9113 §8.2.1)")
def c_trailer_upper(c):
    c.send(headers(1, c.block(req(c, method="POST")), es=False), data(1, b"abc", es=False),
           headers(1, raw([("X-Trailer", "1")])))
    verify_stream_error(c, PROTOCOL_ERROR)


@case("trailer-connection", "request trailers with a connection-specific field are malformed (RFC 9113 §8.2.2)")
def c_trailer_conn(c):
    c.send(headers(1, c.block(req(c, method="POST")), es=False), data(1, b"abc", es=False),
           headers(1, c.block([("connection", "close")])))
    verify_stream_error(c, PROTOCOL_ERROR)


@case("cl-not-number", "content-length that is not a number is malformed (RFC 9110 §8.6, RFC 9113 §8.1.1)")
def c_cl_nan(c):
    c.send(headers(1, c.block(req(c, method="POST", extra=[("content-length", "abc")])), es=False),
           data(1, b"abc"))
    expect_refused(c)


@case("value-crlf-trailer", "a CR LF inside a trailer value is malformed (RFC 9113 §8.2.1)")
def c_trailer_crlf(c):
    c.send(headers(1, c.block(req(c, method="POST")), es=False), data(1, b"abc", es=False),
           headers(1, raw([("x-t", "a\r\nhost: evil")])))
    verify_stream_error(c, PROTOCOL_ERROR)


# ---- malformed requests refused -------------------------------------------------------

@case("authority-host-differ", ":authority and a different host field: malformed (RFC 9113 §8.3.1 SHOULD)")
def c_auth_host(c):
    c.send(headers(1, c.block(req(c, extra=[("host", "evil.example")]))))
    expect_refused(c)


@case("connect-with-path", "CONNECT with :scheme and :path is malformed (RFC 9113 §8.5 MUST omit)")
def c_connect_path(c):
    c.send(headers(1, c.block([(":method", "CONNECT"), (":scheme", "http"), (":path", "/"),
                               (":authority", "example.com:443")]), es=False))
    expect_refused(c)


@case("connect-no-authority", "CONNECT without :authority is malformed (RFC 9113 §8.5)")
def c_connect_noauth(c):
    c.send(headers(1, c.block([(":method", "CONNECT")]), es=False))
    expect_refused(c)


@case("protocol-pseudo", ":protocol without SETTINGS_ENABLE_CONNECT_PROTOCOL is malformed (RFC 8441 §4, RFC 9113 §8.3)")
def c_protocol(c):
    c.send(headers(1, c.block(req(c, extra=[]) [:4] + [(":protocol", "websocket")])))
    expect_refused(c)


@case("value-leading-space", "a field value starting with a space is malformed (RFC 9113 §8.2.1)")
def c_lead_ws(c):
    c.send(headers(1, raw(req(c) + [("x-test", " padded")])))
    expect_refused(c)


@case("value-trailing-tab", "a field value ending with a tab is malformed (RFC 9113 §8.2.1)")
def c_trail_ws(c):
    c.send(headers(1, raw(req(c) + [("x-test", "padded\t")])))
    expect_refused(c)


@case("path-no-slash", ":path not starting with / (not OPTIONS *) is malformed (RFC 9113 §8.3.1)")
def c_path_noslash(c):
    c.send(headers(1, c.block(req(c, path="data.json"))))
    expect_refused(c)


@case("path-star-get", ":path * on a GET is malformed (RFC 9113 §8.3.1: only OPTIONS)")
def c_path_star(c):
    c.send(headers(1, c.block(req(c, path="*"))))
    expect_refused(c)


@case("authority-userinfo", ":authority with userinfo is refused (RFC 9113 §8.3.1 MUST NOT, RFC 9110 §4.2.4)")
def c_userinfo(c):
    c.send(headers(1, c.block([(":method", "GET"), (":scheme", "http"), (":path", "/data.json"),
                               (":authority", "user:pw@" + c.authority)])))
    expect_refused(c)


@case("authority-space", ":authority with a space is not a valid authority (RFC 9110 §4.2.3, RFC 3986 §3.2)")
def c_auth_space(c):
    c.send(headers(1, c.block([(":method", "GET"), (":scheme", "http"), (":path", "/data.json"),
                               (":authority", "a b")])))
    expect_refused(c)


def _bad_authority(value, in_host=False):
    def fn(c):
        if in_host:
            f = req(c, authority=False, extra=[("host", value)])
        else:
            f = [(":method", "GET"), (":scheme", "http"), (":path", "/data.json"), (":authority", value)]
        c.send(headers(1, c.block(f)))
        expect_refused(c)
    return fn


for _cid, _v, _host in (("authority-slash", "evil.example/@x", False),
                        ("authority-bad-port", "example.com:8o", False),
                        ("authority-big-port", "example.com:99999", False),
                        ("authority-open-bracket", "[::1", False),
                        ("host-field-invalid", "a b", True)):
    case(_cid, "%s %r is invalid (RFC 9110 §4.2.3, RFC 3986 §3.2.2): 400 or PROTOCOL_ERROR, as on HTTP/1.1"
         % ("host" if _host else ":authority", _v))(_bad_authority(_v, _host))


@case("authority-v6-port", ":authority [::1]:port is valid: served")
def c_auth_v6(c):
    c.send(headers(1, c.block([(":method", "GET"), (":scheme", "http"), (":path", "/data.json"),
                               (":authority", "[::1]:8080")])))
    expect_status(c, 200)


@case("expect-other", "an Expect other than 100-continue gets 417 (RFC 9110 §10.1.1 MAY)")
def c_expect_other(c):
    c.send(headers(1, c.block(req(c, extra=[("expect", "teapot")]))))
    expect_status(c, 417)


@case("header-list-431", "a header list over p's limit gets 431, as on HTTP/1.1 (RFC 6585 §5, RFC 9113 §10.5.1), and the connection goes on")
def c_list_too_large(c):
    # 80 fields of 1 KiB: over the 64 KiB list limit, under the 128 KiB block
    # limit; sent as HEADERS + CONTINUATIONs of at most 16 KiB.
    block = c.block(req(c, extra=[("x-filler-%02d" % i, "v" * 1024) for i in range(80)]))
    parts = [block[i:i + 16000] for i in range(0, len(block), 16000)]
    frames = [headers(1, parts[0], eh=len(parts) == 1)]
    for k, part in enumerate(parts[1:], 1):
        frames.append(continuation(1, part, eh=k == len(parts) - 1))
    c.send(*frames)
    expect_status(c, 431)
    c.send(headers(3, c.block(req(c))))
    expect_status(c, 200, sid=3)


# ---- known gaps (run with --gaps): none at the moment ------------------------------------

@case("method-lowercase", "methods are case-sensitive: 'get' is not GET (RFC 9110 §9.1), never served as a GET")
def c_get_lower(c):
    c.send(headers(1, c.block(req(c, method="get"))))
    st, _, body = read_response(c, 1)
    if st is None or st == 200:
        raise Fail("an error status (400/405/501)", "%s with %d body bytes" % (st, len(body)))
    hc.note(c, "status %s" % st)


@case("after-malformed", "after all that, a GET on a new connection is served")
def c_after(c):
    c.send(headers(1, c.block(req(c))))
    expect_status(c, 200)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("port", type=int)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--timeout", type=float, default=3.0)
    ap.add_argument("--only", default=None)
    ap.add_argument("--gaps", action="store_true", help="also run the known-gap cases")
    ap.add_argument("-v", "--verbose", action="store_true")
    opt = ap.parse_args()
    hc.OPT = types.SimpleNamespace(host=opt.host, port=opt.port, timeout=opt.timeout,
                                   verbose=opt.verbose, tls=False)
    bad = 0
    for cid, desc, fn, gap in CASES:
        if opt.only and not re.search(opt.only, cid):
            continue
        if gap and not opt.gaps:
            continue
        verdict, why = hc.run_case(cid, desc, fn, True)
        tag = ("GAP-" if gap else "") + verdict
        print("%s %s %s%s" % (tag, cid, desc, (" " + why if verdict == "PASS" else ": " + why) if why else ""),
              flush=True)
        if verdict == "FAIL":
            bad += 1
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
