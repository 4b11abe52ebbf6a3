"""Run a WSGI application as a Tremolo (BlastBeat protocol) node.

    /usr/bin/python3 tremolo_wsgi.py module:app --id NAME \\
        --connect tcp://127.0.0.1:5000 [--connect ...] [--processes N]

or, with the helper's directory on sys.path (PYTHONPATH or an install):

    /usr/bin/python3 -m tremolo_node --wsgi module:app --processes N \\
        --id NAME --connect tcp://127.0.0.1:5000

--processes N forks N node processes named NAME-1 ... NAME-N (N = 1, the
default: one process named NAME); see tremolo_node.run_processes().

Request side: the body is collected until CONTENT_LENGTH bytes arrived, or
until Tremolo's end-of-body marker (an empty `body` message) for chunked
uploads; a request without Content-Length or Transfer-Encoding has no body
and is dispatched at once (a later empty marker is then ignored).

Response side (spec 6.2): Content-Length when the app gives one or when the
whole body is known (a list/tuple result; its pieces leave joined, and the
head goes with the first body bytes as ONE `body` message that starts with
the whole head, the "headless" form); otherwise `Transfer-Encoding:
chunked` + `chunk` messages for HTTP/1.1 requests, or a close-delimited body
followed by `end` for HTTP/1.0.  `end` closes the client connection, so it is
only sent for non-persistent responses, never for keep-alive.

The loop runs on tremolo_node.runtime(): the C extension _tremolo when it
was built (its Node.serve_wsgi does all of the above in C, the GIL held
only while Python code runs), else the pure-Python RawNode with the
WSGIHandler below.  TREMOLO_NODE_PURE=1 forces the pure path.
"""

import argparse
import io
import os
import signal
import sys
import threading
import traceback

import tremolo_node
from tremolo_node import (Handler, environ_from_uwsgi, format_head,
                          run_processes, runtime,
                          _REASONS)

__all__ = ["WSGIHandler", "serve", "main"]

NO_BODY_STATUS = (204, 304)


class _Pending:
    """A request whose body is still arriving."""

    __slots__ = ("vars", "body", "expected", "chunked")

    def __init__(self, uwsgi_vars, expected, chunked):
        self.vars = uwsgi_vars
        self.body = bytearray()
        self.expected = expected
        self.chunked = chunked


def _header(headers, name):
    name = name.lower()
    for key, value in headers:
        if key.lower() == name:
            return value
    return None


def _tokens(value):
    return {t.strip().lower() for t in (value or "").split(",")}


class _Response:
    """Framing state of one WSGI response."""

    def __init__(self, node, sid, environ):
        self.node = node
        self.sid = sid
        self.method = environ.get("REQUEST_METHOD", "GET").upper()
        self.protocol = environ.get("SERVER_PROTOCOL", "HTTP/1.0")
        conn = _tokens(environ.get("HTTP_CONNECTION"))
        if self.protocol == "HTTP/1.1":
            self.client_keepalive = "close" not in conn
        elif self.protocol == "HTTP/1.0":
            self.client_keepalive = "keep-alive" in conn
        else:
            # HTTP/2 streams: `end` only finishes the stream, and there is
            # no chunked coding; treat each response as self-contained.
            self.client_keepalive = False
        self.status = None
        self.headers = None
        self.sent_headers = False   # the head is decided (maybe held)
        self.held = None            # a Content-Length head waiting for its
                                    # first body bytes (one message)
        self.mode = None            # "length", "chunked", "close" or "none"
        self.persistent = False
        self.sent = 0

    def start(self, status, headers, exc_info=None):
        if exc_info is not None:
            try:
                if self.sent_headers:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None
        elif self.status is not None:
            raise AssertionError("start_response called twice")
        self.status = status
        self.headers = list(headers)
        return self.write

    def _status_code(self):
        try:
            return int(self.status.split(None, 1)[0])
        except (ValueError, IndexError):
            raise ValueError("bad WSGI status %r" % (self.status,))

    def send_headers(self, known_length=None):
        """Choose the framing and send the head.  known_length is the body
        length if the whole body is already known."""
        code = self._status_code()
        headers = [(k, v) for k, v in self.headers
                   if k.lower() not in ("transfer-encoding",)]
        app_close = "close" in _tokens(_header(headers, "connection"))
        given = _header(headers, "content-length")
        http1 = self.protocol in ("HTTP/1.0", "HTTP/1.1")
        if code in NO_BODY_STATUS or code < 200:
            self.mode = "none"
        elif given is not None:
            self.mode = "length"
        elif known_length is not None:
            self.mode = "length"
            headers.append(("Content-Length", str(known_length)))
        elif self.method == "HEAD":
            self.mode = "none"
        elif self.protocol == "HTTP/1.1":
            self.mode = "chunked"
            headers.append(("Transfer-Encoding", "chunked"))
        else:
            self.mode = "close"
        self.persistent = (self.client_keepalive and not app_close
                           and self.mode != "close")
        if http1 and _header(headers, "connection") is None:
            if not self.persistent:
                headers.append(("Connection", "close"))
            elif self.protocol == "HTTP/1.0":
                headers.append(("Connection", "keep-alive"))
        proto = "HTTP/1.0" if self.protocol == "HTTP/1.0" else "HTTP/1.1"
        head = format_head(self.status, headers, protocol=proto)
        self.sent_headers = True
        if self.mode == "length":
            self.held = head
        else:
            self.node.send(self.sid, b"headers", head)

    @property
    def head_flushed(self):
        return self.sent_headers and self.held is None

    def flush_head(self):
        if self.held is not None:
            head, self.held = self.held, None
            self.node.send(self.sid, b"headers", head)

    def write(self, data):
        """WSGI write(): streams at once, so the length is not known."""
        if self.status is None:
            raise AssertionError("write() before start_response()")
        if not self.sent_headers:
            self.send_headers()
        self._send(data)

    def _send(self, data):
        if not data or self.method == "HEAD" or self.mode == "none":
            return
        data = bytes(data)
        self.sent += len(data)
        if self.held is not None:
            head, self.held = self.held, None
            self.node.send(self.sid, b"body", head + data)
        elif self.mode == "chunked":
            self.node.chunk(self.sid, data)
        else:
            self.node.body(self.sid, data)

    def finish(self):
        self.flush_head()
        if self.mode == "chunked" and self.method != "HEAD":
            self.node.chunk(self.sid, b"")
        if not self.persistent:
            # Close-delimited or Connection: close: only `end` closes the
            # HTTP/1.x connection (the gateway does not close after a
            # Content-Length of 0, nor after a HEAD).
            self.node.end(self.sid)


class WSGIHandler(Handler):
    """Node callbacks that feed a WSGI application."""

    def __init__(self, app, max_body=64 * 1024 * 1024):
        self.app = app
        self.max_body = max_body
        self.pending = {}

    # -- request side ------------------------------------------------------

    def on_request(self, sid, uwsgi_vars):
        old = self.pending.pop(sid, None)
        if old is not None:
            # A new request implies the previous body ended (a BlastBeat
            # gateway sends no end-of-body marker).
            self._dispatch(sid, old.vars, bytes(old.body))
        chunked = "chunked" in _tokens(uwsgi_vars.get("HTTP_TRANSFER_ENCODING"))
        length = uwsgi_vars.get("CONTENT_LENGTH", "")
        expected = None
        if length.strip() and not chunked:
            try:
                expected = int(length)
                if expected < 0:
                    raise ValueError
            except ValueError:
                self._error(sid, 400, uwsgi_vars)
                return
            if expected > self.max_body:
                self._error(sid, 413, uwsgi_vars)
                return
        if not chunked and not expected:
            self._dispatch(sid, uwsgi_vars, b"")
            return
        self.pending[sid] = _Pending(uwsgi_vars, expected, chunked)

    def on_body(self, sid, data):
        req = self.pending.get(sid)
        if req is None:
            return                  # body of an already-dispatched request
        req.body += data
        if len(req.body) > self.max_body:
            del self.pending[sid]
            self._error(sid, 413, req.vars)
            return
        if req.expected is not None and len(req.body) >= req.expected:
            del self.pending[sid]
            self._dispatch(sid, req.vars, bytes(req.body[:req.expected]))

    def on_body_end(self, sid):
        req = self.pending.pop(sid, None)
        if req is not None:
            self._dispatch(sid, req.vars, bytes(req.body))

    def on_end(self, sid):
        self.pending.pop(sid, None)

    def on_spawn(self):
        self.pending.clear()

    # -- response side -----------------------------------------------------

    def _error(self, sid, code, uwsgi_vars):
        text = ("%d %s\n" % (code, _REASONS.get(code, "Error"))).encode()
        env = environ_from_uwsgi(uwsgi_vars, io.BytesIO(b""))
        resp = _Response(self.node, sid, env)
        resp.client_keepalive = False   # the unread body desyncs the stream
        resp.start("%d %s" % (code, _REASONS.get(code, "Error")),
                   [("Content-Type", "text/plain")])
        resp.send_headers(known_length=len(text))
        resp._send(text)
        resp.finish()

    def _dispatch(self, sid, uwsgi_vars, body):
        environ = environ_from_uwsgi(uwsgi_vars, io.BytesIO(body))
        resp = _Response(self.node, sid, environ)
        result = None
        try:
            result = self.app(environ, resp.start)
            self._stream(resp, result)
        except Exception:
            traceback.print_exc(file=sys.stderr)
            if not resp.head_flushed:
                resp.status, resp.headers, resp.held = None, None, None
                self._error(sid, 500, uwsgi_vars)
            else:
                # The framing is broken mid-response: only closing is honest.
                self.node.end(sid)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                try:
                    close()
                except Exception:
                    traceback.print_exc(file=sys.stderr)

    @staticmethod
    def _stream(resp, result):
        if isinstance(result, (list, tuple)):
            # The whole body is known: Content-Length framing (keep-alive).
            if resp.status is None:
                raise AssertionError("app returned without start_response()")
            if not resp.sent_headers:
                resp.send_headers(known_length=sum(len(p) for p in result))
            if (len(result) > 1 and resp.mode == "length"
                    and resp.method != "HEAD"):
                result = [b"".join(bytes(p) for p in result)]
            for piece in result:
                resp._send(piece)
        elif resp.method == "HEAD":
            # No body goes out, so measure it for an honest Content-Length.
            total = sum(len(p) for p in result)
            if not resp.sent_headers:
                if resp.status is None:
                    raise AssertionError("app returned without start_response()")
                resp.send_headers(known_length=total)
        else:
            for piece in result:
                if not resp.sent_headers:
                    if not piece:
                        continue    # headers wait for the first real byte
                    resp.send_headers()
                resp._send(piece)
            if not resp.sent_headers:
                if resp.status is None:
                    raise AssertionError("app returned without start_response()")
                resp.send_headers(known_length=0)
        resp.finish()


def serve(app, identity, endpoints, max_body=64 * 1024 * 1024, node=None):
    """Run app as node `identity` until SIGTERM/SIGINT (or node.stop()).

    Without `node`, the runtime is tremolo_node.runtime() (the C extension
    when built).  A tremolo_node.Node passed as `node` runs WSGIHandler on
    its own loop, as before."""
    if node is not None and hasattr(node, "run"):
        node.run(WSGIHandler(app, max_body=max_body))
        return
    own = node is None
    if own:
        cls = runtime()
        node = cls(identity, endpoints)
        print("tremolo_wsgi: node %s on the %s runtime" % (
            identity, "C (_tremolo)" if cls.__module__ == "_tremolo"
            else "pure-Python"), file=sys.stderr, flush=True)
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: node.stop())
    try:
        node.serve_wsgi(app, max_body=max_body)
    finally:
        if own:
            node.close()


def load_app(spec):
    """Import "module:attr" (attr defaults to "application")."""
    return tremolo_node.load_object(spec, "application")


def main(argv=None, prog=None):
    """tremolo_wsgi.py module:app ... (prog None), or, as prog
    `python3 -m tremolo_node`, the same options with --wsgi module:app."""
    as_node = prog is not None
    parser = argparse.ArgumentParser(
        prog=prog, description="Run a WSGI application as a Tremolo ZeroMQ node.")
    if as_node:
        parser.add_argument("--wsgi", dest="app", required=True,
                            metavar="MODULE:APP",
                            help="module:callable, e.g. myapp:app")
    else:
        parser.add_argument("app", help="module:callable, e.g. myapp:app")
    tremolo_node.add_node_options(parser)
    parser.add_argument("--max-body", type=int, default=64 * 1024 * 1024,
                        help="largest request body in bytes (413 above)")
    args = parser.parse_args(argv)
    if args.processes < 1:
        parser.error("--processes must be at least 1")
    if not args.id:
        parser.error("--id must not be empty")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    if args.processes == 1:
        serve(load_app(args.app), args.id, args.connect, max_body=args.max_body)
        return 0

    def child(identity, ready):
        # Each child imports the app and makes its own zmq context: nothing
        # of either exists in the parent, so fork shares none of it.
        app = load_app(args.app)
        node = runtime()(identity, args.connect)
        try:
            ready()
            serve(app, identity, args.connect, max_body=args.max_body,
                  node=node)
        finally:
            node.close()
        return 0

    return run_processes(args.processes, args.id, child)


if __name__ == "__main__":
    sys.exit(main())
