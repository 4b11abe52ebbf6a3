// The real socket.io-parser and engine.io-parser (as socket.io-client 4.x
// ships them, from tests/js/node_modules) as an oracle for Tremolo's codec;
// run by the unit test sio_oracle.c.
//
//   node parser_oracle.js gen          one JSON line per case on stdout
//   node parser_oracle.js check FILE   decodes what Tremolo encoded (one
//                                      JSON line per packet in FILE) and
//                                      prints "ok N" or "FAIL ..." lines
//
// gen lines:
//   {"dir":"in","wire":..,"bins":[b64..],"accept":bool,"type":N,"nsp":..,
//    "id":N|null,"attachments":N,"data":"<JSON text>"|null,"body":..}
//     a client's packet (wire + binary attachments) and what Tremolo must
//     make of it: the fields, and the node body of spec 7.8 ("body", the
//     JSON text; null when there is none to compare).
//   {"dir":"out","kind":"event"|"ack"|"message"|"json"|"connect"|
//    "connect_error"|"disconnect","body":..}
//     a node's message for Tremolo to encode; its packet comes back to
//     "check".
//   {"dir":"eio","payload":..,"packets":[{"type":N,"binary":bool,
//    "data":<text or b64>}..]}
//     an Engine.IO polling payload and the packets it holds.
"use strict";

const path = require("path");
const fs = require("fs");
const mods = path.join(__dirname, "..", "..", "..", "js", "node_modules");
const sio = require(path.join(mods, "socket.io-parser"));
const eio = require(path.join(mods, "engine.io-parser"));

const T = sio.PacketType;
const EIO_TYPES = ["open", "close", "ping", "pong", "message", "upgrade",
                   "noop"];

// Spec 7.8: binary as {"_binary":"<base64>"}, anywhere.
function toNode(v) {
  if (Buffer.isBuffer(v) || v instanceof ArrayBuffer) {
    return { _binary: Buffer.from(v).toString("base64") };
  }
  if (Array.isArray(v)) {
    return v.map(toNode);
  }
  if (v !== null && typeof v === "object") {
    const o = {};
    for (const k of Object.keys(v)) {
      o[k] = toNode(v[k]);
    }
    return o;
  }
  return v;
}

function nodeBody(p) {
  const b = {};
  switch (p.type) {
    case T.CONNECT:
      if (p.nsp !== "/") b.nsp = p.nsp;
      if (p.data !== undefined) b.auth = p.data;
      return b;
    case T.DISCONNECT:
      if (p.nsp !== "/") b.nsp = p.nsp;
      return b;
    case T.EVENT:
      b.name = p.data[0];
      b.args = p.data.slice(1).map(toNode);
      if (p.nsp !== "/") b.nsp = p.nsp;
      if (p.id !== undefined) b.id = p.id;
      return b;
    case T.ACK:
      b.id = p.id;
      b.args = p.data.map(toNode);
      if (p.nsp !== "/") b.nsp = p.nsp;
      return b;
  }
  return null;
}

const buf = (a) => Buffer.from(a);

// Client packets; `accept: false` marks what Tremolo refuses on purpose.
const clientPackets = [
  [{ type: T.CONNECT, nsp: "/" }],
  [{ type: T.CONNECT, nsp: "/chat", data: { token: 1 } }],
  [{ type: T.CONNECT, nsp: "/", data: { token: "abc", n: [1, 2.5, -3e-7] } }],
  [{ type: T.DISCONNECT, nsp: "/" }],
  [{ type: T.DISCONNECT, nsp: "/chat" }],
  [{ type: T.EVENT, nsp: "/", data: ["chat", "hi"] }],
  [{ type: T.EVENT, nsp: "/", id: 1, data: ["ev", 1] }],
  [{ type: T.EVENT, nsp: "/chat", id: 12,
     data: ["ev", { a: [1, 2, { b: null }] }, "\u00e9\ud83d\ude00\n\u0001\"\\"] }],
  [{ type: T.EVENT, nsp: "/", data: [42, "x"] }],
  [{ type: T.EVENT, nsp: "/", id: 9007199254740991, data: ["big", 1e21, 0.1] }],
  [{ type: T.EVENT, nsp: "/\u00e9t\u00e9", data: ["x", true, false, null] }],
  [{ type: T.ACK, nsp: "/x", id: 5, data: [true] }],
  [{ type: T.ACK, nsp: "/", id: 0, data: [] }],
  [{ type: T.EVENT, nsp: "/", data: ["up", buf([1, 2, 3])] }],
  [{ type: T.EVENT, nsp: "/f", id: 4,
     data: ["up", { a: [1, buf([])], b: buf([1, 2, 3]) }, buf([255])] }],
  [{ type: T.ACK, nsp: "/", id: 2, data: [buf("hi"), "x"] }],
  [{ type: T.ACK, nsp: "/n", id: 3, data: [[[buf([0, 0, 0, 0, 0])]]] }],
  // refused on purpose: reserved names, a lone surrogate (RFC 8259 text
  // must be UTF-8), an ACK without an id
  [{ type: T.EVENT, nsp: "/", data: ["connect"] }, false],
  [{ type: T.EVENT, nsp: "/", data: ["disconnecting", 1] }, false],
  [{ type: T.EVENT, nsp: "/", data: ["x", "\ud800"] }, false],
  [{ type: T.ACK, nsp: "/", data: [1] }, false],
];

// Node messages for Tremolo to encode (the node side of spec 7.8).
const nodeMessages = [
  ["event", { name: "news", args: ["x", { a: 1 }] }],
  ["event", { name: "news", args: ["x"], nsp: "/chat", id: 3 }],
  ["event", { name: "news", args: "JSON" }],
  ["event", { name: "news" }],
  ["event", { name: 7, args: [[1, 2], null] }],
  ["event", { name: "file", args: [{ _binary: "AQID" }, { x: { _binary: "/w==" } }] }],
  ["event", { name: "f", args: { _binary: "" }, nsp: "/b", id: 8 }],
  ["ack", { id: 7, args: [1, 2] }],
  ["ack", { id: 7 }],
  ["ack", { id: 0, args: [], nsp: "/chat" }],
  ["ack", { id: 2, nsp: "/c", args: [{ _binary: "AQID" }, "t"] }],
  ["message", "hi \"there\"\n\u00e9"],
  ["json", [1, { a: "b" }]],
  ["json", { _binary: "AQ==" }],
  ["connect", { nsp: "/chat", data: { x: 1 } }],
  ["connect", {}],
  ["connect_error", { nsp: "/chat", message: "Invalid namespace" }],
  ["connect_error", { message: "no", data: { a: 1 } }],
  ["disconnect", { nsp: "/chat" }],
  ["disconnect", {}],
];

function gen() {
  const out = [];
  const enc = new sio.Encoder();
  for (const [p, accept] of clientPackets) {
    const expectBody = nodeBody(p);
    const parts = enc.encode({ ...p, data: p.data });
    const wire = parts[0];
    const bins = parts.slice(1).map((b) => Buffer.from(b).toString("base64"));
    let dec = null;
    const d = new sio.Decoder();
    d.on("decoded", (x) => { dec = x; });
    try {
      d.add(wire);
      for (const b of parts.slice(1)) d.add(b);
    } catch (e) {
      dec = null;                 // socket.io-parser refuses it too
    }
    // the payload text exactly as the encoder wrote it
    const head = wire.match(/^\d(\d+-)?(\/[^,]*,)?\d*/)[0];
    out.push({
      dir: "in", wire, bins, accept: accept !== false,
      type: Number(wire[0]), nsp: p.nsp, id: p.id === undefined ? null : p.id,
      attachments: bins.length,
      data: wire.length > head.length ? wire.slice(head.length) : null,
      body: dec && expectBody ? JSON.stringify(expectBody) : null,
    });
  }
  for (const [kind, body] of nodeMessages) {
    out.push({ dir: "out", kind,
               body: kind === "message" ? body : JSON.stringify(body) });
  }
  const payloads = [
    [{ type: "message", data: "2[\"chat\",\"hi\"]" }],
    [{ type: "message", data: "0/chat,{\"token\":1}" },
     { type: "message", data: "51-[\"up\",{\"_placeholder\":true,\"num\":0}]" },
     { type: "message", data: buf([1, 2, 3, 4]) }],
    [{ type: "pong" }, { type: "close" }],
    [{ type: "message", data: buf([]) }, { type: "message", data: "x" }],
  ];
  for (const pkts of payloads) {
    eio.encodePayload(pkts, (payload) => {
      out.push({
        dir: "eio", payload,
        packets: pkts.map((p) => ({
          type: EIO_TYPES.indexOf(p.type),
          binary: typeof p.data !== "string" && p.data !== undefined,
          data: p.data === undefined ? "" :
                typeof p.data === "string" ? p.data :
                Buffer.from(p.data).toString("base64"),
        })),
      });
    });
  }
  for (const o of out) process.stdout.write(JSON.stringify(o) + "\n");
}

// What a socket.io-client would make of Tremolo's packet for a node body.
function expected(kind, body) {
  const b = kind === "message" || kind === "json" ? {} : JSON.parse(body);
  const nsp = b.nsp || "/";
  const fromNode = (v) => {
    if (Array.isArray(v)) return v.map(fromNode);
    if (v !== null && typeof v === "object") {
      if (typeof v._binary === "string") return Buffer.from(v._binary, "base64");
      const o = {};
      for (const k of Object.keys(v)) o[k] = fromNode(v[k]);
      return o;
    }
    return v;
  };
  const args = b.args === undefined ? [] :
               Array.isArray(b.args) ? b.args : [b.args];
  switch (kind) {
    case "event":
      return { type: T.EVENT, nsp, id: b.id, data: fromNode([b.name, ...args]) };
    case "ack":
      return { type: T.ACK, nsp, id: b.id, data: fromNode(args) };
    case "message":
      return { type: T.EVENT, nsp: "/", data: ["message", body] };
    case "json":
      return { type: T.EVENT, nsp: "/",
               data: ["message", fromNode(JSON.parse(body))] };
    case "connect":
      return { type: T.CONNECT, nsp,
               data: Object.assign({ sid: "SID" }, b.data || {}) };
    case "connect_error": {
      const d = {};
      if (b.message !== undefined) d.message = b.message;
      if (b.data !== undefined) d.data = b.data;
      return { type: T.CONNECT_ERROR, nsp, data: d };
    }
    case "disconnect":
      return { type: T.DISCONNECT, nsp };
  }
  return null;
}

function same(a, b) {
  if (Buffer.isBuffer(a) || Buffer.isBuffer(b)) {
    return Buffer.isBuffer(a) && Buffer.isBuffer(b) && a.equals(b);
  }
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length &&
           a.every((x, i) => same(x, b[i]));
  }
  if (a !== null && b !== null && typeof a === "object" && typeof b === "object") {
    const ka = Object.keys(a), kb = Object.keys(b);
    return ka.length === kb.length && ka.every((k) => same(a[k], b[k]));
  }
  return a === b;
}

function check(file) {
  let fails = 0, n = 0;
  for (const line of fs.readFileSync(file, "utf8").split("\n")) {
    if (!line) continue;
    const c = JSON.parse(line);
    n++;
    if (c.dir === "eio") {
      // Tremolo's polling payload, read by engine.io-parser
      const got = eio.decodePayload(c.payload, "nodebuffer").map((p) => ({
        type: EIO_TYPES.indexOf(p.type),
        binary: Buffer.isBuffer(p.data),
        data: p.data === undefined ? "" : Buffer.isBuffer(p.data) ?
              p.data.toString("base64") : p.data,
      }));
      if (!same(got, c.packets)) {
        fails++;
        console.log("FAIL eio " + JSON.stringify(c) + " got " + JSON.stringify(got));
      }
      continue;
    }
    let dec = null, err = null;
    const d = new sio.Decoder();
    d.on("decoded", (x) => { dec = x; });
    try {
      d.add(c.text);
      for (const b of c.bins) d.add(Buffer.from(b, "base64"));
    } catch (e) {
      err = e;
    }
    const want = expected(c.kind, c.body);
    if (want && want.type === T.CONNECT) want.data.sid = c.sid;
    if (err || !dec || !same(
          { type: dec.type, nsp: dec.nsp, id: dec.id, data: dec.data },
          { type: want.type, nsp: want.nsp, id: want.id, data: want.data })) {
      fails++;
      console.log("FAIL " + JSON.stringify(c) + " got " +
                  (err ? String(err) : JSON.stringify(dec)));
    }
  }
  console.log(fails ? "FAILED " + fails : "ok " + n);
  process.exit(fails ? 1 : 0);
}

if (process.argv[2] === "gen") {
  gen();
} else if (process.argv[2] === "check") {
  check(process.argv[3]);
} else {
  console.error("usage: parser_oracle.js gen | check FILE");
  process.exit(2);
}
