"""http2 with real clients: curl (ALPN h2 over TLS, prior knowledge and the
h2c upgrade on the plain listener), nghttp (many streams on one
connection, uploads and downloads through a node), h2load (a smoke run),
and a frame-level client on Python's hyperframe + hpack (Debian
python3-h2) where a case needs to see each stream's frames: multiplexed
streams balanced over two pyzmq nodes, a node dying mid-stream, 103 Early
Hints from a node's `push`, connection-specific fields dropped, and GOAWAY
on SIGHUP and SIGTERM while a stream is in flight.

One server layout serves every case: a plain listener ({port}) and a TLS
one ({port2}), a default site serving htdocs statically and /app through
the zmq gateway to the nodes the test starts."""

import hashlib
import random
import re
import signal
import socket
import ssl
import subprocess
import threading
import time

import hpack
import pytest
from hyperframe.frame import (ContinuationFrame, DataFrame, Frame,
                              GoAwayFrame, HeadersFrame, PingFrame,
                              RstStreamFrame, SettingsFrame,
                              WindowUpdateFrame)

from test_plugin_zmq import Node, wait_for
from test_plugin_zmq_streams import Held
from tremolo_harness import HOST, free_port

PLUGINS = ("liana", "tls", "http2", "zmq")
LISTEN = "Listen 127.0.0.1:{port} liana\nListen 127.0.0.1:{port2} tls"
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
NO_ERROR = 0

INDEX = b"<html><body>tremolo over http/2</body></html>\n"
SMALL = b"a small static file\n" * 20
BIG = random.Random(14).randbytes(8 * 1024 * 1024)         # 8 MiB
BIG_SHA = hashlib.sha256(BIG).hexdigest()


# ---- a self-signed certificate for localhost --------------------------------

@pytest.fixture(scope="module")
def cert(tmp_path_factory):
    d = tmp_path_factory.mktemp("h2cert")
    p = subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
         "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", "key.pem",
         "-out", "cert.pem", "-days", "3", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        cwd=str(d), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        timeout=60)
    assert p.returncode == 0, p.stdout.decode(errors="replace")
    return {"pem": (d / "cert.pem").read_bytes(),
            "key": (d / "key.pem").read_bytes(),
            "ca": str(d / "cert.pem")}


# ---- the server and its nodes -----------------------------------------------

def site(nodes):
    return ("[HOST]\n    ServerName 127.0.0.1 localhost\n    Default on\n"
            "    DocumentRoot htdocs\n"
            "[LOCATION /app]\n    Handler zmq\n"
            "[ZMQ]\n" + "".join("    Node %s\n" % n for n in nodes))


class H2Node(Node):
    """test_plugin_zmq's DEALER node, also calling `on_body(node, sid,
    bytes)` for every `body` message (uploads)."""

    def __init__(self, endpoint, identity, app=None, on_body=None):
        self.on_body = on_body          # before the thread starts
        super().__init__(endpoint, identity, app)

    def handle(self, sid, typ, body):
        super().handle(sid, typ, body)
        if typ == b"body" and self.on_body:
            self.on_body(self, sid, body)


def hello(node, sid, env):
    body = b"hello from " + node.identity
    node.send(sid, b"headers", b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n"
              b"\r\n" % len(body))
    node.send(sid, b"body", body)


@pytest.fixture
def h2(tremolo, cert):
    """start(nodes, http2="", workers=1) -> a server; srv.tls_port is the
    TLS listener, srv.node(identity, app, on_body) starts a node and waits
    until the gateway has it."""
    started = []

    def start(nodes=("n1",), http2="", workers=1):
        endpoint = "tcp://127.0.0.1:%d" % free_port()
        confs = {"zmq": "[ZMQ]\n    Bind %s\n    PingFreq 500ms\n" % endpoint,
                 "tls": "[TLS]\n    Certificate certs/cert.pem\n"
                        "    Key certs/key.pem\n"}
        if http2:
            confs["http2"] = "[HTTP2]\n" + "".join(
                "    %s\n" % ln for ln in http2.splitlines())
        srv = tremolo(server=LISTEN, plugins=PLUGINS,
                      sites={"default": site(nodes)}, plugin_confs=confs,
                      files={"htdocs/index.html": INDEX,
                             "htdocs/small.txt": SMALL,
                             "htdocs/big.bin": BIG,
                             "certs/cert.pem": cert["pem"],
                             "certs/key.pem": cert["key"]},
                      workers=workers)
        srv.tls_port = srv.ports["port2"]
        srv.cert_ca = cert["ca"]
        srv.plain = "http://127.0.0.1:%d" % srv.port
        srv.tls = "https://localhost:%d" % srv.tls_port

        def node(identity, app=hello, on_body=None):
            n = H2Node(endpoint, identity, app, on_body)
            started.append(n)
            srv.wait_log(r'node "%s" is available' % identity.decode())
            return n
        srv.node = node
        return srv

    yield start
    for n in started:
        n.close()


# ---- a frame-level HTTP/2 client --------------------------------------------

class Stream:
    def __init__(self, sid, send_window):
        self.id = sid
        self.heads = []              # decoded header blocks, in order
        self.data = bytearray()
        self.ended = False           # END_STREAM seen
        self.reset = None            # RST_STREAM error code
        self.send_window = send_window

    @property
    def done(self):
        return self.ended or self.reset is not None

    def final(self):
        """The final (non-1xx) header block as a dict; {} if none yet."""
        for h in self.heads:
            d = dict(h)
            if not d.get(":status", "1").startswith("1"):
                return d
        return {}

    @property
    def status(self):
        s = self.final().get(":status")
        return int(s) if s else None

    def names(self):
        """Every field name of the final header block (repeats kept)."""
        for h in self.heads:
            if not dict(h).get(":status", "1").startswith("1"):
                return [k for k, _ in h]
        return []

    def informational(self):
        return [dict(h) for h in self.heads
                if dict(h).get(":status", "").startswith("1")]


class H2Client:
    """HTTP/2 over a socket, with prior knowledge (plain) or ALPN h2 (TLS):
    requests are sent as HEADERS/DATA (respecting the server's windows) and
    every frame read is applied to its stream; WINDOW_UPDATEs give back
    what DATA took, SETTINGS and PINGs are acknowledged. GOAWAYs are
    recorded as (last stream id, error code) and reading goes on after
    them, so in-flight streams can be watched to their end."""

    def __init__(self, port, tls=False, timeout=10.0, window=1 << 24):
        s = socket.create_connection((HOST, port), timeout=timeout)
        if tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            ctx.set_alpn_protocols(["h2"])
            s = ctx.wrap_socket(s, server_hostname="localhost")
            assert s.selected_alpn_protocol() == "h2"
        self.sock = s
        self.scheme = "https" if tls else "http"
        self.enc = hpack.Encoder()
        self.dec = hpack.Decoder()
        self.buf = bytearray()
        self.eof = False
        self.streams = {}
        self.goaways = []
        self.frames = []             # (type name, stream id) of every frame
        self.next_id = 1
        self.conn_window = 65535
        self.peer_initial = 65535
        self.peer_max_frame = 16384
        self._block = None           # [stream id, header bytes, end stream]
        settings = SettingsFrame(0, settings={
            SettingsFrame.ENABLE_PUSH: 0,
            SettingsFrame.INITIAL_WINDOW_SIZE: window})
        self.send(PREFACE + settings.serialize() +
                  WindowUpdateFrame(0, window_increment=window).serialize())

    def send(self, data):
        self.sock.sendall(data)

    def _reply(self, data):
        """A frame the client owes (ACK, WINDOW_UPDATE): a server that
        already closed makes it moot; reading tells what happened."""
        try:
            self.sock.sendall(data)
        except (OSError, ssl.SSLError):
            self.eof = True

    def close(self):
        self.sock.close()

    def stream(self, sid):
        if sid not in self.streams:
            self.streams[sid] = Stream(sid, self.peer_initial)
        return self.streams[sid]

    def request(self, path, method="GET", headers=(), body=None,
                authority="127.0.0.1"):
        sid = self.next_id
        self.next_id += 2
        self.stream(sid)
        fields = [(":method", method), (":scheme", self.scheme),
                  (":authority", authority), (":path", path)]
        if body is not None:
            fields.append(("content-length", str(len(body))))
        f = HeadersFrame(sid, data=self.enc.encode(fields + list(headers)),
                         flags=["END_HEADERS"])
        if body is None:
            f.flags.add("END_STREAM")
        self.send(f.serialize())
        if body is not None:
            self.send_data(sid, body)
        return sid

    def send_data(self, sid, data, end=True, timeout=30):
        st = self.stream(sid)
        view = memoryview(data)
        while True:
            n = min(len(view), self.peer_max_frame, self.conn_window,
                    st.send_window)
            if n > 0 or not view:
                last = n == len(view)
                f = DataFrame(sid, data=bytes(view[:n]))
                if last and end:
                    f.flags.add("END_STREAM")
                self.send(f.serialize())
                self.conn_window -= n
                st.send_window -= n
                view = view[n:]
                if last:
                    return
                continue
            ok = self.pump(lambda: st.done or min(self.conn_window,
                                                  st.send_window) > 0,
                           timeout)
            assert ok, "no window to send stream %d's body" % sid
            if st.done:
                return

    def pump(self, until, timeout=10):
        """Read and apply frames until `until()` holds (True), the server
        closes or `timeout` s pass (then: until())."""
        deadline = time.monotonic() + timeout
        while not until():
            left = deadline - time.monotonic()
            if self.eof or left <= 0:
                return until()
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except (TimeoutError, socket.timeout):
                continue
            except (ConnectionResetError, ssl.SSLError):
                chunk = b""
            if not chunk:
                self.eof = True
                continue
            self.buf += chunk
            self._frames()
        return True

    def wait(self, *sids, timeout=15):
        """Every stream in `sids` ended or reset; returns the Streams."""
        self.pump(lambda: all(self.stream(s).done for s in sids), timeout)
        return [self.stream(s) for s in sids]

    def get(self, path, **kw):
        timeout = kw.pop("timeout", 15)
        return self.wait(self.request(path, **kw), timeout=timeout)[0]

    def closed_by_peer(self, timeout=10):
        return self.pump(lambda: self.eof, timeout)

    def _frames(self):
        while len(self.buf) >= 9:
            f, length = Frame.parse_frame_header(memoryview(self.buf[:9]))
            if len(self.buf) < 9 + length:
                return
            f.parse_body(memoryview(bytes(self.buf[9:9 + length])))
            del self.buf[:9 + length]
            self.frames.append((type(f).__name__, f.stream_id))
            self._apply(f, length)

    def _apply(self, f, length):
        if isinstance(f, DataFrame):
            st = self.stream(f.stream_id)
            st.data += f.data
            if "END_STREAM" in f.flags:
                st.ended = True
            if length:
                out = WindowUpdateFrame(0, window_increment=length).serialize()
                if not st.done:
                    out += WindowUpdateFrame(
                        f.stream_id, window_increment=length).serialize()
                self._reply(out)
        elif isinstance(f, HeadersFrame):
            self._block = [f.stream_id, bytes(f.data),
                           "END_STREAM" in f.flags]
            if "END_HEADERS" in f.flags:
                self._end_block()
        elif isinstance(f, ContinuationFrame):
            assert self._block and self._block[0] == f.stream_id
            self._block[1] += f.data
            if "END_HEADERS" in f.flags:
                self._end_block()
        elif isinstance(f, RstStreamFrame):
            self.stream(f.stream_id).reset = f.error_code
        elif isinstance(f, SettingsFrame):
            if "ACK" in f.flags:
                return
            for key, value in f.settings.items():
                if key == SettingsFrame.INITIAL_WINDOW_SIZE:
                    for st in self.streams.values():
                        st.send_window += value - self.peer_initial
                    self.peer_initial = value
                elif key == SettingsFrame.MAX_FRAME_SIZE:
                    self.peer_max_frame = value
            self._reply(SettingsFrame(0, flags=["ACK"]).serialize())
        elif isinstance(f, PingFrame):
            if "ACK" not in f.flags:
                self._reply(PingFrame(0, opaque_data=f.opaque_data,
                                      flags=["ACK"]).serialize())
        elif isinstance(f, GoAwayFrame):
            self.goaways.append((f.last_stream_id, f.error_code))
        elif isinstance(f, WindowUpdateFrame):
            if f.stream_id == 0:
                self.conn_window += f.window_increment
            else:
                self.stream(f.stream_id).send_window += f.window_increment

    def _end_block(self):
        sid, block, end = self._block
        self._block = None
        st = self.stream(sid)
        st.heads.append([(k, v) for k, v in self.dec.decode(block)])
        if end:
            st.ended = True


# ---- real clients -----------------------------------------------------------

def run(cmd, timeout=90):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       stdin=subprocess.DEVNULL, timeout=timeout)
    return p.returncode, p.stdout, p.stderr.decode(errors="replace")


def curl(srv, url, *args, out=None):
    """One curl transfer: (exit code, HTTP status, HTTP version, body,
    stderr). TLS URLs trust the test certificate and resolve localhost to
    127.0.0.1."""
    cmd = ["curl", "-sS", "--max-time", "60", "-w",
           "%{http_code} %{http_version}", "-o", str(out or "/dev/null")]
    if url.startswith("https:"):
        cmd += ["--cacert", srv.cert_ca, "--resolve",
                "localhost:%d:127.0.0.1" % srv.tls_port]
    rc, stdout, err = run(cmd + list(args) + [url])
    code, _, version = stdout.decode().partition(" ")
    body = out.read_bytes() if out and out.exists() else None
    return rc, int(code or 0), version, body, err


def nghttp_stats(stdout):
    """(code, path) of each request in `nghttp -s` output."""
    return re.findall(r"(?m)^\s*\d+\s+\+\S+\s+\+\S+\s+\S+\s+(\d{3})\s+\S+"
                      r"\s+(\S+)\s*$", stdout.decode(errors="replace"))


def sha(data):
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def server(h2):
    """The server with node n1 allowed (started by the test if it needs
    it)."""
    return h2()


# ---- curl: the three ways into HTTP/2 ---------------------------------------

def test_curl_h2_over_tls_by_alpn(server, tmp_path):
    out = tmp_path / "body"
    rc, code, version, body, err = curl(server, server.tls + "/index.html",
                                        "--http2", out=out)
    assert (rc, code, version, body) == (0, 200, "2", INDEX), err
    # a client offering only http/1.1 still gets HTTP/1.1 on that listener
    rc, code, version, body, err = curl(server, server.tls + "/index.html",
                                        "--http1.1", out=out)
    assert (rc, code, version, body) == (0, 200, "1.1", INDEX), err


def test_curl_prior_knowledge_on_the_plain_listener(server, tmp_path):
    out = tmp_path / "body"
    rc, code, version, body, err = curl(server, server.plain + "/small.txt",
                                        "--http2-prior-knowledge", out=out)
    assert (rc, code, version, body) == (0, 200, "2", SMALL), err


def test_curl_h2c_upgrade(server, tmp_path):
    out = tmp_path / "body"
    rc, code, version, body, err = curl(server, server.plain + "/index.html",
                                        "--http2", "-v", out=out)
    assert (rc, code, version, body) == (0, 200, "2", INDEX), err
    assert re.search(r"(?m)^< HTTP/1\.1 101", err), err
    # the same through a node: the upgraded request is stream 1
    server.node(b"n1")
    rc, code, version, body, err = curl(server, server.plain + "/app/up",
                                        "--http2", out=out)
    assert (rc, code, version, body) == (0, 200, "2", b"hello from n1"), err


# ---- static files over h2 ---------------------------------------------------

@pytest.mark.parametrize("tls", [False, True], ids=["h2c", "h2"])
def test_static_files(server, tls):
    c = H2Client(server.tls_port if tls else server.port, tls=tls)
    try:
        st = c.get("/small.txt")
        assert (st.status, bytes(st.data)) == (200, SMALL)
        assert st.final()["content-length"] == str(len(SMALL))
        etag = st.final().get("etag")
        lastmod = st.final().get("last-modified")
        assert etag and lastmod, st.final()

        big = c.get("/big.bin", timeout=60)
        assert big.status == 200 and len(big.data) == len(BIG)
        assert sha(big.data) == BIG_SHA

        rng = c.get("/big.bin", headers=[("range", "bytes=1000000-1000999")])
        assert rng.status == 206
        assert bytes(rng.data) == BIG[1000000:1001000]
        assert rng.final()["content-range"] == \
            "bytes 1000000-1000999/%d" % len(BIG)

        cond = c.get("/small.txt", headers=[("if-none-match", etag)])
        assert (cond.status, bytes(cond.data)) == (304, b"")
        cond = c.get("/small.txt", headers=[("if-modified-since", lastmod)])
        assert (cond.status, bytes(cond.data)) == (304, b"")

        head = c.get("/small.txt", method="HEAD")
        assert head.status == 200 and head.ended
        assert bytes(head.data) == b""
        assert head.final()["content-length"] == str(len(SMALL))

        missing = c.get("/no/such/file.txt")
        assert missing.status == 404 and missing.ended
        # one connection carried all of it
        assert not c.goaways and not c.eof
    finally:
        c.close()


@pytest.mark.parametrize("tls", [False, True], ids=["h2c", "h2"])
def test_curl_large_file_and_range(server, tmp_path, tls):
    out = tmp_path / "big"
    url = (server.tls if tls else server.plain) + "/big.bin"
    mode = "--http2" if tls else "--http2-prior-knowledge"
    rc, code, version, body, err = curl(server, url, mode, out=out)
    assert (rc, code, version) == (0, 200, "2"), err
    assert len(body) == len(BIG) and sha(body) == BIG_SHA
    rc, code, version, body, err = curl(server, url, mode, "-r",
                                        "5000000-5065535", out=out)
    assert (rc, code, version) == (0, 206, "2"), err
    assert body == BIG[5000000:5065536]


# ---- nghttp: many streams on one connection, uploads, downloads -------------

@pytest.mark.parametrize("tls", [False, True], ids=["h2c", "h2"])
def test_nghttp_fifty_streams_on_one_connection(server, tls):
    base = server.tls if tls else server.plain
    if tls:
        base = "https://127.0.0.1:%d" % server.tls_port
    rc, out, err = run(["nghttp", "-n", "-s", "-m", "50", "-t", "60",
                        base + "/index.html"])
    stats = nghttp_stats(out)
    assert rc == 0, err
    assert stats == [("200", "/index.html")] * 50, out.decode()


def test_nghttp_mixed_uris_through_a_node(server):
    server.node(b"n1")
    uris = [server.plain + p for p in
            ("/index.html", "/small.txt", "/app/one", "/app/two",
             "/nothing-here", "/big.bin")]
    rc, out, err = run(["nghttp", "-n", "-s", "-t", "60"] + uris)
    assert rc == 0, err
    got = sorted((path, code) for code, path in nghttp_stats(out))
    assert got == sorted([("/index.html", "200"), ("/small.txt", "200"),
                          ("/app/one", "200"), ("/app/two", "200"),
                          ("/nothing-here", "404"), ("/big.bin", "200")]), \
        out.decode()


def upload_echo():
    """(app, on_body): answers a request once CONTENT_LENGTH bytes came,
    with 'LENGTH SHA256' of what came."""
    pending = {}

    def app(node, sid, env):
        pending[sid] = [int(env.get(b"CONTENT_LENGTH") or 0), 0,
                        hashlib.sha256()]

    def on_body(node, sid, body):
        want, got, h = pending[sid]
        got += len(body)
        h.update(body)
        pending[sid][1] = got
        if got == want and want:
            answer = b"%d %s" % (got, h.hexdigest().encode())
            node.send(sid, b"headers", b"HTTP/1.1 200 OK\r\nContent-Length:"
                      b" %d\r\n\r\n" % len(answer))
            node.send(sid, b"body", answer)
    return app, on_body


UPLOAD = random.Random(1414).randbytes(6 * 1024 * 1024 + 12345)


@pytest.mark.parametrize("client", ["nghttp", "curl", "frames"])
def test_large_upload_through_a_node(server, tmp_path, client):
    """6 MiB up: far more than the 64 KiB initial windows, so the upload
    moves only as the server gives window back."""
    app, on_body = upload_echo()
    server.node(b"n1", app, on_body)
    f = tmp_path / "upload.bin"
    f.write_bytes(UPLOAD)
    want = b"%d %s" % (len(UPLOAD), sha(UPLOAD).encode())
    if client == "nghttp":
        rc, out, err = run(["nghttp", "-t", "60", "-d", str(f),
                            server.plain + "/app/upload"])
        assert rc == 0, err
        assert out == want
    elif client == "curl":
        out = tmp_path / "answer"
        rc, code, version, body, err = curl(
            server, server.tls + "/app/upload", "--http2",
            "--data-binary", "@" + str(f), out=out)
        assert (rc, code, version, body) == (0, 200, "2", want), err
    else:
        c = H2Client(server.port, window=65535)
        try:
            st = c.get("/app/upload", method="POST", body=UPLOAD, timeout=60)
            assert (st.status, bytes(st.data)) == (200, want)
        finally:
            c.close()


DOWNLOAD = random.Random(4141).randbytes(5 * 1024 * 1024 + 777)


def big_answer(node, sid, env):
    node.send(sid, b"headers", b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n"
              b"\r\n" % len(DOWNLOAD))
    for i in range(0, len(DOWNLOAD), 256 * 1024):
        node.send(sid, b"body", DOWNLOAD[i:i + 256 * 1024])


def test_large_download_through_a_node(server, tmp_path):
    server.node(b"n1", big_answer)
    rc, out, err = run(["nghttp", "-t", "60", server.plain + "/app/big"])
    assert rc == 0, err
    assert len(out) == len(DOWNLOAD) and sha(out) == sha(DOWNLOAD)
    # a small window: the node's 5 MiB leave the server only as fast as the
    # client gives window back
    c = H2Client(server.tls_port, tls=True, window=65535)
    try:
        st = c.get("/app/big", timeout=60)
        assert st.status == 200 and sha(st.data) == sha(DOWNLOAD)
    finally:
        c.close()


# ---- h2load smoke -----------------------------------------------------------

@pytest.mark.parametrize("tls", [False, True], ids=["h2c", "h2"])
def test_h2load_smoke(server, tls):
    url = ("https://127.0.0.1:%d" % server.tls_port if tls
           else server.plain) + "/index.html"
    rc, out, err = run(["h2load", "-n", "2000", "-c", "4", "-m", "10",
                        "-T", "60", url], timeout=120)
    text = out.decode(errors="replace")
    assert rc == 0, text + err
    assert re.search(r"requests: 2000 total, 2000 started, 2000 done, "
                     r"2000 succeeded, 0 failed, 0 errored, 0 timeout",
                     text), text
    assert "status codes: 2000 2xx, 0 3xx, 0 4xx, 0 5xx" in text, text
    assert re.search(r"(?m)^Application protocol: %s$"
                     % ("h2" if tls else "h2c"), text), text


# ---- streams of one connection over two nodes -------------------------------

def test_streams_of_one_connection_land_on_two_nodes(h2):
    srv = h2(nodes=("a", "b"))
    held = Held()
    a = srv.node(b"a", held.app)
    b = srv.node(b"b", held.app)
    c = H2Client(srv.port)
    try:
        sids = [c.request("/app/s%d" % i) for i in range(6)]
        assert wait_for(lambda: held.count() == 6, timeout=10), held.get()
        items = held.get()
        by_node = sorted(n.identity for n, _, _ in items)
        assert by_node == [b"a"] * 3 + [b"b"] * 3, by_node
        assert len({sid for _, sid, _ in items}) == 6
        for n, sid, env in items:
            assert env[b"SERVER_PROTOCOL"] == b"HTTP/2", env
            body = n.identity + b" " + env[b"PATH_INFO"]
            n.send(sid, b"headers", b"HTTP/1.1 200 OK\r\nContent-Length: %d"
                   b"\r\n\r\n" % len(body))
            n.send(sid, b"body", body)
        by_path = {env[b"PATH_INFO"]: n.identity for n, _, env in items}
        for i, st in enumerate(c.wait(*sids)):
            path = b"/app/s%d" % i
            assert st.status == 200 and st.ended, (i, st.heads, st.reset)
            assert bytes(st.data) == by_path[path] + b" " + path
        assert not c.goaways and not c.eof
    finally:
        c.close()
    # each stream's session ended at its stream's end, not at the close
    for n, sid, _ in items:
        assert wait_for(lambda: b"end" in n.types(sid)), (n.identity, sid)
    assert a.types() and b.types()


# ---- a node dying mid-stream ------------------------------------------------

def test_node_dying_mid_stream_resets_only_its_stream(h2):
    srv = h2(nodes=("k", "g"))
    total = 1024 * 1024

    def partial(node, sid, env):
        node.send(sid, b"headers", b"HTTP/1.1 200 OK\r\nContent-Length: %d"
                  b"\r\n\r\n" % total)
        node.send(sid, b"body", b"x" * 1000)       # then nothing more
    k = srv.node(b"k", partial)
    c = H2Client(srv.port)
    try:
        s1 = c.request("/app/dies")
        assert c.pump(lambda: len(c.stream(s1).data) >= 1000), \
            c.stream(s1).heads
        s3 = c.request("/big.bin")
        s5 = c.request("/index.html")
        k.pong = False
        k.close()                                   # the node is gone
        dying, big, index = c.wait(s1, s3, s5, timeout=20)
        assert dying.reset is not None, \
            "stream %d: no RST_STREAM; %d bytes, ended %s, connection " \
            "closed %s, GOAWAY %r" % (s1, len(dying.data), dying.ended,
                                      c.eof, c.goaways)
        assert len(dying.data) < total
        assert big.status == 200 and sha(big.data) == BIG_SHA
        assert (index.status, bytes(index.data)) == (200, INDEX)
        # the connection lives on: a new stream reaches a live node
        srv.node(b"g")
        again = c.get("/app/after")
        assert (again.status, bytes(again.data)) == (200, b"hello from g")
        assert not c.goaways and not c.eof
    finally:
        c.close()


def test_node_dying_before_its_headers_is_502(h2):
    srv = h2(nodes=("k",))
    k = srv.node(b"k", lambda node, sid, env: None)   # takes, never answers
    c = H2Client(srv.port)
    try:
        s1 = c.request("/app/never")
        assert wait_for(lambda: b"uwsgi" in k.types())
        k.pong = False
        k.close()
        st = c.wait(s1, timeout=20)[0]
        assert st.status == 502 or st.reset is not None, (st.heads, st.reset)
        index = c.get("/index.html")
        assert (index.status, bytes(index.data)) == (200, INDEX)
    finally:
        c.close()


# ---- push as 103 Early Hints, connection-specific fields --------------------

def push_app(node, sid, env):
    node.send(sid, b"push", b"HTTP/1.1 200 OK\r\nUrl: /style.css\r\n\r\n")
    body = b"<html>with a preload</html>"
    node.send(sid, b"headers", b"HTTP/1.1 200 OK\r\nContent-Type: text/html"
              b"\r\nContent-Length: %d\r\n\r\n" % len(body))
    node.send(sid, b"body", body)


LINK = "</style.css>; rel=preload"


def curl_heads(err):
    """The response heads in curl -v output: [[status, {name: value}]]."""
    heads = []
    for line in err.splitlines():
        m = re.match(r"< HTTP/2 (\d{3})", line)
        if m:
            heads.append([int(m.group(1)), {}])
        elif line.startswith("< ") and heads and ":" in line:
            k, _, v = line[2:].partition(":")
            heads[-1][1][k.strip().lower()] = v.strip()
    return heads


def test_node_push_is_early_hints_and_link(server, tmp_path):
    server.node(b"n1", push_app)
    out = tmp_path / "page"
    rc, code, version, body, err = curl(server, server.tls + "/app/page",
                                        "--http2", "-v", out=out)
    assert (rc, code, version) == (0, 200, "2"), err
    assert body == b"<html>with a preload</html>"
    heads = curl_heads(err)
    assert [s for s, _ in heads] == [103, 200], err
    assert heads[0][1].get("link") == LINK, err
    assert heads[1][1].get("link") == LINK, err
    # frame level: the 103 is its own HEADERS block before the final one,
    # and no PUSH_PROMISE (push is off and the client disabled it)
    c = H2Client(server.port)
    try:
        st = c.get("/app/page")
        assert [dict(h)[":status"] for h in st.heads] == ["103", "200"]
        assert st.informational()[0]["link"] == LINK
        assert st.final()["link"] == LINK
        assert bytes(st.data) == b"<html>with a preload</html>"
        assert "PushPromiseFrame" not in [t for t, _ in c.frames]
    finally:
        c.close()


def _h2_push_client(port, enable_push):
    """A hyper-h2 client connection (it understands PUSH_PROMISE)."""
    import h2.config
    import h2.connection
    import h2.settings
    sock = socket.create_connection((HOST, port), timeout=10)
    conn = h2.connection.H2Connection(
        h2.config.H2Configuration(client_side=True))
    conn.local_settings = h2.settings.Settings(
        client=True,
        initial_values={h2.settings.SettingCodes.ENABLE_PUSH:
                        1 if enable_push else 0})
    conn.initiate_connection()
    sock.sendall(conn.data_to_send())
    return sock, conn


def _h2_events_until(sock, conn, done, timeout=10):
    events = []
    deadline = time.monotonic() + timeout
    while not done(events) and time.monotonic() < deadline:
        data = sock.recv(65536)
        if not data:
            break
        events += conn.receive_data(data)
        out = conn.data_to_send()
        if out:
            sock.sendall(out)
    return events


@pytest.mark.parametrize("push", ["on", "off"])
def test_node_push_as_push_promise_when_on(h2, push):
    """`Push on` and a client that allows pushes: the node's push is a
    PUSH_PROMISE for the path, answered as a request of its own (here the
    static file), besides the 103 and the Link. `Push off`: no promise."""
    from h2 import events as h2ev
    srv = h2(http2="Push %s" % push)
    srv.node(b"n1", push_app)
    css = b"body { color: teal }\n"
    (srv.conf_dir / "htdocs" / "style.css").write_bytes(css)
    sock, conn = _h2_push_client(srv.port, enable_push=True)
    try:
        sid = conn.get_next_available_stream_id()
        conn.send_headers(sid, [(":method", "GET"), (":path", "/app/page"),
                                (":scheme", "http"),
                                (":authority", "127.0.0.1")],
                          end_stream=True)
        sock.sendall(conn.data_to_send())

        def ended(evs):
            ends = {e.stream_id for e in evs
                    if isinstance(e, h2ev.StreamEnded)}
            promised = [e.pushed_stream_id for e in evs
                        if isinstance(e, h2ev.PushedStreamReceived)]
            return sid in ends and all(p in ends for p in promised)
        events = _h2_events_until(sock, conn, ended)
    finally:
        sock.close()
    pushes = [e for e in events if isinstance(e, h2ev.PushedStreamReceived)]
    data = {}
    for e in events:
        if isinstance(e, h2ev.DataReceived):
            data[e.stream_id] = data.get(e.stream_id, b"") + e.data
    assert data.get(sid) == b"<html>with a preload</html>", events
    if push == "off":
        assert pushes == []
        return
    assert len(pushes) == 1, events
    p = pushes[0]
    fields = {k.decode() if isinstance(k, bytes) else k:
              v.decode() if isinstance(v, bytes) else v for k, v in p.headers}
    assert p.parent_stream_id == sid and p.pushed_stream_id % 2 == 0
    assert fields[":path"] == "/style.css" and fields[":method"] == "GET"
    responses = {e.stream_id: dict((k.decode() if isinstance(k, bytes) else k,
                                    v.decode() if isinstance(v, bytes) else v)
                                   for k, v in e.headers)
                 for e in events if isinstance(e, h2ev.ResponseReceived)}
    assert responses[p.pushed_stream_id][":status"] == "200"
    assert data.get(p.pushed_stream_id) == css


def test_connection_fields_dropped_and_chunks_unframed(server, tmp_path):
    def app(node, sid, env):
        node.send(sid, b"headers", b"HTTP/1.1 200 OK\r\nConnection: keep-alive"
                  b"\r\nKeep-Alive: timeout=5\r\nTransfer-Encoding: chunked"
                  b"\r\nUpgrade: foo\r\nX-Kept: yes\r\n\r\n")
        for part in (b"hello ", b"chunked ", b"world"):
            node.send(sid, b"chunk", part)
        node.send(sid, b"chunk", b"")
    server.node(b"n1", app)
    c = H2Client(server.port)
    try:
        st = c.get("/app/chunked")
        assert st.status == 200 and st.ended, (st.heads, st.reset)
        names = st.names()
        for bad in ("connection", "keep-alive", "transfer-encoding",
                    "upgrade"):
            assert bad not in names, st.heads
        assert st.final().get("x-kept") == "yes"
        assert bytes(st.data) == b"hello chunked world"
    finally:
        c.close()
    # curl refuses a connection-specific field in HTTP/2: it must succeed
    out = tmp_path / "body"
    for url, mode in ((server.tls, "--http2"),
                      (server.plain, "--http2-prior-knowledge")):
        rc, code, version, body, err = curl(server, url + "/app/chunked",
                                            mode, out=out)
        assert (rc, code, version, body) == \
            (0, 200, "2", b"hello chunked world"), err


# ---- GOAWAY on reload and on graceful stop ----------------------------------

def expect_goaway_naming(c, sid, after):
    """A GOAWAY NO_ERROR whose last stream id covers `sid`, while that
    stream is still in flight."""
    assert c.pump(lambda: c.goaways, timeout=10), \
        "no GOAWAY after %s (%s)" % (after, "the server closed the "
                                     "connection" if c.eof
                                     else "nothing within 10 s")
    last, code = c.goaways[0]
    assert code == NO_ERROR and last >= sid, c.goaways
    assert not c.stream(sid).done, "stream %d ended before the GOAWAY" % sid


@pytest.mark.parametrize("tls", [False, True], ids=["h2c", "h2"])
def test_goaway_on_stop_with_the_in_flight_node_stream_completing(h2, tls):
    """SIGTERM: GOAWAY NO_ERROR naming the stream in flight, which a node
    then finishes after it; the server exits once it is done."""
    srv = h2()
    held = Held()
    node = srv.node(b"n1", held.app)
    rest = random.Random(7).randbytes(300 * 1024)
    c = H2Client(srv.tls_port if tls else srv.port, tls=tls)
    try:
        assert c.get("/index.html").status == 200     # stream 1
        s3 = c.request("/app/slow")                     # stream 3, held
        assert wait_for(lambda: held.count() == 1)
        _, sid, _ = held.get()[0]
        node.send(sid, b"headers", b"HTTP/1.1 200 OK\r\nContent-Length: %d"
                  b"\r\n\r\n" % (5 + len(rest)))
        node.send(sid, b"body", b"first")
        assert c.pump(lambda: bytes(c.stream(s3).data) == b"first")
        srv.signal(signal.SIGTERM)
        expect_goaway_naming(c, s3, "SIGTERM")
        for i in range(0, len(rest), 64 * 1024):      # the rest, after it
            node.send(sid, b"body", rest[i:i + 64 * 1024])
        st = c.wait(s3, timeout=20)[0]
        assert st.ended and st.reset is None, \
            "in-flight stream: %d of %d bytes, reset %s, closed %s" % (
                len(st.data), 5 + len(rest), st.reset, c.eof)
        assert bytes(st.data) == b"first" + rest
    finally:
        c.close()
    assert srv.wait_exit(15) == 0


@pytest.mark.parametrize("tls", [False, True], ids=["h2c", "h2"])
def test_goaway_on_reload_with_the_in_flight_download_completing(h2, tls):
    """SIGHUP: GOAWAY NO_ERROR naming the stream in flight (a download the
    client's small window holds back), which then completes on the old
    configuration; new connections get the new one. (A request still
    waiting for a node is failed at a reload instead: the node
    endpoints move to the new configuration, docs/zmq-gateway.md.)"""
    srv = h2()
    c = H2Client(srv.tls_port if tls else srv.port, tls=tls, window=16384)
    try:
        assert c.get("/index.html").status == 200     # stream 1
        s3 = c.request("/big.bin")                      # stream 3
        assert c.pump(lambda: len(c.stream(s3).data) > 0)
        srv.signal(signal.SIGHUP)
        expect_goaway_naming(c, s3, "SIGHUP")
        st = c.wait(s3, timeout=60)[0]
        assert st.ended and st.reset is None, \
            "in-flight stream: %d of %d bytes, reset %s, closed %s" % (
                len(st.data), len(BIG), st.reset, c.eof)
        assert sha(st.data) == BIG_SHA
        assert c.closed_by_peer(), "the old connection stayed open"
    finally:
        c.close()
    srv.wait_log("configuration reloaded", timeout=15)
    after = H2Client(srv.port)
    try:
        assert after.get("/index.html").status == 200
    finally:
        after.close()
