#!/usr/bin/python3
"""Small HTTP tools for the integration tests, where curl cannot do the job.

  rawhttp.py req HOST PORT [--tls] [--head] [--idle SECS]
      Sends stdin in ONE write (so several requests are pipelined), reads
      until the peer closes or stays silent for --idle seconds, and prints
      what came back, response by response:
          RESPONSE <n>
          STATUS <code>
          HEADER <name>: <value>
          BODY <length> <sha256 hex>
      then "TRAILING <n>" if bytes followed that are not a whole response,
      and finally "END eof" (peer closed) or "END idle" (still open).
      --head: the responses answer HEAD requests (no bodies); without it
      the request lines found in stdin say which responses answer a HEAD.
      Interim 1xx responses are skipped.
  rawhttp.py multipart BODYFILE CONTENT_TYPE ORIGFILE RANGE...
      Checks a multipart/byteranges body: one part per RANGE (as written in
      the Range header: "A-B", "A-" or "-N"), in order, each with the right
      Content-Range and exactly the original's bytes.  Exit 1 on any mismatch.
  rawhttp.py links HTMLFILE BASEURL
      Prints "<href>\t<absolute url>" for every <a href> of a listing.
  rawhttp.py quote TEXT
      Percent-encodes a path (keeps "/").
"""
import hashlib
import re
import socket
import ssl
import sys
import time
import urllib.parse
from html.parser import HTMLParser


def read_all(sock, idle):
    data = b""
    sock.settimeout(idle)
    how = "idle"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            break
        except (ConnectionResetError, ssl.SSLError):
            how = "eof"
            break
        if not chunk:
            how = "eof"
            break
        data += chunk
    return data, how


def parse_responses(data, head, methods=()):
    out = []
    pos = 0
    n = 0
    while pos < len(data):
        is_head = head or (n < len(methods) and methods[n] == "HEAD")
        end = data.find(b"\r\n\r\n", pos)
        if end < 0:
            break
        lines = data[pos:end].decode("latin-1").split("\r\n")
        try:
            status = int(lines[0].split(" ")[1])
        except (IndexError, ValueError):
            break
        hdrs = []
        for line in lines[1:]:
            name, _, value = line.partition(":")
            hdrs.append((name.strip(), value.strip()))
        lower = {k.lower(): v for k, v in hdrs}
        body_start = end + 4
        body = b""
        if 100 <= status < 200:
            # an interim response (100 Continue): not counted, no body
            pos = body_start
            continue
        if is_head or status in (204, 304):
            nxt = body_start
        elif "chunked" in lower.get("transfer-encoding", "").lower():
            p = body_start
            complete = False
            while True:
                le = data.find(b"\r\n", p)
                if le < 0:
                    break
                size = int(data[p:le].split(b";")[0], 16)
                if size == 0:
                    te = data.find(b"\r\n\r\n", le)
                    if le + 2 <= len(data) and data[le + 2:le + 4] == b"\r\n":
                        p = le + 4
                        complete = True
                    elif te >= 0:
                        p = te + 4
                        complete = True
                    break
                if le + 2 + size + 2 > len(data):
                    break
                body += data[le + 2:le + 2 + size]
                p = le + 2 + size + 2
            if not complete:
                break
            nxt = p
        elif "content-length" in lower:
            cl = int(lower["content-length"])
            if body_start + cl > len(data):
                break
            body = data[body_start:body_start + cl]
            nxt = body_start + cl
        else:
            # read until close
            body = data[body_start:]
            nxt = len(data)
        n += 1
        out.append((n, status, hdrs, body))
        pos = nxt
    return out, len(data) - pos


def cmd_req(args):
    host, port = args[0], int(args[1])
    tls = "--tls" in args
    head = "--head" in args
    idle = 3.0
    if "--idle" in args:
        idle = float(args[args.index("--idle") + 1])
    payload = sys.stdin.buffer.read()
    sock = socket.create_connection((host, port), timeout=10)
    if tls:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        sock = ctx.wrap_socket(sock, server_hostname=host)
    sock.sendall(payload)
    data, how = read_all(sock, idle)
    sock.close()
    methods = re.findall(rb"(?m)^([A-Z]+) \S+ HTTP/1\.[01]\r$", payload)
    methods = [m.decode() for m in methods]
    responses, trailing = parse_responses(data, head, methods)
    for n, status, hdrs, body in responses:
        print("RESPONSE %d" % n)
        print("STATUS %d" % status)
        for k, v in hdrs:
            print("HEADER %s: %s" % (k, v))
        print("BODY %d %s" % (len(body), hashlib.sha256(body).hexdigest()))
    if trailing:
        print("TRAILING %d" % trailing)
    print("END %s" % how)
    return 0


def resolve_range(spec, size):
    a, _, b = spec.partition("-")
    if a == "":
        n = int(b)
        return max(0, size - n), size - 1
    start = int(a)
    end = size - 1 if b == "" else min(int(b), size - 1)
    return start, end


def cmd_multipart(args):
    body = open(args[0], "rb").read()
    ctype = args[1]
    orig = open(args[2], "rb").read()
    ranges = args[3:]
    size = len(orig)
    errors = []
    if not ctype.lower().startswith("multipart/byteranges"):
        errors.append("content-type is %r, not multipart/byteranges" % ctype)
    boundary = None
    for param in ctype.split(";")[1:]:
        k, _, v = param.strip().partition("=")
        if k.lower() == "boundary":
            boundary = v.strip('"')
    if not boundary:
        print("multipart: no boundary in %r" % ctype)
        return 1
    delim = b"--" + boundary.encode()
    pieces = body.split(delim)
    # pieces[0] is the preamble, the last one starts with "--" (close delimiter)
    if len(pieces) < 2 or not pieces[-1].startswith(b"--"):
        errors.append("no closing delimiter --%s--" % boundary)
    parts = pieces[1:-1]
    if len(parts) != len(ranges):
        errors.append("%d parts, expected %d" % (len(parts), len(ranges)))
    for i, (part, spec) in enumerate(zip(parts, ranges)):
        if part.startswith(b"\r\n"):
            part = part[2:]
        he = part.find(b"\r\n\r\n")
        if he < 0:
            errors.append("part %d: no header end" % i)
            continue
        hdrs = {}
        for line in part[:he].decode("latin-1").split("\r\n"):
            k, _, v = line.partition(":")
            hdrs[k.strip().lower()] = v.strip()
        data = part[he + 4:]
        if data.endswith(b"\r\n"):
            data = data[:-2]
        start, end = resolve_range(spec, size)
        want_cr = "bytes %d-%d/%d" % (start, end, size)
        if hdrs.get("content-range") != want_cr:
            errors.append("part %d: Content-Range %r, expected %r" % (i, hdrs.get("content-range"), want_cr))
        if data != orig[start:end + 1]:
            errors.append("part %d: %d bytes differ from the original's %d-%d" % (i, len(data), start, end))
        else:
            print("part %d %s ok (%d bytes)" % (i, want_cr, len(data)))
    for e in errors:
        print("multipart: " + e)
    return 1 if errors else 0


class LinkParser(HTMLParser):
    def __init__(self):
        super().__init__()
        self.hrefs = []

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            for k, v in attrs:
                if k == "href" and v is not None:
                    self.hrefs.append(v)


def cmd_links(args):
    html = open(args[0], "rb").read().decode("utf-8", "replace")
    base = args[1]
    p = LinkParser()
    p.feed(html)
    for h in p.hrefs:
        print("%s\t%s" % (h, urllib.parse.urljoin(base, h)))
    return 0


def main():
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "req":
        return cmd_req(args)
    if cmd == "multipart":
        return cmd_multipart(args)
    if cmd == "links":
        return cmd_links(args)
    if cmd == "quote":
        print(urllib.parse.quote(args[0], safe="/"))
        return 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main())
