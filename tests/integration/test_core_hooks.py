"""The hooks the next plugins need, through the test plugin `hooks`
(tests/plugins/hooks.c): the protocol registry (a listener's protocol by
name, duplicates refused, ALPN ids offered in preference order and the
client's pick selecting the protocol), per-stream accounting (balanced
across keep-alive, pipelining, early answers and aborted connections; a
refusal answers 503 and the connection goes on) and output filters (stream
filters in declared order over memory and file bodies, a pacing
connection filter that holds and releases a static file in slices)."""

import os
import re
import socket
import ssl
import subprocess

import pytest

import test_plugin_websocket as ws_mod
from tremolo_harness import build_request, parse_responses

BUILD = os.environ["TREMOLO_BUILD"]
SRC = os.environ["TREMOLO_SRC"]
HOOKS = os.path.join(BUILD, "tests", "plugins", "tremolo-hooks.so")
ECHO = os.path.join(BUILD, "tests", "plugins", "tremolo-echo.so")
ECHO_SITE = ("[HOST]\n    ServerName 127.0.0.1 localhost\n    Default on\n"
             "    DocumentRoot htdocs\n    Handler echo\n")
BIG = bytes(range(256)) * (256 * 1024 // 256)            # 256 KiB

# The WebSocket echo fixture (a server with the zmq gateway and a node).
wsgw = ws_mod.wsgw


def exchange(port, data, want):
    """Sends data, reads until `want` bytes came or the peer closed."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(data)
        got = b""
        while len(got) < want:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
        return got


def stopped_log(srv):
    srv.stop()
    return srv.error_log()


# ---- protocol registry -------------------------------------------------------

def test_listener_speaks_the_protocol_it_names(tremolo):
    srv = tremolo(plugins=("liana", HOOKS),
                  listen=["127.0.0.1:{port}",
                          "127.0.0.1:{port2} liana protocol=hooks-line"])
    got = exchange(srv.ports["port2"], b"hello\nworld\n", 44)
    assert got == b"hooks-line plain: hello\nhooks-line plain: world\n"
    assert srv.http("GET", "/")[0] == 200        # the other one: HTTP/1.1


def test_unknown_protocol_refused(check_config):
    rc, out = check_config(server="Listen 127.0.0.1:1 protocol=nope")
    assert rc == 1
    assert 'Listen 127.0.0.1:1: protocol "nope" is not registered' in out, out


def test_listen_options_checked(check_config):
    rc, out = check_config(server="Listen 127.0.0.1:1 liana tls")
    assert rc == 1 and "[LAYER] [protocol=NAME]" in out, out


def build_plugin(tmp_path, name, decl):
    src = tmp_path / (name + ".c")
    src.write_text(
        '#include "mk_server/mk_plugin.h"\n'
        "static int rd(struct mk_conn *c) { return MK_PROTO_CLOSE; }\n"
        "static const struct mk_proto p = { .name = \"x\", .on_read = rd };\n"
        "static const struct mk_proto_decl d[] = { %s, { 0 } };\n"
        "MK_PLUGIN_EXPORT const struct mk_plugin mk_plugin_%s = {\n"
        '    .abi = MK_PLUGIN_ABI, .name = "%s", .protos = d };\n'
        % (decl, name, name))
    lib = tmp_path / ("tremolo-%s.so" % name)
    subprocess.run(["cc", "-shared", "-fPIC", "-I", SRC, "-o", str(lib),
                    str(src)], check=True)
    return str(lib)


def test_duplicate_name_or_alpn_refused(check_config, tmp_path):
    dup = build_plugin(tmp_path, "dupname", '{ "http/1.1", NULL, 0, &p }')
    rc, out = check_config(plugins=("liana", dup))
    assert rc == 1
    assert ('protocol "http/1.1" is registered by the core and by dupname'
            in out), out

    dup = build_plugin(tmp_path, "dupalpn", '{ "other", "x-hooks", 1, &p }')
    rc, out = check_config(plugins=("liana", HOOKS, dup))
    assert rc == 1
    assert ('ALPN id "x-hooks" is registered by hooks (hooks-line) and by '
            'dupalpn (other)' in out), out


@pytest.fixture(scope="module")
def cert(tmp_path_factory):
    d = tmp_path_factory.mktemp("cert")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
                    "key.pem", "-out", "cert.pem", "-days", "2", "-subj",
                    "/CN=localhost"], cwd=str(d), check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return (d / "cert.pem").read_bytes(), (d / "key.pem").read_bytes()


def tls_server(tremolo, cert, plugins):
    return tremolo(plugins=plugins,
                   listen=["127.0.0.1:{port} tls"],
                   files={"cert.pem": cert[0], "key.pem": cert[1]},
                   plugin_confs={"tls": "[TLS]\n    Certificate cert.pem\n"
                                        "    Key key.pem\n"})


def tls_talk(port, alpn, data):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if alpn is not None:
        ctx.set_alpn_protocols(alpn)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            s.sendall(data)
            got = b""
            while b"\n" not in got or (got.startswith(b"HTTP/") and
                                       b"\r\n\r\n" not in got):
                chunk = s.recv(4096)
                if not chunk:
                    break
                got += chunk
            return s.selected_alpn_protocol(), got


def test_alpn_offers_registered_protocols_by_preference(tremolo, cert):
    srv = tls_server(tremolo, cert, ("liana", "tls", HOOKS))
    # x-hooks (preference 5) beats http/1.1 (0) in either client order
    for offer in (["x-hooks", "http/1.1"], ["http/1.1", "x-hooks"]):
        picked, got = tls_talk(srv.port, offer, b"hi\n")
        assert picked == "x-hooks", offer
        assert got == b"hooks-line tls: hi\n", got
    picked, got = tls_talk(srv.port, ["http/1.1"],
                           b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
    assert picked == "http/1.1" and got.startswith(b"HTTP/1.1 200"), got
    picked, got = tls_talk(srv.port, None,       # no ALPN: the listener's
                           b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
    assert picked is None and got.startswith(b"HTTP/1.1 200"), got


def test_alpn_without_protocol_plugins_is_http1_only(tremolo, cert):
    srv = tls_server(tremolo, cert, ("liana", "tls"))
    picked, got = tls_talk(srv.port, ["x-hooks", "http/1.1"],
                           b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
    assert picked == "http/1.1" and got.startswith(b"HTTP/1.1 200"), got


# ---- per-stream accounting ---------------------------------------------------

def counts(log):
    m = re.findall(r"hooks: admitted=(\d+) closed=(\d+) refused=(\d+)", log)
    assert m, log
    return tuple(int(x) for x in m[-1])


def test_accounting_balanced_and_refusal_answers_503(tremolo):
    srv = tremolo(plugins=("liana", ECHO, HOOKS),
                  sites={"default": ECHO_SITE},
                  server="MaxRequestBody 100")
    get = build_request("GET", "/x", {"Host": "localhost"})
    with srv.connect() as c:                      # keep-alive: 3
        for _ in range(3):
            c.send(get)
            assert c.read_response().status == 200
    raw = srv.request(get * 2 + build_request(     # pipelined: 3
        "GET", "/x", {"Host": "localhost", "Connection": "close"}))
    assert [r.status for r in parse_responses(raw)] == [200, 200, 200]
    with srv.connect() as c:                      # refused, then one more
        c.send(build_request("POST", "/x", {"Host": "localhost",
                                            "X-Hooks-Refuse": "1"},
                             b"hello"))
        r = c.read_response()
        assert r.status == 503, r
        c.send(get)
        assert c.read_response().status == 200
        c.send(build_request("POST", "/x", {"Host": "localhost"},
                             b"x" * 200))         # 413: the core's answer
        assert c.read_response().status == 413
    with srv.connect() as c:                      # aborted before answered
        # the first answer is out once the pipelined /slow/ was admitted
        c.send(get + build_request("GET", "/slow/x", {"Host": "localhost"}))
        assert c.read_response().status == 200
    assert counts(stopped_log(srv)) == (9, 9, 1)


# ---- output filters ----------------------------------------------------------

@pytest.mark.parametrize("count", [1000, 64 * 1024])   # memory, sendfile
def test_stream_filters_run_in_declared_order(tremolo, count):
    body = b"aab-" * count
    srv = tremolo(plugins=("liana", HOOKS),
                  files={"htdocs/f.txt": body, "htdocs/index.html": b"x"})
    for attach in ("b2c a2b", "a2b b2c"):
        status, _, got = srv.http("GET", "/f.txt",
                                  headers={"X-Hooks-Filters": attach})
        # a2b (order 10) before b2c (order 20), whatever the attach order
        assert status == 200 and got == b"ccc-" * count, (attach, got[:16])
    status, _, got = srv.http("GET", "/f.txt",
                              headers={"X-Hooks-Filters": "a2b"})
    assert got == b"bbb-" * count
    status, _, got = srv.http("GET", "/f.txt")
    assert got == body


def test_stream_filter_holds_body_and_end_then_releases(tremolo):
    """A stream filter holds the whole body and the end and releases them
    from a timer: the response ends only then, after its body, and the
    connection goes on to the next request."""
    srv = tremolo(plugins=("liana", ECHO, HOOKS),
                  sites={"default": ECHO_SITE})
    body = b"abc" * 20000
    with srv.connect() as c:
        for filters in ("hold", "hold a2b", ""):
            c.send(build_request("POST", "/x", {"Host": "localhost",
                                                "X-Hooks-Filters": filters},
                                 body))
            r = c.read_response()
            want = body.replace(b"a", b"b") if "a2b" in filters else body
            assert r.status == 200 and r.body == want, (filters, r)


def test_pacing_filter_holds_and_releases_a_file(tremolo):
    srv = tremolo(plugins=("liana", HOOKS),
                  plugin_confs={"hooks": "[HOOKS]\n    Pace 8192\n"},
                  files={"htdocs/big.bin": BIG, "htdocs/index.html": b"x"})
    with srv.connect() as c:
        for _ in range(2):                        # keep-alive goes on
            c.send(build_request("GET", "/big.bin", {"Host": "localhost"}))
            r = c.read_response()
            assert r.status == 200 and r.body == BIG
    log = stopped_log(srv)
    m = re.search(r"hooks-pace: released (\d+) bytes in (\d+) slices, "
                  r"held up to (\d+)", log)
    assert m, log
    released, slices, held = (int(x) for x in m.groups())
    assert released > 2 * len(BIG)                # heads too
    assert slices >= released // 8192             # never more than a slice
    assert held >= len(BIG)                       # the whole file was held


def test_pacing_filter_carries_a_websocket_echo(wsgw):
    """The connection filter sits below every protocol: the 101, and the
    WebSocket frames of an echo through the zmq gateway, held and released
    in slices, intact and in order."""
    srv = wsgw(plugins=(HOOKS,),
               plugin_confs={"hooks": "[HOOKS]\n    Pace 4096\n"})
    ws, _ = ws_mod.connect(srv)
    msgs = [b"x" * 100000, b"hello", bytes(range(256)) * 64]
    for m in msgs:
        ws.send_frame(ws_mod.BINARY, m)
    for m in msgs:
        got = ws.recv_message(timeout=10)
        assert got.payload == m, (len(got.payload), len(m))
    ws.send_frame(ws_mod.CLOSE, ws_mod.close_payload(1000))
    assert ws.expect_close().opcode == ws_mod.CLOSE
    ws.close()
    m = re.search(r"hooks-pace: released (\d+) bytes in (\d+) slices",
                  stopped_log(srv))
    assert m, srv.error_log()
    released, slices = int(m.group(1)), int(m.group(2))
    assert released > sum(len(x) for x in msgs)
    assert slices >= released // 4096
