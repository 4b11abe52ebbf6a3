"""tremolo_asgi.py (plugins/zmq/nodes/python) running a plain ASGI app
(asgi_testapp.py) as a node of a real Tremolo: the request body streamed
as http.request events, a 1 MB upload and download, http.disconnect when
the client goes away, 500 and `end` on exceptions, lifespan, and the
WebSocket mapping (accept, subprotocol, text and binary echo, close codes
both ways, and a close before accept: 403 with `[WEBSOCKET] Accept node`),
driven by raw sockets and the npm `ws` client."""

import hashlib
import json
import os
import signal
import socket
import subprocess
import time

import pytest

from plugin_util import wait_for
from test_plugin_websocket import (BINARY, CLOSE, TEXT, RawWS, WsClients,
                                   close_payload, close_raw, ws_site,
                                   zmq_conf, BASE_SERVER)
from tremolo_harness import HOST, free_port
from wsgi_node_util import ext_dir, node_env

SRC = os.environ["TREMOLO_SRC"]
HELPER = os.path.join(SRC, "plugins", "zmq", "nodes", "python")
HERE = os.path.dirname(os.path.abspath(__file__))


def start_asgi_node(endpoint, app, ident="asgi-1", log=None, extra=(),
                    runtime="pure"):
    """tremolo_asgi.py on the "pure" (RawNode) or "ext" (_tremolo) runtime."""
    env = node_env(runtime)
    return subprocess.Popen(
        ["/usr/bin/python3", os.path.join(HELPER, "tremolo_asgi.py"), app,
         "--id", ident, "--connect", endpoint] + list(extra),
        stdin=subprocess.DEVNULL, stderr=log, env=env, cwd=HERE)


def stop_node(p):
    p.send_signal(signal.SIGTERM)
    try:
        return p.wait(10)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
        return None


@pytest.fixture(params=["pure", "ext"])
def asgi(request, tremolo, tmp_path):
    """asgi(ws="", app="asgi_testapp:app", extra=()) -> a server (liana,
    zmq, websocket) whose /ws... and / go to a tremolo_asgi.py node on the
    parametrized runtime; srv.node_log() is the node's stderr."""
    procs = []
    runtime = request.param
    if runtime == "ext":
        ext_dir()                       # skips (or fails) without _tremolo

    def start(ws="BinaryMessages websocket/binary", app="asgi_testapp:app",
              extra=()):
        endpoint = "tcp://127.0.0.1:%d" % free_port()
        site = ws_site(ws, nodes=("asgi-*",), location="/")
        srv = tremolo(plugins=("liana", "zmq", "websocket"),
                      sites={"default": site},
                      plugin_confs={"zmq": zmq_conf(endpoint)},
                      server=BASE_SERVER)
        log_path = tmp_path / ("node%d.log" % len(procs))
        log = open(log_path, "wb")
        procs.append((start_asgi_node(endpoint, app, log=log, extra=extra,
                                      runtime=runtime), log))
        srv.node_proc = procs[-1][0]
        srv.node_log = lambda: log_path.read_text(errors="replace")
        srv.wait_log(r'node "asgi-1" is available', timeout=10)
        want = "C (_tremolo)" if runtime == "ext" else "pure-Python"
        assert wait_for(lambda: want in srv.node_log(), 5), srv.node_log()
        srv.ws_url = "ws://127.0.0.1:%d" % srv.port
        return srv

    yield start
    close_raw()
    for p, log in procs:
        stop_node(p)
        log.close()


def seen(srv):
    status, _, body = srv.http("GET", "/seen")
    assert status == 200, body
    return json.loads(body)


# ==== HTTP ====================================================================

def test_scope_and_lifespan(asgi):
    srv = asgi()
    status, headers, body = srv.http(
        "GET", "/scope?x=1&y=%C3%A9", headers={"X-Thing": "a b",
                                              "Cookie": "k=v"})
    assert status == 200, body
    s = json.loads(body)
    assert s["type"] == "http" and s["method"] == "GET"
    assert s["asgi"] == {"version": "3.0", "spec_version": "2.3"}
    assert s["http_version"] == "1.1" and s["scheme"] == "http"
    assert s["path"] == "/scope" and s["raw_path"] == "/scope"
    assert s["query_string"] == "x=1&y=%C3%A9"
    assert ["x-thing", "a b"] in s["headers"]
    assert ["cookie", "k=v"] in s["headers"]
    assert s["client"][0] == "127.0.0.1" and s["client"][1] > 0
    assert s["state"] is True          # set by lifespan.startup
    assert seen(srv)["lifespan"] == ["lifespan.startup"]
    # the path is decoded (UTF-8), raw_path is the raw target's
    status, _, body = srv.http("GET", "/sc%6fpe")
    s = json.loads(body)
    assert s["path"] == "/scope" and s["raw_path"] == "/sc%6fpe"


def test_lifespan_shutdown_on_sigterm(asgi, tmp_path):
    srv = asgi()
    assert srv.http("GET", "/seen")[0] == 200
    assert stop_node(srv.node_proc) == 0


def test_request_body_streamed_with_more_body(asgi):
    """A body sent in pieces reaches the app as several http.request
    events, more_body true on all but the last; chunked uploads end at
    Tremolo's end marker."""
    srv = asgi()
    c = srv.connect()
    c.send(b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n")
    time.sleep(0.3)
    c.send(b"01234")
    time.sleep(0.3)
    c.send(b"56789")
    r = c.read_response()
    assert r.status == 200, r.body
    out = json.loads(r.body)
    assert out["len"] == 10
    assert out["sha256"] == hashlib.sha256(b"0123456789").hexdigest()
    ev = out["events"]
    assert len(ev) >= 2 and all(m for _, m in ev[:-1]) and ev[-1][1] is False
    assert sum(n for n, _ in ev) == 10
    # keep-alive: the same connection, a chunked upload
    c.send(b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
           b"\r\n5\r\nhello\r\n")
    time.sleep(0.3)
    c.send(b"6\r\n world\r\n0\r\n\r\n")
    r = c.read_response()
    out = json.loads(r.body)
    assert out["len"] == 11
    assert out["sha256"] == hashlib.sha256(b"hello world").hexdigest()
    assert out["events"][-1][1] is False
    # and a GET: one empty event, more_body false
    r = c.request("GET", "/echo")
    assert json.loads(r.body)["events"] == [[0, False]]
    c.close()


def test_one_megabyte_upload_and_download(asgi):
    srv = asgi()
    data = os.urandom(1 << 20)
    status, _, body = srv.http("POST", "/echo", body=data)
    assert status == 200
    out = json.loads(body)
    assert out["len"] == len(data)
    assert out["sha256"] == hashlib.sha256(data).hexdigest()
    assert len(out["events"]) > 1      # streamed, not one piece
    status, headers, body = srv.http("GET", "/download?n=%d" % (1 << 20))
    assert status == 200 and len(body) == 1 << 20
    assert headers["content-length"] == str(1 << 20)
    assert body == bytes(i % 251 for i in range(1 << 20))


def test_response_encodings(asgi):
    srv = asgi()
    c = srv.connect()
    # streamed, no length: chunked on HTTP/1.1, kept alive
    for _ in range(2):
        r = c.request("GET", "/stream")
        assert r.status == 200
        assert r.headers["transfer-encoding"] == "chunked"
        assert r.body == b"".join(b"part %d\n" % i for i in range(5))
    # streamed with the app's Content-Length
    r = c.request("GET", "/stream-length")
    assert (r.status, r.body) == (200, b"0123456789")
    r = c.request("GET", "/nocontent")
    assert r.status == 204 and r.body == b""
    r = c.request("HEAD", "/download?n=100")
    assert r.status == 200 and r.headers["content-length"] == "100"
    r = c.request("GET", "/download?n=5")
    assert r.body == bytes(range(5))
    c.close()
    # HTTP/1.0: close-delimited, ended by the node
    data, closed = srv.raw(b"GET /stream HTTP/1.0\r\nHost: a\r\n\r\n")
    assert closed and data.startswith(b"HTTP/1.0 200")
    assert data.endswith(b"".join(b"part %d\n" % i for i in range(5)))
    assert b"chunked" not in data.lower()


def test_exceptions_500_before_start_end_after(asgi):
    srv = asgi()
    status, _, body = srv.http("GET", "/boom")
    assert status == 500
    c = srv.connect()
    c.send(b"GET /boom-late HTTP/1.1\r\nHost: a\r\n\r\n")
    with pytest.raises(EOFError):
        c.read_response()              # a chunked body cut short: closed
    assert c.eof and b"partial" in c.buf
    c.close()
    assert "boom before the response" in srv.node_log()
    assert "boom mid-response" in srv.node_log()
    assert srv.http("GET", "/seen")[0] == 200       # still serving


def test_client_gone_mid_request_is_http_disconnect(asgi):
    """A client that sends half its body and leaves: the gateway's `end`
    becomes http.disconnect for the app waiting on receive()."""
    srv = asgi()
    s = socket.create_connection((HOST, srv.port))
    s.sendall(b"POST /wait-disconnect HTTP/1.1\r\nHost: a\r\n"
              b"Content-Length: 100000\r\n\r\n" + b"x" * 3000)
    time.sleep(0.5)
    s.close()
    assert wait_for(lambda: seen(srv)["disconnects"] == [3000], 10), seen(srv)


def test_max_body_413(asgi):
    srv = asgi(extra=("--max-body", "1000"))
    status, _, _ = srv.http("POST", "/echo", body=b"x" * 1001)
    assert status == 413
    status, _, body = srv.http("POST", "/echo", body=b"x" * 1000)
    assert status == 200 and json.loads(body)["len"] == 1000


# ==== WebSocket ===============================================================

def test_ws_accept_echo_text_and_binary_with_ws_client(asgi, tmp_path):
    srv = asgi()
    c = WsClients(log_dir=tmp_path)
    try:
        ev = c.open("a", srv.ws_url + "/ws?q=1")
        assert ev["ev"] == "open" and ev["protocol"] == "", ev
        c.send_text("a", "héllo")
        c.send_bytes("a", b"\x00\xff" * 1000)
        c.send_text("a", "scope")
        got = c.wait_messages("a", 3)
        assert got[0]["binary"] is False
        assert json.loads(json.dumps(got[0]))["len"] == len("héllo".encode())
        assert got[1]["binary"] is True and got[1]["len"] == 2000
        sc = json.loads(__import__("base64").b64decode(got[2]["b64"]))
        assert sc == {"path": "/ws", "query": "q=1", "subprotocols": [],
                      "scheme": "ws"}
        # the client closes with a code: the app hears it
        c.cmd(op="close", id="a", code=4321, reason="done")
        ev = c.wait(lambda e: e["ev"] == "close" and e["id"] == "a", 10)
        assert ev["code"] == 4321
        assert wait_for(lambda: [4321, "done"] in seen(srv)["ws"], 10), \
            seen(srv)
    finally:
        c.close()


def test_ws_subprotocol_chosen_by_app(asgi, tmp_path):
    srv = asgi()
    c = WsClients(log_dir=tmp_path)
    try:
        ev = c.open("a", srv.ws_url + "/ws", protocols=["x", "chat"])
        assert ev["ev"] == "open" and ev["protocol"] == "chat", ev
        c.send_text("a", "hi")
        assert c.wait_messages("a", 1)[0]["b64"] == "aGk="
    finally:
        c.close()


def test_ws_app_closes_with_code_and_reason(asgi):
    srv = asgi()
    ws = RawWS(srv.port, "/ws")
    ws.handshake()
    ws.send_frame(TEXT, "close:4005:going away now")
    f = ws.expect_close()
    assert f.close_code == 4005 and f.payload[2:] == b"going away now"
    ws.reply_close(4005)
    ws.expect_eof()
    ws.close()


def test_ws_client_close_code_and_abnormal_drop(asgi):
    srv = asgi()
    ws = RawWS(srv.port, "/ws")
    ws.handshake()
    ws.send_frame(TEXT, "x")
    ws.expect_message(TEXT, b"x")
    ws.send_frame(CLOSE, close_payload(1001, "bye"))
    f = ws.expect_close()
    assert f.close_code == 1001
    ws.close()
    # a client that drops TCP without a close frame: 1006
    ws = RawWS(srv.port, "/ws")
    ws.handshake()
    ws.send_frame(BINARY, b"\x01")
    ws.expect_message(BINARY, b"\x01")
    ws.close()
    assert wait_for(lambda: [1001, "bye"] in seen(srv)["ws"] and
                    [1006, ""] in seen(srv)["ws"], 10), seen(srv)


def test_ws_reject_403_with_accept_node(asgi):
    """`[WEBSOCKET] Accept node`: the 101 waits for the app, and a close
    before accept is an HTTP 403; an accepting app still works."""
    srv = asgi(ws="BinaryMessages websocket/binary\nAccept node")
    ws = RawWS(srv.port, "/ws/reject")
    r = ws.read_response()
    assert r.status == 403, r.raw_head
    ws.close()
    ws = RawWS(srv.port, "/ws")
    ws.handshake()
    ws.send_frame(TEXT, "still echoes")
    ws.expect_message(TEXT, b"still echoes")
    ws.close()
    # an app failing before accept: 500
    ws = RawWS(srv.port, "/ws/boom")
    r = ws.read_response()
    assert r.status == 500, r.raw_head
    ws.close()


def test_ws_reject_without_accept_node_is_a_close_frame(asgi):
    """With the default `Accept auto` the 101 is already out when the app
    closes: the client gets a close frame with the app's code."""
    srv = asgi()
    ws = RawWS(srv.port, "/ws/reject")
    ws.handshake()
    f = ws.expect_close()
    assert f.close_code == 4003
    ws.close()
    ws = RawWS(srv.port, "/ws/boom")
    ws.handshake()
    assert ws.expect_close().close_code == 1011
    ws.close()
