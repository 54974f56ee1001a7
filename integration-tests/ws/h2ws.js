// A WebSocket over HTTP/2 (RFC 8441) by hand, as a browser opens one: node's
// http2 client sends extended CONNECT once the server's SETTINGS allow it,
// then one masked text frame (RFC 6455 §5.2), and expects the app's
// unmasked echo.  Prints "status N" and "echo TEXT", or "no-extended-connect".
//   node h2ws.js BASE_URL PATH [AUTHORITY]
'use strict';
const http2 = require('http2');
const crypto = require('crypto');
const [base, path, authority] = process.argv.slice(2);
const c = http2.connect(base, { rejectUnauthorized: false });
const bail = (what) => { console.log(what); c.destroy(); process.exit(1); };
setTimeout(() => bail('timeout'), 10000).unref();
c.on('error', (e) => bail('error ' + e.message));
c.once('remoteSettings', (s) => {
  if (!s.enableConnectProtocol) bail('no-extended-connect');
  const st = c.request({ ':method': 'CONNECT', ':protocol': 'websocket', ':path': path,
                         ':scheme': base.startsWith('https') ? 'https' : 'http',
                         ...(authority ? { ':authority': authority } : {}),
                         'sec-websocket-version': '13' });
  st.on('response', (h) => {
    console.log('status ' + h[':status']);
    if (h[':status'] !== 200) { st.resume(); st.on('end', () => { c.close(); process.exit(0); }); return; }
    const text = Buffer.from('over h2');
    const mask = crypto.randomBytes(4);
    const payload = Buffer.from(text.map((b, i) => b ^ mask[i % 4]));
    st.write(Buffer.concat([Buffer.from([0x81, 0x80 | text.length]), mask, payload]));
  });
  let got = Buffer.alloc(0);
  st.on('data', (d) => {
    got = Buffer.concat([got, d]);
    if (got.length >= 2 && got.length >= 2 + (got[1] & 0x7f)) {
      console.log('echo ' + got.subarray(2, 2 + (got[1] & 0x7f)).toString());
      st.close();
      c.close();
      process.exit(0);
    }
  });
  st.on('error', (e) => bail('stream error ' + e.message));
});
