// sio_server.js -- the peer of tests/bench/socketio.sh: the npm socket.io@4
// server doing the same work as Tremolo + tests/bench/sio_node.c or
// tests/bench/sio_echo_app.py.
//
//     NODE_ENV=production NODE_PATH=tests/bench/sio_peer/node_modules \
//         node tests/bench/sio_server.js PORT [WORKERS]
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
//
// Without WORKERS: one process (the pinned runs). With WORKERS (the
// unpinned run, 2): the multi-core set-up socket.io's docs describe
// ("Using multiple nodes", "Cluster adapter"): Node's `cluster` forks
// WORKERS processes that each run the server above on the shared
// listening socket (the primary hands out connections, round-robin, the
// default on Linux), with @socket.io/cluster-adapter so that room
// broadcasts reach the clients of every worker (setupPrimary() in the
// primary, createAdapter() in each worker). No @socket.io/sticky: the docs
// need sticky sessions only for HTTP long-polling (several requests per
// session), and the bench's clients all use the websocket transport (one
// TCP connection per session); a polling client would need it. No
// "advanced" IPC serialization: it is for Buffer payloads, and the bench
// sends only strings and numbers. The primary prints "listening" once
// every worker listens, and on SIGTERM/SIGINT stops the workers first.
'use strict';

const cluster = require('cluster');
const http = require('http');
const { Server } = require('socket.io');

const port = Number(process.argv[2]);
const workers = process.argv.length > 3 ? Number(process.argv[3]) : 0;
if (!Number.isInteger(port) || port <= 0 || port > 65535 ||
    !Number.isInteger(workers) || workers < 0 || workers > 64) {
  console.error('usage: node sio_server.js PORT [WORKERS]');
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

function banner() {
  return `addons=${addons()} node=${process.version} ` +
         `NODE_ENV=${process.env.NODE_ENV || ''}`;
}

// The socket.io server of one process; `adapter` is the cluster
// adapter's factory in a worker, undefined otherwise (socket.io's
// default in-memory adapter).
function serve(adapter, onListening) {
  const httpServer = http.createServer((req, res) => {
    res.writeHead(404);
    res.end();
  });
  const opts = { serveClient: false, perMessageDeflate: false };
  if (adapter) opts.adapter = adapter;
  const io = new Server(httpServer, opts);
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
  httpServer.listen({ host: '127.0.0.1', port, backlog: 4096 }, onListening);
}

if (workers === 0) {
  serve(undefined, () => console.log(`listening ${port} ${banner()}`));
  for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));
} else if (cluster.isPrimary) {
  const { setupPrimary } = require('@socket.io/cluster-adapter');
  setupPrimary();
  let listening = 0;
  let alive = workers;
  let stopping = false;
  cluster.on('listening', () => {
    listening += 1;
    if (listening === workers)
      console.log(`listening ${port} ${banner()} workers=${workers} cluster-adapter`);
  });
  cluster.on('exit', (worker, code, signal) => {
    alive -= 1;
    if (!stopping) {              // a worker lost is a failed run: stop
      console.error(`sio_server: worker ${worker.process.pid} died (${signal || code})`);
      stopping = true;
      for (const w of Object.values(cluster.workers)) w.process.kill('SIGTERM');
      process.exitCode = 1;
    }
    if (alive === 0) process.exit();
  });
  for (const sig of ['SIGTERM', 'SIGINT']) {
    process.on(sig, () => {
      stopping = true;
      if (alive === 0) process.exit(0);
      for (const w of Object.values(cluster.workers)) w.process.kill('SIGTERM');
    });
  }
  for (let i = 0; i < workers; i++) cluster.fork();
} else {
  const { createAdapter } = require('@socket.io/cluster-adapter');
  serve(createAdapter(), () => {});
  for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));
}
