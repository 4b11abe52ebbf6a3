"""Unit tests of the Python node helper.  No Tremolo needed: each test plays
the gateway with a real ZeroMQ ROUTER bound on a free loopback port.

    /usr/bin/python3 -m pytest plugins/zmq/nodes/python -q
"""

import os
import re
import struct
import sys
import threading
import time

import pytest
import zmq

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tremolo_node as tn  # noqa: E402
import tremolo_wsgi as tw  # noqa: E402

TIMEOUT_MS = 3000
SID = bytes(range(0xA0, 0xB0))          # 16 bytes
SID2 = b"0123456789:@\x00abc"           # ':' '@' NUL inside: must be opaque


def bind_routers(ctx, n):
    """n gateway-side ROUTERs on free loopback ports: (sockets, endpoints)."""
    routers, endpoints = [], []
    for _ in range(n):
        r = ctx.socket(zmq.ROUTER)
        r.setsockopt(zmq.LINGER, 0)
        port = r.bind_to_random_port("tcp://127.0.0.1")
        routers.append(r)
        endpoints.append("tcp://127.0.0.1:%d" % port)
    return routers, endpoints


class Gateway:
    """The ROUTER side, plus a Node running its loop in a thread."""

    def __init__(self, handler=None, identity=b"node-a", n_routers=1):
        self.ctx = zmq.Context()
        self.routers, endpoints = bind_routers(self.ctx, n_routers)
        self.endpoints = endpoints
        self.identity = identity
        self.spawned = []
        self.node = tn.Node(identity, endpoints, context=self.ctx, linger=0,
                            on_spawn=lambda: self.spawned.append(True))
        self.handler = handler or tn.Handler()
        self.thread = threading.Thread(
            target=self.node.run, args=(self.handler,),
            kwargs={"install_signals": False}, daemon=True)
        self.thread.start()

    def recv(self, idx=0, timeout=TIMEOUT_MS):
        r = self.routers[idx]
        if not r.poll(timeout):
            raise AssertionError("no message from the node within %d ms" % timeout)
        return r.recv_multipart()

    def quiet(self, idx=0, timeout=200):
        """True if nothing arrives within timeout ms."""
        return not self.routers[idx].poll(timeout)

    def send(self, sid, mtype, body=b"", idx=0):
        self.routers[idx].send_multipart([self.identity, sid, mtype, body])

    def close(self):
        self.node.stop()
        self.thread.join(5)
        assert not self.thread.is_alive()
        self.node.close(linger=0)
        for r in self.routers:
            r.close(linger=0)
        self.ctx.term()


@pytest.fixture
def gw_factory():
    made = []

    def make(**kw):
        g = Gateway(**kw)
        made.append(g)
        # The initial pong proves the connection is up; the ROUTER drops
        # messages for identities it has not seen yet.
        for i in range(len(g.routers)):
            assert g.recv(i) == [g.identity, b"", b"pong", b""]
        return g

    yield make
    for g in made:
        g.close()


# ------------------------------------------------------------ runtimes --
# The message-level runtime comes in two builds with one interface: the C
# extension _tremolo.Node and the pure-Python tn.RawNode.  Every runtime and
# WSGI case runs against both; the ext cases skip only when the extension
# was not built, and fail instead when TREMOLO_REQUIRE_EXT=1 (ctest).

def _ext_module():
    try:
        import _tremolo
    except ImportError:
        if os.environ.get("TREMOLO_REQUIRE_EXT") == "1":
            raise
        pytest.skip("the _tremolo extension is not built (PYTHONPATH)")
    return _tremolo


@pytest.fixture(params=["pure", "ext", "ext-libzmq"])
def runtime(request, monkeypatch):
    """The pure-Python RawNode, or _tremolo.Node speaking ZMTP itself
    ("ext"), or _tremolo.Node over libzmq ("ext-libzmq": the fallback,
    forced by TREMOLO_NODE_LIBZMQ=1, read when a Node is made)."""
    if request.param == "pure":
        return tn.RawNode
    if request.param == "ext-libzmq":
        monkeypatch.setenv("TREMOLO_NODE_LIBZMQ", "1")
    else:
        monkeypatch.delenv("TREMOLO_NODE_LIBZMQ", raising=False)
    return _ext_module().Node


class RawGateway:
    """ROUTER(s) on free ports and a runtime node connected to them."""

    def __init__(self, cls, n_routers=1, identity=b"node-a"):
        self.ctx = zmq.Context()
        self.routers, endpoints = bind_routers(self.ctx, n_routers)
        self.identity = identity
        self.node = cls(identity, endpoints, linger_ms=0)
        self.thread = None
        for i in range(n_routers):
            assert self.recv(i, pongs=True) == [identity, b"", b"pong", b""]

    def serve(self, app, **kw):
        self.thread = threading.Thread(target=self.node.serve_wsgi,
                                       args=(app,), kwargs=kw, daemon=True)
        self.thread.start()

    def recv(self, idx=0, timeout=TIMEOUT_MS, pongs=False):
        """The next message; the node's announcements (a pong after 1 s of
        silence from us) are skipped unless pongs=True."""
        r = self.routers[idx]
        deadline = time.monotonic() + timeout / 1000.0
        while True:
            left = int((deadline - time.monotonic()) * 1000)
            if left <= 0 or not r.poll(left):
                raise AssertionError("no message from the node within %d ms"
                                     % timeout)
            msg = r.recv_multipart()
            if pongs or msg != [self.identity, b"", b"pong", b""]:
                return msg

    def quiet(self, idx=0, timeout=200):
        try:
            msg = self.recv(idx, timeout)
        except AssertionError:
            return True
        print("unexpected:", msg)
        return False

    def send(self, sid, mtype, body=b"", idx=0):
        self.routers[idx].send_multipart([self.identity, sid, mtype, body])

    def close(self):
        self.node.stop()
        if self.thread is not None:
            self.thread.join(5)
            assert not self.thread.is_alive()
        self.node.close()
        for r in self.routers:
            r.close(linger=0)
        self.ctx.term()


@pytest.fixture
def raw_factory(runtime):
    made = []

    def make(app=None, max_body=None, **kw):
        g = RawGateway(runtime, **kw)
        made.append(g)
        if app is not None:
            g.serve(app, **({} if max_body is None else {"max_body": max_body}))
        return g

    yield make
    for g in made:
        g.close()


class Recorder(tn.Handler):
    def __init__(self):
        self.events = []
        self.cond = threading.Condition()

    def _add(self, *ev):
        with self.cond:
            self.events.append(ev)
            self.cond.notify_all()

    def wait(self, n, timeout=3.0):
        deadline = time.monotonic() + timeout
        with self.cond:
            while len(self.events) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("only %r" % (self.events,))
                self.cond.wait(left)
        return list(self.events)

    def on_request(self, sid, v):
        self._add("request", sid, v)

    def on_body(self, sid, d):
        self._add("body", sid, d)

    def on_body_end(self, sid):
        self._add("body_end", sid)

    def on_end(self, sid):
        self._add("end", sid)

    def on_msg(self, sid, d):
        self._add("msg", sid, d)

    def on_websocket(self, sid, d):
        self._add("websocket", sid, d)

    def on_spawn(self):
        self._add("spawn",)

    def on_message(self, sid, t, d):
        self._add("other", sid, t, d)


def packet(pairs):
    """Hand-built packet, byte layout straight from spec 2.2 (independent of
    tn.build_uwsgi so that the encoder is checked too)."""
    body = b""
    for k, v in pairs:
        body += struct.pack("<H", len(k)) + k + struct.pack("<H", len(v)) + v
    return bytes([0]) + struct.pack("<H", len(body) + 4) + bytes([0]) + body


def request(method=b"GET", path=b"/", proto=b"HTTP/1.1", extra=()):
    pairs = [(b"REQUEST_METHOD", method), (b"SCRIPT_NAME", b""),
             (b"PATH_INFO", path), (b"QUERY_STRING", b"a=1"),
             (b"SERVER_NAME", b"example.com"), (b"SERVER_PORT", b"8080"),
             (b"SERVER_PROTOCOL", proto), (b"REMOTE_ADDR", b"127.0.0.1"),
             (b"REMOTE_PORT", b"40000"), (b"HTTP_HOST", b"example.com:8080")]
    return packet(pairs + list(extra))


# ---------------------------------------------------------------- uwsgi --

def test_parse_uwsgi_hand_built_packet():
    pkt = packet([(b"REQUEST_METHOD", b"POST"), (b"PATH_INFO", b"/a%20b"),
                  (b"QUERY_STRING", b""), (b"HTTP_X", b"1"), (b"HTTP_X", b"2"),
                  (b"HTTP_COOKIE", b"a=1"), (b"HTTP_COOKIE", b"b=2"),
                  (b"HTTP_BIN", b"\xff\x00")])
    assert pkt[0] == 0 and pkt[3] == 0
    assert struct.unpack("<H", pkt[1:3])[0] == len(pkt)
    v = tn.parse_uwsgi(pkt)
    assert v["REQUEST_METHOD"] == "POST"
    assert v["PATH_INFO"] == "/a%20b"           # as sent: never decoded twice
    assert v["QUERY_STRING"] == ""
    assert v["HTTP_X"] == "1, 2"
    assert v["HTTP_COOKIE"] == "a=1; b=2"
    assert v["HTTP_BIN"] == "\xff\x00"          # latin-1 round trip
    assert tn.parse_uwsgi_pairs(pkt)[3] == (b"HTTP_X", b"1")
    assert tn.build_uwsgi(tn.parse_uwsgi_pairs(pkt)) == pkt


def test_parse_uwsgi_empty_and_exact_layout():
    assert tn.parse_uwsgi(b"\x00\x04\x00\x00") == {}
    raw = b"\x00\x0c\x00\x00" + b"\x01\x00K" + b"\x03\x00abc"
    assert len(raw) == 12
    assert tn.parse_uwsgi(raw) == {"K": "abc"}


@pytest.mark.parametrize("bad", [
    b"",                                            # no header
    b"\x00\x04\x00",                                # short header
    b"\x01\x04\x00\x00",                            # modifier1 != 0
    b"\x00\x04\x00\x05",                            # modifier2 != 0
    b"\x00\x08\x00\x00" + b"\x01\x00K",             # SIZE > length
    b"\x00\x05\x00\x00" + b"\x01\x00K\x00\x00",     # SIZE < length
    b"\x00\x08\x00\x00" + b"\x01\x00K\x03\x00",     # SIZE=len-? mismatch
    b"\x00\x05\x00\x00\x01",                        # truncated key length
    b"\x00\x08\x00\x00\x05\x00KE",                  # key overruns
    b"\x00\x09\x00\x00\x01\x00K\x00",               # truncated value length
    b"\x00\x0b\x00\x00\x01\x00K\x09\x00ab",         # value overruns
    b"\x00\x08\x00\x00\x00\x00\x00\x00",            # empty key
    b"\x00\x08\x00\x00" + b"\x01\x00K\x00",         # SIZE=len+0 but cut
])
def test_parse_uwsgi_rejects_malformed(bad):
    with pytest.raises(ValueError):
        tn.parse_uwsgi(bad)


def test_environ_from_uwsgi():
    v = tn.parse_uwsgi(request(extra=[(b"HTTPS", b"on")]))
    body = tn.io.BytesIO(b"xyz")
    env = tn.environ_from_uwsgi(v, body)
    assert env["wsgi.url_scheme"] == "https"
    assert env["wsgi.input"] is body
    assert env["wsgi.version"] == (1, 0)
    assert env["SERVER_PORT"] == "8080" and env["PATH_INFO"] == "/"
    assert tn.environ_from_uwsgi(tn.parse_uwsgi(request()))["wsgi.url_scheme"] == "http"


# ---------------------------------------------------- ping / pong / spawn --

def test_initial_pong_and_ping(gw_factory):
    g = gw_factory(n_routers=2)         # the initial pong goes to every ROUTER
    for i in (0, 1):
        g.send(b"", b"ping", idx=i)
        assert g.recv(i) == [b"node-a", b"", b"pong", b""]
    g.send(b"", b"ping")
    g.send(b"", b"ping")
    assert g.recv() == [b"node-a", b"", b"pong", b""]
    assert g.recv() == [b"node-a", b"", b"pong", b""]


def test_spawn_clears_sessions(gw_factory):
    rec = Recorder()
    g = gw_factory(handler=rec)
    g.send(SID, b"uwsgi", request())
    rec.wait(1)
    assert SID in g.node.sessions
    g.send(b"", b"spawn")
    ev = rec.wait(2)
    assert ev[1] == ("spawn",)
    assert g.spawned == [True]
    assert g.node.sessions == {}
    g.send(b"", b"ping")                # still alive after spawn
    assert g.recv() == [b"node-a", b"", b"pong", b""]


def test_dispatch_and_discards(gw_factory):
    rec = Recorder()
    g = gw_factory(handler=rec)
    g.send(b"short", b"uwsgi", request())           # bad sid: dropped
    g.send(SID, b"uwsgi", b"\x00\x09\x00\x00")      # bad packet: dropped
    g.routers[0].send_multipart([b"node-a", SID, b"body", b"x", b"extra"])
    g.send(SID2, b"uwsgi", request(path=b"/p"))
    g.send(SID2, b"body", b"abc")
    g.send(SID2, b"body", b"")
    g.send(SID2, b"websocket", b"hi")
    g.send(SID2, b"websocket/binary", b"\x00\xff")  # default: on_message
    g.send(SID2, b"msg", b"m")
    g.send(SID2, b"socket.io/event", b"e")
    g.send(SID2, b"end")
    ev = rec.wait(8)
    assert ev[0][0] == "request" and ev[0][1] == SID2
    assert ev[0][2]["PATH_INFO"] == "/p"
    assert ev[1:] == [("body", SID2, b"abc"), ("body_end", SID2),
                      ("websocket", SID2, b"hi"),
                      ("other", SID2, "websocket/binary", b"\x00\xff"),
                      ("msg", SID2, b"m"),
                      ("other", SID2, "socket.io/event", b"e"), ("end", SID2)]
    time.sleep(0.1)
    assert len(rec.events) == 8
    assert SID2 not in g.node.sessions              # `end` drops the session


# ------------------------------------------------------- RawNode / ext ----

def test_send_without_waiting_reports_a_full_queue(raw_factory):
    """An event loop must not wait on the gateway: wait=False raises
    BlockingIOError once the queues are full (the ROUTER reads nothing),
    and the messages that were taken all arrive, in order."""
    g = raw_factory()
    body = b"x" * 65536
    sent = 0
    with pytest.raises(BlockingIOError):
        while sent < 100000:
            g.node.send(SID, b"body", sent.to_bytes(4, "big") + body, 0,
                        wait=False)
            sent += 1
    assert 0 < sent < 100000
    # the node moves its queue when it is called, as an event loop does
    # (the C runtime's native links have no thread of their own)
    got = 0
    deadline = time.monotonic() + 30
    while got < sent:
        assert time.monotonic() < deadline
        g.node.recv_nowait()
        r = g.routers[0]
        while r.poll(10):
            msg = r.recv_multipart()
            if msg[2] == b"pong":
                continue
            assert msg[1:3] == [SID, b"body"]
            assert msg[3][:4] == got.to_bytes(4, "big")
            got += 1
    g.node.send(SID, b"end", b"", 0, wait=False)       # room again
    g.node.recv_nowait()
    assert g.recv()[1:3] == [SID, b"end"]


def test_batched_sends_leave_when_the_drain_ends(raw_factory, request):
    """send(batch=True), as a loop that replies while it drains: every
    reply arrives, in order, once recv_nowait() finds no more input (or at
    flush()); a native link holds them while input it has read waits."""
    g = raw_factory()
    assert g.node.batch_sends is True
    native = (request.node.callspec.params["runtime"] == "ext")
    for round_ in range(2):
        for i in range(50):
            g.send(SID, b"msg", b"%d" % i)
        time.sleep(0.2)                 # all of them in the node's socket
        first = g.node.recv(1000)
        assert first[:3] == (SID, b"msg", b"0")
        g.node.send(SID, b"msg", b"r0", first[3], batch=True)
        if native:
            assert g.quiet(timeout=100)     # held: input is waiting
        if round_ == 1:
            g.node.flush()
            assert g.recv()[1:] == [SID, b"msg", b"r0"]
        for i in range(1, 50):
            msg = g.node.recv_nowait()
            assert msg[:3] == (SID, b"msg", b"%d" % i)
            g.node.send(SID, b"msg", b"r%d" % i, msg[3], batch=True)
        assert g.node.recv_nowait() is None          # the drain's end
        for i in range(1 if round_ == 1 else 0, 50):
            assert g.recv()[1:] == [SID, b"msg", b"r%d" % i]
        assert g.quiet()


def test_readable_after_sends(raw_factory):
    """After a send, a loop learns that a message waits from its fds or,
    where a send may have taken a ZMQ_FD's edge (libzmq), from
    readable()."""
    import select
    g = raw_factory()

    def signalled():
        ready, _, _ = select.select(list(g.node.filenos()), [], [], 0)
        return bool(ready) or g.node.readable()
    while g.node.recv_nowait() is not None:
        pass
    g.send(SID, b"body", b"x")
    deadline = time.monotonic() + 5
    while not signalled():
        assert time.monotonic() < deadline
        time.sleep(0.01)
    g.node.send(SID, b"end", b"", 0)
    assert signalled()                      # still told after a send
    assert g.node.recv_nowait()[:3] == (SID, b"body", b"x")
    assert g.node.recv_nowait() is None and not g.node.readable()


def test_decode_uwsgi_both_runtimes(runtime):
    mod = tn if runtime is tn.RawNode else _ext_module()
    pkt = packet([(b"REQUEST_METHOD", b"POST"), (b"HTTP_X", b"1"),
                  (b"HTTP_X", b"2"), (b"HTTP_COOKIE", b"a=1"),
                  (b"HTTP_COOKIE", b"b=2"), (b"HTTP_BIN", b"\xff\x00")])
    assert mod.decode_uwsgi(pkt) == tn.parse_uwsgi(pkt)
    assert mod.decode_uwsgi(bytearray(b"\x00\x04\x00\x00")) == {}
    assert mod.decode_uwsgi(memoryview(request())) == tn.parse_uwsgi(request())


@pytest.mark.parametrize("bad", [
    b"", b"\x00\x04\x00", b"\x01\x04\x00\x00", b"\x00\x04\x00\x05",
    b"\x00\x08\x00\x00" + b"\x01\x00K", b"\x00\x05\x00\x00" + b"\x01\x00K\x00\x00",
    b"\x00\x05\x00\x00\x01", b"\x00\x08\x00\x00\x05\x00KE",
    b"\x00\x09\x00\x00\x01\x00K\x00", b"\x00\x0b\x00\x00\x01\x00K\x09\x00ab",
    b"\x00\x08\x00\x00\x00\x00\x00\x00",
])
def test_decode_uwsgi_rejects_both_runtimes(runtime, bad):
    mod = tn if runtime is tn.RawNode else _ext_module()
    with pytest.raises(ValueError):
        mod.decode_uwsgi(bad)


def test_raw_recv_send_ping_and_index(raw_factory):
    g = raw_factory(n_routers=2)
    n = g.node
    fds = n.filenos()
    assert len(fds) == 2 and all(isinstance(fd, int) for fd in fds)
    assert n.recv(50) is None                       # timeout
    assert n.recv_nowait() is None
    g.send(b"", b"ping", idx=1)
    assert n.recv(300) is None                      # answered inside
    assert g.recv(1, pongs=True) == [b"node-a", b"", b"pong", b""]
    g.routers[0].send_multipart([b"node-a", SID, b"body", b"x", b"extra"])
    g.send(SID, b"uwsgi", request(), idx=1)
    assert n.recv(TIMEOUT_MS) == (SID, b"uwsgi", request(), 1)
    g.send(b"", b"spawn")
    assert n.recv(TIMEOUT_MS) == (b"", b"spawn", b"", 0)
    n.send(SID, b"body", memoryview(b"back"), 1)
    n.send(bytearray(SID2), b"end", b"")
    assert g.recv(1) == [b"node-a", SID, b"body", b"back"]
    assert g.recv(0) == [b"node-a", SID2, b"end", b""]
    with pytest.raises((IndexError, ValueError)):
        n.send(SID, b"body", b"", 5)


def test_raw_stop_wakes_recv(raw_factory):
    g = raw_factory()
    got = []
    t = threading.Thread(target=lambda: got.append(g.node.recv(-1)))
    t.start()
    time.sleep(0.2)
    g.node.stop()
    t.join(3)
    assert not t.is_alive() and got == [None]


def test_raw_recv_in_one_thread_send_in_another(raw_factory):
    g = raw_factory()
    got = []

    def reader():
        while len(got) < 50:
            msg = g.node.recv(3000)
            if msg is None:
                return
            got.append(msg)
    t = threading.Thread(target=reader)
    t.start()
    for i in range(50):
        g.node.send(SID, b"body", b"%d" % i)
        g.send(SID, b"msg", b"%d" % i)
    for i in range(50):
        assert g.recv() == [b"node-a", SID, b"body", b"%d" % i]
    t.join(10)
    assert not t.is_alive()
    assert got == [(SID, b"msg", b"%d" % i, 0) for i in range(50)]


def test_raw_reannounces_after_silence(raw_factory):
    g = raw_factory()
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        g.node.recv(100)
        if g.routers[0].poll(0):
            break
    assert g.recv(pongs=True) == [b"node-a", b"", b"pong", b""]


def test_runtime_choice(monkeypatch):
    monkeypatch.setenv("TREMOLO_NODE_PURE", "1")
    assert tn.runtime() is tn.RawNode
    monkeypatch.delenv("TREMOLO_NODE_PURE")
    try:
        import _tremolo
    except ImportError:
        assert tn.runtime() is tn.RawNode
    else:
        assert tn.runtime() is _tremolo.Node


# ------------------------------------------------------------ routing ----

def test_send_helpers_exact_frames(gw_factory):
    g = gw_factory()
    n = g.node
    n.headers(SID, "200 OK", [("A", "b")])
    n.body(SID, b"x")
    n.chunk(SID, b"y")
    n.chunk(SID, b"")
    n.end(SID)
    n.join(SID, "room")
    n.leave(SID, b"room")
    n.msg(SID, "room", b"hello")
    n.msg(SID, tn.sid_route(SID2), b"direct")
    n.msg(SID, "a:b", b"colon")
    n.websocket(SID, b"w")
    n.websocket(SID, b"w2", route="room")
    n.websocket_binary(SID, b"\x01", route=tn.sid_route(SID2))
    n.chunk(SID, b"c", route="room")
    expected = [
        (b"headers", b"HTTP/1.1 200 OK\r\nA: b\r\n\r\n"),
        (b"body", b"x"), (b"chunk", b"y"), (b"chunk", b""), (b"end", b""),
        (b"join", b"room"), (b"leave", b"room"),
        (b"room:msg", b"hello"), (b"@" + SID2 + b":msg", b"direct"),
        (b"a:b:msg", b"colon"),
        (b"websocket", b"w"), (b"room:websocket", b"w2"),
        (b"@" + SID2 + b":websocket/binary", b"\x01"),
        (b"room:chunk", b"c"),
    ]
    for mtype, body in expected:
        assert g.recv() == [b"node-a", SID, mtype, body]
    # The gateway splits at the LAST colon: the route comes back intact.
    route, _, typ = (b"@" + SID2 + b":msg").rpartition(b":")
    assert route == b"@" + SID2 and typ == b"msg"


def test_route_validation(gw_factory):
    g = gw_factory()
    with pytest.raises(ValueError):
        g.node.join(SID, "")
    with pytest.raises(ValueError):
        g.node.join(SID, "@x")
    with pytest.raises(ValueError):
        g.node.join(SID, "x" * 65)
    with pytest.raises(ValueError):
        g.node.msg(SID, b"@short", b"")
    with pytest.raises(ValueError):
        g.node.send(b"short", b"body", b"")
    with pytest.raises(ValueError):
        tn.sid_route(b"123")
    assert g.quiet()


def test_reply_goes_through_owning_socket(gw_factory):
    rec = Recorder()
    g = gw_factory(handler=rec, n_routers=2)
    g.send(SID, b"uwsgi", request(), idx=1)
    rec.wait(1)
    g.node.body(SID, b"back")
    assert g.recv(1) == [b"node-a", SID, b"body", b"back"]
    assert g.quiet(0)


# --------------------------------------------------------------- WSGI ----

def echo_app(environ, start_response):
    data = environ["wsgi.input"].read()
    out = b"%s %s %s|%s" % (environ["REQUEST_METHOD"].encode(),
                            environ["PATH_INFO"].encode(),
                            environ["QUERY_STRING"].encode(), data)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [out]


def stream_app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])

    def gen():
        yield b"one"
        yield b""               # must not become a premature terminator
        yield b"two"
    return gen()


def headless(msg):
    """A `body` message that starts with the whole head (spec 6.2): the
    head and a known-length body in one message. -> (head, body)."""
    assert msg[2] == b"body", msg
    head, sep, body = msg[3].partition(b"\r\n\r\n")
    assert sep and head.startswith(b"HTTP/1."), msg
    return head + sep, body


def test_wsgi_full_request_with_body(raw_factory):
    g = raw_factory(app=echo_app)
    g.send(SID2, b"uwsgi", request(b"POST", b"/up", extra=[
        (b"TRANSFER_ENCODING", b"x"), (b"HTTP_TRANSFER_ENCODING", b"chunked")]))
    g.send(SID2, b"body", b"hello ")
    assert g.quiet()                    # no reply before the end marker
    g.send(SID2, b"body", b"world")
    g.send(SID2, b"body", b"")
    msg = g.recv()
    assert msg[:3] == [b"node-a", SID2, b"body"]
    head, got = headless(msg)
    body = b"POST /up a=1|hello world"
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"\r\nContent-Length: %d\r\n" % len(body) in head
    assert b"Transfer-Encoding" not in head
    assert got == body
    assert g.quiet()                    # keep-alive: no `end`

    # Content-Length upload on the same sid (keep-alive): dispatched when the
    # length is reached; a following empty marker is ignored.
    g.send(SID2, b"uwsgi", request(b"PUT", b"/cl", extra=[
        (b"CONTENT_LENGTH", b"3"), (b"HTTP_CONTENT_LENGTH", b"3")]))
    g.send(SID2, b"body", b"abc")
    assert headless(g.recv())[1] == b"PUT /cl a=1|abc"
    g.send(SID2, b"body", b"")
    g.send(SID2, b"uwsgi", request())   # GET: no body, dispatched at once
    assert headless(g.recv())[1] == b"GET / a=1|"
    assert g.quiet()


def test_wsgi_chunked_iterator_http11(raw_factory):
    g = raw_factory(app=stream_app)
    g.send(SID, b"uwsgi", request())
    _, sid, mtype, head = g.recv()
    assert (sid, mtype) == (SID, b"headers")
    assert b"\r\nTransfer-Encoding: chunked\r\n" in head
    assert b"Content-Length" not in head
    assert g.recv() == [b"node-a", SID, b"chunk", b"one"]
    assert g.recv() == [b"node-a", SID, b"chunk", b"two"]
    assert g.recv() == [b"node-a", SID, b"chunk", b""]
    assert g.quiet()                    # keep-alive: no `end`


def test_wsgi_iterator_http10_close_delimited(raw_factory):
    g = raw_factory(app=stream_app)
    g.send(SID, b"uwsgi", request(proto=b"HTTP/1.0"))
    _, _, mtype, head = g.recv()
    assert mtype == b"headers" and head.startswith(b"HTTP/1.0 200 OK\r\n")
    assert b"chunked" not in head and b"Content-Length" not in head
    assert b"\r\nConnection: close\r\n" in head
    assert g.recv()[2:] == [b"body", b"one"]
    assert g.recv()[2:] == [b"body", b"two"]
    assert g.recv()[2:] == [b"end", b""]


def test_wsgi_http10_keepalive_and_connection_close(raw_factory):
    g = raw_factory(app=echo_app)
    g.send(SID, b"uwsgi", request(proto=b"HTTP/1.0",
                                  extra=[(b"HTTP_CONNECTION", b"keep-alive")]))
    head, body = headless(g.recv())
    assert b"\r\nConnection: keep-alive\r\n" in head and body
    assert g.quiet()
    g.send(SID, b"uwsgi", request(extra=[(b"HTTP_CONNECTION", b"close")]))
    head, body = headless(g.recv())
    assert b"\r\nConnection: close\r\n" in head and body
    assert g.recv()[2:] == [b"end", b""]


def test_wsgi_head_and_errors(raw_factory):
    def boom(environ, start_response):
        raise RuntimeError("expected test failure")

    g = raw_factory(app=stream_app)
    g.send(SID, b"uwsgi", request(method=b"HEAD"))
    head = g.recv()[3]
    assert b"\r\nContent-Length: 6\r\n" in head
    assert g.quiet()                    # no body, no chunk for HEAD

    g = raw_factory(app=boom)
    g.send(SID, b"uwsgi", request())
    head, body = headless(g.recv())
    assert head.startswith(b"HTTP/1.1 500 ")
    assert body == b"500 Internal Server Error\n"
    assert g.recv()[2] == b"end"

    g.send(SID, b"uwsgi", request(extra=[(b"CONTENT_LENGTH", b"abc")]))
    assert headless(g.recv())[0].startswith(b"HTTP/1.1 400 ")
    assert g.recv()[2] == b"end"


def test_wsgi_write_callable_and_given_length(raw_factory):
    def app(environ, start_response):
        write = start_response("201 Created", [("Content-Length", "4")])
        write(b"ab")
        return iter([b"cd"])

    g = raw_factory(app=app)
    g.send(SID, b"uwsgi", request())
    head, body = headless(g.recv())
    assert head.startswith(b"HTTP/1.1 201 Created\r\n")
    assert head.count(b"Content-Length") == 1 and b"chunked" not in head
    assert body == b"ab"
    assert g.recv()[2:] == [b"body", b"cd"]
    assert g.quiet()


@pytest.mark.parametrize("bad", ["twice", "str_body", "not_iterable",
                                 "no_start", "bad_status", "bad_header"])
def test_wsgi_misbehaving_apps_get_500(raw_factory, bad):
    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        if bad == "twice":
            start_response("200 OK", [])
        if bad == "str_body":
            return ["text, not bytes"]
        if bad == "not_iterable":
            return 42
        return [b"x"]

    def no_start(environ, start_response):
        return [b"x"]

    def bad_status(environ, start_response):
        start_response("OK", [])
        return [b"x"]

    def bad_header(environ, start_response):
        start_response("200 OK", [("X", "a\r\nInjected: 1")])
        return [b"x"]

    chosen = {"no_start": no_start, "bad_status": bad_status,
              "bad_header": bad_header}.get(bad, app)
    g = raw_factory(app=chosen)
    for _ in range(2):                  # and the node keeps serving
        g.send(SID, b"uwsgi", request())
        head, body = headless(g.recv())
        assert head.startswith(b"HTTP/1.1 500 ")
        assert g.recv()[2] == b"end"


def test_wsgi_generator_close_and_error_after_head(raw_factory):
    closed = []

    class Result:
        def __init__(self, fail):
            self.fail = fail

        def __iter__(self):
            yield b"first"
            if self.fail:
                raise RuntimeError("expected test failure")
            yield b"second"

        def close(self):
            closed.append(self.fail)

    def app(environ, start_response):
        start_response("200 OK", [])
        return Result(environ["PATH_INFO"] == "/fail")

    g = raw_factory(app=app)
    g.send(SID, b"uwsgi", request())
    assert g.recv()[2] == b"headers"
    assert g.recv()[2:] == [b"chunk", b"first"]
    assert g.recv()[2:] == [b"chunk", b"second"]
    assert g.recv()[2:] == [b"chunk", b""]
    g.send(SID2, b"uwsgi", request(path=b"/fail"))
    assert g.recv()[2] == b"headers"
    assert g.recv()[2:] == [b"chunk", b"first"]
    assert g.recv()[2:] == [b"end", b""]    # the framing is broken: cut
    # close() runs after the `end` went out, on the node's thread
    deadline = time.monotonic() + 5
    while len(closed) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert closed == [False, True]


def test_wsgi_exc_info_rules(raw_factory):
    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        try:
            raise KeyError("expected")
        except KeyError:
            # before the head: replaces the status
            start_response("503 Busy", [], sys.exc_info())
        if environ["PATH_INFO"] == "/late":
            write = start_response("200 OK", [])  # noqa: F841 (twice: no)
        return [b"busy"]

    g = raw_factory(app=app)
    g.send(SID, b"uwsgi", request())
    head, body = headless(g.recv())
    assert head.startswith(b"HTTP/1.1 503 Busy\r\n") and body == b"busy"

    def late(environ, start_response):
        write = start_response("200 OK", [])
        write(b"x")
        try:
            raise KeyError("expected test failure")
        except KeyError:
            start_response("500 Oops", [], sys.exc_info())  # re-raises
        return [b"never"]

    g = raw_factory(app=late)
    g.send(SID, b"uwsgi", request())
    assert g.recv()[2] == b"headers"
    assert g.recv()[2:] == [b"chunk", b"x"]
    assert g.recv()[2:] == [b"end", b""]


def test_wsgi_input_file_api_list_join_and_no_body_status(raw_factory):
    def app(environ, start_response):
        inp = environ["wsgi.input"]
        if environ["PATH_INFO"] == "/lines":
            first = inp.readline()
            part = inp.read(2)
            rest = inp.readlines()
            out = [first, b"|", part, b"|", b"+".join(rest)]
        elif environ["PATH_INFO"] == "/iter":
            out = [b"<%s>" % line for line in inp]
        else:
            code = environ["PATH_INFO"][1:]
            start_response(code + " X", [])
            return [b"dropped"]
        start_response("200 OK", [])
        return out

    g = raw_factory(app=app)
    cl = [(b"CONTENT_LENGTH", b"11")]
    g.send(SID, b"uwsgi", request(b"POST", b"/lines",
                                  extra=[(b"CONTENT_LENGTH", b"10")]))
    g.send(SID, b"body", b"ab\ncdef\ngh")
    msg = g.recv()
    head, body = headless(msg)          # 5 pieces, one message
    assert body == b"ab\n|cd|ef\n+gh"
    assert b"Content-Length: 13\r\n" in head
    g.send(SID, b"uwsgi", request(b"POST", b"/iter", extra=cl))
    g.send(SID, b"body", b"ab\ncd")
    g.send(SID, b"body", b"ef\ngh")
    g.send(SID, b"body", b"!")
    assert headless(g.recv())[1] == b"<ab\n><cdef\n><gh!>"
    for code in (b"204", b"304"):
        g.send(SID, b"uwsgi", request(path=b"/" + code))
        _, _, mtype, head = g.recv()
        assert mtype == b"headers" and head.startswith(b"HTTP/1.1 " + code)
        assert b"Content-Length" not in head and b"chunked" not in head
    assert g.quiet()


def test_wsgi_413_spawn_and_end_drop_pending(raw_factory):
    g = raw_factory(app=echo_app, max_body=10)
    g.send(SID, b"uwsgi", request(b"POST", extra=[(b"CONTENT_LENGTH", b"11")]))
    assert headless(g.recv())[0].startswith(b"HTTP/1.1 413 ")
    assert g.recv()[2] == b"end"
    chunked = [(b"HTTP_TRANSFER_ENCODING", b"chunked")]
    g.send(SID, b"uwsgi", request(b"POST", extra=chunked))
    g.send(SID, b"body", b"123456")
    g.send(SID, b"body", b"78901")
    assert headless(g.recv())[0].startswith(b"HTTP/1.1 413 ")
    assert g.recv()[2] == b"end"
    g.send(SID, b"uwsgi", request(b"POST", extra=chunked))
    g.send(SID, b"body", b"12")
    g.send(b"", b"spawn")
    g.send(SID, b"body", b"")           # the pending request is gone
    g.send(SID2, b"uwsgi", request(b"POST", extra=chunked))
    g.send(SID2, b"end")
    g.send(SID2, b"body", b"")
    assert g.quiet()
    g.send(SID, b"uwsgi", request(proto=b"HTTP/2"))   # self-contained
    head, body = headless(g.recv())
    assert b"Connection" not in head and body == b"GET / a=1|"
    assert g.recv()[2] == b"end"


def test_cli_parses_arguments(monkeypatch):
    seen = {}
    monkeypatch.setattr(tw, "serve", lambda app, ident, eps, max_body: seen.update(
        app=app, ident=ident, eps=eps))
    assert tw.main(["tremolo_wsgi:load_app", "--id", "n1",
                    "--connect", "tcp://127.0.0.1:1", "--connect",
                    "tcp://127.0.0.1:2"]) == 0
    assert seen == {"app": tw.load_app, "ident": "n1",
                    "eps": ["tcp://127.0.0.1:1", "tcp://127.0.0.1:2"]}


# -- --processes N ------------------------------------------------------------

HERE = os.path.dirname(os.path.abspath(__file__))

# Run by a fresh interpreter: run_processes() forks, and pytest's process
# has zmq threads. Each child writes "<identity> <pid>" to DIR, then does
# what MODE says. The waits are bounds far above any scheduling delay; no
# outcome depends on timing.
PROCS_SCRIPT = r"""
import os, signal, sys, time
sys.path.insert(0, sys.argv[1])
import tremolo_node as tn
out, mode = sys.argv[2], sys.argv[3]
BOUND = 30

def target(identity, ready):
    got = []
    signal.signal(signal.SIGTERM, lambda *_: got.append(1))
    # "twice": stop on the second SIGTERM only (the parent must repeat it)
    need = 2 if mode == "twice" else 1
    with open(os.path.join(out, identity), "w") as f:
        f.write(str(os.getpid()))
    if mode == "fail" and identity.endswith("-1"):
        raise RuntimeError("app import failed")
    if mode == "early" and identity.endswith("-1"):
        # stop the parent while it may still be forking p-2
        os.kill(os.getppid(), signal.SIGTERM)
    ready()
    if mode == "exit":
        return 0
    if mode in ("term", "twice", "kill") and identity.endswith("-2"):
        # the parent is told to stop once every child has its handler
        end = time.monotonic() + BOUND
        while len(os.listdir(out)) < 2 and time.monotonic() < end:
            time.sleep(0.01)
        os.kill(os.getppid(), signal.SIGKILL if mode == "kill" else signal.SIGTERM)
    end = time.monotonic() + BOUND
    while len(got) < need and time.monotonic() < end:
        time.sleep(0.01)
    return 0 if len(got) >= need else 3

if mode == "forkfail":                      # the second fork() fails
    real_fork, forks = os.fork, []
    def fork():
        forks.append(1)
        if len(forks) == 2:
            raise OSError(11, "Resource temporarily unavailable")
        pid = real_fork()
        if pid:
            os.write(2, b"forked %d\n" % pid)
        return pid
    os.fork = fork

sys.exit(tn.run_processes(2, "p", target))
"""


def run_procs(tmp_path, mode):
    import subprocess
    out = tmp_path / "ids"
    out.mkdir()
    proc = subprocess.run([sys.executable, "-c", PROCS_SCRIPT, HERE, str(out),
                           mode], capture_output=True, timeout=120)
    pids = {p.name: int(p.read_text() or 0) for p in out.iterdir()}
    return proc, pids


def pid_gone(pid):
    """Exited: no such process, or a zombie left for whoever reaps orphans."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def test_process_identities():
    assert tn.process_identities("web", 1) == ["web"]
    assert tn.process_identities("web", 3) == ["web-1", "web-2", "web-3"]
    with pytest.raises(ValueError):
        tn.process_identities("web", 0)


def test_run_processes_distinct_identities_and_clean_exit(tmp_path):
    proc, pids = run_procs(tmp_path, "exit")
    assert proc.returncode == 0, proc.stderr
    assert sorted(pids) == ["p-1", "p-2"]
    assert len(set(pids.values())) == 2
    assert b"not restarted" in proc.stderr    # each exit is reported


def test_run_processes_forwards_sigterm(tmp_path):
    proc, pids = run_procs(tmp_path, "term")
    assert proc.returncode == 0, proc.stderr   # both saw SIGTERM and exited 0
    assert sorted(pids) == ["p-1", "p-2"]
    assert all(pid_gone(p) for p in pids.values())


def test_run_processes_repeats_the_stop_signal(tmp_path):
    # each child stops on its second SIGTERM only
    proc, pids = run_procs(tmp_path, "twice")
    assert proc.returncode == 0, proc.stderr
    assert sorted(pids) == ["p-1", "p-2"]
    assert all(pid_gone(p) for p in pids.values())


def test_run_processes_stop_while_starting(tmp_path):
    # p-1 stops the parent as it starts; p-2, forked before or after that,
    # is stopped too: by its handler, or killed by SIGTERM before it has
    # one, which counts as a clean stop.
    proc, pids = run_procs(tmp_path, "early")
    assert proc.returncode == 0, proc.stderr
    assert "p-1" in pids
    assert all(pid_gone(p) for p in pids.values() if p)


def test_run_processes_fork_failure_stops_the_rest(tmp_path):
    proc, pids = run_procs(tmp_path, "forkfail")
    assert proc.returncode == 1
    assert b"cannot fork p-2" in proc.stderr
    forked = [int(w) for w in re.findall(rb"forked (\d+)", proc.stderr)]
    assert len(forked) == 1                 # p-1, stopped maybe before it ran
    assert pid_gone(forked[0])
    assert set(pids) <= {"p-1"}


def test_run_processes_start_failure_stops_the_rest(tmp_path):
    proc, pids = run_procs(tmp_path, "fail")
    assert proc.returncode == 1
    assert b"p-1 failed to start" in proc.stderr
    assert b"app import failed" in proc.stderr
    assert all(pid_gone(p) for p in pids.values())


def test_cli_processes_option(monkeypatch):
    seen = {}
    monkeypatch.setattr(tw, "run_processes", lambda n, ident, target: seen.update(
        n=n, ident=ident) or 0)
    assert tw.main(["m:app", "--id", "n", "--processes", "3",
                    "--connect", "tcp://127.0.0.1:1"]) == 0
    assert seen == {"n": 3, "ident": "n"}
    seen.clear()
    assert tn.main(["--wsgi", "m:app", "--id", "n", "--processes", "2",
                    "--connect", "tcp://127.0.0.1:1"]) == 0
    assert seen == {"n": 2, "ident": "n"}
    with pytest.raises(SystemExit):
        tw.main(["m:app", "--id", "n", "--processes", "0",
                 "--connect", "tcp://127.0.0.1:1"])
    with pytest.raises(SystemExit):           # --wsgi or --asgi is required
        tn.main(["--id", "n", "--connect", "tcp://127.0.0.1:1"])
    with pytest.raises(SystemExit):           # not both
        tn.main(["--wsgi", "m:app", "--asgi", "m:app", "--id", "n",
                 "--connect", "tcp://127.0.0.1:1"])


def test_cli_asgi_dispatch(monkeypatch):
    import types
    calls, forks = [], {}
    fake = types.ModuleType("tremolo_asgi")
    fake.main = lambda argv: calls.append(argv) or 0
    monkeypatch.setitem(sys.modules, "tremolo_asgi", fake)
    common = ["--connect", "tcp://127.0.0.1:1", "--lifespan", "off"]
    # one process: the adapter runs here, as NAME, with the other options
    assert tn.main(["--asgi", "m:app", "--id", "n"] + common) == 0
    assert calls == [["m:app", "--id", "n"] + common]
    # N processes: run_processes gets the target that runs the adapter
    monkeypatch.setattr(tn, "run_processes", lambda n, ident, target: forks.update(
        n=n, ident=ident, target=target) or 0)
    assert tn.main(["--asgi", "os.path:join", "--processes", "2", "--id", "n"]
                   + common) == 0
    assert (forks["n"], forks["ident"]) == (2, "n")
    calls.clear()
    readied = []
    assert forks["target"]("n-2", lambda: readied.append(1)) == 0
    assert readied == [1]
    assert calls == [["os.path:join", "--id", "n-2"] + common]
    with pytest.raises(SystemExit):
        tn.main(["--asgi", "m:app", "--processes", "0", "--id", "n"] + common)


def test_cli_asgi_missing_adapter(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "tremolo_asgi", None)   # import fails
    with pytest.raises(SystemExit) as exc:
        tn.main(["--asgi", "m:app", "--id", "n", "--connect", "tcp://127.0.0.1:1"])
    assert exc.value.code == 2
    assert "tremolo_asgi.py" in capsys.readouterr().err


def test_run_processes_children_stop_when_the_parent_is_killed(tmp_path):
    proc, pids = run_procs(tmp_path, "kill")
    assert proc.returncode == -9
    assert sorted(pids) == ["p-1", "p-2"]
    end = time.monotonic() + 10                 # orphans: not ours to reap
    while not all(pid_gone(p) for p in pids.values()) and time.monotonic() < end:
        time.sleep(0.02)
    assert all(pid_gone(p) for p in pids.values())


# ------------------------------------------------- the ZMTP endpoints --
# _tremolo.Node speaks ZMTP 3.0 itself on tcp:// and ipc:// endpoints (ext/
# zmtp.c, ext/zmtp_link.c) and libzmq with TREMOLO_NODE_LIBZMQ=1; what a
# peer sees must not depend on which.  A native link moves only when the
# node is called (recv, recv_nowait, send, close), so these tests keep
# calling it; libzmq's I/O thread needs no help but does not mind.

@pytest.fixture(params=["native", "libzmq"])
def ext_node(request, monkeypatch):
    """Make _tremolo.Nodes of the parametrised kind; closed at the end."""
    if request.param == "libzmq":
        monkeypatch.setenv("TREMOLO_NODE_LIBZMQ", "1")
    else:
        monkeypatch.delenv("TREMOLO_NODE_LIBZMQ", raising=False)
    cls = _ext_module().Node
    made = []

    def make(identity, endpoints, linger_ms=0):
        n = cls(identity, endpoints, linger_ms=linger_ms)
        made.append(n)
        return n

    make.kind = request.param
    yield make
    for n in made:
        n.stop()
        n.close()


def free_port():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def pump_recv(node, router, count, timeout=5.0, skip_pongs=True):
    """Drive the node (recv with short timeouts) until the router has got
    `count` messages; returns them (the node's announcements skipped)."""
    got = []
    deadline = time.monotonic() + timeout
    while len(got) < count:
        if time.monotonic() > deadline:
            raise AssertionError("only %r" % (got,))
        assert node.recv(10) is None
        while router.poll(0):
            msg = router.recv_multipart()
            if not (skip_pongs and msg[1:] == [b"", b"pong", b""]):
                got.append(msg)
    return got


def router_on(ctx, port, **opts):
    r = ctx.socket(zmq.ROUTER)
    r.setsockopt(zmq.LINGER, 0)
    for k, v in opts.items():
        r.setsockopt(getattr(zmq, k), v)
    r.bind("tcp://127.0.0.1:%d" % port)
    return r


def test_zmtp_router_sees_identity_and_bodies_both_ways(ext_node):
    ctx = zmq.Context()
    port = free_port()
    r = router_on(ctx, port)
    try:
        ident = b"node-\xff\x01id"
        n = ext_node(ident, ["tcp://127.0.0.1:%d" % port])
        assert pump_recv(n, r, 1, skip_pongs=False) == [[ident, b"", b"pong", b""]]
        big_in = os.urandom(4 << 20)
        big_out = bytes(reversed(big_in))
        r.send_multipart([ident, SID, b"body", big_in])
        deadline = time.monotonic() + 10
        msg = None
        while msg is None and time.monotonic() < deadline:
            msg = n.recv(100)
        assert msg is not None and msg[:2] == (SID, b"body") and msg[3] == 0
        assert msg[2] == big_in                  # partial reads put together
        n.send(SID, b"body", big_out)            # partial writes queued
        n.send(SID, b"end", b"")
        got = pump_recv(n, r, 2, timeout=10)
        assert got[0] == [ident, SID, b"body", big_out]
        assert got[1] == [ident, SID, b"end", b""]
    finally:
        r.close()
        ctx.term()


def test_zmtp_messages_sent_before_the_router_binds(ext_node):
    ctx = zmq.Context()
    port = free_port()
    n = ext_node(b"early", ["tcp://127.0.0.1:%d" % port])
    for i in range(3):
        n.send(SID, b"body", b"%d" % i)
    assert n.recv(150) is None                   # refused, retried
    r = router_on(ctx, port)
    try:
        got = pump_recv(n, r, 4, skip_pongs=False)
        assert got == [[b"early", b"", b"pong", b""]] + [
            [b"early", SID, b"body", b"%d" % i] for i in range(3)]
    finally:
        r.close()
        ctx.term()


def test_zmtp_reconnects_after_the_router_is_rebound(ext_node):
    ctx = zmq.Context()
    port = free_port()
    r = router_on(ctx, port)
    try:
        n = ext_node(b"again", ["tcp://127.0.0.1:%d" % port])
        fds = n.filenos()
        pump_recv(n, r, 1, skip_pongs=False)
        r.close()
        for _ in range(20):                      # the node sees it go
            n.recv(10)
        n.send(SID, b"body", b"while down")
        r = router_on(ctx, port)
        assert pump_recv(n, r, 1) == [[b"again", SID, b"body", b"while down"]]
        r.send_multipart([b"again", SID, b"msg", b"hello"])
        deadline = time.monotonic() + 5
        msg = None
        while msg is None and time.monotonic() < deadline:
            msg = n.recv(100)
        assert msg == (SID, b"msg", b"hello", 0)
        assert n.filenos() == fds                # stable: add_reader once
    finally:
        r.close()
        ctx.term()


def test_zmtp_router_heartbeats_keep_the_connection(ext_node):
    from zmq.utils.monitor import recv_monitor_message
    ctx = zmq.Context()
    port = free_port()
    r = router_on(ctx, port, HEARTBEAT_IVL=100, HEARTBEAT_TIMEOUT=300)
    mon = r.get_monitor_socket(zmq.EVENT_DISCONNECTED | zmq.EVENT_ACCEPTED)
    try:
        n = ext_node(b"beat", ["tcp://127.0.0.1:%d" % port])
        pump_recv(n, r, 1, skip_pongs=False)
        end = time.monotonic() + 2.5
        while time.monotonic() < end:            # PINGs come and are answered
            assert n.recv(50) is None
        events = []
        while mon.poll(0):
            events.append(recv_monitor_message(mon)["event"])
        assert events.count(zmq.EVENT_ACCEPTED) == 1, events
        assert zmq.EVENT_DISCONNECTED not in events, events
        r.send_multipart([b"beat", SID, b"msg", b"still"])
        msg = None
        deadline = time.monotonic() + 3
        while msg is None and time.monotonic() < deadline:
            msg = n.recv(100)
        assert msg == (SID, b"msg", b"still", 0)
    finally:
        r.disable_monitor()
        mon.close()
        r.close()
        ctx.term()


def test_zmtp_queue_full_send_waits_until_the_router_is_there(ext_node):
    """Up to the high-water mark sends are queued while nobody listens;
    then send() waits (GIL released) until the connection drains it."""
    ctx = zmq.Context()
    port = free_port()
    n = ext_node(b"hwm", ["tcp://127.0.0.1:%d" % port])
    sent = []

    def sender():
        for i in range(1500):
            n.send(SID, b"body", b"%d" % i)
            sent.append(i)
    t = threading.Thread(target=sender, daemon=True)
    t.start()
    t.join(1.0)
    assert t.is_alive()                          # blocked on a full queue
    assert 900 <= len(sent) <= 1100, len(sent)   # ~1000 queued
    r = router_on(ctx, port)
    try:
        got = pump_recv(n, r, 1500, timeout=10)
        t.join(5)
        assert not t.is_alive() and len(sent) == 1500
        assert got == [[b"hwm", SID, b"body", b"%d" % i] for i in range(1500)]
    finally:
        r.close()
        ctx.term()


def test_zmtp_close_lingers_until_queued_messages_are_out(ext_node):
    ctx = zmq.Context()
    port = free_port()
    n = ext_node(b"linger", ["tcp://127.0.0.1:%d" % port], linger_ms=3000)
    for i in range(3):
        n.send(SID, b"body", b"%d" % i)
    r = router_on(ctx, port)
    try:
        n.close()                                # connects, flushes, closes
        got = []
        while r.poll(2000):
            got.append(r.recv_multipart())
            if len(got) == 4:
                break
        assert got == [[b"linger", b"", b"pong", b""]] + [
            [b"linger", SID, b"body", b"%d" % i] for i in range(3)]
    finally:
        r.close()
        ctx.term()


def test_zmtp_native_and_libzmq_endpoints_in_one_node(monkeypatch):
    """An endpoint form the native client does not take (here tcp:// with
    a source address) gets a libzmq DEALER; both work side by side."""
    monkeypatch.delenv("TREMOLO_NODE_LIBZMQ", raising=False)
    ctx = zmq.Context()
    p0, p1 = free_port(), free_port()
    r0, r1 = router_on(ctx, p0), router_on(ctx, p1)
    n = _ext_module().Node(b"mixed", ["tcp://127.0.0.1:%d" % p0,
                                      "tcp://127.0.0.1:0;127.0.0.1:%d" % p1],
                           linger_ms=0)
    try:
        fds = n.filenos()
        assert len(fds) == 2 and fds[0] != fds[1]
        for r in (r0, r1):
            assert pump_recv(n, r, 1, skip_pongs=False) == [
                [b"mixed", b"", b"pong", b""]]
        for i, r in enumerate((r0, r1)):
            r.send_multipart([b"mixed", SID, b"msg", b"%d" % i])
            msg = None
            deadline = time.monotonic() + 3
            while msg is None and time.monotonic() < deadline:
                msg = n.recv(100)
            assert msg == (SID, b"msg", b"%d" % i, i)
            n.send(SID, b"body", b"back %d" % i, i)
            assert pump_recv(n, r, 1) == [[b"mixed", SID, b"body",
                                           b"back %d" % i]]
    finally:
        n.close()
        r0.close()
        r1.close()
        ctx.term()


def test_zmtp_ipc_endpoint(ext_node, tmp_path):
    ctx = zmq.Context()
    ep = "ipc://%s" % (tmp_path / "gw.sock")
    r = ctx.socket(zmq.ROUTER)
    r.setsockopt(zmq.LINGER, 0)
    r.bind(ep)
    try:
        n = ext_node(b"local", [ep])
        assert pump_recv(n, r, 1, skip_pongs=False) == [[b"local", b"", b"pong", b""]]
        r.send_multipart([b"local", SID, b"msg", b"x"])
        msg = None
        deadline = time.monotonic() + 3
        while msg is None and time.monotonic() < deadline:
            msg = n.recv(100)
        assert msg == (SID, b"msg", b"x", 0)
    finally:
        r.close()
        ctx.term()


# A plain TCP server playing a broken gateway: the native node must drop
# the connection, say why once on stderr, reconnect later, and not crash.

NULL_GREETING = (b"\xff" + b"\0" * 8 + b"\x7f" + b"\x03\x01" + b"NULL"
                 + b"\0" * 16 + b"\0" + b"\0" * 31)


def zframe(flags, body):
    if len(body) <= 255:
        return bytes([flags, len(body)]) + body
    return bytes([flags | 2]) + struct.pack(">Q", len(body)) + body


def zready(socket_type=b"ROUTER"):
    return zframe(4, b"\x05READY\x0bSocket-Type" + struct.pack(">I", len(socket_type))
                  + socket_type)


class RawPeer:
    """A listening socket; the node is driven from a thread meanwhile."""

    def __init__(self, node_cls, identity=b"raw"):
        import socket
        self.srv = socket.socket()
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(4)
        self.srv.settimeout(5)
        self.node = node_cls(identity, ["tcp://127.0.0.1:%d"
                                        % self.srv.getsockname()[1]],
                             linger_ms=0)
        self.thread = threading.Thread(target=self._drive, daemon=True)
        self.thread.start()

    def _drive(self):
        while self.node.recv(20) is None and not self._stopped():
            pass

    def _stopped(self):
        return getattr(self, "stopping", False)

    def accept(self):
        conn, _ = self.srv.accept()
        conn.settimeout(5)
        return conn

    @staticmethod
    def read(conn, n):
        data = b""
        while len(data) < n:
            got = conn.recv(n - len(data))
            if not got:
                raise EOFError(data)
            data += got
        return data

    @staticmethod
    def closed_by_node(conn):
        """True when the node closes the connection (within 5 s)."""
        try:
            while conn.recv(65536):
                pass
        except ConnectionResetError:
            pass
        return True

    def close(self):
        self.stopping = True
        self.node.stop()
        self.thread.join(5)
        assert not self.thread.is_alive()
        self.node.close()
        self.srv.close()


@pytest.fixture
def raw_peer(monkeypatch):
    monkeypatch.delenv("TREMOLO_NODE_LIBZMQ", raising=False)
    made = []

    def make(**kw):
        p = RawPeer(_ext_module().Node, **kw)
        made.append(p)
        return p

    yield make
    for p in made:
        p.close()


def test_zmtp_greeting_ready_and_ping(raw_peer):
    p = raw_peer(identity=b"raw-id")
    conn = p.accept()
    greeting = p.read(conn, 64)
    assert greeting[0] == 0xFF and greeting[9] == 0x7F
    assert greeting[10:12] == b"\x03\x00" and greeting[12:32] == b"NULL" + b"\0" * 16
    conn.sendall(NULL_GREETING)
    head = p.read(conn, 2)
    assert head[0] == 4                           # a short command
    ready = p.read(conn, head[1])
    assert ready.startswith(b"\x05READY")
    assert b"\x0bSocket-Type\x00\x00\x00\x06DEALER" in ready
    assert b"\x08Identity\x00\x00\x00\x06raw-id" in ready
    conn.sendall(zready())
    # the queued pong: [b"", b"pong", b""]
    assert p.read(conn, 2 + 0 + 2 + 4 + 2) == b"\x01\x00\x01\x04pong\x00\x00"
    conn.sendall(zframe(4, b"\x04PING\x00\x0actx-42"))
    assert p.read(conn, 2 + 5 + 6) == zframe(4, b"\x04PONGctx-42")
    # a data ping is answered with a pong message
    conn.sendall(zframe(1, SID) + zframe(1, b"ping") + zframe(0, b""))
    assert p.read(conn, 2 + 16 + 2 + 4 + 2) == (zframe(1, SID) + zframe(1, b"pong")
                                                 + zframe(0, b""))
    conn.close()


BAD_PEERS = {
    "signature": b"HTTP/1.1 400 Bad Request\r\n\r\n".ljust(64, b"\0"),
    "version": NULL_GREETING[:10] + b"\x02\x00" + NULL_GREETING[12:],
    "mechanism": NULL_GREETING[:12] + b"PLAIN".ljust(20, b"\0") + NULL_GREETING[32:],
    "not-ready": NULL_GREETING + zframe(4, b"\x05HELLO"),
    "bad-property": NULL_GREETING + zframe(4, b"\x05READY\x0bSocket-Type\xff\xff\xff\xff"),
    "socket-type": NULL_GREETING + zready(b"PUB"),
    "message-first": NULL_GREETING + zframe(0, b"hi"),
    "huge-frame": NULL_GREETING + zready() + b"\x02" + struct.pack(">Q", 1 << 40),
    "command-with-more": NULL_GREETING + zready() + b"\x05\x05\x04PING\x00",
    "error-command": NULL_GREETING + zready() + zframe(4, b"\x05ERROR\x03bye"),
}


@pytest.mark.parametrize("case", sorted(BAD_PEERS))
def test_zmtp_broken_peer_is_dropped_and_retried(raw_peer, capfd, case):
    p = raw_peer()
    conn = p.accept()
    conn.sendall(BAD_PEERS[case])
    assert p.closed_by_node(conn)
    conn.close()
    conn = p.accept()                             # it comes back (100 ms)
    conn.sendall(BAD_PEERS[case])
    assert p.closed_by_node(conn)
    conn.close()
    assert p.thread.is_alive()                    # recv still running
    p.node.recv_nowait()                          # the GIL-held log point
    err = capfd.readouterr().err
    assert err.count("tremolo node:") == 1, err  # said once, not per retry
