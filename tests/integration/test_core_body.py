"""Request bodies streamed to a content handler, "100 Continue", and
responses that end later than the request (the test plugin `echo`, see
tests/plugins/echo.c)."""

import os
import socket
import time

from tremolo_harness import build_request, parse_responses

ECHO = os.path.join(os.environ["TREMOLO_BUILD"], "tests", "plugins",
                    "tremolo-echo.so")
SITE = ("[HOST]\n    ServerName 127.0.0.1 localhost\n    Default on\n"
        "    DocumentRoot htdocs\n    Handler echo\n")


def echo_server(tremolo, server=""):
    return tremolo(plugins=("liana", ECHO), sites={"default": SITE},
                   files={"htdocs/index.html": b"x"}, server=server)


def test_content_length_body_echoed(tremolo):
    srv = echo_server(tremolo)
    status, headers, body = srv.http("POST", "/x", body=b"hello body")
    assert (status, body) == (200, b"hello body")


def test_no_body_still_gets_end_of_body(tremolo):
    srv = echo_server(tremolo)
    status, headers, body = srv.http("GET", "/x")
    assert (status, body, headers["x-echo-chunks"]) == (200, b"", "0")


def test_chunked_body_dechunked(tremolo):
    srv = echo_server(tremolo)
    raw = (b"POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
           b"5;ext=1\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\nX-T: 1\r\n\r\n")
    data, _ = srv.raw(raw + build_request("GET", "/y", {"Connection": "close"}))
    first, second = parse_responses(data)
    assert (first.status, first.body) == (200, b"hello world")
    assert (second.status, second.body) == (200, b"")


def test_large_body_streamed_in_pieces(tremolo):
    srv = echo_server(tremolo)
    payload = os.urandom(3 * 1024 * 1024)
    status, headers, body = srv.http("POST", "/big", body=payload)
    assert status == 200 and body == payload
    # streamed as it arrived, not buffered whole by the core
    assert int(headers["x-echo-chunks"]) > 10


def test_expect_100_continue(tremolo):
    srv = echo_server(tremolo)
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
    s.sendall(b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n"
              b"Expect: 100-continue\r\n\r\n")
    interim = s.recv(100)
    assert interim == b"HTTP/1.1 100 Continue\r\n\r\n", interim
    s.sendall(b"ping")
    data = b""
    while b"ping" not in data:
        chunk = s.recv(4096)
        assert chunk, data
        data += chunk
    s.close()
    assert parse_responses(data)[0].status == 200


def test_async_responses_keep_pipeline_order(tremolo):
    srv = echo_server(tremolo)
    reqs = (build_request("POST", "/slow/1", body=b"first") +
            build_request("POST", "/x", body=b"second") +
            build_request("POST", "/slow/2", body=b"third",
                          headers={"Connection": "close"}))
    t0 = time.monotonic()
    data, closed = srv.raw(reqs)
    bodies = [r.body for r in parse_responses(data)]
    assert bodies == [b"first", b"second", b"third"] and closed
    # two 200 ms waits, one after the other (timers count from the loop's
    # cached wake-up time, so allow a few ms less than 0.4 s)
    assert time.monotonic() - t0 >= 0.35


def test_client_gone_before_async_answer(tremolo):
    srv = echo_server(tremolo)
    for _ in range(20):
        s = socket.create_connection(("127.0.0.1", srv.port))
        s.sendall(build_request("POST", "/slow/x", body=b"abc"))
        s.close()
    time.sleep(0.5)                          # the timers fire on freed state?
    assert srv.http("POST", "/x", body=b"alive")[2] == b"alive"
    assert "ERROR" not in srv.stderr()


def test_chunked_body_over_limit_413(tremolo):
    srv = echo_server(tremolo, server="MaxRequestBody 1K")
    chunk = b"400\r\n" + b"a" * 1024 + b"\r\n"
    raw = (b"POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
           + chunk * 2 + b"0\r\n\r\n")
    data, closed = srv.raw(raw)
    assert parse_responses(data)[0].status == 413 and closed
