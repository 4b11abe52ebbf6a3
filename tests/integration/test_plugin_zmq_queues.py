"""Hostile and slow nodes against the gateway's queues (issue 10, points 8,
9 and 10): joins past GroupsPerSession, routed messages toward a node that
never reads (NodeQueueLimit, shared bodies), the order of a session's
pieces behind a full node queue, and reloads while nodes stream to many
sessions."""

import socket
import threading
import time

import zmq

import test_plugin_zmq
from test_plugin_zmq import hello, rss_kb, uwsgi_vars, wait_for
from tremolo_harness import build_request, memory_bounded, memory_env

# The fixture (a server with the zmq plugin, srv.node()), from
# test_plugin_zmq.py.
gateway = test_plugin_zmq.gateway


def held_sessions(srv, sids, count, path="/hold"):
    """`count` clients whose requests the node records and holds."""
    conns = []
    for _ in range(count):
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
        s.sendall(build_request("GET", path))
        conns.append(s)
    assert wait_for(lambda: len(sids) >= count, 10), sids
    return conns


def holder(sids):
    """Holds /hold* requests (recording their sids), answers the others."""
    def app(node, sid, env):
        if env[b"PATH_INFO"].startswith(b"/hold"):
            sids.append(sid)
        else:
            hello(node, sid, env)
    return app


def msgs(node, sid=None):
    with node.lock:
        return [b for s, t, b in node.log
                if t == b"msg" and (sid is None or s == sid)]


# ---- point 8: groups ---------------------------------------------------------

def test_join_flood_is_capped_and_the_gateway_stays_responsive(gateway):
    """60,000 distinct joins on one session: the session holds the first
    GroupsPerSession (1024) of them, a message to a later group reaches
    nobody, and a request through the gateway meanwhile is answered."""
    srv = gateway()
    sids = []
    node = srv.node(b"node1", holder(sids))
    srv.wait_log(r'node "node1" is available')
    conns = held_sessions(srv, sids, 1)
    sid = sids[0]
    for i in range(60000):
        node.send(sid, b"join", b"g%d" % i)
    # the gateway serves while it takes the joins
    status, _, body = srv.http("GET", "/during", timeout=20)
    assert (status, body) == (200, b"hello from node1")
    node.send(sid, b"g1023:msg", b"last in")       # the 1024th: a member
    node.send(sid, b"g1024:msg", b"first out")
    node.send(sid, b"g59999:msg", b"last out")
    node.send(sid, b"g0:msg", b"marker")           # after all of the above
    assert wait_for(lambda: b"marker" in msgs(node, sid), 60), \
        "the joins were not all handled within 60 s"
    assert msgs(node, sid) == [b"last in", b"marker"]
    srv.wait_log(r"join refused, GroupsPerSession \(1024\) reached")
    assert srv.http("GET", "/after", timeout=10)[0] == 200
    for s in conns:
        s.close()


# ---- point 8: bytes toward a node that never reads ---------------------------

class Sink:
    """A node that reads its first `count` requests, joins each session to
    `group`, then never reads again; it stays alive with a pong every
    200 ms (traffic is liveness)."""

    def __init__(self, endpoint, identity, count, group):
        self.sock = zmq.Context.instance().socket(zmq.DEALER)
        self.sock.setsockopt(zmq.IDENTITY, identity)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.RCVHWM, 1)
        self.sock.connect(endpoint)
        self.count, self.group = count, group
        self.sids = []
        self.running = True
        self.joined = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while self.running:
            self.sock.send_multipart([b"", b"pong", b""])
            while (len(self.sids) < self.count and
                   self.sock.poll(0) and self.running):
                sid, typ, body = self.sock.recv_multipart()
                if typ == b"uwsgi":
                    self.sids.append(sid)
                    self.sock.send_multipart([sid, b"join", self.group])
            if len(self.sids) == self.count:
                self.joined.set()
            time.sleep(0.2)

    def close(self):
        self.running = False
        self.thread.join(2)
        self.sock.close()


def test_group_messages_to_a_node_that_never_reads_keep_rss_bounded(gateway):
    """A node sends twelve 16 MiB messages to a group whose other members
    are bound to a node that never reads: the gateway queues at most
    NodeQueueLimit (64 MiB) for it, sharing one copy of each body among
    its recipients, instead of a copy per recipient up to the high-water
    mark (before: +384 MB here, and up to 16 GiB)."""
    srv = gateway("talker sink", env=memory_env())   # ties: talker
    sink = Sink(srv.endpoint, b"sink", 2, b"room")
    try:
        srv.wait_log(r'node "sink" is available')
        clients = []
        for _ in range(2):              # both to the sink: the only node
            s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
            s.sendall(build_request("GET", "/hold"))
            clients.append(s)
        assert sink.joined.wait(10)
        sids = []
        talker = srv.node(b"talker", holder(sids))
        srv.wait_log(r'node "talker" is available')
        clients += held_sessions(srv, sids, 2)     # least loaded: talker
        t1, t2 = sids
        talker.send(t1, b"noecho", b"")
        talker.send(t1, b"join", b"room")
        assert srv.http("GET", "/warm")[0] == 200
        base = rss_kb(srv.pid)
        big = b"x" * (16 << 20)                    # MaxFrameSize
        for _ in range(12):
            talker.send(t1, b"room:msg", big)
        talker.send(t1, b"@" + t2 + b":msg", b"marker")   # after the flood
        assert wait_for(lambda: b"marker" in msgs(talker, t2), 60)
        grown = rss_kb(srv.pid) - base
        assert grown < 160 * 1024 or not memory_bounded(), \
            "RSS grew by %d kB" % grown
        srv.wait_log(r'node "sink" does not read: a routed msg for it was '
                     r'dropped \(queue full\)')
        assert msgs(talker) == [b"marker"]          # t1 has echo off
        assert srv.http("GET", "/after", timeout=10)[0] == 200
        for s in clients:
            s.close()
    finally:
        sink.close()


# ---- point 9: the order of a session's pieces ---------------------------------

class PausingNode:
    """A node with a small receive queue. On the first request it answers
    at once, without reading the body, having filled its own queue (3,000
    16 KiB messages routed back to itself through a group), then it reads
    nothing until resume() (keeping alive with pongs); then it reads
    everything and answers later requests. Logs (sid, type, body)."""

    def __init__(self, endpoint, identity):
        self.sock = zmq.Context.instance().socket(zmq.DEALER)
        self.sock.setsockopt(zmq.IDENTITY, identity)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.RCVHWM, 10)
        self.sock.connect(endpoint)
        self.sock.send_multipart([b"", b"pong", b""])
        self.log = []
        self.lock = threading.Lock()
        self.resumed = threading.Event()
        self.running = True
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def first_request(self, sid):
        s = self.sock
        s.send_multipart([sid, b"headers", b"HTTP/1.1 200 OK\r\n"
                          b"Transfer-Encoding: chunked\r\n\r\n"])
        s.send_multipart([sid, b"join", b"self"])
        for _ in range(3000):
            s.send_multipart([sid, b"self:msg", b"f" * 16384])
        s.send_multipart([sid, b"chunk", b"queue full"])
        s.send_multipart([sid, b"chunk", b""])

    def run(self):
        answered = False
        while self.running:
            if answered and not self.resumed.is_set():
                self.sock.send_multipart([b"", b"pong", b""])
                self.resumed.wait(0.2)
                continue
            if not self.sock.poll(50):
                continue
            sid, typ, body = self.sock.recv_multipart()
            with self.lock:
                self.log.append((sid, typ, body))
            if typ == b"ping":
                self.sock.send_multipart([b"", b"pong", b""])
            elif typ == b"uwsgi" and not answered:
                answered = True
                self.first_request(sid)
            elif typ == b"uwsgi":
                hello(self, sid, dict(uwsgi_vars(body)))

    def send(self, *frames):            # for hello(): this thread only
        self.sock.send_multipart(list(frames))

    identity = b"node1"

    def of(self, sid):
        with self.lock:
            return [(t, b) for s, t, b in self.log if s == sid and t != b"msg"]

    def close(self):
        self.running = False
        self.resumed.set()
        self.thread.join(2)
        self.sock.close()


def test_next_request_waits_behind_a_held_body_tail(gateway):
    """Request 1's body and end marker wait for the node's full queue;
    request 2, pipelined behind them, must reach the node after them, not
    overtake them nor fail the session (before: 503 for request 2, and
    request 1's body never reached the node)."""
    srv = gateway()
    node = PausingNode(srv.endpoint, b"node1")
    try:
        srv.wait_log(r'node "node1" is available')
        body = bytes(range(256)) * 256                 # 64 KiB
        c = srv.connect(timeout=30)
        c.send(b"POST /1 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
               b"Content-Length: %d\r\n\r\n" % len(body))
        r1 = c.read_response()                 # sent after the flood
        assert (r1.status, r1.body) == (200, b"queue full")
        c.send(body + build_request("GET", "/2"))
        time.sleep(1.0)           # let the gateway hold body, end and /2
        node.resumed.set()
        r2 = c.read_response()
        assert (r2.status, r2.body) == (200, b"hello from node1"), r2
        sid = next(s for s, t, _ in node.log if t == b"uwsgi")

        def second_ended():
            # the node answers /2 on its uwsgi: the response can reach the
            # client before /2's end marker reaches the node's log
            ts = [t for t, _ in node.of(sid)]
            return ts.count(b"uwsgi") > 1 and ts[-1] == b"body" and \
                ts.index(b"uwsgi", 1) < len(ts) - 1
        wait_for(second_ended, 10)
        seen = node.of(sid)
        types = [t for t, _ in seen]
        # uwsgi /1, its body pieces and end marker, then uwsgi /2 and its
        # end marker (a GET's body is empty)
        second = types.index(b"uwsgi", 1) if types.count(b"uwsgi") > 1 \
            else len(types)
        assert types[0] == b"uwsgi" and set(types[1:second]) == {b"body"} \
            and types[second:] == [b"uwsgi", b"body"], types[-6:]
        pieces = [b for _, b in seen[1:second]]
        assert pieces[-1] == b"" and b"".join(pieces) == body
        assert dict(uwsgi_vars(seen[second][1]))[b"PATH_INFO"] == b"/2"
        assert seen[-1][1] == b""
        c.close()
    finally:
        node.close()


# ---- point 10: reload while nodes stream to many sessions ---------------------

def streamer(streams):
    """/stream: a chunked response that stays open, its session in group
    `feed` and its sid appended to `streams`; anything else: hello."""
    def app(node, sid, env):
        if env[b"PATH_INFO"] != b"/stream":
            return hello(node, sid, env)
        node.send(sid, b"headers", b"HTTP/1.1 200 OK\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n")
        node.send(sid, b"join", b"feed")
        streams.append(sid)
    return app


def open_streams(srv, streams, clients, count):
    """`count` more clients on /stream; each got its head and the newest
    one a tick of the feed."""
    want = len(streams) + count
    for _ in range(count):
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
        s.sendall(build_request("GET", "/stream"))
        clients.append(s)
    assert wait_for(lambda: len(streams) == want, 20)
    for s in clients[-count:]:
        assert s.recv(4096).startswith(b"HTTP/1.1 200")
    got = b""
    while b"tick" not in got:
        got += clients[-1].recv(4096)


def test_reload_again_and_again_while_nodes_stream(gateway):
    """Five reloads while a node streams to 24 sessions on two workers
    (routed chunks, fanned out by the gateway to each worker's inbox), then
    a stop while it streams to 24 more: the workers leave (DrainTimeout
    1s) while the gateway still delivers to them. Under TSan (make
    test-tsan) a race with the workers' exit fails the test; everywhere,
    the server must serve each generation and stop cleanly."""
    srv = gateway(workers=2, server="DrainTimeout 1s")
    streams = []
    node = srv.node(b"node1", streamer(streams))
    srv.wait_log(r'node "node1" is available')
    stop = threading.Event()

    def feed():
        seq = 0
        while not stop.is_set():
            if streams:                 # the newest generation's session
                node.send(streams[-1], b"feed:chunk", b"tick %d" % seq)
                seq += 1
            time.sleep(0.002)
    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    clients = []
    try:
        for _ in range(5):
            open_streams(srv, streams, clients, 24)
            srv.reload()
            assert "reload failed" not in srv.error_log()
            # the node finds the new gateway at its next pong
            assert wait_for(lambda: srv.http("GET", "/x")[0] == 200, 10)
        open_streams(srv, streams, clients, 24)
        assert srv.stop() == 0            # while the feed still runs
    finally:
        stop.set()
        feeder.join(2)
        for s in clients:
            s.close()


def test_queue_and_group_limits_are_checked_at_start(check_config):
    for line, key in (("NodeQueueLimit 1K", "NodeQueueLimit"),
                      ("Groups 0", "Groups"),
                      ("GroupsPerSession -1", "GroupsPerSession")):
        rc, out = check_config(plugins=("liana", "zmq"), plugin_confs={
            "zmq": "[ZMQ]\n    Bind tcp://127.0.0.1:5999\n    %s\n" % line})
        assert rc == 1 and key in out, out
    rc, out = check_config(plugins=("liana", "zmq"), plugin_confs={
        "zmq": "[ZMQ]\n    Bind tcp://127.0.0.1:5999\n    NodeQueueLimit 1M\n"
               "    Groups 10\n    GroupsPerSession 2\n"})
    assert rc == 0, out
