#!/usr/bin/env python3
"""A TCP fault proxy for the tunnel between bin/c and bin/p (tests only).

    faultproxy.py --target 127.0.0.1:PORT --ports-file FILE [--log FILE]

Listens on a free 127.0.0.1 port (c --proxy points at it) and forwards each
accepted connection to --target (p's --tunnel-listen).  A second free port
takes commands, one line each, answered by one line ("ok ..." or "err ...");
the answer is sent once the command is in force, so tests are deterministic.
Both ports are written to --ports-file as "LISTEN CONTROL" once bound.

Command lines are "TARGET VERB [ARGS]".  TARGET picks whose policy changes:
  all   every open connection and every later one
  cur   every open connection only
  new   every later connection only
  next  the next accepted connection only (one-shot, then the "new" policy)
  N     connection number N (1, 2, ... in accept order)
Directions: "up" is c -> p, "down" is p -> c, "both" is both.
VERBs:
  pass                  forward untouched (clears every fault below)
  stall [DIR]           stop forwarding (sockets stay open: a dead path)
  unstall [DIR]         forward again, including what was held
  throttle BPS          at most BPS bytes/s per direction (0: off)
  seg MAX               write every chunk in pieces of 1..MAX bytes (0: off)
  latency MS            hold every chunk MS ms before writing it (pipelined)
  cut [rst|fin]         close both sides now (rst: SO_LINGER 0 -> RST)
  cut-after DIR N       cut (rst) once N bytes went through in DIR
  cut-at DIR REC OFF    cut (rst) once OFF bytes of the DIR stream's REC-th
                        TLS record (1-based, header included) went through
Commands without a TARGET word:
  conns                 "ok ID:state:up_bytes:down_bytes ..." (state open|closed)
  trace ID              "ok up=T/L,T/L,... down=..." type/body length of the
                        first 32 TLS records of each direction
  count                 "ok N" connections accepted so far
Events go to --log (or stderr), one line each, with a monotonic timestamp.
"""
import argparse
import asyncio
import random
import socket
import struct
import sys
import time

DIRS = ("up", "down")
CHUNK = 65536
QUEUE_LIMIT = 256 * 1024  # bytes held per direction before we stop reading

LOG = sys.stderr


def log(msg):
    LOG.write("%.3f %s\n" % (time.monotonic(), msg))
    LOG.flush()


class Policy:
    def __init__(self):
        self.stall = {"up": False, "down": False}
        self.throttle = 0
        self.seg = 0
        self.latency = 0.0
        self.cut_after = {"up": None, "down": None}
        self.cut_at = {"up": None, "down": None}

    def copy(self):
        p = Policy()
        p.stall = dict(self.stall)
        p.throttle, p.seg, p.latency = self.throttle, self.seg, self.latency
        p.cut_after = dict(self.cut_after)
        p.cut_at = dict(self.cut_at)
        return p


class Records:
    """Follows TLS record framing of one direction, passively."""

    def __init__(self):
        self.index = 0  # records started
        self.pos = 0  # bytes of the current record seen (header included)
        self.length = None  # current record's total length, once known
        self.hdr = b""
        self.seen = []  # (type, body length)

    def advance(self, data, stop=None):
        """Consumes data; returns how many bytes may pass before the point
        stop=(rec, off) is reached (len(data) if it is not)."""
        i = 0
        n = len(data)
        while i < n:
            if self.length is not None and self.pos == self.length:
                self.length = None
                self.pos = 0
                self.hdr = b""
            if self.pos == 0:
                self.index += 1
            if stop and self.index == stop[0] and self.pos == stop[1]:
                return i
            if self.pos < 5:
                self.hdr += data[i:i + 1]
                self.pos += 1
                i += 1
                if self.pos == 5:
                    t, _v, ln = struct.unpack("!BHH", self.hdr)
                    self.length = 5 + ln
                    if len(self.seen) < 32:  # the handshake is what tests look at
                        self.seen.append((t, ln))
                continue
            take = min(n - i, self.length - self.pos)
            if stop and self.index == stop[0] and stop[1] > self.pos:
                take = min(take, stop[1] - self.pos)
            self.pos += take
            i += take
        if stop and self.index == stop[0] and self.pos == stop[1]:
            return n
        return n


class Conn:
    def __init__(self, cid, policy, creader, cwriter):
        self.id = cid
        self.policy = policy
        self.rd = {"up": creader, "down": None}
        self.wr = {"up": None, "down": cwriter}
        self.queue = {d: asyncio.Queue() for d in DIRS}
        self.held = {d: 0 for d in DIRS}
        self.bytes = {d: 0 for d in DIRS}
        self.recs = {d: Records() for d in DIRS}
        self.changed = asyncio.Event()
        self.closed = False
        self.tasks = []

    def poke(self):
        self.changed.set()

    async def wait_change(self):
        self.changed.clear()
        await self.changed.wait()

    def cut(self, how="rst", why="command"):
        if self.closed:
            return
        self.closed = True
        log("conn %d cut (%s) %s; up=%d down=%d" % (self.id, how, why, self.bytes["up"], self.bytes["down"]))
        for w in (self.wr["up"], self.wr["down"]):
            if w is None:
                continue
            sock = w.get_extra_info("socket")
            if how == "rst" and sock is not None:
                try:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                except OSError:
                    pass
            w.transport.abort()
        self.poke()
        for t in self.tasks:
            if t is not asyncio.current_task():
                t.cancel()

    def finish(self, why):
        if self.closed:
            return
        self.closed = True
        log("conn %d closed: %s; up=%d down=%d" % (self.id, why, self.bytes["up"], self.bytes["down"]))
        for w in (self.wr["up"], self.wr["down"]):
            if w is not None:
                w.transport.abort()
        self.poke()
        for t in self.tasks:
            if t is not asyncio.current_task():
                t.cancel()

    async def reader(self, d):
        rd = self.rd[d]
        q = self.queue[d]
        pol = self.policy
        total = 0  # bytes read (and queued) in this direction
        while not self.closed:
            if self.policy.stall[d] or self.held[d] >= QUEUE_LIMIT:
                await self.wait_change()
                continue
            try:
                data = await rd.read(CHUNK)
            except (ConnectionError, OSError) as e:
                self.finish("%s read error: %s" % (d, e))
                return
            if not data:
                await q.put((None, False, time.monotonic()))  # EOF
                return
            pol = self.policy
            stop_n = len(data)
            if pol.cut_after[d] is not None:
                stop_n = min(stop_n, max(0, pol.cut_after[d] - total))
            n_rec = self.recs[d].advance(data[:stop_n], pol.cut_at[d])
            cut = n_rec < len(data) or (pol.cut_after[d] is not None and total + len(data) >= pol.cut_after[d])
            if n_rec < stop_n:
                stop_n = n_rec
            if cut:
                data = data[:stop_n]
            total += len(data)
            self.held[d] += len(data)
            await q.put((data, cut, time.monotonic() + pol.latency))
            if cut:
                return

    async def writer(self, d):
        wr = self.wr[d]
        q = self.queue[d]
        sock = wr.get_extra_info("socket")
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        bucket_t = time.monotonic()
        bucket = 0.0
        while not self.closed:
            data, cut, due = await q.get()
            if data is None:
                # EOF from the source: pass the half-close on.
                try:
                    if wr.can_write_eof():
                        wr.write_eof()
                except (ConnectionError, OSError):
                    pass
                self.eofs += 1
                if self.eofs == 2:
                    self.finish("both sides closed")
                return
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            off = 0
            while off < len(data) and not self.closed:
                pol = self.policy
                if pol.stall[d]:
                    await self.wait_change()
                    continue
                n = len(data) - off
                if pol.seg:
                    n = min(n, random.randint(1, pol.seg))
                if pol.throttle:
                    now = time.monotonic()
                    bucket = min(pol.throttle / 10.0, bucket + (now - bucket_t) * pol.throttle)
                    bucket_t = now
                    if bucket < 1:
                        await asyncio.sleep((1 - bucket) / pol.throttle + 0.005)
                        continue
                    n = min(n, int(bucket))
                    bucket -= n
                try:
                    wr.write(data[off:off + n])
                    await wr.drain()
                    if pol.seg:
                        # Let the peer read the piece on its own now and then.
                        await asyncio.sleep(0)
                except (ConnectionError, OSError) as e:
                    self.finish("%s write error: %s" % (d, e))
                    return
                off += n
                self.bytes[d] += n
                self.held[d] -= n
            if self.held[d] < QUEUE_LIMIT:
                self.poke()
            if cut and not self.closed:
                try:
                    await wr.drain()
                except (ConnectionError, OSError):
                    pass
                self.cut("rst", "at %s byte %d (record %d)" % (d, self.bytes[d], self.recs[d].index))
                return


class Proxy:
    def __init__(self, target):
        self.target = target
        self.conns = {}
        self.count = 0
        self.default = Policy()
        self.next_policy = None

    async def on_client(self, creader, cwriter):
        self.count += 1
        cid = self.count
        pol = self.next_policy if self.next_policy is not None else self.default.copy()
        self.next_policy = None
        conn = Conn(cid, pol, creader, cwriter)
        conn.eofs = 0
        self.conns[cid] = conn
        try:
            preader, pwriter = await asyncio.open_connection(*self.target)
        except OSError as e:
            log("conn %d: target refused: %s" % (cid, e))
            conn.closed = True
            cwriter.transport.abort()
            return
        conn.rd["down"] = preader
        conn.wr["up"] = pwriter
        log("conn %d open from %s" % (cid, cwriter.get_extra_info("peername")))
        for d in DIRS:
            conn.tasks.append(asyncio.ensure_future(conn.reader(d)))
            conn.tasks.append(asyncio.ensure_future(conn.writer(d)))
        await asyncio.gather(*conn.tasks, return_exceptions=True)
        if not conn.closed:
            conn.finish("done")

    def targets(self, word):
        """(policies to change, connections to poke)."""
        live = [c for c in self.conns.values() if not c.closed]
        if word == "all":
            return [self.default] + [c.policy for c in live], live
        if word == "cur":
            return [c.policy for c in live], live
        if word == "new":
            return [self.default], []
        if word == "next":
            if self.next_policy is None:
                self.next_policy = self.default.copy()
            return [self.next_policy], []
        c = self.conns.get(int(word))
        if c is None:
            raise ValueError("no connection %s" % word)
        return [c.policy], [c]

    def command(self, line):
        w = line.split()
        if not w:
            return "err empty"
        if w[0] == "count":
            return "ok %d" % self.count
        if w[0] == "conns":
            return "ok " + " ".join("%d:%s:%d:%d" % (c.id, "closed" if c.closed else "open", c.bytes["up"], c.bytes["down"])
                                    for c in self.conns.values())
        if w[0] == "trace":
            c = self.conns[int(w[1])]
            return "ok " + " ".join("%s=%s" % (d, ",".join("%d/%d" % s for s in c.recs[d].seen)) for d in DIRS)
        if len(w) < 2:
            return "err usage: TARGET VERB [ARGS]"
        pols, conns = self.targets(w[0])
        verb, args = w[1], w[2:]
        dirs = list(DIRS) if not args or args[0] == "both" else [args[0]]
        if verb == "cut":
            how = args[0] if args else "rst"
            for c in conns:
                c.cut(how)
            if w[0] in ("all", "cur") or w[0].isdigit():
                return "ok"
        for p in pols:
            if verb == "pass":
                p.__init__()
            elif verb == "stall":
                for d in dirs:
                    p.stall[d] = True
            elif verb == "unstall":
                for d in dirs:
                    p.stall[d] = False
            elif verb == "throttle":
                p.throttle = int(args[0])
            elif verb == "seg":
                p.seg = int(args[0])
            elif verb == "latency":
                p.latency = int(args[0]) / 1000.0
            elif verb == "cut-after":
                p.cut_after[args[0]] = int(args[1])
            elif verb == "cut-at":
                p.cut_at[args[0]] = (int(args[1]), int(args[2]))
            else:
                return "err unknown verb %s" % verb
        for c in conns:
            c.poke()
        log("command: %s" % line)
        return "ok"

    async def on_control(self, reader, writer):
        while True:
            line = await reader.readline()
            if not line:
                break
            try:
                answer = self.command(line.decode().strip())
            except (ValueError, IndexError, KeyError) as e:
                answer = "err %s" % e
            writer.write((answer + "\n").encode())
            await writer.drain()
        writer.close()


async def main():
    global LOG
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", required=True)
    ap.add_argument("--ports-file", required=True)
    ap.add_argument("--log")
    a = ap.parse_args()
    if a.log:
        LOG = open(a.log, "a")
    host, port = a.target.rsplit(":", 1)
    proxy = Proxy((host, int(port)))
    srv = await asyncio.start_server(proxy.on_client, "127.0.0.1", 0)
    ctl = await asyncio.start_server(proxy.on_control, "127.0.0.1", 0)
    lp = srv.sockets[0].getsockname()[1]
    cp = ctl.sockets[0].getsockname()[1]
    tmp = a.ports_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d %d\n" % (lp, cp))
    import os
    os.rename(tmp, a.ports_file)
    log("listening on 127.0.0.1:%d, control on 127.0.0.1:%d, target %s" % (lp, cp, a.target))
    await asyncio.gather(srv.serve_forever(), ctl.serve_forever())


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
