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
//   bcast URL CLIENTS ROUNDS [PROCS]
//         every client is a member of room "all" (the server joins it on
//         connect); per round one client emits "bcast" and every client
//         notes when its "tick" arrived. Prints "ready N", then one line per
//         round: "round R received N p50 p99 max (from the server's
//         send, ms) p50 p99 max (from the trigger, ms) client_cpu_ms", then
//         "errors connect_errors missing_ticks other_errors"
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

const { io } = require(path.join(__dirname, '../js/node_modules/socket.io-client'));

const CONNECT_INFLIGHT = 100;
const CONNECT_TIMEOUT_MS = 30000;
const ACK_TIMEOUT_MS = 5000;
const TICK_TIMEOUT_MS = 10000;

const nowMs = () => Number(process.hrtime.bigint()) / 1e6;

function usage() {
  console.error('usage: sio_load.js echo URL CLIENTS SECONDS [PAYLOAD_BYTES [PROCS]]\n' +
                '       sio_load.js bcast URL CLIENTS ROUNDS [PROCS]\n' +
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
      const s = io(url, {
        transports: ['websocket'],
        forceNew: true,
        reconnection: false,
        timeout: CONNECT_TIMEOUT_MS,
      });
      let done = false;
      const finish = (ok) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        if (!ok) {
          errors.connect++;
          s.close();
        }
        resolve(ok ? s : null);
      };
      const timer = setTimeout(() => finish(false), CONNECT_TIMEOUT_MS);
      s.on('connect_error', () => finish(false));
      s.on('connect', () => {
        s.timeout(ACK_TIMEOUT_MS).emit('echo', payload, (err, back) => {
          finish(!err && back === payload);
        });
      });
      s.on('disconnect', () => {
        if (done && !closing) errors.other++;
      });
      s.on('tick', (ts) => {
        const t = nowMs();
        if (s.__tickRound === tickRound) {   // a second tick in one round
          errors.other++;
          return;
        }
        s.__tickRound = tickRound;
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
        s.timeout(ACK_TIMEOUT_MS).emit('echo', payload, (err, back) => {
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
      sockets[0].emit('bcast', t0);
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

function master(mode, url, clients, arg, payloadBytes, procs) {
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
      for (let r = 1; r <= arg; r++) {
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
        await new Promise((res2) => setTimeout(res2, 200));
      }
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
    master(mode, url, posInt(argv[2]), posInt(argv[3]), 32, posInt(argv[4], 1));
  } else if (mode === 'idle') {
    master(mode, url, posInt(argv[2]), 0, 32, posInt(argv[3], 1));
  } else {
    usage();
  }
}
