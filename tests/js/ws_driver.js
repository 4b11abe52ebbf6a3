'use strict';
// A scriptable `ws` client for the Python integration tests.
//
//   node ws_driver.js            (commands on stdin, events on stdout)
//
// Both ways are JSON lines. Commands ({"op": ...}):
//   open   {id, url, protocols?, deflate?, ca?, insecure?, headers?, inline?}
//          deflate: perMessageDeflate (true = ws's default offer, an object
//          is passed through, false = no offer; default true, as ws does).
//   send   {id, text} or {id, b64, binary?}, optional fin (false sends a
//          non-final fragment), compress, ack (emit "sent" when written)
//   ping   {id, b64?}
//   close  {id, code?, reason?}
//   terminate {id}        drop the TCP connection without a close frame
//   stats  {id}           bytes read/written on the underlying socket
//   exit                  terminate everything and exit
// Events ({"ev": ...}): upgrade {id, status, headers}, open {id, protocol,
// extensions}, message {id, binary, len, sha256, b64 (when len <= inline,
// default 64 KiB)}, ping/pong {id, b64}, close {id, code, reason},
// error {id, message}, unexpected {id, status, headers, body},
// sent {id, seq}, stats {id, bytesRead, bytesWritten}, bad {line, message}.
// stdin at EOF terminates every connection and exits.

const crypto = require('crypto');
const fs = require('fs');
const readline = require('readline');
const WebSocket = require('ws');

const conns = new Map();

function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

// Exit only once stdout is flushed (a pipe is written asynchronously).
function finish() {
  for (const ws of conns.values()) ws.terminate();
  process.stdout.write('', () => process.exit(0));
}

function toBuffer(data) {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

function describe(id, buf, inline) {
  const ev = {
    id, len: buf.length,
    sha256: crypto.createHash('sha256').update(buf).digest('hex'),
  };
  if (buf.length <= inline) ev.b64 = buf.toString('base64');
  return ev;
}

function open(cmd) {
  const id = cmd.id;
  const inline = cmd.inline === undefined ? 65536 : cmd.inline;
  const opts = {
    handshakeTimeout: cmd.handshakeTimeout || 10000,
    perMessageDeflate: cmd.deflate === undefined ? true : cmd.deflate,
    maxPayload: 256 * 1024 * 1024,
  };
  if (cmd.headers) opts.headers = cmd.headers;
  if (cmd.ca) opts.ca = fs.readFileSync(cmd.ca);
  if (cmd.insecure) opts.rejectUnauthorized = false;
  const ws = new WebSocket(cmd.url, cmd.protocols || [], opts);
  conns.set(id, ws);
  ws.on('upgrade', (res) => {
    emit({ ev: 'upgrade', id, status: res.statusCode, headers: res.headers });
  });
  ws.on('unexpected-response', (req, res) => {
    const chunks = [];
    res.on('data', (c) => chunks.push(c));
    const done = () => {
      emit({ ev: 'unexpected', id, status: res.statusCode,
             headers: res.headers,
             body: Buffer.concat(chunks).toString('latin1') });
      req.destroy();
    };
    res.on('end', done);
    res.on('error', done);
  });
  ws.on('open', () => {
    emit({ ev: 'open', id, protocol: ws.protocol,
           extensions: ws.extensions });
  });
  ws.on('message', (data, isBinary) => {
    const ev = describe(id, toBuffer(data), inline);
    ev.ev = 'message';
    ev.binary = isBinary;
    emit(ev);
  });
  ws.on('ping', (data) => {
    emit({ ev: 'ping', id, b64: toBuffer(data).toString('base64') });
  });
  ws.on('pong', (data) => {
    emit({ ev: 'pong', id, b64: toBuffer(data).toString('base64') });
  });
  ws.on('close', (code, reason) => {
    emit({ ev: 'close', id, code, reason: toBuffer(reason).toString() });
    conns.delete(id);
  });
  ws.on('error', (err) => {
    emit({ ev: 'error', id, message: String(err && err.message) });
  });
}

let seq = 0;

function handle(cmd) {
  if (cmd.op === 'open') return open(cmd);
  if (cmd.op === 'exit') return finish();
  const ws = conns.get(cmd.id);
  if (!ws) {
    emit({ ev: 'error', id: cmd.id, message: 'no such connection' });
    return;
  }
  switch (cmd.op) {
    case 'send': {
      let data;
      let binary;
      if (cmd.text !== undefined) {
        data = Buffer.from(cmd.text, 'utf8');
        binary = false;
      } else {
        data = Buffer.from(cmd.b64 || '', 'base64');
        binary = cmd.binary !== false;
      }
      const n = ++seq;
      const opts = { binary, fin: cmd.fin !== false };
      if (cmd.compress !== undefined) opts.compress = cmd.compress;
      ws.send(data, opts, (err) => {
        if (err) emit({ ev: 'error', id: cmd.id, message: err.message });
        else if (cmd.ack) emit({ ev: 'sent', id: cmd.id, seq: n });
      });
      break;
    }
    case 'ping':
      ws.ping(Buffer.from(cmd.b64 || '', 'base64'));
      break;
    case 'close':
      ws.close(cmd.code, cmd.reason);
      break;
    case 'terminate':
      ws.terminate();
      break;
    case 'stats': {
      const s = ws._socket;
      emit({ ev: 'stats', id: cmd.id, bytesRead: s ? s.bytesRead : null,
             bytesWritten: s ? s.bytesWritten : null });
      break;
    }
    default:
      emit({ ev: 'bad', line: JSON.stringify(cmd), message: 'unknown op' });
  }
}

const rl = readline.createInterface({ input: process.stdin,
                                      crlfDelay: Infinity });
rl.on('line', (line) => {
  if (!line.trim()) return;
  let cmd;
  try {
    cmd = JSON.parse(line);
  } catch (e) {
    emit({ ev: 'bad', line: line.slice(0, 200), message: e.message });
    return;
  }
  try {
    handle(cmd);
  } catch (e) {
    emit({ ev: 'error', id: cmd.id, message: 'driver: ' + e.message });
  }
});
rl.on('close', finish);
