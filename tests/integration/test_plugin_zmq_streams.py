"""Sessions per stream: on a protocol that carries many streams at once
(the toy `lineproto`, tests/plugins/lineproto.c, on a `Listen ...
protocol=lineproto` listener) every stream that reaches the zmq gateway
is a session of its own: its own sid, balanced on its own, ended (the
node gets `end`) when the stream is done. HTTP/1.x keeps one session per
connection (test_plugin_zmq.py::test_keepalive_same_sid_and_chunked_framing).
The node's verbatim `headers` cannot go out raw on lineproto, so the
gateway's structured-fields fallback carries them."""

import threading

from plugin_util import tremolo_passwd
from test_core_streams import LINEPROTO, Client
from test_plugin_zmq import Node, wait_for
from tremolo_harness import free_port

INDEX = b"<html>streams</html>\n"
SECRET = b"secret file\n"


def site(nodes):
    return ("[HOST]\n    ServerName localhost\n    Default on\n"
            "    DocumentRoot htdocs\n"
            "[LOCATION /app]\n    Handler zmq\n"
            "[AUTH]\n    Location /private\n    Realm Staff\n"
            "    Users private.users\n"
            "[ZMQ]\n" + "".join("    Node %s\n" % n for n in nodes))


class Held:
    """The requests nodes received and have not answered: (node, sid,
    uwsgi vars), in arrival order."""

    def __init__(self):
        self.lock = threading.Lock()
        self.items = []

    def app(self, node, sid, env):
        with self.lock:
            self.items.append((node, sid, env))

    def count(self):
        with self.lock:
            return len(self.items)

    def get(self):
        with self.lock:
            return list(self.items)

    def by_path(self, path):
        with self.lock:
            return [(n, s) for n, s, env in self.items
                    if env[b"PATH_INFO"] == path][0]


def start(tremolo, nodes):
    endpoint = "tcp://127.0.0.1:%d" % free_port()
    srv = tremolo(plugins=("liana", LINEPROTO, "auth", "zmq"),
                  listen=["127.0.0.1:{port} liana protocol=lineproto"],
                  sites={"default": site(nodes)},
                  plugin_confs={"zmq": "[ZMQ]\n    Bind %s\n"
                                       "    PingFreq 500ms\n" % endpoint},
                  files={"htdocs/index.html": INDEX,
                         "htdocs/private/a.txt": SECRET},
                  start=False)
    rc, err = tremolo_passwd("-c", srv.conf_dir / "private.users", "alice",
                             password="s3cret")
    assert rc == 0, err
    srv.start()
    held = Held()
    started = [Node(endpoint, n.encode(), held.app) for n in nodes]
    for n in nodes:
        assert wait_for(lambda: 'node "%s" is available' % n
                        in srv.error_log()), n
    return srv, started, held


def ended(node, sid):
    return b"end" in node.types(sid)


def test_streams_of_one_connection_have_their_own_sids(tremolo):
    srv, nodes, held = start(tremolo, ["n1"])
    node = nodes[0]
    try:
        c = Client(srv.port)
        # two streams at the node, one static, one answered at stage 20
        c.send(b"1 POST /app/one 3\n2 GET /app/two 0\n"
               b"3 GET /index.html 0\n4 GET /private/a.txt 0\n")
        got = {}
        for _ in range(2):
            sid, status, body = c.answer()
            got[sid] = (status, body)
        assert got["3"] == (200, INDEX)
        assert got["4"][0] == 401 and SECRET not in got["4"][1]
        c.send(b"1 = 3\nabc")
        assert wait_for(lambda: held.count() == 2)
        _, sid1 = held.by_path(b"/app/one")
        _, sid2 = held.by_path(b"/app/two")
        assert sid1 != sid2 and len(sid1) == len(sid2) == 16
        assert wait_for(lambda: b"".join(node.bodies.get(sid1, [])) ==
                        b"abc")
        # the second is answered first, with a Content-Length
        node.send(sid2, b"headers", b"HTTP/1.1 201 Created\r\n"
                  b"Content-Length: 3\r\nX-Node: n1\r\n\r\n")
        node.send(sid2, b"body", b"two")
        assert c.answer() == ("2", 201, b"two")
        assert wait_for(lambda: ended(node, sid2))
        assert not ended(node, sid1)
        # the first one chunked, ended by the empty chunk
        node.send(sid1, b"headers", b"HTTP/1.1 202 Accepted\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n")
        node.send(sid1, b"chunk", b"on")
        node.send(sid1, b"chunk", b"e")
        node.send(sid1, b"chunk", b"")
        assert c.answer() == ("1", 202, b"one")
        assert wait_for(lambda: ended(node, sid1))
        # a node's `end` ends its stream, not the connection
        c.send(b"5 GET /app/five 0\n")
        assert wait_for(lambda: held.count() == 3)
        _, sid5 = held.by_path(b"/app/five")
        assert sid5 not in (sid1, sid2)
        node.send(sid5, b"headers", b"HTTP/1.1 200 OK\r\n\r\n")
        node.send(sid5, b"body", b"five")
        node.send(sid5, b"end", b"")
        assert c.answer() == ("5", 200, b"five")
        c.send(b"6 GET /index.html 0\n")
        assert c.answer() == ("6", 200, INDEX)
        c.close()
    finally:
        for n in nodes:
            n.close()


def test_streams_of_one_connection_are_balanced(tremolo):
    srv, nodes, held = start(tremolo, ["a", "b"])
    try:
        c = Client(srv.port)
        c.send(b"".join(b"%d GET /app/%d 0\n" % (i, i) for i in range(4)))
        assert wait_for(lambda: held.count() == 4)
        with held.lock:
            items = list(held.items)
        names = sorted(n.identity for n, _, _ in items)
        assert names == [b"a", b"a", b"b", b"b"], names
        assert len({sid for _, sid, _ in items}) == 4
        for n, sid, env in items:
            body = n.identity + env[b"PATH_INFO"]
            n.send(sid, b"headers", b"HTTP/1.1 200 OK\r\n"
                   b"Content-Length: %d\r\n\r\n" % len(body))
            n.send(sid, b"body", body)
        answers = sorted(c.answer() for _ in range(4))
        assert [a[:2] for a in answers] == [(str(i), 200) for i in range(4)]
        by_path = {env[b"PATH_INFO"]: n.identity for n, _, env in items}
        for sid, _, body in answers:
            path = b"/app/" + sid.encode()
            assert body == by_path[path] + path
        c.close()
    finally:
        for n in nodes:
            n.close()


def test_closing_ends_the_pending_streams_sessions(tremolo):
    srv, nodes, held = start(tremolo, ["n1"])
    node = nodes[0]
    try:
        c = Client(srv.port)
        c.send(b"1 GET /app/x 0\n2 GET /app/y 0\n")
        assert wait_for(lambda: held.count() == 2)
        c.close()
        with held.lock:
            sids = [sid for _, sid, _ in held.items]
        assert wait_for(lambda: all(ended(node, s) for s in sids))
    finally:
        for n in nodes:
            n.close()
