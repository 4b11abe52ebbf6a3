"""What a peer of the node endpoint can make the server hold before it is
known (issue 10, point 1): raw ZMTP peers written on plain sockets (no
identity, no node name) announce an 8 GiB frame or stream an endless
multipart message; the server's memory stays flat, the peer is
disconnected and real pyzmq nodes go on serving. Also: nodes of every
ZMTP revision libzmq accepts, heartbeats and the largest legal frame pass
the node guard, and CURVE endpoints bound their frames as well."""

import os
import socket
import struct
import time

import zmq

from test_plugin_zmq import gateway, get_ok, rss_kb, wait_for  # noqa: F401
from tremolo_harness import memory_env

MiB = 1 << 20
STREAMED = 256 * MiB           # what the peer pushes at the server
GROWTH_KB = 32 * 1024          # what the server may hold meanwhile


def frame(body, more=False, command=False, size=None):
    """A ZMTP 2.0/3.x frame; `size` may announce more than `body` holds."""
    size = len(body) if size is None else size
    flags = (1 if more else 0) | (4 if command else 0)
    if size > 255:
        return bytes([flags | 2]) + struct.pack(">Q", size) + body
    return bytes([flags, size]) + body


def v1_frame(body, more=False):
    """A ZMTP 1.0 frame: the length counts the flags byte."""
    n = len(body) + 1
    head = bytes([n]) if n < 255 else b"\xff" + struct.pack(">Q", n)
    return head + bytes([1 if more else 0]) + body


def zmtp_command(name, data=b""):
    return frame(bytes([len(name)]) + name + data, command=True)


def zmtp_property(name, value):
    return bytes([len(name)]) + name + struct.pack(">I", len(value)) + value


def greeting(revision=3, mechanism=b"NULL"):
    sig = b"\xff" + b"\0" * 8 + b"\x7f"
    if revision < 3:
        return sig + bytes([revision, 5])              # socket type DEALER
    return sig + bytes([3, 0]) + mechanism.ljust(20, b"\0") + b"\0" * 32


class RawPeer:
    """A ZMTP peer on a plain TCP socket."""

    def __init__(self, endpoint):
        host, port = endpoint[len("tcp://"):].rsplit(":", 1)
        self.s = socket.create_connection((host, int(port)), timeout=10)

    def read_exact(self, n):
        data = b""
        while len(data) < n:
            chunk = self.s.recv(n - len(data))
            assert chunk, "the server closed the connection"
            data += chunk
        return data

    def null_handshake(self):
        """ZMTP 3.0, NULL mechanism, a READY without Identity: the ROUTER
        will know this peer by a random routing id only."""
        self.s.sendall(greeting() + zmtp_command(
            b"READY", zmtp_property(b"Socket-Type", b"DEALER")))
        assert self.read_exact(64)[10] == 3          # the server's greeting
        flags, size = self.read_exact(2)
        assert flags & 4                             # its READY command
        assert self.read_exact(size)[:6] == b"\x05READY"
        return self

    def stream(self, chunks, pid):
        """Sends until the server closes the connection; returns (bytes
        sent, the largest RSS growth in KiB seen meanwhile and after)."""
        base = peak = rss_kb(pid)
        sent = 0
        try:
            for chunk in chunks:
                self.s.sendall(chunk)
                sent += len(chunk)
                peak = max(peak, rss_kb(pid))
        except (BrokenPipeError, ConnectionResetError):
            pass
        time.sleep(0.2)              # whatever the server still reads
        return sent, max(peak, rss_kb(pid)) - base

    def closed_by_server(self, timeout=5):
        """True when the server closes the connection within `timeout`
        (whatever it still sends meanwhile, such as pings, is read)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            self.s.settimeout(max(0.01, end - time.monotonic()))
            try:
                if not self.s.recv(65536):
                    return True
            except ConnectionResetError:
                return True
            except socket.timeout:
                break
        return False

    def close(self):
        self.s.close()


def connections_to(port):
    """Local ports of the established TCP connections to `port` on
    127.0.0.1 (/proc/net/tcp): a node that reconnects shows a new one."""
    out = set()
    with open("/proc/net/tcp") as f:
        for line in list(f)[1:]:
            local, remote, state = line.split()[1:4]
            if state == "01" and remote == "0100007F:%04X" % port:
                out.add(int(local.split(":")[1], 16))
    return out


def huge_frame(total):
    """One frame announced as 8 GiB, then `total` bytes of it."""
    yield frame(b"", more=False, size=8 << 30)
    piece = b"x" * MiB
    for _ in range(total // MiB):
        yield piece


def endless_multipart(total):
    """1 MiB parts, each with MORE set: a message that never ends."""
    part = frame(b"x" * MiB, more=True)
    for _ in range(total // MiB):
        yield part


def serving_node(srv, identity=b"node1"):
    srv.node(identity)
    assert get_ok(srv)[2] == b"hello from " + identity


def attack(srv, chunks, handshake=True):
    peer = RawPeer(srv.endpoint)
    if handshake:
        peer.null_handshake()
    sent, grown = peer.stream(chunks, srv.pid)
    closed = peer.closed_by_server()
    peer.close()
    return sent, grown, closed


def test_huge_frame_announcement_is_refused_at_its_header(gateway):
    srv = gateway(env=memory_env())
    serving_node(srv)
    sent, grown, closed = attack(srv, huge_frame(STREAMED))
    assert grown < GROWTH_KB, "RSS grew by %d KiB after %d bytes" % (
        grown, sent)
    assert closed and sent < STREAMED
    assert srv.alive()
    assert get_ok(srv)[2] == b"hello from node1"


def test_endless_multipart_message_is_cut_at_its_fourth_frame(gateway):
    srv = gateway("node1 node2", env=memory_env())
    serving_node(srv)
    sent, grown, closed = attack(srv, endless_multipart(STREAMED))
    assert grown < GROWTH_KB, "RSS grew by %d KiB after %d bytes" % (
        grown, sent)
    assert closed and sent < STREAMED
    srv.wait_log(r"closed the node connection from 127\.0\.0\.1 port \d+: "
                 r"a message of more than 3 frames")
    assert get_ok(srv)[2] == b"hello from node1"
    srv.node(b"node2")               # a node connecting afterwards works
    assert wait_for(lambda: 'node "node2" is available' in srv.error_log())


def test_commands_before_the_handshake_are_bounded(gateway):
    """Before its READY, an anonymous peer can make the server hold no
    more than a small command frame: an 8 GiB one is refused at its
    header, and so is a 1 MiB one (MaxFrameSize is for messages)."""
    srv = gateway(env=memory_env())
    serving_node(srv)
    huge = [greeting(), frame(b"", command=True, size=8 << 30)]
    huge += [b"x" * MiB] * (STREAMED // MiB)
    sent, grown, closed = attack(srv, huge, handshake=False)
    assert grown < GROWTH_KB, "RSS grew by %d KiB after %d bytes" % (
        grown, sent)
    assert closed and sent < STREAMED
    peer = RawPeer(srv.endpoint)
    try:                             # the server may close mid-send
        peer.s.sendall(greeting() + frame(b"\x05READY" + b"x" * MiB,
                                          command=True))
    except (BrokenPipeError, ConnectionResetError):
        pass
    assert peer.closed_by_server()
    peer.close()
    srv.wait_log(r"a ZMTP command frame larger than 8 KiB")
    assert get_ok(srv)[2] == b"hello from node1"


def test_node_messages_over_the_limits_disconnect_the_node(gateway):
    """A node's message of 4 frames, or with a frame over MaxFrameSize, is
    refused as it arrives and its connection closed (libzmq reconnects
    the node); a frame of exactly MaxFrameSize still goes through."""
    srv = gateway("big evil", zmq="    MaxFrameSize 64K\n")
    limit = 64 * 1024

    def exact(node, sid, env):
        node.send(sid, b"headers", b"HTTP/1.1 200 OK\r\nContent-Length: "
                  b"%d\r\n\r\n" % limit)
        node.send(sid, b"body", b"y" * limit)
    srv.node(b"big", exact)
    status, _, body = get_ok(srv)
    assert status == 200 and body == b"y" * limit
    evil = srv.node(b"evil", None)
    srv.wait_log(r'node "evil" is available')
    evil.send(b"", b"pong", b"", b"extra")               # 4 frames
    srv.wait_log(r"a message of more than 3 frames")
    evil.send(b"\0" * 16, b"body", b"x" * (limit + 1))   # over MaxFrameSize
    srv.wait_log(r"a frame larger than MaxFrameSize")
    assert srv.alive()
    assert get_ok(srv)[2] == b"y" * limit


def sockets(pid):
    """The process's socket descriptors: what a relayed connection holds.
    Not every descriptor: under TSan the runtime opens pipes to its
    symbolizer whenever it matches a report against the suppressions."""
    n = 0
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            n += os.readlink("/proc/%d/fd/%s" % (pid, fd)).startswith("socket:")
        except FileNotFoundError:      # closed while we looked
            pass
    return n


def test_relayed_connections_are_capped(gateway):
    """Each relayed connection holds three descriptors and two buffers:
    past NodeConnections a new one is closed at accept, so idle peers
    cannot pile them up; one that leaves makes room again."""
    srv = gateway(zmq="    NodeConnections 3\n")
    serving_node(srv)                # the first of the three
    fds = sockets(srv.pid)
    idle = [RawPeer(srv.endpoint) for _ in range(2)]
    extra = [RawPeer(srv.endpoint) for _ in range(20)]
    assert all(p.closed_by_server() for p in extra)
    srv.wait_log(r"refused a node connection to tcp://127\.0\.0\.1:\d+: "
                 r"NodeConnections \(3\) reached")
    assert not any(p.closed_by_server(timeout=0.2) for p in idle)
    grown = sockets(srv.pid) - fds
    assert grown <= 2 * 3, "%d descriptors for 2 relayed peers" % grown
    for p in idle + extra:
        p.close()
    assert get_ok(srv)[2] == b"hello from node1"
    # room again once the idle ones left (the guard notices their close)
    assert wait_for(lambda: sockets(srv.pid) <= fds)
    late = RawPeer(srv.endpoint).null_handshake()
    assert not late.closed_by_server(timeout=0.5)
    late.close()


def test_pyzmq_node_with_heartbeats_through_the_guard(gateway):
    """ZMTP 3.1 PING/PONG commands cross the relay both ways: the node
    drops a connection that sends no PONG within 200 ms, and keeps this
    one."""
    srv = gateway()
    ctx = zmq.Context.instance()
    ctx.setsockopt(zmq.HEARTBEAT_IVL, 50)              # for the next socket
    ctx.setsockopt(zmq.HEARTBEAT_TIMEOUT, 200)
    try:
        node = srv.node(b"node1")
    finally:
        ctx.sockopts.pop(zmq.HEARTBEAT_IVL)
        ctx.sockopts.pop(zmq.HEARTBEAT_TIMEOUT)
    assert node.sock.getsockopt(zmq.HEARTBEAT_IVL) == 50
    assert get_ok(srv)[2] == b"hello from node1"
    port = int(srv.endpoint.rsplit(":", 1)[1])
    before = connections_to(port)
    time.sleep(1)                    # some 20 heartbeats
    assert connections_to(port) == before and len(before) == 1
    assert srv.http("GET", "/")[2] == b"hello from node1"


def old_peer(srv, revision, identity):
    """A node speaking ZMTP 2.0 (libzmq 3.x) or 1.0 (libzmq 2.x, no
    greeting) on a plain socket: identity message, then a `pong`."""
    peer = RawPeer(srv.endpoint)
    if revision == 1:
        peer.s.sendall(greeting(1) + frame(identity) + frame(b"", True) +
                       frame(b"pong", True) + frame(b""))
    else:
        peer.s.sendall(v1_frame(identity) + v1_frame(b"", True) +
                       v1_frame(b"pong", True) + v1_frame(b""))
    return peer


def test_zmtp_2_0_and_1_0_nodes_pass_the_guard(gateway):
    srv = gateway("old2 old1")
    two = old_peer(srv, 1, b"old2")
    one = old_peer(srv, 0, b"old1")
    srv.wait_log(r'node "old2" is available')
    srv.wait_log(r'node "old1" is available')
    # and their framings are read: a 4-frame message closes each
    two.s.sendall(frame(b"", True) + frame(b"pong", True) +
                  frame(b"", True) + frame(b""))
    one.s.sendall(v1_frame(b"", True) + v1_frame(b"pong", True) +
                  v1_frame(b"", True) + v1_frame(b""))
    assert two.closed_by_server() and one.closed_by_server()
    two.close()
    one.close()


def test_curve_endpoint_bounds_handshake_frames(gateway, tmp_path):
    """CURVE is not relayed: ZMQ_MAXMSGSIZE refuses an 8 GiB HELLO at its
    header; a listed node's frame of exactly MaxFrameSize (33 bytes more
    on the wire) still passes."""
    spub, ssec = zmq.curve_keypair()
    npub, nsec = zmq.curve_keypair()
    keys = tmp_path / "keys"
    keys.write_text(npub.decode() + "\n")
    srv = gateway("web-*", env=memory_env(),
                  zmq="    MaxFrameSize 64K\n    Curve on\n"
                      "    CurveSecretKey %s\n    CurveKeys %s\n"
                      % (ssec.decode(), keys))
    limit = 64 * 1024

    def exact(node, sid, env):
        node.send(sid, b"headers", b"HTTP/1.1 200 OK\r\nContent-Length: "
                  b"%d\r\n\r\n" % limit)
        node.send(sid, b"body", b"y" * limit)
    srv.node(b"web-1", exact, curve=(spub, npub, nsec))
    status, _, body = get_ok(srv)
    assert status == 200 and len(body) == limit
    peer = RawPeer(srv.endpoint)
    peer.s.sendall(greeting(mechanism=b"CURVE"))
    sent, grown = peer.stream(huge_frame(STREAMED), srv.pid)
    assert grown < GROWTH_KB, "RSS grew by %d KiB after %d bytes" % (
        grown, sent)
    assert peer.closed_by_server() and sent < STREAMED
    peer.close()
    assert get_ok(srv)[0] == 200


def test_without_the_guard_frames_are_still_bounded(gateway):
    """NodeGuard off (trusted networks): libzmq accepts the nodes itself,
    and ZMQ_MAXMSGSIZE still refuses the 8 GiB announcement at once."""
    srv = gateway(env=memory_env(), zmq="    NodeGuard off\n")
    assert "node guard on" not in srv.error_log()
    serving_node(srv)
    sent, grown, closed = attack(srv, huge_frame(STREAMED))
    assert grown < GROWTH_KB, "RSS grew by %d KiB after %d bytes" % (
        grown, sent)
    assert closed and sent < STREAMED
    assert get_ok(srv)[2] == b"hello from node1"


def test_guard_listens_on_ipv6_and_host_names(tremolo):
    ports = {}
    for name, host in (("v6", "[::1]"), ("name", "localhost")):
        srv = tremolo(plugins=("liana", "zmq"), sites={"default": (
            "[HOST]\n    ServerName 127.0.0.1\n    Default on\n"
            "    Handler zmq\n[ZMQ]\n    Node node1\n")},
            plugin_confs={"zmq": "[ZMQ]\n    Bind tcp://%s:{port1}\n"
                                 "    PingFreq 500ms\n" % host})
        ports[name] = srv.ports["port1"]
        srv.wait_log(r"nodes connect to tcp://%s:\d+ \(node guard on\)"
                     % host.replace("[", r"\[").replace("]", r"\]"))
        ctx = zmq.Context.instance()
        node = ctx.socket(zmq.DEALER)
        node.setsockopt(zmq.IPV6, 1)
        node.setsockopt(zmq.LINGER, 0)
        node.setsockopt(zmq.IDENTITY, b"node1")
        node.connect("tcp://%s:%d" % (host, ports[name]))
        node.send_multipart([b"", b"pong", b""])
        srv.wait_log(r'node "node1" is available')
        node.close()
        srv.stop()


def test_guard_refuses_endpoints_it_cannot_bind(check_config):
    for bind, why in (("tcp://lo:5999", "lo is a network interface"),
                      ("tcp://127.0.0.1:*", "needs a fixed port"),
                      ("tcp://::1:5999", "goes in brackets")):
        rc, out = check_config(plugins=("liana", "zmq"), plugin_confs={
            "zmq": "[ZMQ]\n    Bind %s\n" % bind})
        assert rc == 1, out
        assert "zmq.conf:2: Bind: %s: " % bind in out and why in out, out
        assert "NodeGuard off" in out
    # libzmq binds an interface by name itself, without the guard
    rc, out = check_config(plugins=("liana", "zmq"), plugin_confs={
        "zmq": "[ZMQ]\n    Bind tcp://lo:5999\n    NodeGuard off\n"})
    assert rc == 0, out
