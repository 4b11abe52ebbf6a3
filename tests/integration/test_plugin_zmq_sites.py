"""The zmq gateway's per-site settings and the features around them, against
real pyzmq nodes: a site's own Bind (its nodes live on its own ROUTER),
per-site and global Sessions caps (503 + Retry-After, released on close),
per-site NodeTimeout / MaxHops / WriteQueueLimit / PingFreq, StatsFreq,
request-body backpressure toward a node that does not read (held in order,
bounded memory), routed `chunk` (`group:chunk`, `@sid:chunk`, spec 3) and a
keep-alive connection switching Host between sites (spec 10.14).

Sites are picked by the Host header; every site file is [HOST] + [ZMQ]."""

import hashlib
import os
import re
import select
import socket
import struct
import threading
import time

import pytest
import zmq

from test_plugin_zmq import Node, hello, uwsgi_vars, wait_for, rss_kb
from tremolo_harness import (memory_bounded, memory_env, build_request,
                              parse_one)

A, B = "a.test", "b.test"
CHUNKED_HEAD = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"


# ---- helpers ----------------------------------------------------------------

def site(names, nodes=(), zmq_lines=(), default=False):
    """A site file: [HOST] with Handler zmq, then [ZMQ] with its nodes."""
    text = "[HOST]\n    ServerName %s\n" % names
    if default:
        text += "    Default on\n"
    text += "    Handler zmq\n[ZMQ]\n"
    text += "".join("    Node %s\n" % n for n in nodes)
    text += "".join("    %s\n" % ln for ln in zmq_lines)
    return text


class SiteNode(Node):
    """Node with look-ups by message type."""

    def sids(self, typ=b"uwsgi"):
        with self.lock:
            return [s for s, t, _ in self.log if t == typ]

    def got(self, sid, typ):
        with self.lock:
            return any(s == sid and t == typ for s, t, _ in self.log)


def tagged(tag):
    """An app answering `hello` with a body naming `tag` (two nodes with one
    identity on two endpoints can be told apart)."""
    def app(node, sid, env):
        body = tag.encode()
        node.send(sid, b"headers",
                  b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body))
        node.send(sid, b"body", body)
    return app


def holder(seen):
    """Records (sid, env); holds requests for /hold*, answers the others."""
    def app(node, sid, env):
        seen.append((sid, env))
        if not env[b"PATH_INFO"].startswith(b"/hold"):
            hello(node, sid, env)
    return app


@pytest.fixture
def zsites(tremolo):
    """start(sites, zmq_conf="", bind=True, server="") -> srv, with
    srv.endpoint(name="port1") and srv.node(endpoint, identity, app, pong).
    The global Bind is tcp://127.0.0.1:{port1}; sites use {port2}... for
    their own."""
    nodes = []

    def start(sites, zmq_conf="", bind=True, server="", workers=1, env=None):
        conf = "[ZMQ]\n"
        if bind:
            conf += "    Bind tcp://127.0.0.1:{port1}\n"
        if "PingFreq" not in zmq_conf:
            conf += "    PingFreq 1s\n"
        conf += "".join("    %s\n" % ln.strip()
                        for ln in zmq_conf.splitlines() if ln.strip())
        srv = tremolo(plugins=("liana", "zmq"), sites=sites,
                      plugin_confs={"zmq": conf}, server=server,
                      workers=workers, env=env)

        def endpoint(name="port1"):
            return "tcp://127.0.0.1:%d" % srv.ports[name]

        def node(endpoint, identity, app=hello, pong=True):
            n = SiteNode(endpoint, identity, app, pong)
            nodes.append(n)
            return n
        srv.endpoint = endpoint
        srv.node = node
        return srv

    yield start
    for n in nodes:
        n.close()


def get(srv, host, path="/", method="GET", body=None):
    return srv.http(method, path, headers={"Host": host}, body=body)


def get_ok(srv, host, path="/", timeout=5):
    """Nodes become available at their first pong: retry 503 briefly."""
    end = time.monotonic() + timeout
    while True:
        r = get(srv, host, path)
        if r[0] != 503 or time.monotonic() > end:
            return r
        time.sleep(0.05)


class Client:
    """A raw client connection reading exact byte counts."""

    def __init__(self, srv, timeout=5):
        self.sock = socket.create_connection(("127.0.0.1", srv.port),
                                             timeout=timeout)
        self.buf = b""
        self.eof = False

    def send(self, host, path="/", headers=None):
        h = {"Host": host}
        h.update(headers or {})
        self.sock.sendall(build_request("GET", path, h))

    def _fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        r, _, _ = select.select([self.sock], [], [], left)
        if not r:
            return False
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            data = b""
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def read_until(self, marker, timeout=5):
        deadline = time.monotonic() + timeout
        while marker not in self.buf:
            if not self._fill(deadline):
                raise AssertionError("no %r within %s s (eof=%s); have %r"
                                     % (marker, timeout, self.eof,
                                        self.buf[:300]))
        i = self.buf.index(marker) + len(marker)
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def read_n(self, n, timeout=5):
        deadline = time.monotonic() + timeout
        while len(self.buf) < n:
            if not self._fill(deadline):
                raise AssertionError("wanted %d bytes within %s s (eof=%s); "
                                     "have %r" % (n, timeout, self.eof,
                                                  self.buf[:300]))
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_response(self, timeout=5):
        deadline = time.monotonic() + timeout
        while True:
            r, rest = parse_one(self.buf, eof=self.eof)
            if r is not None:
                self.buf = rest
                return r
            if not self._fill(deadline):
                raise AssertionError("no whole response within %s s (eof=%s);"
                                     " have %r" % (timeout, self.eof,
                                                   self.buf[:300]))

    def pending(self, timeout=0.0):
        """Bytes that arrived (or arrive within `timeout`) unread."""
        self._fill(time.monotonic() + timeout)
        while self._fill(time.monotonic()):
            pass
        return self.buf

    def close(self):
        self.sock.close()

    def reset(self):
        """Close with an RST (SO_LINGER 0) rather than a FIN."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                             struct.pack("ii", 1, 0))
        self.sock.close()


def open_held(srv, node, host, path="/hold"):
    """A client whose request `node` received (and holds): (Client, sid)."""
    before = len(node.sids())
    c = Client(srv)
    c.send(host, path)
    assert wait_for(lambda: len(node.sids()) == before + 1), \
        "the node never got the request for %s" % host
    return c, node.sids()[-1]


def available(srv, *names, timeout=5):
    for name in names:
        srv.wait_log(r'node "%s" is available' % re.escape(name), timeout)


# ---- 1. per-site settings -----------------------------------------------------

def test_site_bind_is_its_nodes_own_endpoint(zsites):
    """Site B has its own Bind: its node list is looked up on that ROUTER
    only. A node named `b` on the global endpoint gets none of B's traffic;
    the `b` on B's endpoint serves it. Site A (no Bind) uses the global one."""
    srv = zsites({
        "a": site(A, ["a"], default=True),
        "b": site(B, ["b"], ["Bind tcp://127.0.0.1:{port2}"]),
    }, zmq_conf="StatsFreq 200ms")
    assert srv.ports["port2"] != srv.ports["port1"]
    impostor = srv.node(srv.endpoint(), b"b", tagged("b@global"))
    srv.node(srv.endpoint(), b"a", tagged("a@global"))
    wrong_a = srv.node(srv.endpoint("port2"), b"a", tagged("a@B-endpoint"))
    available(srv, "a")
    assert get_ok(srv, A)[2] == b"a@global"
    # both misplaced nodes' pongs were refused (they are never pinged)
    srv.wait_log(r"zmq: stats: .* 2 node messages dropped", timeout=3)
    status, headers, _ = get(srv, B)
    assert status == 503 and headers.get("retry-after") == "1", \
        "a node on the global endpoint was used for site B (%d)" % status

    srv.node(srv.endpoint("port2"), b"b", tagged("b@own"))
    available(srv, "b")
    for _ in range(4):
        assert get(srv, B)[:3:2] == (200, b"b@own")
        assert get(srv, A)[:3:2] == (200, b"a@global")
    assert impostor.sids() == [], "B traffic reached b on the global endpoint"
    assert wrong_a.sids() == [], "A traffic reached a on B's endpoint"
    assert 'node "b" is available' in srv.error_log()   # once: the own one
    assert srv.error_log().count('node "b" is available') == 1


def test_site_nodes_without_any_bind_is_a_config_error(check_config):
    rc, out = check_config(plugins=("liana", "zmq"),
                           sites={"b": site(B, ["web-*"], default=True)},
                           plugin_confs={"zmq": "[ZMQ]\n    PingFreq 1s\n"})
    assert rc != 0, out
    assert re.search(r"\bNode\b", out) and B in out, out

    # B has its own Bind, A lists nodes and there is no global Bind: A's
    # nodes have nowhere to connect (spec 1.4: BlastBeat crashed here)
    rc, out = check_config(plugins=("liana", "zmq"), sites={
        "a": site(A, ["a"], default=True),
        "b": site(B, ["b"], ["Bind tcp://127.0.0.1:{port2}"])},
        plugin_confs={"zmq": "[ZMQ]\n    PingFreq 1s\n"})
    assert rc != 0, out
    assert re.search(r"\bNode\b", out) and A in out, out
    assert B not in out.replace(A, ""), out      # B's config is fine

    # with a Bind in B only and no nodes in A, it is a valid config
    rc, out = check_config(plugins=("liana", "zmq"), sites={
        "a": site(A, [], default=True),
        "b": site(B, ["b"], ["Bind tcp://127.0.0.1:{port2}"])},
        plugin_confs={"zmq": "[ZMQ]\n    PingFreq 1s\n"})
    assert rc == 0, out


def test_site_sessions_cap_is_503_and_released_on_close(zsites):
    srv = zsites({
        "a": site(A, ["n"], default=True),
        "b": site(B, ["n"], ["Sessions 2"]),
    })
    seen = []
    node = srv.node(srv.endpoint(), b"n", holder(seen))
    available(srv, "n")
    c1, sid1 = open_held(srv, node, B)
    c2, sid2 = open_held(srv, node, B)
    requests = len(node.sids())
    status, headers, _ = get(srv, B)
    assert status == 503, status
    assert headers.get("retry-after") == "1", headers
    assert len(node.sids()) == requests, "the refused request reached the node"
    assert get(srv, A)[0] == 200                # the cap is B's only
    assert "Sessions (2) reached" in srv.error_log()

    # a client that resets its connection while the node holds its request
    c1.reset()
    assert wait_for(lambda: node.got(sid1, b"end")), "no end after a reset"
    status, _, body = get(srv, B)               # the place was given back
    assert (status, body) == (200, b"hello from n")
    assert get(srv, B)[0] == 200                # no leak per request
    c3, sid3 = open_held(srv, node, B)          # c2 + c3: full again
    assert get(srv, B)[0] == 503

    # a session whose response is done, closed by its (idle) client
    hello(node, sid3, None)
    assert c3.read_response().status == 200
    c3.close()
    assert wait_for(lambda: node.got(sid3, b"end")), "no end after close"
    assert get(srv, B)[0] == 200
    c2.reset()


def test_client_gone_while_waiting_frees_its_session(zsites):
    """A client that closes (FIN) while the node still holds its request:
    the node hears `end` and the Sessions place is free again, without
    waiting for NodeTimeout (60s here)."""
    srv = zsites({"b": site(B, ["n"], ["Sessions 1"], default=True)},
                 zmq_conf="StatsFreq 500ms")
    seen = []
    node = srv.node(srv.endpoint(), b"n", holder(seen))
    available(srv, "n")
    c1, sid1 = open_held(srv, node, B)
    assert get(srv, B)[0] == 503
    c1.close()
    assert wait_for(lambda: node.got(sid1, b"end"), 5), \
        "the node was not told the client left (no `end` within 5 s)"
    assert get(srv, B)[0] == 200, "the closed client still holds the place"


def test_site_node_timeout_overrides_the_global(zsites):
    """A: NodeTimeout 300ms -> 504 quickly; B: NodeTimeout 2s still waits
    then, and gets its 504 later; the global is 60s."""
    srv = zsites({
        "a": site(A, ["n"], ["NodeTimeout 300ms"], default=True),
        "b": site(B, ["n"], ["NodeTimeout 2s"]),
    }, zmq_conf="NodeTimeout 60s")
    node = srv.node(srv.endpoint(), b"n", lambda n, sid, env: None)
    available(srv, "n")
    t0 = time.monotonic()
    cb, _ = open_held(srv, node, B, "/")
    status = get(srv, A)[0]
    ta = time.monotonic() - t0
    assert status == 504 and 0.25 < ta < 1.8, (status, ta)
    assert cb.pending() == b"", "site B's request ended with site A's timeout"
    r = cb.read_response(timeout=8)
    tb = time.monotonic() - t0
    assert r.status == 504 and 1.8 < tb < 5, (r.status, tb)
    cb.close()


def test_site_max_hops_overrides_the_global_retry(zsites):
    """x asks for `retry` every time, y answers. A: MaxHops 0 -> 502 at the
    first retry; B inherits the global 10 -> y answers."""
    srv = zsites({
        "a": site(A, ["x", "y"], ["MaxHops 0"], default=True),
        "b": site(B, ["x", "y"]),
    })
    x = srv.node(srv.endpoint(), b"x",
                 lambda n, sid, env: n.send(sid, b"retry", b""))
    available(srv, "x")
    srv.node(srv.endpoint(), b"y", tagged("y"))
    available(srv, "y")
    for _ in range(2):
        asked = len(x.sids())
        assert get(srv, B)[:3:2] == (200, b"y")
        assert len(x.sids()) == asked + 1       # x (first listed) was asked
        asked = len(x.sids())
        assert get(srv, A)[0] == 502
        assert len(x.sids()) == asked + 1


def test_site_write_queue_limit_overrides_the_server(zsites):
    """[SERVER] WriteQueueLimit is 8M (default). Site A lowers it to 256K,
    site B raises it to 64M: 24 MB for a client of B that reads nothing
    until everything was queued arrive whole; 16 MB for a client of A that
    does not read close it (and the node gets `end`)."""
    srv = zsites({
        "a": site(A, ["n"], ["WriteQueueLimit 256K"], default=True),
        "b": site(B, ["n"], ["WriteQueueLimit 64M"]),
    }, server="SendTimeout 60s")
    piece = bytes(range(256)) * 1024            # 256 KiB
    sizes = {b"/a": 64, b"/b": 96}              # pieces: 16 MB, 24 MB

    def flood(node, sid, env):
        n = sizes.get(env[b"PATH_INFO"])
        if n is None:
            return hello(node, sid, env)
        node.send(sid, b"headers", b"HTTP/1.1 200 OK\r\nContent-Length: %d"
                  b"\r\n\r\n" % (n * len(piece)))
        for _ in range(n):
            node.send(sid, b"body", piece)
    node = srv.node(srv.endpoint(), b"n", flood)
    available(srv, "n")

    def slow_client():
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.settimeout(30)
        s.connect(("127.0.0.1", srv.port))
        return s
    sb = slow_client()
    sb.sendall(build_request("GET", "/b", {"Host": B}))   # reads later
    assert wait_for(lambda: len(node.sids()) == 1)
    sa = slow_client()
    sa.sendall(build_request("GET", "/a", {"Host": A}))   # never reads
    # one worker, messages in order: B's 24 MB were queued before A's flood
    srv.wait_log(r"over WriteQueueLimit", timeout=15)
    sid_a = node.sids()[1]
    assert wait_for(lambda: node.got(sid_a, b"end"), 10)
    assert srv.error_log().count("over WriteQueueLimit") == 1, \
        "B's client was closed at a limit below its site's 64M"
    sb.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)  # read fast
    data = b""
    while True:
        try:
            chunk = sb.recv(1 << 20)
        except socket.timeout:
            break
        if not chunk:
            break
        data += chunk
        r, _ = parse_one(data)
        if r is not None:
            break
    r, _ = parse_one(data)
    assert r is not None, "B's response was cut at %d bytes" % len(data)
    assert r.status == 200 and r.body == piece * 96
    sa.close()
    sb.close()


def test_site_ping_freq_fails_a_silent_node_fast(zsites):
    """Global PingFreq 3s (OFF after 9 s of silence); site A's nodes are
    pinged every 300ms, so a silent `a` is OFF within about a second while
    the equally silent `b` (site B: global period) is not."""
    srv = zsites({
        "a": site(A, ["a"], ["PingFreq 300ms"], default=True),
        "b": site(B, ["b"]),
    }, zmq_conf="PingFreq 3s")
    a = srv.node(srv.endpoint(), b"a")
    b = srv.node(srv.endpoint(), b"b")
    available(srv, "a", "b")
    assert get_ok(srv, A)[2] == b"hello from a"
    assert get_ok(srv, B)[2] == b"hello from b"
    a.pong = False
    b.pong = False
    t0 = time.monotonic()
    srv.wait_log(r'node "a" is OFF', timeout=4)
    took = time.monotonic() - t0
    assert took < 2.5, took                     # 3 x 300ms, not 3 x 3s
    assert 'node "b" is OFF' not in srv.error_log()
    assert wait_for(lambda: a.types().count(b"ping") >= 2, 2), \
        "a was not pinged at its site's period"
    assert get(srv, A)[0] == 503                # a takes no new work
    assert get(srv, B)[:3:2] == (200, b"hello from b")   # b is still ON


# ---- 2. global Sessions and StatsFreq -------------------------------------------

def test_global_sessions_cap_across_sites(zsites):
    srv = zsites({
        "a": site(A, ["n"], default=True),
        "b": site(B, ["n"]),
    }, zmq_conf="Sessions 2")
    seen = []
    node = srv.node(srv.endpoint(), b"n", holder(seen))
    available(srv, "n")
    ca, sid_a = open_held(srv, node, A)
    cb, _ = open_held(srv, node, B)
    requests = len(node.sids())
    for host in (A, B):
        status, headers, _ = get(srv, host)
        assert status == 503 and headers.get("retry-after") == "1", \
            (host, status, headers)
    assert len(node.sids()) == requests
    hello(node, sid_a, None)                    # answered, then closed
    assert ca.read_response().status == 200
    ca.close()
    assert wait_for(lambda: node.got(sid_a, b"end"))
    assert get(srv, B)[:3:2] == (200, b"hello from n")
    assert get(srv, A)[:3:2] == (200, b"hello from n")
    cb.reset()


def test_stats_line_counts_live_sessions(zsites):
    srv = zsites({"a": site(A, ["n"], default=True)},
                 zmq_conf="StatsFreq 200ms")
    seen = []
    node = srv.node(srv.endpoint(), b"n", holder(seen))
    available(srv, "n")
    srv.wait_log(r"zmq: stats: 0 live sessions", timeout=3)
    c1, sid1 = open_held(srv, node, A)
    c2, sid2 = open_held(srv, node, A)
    srv.wait_log(r"zmq: stats: 2 live sessions", timeout=3)
    for c, sid in ((c1, sid1), (c2, sid2)):
        hello(node, sid, None)
        assert c.read_response().status == 200
        c.close()
    n = srv.error_log().count("zmq: stats: ")
    srv.wait_log(r"(?s)zmq: stats: 2 live sessions.*zmq: stats: 0 live "
                 r"sessions", timeout=3)
    assert wait_for(lambda: srv.error_log().count("zmq: stats: ") >= n + 3, 3)


# ---- 3. request-body backpressure ------------------------------------------------

class StallingNode:
    """A DEALER with a small receive queue: takes one request, then reads
    nothing for `stall` seconds (it keeps sending pongs, as a node with a
    busy application thread would), then reads the body to its end marker
    and answers with "<bytes> <sha256>"."""

    def __init__(self, endpoint, identity, stall=2.0, rcvhwm=10):
        self.sock = zmq.Context.instance().socket(zmq.DEALER)
        self.sock.setsockopt(zmq.IDENTITY, identity)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.RCVHWM, rcvhwm)
        self.sock.connect(endpoint)
        self.sock.send_multipart([b"", b"pong", b""])
        self.stall = stall
        self.sha = hashlib.sha256()
        self.count = 0
        self.pieces = 0
        self.empty_bodies = 0
        self.after_end = []
        self.env = None
        self.error = None
        self.got_request = threading.Event()
        self.reading = threading.Event()
        self.done = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def _recv(self, timeout):
        if not self.sock.poll(int(timeout * 1000)):
            return None
        return self.sock.recv_multipart()

    def run(self):
        try:
            deadline = time.monotonic() + 20
            sid = None
            while sid is None:
                if time.monotonic() > deadline:
                    raise TimeoutError("no request")
                m = self._recv(0.1)
                if m is None:
                    continue
                if m[1] == b"ping":
                    self.sock.send_multipart([b"", b"pong", b""])
                elif m[1] == b"uwsgi":
                    sid, self.env = m[0], dict(uwsgi_vars(m[2]))
            self.got_request.set()
            end = time.monotonic() + self.stall
            while time.monotonic() < end:       # not reading
                self.sock.send_multipart([b"", b"pong", b""])
                time.sleep(0.2)
            self.reading.set()
            while True:
                m = self._recv(20)
                if m is None:
                    raise TimeoutError("body stopped at %d bytes" % self.count)
                s, t, body = m
                if t == b"ping":
                    self.sock.send_multipart([b"", b"pong", b""])
                    continue
                if t == b"spawn":
                    continue
                if s != sid or t != b"body":
                    self.after_end.append((t, len(body)))
                    continue
                if body == b"":
                    self.empty_bodies += 1
                    break
                self.sha.update(body)
                self.count += len(body)
                self.pieces += 1
            out = b"%d %s" % (self.count, self.sha.hexdigest().encode())
            self.sock.send_multipart([sid, b"headers",
                                      b"HTTP/1.1 200 OK\r\nContent-Length: "
                                      b"%d\r\n\r\n" % len(out)])
            self.sock.send_multipart([sid, b"body", out])
            # anything else for this sid before `end` is a stray body piece
            end = time.monotonic() + 0.5
            while time.monotonic() < end:
                m = self._recv(0.05)
                if m and m[1] not in (b"ping", b"end", b"spawn"):
                    self.after_end.append((m[1], len(m[2])))
                if m and m[1] == b"ping":
                    self.sock.send_multipart([b"", b"pong", b""])
        except Exception as e:                   # reported by the test
            self.error = repr(e)
        finally:
            self.done.set()

    def close(self):
        self.done.wait(5)
        self.thread.join(2)
        self.sock.close()


def vm_kb(pid, field):
    with open("/proc/%d/status" % pid) as f:
        return int(next(l for l in f if l.startswith(field + ":")).split()[1])


def _upload_to_stalled_node(zsites, size, check_memory):
    """POSTs `size` random bytes (Content-Length) to a node that stops
    reading for 2 s after the request; checks the node got them all, in
    order, then the end marker, and the client got the node's answer."""
    srv = zsites({"a": site(A, ["slow"], default=True)},
                 server="MaxRequestBody 128M\nDrainTimeout 3s",
                 env=memory_env() if check_memory else None)
    assert get(srv, A)[0] == 503                 # warm; no node yet
    base = rss_kb(srv.pid)
    node = StallingNode(srv.endpoint(), b"slow", stall=2.0)
    c = None
    try:
        available(srv, "slow")
        data = os.urandom(size)
        want = hashlib.sha256(data).hexdigest().encode()
        c = Client(srv, timeout=60)
        c.sock.sendall(build_request("POST", "/upload", {
            "Host": A, "Content-Length": str(size)}))
        sent = [0]
        send_error = []

        def upload():
            view = memoryview(data)
            step = 256 * 1024
            try:
                for off in range(0, size, step):
                    c.sock.sendall(view[off:off + step])
                    sent[0] = min(size, off + step)
            except OSError as e:
                send_error.append(repr(e))
        peak = [0]
        sampling = threading.Event()

        def sample():
            while not sampling.is_set():
                try:
                    peak[0] = max(peak[0], rss_kb(srv.pid))
                except (OSError, StopIteration):
                    return
                time.sleep(0.02)
        up = threading.Thread(target=upload, daemon=True)
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        up.start()
        assert node.got_request.wait(10), "the node never got the request"
        assert node.reading.wait(10)
        at_stall_end = sent[0]
        r = c.read_response(timeout=60)
        up.join(10)
        sampling.set()
        sampler.join(2)
        assert r.status == 200, "client got %r after the node read %d of " \
            "%d bytes; the client had sent %d" % (r, node.count, size, sent[0])
        assert node.done.wait(10)
        assert node.error is None, node.error
        assert not send_error, send_error
        assert node.env[b"CONTENT_LENGTH"] == str(size).encode()
        assert node.count == size and node.empty_bodies == 1, \
            "node got %d of %d bytes in %d pieces before an empty `body` " \
            "(end marker); after it: %d more message(s), %d bytes" % (
                node.count, size, node.pieces, len(node.after_end),
                sum(n for _, n in node.after_end))
        assert node.sha.hexdigest().encode() == want, "body bytes out of order"
        assert (r.status, r.body) == (200, b"%d %s" % (size, want)), r
        assert node.after_end == [], node.after_end
        if check_memory:
            # the server stopped reading while the node did not: the client
            # could not push the whole body into it meanwhile
            assert at_stall_end < size, \
                "the client sent all %d bytes while the node read nothing" \
                % size
            grown = max(peak[0], vm_kb(srv.pid, "VmRSS")) - base
            assert grown < 24 * 1024 or not memory_bounded(), \
                "RSS grew by %d kB for a %d MB body" % (grown, size >> 20)
    finally:
        if c:
            c.reset()
        node.close()


def test_request_body_backpressure_in_order_and_bounded(zsites):
    """48 MB to a node that does not read for 2 s: the worker pauses the
    client, memory stays bounded, nothing is lost or reordered."""
    _upload_to_stalled_node(zsites, 48 << 20, check_memory=True)


def test_request_body_just_over_the_node_queue(zsites):
    """10 MB: a little more than the node's queue (gateway SNDHWM 1000
    pieces + socket buffers) holds, so a few pieces are held back by the
    gateway and sent when the node reads again: in order, the end marker
    last."""
    _upload_to_stalled_node(zsites, 10 << 20, check_memory=False)


# ---- 4. routed chunk ----------------------------------------------------------------

def test_routed_chunk_to_group_and_sid(zsites):
    srv = zsites({
        "a": site(A, ["n"], default=True),
        "b": site(B, ["n"]),
    })
    seen = []

    def app(node, sid, env):
        seen.append((sid, env))
        path = env[b"PATH_INFO"]
        if path == b"/stream":                   # streaming, never ended
            node.send(sid, b"headers", CHUNKED_HEAD)
            node.send(sid, b"join", b"room")
        elif path == b"/done":                   # answered, then joins
            hello(node, sid, env)
            node.send(sid, b"join", b"room")
        elif path == b"/pending":                # joins, answers later
            node.send(sid, b"join", b"room")
        else:
            hello(node, sid, env)
    node = srv.node(srv.endpoint(), b"n", app)
    available(srv, "n")

    streams = []
    for _ in range(3):
        c, sid = open_held(srv, node, A, "/stream")
        head = c.read_until(b"\r\n\r\n")
        assert head == CHUNKED_HEAD, head
        streams.append((c, sid))
    (c1, s1), (c2, s2), (c3, s3) = streams
    done, s_done = open_held(srv, node, A, "/done")
    r = done.read_response()
    assert (r.status, r.body) == (200, b"hello from n")
    pend, s_pend = open_held(srv, node, A, "/pending")
    other, s_other = open_held(srv, node, B, "/stream")   # site B, same node
    assert other.read_until(b"\r\n\r\n") == CHUNKED_HEAD
    # B has a group "room" too: groups are per site

    def own(c, sid, text):
        """A chunk for the session itself: the next bytes must be it."""
        node.send(sid, b"chunk", text)
        return b"%X\r\n%s\r\n" % (len(text), text)

    # group: every member's client, the sender too (echo is on by default)
    node.send(s1, b"room:chunk", b"hi")
    for c in (c1, c2, c3):
        assert c.read_n(7) == b"2\r\nhi\r\n"

    # noecho for this membership: the others only
    node.send(s1, b"noecho", b"room")
    node.send(s1, b"room:chunk", b"yo")
    for c in (c2, c3):
        assert c.read_n(7) == b"2\r\nyo\r\n"
    mark = own(c1, s1, b"mark1")
    assert c1.read_n(len(mark)) == mark, "the sender got its noecho chunk"

    # @sid: that client only, wherever the sender is
    node.send(s2, b"@" + s3 + b":chunk", b"dm")
    assert c3.read_n(7) == b"2\r\ndm\r\n"
    for c, sid in ((c1, s1), (c2, s2)):
        mark = own(c, sid, b"mark2")
        assert c.read_n(len(mark)) == mark, "@sid:chunk reached another client"

    # another site's session: not by @sid, not by its own group "room"
    node.send(s_other, b"join", b"room")
    node.send(s1, b"@" + s_other + b":chunk", b"xs")
    node.send(s1, b"room:chunk", b"ab")
    for c in (c2, c3):
        assert c.read_n(7) == b"2\r\nab\r\n"
    mark = own(other, s_other, b"mark3")
    assert other.read_n(len(mark)) == mark, \
        "a chunk crossed from site A to a session of site B"

    # an ended response and one not started yet get nothing; their
    # connections stay valid HTTP
    assert done.pending(0.2) == b"", "bytes after a finished response"
    node.send(s_pend, b"headers",
              b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n")
    node.send(s_pend, b"body", b"late")
    r = pend.read_response()
    assert (r.status, r.body) == (200, b"late")
    assert pend.pending(0.2) == b""
    for c in (done, pend):
        c.send(A, "/again")
        r = c.read_response()
        assert (r.status, r.body) == (200, b"hello from n"), r
        assert c.pending(0.1) == b""

    # streams still framed: ending them leaves well-formed responses
    for c, sid in streams + [(other, s_other)]:
        node.send(sid, b"chunk", b"")
        assert c.read_n(5) == b"0\r\n\r\n"
        c.send(A if c is not other else B, "/after")
        r = c.read_response()
        assert (r.status, r.body) == (200, b"hello from n"), r
    for c, _ in streams + [(done, 0), (pend, 0), (other, 0)]:
        c.close()


# ---- 5. keep-alive Host switch -----------------------------------------------------

def test_keepalive_host_switch_moves_the_session_to_the_other_site(zsites):
    srv = zsites({
        "a": site(A, ["a"], default=True),
        "b": site(B, ["b"]),
    })
    a = srv.node(srv.endpoint(), b"a")
    b = srv.node(srv.endpoint(), b"b")
    available(srv, "a", "b")
    c = Client(srv)
    c.send(A, "/one")
    r = c.read_response()
    assert (r.status, r.body) == (200, b"hello from a")
    (sid,) = a.sids()
    c.send(B, "/two")
    r = c.read_response()
    assert (r.status, r.body) == (200, b"hello from b"), r
    assert len(b.sids()) == 1
    assert wait_for(lambda: a.got(sid, b"end")), \
        "node a was not told the session left it"
    assert a.sids() == [sid]                       # a saw request 1 only
    # and back: b is told, a serves again
    sid_b = b.sids()[0]
    c.send(A, "/three")
    r = c.read_response()
    assert (r.status, r.body) == (200, b"hello from a"), r
    assert wait_for(lambda: b.got(sid_b, b"end"))
    assert len(b.sids()) == 1
    c.close()
