"""A Flask app (Debian python3-flask) as a node: tremolo_wsgi.py against a
real Tremolo on both runtimes, driven by curl."""

import json
import subprocess

import pytest

from test_plugin_zmq import get_ok
from wsgi_node_util import wsgi_node  # noqa: F401 (fixture)

pytest.importorskip("flask")

APP = "flask_node_app:app"


def curl(srv, path, *args):
    """(status, headers text, body) of one curl request."""
    out = subprocess.run(
        ["curl", "-sS", "--max-time", "10", "-D", "-", "-o", "-",
         "http://127.0.0.1:%d%s" % (srv.port, path)] + list(args),
        capture_output=True, check=True)
    head, _, body = out.stdout.partition(b"\r\n\r\n")
    while "-L" in args and body.startswith(b"HTTP/"):   # the last hop's
        head, _, body = body.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, head.decode("latin-1"), body


def test_flask_routes_json_redirect_404(wsgi_node):
    srv = wsgi_node(APP)
    assert get_ok(srv)[0] == 200
    assert curl(srv, "/")[2] == b"hello from flask\n"
    status, _, body = curl(srv, "/hello/ana?lang=pt")
    assert (status, body) == (200, b"hello ana (pt)\n")

    status, head, body = curl(srv, "/items", "-X", "POST", "-H",
                              "Content-Type: application/json",
                              "--data-binary", '{"name": "cup", "n": 2}')
    assert status == 201, body
    assert "content-type: application/json" in head.lower()
    doc = json.loads(body)
    assert doc["item"] == {"name": "cup", "n": 2} and doc["scheme"] == "http"
    status, _, body = curl(srv, "/items/%d" % doc["id"])
    assert status == 200 and json.loads(body) == {"name": "cup", "n": 2}
    status, _, body = curl(srv, "/items", "-X", "POST", "-H",
                           "Content-Type: application/json",
                           "--data-binary", '{"n": 1}')
    assert status == 400 and json.loads(body)["error"] == "name required"

    status, head, _ = curl(srv, "/old")
    assert status == 302 and "location: /hello/moved" in head.lower()
    status, _, body = curl(srv, "/old", "-L")
    assert (status, body) == (200, b"hello moved (en)\n")

    status, _, body = curl(srv, "/items/999")
    assert status == 404 and json.loads(body) == {"error": "not found"}
    status, _, body = curl(srv, "/no/such/page")
    assert status == 404 and b"Not Found" in body


def test_flask_keepalive_through_curl(wsgi_node):
    srv = wsgi_node(APP)
    get_ok(srv)
    # curl reuses one connection for the URLs of one command line
    out = subprocess.run(
        ["curl", "-sS", "--max-time", "10", "-v"] +
        ["http://127.0.0.1:%d/hello/n%d" % (srv.port, i) for i in range(5)],
        capture_output=True, check=True)
    assert out.stdout == b"".join(b"hello n%d (en)\n" % i for i in range(5))
    assert out.stderr.count(b"Re-using existing connection") + \
        out.stderr.count(b"Reusing existing") >= 4
