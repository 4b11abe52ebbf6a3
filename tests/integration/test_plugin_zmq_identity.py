"""Two node processes with one identity (issue 12): libzmq's ROUTER keeps
routing to the first peer and never reads the second, which waits without
a word. The node guard reads the identity each relayed peer claims (the
Identity of its READY) and Tremolo logs one warning naming it and the
endpoint, rate-limited, while the first peer keeps being served."""

import re

import zmq

from test_plugin_zmq import gateway, get_ok  # noqa: F401
from test_plugin_zmq_hardening import (RawPeer, greeting, zmtp_command,
                                       zmtp_property)

WARNING = (r"zmq: a second peer claims node identity '%s' on %s: it will "
           r"get no requests; give each node process its own identity")


def warnings(srv, identity):
    return len(re.findall(WARNING % (re.escape(identity),
                                     re.escape(srv.endpoint)),
                          srv.error_log()))


def second(node, sid, env):
    node.send(sid, b"headers",
              b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\n")
    node.send(sid, b"body", b"second")


def test_second_peer_with_a_live_identity_is_named_once(gateway):
    srv = gateway("node1")
    srv.node(b"node1")
    srv.wait_log(r'node "node1" is available')
    assert get_ok(srv)[2] == b"hello from node1"
    twin = srv.node(b"node1", second)
    srv.wait_log(WARNING % ("node1", re.escape(srv.endpoint)))
    # a twin restarting in a loop does not flood the log: each one's READY
    # crossed the guard once the server's own READY comes back
    for _ in range(5):
        again = RawPeer(srv.endpoint)
        again.s.sendall(greeting() + zmtp_command(
            b"READY", zmtp_property(b"Socket-Type", b"DEALER") +
            zmtp_property(b"Identity", b"node1")))
        assert again.read_exact(64)[10] == 3
        flags, size = again.read_exact(2)
        assert again.read_exact(size)[:6] == b"\x05READY"
        again.close()
    for _ in range(10):
        status, _, body = srv.http("GET", "/")
        assert (status, body) == (200, b"hello from node1")
    assert b"uwsgi" not in twin.types()
    assert warnings(srv, "node1") == 1


def test_distinct_identities_are_not_warned(gateway):
    srv = gateway("node1 node2")
    srv.node(b"node1")
    srv.node(b"node2")
    srv.wait_log(r'node "node1" is available')
    srv.wait_log(r'node "node2" is available')
    assert get_ok(srv)[0] == 200
    assert "claims node identity" not in srv.error_log()


def test_anonymous_peers_are_not_warned(gateway):
    """Peers without an identity get a random routing id each: no twin."""
    srv = gateway("node1")
    srv.node(b"node1")
    srv.wait_log(r'node "node1" is available')
    ctx = zmq.Context.instance()
    socks = []
    for _ in range(2):
        s = ctx.socket(zmq.DEALER)
        s.setsockopt(zmq.LINGER, 0)
        s.connect(srv.endpoint)
        s.send_multipart([b"", b"pong", b""])
        socks.append(s)
    try:
        assert get_ok(srv)[2] == b"hello from node1"
        assert "claims node identity" not in srv.error_log()
    finally:
        for s in socks:
            s.close()
