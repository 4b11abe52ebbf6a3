"""Run an ASGI 3 application (FastAPI, Starlette, ...) as a Tremolo node.

    /usr/bin/python3 tremolo_asgi.py module:app --id NAME \\
        --connect tcp://127.0.0.1:5000 [--connect ...] [--lifespan auto|on|off]

One asyncio loop (uvloop when it is importable, as uvicorn does) serves
every session: the node's ZeroMQ sockets are watched through their ZMQ_FD
(edge-triggered: drained after every readable event and after every send),
and each request or WebSocket is one task running the app.

HTTP (README.md, "ASGI"): the `uwsgi` packet becomes the scope; request
bytes are `http.request` events as they arrive (`more_body` until
CONTENT_LENGTH bytes came, or until Tremolo's empty `body` end marker for a
chunked upload); after the body, receive() waits and returns
`http.disconnect` when the gateway says `end` (or once the response is
complete).  A response whose first body event is its last goes out as ONE
`body` message holding head and body (spec 6.2, a node may skip `headers`),
with Content-Length; a streamed one is `headers` + `chunk`s + the empty
`chunk` (HTTP/1.1), or close-delimited + `end` (HTTP/1.0).  An exception
before the response started is a 500, after it an `end` (the connection
closes: the framing is broken).

WebSocket: an upgrade's `uwsgi` (HTTP_UPGRADE: websocket) runs the app with
a `websocket` scope.  websocket.accept sends `headers` with a 101 (and the
subprotocol), websocket.send is `websocket` (text) or `websocket/binary`,
websocket.close is `websocket/close` (code + reason); the client's close
code reaches the app in websocket.disconnect (`websocket/close` from the
gateway, then `end`; `end` alone is 1006).  A close before accept is a 403
when the site says `[WEBSOCKET] Accept node`, else a close frame after the
101 Tremolo already sent.
"""

import argparse
import asyncio
import os
import signal
import struct
import sys
import traceback
import types
from collections import deque

import tremolo_node
from tremolo_node import _REASONS

__all__ = ["ASGINode", "serve", "main", "build_scope"]

NO_BODY_STATUS = (204, 304)
ASGI_VERSION = {"version": "3.0", "spec_version": "2.3"}
# Unread request bytes (or WebSocket messages) one session may hold here
# before the node stops reading its sockets (backpressure, see README).
QUEUE_HIGH = 1 << 20
QUEUE_LOW = QUEUE_HIGH // 2
DRAIN_BATCH = 256           # messages per loop turn before yielding
TICK = 0.1                  # seconds: catch-up drain, announce, and the
                            # C runtime's reconnects (libzmq's 100 ms)


# --------------------------------------------------------------------------
# The transport: tremolo_node.runtime(), the C extension's Node when it is
# importable, else the pure-Python RawNode (same methods)
# --------------------------------------------------------------------------

def decode_uwsgi(packet):
    """parse_uwsgi()'s result (dict of latin-1 str, repeated keys joined
    with ", ", "; " for cookies) and its strictness (ValueError), in one
    pass without struct: the pure-Python path's per-request cost."""
    packet = bytes(packet)
    n = len(packet)
    if n < 4 or packet[0] or packet[3] or packet[1] | packet[2] << 8 != n:
        raise ValueError("not a uwsgi packet of %d bytes (modifiers 0/0, "
                         "SIZE = total length)" % n)
    out = {}
    off = 4
    try:
        while off < n:
            end = off + 2 + (packet[off] | packet[off + 1] << 8)
            key = packet[off + 2:end]
            off = end + 2 + (packet[end] | packet[end + 1] << 8)
            if off > n or not key:
                raise IndexError
            k = key.decode("latin-1")
            v = packet[end + 2:off].decode("latin-1")
            if k in out:
                v = out[k] + ("; " if k == "HTTP_COOKIE" else ", ") + v
            out[k] = v
    except IndexError:
        raise ValueError("uwsgi packet truncated or with an empty key at "
                         "offset %d" % off) from None
    return out


def _inbox_class():
    try:
        import _tremolo
    except ImportError:
        return None
    return getattr(_tremolo, "Inbox", None)


_Inbox = _inbox_class()


def _transport():
    """(Node class, uwsgi decoder, scope builder, engine class): the C
    runtime's when it is there (its asgi_scope is build_scope below, in C;
    its ASGIEngine runs bodiless HTTP requests eagerly, see ASGINode)."""
    node_cls = tremolo_node.runtime()
    mod = sys.modules.get(getattr(node_cls, "__module__", ""), None)
    decode = getattr(mod, "decode_uwsgi", None) or decode_uwsgi
    fast = getattr(mod, "asgi_scope", None)
    engine = getattr(mod, "ASGIEngine", None)
    if fast is None:
        return node_cls, decode, build_scope, engine

    def scope(env, state=None):
        return fast(env, ASGI_VERSION, state)
    return node_cls, decode, scope, engine


# --------------------------------------------------------------------------
# Scope building (pure: tested without a server)
# --------------------------------------------------------------------------

def _int(value, default):
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _http_version(protocol):
    if protocol.startswith("HTTP/"):
        v = protocol[5:]
        return {"2.0": "2", "3.0": "3"}.get(v, v)
    return "1.0"


def build_scope(env, state=None):
    """The ASGI scope of a decoded `uwsgi` packet (dict of str -> str,
    latin-1): `http`, or `websocket` for an upgrade request."""
    headers = [(k[5:].lower().replace("_", "-").encode("latin-1"),
                v.encode("latin-1"))
               for k, v in env.items() if k[:5] == "HTTP_"]
    if "CONTENT_TYPE" in env and "HTTP_CONTENT_TYPE" not in env:
        headers.append((b"content-type", env["CONTENT_TYPE"].encode("latin-1")))
    if "CONTENT_LENGTH" in env and "HTTP_CONTENT_LENGTH" not in env:
        headers.append((b"content-length",
                        env["CONTENT_LENGTH"].encode("latin-1")))
    https = (env.get("HTTPS", "").lower() in ("on", "1", "yes")
             or env.get("UWSGI_SCHEME") == "https")
    upgrade = env.get("HTTP_UPGRADE", "").lower() == "websocket"
    path_info = env.get("PATH_INFO", "/") or "/"
    # PATH_INFO is the decoded, normalised path (UTF-8 bytes as latin-1);
    # REQUEST_URI the raw target.
    path = path_info.encode("latin-1").decode("utf-8", "replace")
    raw = env.get("REQUEST_URI")
    raw_path = (raw.split("?", 1)[0] if raw else path_info).encode("latin-1")
    scope = {
        "type": "websocket" if upgrade else "http",
        "asgi": dict(ASGI_VERSION),
        "http_version": _http_version(env.get("SERVER_PROTOCOL", "HTTP/1.0")),
        "scheme": ("wss" if https else "ws") if upgrade
                  else ("https" if https else "http"),
        "path": path,
        "raw_path": raw_path,
        "query_string": env.get("QUERY_STRING", "").encode("latin-1"),
        "root_path": env.get("SCRIPT_NAME", ""),
        "headers": headers,
        "client": (env["REMOTE_ADDR"], _int(env.get("REMOTE_PORT"), 0))
                  if env.get("REMOTE_ADDR") else None,
        "server": (env.get("SERVER_NAME", "localhost"),
                   _int(env.get("SERVER_PORT"), None)),
        "extensions": {},
    }
    if upgrade:
        offered = env.get("HTTP_SEC_WEBSOCKET_PROTOCOL", "")
        scope["subprotocols"] = [p.strip() for p in offered.split(",")
                                 if p.strip()]
    else:
        scope["method"] = env.get("REQUEST_METHOD", "GET").upper()
    if state is not None:
        scope["state"] = dict(state)
    return scope


def _tokens(value):
    return {t.strip().lower() for t in (value or "").split(",")}


def _head(protocol, status, headers):
    """A raw response head; headers are (bytes, bytes) pairs."""
    reason = _REASONS.get(status, "Unknown")
    out = [("%s %d %s\r\n" % (protocol, status, reason)).encode("latin-1")]
    for name, value in headers:
        name, value = bytes(name), bytes(value)
        if b"\r" in name + value or b"\n" in name + value:
            raise ValueError("CR/LF in a response header")
        out.append(name + b": " + value + b"\r\n")
    out.append(b"\r\n")
    return b"".join(out)


# --------------------------------------------------------------------------
# Sessions
# --------------------------------------------------------------------------

class _Flow:
    """A per-session bounded inbox: items (bytes counted) for receive()."""

    __slots__ = ("items", "size", "event", "over", "server")

    def __init__(self, server):
        self.items = deque()
        self.size = 0
        self.event = None           # made when someone has to wait
        self.over = False
        self.server = server

    def wake(self):
        if self.event is not None:
            self.event.set()

    async def wait(self):
        if self.event is None:
            self.event = asyncio.Event()
        self.event.clear()
        await self.event.wait()

    def put(self, item, nbytes):
        self.items.append((item, nbytes))
        self.size += nbytes
        self.wake()
        if not self.over and self.size > QUEUE_HIGH:
            self.over = True
            self.server._over(+1)

    async def get(self):
        while not self.items:
            await self.wait()
        item, nbytes = self.items.popleft()
        self.size -= nbytes
        if self.over and self.size <= QUEUE_LOW:
            self.over = False
            self.server._over(-1)
        return item

    def release(self):
        if self.over:
            self.over = False
            self.server._over(-1)
        self.items.clear()
        self.size = 0

    def __len__(self):
        return len(self.items)


async def _value(value):
    return value


class _HTTP:
    """One HTTP request: its body flow and response framing."""

    __slots__ = ("server", "sid", "index", "env", "scope", "flow", "method",
                 "protocol", "keepalive", "remaining", "body_done", "bad",
                 "received", "disconnected", "started", "head_sent",
                 "complete", "status", "headers", "mode", "persistent",
                 "task")

    def __init__(self, server, sid, index, env, scope):
        self.server = server
        self.sid = sid
        self.index = index
        self.env = env
        self.scope = scope
        self.flow = _Flow(server)
        self.method = scope["method"]
        self.protocol = env.get("SERVER_PROTOCOL", "HTTP/1.0")
        conn = env.get("HTTP_CONNECTION")
        conn = _tokens(conn) if conn else ()
        if self.protocol == "HTTP/1.1":
            self.keepalive = "close" not in conn
        elif self.protocol == "HTTP/1.0":
            self.keepalive = "keep-alive" in conn
        else:
            self.keepalive = False  # HTTP/2: `end` only ends the stream
        te = env.get("HTTP_TRANSFER_ENCODING")
        chunked = bool(te) and "chunked" in _tokens(te)
        length = env.get("CONTENT_LENGTH", "").strip()
        self.remaining = None       # bytes still expected; None: chunked
        self.body_done = False
        self.bad = None             # an error status decided up front
        self.received = 0
        if chunked:
            pass
        elif length:
            n = _int(length, -1)
            if n < 0:
                self.bad = 400
                n = 0
            elif n > server.max_body:
                self.bad = 413
                n = 0
            self.remaining = n
        else:
            self.remaining = 0
        if self.remaining == 0:
            self.body_done = True
            self.flow.put((b"", False), 0)
        self.disconnected = False
        self.started = False        # http.response.start seen
        self.head_sent = False
        self.complete = False
        self.status = None
        self.headers = None
        self.mode = None            # "length", "chunked", "close", "none"
        self.persistent = False
        self.task = None

    # -- gateway -> app ------------------------------------------------------

    def on_body(self, data):
        if self.body_done:
            return                  # a late end marker, or bytes past CL
        if not data:                # Tremolo's end-of-body marker
            self.body_done = True
            self.flow.put((b"", False), 0)
            return
        self.received += len(data)
        if self.received > self.server.max_body:
            self._overflow()
            return
        if self.remaining is not None:
            data = data[:self.remaining]
            self.remaining -= len(data)
            if self.remaining == 0:
                self.body_done = True
        self.flow.put((data, not self.body_done), len(data))

    def _overflow(self):
        """A chunked body outgrew --max-body: 413 and close; the app sees
        http.disconnect, and what it sends goes nowhere."""
        self.body_done = True
        self.disconnected = True
        self.flow.wake()
        if not self.head_sent:
            self.head_sent = True
            self.server.spawn(self.error(413))
        elif not self.complete:
            self.server.spawn(self.server.send(self.sid, b"end", b"",
                                               self.index))

    def on_end(self):
        self.disconnected = True
        self.flow.wake()

    async def receive(self):
        while True:
            if self.flow.items:
                data, more = await self.flow.get()
                return {"type": "http.request", "body": data,
                        "more_body": more}
            if self.disconnected or self.complete:
                return {"type": "http.disconnect"}
            await self.flow.wait()

    # -- app -> gateway ------------------------------------------------------

    async def send(self, message):
        kind = message["type"]
        if kind == "http.response.start":
            if self.started:
                raise RuntimeError("http.response.start sent twice")
            status = int(message["status"])
            if not 100 <= status <= 999:
                raise ValueError("bad HTTP status %d" % status)
            self.started = True
            self.status = status
            self.headers = [(bytes(k), bytes(v))
                            for k, v in message.get("headers", ())]
            return
        if kind != "http.response.body":
            raise RuntimeError("unexpected ASGI message %r" % (kind,))
        if not self.started:
            raise RuntimeError("http.response.body before http.response.start")
        if self.complete:
            raise RuntimeError("http.response.body after the last one")
        body = bytes(message.get("body", b""))
        more = bool(message.get("more_body", False))
        if self.disconnected:
            if not more:
                self.complete = True
            return                  # nobody to send to (ASGI: a no-op)
        if not self.head_sent:
            if not more:
                # the usual response, sent without a coroutine of its own
                data = self._whole_data(body)
                if not self.server.send_now(self.sid, b"body", data,
                                            self.index):
                    await self.server.send(self.sid, b"body", data, self.index)
                if not self._finish_now():
                    await self._finish()
                return
            if not body:
                return              # the head waits for the first byte
            await self._start_stream()
        await self._piece(body)
        if not more:
            await self._finish()

    def _framing(self, known):
        """Chooses the framing; returns the head's header list."""
        status = self.status
        headers = [(k, v) for k, v in self.headers
                   if k.lower() != b"transfer-encoding"]
        names = {k.lower() for k, _ in headers}
        conn = set()
        for k, v in headers:
            if k.lower() == b"connection":
                conn |= _tokens(v.decode("latin-1"))
        if status in NO_BODY_STATUS or status < 200:
            self.mode = "none"
        elif b"content-length" in names:
            self.mode = "length"
        elif known is not None:
            self.mode = "length"
            if self.method != "HEAD" or known:
                headers.append((b"content-length", str(known).encode()))
        elif self.method == "HEAD":
            self.mode = "none"
        elif self.protocol == "HTTP/1.1":
            self.mode = "chunked"
            headers.append((b"transfer-encoding", b"chunked"))
        else:
            self.mode = "close"
        self.persistent = (self.keepalive and "close" not in conn
                           and self.mode != "close" and self.bad is None)
        if self.protocol in ("HTTP/1.0", "HTTP/1.1") and b"connection" not in names:
            if not self.persistent:
                headers.append((b"connection", b"close"))
            elif self.protocol == "HTTP/1.0":
                headers.append((b"connection", b"keep-alive"))
        proto = "HTTP/1.0" if self.protocol == "HTTP/1.0" else "HTTP/1.1"
        return _head(proto, status, headers)

    def _whole_data(self, body):
        """The only body event: head and body for ONE `body` message."""
        head = self._framing(len(body))
        if self.mode == "none" or self.method == "HEAD":
            body = b""
        self.head_sent = True
        return head + body

    async def _whole(self, body):
        data = self._whole_data(body)
        await self.server.send(self.sid, b"body", data, self.index)
        await self._finish()

    def _finish_now(self):
        """_finish when it has nothing to send (a keep-alive response with
        a length): True, else False and nothing done."""
        if not self.persistent or (self.mode == "chunked" and
                                   self.method != "HEAD"):
            return False
        self.complete = True
        self.flow.wake()
        return True

    async def _start_stream(self):
        head = self._framing(None)
        self.head_sent = True
        await self.server.send(self.sid, b"headers", head, self.index)

    async def _piece(self, data):
        if not data or self.method == "HEAD" or self.mode == "none":
            return
        await self.server.send(self.sid,
                               b"chunk" if self.mode == "chunked" else b"body",
                               data, self.index)

    async def _finish(self):
        self.complete = True
        self.flow.wake()
        if self.mode == "chunked" and self.method != "HEAD":
            await self.server.send(self.sid, b"chunk", b"", self.index)
        if not self.persistent:
            # only `end` closes an HTTP/1.x connection (spec 2.3)
            await self.server.send(self.sid, b"end", b"", self.index)

    async def error(self, status):
        """A whole error response (the request was refused or the app
        failed before its response started); the connection closes."""
        text = ("%d %s\n" % (status, _REASONS.get(status, "Error"))).encode()
        self.status = status
        self.headers = [(b"content-type", b"text/plain; charset=utf-8")]
        self.bad = status           # not persistent: unread body bytes
        self.started = True
        self.method = "GET" if self.method == "HEAD" else self.method
        await self._whole(text)

    async def run(self, app):
        try:
            if self.bad is not None:
                await self.error(self.bad)
                return
            await app(self.scope, self.receive, self.send)
            if self.disconnected:
                return
            if not self.head_sent:
                print("tremolo_asgi: the app returned without a response",
                      file=sys.stderr)
                await self.error(500)
            elif not self.complete and not self.disconnected:
                await self.server.send(self.sid, b"end", b"", self.index)
        except asyncio.CancelledError:
            raise
        except Exception:
            traceback.print_exc(file=sys.stderr)
            if self.disconnected:
                return
            if not self.head_sent:
                await self.error(500)
            elif not self.complete:
                # the framing is broken mid-response: only closing is honest
                await self.server.send(self.sid, b"end", b"", self.index)
        finally:
            self.flow.release()


class _WebSocket:
    """One WebSocket session, from the upgrade's `uwsgi` to `end`."""

    def __init__(self, server, sid, index, env, scope):
        self.server = server
        self.sid = sid
        self.index = index
        self.env = env
        self.scope = scope
        # the C runtime's Inbox is fed by the engine's pump directly, as
        # long as the session is in server.inboxes (until it is gone)
        self.flow = server.new_inbox()
        if not isinstance(self.flow, _Flow):
            server.inboxes[sid] = self.flow
        self._fast_send = server.engine.ws_send if server.engine else None
        self.flow.put({"type": "websocket.connect"}, 0)
        self.accepted = False
        self.closed = False         # our close was sent
        self.gone = False           # the client's close or `end` came
        self.close_code = None
        self.close_reason = ""
        self.task = None

    def _disconnect(self):
        return {"type": "websocket.disconnect",
                "code": self.close_code or 1006,
                "reason": self.close_reason}

    # -- gateway -> app ------------------------------------------------------

    def on_message(self, mtype, data):
        if self.gone:
            return
        if mtype == b"websocket":
            try:
                event = {"type": "websocket.receive", "text": data.decode("utf-8")}
            except UnicodeDecodeError:
                # binary, from a site without `BinaryMessages websocket/binary`
                event = {"type": "websocket.receive", "bytes": data}
            self.flow.put(event, len(data))
        elif mtype == b"websocket/binary":
            self.flow.put({"type": "websocket.receive", "bytes": data},
                          len(data))
        elif mtype == b"websocket/close":
            code, reason = 1005, ""
            if len(data) >= 2:
                code = struct.unpack("!H", data[:2])[0]
                reason = data[2:].decode("utf-8", "replace")
            self.close_code, self.close_reason = code, reason
            self._gone()

    def on_end(self):
        if not self.gone:
            self._gone()

    def _gone(self):
        self.gone = True
        if self.server.inboxes.get(self.sid) is self.flow:
            del self.server.inboxes[self.sid]
        self.flow.put(self._disconnect(), 0)

    def receive(self):
        # not a coroutine: the flow's awaitable as it is (the Inbox's is
        # often complete already)
        if self.gone and not self.flow:
            return _value(self._disconnect())
        return self.flow.get()

    # -- app -> gateway ------------------------------------------------------

    def send(self, message):
        if (self._fast_send is not None and type(message) is dict and
                message.get("type") == "websocket.send" and self.accepted
                and not self.closed and not self.gone):
            return self._fast_send(self.sid, self.index, message)
        return self._send(message)

    async def _send(self, message):
        kind = message["type"]
        srv = self.server
        if self.closed:
            raise RuntimeError("%s after websocket.close" % kind)
        if kind == "websocket.accept":
            if self.accepted:
                raise RuntimeError("websocket.accept sent twice")
            self.accepted = True
            headers = []
            sub = message.get("subprotocol")
            if sub:
                headers.append((b"Sec-WebSocket-Protocol", sub.encode("latin-1")))
            # Tremolo writes the real 101; this answers a handshake that
            # waits for the node (an offered subprotocol, `Accept node`)
            # and is ignored once the 101 went out
            await srv.send(self.sid, b"headers",
                           _head("HTTP/1.1", 101, headers), self.index)
        elif kind == "websocket.send":
            if not self.accepted:
                raise RuntimeError("websocket.send before websocket.accept")
            if self.gone:
                return
            if message.get("bytes") is not None:
                await srv.send(self.sid, b"websocket/binary",
                               bytes(message["bytes"]), self.index)
            else:
                await srv.send(self.sid, b"websocket",
                               message.get("text", "").encode("utf-8"),
                               self.index)
        elif kind == "websocket.close":
            self.closed = True
            if self.gone:
                return
            code = int(message.get("code", 1000) or 1000)
            reason = (message.get("reason") or "").encode("utf-8")
            await srv.send(self.sid, b"websocket/close",
                           struct.pack("!H", code) + reason, self.index)
        else:
            raise RuntimeError("unexpected ASGI message %r" % (kind,))

    async def run(self, app):
        srv = self.server
        try:
            await app(self.scope, self.receive, self.send)
            if not self.closed and not self.gone:
                if self.accepted:
                    await srv.send(self.sid, b"end", b"", self.index)
                else:
                    await self._send({"type": "websocket.close", "code": 1000})
        except asyncio.CancelledError:
            raise
        except Exception:
            traceback.print_exc(file=sys.stderr)
            if self.closed or self.gone:
                return
            if not self.accepted:
                # a handshake waiting for us fails with 500; after the 101
                # (Accept auto) the head is ignored and the close follows
                await srv.send(self.sid, b"headers", _head(
                    "HTTP/1.1", 500, [(b"Content-Length", b"0"),
                                      (b"Connection", b"close")]), self.index)
            self.closed = True
            await srv.send(self.sid, b"websocket/close",
                           struct.pack("!H", 1011), self.index)
        finally:
            if self.server.inboxes.get(self.sid) is self.flow:
                del self.server.inboxes[self.sid]
            self.flow.release()


# --------------------------------------------------------------------------
# The node
# --------------------------------------------------------------------------

@types.coroutine
def _resume(coro, pending, ctx):
    """Drives a coroutine that suspended on `pending` (a future it
    yielded) to its end, each step in its own context `ctx`: the rest of
    an eager run (ASGINode._adopt)."""
    while True:
        try:
            value = yield pending
        except BaseException as exc:            # thrown in by the task
            try:
                pending = ctx.run(coro.throw, exc)
            except StopIteration as stop:
                return stop.value
        else:
            try:
                pending = ctx.run(coro.send, value)
            except StopIteration as stop:
                return stop.value


class ASGINode:
    """Feeds an ASGI app from a node transport on the running loop.

    One task, the pump, reads the sockets (edge-triggered ZMQ_FDs: drained
    after every wake-up and after every send). With the C runtime's
    ASGIEngine, a bodiless HTTP request runs inside the pump until it
    first suspends: most finish there and never cost a task. One that
    suspends keeps the pump's task as its own (_adopt), so
    asyncio.current_task() does not change under it (anyio's cancel scopes
    rely on that, as under Python 3.12's eager task factory), and a new
    pump takes over the sockets. Everything else goes through dispatch()
    and a task per request or WebSocket, as on the pure-Python runtime."""

    def __init__(self, app, transport, decode=None, max_body=64 << 20,
                 lifespan="auto", scope=None, engine=None):
        self.app = app
        self.node = transport
        self.decode = decode or tremolo_node.parse_uwsgi
        self.build_scope = scope or build_scope
        self.max_body = max_body
        self.lifespan = lifespan
        self.state = {}
        self.current = {}           # sid -> the request or WebSocket receiving
        self.chains = {}            # sid -> the last task of its requests
        self.live = {}              # sid -> its requests not finished
        self.inboxes = {}           # sid -> its WebSocket's Inbox (C runtime)
        self.tasks = set()
        self._spawned = set()
        self._over_count = 0
        self._engine_cls = engine
        self.engine = None
        self.failed = False
        self._pump_task = None
        self._wake = None           # the future an idle pump waits on
        self._kicked = False        # woken while it was not waiting
        self._loop = None
        self._stopped = None
        self._fds = []

    # -- flow control --------------------------------------------------------

    def _over(self, delta):
        self._over_count += delta
        if delta > 0 and self._over_count == 1:
            self._pause(True)
        elif delta < 0 and self._over_count == 0:
            self._pause(False)
            self._kick()            # reading again: catch up

    def _pause(self, paused):
        """Stops (or resumes) watching the sockets: the C runtime's
        native links are level-triggered, and a paused pump must not be
        woken in a loop. Sends are not held for a batch meanwhile."""
        if self.engine is not None:
            self.engine.paused = paused
            if paused:
                self.node.flush()
        if self._loop is None:
            return
        for fd in self._fds:
            if paused:
                self._loop.remove_reader(fd)
            else:
                self._loop.add_reader(fd, self._kick)

    # -- sending -------------------------------------------------------------

    def send_now(self, sid, mtype, body, index):
        """Sends unless the node's queue is full; True when sent. Callers
        try this first: a coroutine per message costs more than the send."""
        try:
            self.node.send(sid, mtype, body, index, wait=False)
        except BlockingIOError:
            return False
        if self.node.readable():    # ZMQ_FD is edge-triggered: the send
            self._kick()            # may have taken a message's edge
        return True

    def new_inbox(self):
        """A WebSocket's receive queue: the C runtime's Inbox (the engine
        feeds it) or _Flow."""
        if self.engine is not None:
            return _Inbox(self._loop, self, QUEUE_HIGH, QUEUE_LOW)
        return _Flow(self)

    async def send(self, sid, mtype, body, index):
        while not self.send_now(sid, mtype, body, index):
            await asyncio.sleep(0.002)          # the gateway is behind

    async def _send_later(self, sid, index, msgs):
        """The rest of an eager response, refused by a full queue."""
        for mtype, data in msgs:
            await self.send(sid, mtype, data, index)

    def spawn(self, coro):
        task = self._loop.create_task(coro)
        self._spawned.add(task)
        task.add_done_callback(self._spawned.discard)
        return task

    def _kick(self):
        """The sockets may have something: wake the pump."""
        wake = self._wake
        if wake is not None and not wake.done():
            wake.set_result(None)
        else:
            self._kicked = True

    # -- receiving -----------------------------------------------------------

    def _start_pump(self):
        self._pump_task = self._loop.create_task(self._pump())

    def _next_py(self, budget):
        return self.node.recv_nowait()

    async def _idle(self):
        if self._kicked:
            self._kicked = False
            return
        self._wake = self._loop.create_future()
        try:
            await self._wake
        finally:
            self._wake = None

    async def _pump(self):
        pump = self.engine.pump if self.engine is not None else self._next_py
        budget = DRAIN_BATCH
        while True:
            if self._over_count:
                await self._idle()  # backpressure: _over() wakes it
                continue
            try:
                item = pump(budget)
            except Exception:
                # the sockets themselves failed (the app's exceptions are
                # its requests' 500s): a node that cannot read must go
                traceback.print_exc(file=sys.stderr)
                self.failed = True
                self.stop()
                return
            if item is None:
                budget = DRAIN_BATCH
                await self._idle()
            elif item is True:
                budget = DRAIN_BATCH
                await asyncio.sleep(0)              # let the others run
            elif type(item) is tuple:
                self.dispatch(*item)
                budget -= 1
                if budget <= 0:
                    budget = DRAIN_BATCH
                    await asyncio.sleep(0)
            else:
                self._start_pump()  # a new pump takes the sockets
                await self._adopt(item)
                return

    async def _adopt(self, cycle):
        """This task becomes the request's that suspended in the pump."""
        task = asyncio.current_task()
        sid = cycle.sid
        task.obj = cycle
        self.tasks.add(task)
        self.current[sid] = cycle
        self.live.setdefault(sid, []).append(cycle)
        self.chains[sid] = task
        task.add_done_callback(self._done)
        coro, pending, ctx = cycle.take()
        if coro is None:
            await pending           # only its last sends were left
            return
        try:
            await _resume(coro, pending, ctx)
        except asyncio.CancelledError:
            raise
        except Exception:
            traceback.print_exc(file=sys.stderr)
            await cycle.finish(True)
        else:
            await cycle.finish(False)

    def dispatch(self, sid, mtype, body, index=0):
        if mtype == b"spawn":
            # The gateway's first health tick after its start (spec 5),
            # also for a node it already gave sessions to: those are
            # live, so nothing is ended here (a session of a gateway that
            # died ends when its app gives up; the sid never comes back).
            return
        if len(sid) != tremolo_node.SID_LEN:
            return
        cur = self.current.get(sid)
        if mtype == b"uwsgi":
            self._request(sid, body, index)
        elif mtype == b"body":
            if isinstance(cur, _HTTP):
                cur.on_body(bytes(body))
        elif mtype == b"end":
            self.current.pop(sid, None)
            for obj in self.live.get(sid, ()):
                obj.on_end()
        elif mtype in (b"websocket", b"websocket/binary", b"websocket/close"):
            if isinstance(cur, _WebSocket):
                cur.on_message(bytes(mtype), bytes(body))

    def _request(self, sid, packet, index):
        try:
            env = self.decode(bytes(packet))
        except ValueError as exc:
            print("tremolo_asgi: bad uwsgi packet: %s" % exc, file=sys.stderr)
            return
        scope = self.build_scope(env, self.state)
        cls = _WebSocket if scope["type"] == "websocket" else _HTTP
        obj = cls(self, sid, index, env, scope)
        self.current[sid] = obj
        prev = self.chains.get(sid)
        if prev is None or prev.done():
            task = self._loop.create_task(obj.run(self.app))
        else:
            task = self._loop.create_task(self._run(obj, prev))
        task.obj = obj
        obj.task = task
        self.tasks.add(task)
        self.live.setdefault(sid, []).append(obj)
        self.chains[sid] = task
        task.add_done_callback(self._done)

    async def _run(self, obj, prev):
        # a keep-alive connection's requests are answered in order
        try:
            await asyncio.shield(prev)
        except BaseException:
            pass
        await obj.run(self.app)

    def _done(self, task):
        self.tasks.discard(task)
        sid = task.obj.sid
        live = self.live.get(sid)
        if live is not None:
            live.remove(task.obj)
            if not live:
                del self.live[sid]
        if self.chains.get(sid) is task:
            del self.chains[sid]
            if self.current.get(sid) is task.obj:
                del self.current[sid]

    # -- lifespan ------------------------------------------------------------

    async def _lifespan(self, phase):
        """Runs startup (phase "startup", starting the lifespan task) or
        shutdown; False when the app failed it and it must not go on."""
        if self.lifespan == "off":
            return True
        if phase == "startup":
            self._ls_in = asyncio.Queue()
            self._ls_out = asyncio.Queue()
            scope = {"type": "lifespan", "asgi": dict(ASGI_VERSION),
                     "state": self.state}

            async def run():
                try:
                    await self.app(scope, self._ls_in.get, self._ls_out.put)
                except asyncio.CancelledError:
                    raise
                except BaseException as exc:
                    await self._ls_out.put({"type": "_error", "exc": exc})
                else:
                    await self._ls_out.put({"type": "_error", "exc": RuntimeError(
                        "the app returned from its lifespan scope")})
            self._ls_task = self._loop.create_task(run())
        elif self._ls_task is None or self._ls_task.done():
            return True
        await self._ls_in.put({"type": "lifespan.%s" % phase})
        reply = await self._ls_out.get()
        if reply["type"] == "_error":
            self._ls_task = None
            if self.lifespan == "on" or phase == "shutdown":
                print("tremolo_asgi: lifespan %s failed: %r"
                      % (phase, reply["exc"]), file=sys.stderr)
                return self.lifespan != "on"
            return True             # auto: the app does not speak lifespan
        if reply["type"].endswith(".failed"):
            print("tremolo_asgi: lifespan %s failed: %s"
                  % (phase, reply.get("message", "")), file=sys.stderr)
            return False
        return True

    # -- running -------------------------------------------------------------

    def stop(self):
        if self._stopped is not None and not self._stopped.done():
            self._stopped.set_result(None)

    def _tick(self):
        self._kick()
        self._timer = self._loop.call_later(TICK, self._tick)

    def open(self):
        """Starts reading the sockets on the running loop (serve() does;
        tests call it to run a node without lifespan and signals)."""
        self._loop = asyncio.get_running_loop()
        if self._engine_cls is not None:
            self.engine = self._engine_cls(
                self.node, self, self.app, ASGI_VERSION, self.state,
                self.live, _REASONS, self._loop, asyncio.CancelledError,
                self.inboxes)
        self._fds = list(dict.fromkeys(self.node.filenos()))  # native: one
        for fd in self._fds:
            self._loop.add_reader(fd, self._kick)
        self._start_pump()
        self._tick()

    def close(self):
        """Stops reading (the requests in flight go on)."""
        self._timer.cancel()
        for fd in self._fds:
            self._loop.remove_reader(fd)
        self._fds = []
        self._pump_task.cancel()

    async def serve(self, install_signals=True):
        self._loop = asyncio.get_running_loop()
        self._stopped = self._loop.create_future()
        self._ls_task = None
        if not await self._lifespan("startup"):
            return 1
        if install_signals:
            for signum in (signal.SIGTERM, signal.SIGINT):
                self._loop.add_signal_handler(signum, self.stop)
        self.open()
        try:
            await self._stopped
        finally:
            self.close()
            for task in list(self.tasks):
                task.cancel()
            if self.tasks:
                await asyncio.wait(list(self.tasks), timeout=2)
            await self._lifespan("shutdown")
        return 1 if self.failed else 0


def _new_loop():
    try:
        import uvloop
        return uvloop.new_event_loop()
    except ImportError:
        return asyncio.new_event_loop()


def serve(app, identity, endpoints, max_body=64 << 20, lifespan="auto"):
    """Runs app as node `identity` until SIGTERM/SIGINT; the exit status."""
    node_cls, decode, scope, engine = _transport()
    node = node_cls(identity, endpoints)
    print("tremolo_asgi: node %s on the %s runtime" % (
        identity, "C (_tremolo)" if node_cls.__module__ == "_tremolo"
        else "pure-Python"), file=sys.stderr, flush=True)
    loop = _new_loop()
    try:
        asyncio.set_event_loop(loop)
        server = ASGINode(app, node, decode, max_body=max_body,
                          lifespan=lifespan, scope=scope, engine=engine)
        return loop.run_until_complete(server.serve())
    finally:
        node.close()
        loop.close()


def load_app(spec):
    """Import "module:attr" (attr defaults to "app")."""
    return tremolo_node.load_object(spec, "app")


def main(argv=None):
    parser = argparse.ArgumentParser(
        description="Run an ASGI application as a Tremolo ZeroMQ node.")
    parser.add_argument("app", help="module:attribute, e.g. myapp:app")
    tremolo_node.add_node_options(parser, processes=False)
    parser.add_argument("--max-body", type=int, default=64 << 20,
                        help="largest request body in bytes (413 above)")
    parser.add_argument("--lifespan", choices=("auto", "on", "off"),
                        default="auto", help="ASGI lifespan events: auto "
                        "(run them if the app speaks them), on (a failure "
                        "stops the node), off")
    args = parser.parse_args(argv)
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    return serve(load_app(args.app), args.id, args.connect,
                 max_body=args.max_body, lifespan=args.lifespan)


if __name__ == "__main__":
    sys.exit(main())
