"""websocket plugin: groups (spec section 3) with real `ws` clients. The
spec's "shared canvas" broadcast (`GROUP:websocket`, with and without
`noecho`), `@sid:websocket` to one session of the same site only, `leave`,
and 5,000 concurrent connections in one group reached by one broadcast
(tests/js/ws_many.js)."""

import json
import time

import pytest

import test_plugin_websocket
from test_plugin_websocket import (RawWS, TEXT, JsProc, msg_bytes, tag_path,
                                   wait_for, ws_site)

# The fixture (servers with the echo node), from test_plugin_websocket.py.
wsgw = test_plugin_websocket.wsgw


def joining(group, noecho=False, greet=True):
    """on_req: join every session to `group` (after `noecho` if asked) and
    tell the client "joined" (a `websocket` queued after the join, so the
    client knows the join was processed)."""
    def on_req(node, sid, v):
        if noecho:
            node.pynode.send(sid, "noecho", b"")
        node.pynode.join(sid, group)
        if greet:
            node.pynode.websocket(sid, b"joined")
    return on_req


def broadcast(group):
    def on_msg(node, sid, mtype, data):
        node.pynode.websocket(sid, data, route=group)
    return on_msg


@pytest.mark.parametrize("noecho", [False, True], ids=["echo", "noecho"])
def test_shared_canvas_broadcast(wsgw, noecho):
    """N=5 clients on /ws joined to "canvas"; each client message goes out
    as `canvas:websocket`: every client gets every other client's messages
    in order (and its own unless noecho), nothing else."""
    n, per = 5, 4
    srv = wsgw(on_req=joining("canvas", noecho), on_msg=broadcast("canvas"))
    c = srv.clients()
    ids = ["c%d" % i for i in range(n)]
    for cid in ids:
        assert c.open(cid, srv.ws_url + "?c=" + cid)["ev"] == "open"
    for cid in ids:
        assert msg_bytes(c.wait_messages(cid, 1)[0]) == b"joined"
    for j in range(per):
        for cid in ids:
            c.send_text(cid, "%s:stroke%d" % (cid, j))
    want = per * (n - 1 if noecho else n)
    for cid in ids:
        got = [msg_bytes(e).decode() for e in c.wait_messages(cid, 1 + want,
                                                             timeout=15)[1:]]
        for other in ids:
            mine = [m for m in got if m.startswith(other + ":")]
            if other == cid and noecho:
                assert mine == [], "%s got its own messages: %s" % (cid, mine)
            else:
                assert mine == ["%s:stroke%d" % (other, j)
                                for j in range(per)], (cid, other, got)
    time.sleep(0.3)                        # and nothing more arrives
    for cid in ids:
        assert len(c.messages(cid)) == 1 + want, (cid, len(c.messages(cid)))


def test_sid_route_to_one_session_of_the_same_site(wsgw):
    """`@<sid>:websocket` reaches exactly that session; a session of
    another site is out of reach; after `leave`, group broadcasts skip the
    session."""
    sites = {"a": ws_site(), "b": ws_site(names="b.test", default=False)}

    def on_req(node, sid, v):
        node.pynode.join(sid, "room")
    srv = wsgw(sites=sites, on_req=on_req, on_msg=None)
    node = srv.node
    conns = {}
    for tag in ("x", "y", "z"):
        conns[tag] = RawWS(srv.port, tag_path(tag))
        conns[tag].handshake()
    other = RawWS(srv.port, tag_path("o"), host="b.test")
    other.handshake()
    sid = {tag: node.sid_of(tag) for tag in ("x", "y", "z", "o")}
    assert node.vars_of(sid["o"])["SERVER_NAME"] == "b.test"
    # x -> @y: only y; y -> @z: only z; x -> @o (other site): nobody
    node.send(sid["x"], b"@" + sid["o"] + b":websocket", b"cross-site")
    node.send(sid["x"], b"@" + sid["y"] + b":websocket", b"for y")
    node.send(sid["y"], b"@" + sid["z"] + b":websocket", b"for z")
    conns["y"].expect_message(TEXT, b"for y")
    conns["z"].expect_message(TEXT, b"for z")
    # a marker on each connection's own session shows what came before it
    for tag in ("x", "y", "z"):
        node.send(sid[tag], "websocket", b"marker")
    node.send(sid["o"], "websocket", b"marker")
    for tag in ("x", "y", "z"):
        conns[tag].expect_message(TEXT, b"marker")
    other.expect_message(TEXT, b"marker")       # not "cross-site"
    # leave: z stops getting the room's broadcasts
    node.send(sid["z"], "leave", b"room")
    node.send(sid["z"], "websocket", b"left")
    conns["z"].expect_message(TEXT, b"left")
    node.send(sid["x"], "room:websocket", b"to the room")
    conns["x"].expect_message(TEXT, b"to the room")
    conns["y"].expect_message(TEXT, b"to the room")
    node.send(sid["z"], "websocket", b"marker2")
    conns["z"].expect_message(TEXT, b"marker2")   # not "to the room"


def test_5000_connections_one_broadcast(wsgw, tmp_path):
    """5,000 `ws` connections from one Node.js process on a server with
    Workers 2, all joined to one group: one `all:websocket` reaches every
    one of them exactly once; they close (1000 back) and the node sees
    5,000 `end`s."""
    count = 5000
    joined = []

    def on_req(node, sid, v):
        node.pynode.join(sid, "all")
        joined.append(sid)
    srv = wsgw(on_req=on_req, on_msg=None, workers=2, unbounded=True)
    t0 = time.monotonic()
    many = JsProc("ws_many.js", [json.dumps({
        "url": srv.ws_url, "count": count, "concurrency": 250,
        "expect": "hello, all 5000"})], log_dir=tmp_path)
    try:
        ready = many.wait(lambda e: e["ev"] == "ready", 90, "all opened")
        assert (ready["opened"], ready["failed"]) == (count, 0), ready
        t_open = time.monotonic() - t0
        if not wait_for(lambda: len(joined) == count, 30):
            many.cmd(op="report")
            rep = many.wait(lambda e: e["ev"] == "report", 10)
            pytest.fail("the node got %d of %d upgrade requests; clients: "
                        "%s\n%s" % (len(joined), count, rep,
                                     srv.error_log()[-2000:]))
        time.sleep(1.0)       # the last joins are processed by the server
        srv.node.send(joined[0], "all:websocket", b"hello, all 5000")
        many.wait(lambda e: e["ev"] == "all", 30, "the broadcast everywhere")
        time.sleep(0.5)
        many.cmd(op="report")
        rep = many.wait(lambda e: e["ev"] == "report", 10)
        assert rep["got"] == count and rep["messages"] == count, rep
        assert rep["wrong"] == 0 and rep["closed"] == 0, rep
        many.cmd(op="close")
        closed = many.wait(lambda e: e["ev"] == "closed", 60, "all closed")
        assert closed["count"] == count, closed
        assert closed["codes"] == {"1000": count}, closed
        if not wait_for(lambda: len(srv.node.of_type("end")) >= count, 30):
            pytest.fail("the node got %d `end`s for %d closed connections"
                        "\n%s" % (len(srv.node.of_type("end")), count,
                                  srv.error_log()[-2000:]))
        ends = {s for s, _ in srv.node.of_type("end")}
        assert ends == set(joined)
        print("5000 clients: opened in %.1f s, all in %.1f s" % (
            t_open, time.monotonic() - t0))
    finally:
        many.close()
