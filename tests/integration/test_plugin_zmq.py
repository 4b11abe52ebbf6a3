"""The zmq gateway against real pyzmq nodes (Debian's python3-zmq): the
uwsgi packet, responses, keep-alive, chunked framing, request bodies with
the end marker, least-connection balancing, zero-config nodes, refused
identities and hostile messages. Nodes here are raw DEALER sockets so the
wire format itself is checked."""

import os
import queue
import socket
import subprocess
import struct
import threading
import time

import pytest
import zmq

from plugin_util import start_fails
from tremolo_harness import (build_request, free_port, memory_env,
                              parse_responses)


def uwsgi_vars(packet):
    """Strict parse of the gateway's packet: SIZE is the total length."""
    assert packet[0] == 0 and packet[3] == 0
    size = struct.unpack("<H", packet[1:3])[0]
    assert size == len(packet), (size, len(packet))
    off, pairs = 4, []
    while off < size:
        kl = struct.unpack("<H", packet[off:off + 2])[0]
        key = packet[off + 2:off + 2 + kl]
        off += 2 + kl
        vl = struct.unpack("<H", packet[off:off + 2])[0]
        pairs.append((key, packet[off + 2:off + 2 + vl]))
        off += 2 + vl
    assert off == size
    return pairs


class Node:
    """A DEALER node in a thread. `app(node, sid, vars)` answers a request;
    every message received is recorded in `log` as (sid, type, body).
    A ZeroMQ socket is not thread-safe: send() only queues the frames and
    the node's own thread sends them."""

    def __init__(self, endpoint, identity, app=None, pong=True, curve=None):
        self.ctx = zmq.Context.instance()
        self.sock = self.ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.IDENTITY, identity)
        self.sock.setsockopt(zmq.LINGER, 0)
        if curve:                      # (server public, public, secret)
            self.sock.setsockopt(zmq.CURVE_SERVERKEY, curve[0])
            self.sock.setsockopt(zmq.CURVE_PUBLICKEY, curve[1])
            self.sock.setsockopt(zmq.CURVE_SECRETKEY, curve[2])
        self.sock.connect(endpoint)
        self.identity = identity
        self.app = app
        self.pong = pong
        self.log = []
        self.bodies = {}
        self.outq = queue.Queue()
        self.lock = threading.Lock()
        self.running = True
        if pong:
            self.sock.send_multipart([b"", b"pong", b""])
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()

    def _flush(self):
        while True:
            try:
                frames = self.outq.get_nowait()
            except queue.Empty:
                return
            self.sock.send_multipart(frames)

    def loop(self):
        poller = zmq.Poller()
        poller.register(self.sock, zmq.POLLIN)
        while self.running:
            self._flush()
            if not poller.poll(5):
                continue
            while self.sock.poll(0):
                self.handle(*self.sock.recv_multipart())
                self._flush()

    def handle(self, sid, typ, body):
        with self.lock:
            self.log.append((sid, typ, body))
        if typ == b"ping":
            if self.pong:
                self.sock.send_multipart([b"", b"pong", b""])
        elif typ == b"uwsgi" and self.app:
            self.app(self, sid, dict(uwsgi_vars(body)))
        elif typ == b"body":
            self.bodies.setdefault(sid, []).append(body)

    def send(self, *frames):
        self.outq.put(list(frames))

    def types(self, sid=None):
        with self.lock:
            return [t for s, t, _ in self.log if sid is None or s == sid]

    def close(self):
        self.running = False
        self.thread.join(2)
        self.sock.close()


def hello(node, sid, env):
    body = b"hello from " + node.identity
    node.send(sid, b"headers",
              b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body))
    node.send(sid, b"body", body)


def wait_for(pred, timeout=5):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.02)
    return False


def zmq_site(node_list, names="127.0.0.1 localhost", default=True):
    site = "[HOST]\n    ServerName %s\n" % names
    if default:
        site += "    Default on\n"
    site += "    Handler zmq\n[ZMQ]\n"
    for n in node_list.split():
        site += "    Node %s\n" % n
    return site


@pytest.fixture
def gateway(tremolo):
    nodes = []

    def start(node_list="node1", server="", workers=1, port=None, zmq="",
              extra_plugins=(), env=None, sites=None):
        port = port or free_port()
        endpoint = "tcp://127.0.0.1:%d" % port
        srv = tremolo(plugins=("liana", "zmq") + tuple(extra_plugins),
                      sites=sites or {"default": zmq_site(node_list)},
                      plugin_confs={"zmq": "[ZMQ]\n    Bind %s\n"
                                           "    PingFreq 500ms\n%s"
                                           % (endpoint, zmq)},
                      server=server, workers=workers, env=env)
        srv.endpoint = endpoint

        def node(identity, app=hello, pong=True, curve=None):
            n = Node(endpoint, identity, app, pong, curve)
            nodes.append(n)
            return n
        srv.node = node
        return srv

    yield start
    for n in nodes:
        n.close()


def get_ok(srv, path="/", timeout=5):
    """Nodes become available at their first pong: retry briefly."""
    end = time.monotonic() + timeout
    while True:
        status, headers, body = srv.http("GET", path)
        if status != 503 or time.monotonic() > end:
            return status, headers, body
        time.sleep(0.05)


def test_no_node_is_503_with_retry_after(gateway):
    srv = gateway()
    status, headers, _ = srv.http("GET", "/")
    assert status == 503 and headers.get("retry-after") == "1"


def test_request_reaches_node_and_uwsgi_packet(gateway):
    srv = gateway()
    seen = []

    def app(node, sid, env):
        seen.append((sid, env))
        hello(node, sid, env)
    srv.node(b"node1", app)
    assert get_ok(srv, "/p/a?x=1&y=2")[2] == b"hello from node1"
    s = socket.create_connection(("127.0.0.1", srv.port))
    myport = s.getsockname()[1]
    s.sendall(build_request("GET", "/v?q", {"X-Real_IP": "spoof", "X-A": "1",
                                            "Connection": "close"}))
    data = b""
    while True:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    assert parse_responses(data)[0].status == 200
    sid, env = seen[-1]
    assert len(sid) == 16
    assert env[b"REQUEST_METHOD"] == b"GET"
    assert env[b"PATH_INFO"] == b"/v" and env[b"QUERY_STRING"] == b"q"
    assert env[b"REMOTE_ADDR"] == b"127.0.0.1"
    assert env[b"REMOTE_PORT"] == str(myport).encode()    # not byte-swapped
    assert env[b"SERVER_PROTOCOL"] == b"HTTP/1.1"
    assert env[b"SERVER_NAME"] == b"127.0.0.1"        # the site's name
    assert env[b"SERVER_PORT"] == str(srv.port).encode()   # not "80"
    assert env[b"HTTP_X_A"] == b"1" and b"HTTP_HOST" in env
    assert not any(k.startswith(b"HTTP_X_REAL") for k in env)  # '_' dropped


def test_keepalive_same_sid_and_chunked_framing(gateway):
    srv = gateway()
    sids = []

    def app(node, sid, env):
        sids.append(sid)
        node.send(sid, b"headers",
                  b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for part in (b"one ", b"two"):
            node.send(sid, b"chunk", part)
        node.send(sid, b"chunk", b"")
    srv.node(b"node1", app)
    assert get_ok(srv)[0] == 200
    c = srv.connect()
    for _ in range(3):                 # framing survives keep-alive (10.3)
        r = c.request("GET", "/c")
        assert (r.status, r.body) == (200, b"one two")
    c.close()
    assert len(set(sids[1:])) == 1     # one session per connection


def test_http10_chunk_is_unframed(gateway):
    srv = gateway()

    def app(node, sid, env):
        node.send(sid, b"headers", b"HTTP/1.0 200 OK\r\n\r\n")
        node.send(sid, b"chunk", b"raw")
        node.send(sid, b"chunk", b"")
    srv.node(b"node1", app)
    assert get_ok(srv)[0] == 200
    data, closed = srv.raw(b"GET / HTTP/1.0\r\n\r\n")
    assert data.endswith(b"\r\n\r\nraw") and closed


def test_body_streamed_with_end_marker(gateway):
    srv = gateway()

    def app(node, sid, env):
        pass                           # answer when the body is complete
    node = srv.node(b"node1", app)
    srv.wait_log(r'node "node1" is available')
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
    s.sendall(b"POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked"
              b"\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
    assert wait_for(lambda: any(b == b"" for bs in node.bodies.values()
                                for b in bs))
    sid, parts = next((k, v) for k, v in node.bodies.items() if b"" in v)
    assert b"".join(parts) == b"hello world" and parts[-1] == b""
    node.send(sid, b"headers", b"HTTP/1.1 204 No Content\r\n\r\n")
    assert s.recv(100).startswith(b"HTTP/1.1 204")
    s.close()
    assert wait_for(lambda: b"end" in node.types(sid))   # client gone: end


def test_least_connections_between_two_nodes(gateway):
    srv = gateway("a b")
    pending = []

    def hold(node, sid, env):
        pending.append((node, sid))
    a = srv.node(b"a", hold)
    b = srv.node(b"b", hold)
    time.sleep(0.3)                    # both pong'ed
    conns = []
    for _ in range(4):
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
        s.sendall(build_request("GET", "/"))
        conns.append(s)
    assert wait_for(lambda: len(pending) == 4)
    by_node = [n.identity for n, _ in pending]
    assert by_node.count(b"a") == 2 and by_node.count(b"b") == 2
    for n, sid in pending:
        hello(n, sid, None)
    for s in conns:
        assert s.recv(4096).startswith(b"HTTP/1.1 200")
        s.close()


def test_zero_config_glob_node_and_refused_identity(gateway):
    srv = gateway("web-*")
    srv.node(b"db-1")                  # pongs, but no pattern admits it
    time.sleep(0.3)
    assert srv.http("GET", "/")[0] == 503
    srv.node(b"web-7")                 # joins with no config change
    assert get_ok(srv)[2] == b"hello from web-7"


def test_end_from_node_closes_connection(gateway):
    srv = gateway()

    def app(node, sid, env):
        hello(node, sid, env)
        node.send(sid, b"end", b"")
    srv.node(b"node1", app)
    assert get_ok(srv)[0] == 200
    data, closed = srv.raw(build_request("GET", "/"))
    assert parse_responses(data)[0].body == b"hello from node1" and closed


def test_invalid_head_is_502(gateway):
    srv = gateway()

    def app(node, sid, env):
        node.send(sid, b"headers", b"HTTP/1.1 OK\r\nbad\r\n\r\n")
    srv.node(b"node1", app)
    assert get_ok(srv)[0] == 502


def test_hostile_node_messages_are_dropped(gateway):
    srv = gateway("node1 evil")
    sids = []

    def app(node, sid, env):
        sids.append(sid)
        hello(node, sid, env)
    good = srv.node(b"node1", app)
    assert get_ok(srv)[0] == 200
    evil = srv.node(b"evil", None)
    sid = sids[-1]
    # (more than 3 frames, or a frame over MaxFrameSize, cost the node its
    # connection: test_plugin_zmq_hardening.py)
    evil.send(sid, b"headers", b"HTTP/1.1 200 OK\r\n\r\n")  # not its session
    evil.send(b"short", b"body", b"x")                    # sid not 16 bytes
    evil.send(sid, b"g:", b"x")                           # bad route
    time.sleep(0.3)
    for _ in range(5):
        assert srv.http("GET", "/")[2] in (b"hello from node1", b"hello from evil")
    assert srv.alive()
    assert "dropped a node message" in srv.error_log()


def test_node_started_before_the_server(gateway):
    """The Python helper re-announces itself (pong) while a front end is
    silent, so a glob-admitted node that started first, or outlived a
    restart of the server, is found without a restart of its own."""
    import os
    import sys
    sys.path.insert(0, os.path.join(os.environ["TREMOLO_SRC"], "plugins",
                                    "zmq", "nodes", "python"))
    from tremolo_node import Handler, Node as PyNode

    class Hi(Handler):
        def on_request(self, sid, req):
            self.node.headers(sid, "200 OK", [("Content-Length", "2")])
            self.node.body(sid, b"hi")

    port = free_port()
    node = PyNode("late-1", ["tcp://127.0.0.1:%d" % port])
    t = threading.Thread(target=node.run, args=(Hi(),),
                         kwargs={"install_signals": False}, daemon=True)
    t.start()
    try:
        time.sleep(0.3)                  # its first pong is lost
        srv = gateway("late-*", port=port)
        assert get_ok(srv)[2] == b"hi"
    finally:
        node.stop()
        t.join(2)
        node.close(linger=0)


def test_node_dying_mid_request_is_502_then_failover(gateway):
    srv = gateway("a b")
    a = srv.node(b"a", lambda node, sid, env: None)     # takes, never answers
    srv.wait_log(r'node "a" is available')
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    s.sendall(build_request("GET", "/"))
    assert wait_for(lambda: b"uwsgi" in a.types())
    a.pong = False                     # it stops answering pings: dead
    srv.node(b"b")                     # a live one joins
    t0 = time.monotonic()
    data = s.recv(4096)
    assert data.startswith(b"HTTP/1.1 502"), data
    # OFF after 3 x PingFreq (500 ms) of silence: seconds, not a hang.
    # (PingFreq is not smaller because a test node stalled by a loaded CI
    # machine would be failed over for real.)
    assert time.monotonic() - t0 < 6
    s.close()
    srv.wait_log(r'node "a" is OFF')
    assert get_ok(srv)[2] == b"hello from b"            # new work goes to b


def test_node_timeout_is_504(gateway):
    srv = gateway(zmq="    NodeTimeout 300ms\n")
    srv.node(b"node1", lambda node, sid, env: None)     # alive, never answers
    srv.wait_log(r'node "node1" is available')
    t0 = time.monotonic()
    status = srv.http("GET", "/")[0]
    assert status == 504 and 0.25 < time.monotonic() - t0 < 3


def _held_sessions(srv, node_log, count):
    """Opens `count` client connections whose requests the node holds."""
    conns = []
    for _ in range(count):
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
        s.sendall(build_request("GET", "/"))
        conns.append(s)
    assert wait_for(lambda: len(node_log) == count)
    return conns


def _msgs(node, since):
    with node.lock:
        return [(s, b) for s, t, b in node.log[since:] if t == b"msg"]


def test_groups_msg_echo_rule_sid_route_and_leave(gateway):
    srv = gateway()
    sids = []
    node = srv.node(b"node1", lambda n, sid, env: sids.append(sid))
    srv.wait_log(r'node "node1" is available')
    conns = _held_sessions(srv, sids, 3)
    a, b, c = sids
    node.send(a, b"noecho", b"")           # a's future joins: no echo
    for sid in sids:
        node.send(sid, b"join", b"room")
    mark = len(node.log)
    node.send(a, b"room:msg", b"hello room")
    assert wait_for(lambda: len(_msgs(node, mark)) == 2)
    time.sleep(0.1)
    got = _msgs(node, mark)
    assert sorted(got) == sorted([(b, b"hello room"), (c, b"hello room")])

    mark = len(node.log)
    node.send(b, b"room:msg", b"from b")   # b echoes (default on)
    assert wait_for(lambda: len(_msgs(node, mark)) == 3)

    mark = len(node.log)
    node.send(a, b"@" + c + b":msg", b"direct")   # split at the LAST colon
    assert wait_for(lambda: _msgs(node, mark) == [(c, b"direct")])

    node.send(c, b"leave", b"room")
    mark = len(node.log)
    node.send(a, b"room:msg", b"after leave")
    assert wait_for(lambda: _msgs(node, mark) == [(b, b"after leave")])
    time.sleep(0.1)
    assert _msgs(node, mark) == [(b, b"after leave")]

    mark = len(node.log)
    node.send(a, b"nosuchroom:msg", b"x")  # no group: dropped whole
    node.send(a, b"msg", b"x")             # no route: ignored
    time.sleep(0.2)
    assert _msgs(node, mark) == []
    for s in conns:
        s.close()


def test_invalid_join_destroys_the_session(gateway):
    srv = gateway()
    sids = []
    node = srv.node(b"node1", lambda n, sid, env: sids.append(sid))
    srv.wait_log(r'node "node1" is available')
    (conn,) = _held_sessions(srv, sids, 1)
    node.send(sids[0], b"join", b"@bad")
    conn.settimeout(3)
    data = b""
    while True:
        chunk = conn.recv(4096)
        if not chunk:
            break                              # closed
        data += chunk
    assert data.startswith(b"HTTP/1.1 502")    # never an empty 200
    assert wait_for(lambda: b"end" in node.types(sids[0]))


WSGI_APP = '''
def app(environ, start_response):
    body = environ["wsgi.input"].read()
    out = b"%s %s %d:%s" % (environ["REQUEST_METHOD"].encode(),
                            environ["PATH_INFO"].encode(), len(body), body)
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(out)))])
    return [out]
'''


def test_wsgi_app_through_tremolo(gateway, tmp_path):
    import os
    import subprocess
    srv = gateway("wsgi-*")
    (tmp_path / "wsgiapp.py").write_text(WSGI_APP)
    helper = os.path.join(os.environ["TREMOLO_SRC"], "plugins", "zmq",
                          "nodes", "python", "tremolo_wsgi.py")
    procs = [subprocess.Popen(["/usr/bin/python3", helper, "wsgiapp:" + app,
                               "--id", "wsgi-" + app, "--connect",
                               srv.endpoint], cwd=str(tmp_path))
             for app in ("app",)]
    try:
        srv.wait_log(r'node "wsgi-app" is available')
        status, _, body = srv.http("POST", "/form", body=b"a=1&b=2")
        assert (status, body) == (200, b"POST /form 7:a=1&b=2")
        c = srv.connect()
        for i in range(3):                   # keep-alive through the node
            r = c.request("GET", "/k%d" % i)
            assert r.body == b"GET /k%d 0:" % i
        c.close()
    finally:
        for p in procs:
            p.terminate()
            p.wait(5)


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        return int(next(l for l in f if l.startswith("VmRSS")).split()[1])


def test_slow_client_bounded_by_write_queue(gateway):
    """A node streams 100 MB to a client that reads nothing: the session is
    closed at WriteQueueLimit, the node gets `end`, memory stays bounded."""
    srv = gateway(server="WriteQueueLimit 1M", env=memory_env())
    piece = b"x" * (512 * 1024)

    def flood(node, sid, env):
        if env[b"PATH_INFO"] != b"/flood":
            return hello(node, sid, env)
        node.send(sid, b"headers",
                  b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n"
                  % (200 * len(piece)))
        for _ in range(200):
            node.send(sid, b"body", piece)
    node = srv.node(b"node1", flood)
    srv.wait_log(r'node "node1" is available')
    assert srv.http("GET", "/")[0] == 200       # warm: pools, buffers
    base = rss_kb(srv.pid)
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", srv.port))
    s.sendall(build_request("GET", "/flood"))   # and never read
    srv.wait_log(r"over WriteQueueLimit", timeout=10)
    assert wait_for(lambda: b"end" in node.types(), 10)
    grown = rss_kb(srv.pid) - base
    assert grown < 48 * 1024, grown             # not the 100 MB sent
    s.close()
    # still serving; the node, busy pushing 100 MB, may have missed pings
    # and been failed over meanwhile (502): it is back at its next pong
    assert wait_for(lambda: srv.http("GET", "/")[0] == 200, 10)


def test_retry_goes_to_another_node_with_the_body(gateway):
    srv = gateway("a b")

    def refuse(node, sid, env):
        node.send(sid, b"retry", b"")

    def echo_body(node, sid, env):
        def later():
            assert wait_for(lambda: b"" in node.bodies.get(sid, []))
            body = b"".join(node.bodies[sid])
            out = b"%s got %s" % (node.identity, body)
            node.send(sid, b"headers",
                      b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(out))
            node.send(sid, b"body", out)
        threading.Thread(target=later, daemon=True).start()
    a = srv.node(b"a", refuse)
    srv.wait_log(r'node "a" is available')
    srv.node(b"b", echo_body)
    srv.wait_log(r'node "b" is available')
    for _ in range(3):
        status, _, body = srv.http("POST", "/", body=b"payload")
        assert (status, body) == (200, b"b got payload")
    assert a.types().count(b"uwsgi") >= 1     # a was asked first (tie) ...
    assert a.types().count(b"msg") == 0


def test_retry_with_nobody_else_is_502(gateway):
    srv = gateway()
    srv.node(b"node1", lambda node, sid, env: node.send(sid, b"retry", b""))
    srv.wait_log(r'node "node1" is available')
    assert srv.http("GET", "/")[0] == 502


def test_unhandled_type_logged_once_per_node(gateway):
    srv = gateway()
    sids = []
    node = srv.node(b"node1", lambda n, sid, env: sids.append(sid))
    srv.wait_log(r'node "node1" is available')
    (conn,) = _held_sessions(srv, sids, 1)
    for _ in range(3):
        node.send(sids[0], b"pipe", b"x")
        node.send(sids[0], b"nosuchtype", b"x")
    hello(node, sids[0], None)               # the session still works
    conn.settimeout(5)
    assert conn.recv(4096).startswith(b"HTTP/1.1 200")
    log = srv.error_log()
    assert log.count('sent "pipe", which no loaded plugin handles') == 1
    assert log.count('sent "nosuchtype", which no loaded plugin handles') == 1
    conn.close()


def test_curve_allows_listed_node_keys_only(gateway, tmp_path):
    spub, ssec = zmq.curve_keypair()
    apub, asec = zmq.curve_keypair()
    bpub, bsec = zmq.curve_keypair()
    keys = tmp_path / "nodes.keys"
    keys.write_text("# allowed nodes\n%s  web-ok\n" % apub.decode())
    srv = gateway("web-*", zmq="    Curve on\n    CurveSecretKey %s\n"
                               "    CurveKeys %s\n" % (ssec.decode(), keys))
    srv.node(b"web-bad", curve=(spub, bpub, bsec))    # key not listed
    srv.node(b"web-plain")                            # no CURVE at all
    srv.wait_log(r"refused a node whose CURVE key is not in CurveKeys")
    time.sleep(0.5)
    assert srv.http("GET", "/")[0] == 503
    srv.node(b"web-ok", curve=(spub, apub, asec))
    assert get_ok(srv)[2] == b"hello from web-ok"
    assert "web-bad\" is available" not in srv.error_log()
    assert "web-plain\" is available" not in srv.error_log()


def node_conns(srv):
    """The server's established connections from nodes (ss -tnpH)."""
    port = srv.endpoint.rsplit(":", 1)[1]
    out = subprocess.run(["ss", "-tnpH", "state", "established"],
                         stdout=subprocess.PIPE, check=True,
                         timeout=10).stdout.decode()
    return sum(1 for line in out.splitlines()
               if len(line.split()) >= 3 and
               line.split()[2].rsplit(":", 1)[-1] == port and
               "pid=%d," % srv.pid in line)


def curve_conf(secret, keys):
    return "    Curve on\n    CurveSecretKey %s\n    CurveKeys %s\n" % (
        secret.decode(), keys)


def get_host(srv, host, timeout=5):
    """get_ok for another site (by Host)."""
    end = time.monotonic() + timeout
    while True:
        status, headers, body = srv.http("GET", "/", headers={"Host": host})
        if status != 503 or time.monotonic() > end:
            return status, headers, body
        time.sleep(0.05)


def test_curve_key_binds_node_identities(gateway, tmp_path):
    """CurveKeys says which identities each key may use: key A `web-*`,
    key B `admin-1`. A as web-1 serves. A as admin-1 connects (libzmq
    accepts the key, the gateway pings the name) but every message it
    sends is dropped, counted and logged: admin-1 never becomes available
    and the admin site answers 503. Once it is gone, B as admin-1
    serves."""
    spub, ssec = zmq.curve_keypair()
    apub, asec = zmq.curve_keypair()
    bpub, bsec = zmq.curve_keypair()
    keys = tmp_path / "nodes.keys"
    keys.write_text("# the web tier\n%s  web-*   # any web node\n"
                    "%s\tadmin-1\n" % (apub.decode(), bpub.decode()))
    srv = gateway(zmq=curve_conf(ssec, keys), sites={
        "web": zmq_site("web-*"),
        "admin": zmq_site("admin-1", names="admin.test", default=False)})
    srv.node(b"web-1", curve=(spub, apub, asec))
    assert get_ok(srv)[2] == b"hello from web-1"
    fake = srv.node(b"admin-1", curve=(spub, apub, asec))
    assert wait_for(lambda: b"ping" in fake.types(), 5), \
        "the node with key A never got the gateway's ping for admin-1"
    refused = "dropped a node message (identity not allowed for its CURVE key)"
    assert wait_for(lambda: refused in srv.error_log() or
                    'node "admin-1" is available' in srv.error_log())
    status, _, body = srv.http("GET", "/", headers={"Host": "admin.test"})
    assert status == 503, \
        "key A (web-*) served the admin site as admin-1: %d %r" % (
            status, body)
    assert refused in srv.error_log()
    assert b"uwsgi" not in fake.types()
    assert 'node "admin-1" is available' not in srv.error_log()
    assert "no identity list" not in srv.error_log()
    fake.close()
    # A ROUTER keeps an identity for the connection that has it, and never
    # reads a second peer claiming it (no ZMQ_ROUTER_HANDOVER: a key may
    # not take over a name another key holds). So B starts once the server
    # has closed A's connection; starting sooner left B unread (1 in 8).
    assert wait_for(lambda: node_conns(srv) == 1), \
        "the server kept key A's admin-1 connection"
    srv.node(b"admin-1", curve=(spub, bpub, bsec))
    status, _, body = get_host(srv, "admin.test", timeout=10)
    assert (status, body) == (200, b"hello from admin-1"), (status, body)
    assert get_ok(srv)[2] == b"hello from web-1"


def test_curve_keys_without_identities_and_file_errors(gateway, tremolo,
                                                       tmp_path):
    """Lines from before identity lists (a key alone, or with a `#`
    comment) still admit their node under any name, and startup says so
    once. A bad line, or a key listed twice, stops startup with
    file:line: reason."""
    spub, ssec = zmq.curve_keypair()
    pairs = [zmq.curve_keypair() for _ in range(3)]
    keys = tmp_path / "nodes.keys"
    keys.write_text("%s *\n%s\n%s   # the old way\n" % tuple(
        p[0].decode() for p in pairs))
    srv = gateway("node-*", zmq=curve_conf(ssec, keys))
    assert "nodes.keys:2: 2 key(s) with no identity list" in srv.error_log()
    srv.node(b"node-a", curve=(spub,) + pairs[1])
    assert get_ok(srv)[2] == b"hello from node-a"
    srv.node(b"node-b", curve=(spub,) + pairs[2])
    srv.node(b"node-c", curve=(spub,) + pairs[0])
    for n in ("node-b", "node-c"):
        assert wait_for(lambda: 'node "%s" is available' % n in
                        srv.error_log()), n
    for text, why in [
            ("%s\nnot-a-key web-1\n", ":2: expected a 40-character Z85 "
                                       "public key"),
            ("%s\n%s admin-1\n", ":2: this key is already listed at line 1"),
            ("%s web-\x01\n", ":1: control character 0x01")]:
        bad = tmp_path / "bad.keys"
        bad.write_text(text % ((pairs[0][0].decode(),) * text.count("%s")))
        t = tremolo(plugins=("liana", "zmq"), start=False, plugin_confs={
            "zmq": "[ZMQ]\n    Bind tcp://127.0.0.1:%d\n%s" % (
                free_port(), curve_conf(ssec, bad))})
        rc, out = start_fails(t)
        assert rc != 0 and "bad.keys" + why in out, (text, out)


def test_curve_config_errors(check_config, tmp_path):
    rc, out = check_config(plugins=("liana", "zmq"), plugin_confs={
        "zmq": "[ZMQ]\n    Bind tcp://127.0.0.1:5999\n    Curve on\n"})
    assert rc == 1 and "Curve on needs CurveSecretKey" in out, out


def test_reload_hands_the_endpoints_over(gateway):
    srv = gateway("node1 web-*")
    srv.node(b"node1")
    srv.node(b"web-2")
    assert get_ok(srv)[0] == 200
    for _ in range(2):                      # twice: the handover repeats
        srv.reload()
        assert "reload failed" not in srv.error_log()
        assert get_ok(srv, timeout=8)[0] == 200   # nodes reconnect by themselves


MSGPROBE = os.path.join(os.environ["TREMOLO_BUILD"], "tests", "plugins",
                        "tremolo-msgprobe.so")


def _streams(srv, node_sids, count):
    """`count` clients whose node answered a chunked head and keeps the
    response open; returns {sid: socket} (the head says X-Sid)."""
    conns = _held_sessions(srv, node_sids, count)
    by_sid = {}
    for s in conns:
        head = b""
        while b"\r\n\r\n" not in head:
            head += s.recv(4096)
        sid = bytes.fromhex(head.split(b"X-Sid: ")[1][:32].decode())
        by_sid[sid] = s
    return by_sid


def _stream_app(node, sid, env):
    node.send(sid, b"headers", b"HTTP/1.1 200 OK\r\nX-Sid: %s\r\n"
              b"Transfer-Encoding: chunked\r\n\r\n" % sid.hex().encode())


def _recv_exactly(s, want, timeout=3):
    s.settimeout(timeout)
    data = b""
    while len(data) < len(want):
        data += s.recv(4096)
    return data


def test_plugin_message_types_direct_and_routed(gateway):
    """A type a plugin registers (here the msgprobe test plugin claims
    `websocket`) reaches that plugin on the session's connection, also
    when routed to a group (with the echo rule) or to one `@sid`."""
    srv = gateway(extra_plugins=(MSGPROBE,))
    sids = []
    node = srv.node(b"node1", lambda n, sid, env: (sids.append(sid),
                                                   _stream_app(n, sid, env)))
    srv.wait_log(r'node "node1" is available')
    conns = _streams(srv, sids, 3)
    a, b, c = sids
    node.send(a, b"websocket", b"one")
    assert _recv_exactly(conns[a], b"[websocket:one]") == b"[websocket:one]"
    node.send(c, b"noecho", b"")
    for sid in sids:
        node.send(sid, b"join", b"room")
    node.send(c, b"room:websocket", b"all")        # c has echo off
    for sid in (a, b):
        assert _recv_exactly(conns[sid], b"[websocket:all]") == \
            b"[websocket:all]"
    node.send(a, b"@" + c + b":websocket", b"direct")
    assert _recv_exactly(conns[c], b"[websocket:direct]") == \
        b"[websocket:direct]"                      # c got only this one
    for sid in (a, b):                             # and nobody else did
        conns[sid].settimeout(0.3)
        with pytest.raises(socket.timeout):
            conns[sid].recv(1)
    for s in conns.values():
        s.close()


def test_routed_chunk_reaches_streaming_members(gateway):
    srv = gateway()
    sids = []
    node = srv.node(b"node1", lambda n, sid, env: (sids.append(sid),
                                                   _stream_app(n, sid, env)))
    srv.wait_log(r'node "node1" is available')
    conns = _streams(srv, sids, 2)
    a, b = sids
    for sid in sids:
        node.send(sid, b"join", b"feed")
    node.send(a, b"feed:chunk", b"news")           # a echoes (default)
    for sid in sids:
        assert _recv_exactly(conns[sid], b"4\r\nnews\r\n") == \
            b"4\r\nnews\r\n"
    node.send(b, b"@" + a + b":chunk", b"hi")
    assert _recv_exactly(conns[a], b"2\r\nhi\r\n") == b"2\r\nhi\r\n"
    for s in conns.values():
        s.close()


def _path_app(node, sid, env):
    body = env[b"PATH_INFO"]
    node.send(sid, b"headers",
              b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body))
    node.send(sid, b"body", body)


def test_pipelined_requests_answered_in_order(gateway):
    srv = gateway()
    node = srv.node(b"node1", _path_app)
    srv.wait_log(r'node "node1" is available')
    paths = ["/p%d" % i for i in range(5)]
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
    s.sendall(b"".join(build_request("GET", p) for p in paths))
    data = b""
    while len(parse_responses(data)) < len(paths):
        chunk = s.recv(65536)
        assert chunk, "closed before every pipelined response came"
        data += chunk
    got = [r.body.decode() for r in parse_responses(data)]
    assert got == paths
    sids = {sid for sid, t, _ in node.log if t == b"uwsgi"}
    assert len(sids) == 1                      # one connection, one session
    s.close()


def test_large_streamed_response_is_intact(gateway):
    import hashlib
    srv = gateway()
    piece = os.urandom(64 * 1024)
    count = 320                                # 20 MiB

    def big(node, sid, env):
        node.send(sid, b"headers", b"HTTP/1.1 200 OK\r\nContent-Length: %d"
                  b"\r\n\r\n" % (count * len(piece)))
        for i in range(count):
            node.send(sid, b"body", bytes([i & 0xff]) + piece[1:])
    srv.node(b"node1", big)
    srv.wait_log(r'node "node1" is available')
    status, _, body = srv.http("GET", "/big", timeout=30)
    want = hashlib.sha256(b"".join(bytes([i & 0xff]) + piece[1:]
                                   for i in range(count))).hexdigest()
    assert status == 200 and len(body) == count * len(piece)
    assert hashlib.sha256(body).hexdigest() == want
