"""A request answered before its body was read (stage 20's auth 401, a
413, static 404/405) has that body read and dropped, up to MaxDiscardBody,
and the next pipelined request is answered on the same connection; past
the bound the connection closes after the answer, saying so when it can.
(mandril decides at connect time, before any request: it answers nothing.)
"""

import pytest

from plugin_util import tremolo_passwd
from tremolo_harness import DEFAULT_SITE, build_request, parse_responses

INDEX = b"<html>public index</html>\n"
FILES = {
    "htdocs/index.html": INDEX,
    "htdocs/private/a.txt": b"secret\n",
}
SITE = DEFAULT_SITE + ("[AUTH]\n    Location /private\n"
                       "    Realm Staff\n    Users private.users\n")
MIB = 1024 * 1024


def chunked(payload, size=64 * 1024):
    out = b""
    for i in range(0, len(payload), size):
        piece = payload[i:i + size]
        out += b"%x;ext=1\r\n" % len(piece) + piece + b"\r\n"
    return out + b"0\r\nX-Trailer: 1\r\n\r\n"


def with_body(method, path, kind):
    """One request carrying a body: 5 bytes or 1 MiB with Content-Length,
    or 1 MiB chunked."""
    if kind == "5 bytes":
        return build_request(method, path, body=b"hello")
    payload = bytes(range(256)) * (MIB // 256)
    if kind == "1 MiB":
        return build_request(method, path, body=payload)
    return build_request(method, path,
                         {"Transfer-Encoding": "chunked"}) + chunked(payload)


def final_get():
    return build_request("GET", "/", {"Connection": "close"})


def start(tremolo, server=""):
    srv = tremolo(plugins=("liana", "auth"), sites={"default": SITE},
                  files=FILES, server=server, start=False)
    rc, err = tremolo_passwd("-c", srv.conf_dir / "private.users", "alice",
                             password="s3cret")
    assert rc == 0, err
    return srv.start()


@pytest.fixture
def srv(tremolo):
    return start(tremolo)


def assert_next_answered(srv, first, status):
    data, closed = srv.raw(first + final_get(), timeout=10)
    got = parse_responses(data)
    assert [r.status for r in got] == [status, 200], data[:400]
    assert "close" not in got[0].headers.get("connection", "")
    assert got[1].body == INDEX and closed


BODIES = ("5 bytes", "1 MiB", "chunked")


@pytest.mark.parametrize("kind", BODIES)
def test_auth_401_then_next_request(srv, kind):
    assert_next_answered(srv, with_body("POST", "/private/a.txt", kind), 401)


@pytest.mark.parametrize("kind", BODIES)
def test_static_405_then_next_request(srv, kind):
    assert_next_answered(srv, with_body("POST", "/index.html", kind), 405)


@pytest.mark.parametrize("kind", BODIES)
def test_static_404_then_next_request(srv, kind):
    assert_next_answered(srv, with_body("GET", "/missing.txt", kind), 404)


@pytest.mark.parametrize("kind", ("5 bytes", "1 MiB"))
def test_413_then_next_request(tremolo, kind):
    # Content-Length over MaxRequestBody: answered before any byte of it
    srv = start(tremolo, server="MaxRequestBody 4")
    assert_next_answered(srv, with_body("POST", "/index.html", kind), 413)


def test_body_sent_after_the_answer_is_dropped(srv):
    with srv.connect() as c:
        c.send(b"POST /private/a.txt HTTP/1.1\r\nHost: a\r\n"
               b"Content-Length: 5\r\n\r\n")
        assert c.read_response().status == 401
        c.send(b"hello" + build_request("GET", "/"))
        r = c.read_response()
        assert r.status == 200 and r.body == INDEX


def test_expect_continue_answered_early_closes(srv):
    # the client waits for "100 Continue" and will never send the body
    with srv.connect() as c:
        c.send(b"POST /private/a.txt HTTP/1.1\r\nHost: a\r\n"
               b"Content-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        r = c.read_response()
        assert r.status == 401 and r.headers["connection"] == "close"
        assert c.closed_by_peer(timeout=5)


# ---- beyond MaxDiscardBody -------------------------------------------------

@pytest.fixture
def bounded(tremolo):
    return start(tremolo, server="MaxDiscardBody 64K")


@pytest.mark.parametrize("method,path,status", [
    ("POST", "/private/a.txt", 401),
    ("POST", "/index.html", 405),
])
def test_length_over_bound_says_close(bounded, method, path, status):
    data, closed = bounded.raw(with_body(method, path, "1 MiB") + final_get(),
                               timeout=10)
    got = parse_responses(data)
    assert [r.status for r in got] == [status], data[:400]
    assert got[0].headers["connection"] == "close" and closed


def test_413_over_bound_says_close(tremolo):
    srv = start(tremolo, server="MaxRequestBody 4\nMaxDiscardBody 64K")
    data, closed = srv.raw(with_body("POST", "/index.html", "1 MiB") +
                           final_get(), timeout=10)
    got = parse_responses(data)
    assert [r.status for r in got] == [413], data[:400]
    assert got[0].headers["connection"] == "close" and closed


def test_chunked_over_bound_closes(bounded):
    # the size is unknown when the answer leaves: the close follows it
    data, closed = bounded.raw(with_body("POST", "/private/a.txt", "chunked")
                               + final_get(), timeout=10)
    assert [r.status for r in parse_responses(data)] == [401], data[:400]
    assert closed
    assert "over MaxDiscardBody" in bounded.error_log()


def test_malformed_chunked_while_dropping_closes(srv):
    bad = (b"POST /private/a.txt HTTP/1.1\r\nHost: a\r\n"
           b"Transfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n")
    data, closed = srv.raw(bad + final_get(), timeout=10)
    assert [r.status for r in parse_responses(data)] == [401], data[:400]
    assert closed


def test_zero_bound_closes_after_any_unread_body(tremolo):
    srv = start(tremolo, server="MaxDiscardBody 0")
    data, closed = srv.raw(with_body("POST", "/private/a.txt", "5 bytes")
                           + final_get())
    got = parse_responses(data)
    assert [r.status for r in got] == [401]
    assert got[0].headers["connection"] == "close" and closed
    # a request without a body is not affected
    assert srv.http("GET", "/")[0] == 200
