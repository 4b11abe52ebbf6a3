"""websocket + zmq: close codes both ways and `[WEBSOCKET] Accept node`
(what an ASGI adapter needs: websocket.close with a code, the client's
code in websocket.disconnect, and a 403 for a close before accept),
against a real Tremolo, a pyzmq node and raw clients.

* node -> gateway `websocket/close`: body = 2-byte big-endian code and an
  optional UTF-8 reason; the client gets that close frame. An empty body
  is 1000; a code a client could not send, one byte, or a reason that is
  not UTF-8: 1011. Routes work (`GROUP:websocket/close`).
* gateway -> node `websocket/close`: the client's close payload, before
  the session's `end`, when the client closes first (not when it answers
  our close, not when it vanishes).
* `Accept node`: the 101 always waits for the node; `headers` 101 accepts,
  `websocket/close` refuses with 403, another head refuses with itself."""

import struct
import time

from plugin_util import wait_for
from test_plugin_websocket import (CLOSE, TEXT, RawWS, close_payload,  # noqa
                                   tag_path, wsgw)

_n = iter(range(1 << 30))


def connect(srv, **kw):
    tag = "c%d" % next(_n)
    ws = RawWS(srv.port, tag_path(tag), **kw)
    ws.handshake()
    return ws, srv.node.sid_of(tag)


def after(node, sid, typ):
    """Types of what the node got for sid, from the first `typ` on."""
    types = [t for t, s, _ in node.events if s == sid]
    return types[types.index(typ):] if typ in types else []


def test_node_closes_with_code_and_reason(wsgw):
    srv = wsgw(on_msg=None)
    ws, sid = connect(srv)
    srv.node.send(sid, "websocket/close", struct.pack("!H", 4001) +
                  "bye ✓".encode())
    f = ws.expect_close()
    assert f.close_code == 4001 and f.payload[2:] == "bye ✓".encode()
    ws.reply_close(4001)
    ws.expect_eof()
    srv.node.wait_end(sid)
    # the client answered our close: the node hears no websocket/close
    assert not srv.node.of_type("websocket/close", sid)


def test_node_close_empty_is_1000_long_reason_cut(wsgw):
    srv = wsgw(on_msg=None)
    ws, sid = connect(srv)
    srv.node.send(sid, "websocket/close", b"")
    assert ws.expect_close().payload == struct.pack("!H", 1000)
    ws2, sid2 = connect(srv)
    reason = "a" * 122 + "é" + "zzz"            # 127 bytes: cut before é
    srv.node.send(sid2, "websocket/close", struct.pack("!H", 3000) +
                  reason.encode())
    f = ws2.expect_close()
    assert f.close_code == 3000 and f.payload[2:] == b"a" * 122


def test_node_close_invalid_is_1011(wsgw):
    srv = wsgw(on_msg=None)
    for body in (struct.pack("!H", 1005), struct.pack("!H", 1006),
                 struct.pack("!H", 999), struct.pack("!H", 5000), b"\x03",
                 struct.pack("!H", 1000) + b"\xff"):
        ws, sid = connect(srv)
        srv.node.send(sid, "websocket/close", body)
        f = ws.expect_close()
        assert f.close_code == 1011, (body, f)
        ws.close()
    assert srv.wait_log(r"websocket/close holds no valid close code")


def test_client_close_reaches_node_before_end(wsgw):
    srv = wsgw(on_msg=None)
    ws, sid = connect(srv)
    ws.send_frame(CLOSE, close_payload(4000, "done"))
    assert ws.expect_close().close_code == 4000      # echoed
    srv.node.wait_end(sid)
    assert srv.node.of_type("websocket/close", sid) == [
        (sid, struct.pack("!H", 4000) + b"done")]
    assert after(srv.node, sid, "websocket/close") == ["websocket/close",
                                                       "end"]
    # no status code: an empty body
    ws, sid = connect(srv)
    ws.send_frame(CLOSE, b"")
    ws.expect_close()
    srv.node.wait_end(sid)
    assert srv.node.of_type("websocket/close", sid) == [(sid, b"")]
    # gone without a close frame: `end` alone
    ws, sid = connect(srv)
    ws.close()
    srv.node.wait_end(sid)
    assert not srv.node.of_type("websocket/close", sid)


def test_group_route_closes_members(wsgw):
    def join(node, sid, v):
        node.pynode.join(sid, "room")
        node.pynode.websocket(sid, b"joined")
    srv = wsgw(on_req=join, on_msg=None)
    clients = []
    for _ in range(3):
        ws, sid = connect(srv)
        ws.expect_message(TEXT, b"joined")
        clients.append((ws, sid))
    srv.node.send(clients[0][1], "room:websocket/close",
                  struct.pack("!H", 4100) + b"room closed")
    for ws, _ in clients:
        f = ws.expect_close()
        assert f.close_code == 4100 and f.payload[2:] == b"room closed"


def test_accept_node_waits_for_the_node(wsgw):
    def answer(node, sid, v):
        path = v["PATH_INFO"]
        q = v["QUERY_STRING"]
        if "c=accept" in q:
            node.pynode.send(sid, "headers",
                             b"HTTP/1.1 101 Switching Protocols\r\n\r\n")
            node.pynode.websocket(sid, b"hi")
        elif "c=reject" in q:
            node.pynode.send(sid, "websocket/close", struct.pack("!H", 4003))
        elif "c=teapot" in q:
            node.pynode.send(sid, "headers", b"HTTP/1.1 418 I'm a teapot\r\n"
                             b"Content-Length: 3\r\n\r\n")
            node.pynode.send(sid, "body", b"tea")
        elif "c=late" in q:
            node.later(0.5, lambda n: n.pynode.send(
                sid, "headers", b"HTTP/1.1 101 Switching Protocols\r\n\r\n"))
        assert path == "/ws"
    srv = wsgw(ws="Accept node", on_req=answer, on_msg=None)
    ws = RawWS(srv.port, tag_path("accept"))
    r = ws.handshake()
    assert "sec-websocket-protocol" not in r.headers
    ws.expect_message(TEXT, b"hi")
    ws = RawWS(srv.port, tag_path("reject"))
    r = ws.read_response()
    assert r.status == 403 and "sec-websocket-accept" not in r.headers
    ws.expect_eof()
    ws = RawWS(srv.port, tag_path("teapot"))
    r = ws.read_response()
    assert (r.status, r.body) == (418, b"tea")
    # the 101 waits: it comes only with the node's answer
    t0 = time.monotonic()
    ws = RawWS(srv.port, tag_path("late"))
    ws.handshake(timeout=5)
    assert time.monotonic() - t0 >= 0.4


def test_accept_auto_ignores_a_late_101_head(wsgw):
    """Accept auto (the default) without an offer: the 101 is Tremolo's;
    a node that always sends `headers` 101 (tremolo_asgi.py) is fine."""
    def answer(node, sid, v):
        node.pynode.send(sid, "headers",
                         b"HTTP/1.1 101 Switching Protocols\r\n\r\n")
        node.pynode.websocket(sid, b"after")
    srv = wsgw(on_req=answer, on_msg=None)
    ws = RawWS(srv.port, tag_path("auto"))
    ws.handshake()
    ws.expect_message(TEXT, b"after")
    ws.send_frame(TEXT, "still open")
    assert wait_for(lambda: srv.node.of_type("websocket"))
