"""`NodeGuard native`: the gateway speaks ZMTP 3 to node connections
itself. Peers it must refuse (not ZMTP 3 NULL, not a DEALER, no identity,
a frame above MaxFrameSize, a second claim on a live identity) are closed
and logged; PING is answered with PONG; pyzmq DEALER nodes with
ZMQ_HEARTBEAT_IVL work; a 4 MiB body arrives intact each way. The main
zmq suites run natively too (ctest integration-native/)."""
import threading
import time

import zmq

from test_plugin_zmq import gateway, get_ok, wait_for  # noqa: F401
from test_plugin_zmq_hardening import (RawPeer, frame, greeting,
                                       zmtp_command, zmtp_property)

NATIVE = "    NodeGuard native\n    MaxFrameSize 8M\n"
MiB = 1 << 20


def ready(identity=None, socket_type=b"DEALER"):
    props = zmtp_property(b"Socket-Type", socket_type)
    if identity is not None:
        props += zmtp_property(b"Identity", identity)
    return zmtp_command(b"READY", props)


def handshake(srv, identity):
    """A raw peer past the handshake; checks the server's READY."""
    p = RawPeer(srv.endpoint)
    p.s.sendall(greeting() + ready(identity))
    g = p.read_exact(64)
    assert g[0] == 0xff and g[10] == 3 and g[12:16] == b"NULL"
    flags, size = p.read_exact(2)
    assert flags == 4
    body = p.read_exact(size)
    assert body.startswith(b"\x05READY") and b"ROUTER" in body
    return p


def test_native_refuses_bad_peers_with_a_log_line(gateway):
    srv = gateway(zmq=NATIVE)
    srv.wait_log(r"nodes connect to .* \(node guard native\)")
    cases = [
        (b"GET / HTTP/1.0\r\n\r\n", r"not a ZMTP 3 greeting"),
        (greeting(revision=1) + frame(b"node"), r"not a ZMTP 3 greeting"),
        (greeting(mechanism=b"PLAIN"), r"other than NULL"),
        (greeting() + ready(None), r"no node identity"),
        (greeting() + ready(b""), r"no node identity"),
        (greeting() + ready(b"n", b"REQ"), r"peer socket other than DEALER"),
        (greeting() + ready(b"big") + frame(b"", size=9 * MiB),
         r"a frame larger than MaxFrameSize"),
        (greeting() + ready(b"parts") + frame(b"a", more=True) +
         frame(b"b", more=True) + frame(b"c", more=True) + frame(b"d"),
         r"more than 3 frames"),
    ]
    for data, why in cases:
        p = RawPeer(srv.endpoint)
        p.s.sendall(data)
        assert p.closed_by_server(), why
        p.close()
        srv.wait_log(r"closed the node connection from 127\.0\.0\.1 .*" +
                     why)
        time.sleep(1.05)        # one line a second per reason


def test_native_ping_gets_pong(gateway):
    srv = gateway(zmq=NATIVE)
    p = handshake(srv, b"pinger")
    p.s.sendall(zmtp_command(b"PING", b"\x00\x0a" + b"ctx-1234"))
    # the gateway's own `ping` messages may come first: skip them
    end = time.monotonic() + 5
    while time.monotonic() < end:
        flags, size = p.read_exact(2)
        body = p.read_exact(size)
        if flags == 4:
            assert body == b"\x04PONG" + b"ctx-1234"
            break
    else:
        raise AssertionError("no PONG")
    p.close()


def test_native_duplicate_identity_second_is_closed(gateway):
    srv = gateway(zmq=NATIVE)
    first = handshake(srv, b"dup")
    second = RawPeer(srv.endpoint)
    second.s.sendall(greeting() + ready(b"dup"))
    assert second.closed_by_server()
    srv.wait_log(r"a second peer claims node identity 'dup' on .*closed")
    assert not first.closed_by_server(timeout=0.5)
    first.close()
    second.close()


def test_native_node_serves_and_gone_node_fails_sends(gateway):
    srv = gateway(zmq=NATIVE)
    n = srv.node(b"node1")
    assert get_ok(srv)[0] == 200
    n.close()
    time.sleep(0.3)              # the gateway reads the node's EOF
    # still "available" until its pings go unanswered: the send fails as
    # ROUTER_MANDATORY's would (EHOSTUNREACH), and the client gets 503
    assert srv.http("GET", "/")[0] == 503
    srv.wait_log(r"cannot queue a request for node node1")


def test_native_dealer_with_heartbeats(gateway):
    srv = gateway(zmq=NATIVE)
    ctx = zmq.Context.instance()
    s = ctx.socket(zmq.DEALER)
    s.setsockopt(zmq.IDENTITY, b"node1")
    s.setsockopt(zmq.LINGER, 0)
    s.setsockopt(zmq.HEARTBEAT_IVL, 100)
    s.setsockopt(zmq.HEARTBEAT_TIMEOUT, 300)
    s.setsockopt(zmq.HEARTBEAT_TTL, 1000)
    s.connect(srv.endpoint)
    try:
        s.send_multipart([b"", b"pong", b""])
        srv.wait_log(r'node "node1" is available')
        end = time.monotonic() + 1.5   # many heartbeats, all answered
        answered = 0
        while time.monotonic() < end:
            if s.poll(50):
                sid, typ, body = s.recv_multipart()
                if typ == b"ping":
                    s.send_multipart([b"", b"pong", b""])
        result = {}

        def client():
            result["r"] = srv.http("GET", "/")
        t = threading.Thread(target=client)
        t.start()
        while t.is_alive():
            if s.poll(50):
                sid, typ, body = s.recv_multipart()
                if typ == b"uwsgi":
                    s.send_multipart([sid, b"headers",
                                      b"HTTP/1.1 200 OK\r\n"
                                      b"Content-Length: 2\r\n\r\n"])
                    s.send_multipart([sid, b"body", b"hb"])
                    answered += 1
                elif typ == b"ping":
                    s.send_multipart([b"", b"pong", b""])
        t.join()
        assert answered == 1
        assert result["r"][0] == 200 and result["r"][2] == b"hb"
        assert "closed the node connection" not in srv.error_log()
    finally:
        s.close()


def big_answer(node, sid, env):
    body = bytes(range(256)) * (4 * MiB // 256)
    node.send(sid, b"headers",
              b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body))
    node.send(sid, b"body", body)


def test_native_4mib_each_way(gateway):
    srv = gateway(zmq=NATIVE)
    n = srv.node(b"node1", big_answer)
    status, _, body = get_ok(srv)
    assert status == 200
    assert body == bytes(range(256)) * (4 * MiB // 256)
    up = bytes(reversed(range(256))) * (4 * MiB // 256)
    status, _, _ = srv.http("POST", "/", body=up,
                            headers={"Content-Length": str(len(up))})
    assert status == 200

    def got():
        for parts in n.bodies.values():
            data = b"".join(parts)
            if len(data) >= len(up):
                return data == up
        return False
    assert wait_for(got, 10)
