#!/usr/bin/python3
"""Clients that leave in large numbers, as players seeking and tabs closing
do: each asks for a big file and goes away early.

  abortstorm.py PORT PATH h1 N           N HTTP/1.1 clients, each reads a little, then closes
  abortstorm.py PORT PATH h2reset C S    C h2c connections, S streams each, all reset (CANCEL)
                                         once their responses began
  abortstorm.py PORT PATH h2close S      one h2c connection opens S streams with a zero
                                         window, then closes the socket
  abortstorm.py PORT PATH stall N S SECS N HTTP/1.1 clients and one h2c connection with S
                                         zero-window streams ask and never read, for SECS

Prints one line: what it did.  Exit 1 when it could not do it."""
import socket
import sys
import time

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings


def h1(port, path, n):
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(("GET %s HTTP/1.1\r\nHost: media\r\n\r\n" % path).encode())
        socks.append(s)
    got = 0
    for s in socks:
        try:
            if s.recv(4096):
                got += 1
        except OSError:
            pass
        s.close()
    print("h1: %d clients asked for %s and left, %d had begun to get it" % (n, path, got))
    return got > 0


def h2conn(port, window=None):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    cfg = h2.config.H2Configuration(client_side=True, header_encoding="utf-8")
    c = h2.connection.H2Connection(config=cfg)
    c.initiate_connection()
    if window is not None:
        c.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: window})
    s.sendall(c.data_to_send())
    return s, c


def h2_streams(s, c, path, n):
    ids = []
    for _ in range(n):
        sid = c.get_next_available_stream_id()
        c.send_headers(sid, [(":method", "GET"), (":scheme", "http"), (":authority", "media"),
                             (":path", path)], end_stream=True)
        ids.append(sid)
    s.sendall(c.data_to_send())
    return ids


def h2_wait_heads(s, c, want, limit=10.0):
    """Reads until `want` streams have a response head or a reset; returns the heads."""
    seen, gone = set(), set()
    end = time.time() + limit
    while len(seen) + len(gone) < want and time.time() < end:
        try:
            data = s.recv(65536)
        except socket.timeout:
            break
        if not data:
            break
        for ev in c.receive_data(data):
            if isinstance(ev, h2.events.ResponseReceived):
                seen.add(ev.stream_id)
            elif isinstance(ev, h2.events.StreamReset):
                gone.add(ev.stream_id)
        out = c.data_to_send()
        if out:
            s.sendall(out)
    return len(seen)


def h2reset(port, path, conns, streams):
    heads = 0
    for _ in range(conns):
        s, c = h2conn(port)
        ids = h2_streams(s, c, path, streams)
        heads += h2_wait_heads(s, c, len(ids))
        for sid in ids:
            try:
                c.reset_stream(sid)
            except h2.exceptions.StreamClosedError:
                pass  # p answered it whole already
        s.sendall(c.data_to_send())
        time.sleep(0.2)
        s.close()
    print("h2reset: %d connections x %d streams of %s reset, %d had their head" % (conns, streams, path, heads))
    return heads > 0


def h2close(port, path, streams):
    s, c = h2conn(port, window=0)
    ids = h2_streams(s, c, path, streams)
    heads = h2_wait_heads(s, c, len(ids))
    s.close()
    print("h2close: %d streams of %s with no window, %d heads, then the connection closed" % (len(ids), path, heads))
    return heads > 0


def stall(port, path, n, streams, secs):
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(("GET %s HTTP/1.1\r\nHost: media\r\n\r\n" % path).encode())
        socks.append(s)
    hs, hc = h2conn(port, window=0)
    ids = h2_streams(hs, hc, path, streams)
    h2_wait_heads(hs, hc, len(ids), limit=5)
    print("stall: %d HTTP/1.1 and %d h2c streams hold %s without reading" % (n, len(ids), path), flush=True)
    time.sleep(secs)
    for s in socks:
        s.close()
    hs.close()
    print("stall: done after %.0f s" % secs)
    return True


def main(argv):
    port, path, mode = int(argv[1]), argv[2], argv[3]
    if mode == "h1":
        return 0 if h1(port, path, int(argv[4])) else 1
    if mode == "h2reset":
        return 0 if h2reset(port, path, int(argv[4]), int(argv[5])) else 1
    if mode == "h2close":
        return 0 if h2close(port, path, int(argv[4])) else 1
    if mode == "stall":
        return 0 if stall(port, path, int(argv[4]), int(argv[5]), float(argv[6])) else 1
    print("unknown mode", mode)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
