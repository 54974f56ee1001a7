// An HTTP/2 app with prior knowledge (h2c) behind `c --upstream h2c://...`
// (test-41), answering like a gRPC server does: a head, DATA, then trailers
// with grpc-status.  Node's built-in http2 module only.
//
//   node upstream_h2app.js PORTFILE [PORT]
//
// Binds 127.0.0.1 (port 0 = a free one unless PORT is given), writes the
// port to PORTFILE, serves until killed.  Logs one line per event to stderr.
//
//   /hello        "hello h2\n" x 1000, trailers grpc-status: 0, grpc-message: ok
//   /echo         the request body streamed back, trailers x-body-sha256 and
//                 grpc-status: 0 (request trailers, if any, echoed as x-req-*)
//   /reset        RST_STREAM(ENHANCE_YOUR_CALM) without an answer
//   /reset-mid    a head and 64 KiB, then RST_STREAM(INTERNAL_ERROR)
//   /slow         an endless body, 4 KiB every 20 ms; logs the stream's end
//                 and the RST code it got
//   /big          16 MiB of 'b' at once (as fast as the windows allow)
'use strict';
const http2 = require('http2');
const crypto = require('crypto');
const fs = require('fs');

const portFile = process.argv[2];
const wantPort = parseInt(process.argv[3] || '0', 10);
const { NGHTTP2_ENHANCE_YOUR_CALM } = http2.constants;
const log = (s) => process.stderr.write('h2app: ' + s + '\n');

let sessions = 0;
const server = http2.createServer();
server.on('session', () => { sessions++; log('session ' + sessions); });
server.on('stream', (stream, headers) => {
  const path = headers[':path'];
  log(headers[':method'] + ' ' + path + ' te=' + (headers.te || ''));
  stream.on('error', () => {});
  if (path === '/hello') {
    stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
    stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0', 'grpc-message': 'ok' }));
    stream.end(Buffer.from('hello h2\n'.repeat(1000)));
  } else if (path === '/echo') {
    const h = crypto.createHash('sha256');
    const reqTrailers = {};
    stream.on('trailers', (t) => {
      for (const k of Object.keys(t)) reqTrailers['x-req-' + k] = String(t[k]);
    });
    stream.respond({ ':status': 200 }, { waitForTrailers: true });
    stream.on('wantTrailers', () => stream.sendTrailers(Object.assign(
      { 'x-body-sha256': h.digest('hex'), 'grpc-status': '0' }, reqTrailers)));
    stream.on('data', (d) => { h.update(d); });
    stream.pipe(stream);
  } else if (path === '/reset') {
    stream.close(NGHTTP2_ENHANCE_YOUR_CALM);
  } else if (path === '/reset-mid') {
    stream.respond({ ':status': 200 });
    stream.write(Buffer.alloc(65536, 0x72), () => {
      // close(code) after a write would end the stream cleanly first:
      // destroy() with an error resets it (INTERNAL_ERROR).
      setTimeout(() => stream.destroy(new Error('reset mid-body')), 200);
    });
  } else if (path === '/slow') {
    stream.respond({ ':status': 200 });
    const chunk = Buffer.alloc(4096, 0x73);
    const t = setInterval(() => { if (!stream.destroyed) stream.write(chunk); }, 20);
    stream.on('close', () => {
      clearInterval(t);
      log('slow stream closed rstCode=' + stream.rstCode);
    });
  } else if (path === '/big') {
    stream.respond({ ':status': 200 });
    stream.end(Buffer.alloc(16 << 20, 0x62));
  } else {
    stream.respond({ ':status': 404 });
    stream.end('not found\n');
  }
});
server.listen(wantPort, '127.0.0.1', () => {
  fs.writeFileSync(portFile + '.tmp', String(server.address().port));
  fs.renameSync(portFile + '.tmp', portFile);
  log('listening on ' + server.address().port);
});
