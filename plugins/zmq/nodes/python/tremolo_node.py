"""Tremolo node helper: the node side of the BlastBeat/Tremolo ZeroMQ protocol.

A node is a ZeroMQ DEALER that connects to the gateway's ROUTER(s), with its
node name as ZMQ_IDENTITY.  Every message is three frames, [sid, type, body]
(spec section 1.2).  This module gives:

* parse_uwsgi() / environ_from_uwsgi(): decoding of the request packet;
* Node: the sockets, ping/pong/spawn handling, per-session bookkeeping and
  the send helpers (headers, body, chunk, end, join, leave, msg, websocket);
* Handler: the callback base class that Node.run() dispatches to;
* RawNode: the message-level runtime (recv/send/serve_wsgi) that adapters
  build on, and runtime(), which picks the C extension `_tremolo` when it
  is importable (its Node has the same methods) and RawNode otherwise;
* run_processes(): N forked node processes, NAME-1 ... NAME-N, as uWSGI's
  --processes; main() is `python3 -m tremolo_node --wsgi module:app ...`.

Only the standard library and pyzmq (Debian python3-zmq) are used.
"""

import importlib
import io
import os
import select
import signal
import struct
import sys
import threading
import time

import zmq

__all__ = [
    "Node", "Handler", "Session", "parse_uwsgi", "parse_uwsgi_pairs",
    "environ_from_uwsgi", "sid_route", "SID_LEN", "UWSGI_MAX",
    "RawNode", "decode_uwsgi", "runtime",
    "process_identities", "run_processes", "main",
]

SID_LEN = 16
UWSGI_MAX = 65535           # spec 2.2: the packet never exceeds 65 535 bytes
GROUP_MAX = 64              # spec 2.3 join: group names are 1..64 bytes


def _b(value):
    """Accept str (encoded UTF-8) or bytes-like for every wire field."""
    if isinstance(value, str):
        return value.encode("utf-8")
    return bytes(value)


# --------------------------------------------------------------------------
# uwsgi packet decoding (spec 2.2)
# --------------------------------------------------------------------------

def parse_uwsgi_pairs(packet):
    """Decode a gateway uwsgi packet into a list of (key, value) bytes pairs.

    Layout: u8 modifier1 (0), u16le SIZE = total length including the 4-byte
    header, u8 modifier2 (0), then (u16le klen, key, u16le vlen, value)
    repeated while offset < SIZE.  Strict: anything else raises ValueError,
    because a half-decoded request is worse than a dropped one.
    """
    packet = bytes(packet)
    if len(packet) < 4:
        raise ValueError("uwsgi packet shorter than its 4-byte header")
    mod1, size, mod2 = struct.unpack_from("<BHB", packet, 0)
    if mod1 != 0 or mod2 != 0:
        raise ValueError("uwsgi modifiers must be 0/0, got %d/%d" % (mod1, mod2))
    if size != len(packet):
        # SIZE includes the header (a BlastBeat quirk kept by Tremolo); a
        # mismatch means truncation or a standard-uwsgi sender.
        raise ValueError("uwsgi SIZE %d != packet length %d" % (size, len(packet)))
    pairs = []
    off = 4
    while off < size:
        if off + 2 > size:
            raise ValueError("truncated key length at offset %d" % off)
        (klen,) = struct.unpack_from("<H", packet, off)
        off += 2
        if off + klen > size:
            raise ValueError("key overruns the packet at offset %d" % off)
        key = packet[off:off + klen]
        off += klen
        if off + 2 > size:
            raise ValueError("truncated value length at offset %d" % off)
        (vlen,) = struct.unpack_from("<H", packet, off)
        off += 2
        if off + vlen > size:
            raise ValueError("value overruns the packet at offset %d" % off)
        value = packet[off:off + vlen]
        off += vlen
        if not key:
            raise ValueError("empty uwsgi key")
        pairs.append((key, value))
    return pairs


def parse_uwsgi(packet):
    """Decode a uwsgi packet into a dict of str -> str (latin-1, as PEP 3333
    wants for native strings).  Repeated HTTP_* keys (one per request header,
    duplicates included, spec 2.2) are joined the way a CGI server would:
    "; " for cookies, ", " otherwise."""
    out = {}
    for key, value in parse_uwsgi_pairs(packet):
        k = key.decode("latin-1")
        v = value.decode("latin-1")
        if k in out:
            sep = "; " if k == "HTTP_COOKIE" else ", "
            out[k] = out[k] + sep + v
        else:
            out[k] = v
    return out


# The name the C runtime uses (_tremolo.decode_uwsgi): same result.
decode_uwsgi = parse_uwsgi


def build_uwsgi(pairs):
    """Encode (key, value) pairs the way the gateway does (used by tests and
    by nodes that forward requests).  SIZE includes the 4-byte header."""
    body = bytearray()
    for key, value in pairs:
        key, value = _b(key), _b(value)
        body += struct.pack("<H", len(key)) + key
        body += struct.pack("<H", len(value)) + value
    total = len(body) + 4
    if total > UWSGI_MAX:
        raise ValueError("uwsgi packet too large (%d bytes)" % total)
    return struct.pack("<BHB", 0, total, 0) + bytes(body)


def environ_from_uwsgi(uwsgi_vars, body_stream=None):
    """Build a WSGI environ from parse_uwsgi() output and a body stream."""
    env = dict(uwsgi_vars)
    # PATH_INFO comes percent-decoded and dot-segment-normalised, as PEP
    # 3333 wants it and as Tremolo's access rules saw it: it is used as
    # is, never decoded again; REQUEST_URI keeps the raw target.
    env.setdefault("REQUEST_METHOD", "GET")
    env.setdefault("SCRIPT_NAME", "")
    env.setdefault("PATH_INFO", "/")
    env.setdefault("QUERY_STRING", "")
    env.setdefault("SERVER_NAME", "localhost")
    env.setdefault("SERVER_PORT", "80")
    env.setdefault("SERVER_PROTOCOL", "HTTP/1.0")
    # The gateway adds HTTPS=on / UWSGI_SCHEME=https on TLS listeners (2.2).
    https = env.get("HTTPS", "").lower() in ("on", "1", "yes")
    scheme = env.get("UWSGI_SCHEME") or ("https" if https else "http")
    if body_stream is None:
        body_stream = io.BytesIO(b"")
    env.update({
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scheme,
        "wsgi.input": body_stream,
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    })
    return env


def format_head(status, header_list=(), protocol="HTTP/1.1"):
    """A raw response head (bytes, latin-1); status is "200 OK" or an int."""
    if isinstance(status, int):
        status = "%d %s" % (status, _REASONS.get(status, "Unknown"))
    head = ["%s %s\r\n" % (protocol, status)]
    for name, value in header_list:
        name, value = str(name), str(value)
        if any(c in name + value for c in "\r\n"):
            raise ValueError("CR/LF in a response header")
        head.append("%s: %s\r\n" % (name, value))
    head.append("\r\n")
    return "".join(head).encode("latin-1")


def sid_route(target_sid):
    """Route naming one session: b"@" + its 16 raw sid bytes (spec 3)."""
    target_sid = bytes(target_sid)
    if len(target_sid) != SID_LEN:
        raise ValueError("a sid is exactly 16 bytes")
    return b"@" + target_sid


def _check_route(route):
    route = _b(route)
    if route.startswith(b"@"):
        if len(route) != SID_LEN + 1:
            raise ValueError("an @sid route is '@' plus exactly 16 bytes")
    elif not 1 <= len(route) <= GROUP_MAX:
        raise ValueError("a group name is 1..64 bytes")
    # No colon check: the gateway splits at the LAST colon and types never
    # contain one, so group names and sids with ':' still route correctly.
    return route


def _check_group(group):
    group = _b(group)
    if not 1 <= len(group) <= GROUP_MAX or group.startswith(b"@"):
        # The gateway destroys the session on an invalid join; fail early.
        raise ValueError("group names are 1..64 bytes and do not start with '@'")
    return group


# --------------------------------------------------------------------------
# Node
# --------------------------------------------------------------------------

class Session:
    """What the node knows about one sid: the socket it came through (replies
    must go back through the front end that owns it) and free-form data."""

    __slots__ = ("sid", "socket", "data")

    def __init__(self, sid, socket):
        self.sid = sid
        self.socket = socket
        self.data = {}


# Seconds of silence from a front end before the node announces itself again.
ANNOUNCE_AFTER = 1.0


class Handler:
    """Callback base class for Node.run(); every method is a no-op.

    `self.node` is set by Node.run() before the first callback.
    """

    node = None

    def on_request(self, sid, uwsgi_vars):
        """A `uwsgi` message: dict of str -> str (see parse_uwsgi)."""

    def on_body(self, sid, data):
        """A non-empty `body` message (request-body bytes)."""

    def on_body_end(self, sid):
        """An empty `body` message: Tremolo's end-of-body marker."""

    def on_end(self, sid):
        """The session is gone (client closed, error, timeout, our `end`)."""

    def on_msg(self, sid, data):
        """A routed `msg` for session sid."""

    def on_websocket(self, sid, data):
        """One complete WebSocket message from the client."""

    def on_websocket_binary(self, sid, data):
        """A binary WebSocket message, when the site says `BinaryMessages
        websocket/binary` (else binary messages come to on_websocket).
        Default: on_message(sid, "websocket/binary", data)."""
        self.on_message(sid, "websocket/binary", data)

    def on_spawn(self):
        """The gateway restarted: every old sid is gone."""

    def on_message(self, sid, mtype, data):
        """Any other type (socket.io/*, future types)."""


def _dealers(ctx, identity, endpoints, linger):
    """(identity, sockets): one DEALER per endpoint, all with the node's
    identity, connected. The identity is the node's only credential (spec
    1.1): it must be set before connect or libzmq picks a random one. On a
    bad argument or a failed connect nothing is left open."""
    if isinstance(endpoints, (str, bytes)):
        endpoints = [endpoints]
    endpoints = list(endpoints)
    if not endpoints:
        raise ValueError("at least one endpoint is needed")
    identity = _b(identity)
    if not identity:
        raise ValueError("the node identity must not be empty")
    sockets = []
    try:
        for endpoint in endpoints:
            sock = ctx.socket(zmq.DEALER)
            sockets.append(sock)
            sock.setsockopt(zmq.IDENTITY, identity)
            sock.setsockopt(zmq.LINGER, linger)
            sock.connect(endpoint if isinstance(endpoint, str)
                         else endpoint.decode())
    except Exception:
        for sock in sockets:
            sock.close(linger=0)
        raise
    return identity, sockets


class Node:
    """One DEALER per front-end endpoint, all with the same identity."""

    def __init__(self, identity, endpoints, on_spawn=None, context=None,
                 linger=1000):
        self.on_spawn = on_spawn
        self.sessions = {}
        self.ctx = context or zmq.Context.instance()
        self.identity, self.sockets = _dealers(self.ctx, identity, endpoints,
                                               linger)
        self._stop = threading.Event()
        self._closed = False
        # Unsolicited pong: usable before the gateway's first ping (2.3).
        self._heard = {}
        for sock in self.sockets:
            self._send_on(sock, b"", b"pong", b"")
            self._heard[sock] = time.monotonic()

    # -- low level ---------------------------------------------------------

    @staticmethod
    def _send_on(sock, sid, mtype, body):
        sock.send_multipart([bytes(sid), bytes(mtype), bytes(body)], copy=True)

    def session(self, sid):
        return self.sessions.get(bytes(sid))

    def _socket_for(self, sid):
        sess = self.sessions.get(bytes(sid))
        if sess is not None:
            return sess.socket
        # Unknown sid (e.g. already ended): the gateway will discard it
        # anyway; the first socket is as good as any.
        return self.sockets[0]

    def send(self, sid, mtype, body=b""):
        """Send [sid, type, body] through the socket the sid came from."""
        sid = bytes(sid)
        if len(sid) != SID_LEN:
            raise ValueError("session messages need a 16-byte sid")
        self._send_on(self._socket_for(sid), sid, _b(mtype), _b(body))

    # -- response helpers --------------------------------------------------

    def headers(self, sid, status, header_list=(), protocol="HTTP/1.1"):
        """Send a raw response head; status is "200 OK" or an int."""
        self.send(sid, b"headers", format_head(status, header_list, protocol))

    def body(self, sid, data):
        self.send(sid, b"body", data)

    def chunk(self, sid, data, route=None):
        """One chunk; empty data sends the terminating 0-length chunk."""
        self.send(sid, self._routed(route, b"chunk"), data)

    def end(self, sid):
        """End the response; on HTTP/1.x this CLOSES the connection."""
        self.send(sid, b"end", b"")

    def join(self, sid, group):
        self.send(sid, b"join", _check_group(group))

    def leave(self, sid, group):
        self.send(sid, b"leave", _check_group(group))

    def msg(self, sid, route, data):
        """Routed msg: route is a group name or sid_route(target_sid)."""
        self.send(sid, self._routed(route, b"msg"), data)

    def websocket(self, sid, data, route=None):
        """One text frame (data must be UTF-8) to the client, a group
        (route=NAME) or one session (route=sid_route(sid))."""
        self.send(sid, self._routed(route, b"websocket"), data)

    def websocket_binary(self, sid, data, route=None):
        """One binary frame, routed as websocket()."""
        self.send(sid, self._routed(route, b"websocket/binary"), data)

    def retry(self, sid):
        self.send(sid, b"retry", b"")

    @staticmethod
    def _routed(route, mtype):
        if route is None:
            return mtype
        return _check_route(route) + b":" + mtype

    # -- receiving ---------------------------------------------------------

    def handle(self, sock, frames, handler):
        """Process one received multipart message; returns its type or None
        if it was discarded."""
        if len(frames) != 3:
            return None             # the protocol is exactly 3 frames (1.2)
        sid, mtype, body = frames
        if mtype == b"ping":
            self._send_on(sock, sid, b"pong", b"")
            return mtype
        if mtype == b"spawn":
            self.sessions.clear()   # old sids are gone (spec 5)
            if self.on_spawn is not None:
                self.on_spawn()
            handler.on_spawn()
            return mtype
        if len(sid) != SID_LEN:
            return None
        if mtype == b"end":
            try:
                handler.on_end(sid)
            finally:
                self.sessions.pop(sid, None)
            return mtype
        sess = self.sessions.get(sid)
        if sess is None:
            sess = self.sessions[sid] = Session(sid, sock)
        else:
            sess.socket = sock
        if mtype == b"uwsgi":
            try:
                uwsgi_vars = parse_uwsgi(body)
            except ValueError as exc:
                print("tremolo_node: bad uwsgi packet: %s" % exc, file=sys.stderr)
                return None
            handler.on_request(sid, uwsgi_vars)
        elif mtype == b"body":
            if body:
                handler.on_body(sid, body)
            else:
                handler.on_body_end(sid)
        elif mtype == b"msg":
            handler.on_msg(sid, body)
        elif mtype == b"websocket":
            handler.on_websocket(sid, body)
        elif mtype == b"websocket/binary":
            handler.on_websocket_binary(sid, body)
        else:
            handler.on_message(sid, mtype.decode("latin-1"), body)
        return mtype

    def poll_once(self, handler, timeout_ms=100):
        """Wait up to timeout_ms and process every message ready."""
        poller = zmq.Poller()
        for sock in self.sockets:
            poller.register(sock, zmq.POLLIN)
        return self._drain(poller, handler, timeout_ms)

    def _drain(self, poller, handler, timeout_ms):
        count = 0
        for sock, _ in poller.poll(timeout_ms):
            while True:
                try:
                    frames = sock.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break
                self._heard[sock] = time.monotonic()
                self.handle(sock, frames, handler)
                count += 1
        self._announce()
        return count

    def _announce(self):
        """A front end that knows this node pings it every PingFreq. One that
        has been silent for ANNOUNCE_AFTER seconds may not know it: it was
        started after this node (the first pong went nowhere) or restarted,
        and a node admitted by a glob pattern is only pinged once it has
        spoken. So say pong again."""
        now = time.monotonic()
        for sock in self.sockets:
            if now - self._heard.get(sock, 0) >= ANNOUNCE_AFTER:
                self._send_on(sock, b"", b"pong", b"")
                self._heard[sock] = now

    def run(self, handler=None, install_signals=True):
        """Event loop until stop() (or SIGTERM/SIGINT in the main thread)."""
        handler = handler or Handler()
        handler.node = self
        if install_signals and threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGTERM, signal.SIGINT):
                signal.signal(signum, lambda *_: self.stop())
        poller = zmq.Poller()
        for sock in self.sockets:
            poller.register(sock, zmq.POLLIN)
        # A bounded poll keeps stop() responsive without a wake-up socket.
        while not self._stop.is_set():
            self._drain(poller, handler, 100)

    def stop(self):
        self._stop.set()

    def close(self, linger=None):
        if self._closed:
            return
        self._closed = True
        for sock in self.sockets:
            sock.close(linger=linger)
        self.sockets = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# --------------------------------------------------------------------------
# RawNode: the runtime interface, pure Python twin of _tremolo.Node
# --------------------------------------------------------------------------

class RawNode:
    """Message-level node: one DEALER per endpoint, the same methods as the
    C extension's _tremolo.Node (see runtime()).

    recv() yields (sid, type, body, index) tuples, index being the position
    of the endpoint the message came through; replies name it again in
    send().  `ping` is answered inside, a message that is not 3 frames is
    dropped, and a front end silent for ANNOUNCE_AFTER seconds gets an
    unsolicited pong (as Node does).  Everything else, `spawn` included, is
    returned to the caller.

    Socket calls are serialised by a lock and waiting is a poll(2) on the
    ZMQ_FDs, so one thread may wait in recv() while another send()s.
    """

    def __init__(self, identity, endpoints, linger_ms=1000):
        self._ctx = zmq.Context()
        try:
            self.identity, self._sockets = _dealers(self._ctx, identity,
                                                    endpoints, linger_ms)
        except Exception:
            self._ctx.term()
            raise
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._next = 0
        self._fds = [sock.getsockopt(zmq.FD) for sock in self._sockets]
        self._poll = select.poll()
        for fd in self._fds:
            self._poll.register(fd, select.POLLIN)
        now = time.monotonic()
        self._heard = [now] * len(self._sockets)
        for sock in self._sockets:
            sock.send_multipart([b"", b"pong", b""])

    def filenos(self):
        """ZMQ_FD of every socket, in endpoint order.  Edge-triggered:
        after a wake-up, call recv_nowait() until it returns None."""
        return list(self._fds)

    def _announce(self, now):
        for i, sock in enumerate(self._sockets):
            if now - self._heard[i] >= ANNOUNCE_AFTER:
                sock.send_multipart([b"", b"pong", b""])
                self._heard[i] = now

    def recv_nowait(self):
        """One message or None when no socket has one ready."""
        with self._lock:
            return self._recv_locked()

    def _recv_locked(self):
        if not self._sockets:
            return None
        n = len(self._sockets)
        now = time.monotonic()
        self._announce(now)
        for k in range(n):
            i = (self._next + k) % n
            sock = self._sockets[i]
            while True:
                try:
                    frames = sock.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break
                self._heard[i] = now
                if len(frames) != 3:
                    continue
                sid, mtype, body = frames
                if mtype == b"ping":
                    sock.send_multipart([sid, b"pong", b""])
                    continue
                self._next = (i + 1) % n    # fairness between front ends
                return (sid, mtype, body, i)
        return None

    def recv(self, timeout_ms=-1):
        """Wait up to timeout_ms (-1: forever) for one message; None on
        timeout or after stop()."""
        deadline = None if timeout_ms < 0 else time.monotonic() + timeout_ms / 1000.0
        while not self._stop.is_set():
            msg = self.recv_nowait()
            if msg is not None:
                return msg
            wait = 100
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                wait = min(wait, max(1, int(left * 1000) + 1))
            with self._lock:
                # a send may have consumed the edge of ZMQ_FD: ZMQ_EVENTS
                # is exact
                ready = any(sock.getsockopt(zmq.EVENTS) & zmq.POLLIN
                            for sock in self._sockets)
            if not ready:
                self._poll.poll(wait)
        return None

    # send() takes batch=True (see there)
    batch_sends = True

    def send(self, sid, mtype, body, index=0, wait=True, batch=False):
        """[sid, type, body] through socket `index` (bytes-like arguments);
        wait=False raises BlockingIOError where a full queue would wait.
        batch=True lets the C runtime hold the message until the caller's
        drain ends (recv/recv_nowait finding no input, or flush()); here
        libzmq's I/O thread batches every send already."""
        frames = [bytes(sid), bytes(mtype), bytes(body)]
        with self._lock:
            try:
                self._sockets[index].send_multipart(
                    frames, flags=0 if wait else zmq.NOBLOCK, copy=True)
            except zmq.Again:
                raise BlockingIOError("the node's queue is full") from None

    def flush(self):
        """Nothing to do: libzmq's I/O thread writes every send (the C
        runtime's native links may hold a batch; see _tremolo)."""

    def readable(self):
        """True when a message may be waiting: a ZMQ_FD is edge-triggered
        and a send may take its edge, so a loop that sends outside its
        drain asks this after sending."""
        if not self._lock.acquire(blocking=False):
            return True             # another thread is on it: look
        try:
            return any(sock.getsockopt(zmq.EVENTS) & zmq.POLLIN
                       for sock in self._sockets)
        finally:
            self._lock.release()

    def serve_wsgi(self, app, max_body=64 * 1024 * 1024):
        """Run the WSGI app until stop() (tremolo_wsgi.WSGIHandler)."""
        import tremolo_wsgi
        handler = tremolo_wsgi.WSGIHandler(app, max_body=max_body)
        handler.node = _RawSender(self)
        sessions = handler.node.index
        while True:
            msg = self.recv(100)
            if msg is None:
                if self._stop.is_set():
                    return
                continue
            sid, mtype, body, index = msg
            if mtype == b"spawn":
                sessions.clear()
                handler.on_spawn()
                continue
            if len(sid) != SID_LEN:
                continue
            if mtype == b"end":
                sessions.pop(sid, None)
                handler.on_end(sid)
                continue
            sessions[sid] = index
            if mtype == b"uwsgi":
                try:
                    env = parse_uwsgi(body)
                except ValueError as exc:
                    print("tremolo_node: bad uwsgi packet: %s" % exc,
                          file=sys.stderr)
                    continue
                handler.on_request(sid, env)
            elif mtype == b"body":
                if body:
                    handler.on_body(sid, body)
                else:
                    handler.on_body_end(sid)

    def stop(self):
        """Make recv() and serve_wsgi() return (safe from signal handlers
        and other threads)."""
        self._stop.set()

    def close(self):
        self._stop.set()
        with self._lock:
            for sock in self._sockets:
                sock.close()
            self._sockets = []
        if self._ctx is not None:
            self._ctx.term()
            self._ctx = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class _RawSender:
    """The Node send helpers WSGIHandler uses, over a RawNode."""

    def __init__(self, raw):
        self.raw = raw
        self.index = {}

    def send(self, sid, mtype, body=b""):
        self.raw.send(sid, mtype, body, self.index.get(bytes(sid), 0))

    headers = Node.headers
    body = Node.body
    chunk = Node.chunk
    end = Node.end
    _routed = staticmethod(Node._routed)


def runtime():
    """The node runtime class: _tremolo.Node (the C extension) when it is
    importable and TREMOLO_NODE_PURE is not 1, else RawNode."""
    import os
    if os.environ.get("TREMOLO_NODE_PURE") != "1":
        try:
            import _tremolo
        except ImportError:
            pass
        else:
            return _tremolo.Node
    return RawNode


_REASONS = {
    100: "Continue", 101: "Switching Protocols", 200: "OK", 201: "Created",
    202: "Accepted", 204: "No Content", 206: "Partial Content",
    301: "Moved Permanently", 302: "Found", 303: "See Other",
    304: "Not Modified", 307: "Temporary Redirect", 308: "Permanent Redirect",
    400: "Bad Request", 401: "Unauthorized", 403: "Forbidden",
    404: "Not Found", 405: "Method Not Allowed", 408: "Request Timeout",
    411: "Length Required", 413: "Content Too Large", 500: "Internal Server Error",
    501: "Not Implemented", 502: "Bad Gateway", 503: "Service Unavailable",
}


# -- the command line every adapter shares -----------------------------------

def load_object(spec, default):
    """Import "module:attr" (attr, dotted, defaults to `default`): the
    application an adapter's command line names."""
    module_name, _, attr = spec.partition(":")
    obj = importlib.import_module(module_name)
    for part in (attr or default).split("."):
        obj = getattr(obj, part)
    return obj


def add_node_options(parser, processes=True):
    """--id, --connect (repeatable) and, unless processes is False,
    --processes: how every adapter's node joins Tremolo."""
    parser.add_argument("--id", required=True, help="node name (ZMQ identity)"
                        + ("; with --processes N > 1, process i is NAME-i"
                           if processes else ""))
    parser.add_argument("--connect", action="append", required=True,
                        metavar="ENDPOINT", help="gateway ROUTER endpoint; "
                        "repeat for several front ends")
    if processes:
        parser.add_argument("--processes", type=int, default=1, metavar="N",
                            help="node processes to fork, NAME-1 ... NAME-N "
                            "(1)")


# -- several processes ------------------------------------------------------

def process_identities(identity, processes):
    """NAME for one process (as before --processes existed); NAME-1 ...
    NAME-N for several: two peers with one identity are one node to ZeroMQ,
    and the second would sit idle."""
    if processes < 1:
        raise ValueError("processes must be at least 1")
    if processes == 1:
        return [identity]
    return ["%s-%d" % (identity, i) for i in range(1, processes + 1)]


def _log(msg):
    sys.stderr.write("tremolo_node[%d]: %s\n" % (os.getpid(), msg))
    sys.stderr.flush()


def _prctl():
    """libc's prctl, looked up in the parent (once, before any fork), or
    None where there is none."""
    try:
        import ctypes
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


def _die_with_parent(prctl, parent):
    """Linux: SIGTERM this child when the parent dies, even by SIGKILL, so
    no node outlives the command that started it."""
    if prctl is None:
        return
    prctl(1, int(signal.SIGTERM))               # PR_SET_PDEATHSIG
    if os.getppid() != parent:                  # it died before prctl
        os.kill(os.getpid(), signal.SIGTERM)


FORWARDED = (signal.SIGTERM, signal.SIGINT)   # parent -> every child
# What the parent waits for. They are blocked around fork(), so that a child
# has reset them before one can reach it.
_WATCHED = FORWARDED + (signal.SIGCHLD,)
RESEND_EVERY = 0.5      # seconds between repeats of the stop signal


def _child(target, identity, ready_fd, parent, prctl, inherited):
    """In the forked child: run target(identity, ready) and never return."""
    code = 1
    try:
        # The parent's handlers and wake-up pipe are not this process's: a
        # signal must not be reported to the parent as its own. Node.run()
        # installs the child's handlers. Signals are still blocked here.
        signal.set_wakeup_fd(-1)
        for signum in _WATCHED:
            signal.signal(signum, signal.SIG_DFL)
        for fd in inherited:
            os.close(fd)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _WATCHED)
        _die_with_parent(prctl, parent)

        def ready():
            nonlocal ready_fd
            if ready_fd is not None:
                os.write(ready_fd, b"r")
                os.close(ready_fd)
                ready_fd = None
        result = target(identity, ready)
        code = result if isinstance(result, int) else 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        import traceback
        traceback.print_exc(file=sys.stderr)
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            # _exit: the parent's atexit handlers and buffers are not ours.
            os._exit(code)


def run_processes(processes, identity, target):
    """Run target(identity, ready) in `processes` forked children, one per
    identity of process_identities(); return the exit status for the parent.

    Call it from the main thread before any zmq context exists (a context
    does not survive fork). A child calls ready() once it has started (app
    loaded, sockets made); a child that exits before that failed to start:
    the others are stopped and 1 is returned. SIGTERM/SIGINT to the parent
    are forwarded to every live child, and repeated every RESEND_EVERY
    seconds to those still alive (a node stops once; a repeat is harmless).
    On Linux a child also gets SIGTERM if the parent is killed outright. A
    child that dies later is logged and not restarted; the parent returns
    when all are gone: 0 if every child exited 0 (or, once stopping, died of
    the signal it was sent).

    Signals reach the parent through a wake-up pipe (signal.set_wakeup_fd)
    that it polls, never through Python-level handlers: those run
    between bytecodes, and a signal that lands after the last check and
    before a blocking call (os.wait(), read()) is not seen until that call
    returns, which left a SIGTERM unforwarded until a child ended by itself."""
    names = process_identities(identity, processes)
    parent = os.getpid()
    prctl = _prctl()
    children = {}                       # pid -> identity
    pipes = {}                          # ready pipe read end -> pid
    failed = set()
    stop = {"signum": None, "sent": 0.0}
    status = 0

    sig_r, sig_w = os.pipe()
    os.set_blocking(sig_r, False)
    os.set_blocking(sig_w, False)
    old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, [])
    old = {}
    old_wakeup = None
    poller = select.poll()
    poller.register(sig_r, select.POLLIN)

    def stop_children(signum):
        if stop["signum"] is None:
            stop["signum"] = signum
        stop["sent"] = time.monotonic()
        for pid in children:
            try:
                os.kill(pid, stop["signum"])
            except ProcessLookupError:
                pass

    def reap():
        nonlocal status
        while children:
            try:
                pid, wstatus = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid not in children:
                continue
            for fd in [fd for fd, p in pipes.items() if p == pid]:
                read_ready(fd)          # it is gone: "r" now, or never
            name = children.pop(pid)
            code = os.waitstatus_to_exitcode(wstatus)
            stopped = stop["signum"] is not None
            if code != 0 and not (stopped and code == -stop["signum"]):
                status = 1
            if not stopped and pid not in failed:
                _log("process %s (pid %d) exited with status %d; not restarted"
                     % (name, pid, code))

    def read_ready(fd):
        nonlocal status
        try:
            byte = os.read(fd, 1)
        except OSError:                 # nothing yet from a dead child
            byte = b""
        poller.unregister(fd)
        os.close(fd)
        pid = pipes.pop(fd)
        if byte != b"r":        # EOF first: it exited (or exec'd) unready
            failed.add(pid)
            if stop["signum"] is None:
                _log("%s failed to start; stopping the others"
                     % children.get(pid, "pid %d" % pid))
                status = 1
                stop_children(signal.SIGTERM)

    try:
        old_wakeup = signal.set_wakeup_fd(sig_w, warn_on_full_buffer=False)
        # The handlers do nothing: CPython's C-level handler writes each
        # signal's number to sig_w as it arrives; the loop reads them.
        for signum in _WATCHED:
            old[signum] = signal.signal(signum, lambda *_: None)
        for name in names:
            rfd, wfd = os.pipe()
            sys.stdout.flush()
            sys.stderr.flush()
            signal.pthread_sigmask(signal.SIG_BLOCK, _WATCHED)
            try:
                pid = os.fork()
            except OSError as exc:
                os.close(rfd)
                os.close(wfd)
                _log("cannot fork %s: %s; stopping the others" % (name, exc))
                status = 1
                stop_children(signal.SIGTERM)
                break
            finally:
                if os.getpid() == parent:
                    # a signal held meanwhile is delivered now, into sig_w
                    signal.pthread_sigmask(signal.SIG_UNBLOCK, _WATCHED)
            if pid == 0:
                os.close(rfd)
                _child(target, name, wfd, parent, prctl,
                       [sig_r, sig_w] + list(pipes))
            os.close(wfd)
            os.set_blocking(rfd, False)
            children[pid] = name
            pipes[rfd] = pid
            poller.register(rfd, select.POLLIN)
        while children:
            timeout = None
            if stop["signum"] is not None:
                timeout = max(0, int((stop["sent"] + RESEND_EVERY
                                      - time.monotonic()) * 1000) + 1)
            for fd, _ in poller.poll(timeout):
                if fd != sig_r:
                    read_ready(fd)
                    continue
                try:
                    got = os.read(sig_r, 512)
                except BlockingIOError:
                    got = b""
                for signum in got:
                    if signum in FORWARDED:
                        stop_children(signum)
            reap()
            if (children and stop["signum"] is not None
                    and time.monotonic() - stop["sent"] >= RESEND_EVERY):
                stop_children(stop["signum"])
    finally:
        for signum, handler in old.items():
            signal.signal(signum, handler)
        if old_wakeup is not None:
            signal.set_wakeup_fd(old_wakeup)
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
        for fd in list(pipes) + [sig_r, sig_w]:
            os.close(fd)
    return status


def _asgi_module(parser):
    """tremolo_asgi, imported only when --asgi asks for it."""
    try:
        import tremolo_asgi
    except ModuleNotFoundError as exc:
        if exc.name != "tremolo_asgi":
            raise
        parser.error("--asgi needs the ASGI adapter, tremolo_asgi.py, which "
                     "is not installed beside tremolo_node.py (%s)"
                     % os.path.dirname(os.path.abspath(__file__)))
    return tremolo_asgi


def main(argv=None):
    """python3 -m tremolo_node (--wsgi | --asgi) module:app --id NAME
    --connect ENDPOINT [--connect ...] [--processes N] [adapter options]

    --wsgi runs tremolo_wsgi.main(); --asgi runs tremolo_asgi.main(), in N
    processes NAME-1 ... NAME-N through run_processes() when N > 1. Options
    this dispatcher does not know go to the adapter unchanged."""
    import argparse
    prog = "python3 -m tremolo_node"
    parser = argparse.ArgumentParser(
        prog=prog, allow_abbrev=False,
        description="Run a WSGI or ASGI application as Tremolo ZeroMQ node "
        "processes.",
        epilog="Other options go to the adapter: --connect ENDPOINT "
        "(required, repeatable), --max-body BYTES, and for ASGI --lifespan; "
        "see tremolo_wsgi.py --help and tremolo_asgi.py --help.")
    kind = parser.add_mutually_exclusive_group(required=True)
    kind.add_argument("--wsgi", metavar="MODULE:APP",
                      help="WSGI callable, e.g. myapp:app")
    kind.add_argument("--asgi", metavar="MODULE:APP",
                      help="ASGI application, e.g. myapp:app")
    parser.add_argument("--id", required=True, help="node name (ZMQ identity); "
                        "with --processes N > 1, process i is NAME-i")
    parser.add_argument("--processes", type=int, default=1, metavar="N",
                        help="node processes to fork, NAME-1 ... NAME-N (1)")
    args, rest = parser.parse_known_args(argv)
    if args.processes < 1:
        parser.error("--processes must be at least 1")
    if not args.id:
        parser.error("--id must not be empty")
    if args.wsgi is not None:
        import tremolo_wsgi
        return tremolo_wsgi.main(argv, prog=prog)

    asgi = _asgi_module(parser)
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())

    def adapter_argv(identity):
        return [args.asgi, "--id", identity] + rest

    if args.processes == 1:
        return asgi.main(adapter_argv(args.id))

    def child(identity, ready):
        # Import the app before ready(), so that an import error counts as a
        # failed start; the adapter then finds the module already loaded.
        import importlib
        importlib.import_module(args.asgi.partition(":")[0])
        ready()
        result = asgi.main(adapter_argv(identity))
        return result if isinstance(result, int) else 0

    return run_processes(args.processes, args.id, child)


if __name__ == "__main__":
    # Run the importable copy, so this module's classes are the ones that
    # tremolo_wsgi and the application import.
    import tremolo_node
    sys.exit(tremolo_node.main())
