// socket.io-client 4 against a Tremolo site served by a tremolo_socketio
// node (tests/integration/test_socketio_python_node.py starts both).
//
//   node sio_python_node.js URL TRANSPORTS MODE
//
// TRANSPORTS: "polling", "websocket" or "polling,websocket" (upgrade);
// MODE: "auto" or "node" (the site's NodeConnect). Prints one line per
// step and "ALL OK" at the end; any failure prints "FAIL ..." and exits 1.
"use strict";
const path = require("path");
const { io } = require(path.join(__dirname, "node_modules", "socket.io-client"));

const [url, transportList, mode] = process.argv.slice(2);
const opts = { transports: transportList.split(","), reconnection: false,
               forceNew: true };
const fail = (m) => { console.log("FAIL " + m); process.exit(1); };
const timer = setTimeout(() => fail("timeout"), 20000);
const eq = (a, b, what) => {
  if (JSON.stringify(a) !== JSON.stringify(b)) {
    fail(what + ": " + JSON.stringify(a) + " != " + JSON.stringify(b));
  }
};
// every argument of an ack (emitWithAck resolves with the first only)
const ackAll = (s, ...a) => new Promise((res, rej) => s.timeout(5000).emit(
  ...a, (err, ...args) => (err ? rej(err) : res(args))));
const connected = (s) => new Promise((res, rej) => {
  s.on("connect", res);
  s.on("connect_error", (e) => rej(new Error("connect_error " + e.message)));
});
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

(async () => {
  const a = io(url, opts);
  const welcome = new Promise((r) => a.on("welcome", r));
  await connected(a);
  eq(await welcome, "hello " + opts.transports[0], "welcome");  // the handshake's
  console.log("connect ok");

  const echo = await ackAll(a, "echo", 1, "two", Buffer.from([9, 8]));
  eq([echo[0], echo[1], Buffer.from(echo[2]).toString("hex")],
     [1, "two", "0908"], "echo");
  console.log("echo ok (ack tuple, binary both ways)");

  a.on("q", (blob, cb) => cb(Buffer.from(blob).toString("hex"), 7));
  eq(await ackAll(a, "ask"), ["answer", ["0102", 7]], "call");
  console.log("call ok");

  const bad = io(url + "/chat", { ...opts, auth: { token: "no" } });
  const refused = await new Promise((r) => {
    bad.on("disconnect", (why) => r("disconnect " + why));
    bad.on("connect_error", (e) => r("connect_error " + e.message + " " +
                                     JSON.stringify(e.data)));
  });
  eq(refused, mode === "node" ? 'connect_error bad token {"why":"auth"}'
                              : "disconnect io server disconnect", "refusal");
  console.log("refusal ok: " + refused);

  const c1 = io(url + "/chat", { ...opts, auth: { token: "ok" } });
  const c2 = io(url + "/chat", { ...opts, auth: { token: "ok" } });
  await Promise.all([connected(c1), connected(c2)]);
  const got1 = [], got2 = [], gotA = [];
  c1.on("said", (m) => got1.push(m));
  c2.on("said", (m) => got2.push(m));
  a.on("said", (m) => gotA.push(m));        // "/" only: not in /chat's room
  eq(await ackAll(c1, "say", "hello"), ["ok"], "say ack");
  c1.emit("all", "x");
  const deadline = Date.now() + 5000;
  while (got2.length < 2 && Date.now() < deadline) await sleep(20);
  await sleep(200);
  eq(got1, ["all:x"], "room, sender");        // skip_sid left it out once
  eq(got2, ["hello", "all:x"], "room, other member");
  eq(gotA, [], "room, other namespace");
  console.log("rooms ok");

  const gone = new Promise((r) => a.on("disconnect", r));
  a.emit("bye");
  eq(await gone, "io server disconnect", "server disconnect");
  console.log("disconnect ok");
  [bad, c1, c2].forEach((s) => s.close());
  clearTimeout(timer);
  console.log("ALL OK");
  process.exit(0);
})().catch((e) => fail(e && e.message));
