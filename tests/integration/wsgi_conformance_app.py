"""The WSGI app behind test_wsgi_conformance.py (run by tremolo_wsgi.py in
a node process): one route per PEP 3333 behaviour under test."""

import json

CLOSED = []


def _env_view(environ):
    keys = ("REQUEST_METHOD", "PATH_INFO", "QUERY_STRING", "SERVER_PROTOCOL",
            "wsgi.url_scheme", "CONTENT_LENGTH", "SCRIPT_NAME")
    out = {k: environ.get(k) for k in keys}
    out.update({k: v for k, v in environ.items() if k.startswith("HTTP_")})
    out["wsgi.version"] = list(environ["wsgi.version"])
    out["errors_write"] = hasattr(environ["wsgi.errors"], "write")
    return out


class Recorded:
    """An iterable result whose close() the server must call."""

    def __init__(self, tag, pieces, fail=False):
        self.tag, self.pieces, self.fail = tag, pieces, fail

    def __iter__(self):
        for p in self.pieces:
            yield p
        if self.fail:
            raise RuntimeError("expected test failure after the head")

    def close(self):
        CLOSED.append(self.tag)


def app(environ, start_response):
    path = environ["PATH_INFO"]
    inp = environ["wsgi.input"]
    if path == "/echo":
        # read in small pieces: the stream API, not one read()
        parts = []
        while True:
            piece = inp.read(7000)
            if not piece:
                break
            parts.append(piece)
        body = b"".join(parts)
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return [body]
    if path == "/lines":
        lines = [len(line) for line in inp]
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps(lines).encode()]
    if path == "/env":
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps(_env_view(environ)).encode()]
    if path == "/write":
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"one ")
        write(b"two ")
        return [b"three"]
    if path == "/gen":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return Recorded(environ["QUERY_STRING"], [b"a" * 10, b"", b"b" * 10])
    if path == "/closed":
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps(CLOSED).encode()]
    if path == "/boom":
        raise RuntimeError("expected test failure before the head")
    if path == "/late":
        start_response("200 OK", [("Content-Length", "100")])
        return Recorded("late", [b"x" * 10], fail=True)
    if path.startswith("/status/"):
        start_response(path[8:] + " Whatever", [("ETag", '"1"')])
        return [b"must not be sent"]
    if path == "/big":
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return [bytes(range(256)) * 4096]          # 1 MiB
    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"no such route\n"]
