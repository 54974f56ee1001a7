// WebSocket echo for bench/run.sh, scenario 10, with node's ws package (the
// one integration-tests/ws pins; run.sh puts its node_modules on NODE_PATH).
//
//   node bench/ws_bench.js serve PORTFILE
//       an echo server on 127.0.0.1 (a free port, written to PORTFILE): every
//       message goes back as it came, text or binary
//   node bench/ws_bench.js client URL ROUNDS WINDOW COUNT SIZE
//       one socket to URL; ROUNDS sequential round trips of SIZE bytes (each
//       message sent when the last echo arrived: the echo round-trip time),
//       then COUNT messages of SIZE bytes with WINDOW of them in flight (each
//       echo lets the next one go: messages per second); every echo is
//       checked against what was sent.  Prints one JSON object.
'use strict';
const fs = require('fs');
const WebSocket = require('ws');

function serve(portFile) {
    const wss = new WebSocket.Server({ host: '127.0.0.1', port: 0, perMessageDeflate: false });
    wss.on('connection', (ws) => {
        ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
        ws.on('error', () => {});
    });
    wss.on('listening', () => fs.writeFileSync(portFile, String(wss.address().port)));
    process.on('SIGTERM', () => process.exit(0));
}

function percentile(sorted, q) {
    return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

function client(url, rounds, window, count, size) {
    const ws = new WebSocket(url, { perMessageDeflate: false });
    const payload = (i) => {
        const b = Buffer.alloc(size, i & 0xff);
        b.writeUInt32BE(i >>> 0, 0);
        return b;
    };
    const fail = (why) => { console.error(`ws_bench: ${why}`); process.exit(1); };
    ws.on('error', (e) => fail(`${url}: ${e.message}`));
    ws.on('close', (code) => { if (!done) fail(`${url}: closed early (code ${code})`); });
    let done = false;
    const rtt = [];
    let sent = 0, got = 0, t0 = 0n, tStream = 0n;
    let phase = 'rtt';
    const next = () => { t0 = process.hrtime.bigint(); ws.send(payload(sent++)); };
    ws.on('open', () => next());
    ws.on('message', (data) => {
        const now = process.hrtime.bigint();
        const want = payload(got++);
        if (!Buffer.from(data).equals(want)) fail(`echo ${got - 1} differs from what was sent`);
        if (phase === 'rtt') {
            rtt.push(Number(now - t0) / 1000);
            if (got < rounds) return next();
            phase = 'stream'; sent = got = 0; tStream = process.hrtime.bigint();
            while (sent < Math.min(window, count)) ws.send(payload(sent++));
            return;
        }
        if (sent < count) ws.send(payload(sent++));
        if (got === count) {
            const secs = Number(process.hrtime.bigint() - tStream) / 1e9;
            rtt.sort((a, b) => a - b);
            done = true;
            console.log(JSON.stringify({
                rounds, size, rtt_p50_us: +percentile(rtt, 0.5).toFixed(1),
                rtt_p99_us: +percentile(rtt, 0.99).toFixed(1),
                window, count, msgs_per_s: Math.round(count / secs),
            }));
            ws.close(1000);
        }
    });
}

const [mode, ...args] = process.argv.slice(2);
if (mode === 'serve' && args.length === 1) serve(args[0]);
else if (mode === 'client' && args.length === 5) client(args[0], ...args.slice(1).map(Number));
else { console.error('usage: ws_bench.js serve PORTFILE | client URL ROUNDS WINDOW COUNT SIZE'); process.exit(2); }
