"""A FastAPI app (Debian python3-fastapi, fastapi_testapp.py) run as a
Tremolo node with one command, `tremolo_asgi.py fastapi_testapp:app`,
driven by curl (JSON route, path parameter, a JSON POST, a streaming
response) and the npm `ws` client (the WebSocket route)."""

import base64
import json
import subprocess

import pytest

from plugin_util import wait_for
from test_asgi_node import asgi  # noqa: F401  (the fixture)
from test_plugin_websocket import WsClients

pytest.importorskip("fastapi")


def curl(srv, path, *args):
    p = subprocess.run(["curl", "-sS", "--max-time", "10", "-i"] + list(args)
                       + ["http://127.0.0.1:%d%s" % (srv.port, path)],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       check=True)
    head, _, body = p.stdout.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return int(lines[0].split()[1]), headers, body


def test_fastapi_http_routes_with_curl(asgi):  # noqa: F811
    srv = asgi(app="fastapi_testapp:app")
    status, headers, body = curl(srv, "/hello")
    assert status == 200 and headers["content-type"] == "application/json"
    assert json.loads(body) == {"hello": "world", "started": True}
    status, _, body = curl(srv, "/items/42?q=abc")
    assert (status, json.loads(body)) == (200, {"item_id": 42, "q": "abc"})
    status, _, body = curl(srv, "/items/notanint")
    assert status == 422                    # FastAPI's validation error
    status, _, body = curl(srv, "/items", "-H",
                           "Content-Type: application/json", "--data",
                           json.dumps({"name": "x", "price": 1.5}))
    assert (status, json.loads(body)) == (200, {"name": "x", "double": 3.0})
    status, headers, body = curl(srv, "/stream?n=4")
    assert status == 200 and headers["transfer-encoding"] == "chunked"
    assert body == b"".join(b"line %d\n" % i for i in range(4))
    status, _, _ = curl(srv, "/nowhere")
    assert status == 404


def test_fastapi_websocket_route_with_ws(asgi, tmp_path):  # noqa: F811
    srv = asgi(app="fastapi_testapp:app")
    c = WsClients(log_dir=tmp_path)
    try:
        ev = c.open("a", srv.ws_url + "/ws/lobby")
        assert ev["ev"] == "open", ev
        c.send_text("a", "hello")
        c.send_bytes("a", b"\x01\x02\x03")
        got = c.wait_messages("a", 3)
        assert json.loads(base64.b64decode(got[0]["b64"])) == {"room": "lobby"}
        assert base64.b64decode(got[1]["b64"]) == b"HELLO"
        assert got[2]["binary"] and base64.b64decode(got[2]["b64"]) == \
            b"\x03\x02\x01"
        c.send_text("a", "bye")             # the app closes with 4000
        ev = c.wait(lambda e: e["ev"] == "close" and e["id"] == "a", 10)
        assert ev["code"] == 4000
        c.open("b", srv.ws_url + "/ws/x")
        c.wait_messages("b", 1)
        c.cmd(op="close", id="b", code=4100)  # the client closes: the app
        c.wait(lambda e: e["ev"] == "close" and e["id"] == "b", 10)

        def closed():
            return json.loads(curl(srv, "/closed")[2])["closed"]
        assert wait_for(lambda: 4100 in closed(), 10), closed()
    finally:
        c.close()
