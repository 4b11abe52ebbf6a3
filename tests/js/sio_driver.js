'use strict';
// Named socket.io-client 4.x sockets driven by JSON lines, for
// tests/integration/test_plugin_socketio.py.
//
//   node sio_driver.js
//
// Commands on stdin (one JSON object a line):
//   {"op": "open", "id": "c1", "url": "http://127.0.0.1:PORT/chat",
//    "opts": {...}}           io(url, opts) (forceNew unless opts says);
//                             opts.reconnection defaults to false;
//                             opts.share: "c0" opens the namespace on the
//                             connection of socket c0 (one Engine.IO
//                             session, several namespaces)
//   {"op": "emit", "id": "c1", "name": "ev", "args": [...], "ack": "a1"}
//                             socket.emit(name, ...args[, ack callback]);
//                             with "ack", the callback's arguments come
//                             back as {"ev": "ack", "id", "ack", "args"}
//   {"op": "transport", "id": "c1"}  -> {"ev": "transport", "id", "name"}
//   {"op": "close", "id": "c1"}      socket.disconnect()
//   {"op": "connect", "id": "c1"}    socket.connect() (again, after close)
// Events on stdout:
//   {"ev": "connect", "id", "sid", "transport"}
//   {"ev": "connect_error", "id", "message", "data"}
//   {"ev": "disconnect", "id", "reason"}
//   {"ev": "upgrade", "id", "transport"}
//   {"ev": "event", "id", "name", "args", "acked": bool}   any event; when
//        the sender asked for an ack, the client answers it at once with
//        ("ack:" + name, ...args)
//   {"ev": "reconnect_attempt", "id", "n"}
// Binary values travel in this JSON as {"$b64": "<base64>"} both ways.
// stdin at EOF closes every socket and exits.

const readline = require('readline');
const { io } = require('socket.io-client');

const socks = {};

function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

function toJson(v) {
  if (Buffer.isBuffer(v)) return { $b64: v.toString('base64') };
  if (v instanceof ArrayBuffer) return { $b64: Buffer.from(v).toString('base64') };
  if (ArrayBuffer.isView(v)) {
    return { $b64: Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64') };
  }
  if (Array.isArray(v)) return v.map(toJson);
  if (v && typeof v === 'object') {
    const o = {};
    for (const k of Object.keys(v)) o[k] = toJson(v[k]);
    return o;
  }
  return v;
}

function fromJson(v) {
  if (Array.isArray(v)) return v.map(fromJson);
  if (v && typeof v === 'object') {
    if (typeof v.$b64 === 'string' && Object.keys(v).length === 1) {
      return Buffer.from(v.$b64, 'base64');
    }
    const o = {};
    for (const k of Object.keys(v)) o[k] = fromJson(v[k]);
    return o;
  }
  return v;
}

function open(cmd) {
  const id = cmd.id;
  const opts = Object.assign({ forceNew: true, reconnection: false,
                               timeout: 5000 }, cmd.opts || {});
  let s;
  if (opts.share) {
    // another namespace on the connection of socket `share` (multiplexed)
    s = socks[opts.share].io.socket(new URL(cmd.url).pathname,
                                    { auth: opts.auth });
    s.connect();
  } else {
    s = io(cmd.url, opts);
  }
  socks[id] = s;
  if (!opts.share) {
    // every Engine.IO connection of the manager (reconnections too)
    s.io.on('open', () => s.io.engine.on('upgrade', (t) =>
      emit({ ev: 'upgrade', id, transport: t.name })));
  }
  s.on('connect', () => {
    emit({ ev: 'connect', id, sid: s.id,
           transport: s.io.engine.transport.name });
  });
  s.on('connect_error', (e) => emit({ ev: 'connect_error', id,
                                      message: e.message,
                                      data: e.data === undefined ? null
                                        : toJson(e.data) }));
  s.on('disconnect', (reason) => emit({ ev: 'disconnect', id, reason }));
  s.io.on('reconnect_attempt', (n) => emit({ ev: 'reconnect_attempt', id, n }));
  s.onAny((name, ...args) => {
    let acked = false;
    if (args.length && typeof args[args.length - 1] === 'function') {
      const cb = args.pop();
      cb('ack:' + name, ...args);
      acked = true;
    }
    emit({ ev: 'event', id, name, args: toJson(args), acked });
  });
}

function handle(cmd) {
  const s = socks[cmd.id];
  switch (cmd.op) {
    case 'open':
      open(cmd);
      break;
    case 'emit': {
      const args = fromJson(cmd.args || []);
      if (cmd.ack !== undefined) {
        s.emit(cmd.name, ...args, (...got) =>
          emit({ ev: 'ack', id: cmd.id, ack: cmd.ack, args: toJson(got) }));
      } else {
        s.emit(cmd.name, ...args);
      }
      break;
    }
    case 'transport':
      emit({ ev: 'transport', id: cmd.id,
             name: s.io.engine ? s.io.engine.transport.name : null });
      break;
    case 'close':
      s.disconnect();
      break;
    case 'connect':                   // the same socket again, after close
      s.connect();
      break;
    default:
      emit({ ev: 'bad_command', cmd });
  }
}

const rl = readline.createInterface({ input: process.stdin });
rl.on('line', (line) => {
  if (!line.trim()) return;
  try {
    handle(JSON.parse(line));
  } catch (e) {
    emit({ ev: 'driver_error', message: String(e && e.stack || e) });
  }
});
rl.on('close', () => {
  for (const s of Object.values(socks)) s.disconnect();
  process.stdout.write('', () => process.exit(0));
});
