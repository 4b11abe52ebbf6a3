'use strict';
// Many concurrent `ws` connections from one process, for the broadcast
// scale test.
//
//   node ws_many.js '{"url": "ws://127.0.0.1:PORT/ws", "count": 5000,
//                     "concurrency": 250, "expect": "TEXT"}'
//
// Opens `count` connections, at most `concurrency` handshakes at a time
// (no per-message deflate: the server's budget is not what is measured),
// then prints JSON lines on stdout:
//   {"ev": "ready", "opened": N, "failed": N, "ms": N, "errors": {...}}
//   {"ev": "all", "got": N, "ms": N}    once every open connection has
//                                       received a message equal to expect
// Commands on stdin (JSON lines):
//   {"op": "report"}  -> {"ev": "report", "got", "messages", "wrong",
//                         "closed", "opened", "failed", "codes"}
//   {"op": "close"}   -> closes every connection (code 1000) and prints
//                        {"ev": "closed", "count", "codes": {code: n}}
//                        when all are closed, then exits.
// stdin at EOF terminates everything and exits.

const readline = require('readline');
const WebSocket = require('ws');

const cfg = JSON.parse(process.argv[2]);
const count = cfg.count;
const concurrency = cfg.concurrency || 250;
const expect = cfg.expect === undefined ? null : String(cfg.expect);

const socks = [];
const errors = {};
let started = 0;
let opened = 0;
let failed = 0;
let settled = 0;
let got = 0;          // connections that received `expect`
let messages = 0;     // all messages received
let wrong = 0;        // messages that were not `expect`
let closed = 0;
const codes = {};
let closing = false;
let announcedAll = false;
const t0 = Date.now();

function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

// Exit only once stdout is flushed (a pipe is written asynchronously).
function finish() {
  for (const ws of socks) ws.terminate();
  process.stdout.write('', () => process.exit(0));
}

function checkAll() {
  if (!announcedAll && settled === count && opened > 0 && got === opened) {
    announcedAll = true;
    emit({ ev: 'all', got, ms: Date.now() - t0 });
  }
}

function checkClosed() {
  if (closing && closed === opened) {
    emit({ ev: 'closed', count: closed, codes });
    finish();
  }
}

function settle() {
  settled++;
  if (settled === count) {
    emit({ ev: 'ready', opened, failed, ms: Date.now() - t0, errors });
    checkAll();
  }
  next();
}

function openOne() {
  const ws = new WebSocket(cfg.url, { perMessageDeflate: false,
                                      handshakeTimeout: 30000 });
  socks.push(ws);
  let isOpen = false;
  let done = false;
  let gotExpect = false;
  ws.on('open', () => {
    isOpen = true;
    opened++;
    done = true;
    settle();
  });
  ws.on('message', (data) => {
    messages++;
    if (expect !== null && data.toString() === expect) {
      if (!gotExpect) {
        gotExpect = true;
        got++;
        checkAll();
      }
    } else {
      wrong++;
    }
  });
  ws.on('error', (err) => {
    const k = String(err && (err.code || err.message));
    errors[k] = (errors[k] || 0) + 1;
    if (!done) {
      done = true;
      failed++;
      settle();
    }
  });
  ws.on('close', (code) => {
    if (!done) {
      done = true;
      failed++;
      settle();
    }
    if (isOpen) {
      closed++;
      codes[code] = (codes[code] || 0) + 1;
      checkClosed();
    }
  });
}

function next() {
  while (started < count && started - settled < concurrency) {
    started++;
    openOne();
  }
}

next();

const rl = readline.createInterface({ input: process.stdin,
                                      crlfDelay: Infinity });
rl.on('line', (line) => {
  if (!line.trim()) return;
  const cmd = JSON.parse(line);
  if (cmd.op === 'report') {
    emit({ ev: 'report', got, messages, wrong, closed, opened, failed,
           codes });
  } else if (cmd.op === 'close') {
    closing = true;
    for (const ws of socks) {
      if (ws.readyState === WebSocket.OPEN) ws.close(1000);
    }
    checkClosed();
  }
});
rl.on('close', finish);
