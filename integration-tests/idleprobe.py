#!/usr/bin/python3
"""Holds one client connection to p idle after a request and reports how it ended.

    idleprobe.py h1|h2 PORT PATH WAIT_S

Sends one GET (HTTP/1.1 keep-alive, or h2c with prior knowledge through
Debian's python3-h2), reads the whole response, then waits up to WAIT_S
seconds without sending anything.  Prints one line: "status=N closed=S
goaway=CODE" where S is the seconds after the response at which p closed the
connection ("no" if it stayed open) and CODE is the GOAWAY error code seen
(h2 only; "-" otherwise).
"""
import socket
import sys
import time


def h1(port, path, wait):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        d = s.recv(65536)
        if not d:
            return "status=0 closed=0 goaway=-"
        buf += d
    head, body = buf.split(b"\r\n\r\n", 1)
    status = int(head.split(b" ")[1])
    clen = 0
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            clen = int(v)
    while len(body) < clen:
        d = s.recv(65536)
        if not d:
            break
        body += d
    return f"status={status} closed={wait_close(s, wait)} goaway=-"


def wait_close(s, wait):
    t0 = time.monotonic()
    s.settimeout(0.2)
    while time.monotonic() - t0 < wait:
        try:
            if not s.recv(65536):
                return f"{time.monotonic() - t0:.1f}"
        except socket.timeout:
            continue
        except ConnectionResetError:
            return f"{time.monotonic() - t0:.1f}"
    return "no"


def h2(port, path, wait):
    import h2.config
    import h2.connection
    import h2.events

    s = socket.create_connection(("127.0.0.1", port))
    c = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    c.initiate_connection()
    sid = c.get_next_available_stream_id()
    c.send_headers(sid, [(":method", "GET"), (":scheme", "http"), (":authority", "127.0.0.1"),
                         (":path", path)], end_stream=True)
    s.sendall(c.data_to_send())
    status, done, goaway = 0, False, "-"
    s.settimeout(10)
    while not done:
        d = s.recv(65536)
        if not d:
            return f"status={status} closed=0 goaway={goaway}"
        for ev in c.receive_data(d):
            if isinstance(ev, h2.events.ResponseReceived):
                status = int(dict(ev.headers)[b":status"])
            elif isinstance(ev, h2.events.DataReceived):
                c.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            elif isinstance(ev, h2.events.StreamEnded):
                done = True
        s.sendall(c.data_to_send())
    t0 = time.monotonic()
    s.settimeout(0.2)
    closed = "no"
    while time.monotonic() - t0 < wait:
        try:
            d = s.recv(65536)
        except socket.timeout:
            continue
        except ConnectionResetError:
            d = b""
        if not d:
            closed = f"{time.monotonic() - t0:.1f}"
            break
        for ev in c.receive_data(d):
            if isinstance(ev, h2.events.ConnectionTerminated):
                goaway = str(int(ev.error_code))
            elif isinstance(ev, h2.events.PingReceived):
                pass
        s.sendall(c.data_to_send())  # PING ACKs: a live client, just idle
    return f"status={status} closed={closed} goaway={goaway}"


if __name__ == "__main__":
    kind, port, path, wait = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
    print((h1 if kind == "h1" else h2)(port, path, wait))
