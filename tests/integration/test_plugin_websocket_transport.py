"""websocket plugin: permessage-deflate (RFC 7692; off by default, the
site's Deflate* keys, the DeflateMemory budget) with the `ws` client and a
raw zlib client, wss:// through the tls plugin, and slow readers (a client
that reads nothing while its node keeps sending, or while it floods pings,
is closed with SlowReaderCode, logged, and the server's memory stays
bounded)."""

import os
import socket
import struct
import subprocess
import time
import zlib

import pytest
import zmq

import test_plugin_websocket
from test_plugin_websocket import (BINARY, CLOSE, CONT, PING, PONG, TEXT,
                                   Frame, RawWS, echo_by_content, frame,
                                   msg_bytes, parse_all_frames, same_message,
                                   tag_path, wait_for)
from tremolo_harness import memory_env

# The fixture (servers with the echo node), from test_plugin_websocket.py.
wsgw = test_plugin_websocket.wsgw

OFFER = "permessage-deflate; client_max_window_bits"
REPETITIVE = ("tremolo websocket deflate " * 4000)[:100000]   # 100,000 B


def ext_params(header):
    """'permessage-deflate; a; b=1' -> {'a': None, 'b': '1'} (one offer)."""
    parts = [p.strip() for p in header.split(";")]
    assert parts[0] == "permessage-deflate", header
    out = {}
    for p in parts[1:]:
        k, _, v = p.partition("=")
        out[k.strip()] = v.strip().strip('"') or None
    return out


# ---- permessage-deflate ----------------------------------------------------

def test_deflate_off_by_default(wsgw):
    srv = wsgw()
    ws = RawWS(srv.port, headers={"Sec-WebSocket-Extensions": OFFER})
    r = ws.handshake()
    assert "sec-websocket-extensions" not in r.headers, r.headers
    c = srv.clients()
    ev = c.open("a", srv.ws_url)                  # ws offers by default
    assert ev["ev"] == "open" and ev["extensions"] == "", ev
    s0 = c.stats("a")
    c.send_text("a", REPETITIVE)
    assert same_message(c.wait_messages("a", 1)[0], REPETITIVE, False)
    s1 = c.stats("a")
    assert s1["bytesWritten"] - s0["bytesWritten"] >= len(REPETITIVE)


@pytest.mark.parametrize("conf", [
    "Deflate on",
    "Deflate on\nDeflateWindowBits 9\nDeflateMemLevel 1",
    "Deflate on\nDeflateContextTakeover off",
], ids=["defaults", "window9-memlevel1", "no-context-takeover"])
def test_deflate_with_ws_client(wsgw, conf):
    """Negotiated with the `ws` client; its compressed messages reach the
    node decompressed, the node's come back intact, and far fewer bytes
    than the 100 KB messages cross the wire each way."""
    srv = wsgw(ws=conf, on_msg=echo_by_content)
    raw = RawWS(srv.port, headers={"Sec-WebSocket-Extensions": OFFER})
    r = raw.handshake()
    params = ext_params(r.headers.get("sec-websocket-extensions", ""))
    if "ContextTakeover off" in conf:
        assert "server_no_context_takeover" in params, params
        assert "client_no_context_takeover" in params, params
    raw.close()

    c = srv.clients()
    ev = c.open("a", srv.ws_url + "?c=a")
    assert ev["ev"] == "open", ev
    assert ev["extensions"].startswith("permessage-deflate"), ev
    sid = srv.node.sid_of("a")
    s0 = c.stats("a")
    c.send_text("a", REPETITIVE)
    got = c.wait_messages("a", 1, timeout=15)[0]
    s1 = c.stats("a")
    assert srv.node.messages(sid) == [("websocket", REPETITIVE.encode())]
    assert same_message(got, REPETITIVE, False)
    up = s1["bytesWritten"] - s0["bytesWritten"]
    down = s1["bytesRead"] - s0["bytesRead"]
    assert up < 10000, "client -> server: %d wire bytes for 100 KB" % up
    assert down < 10000, "server -> client: %d wire bytes for 100 KB" % down
    # Many messages in a row (context kept or not), binary and random too.
    rnd = os.urandom(50000)
    sent = [("t", "message %d " % i * 300) for i in range(8)]
    sent += [("b", bytes(range(256)) * 200), ("b", rnd), ("t", "short"),
             ("t", "")]
    for kind, data in sent:
        if kind == "t":
            c.send_text("a", data)
        else:
            c.send_bytes("a", data)
    got = c.wait_messages("a", 1 + len(sent), timeout=15)[1:]
    assert [d for _, d in srv.node.messages(sid)[1:]] == [
        d.encode() if k == "t" else d for k, d in sent]
    for (kind, data), ev in zip(sent, got):
        assert same_message(ev, data, binary=(kind == "b")), \
            (kind, data[:30], ev)


class DeflateWS(RawWS):
    """A raw client that speaks permessage-deflate with zlib (no context
    takeover on its side; follows the server's choice on the other)."""

    def setup(self, params):
        self.server_reset = "server_no_context_takeover" in params
        self.inflater = zlib.decompressobj(-15)

    def send_compressed(self, opcode, payload, split=None):
        c = zlib.compressobj(9, zlib.DEFLATED, -15)
        data = c.compress(payload) + c.flush(zlib.Z_SYNC_FLUSH)
        assert data.endswith(b"\x00\x00\xff\xff")
        data = data[:-4]
        if split:                          # RSV1 only on the first fragment
            self.send(frame(opcode, data[:split], fin=False, rsv=4) +
                      frame(CONT, data[split:]))
        else:
            self.send(frame(opcode, data, rsv=4))
        return len(data)

    def recv_inflated(self, timeout=None):
        parts, first = [], None
        while True:
            f = self.recv_frame(timeout)
            if f.opcode == PING:
                continue
            if first is None:
                first = f
                assert f.opcode in (TEXT, BINARY), f
                assert f.rsv in (0, 4), f
            else:
                assert f.opcode == CONT and f.rsv == 0, f
            parts.append(f.payload)
            if f.fin:
                break
        data = b"".join(parts)
        wire = len(data)
        if first.rsv == 4:
            if self.server_reset:
                self.inflater = zlib.decompressobj(-15)
            data = self.inflater.decompress(data + b"\x00\x00\xff\xff")
        return Frame(1, first.rsv, first.opcode, data, 0), wire


@pytest.mark.parametrize("conf", ["Deflate on",
                                  "Deflate on\nDeflateContextTakeover off"])
def test_deflate_with_raw_zlib_client(wsgw, conf):
    srv = wsgw(ws=conf, on_msg=None)
    ws = DeflateWS(srv.port, tag_path("z"),
                   headers={"Sec-WebSocket-Extensions":
                            "permessage-deflate; client_no_context_takeover"})
    r = ws.handshake()
    params = ext_params(r.headers.get("sec-websocket-extensions", ""))
    ws.setup(params)
    sid = srv.node.sid_of("z")
    text = REPETITIVE.encode()
    n = ws.send_compressed(TEXT, text)
    assert n < 2000
    ws.send_compressed(BINARY, bytes(200) * 50, split=3)
    ws.send(frame(TEXT, "uncompressed is fine too"))
    assert wait_for(lambda: len(srv.node.messages(sid)) == 3)
    assert srv.node.messages(sid) == [
        ("websocket", text), ("websocket", bytes(200) * 50),
        ("websocket", b"uncompressed is fine too")]
    for i in range(3):                   # context takeover across messages
        srv.node.send(sid, "websocket", text)
    for i in range(3):
        f, wire = ws.recv_inflated()
        assert (f.opcode, f.payload) == (TEXT, text)
        assert f.rsv == 4 and wire < 10000, (f.rsv, wire)
    # A compressed message whose inflated size breaks MaxMessageSize (1M
    # by default) is refused like any other: 1009.
    ws.send_compressed(BINARY, bytes(2 * 1024 * 1024))
    f = ws.expect_close()
    assert f.close_code == 1009, f.payload
    srv.node.wait_end(sid)


def test_deflate_memory_budget(wsgw):
    """DeflateMemory bounds the site's zlib memory: once it is used up a
    new connection gets no extension (and still works, uncompressed); a
    closed connection gives its share back."""
    srv = wsgw(ws="Deflate on\nDeflateMemory 1M")
    c = srv.clients()
    kinds = []
    for i in range(40):
        ev = c.open("c%d" % i, srv.ws_url + "?c=c%d" % i)
        assert ev["ev"] == "open", ev
        kinds.append(bool(ev["extensions"]))
        if not kinds[-1]:
            break
    assert kinds[0], "not even the first connection got permessage-deflate"
    assert not kinds[-1], "40 connections all fit in DeflateMemory 1M"
    assert kinds == [True] * (len(kinds) - 1) + [False], kinds
    last = "c%d" % (len(kinds) - 1)
    s0 = c.stats(last)
    c.send_text(last, REPETITIVE)
    assert same_message(c.wait_messages(last, 1)[0], REPETITIVE, False)
    s1 = c.stats(last)
    assert s1["bytesWritten"] - s0["bytesWritten"] >= len(REPETITIVE)
    # the budget is given back when a compressed connection closes
    c.cmd(op="close", id="c0", code=1000)
    srv.node.wait_end(srv.node.sid_of("c0"))
    ev = c.open("again", srv.ws_url)
    assert ev["ev"] == "open" and ev["extensions"], ev


# ---- wss:// -----------------------------------------------------------------

def make_cert(d):
    p = subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
         "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
         str(d / "ws.key"), "-out", str(d / "ws.pem"), "-days", "2",
         "-subj", "/CN=127.0.0.1", "-addext",
         "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
    assert p.returncode == 0, p.stdout.decode(errors="replace")
    return (d / "ws.pem").read_bytes(), (d / "ws.key").read_bytes()


@pytest.mark.parametrize("deflate", [False, True], ids=["plain", "deflate"])
def test_wss_echo(wsgw, tmp_path, deflate):
    cert, key = make_cert(tmp_path)
    srv = wsgw(ws="Deflate on" if deflate else "", on_msg=echo_by_content,
               plugins=("tls",), listen=["127.0.0.1:{port} tls"],
               files={"certs/ws.pem": cert, "certs/ws.key": key},
               plugin_confs={"tls": "[TLS]\n    Certificate certs/ws.pem\n"
                                    "    Key certs/ws.key\n"})
    url = "wss://127.0.0.1:%d/ws?c=s" % srv.port
    c = srv.clients()
    ev = c.open("s", url, ca=str(tmp_path / "ws.pem"))
    assert ev["ev"] == "open", ev
    assert bool(ev["extensions"]) == deflate, ev
    big = os.urandom(300000)
    c.send_text("s", "über TLS")
    c.send_bytes("s", big)
    c.send_text("s", REPETITIVE)
    got = c.wait_messages("s", 3, timeout=15)
    assert msg_bytes(got[0]) == "über TLS".encode() and not got[0]["binary"]
    assert same_message(got[1], big, True)
    assert same_message(got[2], REPETITIVE, False)
    sid = srv.node.sid_of("s")
    assert srv.node.vars_of(sid).get("HTTPS") == "on"
    c.cmd(op="close", id="s", code=1000)
    ev = c.wait(lambda e: e["ev"] == "close" and e["id"] == "s", 10)
    assert ev["code"] == 1000
    srv.node.wait_end(sid)
    # An insecure client that does not trust the CA is refused by the
    # client itself: the certificate really is the one we made.
    ev = c.open("u", url)
    assert ev["ev"] in ("error", "close"), ev


# ---- slow readers ----------------------------------------------------------

def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        return int(next(ln for ln in f if ln.startswith("VmRSS")).split()[1])


PIECE = b"s" * 65536
TOTAL = 200 * 1024 * 1024


def pumping(state):
    """on_msg: on "pump", send 64 KiB text messages (up to 200 MB) to the
    session until Tremolo ends it; never blocks the node thread."""
    def pump(node, sid):
        sock = node.pynode._socket_for(sid)
        deadline = time.monotonic() + 60
        while state["sent"] < TOTAL and time.monotonic() < deadline:
            if node.ended(sid):
                break
            try:
                sock.send_multipart([sid, b"websocket", PIECE],
                                    flags=zmq.NOBLOCK)
                state["sent"] += len(PIECE)
                if state["sent"] % (1 << 20) == 0:
                    yield
            except zmq.Again:
                time.sleep(0.002)
                yield
        state["done"] = True

    def on_msg(node, sid, mtype, data):
        if data == b"pump":
            node.tasks.append(pump(node, sid))
    return on_msg


def flood(srv, state, ws, sid, stop, limit=30):
    """Has the node flood `sid` (the client reads nothing) until stop()
    or `limit` s; returns (RSS growth in MB, seconds until stop)."""
    time.sleep(0.2)
    base = peak = rss_kb(srv.pid)
    ws.send_frame(TEXT, "pump")
    t0 = time.monotonic()
    deadline = t0 + limit
    while time.monotonic() < deadline and not stop():
        peak = max(peak, rss_kb(srv.pid))
        time.sleep(0.05)
    took = time.monotonic() - t0
    peak = max(peak, rss_kb(srv.pid))
    return (peak - base) / 1024.0, took


def read_frames_until_close(ws, timeout):
    """The server's frames up to its close frame, EOF or `timeout` s,
    parsed as they come (megabytes of frames: parsing the whole
    buffer again after every read would be quadratic)."""
    frames, end = [], time.monotonic() + timeout
    while not ws.eof and not (frames and frames[-1].opcode == CLOSE):
        try:
            ws._fill(end)
        except TimeoutError:
            break
        got, rest = parse_all_frames(memoryview(ws.buf))
        frames += got
        ws.buf = bytes(rest)
    return frames


@pytest.mark.parametrize("conf,code", [
    ("", 1013),
    ("SlowReaderCode 1008\nSendQueueLimit 256K", 1008),
], ids=["default-1013", "1008"])
def test_slow_reader_is_closed_with_code(wsgw, conf, code):
    """A client that stops reading while its node sends (64 KiB messages,
    up to 200 MB, as fast as the gateway takes them) is marked: "slow
    reader" in the error log, bounded server memory. When it reads again
    it finds whole frames, then the close frame with SlowReaderCode; it
    answers, and the connection and the session end."""
    state = {"sent": 0, "done": False}
    srv = wsgw(ws=conf + "\nCloseTimeout 20s", on_msg=pumping(state),
               env=memory_env())
    ws = RawWS(srv.port, tag_path("slow"), rcvbuf=16384, timeout=10)
    ws.handshake()
    sid = srv.node.sid_of("slow")
    growth_mb, _ = flood(srv, state, ws, sid,
                         lambda: "slow reader" in srv.error_log())
    assert "slow reader" in srv.error_log(), \
        "no 'slow reader' in the error log within 30 s (the node sent %d " \
        "MB)\n%s" % (state["sent"] >> 20, srv.error_log())
    assert growth_mb < 64, "server RSS grew %.0f MB (node sent %d MB)" % (
        growth_mb, state["sent"] >> 20)
    frames = read_frames_until_close(ws, 15)
    assert frames and frames[-1].opcode == CLOSE, \
        "no close frame after %d data frames (%d bytes left over, %s)" % (
            len(frames), len(ws.buf), "EOF" if ws.eof else "open")
    ws.reply_close(code)
    assert frames[-1].close_code == code, frames[-1].payload
    assert ws.buf == b"", "a partial frame after the close: %r" % ws.buf[:20]
    bad = [f for f in frames[:-1] if (f.opcode, f.payload) != (TEXT, PIECE)]
    assert not bad, "damaged frames before the close: %r" % bad[:3]
    assert ws.expect_eof(5) == b""
    srv.node.wait_end(sid)
    print("slow reader: node sent %d MB, client got %d frames, RSS +%.1f MB"
          % (state["sent"] >> 20, len(frames) - 1, growth_mb))


def test_slow_reader_that_never_reads_is_dropped(wsgw):
    """One that never reads again cannot get the close frame: after
    CloseTimeout (1s) the connection is closed anyway, the node gets
    `end`, and the server's RSS stayed bounded while the node sent up to
    200 MB."""
    state = {"sent": 0, "done": False}
    srv = wsgw(ws="CloseTimeout 1s", on_msg=pumping(state),
               env=memory_env())
    ws = RawWS(srv.port, tag_path("slow"), rcvbuf=16384, timeout=10)
    ws.handshake()
    sid = srv.node.sid_of("slow")
    growth_mb, took = flood(srv, state, ws, sid,
                            lambda: srv.node.ended(sid))
    assert "slow reader" in srv.error_log(), srv.error_log()
    assert srv.node.ended(sid), \
        "a slow reader that reads nothing was not dropped within 30 s " \
        "(CloseTimeout 1s): no `end`; the node sent %d MB" % (
            state["sent"] >> 20)
    assert growth_mb < 64, "server RSS grew %.0f MB (node sent %d MB)" % (
        growth_mb, state["sent"] >> 20)
    ws.sock.settimeout(10)
    while not ws.eof:                      # the kernel's bytes, then EOF
        ws._fill(time.monotonic() + 10)
    print("never-reading slow reader: dropped after %.1f s, RSS +%.1f MB"
          % (took, growth_mb))


PING_BODY = b"p" * 125                    # the largest control payload
FLOOD_TOTAL = 64 * 1024 * 1024


def ping_flood(srv, ws, marked, limit=60):
    """Sends masked 125-byte pings as fast as the server reads them and
    never reads, until marked() (checked every MiB), FLOOD_TOTAL bytes,
    the server closes, or `limit` s. Returns (bytes sent, peak RSS growth
    in MB)."""
    batch = b"".join(frame(PING, PING_BODY) for _ in range(512))
    base = peak = rss_kb(srv.pid)
    sent, deadline = 0, time.monotonic() + limit
    ws.sock.settimeout(10)
    while sent < FLOOD_TOTAL and time.monotonic() < deadline:
        try:
            ws.sock.sendall(batch)
        except OSError:                    # reset, or nothing read for 10 s
            break
        sent += len(batch)
        if sent % (1 << 20) < len(batch):
            peak = max(peak, rss_kb(srv.pid))
            if marked():
                break
    peak = max(peak, rss_kb(srv.pid))
    return sent, (peak - base) / 1024.0


@pytest.mark.parametrize("conf,limit", [
    ("", 1 << 20),
    ("SendQueueLimit 4K", 4096),
], ids=["default-1M", "4K"])
def test_ping_flood_is_a_slow_reader(wsgw, conf, limit):
    """A client that sends 125-byte pings as fast as it can and reads
    nothing has its pongs queued against SendQueueLimit like any other
    frame: it is marked a slow reader once they fill it (long before the
    64 MiB of pings, whose pongs would be 62 MiB), the server's RSS stays
    bounded, and the close frames it then floods change nothing. When it
    reads at last it finds intact pongs, no more than SendQueueLimit plus
    what the kernel buffers, then the close frame with 1013, and EOF."""
    srv = wsgw(ws=conf + "\nCloseTimeout 20s\nPingInterval 0\nIdleTimeout 0",
               env=memory_env())
    ws = RawWS(srv.port, tag_path("pings"), rcvbuf=16384, timeout=10)
    ws.handshake()
    srv.node.sid_of("pings")
    sent, growth_mb = ping_flood(
        srv, ws, lambda: "slow reader" in srv.error_log())
    assert "slow reader" in srv.error_log(), \
        "a client that sent %d MB of pings and read no pong was not " \
        "marked a slow reader (RSS +%.0f MB)\n%s" % (
            sent >> 20, growth_mb, srv.error_log()[-2000:])
    assert growth_mb < 16, "server RSS grew %.0f MB for %d MB of pings" % (
        growth_mb, sent >> 20)
    closes = frame(CLOSE, struct.pack(">H", 1000)) * 4096
    try:
        ws.sock.sendall(closes)            # all dropped: ours is queued
    except OSError:
        pass
    frames = read_frames_until_close(ws, 15)
    assert frames and frames[-1].opcode == CLOSE, \
        "no close frame after %d frames (%s)" % (
            len(frames), "EOF" if ws.eof else "open")
    assert frames[-1].close_code == 1013, frames[-1]
    pongs = frames[:-1]
    bad = [f for f in pongs if (f.opcode, f.payload) != (PONG, PING_BODY)]
    assert not bad, "damaged frames before the close: %r" % bad[:3]
    with open("/proc/sys/net/ipv4/tcp_wmem") as f:
        kernel = int(f.read().split()[2]) + \
            ws.sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
    got = sum(len(f.payload) + 2 for f in pongs)
    assert got <= limit + 127 + kernel, \
        "%d bytes of pongs queued for a client that read nothing " \
        "(SendQueueLimit %d)" % (got, limit)
    ws.reply_close(1013)
    ws.expect_eof(25)
    print("ping flood: %d KB of pings, %d KB of pongs, RSS +%.1f MB"
          % (sent >> 10, got >> 10, growth_mb))
