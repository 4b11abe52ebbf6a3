"""websocket plugin (RFC 6455 behind the zmq gateway), against a real
Tremolo, real pyzmq nodes (plugins/zmq/nodes/python/tremolo_node.py) and
real clients: raw sockets with the frame encoder below (every byte chosen
by the test), and the npm `ws` client (tests/js/ws_driver.js, installed by
tests/js/setup.sh).

This file: the echo service, the handshake (101/400/426/503, the accept
key, the upgrade's uwsgi packet, frames in the same write as the upgrade),
subprotocols chosen or refused by the node, every protocol-error close
code, fragments with interleaved pings, the close handshake both ways,
server pings and the idle timeout. The other test_plugin_websocket_*.py
files import the helpers from here: groups and 5,000 clients, headless
Chromium, permessage-deflate, wss:// and slow readers.

Site keys of the plugin ([WEBSOCKET] in a site file) used here:
BinaryMessages, MaxMessageSize, PingInterval, IdleTimeout, CloseTimeout."""

import base64
import hashlib
import json
import os
import queue
import random
import resource
import select
import shutil
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.parse

import pytest

import tremolo_harness
from plugin_util import wait_for
from tremolo_harness import HOST, free_port, parse_one

SRC = tremolo_harness.src_dir()
JS_DIR = SRC / "tests" / "js"
PAGES_DIR = SRC / "tests" / "integration" / "ws_pages"
sys.path.insert(0, str(SRC / "plugins" / "zmq" / "nodes" / "python"))
from tremolo_node import Handler, Node as PyNode  # noqa: E402

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
CONT, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


# ---- frames (client side: masked) ----------------------------------------

def accept_key(key):
    if isinstance(key, str):
        key = key.encode()
    return base64.b64encode(hashlib.sha1(key + GUID).digest()).decode()


def xor_mask(data, key):
    n = len(data)
    if not n:
        return b""
    k = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "big") ^
            int.from_bytes(k, "big")).to_bytes(n, "big")


def frame(opcode, payload=b"", fin=True, rsv=0, mask=True, key=None):
    """One frame as a client sends it (masked unless mask=False); rsv is the
    three RSV bits as 0..7 (4 = RSV1)."""
    if isinstance(payload, str):
        payload = payload.encode()
    head = bytes([(0x80 if fin else 0) | (rsv << 4) | opcode])
    mbit = 0x80 if mask else 0
    n = len(payload)
    if n < 126:
        head += bytes([mbit | n])
    elif n < 65536:
        head += bytes([mbit | 126]) + struct.pack(">H", n)
    else:
        head += bytes([mbit | 127]) + struct.pack(">Q", n)
    if mask:
        key = key or os.urandom(4)
        return head + key + xor_mask(payload, key)
    return head + payload


def close_payload(code=None, reason=b""):
    if code is None:
        return b""
    if isinstance(reason, str):
        reason = reason.encode()
    return struct.pack(">H", code) + reason


class Frame:
    def __init__(self, fin, rsv, opcode, payload, head_len):
        self.fin, self.rsv, self.opcode = fin, rsv, opcode
        self.payload, self.head_len = payload, head_len

    @property
    def close_code(self):
        if len(self.payload) >= 2:
            return struct.unpack(">H", self.payload[:2])[0]
        return None

    def __repr__(self):
        return "<Frame op=%x fin=%d rsv=%d len=%d %r>" % (
            self.opcode, self.fin, self.rsv, len(self.payload),
            self.payload[:40])


def parse_server_frame(buf):
    """(Frame, rest) or (None, buf) when incomplete. Server frames must be
    unmasked and use the minimal length encoding (RFC 6455 5.1, 5.2)."""
    if len(buf) < 2:
        return None, buf
    b0, b1 = buf[0], buf[1]
    assert not b1 & 0x80, "server frame is masked: %r" % buf[:14]
    n = b1 & 0x7F
    pos = 2
    if n == 126:
        if len(buf) < 4:
            return None, buf
        n = struct.unpack(">H", buf[2:4])[0]
        assert n >= 126, "non-minimal 16-bit length %d" % n
        pos = 4
    elif n == 127:
        if len(buf) < 10:
            return None, buf
        n = struct.unpack(">Q", buf[2:10])[0]
        assert 65536 <= n < 1 << 63, "bad 64-bit length %d" % n
        pos = 10
    if len(buf) < pos + n:
        return None, buf
    return (Frame(b0 >> 7, (b0 >> 4) & 7, b0 & 0xF, buf[pos:pos + n], pos),
            buf[pos + n:])


def parse_all_frames(data):
    """Every complete frame in data; returns (frames, leftover bytes)."""
    frames = []
    while True:
        f, data = parse_server_frame(data)
        if f is None:
            return frames, data
        frames.append(f)


# ---- a raw client --------------------------------------------------------

_RAW_OPEN = []          # closed by the fixtures' teardown


class RawWS:
    """A WebSocket client on a plain socket; every byte is the test's."""

    def __init__(self, port, path="/ws", headers=None, host=HOST,
                 key=None, timeout=5.0, rcvbuf=None, sock=None,
                 method="GET", version="HTTP/1.1", send=True, extra=b""):
        if sock is None:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            if rcvbuf:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            sock.settimeout(timeout)
            sock.connect((HOST, port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = sock
        _RAW_OPEN.append(self)
        self.timeout = timeout
        self.buf = b""
        self.eof = False
        self.pings = []
        self.key = key if key is not None else \
            base64.b64encode(os.urandom(16)).decode()
        h = {"Host": host, "Upgrade": "websocket", "Connection": "Upgrade",
             "Sec-WebSocket-Key": self.key, "Sec-WebSocket-Version": "13"}
        for k, v in (headers or {}).items():
            for old in [o for o in h if o.lower() == k.lower()]:
                del h[old]
            if v is not None:
                h[k] = v
        self.request = ("%s %s %s\r\n" % (method, path, version) +
                        "".join("%s: %s\r\n" % kv for kv in h.items()) +
                        "\r\n").encode("latin-1")
        self.response = None
        if send:
            self.send(self.request + extra)

    # -- bytes
    def send(self, data):
        self.sock.sendall(data)

    def send_frame(self, *args, **kw):
        self.send(frame(*args, **kw))

    def _fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("nothing more from the server in time; have "
                               "%r" % self.buf[:200])
        r, _, _ = select.select([self.sock], [], [], left)
        if not r:
            raise TimeoutError("nothing more from the server in time; have "
                               "%r" % self.buf[:200])
        try:
            chunk = self.sock.recv(1 << 20)
        except (ConnectionResetError, OSError):
            chunk = b""
        if not chunk:
            self.eof = True
        self.buf += chunk

    # -- handshake
    def read_response(self, timeout=None):
        """The server's answer to the upgrade: a 101 head, or a whole
        error response (body by Content-Length, or up to EOF)."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            r, rest = parse_one(self.buf, eof=self.eof)
            if r is not None:
                self.buf = rest
                self.response = r
                return r
            if self.eof:
                raise EOFError("connection closed; have %r" % self.buf[:300])
            self._fill(deadline)

    def handshake(self, timeout=None):
        r = self.read_response(timeout)
        assert r.status == 101, "expected 101, got %d %r\n%r" % (
            r.status, r.reason, r.raw_head + r.body)
        check_101(r, self.key)
        return r

    # -- frames
    def recv_frame(self, timeout=None):
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            f, rest = parse_server_frame(self.buf)
            if f is not None:
                self.buf = rest
                return f
            if self.eof:
                raise EOFError("connection closed mid-frame or before one; "
                               "have %r" % self.buf[:100])
            self._fill(deadline)

    def recv_message(self, timeout=None, skip_pings=True):
        """One data message (continuations joined), or a close frame
        (returned as is). Pings are recorded in self.pings and skipped."""
        deadline = time.monotonic() + (timeout or self.timeout)
        parts, first = [], None
        while True:
            f = self.recv_frame(max(0.01, deadline - time.monotonic()))
            assert f.rsv == 0, "RSV bits set without an extension: %r" % f
            if f.opcode == PING and skip_pings:
                self.pings.append(f.payload)
                continue
            if f.opcode in (CLOSE, PING, PONG):
                return f
            if first is None:
                assert f.opcode in (TEXT, BINARY), "unexpected %r" % f
                first = f
            else:
                assert f.opcode == CONT, "new message inside one: %r" % f
            parts.append(f.payload)
            if f.fin:
                return Frame(1, 0, first.opcode, b"".join(parts),
                             first.head_len)

    def expect_message(self, opcode, payload, timeout=None):
        m = self.recv_message(timeout)
        assert (m.opcode, m.payload) == (opcode, payload), \
            "expected op %x %r, got %r" % (opcode, payload[:60], m)
        return m

    def expect_close(self, timeout=None):
        """Reads up to the server's close frame (data frames before it are
        kept in self.skipped); returns the frame."""
        self.skipped = []
        while True:
            f = self.recv_message(timeout, skip_pings=True)
            if f.opcode == CLOSE:
                if len(f.payload) > 2:
                    f.payload[2:].decode("utf-8")   # valid UTF-8 reason
                assert len(f.payload) != 1, "close payload of 1 byte"
                return f
            self.skipped.append(f)

    def expect_eof(self, timeout=3.0):
        """Waits for the server to close TCP; returns the bytes that came
        before the close (b"" when nothing did)."""
        deadline = time.monotonic() + timeout
        start = len(self.buf)
        while not self.eof:
            self._fill(deadline)
        return self.buf[start:]

    def reply_close(self, code=None, reason=b""):
        try:
            self.send_frame(CLOSE, close_payload(code, reason))
        except OSError:
            pass

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def check_101(r, key):
    """A correct 101 for our key (RFC 6455 4.2.2)."""
    assert r.raw_head.startswith(b"HTTP/1.1 101 "), r.raw_head
    h = r.headers
    assert h.get("upgrade", "").lower() == "websocket", h
    assert "upgrade" in [t.strip().lower() for t in
                         h.get("connection", "").split(",")], h
    assert h.get("sec-websocket-accept") == accept_key(key), \
        (h.get("sec-websocket-accept"), accept_key(key))
    assert "content-length" not in h and "transfer-encoding" not in h, h


def close_raw():
    while _RAW_OPEN:
        _RAW_OPEN.pop().close()


# ---- the node --------------------------------------------------------------

class WsNode(Handler):
    """tremolo_node.Node in a thread of its own. Every message is recorded
    in `events` as (type, sid, data) (`uwsgi` with the decoded dict).
    `on_req(node, sid, vars)` and `on_msg(node, sid, type, data)` are the
    application (they run in the node thread and may call node.send());
    the test thread uses node.call(fn) / node.send(), which are queued."""

    def __init__(self, endpoint, identity="node1", on_req=None, on_msg=None,
                 unbounded=False):
        # unbounded: no ZeroMQ high-water marks on the node's side, so that
        # libzmq's I/O thread takes a burst of thousands of requests while
        # this Python thread is behind (the gateway refuses a request whose
        # node queue is full).
        self.ctx = None
        if unbounded:
            import zmq
            self.ctx = zmq.Context()
            self.ctx.setsockopt(zmq.RCVHWM, 0)
            self.ctx.setsockopt(zmq.SNDHWM, 0)
        self.pynode = PyNode(identity, [endpoint], linger=0, context=self.ctx)
        self.identity = identity
        self.on_req = on_req
        self.on_msg = on_msg
        self.events = []
        self.errors = []
        self.lock = threading.Lock()
        self.inbox = queue.Queue()
        self.tasks = []
        self.running = True
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    # Handler callbacks (node thread)
    def _record(self, typ, sid, data):
        with self.lock:
            self.events.append((typ, sid, data))

    def _app(self, fn, *args):
        if fn is None:
            return
        try:
            fn(self, *args)
        except Exception as e:          # shown by the fixture's teardown
            self.errors.append(repr(e))

    def on_request(self, sid, uwsgi_vars):
        self._record("uwsgi", sid, uwsgi_vars)
        self._app(self.on_req, sid, uwsgi_vars)

    def on_websocket(self, sid, data):
        self._record("websocket", sid, data)
        self._app(self.on_msg, sid, "websocket", data)

    def on_message(self, sid, mtype, data):
        self._record(mtype, sid, data)
        self._app(self.on_msg, sid, mtype, data)

    def on_msg(self, sid, data):       # routed `msg` (not used here)
        self._record("msg", sid, data)

    def on_end(self, sid):
        self._record("end", sid, b"")

    def _loop(self):
        while self.running:
            while True:
                try:
                    fn = self.inbox.get_nowait()
                except queue.Empty:
                    break
                self._app(fn)
            for t in list(self.tasks):
                try:
                    next(t)
                except StopIteration:
                    self.tasks.remove(t)
                except Exception as e:
                    self.tasks.remove(t)
                    self.errors.append(repr(e))
            try:
                self.pynode.poll_once(self, 0 if self.tasks else 5)
            except Exception as e:
                if self.running:
                    self.errors.append(repr(e))

    # from any thread
    def call(self, fn):
        self.inbox.put(fn)

    def send(self, sid, mtype, body=b""):
        self.call(lambda n: n.pynode.send(sid, mtype, body))

    def later(self, delay, fn):
        """Run fn(node) in the node thread `delay` seconds from now."""
        when = time.monotonic() + delay

        def task():
            while time.monotonic() < when:
                yield
            fn(self)
        self.call(lambda n: n.tasks.append(task()))

    # looking at it
    def of_type(self, typ, sid=None):
        with self.lock:
            return [(s, d) for t, s, d in self.events
                    if t == typ and (sid is None or s == sid)]

    def messages(self, sid):
        """(type, data) of every websocket message of sid, in order."""
        with self.lock:
            return [(t, d) for t, s, d in self.events
                    if s == sid and t.startswith("websocket")]

    def sid_of(self, tag, timeout=10):
        """The sid of the upgrade request with ?c=TAG."""
        found = []

        def look():
            for sid, v in self.of_type("uwsgi"):
                q = urllib.parse.parse_qs(v.get("QUERY_STRING", ""))
                if q.get("c") == [tag]:
                    found.append((sid, v))
                    return True
            return False
        assert wait_for(look, timeout), \
            "the node got no upgrade request with ?c=%s" % tag
        return found[0][0]

    def vars_of(self, sid):
        return next(v for s, v in self.of_type("uwsgi") if s == sid)

    def ended(self, sid):
        return bool(self.of_type("end", sid))

    def wait_end(self, sid, timeout=5):
        assert wait_for(lambda: self.ended(sid), timeout), \
            "the node got no `end` for the session within %s s" % timeout

    def close(self):
        self.running = False
        self.thread.join(3)
        self.pynode.close(linger=0)
        if self.ctx is not None:
            self.ctx.term()


def echo_msg(node, sid, mtype, data):
    """The echo service: each message goes back with its own type
    (`websocket` = text, `websocket/binary` = binary)."""
    node.pynode.send(sid, mtype, data)


def echo_by_content(node, sid, mtype, data):
    """An echo for tests about something else than BinaryMessages: binary
    back as binary when the node was told so, or when the payload is not
    UTF-8 (what a BlastBeat-era node would have to guess)."""
    if mtype == "websocket":
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            mtype = "websocket/binary"
    node.pynode.send(sid, mtype, data)


# ---- the npm `ws` client -------------------------------------------------

def node_bin():
    path = shutil.which("node")
    if not path:
        pytest.fail("node (Node.js >= 20) not found: the WebSocket tests "
                    "need it (make test runs tests/js/setup.sh)",
                    pytrace=False)
    for pkg in ("ws", "playwright-core"):
        if not (JS_DIR / "node_modules" / pkg / "package.json").exists():
            pytest.fail("tests/js/node_modules/%s is missing: run "
                        "`sh tests/js/setup.sh` (make test does)" % pkg,
                        pytrace=False)
    return path


def _raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class JsProc:
    """A Node.js script speaking JSON lines (ws_driver.js, ws_many.js)."""

    def __init__(self, script, args=(), log_dir=None):
        self.events = []
        self.cond = threading.Condition()
        err_path = os.path.join(str(log_dir or "/tmp"),
                                "%s-%d.stderr" % (script, id(self)))
        self.err_path = err_path
        self.err = open(err_path, "wb")
        self.proc = subprocess.Popen(
            [node_bin(), str(JS_DIR / script)] + list(args),
            cwd=str(JS_DIR), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=self.err, preexec_fn=_raise_nofile)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            try:
                ev = json.loads(line)
            except ValueError:
                ev = {"ev": "garbage", "line": line[:200].decode("latin-1")}
            with self.cond:
                self.events.append(ev)
                self.cond.notify_all()

    def cmd(self, **kw):
        self.proc.stdin.write((json.dumps(kw) + "\n").encode())
        self.proc.stdin.flush()

    def find(self, pred):
        with self.cond:
            return [e for e in self.events if pred(e)]

    def wait(self, pred, timeout=10, what="event"):
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for e in self.events:
                    if pred(e):
                        return e
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    break
                self.cond.wait(min(left, 0.2))
        pytest.fail("no %s from %s within %s s; events: %s\nstderr: %s" % (
            what, self.proc.args[1], timeout, self._tail(), self.stderr()),
            pytrace=False)

    def _tail(self):
        with self.cond:
            evs = self.events[-15:]
        return json.dumps(evs)[:3000]

    def stderr(self):
        try:
            with open(self.err_path, "rb") as f:
                return f.read().decode("utf-8", "replace")[-3000:]
        except OSError:
            return ""

    def close(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.err.close()


class WsClients(JsProc):
    """ws_driver.js: named `ws` connections."""

    def __init__(self, log_dir=None):
        super().__init__("ws_driver.js", log_dir=log_dir)

    def open(self, cid, url, wait=True, **opts):
        self.cmd(op="open", id=cid, url=url, **opts)
        if wait:
            return self.wait_open(cid)

    def wait_open(self, cid, timeout=10):
        return self.wait(lambda e: e.get("id") == cid and e["ev"] in (
            "open", "error", "unexpected", "close"), timeout,
            "open of %s" % cid)

    def send_text(self, cid, text, **kw):
        self.cmd(op="send", id=cid, text=text, **kw)

    def send_bytes(self, cid, data, binary=True, **kw):
        self.cmd(op="send", id=cid, b64=base64.b64encode(data).decode(),
                 binary=binary, **kw)

    def messages(self, cid):
        return self.find(lambda e: e["ev"] == "message" and e["id"] == cid)

    def closed(self, cid):
        return self.find(lambda e: e["ev"] in ("close", "unexpected") and
                         e["id"] == cid)

    def wait_messages(self, cid, n, timeout=10):
        """Waits for n messages on cid; fails at once if it closes first."""
        self.wait(lambda e: len(self.messages(cid)) >= n or
                  self.closed(cid), timeout, "%d messages on %s" % (n, cid))
        got = self.messages(cid)
        assert len(got) >= n, "%s closed after %d of %d messages: %s" % (
            cid, len(got), n, self.closed(cid))
        return got

    def stats(self, cid):
        before = len(self.find(lambda e: e["ev"] == "stats"))
        self.cmd(op="stats", id=cid)
        self.wait(lambda e: len(self.find(lambda x: x["ev"] == "stats")) >
                  before, 5, "stats")
        return self.find(lambda e: e["ev"] == "stats")[-1]


def msg_bytes(ev):
    assert "b64" in ev, "message of %d bytes not inlined" % ev["len"]
    return base64.b64decode(ev["b64"])


def same_message(ev, data, binary=None):
    """A driver message event carries exactly `data` (by SHA-256 and
    length, so big messages need not be inlined)."""
    if isinstance(data, str):
        data = data.encode()
    ok = ev["len"] == len(data) and \
        ev["sha256"] == hashlib.sha256(data).hexdigest()
    if binary is not None:
        ok = ok and ev["binary"] == binary
    return ok


# ---- servers -----------------------------------------------------------------

def ws_site(ws="", names="127.0.0.1 localhost", default=True,
            nodes=("node1",), location="/ws", extra=""):
    text = "[HOST]\n    ServerName %s\n" % names
    if default:
        text += "    Default on\n"
    text += ("    DocumentRoot htdocs\n[LOCATION %s]\n    Handler zmq\n"
             "[ZMQ]\n" % location)
    text += "".join("    Node %s\n" % n for n in nodes)
    lines = [ln.strip() for ln in ws.splitlines() if ln.strip()]
    if lines:
        text += "[WEBSOCKET]\n" + "".join("    %s\n" % ln for ln in lines)
    return text + extra


# DrainTimeout: a server stopped with WebSockets still open exits quickly.
BASE_SERVER = "DrainTimeout 2s"


def zmq_conf(endpoint):
    return "[ZMQ]\n    Bind %s\n    PingFreq 500ms\n" % endpoint


@pytest.fixture
def wsgw(tremolo, tmp_path):
    """wsgw(ws="", sites=None, on_req=None, on_msg=echo_msg, node=True, ...)
    -> a started server (plugins liana, zmq, websocket) with a node
    "node1" (srv.node), srv.ws_url, srv.clients() for `ws` drivers."""
    nodes, drivers = [], []

    def start(ws="", sites=None, on_req=None, on_msg=echo_msg, node=True,
              workers=1, files=None, plugins=(), server="", listen=None,
              env=None, plugin_confs=None, unbounded=False):
        endpoint = "tcp://127.0.0.1:%d" % free_port()
        confs = {"zmq": zmq_conf(endpoint)}
        confs.update(plugin_confs or {})
        srv = tremolo(plugins=("liana", "zmq", "websocket") + tuple(plugins),
                      sites=sites or {"default": ws_site(ws)},
                      plugin_confs=confs, files=files, workers=workers,
                      server=BASE_SERVER + "\n" + server, listen=listen,
                      env=env)
        srv.endpoint = endpoint
        srv.ws_url = "ws://127.0.0.1:%d/ws" % srv.port
        srv.node = None
        if node:
            srv.node = WsNode(endpoint, "node1", on_req, on_msg, unbounded)
            nodes.append(srv.node)
            srv.wait_log(r'node "node1" is available', timeout=10)

        def clients():
            d = WsClients(log_dir=tmp_path)
            drivers.append(d)
            return d
        srv.clients = clients
        return srv

    yield start
    for d in drivers:
        d.close()
    close_raw()
    errors = [e for n in nodes for e in n.errors]
    for n in nodes:
        n.close()
    assert not errors, "node application errors: %s" % errors


def tag_path(tag, path="/ws"):
    return "%s?c=%s" % (path, tag)


# ==== 1. the echo service ======================================================

def test_echo_service_with_ws_client(wsgw):
    """The spec's echo node and the npm `ws` client: text, binary (echoed
    as websocket/binary), empty messages, 1 MB messages and a burst of 100,
    all intact and in order, and what the node saw."""
    srv = wsgw(ws="BinaryMessages websocket/binary")
    c = srv.clients()
    ev = c.open("a", srv.ws_url + "?c=a")
    assert ev["ev"] == "open", ev
    assert ev["protocol"] == "" and ev["extensions"] == "", ev
    big_bin = os.urandom(1000 * 1000)
    big_text = ("0123456789abcdef" * 62500)          # 1,000,000 bytes
    sent = [("t", "hello ünïcødé ✓"), ("b", bytes(range(256)) * 4),
            ("t", ""), ("b", b""), ("b", big_bin), ("t", big_text)]
    sent += [("t", "burst-%03d" % i) for i in range(100)]
    for kind, data in sent:
        if kind == "t":
            c.send_text("a", data)
        else:
            c.send_bytes("a", data)
    # The node got each message once, whole, typed by the site's setting.
    sid = srv.node.sid_of("a")
    assert wait_for(lambda: len(srv.node.messages(sid)) >= len(sent), 30), \
        "the node got %d of %d messages" % (len(srv.node.messages(sid)),
                                            len(sent))
    seen = srv.node.messages(sid)
    assert [d for _, d in seen] == [
        d.encode() if k == "t" else d for k, d in sent]
    assert [t for t, _ in seen] == [
        "websocket" if k == "t" else "websocket/binary" for k, _ in sent]
    # and the client got every echo, typed, intact and in order
    got = c.wait_messages("a", len(sent), timeout=30)
    assert len(got) == len(sent)
    for (kind, data), ev in zip(sent, got):
        assert same_message(ev, data, binary=(kind == "b")), \
            "echo of %s %r... differs: %s" % (kind, data[:40], ev)
    c.cmd(op="close", id="a", code=1000)
    ev = c.wait(lambda e: e["ev"] == "close" and e["id"] == "a", 10)
    assert ev["code"] == 1000
    srv.node.wait_end(sid)


def test_binary_is_websocket_by_default_and_node_frame_types(wsgw):
    """Without BinaryMessages a binary message reaches the node as
    `websocket` (BlastBeat nodes); the node's `websocket` is one text frame
    and `websocket/binary` one binary frame, FIN set, unmasked, minimal
    length encoding for 7-, 16- and 64-bit sizes."""
    srv = wsgw(on_msg=None)
    ws = RawWS(srv.port, tag_path("d"))
    ws.handshake()
    sid = srv.node.sid_of("d")
    ws.send_frame(BINARY, b"\x00\xffbin")
    ws.send_frame(TEXT, "tëxt")
    assert wait_for(lambda: len(srv.node.messages(sid)) == 2)
    assert srv.node.messages(sid) == [("websocket", b"\x00\xffbin"),
                                      ("websocket", "tëxt".encode())]
    payloads = [b"short", b"m" * 300, b"L" * 70000]
    for p in payloads:
        srv.node.send(sid, "websocket", p)
        srv.node.send(sid, "websocket/binary", p[::-1])
    for p in payloads:
        for op, data in ((TEXT, p), (BINARY, p[::-1])):
            f = ws.recv_frame()
            assert (f.fin, f.rsv, f.opcode, f.payload) == (1, 0, op, data), f
            assert f.head_len == (2 if len(p) < 126 else
                                  4 if len(p) < 65536 else 10)


@pytest.mark.parametrize("where", ["site", "global"])
def test_binary_messages_websocket_binary(wsgw, where):
    """BinaryMessages websocket/binary (in the site's [WEBSOCKET] or in
    websocket.conf): binary messages reach the node as `websocket/binary`,
    text still as `websocket`."""
    if where == "site":
        srv = wsgw(ws="BinaryMessages websocket/binary", on_msg=None)
    else:
        srv = wsgw(on_msg=None, plugin_confs={
            "websocket": "[WEBSOCKET]\n    BinaryMessages websocket/binary\n"})
    ws, sid = connect(srv)
    ws.send_frame(BINARY, b"\x00\xffbin")
    ws.send_frame(TEXT, "text")
    ws.send(frame(BINARY, b"fr", fin=False) + frame(CONT, b"ag"))
    assert wait_for(lambda: len(srv.node.messages(sid)) == 3)
    assert srv.node.messages(sid) == [("websocket/binary", b"\x00\xffbin"),
                                      ("websocket", b"text"),
                                      ("websocket/binary", b"frag")]


# ==== 2. the handshake ========================================================

def test_handshake_101_and_accept_key(wsgw):
    srv = wsgw()
    # RFC 6455 section 1.3's own example key and answer.
    ws = RawWS(srv.port, tag_path("rfc"), key="dGhlIHNhbXBsZSBub25jZQ==")
    r = ws.handshake()
    assert r.headers["sec-websocket-accept"] == \
        "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    assert r.reason == "Switching Protocols"
    assert "sec-websocket-protocol" not in r.headers
    assert "sec-websocket-extensions" not in r.headers
    assert ws.buf == b""                   # nothing after the head
    ws.send_frame(TEXT, "ping me back")
    ws.expect_message(TEXT, b"ping me back")


@pytest.mark.parametrize("connection,upgrade", [
    ("keep-alive, Upgrade", "websocket"),
    ("upgrade", "WebSocket"),
    ("UPGRADE", "websocket"),
    ("Upgrade, keep-alive", "WEBSOCKET"),
])
def test_handshake_header_variants(wsgw, connection, upgrade):
    srv = wsgw()
    ws = RawWS(srv.port, headers={"Connection": connection,
                                  "Upgrade": upgrade})
    ws.handshake()
    ws.send_frame(TEXT, "ok")
    ws.expect_message(TEXT, b"ok")


@pytest.mark.parametrize("case,kw,status", [
    ("version 8", dict(headers={"Sec-WebSocket-Version": "8"}), 426),
    ("version 14", dict(headers={"Sec-WebSocket-Version": "14"}), 426),
    ("no key", dict(headers={"Sec-WebSocket-Key": None}), 400),
    ("key not base64", dict(key="not base64 at all!!"), 400),
    ("key of 15 bytes", dict(key=base64.b64encode(b"k" * 15).decode()), 400),
    ("key of 17 bytes", dict(key=base64.b64encode(b"k" * 17).decode()), 400),
    ("empty key", dict(key=""), 400),
    ("POST", dict(method="POST", headers={"Content-Length": "0"}), 400),
    ("HTTP/1.0", dict(version="HTTP/1.0"), 400),
])
def test_handshake_refused(wsgw, case, kw, status):
    srv = wsgw()
    ws = RawWS(srv.port, tag_path("r"), **kw)
    r = ws.read_response()
    assert r.status == status, (case, r.raw_head)
    if status == 426:
        assert r.headers.get("sec-websocket-version") == "13", r.headers
    assert "sec-websocket-accept" not in r.headers
    # Nothing was switched: no frame reaches the node, none comes back.
    try:
        ws.send_frame(TEXT, "should not pass")
    except OSError:
        pass
    time.sleep(0.3)
    assert not srv.node.of_type("websocket"), srv.node.events


def test_no_node_is_503(wsgw):
    srv = wsgw(node=False)
    r = RawWS(srv.port).read_response()
    assert r.status == 503 and r.headers.get("retry-after") == "1", \
        r.raw_head


def test_node_gets_the_upgrade_request(wsgw):
    """The uwsgi packet of the upgrade: method, path, query, cookies,
    Origin, Upgrade and the offered subprotocols (the node accepts one)."""
    def accept(node, sid, v):
        node.pynode.send(sid, "headers", b"HTTP/1.1 101 Switching Protocols"
                         b"\r\nSec-WebSocket-Protocol: chat\r\n\r\n")
    srv = wsgw(on_req=accept)
    ws = RawWS(srv.port, "/ws/room/7?c=u&x=%41&y=2",
               headers={"Origin": "http://app.example",
                        "Cookie": "a=1; session=xyz",
                        "Sec-WebSocket-Protocol": "chat, superchat",
                        "X-Custom": "yes"})
    r = ws.handshake()
    assert r.headers.get("sec-websocket-protocol") == "chat"
    sid = srv.node.sid_of("u")
    v = srv.node.vars_of(sid)
    assert v["REQUEST_METHOD"] == "GET"
    assert v["PATH_INFO"] == "/ws/room/7"
    assert v["QUERY_STRING"] == "c=u&x=%41&y=2"
    assert v["HTTP_UPGRADE"].lower() == "websocket"
    assert v["HTTP_ORIGIN"] == "http://app.example"
    assert v["HTTP_SEC_WEBSOCKET_PROTOCOL"] == "chat, superchat"
    assert v["HTTP_COOKIE"] == "a=1; session=xyz"
    assert v["HTTP_X_CUSTOM"] == "yes"
    assert v["HTTP_SEC_WEBSOCKET_KEY"] == ws.key
    assert v["SERVER_PROTOCOL"] == "HTTP/1.1"
    ws.send_frame(TEXT, "after")
    ws.expect_message(TEXT, b"after")


def test_frames_in_the_same_write_as_the_upgrade(wsgw):
    srv = wsgw()
    early = frame(TEXT, "early bird") + frame(BINARY, b"\x01\x02") + \
        frame(TEXT, "x" * 1000)
    ws = RawWS(srv.port, tag_path("e"), extra=early)     # one sendall
    ws.handshake()
    ws.expect_message(TEXT, b"early bird")
    ws.expect_message(TEXT, b"\x01\x02")      # echoed as `websocket`
    ws.expect_message(TEXT, b"x" * 1000)
    sid = srv.node.sid_of("e")
    assert [d for _, d in srv.node.messages(sid)] == [
        b"early bird", b"\x01\x02", b"x" * 1000]


@pytest.mark.parametrize("split", [1, 2, 5, 300, 9000],
                         ids=lambda n: "at-%d" % n)
def test_frame_split_across_writes(wsgw, split):
    """A frame may arrive in pieces (TCP gives no frame boundaries): cut in
    its header, its mask, or its payload, the message still arrives."""
    srv = wsgw()
    ws, _ = connect(srv)
    data = bytes(range(256)) * 40                 # 10,240 bytes: 16-bit len
    f = frame(BINARY, data)
    ws.send(f[:split])
    time.sleep(0.3)
    ws.send(f[split:])
    ws.expect_message(TEXT, data)                 # echoed as `websocket`
    # and a small one cut in two
    f = frame(TEXT, "small frame")
    ws.send(f[:3])
    time.sleep(0.2)
    ws.send(f[3:])
    ws.expect_message(TEXT, b"small frame")


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_stream_cut_at_random_points(wsgw, seed):
    """A long stream of frames (messages of 0 to 20,000 bytes, some in
    fragments with pings between them) sent in random pieces: every message
    comes back whole and in order, every ping gets its pong. The reader
    must keep its place in a frame across any cut."""
    rng = random.Random(seed)
    srv = wsgw()
    ws, _ = connect(srv)
    stream, messages, pings = b"", [], []
    for i in range(60):
        size = rng.choice([0, 1, 125, 126, 300, 4000, 65535, 70000]) \
            if i % 7 == 0 else rng.randrange(0, 20000)
        text = bytes(rng.choice(b"abcdefghij ") for _ in range(size))
        messages.append(text)
        cuts = sorted(rng.sample(range(1, size), min(size - 1, rng.randrange(0, 4)))) \
            if size > 1 else []
        parts = [text[a:b] for a, b in zip([0] + cuts, cuts + [size])]
        for k, part in enumerate(parts):
            stream += frame(TEXT if k == 0 else CONT, part,
                            fin=(k == len(parts) - 1))
            if k < len(parts) - 1 and rng.random() < 0.5:
                payload = b"p%d.%d" % (i, k)
                pings.append(payload)
                stream += frame(PING, payload)
    pos = 0
    while pos < len(stream):
        n = rng.choice([1, 2, 7, 100, 1500, 9000, 40000])
        ws.send(stream[pos:pos + n])
        pos += n
        if rng.random() < 0.05:
            time.sleep(0.01)
    got, pongs = [], []
    while len(got) < len(messages) or len(pongs) < len(pings):
        f = ws.recv_message(timeout=10)
        if f.opcode == PONG:
            pongs.append(f.payload)
            continue
        assert f.opcode == TEXT, f
        got.append(f.payload)
    assert [len(m) for m in got] == [len(m) for m in messages]
    assert got == messages
    assert pongs == pings


def test_frames_in_the_upgrade_write_while_the_node_chooses(wsgw):
    """With a subprotocol offer the 101 waits for the node; frames that
    came with the request are kept and delivered after it."""
    def accept_late(node, sid, v):
        node.later(0.4, lambda n: n.pynode.send(
            sid, "headers", b"HTTP/1.1 101 Switching Protocols\r\n"
            b"Sec-WebSocket-Protocol: chat\r\n\r\n"))
    srv = wsgw(on_req=accept_late)
    ws = RawWS(srv.port, tag_path("ep"),
               headers={"Sec-WebSocket-Protocol": "chat"},
               extra=frame(TEXT, "waited"))
    r = ws.handshake()
    assert r.headers.get("sec-websocket-protocol") == "chat"
    ws.expect_message(TEXT, b"waited")


# ==== 3. subprotocols ==========================================================

CHAT_101 = (b"HTTP/1.1 101 Switching Protocols\r\n"
            b"Sec-WebSocket-Protocol: chat\r\n\r\n")


def test_subprotocol_chosen_by_node(wsgw):
    """Tremolo waits for the node (nothing before its answer), then writes
    its own full 101 with the node's protocol; the `ws` client (which
    checks the accept key and that the protocol was offered) agrees."""
    def choose(node, sid, v):
        offered = [p.strip() for p in
                   v.get("HTTP_SEC_WEBSOCKET_PROTOCOL", "").split(",")]
        assert "chat" in offered, offered
        node.later(0.6, lambda n: n.pynode.send(sid, "headers", CHAT_101))
    srv = wsgw(on_req=choose)
    ws = RawWS(srv.port, tag_path("p"),
               headers={"Sec-WebSocket-Protocol": "superchat, chat"})
    time.sleep(0.3)
    r, _, _ = select.select([ws.sock], [], [], 0)
    assert not r, "Tremolo answered before the node chose a protocol"
    r = ws.handshake()
    assert r.headers.get("sec-websocket-protocol") == "chat", r.headers
    ws.send_frame(TEXT, "proto")
    ws.expect_message(TEXT, b"proto")

    c = srv.clients()
    ev = c.open("w", srv.ws_url + "?c=w", protocols=["superchat", "chat"])
    assert ev["ev"] == "open" and ev["protocol"] == "chat", ev
    c.send_text("w", "via ws")
    assert msg_bytes(c.wait_messages("w", 1)[0]) == b"via ws"


def test_subprotocol_refused_by_node(wsgw):
    body = b"no such protocol\n"

    def refuse(node, sid, v):
        node.pynode.send(sid, "headers",
                         b"HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain"
                         b"\r\nContent-Length: %d\r\n\r\n" % len(body))
        node.pynode.send(sid, "body", body)
    srv = wsgw(on_req=refuse)
    ws = RawWS(srv.port, tag_path("f"),
               headers={"Sec-WebSocket-Protocol": "chat"})
    r = ws.read_response()
    assert (r.status, r.body) == (403, body), r.raw_head
    assert "sec-websocket-accept" not in r.headers

    c = srv.clients()
    ev = c.open("w", srv.ws_url, protocols=["chat"])
    assert ev["ev"] == "unexpected", ev
    assert ev["status"] == 403 and ev["body"] == body.decode(), ev


def test_node_websocket_first_accepts_without_protocol(wsgw):
    def greet(node, sid, v):
        node.pynode.websocket(sid, b"welcome")
    srv = wsgw(on_req=greet)
    ws = RawWS(srv.port, tag_path("g"),
               headers={"Sec-WebSocket-Protocol": "chat, other"})
    r = ws.handshake()
    assert "sec-websocket-protocol" not in r.headers, r.headers
    ws.expect_message(TEXT, b"welcome")
    ws.send_frame(TEXT, "and back")
    ws.expect_message(TEXT, b"and back")


def test_no_offer_101_at_once(wsgw):
    """Without an offer the 101 does not wait for the node (this one never
    answers the request)."""
    srv = wsgw(on_msg=None)
    t0 = time.monotonic()
    ws = RawWS(srv.port, tag_path("n"))
    ws.handshake(timeout=3)
    assert time.monotonic() - t0 < 2
    sid = srv.node.sid_of("n")
    srv.node.send(sid, "websocket", b"later")
    ws.expect_message(TEXT, b"later")


# ==== 4. protocol errors, fragments, control frames, close ===============

@pytest.fixture(scope="module")
def shared_srv(tmp_path_factory):
    """One server for the many raw-frame cases (MaxMessageSize 64K, echo
    node, BinaryMessages left at its default)."""
    d = tmp_path_factory.mktemp("ws-shared")
    endpoint = "tcp://127.0.0.1:%d" % free_port()
    srv = tremolo_harness.Tremolo(
        d, server=BASE_SERVER,
        sites={"default": ws_site("MaxMessageSize 64K\nCloseTimeout 3s")},
        plugins=("liana", "zmq", "websocket"),
        plugin_confs={"zmq": zmq_conf(endpoint)})
    srv.start()
    node = WsNode(endpoint, "node1", None, echo_msg)
    srv.node = node
    try:
        srv.wait_log(r'node "node1" is available', timeout=10)
        yield srv
    finally:
        close_raw()
        node.close()
        rc = srv.stop()
        assert rc == 0, "tremolo exited %s\n%s" % (rc, srv.stderr()[-3000:])


@pytest.fixture
def shared(request, shared_srv):
    request.node._tremolo_servers = [shared_srv]   # its log on failure
    yield shared_srv
    close_raw()
    assert not shared_srv.node.errors, shared_srv.node.errors


_tags = iter(range(1 << 30))


def connect(srv, **kw):
    """A handshaken raw client and its sid."""
    tag = "t%d" % next(_tags)
    ws = RawWS(srv.port, tag_path(tag), **kw)
    ws.handshake()
    return ws, srv.node.sid_of(tag)


def U(s):
    return s.encode("utf-8")


PROTOCOL_ERRORS = [
    ("unmasked text", [frame(TEXT, "hi", mask=False)], 1002),
    ("reserved opcode 3", [frame(0x3, b"")], 1002),
    ("reserved opcode 7", [frame(0x7, b"x")], 1002),
    ("reserved opcode 0xB", [frame(0xB, b"")], 1002),
    ("reserved opcode 0xF", [frame(0xF, b"x")], 1002),
    ("RSV1 without extension", [frame(TEXT, "hi", rsv=4)], 1002),
    ("RSV2", [frame(TEXT, "hi", rsv=2)], 1002),
    ("RSV3", [frame(BINARY, b"hi", rsv=1)], 1002),
    ("RSV1 on a ping", [frame(PING, b"p", rsv=4)], 1002),
    ("ping of 126 bytes", [frame(PING, b"p" * 126)], 1002),
    ("pong of 200 bytes", [frame(PONG, b"p" * 200)], 1002),
    ("close of 126 bytes",
     [frame(CLOSE, close_payload(1000, b"r" * 124))], 1002),
    ("fragmented ping", [frame(PING, b"p", fin=False)], 1002),
    ("fragmented close", [frame(CLOSE, close_payload(1000), fin=False)],
     1002),
    ("continuation without a message", [frame(CONT, b"x")], 1002),
    ("final continuation without a message",
     [frame(CONT, b"x", fin=True)], 1002),
    ("text inside a fragmented text",
     [frame(TEXT, "a", fin=False), frame(TEXT, "b")], 1002),
    ("binary inside a fragmented binary",
     [frame(BINARY, b"a", fin=False), frame(BINARY, b"b")], 1002),
    ("text inside a fragmented binary",
     [frame(BINARY, b"a", fin=False), frame(CONT, b"b", fin=False),
      frame(TEXT, "c")], 1002),
    ("invalid UTF-8 byte", [frame(TEXT, b"ok \xff")], 1007),
    ("overlong encoding", [frame(TEXT, b"\xc0\xaf")], 1007),
    ("UTF-16 surrogate", [frame(TEXT, b"\xed\xa0\x80")], 1007),
    ("code point over U+10FFFF", [frame(TEXT, b"\xf4\x90\x80\x80")], 1007),
    ("truncated sequence at the end", [frame(TEXT, b"ok\xc3")], 1007),
    ("invalid UTF-8 across fragments",
     [frame(TEXT, b"ok\xc3", fin=False), frame(CONT, b"\x28")], 1007),
    ("invalid UTF-8 in a later fragment",
     [frame(TEXT, "fine ", fin=False), frame(CONT, b"\xfe", fin=False),
      frame(CONT, b"end")], 1007),
    ("invalid UTF-8 in a close reason",
     [frame(CLOSE, close_payload(1000, b"bye \xff"))], 1007),
    ("message over MaxMessageSize", [frame(BINARY, b"b" * 65537)], 1009),
    ("text over MaxMessageSize", [frame(TEXT, b"t" * 65537)], 1009),
    ("fragments over MaxMessageSize",
     [frame(BINARY, b"b" * 40000, fin=False), frame(CONT, b"b" * 40000)],
     1009),
    ("close payload of 1 byte", [frame(CLOSE, b"\x03")], 1002),
] + [("close code %d" % c, [frame(CLOSE, close_payload(c))], 1002)
     for c in (0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000,
               65535)]


@pytest.mark.parametrize("case,frames,code", PROTOCOL_ERRORS,
                         ids=[c[0] for c in PROTOCOL_ERRORS])
def test_protocol_error_closes_with_code(shared, case, frames, code):
    srv = shared
    ws, sid = connect(srv)
    ws.send(b"".join(frames))
    f = ws.expect_close()
    assert f.close_code == code, "%s: close %r, expected %d" % (
        case, f.payload, code)
    assert not ws.skipped, "%s: frames before the close: %r" % (
        case, ws.skipped)
    ws.reply_close(code)
    rest = ws.expect_eof(3)
    assert rest == b"", "%s: bytes after the close frame: %r" % (case, rest)
    srv.node.wait_end(sid)
    assert srv.node.messages(sid) == [], \
        "%s: the node got %r" % (case, srv.node.messages(sid))


@pytest.mark.parametrize("size", [65535, 65536])
def test_message_of_max_size_passes(shared, size):
    ws, sid = connect(shared)
    data = bytes(range(256)) * (size // 256) + b"z" * (size % 256)
    ws.send(frame(BINARY, data[:1000], fin=False) + frame(CONT, data[1000:]))
    ws.expect_message(TEXT, data)
    assert shared.node.messages(sid) == [("websocket", data)]


def test_valid_utf8_split_across_fragments(shared):
    ws, sid = connect(shared)
    text = U("é€𝄞 ok")                       # 2-, 3- and 4-byte sequences
    ws.send(frame(TEXT, text[:1], fin=False) + frame(CONT, text[1:4], fin=False)
            + frame(CONT, text[4:6], fin=False) + frame(CONT, text[6:]))
    ws.expect_message(TEXT, text)
    assert shared.node.messages(sid) == [("websocket", text)]


def test_fragments_with_interleaved_pings(shared):
    ws, sid = connect(shared)
    ws.send(frame(TEXT, "Hel", fin=False) + frame(PING, b"p1") +
            frame(CONT, "lo ", fin=False) + frame(PING, b"") +
            frame(CONT, "", fin=False) + frame(PING, b"p" * 125) +
            frame(CONT, "World"))
    got = [ws.recv_message(skip_pings=False) for _ in range(4)]
    assert [(f.opcode, f.payload) for f in got] == [
        (PONG, b"p1"), (PONG, b""), (PONG, b"p" * 125),
        (TEXT, b"Hello World")], got
    assert all(f.fin for f in got)
    assert shared.node.messages(sid) == [("websocket", b"Hello World")]
    # a binary message in three fragments is one message too
    ws.send(frame(BINARY, b"\x00", fin=False) + frame(CONT, b"\x01",
                                                      fin=False) +
            frame(CONT, b"\x02"))
    ws.expect_message(TEXT, b"\x00\x01\x02")
    assert shared.node.messages(sid)[-1] == ("websocket", b"\x00\x01\x02")


def test_ping_pong_payload_and_unsolicited_pong(shared):
    ws, sid = connect(shared)
    for payload in (b"", b"abc", bytes(range(125))):
        ws.send_frame(PING, payload)
        f = ws.recv_frame()
        assert (f.fin, f.opcode, f.payload) == (1, PONG, payload), f
    ws.send_frame(PONG, b"unasked")          # ignored
    ws.send_frame(TEXT, "still here")
    ws.expect_message(TEXT, b"still here")
    assert shared.node.messages(sid) == [("websocket", b"still here")]


@pytest.mark.parametrize("code,reason", [
    (1000, b"bye"), (1001, b""), (1003, b"x"), (1011, b"oops"),
    (3000, b""), (4999, U("fin ✓")), (None, b"")])
def test_client_close_is_answered(shared, code, reason):
    ws, sid = connect(shared)
    ws.send_frame(TEXT, "before")
    ws.expect_message(TEXT, b"before")
    ws.send_frame(CLOSE, close_payload(code, reason))
    f = ws.expect_close()
    want = 1000 if code is None else code
    assert f.close_code == want, (code, f.payload)
    rest = ws.expect_eof(3)
    assert rest == b"", rest
    shared.node.wait_end(sid)


def test_node_end_closes_with_1000(shared):
    ws, sid = connect(shared)
    shared.node.send(sid, "websocket", b"last words")
    shared.node.send(sid, "end")
    ws.expect_message(TEXT, b"last words")
    f = ws.expect_close()
    assert f.close_code == 1000, f.payload
    t0 = time.monotonic()
    ws.reply_close(1000)
    assert ws.expect_eof(3) == b""
    assert time.monotonic() - t0 < 2       # at the answer, not CloseTimeout
    shared.node.wait_end(sid)


def test_node_end_without_answer_closes_at_close_timeout(shared):
    """CloseTimeout 3s on this site: a client that never answers the close
    is dropped after about that long (not at once, not never)."""
    ws, sid = connect(shared)
    shared.node.send(sid, "end")
    f = ws.expect_close()
    t0 = time.monotonic()
    assert f.close_code == 1000
    assert ws.expect_eof(8) == b""
    waited = time.monotonic() - t0
    assert 2.4 < waited < 7, "closed %.2f s after the close frame" % waited
    shared.node.wait_end(sid)


def test_client_drop_without_close_gives_end(shared):
    ws, sid = connect(shared)
    ws.send_frame(TEXT, "bye-less")
    ws.expect_message(TEXT, b"bye-less")
    ws.sock.shutdown(socket.SHUT_RDWR)
    ws.close()
    shared.node.wait_end(sid)


def test_half_message_then_drop_gives_end(shared):
    ws, sid = connect(shared)
    ws.send(frame(TEXT, "part", fin=False) + frame(BINARY, b"x" * 50)[:20])
    time.sleep(0.2)
    ws.close()
    shared.node.wait_end(sid)
    assert shared.node.messages(sid) == []


# ==== 5. server pings and the idle timeout ================================

def test_server_pings_and_idle_timeout(wsgw):
    """PingInterval 1s: the `ws` client sees a ping about every second and,
    answering them, stays open past IdleTimeout 2s; a raw client that sends
    nothing (not even pongs) is closed with 1001 after about 2 s."""
    srv = wsgw(ws="PingInterval 1s\nIdleTimeout 2s")
    c = srv.clients()
    assert c.open("live", srv.ws_url + "?c=live")["ev"] == "open"
    t0 = time.monotonic()
    silent = RawWS(srv.port, tag_path("silent"))
    silent.handshake()
    f = silent.expect_close(timeout=6)
    waited = time.monotonic() - t0
    assert f.close_code == 1001, f.payload
    assert 1.5 < waited < 4.5, waited
    assert silent.pings, "the silent client was closed without a ping"
    silent.reply_close(1001)
    assert silent.expect_eof(3) == b""
    srv.node.wait_end(srv.node.sid_of("silent"))
    remaining = 4.5 - (time.monotonic() - t0)
    if remaining > 0:
        time.sleep(remaining)
    pings = c.find(lambda e: e["ev"] == "ping" and e["id"] == "live")
    assert 3 <= len(pings) <= 7, pings
    assert not c.find(lambda e: e["ev"] == "close"), \
        "the client answering pings was closed"
    c.send_text("live", "still open")
    assert msg_bytes(c.wait_messages("live", 1)[0]) == b"still open"
    assert not srv.node.ended(srv.node.sid_of("live"))
