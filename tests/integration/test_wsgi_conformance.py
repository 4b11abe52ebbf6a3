"""PEP 3333 conformance of tremolo_wsgi.py against a real Tremolo, on both
node runtimes (the pure-Python one and the C extension _tremolo): the app
is wsgi_conformance_app.py, the client is http.client."""

import http.client
import json

import pytest

from test_plugin_zmq import get_ok
from wsgi_node_util import wsgi_node  # noqa: F401 (fixture)

APP = "wsgi_conformance_app:app"


def conn(srv):
    return http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)


def fetch(srv, method, path, body=None, headers=None):
    c = conn(srv)
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r, data


def test_environ_keys(wsgi_node):
    srv = wsgi_node(APP)
    assert get_ok(srv, "/env")[0] == 200
    r, data = fetch(srv, "GET", "/env?a=1&b=%20x",
                    headers={"X-Custom": "v1", "Accept": "text/x"})
    env = json.loads(data)
    assert r.status == 200
    assert env["REQUEST_METHOD"] == "GET" and env["PATH_INFO"] == "/env"
    assert env["QUERY_STRING"] == "a=1&b=%20x"
    assert env["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert env["wsgi.url_scheme"] == "http"
    assert env["wsgi.version"] == [1, 0] and env["errors_write"]
    assert env["HTTP_X_CUSTOM"] == "v1" and env["HTTP_ACCEPT"] == "text/x"
    assert env["SCRIPT_NAME"] == ""


def test_input_streaming_content_length_and_chunked(wsgi_node):
    srv = wsgi_node(APP)
    get_ok(srv, "/env")
    payload = bytes(range(256)) * 300           # 76800 bytes, many reads
    r, data = fetch(srv, "POST", "/echo", body=payload)
    assert r.status == 200 and data == payload
    assert r.getheader("Content-Length") == str(len(payload))

    def chunks():
        for i in range(0, len(payload), 10000):
            yield payload[i:i + 10000]
    c = conn(srv)
    c.request("POST", "/echo", body=chunks(), encode_chunked=True,
              headers={"Transfer-Encoding": "chunked"})
    r = c.getresponse()
    assert r.status == 200 and r.read() == payload
    c.request("POST", "/lines", body=iter([b"ab\ncd", b"e\n", b"fgh"]),
              encode_chunked=True, headers={"Transfer-Encoding": "chunked"})
    r = c.getresponse()
    assert json.loads(r.read()) == [3, 4, 3]      # readline across pieces
    c.close()


def test_write_callable_and_generator_close(wsgi_node):
    srv = wsgi_node(APP)
    get_ok(srv, "/env")
    r, data = fetch(srv, "GET", "/write")
    assert r.status == 200 and data == b"one two three"
    r, data = fetch(srv, "GET", "/gen?g1")
    assert r.status == 200 and data == b"a" * 10 + b"b" * 10
    assert r.getheader("Transfer-Encoding") == "chunked"
    r, data = fetch(srv, "HEAD", "/gen?g2")
    assert r.status == 200 and data == b""
    assert r.getheader("Content-Length") == "20"
    r, data = fetch(srv, "GET", "/closed")
    assert json.loads(data) == ["g1", "g2"]


def test_exception_before_and_after_head(wsgi_node):
    srv = wsgi_node(APP)
    get_ok(srv, "/env")
    r, data = fetch(srv, "GET", "/boom")
    assert r.status == 500
    c = conn(srv)
    c.request("GET", "/late")
    r = c.getresponse()
    assert r.status == 200 and r.getheader("Content-Length") == "100"
    with pytest.raises(http.client.IncompleteRead) as exc:
        r.read()
    assert exc.value.partial == b"x" * 10          # cut short, not padded
    c.close()
    r, data = fetch(srv, "GET", "/closed")
    assert json.loads(data) == ["late"]            # close() after a failure
    assert b"expected test failure before the head" in srv.node_log.read_bytes()


def test_head_204_304_without_body(wsgi_node):
    srv = wsgi_node(APP)
    get_ok(srv, "/env")
    for code in (204, 304):
        data, closed = srv.raw(b"GET /status/%d HTTP/1.1\r\nHost: a\r\n"
                               b"Connection: close\r\n\r\n" % code)
        head, _, rest = data.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 %d" % code), data
        assert rest == b"" and b"must not" not in data
        assert b"content-length" not in head.lower() or code == 304
        assert b"transfer-encoding" not in head.lower()
    data, _ = srv.raw(b"HEAD /big HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    head, _, rest = data.partition(b"\r\n\r\n")
    assert b"Content-Length: 1048576" in head and rest == b""


def test_large_bodies_both_ways(wsgi_node):
    srv = wsgi_node(APP)
    get_ok(srv, "/env")
    r, data = fetch(srv, "GET", "/big")
    assert r.status == 200 and data == bytes(range(256)) * 4096
    up = bytes(reversed(range(256))) * 4096        # 1 MiB upload
    r, data = fetch(srv, "POST", "/echo", body=up)
    assert r.status == 200 and data == up


def test_keepalive_100_requests_one_connection(wsgi_node):
    srv = wsgi_node(APP)
    get_ok(srv, "/env")
    c = conn(srv)
    for i in range(100):
        c.request("GET", "/env?i=%d" % i)
        r = c.getresponse()
        assert r.status == 200
        assert json.loads(r.read())["QUERY_STRING"] == "i=%d" % i
        assert not r.will_close
    sock = c.sock
    c.request("POST", "/echo", body=b"last")
    r = c.getresponse()
    assert r.read() == b"last" and c.sock is sock  # the same connection
    c.close()
