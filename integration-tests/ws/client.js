// test-47's WebSocket client (npm's ws): runs named checks against a URL and
// prints one line per check, "ok NAME ..." or "FAIL NAME why".
//   node client.js BASE_URL CHECK...      (BASE_URL like ws://127.0.0.1:PORT)
// Checks: echo, proto, big, ping, close (the app closes with 4001),
// closeby (the client closes with 4002; the app logs what it saw), deflate
// (permessage-deflate negotiated end to end), many=N, refused, quiet=MS (no
// byte for MS, then an echo), slow=MIB:PAUSE_MS (pauses reading for
// PAUSE_MS while the app pushes MIB; prints "paused" when the pause starts
// and "progress BYTES", what the app had written by its end), wait (opens
// /echo and waits for its end: prints how it ended and after how many ms).
'use strict';
const WebSocket = require('ws');
const crypto = require('crypto');

const base = process.argv[2];
const checks = process.argv.slice(3);
// handshakeTimeout: a p that never answers fails the check instead of hanging it.
const opts = { rejectUnauthorized: false, maxPayload: 64 << 20, perMessageDeflate: false, handshakeTimeout: 20000 };
const sha = (b) => crypto.createHash('sha256').update(b).digest('hex');

function open(path, protocols) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(base + path, protocols || [], opts);
    ws.once('open', () => resolve(ws));
    ws.once('unexpected-response', (req, res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => reject(Object.assign(new Error('unexpected ' + res.statusCode), { status: res.statusCode, body })));
    });
    ws.once('error', reject);
  });
}
const nextMessage = (ws) => new Promise((resolve) => ws.once('message', (m, binary) => resolve({ m, binary })));

const run = {
  async echo() {
    const ws = await open('/echo');
    ws.send('hello, tether');
    const a = await nextMessage(ws);
    const bin = crypto.randomBytes(100000);
    ws.send(bin);
    const b = await nextMessage(ws);
    ws.close();
    if (a.binary || a.m.toString() !== 'hello, tether') throw new Error('text echo: ' + a.m);
    if (!b.binary || !bin.equals(b.m)) throw new Error('binary echo differs');
    return 'text and binary';
  },
  async proto() {
    const ws = await open('/echo', ['chat', 'other']);
    const p = ws.protocol;
    ws.close();
    if (p !== 'chat') throw new Error('subprotocol ' + p);
    return 'chat';
  },
  async big() {
    const ws = await open('/echo');
    const buf = crypto.randomBytes(16 << 20);
    ws.send(buf);
    const r = await nextMessage(ws);
    ws.close();
    if (sha(r.m) !== sha(buf)) throw new Error('16 MiB message differs');
    return '16 MiB each way, sha256 ' + sha(buf).slice(0, 12);
  },
  async ping() {
    const ws = await open('/echo');
    const got = new Promise((resolve) => ws.once('pong', (d) => resolve(d.toString())));
    ws.ping('are you there');
    const d = await got;
    ws.close();
    if (d !== 'are you there') throw new Error('pong ' + d);
    return 'pong with the data';
  },
  async close() {
    const ws = await open('/echo');
    const ended = new Promise((resolve) => ws.once('close', (code, reason) => resolve([code, reason.toString()])));
    ws.send('close:4001:bye now');
    const [code, reason] = await ended;
    if (code !== 4001 || reason !== 'bye now') throw new Error('closed ' + code + ' ' + reason);
    return '4001 "bye now"';
  },
  async closeby() {
    const ws = await open('/echo');
    const ended = new Promise((resolve) => ws.once('close', (code, reason) => resolve([code, reason.toString()])));
    ws.close(4002, 'client says bye');
    const [code, reason] = await ended;
    // RFC 6455 §5.5.1: the app's answering close echoes the code (ws does)
    if (code !== 4002 || reason !== 'client says bye') throw new Error('closed ' + code + ' ' + reason);
    return '4002 "client says bye" answered';
  },
  async deflate() {
    const ws = await new Promise((resolve, reject) => {
      const w = new WebSocket(base + '/deflate', [], { ...opts, perMessageDeflate: true });
      w.once('open', () => resolve(w));
      w.once('error', reject);
    });
    const ext = ws.extensions;
    const text = 'tether '.repeat(20000);
    ws.send(text);
    const r = await nextMessage(ws);
    ws.close();
    if (!/permessage-deflate/.test(ext)) throw new Error('extensions [' + ext + ']');
    if (r.m.toString() !== text) throw new Error('compressed echo differs');
    return 'extensions [' + ext + '], echo equal';
  },
  async many(n) {
    const all = [];
    for (let i = 0; i < n; i++)
      all.push(open('/echo').then(async (ws) => {
        ws.send('n' + i);
        const r = await nextMessage(ws);
        if (r.m.toString() !== 'n' + i) throw new Error('socket ' + i + ' got ' + r.m);
        return ws;
      }));
    const socks = await Promise.all(all); // all open at once
    socks.forEach((ws) => ws.close());
    return n + ' sockets open at once, each echoed';
  },
  async refused() {
    try {
      const ws = await open('/refuse');
      ws.close();
    } catch (e) {
      if (e.status === 403 && e.body === 'nope!') return '403 "nope!" passed on';
      throw e;
    }
    throw new Error('the refused upgrade opened');
  },
  async slow(arg) {
    const [mib, pause] = arg.split(':').map(Number);
    const ws = await open('/push');
    let got = 0;
    const done = new Promise((resolve, reject) => {
      ws.on('message', (m) => { got += m.length; if (got >= mib << 20) resolve(); });
      ws.on('close', (code) => reject(new Error('closed ' + code + ' after ' + got + ' bytes')));
    });
    ws._socket.pause();
    ws.send('go ' + mib);
    console.log('paused');
    await new Promise((r) => setTimeout(r, pause));
    // What the app managed to write while nothing was read: bounded by the
    // buffers between (sockets, h2 windows), not by the MIB it wants to send.
    const pr = await open('/progress');
    pr.send('?');
    console.log('progress ' + (await nextMessage(pr)).m.toString());
    pr.close();
    ws._socket.resume();
    await done;
    ws.close();
    return mib + ' MiB read after a ' + pause + ' ms pause';
  },
  async quiet(ms) {
    const ws = await open('/echo');
    let ended = '';
    ws.once('close', (code) => (ended = 'closed ' + code));
    await new Promise((r) => setTimeout(r, ms));
    if (ended) throw new Error(ended + ' while quiet');
    ws.send('still here');
    const r = await nextMessage(ws);
    ws.close();
    if (r.m.toString() !== 'still here') throw new Error('echo ' + r.m);
    return 'open after ' + ms + ' ms quiet';
  },
  async wait() {
    const t0 = Date.now();
    const ws = await open('/echo');
    console.log('opened');
    const how = await new Promise((resolve) => {
      ws.once('close', (code) => resolve('close ' + code));
      ws.once('error', (e) => resolve('error ' + e.message));
    });
    return how + ' after ' + (Date.now() - t0) + ' ms';
  },
};

(async () => {
  let failed = 0;
  for (const c of checks) {
    const [name, arg] = c.split('=');
    try {
      const what = await run[name](arg === undefined ? undefined : /^\d+$/.test(arg) ? Number(arg) : arg);
      console.log('ok ' + name + ' ' + what);
    } catch (e) {
      failed++;
      console.log('FAIL ' + name + ' ' + e.message);
    }
  }
  process.exit(failed ? 1 : 0);
})();
