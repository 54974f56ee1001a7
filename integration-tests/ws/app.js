// The WebSocket app behind `c --upstream http://...` in test-47 (npm's ws).
//   node app.js PORTFILE      binds 127.0.0.1:0, writes the port, serves until killed
// Paths:
//   /echo      echoes text and binary; picks subprotocol "chat" when offered;
//              "close:CODE:REASON" makes it close with that code and reason
//              (and prints "app saw close CODE REASON" when the client closes
//              with a code of its own, 4000-4999: the close as the app saw it)
//   /push      on "go N" sends N MiB as 64 KiB binary messages, each after the
//              last was written (so a slow reader backs up through tether, not here)
//   /progress  answers each message with the bytes the last /push socket has
//              written so far (what a stalled reader let through)
//   /deflate   as /echo, with permessage-deflate offered back (RFC 7692)
//   /refuse    refuses the upgrade: 403 with the body "nope!"
//   /refuse304 refuses it with a 304 (no body, no Content-Length)
//   /ok200     answers the upgrade with a plain 200 (no 101): not a WebSocket
//   /page.html a page that echoes over a WebSocket (for Chromium)
'use strict';
const http = require('http');
const fs = require('fs');
const { WebSocketServer } = require('ws');

// /page.html: a page whose script echoes one message over a WebSocket to its
// own origin and writes the answer into the page (test-47's Chromium check).
// The page sends a text message, then 64 KiB of binary, and checks both
// echoes: "echo:TEXT binary:N same" (or what differed).
const page = `<!doctype html><html><head><meta charset=utf-8><title>ws</title></head><body>
<p id=out>waiting</p><script>
const out = (t) => { document.getElementById('out').textContent = t; };
const ws = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/echo?from=chromium');
ws.binaryType = 'arraybuffer';
const bin = new Uint8Array(65536).map((_, i) => (i * 7 + 3) & 255);
let text = null;
ws.onopen = () => { ws.send('from chromium'); ws.send(bin); };
ws.onmessage = (e) => {
  if (text === null) { text = e.data; return; }
  const got = new Uint8Array(e.data);
  const same = got.length === bin.length && got.every((b, i) => b === bin[i]);
  out('echo:' + text + ' binary:' + got.length + (same ? ' same' : ' differs'));
  ws.close(1000);
};
ws.onerror = () => out('ws-error');
</script></body></html>`;
const server = http.createServer((req, res) => {
  if (req.url === '/page.html') {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(page);
    return;
  }
  res.writeHead(426);
  res.end('websocket here\n');
});
const wss = new WebSocketServer({
  noServer: true,
  maxPayload: 64 << 20,
  handleProtocols: (protocols) => (protocols.has('chat') ? 'chat' : false),
});
const deflate = new WebSocketServer({ noServer: true, maxPayload: 64 << 20, perMessageDeflate: true });
let pushed = 0; // bytes the last /push socket has written

server.on('upgrade', (req, socket, head) => {
  socket.on('error', () => {});
  if (req.url.startsWith('/refuse304')) {
    socket.end('HTTP/1.1 304 Not Modified\r\nX-Refused: yes\r\n\r\n');
    return;
  }
  if (req.url.startsWith('/refuse')) {
    socket.end('HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nnope!');
    return;
  }
  if (req.url.startsWith('/ok200')) {
    // a 2xx to an upgrade is no WebSocket (RFC 6455 §4.1: only 101 is)
    socket.end('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nhi\n');
    return;
  }
  const srv = req.url.startsWith('/deflate') ? deflate : wss;
  srv.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
});

wss.on('connection', (ws, req) => {
  ws.on('error', () => {});
  if (req.url.startsWith('/push')) {
    ws.on('message', (m) => {
      const parts = m.toString().split(' ');
      let left = Number(parts[1]) * 16; // 64 KiB chunks
      const chunk = Buffer.alloc(64 << 10, 0x5a);
      pushed = 0;
      const next = (err) => {
        if (err || left-- <= 0) return;
        ws.send(chunk, { binary: true }, (e) => {
          if (!e) pushed += chunk.length;
          next(e);
        });
      };
      next();
    });
    return;
  }
  if (req.url.startsWith('/progress')) {
    ws.on('message', () => ws.send(String(pushed)));
    return;
  }
  let closing = false; // the app closed first: not the client's code
  ws.on('close', (code, reason) => {
    if (!closing && code >= 4000 && code < 5000) console.log('app saw close ' + code + ' ' + reason);
  });
  ws.on('message', (m, binary) => {
    if (!binary) {
      const t = m.toString();
      if (t.startsWith('close:')) {
        const [, code, reason] = t.split(':');
        closing = true;
        ws.close(Number(code), reason);
        return;
      }
    }
    ws.send(m, { binary });
  });
});

server.listen(0, '127.0.0.1', () => fs.writeFileSync(process.argv[2], String(server.address().port)));
