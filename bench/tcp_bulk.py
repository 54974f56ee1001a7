#!/usr/bin/python3
"""Scenario 9's TCP service and client (bench/run.sh): bulk bytes over one
TCP connection, at C speed (os.sendfile out of a file, recv_into a 4 MiB
buffer in), so the tool is not what is measured.

  tcp_bulk.py pattern FILE SIZE           write SIZE random bytes to FILE (once)
  tcp_bulk.py serve PORTFILE PATTERN      listen on 127.0.0.1:0, write the port
  tcp_bulk.py client HOST:PORT DIR N PATTERN [--sum]

Per connection the client sends one line, "DIR N [sum]\\n":
  up N    the client sends N bytes (PATTERN over and over, by sendfile) and
          half-closes; the service counts them to EOF and answers
          "ok COUNT [SHA256]\\n"; the client's time ends at that answer.
  down N  the service sends N bytes the same way and closes; the client
          counts them to EOF; its time ends at EOF.
With "sum" the receiving side also hashes what came (SHA-256, slower: the
check before the timed passes), and the client checks it against PATTERN's.
The client prints one JSON line: dir, bytes, secs, mb_per_s (MB = 10^6 B),
and exits 1 on a short count or a wrong digest.
"""
import hashlib
import json
import os
import socket
import sys
import threading
import time

BUF = int(os.environ.get("TCP_BULK_BUF", 4 << 20))


def expected_sha(pattern, n):
    h = hashlib.sha256()
    with open(pattern, "rb") as f:
        data = f.read()
    while n > 0:
        k = min(n, len(data))
        h.update(data[:k])
        n -= k
    return h.hexdigest()


def send_n(sock, pattern, n):
    fd = os.open(pattern, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        off = 0
        while n > 0:
            if off >= size:
                off = 0
            k = os.sendfile(sock.fileno(), fd, off, min(n, size - off))
            if k <= 0:
                raise OSError("sendfile sent nothing")
            off += k
            n -= k
    finally:
        os.close(fd)


def recv_all(sock, want_sum):
    buf = bytearray(BUF)
    mv = memoryview(buf)
    h = hashlib.sha256() if want_sum else None
    got = 0
    while True:
        k = sock.recv_into(mv, BUF)
        if k == 0:
            return got, (h.hexdigest() if h else "")
        got += k
        if h:
            h.update(mv[:k])


def readline(sock):
    line = b""
    while not line.endswith(b"\n"):
        b = sock.recv(1)
        if not b:
            break
        line += b
    return line.decode("ascii", "replace").strip()


def handle(conn, pattern):
    try:
        parts = readline(conn).split()
        if len(parts) < 2:
            return
        d, n, want_sum = parts[0], int(parts[1]), len(parts) > 2 and parts[2] == "sum"
        if d == "up":
            got, sha = recv_all(conn, want_sum)
            conn.sendall(f"ok {got} {sha}\n".encode())
        elif d == "down":
            send_n(conn, pattern, n)
            conn.shutdown(socket.SHUT_WR)
            # wait for the client's close, so no unsent byte is reset away
            conn.settimeout(30)
            while conn.recv(65536):
                pass
    except OSError as e:
        print(f"tcp_bulk serve: {e}", file=sys.stderr)
    finally:
        conn.close()


def serve(portfile, pattern):
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", 0))
    ls.listen(64)
    with open(portfile + ".tmp", "w") as f:
        f.write(f"{ls.getsockname()[1]}\n")
    os.rename(portfile + ".tmp", portfile)
    while True:
        conn, _ = ls.accept()
        threading.Thread(target=handle, args=(conn, pattern), daemon=True).start()


def client(addr, d, n, pattern, want_sum):
    host, port = addr.rsplit(":", 1)
    t0 = time.perf_counter()
    s = socket.create_connection((host, int(port)), timeout=30)
    s.settimeout(None)   # blocking: sendfile on a socket with a timeout fails with EAGAIN
    s.sendall(f"{d} {n}{' sum' if want_sum else ''}\n".encode())
    ok, why, sha = True, "", ""
    if d == "up":
        send_n(s, pattern, n)
        s.shutdown(socket.SHUT_WR)
        ans = readline(s).split()
        t1 = time.perf_counter()
        got = int(ans[1]) if len(ans) >= 2 and ans[0] == "ok" else -1
        sha = ans[2] if len(ans) >= 3 else ""
    else:
        got, sha = recv_all(s, want_sum)
        t1 = time.perf_counter()
    s.close()
    if got != n:
        ok, why = False, f"{got} of {n} bytes"
    elif want_sum and sha != expected_sha(pattern, n):
        ok, why = False, f"sha256 {sha} is not the pattern's"
    secs = t1 - t0
    out = {"dir": d, "bytes": got, "secs": round(secs, 4),
           "mb_per_s": round(got / secs / 1e6, 1) if secs > 0 else 0}
    if not ok:
        out["error"] = why
    print(json.dumps(out))
    return 0 if ok else 1


def main(a):
    if len(a) == 3 and a[0] == "pattern":
        with open(a[1] + ".tmp", "wb") as f:
            f.write(os.urandom(int(a[2])))
        os.rename(a[1] + ".tmp", a[1])
        return 0
    if len(a) == 3 and a[0] == "serve":
        serve(a[1], a[2])
        return 0
    if len(a) in (5, 6) and a[0] == "client" and a[2] in ("up", "down"):
        return client(a[1], a[2], int(a[3]), a[4], len(a) == 6 and a[5] == "--sum")
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
