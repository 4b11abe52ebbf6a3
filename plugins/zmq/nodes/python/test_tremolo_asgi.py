"""Server-less tests of tremolo_asgi.py: scope building, body streaming,
response encodings and the WebSocket event mapping, message by message.
Each behaviour test runs twice (the `harness` fixture): "py", a fake
runtime standing for the node's sockets with messages handed to
ASGINode.dispatch (the Python adapter, the pure runtime's only path), and
"c", the C runtime's Node connected to a real ROUTER with the C engine
pumping its sockets (bodiless HTTP requests run eagerly in C).

    /usr/bin/python3 -m pytest -q test_tremolo_asgi.py
"""

import asyncio
import contextvars
import os
import random
import struct
import sys
import time

import pytest
import zmq

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import tremolo_asgi  # noqa: E402
from tremolo_asgi import ASGINode, build_scope, decode_uwsgi  # noqa: E402
from tremolo_node import build_uwsgi, parse_uwsgi  # noqa: E402
from test_tremolo_node import _ext_module, bind_routers  # noqa: E402

SID = b"S" * 16
SID2 = b"T" * 16


class FakeRuntime:
    """The runtime interface with no sockets."""

    def __init__(self):
        self.inbox = []
        self.sent = []

    def filenos(self):
        return []

    def recv_nowait(self):
        return self.inbox.pop(0) if self.inbox else None

    def readable(self):
        return bool(self.inbox)

    def send(self, sid, mtype, body, index=0, wait=True):
        self.sent.append((bytes(sid), bytes(mtype), bytes(body), index))

    def stop(self):
        pass

    def close(self):
        pass


def env(**kw):
    e = {"REQUEST_METHOD": "GET", "SCRIPT_NAME": "", "PATH_INFO": "/",
         "QUERY_STRING": "", "SERVER_NAME": "localhost", "SERVER_PORT": "80",
         "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "10.0.0.1",
         "REMOTE_PORT": "40000", "HTTP_HOST": "localhost"}
    e.update(kw)
    return e


def packet(**kw):
    return build_uwsgi(list(env(**kw).items()))


class Harness:
    """An ASGINode on a fresh loop with a FakeRuntime."""

    def __init__(self, app, **kw):
        self.rt = FakeRuntime()
        self.loop = asyncio.new_event_loop()
        self.node = ASGINode(app, self.rt, parse_uwsgi, **kw)
        self.node._loop = self.loop

    def feed(self, *msgs, sid=SID):
        for mtype, body in msgs:
            self.node.dispatch(sid, mtype, body, 0)
        self.settle()

    def settle(self, turns=50):
        """Runs the loop until its requests are done or wait (up to 2 s
        for requests that sleep)."""
        async def spin():
            for _ in range(turns):
                await asyncio.sleep(0)
            deadline = time.monotonic() + 2
            while (any(not t.done() for t in self.node.tasks) and
                   time.monotonic() < deadline):
                await asyncio.sleep(0.005)
        self.loop.run_until_complete(spin())

    def sent(self, sid=SID):
        return [(t, b) for s, t, b, _ in self.rt.sent if s == sid]

    def clear(self):
        self.rt.sent = []

    def close(self):
        for t in list(self.node.tasks):
            t.cancel()
        if self.node._pump_task is not None:
            self.node._pump_task.cancel()
        self.settle()
        self.loop.close()


class CHarness:
    """An ASGINode on the C runtime: its Node connected to a ROUTER on a
    free port, its engine pumping the sockets on a fresh loop."""

    IDENTITY = b"asgi-test"

    def __init__(self, app, **kw):
        ext = _ext_module()
        self.ctx = zmq.Context()
        (self.router,), endpoints = bind_routers(self.ctx, 1)
        self.rt = ext.Node(self.IDENTITY, endpoints, linger_ms=0)
        self.loop = asyncio.new_event_loop()
        _, decode, scope, engine = tremolo_asgi._transport()
        assert engine is ext.ASGIEngine
        self.node = ASGINode(app, self.rt, decode, scope=scope,
                             engine=engine, **kw)
        self.got = []
        self.loop.run_until_complete(self._open())
        # the node's unsolicited pong: the connection is up
        deadline = time.monotonic() + 5
        while not any(t == b"pong" for _, t, _ in self.got):
            assert time.monotonic() < deadline, "the node never connected"
            self.settle(1)

    async def _open(self):
        self.node.open()

    def feed(self, *msgs, sid=SID):
        for mtype, body in msgs:
            self.router.send_multipart([self.IDENTITY, sid, mtype, body])
        self.settle()

    def _collect(self):
        while self.router.poll(0):
            ident, sid, mtype, body = self.router.recv_multipart()
            self.got.append((sid, mtype, body))

    def settle(self, quiet=3):
        """Runs the loop until `quiet` turns of 20 ms brought nothing."""
        idle = 0
        while idle < quiet:
            before = len(self.got)
            self.loop.run_until_complete(asyncio.sleep(0.02))
            self._collect()
            idle = idle + 1 if len(self.got) == before else 0

    def sent(self, sid=SID):
        self._collect()
        return [(t, b) for s, t, b in self.got if s == sid]

    def clear(self):
        self._collect()
        self.got = []

    def close(self):
        self.node.close()
        for t in list(self.node.tasks):
            t.cancel()
        self.loop.run_until_complete(asyncio.sleep(0.01))
        self.loop.close()
        self.rt.close()
        self.router.close(0)
        self.ctx.term()


@pytest.fixture(params=["py", "c"])
def harness(request):
    made = []
    cls = Harness if request.param == "py" else CHarness

    def make(app, **kw):
        h = cls(app, **kw)
        made.append(h)
        return h
    yield make
    for h in made:
        h.close()


@pytest.fixture
def py_harness():
    """The Python adapter alone, for tests that reach into the fake
    runtime."""
    made = []

    def make(app, **kw):
        h = Harness(app, **kw)
        made.append(h)
        return h
    yield make
    for h in made:
        h.close()


def split_head(data):
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(b": ")
        headers[k.lower()] = v
    return lines[0], headers, body


# ---- scope ---------------------------------------------------------------

def test_scope_http():
    s = build_scope(env(REQUEST_METHOD="post", PATH_INFO="/a b/\xc3\xa9",
                        REQUEST_URI="/a%20b/%C3%A9?x=1", QUERY_STRING="x=1",
                        CONTENT_TYPE="text/plain", CONTENT_LENGTH="3",
                        HTTP_X_FORWARDED_FOR="1.2.3.4",
                        HTTP_COOKIE="a=1; b=2"), state={"k": 1})
    assert s["type"] == "http" and s["method"] == "POST"
    assert s["asgi"] == {"version": "3.0", "spec_version": "2.3"}
    assert s["http_version"] == "1.1" and s["scheme"] == "http"
    assert s["path"] == "/a b/\u00e9"
    assert s["raw_path"] == b"/a%20b/%C3%A9"
    assert s["query_string"] == b"x=1" and s["root_path"] == ""
    assert (b"x-forwarded-for", b"1.2.3.4") in s["headers"]
    assert (b"content-type", b"text/plain") in s["headers"]
    assert (b"content-length", b"3") in s["headers"]
    assert (b"cookie", b"a=1; b=2") in s["headers"]
    assert all(k == k.lower() for k, _ in s["headers"])
    assert s["client"] == ("10.0.0.1", 40000)
    assert s["server"] == ("localhost", 80)
    assert s["state"] == {"k": 1}


def test_scope_no_duplicate_content_headers_and_versions():
    s = build_scope(env(CONTENT_TYPE="a/b", HTTP_CONTENT_TYPE="a/b",
                        SERVER_PROTOCOL="HTTP/1.0", HTTPS="on"))
    assert [k for k, _ in s["headers"]].count(b"content-type") == 1
    assert s["http_version"] == "1.0" and s["scheme"] == "https"
    assert build_scope(env(SERVER_PROTOCOL="HTTP/2.0"))["http_version"] == "2"


def test_scope_websocket():
    s = build_scope(env(HTTP_UPGRADE="websocket", PATH_INFO="/chat",
                        HTTP_SEC_WEBSOCKET_PROTOCOL="a, b ,c",
                        UWSGI_SCHEME="https"))
    assert s["type"] == "websocket" and "method" not in s
    assert s["subprotocols"] == ["a", "b", "c"]
    assert s["scheme"] == "wss" and s["path"] == "/chat"


def test_c_scope_agrees_with_build_scope():
    """_tremolo.asgi_scope (the C runtime's scope builder) gives
    build_scope's dict, key order included, for random environs mixing the
    keys it reads with values that trip int(), str.lower(), str.strip(),
    UTF-8 decoding and the latin-1 range; and the C runtime's transport
    hands it to the adapter."""
    ext = _ext_module()
    keys = ["HTTPS", "UWSGI_SCHEME", "HTTP_UPGRADE", "PATH_INFO",
            "REQUEST_URI", "QUERY_STRING", "SCRIPT_NAME", "REMOTE_ADDR",
            "REMOTE_PORT", "SERVER_NAME", "SERVER_PORT", "REQUEST_METHOD",
            "SERVER_PROTOCOL", "CONTENT_TYPE", "CONTENT_LENGTH",
            "HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH",
            "HTTP_SEC_WEBSOCKET_PROTOCOL", "HTTP_X_\xc0B_c", "HTTP_",
            "HTTP_HOST", "X"]
    values = ["", "on", "ON", "1", "Yes", "https", "websocket", "WebSocket",
              "/a b", "/\xc3\xa9", "/\xe9", "/p?q=1", "?x", " 12 ", "+5",
              "1_0", "0x10", "-3", "HTTP/1.1", "HTTP/2.0", "HTTP/3.0", "SPDY",
              "HTTP/", "a, b ,,c", " , ", "get", "\xff", "\xa0x\xa0"]
    rng = random.Random(7)
    for _ in range(5000):
        e = {k: rng.choice(values)
             for k in rng.sample(keys, rng.randint(0, len(keys)))}
        state = rng.choice([None, {}, {"db": 1}])
        want = build_scope(e, state)
        got = ext.asgi_scope(e, tremolo_asgi.ASGI_VERSION, state)
        assert got == want and list(got) == list(want), e
        assert got["asgi"] is not tremolo_asgi.ASGI_VERSION
    with pytest.raises(TypeError):
        ext.asgi_scope({}, None)
    if tremolo_asgi.tremolo_node.runtime().__module__ == "_tremolo":
        scope = tremolo_asgi._transport()[2]
        assert scope(env(), {"a": 1}) == build_scope(env(), {"a": 1})


def test_decode_uwsgi_agrees_with_parse_uwsgi():
    """The one-pass decoder gives parse_uwsgi's dict, or its ValueError,
    on valid packets and on mutated ones whose SIZE still matches."""
    good = packet(HTTP_COOKIE="a=1", HTTP_X="\xe9")
    dup = good[4:] + build_uwsgi([("HTTP_COOKIE", "b=2")])[4:]
    dup = struct.pack("<BHB", 0, len(dup) + 4, 0) + dup
    assert decode_uwsgi(dup)["HTTP_COOKIE"] == "a=1; b=2"
    rng = random.Random(12)
    for i in range(20000):
        q = bytearray(rng.choice((good, dup)))
        for _ in range(rng.randint(0, 3)):
            q[rng.randrange(4, len(q))] = rng.choice((0, 1, 255, rng.randrange(256)))
        if rng.random() < 0.3:
            del q[rng.randrange(4, len(q)):]
        q[1:3] = struct.pack("<H", len(q))
        try:
            want = parse_uwsgi(bytes(q))
        except ValueError:
            with pytest.raises(ValueError):
                decode_uwsgi(bytes(q))
        else:
            assert decode_uwsgi(bytes(q)) == want, bytes(q)
    for bad in (b"", b"\x00\x04\x00", b"\x01\x04\x00\x00",
                b"\x00\x05\x00\x00",
                b"\x00\x09\x00\x00\x00\x00\x01\x00x"):     # empty key
        with pytest.raises(ValueError):
            decode_uwsgi(bad)


# ---- request bodies ------------------------------------------------------

def recorder(events, respond=True):
    async def app(scope, receive, send):
        while True:
            m = await receive()
            events.append(m)
            if m["type"] == "http.disconnect" or not m.get("more_body"):
                break
        if respond:
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"text/plain")]})
            await send({"type": "http.response.body", "body": b"ok"})
    return app


def test_body_streamed_by_content_length(harness):
    events = []
    h = harness(recorder(events))
    h.feed((b"uwsgi", packet(REQUEST_METHOD="POST", CONTENT_LENGTH="6")))
    assert events == []                     # waits for the body
    h.feed((b"body", b"abc"))
    assert events == [{"type": "http.request", "body": b"abc",
                       "more_body": True}]
    h.feed((b"body", b"defXX"), (b"body", b""))
    assert events[1] == {"type": "http.request", "body": b"def",
                         "more_body": False}
    assert len(events) == 2


def test_body_chunked_ends_at_the_marker(harness):
    events = []
    h = harness(recorder(events))
    h.feed((b"uwsgi", packet(REQUEST_METHOD="POST",
                             HTTP_TRANSFER_ENCODING="chunked")),
           (b"body", b"one"), (b"body", b"two"))
    assert [e["body"] for e in events] == [b"one", b"two"]
    assert all(e["more_body"] for e in events)
    h.feed((b"body", b""))
    assert events[-1] == {"type": "http.request", "body": b"",
                          "more_body": False}


def test_no_body_is_one_empty_event_then_disconnect(harness):
    events = []

    async def app(scope, receive, send):
        events.append(await receive())
        await send({"type": "http.response.start", "status": 200,
                    "headers": []})
        await send({"type": "http.response.body", "body": b"x"})
        events.append(await receive())      # after the response
    h = harness(app)
    h.feed((b"uwsgi", packet()), (b"body", b""))
    assert events == [{"type": "http.request", "body": b"",
                       "more_body": False}, {"type": "http.disconnect"}]


def test_end_mid_body_is_http_disconnect(harness):
    events = []
    h = harness(recorder(events, respond=False))
    h.feed((b"uwsgi", packet(REQUEST_METHOD="POST", CONTENT_LENGTH="100")),
           (b"body", b"12345"), (b"end", b""))
    assert events[-1] == {"type": "http.disconnect"}
    assert h.sent() == []                   # nobody to answer


def test_spawn_keeps_sessions(harness):
    """Tremolo sends `spawn` at its first health tick, 1 s after it
    started, when it may already have given the node requests: they go
    on."""
    events = []
    h = harness(recorder(events))
    h.feed((b"uwsgi", packet(REQUEST_METHOD="POST", CONTENT_LENGTH="4")),
           (b"body", b"ab"))
    h.node.dispatch(b"", b"spawn", b"", 0)
    h.feed((b"body", b"cd"))
    assert [e["body"] for e in events] == [b"ab", b"cd"]
    assert events[-1]["more_body"] is False
    assert h.sent()[0][1].startswith(b"HTTP/1.1 200 ")


def test_bounded_queue_pauses_reading(py_harness, monkeypatch):
    monkeypatch.setattr(tremolo_asgi, "QUEUE_HIGH", 10)
    monkeypatch.setattr(tremolo_asgi, "QUEUE_LOW", 5)
    gate = asyncio.Event()
    got = []

    async def app(scope, receive, send):
        await gate.wait()
        while True:
            m = await receive()
            got.append(m["body"])
            if not m["more_body"]:
                break
    h = py_harness(app)
    h.rt.inbox = [(SID, b"uwsgi", packet(REQUEST_METHOD="POST",
                                         CONTENT_LENGTH="40"), 0)]
    h.rt.inbox += [(SID, b"body", b"x" * 8, 0) for _ in range(5)]
    h.node._start_pump()
    h.settle()
    assert h.node._over_count == 1
    assert len(h.rt.inbox) == 3             # stopped reading at the mark
    h.loop.call_soon(gate.set)
    h.settle(200)
    assert h.node._over_count == 0 and h.rt.inbox == []
    assert b"".join(got) == b"x" * 40


def test_max_body_413(harness):
    h = harness(recorder([]), max_body=4)
    h.feed((b"uwsgi", packet(REQUEST_METHOD="POST", CONTENT_LENGTH="5")))
    (t, body), (t2, _) = h.sent()
    assert t == b"body" and body.startswith(b"HTTP/1.1 413 ")
    assert t2 == b"end"


# ---- responses -----------------------------------------------------------

def responder(*messages, raise_after=None):
    async def app(scope, receive, send):
        for i, m in enumerate(messages):
            if raise_after == i:
                raise RuntimeError("app failure (expected by the test)")
            await send(m)
        if raise_after == len(messages):
            raise RuntimeError("app failure (expected by the test)")
    return app


START = {"type": "http.response.start", "status": 200,
         "headers": [(b"content-type", b"text/plain")]}


def test_whole_body_is_one_message_with_content_length(harness):
    h = harness(responder(START, {"type": "http.response.body",
                                  "body": b"hello"}))
    h.feed((b"uwsgi", packet()))
    (t, data), = h.sent()                   # ONE message, no `end`
    assert t == b"body"
    status, headers, body = split_head(data)
    assert status == b"HTTP/1.1 200 OK"
    assert headers[b"content-length"] == b"5" and body == b"hello"
    assert b"transfer-encoding" not in headers


def test_streamed_body_is_chunked_on_http11(harness):
    h = harness(responder(
        START, {"type": "http.response.body", "body": b"a", "more_body": True},
        {"type": "http.response.body", "body": b"", "more_body": True},
        {"type": "http.response.body", "body": b"b", "more_body": True},
        {"type": "http.response.body", "body": b""}))
    h.feed((b"uwsgi", packet()))
    sent = h.sent()
    assert [t for t, _ in sent] == [b"headers", b"chunk", b"chunk", b"chunk"]
    _, headers, _ = split_head(sent[0][1])
    assert headers[b"transfer-encoding"] == b"chunked"
    assert [b for _, b in sent[1:]] == [b"a", b"b", b""]


def test_streamed_body_http10_is_close_delimited_and_ended(harness):
    h = harness(responder(
        START, {"type": "http.response.body", "body": b"a", "more_body": True},
        {"type": "http.response.body", "body": b"b"}))
    h.feed((b"uwsgi", packet(SERVER_PROTOCOL="HTTP/1.0")))
    sent = h.sent()
    assert [t for t, _ in sent] == [b"headers", b"body", b"body", b"end"]
    status, headers, _ = split_head(sent[0][1])
    assert status.startswith(b"HTTP/1.0 200")
    assert headers[b"connection"] == b"close"


def test_app_content_length_streams_as_body(harness):
    h = harness(responder(
        {"type": "http.response.start", "status": 200,
         "headers": [(b"content-length", b"2")]},
        {"type": "http.response.body", "body": b"a", "more_body": True},
        {"type": "http.response.body", "body": b"b"}))
    h.feed((b"uwsgi", packet()))
    sent = h.sent()
    # no chunked coding: the app's length frames it (the C runtime sends
    # the head with the first piece, spec 6.2; the Python adapter sends
    # `headers` first)
    assert {t for t, _ in sent} <= {b"headers", b"body"}
    _, headers, body = split_head(b"".join(b for _, b in sent))
    assert headers[b"content-length"] == b"2" and body == b"ab"
    assert b"transfer-encoding" not in headers


def test_head_and_204_send_no_body(harness):
    h = harness(responder(START, {"type": "http.response.body",
                                  "body": b"12345"}))
    h.feed((b"uwsgi", packet(REQUEST_METHOD="HEAD")))
    (t, data), = h.sent()
    _, headers, body = split_head(data)
    assert headers[b"content-length"] == b"5" and body == b""
    h = harness(responder({"type": "http.response.start", "status": 204,
                           "headers": []},
                          {"type": "http.response.body", "body": b""}))
    h.feed((b"uwsgi", packet()))
    (t, data), = h.sent()
    _, headers, body = split_head(data)
    assert data.startswith(b"HTTP/1.1 204 ") and body == b""
    assert b"content-length" not in headers


def test_exception_before_start_is_500(harness, capsys):
    h = harness(responder(raise_after=0))
    h.feed((b"uwsgi", packet()))
    sent = h.sent()
    assert sent[0][0] == b"body" and sent[0][1].startswith(b"HTTP/1.1 500 ")
    assert sent[-1][0] == b"end"
    assert "app failure" in capsys.readouterr().err


def test_exception_after_start_is_end(harness, capsys):
    h = harness(responder(START, {"type": "http.response.body", "body": b"a",
                                  "more_body": True}, raise_after=2))
    h.feed((b"uwsgi", packet()))
    assert [t for t, _ in h.sent()] == [b"headers", b"chunk", b"end"]


def test_returning_without_a_response_is_500(harness, capsys):
    h = harness(responder())
    h.feed((b"uwsgi", packet()))
    assert h.sent()[0][1].startswith(b"HTTP/1.1 500 ")


def test_keepalive_requests_answered_in_order(harness):
    order = []

    async def app(scope, receive, send):
        await receive()
        if scope["path"] == "/slow":
            for _ in range(10):
                await asyncio.sleep(0)
        order.append(scope["path"])
        await send(START)
        await send({"type": "http.response.body",
                    "body": scope["path"].encode()})
    h = harness(app)
    h.feed((b"uwsgi", packet(PATH_INFO="/slow")),
           (b"uwsgi", packet(PATH_INFO="/fast")))
    assert order == ["/slow", "/fast"]
    assert [split_head(b)[2] for _, b in h.sent()] == [b"/slow", b"/fast"]


def test_sessions_are_independent(harness):
    h = harness(responder(START, {"type": "http.response.body", "body": b"x"}))
    h.feed((b"uwsgi", packet()), sid=SID)
    h.feed((b"uwsgi", packet()), sid=SID2)
    assert len(h.sent(SID)) == 1 and len(h.sent(SID2)) == 1


# ---- tasks, contexts and the C runtime's eager path -----------------------

REQUEST_VAR = contextvars.ContextVar("request_var", default="unset")


def test_context_is_per_request(harness):
    seen = []

    async def app(scope, receive, send):
        seen.append(REQUEST_VAR.get())
        REQUEST_VAR.set(scope["path"])
        if scope["path"] == "/wait":
            await asyncio.sleep(0.01)
            seen.append(REQUEST_VAR.get())
        await send(START)
        await send({"type": "http.response.body", "body": b"x"})
    h = harness(app)
    h.feed((b"uwsgi", packet(PATH_INFO="/a")))
    h.feed((b"uwsgi", packet(PATH_INFO="/wait")), sid=SID2)
    h.feed((b"uwsgi", packet(PATH_INFO="/b")))
    assert seen == ["unset", "unset", "/wait", "unset"]
    assert len(h.sent()) == 2 and len(h.sent(SID2)) == 1


def test_current_task_is_kept_across_suspension(harness):
    """anyio binds a cancel scope to the task that entered it: a request
    must not change task when it first waits."""
    tasks = []

    async def app(scope, receive, send):
        before = asyncio.current_task()
        await asyncio.sleep(0.01)
        tasks.append((before, asyncio.current_task()))
        await send(START)
        await send({"type": "http.response.body", "body": b"x"})
    h = harness(app)
    h.feed((b"uwsgi", packet()), (b"uwsgi", packet()))
    assert len(tasks) == 2 and tasks[0][0] is not tasks[1][0]
    for before, after in tasks:
        assert before is not None and before is after
    assert len(h.sent()) == 2


def test_eager_requests_need_no_task_of_their_own():
    """The C runtime: an app that does not wait runs inside the pump task,
    which stays the same across requests; one that waits takes it along
    and a new pump reads on."""
    ran_in = []

    async def app(scope, receive, send):
        ran_in.append(asyncio.current_task())
        if scope["path"] == "/wait":
            await asyncio.sleep(0.01)
        await send(START)
        await send({"type": "http.response.body", "body": b"x"})
    h = CHarness(app)
    try:
        pump = h.node._pump_task
        for _ in range(5):
            h.feed((b"uwsgi", packet()))
        assert ran_in == [pump] * 5 and h.node._pump_task is pump
        assert not h.node.tasks and not h.node.live
        h.feed((b"uwsgi", packet(PATH_INFO="/wait")))
        assert ran_in[-1] is pump and h.node._pump_task is not pump
        assert pump.done() and not h.node.live
        h.feed((b"uwsgi", packet()))
        assert ran_in[-1] is h.node._pump_task
        assert len(h.sent()) == 7
    finally:
        h.close()


def test_waiting_receive_gets_disconnect_on_end(harness):
    events = []

    async def app(scope, receive, send):
        events.append(await receive())
        events.append(await receive())      # waits: no response yet
    h = harness(app)
    h.feed((b"uwsgi", packet()))
    assert len(events) == 1
    h.feed((b"end", b""))
    assert events[1] == {"type": "http.disconnect"}
    assert h.sent() == []                   # nobody to answer


def test_list_headers_and_bad_status(harness, capsys):
    h = harness(responder(
        {"type": "http.response.start", "status": 201,
         "headers": [[b"x-a", b"1"], (b"x-b", b"2")]},
        {"type": "http.response.body", "body": b"ok"}))
    h.feed((b"uwsgi", packet()))
    (_, data), = h.sent()
    status, headers, body = split_head(data)
    assert status == b"HTTP/1.1 201 Created" and body == b"ok"
    assert headers[b"x-a"] == b"1" and headers[b"x-b"] == b"2"
    for bad in (99, 1000):
        h = harness(responder({"type": "http.response.start",
                               "status": bad, "headers": []}))
        h.feed((b"uwsgi", packet()))
        assert h.sent()[0][1].startswith(b"HTTP/1.1 500 ")
        assert "bad HTTP status %d" % bad in capsys.readouterr().err


def test_bad_header_is_500(harness, capsys):
    """A header the head cannot carry fails the send before anything went
    out: the client gets a 500, not a cut connection."""
    h = harness(responder(
        {"type": "http.response.start", "status": 200,
         "headers": [(b"x-bad", b"a\r\nb")]},
        {"type": "http.response.body", "body": b"ok"}))
    h.feed((b"uwsgi", packet()))
    assert h.sent()[0][1].startswith(b"HTTP/1.1 500 ")
    assert "CR/LF" in capsys.readouterr().err


def test_response_larger_than_the_queues_arrives_whole():
    """The C runtime: sends never block the loop; what a full queue
    refuses goes out, in order, once the gateway reads again."""
    piece, count = 16384, 4000             # ~64 MiB: past every buffer

    async def app(scope, receive, send):
        await send(START)
        for i in range(count):
            await send({"type": "http.response.body", "more_body": True,
                        "body": i.to_bytes(4, "big") * (piece // 4)})
        await send({"type": "http.response.body", "body": b""})
    h = CHarness(app)
    try:
        h.router.send_multipart([h.IDENTITY, SID, b"uwsgi", packet()])
        h.loop.run_until_complete(asyncio.sleep(0.3))   # nobody reads
        assert not h.node._pump_task.done()
        got = []
        deadline = time.monotonic() + 60
        while not got or got[-1] != (b"chunk", b""):
            assert time.monotonic() < deadline
            h.loop.run_until_complete(asyncio.sleep(0.001))
            while h.router.poll(0):
                _, sid, mtype, body = h.router.recv_multipart()
                if mtype != b"pong":
                    got.append((mtype, body))
        assert got[0][0] == b"headers" and len(got) == count + 2
        for i, (mtype, body) in enumerate(got[1:-1]):
            assert mtype == b"chunk" and body[:4] == i.to_bytes(4, "big")
            assert len(body) == piece
    finally:
        h.close()


def test_starlette_sync_streaming_and_async_routes(harness):
    """anyio-based Starlette: a sync endpoint (a worker thread under a
    cancel scope), a streaming response (a task group) and an async one."""
    starlette = pytest.importorskip("starlette")
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse, StreamingResponse
    from starlette.routing import Route
    assert starlette

    def sync(request):
        return PlainTextResponse("sync")

    async def stream(request):
        async def gen():
            yield b"one,"
            await asyncio.sleep(0.01)
            yield b"two"
        return StreamingResponse(gen())

    async def plain(request):
        return PlainTextResponse("async " + request.url.path)
    app = Starlette(routes=[Route("/sync", sync), Route("/stream", stream),
                            Route("/async", plain)])
    h = harness(app)
    for path, want in (("/async", b"async /async"), ("/sync", b"sync"),
                       ("/stream", b"one,two")):
        h.feed((b"uwsgi", packet(PATH_INFO=path)))
        deadline = time.monotonic() + 10
        while True:
            sent = h.sent()
            data = b"".join(b for _, b in sent)
            if sent and (sent[-1] == (b"chunk", b"") or
                         b"content-length" in data.lower()):
                break
            assert time.monotonic() < deadline, sent
            h.settle()
        status, headers, body = split_head(data)
        assert status == b"HTTP/1.1 200 OK", data
        if sent[-1] == (b"chunk", b""):
            body = b"".join(b for t, b in sent if t == b"chunk")
        assert body == want
        h.clear()


# ---- WebSocket -----------------------------------------------------------

def ws_packet(**kw):
    return packet(HTTP_UPGRADE="websocket", PATH_INFO="/ws", **kw)


def test_ws_events_both_ways(harness):
    seen = []

    async def app(scope, receive, send):
        seen.append(await receive())
        await send({"type": "websocket.accept", "subprotocol": "chat"})
        while True:
            m = await receive()
            seen.append(m)
            if m["type"] == "websocket.disconnect":
                return
            if "text" in m:
                await send({"type": "websocket.send", "text": m["text"]})
            else:
                await send({"type": "websocket.send", "bytes": m["bytes"]})
    h = harness(app)
    h.feed((b"uwsgi", ws_packet(HTTP_SEC_WEBSOCKET_PROTOCOL="x, chat")))
    assert seen == [{"type": "websocket.connect"}]
    (t, head), = h.sent()
    assert t == b"headers"
    assert head.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
    assert b"Sec-WebSocket-Protocol: chat\r\n" in head
    h.feed((b"websocket", "h\u00e9".encode()), (b"websocket/binary", b"\x00"),
           (b"websocket", b"\xff\xfe"))    # not UTF-8: a binary on a
    assert seen[1:] == [                     # `BinaryMessages websocket` site
        {"type": "websocket.receive", "text": "h\u00e9"},
        {"type": "websocket.receive", "bytes": b"\x00"},
        {"type": "websocket.receive", "bytes": b"\xff\xfe"}]
    assert h.sent()[1:] == [(b"websocket", "h\u00e9".encode()),
                            (b"websocket/binary", b"\x00"),
                            (b"websocket/binary", b"\xff\xfe")]
    h.feed((b"websocket/close", struct.pack("!H", 4001) + b"bye"),
           (b"end", b""))
    assert seen[-1] == {"type": "websocket.disconnect", "code": 4001,
                        "reason": "bye"}
    assert len(h.sent()) == 4               # nothing more: the client closed


def test_ws_backpressure_pauses_the_pump(harness, monkeypatch):
    """Unread messages above QUEUE_HIGH stop the node reading (on the C
    runtime the engine fills the session's Inbox itself); reading resumes
    below QUEUE_LOW and nothing is lost or reordered."""
    monkeypatch.setattr(tremolo_asgi, "QUEUE_HIGH", 100)
    monkeypatch.setattr(tremolo_asgi, "QUEUE_LOW", 50)
    gate = asyncio.Event()
    got = []

    async def app(scope, receive, send):
        await receive()
        await send({"type": "websocket.accept"})
        await gate.wait()
        while len(got) < 60:
            m = await receive()
            assert m["type"] == "websocket.receive"
            got.append(m["text"])
        await send({"type": "websocket.close", "code": 1000})
    h = harness(app)
    h.feed((b"uwsgi", ws_packet()))
    msgs = ["m%02d-%s" % (i, "x" * 20) for i in range(40)]
    if isinstance(h, CHarness):
        h.feed(*[(b"websocket", m.encode()) for m in msgs])
    else:
        h.rt.inbox = [(SID, b"websocket", m.encode(), 0) for m in msgs]
        h.node._start_pump()
        h.settle()
    assert h.node._over_count == 1 and got == []
    # paused, the node's (level-triggered) fds are not watched: the pump
    # is not woken over and over while more waits in the socket
    more = ["n%02d" % i for i in range(20)]
    if isinstance(h, CHarness):
        for m in more:
            h.router.send_multipart([h.IDENTITY, SID, b"websocket", m.encode()])
    else:
        h.rt.inbox += [(SID, b"websocket", m.encode(), 0) for m in more]
    cpu = time.process_time()
    h.loop.run_until_complete(asyncio.sleep(0.3))
    assert time.process_time() - cpu < 0.15     # a woken loop spins: 0.3
    h.loop.call_soon(gate.set)
    h.settle()
    assert got == msgs + more and h.node._over_count == 0
    assert h.sent()[-1] == (b"websocket/close", struct.pack("!H", 1000))
    assert SID not in h.node.inboxes


def test_ws_end_alone_is_1006_and_empty_close_1005(harness):
    seen = []

    async def app(scope, receive, send):
        await receive()
        await send({"type": "websocket.accept"})
        seen.append(await receive())
    h = harness(app)
    h.feed((b"uwsgi", ws_packet()), (b"end", b""))
    assert seen == [{"type": "websocket.disconnect", "code": 1006,
                     "reason": ""}]
    h.feed((b"uwsgi", ws_packet()), (b"websocket/close", b""), sid=SID2)
    assert seen[-1]["code"] == 1005


def test_ws_app_close_and_reject(harness):
    async def app(scope, receive, send):
        await receive()
        if scope["path"] == "/ws":
            await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "code": 4002,
                    "reason": "r\u00e9"})
    h = harness(app)
    h.feed((b"uwsgi", ws_packet()))
    assert h.sent() == [(b"headers", b"HTTP/1.1 101 Switching Protocols\r\n\r\n"),
                        (b"websocket/close",
                         struct.pack("!H", 4002) + "r\u00e9".encode())]
    # a close before accept: `websocket/close` alone (403 with Accept node)
    h.feed((b"uwsgi", packet(HTTP_UPGRADE="websocket", PATH_INFO="/no")),
           sid=SID2)
    assert h.sent(SID2) == [(b"websocket/close",
                             struct.pack("!H", 4002) + "r\u00e9".encode())]


def test_ws_app_returns_or_fails(harness, capsys):
    async def quits(scope, receive, send):
        await receive()
        await send({"type": "websocket.accept"})
    h = harness(quits)
    h.feed((b"uwsgi", ws_packet()))
    assert [t for t, _ in h.sent()] == [b"headers", b"end"]

    async def fails(scope, receive, send):
        await receive()
        raise RuntimeError("app failure (expected by the test)")
    h = harness(fails)
    h.feed((b"uwsgi", ws_packet()))
    sent = h.sent()
    assert sent[0][0] == b"headers" and sent[0][1].startswith(b"HTTP/1.1 500 ")
    assert sent[1] == (b"websocket/close", struct.pack("!H", 1011))


# ---- lifespan ------------------------------------------------------------

def run_lifespan(app, mode):
    h = Harness(app, lifespan=mode)
    try:
        async def go():
            ok = await h.node._lifespan("startup")
            down = await h.node._lifespan("shutdown")
            return ok, down
        return h.loop.run_until_complete(go()), h.node.state
    finally:
        h.loop.close()


def test_lifespan_events_and_state():
    calls = []

    async def app(scope, receive, send):
        assert scope["type"] == "lifespan"
        while True:
            m = await receive()
            calls.append(m["type"])
            if m["type"] == "lifespan.startup":
                scope["state"]["db"] = "up"
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
    (ok, down), state = run_lifespan(app, "on")
    assert ok and down and calls == ["lifespan.startup", "lifespan.shutdown"]
    assert state == {"db": "up"}
    assert build_scope(env(), state)["state"] == {"db": "up"}


def test_lifespan_unsupported_and_failed():
    async def http_only(scope, receive, send):
        assert scope["type"] == "http"
    assert run_lifespan(http_only, "auto")[0][0] is True
    assert run_lifespan(http_only, "on")[0][0] is False

    async def fails(scope, receive, send):
        await receive()
        await send({"type": "lifespan.startup.failed", "message": "no db"})
    assert run_lifespan(fails, "auto")[0][0] is False
    assert run_lifespan(http_only, "off")[0] == (True, True)
