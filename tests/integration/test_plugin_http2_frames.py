"""http2: frame-level behaviour of the HTTP/2 plugin against RFC 9113 and
RFC 7541, on plain sockets with prior knowledge (and the h2c upgrade), with
a real Tremolo serving static files.

- the server's SETTINGS as configured ([HTTP2] globally and in a site);
- every flood (rapid reset, CONTINUATION, SETTINGS, PING, empty DATA) gets
  GOAWAY ENHANCE_YOUR_CALM and the connection closed while a well behaved
  client on another connection is served; an HPACK bomb gets 431 or a
  stream/connection error and the server's memory stays bounded, as it does
  for a zero-window client and for one that reads nothing;
- malformed frames and header blocks get the exact error codes;
- h2c upgrade by hand: 101 then the response on stream 1; with a body, no
  upgrade.

Attacking clients write raw frames (h2 refuses to build most of them) and
read the server's frames with a small parser; header blocks are encoded
with hpack or by hand. The well behaved client is h2's H2Connection. Every
read has a deadline."""

import socket
import struct
import threading
import time

import h2.config
import h2.connection
import h2.events
import hpack
import pytest

from tremolo_harness import HOST, memory_bounded, memory_env

PLUGINS = ("liana", "http2")
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

# Frame types (RFC 9113 section 6).
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, \
    WINDOW_UPDATE, CONTINUATION = range(10)
TYPE_NAMES = ("DATA", "HEADERS", "PRIORITY", "RST_STREAM", "SETTINGS",
              "PUSH_PROMISE", "PING", "GOAWAY", "WINDOW_UPDATE",
              "CONTINUATION")
# Flags.
END_STREAM = ACK = 0x1
END_HEADERS = 0x4
PADDED = 0x8
PRIORITY_FLAG = 0x20
# Error codes (section 7).
NO_ERROR, PROTOCOL_ERROR, INTERNAL_ERROR, FLOW_CONTROL_ERROR, \
    SETTINGS_TIMEOUT, STREAM_CLOSED, FRAME_SIZE_ERROR, REFUSED_STREAM, \
    CANCEL, COMPRESSION_ERROR, CONNECT_ERROR, ENHANCE_YOUR_CALM = range(12)
# SETTINGS parameters (section 6.5.2).
S_HEADER_TABLE_SIZE, S_ENABLE_PUSH, S_MAX_CONCURRENT_STREAMS, \
    S_INITIAL_WINDOW_SIZE, S_MAX_FRAME_SIZE, S_MAX_HEADER_LIST_SIZE = \
    range(1, 7)

INDEX = b"<html><body><h1>tremolo over http/2</h1></body></html>\n"
BIG_SIZE = 8 * 1024 * 1024
BIG = bytes(range(256)) * (BIG_SIZE // 256)
FILES = {"htdocs/index.html": INDEX, "htdocs/big.bin": BIG}


# ---- frames -----------------------------------------------------------------

def frame(ftype, flags, sid, payload=b"", length=None):
    """One frame; `length` overrides the header's length field."""
    n = len(payload) if length is None else length
    return struct.pack(">I", n)[1:] + bytes([ftype, flags]) + \
        struct.pack(">I", sid & 0x7fffffff) + payload


def settings(*pairs, ack=False):
    return frame(SETTINGS, ACK if ack else 0, 0,
                 b"".join(struct.pack(">HI", k, v) for k, v in pairs))


def window_update(sid, increment):
    return frame(WINDOW_UPDATE, 0, sid, struct.pack(">I", increment))


def rst_stream(sid, code=CANCEL):
    return frame(RST_STREAM, 0, sid, struct.pack(">I", code))


def ping(data=b"\0" * 8, ack=False):
    return frame(PING, ACK if ack else 0, 0, data)


def hpack_int(value, prefix_bits, first=0):
    """RFC 7541 5.1 integer with an N-bit prefix; `first` holds the bits
    above the prefix."""
    top = (1 << prefix_bits) - 1
    if value < top:
        return bytes([first | value])
    out = [first | top]
    value -= top
    while value >= 128:
        out.append(value % 128 + 128)
        value //= 128
    out.append(value)
    return bytes(out)


def literal(name, value, indexing=False):
    """A literal field with a new name, no Huffman: without indexing
    (0000 0000) or with incremental indexing (0100 0000). Bytes are sent as
    given: upper case and connection-specific names stay as they are."""
    if isinstance(name, str):
        name = name.encode()
    if isinstance(value, str):
        value = value.encode()
    return (b"\x40" if indexing else b"\x00") + hpack_int(len(name), 7) + \
        name + hpack_int(len(value), 7) + value


def request_block(path="/index.html", method="GET", extra=(), skip=()):
    """A request's header block, all literals without indexing: the pseudo
    fields (minus `skip`), then `extra` [(name, value)]."""
    fields = [(":method", method), (":scheme", "http"),
              (":authority", "127.0.0.1"), (":path", path)]
    return b"".join(literal(n, v) for n, v in fields if n not in skip) + \
        b"".join(literal(n, v) for n, v in extra)


def headers(sid, block, end_stream=True, end_headers=True):
    flags = (END_STREAM if end_stream else 0) | \
        (END_HEADERS if end_headers else 0)
    return frame(HEADERS, flags, sid, block)


def describe(f):
    ftype, flags, sid, payload = f
    name = TYPE_NAMES[ftype] if ftype < len(TYPE_NAMES) else str(ftype)
    extra = ""
    if ftype in (RST_STREAM, GOAWAY) and len(payload) >= 4:
        code = struct.unpack(">I", payload[-4:] if ftype == RST_STREAM
                             else payload[4:8])[0]
        extra = " code=0x%x" % code
        if ftype == GOAWAY:
            extra += " last=%d debug=%r" % (
                struct.unpack(">I", payload[:4])[0] & 0x7fffffff,
                payload[8:80])
    return "%s flags=0x%x sid=%d len=%d%s" % (name, flags, sid, len(payload),
                                              extra)


class H2Raw:
    """A client socket that writes raw bytes and reads the server's frames:
    .frames holds every frame read (type, flags, sid, payload),
    .responses[sid] the decoded header blocks of a stream, .data[sid] its
    DATA bytes. The server's SETTINGS are acknowledged unless ack=False."""

    def __init__(self, port, preface=True, client_settings=(), timeout=5.0,
                 ack=True):
        self.sock = socket.create_connection((HOST, port), timeout=timeout)
        self.buf = b""
        self.eof = False
        self.ack = ack
        self.frames = []
        self.dec = hpack.Decoder()
        self.dec.max_header_list_size = 1 << 30
        self.block = None           # (sid, bytes) of an unfinished block
        self.responses = {}
        self.data = {}
        self.server_settings = None
        if preface:
            self.send(PREFACE + settings(*client_settings))

    def send(self, data):
        """Write everything; False when the server has already closed."""
        try:
            self.sock.sendall(data)
            return True
        except (BrokenPipeError, ConnectionResetError):
            return False

    def send_pieces(self, pieces):
        """Write a flood in batches of ~64 KiB; stop at the first write the
        server refuses (it has closed). Returns the bytes written."""
        batch, sent = [], 0
        for p in pieces:
            batch.append(p)
            if sum(len(b) for b in batch) >= 65536:
                data = b"".join(batch)
                batch = []
                if not self.send(data):
                    return sent
                sent += len(data)
        data = b"".join(batch)
        if data and self.send(data):
            sent += len(data)
        return sent

    def _fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        self.sock.settimeout(left)
        try:
            chunk = self.sock.recv(262144)
        except ConnectionResetError:
            chunk = b""
        except socket.timeout:
            raise TimeoutError
        if not chunk:
            self.eof = True
        self.buf += chunk

    def next_frame(self, deadline):
        """The next frame, or None at EOF; TimeoutError after `deadline`."""
        while True:
            if len(self.buf) >= 9:
                n = int.from_bytes(self.buf[:3], "big")
                if len(self.buf) >= 9 + n:
                    ftype, flags = self.buf[3], self.buf[4]
                    sid = struct.unpack(">I", self.buf[5:9])[0] & 0x7fffffff
                    payload = self.buf[9:9 + n]
                    self.buf = self.buf[9 + n:]
                    f = (ftype, flags, sid, payload)
                    self.frames.append(f)
                    self._track(f)
                    return f
            if self.eof:
                return None
            self._fill(deadline)

    def _track(self, f):
        ftype, flags, sid, payload = f
        if ftype == SETTINGS and not flags & ACK:
            if self.server_settings is None:
                self.server_settings = {}
                for i in range(0, len(payload) - len(payload) % 6, 6):
                    k, v = struct.unpack(">HI", payload[i:i + 6])
                    self.server_settings[k] = v
            if self.ack:
                self.send(settings(ack=True))
        elif ftype in (HEADERS, PUSH_PROMISE):
            body = payload
            if flags & PADDED:
                body = body[1:len(body) - body[0]]
            if ftype == HEADERS and flags & PRIORITY_FLAG:
                body = body[5:]
            if ftype == PUSH_PROMISE:
                body = body[4:]
            self.block = (sid, body)
            if flags & END_HEADERS:
                self._decode_block()
        elif ftype == CONTINUATION and self.block is not None:
            self.block = (self.block[0], self.block[1] + payload)
            if flags & END_HEADERS:
                self._decode_block()
        elif ftype == DATA:
            body = payload
            if flags & PADDED and body:
                body = body[1:len(body) - body[0]]
            self.data.setdefault(sid, bytearray()).extend(body)

    def _decode_block(self):
        sid, block = self.block
        self.block = None
        hdrs = self.dec.decode(block, raw=True)
        self.responses.setdefault(sid, []).append(
            [(k.decode("latin-1"), v.decode("latin-1")) for k, v in hdrs])

    def status(self, sid):
        """The final :status of a stream's response, or None."""
        for block in self.responses.get(sid, []):
            st = dict(block).get(":status")
            if st and not st.startswith("1"):
                return int(st)
        return None

    def until(self, pred, timeout=5.0):
        """Read frames until pred(frame) holds (returns the frame), EOF
        (returns None) or `timeout` (TimeoutError)."""
        deadline = time.monotonic() + timeout
        while True:
            f = self.next_frame(deadline)
            if f is None or pred(f):
                return f

    def seen(self):
        return "\n".join(describe(f) for f in self.frames[-40:]) or \
            "(no frame)"

    def goaway(self, timeout=5.0):
        """(last stream id, error code) of the server's GOAWAY; fails the
        test when the server closes or stays silent without one."""
        try:
            f = self.until(lambda f: f[0] == GOAWAY, timeout)
        except TimeoutError:
            pytest.fail("no GOAWAY within %s s; frames:\n%s"
                        % (timeout, self.seen()))
        if f is None:
            pytest.fail("connection closed without GOAWAY; frames:\n%s"
                        % self.seen())
        last, code = struct.unpack(">II", f[3][:8])
        return last & 0x7fffffff, code

    def closed(self, timeout=5.0):
        """True when the server closes the connection within `timeout`."""
        deadline = time.monotonic() + timeout
        try:
            while self.next_frame(deadline) is not None:
                pass
        except TimeoutError:
            return False
        return True

    def error(self, sid, timeout=5.0):
        """The first error the server reports that concerns stream `sid`:
        ("rst", code) for RST_STREAM on it, ("goaway", code) for a GOAWAY
        with an error code (a stream error may be treated as a connection
        error, RFC 9113 5.4). Fails when neither comes."""
        def pred(f):
            return (f[0] == RST_STREAM and f[2] == sid) or \
                (f[0] == GOAWAY and struct.unpack(">I", f[3][4:8])[0] != 0)
        try:
            f = self.until(pred, timeout)
        except TimeoutError:
            pytest.fail("no RST_STREAM on %d nor GOAWAY within %s s; "
                        "frames:\n%s" % (sid, timeout, self.seen()))
        if f is None:
            pytest.fail("connection closed with no RST_STREAM on %d nor "
                        "GOAWAY; frames:\n%s" % (sid, self.seen()))
        if f[0] == RST_STREAM:
            return "rst", struct.unpack(">I", f[3][:4])[0]
        return "goaway", struct.unpack(">I", f[3][4:8])[0]

    def response(self, sid, timeout=5.0):
        """Read until stream `sid` ends (END_STREAM); returns (status,
        body). Fails on RST_STREAM, GOAWAY with an error, close or
        timeout."""
        def pred(f):
            return (f[2] == sid and f[0] in (DATA, HEADERS, CONTINUATION)
                    and f[1] & END_STREAM and self.block is None) or \
                (f[0] == RST_STREAM and f[2] == sid) or \
                (f[0] == GOAWAY and struct.unpack(">I", f[3][4:8])[0] != 0)
        try:
            f = self.until(pred, timeout)
        except TimeoutError:
            pytest.fail("stream %d: no end within %s s; frames:\n%s"
                        % (sid, timeout, self.seen()))
        if f is None or f[0] in (RST_STREAM, GOAWAY):
            pytest.fail("stream %d did not complete; frames:\n%s"
                        % (sid, self.seen()))
        return self.status(sid), bytes(self.data.get(sid, b""))

    def close(self):
        self.sock.close()


class Good:
    """A well behaved client (h2's H2Connection) on its own connection."""

    def __init__(self, port, timeout=10.0):
        self.timeout = timeout
        self.sock = socket.create_connection((HOST, port), timeout=timeout)
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(
            client_side=True, header_encoding=None))
        self.conn.initiate_connection()
        self.conn.increment_flow_control_window(16 * 1024 * 1024)
        self.sock.sendall(self.conn.data_to_send())

    def get(self, path="/index.html"):
        """(status, body) of a GET on a new stream."""
        sid = self.conn.get_next_available_stream_id()
        self.conn.send_headers(sid, [(":method", "GET"), (":scheme", "http"),
                                     (":authority", "127.0.0.1"),
                                     (":path", path)], end_stream=True)
        self.sock.sendall(self.conn.data_to_send())
        status, body = None, bytearray()
        deadline = time.monotonic() + self.timeout
        while True:
            left = deadline - time.monotonic()
            assert left > 0, "good client: no answer to %s in time" % path
            self.sock.settimeout(left)
            chunk = self.sock.recv(262144)
            assert chunk, "good client: connection closed, %s unanswered" \
                % path
            for ev in self.conn.receive_data(chunk):
                if isinstance(ev, h2.events.ResponseReceived) and \
                        ev.stream_id == sid:
                    status = int(dict(ev.headers)[b":status"])
                elif isinstance(ev, h2.events.DataReceived) and \
                        ev.stream_id == sid:
                    body += ev.data
                    self.conn.acknowledge_received_data(
                        ev.flow_controlled_length, sid)
                elif isinstance(ev, h2.events.StreamReset) and \
                        ev.stream_id == sid:
                    pytest.fail("good client: %s reset (code %s)"
                                % (path, ev.error_code))
                elif isinstance(ev, h2.events.ConnectionTerminated):
                    pytest.fail("good client: GOAWAY %s" % ev.error_code)
                elif isinstance(ev, h2.events.StreamEnded) and \
                        ev.stream_id == sid:
                    self.sock.sendall(self.conn.data_to_send())
                    return status, bytes(body)
            self.sock.sendall(self.conn.data_to_send())

    def close(self):
        self.sock.close()


def good_get(port, path="/index.html"):
    g = Good(port)
    try:
        return g.get(path)
    finally:
        g.close()


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        return int(next(ln for ln in f if ln.startswith("VmRSS")).split()[1])


def h2_server(tremolo, http2=None, sites=None, env=None, server=""):
    """A Tremolo with liana + http2 serving FILES; `http2`: the lines of
    the global [HTTP2] section (None: no http2.conf at all)."""
    confs = {} if http2 is None else {"http2": "[HTTP2]\n" + "".join(
        "    %s\n" % ln.strip() for ln in http2.splitlines() if ln.strip())}
    return tremolo(plugins=PLUGINS, plugin_confs=confs, files=FILES,
                   sites=sites, env=env, server=server)


@pytest.fixture
def srv(tremolo):
    return h2_server(tremolo)


# ---- SETTINGS ---------------------------------------------------------------

def server_settings(port):
    c = H2Raw(port)
    try:
        c.until(lambda f: f[0] == SETTINGS and not f[1] & ACK)
        assert c.frames[0][0] == SETTINGS, \
            "the server's first frame is not SETTINGS:\n" + c.seen()
        # The server's connection window update is queued with its SETTINGS:
        # it has come by the end of a response.
        c.send(headers(1, request_block()))
        assert c.response(1) == (200, INDEX)
        conn_window = 65535 + sum(
            struct.unpack(">I", f[3])[0] & 0x7fffffff for f in c.frames
            if f[0] == WINDOW_UPDATE and f[2] == 0)
        return c.server_settings, conn_window
    finally:
        c.close()


def test_settings_defaults(srv):
    s, conn_window = server_settings(srv.port)
    assert s.get(S_MAX_CONCURRENT_STREAMS) == 100, s
    assert s.get(S_INITIAL_WINDOW_SIZE, 65535) == 65535, s
    assert s.get(S_MAX_HEADER_LIST_SIZE) == 65536, s
    assert s.get(S_MAX_FRAME_SIZE, 16384) == 16384, s
    assert s.get(S_HEADER_TABLE_SIZE, 4096) == 4096, s
    assert s.get(S_ENABLE_PUSH, 0) == 0, s      # a server never sends 1
    assert conn_window == 1024 * 1024
    assert good_get(srv.port) == (200, INDEX)


CONFIGURED = ("MaxConcurrentStreams 7\n"
              "InitialWindowSize 100000\n"
              "MaxHeaderListSize 8K\n"
              "MaxFrameSize 32768\n"
              "HeaderTableSize 8192\n"
              "ConnectionWindowSize 4M\n")


def test_settings_configured(tremolo):
    srv = h2_server(tremolo, http2=CONFIGURED)
    s, conn_window = server_settings(srv.port)
    assert s.get(S_MAX_CONCURRENT_STREAMS) == 7, s
    assert s.get(S_INITIAL_WINDOW_SIZE) == 100000, s
    assert s.get(S_MAX_HEADER_LIST_SIZE) == 8192, s
    assert s.get(S_MAX_FRAME_SIZE) == 32768, s
    assert s.get(S_HEADER_TABLE_SIZE) == 8192, s
    assert conn_window == 4 * 1024 * 1024
    assert good_get(srv.port) == (200, INDEX)


def test_settings_from_site(tremolo):
    """The keys in the default site's [HTTP2] apply to its listener."""
    site = ("[HOST]\n    ServerName 127.0.0.1 localhost\n    Default on\n"
            "    DocumentRoot htdocs\n    Handler static\n"
            "[HTTP2]\n    MaxConcurrentStreams 9\n"
            "    InitialWindowSize 70000\n    MaxHeaderListSize 16K\n")
    srv = h2_server(tremolo, sites={"default": site})
    s, _ = server_settings(srv.port)
    assert s.get(S_MAX_CONCURRENT_STREAMS) == 9, s
    assert s.get(S_INITIAL_WINDOW_SIZE) == 70000, s
    assert s.get(S_MAX_HEADER_LIST_SIZE) == 16384, s


def test_header_list_over_limit_431(tremolo):
    """A request whose decoded header list is just over MaxHeaderListSize
    is answered 431 (or refused as a stream); the connection goes on."""
    srv = h2_server(tremolo, http2="MaxHeaderListSize 4K\n")
    c = H2Raw(srv.port)
    try:
        c.send(headers(1, request_block(extra=[("x-big", "a" * 5000)])))
        f = c.until(lambda f: f[2] == 1 and (
            f[0] == RST_STREAM or (f[0] == HEADERS and f[1] & END_HEADERS))
            or f[0] == GOAWAY)
        assert f is not None and f[0] != GOAWAY, c.seen()
        if f[0] == HEADERS:
            assert c.status(1) == 431, c.responses
        # The same connection still serves a request within the limit.
        c.send(headers(3, request_block()))
        assert c.response(3) == (200, INDEX)
    finally:
        c.close()


# ---- floods -----------------------------------------------------------------

def flood_case(srv, pieces, client_settings=()):
    """Send a flood on one connection while a well behaved client is open
    on another: the flooder gets GOAWAY ENHANCE_YOUR_CALM and is closed; the
    other client is served during (its open connection) and after (a new
    one)."""
    good = Good(srv.port)
    try:
        assert good.get() == (200, INDEX)
        # No SETTINGS ACK from the flooder: it would land inside the open
        # header block of the CONTINUATION floods.
        c = H2Raw(srv.port, client_settings=client_settings, ack=False)
        try:
            c.send_pieces(pieces)
            assert good.get() == (200, INDEX)
            _, code = c.goaway(10)
            assert code == ENHANCE_YOUR_CALM, c.seen()
            assert c.closed(10), "flooder not closed after GOAWAY:\n" + \
                c.seen()
        finally:
            c.close()
        assert good.get() == (200, INDEX)
    finally:
        good.close()
    assert good_get(srv.port) == (200, INDEX)
    assert srv.alive()


def test_flood_rapid_reset(srv):
    """CVE-2023-44487: HEADERS then RST_STREAM, 1000 times (ResetRate 100,
    burst 200)."""
    block = request_block()
    pieces = []
    for i in range(1000):
        sid = 1 + 2 * i
        pieces.append(headers(sid, block) + rst_stream(sid, CANCEL))
    flood_case(srv, pieces)


def test_flood_rapid_reset_configured_rate(tremolo):
    """ResetRate 10: 60 resets (over the burst of 20) are a flood; at the
    default of 100 the same 60 are not."""
    block = request_block()
    pieces = [headers(1 + 2 * i, block) + rst_stream(1 + 2 * i)
              for i in range(60)]
    srv = h2_server(tremolo, http2="ResetRate 10\n")
    flood_case(srv, pieces)
    srv2 = h2_server(tremolo)
    c = H2Raw(srv2.port)
    try:
        c.send_pieces(pieces)
        c.send(headers(121, block))
        assert c.response(121) == (200, INDEX)
        assert not any(f[0] == GOAWAY for f in c.frames), c.seen()
    finally:
        c.close()


def test_flood_continuation(srv):
    """CVE-2024-27316 class: a header block split over 200 CONTINUATION
    frames (MaxContinuations 16), END_HEADERS never sent."""
    block = request_block(extra=[("x-pad", "p" * 300)])
    pieces = [headers(1, block[:1], end_headers=False)]
    for i in range(200):
        pieces.append(frame(CONTINUATION, 0, 1, block[1 + i:2 + i]))
    flood_case(srv, pieces)


def test_flood_continuation_complete_block(srv):
    """The same with a block that does end: 40 one-byte CONTINUATIONs then
    END_HEADERS are over MaxContinuations, however small the block."""
    block = request_block()
    pieces = [headers(1, block[:1], end_headers=False)]
    rest = block[1:]
    n = 40
    step = max(1, len(rest) // n)
    parts = [rest[i:i + step] for i in range(0, len(rest), step)]
    for i, p in enumerate(parts):
        pieces.append(frame(CONTINUATION,
                            END_HEADERS if i == len(parts) - 1 else 0, 1, p))
    assert len(parts) > 16
    flood_case(srv, pieces)


def test_flood_settings(srv):
    """500 SETTINGS frames in a burst (ControlRate 50, burst 100)."""
    flood_case(srv, [settings() for _ in range(500)])


def test_flood_ping(srv):
    """500 PINGs in a burst (ControlRate 50, burst 100)."""
    flood_case(srv, [ping(struct.pack(">Q", i)) for i in range(500)])


def test_flood_priority(srv):
    """500 PRIORITY frames in a burst (ControlRate 50, burst 100)."""
    flood_case(srv, [frame(PRIORITY, 0, 1 + 2 * i, struct.pack(">IB", 0, 15))
                     for i in range(500)])


def test_flood_empty_data(srv):
    """500 DATA frames of length 0 without END_STREAM on an open stream."""
    pieces = [headers(1, request_block(method="POST", path="/"),
                      end_stream=False)]
    pieces += [frame(DATA, 0, 1) for _ in range(500)]
    flood_case(srv, pieces)


def test_idle_timeout_goaway(tremolo):
    """IdleTimeout with no stream open: GOAWAY NO_ERROR with the last
    stream id, then the connection closed."""
    srv = h2_server(tremolo, http2="IdleTimeout 500ms\n")
    c = H2Raw(srv.port)
    try:
        c.send(headers(1, request_block()))
        assert c.response(1) == (200, INDEX)
        last, code = c.goaway(10)
        assert (last, code) == (1, NO_ERROR), c.seen()
        assert c.closed(), c.seen()
    finally:
        c.close()


@pytest.mark.parametrize("flood", ["empty-data", "ping", "rst"])
def test_flood_then_frame_size_error(srv, flood):
    """Frames keep coming after the flood in the same burst, the last a
    PRIORITY of a bad length (a frame size error): still GOAWAY
    ENHANCE_YOUR_CALM, and the server lives. nghttp2 1.52 goes on reading
    after an on_frame_recv for DATA that terminated the session, and
    asserts (aborting the whole server) when that frame size error
    terminates it again; found by tests/fuzz/http2_frames."""
    if flood == "empty-data":
        pieces = [headers(1, request_block(method="POST", path="/"),
                          end_stream=False)]
        pieces += [frame(DATA, 0, 1) for _ in range(300)]
    elif flood == "ping":
        pieces = [ping() for _ in range(300)]
    else:
        pieces = [headers(1 + 2 * i, request_block()) + rst_stream(1 + 2 * i)
                  for i in range(300)]
    pieces.append(frame(PRIORITY, 0, 3))
    flood_case(srv, pieces)


def test_ping_below_rate_answered(srv):
    """20 PINGs (within the burst) are all acknowledged with their
    payload: the limit is not a ban on PING."""
    c = H2Raw(srv.port)
    try:
        c.send(b"".join(ping(struct.pack(">Q", 1000 + i)) for i in range(20)))
        for i in range(20):
            f = c.until(lambda f: f[0] in (PING, GOAWAY) and
                        (f[0] == GOAWAY or f[1] & ACK))
            assert f is not None and f[0] == PING, c.seen()
            assert f[3] == struct.pack(">Q", 1000 + i)
    finally:
        c.close()


def hpack_bomb_block(refs):
    """One 4000-byte literal added to the dynamic table (entry size 4038 <
    4096), then referenced `refs` times by index 62: each 1-byte reference
    decodes to 4 KB."""
    return request_block() + literal("x-bomb", "b" * 4000, indexing=True) + \
        bytes([0x80 | 62]) * refs


def test_hpack_bomb(tremolo):
    """A 6 KB header block that decodes to ~16 MB (MaxHeaderListSize 64K):
    431, RST_STREAM or GOAWAY, never a response; the server stays up with
    bounded memory and serves others. 20 connections in a row."""
    srv = h2_server(tremolo, env=memory_env())
    assert good_get(srv.port) == (200, INDEX)
    base = peak = rss_kb(srv.pid)
    block = hpack_bomb_block(4000)
    for n in range(20):
        c = H2Raw(srv.port)
        try:
            # The block is over the 16384 frame size: HEADERS + CONTINUATIONs.
            parts = [block[i:i + 16000] for i in range(0, len(block), 16000)]
            data = headers(1, parts[0], end_headers=len(parts) == 1)
            for i, p in enumerate(parts[1:], 1):
                data += frame(CONTINUATION, END_HEADERS
                              if i == len(parts) - 1 else 0, 1, p)
            c.send(data)
            try:
                f = c.until(lambda f: (f[2] == 1 and (
                    f[0] == RST_STREAM or
                    (f[0] == HEADERS and f[1] & END_HEADERS))) or
                    f[0] == GOAWAY, 10)
            except TimeoutError:
                pytest.fail("no answer to the HPACK bomb within 10 s:\n" +
                            c.seen())
            if f is not None and f[0] == HEADERS:
                assert c.status(1) == 431, (c.responses, c.seen())
            peak = max(peak, rss_kb(srv.pid))
        finally:
            c.close()
    assert srv.alive()
    assert good_get(srv.port) == (200, INDEX)
    if memory_bounded():
        grown_mb = (max(peak, rss_kb(srv.pid)) - base) / 1024.0
        assert grown_mb < 64, "RSS grew %.1f MB" % grown_mb


def drive_slow_reader(srv, client_settings, extra, streams, read):
    """A client opens `streams` GETs of BIG_SIZE bytes and then either
    reads frames without ever granting window (read=True) or reads nothing
    at all; meanwhile another client is served, and the server's RSS stays
    bounded. Returns the RSS growth in MB."""
    assert good_get(srv.port) == (200, INDEX)
    base = peak = rss_kb(srv.pid)
    c = H2Raw(srv.port, client_settings=client_settings)
    stop = threading.Event()

    def drain():
        while not stop.is_set():
            try:
                if c.next_frame(time.monotonic() + 0.2) is None:
                    return
            except (TimeoutError, OSError):
                pass
    t = threading.Thread(target=drain) if read else None
    try:
        c.send(extra + b"".join(headers(1 + 2 * i, request_block("/big.bin"))
                                for i in range(streams)))
        if t:
            t.start()
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            peak = max(peak, rss_kb(srv.pid))
            time.sleep(0.05)
        status, body = good_get(srv.port)
        assert (status, body == INDEX) == (200, True)
        status, body = good_get(srv.port, "/big.bin")
        assert status == 200 and body == BIG
        peak = max(peak, rss_kb(srv.pid))
        assert srv.alive()
    finally:
        stop.set()
        if t:
            t.join(5)
        c.close()
    return (peak - base) / 1024.0


def test_zero_window_slow_read(tremolo):
    """INITIAL_WINDOW_SIZE 0 and never a WINDOW_UPDATE: 100 streams of 8 MB
    (800 MB if buffered) cannot grow the server's memory."""
    srv = h2_server(tremolo, env=memory_env())
    grown = drive_slow_reader(srv, [(S_INITIAL_WINDOW_SIZE, 0)], b"", 100,
                              read=True)
    if memory_bounded():
        assert grown < 64, "RSS grew %.1f MB" % grown


def test_zero_window_ends_after_window_timeout(tremolo):
    """A response waiting WindowTimeout for a window the client never
    opens ends the connection: GOAWAY ENHANCE_YOUR_CALM, close; others
    are served meanwhile."""
    srv = h2_server(tremolo, http2="WindowTimeout 1s\n")
    c = H2Raw(srv.port, client_settings=[(S_INITIAL_WINDOW_SIZE, 0)])
    try:
        c.send(headers(1, request_block("/big.bin")))
        assert good_get(srv.port) == (200, INDEX)
        _, code = c.goaway(15)
        assert code == ENHANCE_YOUR_CALM, c.seen()
        assert c.closed(), c.seen()
        assert not c.data.get(1), "DATA sent into a zero window"
    finally:
        c.close()
    assert good_get(srv.port) == (200, INDEX)


def test_client_fin_ends_streams_waiting_for_window(srv):
    """After the client's FIN no WINDOW_UPDATE can come: responses waiting
    on a zero window can never finish, so the server closes the
    connection then, not at WindowTimeout (30 s) nor, on a stop, at
    DrainTimeout."""
    c = H2Raw(srv.port, client_settings=[(S_INITIAL_WINDOW_SIZE, 0)])
    try:
        c.send(b"".join(headers(1 + 2 * i, request_block("/big.bin"))
                        for i in range(3)))
        c.until(lambda f: f[0] == HEADERS and f[2] == 5)
        c.sock.shutdown(socket.SHUT_WR)
        assert c.closed(5), "connection kept after the client's FIN:\n" + \
            c.seen()
    finally:
        c.close()
    assert good_get(srv.port) == (200, INDEX)


def test_max_concurrent_streams_enforced(tremolo):
    """MaxConcurrentStreams 3: three responses held by a zero window, a
    fourth stream is refused: RST_STREAM REFUSED_STREAM or PROTOCOL_ERROR
    (RFC 9113 5.1.2), after which the three still complete once the window
    opens, or GOAWAY PROTOCOL_ERROR (a stream error treated as a
    connection error, 5.4; what nghttp2 does) and the connection closed."""
    srv = h2_server(tremolo, http2="MaxConcurrentStreams 3\n")
    c = H2Raw(srv.port, client_settings=[(S_INITIAL_WINDOW_SIZE, 0)])
    try:
        # our SETTINGS must be acknowledged before the limit is binding
        c.until(lambda f: f[0] == SETTINGS and f[1] & ACK)
        c.send(b"".join(headers(1 + 2 * i, request_block("/big.bin"))
                        for i in range(4)))
        kind, code = c.error(7)
        if kind == "goaway":
            assert code == PROTOCOL_ERROR, c.seen()
            assert c.closed(), c.seen()
            return
        assert code in (REFUSED_STREAM, PROTOCOL_ERROR), c.seen()
        c.send(window_update(0, 1 << 30) +
               settings((S_INITIAL_WINDOW_SIZE, 1 << 26)))
        for sid in (1, 3, 5):
            status, body = c.response(sid, 30)
            assert status == 200 and body == BIG, (sid, len(body))
    finally:
        c.close()


def test_never_reading_client(tremolo):
    """Windows opened wide (2^31-1) and the socket never read: 50 streams of
    8 MB (400 MB) are bounded by the per-connection output cap."""
    srv = h2_server(tremolo, env=memory_env())
    grown = drive_slow_reader(
        srv, [(S_INITIAL_WINDOW_SIZE, 0x7fffffff)],
        window_update(0, 0x7fffffff - 65535), 50, read=False)
    if memory_bounded():
        assert grown < 64, "RSS grew %.1f MB" % grown


def test_large_downloads_not_reset(tremolo):
    """The output bound is for memory: a file waiting for the client's
    window is a descriptor, as in HTTP/1.1's write queue. With
    WriteQueueLimit 1M, a client that opens its windows wide and reads
    gets four 8 MB files on one connection, none reset; HTTP/1.1 serves
    the same file under the same limit."""
    srv = h2_server(tremolo, server="WriteQueueLimit 1M")
    status, _, body = srv.get("/big.bin")
    assert status == 200 and body == BIG
    c = H2Raw(srv.port, client_settings=[(S_INITIAL_WINDOW_SIZE, 1 << 26)])
    try:
        c.send(window_update(0, 1 << 30) +
               b"".join(headers(1 + 2 * i, request_block("/big.bin"))
                        for i in range(4)))
        for i in range(4):
            status, body = c.response(1 + 2 * i, 30)
            assert status == 200 and body == BIG, (1 + 2 * i, len(body))
    finally:
        c.close()


# ---- malformed frames and header blocks -------------------------------------

def test_bad_preface(srv):
    """Not the client preface: GOAWAY PROTOCOL_ERROR or an HTTP/1.x error,
    and the connection closed; never a 200."""
    for bad in (b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n",
                b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\x00"):
        s = socket.create_connection((HOST, srv.port), timeout=5)
        try:
            s.sendall(bad + settings())
            got, deadline = b"", time.monotonic() + 5
            closed = False
            while time.monotonic() < deadline:
                s.settimeout(max(0.01, deadline - time.monotonic()))
                try:
                    chunk = s.recv(65536)
                except socket.timeout:
                    break
                except ConnectionResetError:
                    chunk = b""
                if not chunk:
                    closed = True
                    break
                got += chunk
            assert closed, "%r: still open; got %r" % (bad, got[:200])
            if got.startswith(b"HTTP/"):
                assert not got.startswith(b"HTTP/1.1 200"), got[:200]
            elif got:
                # Frames (the server's SETTINGS may come first): no
                # response, and a GOAWAY, if any, says PROTOCOL_ERROR.
                pos, types, codes = 0, [], []
                while pos + 9 <= len(got):
                    n = int.from_bytes(got[pos:pos + 3], "big")
                    types.append(got[pos + 3])
                    if got[pos + 3] == GOAWAY:
                        codes.append(struct.unpack(
                            ">I", got[pos + 13:pos + 17])[0])
                    pos += 9 + n
                assert set(types) <= {SETTINGS, WINDOW_UPDATE, GOAWAY}, \
                    (bad, got[:200])
                assert set(codes) <= {PROTOCOL_ERROR}, (bad, got[:200])
        finally:
            s.close()


def test_preface_not_followed_by_settings(srv):
    """The preface must be followed by SETTINGS (RFC 9113 3.4)."""
    c = H2Raw(srv.port, preface=False)
    try:
        c.send(PREFACE + ping())
        _, code = c.goaway()
        assert code == PROTOCOL_ERROR, c.seen()
        assert c.closed()
    finally:
        c.close()


def connection_error(srv, data, expected, prefix=b""):
    """Send `data` after the preface (and `prefix`); the server sends
    GOAWAY with `expected` and closes."""
    c = H2Raw(srv.port)
    try:
        c.send(prefix + data)
        _, code = c.goaway()
        assert code == expected, c.seen()
        assert c.closed(), "not closed after GOAWAY:\n" + c.seen()
    finally:
        c.close()
    assert good_get(srv.port) == (200, INDEX)


def stream_error(srv, data, sid, expected):
    """Send `data`; stream `sid` gets RST_STREAM `expected` (or the
    connection a GOAWAY with it, RFC 9113 5.4). After a RST_STREAM the
    connection still serves a new stream."""
    c = H2Raw(srv.port)
    try:
        c.send(data)
        kind, code = c.error(sid)
        assert code == expected, c.seen()
        if kind == "rst":
            c.send(headers(sid + 2, request_block()))
            assert c.response(sid + 2) == (200, INDEX)
    finally:
        c.close()


def test_data_on_stream_zero(srv):
    connection_error(srv, frame(DATA, 0, 0, b"hello"), PROTOCOL_ERROR)


def test_headers_on_stream_zero(srv):
    connection_error(srv, headers(0, request_block()), PROTOCOL_ERROR)


def test_rst_stream_on_stream_zero(srv):
    connection_error(srv, rst_stream(0), PROTOCOL_ERROR)


def test_headers_even_stream_id(srv):
    connection_error(srv, headers(2, request_block()), PROTOCOL_ERROR)


def test_settings_bad_length(srv):
    connection_error(srv, frame(SETTINGS, 0, 0, b"\0\x03\0\0\0"),
                     FRAME_SIZE_ERROR)


def test_settings_ack_with_payload(srv):
    connection_error(srv, frame(SETTINGS, ACK, 0, b"\0\x03\0\0\0\x01"),
                     FRAME_SIZE_ERROR)


def test_ping_bad_length(srv):
    connection_error(srv, frame(PING, 0, 0, b"\0" * 7), FRAME_SIZE_ERROR)


def test_settings_bad_values(srv):
    """ENABLE_PUSH 2: PROTOCOL_ERROR; INITIAL_WINDOW_SIZE 2^31:
    FLOW_CONTROL_ERROR; MAX_FRAME_SIZE 16383: PROTOCOL_ERROR."""
    connection_error(srv, settings((S_ENABLE_PUSH, 2)), PROTOCOL_ERROR)
    connection_error(srv, settings((S_INITIAL_WINDOW_SIZE, 1 << 31)),
                     FLOW_CONTROL_ERROR)
    connection_error(srv, settings((S_MAX_FRAME_SIZE, 16383)),
                     PROTOCOL_ERROR)


def test_window_update_zero_connection(srv):
    connection_error(srv, window_update(0, 0), PROTOCOL_ERROR)


def test_window_update_zero_stream(srv):
    """Increment 0 on an open stream: a stream error PROTOCOL_ERROR."""
    stream_error(srv, headers(1, request_block(method="POST", path="/"),
                              end_stream=False) + window_update(1, 0),
                 1, PROTOCOL_ERROR)


def test_window_overflow_connection(srv):
    """65535 + 2^31-1 is over 2^31-1: FLOW_CONTROL_ERROR."""
    connection_error(srv, window_update(0, 0x7fffffff), FLOW_CONTROL_ERROR)


def test_window_overflow_stream(srv):
    stream_error(srv, headers(1, request_block(method="POST", path="/"),
                              end_stream=False) +
                 window_update(1, 0x7fffffff), 1, FLOW_CONTROL_ERROR)


def test_hpack_invalid_index(srv):
    """Index 300 (no such entry) and index 0: COMPRESSION_ERROR."""
    connection_error(srv, headers(1, request_block() +
                                  hpack_int(300, 7, 0x80)), COMPRESSION_ERROR)
    connection_error(srv, headers(1, b"\x80" + request_block()),
                     COMPRESSION_ERROR)


def test_hpack_table_size_update_too_big(srv):
    """A dynamic table size update above SETTINGS_HEADER_TABLE_SIZE (4096):
    COMPRESSION_ERROR (RFC 7541 6.3)."""
    connection_error(srv, headers(1, hpack_int(8192, 5, 0x20) +
                                  request_block()), COMPRESSION_ERROR)


def test_hpack_bad_huffman(srv):
    """A Huffman string ending in a padding that is not EOS bits (a 0 bit):
    COMPRESSION_ERROR (RFC 7541 5.2)."""
    bad = b"\x00" + b"\x81" + b"\x00" + b"\x01" + b"x"   # name: 1 byte 0x00
    connection_error(srv, headers(1, request_block() + bad),
                     COMPRESSION_ERROR)


def test_uppercase_header_name(srv):
    stream_error(srv, headers(1, request_block(extra=[("X-Upper", "1")])),
                 1, PROTOCOL_ERROR)


def test_connection_specific_header(srv):
    stream_error(srv, headers(1, request_block(
        extra=[("connection", "keep-alive")])), 1, PROTOCOL_ERROR)


def test_te_not_trailers(srv):
    stream_error(srv, headers(1, request_block(extra=[("te", "gzip")])),
                 1, PROTOCOL_ERROR)


def test_missing_path(srv):
    stream_error(srv, headers(1, request_block(skip=(":path",))),
                 1, PROTOCOL_ERROR)


def test_pseudo_header_after_regular(srv):
    block = request_block(skip=(":path",)) + literal("accept", "*/*") + \
        literal(":path", "/index.html")
    stream_error(srv, headers(1, block), 1, PROTOCOL_ERROR)


def test_unknown_pseudo_header(srv):
    stream_error(srv, headers(1, request_block(extra=[(":foo", "bar")])),
                 1, PROTOCOL_ERROR)


def test_data_after_end_stream(srv):
    """DATA on a stream the client has ended (half-closed remote at the
    server, or closed): STREAM_CLOSED."""
    stream_error(srv, headers(1, request_block()) + frame(DATA, 0, 1, b"x"),
                 1, STREAM_CLOSED)


def test_content_length_mismatch(srv):
    """content-length 10 but 3 DATA bytes then END_STREAM: PROTOCOL_ERROR
    (RFC 9113 8.1.1)."""
    stream_error(srv, headers(1, request_block(
        method="POST", path="/", extra=[("content-length", "10")]),
        end_stream=False) + frame(DATA, END_STREAM, 1, b"abc"),
        1, PROTOCOL_ERROR)


def test_frame_over_max_frame_size(srv):
    """A 16385-byte DATA frame (MAX_FRAME_SIZE 16384): FRAME_SIZE_ERROR."""
    c = H2Raw(srv.port)
    try:
        c.send(headers(1, request_block(method="POST", path="/"),
                       end_stream=False) +
               frame(DATA, 0, 1, b"d" * 16385))
        _, code = c.error(1)
        assert code == FRAME_SIZE_ERROR, c.seen()
    finally:
        c.close()


def test_headers_over_max_frame_size(srv):
    """A HEADERS frame over MAX_FRAME_SIZE alters the HPACK state: a
    connection error FRAME_SIZE_ERROR."""
    connection_error(srv, headers(1, request_block(
        extra=[("x-pad", "p" * 16500)])), FRAME_SIZE_ERROR)


def test_stream_ids_decreasing(srv):
    """HEADERS on 5 then on 3: PROTOCOL_ERROR."""
    connection_error(srv, headers(5, request_block()) +
                     headers(3, request_block()), PROTOCOL_ERROR)


def test_continuation_without_headers(srv):
    connection_error(srv, frame(CONTINUATION, END_HEADERS, 1,
                                request_block()), PROTOCOL_ERROR)


def test_frame_interleaved_in_header_block(srv):
    """Anything but CONTINUATION of the same stream inside a header block:
    PROTOCOL_ERROR."""
    block = request_block()
    connection_error(srv, headers(1, block[:5], end_headers=False) + ping() +
                     frame(CONTINUATION, END_HEADERS, 1, block[5:]),
                     PROTOCOL_ERROR)


POST = request_block(method="POST", path="/")

# (name, bytes after the preface, expected code): connection errors.
CONNECTION_ERRORS = [
    ("data-idle-stream", frame(DATA, 0, 1, b"x"), PROTOCOL_ERROR),
    ("rst-idle-stream", rst_stream(1), PROTOCOL_ERROR),
    ("window-update-idle-stream", window_update(1, 1), PROTOCOL_ERROR),
    ("rst-bad-length", frame(RST_STREAM, 0, 1, b"\0\0\0"), FRAME_SIZE_ERROR),
    ("window-update-bad-length", frame(WINDOW_UPDATE, 0, 0, b"\0\0\1"),
     FRAME_SIZE_ERROR),
    ("goaway-on-stream", frame(GOAWAY, 0, 1, b"\0" * 8), PROTOCOL_ERROR),
    ("ping-on-stream", frame(PING, 0, 1, b"\0" * 8), PROTOCOL_ERROR),
    ("settings-on-stream", frame(SETTINGS, 0, 1), PROTOCOL_ERROR),
    ("push-promise-from-client",
     headers(1, POST, end_stream=False) +
     frame(PUSH_PROMISE, END_HEADERS, 1, b"\0\0\0\2" + request_block()),
     PROTOCOL_ERROR),
    ("headers-padding-too-long",
     frame(HEADERS, PADDED | END_HEADERS | END_STREAM, 1,
           bytes([200]) + request_block()), PROTOCOL_ERROR),
    ("data-padding-too-long",
     headers(1, POST, end_stream=False) +
     frame(DATA, PADDED, 1, b"\x05abc"), PROTOCOL_ERROR),
    ("continuation-other-stream",
     headers(1, request_block()[:5], end_headers=False) +
     frame(CONTINUATION, END_HEADERS, 3, request_block()[5:]),
     PROTOCOL_ERROR),
    ("hpack-size-update-after-field",
     headers(1, request_block() + hpack_int(0, 5, 0x20)), COMPRESSION_ERROR),
    ("hpack-integer-overflow",
     headers(1, request_block() + b"\xff" + b"\xff" * 10 + b"\x01"),
     COMPRESSION_ERROR),
]


@pytest.mark.parametrize("name,data,code", CONNECTION_ERRORS,
                         ids=[c[0] for c in CONNECTION_ERRORS])
def test_connection_errors(srv, name, data, code):
    connection_error(srv, data, code)


# (name, bytes after the preface, stream, expected code): stream errors
# (RST_STREAM, or GOAWAY with the code: RFC 9113 5.4).
STREAM_ERRORS = [
    ("priority-bad-length", frame(PRIORITY, 0, 1, b"\0\0\0\0"), 1,
     FRAME_SIZE_ERROR),
    ("headers-depends-on-itself",
     frame(HEADERS, PRIORITY_FLAG | END_HEADERS | END_STREAM, 1,
           struct.pack(">IB", 1, 15) + request_block()), 1, PROTOCOL_ERROR),
    ("trailers-without-end-stream",
     headers(1, POST, end_stream=False) + frame(DATA, 0, 1, b"x") +
     headers(1, literal("x-trailer", "1"), end_stream=False), 1,
     PROTOCOL_ERROR),
    ("pseudo-header-in-trailers",
     headers(1, POST, end_stream=False) + frame(DATA, 0, 1, b"x") +
     headers(1, literal(":path", "/")), 1, PROTOCOL_ERROR),
    ("duplicate-path",
     headers(1, request_block(extra=[(":path", "/x")])), 1, PROTOCOL_ERROR),
    ("empty-path", headers(1, request_block(path="")), 1, PROTOCOL_ERROR),
    ("missing-method", headers(1, request_block(skip=(":method",))), 1,
     PROTOCOL_ERROR),
    ("missing-scheme", headers(1, request_block(skip=(":scheme",))), 1,
     PROTOCOL_ERROR),
    ("response-pseudo-header",
     headers(1, request_block(extra=[(":status", "200")])), 1,
     PROTOCOL_ERROR),
    # RFC 9113 8.2.1: field names and values
    ("name-with-space",
     headers(1, request_block(extra=[("x y", "1")])), 1, PROTOCOL_ERROR),
    ("name-with-control-char",
     headers(1, request_block(extra=[("x\x01y", "1")])), 1, PROTOCOL_ERROR),
    ("value-with-crlf",
     headers(1, request_block(extra=[("x-a", "1\r\nx-b: 2")])), 1,
     PROTOCOL_ERROR),
    ("value-with-nul",
     headers(1, request_block(extra=[("x-a", "1\x002")])), 1,
     PROTOCOL_ERROR),
    ("value-leading-space",
     headers(1, request_block(extra=[("x-a", " 1")])), 1, PROTOCOL_ERROR),
    # 8.5: CONNECT carries neither :scheme nor :path
    ("connect-with-path",
     headers(1, request_block(method="CONNECT", skip=(":scheme",))), 1,
     PROTOCOL_ERROR),
]


@pytest.mark.parametrize("name,data,sid,code", STREAM_ERRORS,
                         ids=[c[0] for c in STREAM_ERRORS])
def test_stream_errors(srv, name, data, sid, code):
    stream_error(srv, data, sid, code)


def test_unknown_settings_and_flags_ignored(srv):
    """An unknown SETTINGS identifier and unknown flags are ignored (RFC
    9113 6.5.2, 4.1)."""
    c = H2Raw(srv.port)
    try:
        c.send(settings((0xff, 1)) + ping(b"pingpong")[:4] + b"\xf0" +
               ping(b"pingpong")[5:] + headers(1, request_block()))
        assert c.response(1) == (200, INDEX)
        assert any(f[0] == PING and f[1] & ACK and f[3] == b"pingpong"
                   for f in c.frames), c.seen()
    finally:
        c.close()


def test_unknown_frame_type_ignored(srv):
    """An unknown frame type is ignored (RFC 9113 4.1): the request that
    follows is served."""
    c = H2Raw(srv.port)
    try:
        c.send(frame(0xfa, 0, 0, b"whatever") + headers(1, request_block()))
        assert c.response(1) == (200, INDEX)
    finally:
        c.close()


def test_many_streams_one_connection(srv):
    """Sanity for the raw client: 50 concurrent GETs all answered."""
    c = H2Raw(srv.port)
    try:
        c.send(b"".join(headers(1 + 2 * i, request_block())
                        for i in range(50)))
        for i in range(50):
            assert c.response(1 + 2 * i) == (200, INDEX)
    finally:
        c.close()


# ---- h2c upgrade ------------------------------------------------------------

def h2_settings_b64(*pairs):
    import base64
    payload = b"".join(struct.pack(">HI", k, v) for k, v in pairs)
    return base64.urlsafe_b64encode(payload).rstrip(b"=").decode()


def upgrade_request(body=b""):
    req = ("GET /index.html HTTP/1.1\r\nHost: 127.0.0.1\r\n"
           "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
           "HTTP2-Settings: %s\r\n"
           % h2_settings_b64((S_MAX_CONCURRENT_STREAMS, 100),
                             (S_INITIAL_WINDOW_SIZE, 1 << 20)))
    if body:
        req += "Content-Length: %d\r\n" % len(body)
    return req.encode() + b"\r\n" + body


def test_h2c_upgrade(srv):
    c = H2Raw(srv.port, preface=False)
    try:
        c.send(upgrade_request())
        deadline = time.monotonic() + 5
        while b"\r\n\r\n" not in c.buf:
            assert not c.eof, c.buf
            c._fill(deadline)
        head, _, c.buf = c.buf.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        assert lines[0].startswith(b"HTTP/1.1 101"), head
        fields = {ln.split(b":", 1)[0].strip().lower():
                  ln.split(b":", 1)[1].strip().lower() for ln in lines[1:]}
        assert fields.get(b"upgrade") == b"h2c", head
        assert b"upgrade" in fields.get(b"connection", b""), head
        c.send(PREFACE + settings())
        f = c.next_frame(time.monotonic() + 5)
        assert f is not None and f[0] == SETTINGS and not f[1] & ACK, \
            c.seen()
        assert c.response(1) == (200, INDEX)
        # Stream 1 is half-closed (local) for the client: the next request
        # is stream 3, on the same connection.
        c.send(headers(3, request_block()))
        assert c.response(3) == (200, INDEX)
    finally:
        c.close()


def test_h2c_upgrade_with_body_not_upgraded(srv):
    """A request with a body is answered over HTTP/1.1, never 101."""
    c = H2Raw(srv.port, preface=False)
    try:
        c.send(upgrade_request(body=b"hello"))
        deadline = time.monotonic() + 5
        while b"\r\n\r\n" not in c.buf and not c.eof:
            c._fill(deadline)
        head = c.buf.partition(b"\r\n\r\n")[0]
        assert head.startswith(b"HTTP/1.1 "), c.buf[:200]
        assert not head.startswith(b"HTTP/1.1 101"), head
        assert b"\nupgrade:" not in head.lower(), head
    finally:
        c.close()
