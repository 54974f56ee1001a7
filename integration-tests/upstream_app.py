#!/usr/bin/python3
"""A tiny HTTP/1.1 app behind `c --upstream http://...` (test-40).

  upstream_app.py PORTFILE

Binds 127.0.0.1 on a free port, writes the port to PORTFILE, serves until
killed.  Keep-alive (HTTP/1.1), one thread per connection.

  GET  /hello        a known body ("hello from the app\\n" x 1000)
  GET  /bytes?n=N    N deterministic bytes (i % 251)
  POST /echo         the request body back (Content-Length or chunked),
                     with x-body-sha256 and x-body-framing (length|chunked)
  GET  /chunked      a chunked body (10 chunks) with trailers
                     x-checksum: sha256 of the body, x-done: yes
  GET  /slow         an endless chunked stream, 4 KiB every 20 ms
  GET  /die          Content-Length 100000, 1000 bytes, then the close
  GET  /headers      the request's fields as "name: value" lines
  GET  /conns        how many TCP connections the app has accepted
  GET  /status/N     an empty answer with status N (204, 304 ...)
  GET  /early-hints[?n=N]  interim responses, then 200 "early hints done\n":
                     a 100 Continue nobody asked for, then N (default 1)
                     x "103 Early Hints" with Link: </style.css>; rel=preload
                     and X-Hint: I (the first also with Connection: X-Hop,
                     X-Hop: 1 and Content-Length: 5), then one 102
                     Processing (test-42);
                     a request body, if any, is read first
"""
import hashlib
import http.server
import socketserver
import sys
import threading
import time

CONNS = 0
LOCK = threading.Lock()
HELLO = b"hello from the app\n" * 1000


def pattern(n):
    block = bytes(i % 251 for i in range(251 * 64))
    out = bytearray()
    while len(out) < n:
        out += block
    return bytes(out[:n])


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self):
        global CONNS
        with LOCK:
            CONNS += 1
        super().setup()

    def log_message(self, fmt, *args):
        sys.stderr.write("app: " + (fmt % args) + "\n")

    def send_body(self, body, ctype="application/octet-stream", extra=()):
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = bytearray()
            while True:
                line = self.rfile.readline()
                size = int(line.split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(out), "chunked"
                out += self.rfile.read(size)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length", "0"))
        return self.rfile.read(n), "length"

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        path = self.path
        if path == "/hello":
            self.send_body(HELLO, "text/plain", [("Connection", "keep-alive, X-Hop"), ("X-Hop", "1"),
                                                  ("Keep-Alive", "timeout=60")])
        elif path.startswith("/bytes?n="):
            self.send_body(pattern(int(path.split("=", 1)[1])))
        elif path == "/conns":
            self.send_body(str(CONNS).encode(), "text/plain")
        elif path == "/headers":
            lines = "".join("%s: %s\n" % (k.lower(), v) for k, v in self.headers.items())
            self.send_body(("%s %s\n" % (self.command, self.path) + lines).encode(), "text/plain")
        elif path.startswith("/status/"):
            self.send_response(int(path.split("/")[2]))
            self.send_header("X-Empty", "yes")
            self.end_headers()
        elif path == "/early-hints" or path.startswith("/early-hints?n="):
            n = int(path.split("=", 1)[1]) if "=" in path else 1
            self.read_body()  # a request body, if any (Expect tests)
            raw = b"HTTP/1.1 100 Continue\r\n\r\n"
            for i in range(n):
                raw += b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n"
                raw += b"X-Hint: %d\r\n" % (i + 1)
                if i == 0:
                    # Content-Length on a 1xx frames nothing (RFC 9112
                    # §6.3): c must not read 5 body bytes here.
                    raw += b"Connection: X-Hop\r\nX-Hop: 1\r\nContent-Length: 5\r\n"
                raw += b"\r\n"
            raw += b"HTTP/1.1 102 Processing\r\n\r\n"
            self.wfile.write(raw)
            self.wfile.flush()
            self.send_body(b"early hints done\n", "text/plain")
        elif path == "/chunked":
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Transfer-Encoding", "chunked")
            self.send_header("Trailer", "x-checksum, x-done")
            self.end_headers()
            if self.command == "HEAD":
                return
            h = hashlib.sha256()
            for i in range(10):
                chunk = ("chunk %d " % i).encode() * (100 * (i + 1))
                h.update(chunk)
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.flush()
            self.wfile.write(b"0\r\nx-checksum: %s\r\nx-done: yes\r\n\r\n" % h.hexdigest().encode())
        elif path == "/slow":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            chunk = b"s" * 4096
            try:
                while True:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    self.wfile.flush()
                    time.sleep(0.02)
            except OSError:
                sys.stderr.write("app: /slow client went away\n")
                self.close_connection = True
        elif path == "/die":
            self.send_response(200)
            self.send_header("Content-Length", "100000")
            self.end_headers()
            self.wfile.write(b"d" * 1000)
            self.wfile.flush()
            self.close_connection = True
        else:
            self.send_response(404)
            self.send_header("Content-Length", "10")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(b"not found\n")

    def do_POST(self):
        if self.path != "/echo":
            self.send_error(404)
            return
        body, framing = self.read_body()
        self.send_body(body, extra=[("X-Body-Sha256", hashlib.sha256(body).hexdigest()),
                                    ("X-Body-Framing", framing)])

    do_PUT = do_POST


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    srv = Server(("127.0.0.1", 0), Handler)
    with open(sys.argv[1] + ".tmp", "w") as f:
        f.write(str(srv.server_address[1]))
    import os
    os.rename(sys.argv[1] + ".tmp", sys.argv[1])
    srv.serve_forever()


if __name__ == "__main__":
    main()
