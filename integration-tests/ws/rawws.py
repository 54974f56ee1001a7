#!/usr/bin/python3
"""A WebSocket opening handshake by hand, then bytes that are no frames.

    rawws.py HOST PORT AUTHORITY PATH BYTES [tls]

Sends the RFC 6455 section 4.1 handshake to p's HTTP/1.1 front (over TLS with
"tls", any certificate), checks the 101 and that Sec-WebSocket-Accept is
the SHA-1 of the key and the RFC's GUID, then sends BYTES random bytes
(not frames: tether must not parse them), half-closes (FIN; not over TLS,
which has no half-close) and reads to the end.  Behind it an app that pipes the stream back (h2app.js /raw)
returns the same bytes and ends its side, which p must turn into a FIN.
Prints one line per check: "ok NAME what" or "FAIL NAME why".
"""
import base64
import hashlib
import os
import select
import socket
import ssl
import sys

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 section 1.3


def main():
    host, port, authority, path, nbytes = sys.argv[1:6]
    use_tls = len(sys.argv) > 6 and sys.argv[6] == "tls"
    nbytes = int(nbytes)
    sock = socket.create_connection((host, int(port)), timeout=20)
    if use_tls:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.set_alpn_protocols(["http/1.1"])
        sock = ctx.wrap_socket(sock, server_hostname=host)
    key = base64.b64encode(os.urandom(16))
    sock.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: " + authority.encode() +
                 b"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " + key + b"\r\n\r\n")
    head = b""
    while b"\r\n\r\n" not in head:
        d = sock.recv(4096)
        if not d:
            print("FAIL handshake connection closed after %r" % head)
            return 1
        head += d
    head, rest = head.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    fields = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        fields[k.strip().lower()] = v.strip()
    want = base64.b64encode(hashlib.sha1(key + GUID).digest()).decode()
    if not lines[0].startswith("HTTP/1.1 101"):
        print("FAIL handshake status line %r" % lines[0])
        return 1
    if fields.get("sec-websocket-accept") != want:
        print("FAIL accept %r, want %r" % (fields.get("sec-websocket-accept"), want))
        return 1
    print("ok handshake 101 with Sec-WebSocket-Accept %s" % want)

    out = os.urandom(nbytes)
    got = bytearray(rest)
    # One thread, sending and reading as the socket allows: the echo comes
    # back while we still send, so a reader that waited for the whole write
    # would stall both sides, and an SSL object must not be read and
    # written from two threads at once.
    sock.setblocking(False)
    sent, eof, shut = 0, False, False
    try:
        while not eof and not (use_tls and len(got) >= nbytes):
            if sent == len(out) and not shut:
                # TLS has no half-close (close_notify ends the session):
                # over TLS the bytes are checked and the socket closed,
                # without a FIN first.
                if not use_tls:
                    sock.shutdown(socket.SHUT_WR)
                shut = True
            r, w, _ = select.select([sock], [sock] if sent < len(out) else [], [], 20)
            if not r and not w:
                raise OSError("no progress for 20 s")
            if w:
                try:
                    sent += sock.send(out[sent:sent + (1 << 16)])
                except (ssl.SSLWantWriteError, ssl.SSLWantReadError, BlockingIOError):
                    pass
            while r or (use_tls and sock.pending()):
                r = None
                try:
                    d = sock.recv(1 << 16)
                except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
                    break
                if not d:
                    eof = True
                    break
                got += d
    except (OSError, ssl.SSLError) as e:
        print("FAIL raw ended with %s after %d of %d bytes back, %d sent" % (e, len(got), nbytes, sent))
        return 1
    if bytes(got) == out:
        print("ok raw %d bytes back the same%s" % (nbytes, "" if use_tls else ", then FIN after our FIN"))
        return 0
    print("FAIL raw %d bytes back of %d (%d sent), %s" % (len(got), nbytes, sent,
          "a prefix" if out.startswith(bytes(got)) else "different"))
    return 1


if __name__ == "__main__":
    sys.exit(main())
