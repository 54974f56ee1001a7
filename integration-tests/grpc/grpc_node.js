// A real gRPC server and client on npm's @grpc/grpc-js (test-43-grpc.sh),
// the twin of grpc_py.py: the same service tt.Test, the same cases, raw
// bytes for every message (identity serializers, no .proto, no codegen).
//
//   node grpc_node.js server PORTFILE
//       127.0.0.1 on a free port, written to PORTFILE; one line per event
//       on stderr ("nodeserver: ...").
//   node grpc_node.js client TARGET CASE...
//       prints "CHECK <case>: ok <detail>" or "CHECK <case>: FAIL <why>";
//       $TT_GRPC_AUTHORITY, when set, is the :authority (p routes by it).
//
// The methods are described at the top of grpc_py.py.
'use strict';
const path = require('path');
const fs = require('fs');
const crypto = require('crypto');
const grpc = require(path.join(__dirname, 'node_modules', '@grpc', 'grpc-js'));

const MAX_MSG = 64 << 20;
const OPTS = {
  'grpc.max_send_message_length': MAX_MSG,
  'grpc.max_receive_message_length': MAX_MSG,
};
const id = (b) => b;
const method = (name, reqStream, respStream) => ({
  path: '/tt.Test/' + name,
  requestStream: reqStream,
  responseStream: respStream,
  requestSerialize: id,
  requestDeserialize: id,
  responseSerialize: id,
  responseDeserialize: id,
});
const SVC = {
  Echo: method('Echo', false, false),
  Sleep: method('Sleep', false, false),
  Count: method('Count', false, true),
  Sum: method('Sum', true, false),
  Bidi: method('Bidi', true, true),
  Idle: method('Idle', false, true),
  Endless: method('Endless', false, true),
};
const log = (s) => process.stderr.write('nodeserver: ' + s + '\n');
const mdGet = (call, k) => {
  const v = call.metadata.get(k);
  return v.length ? String(v[0]) : undefined;
};

// ---- server -----------------------------------------------------------------

// Calls done() once, after ms or when the call ends early (then with true).
function waitCancel(call, ms, done) {
  let over = false;
  const t = setTimeout(() => { if (!over) { over = true; done(false); } }, ms);
  call.on('cancelled', () => { if (!over) { over = true; clearTimeout(t); done(true); } });
}

const impl = {
  Echo(call, cb) {
    const echo = new grpc.Metadata();
    for (const [k, v] of Object.entries(call.metadata.getMap()))
      if (k.startsWith('x-')) echo.set('echo-' + k.slice(2), v);
    call.sendMetadata(echo);
    const fail = mdGet(call, 'x-fail');
    const trail = new grpc.Metadata();
    if (fail) {
      trail.set('grpc-status-details-bin', Buffer.from([8, 5, 0x64, 0x65, 0x74, 0x61, 0x69, 0x6c, 0x73, 0, 0xff]));
      trail.set('x-trailer', 'failed');
      cb({ code: grpc.status[fail], details: 'failed on purpose', metadata: trail });
      return;
    }
    trail.set('x-trailer', 'done');
    trail.set('x-trailer-bin', Buffer.from([0, 1, 0xfe, 0xff]));
    cb(null, call.request, trail);
  },
  Sleep(call, cb) {
    const rid = mdGet(call, 'x-id') || '-';
    const t0 = Date.now();
    waitCancel(call, parseInt(mdGet(call, 'x-sleep-ms') || '1000', 10), (cancelled) => {
      log('sleep ' + rid + (cancelled ? ' cancelled' : ' answered') + ' after ' + (Date.now() - t0) + ' ms');
      if (!cancelled) cb(null, Buffer.from('slept'));
    });
  },
  Count(call) {
    const n = parseInt(mdGet(call, 'x-count') || '10', 10);
    const size = parseInt(mdGet(call, 'x-size') || '10', 10);
    let i = 0;
    const more = () => {
      while (i < n) {
        const ok = call.write(Buffer.alloc(size, i % 256));
        i++;
        if (!ok) { call.once('drain', more); return; }
      }
      call.end();
    };
    more();
  },
  Sum(call, cb) {
    const h = crypto.createHash('sha256');
    let n = 0;
    call.on('data', (m) => { h.update(m); n++; });
    call.on('end', () => cb(null, Buffer.from(n + ' ' + h.digest('hex'))));
  },
  Bidi(call) {
    call.on('data', (m) => call.write(m));
    call.on('end', () => call.end());
  },
  Idle(call) {
    const rid = mdGet(call, 'x-id') || '-';
    call.write(Buffer.from('first'));
    waitCancel(call, parseInt(mdGet(call, 'x-idle-ms') || '1000', 10), (cancelled) => {
      log('idle ' + rid + (cancelled ? ' cancelled' : ' done'));
      if (!cancelled) { call.write(Buffer.from('second')); call.end(); }
    });
  },
  Endless(call) {
    const rid = mdGet(call, 'x-id') || '-';
    log('endless ' + rid + ' started');
    const t = setInterval(() => call.write(Buffer.alloc(1024, 0x65)), 50);
    call.on('cancelled', () => { clearInterval(t); log('endless ' + rid + ' cancelled'); });
  },
};

function serve(portFile) {
  const server = new grpc.Server(OPTS);
  server.addService(SVC, impl);
  server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => {
    if (err) { log('bind: ' + err.message); process.exit(1); }
    fs.writeFileSync(portFile + '.tmp', String(port));
    fs.renameSync(portFile + '.tmp', portFile);
    log('listening on ' + port);
  });
}

// ---- client -----------------------------------------------------------------

const check = (name, ok, detail) =>
  process.stdout.write('CHECK ' + name + ': ' + (ok ? 'ok ' : 'FAIL ') + detail + '\n');
const deadline = (s) => new Date(Date.now() + s * 1000);
const md = (pairs) => {
  const m = new grpc.Metadata();
  for (const [k, v] of pairs) m.set(k, v);
  return m;
};
const errText = (e) => grpc.status[e.code] + ' (' + e.details + ')';

// A unary call: {err, resp, init, trail}, once both the callback and the
// 'status' event (which carries the trailing metadata, and comes after the
// callback) have fired.
const unary = (c, name, req, meta, opts) => new Promise((resolve) => {
  const r = { init: null, trail: null };
  let left = 2;
  const one = () => { if (--left === 0) resolve(r); };
  const call = c.makeUnaryRequest(SVC[name].path, id, id, req, meta || new grpc.Metadata(), opts || {},
    (err, resp) => { r.err = err; r.resp = resp; one(); });
  call.on('metadata', (m) => { r.init = m; });
  call.on('status', (s) => { r.trail = s.metadata; one(); });
});

// Collects a server stream: {err, msgs}.
const ustream = (c, name, meta, opts, onMsg) => new Promise((resolve) => {
  const msgs = [];
  const call = c.makeServerStreamRequest(SVC[name].path, id, id, Buffer.alloc(0), meta || new grpc.Metadata(), opts || {});
  call.on('data', (m) => { msgs.push(m); if (onMsg) onMsg(m, call); });
  call.on('error', (err) => resolve({ err, msgs }));
  call.on('end', () => setImmediate(() => resolve({ err: null, msgs })));
});

const CASES = {
  async unary(c) {
    const r = await unary(c, 'Echo', Buffer.from('hello'),
      md([['x-meta', 'v1'], ['x-blob-bin', Buffer.from([0, 0xff, 0x10])]]), { deadline: deadline(20) });
    check('unary', !r.err && r.resp.toString() === 'hello', r.err ? errText(r.err) : 'resp=' + r.resp);
    const im = r.init ? r.init.getMap() : {};
    check('metadata', im['echo-meta'] === 'v1' && Buffer.isBuffer(im['echo-blob-bin']) &&
      im['echo-blob-bin'].equals(Buffer.from([0, 0xff, 0x10])), 'initial=' + JSON.stringify(im));
    const tm = r.trail ? r.trail.getMap() : {};
    check('trailers', tm['x-trailer'] === 'done' && Buffer.isBuffer(tm['x-trailer-bin']) &&
      tm['x-trailer-bin'].equals(Buffer.from([0, 1, 0xfe, 0xff])), 'trailing=' + JSON.stringify(tm));
  },
  async status(c) {
    const r = await unary(c, 'Echo', Buffer.from('x'), md([['x-fail', 'FAILED_PRECONDITION']]), { deadline: deadline(20) });
    const det = r.err && r.err.metadata.get('grpc-status-details-bin')[0];
    const ok = r.err && r.err.code === grpc.status.FAILED_PRECONDITION && r.err.details === 'failed on purpose' &&
      Buffer.isBuffer(det) && det.equals(Buffer.from([8, 5, 0x64, 0x65, 0x74, 0x61, 0x69, 0x6c, 0x73, 0, 0xff]));
    check('status', ok, r.err ? errText(r.err) + ' details-bin=' + (det ? det.toString('hex') : '-') : 'the call succeeded');
  },
  async big(c) {
    const msg = crypto.randomBytes(16 << 20);
    const t0 = Date.now();
    const r = await unary(c, 'Echo', msg, null, { deadline: deadline(parseFloat(process.env.TT_GRPC_BIG_DEADLINE || '10')) });
    const s = ((Date.now() - t0) / 1000).toFixed(1);
    if (r.err) check('big', false, errText(r.err) + ' after ' + s + ' s');
    else check('big', r.resp.equals(msg), '16 MiB each way in ' + s + ' s, ' + (r.resp.equals(msg) ? 'intact' : 'CORRUPT'));
  },
  async 'server-stream'(c) {
    const r = await ustream(c, 'Count', md([['x-count', '10000'], ['x-size', '100']]), { deadline: deadline(60) });
    let bad = 0;
    let total = 0;
    r.msgs.forEach((m, i) => { total += m.length; if (!m.equals(Buffer.alloc(100, i % 256))) bad++; });
    check('server-stream', !r.err && r.msgs.length === 10000 && total === 1000000 && bad === 0,
      (r.err ? errText(r.err) + ', ' : '') + r.msgs.length + ' messages, ' + total + ' bytes');
  },
  async 'client-stream'(c) {
    const h = crypto.createHash('sha256');
    const msgs = [];
    for (let i = 0; i < 2000; i++) { const m = crypto.randomBytes(1000 + i); msgs.push(m); h.update(m); }
    const want = '2000 ' + h.digest('hex');
    const r = await new Promise((resolve) => {
      const call = c.makeClientStreamRequest(SVC.Sum.path, id, id, new grpc.Metadata(), { deadline: deadline(60) },
        (err, resp) => resolve({ err, resp }));
      let i = 0;
      const more = () => {
        while (i < msgs.length) { if (!call.write(msgs[i++])) { call.once('drain', more); return; } }
        call.end();
      };
      more();
    });
    check('client-stream', !r.err && r.resp.toString() === want, r.err ? errText(r.err) : 'resp=' + r.resp);
  },
  async bidi(c) {
    const rounds = 1000;
    const r = await new Promise((resolve) => {
      const call = c.makeBidiStreamRequest(SVC.Bidi.path, id, id, new grpc.Metadata(), { deadline: deadline(60) });
      let got = 0;
      call.on('data', (m) => {
        if (m.toString() !== 'round ' + got) { call.cancel(); return; }
        got++;
        if (got < rounds) call.write(Buffer.from('round ' + got)); else call.end();
      });
      call.on('error', (err) => resolve({ err, got }));
      call.on('end', () => resolve({ err: null, got }));
      call.write(Buffer.from('round 0'));
    });
    check('bidi', !r.err && r.got === rounds, (r.err ? errText(r.err) + ', ' : '') + r.got + ' rounds');
  },
  async deadline(c) {
    const t0 = Date.now();
    const r = await unary(c, 'Sleep', Buffer.alloc(0), md([['x-sleep-ms', '20000'], ['x-id', 'node-deadline']]), { deadline: deadline(1) });
    check('deadline', r.err && r.err.code === grpc.status.DEADLINE_EXCEEDED,
      (r.err ? errText(r.err) : 'answered') + ' after ' + ((Date.now() - t0) / 1000).toFixed(1) + ' s');
  },
  async cancel(c) {
    const r = await new Promise((resolve) => {
      const call = c.makeUnaryRequest(SVC.Sleep.path, id, id, Buffer.alloc(0),
        md([['x-sleep-ms', '20000'], ['x-id', 'node-cancel']]), { deadline: deadline(30) },
        (err, resp) => resolve({ err, resp }));
      setTimeout(() => call.cancel(), 500);
    });
    check('cancel', r.err && r.err.code === grpc.status.CANCELLED, r.err ? errText(r.err) : 'answered');
  },
  async concurrent(c) {
    const rs = await Promise.all([...Array(100).keys()].map((i) =>
      unary(c, 'Echo', Buffer.from('c' + i), null, { deadline: deadline(30) })));
    const ok = rs.filter((r, i) => !r.err && r.resp.toString() === 'c' + i).length;
    check('concurrent', ok === 100, ok + ' of 100 answered right');
  },
  async long(c) {
    const ms = parseInt(process.env.TT_GRPC_LONG_MS || '65000', 10);
    const t0 = Date.now();
    const r = await unary(c, 'Sleep', Buffer.alloc(0), md([['x-sleep-ms', String(ms)], ['x-id', 'node-long']]),
      { deadline: deadline(ms / 1000 + 60) });
    check('long', !r.err && r.resp.toString() === 'slept',
      (r.err ? errText(r.err) : 'answered ' + r.resp) + ' after ' + ((Date.now() - t0) / 1000).toFixed(1) + ' s');
  },
  async idle(c) {
    const ms = parseInt(process.env.TT_GRPC_IDLE_MS || '65000', 10);
    const t0 = Date.now();
    const r = await ustream(c, 'Idle', md([['x-idle-ms', String(ms)], ['x-id', 'node-idle']]), { deadline: deadline(ms / 1000 + 60) });
    const got = r.msgs.map(String);
    check('idle', !r.err && got.join(',') === 'first,second',
      (r.err ? errText(r.err) + ', ' : '') + 'got ' + JSON.stringify(got) + ' after ' + ((Date.now() - t0) / 1000).toFixed(1) + ' s');
  },
  async 'head-timeout'(c) {
    const r = await unary(c, 'Sleep', Buffer.alloc(0), md([['x-sleep-ms', '20000'], ['x-id', 'node-gaveup']]), { deadline: deadline(30) });
    check('head-timeout', r.err && r.err.code === grpc.status.UNAVAILABLE, r.err ? errText(r.err) : 'answered');
  },
  async killed(c) {
    const r = await ustream(c, 'Endless', md([['x-id', 'node-killed']]), { deadline: deadline(60) });
    check('killed', r.err && r.err.code === grpc.status.UNAVAILABLE,
      (r.err ? errText(r.err) : 'the stream ended OK') + ' after ' + r.msgs.length + ' messages');
  },
};

async function client(target, names) {
  const Ctor = grpc.makeGenericClientConstructor(SVC, 'Test');
  const opts = Object.assign({}, OPTS);
  if (process.env.TT_GRPC_AUTHORITY) opts['grpc.default_authority'] = process.env.TT_GRPC_AUTHORITY;
  const c = new Ctor(target, grpc.credentials.createInsecure(), opts);
  await new Promise((resolve, reject) => c.waitForReady(deadline(20), (e) => (e ? reject(e) : resolve())));
  for (const n of names) {
    try {
      await CASES[n](c);
    } catch (e) {
      check(n, false, e.name + ': ' + e.message);
    }
  }
  c.close();
}

if (process.argv[2] === 'server' && process.argv[3]) {
  serve(process.argv[3]);
} else if (process.argv[2] === 'client' && process.argv.length > 4) {
  client(process.argv[3], process.argv.slice(4)).then(() => process.exit(0), (e) => {
    check('connect', false, e.message);
    process.exit(1);
  });
} else {
  process.stderr.write('usage: node grpc_node.js server PORTFILE | client TARGET CASE...\n');
  process.exit(2);
}
