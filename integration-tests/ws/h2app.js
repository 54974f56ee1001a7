// An h2c app that takes WebSockets over HTTP/2 (RFC 8441) when run with
// "connect" (it then advertises SETTINGS_ENABLE_CONNECT_PROTOCOL), and
// echoes each CONNECT stream's bytes: the frames are the client's, opaque
// to tether.  Without "connect" it offers no extended CONNECT (c must say
// 502).  A CONNECT to /raw is piped back as it is, with its end: for bytes
// that are no WebSocket frames at all, and half-close.
//   node h2app.js PORTFILE [connect]
'use strict';
const http2 = require('http2');
const fs = require('fs');
const allow = process.argv[3] === 'connect';
const s = http2.createServer({ settings: { enableConnectProtocol: allow } });
s.on('stream', (st, h) => {
  st.on('error', () => {});
  if (h[':method'] !== 'CONNECT') { st.respond({ ':status': 200 }); st.end('h2 app\n'); return; }
  st.respond({ ':status': 200 });
  if (h[':path'].startsWith('/raw')) { st.pipe(st); return; }
  // Unmask the client's frames and echo them unmasked: a minimal server side.
  let buf = Buffer.alloc(0);
  st.on('data', (d) => {
    buf = Buffer.concat([buf, d]);
    while (buf.length >= 6) {
      const len = buf[1] & 0x7f; // short frames only: the test's
      if (buf.length < 6 + len) break;
      const mask = buf.subarray(2, 6);
      const p = Buffer.from(buf.subarray(6, 6 + len).map((b, i) => b ^ mask[i % 4]));
      st.write(Buffer.concat([Buffer.from([buf[0], len]), p]));
      buf = buf.subarray(6 + len);
    }
  });
});
s.listen(0, '127.0.0.1', () => fs.writeFileSync(process.argv[2], String(s.address().port)));
