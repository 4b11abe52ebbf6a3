"""socket.io for Tremolo nodes: a server API in the style of python-socketio.

Tremolo's socketio plugin terminates Engine.IO v4 / Socket.IO v5 itself and
hands a node the messages of spec section 7.8: `socket.io/connect`,
`socket.io/event`, `socket.io/ack`, `socket.io/disconnect` (JSON bodies) and
`end`.  This module turns them into the programming model that users of
python-socketio's `socketio.Server` know:

    import tremolo_socketio as socketio

    sio = socketio.Server()

    @sio.event
    def connect(sid, environ, auth):
        if not auth:
            raise socketio.ConnectionRefusedError("authentication failed")

    @sio.on("chat message", namespace="/chat")
    def chat(sid, text):
        sio.emit("chat message", text, room="lobby", skip_sid=sid,
                 namespace="/chat")
        return "ok"                     # the client's ack callback gets "ok"

    sio.run("chat-1", ["tcp://127.0.0.1:5000"])

or, without the last line, `python3 tremolo_socketio.py app:sio --id chat-1
--connect tcp://127.0.0.1:5000`.

Differences from python-socketio (README.md, "socket.io", has the list): the
sid handlers get is the Engine.IO session's (32 hex digits, one per client
connection, the same in every namespace), rooms are Tremolo groups of the
site (shared by the namespaces; delivery is filtered by namespace),
handlers run one at a time in the node's loop, and the connection details
(CORS, transports, ping times) are the site's `[SOCKETIO]` settings.

The loop runs on tremolo_node.runtime(): the C extension `_tremolo` when it
was built, else the pure-Python RawNode.  JSON goes through the standard
json module (or the `json=` module given to Server).
"""

import argparse
import base64
import binascii
import inspect
import json as _json
import logging
import os
import signal
import struct
import sys
import threading
import time

import tremolo_node

__all__ = [
    "Server", "AsyncServer", "Namespace", "AsyncNamespace", "WSGIApp",
    "serve", "main",
    "SocketIOError", "ConnectionError", "ConnectionRefusedError",
    "TimeoutError", "BadNamespaceError", "BROADCAST_ROOM",
    "encode_binary", "decode_binary",
]

default_logger = logging.getLogger("tremolo_socketio")

# The group every session joins at its first namespace connect, so that an
# emit without `to` reaches every client of the namespace on every node of
# the site (spec 7.8: a group broadcast goes to the members connected to
# the body's namespace).  Reserved: do not use it as a room name.
BROADCAST_ROOM = "socket.io/*"

SID_LEN = tremolo_node.SID_LEN

# `spawn` (the front end restarted: its old sids are gone) comes at the
# front end's first health tick, 1 s after its start, and by then it may
# have handed this node new sessions: those whose handshake came less than
# SPAWN_GRACE seconds before the spawn are kept.
SPAWN_GRACE = 2.0
_NOT_HANDLED = object()
# Server._intern's bound: distinct tuples of namespaces or rooms shared
INTERN_MAX = 4096


# --------------------------------------------------------------------------
# Exceptions (the names python-socketio applications catch and raise)
# --------------------------------------------------------------------------

class SocketIOError(Exception):
    """Base of this module's errors."""


class ConnectionError(SocketIOError):      # noqa: A001 (python-socketio's name)
    """A connection problem."""


class ConnectionRefusedError(ConnectionError):   # noqa: A001
    """Raise it in a connect handler to refuse the client.

    No argument: message "Connection rejected by server"; one: that text is
    the message; two: message and data; more: the message and the rest as
    a list of data.  The client's `connect_error` gets them.
    """

    def __init__(self, *args):
        super().__init__(*args)
        info = {"message": str(args[0]) if args
                else "Connection rejected by server"}
        if len(args) == 2:
            info["data"] = args[1]
        elif len(args) > 2:
            info["data"] = list(args[1:])
        self.error_args = info


class TimeoutError(SocketIOError):         # noqa: A001
    """call() got no acknowledgement in time."""


class BadNamespaceError(SocketIOError):
    """A namespace that is not served."""


# --------------------------------------------------------------------------
# Binary values: {"_binary": "<base64>"} on the wire (spec 7.8), bytes here
# --------------------------------------------------------------------------

def encode_binary(value):
    """Return value with every bytes-like object replaced by
    {"_binary": base64}; tuples become lists (JSON arrays)."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"_binary": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, dict):
        return {k: encode_binary(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [encode_binary(v) for v in value]
    return value


def decode_binary(value):
    """Return value with every {"_binary": base64} object (exactly that one
    key, a string value) replaced by bytes.  Bad base64 raises ValueError."""
    if isinstance(value, dict):
        if len(value) == 1 and isinstance(value.get("_binary"), str):
            try:
                return base64.b64decode(value["_binary"], validate=True)
            except binascii.Error as exc:
                raise ValueError("bad base64 in a _binary placeholder: %s"
                                 % exc) from None
        return {k: decode_binary(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode_binary(v) for v in value]
    return value


def _json_default(value):
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"_binary": base64.b64encode(bytes(value)).decode("ascii")}
    raise TypeError("%s is not JSON serializable" % type(value).__name__)


def _make_dumps():
    """json.dumps(obj, separators=(",", ":"), ensure_ascii=False,
    default=_json_default) as a str, with the C encoder made once instead
    of at every call.  It keeps no record of the containers it is in
    (markers): a circular value overflows the recursion limit, and then
    the standard encoder runs to raise its ValueError."""
    slow = _json.JSONEncoder(separators=(",", ":"), ensure_ascii=False,
                             default=_json_default).encode
    make = getattr(_json.encoder, "c_make_encoder", None)
    try:
        fast = make(None, _json_default, _json.encoder.encode_basestring,
                    None, ":", ",", False, False, True) if make else None
    except TypeError:               # another signature: no fast path
        fast = None
    if fast is None:
        return slow

    def dumps(obj):
        try:
            return "".join(fast(obj, 0))
        except RecursionError:
            return slow(obj)
    return dumps


_dumps = _make_dumps()
_scan = _json.JSONDecoder().scan_once
_decode_json = _json.JSONDecoder().decode


def _loads(text):
    """json.loads(text): the scanner alone when the value fills the text
    (no whitespace around it), the whole decoder otherwise."""
    try:
        obj, end = _scan(text, 0)
    except StopIteration:
        return _decode_json(text)      # raises the JSONDecodeError
    if end != len(text):
        return _decode_json(text)
    return obj


def _args_of(data):
    """python-socketio's data convention: a tuple is several arguments,
    None none, anything else one."""
    if data is None:
        return []
    if isinstance(data, tuple):
        return list(data)
    return [data]


def _sid_bytes(text):
    """16 bytes from a handler's sid (32 hex digits), or None."""
    if isinstance(text, (bytes, bytearray)) and len(text) == SID_LEN:
        return bytes(text)
    if isinstance(text, str) and len(text) == 2 * SID_LEN:
        try:
            return bytes.fromhex(text)
        except ValueError:
            return None
    return None


def _group(room):
    name = room.encode("utf-8") if isinstance(room, str) else bytes(room)
    if not 1 <= len(name) <= tremolo_node.GROUP_MAX or name.startswith(b"@"):
        raise ValueError("a room name is 1..64 bytes (UTF-8) and does not "
                         "start with '@': %r" % (room,))
    return name


class _Session:
    """One Engine.IO connection as the node knows it.  Kept small (an idle
    client costs the node this object and little more): namespaces and
    rooms are tuples, the per-namespace dicts are made on first use and the
    handshake is kept as packed bytes until an environ is asked for."""

    __slots__ = ("sid", "index", "env", "bucket", "nsps", "rooms",
                 "next_id", "broadcast", "data", "held", "born")

    def __init__(self, sid, index, env, bucket):
        self.sid = sid
        self.index = index
        # _Handshakes.pack()'s bytes, or the environ dict once one was
        # handed out and may be held or changed (Server._environ)
        self.env = env
        # Groups live per site (vhost) of one front end: a room broadcast
        # goes out once through a session of every (front end, site).
        self.bucket = bucket
        self.nsps = ()          # the namespaces the client has joined
        self.rooms = ()         # (namespace, room) pairs entered
        self.next_id = 1        # ids of our events that want an ack
        self.broadcast = False  # joined BROADCAST_ROOM
        self.data = None        # namespace -> user session dict
        # NodeConnect node: emits to a namespace whose connect handler is
        # running wait for the accept (the client is not in it yet).
        self.held = None        # namespace -> [event bodies]
        self.born = time.monotonic()

    @property
    def text(self):
        """The sid handlers see: 32 hex digits."""
        return self.sid.hex()

    def rooms_in(self, namespace):
        return [room for nsp, room in self.rooms if nsp == namespace]

    def in_room(self, namespace, room):
        return (namespace, room) in self.rooms

    def rooms_anywhere(self):
        return {room for _, room in self.rooms}

    def drop_rooms(self, namespace):
        """Leave every room of namespace; the set of rooms left."""
        mine = {room for nsp, room in self.rooms if nsp == namespace}
        if mine:
            self.rooms = tuple(p for p in self.rooms if p[0] != namespace)
        return mine

    def drop_nsp(self, namespace):
        self.nsps = tuple(n for n in self.nsps if n != namespace)
        if self.data is not None:
            self.data.pop(namespace, None)


def _env_refs(sess):
    """sys.getrefcount of sess.env, counted the same way every time."""
    env = sess.env
    return sys.getrefcount(env)


# _env_refs of an environ held by its session only (measured: what the
# interpreter counts of its own references differs between versions)
_UNHELD = _env_refs(_Session(bytes(16), 0, dict(unheld=True), None))


def _environ_dict(pairs):
    """tremolo_node.parse_uwsgi's dict from the packet's pairs."""
    out = {}
    for key, value in pairs:
        k = key.decode("latin-1")
        v = value.decode("latin-1")
        if k in out:
            out[k] = out[k] + ("; " if k == "HTTP_COOKIE" else ", ") + v
        else:
            out[k] = v
    return out


class _Handshakes:
    """The handshake packets of the sessions, packed.  The first packet of
    each layout (the same keys in the same order: one per site, client
    kind and transport, as a rule) is kept whole as its template; a later
    one of that layout is stored as its differing values only (the
    WebSocket key, the client port, ...): b"\\x01", u8 template, then
    (u8 index, u16le length, value) per value.  Anything else is stored as
    the packet itself (it starts with modifier1, 0)."""

    MAX_LAYOUTS = 64

    def __init__(self):
        self.layouts = {}           # tuple of keys -> template number
        self.templates = []         # template number -> list of pairs

    def pack(self, packet, pairs):
        keys = tuple(k for k, _ in pairs)
        number = self.layouts.get(keys)
        if number is None:
            if len(self.templates) >= self.MAX_LAYOUTS or len(pairs) > 255:
                return packet
            number = len(self.templates)
            self.layouts[keys] = number
            self.templates.append(pairs)
        out = [b"\x01", bytes((number,))]
        for i, ((_, value), (_, tvalue)) in enumerate(
                zip(pairs, self.templates[number])):
            if value != tvalue:
                out.append(struct.pack("<BH", i, len(value)))
                out.append(value)
        return b"".join(out)

    def pairs(self, packed):
        if packed[:1] != b"\x01":
            return tremolo_node.parse_uwsgi_pairs(packed)
        pairs = list(self.templates[packed[1]])
        off = 2
        while off < len(packed):
            i, size = struct.unpack_from("<BH", packed, off)
            off += 3
            pairs[i] = (pairs[i][0], packed[off:off + size])
            off += size
        return pairs

    def environ(self, packed):
        return tremolo_node.environ_from_uwsgi(_environ_dict(self.pairs(packed)))


# --------------------------------------------------------------------------
# Server
# --------------------------------------------------------------------------

class Server:
    """A socket.io server for a Tremolo node (python-socketio's Server API).

    Arguments python-socketio takes for its own transport layer
    (async_mode, cors_allowed_origins, ping_interval, ...) are accepted and
    ignored: in Tremolo they are the site's `[SOCKETIO]` settings.

    node_connect: False (default) for sites with `NodeConnect auto`, where
      Tremolo has accepted the namespace before the node hears of it: a
      refusal then disconnects the namespace (`socket.io/end` with its
      nsp).  True for `NodeConnect node`: the node answers every
      `socket.io/connect` with `socket.io/connect` or
      `socket.io/connect_error`.
    namespaces: namespaces accepted without a handler ('*': any); those
      with handlers are always accepted ("/" by default).
    broadcast_room: the group used by emit() without `to` (None: such
      emits reach only this node's sessions).
    """

    reserved_events = ("connect", "connect_error", "disconnect")

    def __init__(self, logger=False, json=None, namespaces=None,
                 node_connect=False, broadcast_room=BROADCAST_ROOM,
                 always_connect=False, **kwargs):
        if isinstance(logger, bool):
            self.logger = default_logger
            if self.logger.level == logging.NOTSET:
                self.logger.setLevel(logging.INFO if logger else logging.WARNING)
        else:
            self.logger = logger
        self.json = json if json is not None else _json
        self.namespaces = namespaces or ["/"]
        self.node_connect = node_connect
        self.broadcast_room = broadcast_room
        self.always_connect = always_connect    # kept for ports; see README
        self.ignored_options = dict(kwargs)
        self.handlers = {}              # namespace -> {event: callable}
        self.namespace_handlers = {}    # namespace -> Namespace
        self.async_mode = "tremolo"
        self._sessions = {}             # 16-byte sid -> _Session
        self._buckets = {}              # (index, site) -> {sid: _Session}
        self._handshakes = _Handshakes()
        self._arities = {}              # connect handler -> arguments
        self._interned = {}             # see _intern
        # handlers called in place (_run_event) unless a subclass runs
        # them its own way (AsyncServer's tasks)
        self._direct = type(self)._invoke is Server._invoke
        self._callbacks = {}            # (sid, id) -> callable
        self._lock = threading.RLock()
        self._node = None
        self._batch = False             # the node takes send(batch=True)
        self._loop_thread = None
        self._stop = threading.Event()
        self._wsgi = None               # tremolo_wsgi.WSGIHandler, WSGIApp

    # -- registration (python-socketio names) -----------------------------

    def on(self, event, handler=None, namespace=None):
        """Register handler for event: @sio.on("name"), or
        sio.on("name", fn).  "*" catches events with no handler of their
        own, called as (event, sid, *args)."""
        namespace = namespace or "/"

        def register(fn):
            self.handlers.setdefault(namespace, {})[event] = fn
            return fn
        if handler is None:
            return register
        register(handler)
        return None

    def event(self, *args, **kwargs):
        """@sio.event (the function's name is the event) or
        @sio.event(namespace="/chat")."""
        if len(args) == 1 and not kwargs and callable(args[0]):
            return self.on(args[0].__name__)(args[0])

        def register(fn):
            return self.on(fn.__name__, **kwargs)(fn)
        return register

    def register_namespace(self, namespace_handler):
        """Class-based handlers: a Namespace subclass with on_<event>."""
        if not isinstance(namespace_handler, Namespace):
            raise ValueError("not a Namespace instance")
        namespace_handler._set_server(self)
        self.namespace_handlers[namespace_handler.namespace] = namespace_handler

    # -- sending ------------------------------------------------------------

    def _dump(self, obj):
        if self.json is _json:
            # bytes anywhere reach default(): no walk over every emit
            return _dumps(obj).encode("utf-8")
        return self.json.dumps(encode_binary(obj), separators=(",", ":"),
                               ensure_ascii=False).encode("utf-8")

    def _binary_in(self, body, args):
        """decode_binary(args), skipped when the body has no placeholder."""
        if b"binary" not in body and b"\\u" not in body:
            return args                 # no placeholder, even an escaped one
        return decode_binary(args)

    def _send(self, sess, mtype, obj=None, route=None):
        node = self._node
        if node is None:
            raise RuntimeError("the server is not running (sio.run/serve)")
        if route is not None:
            mtype = route + b":" + mtype
        body = b"" if obj is None else self._dump(obj)
        if self._batch and threading.get_ident() == self._loop_thread:
            # the loop drains its input before it waits, and the runtime
            # writes what it held then: one write for a batch's replies
            node.send(sess.sid, mtype, body, sess.index, batch=True)
        else:
            node.send(sess.sid, mtype, body, sess.index)

    @staticmethod
    def _with_nsp(obj, namespace):
        if namespace != "/":
            obj["nsp"] = namespace
        return obj

    def _event_body(self, event, data, namespace, ack_id=None):
        body = {"name": event, "args": _args_of(data)}
        self._with_nsp(body, namespace)
        if ack_id is not None:
            body["id"] = ack_id
        return body

    def emit(self, event, data=None, to=None, room=None, skip_sid=None,
             namespace=None, callback=None, **kwargs):
        """Emit event to one client (to=sid), a room (to=room name, or a
        list of them) or every client of the namespace (no to).  data: a
        tuple is several arguments; bytes travel as binary.  callback(*args)
        runs when the client acknowledges (one client only)."""
        namespace = namespace or "/"
        target = to if to is not None else room
        if target is None:
            targets = [None]
        elif isinstance(target, (list, tuple, set)):
            targets = list(target)
        else:
            targets = [target]
        skip = set()
        if skip_sid is not None:
            for s in (skip_sid if isinstance(skip_sid, (list, tuple, set))
                      else [skip_sid]):
                b = _sid_bytes(s)
                if b is not None:
                    skip.add(b)
        for target in targets:
            with self._lock:
                sess = self._sessions.get(_sid_bytes(target)) \
                    if target is not None else None
                if sess is not None:
                    if sess.sid in skip:
                        continue
                    ack_id = None
                    if callback is not None:
                        ack_id = sess.next_id
                        sess.next_id += 1
                        self._callbacks[(sess.sid, ack_id)] = callback
                    body = self._event_body(event, data, namespace, ack_id)
                    held = sess.held.get(namespace) \
                        if sess.held is not None else None
                    if held is not None:
                        held.append(body)
                    else:
                        self._send(sess, b"socket.io/event", body)
                    continue
            if callback is not None:
                raise ValueError("callbacks need one client: to=<sid> of a "
                                 "session of this node")
            room = target if target is not None else self.broadcast_room
            body = self._event_body(event, data, namespace)
            if room is None:        # no broadcast group: this node's only
                for s in self._local(namespace):
                    if s.sid not in skip:
                        self._send(s, b"socket.io/event", body)
                continue
            self._room_send(room, body, skip, namespace)

    def _local(self, namespace):
        with self._lock:
            return [s for s in self._sessions.values() if namespace in s.nsps]

    def _room_send(self, room, body, skip, namespace):
        """One `ROOM:socket.io/event` per (front end, site): Tremolo sends
        it to every member connected to the namespace, the sender included
        when it is a member (spec section 3's echo rule).  A skipped sid that
        is a member becomes the sender with its echo off for the send
        (`noecho ROOM`, the event, `echo ROOM`: one session's messages are
        applied in order)."""
        group = _group(room)
        with self._lock:
            buckets = [list(b.values()) for b in self._buckets.values()]
        for members in buckets:
            if not members:
                continue
            skipped = [s for s in members if s.sid in skip and
                       s.in_room(namespace, room)]
            if not skipped:
                self._send(members[0], b"socket.io/event", body, route=group)
            elif len(skipped) == 1:
                sender = skipped[0]
                node = self._node
                node.send(sender.sid, b"noecho", group, sender.index)
                self._send(sender, b"socket.io/event", body, route=group)
                node.send(sender.sid, b"echo", group, sender.index)
            else:
                # Only one sender can skip itself: send to this node's
                # members one by one (members on other nodes are missed).
                self.logger.warning(
                    "emit to room %r skipping %d sids: sent to this node's "
                    "members only", room, len(skipped))
                for s in members:
                    if s.sid not in skip and s.in_room(namespace, room):
                        self._send(s, b"socket.io/event", body)

    def send(self, data, to=None, room=None, skip_sid=None, namespace=None,
             callback=None, **kwargs):
        """emit("message", data, ...)."""
        self.emit("message", data, to=to, room=room, skip_sid=skip_sid,
                  namespace=namespace, callback=callback)

    def call(self, event, data=None, to=None, sid=None, namespace=None,
             timeout=60, **kwargs):
        """Emit to one client and wait for its acknowledgement: returns the
        one argument, a tuple of several, or None; TimeoutError after
        timeout seconds.  From a handler (the node's loop thread) the loop
        keeps dispatching other messages while it waits."""
        target = to if to is not None else sid
        if target is None:
            raise ValueError("call() needs to=<sid>: it cannot broadcast")
        done = threading.Event()
        got = []

        def ack(*args):
            got.append(args)
            done.set()
        self.emit(event, data, to=target, namespace=namespace, callback=ack)
        deadline = time.monotonic() + timeout
        if threading.get_ident() == self._loop_thread:
            while not done.is_set() and not self._stop.is_set():
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                msg = self._node.recv(max(1, min(100, int(left * 1000) + 1)))
                if msg is not None:
                    self.dispatch(*msg)
        else:
            done.wait(timeout)
        if not done.is_set():
            with self._lock:
                for key, fn in list(self._callbacks.items()):
                    if fn is ack:
                        del self._callbacks[key]
            raise TimeoutError()
        args = got[0]
        if not args:
            return None
        return args[0] if len(args) == 1 else args

    # -- rooms --------------------------------------------------------------

    def enter_room(self, sid, room, namespace=None):
        """Put sid in room (a Tremolo group of its site: `join`)."""
        namespace = namespace or "/"
        group = _group(room)
        with self._lock:
            sess = self._session_or_raise(sid)
            anywhere = room in sess.rooms_anywhere()
            if not sess.in_room(namespace, room):
                sess.rooms = self._intern(sess.rooms + ((namespace, room),))
        if not anywhere:
            self._node.send(sess.sid, b"join", group, sess.index)

    def leave_room(self, sid, room, namespace=None):
        """Take sid out of room (`leave` once no namespace holds it)."""
        namespace = namespace or "/"
        group = _group(room)
        with self._lock:
            sess = self._sessions.get(_sid_bytes(sid))
            if sess is None or not sess.in_room(namespace, room):
                return
            sess.rooms = tuple(p for p in sess.rooms
                               if p != (namespace, room))
            left = room not in sess.rooms_anywhere()
        if left:
            self._node.send(sess.sid, b"leave", group, sess.index)

    def close_room(self, room, namespace=None):
        """Every member of room that this node serves leaves it."""
        namespace = namespace or "/"
        with self._lock:
            members = [s.text for s in self._sessions.values()
                       if s.in_room(namespace, room)]
        for text in members:
            self.leave_room(text, room, namespace)

    def rooms(self, sid, namespace=None):
        """The rooms of sid in namespace, its own sid first (as
        python-socketio lists the room every client has of its own)."""
        namespace = namespace or "/"
        with self._lock:
            sess = self._sessions.get(_sid_bytes(sid))
            if sess is None or namespace not in sess.nsps:
                return []
            return [sess.text] + sorted(sess.rooms_in(namespace))

    def _intern(self, value):
        """One shared object for the tuples of namespaces and of rooms
        that many sessions have alike (up to INTERN_MAX of them)."""
        interned = self._interned
        if len(interned) >= INTERN_MAX:
            return interned.get(value, value)
        return interned.setdefault(value, value)

    def _session_or_raise(self, sid):
        sess = self._sessions.get(_sid_bytes(sid))
        if sess is None:
            raise KeyError("no such session: %r" % (sid,))
        return sess

    # -- per-client data ------------------------------------------------------

    def get_session(self, sid, namespace=None):
        with self._lock:
            sess = self._session_or_raise(sid)
            if sess.data is None:
                sess.data = {}
            return sess.data.setdefault(namespace or "/", {})

    def save_session(self, sid, session, namespace=None):
        with self._lock:
            sess = self._session_or_raise(sid)
            if sess.data is None:
                sess.data = {}
            sess.data[namespace or "/"] = session

    def session(self, sid, namespace=None):
        """with sio.session(sid) as s: ... (saved on exit)."""
        server = self

        class _Ctx:
            def __enter__(self):
                self.data = server.get_session(sid, namespace)
                return self.data

            def __exit__(self, *exc):
                server.save_session(sid, self.data, namespace)
        return _Ctx()

    def get_environ(self, sid, namespace=None):
        """The WSGI-style environ of the client's handshake request."""
        sess = self._sessions.get(_sid_bytes(sid))
        return None if sess is None else self._environ(sess)

    def _environ(self, sess):
        """The session's environ, made from its packed handshake at the
        first call and kept from then on (the caller may hold or change
        it; _forget_environ packs it again when nobody did)."""
        env = sess.env
        if not isinstance(env, dict):
            env = sess.env = self._handshakes.environ(env)
        return env

    def _forget_environ(self, sess, packed, snapshot):
        """After the connect handler: back to the packed handshake when
        nothing but the session holds the environ (the handler kept no
        reference) and the handler changed nothing in it; a later
        get_environ() makes an equal one."""
        if (isinstance(sess.env, dict) and _env_refs(sess) == _UNHELD
                and tuple(sess.env.items()) == snapshot):
            sess.env = packed

    def transport(self, sid):
        """The transport of the handshake: "polling" or "websocket" (the
        client may have upgraded since)."""
        sess = self._sessions.get(_sid_bytes(sid))
        if sess is None:
            return "polling"
        env = sess.env
        if not isinstance(env, dict):
            env = _environ_dict(self._handshakes.pairs(env))
        return env.get("TREMOLO_TRANSPORT", "polling")

    def disconnect(self, sid, namespace=None, ignore_queue=False):
        """Disconnect sid from namespace ("/" by default): `socket.io/end`
        with that nsp; the disconnect handler runs now."""
        namespace = namespace or "/"
        with self._lock:
            sess = self._sessions.get(_sid_bytes(sid))
            if sess is None or namespace not in sess.nsps:
                return
        self._send(sess, b"socket.io/end", self._with_nsp({}, namespace))
        self._left(sess, namespace)

    # -- helpers python-socketio applications call ------------------------

    def start_background_task(self, target, *args, **kwargs):
        """Run target in a daemon thread (emit/call are thread-safe)."""
        thread = threading.Thread(target=target, args=args, kwargs=kwargs,
                                  daemon=True)
        thread.start()
        return thread

    def sleep(self, seconds=0):
        time.sleep(seconds)

    # -- receiving ----------------------------------------------------------

    def _trigger(self, event, namespace, *args):
        handlers = self.handlers.get(namespace)
        if handlers is not None:
            if event in handlers:
                return handlers[event](*args)
            if "*" in handlers and event not in self.reserved_events:
                return handlers["*"](event, *args)
            return _NOT_HANDLED
        ns = self.namespace_handlers.get(namespace)
        if ns is not None:
            return ns.trigger_event(event, *args)
        return _NOT_HANDLED

    def _connect_handler(self, namespace):
        handlers = self.handlers.get(namespace)
        if handlers is not None:
            return handlers.get("connect")
        ns = self.namespace_handlers.get(namespace)
        if ns is not None:
            return getattr(ns, "on_connect", None)
        return None

    def _serves(self, namespace):
        return (namespace in self.handlers
                or namespace in self.namespace_handlers
                or self.namespaces == "*" or "*" in self.namespaces
                or namespace in self.namespaces)

    def _decode(self, body, what):
        """A 7.8 JSON object, or None after a log line."""
        try:
            text = (body if type(body) is bytes else bytes(body)).decode(
                "utf-8")
            obj = _loads(text) if self.json is _json else self.json.loads(text)
        except (ValueError, UnicodeDecodeError) as exc:
            self.logger.warning("tremolo_socketio: %s: bad JSON body "
                                "ignored: %s", what, exc)
            return None
        if not isinstance(obj, dict):
            self.logger.warning("tremolo_socketio: %s: body is not a JSON "
                                "object; ignored", what)
            return None
        nsp = obj.get("nsp", "/")
        if not isinstance(nsp, str) or not nsp.startswith("/"):
            self.logger.warning("tremolo_socketio: %s: bad nsp %r; ignored",
                                what, nsp)
            return None
        obj["nsp"] = nsp
        return obj

    def dispatch(self, sid, mtype, body, index=0):
        """Handle one runtime message (sid, type, body, index)."""
        if mtype == b"socket.io/event" and type(sid) is bytes:
            # the common message first, with no detour
            sess = self._sessions.get(sid)
            if sess is not None:
                sess.index = index
                try:
                    self._on_event(sess, body)
                except Exception:
                    self.logger.exception("tremolo_socketio: error "
                                          "handling socket.io/event")
                return
        sid, mtype = bytes(sid), bytes(mtype)
        if mtype == b"spawn":
            self._on_spawn(index)
            return
        if len(sid) != SID_LEN:
            return
        try:
            if mtype == b"uwsgi":
                self._on_uwsgi(sid, body, index)
            elif mtype == b"end":
                self._on_end(sid)
            elif mtype.startswith(b"socket.io/"):
                self._on_sio(sid, mtype[10:], body, index)
            elif self._wsgi is not None and sid not in self._sessions:
                if mtype == b"body":
                    if body:
                        self._wsgi.on_body(sid, bytes(body))
                    else:
                        self._wsgi.on_body_end(sid)
        except Exception:
            self.logger.exception("tremolo_socketio: error handling %s",
                                  mtype.decode("latin-1"))

    def _on_spawn(self, index):
        """Front end `index` restarted: its sessions from before are gone
        (their disconnect handlers run); another front end's are not."""
        cutoff = time.monotonic() - SPAWN_GRACE
        with self._lock:
            sessions = [s for s in self._sessions.values()
                        if s.index == index and s.born < cutoff]
        for sess in sessions:
            self._on_end(sess.sid)
        if self._wsgi is not None:
            self._wsgi.pending.clear()

    def _on_uwsgi(self, sid, body, index):
        body = bytes(body)
        try:
            pairs = tremolo_node.parse_uwsgi_pairs(body)
        except ValueError as exc:
            self.logger.warning("tremolo_socketio: bad uwsgi packet: %s", exc)
            return
        env = _environ_dict(pairs)
        if "TREMOLO_TRANSPORT" not in env:
            if self._wsgi is not None:
                self._wsgi.node.index[sid] = index
                self._wsgi.on_request(sid, env)
            else:
                self.logger.warning("tremolo_socketio: an HTTP request that "
                                    "is no socket.io handshake; closed (run "
                                    "the server with serve() to answer it)")
                self._node.send(sid, b"end", b"", index)
            return
        with self._lock:
            old = self._sessions.get(sid)
        if old is not None:
            self._on_end(sid)
        # the defaults are environ_from_uwsgi's
        site = (index, env.get("SERVER_NAME", "localhost"),
                env.get("SERVER_PORT", "80"))
        with self._lock:
            bucket = self._buckets.get(site)
            if bucket is None:
                bucket = self._buckets[site] = {}
            else:
                site = next(iter(bucket.values())).bucket   # one tuple
            sess = _Session(sid, index, self._handshakes.pack(body, pairs),
                            site)
            self._sessions[sid] = sess
            bucket[sid] = sess

    def _on_end(self, sid):
        with self._lock:
            sess = self._sessions.get(sid)
        if sess is None:
            if self._wsgi is not None:
                self._wsgi.on_end(sid)
                self._wsgi.node.index.pop(sid, None)
            return
        for namespace in sess.nsps:
            self._left(sess, namespace, ending=True)
        with self._lock:
            self._sessions.pop(sid, None)
            bucket = self._buckets.get(sess.bucket)
            if bucket is not None:
                bucket.pop(sid, None)
                if not bucket:
                    del self._buckets[sess.bucket]
            for key in [k for k in self._callbacks if k[0] == sid]:
                del self._callbacks[key]

    def _left(self, sess, namespace, ending=False):
        """sess is out of namespace: run the disconnect handler (a plain
        one still sees the rooms), then leave the rooms of that namespace
        (`leave` where no other namespace holds them; Tremolo drops every
        membership of a session that ends)."""
        with self._lock:
            if namespace not in sess.nsps:
                return
        self._invoke(lambda: self._trigger("disconnect", namespace, sess.text),
                     self._log_failure("disconnect handler"))
        with self._lock:
            sess.drop_nsp(namespace)
            rooms = sess.drop_rooms(namespace)
            rooms -= sess.rooms_anywhere()
        if not ending and self._node is not None:
            for room in sorted(rooms):
                self._node.send(sess.sid, b"leave", _group(room), sess.index)

    def _log_failure(self, what):
        def then(result, exc):
            if exc is not None:
                self.logger.error("tremolo_socketio: %s", what, exc_info=exc)
        return then

    def _on_sio(self, sid, kind, body, index):
        with self._lock:
            sess = self._sessions.get(sid)
        if sess is None:
            # No handshake seen (this node restarted, or a spawn): the
            # connect handler never ran, so close; the client reconnects.
            self.logger.warning("tremolo_socketio: socket.io/%s for an "
                                "unknown session; closing it",
                                kind.decode("latin-1"))
            self._node.send(sid, b"socket.io/end", b"", index)
            return
        sess.index = index
        if kind == b"event":
            self._on_event(sess, body)
        elif kind == b"ack":
            self._on_ack(sess, body)
        elif kind == b"connect":
            self._on_connect(sess, body)
        elif kind == b"disconnect":
            obj = self._decode(body, "socket.io/disconnect")
            if obj is not None:
                self._left(sess, obj["nsp"])
        elif kind == b"msg":                # BlastBeat sugar, namespace /
            try:
                text = bytes(body).decode("utf-8")
            except UnicodeDecodeError:
                self.logger.warning("tremolo_socketio: socket.io/msg is not "
                                    "UTF-8; ignored")
                return
            self._run_event(sess, "/", "message", [text], None)
        elif kind == b"json":
            try:
                value = decode_binary(self.json.loads(
                    bytes(body).decode("utf-8")))
            except (ValueError, UnicodeDecodeError) as exc:
                self.logger.warning("tremolo_socketio: socket.io/json: bad "
                                    "JSON ignored: %s", exc)
                return
            self._run_event(sess, "/", "message", [value], None)

    def _invoke(self, call, then):
        """Run call() (a handler) and then then(result, exception).  The
        AsyncServer awaits a coroutine result in a task first."""
        try:
            result = call()
        except Exception as exc:        # noqa: BLE001 (reported by then)
            then(None, exc)
            return
        then(result, None)

    def _on_connect(self, sess, body):
        obj = self._decode(body, "socket.io/connect")
        if obj is None:
            return
        namespace = obj["nsp"]
        auth = obj.get("auth")
        if namespace in sess.nsps:
            return                          # already connected: a repeat
        if not self._serves(namespace):
            self._connect_done(sess, namespace, False,
                               {"message": "Unable to connect"})
            return
        handler = self._connect_handler(namespace)
        with self._lock:
            sess.nsps = self._intern(sess.nsps + (namespace,))
            if self.node_connect:
                if sess.held is None:
                    sess.held = {}
                sess.held[namespace] = []
        if handler is None:
            self._connect_done(sess, namespace, True, None)
            return
        args = [sess.text, None, auth][:self._connect_arity(handler)]
        packed = snapshot = None
        if len(args) > 1:
            packed = sess.env
            args[1] = self._environ(sess)
            if packed is sess.env:
                packed = None               # a dict already: kept as is
            else:
                snapshot = tuple(args[1].items())

        def then(ok, exc):
            if snapshot is not None:
                args.clear()                # our last reference but one
                self._forget_environ(sess, packed, snapshot)
            refusal = None
            if isinstance(exc, ConnectionRefusedError):
                ok, refusal = False, exc.error_args
            elif exc is not None:
                self.logger.error("tremolo_socketio: connect handler",
                                  exc_info=exc)
                ok = False
            self._connect_done(sess, namespace, ok is not False, refusal)
        self._invoke(lambda: handler(*args), then)

    def _connect_done(self, sess, namespace, accepted, refusal):
        with self._lock:
            held = (sess.held.pop(namespace, None)
                    if sess.held is not None else None) or []
            if not sess.held:
                sess.held = None
        if sess.sid not in self._sessions:
            return                          # ended meanwhile
        if not accepted:
            refusal = refusal or ConnectionRefusedError().error_args
            with self._lock:
                sess.drop_nsp(namespace)
                rooms = sess.drop_rooms(namespace)
            for room in rooms - sess.rooms_anywhere():
                self._node.send(sess.sid, b"leave", _group(room), sess.index)
            if self.node_connect:
                body = self._with_nsp(dict(refusal), namespace)
                self._send(sess, b"socket.io/connect_error", body)
            else:
                # NodeConnect auto: the client is connected already.
                self._send(sess, b"socket.io/end",
                           self._with_nsp({}, namespace))
            return
        # The accept is sent in both modes: under NodeConnect node the
        # client waits for it; under auto Tremolo has accepted already and
        # ignores it (spec 7.8: "needed only where the site asks nodes to
        # decide"), so a node that says node_connect=False by mistake still
        # lets accepted clients in.
        self._send(sess, b"socket.io/connect", self._with_nsp({}, namespace))
        for body in held:
            self._send(sess, b"socket.io/event", body)
        if self.broadcast_room is not None and not sess.broadcast:
            sess.broadcast = True
            self._node.send(sess.sid, b"join", _group(self.broadcast_room),
                            sess.index)

    def _connect_arity(self, handler):
        """How many of (sid, environ, auth) handler takes: 3, or 2 (or
        fewer) for a handler with that many positional parameters."""
        try:
            return self._arities[handler]
        except (KeyError, TypeError):
            pass
        count = 3
        try:
            params = inspect.signature(handler).parameters.values()
        except (TypeError, ValueError):
            params = None
        if params is not None:
            positional = [p for p in params if p.kind in (
                p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
            varargs = any(p.kind == p.VAR_POSITIONAL for p in params)
            if not varargs and len(positional) < 3:
                count = len(positional)
        try:
            self._arities[handler] = count
        except TypeError:
            pass                            # not hashable: asked each time
        return count

    def _on_event(self, sess, body):
        if type(body) is not bytes:
            body = bytes(body)
        obj = self._decode(body, "socket.io/event")
        if obj is None:
            return
        name = obj.get("name")
        ack_id = obj.get("id")
        if not isinstance(name, str) or (
                ack_id is not None and (not isinstance(ack_id, int)
                                        or isinstance(ack_id, bool)
                                        or ack_id < 0)):
            self.logger.warning("tremolo_socketio: socket.io/event without "
                                "a name or with a bad id; ignored")
            return
        args = obj.get("args", [])
        if not isinstance(args, list):
            args = [args]
        if b"binary" in body or b"\\u" in body:
            try:
                args = decode_binary(args)
            except ValueError as exc:
                self.logger.warning("tremolo_socketio: socket.io/event: %s; "
                                    "ignored", exc)
                return
        self._run_event(sess, obj["nsp"], name, args, ack_id)

    def _run_event(self, sess, namespace, name, args, ack_id):
        if namespace not in sess.nsps:
            self.logger.warning("tremolo_socketio: event %r for namespace %s "
                                "that %s has not joined; ignored", name,
                                namespace, sess.text)
            return
        if self._direct:
            # Server's own _invoke: the handler's result is at hand, no
            # closures needed (AsyncServer takes the path below)
            handlers = self.handlers.get(namespace)
            fn = handlers.get(name) if handlers is not None else None
            if fn is not None:
                try:
                    result = fn(sess.sid.hex(), *args)
                except Exception:
                    self.logger.error("tremolo_socketio: handler of %r",
                                      name, exc_info=True)
                    return
                if ack_id is not None and sess.sid in self._sessions:
                    reply = {"id": ack_id, "args": _args_of(result)}
                    if namespace != "/":
                        reply["nsp"] = namespace
                    self._send(sess, b"socket.io/ack", reply)
                return

        def then(result, exc):
            if exc is not None:
                self.logger.error("tremolo_socketio: handler of %r", name,
                                  exc_info=exc)
                return
            if ack_id is None or result is _NOT_HANDLED:
                return
            if sess.sid not in self._sessions:
                return                      # ended while the handler ran
            reply = {"id": ack_id, "args": _args_of(result)}
            self._send(sess, b"socket.io/ack",
                       self._with_nsp(reply, namespace))
        self._invoke(lambda: self._trigger(name, namespace, sess.text, *args),
                     then)

    def _on_ack(self, sess, body):
        body = bytes(body)
        obj = self._decode(body, "socket.io/ack")
        if obj is None:
            return
        ack_id = obj.get("id")
        args = obj.get("args", [])
        if not isinstance(args, list):
            args = [args]
        try:
            args = self._binary_in(body, args)
        except ValueError as exc:
            self.logger.warning("tremolo_socketio: socket.io/ack: %s; "
                                "ignored", exc)
            return
        with self._lock:
            fn = self._callbacks.pop((sess.sid, ack_id), None) \
                if isinstance(ack_id, int) else None
        if fn is None:
            self.logger.warning("tremolo_socketio: ack %r that no emit "
                                "waits for; ignored", ack_id)
            return
        self._invoke(lambda: fn(*args), self._log_failure("ack callback"))

    # -- running ------------------------------------------------------------

    def serve_on(self, node):
        """Run the message loop on a runtime node until stop()."""
        self._node = node
        self._batch = bool(getattr(node, "batch_sends", False))
        self._loop_thread = threading.get_ident()
        self._stop.clear()
        recv, recv_nowait, dispatch = node.recv, node.recv_nowait, \
            self.dispatch
        try:
            while True:
                # what has come already first (no GIL round trip); the
                # wait when there is none (its first look writes the
                # batch of replies)
                msg = recv_nowait()
                if msg is None:
                    msg = recv(100)
                    if msg is None:
                        if self._stop.is_set():
                            return
                        continue
                dispatch(*msg)
        finally:
            self._loop_thread = None

    def stop(self):
        """Make the loop return (thread- and signal-safe)."""
        self._stop.set()
        node = self._node
        if node is not None:
            node.stop()

    def run(self, identity, endpoints, wsgi_app=None):
        """Serve as node `identity` until SIGTERM/SIGINT (or stop())."""
        serve(self if wsgi_app is None else WSGIApp(self, wsgi_app),
              identity, endpoints)


class AsyncServer(Server):
    """The same server on asyncio (python-socketio's AsyncServer API):
    handlers may be coroutines (each call runs in its own task, as
    python-socketio's async_handlers), and emit, send, call, close_room,
    disconnect, get_session, save_session and sleep are coroutines;
    enter_room, leave_room and rooms stay plain calls.

    The node's sockets are watched with loop.add_reader (the filenos of
    tremolo_node.runtime()'s node); uvloop is used when installed.  Sends
    go out at once: with a full queue (Tremolo not reading) a send waits
    and holds the loop.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.async_mode = "asyncio"
        self._aloop = None
        self._wake = None
        self._tasks = set()

    # -- the loop ---------------------------------------------------------

    def _spawn(self, coro):
        task = self._aloop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _invoke(self, call, then):
        try:
            result = call()
        except Exception as exc:        # noqa: BLE001 (reported by then)
            then(None, exc)
            return
        if not inspect.isawaitable(result):
            then(result, None)
            return

        async def finish():
            try:
                value = await result
            except Exception as exc:    # noqa: BLE001
                value, error = None, exc
            else:
                error = None
            try:
                then(value, error)
            except Exception:
                self.logger.exception("tremolo_socketio: after a handler")
        self._spawn(finish())

    def _send(self, sess, mtype, obj=None, route=None):
        super()._send(sess, mtype, obj, route)
        if self._wake is not None:
            # a send may take the edge of an edge-triggered fd: look again
            self._wake.set()

    async def serve_on_async(self, node):
        """Run the message loop on a runtime node until stop()."""
        import asyncio
        loop = asyncio.get_running_loop()
        self._node, self._aloop = node, loop
        self._wake = asyncio.Event()
        self._stop.clear()
        fds = list(dict.fromkeys(node.filenos()))
        for fd in fds:
            loop.add_reader(fd, self._wake.set)
        try:
            while not self._stop.is_set():
                self._wake.clear()
                count = 0
                while not self._stop.is_set():
                    msg = node.recv_nowait()
                    if msg is None:
                        break
                    self.dispatch(*msg)
                    count += 1
                    if count % 64 == 0:
                        await asyncio.sleep(0)      # let handlers run
                if count or node.readable():
                    await asyncio.sleep(0)
                    continue
                try:
                    # bounded: the C runtime reconnects inside recv_nowait
                    await asyncio.wait_for(self._wake.wait(), 0.25)
                except asyncio.TimeoutError:
                    pass
        finally:
            for fd in fds:
                loop.remove_reader(fd)
            for task in list(self._tasks):
                task.cancel()
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)
            self._wake = None
            self._aloop = None

    def stop(self):
        self._stop.set()
        loop, wake = self._aloop, self._wake
        if loop is not None and wake is not None:
            try:
                loop.call_soon_threadsafe(wake.set)
            except RuntimeError:
                pass                    # the loop is closed already

    # -- the coroutine half of the API --------------------------------------

    async def emit(self, event, data=None, to=None, room=None, skip_sid=None,
                   namespace=None, callback=None, **kwargs):
        Server.emit(self, event, data, to=to, room=room, skip_sid=skip_sid,
                    namespace=namespace, callback=callback)

    async def send(self, data, to=None, room=None, skip_sid=None,
                   namespace=None, callback=None, **kwargs):
        Server.emit(self, "message", data, to=to, room=room,
                    skip_sid=skip_sid, namespace=namespace, callback=callback)

    async def call(self, event, data=None, to=None, sid=None, namespace=None,
                   timeout=60, **kwargs):
        import asyncio
        target = to if to is not None else sid
        if target is None:
            raise ValueError("call() needs to=<sid>: it cannot broadcast")
        future = asyncio.get_running_loop().create_future()

        def ack(*args):
            if not future.done():
                future.set_result(args)
        Server.emit(self, event, data, to=target, namespace=namespace,
                    callback=ack)
        try:
            args = await asyncio.wait_for(future, timeout)
        except asyncio.TimeoutError:
            with self._lock:
                for key, fn in list(self._callbacks.items()):
                    if fn is ack:
                        del self._callbacks[key]
            raise TimeoutError() from None
        if not args:
            return None
        return args[0] if len(args) == 1 else args

    async def close_room(self, room, namespace=None):
        Server.close_room(self, room, namespace)

    async def disconnect(self, sid, namespace=None, ignore_queue=False):
        Server.disconnect(self, sid, namespace)

    async def get_session(self, sid, namespace=None):
        return Server.get_session(self, sid, namespace)

    async def save_session(self, sid, session, namespace=None):
        Server.save_session(self, sid, session, namespace)

    def session(self, sid, namespace=None):
        """async with sio.session(sid) as s: ... (saved on exit)."""
        server = self

        class _Ctx:
            async def __aenter__(self):
                self.data = Server.get_session(server, sid, namespace)
                return self.data

            async def __aexit__(self, *exc):
                Server.save_session(server, sid, self.data, namespace)
        return _Ctx()

    def start_background_task(self, target, *args, **kwargs):
        """A task running target(*args, **kwargs) (a coroutine function)."""
        return self._spawn(target(*args, **kwargs))

    async def sleep(self, seconds=0):
        import asyncio
        await asyncio.sleep(seconds)

    def run(self, identity, endpoints, wsgi_app=None):
        serve(self if wsgi_app is None else WSGIApp(self, wsgi_app),
              identity, endpoints)


class Namespace:
    """Class-based handlers: on_<event>(self, sid, *args) methods, and the
    Server's emit/send/call/rooms calls with this namespace as default."""

    def __init__(self, namespace=None):
        self.namespace = namespace or "/"
        self.server = None

    def _set_server(self, server):
        self.server = server

    def trigger_event(self, event, *args):
        handler = getattr(self, "on_" + event, None)
        if handler is None:
            return _NOT_HANDLED
        return handler(*args)

    def emit(self, event, data=None, to=None, room=None, skip_sid=None,
             namespace=None, callback=None):
        return self.server.emit(event, data, to=to, room=room,
                                skip_sid=skip_sid,
                                namespace=namespace or self.namespace,
                                callback=callback)

    def send(self, data, to=None, room=None, skip_sid=None, namespace=None,
             callback=None):
        return self.server.send(data, to=to, room=room, skip_sid=skip_sid,
                                namespace=namespace or self.namespace,
                                callback=callback)

    def call(self, event, data=None, to=None, sid=None, namespace=None,
             timeout=60):
        return self.server.call(event, data, to=to, sid=sid,
                                namespace=namespace or self.namespace,
                                timeout=timeout)

    def enter_room(self, sid, room, namespace=None):
        return self.server.enter_room(sid, room, namespace or self.namespace)

    def leave_room(self, sid, room, namespace=None):
        return self.server.leave_room(sid, room, namespace or self.namespace)

    def close_room(self, room, namespace=None):
        return self.server.close_room(room, namespace or self.namespace)

    def rooms(self, sid, namespace=None):
        return self.server.rooms(sid, namespace or self.namespace)

    def disconnect(self, sid, namespace=None):
        return self.server.disconnect(sid, namespace or self.namespace)


class AsyncNamespace(Namespace):
    """Namespace for an AsyncServer: on_<event> may be coroutines, and the
    server calls are awaited as AsyncServer's are."""

    async def emit(self, event, data=None, to=None, room=None, skip_sid=None,
                   namespace=None, callback=None):
        return await self.server.emit(event, data, to=to, room=room,
                                      skip_sid=skip_sid,
                                      namespace=namespace or self.namespace,
                                      callback=callback)

    async def send(self, data, to=None, room=None, skip_sid=None,
                   namespace=None, callback=None):
        return await self.server.send(data, to=to, room=room,
                                      skip_sid=skip_sid,
                                      namespace=namespace or self.namespace,
                                      callback=callback)

    async def call(self, event, data=None, to=None, sid=None, namespace=None,
                   timeout=60):
        return await self.server.call(event, data, to=to, sid=sid,
                                      namespace=namespace or self.namespace,
                                      timeout=timeout)

    async def close_room(self, room, namespace=None):
        return await self.server.close_room(room, namespace or self.namespace)

    async def disconnect(self, sid, namespace=None):
        return await self.server.disconnect(sid, namespace or self.namespace)


class WSGIApp:
    """python-socketio's WSGIApp(sio, other_app): one node serving both the
    socket.io sessions and the site's other HTTP requests (the WSGI app,
    run as tremolo_wsgi runs it).  static_files and socketio_path are
    accepted and ignored: Tremolo serves static files and claims the
    socket.io path itself (`[SOCKETIO] Path`)."""

    def __init__(self, socketio_app, wsgi_app=None, static_files=None,
                 socketio_path="socket.io", **kwargs):
        self.sio = socketio_app
        self.wsgi_app = wsgi_app

    def __call__(self, environ, start_response):
        if self.wsgi_app is not None:
            return self.wsgi_app(environ, start_response)
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"Not Found\n"]


def serve(app, identity, endpoints, node=None, max_body=64 * 1024 * 1024):
    """Run a Server (or a WSGIApp around one) as node `identity` until
    SIGTERM/SIGINT or sio.stop().  node: a runtime node already made (else
    tremolo_node.runtime()(identity, endpoints), closed at the end)."""
    sio = app.sio if isinstance(app, WSGIApp) else app
    if not isinstance(app, WSGIApp):
        app = WSGIApp(sio)              # plain HTTP requests get a 404
    own = node is None
    if own:
        cls = tremolo_node.runtime()
        node = cls(identity, endpoints)
        print("tremolo_socketio: node %s on the %s runtime" % (
            identity, "C (_tremolo)" if cls.__module__ == "_tremolo"
            else "pure-Python"), file=sys.stderr, flush=True)
    import tremolo_wsgi
    sio._wsgi = tremolo_wsgi.WSGIHandler(app, max_body=max_body)
    sio._wsgi.node = tremolo_node._RawSender(node)
    main_thread = threading.current_thread() is threading.main_thread()
    try:
        if isinstance(sio, AsyncServer):
            _run_async(sio, node, main_thread)
        else:
            if main_thread:
                for signum in (signal.SIGTERM, signal.SIGINT):
                    signal.signal(signum, lambda *_: sio.stop())
            sio.serve_on(node)
    finally:
        sio._node = None
        sio._wsgi = None
        if own:
            node.close()


def _run_async(sio, node, main_thread):
    """sio.serve_on_async(node) on a new event loop (uvloop's when it is
    installed), SIGTERM/SIGINT stopping it in the main thread."""
    import asyncio
    try:
        import uvloop
        loop = uvloop.new_event_loop()
    except ImportError:
        loop = asyncio.new_event_loop()
    try:
        if main_thread:
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(signum, sio.stop)
        loop.run_until_complete(sio.serve_on_async(node))
    finally:
        if main_thread:
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(signum)
        loop.close()


def load(spec):
    """Import "module:attr" (attr defaults to "sio")."""
    return tremolo_node.load_object(spec, "sio")


def main(argv=None):
    """tremolo_socketio.py module:sio --id NAME --connect ENDPOINT ...
    [--processes N]: module:sio names a Server or a WSGIApp."""
    parser = argparse.ArgumentParser(
        description="Run a tremolo_socketio Server as a Tremolo ZeroMQ node.")
    parser.add_argument("app", help="module:attr naming a Server or a "
                        "WSGIApp (attr defaults to sio)")
    tremolo_node.add_node_options(parser)
    parser.add_argument("--node-connect", action="store_true",
                        help="the site has `NodeConnect node`: answer every "
                        "namespace CONNECT (sets Server.node_connect)")
    args = parser.parse_args(argv)
    if args.processes < 1:
        parser.error("--processes must be at least 1")
    if not args.id:
        parser.error("--id must not be empty")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())

    def start(identity):
        app = load(args.app)
        if args.node_connect:
            (app.sio if isinstance(app, WSGIApp) else app).node_connect = True
        return app

    if args.processes == 1:
        serve(start(args.id), args.id, args.connect)
        return 0

    def child(identity, ready):
        app = start(identity)
        node = tremolo_node.runtime()(identity, args.connect)
        try:
            ready()
            serve(app, identity, args.connect, node=node)
        finally:
            node.close()
        return 0

    return tremolo_node.run_processes(args.processes, args.id, child)


if __name__ == "__main__":
    import tremolo_socketio
    sys.exit(tremolo_socketio.main())
