"""HTTP/1.1 on raw sockets: error statuses, smuggling defences, keep-alive,
pipelining, timeouts, headers, and 1,000 concurrent keep-alive clients."""

import email.utils
import re
import resource
import selectors
import socket
import threading
import time

import pytest

from tremolo_harness import (DEFAULT_INDEX, build_request, parse_responses,
                             version)

A = b"file a\n"
B = b"file bb\n"
C = b"file ccc\n" * 100
FILES = {"htdocs/index.html": DEFAULT_INDEX, "htdocs/a.txt": A,
         "htdocs/b.txt": B, "htdocs/c.txt": C}


def status_of(data):
    m = re.match(rb"HTTP/1\.[01] (\d{3})", data)
    assert m, "no status line in %r" % data[:200]
    return int(m.group(1))


@pytest.fixture
def srv(tremolo):
    return tremolo(files=FILES, server="MaxRequestBody 1K")


# ---- error statuses -----------------------------------------------------------

@pytest.mark.parametrize("raw,want", [
    (b"GARBAGE\r\n\r\n", 400),
    (b"GET\r\n\r\n", 400),
    (b"GET / HTTP/1.1 extra\r\nHost: x\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: x\r\nNo colon here\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: x\r\nBad Name: v\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\n\r\n", 400),                    # no Host in 1.1
    (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
    (b"BREW / HTTP/1.1\r\nHost: x\r\n\r\n", 501),
    (b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505),
    (b"GET / HTTP/3.0\r\nHost: x\r\n\r\n", 505),
    (b"GET / HTTX/1.1\r\nHost: x\r\n\r\n", 400),
])
def test_bad_requests(srv, raw, want):
    data, closed = srv.raw(raw)
    assert status_of(data) == want, data[:300]
    assert closed, "connection left open after %d" % want


def test_request_line_too_long_414(srv):
    raw = b"GET /" + b"a" * 10000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"
    data, closed = srv.raw(raw)
    assert status_of(data) == 414 and closed


def test_header_block_too_large_431(srv):
    hdrs = b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 1000) for i in range(40))
    data, closed = srv.raw(b"GET / HTTP/1.1\r\nHost: x\r\n" + hdrs + b"\r\n")
    assert status_of(data) == 431 and closed


def test_too_many_headers_431(tremolo):
    srv = tremolo(server="MaxHeaders 10")
    hdrs = b"".join(b"X-H%d: v\r\n" % i for i in range(20))
    data, _ = srv.raw(b"GET / HTTP/1.1\r\nHost: x\r\n" + hdrs + b"\r\n")
    assert status_of(data) == 431


def test_body_over_limit_413(srv):
    # the body is dropped (it is within MaxDiscardBody) and the connection
    # goes on (test_core_early_answer.py has the other cases)
    data, closed = srv.raw(b"POST /a.txt HTTP/1.1\r\nHost: x\r\n"
                           b"Content-Length: 5000\r\n\r\n" + b"x" * 5000 +
                           build_request("GET", "/a.txt",
                                         {"Connection": "close"}))
    assert [r.status for r in parse_responses(data)] == [413, 200] and closed


def test_body_over_limit_413_before_body_is_sent(srv):
    """The limit is enforced on the announced length: no need to upload."""
    data, _ = srv.raw(b"POST /a.txt HTTP/1.1\r\nHost: x\r\n"
                      b"Content-Length: 100000000\r\n\r\n", timeout=3)
    assert status_of(data) == 413


@pytest.mark.parametrize("raw", [
    # Content-Length together with Transfer-Encoding.
    b"POST /a.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    b"POST /a.txt HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
    b"Content-Length: 4\r\n\r\n0\r\n\r\n",
    # Duplicate Content-Length, different and equal values.
    b"POST /a.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
    b"Content-Length: 5\r\n\r\nabcde",
    b"POST /a.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
    b"Content-Length: 4\r\n\r\nabcd",
    b"POST /a.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 4, 4\r\n\r\nabcd",
    b"POST /a.txt HTTP/1.1\r\nHost: x\r\nContent-Length: +4\r\n\r\nabcd",
    b"POST /a.txt HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
    # Bare LF and bare CR line endings.
    b"GET / HTTP/1.1\nHost: x\n\n",
    b"GET / HTTP/1.1\r\nHost: x\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\rX: y\r\n\r\n",
    # obs-fold.
    b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n\tb\r\n\r\n",
    # Whitespace before the colon.
    b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length : 0\r\n\r\n",
    # Unknown transfer coding, and chunked not last.
    b"POST /a.txt HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",
    b"POST /a.txt HTTP/1.1\r\nHost: x\r\n"
    b"Transfer-Encoding: chunked, gzip\r\n\r\n",
])
def test_smuggling_rejected_and_closed(srv, raw):
    data, closed = srv.raw(raw + b"GET /b.txt HTTP/1.1\r\nHost: x\r\n\r\n")
    status = status_of(data)
    assert status in (400, 501) if b"gzip" in raw else status == 400, data
    assert closed
    # The smuggled second request was never answered.
    assert B not in data
    assert data.count(b"HTTP/1.1 ") == 1


def test_bad_chunk_size_rejected(srv):
    data, closed = srv.raw(b"POST /a.txt HTTP/1.1\r\nHost: x\r\n"
                           b"Transfer-Encoding: chunked\r\n\r\n"
                           b"zz\r\nhello\r\n0\r\n\r\n")
    assert closed
    # One error answer (or a bare close), never a second response made of
    # the bytes after the bad chunk.
    assert data.count(b"HTTP/1.1 ") <= 1, data
    if data:
        assert status_of(data) in (400, 405, 413), data


def test_server_still_serves_after_bad_requests(srv):
    for raw in (b"\x00\x01\x02\r\n\r\n", b"GET / HTTP/1.1\r\n" * 50,
                b"\r\n" * 100, b"G" * 20000):
        srv.raw(raw, timeout=2)
    status, _, body = srv.http("GET", "/a.txt")
    assert status == 200 and body == A


def test_leading_empty_lines_tolerated(srv):
    """RFC 9112 2.2: a server SHOULD ignore at least one empty line before
    the request line."""
    data, _ = srv.raw(b"\r\nGET /a.txt HTTP/1.1\r\nHost: x\r\n"
                      b"Connection: close\r\n\r\n")
    assert status_of(data) == 200 and data.endswith(A)


# ---- headers every response carries -----------------------------------------

def test_server_and_date_headers(srv):
    status, h, _ = srv.http("GET", "/a.txt")
    assert h["server"] == "tremolo/%s" % version()
    when = email.utils.parsedate_to_datetime(h["date"])
    assert abs(when.timestamp() - time.time()) < 5
    assert h["date"].endswith(" GMT")
    # Error responses carry them too.
    status, h, _ = srv.http("GET", "/missing")
    assert status == 404 and h["server"].startswith("tremolo") and h["date"]


def test_hide_version(tremolo):
    srv = tremolo(server="HideVersion on")
    status, h, _ = srv.http("GET", "/")
    assert status == 200 and h["server"] == "tremolo"


def test_date_header_advances(srv):
    d1 = email.utils.parsedate_to_datetime(srv.http("GET", "/")[1]["date"])
    time.sleep(2.1)
    d2 = email.utils.parsedate_to_datetime(srv.http("GET", "/")[1]["date"])
    assert 1 <= (d2 - d1).total_seconds() <= 4


# ---- keep-alive and pipelining ----------------------------------------------

def test_keepalive_sequential(srv):
    with srv.connect() as c:
        for path, want in (("/a.txt", A), ("/b.txt", B), ("/c.txt", C),
                           ("/a.txt", A)):
            r = c.request("GET", path)
            assert r.status == 200 and r.body == want
            assert r.headers.get("connection", "").lower() != "close"


def test_pipelining_in_order(srv):
    paths = ["/a.txt", "/b.txt", "/c.txt", "/missing", "/b.txt", "/a.txt"]
    blob = b"".join(build_request("GET", p) for p in paths)
    with srv.connect() as c:
        c.send(blob)
        got = [c.read_response() for _ in paths]
    want = [A, B, C, None, B, A]
    for r, w, p in zip(got, want, paths):
        if w is None:
            assert r.status == 404, p
        else:
            assert (r.status, r.body) == (200, w), p


def test_pipelining_with_head_and_close(srv):
    blob = (build_request("GET", "/a.txt") + build_request("HEAD", "/c.txt")
            + build_request("GET", "/b.txt", {"Connection": "close"})
            + build_request("GET", "/a.txt"))
    data, closed = srv.raw(blob)
    assert closed
    rs = parse_responses(data, head_methods=(1,))
    assert [r.status for r in rs] == [200, 200, 200], data
    assert rs[0].body == A and rs[1].body == b"" and rs[2].body == B
    assert rs[1].headers["content-length"] == str(len(C))


def test_pipelining_split_at_every_byte(srv):
    """A request arriving in many small pieces is still parsed (resumable
    parser), with a second one behind it in the same segment."""
    blob = build_request("GET", "/a.txt", {"X-Long": "y" * 50}) + \
        build_request("GET", "/b.txt")
    with srv.connect() as c:
        c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(0, len(blob), 7):
            c.send(blob[i:i + 7])
            time.sleep(0.002)
        assert c.read_response().body == A
        assert c.read_response().body == B


def test_connection_close(srv):
    data, closed = srv.raw(build_request("GET", "/a.txt",
                                         {"Connection": "close"}))
    assert closed
    r = parse_responses(data)[0]
    assert r.status == 200 and r.body == A
    assert r.headers["connection"].lower() == "close"


def test_http10_closes_by_default(srv):
    data, closed = srv.raw(b"GET /a.txt HTTP/1.0\r\n\r\n", timeout=3)
    assert closed
    assert re.match(rb"HTTP/1\.[01] 200", data) and data.endswith(A)


def test_http10_keepalive(srv):
    with srv.connect() as c:
        for _ in range(2):
            c.send(b"GET /a.txt HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            r = c.read_response()
            assert r.status == 200 and r.body == A
            assert r.headers["connection"].lower() == "keep-alive"


def test_keepalive_max_requests(tremolo):
    srv = tremolo(files=FILES, server="KeepAliveMaxRequests 3")
    with srv.connect() as c:
        for i in range(3):
            r = c.request("GET", "/a.txt")
            assert r.status == 200
        assert r.headers["connection"].lower() == "close"
        assert c.closed_by_peer(3)


def test_keepalive_off(tremolo):
    srv = tremolo(files=FILES, server="KeepAlive off")
    data, closed = srv.raw(build_request("GET", "/a.txt"), timeout=3)
    assert closed and data.endswith(A)


# ---- timeouts -----------------------------------------------------------------

def test_slow_header_closed_others_served(tremolo):
    srv = tremolo(files=FILES, server="HeaderTimeout 1s")
    slow = srv.connect(timeout=8)
    slow.send(b"GET /a.txt HT")
    t0 = time.monotonic()
    # Meanwhile another client is served at once.
    for _ in range(3):
        status, _, body = srv.http("GET", "/b.txt")
        assert status == 200 and body == B
    assert time.monotonic() - t0 < 1.0
    closed = slow.closed_by_peer(timeout=5)
    elapsed = time.monotonic() - t0
    slow.close()
    assert closed, "half-sent request still open after 5 s"
    assert 0.5 <= elapsed <= 4.0, elapsed


def test_slowloris_trickle_closed(tremolo):
    """One byte every 0.2 s keeps a naive per-read timer alive forever; the
    header timeout must bound the whole head."""
    srv = tremolo(files=FILES, server="HeaderTimeout 1s")
    c = srv.connect(timeout=8)
    t0 = time.monotonic()
    payload = b"GET /a.txt HTTP/1.1\r\nHost: x\r\n" + b"X-A: b\r\n" * 20
    closed_at = None
    try:
        for byte in payload:
            c.send(bytes([byte]))
            time.sleep(0.2)
            if time.monotonic() - t0 > 6:
                break
    except (BrokenPipeError, ConnectionResetError):
        closed_at = time.monotonic() - t0
    if closed_at is None and c.closed_by_peer(timeout=1):
        closed_at = time.monotonic() - t0
    c.close()
    assert closed_at is not None and closed_at < 5, closed_at


def test_keepalive_idle_timeout(tremolo):
    srv = tremolo(files=FILES, server="KeepAliveTimeout 1s")
    with srv.connect(timeout=8) as c:
        assert c.request("GET", "/a.txt").status == 200
        t0 = time.monotonic()
        assert c.closed_by_peer(timeout=5)
        assert 0.5 <= time.monotonic() - t0 <= 4


def test_body_timeout(tremolo):
    srv = tremolo(files=FILES, server="BodyTimeout 1s")
    with srv.connect(timeout=8) as c:
        c.send(b"POST /a.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n"
               b"\r\nonly part of the body")
        t0 = time.monotonic()
        assert c.closed_by_peer(timeout=5)
        assert time.monotonic() - t0 <= 4


# ---- many clients -------------------------------------------------------------

def _raise_nofile(want):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < want:
        new = want if hard == resource.RLIM_INFINITY else min(want, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def test_thousand_concurrent_keepalive_connections(tremolo):
    n = 1000
    # Raised before the server starts: it inherits the limit.
    if _raise_nofile(4096) < 2 * n + 100:
        pytest.skip("RLIMIT_NOFILE too low for %d connections" % n)
    srv = tremolo(files=FILES, workers=2,
                  server="KeepAliveTimeout 60s\nHeaderTimeout 30s")
    socks = []
    try:
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
            s.setblocking(False)
            socks.append(s)
        for rnd in range(2):
            _round_trip(socks, "/c.txt" if rnd else "/a.txt",
                        C if rnd else A)
        # Every connection is still open and usable after both rounds.
        _round_trip(socks, "/b.txt", B)
    finally:
        for s in socks:
            s.close()
    assert srv.alive()


def _round_trip(socks, path, want, timeout=30):
    req = build_request("GET", path)
    sel = selectors.DefaultSelector()
    bufs = {}
    for s in socks:
        s.sendall(req)  # small; fits the empty socket buffer
        sel.register(s, selectors.EVENT_READ)
        bufs[s] = b""
    done = 0
    deadline = time.monotonic() + timeout
    expect_len = None
    while done < len(socks):
        left = deadline - time.monotonic()
        assert left > 0, "%d of %d responses after %d s" % (done, len(socks),
                                                           timeout)
        for key, _ in sel.select(min(left, 1.0)):
            s = key.fileobj
            chunk = s.recv(65536)
            assert chunk, "server closed a keep-alive connection"
            bufs[s] += chunk
            head, sep, body = bufs[s].partition(b"\r\n\r\n")
            if not sep:
                continue
            if expect_len is None:
                m = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head + b"\r\n")
                expect_len = int(m.group(1))
            if len(body) >= expect_len:
                assert head.startswith(b"HTTP/1.1 200"), head
                assert body == want
                sel.unregister(s)
                done += 1
    sel.close()


def test_concurrent_clients_threads(srv):
    """A few threads hammering keep-alive connections get only correct
    answers."""
    errors = []

    def client():
        try:
            with srv.connect() as c:
                for i in range(50):
                    path, want = (("/a.txt", A), ("/c.txt", C))[i % 2]
                    r = c.request("GET", path)
                    if r.status != 200 or r.body != want:
                        errors.append((path, r.status))
        except Exception as e:  # reported below
            errors.append(repr(e))

    ts = [threading.Thread(target=client) for _ in range(8)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(30)
    assert not errors, errors[:5]
