// The WebSocket app behind `c --upstream http://...` in test-47 (npm's ws).
//   node app.js PORTFILE      binds 127.0.0.1:0, writes the port, serves until killed
// Paths:
//   /echo      echoes text and binary; picks subprotocol "chat" when offered;
//              "close:CODE:REASON" makes it close with that code and reason
//   /push      on "go N" sends N MiB as 64 KiB binary messages, each after the
//              last was written (so a slow reader backs up through tether, not here)
//   /refuse    refuses the upgrade: 403 with the body "nope!"
//   /page.html a page that echoes over a WebSocket (for Chromium)
'use strict';
const http = require('http');
const fs = require('fs');
const { WebSocketServer } = require('ws');

// /page.html: a page whose script echoes one message over a WebSocket to its
// own origin and writes the answer into the page (test-47's Chromium check).
const page = `<!doctype html><html><head><meta charset=utf-8><title>ws</title></head><body>
<p id=out>waiting</p><script>
const ws = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/echo');
ws.onopen = () => ws.send('from chromium');
ws.onmessage = (e) => { document.getElementById('out').textContent = 'echo:' + e.data; ws.close(); };
ws.onerror = () => { document.getElementById('out').textContent = 'ws-error'; };
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

server.on('upgrade', (req, socket, head) => {
  socket.on('error', () => {});
  if (req.url.startsWith('/refuse')) {
    socket.end('HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nnope!');
    return;
  }
  wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
});

wss.on('connection', (ws, req) => {
  ws.on('error', () => {});
  if (req.url.startsWith('/push')) {
    ws.on('message', (m) => {
      const parts = m.toString().split(' ');
      let left = Number(parts[1]) * 16; // 64 KiB chunks
      const chunk = Buffer.alloc(64 << 10, 0x5a);
      const next = (err) => {
        if (err || left-- <= 0) return;
        ws.send(chunk, { binary: true }, next);
      };
      next();
    });
    return;
  }
  ws.on('message', (m, binary) => {
    if (!binary) {
      const t = m.toString();
      if (t.startsWith('close:')) {
        const [, code, reason] = t.split(':');
        ws.close(Number(code), reason);
        return;
      }
    }
    ws.send(m, { binary });
  });
});

server.listen(0, '127.0.0.1', () => fs.writeFileSync(process.argv[2], String(server.address().port)));
