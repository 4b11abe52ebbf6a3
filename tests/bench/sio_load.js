// sio_load.js -- the load client of tests/bench/socketio.sh: many
// socket.io-client 4.x clients (tests/js/node_modules, websocket transport
// only) in one or several Node.js processes.
//
//     NODE_PATH=tests/bench/sio_peer/node_modules node tests/bench/sio_load.js MODE URL ...
//
//   echo  URL CLIENTS SECONDS [PAYLOAD_BYTES [PROCS]]
//         closed loop: each client emits "echo" with one string argument of
//         PAYLOAD_BYTES (32) and an ack callback, and emits the next one when
//         the ack came back with the same argument. Prints one line:
//         "events events_per_s p50_ms p99_ms connect_errors missing_acks
//          other_errors client_cpu_pct"
//   bcast URL CLIENTS ROUNDS [PROCS [step]]
//         every client is a member of room "all" (the server joins it on
//         connect); per round one client emits "bcast" and every client
//         notes when its "tick" arrived. Prints "ready N", then one line per
//         round: "round R received N p50 p99 max (from the server's
//         send, ms) p50 p99 max (from the trigger, ms) client_cpu_ms", then
//         "errors connect_errors missing_ticks other_errors". With `step`,
//         each round starts when a line arrives on stdin.
//   idle  URL CLIENTS [PROCS]
//         connects CLIENTS clients, prints "ready N" and holds them until
//         stdin reaches EOF (or SIGTERM); then "errors ..." as bcast.
//
// A client counts as connected when its namespace CONNECT succeeded and one
// "echo" was acknowledged: the server has then run its connect handler
// (for a node: the node answered the event after its connect, so its room
// join is in place). Connections open at most 100 at a time per process.
// Errors: connect errors (connect_error, or not connected within 30 s),
// missing acks (an ack not back within 5 s, or with other arguments),
// missing ticks (a member without its tick 10 s after the trigger), other
// errors (a disconnect the client did not ask for). A run with errors is
// not a result: socketio.sh prints it as INVALID.
//
// The client: SIO_LOAD_CLIENT=socket.io-client (the default: socket.io-client
// 4.x from tests/js/node_modules, one Manager per client, websocket
// transport, no reconnection) or SIO_LOAD_CLIENT=raw (the same packets on
// the npm `ws` client directly: about half the client CPU per event, so one
// client core can keep a server core busy; see RawClient below).
//
// Times are CLOCK_MONOTONIC in ms (process.hrtime; the servers' "tick"
// argument uses the same clock: Node.js process.hrtime, Python
// time.monotonic_ns, C clock_gettime(CLOCK_MONOTONIC)).
//
// PROCS > 1 forks that many worker processes, each with its share of the
// clients; the first process's CPU is the limit of one process, so the
// bench prints the clients' CPU (client_cpu_pct for echo: CPU time / wall
// time of the worker processes, summed; client_cpu_ms for a broadcast: the
// CPU the workers spent from the trigger to their last tick, summed).
// Close to 100 % per CPU the clients have, the client is the bottleneck.
'use strict';

const path = require('path');
const { fork } = require('child_process');

const EventEmitter = require('events');

const JS_MODULES = path.join(__dirname, '../js/node_modules');
const CLIENT_KIND = process.env.SIO_LOAD_CLIENT || 'socket.io-client';

const CONNECT_INFLIGHT = 100;
const CONNECT_TIMEOUT_MS = 30000;
const ACK_TIMEOUT_MS = 5000;
const TICK_TIMEOUT_MS = 10000;

const nowMs = () => Number(process.hrtime.bigint()) / 1e6;

function usage() {
  console.error('usage: sio_load.js echo URL CLIENTS SECONDS [PAYLOAD_BYTES [PROCS]]\n' +
                '       sio_load.js bcast URL CLIENTS ROUNDS [PROCS [step]]\n' +
                '       sio_load.js idle URL CLIENTS [PROCS]');
  process.exit(2);
}

function posInt(s, dflt) {
  if (s === undefined) return dflt;
  const n = Number(s);
  if (!Number.isInteger(n) || n <= 0) usage();
  return n;
}

function percentile(sorted, p) {
  if (!sorted.length) return '-';
  const i = Math.min(sorted.length - 1, Math.ceil(p / 100 * sorted.length) - 1);
  return sorted[Math.max(0, i)].toFixed(3);
}

function cpuMs() {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

// ------------------------------------------------------------------ clients

// Both kinds of client offer: on(event, fn) for 'connect', 'connect_error',
// 'disconnect' and server events; emitAck(name, arg, ms, fn(err, ...args));
// emitNoAck(name, arg); close().

// socket.io-client 4.x, one Manager (one connection) per client.
function sioClient(url) {
  const { io } = require(path.join(JS_MODULES, 'socket.io-client'));
  const s = io(url, {
    transports: ['websocket'],
    forceNew: true,
    reconnection: false,
    timeout: CONNECT_TIMEOUT_MS,
  });
  return {
    on: (ev, fn) => s.on(ev, fn),
    emitAck: (name, arg, ms, fn) => s.timeout(ms).emit(name, arg, fn),
    emitNoAck: (name, arg) => s.emit(name, arg),
    close: () => s.close(),
  };
}

// The same wire traffic as socket.io-client's websocket transport, written
// directly on `ws` (tests/js/node_modules): Engine.IO v4 open `0{...}`, then
// Socket.IO v5 CONNECT `40` to "/", events `42[...]` / `42ID[...]`, acks
// `43ID[...]`, pings `2` answered `3`. It does what sio_load needs and no
// more (no binary, no reconnection, namespace "/" only), at a fraction of
// socket.io-client's CPU per packet, so one client core can load a server
// core (README.md: what each client kind costs).
// Missing acks are found by one sweep a second over every raw client, not
// by a timer per emit (a timer costs more than the rest of a raw emit).
const rawClients = new Set();
let rawSweep = null;
function rawSweepAcks() {
  const now = nowMs();
  for (const c of rawClients) {
    for (const [id, w] of c.acks) {
      if (w.deadline <= now) {
        c.acks.delete(id);
        w.fn(new Error('ack timeout'));
      }
    }
  }
}

class RawClient extends EventEmitter {
  constructor(url) {
    super();
    const WebSocket = require(path.join(JS_MODULES, 'ws'));
    this.connected = false;
    this.failed = false;
    this.nextId = 0;
    this.acks = new Map();
    this.packetName = null;   // the last emit's name, arg and JSON text
    this.packetArg = null;
    this.packetJson = '';
    rawClients.add(this);
    if (!rawSweep) rawSweep = setInterval(rawSweepAcks, 1000).unref();
    this.ws = new WebSocket(url.replace(/^http/, 'ws') +
                            '/socket.io/?EIO=4&transport=websocket',
                            { perMessageDeflate: false });
    this.ws.on('message', (data, isBinary) => {
      if (!isBinary) this.onPacket(data.toString());
    });
    this.ws.on('error', (err) => this.fail(err));
    this.ws.on('close', () => {
      if (this.connected) {
        this.connected = false;
        this.emit('disconnect');
      } else {
        this.fail(new Error('closed before CONNECT'));
      }
    });
  }

  fail(err) {
    if (this.connected || this.failed) return;
    this.failed = true;
    this.emit('connect_error', err);
  }

  onPacket(p) {
    switch (p.charCodeAt(0)) {
      case 0x30: this.ws.send('40'); break;            // open -> CONNECT "/"
      case 0x32: this.ws.send('3'); break;             // ping -> pong
      case 0x31: this.ws.close(); break;               // close
      case 0x34: this.onSio(p); break;                 // message
      default: break;
    }
  }

  // p = "4" + a Socket.IO packet for namespace "/": type, [id], [json]
  onSio(p) {
    const type = p.charCodeAt(1);
    let i = 2;
    while (i < p.length && p.charCodeAt(i) >= 0x30 && p.charCodeAt(i) <= 0x39) i++;
    const id = i > 2 ? Number(p.slice(2, i)) : -1;
    if (type === 0x30) {                                // CONNECT
      this.connected = true;
      this.emit('connect');
    } else if (type === 0x32) {                         // EVENT
      const a = JSON.parse(p.slice(i));
      this.emit(a[0], ...a.slice(1));
    } else if (type === 0x33) {                         // ACK
      const w = this.acks.get(id);
      if (w) {
        this.acks.delete(id);
        w.fn(null, ...JSON.parse(p.slice(i)));
      }
    } else if (type === 0x34) {                         // CONNECT_ERROR
      this.fail(new Error(p));
    } else if (type === 0x31) {                         // DISCONNECT
      this.ws.close();
    }
  }

  json(name, arg) {
    if (name !== this.packetName || arg !== this.packetArg) {
      this.packetName = name;
      this.packetArg = arg;
      this.packetJson = JSON.stringify([name, arg]);
    }
    return this.packetJson;
  }

  emitAck(name, arg, ms, fn) {
    const id = this.nextId++;
    this.acks.set(id, { fn, deadline: nowMs() + ms });
    this.ws.send('42' + id + this.json(name, arg));
  }

  emitNoAck(name, arg) {
    this.ws.send('42' + JSON.stringify([name, arg]));
  }

  close() {
    this.acks.clear();
    rawClients.delete(this);
    this.ws.close();
  }
}

function openClient(url) {
  return CLIENT_KIND === 'raw' ? new RawClient(url) : sioClient(url);
}

// ------------------------------------------------------------------ worker

// One worker process: `clients` sockets; talks to the master over IPC.
function worker(url, count, payloadBytes) {
  const payload = 'x'.repeat(payloadBytes);
  const sockets = [];
  const errors = { connect: 0, acks: 0, other: 0 };
  let closing = false;
  let ticks = [];           // per round: [recvMs, serverTs] per client
  let tickWant = 0;
  let tickRound = 0;
  let cpuAtTrigger = 0;

  const send = (m) => process.send(m);

  function openOne() {
    return new Promise((resolve) => {
      const s = openClient(url);
      let done = false;
      let lastRound = 0;
      const finish = (ok, why) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        if (!ok) {
          if (errors.connect++ < 3) console.error(`sio_load: a client did not connect: ${why}`);
          s.close();
        }
        resolve(ok ? s : null);
      };
      const timer = setTimeout(() => finish(false, `not connected and acked in ${CONNECT_TIMEOUT_MS} ms`),
                               CONNECT_TIMEOUT_MS);
      s.on('connect_error', (err) => finish(false, `connect_error: ${err && err.message}`));
      s.on('connect', () => {
        s.emitAck('echo', payload, ACK_TIMEOUT_MS, (err, back) => {
          finish(!err && back === payload, err ? 'first ack missing' : 'first ack with other arguments');
        });
      });
      s.on('disconnect', () => {
        if (done && !closing) errors.other++;
      });
      s.on('tick', (ts) => {
        const t = nowMs();
        if (lastRound === tickRound) {       // a second tick in one round
          errors.other++;
          return;
        }
        lastRound = tickRound;
        ticks.push([t, ts]);
        if (ticks.length === tickWant) {
          const cpu = cpuMs() - cpuAtTrigger;
          send({ t: 'ticks', round: tickRound, ticks, cpu });
        }
      });
    });
  }

  async function connectAll() {
    let next = 0;
    const lanes = [];
    for (let l = 0; l < Math.min(CONNECT_INFLIGHT, count); l++) {
      lanes.push((async () => {
        while (next < count) {
          next++;
          const s = await openOne();
          if (s) sockets.push(s);
        }
      })());
    }
    await Promise.all(lanes);
  }

  // Closed-loop echo for `secs` seconds on every socket.
  function echo(secs) {
    return new Promise((resolve) => {
      const lat = [];
      let events = 0;
      let stop = false;
      let outstanding = 0;
      const cpu0 = cpuMs();
      const t0 = nowMs();
      let t1 = t0;
      const loop = (s) => {
        if (stop) return;
        const sent = nowMs();
        outstanding++;
        s.emitAck('echo', payload, ACK_TIMEOUT_MS, (err, back) => {
          outstanding--;
          if (err || back !== payload) {
            errors.acks++;
          } else if (!stop) {
            lat.push(nowMs() - sent);
            events++;
          }
          if (!stop) loop(s);
          else if (outstanding === 0) finish();
        });
      };
      let finished = false;
      const finish = () => {
        if (finished) return;
        finished = true;
        clearTimeout(grace);
        resolve({ events, secs: (t1 - t0) / 1000, lat, cpu: cpuMs() - cpu0 });
      };
      let grace = null;
      for (const s of sockets) loop(s);
      setTimeout(() => {
        stop = true;
        t1 = nowMs();
        if (outstanding === 0) finish();
        // An ack still missing is counted by its own timeout (5 s).
        grace = setTimeout(finish, ACK_TIMEOUT_MS + 500);
      }, secs * 1000);
    });
  }

  process.on('message', async (m) => {
    if (m.t === 'echo') {
      const r = await echo(m.secs);
      send({ t: 'echo', events: r.events, secs: r.secs, lat: r.lat, cpu: r.cpu,
             errors });
    } else if (m.t === 'arm') {           // a broadcast is about to start
      ticks = [];
      tickWant = sockets.length;
      tickRound = m.round;
      cpuAtTrigger = cpuMs();
      send({ t: 'armed' });
    } else if (m.t === 'trigger') {
      const t0 = nowMs();
      sockets[0].emitNoAck('bcast', t0);
      send({ t: 'triggered', t0 });
    } else if (m.t === 'timeout') {       // the master gave up on a round
      send({ t: 'ticks', round: tickRound, ticks, cpu: cpuMs() - cpuAtTrigger,
             late: true });
      tickWant = -1;
    } else if (m.t === 'close') {
      closing = true;
      for (const s of sockets) s.close();
      send({ t: 'closed', errors });
      setTimeout(() => process.exit(0), 50);
    }
  });
  process.on('disconnect', () => process.exit(0));   // the master died

  connectAll().then(() => send({ t: 'ready', n: sockets.length, errors }));
}

// ------------------------------------------------------------------ master

function master(mode, url, clients, arg, payloadBytes, procs, step) {
  procs = Math.min(procs, clients);
  const kids = [];
  const inbox = [];       // per kid: queue of messages not yet awaited
  const waiters = [];
  const errors = { connect: 0, acks: 0, other: 0 };
  let exiting = false;

  for (let k = 0; k < procs; k++) {
    const share = Math.floor(clients / procs) + (k < clients % procs ? 1 : 0);
    const child = fork(__filename, ['--worker', url, String(share), String(payloadBytes)],
                       { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    kids.push(child);
    inbox.push([]);
    waiters.push(null);
    child.on('message', (m) => {
      if (waiters[k] && waiters[k].type === m.t) {
        const w = waiters[k];
        waiters[k] = null;
        clearTimeout(w.timer);
        w.resolve(m);
      } else {
        inbox[k].push(m);
      }
    });
    child.on('exit', (code) => {
      if (!exiting) {
        console.error(`sio_load: worker ${k} exited (${code})`);
        process.exit(1);
      }
    });
  }

  // The next message of type `type` from kid k (null after `ms`).
  function next(k, type, ms) {
    const i = inbox[k].findIndex((m) => m.t === type);
    if (i >= 0) return Promise.resolve(inbox[k].splice(i, 1)[0]);
    return new Promise((resolve) => {
      const timer = ms ? setTimeout(() => { waiters[k] = null; resolve(null); }, ms) : null;
      waiters[k] = { type, resolve, timer };
    });
  }
  const all = (type, ms) => Promise.all(kids.map((_, k) => next(k, type, ms)));
  const broadcast = (m) => kids.forEach((c) => c.send(m));
  const addErrors = (e) => {
    errors.connect += e.connect; errors.acks += e.acks; errors.other += e.other;
  };

  async function closeAll() {
    broadcast({ t: 'close' });
    const done = await all('closed', 5000);
    exiting = true;
    for (const m of done) if (m) addErrors(m.errors);
  }

  (async () => {
    const ready = await all('ready');
    const n = ready.reduce((a, m) => a + m.n, 0);
    // A connect error is a client that did not connect: clients - n.

    if (mode === 'echo') {
      broadcast({ t: 'echo', secs: arg });
      const res = await all('echo');
      let events = 0; let secs = 0; let cpu = 0; let lat = [];
      for (const r of res) {
        events += r.events; secs = Math.max(secs, r.secs); cpu += r.cpu;
        lat = lat.concat(r.lat);
      }
      await closeAll();
      lat.sort((a, b) => a - b);
      const rate = secs > 0 ? (events / secs).toFixed(1) : '-';
      const cpuPct = secs > 0 ? (cpu / (secs * 1000) * 100).toFixed(0) : '-';
      console.log(`${events} ${rate} ${percentile(lat, 50)} ${percentile(lat, 99)} ` +
                  `${clients - n} ${errors.acks} ${errors.other} ${cpuPct}`);
      if (n !== clients) console.error(`sio_load: only ${n} of ${clients} clients connected`);
      process.exit(0);
    }

    console.log(`ready ${n}`);
    if (mode === 'bcast') {
      let missing = 0;
      let roundsDone = false;
      // step: each round waits for a line on stdin (a script alternating
      // several servers says when); else the rounds follow each other.
      const lines = [];
      let lineWaiter = null;
      if (step) {
        require('readline').createInterface({ input: process.stdin })
          .on('line', () => {
            if (lineWaiter) { const w = lineWaiter; lineWaiter = null; w(); }
            else lines.push(1);
          })
          .on('close', () => { if (!roundsDone) process.exit(1); });
      }
      const nextLine = () => (lines.length ? Promise.resolve(lines.shift())
        : new Promise((res) => { lineWaiter = res; }));
      for (let r = 1; r <= arg; r++) {
        if (step) await nextLine();
        broadcast({ t: 'arm', round: r });
        await all('armed');
        kids[0].send({ t: 'trigger' });
        const trig = await next(0, 'triggered');
        let res = await all('ticks', TICK_TIMEOUT_MS);
        if (res.some((m) => m === null)) {
          broadcast({ t: 'timeout' });
          const late = await all('ticks', 5000);
          res = res.map((m, k) => m || late[k]);
        }
        const fromSrv = []; const fromTrig = []; let cpu = 0;
        for (const m of res) {
          if (!m) continue;
          cpu += m.cpu;
          for (const [t, ts] of m.ticks) {
            fromSrv.push(t - ts);
            fromTrig.push(t - trig.t0);
          }
        }
        missing += n - fromSrv.length;
        fromSrv.sort((a, b) => a - b);
        fromTrig.sort((a, b) => a - b);
        console.log(`round ${r} received ${fromSrv.length} ` +
                    `${percentile(fromSrv, 50)} ${percentile(fromSrv, 99)} ` +
                    `${percentile(fromSrv, 100)} ` +
                    `${percentile(fromTrig, 50)} ${percentile(fromTrig, 99)} ` +
                    `${percentile(fromTrig, 100)} ${cpu.toFixed(1)}`);
        if (!step) await new Promise((res2) => setTimeout(res2, 200));
      }
      roundsDone = true;
      await closeAll();
      console.log(`errors ${clients - n} ${missing} ${errors.other}`);
      process.exit(0);
    }

    // idle: hold until stdin ends
    process.stdin.resume();
    const stop = async () => {
      await closeAll();
      console.log(`errors ${clients - n} 0 ${errors.other}`);
      process.exit(0);
    };
    process.stdin.on('end', stop);
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  })();
}

// ------------------------------------------------------------------ main

const argv = process.argv.slice(2);
if (argv[0] === '--worker') {
  worker(argv[1], Number(argv[2]), Number(argv[3]));
} else {
  const [mode, url] = argv;
  if (!url) usage();
  if (mode === 'echo') {
    master(mode, url, posInt(argv[2]), posInt(argv[3]), posInt(argv[4], 32), posInt(argv[5], 1));
  } else if (mode === 'bcast') {
    master(mode, url, posInt(argv[2]), posInt(argv[3]), 32, posInt(argv[4], 1),
           argv[5] === 'step');
  } else if (mode === 'idle') {
    master(mode, url, posInt(argv[2]), 0, 32, posInt(argv[3], 1));
  } else {
    usage();
  }
}
