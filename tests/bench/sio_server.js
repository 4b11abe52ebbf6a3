// sio_server.js -- the peer of tests/bench/socketio.sh: the npm socket.io@4
// server doing the same work as Tremolo + tests/bench/sio_node.c or
// tests/bench/sio_echo_app.py.
//
//     NODE_ENV=production NODE_PATH=tests/bench/sio_peer/node_modules \
//         node tests/bench/sio_server.js PORT
//
// Listens on 127.0.0.1:PORT, path /socket.io/ (the default), and:
//   connection         -> socket.join("all")
//   "echo" with an ack -> the ack gets the event's arguments back
//   "bcast"            -> io.to("all").emit("tick", T), T = CLOCK_MONOTONIC
//                         in ms (process.hrtime, the clock of the load
//                         client and of the other nodes) just before the emit
//
// Configured as socket.io's docs recommend for production: the websocket
// transport allowed (polling too: the default list), no per-message
// deflate (the default), ws with its native add-ons bufferutil and
// utf-8-validate when installed (tests/bench/sio_peer/setup.sh installs
// them; ws loads them by itself), NODE_ENV=production, serveClient off (the
// bundle is not this benchmark's business), the default heartbeat (25 s /
// 20 s, as Tremolo's defaults). Prints "listening PORT addons=..." once
// bound; SIGTERM/SIGINT end it.
'use strict';

const http = require('http');
const { Server } = require('socket.io');

const port = Number(process.argv[2]);
if (!Number.isInteger(port) || port <= 0 || port > 65535) {
  console.error('usage: node sio_server.js PORT');
  process.exit(2);
}

function addons() {
  const have = [];
  for (const name of ['bufferutil', 'utf-8-validate']) {
    try {
      require(name);
      have.push(name);
    } catch (e) { /* ws falls back to JavaScript */ }
  }
  return have.length ? have.join(',') : 'none';
}

const httpServer = http.createServer((req, res) => {
  res.writeHead(404);
  res.end();
});
const io = new Server(httpServer, {
  serveClient: false,
  perMessageDeflate: false,
});
const nowMs = () => Number(process.hrtime.bigint()) / 1e6;

io.on('connection', (socket) => {
  socket.join('all');
  socket.on('echo', (...args) => {
    const ack = args.pop();
    if (typeof ack === 'function') ack(...args);
  });
  socket.on('bcast', () => {
    io.to('all').emit('tick', nowMs());
  });
});

httpServer.on('error', (err) => {
  console.error(`sio_server: ${err.message}`);
  process.exit(1);
});
httpServer.listen({ host: '127.0.0.1', port, backlog: 4096 }, () => {
  console.log(`listening ${port} addons=${addons()} node=${process.version} ` +
              `NODE_ENV=${process.env.NODE_ENV || ''}`);
});
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));
