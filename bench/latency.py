#!/usr/bin/python3
"""Open-loop HTTP/1.1 latency probe for bench/run.sh.

wrk is closed-loop (a new request only when one finishes), so its latency
figures hide queueing.  This client sends requests on a fixed schedule,
RATE per second for DURATION seconds, whatever the server does, and measures
each latency from the moment the request was *due* (not when it was sent), so
a stalled server cannot hide its stall (no coordinated omission).

Keep-alive connections are pooled: a due request takes an idle connection or
opens a new one (HTTP/1.1 has one request in flight per connection).

Prints one JSON object: sent, ok, errors, p50_ms, p99_ms, max_ms, conns.
Exit status 1 when any response was wrong (status or length).
"""
import asyncio
import json
import sys
import time


async def one(host, port, path, pool, conns, expect_len):
    if pool:
        reader, writer = pool.pop()
    else:
        reader, writer = await asyncio.open_connection(host, port)
        conns[0] += 1
    writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
                 "User-Agent: tether-bench-latency\r\n\r\n".encode())
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length = None
    close = False
    for line in lines[1:]:
        k, _, v = line.partition(":")
        k = k.strip().lower()
        if k == "content-length":
            length = int(v.strip())
        elif k == "connection" and "close" in v.lower():
            close = True
    if length is None:
        raise ValueError("no content-length")
    await reader.readexactly(length)
    if close:
        writer.close()
    else:
        pool.append((reader, writer))
    if status != 200 or (expect_len is not None and length != expect_len):
        raise ValueError(f"status {status} length {length}")


async def main():
    host, port, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    rate, duration = float(sys.argv[4]), float(sys.argv[5])
    expect_len = int(sys.argv[6]) if len(sys.argv) > 6 else None
    pool, conns = [], [0]
    lat, errors = [], []
    n = int(rate * duration)
    tasks = []

    async def run(due):
        try:
            await asyncio.wait_for(one(host, port, path, pool, conns, expect_len), 10)
            lat.append(time.perf_counter() - due)
        except Exception as e:  # any failure is counted, never fatal to the run
            errors.append(repr(e))

    t0 = time.perf_counter() + 0.05
    for i in range(n):
        due = t0 + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.ensure_future(run(due)))
    await asyncio.gather(*tasks)
    for _, w in pool:
        w.close()
    lat.sort()

    def pct(p):
        if not lat:
            return None
        return round(lat[min(len(lat) - 1, int(p * len(lat)))] * 1000, 3)

    print(json.dumps({"sent": n, "ok": len(lat), "errors": len(errors),
                      "first_error": errors[0] if errors else None,
                      "p50_ms": pct(0.50), "p99_ms": pct(0.99),
                      "max_ms": round(lat[-1] * 1000, 3) if lat else None,
                      "conns": conns[0]}))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
