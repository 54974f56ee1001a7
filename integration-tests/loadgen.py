#!/usr/bin/python3
"""A steady request load for test-53: worker threads doing GETs in a loop.

    loadgen.py HOST:PORT MEDIA_DIR OUT_FILE STOP_FILE WORKERS PATH...

Each worker takes the PATHs in turn (worker i starts at the i-th), GETs each
through HOST:PORT over a keep-alive connection (odd workers open a new
connection per request), and checks the status is 200 and the body is the
file's bytes (length and sha256).  One line per request goes to OUT_FILE:

    TIME ok|fail WORKER PATH REASON

TIME is time.time() when the request ended, REASON says what failed (or the
status and length).  A failed request closes its connection: the next one
opens a new connection, as a browser or a player would.  Stops once
STOP_FILE exists or on SIGTERM, after the requests in progress end.
Only the standard library.
"""
import hashlib
import http.client
import os
import signal
import sys
import threading
import time
import urllib.parse

addr, media, out_path, stop_path, workers = sys.argv[1:6]
paths = sys.argv[6:]
host, port = addr.rsplit(":", 1)
port = int(port)
workers = int(workers)

want = {}
for p in paths:
    with open(os.path.join(media, p), "rb") as f:
        data = f.read()
    want[p] = (len(data), hashlib.sha256(data).hexdigest())

stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
lock = threading.Lock()
out = open(out_path, "a", buffering=1)


def record(ok, w, path, reason):
    with lock:
        out.write("%.3f %s %d %s %s\n" % (time.time(), "ok" if ok else "fail", w, path,
                                          reason.replace("\n", " ")))


def worker(w):
    fresh = w % 2 == 1
    conn = None
    i = w
    while not stop.is_set() and not os.path.exists(stop_path):
        path = paths[i % len(paths)]
        i += 1
        size, sha = want[path]
        reused = conn is not None
        try:
            if conn is None:
                conn = http.client.HTTPConnection(host, port, timeout=20)
            conn.request("GET", "/" + urllib.parse.quote(path), headers={"Host": "media"})
            r = conn.getresponse()
            body = r.read()
            closing = r.will_close
            if r.status != 200:
                record(False, w, path, "status %d %r" % (r.status, body[:80]))
                conn.close()
                conn = None
                continue
            if len(body) != size or hashlib.sha256(body).hexdigest() != sha:
                record(False, w, path, "body %d bytes, want %d (sha mismatch)" % (len(body), size))
                conn.close()
                conn = None
                continue
            record(True, w, path, "200 %d" % len(body))
            if fresh or closing:
                conn.close()
                conn = None
        except Exception as e:  # every failure is counted, none retried
            record(False, w, path, "%s: %s%s" % (type(e).__name__, e,
                                                 " (reused connection)" if reused else ""))
            if conn is not None:
                conn.close()
            conn = None


threads = [threading.Thread(target=worker, args=(w,), daemon=True) for w in range(workers)]
for t in threads:
    t.start()
while not stop.is_set() and not os.path.exists(stop_path):
    time.sleep(0.05)
stop.set()
for t in threads:
    t.join(25)
out.close()
