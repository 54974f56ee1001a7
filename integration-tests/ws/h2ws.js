// A WebSocket over HTTP/2 (RFC 8441) by hand, as a browser opens one: node's
// http2 client waits for the server's SETTINGS to allow extended CONNECT,
// sends it, then one masked text frame (RFC 6455 §5.2), and expects the
// app's unmasked echo.  Prints "status N" and "echo TEXT", or
// "no-extended-connect", "timeout", "error ...".
//   node h2ws.js BASE_URL PATH [AUTHORITY|-] [quiet=MS] [raw=BYTES]
// quiet=MS: nothing is sent for MS after the 200 (p's --client-idle must
// not cut the stream).  raw=BYTES: instead of a frame, BYTES random bytes
// and END_STREAM; expects them back whole and the app's END_STREAM
// ("raw N same, ended"); for h2app.js's /raw pipe.  wait=1: sends nothing
// and prints how the stream ended ("reset CODE" or "ended") and after how
// many ms: p's --stream-idle.
'use strict';
const http2 = require('http2');
const crypto = require('crypto');
const [base, path, authority, ...rest] = process.argv.slice(2);
const opt = Object.fromEntries(rest.map((a) => a.split('=')).map(([k, v]) => [k, Number(v)]));
const c = http2.connect(base, { rejectUnauthorized: false });
const bail = (what) => { console.log(what); c.destroy(); process.exit(1); };
setTimeout(() => bail('timeout'), 20000 + (opt.quiet || 0)).unref();
c.on('error', (e) => bail('error ' + e.message));
c.once('remoteSettings', (s) => {
  if (!s.enableConnectProtocol) bail('no-extended-connect');
  const st = c.request({ ':method': 'CONNECT', ':protocol': 'websocket', ':path': path,
                         ':scheme': base.startsWith('https') ? 'https' : 'http',
                         ...(authority && authority !== '-' ? { ':authority': authority } : {}),
                         'sec-websocket-version': '13' }, { endStream: false });
  st.on('error', (e) => { if (!opt.wait) bail('stream error ' + e.message); });
  let got = Buffer.alloc(0);
  st.on('response', (h) => {
    console.log('status ' + h[':status']);
    if (h[':status'] !== 200) { st.resume(); st.on('end', () => { c.close(); process.exit(0); }); return; }
    if (opt.wait) {
      const t0 = Date.now();
      st.resume();
      st.on('close', () => {
        console.log((st.rstCode ? 'reset ' + st.rstCode : 'ended') + ' after ' + (Date.now() - t0) + ' ms');
        c.close();
        process.exit(0);
      });
      return;
    }
    if (opt.raw) {
      const out = crypto.randomBytes(opt.raw);
      st.on('data', (d) => (got = Buffer.concat([got, d])));
      st.on('end', () => {
        console.log('raw ' + got.length + (got.equals(out) ? ' same' : ' differs') + ', ended');
        c.close();
        process.exit(0);
      });
      st.end(out);
      return;
    }
    setTimeout(() => {
      if (st.closed) bail('stream closed while quiet');
      const text = Buffer.from('over h2');
      const mask = crypto.randomBytes(4);
      const payload = Buffer.from(text.map((b, i) => b ^ mask[i % 4]));
      st.write(Buffer.concat([Buffer.from([0x81, 0x80 | text.length]), mask, payload]));
    }, opt.quiet || 0);
    st.on('data', (d) => {
      got = Buffer.concat([got, d]);
      if (got.length >= 2 && got.length >= 2 + (got[1] & 0x7f)) {
        console.log('echo ' + got.subarray(2, 2 + (got[1] & 0x7f)).toString());
        st.close();
        c.close();
        process.exit(0);
      }
    });
  });
});
