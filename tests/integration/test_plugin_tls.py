"""tls: TLS 1.2 listeners (mbedTLS), per-site certificates picked by SNI, a
default certificate, ALPN http/1.1, the handshake timeout, hostile bytes on
both kinds of port, start-up certificate errors, and HTTPS=on through the
zmq gateway. Real clients: curl, `openssl s_client` and Python's ssl.

Certificates come from a throw-away PKI made with the openssl CLI once per
module (a root CA, an intermediate CA, RSA leaves for a.test, b.test (via
the intermediate) and default.test, and an ECDSA leaf for c.test). Nothing
here is committed."""

import hashlib
import http.client
import os
import re
import socket
import ssl
import subprocess
import threading
import time

import pytest

from plugin_util import start_fails
from tremolo_harness import (Conn, build_request, free_port, parse_responses,
                              raw_exchange)

PLUGINS = ("liana", "tls")
GET = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"

ROOT_CN = "Tremolo Test Root CA"
INTER_CN = "Tremolo Test Intermediate CA"

INDEX_DEFAULT = b"<html>default site over tls</html>\n"
INDEX_A = b"<html>site a.test</html>\n"
INDEX_B = b"<html>site b.test</html>\n"
INDEX_C = b"<html>site c.test</html>\n"
HELLO = b"hello over tls\n"
BIG = hashlib.sha256(b"tls-seed").digest() * (3 * 1024 * 1024 // 32)  # 3 MiB


# ---- a throw-away PKI -------------------------------------------------------

def _openssl(*args, cwd):
    p = subprocess.run(["openssl"] + list(args), cwd=str(cwd),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=60)
    assert p.returncode == 0, "openssl %s:\n%s" % (
        " ".join(args), p.stdout.decode(errors="replace"))


CA_EXT = ("basicConstraints=critical,CA:TRUE\n"
          "keyUsage=critical,keyCertSign,cRLSign\n"
          "subjectKeyIdentifier=hash\n"
          "authorityKeyIdentifier=keyid\n")


def _leaf_ext(names):
    return ("basicConstraints=CA:FALSE\n"
            "keyUsage=critical,digitalSignature,keyEncipherment\n"
            "extendedKeyUsage=serverAuth\n"
            "subjectKeyIdentifier=hash\n"
            "authorityKeyIdentifier=keyid\n"
            "subjectAltName=%s\n" % ",".join("DNS:" + n for n in names))


def _newkey(kind):
    if kind == "ec":
        return ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"]
    return ["-newkey", "rsa:2048"]


def _issue(d, name, cn, issuer, ext, kind="rsa"):
    """name.key + name.pem signed by issuer (its .pem/.key in d)."""
    (d / (name + ".ext")).write_text(ext)
    _openssl("req", "-new", *_newkey(kind), "-nodes", "-keyout",
             name + ".key", "-out", name + ".csr", "-subj", "/CN=" + cn,
             cwd=d)
    _openssl("x509", "-req", "-in", name + ".csr", "-CA", issuer + ".pem",
             "-CAkey", issuer + ".key", "-CAcreateserial", "-days", "3",
             "-sha256", "-extfile", name + ".ext", "-out", name + ".pem",
             cwd=d)


class PKI:
    def __init__(self, d):
        self.dir = d
        self.ca = str(d / "ca.pem")

    def read(self, name):
        return (self.dir / name).read_bytes()


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    (d / "ca.ext").write_text(CA_EXT)
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
             "ca.key", "-out", "ca.pem", "-days", "3", "-sha256",
             "-subj", "/CN=" + ROOT_CN, "-addext",
             "basicConstraints=critical,CA:TRUE", "-addext",
             "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
    _issue(d, "inter", INTER_CN, "ca", CA_EXT.replace(
        "CA:TRUE", "CA:TRUE,pathlen:0"))
    _issue(d, "a", "a.test", "ca", _leaf_ext(["a.test"]))
    _issue(d, "b", "b.test", "inter", _leaf_ext(["b.test", "www.b.test"]))
    _issue(d, "default", "default.test", "ca", _leaf_ext(["default.test"]))
    _issue(d, "c", "c.test", "ca", _leaf_ext(["c.test"]), kind="ec")
    _issue(d, "w", "*.w.test", "ca", _leaf_ext(["*.w.test"]))
    # b.test's chain: leaf first, then the intermediate; its key in the
    # traditional "BEGIN RSA PRIVATE KEY" form (the others are PKCS#8).
    (d / "b-chain.pem").write_bytes((d / "b.pem").read_bytes() +
                                    (d / "inter.pem").read_bytes())
    _openssl("rsa", "-in", "b.key", "-traditional", "-out", "b-trad.key",
             cwd=d)
    return PKI(d)


def cert_files(pki):
    """The certificates and keys, as `files=` for a server's conf dir."""
    return {
        "certs/default.pem": pki.read("default.pem"),
        "certs/default.key": pki.read("default.key"),
        "certs/a.pem": pki.read("a.pem"),
        "certs/a.key": pki.read("a.key"),
        "certs/b.pem": pki.read("b-chain.pem"),
        "certs/b.key": pki.read("b-trad.key"),
        "certs/c.pem": pki.read("c.pem"),
        "certs/c.key": pki.read("c.key"),
        "certs/w.pem": pki.read("w.pem"),
        "certs/w.key": pki.read("w.key"),
    }


# ---- servers ----------------------------------------------------------------

def tls_conf(*lines, cert="certs/default.pem", key="certs/default.key"):
    text = "[TLS]\n"
    if cert:
        text += "    Certificate %s\n" % cert
    if key:
        text += "    Key %s\n" % key
    return text + "".join("    %s\n" % ln for ln in lines)


def site(names, docroot, cert=None, key=None, default=False, handler=None):
    text = "[HOST]\n    ServerName %s\n" % names
    if default:
        text += "    Default on\n"
    text += "    DocumentRoot %s\n    Handler %s\n" % (docroot,
                                                     handler or "static")
    if cert or key:
        text += "[TLS]\n"
        if cert:
            text += "    Certificate %s\n" % cert
        if key:
            text += "    Key %s\n" % key
    return text


def sites_abc():
    return {
        "default": site("127.0.0.1 localhost default.test", "htdocs",
                        default=True),
        "a": site("a.test", "htdocs_a", "certs/a.pem", "certs/a.key"),
        "b": site("b.test www.b.test", "htdocs_b", "certs/b.pem",
                  "certs/b.key"),
        "c": site("c.test", "htdocs_c", "certs/c.pem", "certs/c.key"),
        "w": site("*.w.test", "htdocs_c", "certs/w.pem", "certs/w.key"),
    }


def content_files():
    return {
        "htdocs/index.html": INDEX_DEFAULT,
        "htdocs_a/index.html": INDEX_A,
        "htdocs_a/hello.txt": HELLO,
        "htdocs_a/big.bin": BIG,
        "htdocs_b/index.html": INDEX_B,
        "htdocs_c/index.html": INDEX_C,
    }


# The TLS listener first: srv.port is TLS, srv.ports["port2"] plain HTTP.
TWO_LISTENERS = "Listen 127.0.0.1:{port} tls\nListen 127.0.0.1:{port2} liana"


def tls_server(tremolo, pki, server="", tls=None, sites=None, workers=1,
               start=True, plugins=PLUGINS):
    return tremolo(server=TWO_LISTENERS + "\n" + server, plugins=plugins,
                   sites=sites or sites_abc(),
                   plugin_confs={"tls": tls if tls is not None
                                 else tls_conf()},
                   files=dict(cert_files(pki), **content_files()),
                   workers=workers, start=start)


def plain_port(srv):
    return srv.ports["port2"]


# ---- clients ----------------------------------------------------------------

def client_ctx(pki, verify=True, alpn=None, ciphers=None, minv=None,
               maxv=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if verify:
        ctx.load_verify_locations(pki.ca)
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if alpn:
        ctx.set_alpn_protocols(alpn)
    if ciphers:
        ctx.set_ciphers(ciphers)
    if minv:
        ctx.minimum_version = minv
    if maxv:
        ctx.maximum_version = maxv
    return ctx


def tls_socket(srv, pki, name="a.test", ctx=None, timeout=5.0, port=None):
    """A handshaken TLS socket (SNI = name; None sends no SNI)."""
    if ctx is None:
        ctx = client_ctx(pki)
        if name is None:
            ctx.check_hostname = False
    raw = socket.create_connection(("127.0.0.1", port or srv.port),
                                   timeout=timeout)
    try:
        return ctx.wrap_socket(raw, server_hostname=name)
    except BaseException:
        raw.close()
        raise


class TLSConn(Conn):
    """The harness's keep-alive/pipelining client, over TLS."""

    def __init__(self, srv, pki, name="a.test", ctx=None, timeout=5.0,
                 sock=None):
        self.sock = sock or tls_socket(srv, pki, name, ctx, timeout)
        self.timeout = timeout
        self.buf = b""
        self.eof = False


def https_get(srv, pki, path="/", name="a.test", host=None):
    """(status, body) of one GET over TLS with SNI `name`."""
    with TLSConn(srv, pki, name) as c:
        r = c.request("GET", path, {"Host": host or name,
                                    "Connection": "close"})
        return r.status, r.body


def curl(*args):
    p = subprocess.run(["curl", "-sS", "--max-time", "20"] + list(args),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=30)
    return p.returncode, p.stdout, p.stderr.decode(errors="replace")


def curl_https(srv, pki, name, *args):
    return curl("--cacert", pki.ca, "--resolve",
                "%s:%d:127.0.0.1" % (name, srv.port), *args)


def url(srv, name, path="/"):
    return "https://%s:%d%s" % (name, srv.port, path)


def s_client(port, *args, timeout=20):
    """Runs `openssl s_client` with stdin at EOF (handshake, then quit);
    returns (exit code, output)."""
    p = subprocess.run(["openssl", "s_client", "-connect",
                        "127.0.0.1:%d" % port] + list(args),
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=timeout)
    return p.returncode, p.stdout.decode(errors="replace")


def served_subject(out):
    """The CN of the server certificate in s_client's output."""
    m = re.search(r"^subject=.*CN\s*=\s*([^,\n/]+)", out, re.M)
    return m.group(1).strip() if m else None


def peer_cn(sock):
    cert = sock.getpeercert()
    for rdn in cert["subject"]:
        for k, v in rdn:
            if k == "commonName":
                return v
    return None


def client_hello(name="a.test", **ctx_args):
    """The bytes of a ClientHello as Python's ssl would send it."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    for k, v in ctx_args.items():
        if k == "ciphers":
            ctx.set_ciphers(v)
        else:
            setattr(ctx, k, v)
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname=name)
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    data = out.read()
    assert data[:1] == b"\x16" and len(data) > 100, data[:20]
    return data


def assert_serves(srv, pki):
    """The server is alive and answers both over TLS and plain HTTP."""
    assert srv.alive(), srv.error_log()
    assert https_get(srv, pki, "/hello.txt") == (200, HELLO)
    status, _, body = srv.http("GET", "/", port=plain_port(srv))
    assert status == 200 and body == INDEX_DEFAULT


def looks_like_tls_alert_or_nothing(data):
    """A TLS listener may answer junk with an alert record, never HTTP."""
    return data == b"" or (data[:1] == b"\x15" and data[1:2] == b"\x03")


# ---- HTTPS with real clients -----------------------------------------------

def test_curl_https_get_static_file(tremolo, pki):
    srv = tls_server(tremolo, pki)
    rc, body, err = curl_https(srv, pki, "a.test",
                               url(srv, "a.test", "/hello.txt"))
    assert rc == 0, err
    assert body == HELLO
    rc, body, err = curl_https(srv, pki, "a.test", url(srv, "a.test"))
    assert rc == 0, err
    assert body == INDEX_A
    # the plain listener of the same server still speaks plain HTTP
    rc, body, err = curl("http://127.0.0.1:%d/" % plain_port(srv))
    assert rc == 0 and body == INDEX_DEFAULT, err


def test_curl_big_file_intact(tremolo, pki):
    """3 MiB over TLS: many records, partial writes, WANT_WRITE."""
    srv = tls_server(tremolo, pki)
    rc, body, err = curl_https(srv, pki, "a.test",
                               url(srv, "a.test", "/big.bin"))
    assert rc == 0, err
    assert len(body) == len(BIG)
    assert hashlib.sha256(body).digest() == hashlib.sha256(BIG).digest()


def test_slow_reader_gets_big_file_intact(tremolo, pki):
    """The client reads slowly through a small receive buffer, so the
    server's TLS writes hit WANT_WRITE again and again and must resume
    with the same record. (The buffer is set before connect: shrinking it
    afterwards makes loopback TCP itself crawl.)"""
    srv = tls_server(tremolo, pki)
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32768)
    raw.settimeout(20)
    raw.connect(("127.0.0.1", srv.port))
    with TLSConn(srv, pki, sock=client_ctx(pki).wrap_socket(
            raw, server_hostname="a.test"), timeout=20) as c:
        c.send(build_request("GET", "/big.bin", {"Host": "a.test"}) +
               build_request("GET", "/hello.txt", {"Host": "a.test"}))
        time.sleep(0.3)                  # let the server fill the socket
        data, n = b"", 0
        while len(data) < len(BIG):
            chunk = c.sock.recv(16384)
            assert chunk, "closed after %d bytes" % len(data)
            data += chunk
            n += 1
            if n % 16 == 0:
                time.sleep(0.005)
        c.buf = data
        r = c.read_response(timeout=20)
        assert r.status == 200 and len(r.body) == len(BIG)
        assert hashlib.sha256(r.body).digest() == \
            hashlib.sha256(BIG).digest()
        # the pipelined second request follows, intact
        assert c.read_response().body == HELLO


def test_curl_keep_alive_reuses_the_connection(tremolo, pki, tmp_path):
    srv = tls_server(tremolo, pki)
    f1, f2 = tmp_path / "one", tmp_path / "two"
    rc, out, err = curl_https(
        srv, pki, "a.test", "-v", "--write-out", "%{num_connects}\n",
        "-o", str(f1), url(srv, "a.test", "/hello.txt"),
        "-o", str(f2), url(srv, "a.test", "/"))
    assert rc == 0, err
    assert f1.read_bytes() == HELLO and f2.read_bytes() == INDEX_A
    assert out.split() == [b"1", b"0"], (out, err)
    assert re.search(r"Re-using existing connection", err), err


def test_pipelined_requests_in_one_record(tremolo, pki):
    """Three requests in one TLS write: the layer holds decrypted bytes
    the socket no longer shows as readable; all three must be answered."""
    srv = tls_server(tremolo, pki)
    with TLSConn(srv, pki) as c:
        req = build_request("GET", "/hello.txt", {"Host": "a.test"})
        c.send(req * 2 + build_request("GET", "/", {"Host": "a.test"}))
        bodies = [c.read_response().body for _ in range(3)]
    assert bodies == [HELLO, HELLO, INDEX_A]


def memory_tls(srv, pki, name="a.test", rcvbuf=None, stall=0.0):
    """A handshaken client whose TLS records we move ourselves, so a test
    decides which records share a TCP segment: (sock, obj, inc, out).
    rcvbuf shrinks the client's receive window; stall waits that long
    after the ClientHello before reading the server's flight."""
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = client_ctx(pki).wrap_bio(inc, out, server_hostname=name)
    sock = socket.socket()
    if rcvbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(5)
    sock.connect(("127.0.0.1", srv.port))
    first = True
    while True:
        try:
            obj.do_handshake()
            break
        except ssl.SSLWantReadError:
            sock.sendall(out.read())
            if first and stall:
                time.sleep(stall)
            first = False
            data = sock.recv(65536)
            assert data, "the server closed during the handshake"
            inc.write(data)
    sock.sendall(out.read())                  # the client's Finished
    return sock, obj, inc, out


def memory_tls_responses(sock, obj, inc, count):
    data = b""
    while len(parse_responses(data)) < count:
        try:
            data += obj.read(65536)
            continue
        except ssl.SSLWantReadError:
            pass
        except ssl.SSLZeroReturnError:
            break
        chunk = sock.recv(65536)
        if not chunk:
            break
        inc.write(chunk)
    return parse_responses(data)


def test_records_sharing_a_segment_are_all_read(tremolo, pki):
    """Three requests in three records sent in one segment: the layer
    reads them in one go and must keep what mbedTLS has not asked for
    yet between reads (the records of a segment are read ahead)."""
    srv = tls_server(tremolo, pki)
    sock, obj, inc, out = memory_tls(srv, pki)
    with sock:
        reqs = [build_request("GET", "/hello.txt", {"Host": "a.test"}),
                build_request("GET", "/", {"Host": "a.test"}),
                build_request("GET", "/hello.txt", {"Host": "a.test",
                                                    "Connection": "close"})]
        for r in reqs:
            obj.write(r)                      # one record each
        sock.sendall(out.read())
        got = memory_tls_responses(sock, obj, inc, 3)
    assert [(r.status, r.body) for r in got] == [
        (200, HELLO), (200, INDEX_A), (200, HELLO)]


def test_certificate_flight_of_a_whole_record(tremolo, pki, tmp_path):
    """A certificate of almost 16 KiB, the most one record holds, to a
    client with a tiny receive window that reads nothing for a second:
    the staged first flight gets through whole. (The socket here always
    takes it; a flight it refuses is tests/unit/plugins/tls/tls_wire.c.)"""
    d = tmp_path / "big"
    d.mkdir()
    for f in ("ca.pem", "ca.key"):
        (d / f).write_bytes(pki.read(f))
    names = ["host-%04d.a.test" % i for i in range(850)] + ["a.test"]
    _issue(d, "big", "a.test", "ca", _leaf_ext(names))
    files = dict(cert_files(pki), **content_files())
    files["certs/big.pem"] = (d / "big.pem").read_bytes()
    files["certs/big.key"] = (d / "big.key").read_bytes()
    assert len(files["certs/big.pem"]) > 21000     # PEM of ~16 KB DER
    srv = tremolo(plugins=PLUGINS, files=files,
                  sites={"a": site("a.test", "htdocs_a", "certs/big.pem",
                                   "certs/big.key", default=True)},
                  plugin_confs={"tls": tls_conf()},
                  listen=["127.0.0.1:{port} tls"])
    sock, obj, inc, out = memory_tls(srv, pki, rcvbuf=1024, stall=1.0)
    with sock:
        assert len(obj.getpeercert(binary_form=True)) > 15500
        obj.write(build_request("GET", "/hello.txt",
                                {"Host": "a.test", "Connection": "close"}))
        sock.sendall(out.read())
        got = memory_tls_responses(sock, obj, inc, 1)
    assert [(r.status, r.body) for r in got] == [(200, HELLO)]


def test_upload_over_tls_reaches_the_node_whole(tremolo, pki):
    """3 MiB in 16 KiB records, read ahead across segment boundaries, must
    reach a node byte for byte."""
    pytest.importorskip("zmq")
    from test_plugin_zmq import Node, wait_for

    endpoint = "tcp://127.0.0.1:%d" % free_port()
    zsite = ("[HOST]\n    ServerName a.test\n    Default on\n"
             "    Handler zmq\n[ZMQ]\n    Node node1\n"
             "[TLS]\n    Certificate certs/a.pem\n    Key certs/a.key\n")
    srv = tremolo(listen=["127.0.0.1:{port} tls"],
                  plugins=("liana", "tls", "zmq"), sites={"default": zsite},
                  plugin_confs={"tls": tls_conf(),
                                "zmq": "[ZMQ]\n    Bind %s\n" % endpoint},
                  files=cert_files(pki))
    node = Node(endpoint, b"node1", lambda node, sid, env: None)
    try:
        srv.wait_log(r'node "node1" is available')
        with tls_socket(srv, pki, "a.test", timeout=20) as s:
            s.sendall(build_request("POST", "/up", {
                "Host": "a.test", "Content-Length": str(len(BIG))}) + BIG)

            def whole():
                return any(b"".join(v) == BIG for v in node.bodies.values())
            assert wait_for(whole, timeout=20), sorted(
                len(b"".join(v)) for v in node.bodies.values())
    finally:
        node.close()


def test_many_concurrent_clients(tremolo, pki):
    srv = tls_server(tremolo, pki, workers=2)
    errors, done = [], []

    def client(i):
        try:
            ctx = client_ctx(pki)
            c = http.client.HTTPSConnection("a.test", srv.port, context=ctx,
                                            timeout=15)
            # connect to 127.0.0.1 while SNI and Host say a.test
            c.sock = ctx.wrap_socket(socket.create_connection(
                ("127.0.0.1", srv.port), timeout=15),
                server_hostname="a.test")
            for path, want in (("/hello.txt", HELLO), ("/", INDEX_A),
                               ("/hello.txt", HELLO)):
                c.request("GET", path)
                r = c.getresponse()
                body = r.read()
                if r.status != 200 or body != want:
                    errors.append((i, path, r.status, body[:60]))
            c.close()
            done.append(i)
        except Exception as e:        # noqa: BLE001 -- reported below
            errors.append((i, repr(e)))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(24)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors[:5]
    assert len(done) == 24
    assert srv.alive()


# ---- protocol, ciphers, ALPN -----------------------------------------------

def test_tls12_with_ecdhe_aead_suite(tremolo, pki):
    srv = tls_server(tremolo, pki)
    with tls_socket(srv, pki, "a.test") as s:
        assert s.version() == "TLSv1.2"
        name = s.cipher()[0]
        assert name.startswith("ECDHE-RSA-"), name
        assert re.search(r"GCM|CHACHA20|CCM", name), name
    with tls_socket(srv, pki, "c.test") as s:       # the ECDSA certificate
        assert peer_cn(s) == "c.test"
        assert s.cipher()[0].startswith("ECDHE-ECDSA-"), s.cipher()
        assert re.search(r"GCM|CHACHA20|CCM", s.cipher()[0]), s.cipher()


@pytest.mark.parametrize("ciphers", [
    "AES128-GCM-SHA256:AES256-GCM-SHA384",          # RSA key exchange
    "DHE-RSA-AES128-GCM-SHA256",                    # finite-field DHE
    "ECDHE-RSA-AES128-SHA:ECDHE-RSA-AES256-SHA",    # CBC, not AEAD
])
def test_non_ecdhe_or_non_aead_suites_refused(tremolo, pki, ciphers):
    srv = tls_server(tremolo, pki)
    ctx = client_ctx(pki, ciphers=ciphers + ":@SECLEVEL=0",
                     maxv=ssl.TLSVersion.TLSv1_2)
    with pytest.raises((ssl.SSLError, ConnectionResetError, OSError)):
        with tls_socket(srv, pki, "a.test", ctx=ctx) as s:
            pytest.fail("handshake succeeded with %s" % (s.cipher(),))
    assert_serves(srv, pki)


def test_server_cipher_preference(tremolo, pki):
    """The same suite is chosen whatever order the client lists them in."""
    srv = tls_server(tremolo, pki)
    suites = ["ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-RSA-AES256-GCM-SHA384",
              "ECDHE-RSA-CHACHA20-POLY1305"]
    chosen = []
    for order in (suites, suites[::-1]):
        ctx = client_ctx(pki, ciphers=":".join(order),
                         maxv=ssl.TLSVersion.TLSv1_2)
        with tls_socket(srv, pki, "a.test", ctx=ctx) as s:
            chosen.append(s.cipher()[0])
    assert chosen[0] == chosen[1], chosen


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_tls11_refused_server_keeps_serving(tremolo, pki):
    srv = tls_server(tremolo, pki)
    tls11 = dict(minimum_version=ssl.TLSVersion.TLSv1,
                 maximum_version=ssl.TLSVersion.TLSv1_1,
                 ciphers="DEFAULT:@SECLEVEL=0")
    # make sure our client really offers TLS 1.1 (else the test is void)
    hello = client_hello(**tls11)
    assert hello[9:11] == b"\x03\x02", hello[:16]
    ctx = client_ctx(pki, ciphers="DEFAULT:@SECLEVEL=0",
                     minv=ssl.TLSVersion.TLSv1, maxv=ssl.TLSVersion.TLSv1_1)
    with pytest.raises((ssl.SSLError, ConnectionResetError, OSError)):
        with tls_socket(srv, pki, "a.test", ctx=ctx) as s:
            pytest.fail("TLS 1.1 handshake succeeded: %s" % s.version())
    rc, out = s_client(srv.port, "-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0",
                       "-servername", "a.test")
    assert "no protocols available" not in out, out
    # (s_client prints the version it tried even when refused)
    assert rc != 0 and "Cipher is (NONE)" in out, out
    assert not re.search(r"New, TLSv1\.[01]", out), out
    assert_serves(srv, pki)


def test_alpn_http11(tremolo, pki):
    srv = tls_server(tremolo, pki)
    rc, out = s_client(srv.port, "-servername", "a.test", "-alpn",
                       "http/1.1", "-CAfile", pki.ca)
    assert "ALPN protocol: http/1.1" in out, out
    assert "Protocol  : TLSv1.2" in out, out
    # h2 preferred by the client: still http/1.1 (the only one offered)
    rc, out = s_client(srv.port, "-servername", "a.test", "-alpn",
                       "h2,http/1.1", "-CAfile", pki.ca)
    assert "ALPN protocol: http/1.1" in out, out
    with tls_socket(srv, pki, "a.test",
                    ctx=client_ctx(pki, alpn=["h2", "http/1.1"])) as s:
        assert s.selected_alpn_protocol() == "http/1.1"


def test_alpn_h2_only_gets_none_or_failure(tremolo, pki):
    srv = tls_server(tremolo, pki)
    rc, out = s_client(srv.port, "-servername", "a.test", "-alpn", "h2",
                       "-CAfile", pki.ca)
    assert "ALPN protocol: h2" not in out, out
    if "New, TLSv1.2" in out:      # the handshake went through
        assert "No ALPN negotiated" in out, out
    try:
        with tls_socket(srv, pki, "a.test",
                        ctx=client_ctx(pki, alpn=["h2"])) as s:
            assert s.selected_alpn_protocol() is None
    except ssl.SSLError:
        pass                       # no_application_protocol alert: fine
    assert_serves(srv, pki)


# ---- SNI --------------------------------------------------------------------

@pytest.mark.parametrize("name, cn, issuer", [
    ("a.test", "a.test", ROOT_CN),
    ("b.test", "b.test", INTER_CN),
    ("www.b.test", "b.test", INTER_CN),      # another ServerName of site b
    ("c.test", "c.test", ROOT_CN),
    ("x.w.test", "*.w.test", ROOT_CN),           # a *.suffix site
    ("default.test", "default.test", ROOT_CN),   # global, via the default site
    ("unknown.test", "default.test", ROOT_CN),   # no site: the default cert
])
def test_sni_picks_certificate_s_client(tremolo, pki, name, cn, issuer):
    srv = tls_server(tremolo, pki)
    rc, out = s_client(srv.port, "-servername", name, "-CAfile", pki.ca)
    assert served_subject(out) == cn, out
    assert re.search(r"^issuer=.*CN\s*=\s*%s" % re.escape(issuer), out,
                     re.M), out
    # the chain (with b.test's intermediate) verifies against the root
    assert "Verify return code: 0 (ok)" in out, out


def test_sni_without_server_name_gets_default(tremolo, pki):
    srv = tls_server(tremolo, pki)
    rc, out = s_client(srv.port, "-noservername", "-CAfile", pki.ca)
    assert served_subject(out) == "default.test", out
    with tls_socket(srv, pki, None) as s:
        assert peer_cn(s) == "default.test"


def test_sni_and_host_each_site_its_own_cert_and_content(tremolo, pki):
    srv = tls_server(tremolo, pki)
    for name, body in (("a.test", INDEX_A), ("b.test", INDEX_B),
                       ("c.test", INDEX_C)):
        rc, out, err = curl_https(srv, pki, name, "-v", url(srv, name))
        assert rc == 0, err              # curl verified the name too
        assert out == body
        assert re.search(r"subject: CN=%s" % re.escape(name), err), err
    # the intermediate is sent: curl trusts only the root
    rc, out, err = curl_https(srv, pki, "www.b.test", url(srv, "www.b.test"))
    assert rc == 0 and out == INDEX_B, err


def test_unknown_name_gets_the_default_sites_certificate(tremolo, pki):
    """When the listener's default site has a certificate, a name no site
    matches gets it; a client sending no name gets tls.conf's."""
    sites = sites_abc()
    sites["default"] = site("127.0.0.1 localhost", "htdocs", "certs/c.pem",
                            "certs/c.key", default=True)
    srv = tls_server(tremolo, pki, sites=sites)
    rc, out = s_client(srv.port, "-servername", "unknown.test",
                       "-CAfile", pki.ca)
    assert served_subject(out) == "c.test", out
    rc, out = s_client(srv.port, "-noservername", "-CAfile", pki.ca)
    assert served_subject(out) == "default.test", out
    rc, out = s_client(srv.port, "-servername", "a.test", "-CAfile", pki.ca)
    assert served_subject(out) == "a.test", out


def test_sni_is_case_insensitive(tremolo, pki):
    """DNS names compare without case (RFC 4343)."""
    srv = tls_server(tremolo, pki)
    rc, out = s_client(srv.port, "-servername", "A.Test", "-CAfile", pki.ca)
    assert served_subject(out) == "a.test", out


def test_site_certificate_without_global_certificate(tremolo, pki):
    """Only sites have certificates: the server starts and serves them."""
    srv = tls_server(tremolo, pki, tls="[TLS]\n    HandshakeTimeout 5s\n")
    assert https_get(srv, pki, "/hello.txt") == (200, HELLO)
    assert https_get(srv, pki, "/", "b.test") == (200, INDEX_B)


# ---- hostile and confused clients -------------------------------------------

def test_plain_http_to_tls_port_is_closed(tremolo, pki):
    srv = tls_server(tremolo, pki)
    data, closed, took = raw_exchange(srv.port, GET)
    assert closed, (data, took)
    assert looks_like_tls_alert_or_nothing(data), data[:100]
    assert b"HTTP/" not in data
    assert_serves(srv, pki)


def test_tls_client_hello_to_plain_port(tremolo, pki):
    srv = tls_server(tremolo, pki)
    data, closed, took = raw_exchange(plain_port(srv), client_hello())
    assert closed or re.match(rb"HTTP/1\.[01] 400 ", data), (data, took)
    if data:
        assert re.match(rb"HTTP/1\.[01] 400 ", data), data[:100]
    rc, out = s_client(plain_port(srv), "-servername", "a.test")
    assert rc != 0, out
    assert_serves(srv, pki)


@pytest.mark.parametrize("junk", [
    b"\x00\xff" * 200 + b"garbage\r\n\r\n",           # not a TLS record
    b"\x16\x03\x01\xff\xff" + b"\x01" * 200,          # record > 16 KiB + 2048
    b"\x17\x03\x03\x00\x10" + b"\x00" * 16,           # app data before hello
    b"\x16\x03\x03\x00\x04\x01\x00\x00\x00",          # empty ClientHello body
    b"\x16\x03\x01\x00\x00",                          # zero-length record
], ids=["garbage", "oversized", "appdata", "empty-hello", "empty-record"])
def test_junk_to_tls_port_is_closed(tremolo, pki, junk):
    """Default HandshakeTimeout (10s): the close must come from the junk."""
    srv = tls_server(tremolo, pki)
    data, closed, took = raw_exchange(srv.port, junk, timeout=5)
    assert closed, (data, took)
    assert looks_like_tls_alert_or_nothing(data), data[:100]
    assert_serves(srv, pki)


def test_truncated_client_hello_then_eof_is_closed(tremolo, pki):
    srv = tls_server(tremolo, pki)
    hello = client_hello()
    for cut in (3, len(hello) // 2, len(hello) - 1):
        data, closed, took = raw_exchange(srv.port, hello[:cut],
                                          shut_wr=True, timeout=5)
        assert closed and took < 4, (cut, data, took)
        assert looks_like_tls_alert_or_nothing(data), data[:100]
    assert_serves(srv, pki)


def test_client_leaving_mid_handshake(tremolo, pki):
    """Clients that vanish right after their hello, many times."""
    srv = tls_server(tremolo, pki)
    hello = client_hello()
    for _ in range(50):
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
        s.sendall(hello)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                     b"\x01\x00\x00\x00\x00\x00\x00\x00")   # RST on close
        s.close()
    assert_serves(srv, pki)


# ---- the handshake timeout --------------------------------------------------

def test_silent_client_closed_after_handshake_timeout(tremolo, pki):
    """Nothing sent at all. The kernel holds such a client for HeaderTimeout
    (TCP_DEFER_ACCEPT: no server memory spent on it), then the handshake
    timer runs: both short here, so it is gone within seconds."""
    srv = tls_server(tremolo, pki, tls=tls_conf("HandshakeTimeout 1s"),
                     server="HeaderTimeout 1s")
    data, closed, took = raw_exchange(srv.port, b"", timeout=8)
    assert closed, took
    assert 0.5 <= took <= 4, took
    assert looks_like_tls_alert_or_nothing(data), data[:100]
    assert_serves(srv, pki)


def test_stalled_handshake_closed_after_handshake_timeout(tremolo, pki):
    """Half a ClientHello then silence: the timeout covers the whole
    handshake, not only the first byte."""
    srv = tls_server(tremolo, pki, tls=tls_conf("HandshakeTimeout 1s"))
    hello = client_hello()
    data, closed, took = raw_exchange(srv.port, hello[:len(hello) // 2],
                                      timeout=8)
    assert closed, took
    assert 0.5 <= took <= 4, took
    assert_serves(srv, pki)


def test_handshake_timeout_ends_with_the_handshake(tremolo, pki):
    """A finished handshake is not cut by HandshakeTimeout: the request
    comes 2 s later and is answered (KeepAliveTimeout is 5 s)."""
    srv = tls_server(tremolo, pki, tls=tls_conf("HandshakeTimeout 1s"))
    with TLSConn(srv, pki, timeout=8) as c:
        time.sleep(2.0)
        r = c.request("GET", "/hello.txt", {"Host": "a.test"})
        assert (r.status, r.body) == (200, HELLO)


def test_header_timeout_still_applies_after_handshake(tremolo, pki):
    """HeaderTimeout 1s bounds the request head on a TLS connection too:
    the (longer, default 10s) handshake timeout must not replace it."""
    srv = tls_server(tremolo, pki, server="HeaderTimeout 1s")
    with TLSConn(srv, pki, timeout=8) as c:
        c.send(b"GET /hello.txt HTTP/1.1\r\nHost: a.test\r\n")
        t0 = time.monotonic()
        assert c.closed_by_peer(timeout=8)
        assert time.monotonic() - t0 <= 4


# ---- start-up errors --------------------------------------------------------

def check_tls(check_config, pki, tls=None, sites=None, files=None,
              server=TWO_LISTENERS, plugins=PLUGINS):
    f = dict(cert_files(pki), **content_files())
    f.update(files or {})
    return check_config(server=server, plugins=plugins,
                        sites=sites or sites_abc(),
                        plugin_confs={} if tls is None else {"tls": tls},
                        files=f)


def test_good_config_passes_check(check_config, pki):
    rc, out = check_tls(check_config, pki, tls=tls_conf())
    assert rc == 0, out


@pytest.mark.parametrize("tls, pattern", [
    (tls_conf(cert="certs/missing.pem"),
     r"tls\.conf:2: Certificate: .*missing\.pem"),
    (tls_conf(key="certs/missing.key"),
     r"tls\.conf:3: Key: .*missing\.key"),
    (tls_conf(cert="certs/junk.pem"),            # not PEM at all
     r"tls\.conf:2: Certificate: .*junk\.pem"),
    (tls_conf(key="certs/junk.pem"),
     r"tls\.conf:3: Key: .*junk\.pem"),
    (tls_conf(cert="certs"),                     # a directory: unreadable
     r"tls\.conf:2: Certificate: .*certs"),
    (tls_conf(key="certs/default.pem"),          # a certificate, not a key
     r"tls\.conf:3: Key: .*default\.pem"),
    (tls_conf(key="certs/a.key"),                # the wrong key
     r"(?i)tls\.conf:(2: Certificate|3: Key): .*match"),
    (tls_conf("HandshakeTimeout soon"),
     r"tls\.conf:4: HandshakeTimeout: "),
], ids=["missing-cert", "missing-key", "junk-cert", "junk-key", "dir-cert",
        "cert-as-key", "mismatch", "bad-timeout"])
def test_global_certificate_errors(check_config, pki, tls, pattern):
    rc, out = check_tls(check_config, pki, tls=tls,
                        files={"certs/junk.pem": b"not a certificate\n"})
    assert rc != 0, out
    assert re.search(pattern, out), out


def _site_line(text, key):
    """The line number of `key` in the [TLS] section of a site file."""
    lines = text.splitlines()
    start = lines.index("[TLS]")
    for i, ln in enumerate(lines[start:], start + 1):
        if ln.split() and ln.split()[0] == key:
            return i
    raise AssertionError("no %s in %r" % (key, text))


@pytest.mark.parametrize("cert, key, bad", [
    ("certs/nope.pem", "certs/a.key", "Certificate"),
    ("certs/a.pem", "certs/nope.key", "Key"),
    ("certs/a.pem", "certs/b.key", None),          # key of another cert
], ids=["missing-cert", "missing-key", "mismatch"])
def test_site_certificate_errors(check_config, pki, cert, key, bad):
    sites = sites_abc()
    sites["a"] = site("a.test", "htdocs_a", cert, key)
    rc, out = check_tls(check_config, pki, tls=tls_conf(), sites=sites)
    assert rc != 0, out
    if bad:
        line = _site_line(sites["a"], bad)
        assert re.search(r"a\.conf:%d: %s: .*nope" % (line, bad), out), out
    else:
        assert re.search(r"(?i)a\.conf:\d+: (Certificate|Key): .*match",
                         out), out


def test_site_certificate_without_key_refused(check_config, pki):
    sites = sites_abc()
    sites["a"] = site("a.test", "htdocs_a", cert="certs/a.pem")
    rc, out = check_tls(check_config, pki, tls=tls_conf(), sites=sites)
    assert rc != 0, out
    assert re.search(r"a\.conf:\d+: .*Key", out), out


@pytest.mark.parametrize("tls", [None, "[TLS]\n    HandshakeTimeout 5s\n"],
                         ids=["no-tls-conf", "no-certificate"])
def test_tls_listener_without_any_certificate(check_config, pki, tls):
    sites = {"default": site("127.0.0.1 localhost", "htdocs", default=True)}
    rc, out = check_tls(check_config, pki, tls=tls, sites=sites)
    assert rc != 0, out
    # names the file (and line) to fix: tls.conf, or the tls Listen line
    assert re.search(r"(?i)\S+\.conf(:\d+)?: .*certificate", out), out


def test_tls_listener_needs_the_plugin(check_config, pki):
    rc, out = check_tls(check_config, pki, tls=tls_conf(), plugins=("liana",))
    assert rc != 0
    assert 'network layer "tls" is not a loaded network plugin' in out, out


def test_bad_certificate_stops_start(tremolo, pki):
    srv = tls_server(tremolo, pki, tls=tls_conf(key="certs/missing.key"),
                     start=False)
    rc, out = start_fails(srv)
    assert rc != 0
    assert re.search(r"tls\.conf:3: Key: .*missing\.key", out), out
    assert not srv.alive()


# ---- through the zmq gateway ------------------------------------------------

def test_zmq_gateway_marks_https(tremolo, pki):
    pytest.importorskip("zmq")
    from test_plugin_zmq import Node, hello, wait_for

    endpoint = "tcp://127.0.0.1:%d" % free_port()
    seen = []

    def app(node, sid, env):
        seen.append(env)
        hello(node, sid, env)

    zsite = ("[HOST]\n    ServerName 127.0.0.1 localhost a.test\n"
             "    Default on\n    Handler zmq\n[ZMQ]\n    Node node1\n"
             "[TLS]\n    Certificate certs/a.pem\n    Key certs/a.key\n")
    srv = tremolo(server="Listen 127.0.0.1:{port}\n"
                         "Listen 127.0.0.1:{port2} tls",
                  plugins=("liana", "tls", "zmq"), sites={"default": zsite},
                  plugin_confs={"tls": tls_conf(),
                                "zmq": "[ZMQ]\n    Bind %s\n"
                                       "    PingFreq 500ms\n" % endpoint},
                  files=cert_files(pki))
    node = Node(endpoint, b"node1", app)
    try:
        assert wait_for(lambda: srv.http("GET", "/")[0] == 200, timeout=8)
        seen.clear()
        status, _, body = srv.http("GET", "/plain?x=1",
                                   headers={"Host": "a.test"})
        assert (status, body) == (200, b"hello from node1")
        plain = seen[-1]
        assert b"HTTPS" not in plain, plain
        assert plain.get(b"UWSGI_SCHEME", b"http") == b"http", plain

        tls_port = srv.ports["port2"]
        ctx = client_ctx(pki)
        raw = socket.create_connection(("127.0.0.1", tls_port), timeout=5)
        with ctx.wrap_socket(raw, server_hostname="a.test") as s:
            s.sendall(build_request("GET", "/secure?y=2",
                                    {"Host": "a.test",
                                     "Connection": "close"}))
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        r = parse_responses(data)
        assert r and r[0].status == 200 and r[0].body == b"hello from node1"
        secure = seen[-1]
        assert secure[b"PATH_INFO"] == b"/secure"
        assert secure.get(b"HTTPS") == b"on", secure
        assert secure.get(b"UWSGI_SCHEME") == b"https", secure
        assert secure[b"SERVER_PORT"] == str(tls_port).encode(), secure
    finally:
        node.close()


# ---- resumption and reload --------------------------------------------------

def test_session_ticket_resumes_on_any_worker(tremolo, pki, tmp_path):
    """A ticket issued by one worker resumes on the others (the ticket keys
    belong to the generation); with TicketLifetime 0 nothing resumes."""
    srv = tls_server(tremolo, pki, workers=2)
    sess = str(tmp_path / "sess")
    rc, out = s_client(srv.port, "-servername", "a.test", "-sess_out", sess)
    assert rc == 0 and "New, TLSv1.2" in out, out
    reused = 0
    for _ in range(6):                 # reuseport spreads them over workers
        rc, out = s_client(srv.port, "-servername", "a.test", "-sess_in", sess)
        reused += "Reused, TLSv1.2" in out
    assert reused == 6
    srv.stop()
    off = tls_server(tremolo, pki, tls=tls_conf("TicketLifetime 0"))
    rc, out = s_client(off.port, "-sess_out", sess)
    rc, out = s_client(off.port, "-sess_in", sess)
    assert "New, TLSv1.2" in out and "Reused" not in out, out


def test_sighup_reloads_certificates(tremolo, pki):
    """New connections get the new certificate; a connection established
    before the reload, its request half sent, is answered on the old
    generation."""
    srv = tls_server(tremolo, pki)
    ctx = ssl.create_default_context(cafile=pki.ca)
    old = ctx.wrap_socket(socket.create_connection(("127.0.0.1", srv.port),
                                                   timeout=10),
                          server_hostname="a.test")
    old.sendall(b"GET /hello.txt HTTP/1.1\r\nHost: a.test\r\n")
    assert served_subject(s_client(srv.port, "-servername", "a.test")[1]) == \
        "a.test"
    srv.write("sites/a.conf", site("a.test", "htdocs_a", "certs/b.pem",
                                   "certs/b.key"))
    srv.reload()
    assert served_subject(s_client(srv.port, "-servername", "a.test")[1]) == \
        "b.test"
    old.sendall(b"Connection: close\r\n\r\n")
    data = b""
    while True:
        chunk = old.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and body == HELLO
    assert old.getpeercert()["subject"] == ((("commonName", "a.test"),),)
    old.close()
