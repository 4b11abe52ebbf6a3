"""socketio plugin (Engine.IO v4 / Socket.IO v5 at the edge, spec 7.8)
against a real Tremolo with Workers 2, a pyzmq node and real clients:

* socket.io-client 4.8 (tests/js/sio_driver.js, sio_many.js): polling only,
  websocket only and the upgrade; events and acks both ways; namespaces
  (auth, an unlisted one, NodeConnect node accepting and refusing); binary
  attachments both ways; rooms with the namespace filter; the BlastBeat
  forms socket.io/msg and /json; socket.io/end with and without nsp; the
  node's `end`; reconnection after the node process restarts; 2,000
  clients and one room broadcast;
* raw HTTP and raw websocket from Python (every byte the test's): no
  stickiness (each poll on a new TCP connection), malformed Engine.IO and
  Socket.IO packets, MaxPayload, a second concurrent poll, bad sids, a sid
  from another site, the handshake errors, CORS, a client that vanishes in
  the middle of an upgrade.

The node (SioNode) is the WsNode of test_plugin_websocket.py (a
tremolo_node.Node in a thread that records every message) with the small
application `sio_app` below; the reconnection test runs a raw pyzmq node
as a process of its own (NODE_SCRIPT) so that it can be killed."""

import base64
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.parse

import pytest

import tremolo_harness
from plugin_util import wait_for
from tremolo_harness import build_request, free_port
from test_plugin_websocket import (BINARY, CLOSE, TEXT, JsProc, RawWS,
                                   WsNode, close_raw, node_bin)

SRC = tremolo_harness.src_dir()
JS_DIR = SRC / "tests" / "js"
PAGES_DIR = SRC / "tests" / "integration" / "sio_pages"
CHROMIUM = "/usr/bin/chromium"
PLUGINS = ("liana", "zmq", "websocket", "socketio")
SANITIZER = re.compile(r"ERROR: (Address|Leak)Sanitizer|runtime error:")
RS = "\x1e"                          # Engine.IO polling payload separator


# ---- the node application ---------------------------------------------------

def jbody(obj):
    return json.dumps(obj, separators=(",", ":")).encode()


def with_nsp(obj, nsp):
    if nsp and nsp != "/":
        obj["nsp"] = nsp
    return obj


def sio_app(node, sid, mtype, data):
    """What the test node does with a client's messages (node thread).

    socket.io/connect: join the group "all"; NodeConnect node: accept
    unless auth.token is "bad" (then connect_error). socket.io/event by
    name: echo (ack with the same args, or emit "echo" back), ask (emit
    "question" asking for the client's ack), join/leave (a group, then
    ack), to_room [group, nsp, value] (GROUP:socket.io/event "news"),
    burst [N] (N events "n"), bcast (all:socket.io/event "tick"), chat
    (chat:socket.io/event "said"), sugar (socket.io/msg, /json and a
    BlastBeat event whose args is not an array), end_nsp, end_all,
    node_end."""
    p = node.pynode
    if mtype == "socket.io/connect":
        m = json.loads(data)
        nsp = m.get("nsp", "/")
        p.join(sid, "all")
        if node.node_connect:
            auth = m.get("auth") or {}
            if auth.get("token") == "silent":
                return                   # the gateway's ConnectTimeout
            if auth.get("token") == "end":
                p.send(sid, "socket.io/end", jbody(with_nsp({}, nsp)))
                return
            if auth.get("token") == "bad":
                p.send(sid, "socket.io/connect_error", jbody(with_nsp(
                    {"message": "no entry", "data": {"why": "bad token"}},
                    nsp)))
                return
            p.send(sid, "socket.io/connect", jbody(with_nsp({}, nsp)))
        p.send(sid, "socket.io/event", jbody(with_nsp(
            {"name": "hello", "args": ["welcome", nsp]}, nsp)))
        return
    if mtype != "socket.io/event":
        return
    m = json.loads(data)
    name, args, nsp = m["name"], m.get("args", []), m.get("nsp", "/")
    if name == "echo":
        if "id" in m:
            p.send(sid, "socket.io/ack",
                   jbody(with_nsp({"id": m["id"], "args": args}, nsp)))
        else:
            p.send(sid, "socket.io/event",
                   jbody(with_nsp({"name": "echo", "args": args}, nsp)))
    elif name == "ask":
        node.asked += 1
        p.send(sid, "socket.io/event", jbody(with_nsp(
            {"name": "question", "args": args, "id": node.asked}, nsp)))
    elif name in ("join", "leave"):
        (p.join if name == "join" else p.leave)(sid, args[0])
        if "id" in m:
            p.send(sid, "socket.io/ack",
                   jbody(with_nsp({"id": m["id"], "args": [name]}, nsp)))
    elif name == "to_room":
        group, to_nsp, value = args
        p.send(sid, group + ":socket.io/event", jbody(with_nsp(
            {"name": "news", "args": [value]}, to_nsp)))
        if "id" in m:
            p.send(sid, "socket.io/ack",
                   jbody(with_nsp({"id": m["id"], "args": ["sent"]}, nsp)))
    elif name == "chat":                  # [from, text] to the room "chat"
        p.send(sid, "chat:socket.io/event",
               jbody(with_nsp({"name": "said", "args": args}, nsp)))
    elif name == "bcast":
        p.send(sid, "all:socket.io/event",
               jbody(with_nsp({"name": "tick", "args": args}, nsp)))
    elif name == "sugar":
        p.send(sid, "socket.io/msg", b"plain text \xc3\xa9")
        p.send(sid, "socket.io/json", jbody({"k": [1, 2, None]}))
        p.send(sid, "socket.io/event", b'{"name":"news","args":"JSON"}')
        p.send(sid, "socket.io/event", b'{"name":"bare"}')
    elif name == "burst":                 # args[0] events "n" [0..N-1]
        for i in range(args[0]):
            p.send(sid, "socket.io/event",
                   jbody(with_nsp({"name": "n", "args": [i]}, nsp)))
    elif name == "end_nsp":
        p.send(sid, "socket.io/end", jbody({"nsp": args[0]}))
    elif name == "end_all":
        p.send(sid, "socket.io/end", b"")
    elif name == "node_end":
        p.send(sid, "end", b"")


class SioNode(WsNode):
    def __init__(self, endpoint, identity="node1", node_connect=False,
                 unbounded=False, on_msg=sio_app):
        self.node_connect = node_connect
        self.asked = 0
        super().__init__(endpoint, identity, None, on_msg, unbounded)

    def bodies(self, mtype, sid=None):
        """The JSON bodies of every message of that type (of sid)."""
        return [json.loads(d) if d else None
                for _, d in self.of_type(mtype, sid)]

    def wait_type(self, mtype, pred=lambda b: True, timeout=10):
        found = []

        def look():
            for s, d in self.of_type(mtype):
                b = json.loads(d) if d else None
                if pred(b):
                    found.append((s, b))
                    return True
            return False
        assert wait_for(look, timeout), \
            "the node got no matching %s within %s s; it got: %s" % (
                mtype, timeout, [(t, d[:200] if isinstance(d, bytes) else d)
                                 for t, _, d in self.events][-30:])
        return found[0]


def exit_counts(srv):
    """Stops the server; the counters worker 0 logs at exit, as a dict
    ("opened", "closed", "client close", "ping timeout", ...)."""
    assert srv.stop() == 0
    m = re.search(r"socketio: (\d+) sessions opened, (\d+) closed \((.*)\)",
                  srv.error_log())
    assert m, srv.error_log()[-2000:]
    counts = {"opened": int(m.group(1)), "closed": int(m.group(2))}
    for part in m.group(3).split(", "):
        name, _, n = part.rpartition(" ")
        counts[name] = int(n)
    return counts


def node_sid(eio_sid):
    """The node's 16-byte sid of an Engine.IO sid (base64url of it)."""
    return base64.urlsafe_b64decode(eio_sid + "=" * (-len(eio_sid) % 4))


# ---- servers ----------------------------------------------------------------

def sio_site(sio="", names="127.0.0.1 localhost", default=True,
             nodes=("node1",), extra=""):
    text = "[HOST]\n    ServerName %s\n" % names
    if default:
        text += "    Default on\n"
    text += ("    DocumentRoot htdocs\n[LOCATION /socket.io]\n"
             "    Handler zmq\n[ZMQ]\n")
    text += "".join("    Node %s\n" % n for n in nodes)
    lines = [ln.strip() for ln in sio.splitlines() if ln.strip()]
    if lines:
        text += "[SOCKETIO]\n" + "".join("    %s\n" % ln for ln in lines)
    return text + extra


@pytest.fixture
def siogw(tremolo, tmp_path):
    """siogw(sio="", sites=None, node=True, node_connect=False, ...) -> a
    started server (Workers 2; liana, zmq, websocket, socketio) with the
    node "node1" (srv.node, a SioNode) and srv.clients() for
    sio_driver.js processes."""
    nodes, drivers, servers = [], [], []

    def start(sio="", sites=None, node=True, node_connect=False, workers=2,
              files=None, unbounded=False, server="", env=None,
              on_msg=sio_app):
        endpoint = "tcp://127.0.0.1:%d" % free_port()
        confs = {"zmq": "[ZMQ]\n    Bind %s\n    PingFreq 500ms\n" % endpoint}
        srv = tremolo(plugins=PLUGINS,
                      sites=sites or {"default": sio_site(sio)},
                      plugin_confs=confs, files=files, workers=workers,
                      server="DrainTimeout 2s\n" + server, env=env)
        servers.append(srv)
        srv.endpoint = endpoint
        srv.sio_url = "http://127.0.0.1:%d" % srv.port
        srv.node = None
        if node:
            srv.node = SioNode(endpoint, "node1", node_connect, unbounded,
                               on_msg)
            nodes.append(srv.node)
            srv.wait_log(r'node "node1" is available', timeout=10)

        def clients():
            d = SioClients(log_dir=tmp_path)
            drivers.append(d)
            return d
        srv.clients = clients
        return srv

    yield start
    for d in drivers:
        d.close()
    close_raw()
    errors = [e for n in nodes for e in n.errors]
    # stopped here (the tremolo fixture would stop them later) so that a
    # sanitizer report written at exit (build-asan) fails the test
    for srv in servers:
        if srv.alive():
            srv.stop()
        m = SANITIZER.search(srv.stderr())
        if m:
            errors.append("sanitizer report in %s:\n%s" % (
                srv.conf_dir / "stderr.txt", srv.stderr()[m.start():][:6000]))
    for n in nodes:
        n.close()
    assert not errors, "node application errors: %s" % "\n".join(errors)


class SioClients(JsProc):
    """sio_driver.js: named socket.io-client sockets."""

    def __init__(self, log_dir=None):
        if not (JS_DIR / "node_modules" / "socket.io-client" /
                "package.json").exists():
            pytest.fail("tests/js/node_modules/socket.io-client is missing: "
                        "run `sh tests/js/setup.sh` (make test does)",
                        pytrace=False)
        super().__init__("sio_driver.js", log_dir=log_dir)
        self.acks = 0

    def open(self, cid, url, wait=True, **opts):
        self.cmd(op="open", id=cid, url=url, opts=opts)
        if wait:
            ev = self.wait_connect(cid)
            assert ev["ev"] == "connect", ev
            return ev

    def wait_connect(self, cid, timeout=10):
        return self.wait(lambda e: e.get("id") == cid and e["ev"] in (
            "connect", "connect_error", "disconnect"), timeout,
            "connect of %s" % cid)

    def emit(self, cid, name, *args):
        self.cmd(op="emit", id=cid, name=name, args=list(args))

    def call(self, cid, name, *args, timeout=10):
        """emit with an ack callback; returns the ack's arguments."""
        self.acks += 1
        tag = "a%d" % self.acks
        self.cmd(op="emit", id=cid, name=name, args=list(args), ack=tag)
        return self.wait(lambda e: e["ev"] == "ack" and e["ack"] == tag,
                         timeout, "ack of %s %s" % (cid, name))["args"]

    def try_call(self, cid, name, *args, timeout=2):
        """call() that returns None when no ack came within timeout."""
        self.acks += 1
        tag = "a%d" % self.acks
        self.cmd(op="emit", id=cid, name=name, args=list(args), ack=tag)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.find(lambda e: e["ev"] == "ack" and e["ack"] == tag)
            if got:
                return got[0]["args"]
            time.sleep(0.05)
        return None

    def sio_events(self, cid, name=None):
        return [e for e in self.find(lambda e: e["ev"] == "event" and
                                     e["id"] == cid)
                if name is None or e["name"] == name]

    def wait_event(self, cid, name, pred=lambda e: True, timeout=10):
        return self.wait(lambda e: e["ev"] == "event" and e["id"] == cid and
                         e["name"] == name and pred(e), timeout,
                         "event %s on %s" % (name, cid))

    def transport(self, cid):
        before = len(self.find(lambda e: e["ev"] == "transport"))
        self.cmd(op="transport", id=cid)
        self.wait(lambda e: len(self.find(lambda x: x["ev"] == "transport"))
                  > before, 5, "transport")
        return self.find(lambda e: e["ev"] == "transport")[-1]["name"]

    def wait_disconnect(self, cid, timeout=10):
        return self.wait(lambda e: e["ev"] == "disconnect" and
                         e["id"] == cid, timeout, "disconnect of %s" % cid)


def node_sid_by_echo(srv, c, cid):
    """The node's sid of driver socket cid (found through an echo)."""
    tag = "whoami-%s-%d" % (cid, c.acks)
    assert c.call(cid, "echo", tag) == [tag]
    for s, d in srv.node.of_type("socket.io/event"):
        if json.loads(d).get("args") == [tag]:
            return s
    pytest.fail("the node got no echo %s" % tag)


class PyServerNode:
    """A tremolo_socketio.Server (plugins/zmq/nodes/python, python-socketio's
    API) serving as node "node1" in a thread; stop() ends it."""

    def __init__(self, srv, sio, identity="node1"):
        import tremolo_socketio
        self.sio = sio
        self.errors = []

        def run():
            try:
                tremolo_socketio.serve(sio, identity, [srv.endpoint])
            except Exception as e:       # shown by the test
                self.errors.append(repr(e))
        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        srv.wait_log(r'node "%s" is available' % identity, timeout=10)

    def stop(self):
        self.sio.stop()
        self.thread.join(5)
        assert not self.thread.is_alive(), "the tremolo_socketio loop hangs"
        assert self.errors == [], self.errors


def rooms_app():
    """A tremolo_socketio app: join/leave a room (acked), say to a room,
    tell everyone of the namespace; in "/" and "/chat"."""
    import tremolo_socketio
    sio = tremolo_socketio.Server(namespaces=["/", "/chat"])
    for ns in ("/", "/chat"):
        def handlers(ns):
            def join(sid, room):
                sio.enter_room(sid, room, namespace=ns)
                return "join"

            def leave(sid, room):
                sio.leave_room(sid, room, namespace=ns)
                return "leave"

            def say(sid, room, text, skip_me=False):
                sio.emit("said", (room, text), room=room, namespace=ns,
                         skip_sid=sid if skip_me else None)
                return "sent"

            def everyone(sid, text):
                sio.emit("all", text, namespace=ns)
                return "sent"

            def echo(sid, *args):
                return args

            def chat(sid, me, text):
                sio.emit("said", (me, text), room="chat", namespace=ns)
            for f in (join, leave, say, everyone, echo, chat):
                sio.on(f.__name__, f, namespace=ns)
        handlers(ns)
    return sio


def b64(data):
    return {"$b64": base64.b64encode(data).decode()}


# ---- raw Engine.IO over HTTP ------------------------------------------------

def eio_path(sid=None, transport="polling", eio="4", path="/socket.io/",
             extra=""):
    q = "EIO=%s&transport=%s" % (eio, transport)
    if sid is not None:
        q += "&sid=" + urllib.parse.quote(sid, safe="")
    return path + "?" + q + extra


def handshake(srv, host=None, headers=None):
    h = dict(headers or {})
    if host:
        h["Host"] = host
    st, hd, body = srv.http("GET", eio_path(), headers=h)
    assert st == 200, (st, hd, body)
    assert body.startswith(b"0"), body
    return json.loads(body[1:]), hd


def poll(srv, sid, host=None, timeout=10):
    """One GET on a new TCP connection; (status, body text)."""
    h = {"Host": host} if host else {}
    st, _, body = srv.http("GET", eio_path(sid), headers=h, timeout=timeout)
    return st, body.decode("utf-8", "replace")


def post(srv, sid, payload, host=None, ctype="text/plain;charset=UTF-8"):
    h = {"Content-Type": ctype}
    if host:
        h["Host"] = host
    if isinstance(payload, str):
        payload = payload.encode()
    st, _, body = srv.http("POST", eio_path(sid), headers=h, body=payload)
    return st, body.decode("utf-8", "replace")


def packets(body):
    return body.split(RS) if body else []


def error_code(status, body):
    assert status == 400, (status, body)
    return json.loads(body)["code"]


def open_session(srv, host=None):
    """A polling session with the default namespace joined: (eio sid,
    node sid); the node's hello has been read."""
    hs, _ = handshake(srv, host)
    sid = hs["sid"]
    assert post(srv, sid, "40", host) == (200, "ok")
    got = []
    while not any(p.startswith("42") for p in got):
        st, body = poll(srv, sid, host)
        assert st == 200, (st, body)
        got += packets(body)
    assert got[0].startswith("40{"), got
    assert json.loads(got[0][2:])["sid"]
    assert '42["hello","welcome","/"]' in got, got
    return sid, node_sid(sid)


# ==== 1. socket.io-client ====================================================

@pytest.mark.parametrize("mode", ["polling", "websocket", "upgrade"])
def test_client_events_acks_binary(siogw, mode):
    """socket.io-client over each transport: the final transport is the one
    asked for; events and acks both ways; binary attachments both ways
    (a Buffer at the client is {"_binary": base64} at the node)."""
    srv = siogw()
    c = srv.clients()
    opts = {"polling": {"transports": ["polling"]},
            "websocket": {"transports": ["websocket"]},
            "upgrade": {}}[mode]
    ev = c.open("c", srv.sio_url + "/", query={"room": "r 1"}, **opts)
    if mode != "upgrade":                # (the upgrade may be done by now)
        assert ev["transport"] == mode
    hello = c.wait_event("c", "hello")
    assert hello["args"] == ["welcome", "/"]
    if mode == "upgrade":
        up = c.wait(lambda e: e["ev"] == "upgrade", 10, "the upgrade")
        assert up["transport"] == "websocket"
    assert c.transport("c") == ("websocket" if mode == "upgrade" else mode)
    # the node saw the handshake with its transport
    uw = srv.node.of_type("uwsgi")
    assert len(uw) == 1, uw
    sid = uw[0][0]
    assert uw[0][1]["TREMOLO_TRANSPORT"] == (
        "websocket" if mode == "websocket" else "polling")
    q = urllib.parse.parse_qs(uw[0][1]["QUERY_STRING"])
    assert q["room"] == ["r 1"] and q["EIO"] == ["4"], q
    # "/" is the default nsp, and the client sent no auth
    assert srv.node.bodies("socket.io/connect", sid) == [{}]
    # client -> node event with an ack, answered by the node
    assert c.call("c", "echo", "hi", {"a": [1, 2]}) == ["hi", {"a": [1, 2]}]
    got = srv.node.bodies("socket.io/event", sid)[-1]
    assert got["name"] == "echo" and got["args"] == ["hi", {"a": [1, 2]}]
    assert isinstance(got["id"], int)
    # an event without an ack: no id at the node, the node emits back
    c.emit("c", "echo", "plain")
    assert c.wait_event("c", "echo")["args"] == ["plain"]
    assert "id" not in srv.node.bodies("socket.io/event", sid)[-1]
    # node -> client event asking for an ack: the client's answer comes
    # back as socket.io/ack with the node's id
    c.emit("c", "ask", "q?", 7)
    q = c.wait_event("c", "question")
    assert q["args"] == ["q?", 7] and q["acked"] is True
    _, ack = srv.node.wait_type("socket.io/ack")
    assert ack == {"id": 1, "args": ["ack:question", "q?", 7]}, ack
    # binary both ways: the node sees {"_binary": ...}, the client gets a
    # Buffer back (the node acks with what it got)
    blob = bytes(range(256)) * 3
    back = c.call("c", "echo", "bin", b64(blob),
                  {"nested": [b64(b"\x00\x01")]})
    assert back == ["bin", b64(blob), {"nested": [b64(b"\x00\x01")]}], back
    seen = [b for b in srv.node.bodies("socket.io/event", sid)
            if b["args"] and b["args"][0] == "bin"][0]
    assert seen["args"][1] == {"_binary": base64.b64encode(blob).decode()}
    assert seen["args"][2] == {"nested": [{"_binary": "AAE="}]}
    # the node emits binary on its own
    srv.node.send(sid, "socket.io/event", jbody(
        {"name": "blob", "args": [{"_binary": "AAECAw=="}, "tail"]}))
    assert c.wait_event("c", "blob")["args"] == [b64(b"\x00\x01\x02\x03"),
                                                 "tail"]
    # the client leaves: socket.io/disconnect? no: the whole connection
    # closes, the node gets `end`
    c.cmd(op="close", id="c")
    srv.node.wait_end(sid, timeout=10)


def test_burst_during_upgrade_in_order(siogw):
    """Right at connect (while the upgrade may be under way) the node sends
    300 events and the client 300: all arrive, in order, both ways, and
    the client ends on websocket."""
    srv = siogw()
    c = srv.clients()
    n = 300
    c.cmd(op="open", id="c", url=srv.sio_url + "/", opts={})
    c.wait(lambda e: e["ev"] == "event" and e["name"] == "hello", 10,
           "hello")
    c.emit("c", "burst", n)
    for i in range(n):
        c.emit("c", "seq", i)
    c.wait(lambda e: len(c.sio_events("c", "n")) >= n, 20, "the burst")
    assert [e["args"][0] for e in c.sio_events("c", "n")] == list(range(n))
    assert wait_for(lambda: len([b for b in srv.node.bodies(
        "socket.io/event") if b["name"] == "seq"]) >= n, 20)
    assert [b["args"][0] for b in srv.node.bodies("socket.io/event")
            if b["name"] == "seq"] == list(range(n))
    c.wait(lambda e: e["ev"] == "upgrade", 10, "the upgrade")
    assert c.transport("c") == "websocket"


@pytest.mark.parametrize("transport", ["polling", "websocket"])
def test_heartbeat_keeps_clients_connected(siogw, transport):
    """PingInterval 1s, PingTimeout 1s: a live client answers the pings
    and stays connected across several intervals."""
    srv = siogw(sio="PingInterval 1s\nPingTimeout 1s")
    c = srv.clients()
    c.open("c", srv.sio_url + "/", transports=[transport])
    time.sleep(3.5)
    assert c.find(lambda e: e["ev"] == "disconnect") == []
    assert c.call("c", "echo", "alive") == ["alive"]
    assert srv.node.of_type("end") == []


def test_namespaces_auth_and_invalid(siogw):
    """A listed namespace with auth: the node sees {"nsp", "auth"}; an
    unlisted one gets connect_error "Invalid namespace" without the node
    hearing of it; events carry their nsp."""
    srv = siogw(sio="Namespace /\nNamespace /chat")
    c = srv.clients()
    c.open("chat", srv.sio_url + "/chat", auth={"token": "abc", "n": 1})
    _, conn = srv.node.wait_type("socket.io/connect",
                                 lambda b: b.get("nsp") == "/chat")
    assert conn == {"nsp": "/chat", "auth": {"token": "abc", "n": 1}}, conn
    assert c.wait_event("chat", "hello")["args"] == ["welcome", "/chat"]
    assert c.call("chat", "echo", "x") == ["x"]
    ev = [b for b in srv.node.bodies("socket.io/event") if b["name"] == "echo"]
    assert ev[-1]["nsp"] == "/chat"
    # a second namespace on the same connection (the manager multiplexes)
    c.cmd(op="open", id="root", url=srv.sio_url + "/",
          opts={"share": "chat"})
    assert c.wait_connect("root")["ev"] == "connect"
    assert len(srv.node.of_type("uwsgi")) == 1
    assert c.call("root", "echo", "y") == ["y"]
    # unlisted
    before = len(srv.node.of_type("socket.io/connect"))
    c.open("nope", srv.sio_url + "/nope", wait=False)
    ev = c.wait_connect("nope")
    assert ev["ev"] == "connect_error", ev
    assert ev["message"] == "Invalid namespace", ev
    time.sleep(0.3)
    assert all(b.get("nsp") != "/nope"
               for b in srv.node.bodies("socket.io/connect"))
    assert len(srv.node.of_type("socket.io/connect")) == before


def test_node_connect_accepts_and_refuses(siogw):
    """NodeConnect node: the client waits for the node, which accepts
    (socket.io/connect) or refuses (socket.io/connect_error -> the
    client's connect_error with message and data)."""
    srv = siogw(sio="NodeConnect node\nConnectTimeout 1s\nNamespace /\n"
                "Namespace /priv", node_connect=True)
    c = srv.clients()
    ev = c.open("ok", srv.sio_url + "/priv", auth={"token": "good"})
    assert ev["ev"] == "connect"
    assert c.call("ok", "echo", 1) == [1]
    c.open("bad", srv.sio_url + "/priv", wait=False, auth={"token": "bad"})
    ev = c.wait_connect("bad")
    assert ev["ev"] == "connect_error", ev
    assert ev["message"] == "no entry" and ev["data"] == {"why": "bad token"}
    assert c.sio_events("bad") == []
    # the node ends the namespace instead of answering: refused too
    c.open("end", srv.sio_url + "/priv", wait=False, auth={"token": "end"})
    assert c.wait_connect("end")["ev"] == "connect_error"
    # the node never answers: ConnectTimeout (1s here) refuses it
    c.open("silent", srv.sio_url + "/priv", wait=False,
           auth={"token": "silent"}, timeout=20000)
    ev = c.wait_connect("silent", timeout=10)
    assert ev["ev"] == "connect_error", ev
    # the accepted client is still fine
    assert c.call("ok", "echo", 2) == [2]


def test_rooms_and_namespace_filter(siogw):
    """join/leave on socket.io sessions; GROUP:socket.io/event reaches the
    members connected to the body's namespace only."""
    srv = siogw(sio="Namespace /\nNamespace /chat")
    c = srv.clients()
    url = srv.sio_url
    c.open("a", url + "/")                          # a: / and /chat
    c.cmd(op="open", id="a_chat", url=url + "/chat", opts={"share": "a"})
    assert c.wait_connect("a_chat")["ev"] == "connect"
    c.open("b", url + "/chat")                      # b: /chat only
    c.open("c", url + "/")                          # c: / only
    for cid in ("a", "b", "c"):
        assert c.call(cid, "join", "r") == ["join"]
    # the /chat broadcast: a's /chat socket and b
    assert c.call("b", "to_room", "r", "/chat", "x1") == ["sent"]
    c.wait_event("a_chat", "news", lambda e: e["args"] == ["x1"])
    c.wait_event("b", "news", lambda e: e["args"] == ["x1"])
    # the / broadcast: a's / socket and c
    assert c.call("c", "to_room", "r", "/", "x2") == ["sent"]
    c.wait_event("a", "news", lambda e: e["args"] == ["x2"])
    c.wait_event("c", "news", lambda e: e["args"] == ["x2"])
    # c leaves; the next / broadcast reaches a only
    assert c.call("c", "leave", "r") == ["leave"]
    assert c.call("a", "to_room", "r", "/", "x3") == ["sent"]
    c.wait_event("a", "news", lambda e: e["args"] == ["x3"])
    # @sid:socket.io/event reaches that one session
    sid_a, sid_c = node_sid_by_echo(srv, c, "a"), node_sid_by_echo(srv, c, "c")
    srv.node.send(sid_a, b"@" + sid_c + b":socket.io/event",
                  jbody({"name": "direct", "args": ["to c"]}))
    c.wait_event("c", "direct", lambda e: e["args"] == ["to c"])
    # round trips on every socket: what the server sent before is in
    for cid in ("a", "a_chat", "b", "c"):
        assert c.call(cid, "echo", "sync") == ["sync"]
    news = {cid: [e["args"][0] for e in c.sio_events(cid, "news")]
            for cid in ("a", "a_chat", "b", "c")}
    assert news == {"a": ["x2", "x3"], "a_chat": ["x1"], "b": ["x1"],
                    "c": ["x2"]}, news
    assert c.sio_events("a", "direct") == []


def test_rooms_with_tremolo_socketio(siogw):
    """Rooms through the Python node helper (python-socketio's API):
    enter_room/leave_room, emit to a room of a namespace (the namespace
    filter: a session in the room gets it only on the namespaces it is
    connected to), skip_sid, and emit to every client of a namespace."""
    srv = siogw(sio="Namespace /\nNamespace /chat", node=False)
    py = PyServerNode(srv, rooms_app())
    try:
        c = srv.clients()
        url = srv.sio_url
        c.open("a", url + "/")                      # a: / and /chat
        c.cmd(op="open", id="a_chat", url=url + "/chat", opts={"share": "a"})
        assert c.wait_connect("a_chat")["ev"] == "connect"
        c.open("b", url + "/chat")                  # b: /chat only
        c.open("c", url + "/")                      # c: / only
        assert c.call("a", "join", "r") == ["join"]
        assert c.call("a_chat", "join", "r") == ["join"]
        assert c.call("b", "join", "r") == ["join"]
        assert c.call("c", "join", "r") == ["join"]
        assert c.call("b", "say", "r", "x1") == ["sent"]          # /chat
        assert c.call("c", "say", "r", "x2") == ["sent"]          # /
        assert c.call("a_chat", "say", "r", "x3", True) == ["sent"]  # skip a
        assert c.call("c", "leave", "r") == ["leave"]
        assert c.call("a", "say", "r", "x4") == ["sent"]          # /
        assert c.call("b", "everyone", "e1") == ["sent"]          # all /chat
        # round trips: all that was sent before has arrived
        for cid in ("a", "a_chat", "b", "c"):
            assert c.call(cid, "echo", "sync", 1) == ["sync", 1]
        said = {cid: [e["args"][1] for e in c.sio_events(cid, "said")]
                for cid in ("a", "a_chat", "b", "c")}
        assert said == {"a": ["x2", "x4"], "a_chat": ["x1"],
                        "b": ["x1", "x3"], "c": ["x2"]}, said
        alls = {cid: [e["args"] for e in c.sio_events(cid, "all")]
                for cid in ("a", "a_chat", "b", "c")}
        assert alls == {"a": [], "a_chat": [["e1"]], "b": [["e1"]],
                        "c": []}, alls
    finally:
        py.stop()


def test_blastbeat_msg_json_and_bare_events(siogw):
    """socket.io/msg and socket.io/json arrive as event "message"; an event
    whose args is not an array carries one argument; no args: none."""
    srv = siogw()
    c = srv.clients()
    c.open("c", srv.sio_url + "/")
    c.emit("c", "sugar")
    c.wait_event("c", "bare")
    msgs = [e["args"] for e in c.sio_events("c", "message")]
    assert msgs == [["plain text \u00e9"], [{"k": [1, 2, None]}]], msgs
    assert c.sio_events("c", "news")[0]["args"] == ["JSON"]
    assert c.sio_events("c", "bare")[0]["args"] == []


def test_end_with_and_without_nsp_and_node_end(siogw):
    """socket.io/end {"nsp"} disconnects that namespace only; an empty
    socket.io/end closes everything (the node gets `end`); so does the
    node's `end`."""
    srv = siogw(sio="Namespace /\nNamespace /chat")
    c = srv.clients()
    url = srv.sio_url
    c.open("a", url + "/")
    c.cmd(op="open", id="a_chat", url=url + "/chat", opts={"share": "a"})
    assert c.wait_connect("a_chat")["ev"] == "connect"
    sid = srv.node.of_type("uwsgi")[0][0]
    # the client leaves /chat: socket.io/disconnect, the session lives on
    c.cmd(op="close", id="a_chat")
    srv.node.wait_type("socket.io/disconnect")
    assert srv.node.bodies("socket.io/disconnect", sid) == [{"nsp": "/chat"}]
    assert c.call("a", "echo", "after") == ["after"]
    c.cmd(op="connect", id="a_chat")
    c.wait(lambda e: len(c.find(lambda x: x["id"] == "a_chat" and
                                x["ev"] == "connect")) == 2, 10,
           "the reconnect to /chat")
    assert wait_for(lambda: len(srv.node.bodies("socket.io/connect", sid))
                    == 3, 5), srv.node.bodies("socket.io/connect", sid)
    c.emit("a", "end_nsp", "/chat")
    c.wait(lambda e: e["id"] == "a_chat" and e["ev"] == "disconnect" and
           e["reason"] == "io server disconnect", 10, "/chat ended")
    assert c.call("a", "echo", "still") == ["still"]
    assert not srv.node.ended(sid)
    c.emit("a", "end_all")
    r = c.wait_disconnect("a")["reason"]
    assert r in ("io server disconnect", "transport close"), r
    srv.node.wait_end(sid, timeout=10)
    # the node's own `end`
    c.open("b", url + "/", transports=["websocket"])
    c.emit("b", "node_end")
    r = c.wait_disconnect("b")["reason"]
    assert r in ("io server disconnect", "transport close"), r


NODE_SCRIPT = r'''
import json, sys, zmq
ctx = zmq.Context()
s = ctx.socket(zmq.DEALER)
s.setsockopt(zmq.IDENTITY, sys.argv[2].encode())
s.setsockopt(zmq.LINGER, 0)
s.connect(sys.argv[1])
s.send_multipart([b"", b"pong", b""])
print("up", flush=True)
while True:
    sid, t, body = s.recv_multipart()
    if t == b"ping":
        s.send_multipart([b"", b"pong", b""])
        continue
    print(t.decode(), sid.hex(), flush=True)
    if t == b"socket.io/event":
        m = json.loads(body)
        if "id" in m:
            s.send_multipart([sid, b"socket.io/ack", json.dumps(
                {"id": m["id"], "args": [sys.argv[3]] + m["args"]}).encode()])
'''


def test_reconnection_after_node_restart(siogw, tmp_path):
    """The node process is killed: the client loses its session, reconnects
    by itself and works with the new node process."""
    srv = siogw(node=False)
    script = tmp_path / "sio_node.py"
    script.write_text(NODE_SCRIPT)
    procs = []

    def start_node(tag):
        p = subprocess.Popen([sys.executable, str(script), srv.endpoint,
                              "node1", tag], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT)
        procs.append(p)
        assert p.stdout.readline().strip() == b"up"
        return p
    try:
        first = start_node("first")
        srv.wait_log(r'node "node1" is available', timeout=10)
        c = srv.clients()
        c.open("c", srv.sio_url + "/", reconnection=True,
               reconnectionDelay=200, reconnectionDelayMax=500)
        assert c.call("c", "echo", 1) == ["first", 1]
        first.kill()
        first.wait(5)
        c.wait_disconnect("c", timeout=20)
        start_node("second")
        # Reconnections made while no node was up may connect and be
        # closed at once (see the report); an echo answered by the new
        # node shows the client is back for good.
        deadline = time.monotonic() + 30
        answered = None
        while answered is None and time.monotonic() < deadline:
            answered = c.try_call("c", "echo", 2, timeout=2)
        assert answered == ["second", 2], c._tail()
        c.close()
        counts = exit_counts(srv)
        # (the attempts while no node was up were refused: node gone too)
        assert counts["opened"] == counts["closed"], counts
        assert counts["node gone"] >= 1 and counts["shutdown"] == 0, counts
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait(5)
            p.stdout.close()


def test_2000_clients_one_room_broadcast(siogw, tmp_path):
    """2,000 websocket socket.io clients (two Node.js processes) joined to
    one group by the node: one all:socket.io/event reaches every one."""
    per, procs = 1000, 2
    srv = siogw(unbounded=True)
    count = per * procs
    manys = []
    try:
        for i in range(procs):
            manys.append(JsProc("sio_many.js", [json.dumps({
                "url": srv.sio_url + "/", "count": per, "concurrency": 200,
                "event": "tick", "expect": "go"})], log_dir=tmp_path))
        for m in manys:
            ready = m.wait(lambda e: e["ev"] == "ready", 60, "all connected")
            assert (ready["connected"], ready["failed"]) == (per, 0), ready
        # every client's connect reached the node (and so its join)
        assert wait_for(lambda: len(srv.node.of_type("socket.io/connect"))
                        >= count, 30), len(srv.node.of_type(
                            "socket.io/connect"))
        sids = {s for s, _ in srv.node.of_type("socket.io/connect")}
        assert len(sids) == count
        # a round trip after the joins: the node's hello to each came after
        # its join, and the client saw... not needed: joins precede the
        # broadcast on the same ZeroMQ socket, in order
        one = next(iter(sids))
        srv.node.send(one, "all:socket.io/event",
                      jbody({"name": "tick", "args": ["go"]}))
        for m in manys:
            m.wait(lambda e: e["ev"] == "all", 30, "the broadcast everywhere")
        for m in manys:
            m.cmd(op="report")
            rep = m.wait(lambda e: e["ev"] == "report", 10)
            assert rep["got"] == per and rep["wrong"] == 0, rep
            assert rep["disconnected"] == 0, rep
    finally:
        for m in manys:
            m.close()
    assert wait_for(lambda: len(srv.node.of_type("end")) >= count, 30), \
        "the node got %d `end`s for %d clients" % (
            len(srv.node.of_type("end")), count)
    counts = exit_counts(srv)
    assert counts["opened"] == counts["closed"] == count, counts
    assert counts["shutdown"] == 0, counts


def test_300_polling_clients_one_broadcast(siogw, tmp_path):
    """300 polling-only clients: their long polls spread over both workers
    while the sessions live where their handshakes landed; one broadcast
    reaches every one."""
    count = 300
    srv = siogw(unbounded=True)
    many = JsProc("sio_many.js", [json.dumps({
        "url": srv.sio_url + "/", "count": count, "concurrency": 100,
        "event": "tick", "expect": "poll-go", "transports": ["polling"]})],
        log_dir=tmp_path)
    try:
        ready = many.wait(lambda e: e["ev"] == "ready", 60, "all connected")
        assert (ready["connected"], ready["failed"]) == (count, 0), ready
        assert wait_for(lambda: len(srv.node.of_type("socket.io/connect"))
                        >= count, 30)
        one = srv.node.of_type("socket.io/connect")[0][0]
        srv.node.send(one, "all:socket.io/event",
                      jbody({"name": "tick", "args": ["poll-go"]}))
        many.wait(lambda e: e["ev"] == "all", 30, "the broadcast everywhere")
        many.cmd(op="report")
        rep = many.wait(lambda e: e["ev"] == "report", 10)
        assert rep["got"] == count and rep["wrong"] == 0, rep
        assert rep["disconnected"] == 0, rep
    finally:
        many.close()
    assert wait_for(lambda: len(srv.node.of_type("end")) >= count, 30)


@pytest.mark.parametrize("transport", ["polling", "websocket"])
def test_big_messages_both_ways(siogw, transport):
    """A 300 KB string and a 200 KB Buffer in one event, echoed by the node
    through its ack, on each transport (MaxPayload 1000000)."""
    srv = siogw()
    c = srv.clients()
    c.open("c", srv.sio_url + "/", transports=[transport])
    text = "".join(chr(0x41 + i % 26) for i in range(300000)) + "\u00e9\u2713"
    blob = os.urandom(200000)
    back = c.call("c", "echo", text, b64(blob), timeout=30)
    assert back[0] == text
    assert back[1] == b64(blob)
    sid = srv.node.of_type("uwsgi")[0][0]
    # the node pushes big ones too
    srv.node.send(sid, "socket.io/event", jbody(
        {"name": "big", "args": [text, {"_binary": base64.b64encode(blob)
                                        .decode()}]}))
    ev = c.wait_event("c", "big", timeout=30)
    assert ev["args"][0] == text and ev["args"][1] == b64(blob)


def test_raw_upgrade_step_by_step(siogw):
    """The upgrade as engine.io-client does it, byte by byte: a waiting
    poll is released with a noop once the probe is answered; what the
    node sends before the upgrade completes ("5") comes on the websocket
    after it, nothing lost; then polls are refused."""
    srv = siogw()
    sid, nsid = open_session(srv)
    c = srv.connect(timeout=10)
    try:
        c.send(build_request("GET", eio_path(sid)))      # waiting poll
        ws = RawWS(srv.port, path=eio_path(sid, "websocket"))
        ws.handshake()
        ws.send_frame(TEXT, "2probe")
        m = ws.recv_message()
        assert (m.opcode, m.payload) == (TEXT, b"3probe"), m
        r = c.read_response()
        assert (r.status, r.body) == (200, b"6"), (r.status, r.body)
    finally:
        c.close()
    srv.node.send(nsid, "socket.io/event", jbody({"name": "e1", "args": [1]}))
    time.sleep(0.2)                      # queued while the probe is open
    ws.send_frame(TEXT, "5")
    m = ws_next(ws)
    assert (m.opcode, m.payload) == (TEXT, b'42["e1",1]'), m
    st, body = poll(srv, sid)
    assert st == 400, (st, body)
    # (that refused poll did not hurt the session)
    ws.send_frame(TEXT, '42["echo","over ws"]')
    assert ws_next(ws).payload == b'42["echo","over ws"]'
    ws.send_frame(TEXT, "1")             # the client closes
    assert ws_closes(ws)
    srv.node.wait_end(nsid)


def test_client_process_killed_ends_its_sessions(siogw):
    """The client process dies (SIGKILL): its websocket and its waiting
    poll lose their connections, and the node gets `end` for both well
    before any heartbeat would notice (PingInterval stays 25s)."""
    srv = siogw()
    c = srv.clients()
    c.open("w", srv.sio_url + "/", transports=["websocket"])
    c.open("p", srv.sio_url + "/", transports=["polling"])
    assert c.call("w", "echo", 1) == [1] and c.call("p", "echo", 2) == [2]
    sids = [s for s, _ in srv.node.of_type("uwsgi")]
    assert len(sids) == 2
    time.sleep(0.3)                      # p's next poll is waiting
    c.proc.kill()
    c.proc.wait(5)
    for sid in sids:
        srv.node.wait_end(sid, timeout=10)
    counts = exit_counts(srv)
    assert counts["transport close"] == 2, counts


def test_client_killed_mid_upgrade_leaks_nothing(siogw):
    """A client vanishes after 2probe/3probe, before 5 (upgrade): the
    session ends (the node gets `end`) within PingInterval + PingTimeout."""
    srv = siogw(sio="PingInterval 1s\nPingTimeout 1s")
    sid, nsid = open_session(srv)
    ws = RawWS(srv.port, path=eio_path(sid, "websocket"))
    ws.handshake()
    ws.send_frame(TEXT, "2probe")
    m = ws.recv_message()
    assert (m.opcode, m.payload) == (TEXT, b"3probe"), m
    ws.sock.close()                     # gone, without 5 and without polls
    srv.node.wait_end(nsid, timeout=2 + 5)
    st, body = poll(srv, sid)
    assert error_code(st, body) == 1
    # the one session closed, by the heartbeat, not at shutdown
    counts = exit_counts(srv)
    assert (counts["opened"], counts["closed"]) == (1, 1), counts
    assert counts["ping timeout"] == 1 and counts["shutdown"] == 0, counts


def test_chromium_two_pages_chat(siogw, tmp_path):
    """Headless Chromium: two pages served by Tremolo (DocumentRoot) load
    the socket.io client bundle served by Tremolo too, join the room
    "chat" through a tremolo_socketio node, and a line from each reaches
    the other."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail("%s not found: make deps installs Debian's chromium"
                    % CHROMIUM, pytrace=False)
    bundle = JS_DIR / "node_modules" / "socket.io-client" / "dist" / \
        "socket.io.min.js"
    assert bundle.exists(), "run tests/js/setup.sh (socket.io-client)"
    srv = siogw(node=False,
                files={"htdocs/chat.html": (PAGES_DIR / "chat.html")
                       .read_bytes(),
                       "htdocs/js/socket.io.min.js": bundle.read_bytes()})
    sio = rooms_app()
    seen = []
    sio.on("connect", lambda sid, environ, auth=None: seen.append(environ))
    py = PyServerNode(srv, sio)
    st, hd, body = srv.http("GET", "/js/socket.io.min.js")
    assert st == 200 and body == bundle.read_bytes(), (st, hd)
    cfg = {"url": "http://127.0.0.1:%d/chat.html" % srv.port,
           "timeout": 20000}
    try:
        p = subprocess.run([node_bin(), str(JS_DIR / "sio_browser.js"),
                            json.dumps(cfg)], cwd=str(JS_DIR),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=90)
    finally:
        py.stop()
    try:
        out = json.loads(p.stdout.decode().strip().splitlines()[-1])
    except (ValueError, IndexError):
        pytest.fail("sio_browser.js printed no result (exit %d)\nstdout: "
                    "%s\nstderr: %s" % (p.returncode, p.stdout[-2000:],
                                        p.stderr[-3000:]), pytrace=False)
    assert p.returncode == 0 and out["done"], \
        "the pages did not finish: %s\nstderr: %s" % (
            json.dumps(out)[:3000], p.stderr.decode()[-2000:])
    assert out["errors"] == [], out
    for who in ("alice", "bob"):
        res = out[who]
        assert res["errors"] == [] and res["joined"] is True, res
        assert res["transports"] == ["polling"], res
        assert ["alice", "hello bob, from alice"] in res["said"] or \
            who == "alice", res
    assert ["bob", "hi alice, bob here"] in out["alice"]["said"], out
    assert ["alice", "hello bob, from alice"] in out["bob"]["said"], out
    # the node saw two clients connect, from the browser
    assert len(seen) == 2, seen
    assert all("Chrom" in e.get("HTTP_USER_AGENT", "") for e in seen), seen


# ==== 2. raw HTTP ============================================================

def test_no_stickiness_every_request_on_a_new_connection(siogw):
    """A handshake, then 20 POSTs and 20 polls, each on its own TCP
    connection (so on both workers): every one is answered right."""
    srv = siogw()
    sid, nsid = open_session(srv)
    for i in range(20):
        assert post(srv, sid, '42["echo",%d]' % i) == (200, "ok")
        st, body = poll(srv, sid)
        assert (st, packets(body)) == (200, ['42["echo",%d]' % i]), body
    events = [b for b in srv.node.bodies("socket.io/event", nsid)]
    assert [e["args"] for e in events] == [[i] for i in range(20)]
    # several packets in one POST, and acks
    assert post(srv, sid, '421["echo","a"]' + RS + '422["echo","b"]') == \
        (200, "ok")
    got = []
    while len(got) < 2:
        st, body = poll(srv, sid)
        assert st == 200
        got += packets(body)
    assert got == ['431["a"]', '432["b"]'], got
    # the client closes: the node gets `end`
    assert post(srv, sid, "1") == (200, "ok")
    srv.node.wait_end(nsid)
    counts = exit_counts(srv)
    assert (counts["opened"], counts["client close"]) == (1, 1), counts


@pytest.mark.parametrize("payload", [
    pytest.param(b"9", id="bad-type-digit"),
    pytest.param(b"x", id="not-a-digit"),
    pytest.param(b"", id="empty-body"),
    pytest.param(b"42[\"echo\",1]\x1e", id="empty-packet"),
    pytest.param(b"b@@@", id="bad-base64"),
])
def test_malformed_engineio_payload_400_and_closed(siogw, payload):
    srv = siogw()
    sid, nsid = open_session(srv)
    st, body = post(srv, sid, payload)
    assert st == 400, (st, body)
    srv.node.wait_end(nsid)
    st, body = poll(srv, sid)
    assert error_code(st, body) == 1
    assert [b["args"] for b in srv.node.bodies("socket.io/event")] == []
    assert exit_counts(srv)["parse error"] == 1


@pytest.mark.parametrize("payload", [
    pytest.param('49', id="bad-type"),
    pytest.param('42["echo",1', id="truncated-json"),
    pytest.param('42{"a":1}', id="event-not-array"),
    pytest.param('42[]', id="event-without-name"),
    pytest.param('45-["x",{"_placeholder":true,"num":0}]', id="bad-attach"),
    pytest.param('4x', id="garbage"),
])
def test_malformed_socketio_packet_closes(siogw, payload):
    srv = siogw()
    sid, nsid = open_session(srv)
    st, body = post(srv, sid, payload)
    assert st in (200, 400), (st, body)
    srv.node.wait_end(nsid)
    st, body = poll(srv, sid)
    assert st == 400 or packets(body)[-1:] == ["1"], (st, body)
    assert not [b for b in srv.node.bodies("socket.io/event", nsid)]
    assert exit_counts(srv)["parse error"] == 1


def test_post_over_max_payload_413(siogw):
    srv = siogw(sio="MaxPayload 1000")
    hs, _ = handshake(srv)
    assert hs["maxPayload"] == 1000
    sid = hs["sid"]
    nsid = node_sid(sid)
    assert post(srv, sid, "40") == (200, "ok")
    st, body = post(srv, sid, '42["echo","%s"]' % ("x" * 2000))
    assert st == 413, (st, body)
    # nothing of it reached the node; at the limit, a POST is fine
    st, body = post(srv, sid, '42["echo","%s"]' % ("y" * (1000 - 13)))
    assert (st, body) == (200, "ok") or srv.node.ended(nsid), (st, body)
    time.sleep(0.3)
    assert all(len(b["args"][0]) < 1000
               for b in srv.node.bodies("socket.io/event", nsid))


def test_second_concurrent_poll(siogw):
    """Two GETs at once for one sid: one is answered 400, the other gets
    the close packet "1", and the session is gone."""
    srv = siogw()
    sid, nsid = open_session(srv)
    c1 = srv.connect(timeout=10)
    c2 = srv.connect(timeout=10)
    try:
        c1.send(build_request("GET", eio_path(sid)))
        time.sleep(0.5)                  # c1 is the waiting poll
        c2.send(build_request("GET", eio_path(sid)))
        r2 = c2.read_response()
        r1 = c1.read_response()
    finally:
        c1.close()
        c2.close()
    got = sorted([(r1.status, r1.body), (r2.status, r2.body)])
    assert got[0][0] == 200 and packets(got[0][1].decode()) == ["1"], got
    assert got[1][0] == 400, got
    assert (r1.status, r1.body) == (200, b"1"), (r1, r1.body)
    srv.node.wait_end(nsid)
    assert exit_counts(srv)["overlap"] == 1


def test_max_buffered_packets_closes_a_polling_session(siogw):
    """A polling client that does not come back while the node sends: at
    MaxBufferedPackets the session is closed (the node gets `end`), and
    counted."""
    srv = siogw(sio="MaxBufferedPackets 5")
    sid, nsid = open_session(srv)
    for i in range(12):
        srv.node.send(nsid, "socket.io/event",
                      jbody({"name": "flood", "args": [i]}))
    srv.node.wait_end(nsid)
    st, body = poll(srv, sid)
    assert error_code(st, body) == 1
    assert exit_counts(srv)["queue full"] == 1


def test_websocket_message_over_max_payload_1009(siogw):
    """A websocket-only Engine.IO client (raw): the OPEN packet is the
    first frame; a message over MaxPayload closes with 1009 and ends the
    session."""
    srv = siogw(sio="MaxPayload 1000")
    ws = RawWS(srv.port, path=eio_path(transport="websocket"))
    ws.handshake()
    m = ws.recv_message()
    assert m.opcode == TEXT and m.payload.startswith(b"0{"), m
    hs = json.loads(m.payload[1:])
    assert hs["upgrades"] == [] and hs["maxPayload"] == 1000, hs
    nsid = node_sid(hs["sid"])
    ws.send_frame(TEXT, "40")
    m = ws.recv_message()
    assert m.payload.startswith(b"40{"), m
    m = ws.recv_message()
    assert m.payload == b'42["hello","welcome","/"]', m
    ws.send_frame(TEXT, '42["echo","%s"]' % ("z" * 980))
    assert ws.recv_message().payload == b'42["echo","%s"]' % (b"z" * 980)
    ws.send_frame(TEXT, '42["echo","%s"]' % ("z" * 2000))
    f = ws.expect_close()
    assert f.close_code == 1009, f
    ws.reply_close(1009)                 # the close handshake, as a client
    srv.node.wait_end(nsid)
    assert exit_counts(srv)["transport close"] == 1


@pytest.mark.parametrize("bad", ["!!!garbage!!!", "A" * 22, "", "x" * 300])
def test_bad_sid_400_code_1(siogw, bad):
    srv = siogw()
    st, body = poll(srv, bad) if bad else poll(srv, "")
    assert error_code(st, body) == 1, body
    st, body = post(srv, bad, "40")
    assert error_code(st, body) == 1, body


def test_sid_from_another_site_400_code_1(siogw):
    srv = siogw(sites={
        "a": sio_site(names="a.test", default=True),
        "b": sio_site(names="b.test", default=False)})
    sid, nsid = open_session(srv, host="a.test")
    st, body = poll(srv, sid, host="b.test")
    assert error_code(st, body) == 1, body
    st, body = post(srv, sid, '42["echo",1]', host="b.test")
    assert error_code(st, body) == 1, body
    # the session itself is still fine on its own site
    assert post(srv, sid, '42["echo",2]', host="a.test") == (200, "ok")
    st, body = poll(srv, sid, host="a.test")
    assert (st, packets(body)) == (200, ['42["echo",2]'])


def test_handshake_errors(siogw):
    srv = siogw()
    st, _, body = srv.http("GET", eio_path(eio="3"))
    assert error_code(st, body) == 5
    st, _, body = srv.http("GET", eio_path(transport="flashsocket"))
    assert error_code(st, body) == 0
    st, _, body = srv.http("POST", eio_path(), body=b"40",
                           headers={"Content-Type": "text/plain"})
    assert error_code(st, body) == 2
    assert srv.node.of_type("uwsgi") == []


def test_cors(siogw):
    srv = siogw(sio="CorsOrigin http://ok.test")
    pre = {"Origin": "http://ok.test",
           "Access-Control-Request-Method": "POST",
           "Access-Control-Request-Headers": "content-type"}
    st, hd, _ = srv.http("OPTIONS", eio_path(), headers=pre)
    assert st == 204, (st, hd)
    assert hd.get("access-control-allow-origin") == "http://ok.test", hd
    hs, hd = handshake(srv, headers={"Origin": "http://ok.test"})
    assert hd.get("access-control-allow-origin") == "http://ok.test", hd
    pre["Origin"] = "http://evil.test"
    st, hd, _ = srv.http("OPTIONS", eio_path(), headers=pre)
    assert "access-control-allow-origin" not in hd, (st, hd)
    hs, hd = handshake(srv, headers={"Origin": "http://evil.test"})
    assert "access-control-allow-origin" not in hd, hd


def test_cors_credentials_and_any_origin(siogw):
    """CorsCredentials on: the listed origin is echoed with
    Access-Control-Allow-Credentials, on the preflight, the handshake,
    polls, POSTs and errors; CorsOrigin * allows any origin."""
    srv = siogw(sites={
        "a": sio_site(names="a.test", sio="CorsOrigin http://ok.test\n"
                      "CorsCredentials on"),
        "b": sio_site(names="b.test", default=False, sio="CorsOrigin *")})
    o = {"Host": "a.test", "Origin": "http://ok.test"}
    st, hd, _ = srv.http("OPTIONS", eio_path(), headers=dict(
        o, **{"Access-Control-Request-Method": "POST",
              "Access-Control-Request-Headers": "content-type"}))
    assert st == 204, (st, hd)
    assert hd.get("access-control-allow-origin") == "http://ok.test", hd
    assert hd.get("access-control-allow-credentials") == "true", hd
    assert "POST" in hd.get("access-control-allow-methods", ""), hd
    assert "content-type" in hd.get("access-control-allow-headers",
                                    "").lower(), hd
    hs, hd = handshake(srv, headers=o)
    assert hd.get("access-control-allow-credentials") == "true", hd
    sid = hs["sid"]
    st, hd, body = srv.http("POST", eio_path(sid), headers=o, body=b"40")
    assert (st, body) == (200, b"ok")
    assert hd.get("access-control-allow-origin") == "http://ok.test", hd
    st, hd, body = srv.http("GET", eio_path(sid), headers=o)
    assert st == 200 and body.startswith(b"40{"), (st, body)
    assert hd.get("access-control-allow-origin") == "http://ok.test", hd
    st, hd, body = srv.http("GET", eio_path("A" * 22), headers=o)
    assert error_code(st, body) == 1
    assert hd.get("access-control-allow-origin") == "http://ok.test", hd
    # "*": any origin gets an answer naming it (or "*")
    hs, hd = handshake(srv, headers={"Host": "b.test",
                                     "Origin": "http://any.test"})
    assert hd.get("access-control-allow-origin") in (
        "http://any.test", "*"), hd


def test_keepalive_connection_carries_the_whole_session(siogw):
    """A browser reuses one keep-alive connection for its polls and POSTs:
    handshake, CONNECT, events and their answers on one TCP connection."""
    srv = siogw()
    with srv.connect(timeout=10) as c:
        r = c.request("GET", eio_path())
        assert r.status == 200 and r.body.startswith(b"0"), r
        sid = json.loads(r.body[1:])["sid"]
        r = c.request("POST", eio_path(sid), body=b"40",
                      headers={"Content-Type": "text/plain;charset=UTF-8"})
        assert (r.status, r.body) == (200, b"ok"), r
        got = []
        while not any(p.startswith("42") for p in got):
            r = c.request("GET", eio_path(sid))
            assert r.status == 200, r
            got += packets(r.body.decode())
        assert got[0].startswith("40{") and got[-1] == \
            '42["hello","welcome","/"]', got
        for i in range(5):
            r = c.request("POST", eio_path(sid),
                          body=('421%d["echo",%d]' % (i, i)).encode())
            assert (r.status, r.body) == (200, b"ok"), r
            r = c.request("GET", eio_path(sid))
            assert (r.status, r.body.decode()) == (
                200, '431%d[%d]' % (i, i)), r


def test_exit_counts_sessions_of_every_worker(siogw):
    """Sessions open at shutdown, on both workers, are closed and counted
    before the counters are logged."""
    srv = siogw()
    for _ in range(10):                  # 10 connections: both workers
        handshake(srv)
    counts = exit_counts(srv)
    assert counts["opened"] == counts["closed"] == 10, counts
    assert counts["shutdown"] == 10, counts


def test_poll_cut_short_ends_the_session(siogw):
    """The client drops a waiting poll's connection: as engine.io, the
    session ends (the node gets `end`)."""
    srv = siogw()
    sid, nsid = open_session(srv)
    c = srv.connect()
    c.send(build_request("GET", eio_path(sid)))
    time.sleep(0.3)                      # the poll waits
    c.close()
    srv.node.wait_end(nsid)
    assert exit_counts(srv)["transport close"] == 1


def test_path_transports_and_upgrades_settings(siogw):
    """[SOCKETIO] Path moves the endpoint (socket.io-client's `path`);
    Transports and AllowUpgrades shape the handshake."""
    sites = {
        "a": sio_site(names="a.test", sio="Path /rt/", default=True,
                      extra="[LOCATION /rt]\n    Handler zmq\n"),
        "b": sio_site(names="b.test", default=False,
                      sio="Transports websocket"),
        "c": sio_site(names="c.test", default=False, sio="AllowUpgrades off"),
        "d": sio_site(names="d.test", default=False, sio="Transports polling"),
    }
    srv = siogw(sites=sites)
    # a: served at /rt/ (/socket.io/ there is a plain request for the node)
    st, _, body = srv.http("GET", eio_path(path="/rt/"),
                           headers={"Host": "a.test"})
    assert st == 200 and body.startswith(b"0"), (st, body)
    c = srv.clients()
    c.open("rt", srv.sio_url + "/", path="/rt/",
           extraHeaders={"Host": "a.test"}, transports=["websocket"])
    assert c.call("rt", "echo", "rt") == ["rt"]
    # b: websocket only: a polling handshake is refused (code 0)
    st, _, body = srv.http("GET", eio_path(), headers={"Host": "b.test"})
    assert error_code(st, body) == 0
    ws = RawWS(srv.port, path=eio_path(transport="websocket"),
               headers={"Host": "b.test"})
    ws.handshake()
    assert ws.recv_message().payload.startswith(b"0{")
    # c: no upgrades offered; d: polling only, no upgrade either
    for host in ("c.test", "d.test"):
        hs, _ = handshake(srv, host=host)
        assert hs["upgrades"] == [], (host, hs)
    st, _, body = srv.http("GET", eio_path(transport="websocket"),
                           headers={"Host": "d.test"})
    assert st == 400, (st, body)


# ==== 3. the public protocol test suite's cases ==============================
#
# socket.io-protocol's test-suite.js (EIO=4) drives a server running its
# reference app (on connection: emit "auth" with the handshake's auth;
# "message" -> emit "message-back" with the same args; "message-with-ack"
# -> ack with the same args) with pingInterval 300 ms, pingTimeout 200 ms,
# maxPayload 1000000. The same cases, byte for byte, against Tremolo with
# a node that is that app.

REF_SIO = ("PingInterval 300ms\nPingTimeout 200ms\nConnectTimeout 1s\n"
           "Namespace /\nNamespace /custom")


def ref_app(node, sid, mtype, data):
    p = node.pynode
    if mtype == "socket.io/connect":
        m = json.loads(data)
        nsp = m.get("nsp", "/")
        p.send(sid, "socket.io/event", jbody(with_nsp(
            {"name": "auth", "args": [m.get("auth", {})]}, nsp)))
    elif mtype == "socket.io/event":
        m = json.loads(data)
        nsp, args = m.get("nsp", "/"), m.get("args", [])
        if m["name"] == "message":
            p.send(sid, "socket.io/event", jbody(with_nsp(
                {"name": "message-back", "args": args}, nsp)))
        elif m["name"] == "message-with-ack" and "id" in m:
            p.send(sid, "socket.io/ack", jbody(with_nsp(
                {"id": m["id"], "args": args}, nsp)))


@pytest.fixture
def refgw(siogw):
    return siogw(sio=REF_SIO, on_msg=ref_app)


def ws_session(srv, sid=None, connect=None):
    """A raw websocket Engine.IO session: (RawWS, open packet JSON or None
    when joining sid). connect: send this CONNECT and read the Socket.IO
    handshake and the "auth" event."""
    ws = RawWS(srv.port, path=eio_path(sid, "websocket"))
    ws.handshake()
    hs = None
    if sid is None:
        m = ws.recv_message()
        assert m.opcode == TEXT and m.payload.startswith(b"0"), m
        hs = json.loads(m.payload[1:])
    if connect is not None:
        ws.send_frame(TEXT, connect)
        m = ws_next(ws)
        assert m.payload.startswith(b"40"), m
        m = ws_next(ws)
        assert b'"auth"' in m.payload, m
    return ws, hs


def ws_next(ws, timeout=5):
    """The next message that is not an Engine.IO ping (answered)."""
    while True:
        m = ws.recv_message(timeout)
        if m.opcode == TEXT and m.payload == b"2":
            ws.send_frame(TEXT, "3")
            continue
        return m


def ws_closes(ws, timeout=5):
    """The server closes the websocket (a close frame, or EOF)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            m = ws.recv_message(max(0.05, deadline - time.monotonic()))
        except EOFError:
            return True
        if m.opcode == CLOSE:
            return True


def test_ref_handshake(refgw):
    srv = refgw
    st, _, body = srv.http("GET", eio_path())
    assert st == 200 and body.startswith(b"0"), (st, body)
    v = json.loads(body[1:])
    assert sorted(v) == sorted(["sid", "upgrades", "pingInterval",
                                "pingTimeout", "maxPayload"]), v
    assert isinstance(v["sid"], str)
    assert (v["upgrades"], v["pingInterval"], v["pingTimeout"],
            v["maxPayload"]) == (["websocket"], 300, 200, 1000000), v
    for bad in ("/socket.io/?transport=polling",
                "/socket.io/?EIO=abc&transport=polling",
                "/socket.io/?EIO=4", "/socket.io/?EIO=4&transport=abc"):
        st, _, body = srv.http("GET", bad)
        assert st == 400, (bad, st, body)
    for method in ("POST", "PUT"):
        st, _, body = srv.http(method, eio_path())
        assert st == 400, (method, st, body)
    ws, hs = ws_session(srv)
    assert sorted(hs) == sorted(v), hs
    assert (hs["upgrades"], hs["pingInterval"], hs["pingTimeout"],
            hs["maxPayload"]) == ([], 300, 200, 1000000), hs
    ws.close()
    for bad in ("/socket.io/?transport=websocket",
                "/socket.io/?EIO=abc&transport=websocket",
                "/socket.io/?EIO=4", "/socket.io/?EIO=4&transport=abc"):
        w = RawWS(srv.port, path=bad)
        r = w.read_response()
        assert r.status != 101, (bad, r.status)
        w.close()


def test_ref_heartbeat_polling(refgw):
    srv = refgw
    hs, _ = handshake(srv)
    sid = hs["sid"]
    for i in range(3):
        assert poll(srv, sid) == (200, "2"), i
        assert post(srv, sid, "3") == (200, "ok"), i
    sid2 = handshake(srv)[0]["sid"]
    time.sleep(0.3 + 0.2 + 0.3)          # PING_INTERVAL + PING_TIMEOUT
    st, body = poll(srv, sid2)
    assert st == 400, (st, body)


def test_ref_heartbeat_websocket(refgw):
    srv = refgw
    ws, _ = ws_session(srv)
    for i in range(3):
        m = ws.recv_message()
        assert (m.opcode, m.payload) == (TEXT, b"2"), (i, m)
        ws.send_frame(TEXT, "3")
    ws.close()
    ws, _ = ws_session(srv)                # no pong: closed
    assert ws_closes(ws, timeout=5)


def test_ref_close(refgw):
    srv = refgw
    sid = handshake(srv)[0]["sid"]
    c = srv.connect(timeout=10)
    try:
        c.send(build_request("GET", eio_path(sid)))
        time.sleep(0.1)
        assert post(srv, sid, "1") == (200, "ok")
        r = c.read_response()
    finally:
        c.close()
    assert (r.status, r.body) == (200, b"6"), (r.status, r.body)
    st, body = poll(srv, sid)
    assert st == 400, (st, body)
    ws, _ = ws_session(srv)
    ws.send_frame(TEXT, "1")
    assert ws_closes(ws)


def test_ref_upgrade(refgw):
    srv = refgw
    sid = handshake(srv)[0]["sid"]
    ws, _ = ws_session(srv, sid)
    ws.send_frame(TEXT, "2probe")
    m = ws.recv_message()
    assert (m.opcode, m.payload) == (TEXT, b"3probe"), m
    ws.send_frame(TEXT, "5")
    # after the upgrade: a poll with that sid is refused, and so is a
    # second websocket
    sid = handshake(srv)[0]["sid"]
    ws, _ = ws_session(srv, sid)
    ws.send_frame(TEXT, "2probe")
    ws.send_frame(TEXT, "5")
    assert ws.recv_message().payload == b"3probe"
    st, body = poll(srv, sid)
    assert st == 400, (st, body)
    sid = handshake(srv)[0]["sid"]
    ws, _ = ws_session(srv, sid)
    ws.send_frame(TEXT, "2probe")
    ws.send_frame(TEXT, "5")
    assert ws.recv_message().payload == b"3probe"
    ws2 = RawWS(srv.port, path=eio_path(sid, "websocket"))
    try:
        r = ws2.read_response()
    except EOFError:
        r = None
    if r is not None and r.status == 101:
        assert ws_closes(ws2)


def test_ref_socketio_connect(refgw):
    srv = refgw
    for connect, prefix, auth in (
            ("40", b"40", b'42["auth",{}]'),
            ('40{"token":"123"}', b"40", b'42["auth",{"token":"123"}]'),
            ("40/custom,", b"40/custom,", b'42/custom,["auth",{}]'),
            ('40/custom,{"token":"abc"}', b"40/custom,",
             b'42/custom,["auth",{"token":"abc"}]')):
        ws, _ = ws_session(srv)
        ws.send_frame(TEXT, connect)
        m = ws_next(ws)
        assert m.payload.startswith(prefix), (connect, m)
        hs = json.loads(m.payload[len(prefix):])
        assert sorted(hs) == ["sid"] and isinstance(hs["sid"], str), hs
        assert ws_next(ws).payload == auth, connect
        ws.close()
    ws, _ = ws_session(srv)
    ws.send_frame(TEXT, "40/random")
    assert ws_next(ws).payload == b'44/random,{"message":"Invalid namespace"}'
    ws.close()
    ws, _ = ws_session(srv)
    ws.send_frame(TEXT, "4abc")
    assert ws_closes(ws)
    ws, _ = ws_session(srv)                # no CONNECT: ConnectTimeout
    assert ws_closes(ws, timeout=5)


def test_ref_socketio_disconnect(refgw):
    srv = refgw
    ws, _ = ws_session(srv, connect="40")
    ws.send_frame(TEXT, "41")
    m = ws.recv_message()
    assert (m.opcode, m.payload) == (TEXT, b"2"), m
    ws.close()
    ws, _ = ws_session(srv, connect="40")
    ws.send_frame(TEXT, "40/custom")
    assert ws_next(ws).payload.startswith(b"40/custom,")
    assert ws_next(ws).payload == b'42/custom,["auth",{}]'
    ws.send_frame(TEXT, "41/custom")
    ws.send_frame(TEXT, '42["message","message to main namespace"]')
    assert ws_next(ws).payload == \
        b'42["message-back","message to main namespace"]'


def test_ref_socketio_messages(refgw):
    srv = refgw
    ws, _ = ws_session(srv, connect="40")
    ws.send_frame(TEXT, '42["message",1,"2",{"3":[true]}]')
    assert ws_next(ws).payload == b'42["message-back",1,"2",{"3":[true]}]'
    ws.send_frame(TEXT, '452-["message",{"_placeholder":true,"num":0},'
                        '{"_placeholder":true,"num":1}]')
    ws.send_frame(BINARY, bytes([1, 2, 3]))
    ws.send_frame(BINARY, bytes([4, 5, 6]))
    got = [ws_next(ws) for _ in range(3)]
    assert [(m.opcode, m.payload) for m in got] == [
        (TEXT, b'452-["message-back",{"_placeholder":true,"num":0},'
               b'{"_placeholder":true,"num":1}]'),
        (BINARY, bytes([1, 2, 3])), (BINARY, bytes([4, 5, 6]))], got
    ws.send_frame(TEXT, '42456["message-with-ack",1,"2",{"3":[false]}]')
    assert ws_next(ws).payload == b'43456[1,"2",{"3":[false]}]'
    ws.send_frame(TEXT, '452-789["message-with-ack",{"_placeholder":true,'
                        '"num":0},{"_placeholder":true,"num":1}]')
    ws.send_frame(BINARY, bytes([1, 2, 3]))
    ws.send_frame(BINARY, bytes([4, 5, 6]))
    got = [ws_next(ws) for _ in range(3)]
    assert [(m.opcode, m.payload) for m in got] == [
        (TEXT, b'462-789[{"_placeholder":true,"num":0},'
               b'{"_placeholder":true,"num":1}]'),
        (BINARY, bytes([1, 2, 3])), (BINARY, bytes([4, 5, 6]))], got
    ws.close()
    for bad in ("4abc", "42{}",
                '42abc["message-with-ack",1,"2",{"3":[false]}]'):
        ws, _ = ws_session(srv, connect="40")
        ws.send_frame(TEXT, bad)
        assert ws_closes(ws), bad
        ws.close()
