#!/usr/bin/python3
"""Raw HTTP/1.1 probes for test-19 (what rawhttp.py req cannot do).

  h1probe.py PORT [--idle SECS] [--shut] [--expect100] [--trickle SECS] [--split N]

Sends stdin to 127.0.0.1:PORT and prints what came back in rawhttp.py's
format (RESPONSE / STATUS / HEADER / BODY / TRAILING / END eof|idle|reset),
after "INTERIM <code>" lines for every 1xx response seen (rawhttp skips them).

  --shut       shutdown(SHUT_WR) once everything is sent (a half-closed client)
  --expect100  send stdin up to the end of the first head, wait (at most
               --idle) for an interim response, then send the rest
  --split N    send stdin's first N bytes, wait 0.3 s, then the rest (so the
               server reads them apart)
  --trickle S  after stdin, keep sending one byte ("a") every 0.5 s for at most
               S seconds while nothing comes back (a slowloris head)
"""
import hashlib
import os
import re
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rawhttp import parse_responses  # noqa: E402


def main():
    a = sys.argv[1:]
    port = int(a[0])
    idle = float(a[a.index("--idle") + 1]) if "--idle" in a else 3.0
    trickle = float(a[a.index("--trickle") + 1]) if "--trickle" in a else 0.0
    payload = sys.stdin.buffer.read()
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    data = b""
    how = "idle"
    rest = b""
    if "--expect100" in a:
        end = payload.find(b"\r\n\r\n") + 4
        payload, rest = payload[:end], payload[end:]
    if "--split" in a:
        cut = int(a[a.index("--split") + 1])
        s.sendall(payload[:cut])
        time.sleep(0.3)
        try:
            s.sendall(payload[cut:])
        except OSError:
            pass
    else:
        s.sendall(payload)
    if "--expect100" in a:
        s.settimeout(idle)
        try:
            while b"\r\n\r\n" not in data:
                b = s.recv(65536)
                if not b:
                    break
                data += b
        except socket.timeout:
            pass
        try:
            s.sendall(rest)
        except OSError:
            pass
    if trickle:
        t0 = time.time()
        s.settimeout(0.5)
        while time.time() - t0 < trickle:
            try:
                b = s.recv(65536)
                if not b:
                    how = "eof"
                    break
                data += b
                break
            except socket.timeout:
                pass
            except ConnectionResetError:
                how = "reset"
                break
            try:
                s.send(b"a")
            except OSError:
                how = "reset"
                break
    if "--shut" in a:
        try:
            s.shutdown(socket.SHUT_WR)
        except OSError:
            pass
    if how == "idle":
        s.settimeout(idle)
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                b = s.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                how = "reset"
                break
            if not b:
                how = "eof"
                break
            data += b
    s.close()
    for m in re.finditer(rb"HTTP/1\.[01] (1\d\d)[^\r\n]*\r\n", data):
        print("INTERIM %s" % m.group(1).decode())
    methods = [m.decode() for m in re.findall(rb"(?m)^([A-Za-z]+) \S+ HTTP/\d\.\d+\r?$", payload + rest)]
    responses, trailing = parse_responses(data, False, methods)
    for n, status, hdrs, body in responses:
        print("RESPONSE %d" % n)
        print("STATUS %d" % status)
        for k, v in hdrs:
            print("HEADER %s: %s" % (k, v))
        print("BODY %d %s" % (len(body), hashlib.sha256(body).hexdigest()))
        sys.stdout.buffer.write(b"BODYTEXT " + body[:400].replace(b"\n", b"\\n") + b"\n")
    if trailing:
        print("TRAILING %d" % trailing)
    print("END %s" % how)
    return 0


if __name__ == "__main__":
    sys.exit(main())
