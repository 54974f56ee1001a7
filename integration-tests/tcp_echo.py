#!/usr/bin/env python3
"""TCP servers and clients for test-46-tcp.sh (127.0.0.1 only, bounded in time).

Servers (bind 127.0.0.1:0, write the port to PORTFILE once listening):
  serve echo PORTFILE   echoes every byte back; at the client's EOF, closes
  serve half PORTFILE   reads to the client's EOF, waits 0.5 s, then sends
                        half_reply(what it read) and closes
  serve close PORTFILE  accepts and closes at once (stands in for "no origin"
                        when the harness runs without tether)

Clients (exit 0 and print "ok: ..." when the check holds, else exit 1 and
print what was expected and seen):
  many HOST:PORT N          N connections at once to an echo server, each
                            sending its own bytes (a few 2 MiB, most smaller,
                            written while reading); each must get exactly
                            them back
  half HOST:PORT            sends 300 KB, shutdown(SHUT_WR), reads to EOF: the
                            whole half_reply must arrive, then EOF
  closed HOST:PORT SECS     connects, sends nothing: the peer must end the
                            connection (EOF or reset) within SECS
  slow HOST:PORT            24 MiB to an echo server, read with a 2 s stall
                            after 8 MiB: every byte must come back
  idle HOST:PORT N READY GO SECS
                            N connections to an echo server, one round trip
                            each; then writes READY and waits (up to 60 s)
                            for the file GO; from then every connection must
                            end (EOF or reset) within SECS, idle, with nothing
                            sent
"""
import hashlib
import os
import random
import select
import socket
import socketserver
import sys
import threading
import time


def addr_of(s):
    host, port = s.rsplit(":", 1)
    return host, int(port)


def half_reply(data):
    head = ("got %d bytes sha256 %s\n" % (len(data), hashlib.sha256(data).hexdigest())).encode()
    return head + random.Random(46).randbytes(1 << 20) + b"\nend of reply\n"


# ---------------------------------------------------------------- servers

class Echo(socketserver.BaseRequestHandler):
    def handle(self):
        s = self.request
        try:
            while True:
                b = s.recv(65536)
                if not b:
                    break
                s.sendall(b)
            s.shutdown(socket.SHUT_WR)
        except OSError:
            pass


class Half(socketserver.BaseRequestHandler):
    def handle(self):
        s = self.request
        got = bytearray()
        try:
            while True:
                b = s.recv(65536)
                if not b:
                    break
                got += b
            time.sleep(0.5)  # the reply comes well after the client's FIN
            reply = half_reply(bytes(got))
            for i in range(0, len(reply), 50000):
                s.sendall(reply[i:i + 50000])
            s.shutdown(socket.SHUT_WR)
        except OSError:
            pass


class Close(socketserver.BaseRequestHandler):
    def handle(self):
        pass


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256


def serve(mode, portfile):
    handler = {"echo": Echo, "half": Half, "close": Close}[mode]
    srv = Server(("127.0.0.1", 0), handler)
    tmp = portfile + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % srv.server_address[1])
    os.rename(tmp, portfile)
    srv.serve_forever()


# ---------------------------------------------------------------- clients

def recv_to_eof(s, deadline, limit=1 << 30):
    got = bytearray()
    while len(got) <= limit:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("no EOF in time (%d bytes so far)" % len(got))
        s.settimeout(left)
        b = s.recv(262144)
        if not b:
            return bytes(got)
        got += b
    raise ValueError("more than %d bytes" % limit)


def many(target, n):
    n = int(n)
    sizes = [(2 << 20) if i % 10 == 0 else 20000 + i * 3001 for i in range(n)]
    barrier = threading.Barrier(n, timeout=30)
    results = [None] * n

    def one(i):
        try:
            data = random.Random(1000 + i).randbytes(sizes[i])
            s = socket.create_connection(target, timeout=30)
            barrier.wait()  # all N connections are open before any sends
            err = []

            def send():
                try:
                    s.sendall(data)
                except OSError as e:
                    err.append(e)

            t = threading.Thread(target=send, daemon=True)
            t.start()
            got = bytearray()
            deadline = time.monotonic() + 40
            while len(got) < len(data):
                s.settimeout(max(0.01, deadline - time.monotonic()))
                b = s.recv(262144)
                if not b:
                    break
                got += b
            t.join(5)
            s.close()
            if err:
                results[i] = "send failed: %r" % err[0]
            elif bytes(got) != data:
                results[i] = "got %d bytes (sha %s), sent %d (sha %s)" % (
                    len(got), hashlib.sha256(got).hexdigest()[:12], len(data),
                    hashlib.sha256(data).hexdigest()[:12])
            else:
                results[i] = True
        except Exception as e:  # noqa: BLE001 - every failure is reported
            results[i] = "%s: %s" % (type(e).__name__, e)
            try:
                barrier.abort()
            except Exception:  # noqa: BLE001
                pass

    t0 = time.monotonic()
    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    dt = time.monotonic() - t0
    bad = [(i, r) for i, r in enumerate(results) if r is not True]
    total = sum(sizes)
    if bad:
        print("FAIL: %d of %d connections wrong, e.g. %s" % (
            len(bad), n, "; ".join("#%d %s" % b for b in bad[:3])))
        return 1
    print("ok: %d connections at once, each got its own %d..%d bytes back (%.1f MB in all, %.1f s)" % (
        n, min(sizes), max(sizes), total / 1e6, dt))
    return 0


def half(target):
    data = random.Random(7).randbytes(300000)
    want = half_reply(data)
    s = socket.create_connection(target, timeout=10)
    s.sendall(data)
    s.shutdown(socket.SHUT_WR)
    t0 = time.monotonic()
    try:
        got = recv_to_eof(s, t0 + 20)
    except Exception as e:  # noqa: BLE001
        print("FAIL: after our SHUT_WR: %s: %s" % (type(e).__name__, e))
        return 1
    s.close()
    if got != want:
        print("FAIL: reply of %d bytes (first line %r), expected %d bytes (%r)" % (
            len(got), got.split(b"\n", 1)[0][:80], len(want), want.split(b"\n", 1)[0]))
        return 1
    print("ok: sent 300000 bytes, half-closed, then got the whole %d-byte reply and EOF (%.1f s after SHUT_WR)" % (
        len(got), time.monotonic() - t0))
    return 0


def ended(s, deadline):
    """How an idle connection ended: ('eof'|'reset'|'timeout', when (monotonic))."""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return "timeout", time.monotonic()
        r, _, _ = select.select([s], [], [], left)
        if not r:
            continue
        try:
            b = s.recv(65536)
        except ConnectionResetError:
            return "reset", time.monotonic()
        except OSError as e:
            return "error(%s)" % e.__class__.__name__, time.monotonic()
        if not b:
            return "eof", time.monotonic()
        # bytes from a peer that should be gone: keep reading to the end


def closed(target, secs):
    secs = float(secs)
    t0 = time.monotonic()
    try:
        s = socket.create_connection(target, timeout=5)
    except OSError as e:
        print("FAIL: connect: %s (the port should accept, then close)" % e)
        return 1
    how, _ = ended(s, t0 + secs)
    dt = time.monotonic() - t0
    s.close()
    if how == "timeout":
        print("FAIL: the connection was still open after %.1f s" % secs)
        return 1
    print("ok: accepted, then closed by the peer (%s) after %.2f s" % (how, dt))
    return 0


def idle(target, n, ready, go, secs):
    n, secs = int(n), float(secs)
    socks = []
    for i in range(n):
        s = socket.create_connection(target, timeout=10)
        msg = b"hello %d\n" % i
        s.sendall(msg)
        got = b""
        while len(got) < len(msg):
            b = s.recv(100)
            if not b:
                break
            got += b
        if got != msg:
            print("FAIL: connection %d: round trip gave %r" % (i, got))
            return 1
        socks.append(s)
    with open(ready, "w") as f:
        f.write("%d\n" % n)
    wait_until = time.monotonic() + 60
    while not os.path.exists(go):
        if time.monotonic() > wait_until:
            print("FAIL: %s never appeared" % go)
            return 1
        time.sleep(0.02)
    t_go = time.monotonic()
    deadline = t_go + secs
    ends = [(how, t - t_go) for how, t in (ended(s, deadline) for s in socks)]  # one deadline for all
    hows = {}
    for how, _ in ends:
        hows[how] = hows.get(how, 0) + 1
    worst = max(t for _, t in ends)
    summary = ", ".join("%s=%d" % kv for kv in sorted(hows.items()))
    if "timeout" in hows:
        print("FAIL: %d of %d idle connections still open %.0f s later (%s)" % (hows["timeout"], n, secs, summary))
        return 1
    print("ok: all %d idle connections ended (%s), the last %.2f s after" % (n, summary, worst))
    return 0


def slow(target):
    """A reader that keeps up, then stops for a while, then reads on: the
    proxy must hold what its window let through meanwhile, never cut."""
    data = random.Random(11).randbytes(24 << 20)
    # A small receive buffer, so what the proxy let through must wait in the
    # proxy, not in this kernel's socket buffer.
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 << 10)
    s.settimeout(20)
    s.connect(target)
    sender = threading.Thread(target=lambda: (s.sendall(data), s.shutdown(socket.SHUT_WR)))
    sender.start()
    got = bytearray()
    paused = False
    t0 = time.monotonic()
    try:
        while True:
            if not paused and len(got) >= (8 << 20):
                paused = True
                time.sleep(2)  # the stall: the window that grew is in flight
            b = s.recv(1 << 20)
            if not b:
                break
            got += b
            if time.monotonic() - t0 > 60:
                raise TimeoutError("60 s")
    except Exception as e:  # noqa: BLE001
        print("FAIL: after %d of %d bytes: %s: %s" % (len(got), len(data), type(e).__name__, e))
        return 1
    sender.join(10)
    s.close()
    if bytes(got) != data:
        print("FAIL: got %d bytes, not the %d sent (or not the same)" % (len(got), len(data)))
        return 1
    print("ok: 24 MiB echoed, read with a 2 s stall after 8 MiB, every byte back")
    return 0


def main(argv):
    if len(argv) >= 3 and argv[0] == "serve":
        serve(argv[1], argv[2])
        return 0
    cmd, args = argv[0], argv[1:]
    target = addr_of(args[0])
    if cmd == "many":
        return many(target, args[1])
    if cmd == "half":
        return half(target)
    if cmd == "closed":
        return closed(target, args[1])
    if cmd == "slow":
        return slow(target)
    if cmd == "idle":
        return idle(target, *args[1:5])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
