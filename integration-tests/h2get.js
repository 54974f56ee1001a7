#!/usr/bin/env node
// A plain HTTP/2 client with prior knowledge (h2c) from Node's built-in
// http2 module, for test-51-players.sh.
//   node h2get.js URL OUT_FILE [RANGE]
// Writes the body to OUT_FILE and prints "status<TAB>N", the response's
// content-length / content-range / content-type as "header<TAB>value", and
// "bytes<TAB>N" (what arrived) on stdout; "error<TAB>why" and exit 1 when
// the stream or the session fails.  Gives up after 30 s.
'use strict';
const http2 = require('http2');
const fs = require('fs');

const [url, outFile, range] = process.argv.slice(2);
if (!url || !outFile) {
    console.error('usage: h2get.js URL OUT_FILE [RANGE]');
    process.exit(2);
}
const u = new URL(url);
const fail = (why) => {
    process.stdout.write(`error\t${why}\n`);
    process.exit(1);
};
setTimeout(() => fail('no complete response within 30 s'), 30000).unref();

const session = http2.connect(u.origin);
session.on('error', (e) => fail(`session: ${e.message}`));
const headers = { ':method': 'GET', ':path': u.pathname + u.search };
if (range) headers.range = range;
const req = session.request(headers);
const out = fs.createWriteStream(outFile);
let n = 0;
req.on('response', (h) => {
    process.stdout.write(`status\t${h[':status']}\n`);
    for (const k of ['content-length', 'content-range', 'content-type']) {
        if (h[k] !== undefined) process.stdout.write(`${k}\t${h[k]}\n`);
    }
});
req.on('data', (d) => { n += d.length; out.write(d); });
req.on('error', (e) => fail(`stream: ${e.message}`));
req.on('end', () => {
    // A stream reset by the peer ends with an error, not here; 'end' is the
    // END_STREAM flag, so the body is complete.
    out.end(() => {
        process.stdout.write(`bytes\t${n}\n`);
        session.close(() => process.exit(0));
    });
});
req.end();
