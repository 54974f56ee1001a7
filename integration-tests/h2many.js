#!/usr/bin/env node
// N requests at once on one HTTP/2 connection with prior knowledge (h2c),
// from Node's built-in http2 module (test-44-forward.sh).  Each asks for a
// range of its own (1000 bytes at a random offset) and must get exactly
// those bytes of FILE: requests that waited in a queue must not come back
// with another request's fields.
//   node h2many.js ORIGIN AUTHORITY PATH FILE N
// Prints one JSON object: outcome -> how many streams ended so ("ok", or
// "mismatch"/"error <code>"), the first few mismatches on stderr.  Gives
// up after 30 s.
'use strict';
const http2 = require('http2');
const fs = require('fs');

const [origin, authority, path, file, n] = process.argv.slice(2);
if (!origin || !authority || !path || !file || !(+n > 0)) {
    console.error('usage: h2many.js ORIGIN AUTHORITY PATH FILE N');
    process.exit(2);
}
const data = fs.readFileSync(file);
if (data.length < 2000) {
    console.error('FILE must have 2000 bytes or more');
    process.exit(2);
}
setTimeout(() => { console.log(JSON.stringify({ timeout: 1 })); process.exit(1); }, 30000).unref();
const session = http2.connect(origin);
session.on('error', (e) => { console.log(JSON.stringify({ ['session ' + e.message]: 1 })); process.exit(1); });
const seen = {};
let done = 0;
let told = 0;
const end = (k, why) => {
    seen[k] = (seen[k] || 0) + 1;
    if (why && told++ < 5) console.error(why);
    if (++done === +n) {
        console.log(JSON.stringify(seen));
        session.close();
    }
};
for (let i = 0; i < +n; i++) {
    const a = Math.floor(Math.random() * (data.length - 1000));
    const want = `bytes ${a}-${a + 999}/${data.length}`;
    const req = session.request({ ':path': `${path}?i=${i}`, ':authority': authority, range: `bytes=${a}-${a + 999}` });
    let head = '';
    const parts = [];
    req.on('response', (hd) => { head = `${hd[':status']} ${hd['content-range'] || ''}`; });
    req.on('data', (d) => parts.push(d));
    req.on('end', () => {
        const body = Buffer.concat(parts);
        if (head === `206 ${want}` && body.equals(data.subarray(a, a + 1000))) end('ok');
        else end('mismatch', `stream ${i}: asked ${want}, got ${head} (${body.length} bytes: ${body.subarray(0, 60).toString('latin1').trim()})`);
    });
    req.on('error', (e) => end('error ' + (e.code || e.message)));
}
