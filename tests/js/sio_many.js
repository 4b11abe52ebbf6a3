'use strict';
// Many socket.io-client 4.x sockets (websocket transport only, unless
// cfg.transports says) from one process, for the broadcast scale tests.
//
//   node sio_many.js '{"url": "http://127.0.0.1:PORT/", "count": 1000,
//                      "concurrency": 200, "event": "tick", "expect": "go"}'
//
// Connects `count` sockets, at most `concurrency` connecting at a time, and
// prints JSON lines:
//   {"ev": "ready", "connected": N, "failed": N, "errors": {...}, "ms": N}
//   {"ev": "all", "got": N, "ms": N}   once every connected socket has
//                                      received `event` with args [expect]
// Commands on stdin: {"op": "report"} -> {"ev": "report", "got", "wrong",
// "connected", "failed", "disconnected"}. stdin at EOF disconnects
// everything and exits.

const readline = require('readline');
const { io } = require('socket.io-client');

const cfg = JSON.parse(process.argv[2]);
const count = cfg.count;
const concurrency = cfg.concurrency || 200;
const socks = [];
const errors = {};
let started = 0, connected = 0, failed = 0, settled = 0;
let got = 0, wrong = 0, disconnected = 0, announced = false;
const t0 = Date.now();

function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

function checkAll() {
  if (!announced && settled === count && connected > 0 && got === connected) {
    announced = true;
    emit({ ev: 'all', got, ms: Date.now() - t0 });
  }
}

function settle() {
  settled++;
  if (settled === count) {
    emit({ ev: 'ready', connected, failed, errors, ms: Date.now() - t0 });
    checkAll();
  }
  next();
}

function next() {
  if (started >= count) return;
  started++;
  const s = io(cfg.url, { forceNew: true, reconnection: false,
                          transports: cfg.transports || ['websocket'],
                          timeout: 20000 });
  socks.push(s);
  let done = false, seen = false;
  s.on('connect', () => {
    if (done) return;
    done = true;
    connected++;
    settle();
  });
  s.on('connect_error', (e) => {
    if (done) return;
    done = true;
    failed++;
    errors[e.message] = (errors[e.message] || 0) + 1;
    settle();
  });
  s.on('disconnect', () => { disconnected++; });
  s.on(cfg.event, (...args) => {
    if (!seen && args.length === 1 && args[0] === cfg.expect) {
      seen = true;
      got++;
      checkAll();
    } else {
      wrong++;
    }
  });
}

for (let i = 0; i < Math.min(concurrency, count); i++) next();

const rl = readline.createInterface({ input: process.stdin });
rl.on('line', (line) => {
  let cmd;
  try { cmd = JSON.parse(line); } catch (e) { return; }
  if (cmd.op === 'report') {
    emit({ ev: 'report', got, wrong, connected, failed, disconnected });
  }
});
rl.on('close', () => {
  for (const s of socks) s.disconnect();
  process.stdout.write('', () => process.exit(0));
});
