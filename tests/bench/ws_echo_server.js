// ws_echo_server.js -- the peer's backend in tests/bench/websocket.sh: an
// echo server on the npm package `ws` (tests/js/node_modules, installed by
// tests/js/setup.sh), which nginx proxies WebSocket connections to.
//
//     NODE_PATH=tests/js/node_modules node tests/bench/ws_echo_server.js PORT
//
// Listens on 127.0.0.1:PORT; every message comes back as it came (text as
// text, binary as binary). Tuned for throughput as ws's README suggests:
// no permessage-deflate, no client tracking (no Set of clients to keep).
// Prints "listening PORT" once the socket is bound; SIGTERM/SIGINT end it.
'use strict';

const { WebSocketServer } = require('ws');

const port = Number(process.argv[2]);
if (!Number.isInteger(port) || port <= 0 || port > 65535) {
  console.error('usage: node ws_echo_server.js PORT');
  process.exit(2);
}

const wss = new WebSocketServer({
  host: '127.0.0.1',
  port,
  backlog: 4096,
  perMessageDeflate: false,
  clientTracking: false,
  maxPayload: 1 << 20,
});

wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  ws.on('error', () => {});
});
wss.on('listening', () => console.log(`listening ${port}`));
wss.on('error', (err) => {
  console.error(`ws_echo_server: ${err.message}`);
  process.exit(1);
});
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));
