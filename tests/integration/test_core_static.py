"""Static files: GET/HEAD, types, validators, Range, 304, 301, 404,
no escape from DocumentRoot, virtual hosts. Real clients: curl and raw
sockets."""

import email.utils
import hashlib
import os
import re
import subprocess
import time

import pytest

from tremolo_harness import DEFAULT_SITE, parse_responses, src_dir

HELLO = b"hello, tremolo\n"
SECRET = b"TOP-SECRET-outside-the-document-root\n"
BIN = bytes(range(256)) * 800                      # 204800 bytes
BIG = hashlib.sha256(b"seed").digest() * (4 * 1024 * 1024 // 32)  # 4 MiB

FILES = {
    "htdocs/index.html": b"<html>root index</html>\n",
    "htdocs/hello.txt": HELLO,
    "htdocs/style.css": b"body { color: red }\n",
    "htdocs/data.json": b'{"a": 1}\n',
    "htdocs/logo.png": b"\x89PNG\r\n\x1a\n" + bytes(100),
    "htdocs/data.bin": BIN,
    "htdocs/big.bin": BIG,
    "htdocs/with space.txt": b"spaced\n",
    "htdocs/sub/index.html": b"<html>sub index</html>\n",
    "htdocs/sub/page.txt": b"sub page\n",
    "htdocs/noindex/readme.txt": b"no index here\n",
    "htdocs/odd dir\\x/index.html": b"<html>odd index</html>\n",
    "secret.txt": SECRET,
}


def mime_type(ext):
    """The type conf/mime.types gives an extension (what the server must
    send), so the test does not hard-code the table."""
    for line in (src_dir() / "conf" / "mime.types").read_text().splitlines():
        f = line.split()
        if f and not f[0].startswith("#") and ext in f[1:]:
            return f[0]
    raise AssertionError("no type for %s" % ext)


def ctype(headers):
    return headers.get("content-type", "").split(";")[0].strip()


@pytest.fixture
def srv(tremolo):
    return tremolo(files=FILES)


def curl(*args):
    p = subprocess.run(["curl", "-sS", "--max-time", "20"] + list(args),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=30)
    return p.returncode, p.stdout, p.stderr.decode(errors="replace")


def curl_head_and_body(url, *args):
    """(status, headers, body) using curl -D."""
    import tempfile
    with tempfile.NamedTemporaryFile() as hf:
        rc, body, err = curl("-D", hf.name, *args, url)
        assert rc == 0, err
        raw = open(hf.name, "rb").read().decode("latin-1")
    blocks = [b for b in raw.split("\r\n\r\n") if b.strip()]
    lines = blocks[-1].split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for ln in lines[1:]:
        k, _, v = ln.partition(":")
        headers[k.strip().lower()] = v.strip()
    return status, headers, body


# ---- GET / HEAD ------------------------------------------------------------

def test_index_served_for_root(srv):
    status, h, body = srv.http("GET", "/")
    assert status == 200
    assert body == FILES["htdocs/index.html"]
    assert ctype(h) == mime_type("html")
    assert int(h["content-length"]) == len(body)


@pytest.mark.parametrize("path,ext", [("/hello.txt", "txt"),
                                      ("/style.css", "css"),
                                      ("/data.json", "json"),
                                      ("/logo.png", "png")])
def test_content_type_from_mime_types(srv, path, ext):
    status, h, body = srv.http("GET", path)
    assert status == 200
    assert body == FILES["htdocs" + path]
    assert ctype(h) == mime_type(ext)
    assert int(h["content-length"]) == len(body)


def test_binary_file_exact_bytes(srv):
    status, h, body = srv.http("GET", "/data.bin")
    assert status == 200
    assert body == BIN
    assert int(h["content-length"]) == len(BIN)


def test_last_modified_and_etag(srv):
    path = srv.conf_dir / "htdocs" / "hello.txt"
    os.utime(path, (1700000000, 1700000000))
    status, h, _ = srv.http("GET", "/hello.txt")
    assert status == 200
    assert h["last-modified"] == email.utils.formatdate(1700000000,
                                                        usegmt=True)
    assert re.fullmatch(r'(W/)?"[^"]+"', h["etag"]), h["etag"]
    # Stable while the file is unchanged, different once it changes.
    assert srv.http("GET", "/hello.txt")[1]["etag"] == h["etag"]
    path.write_bytes(b"changed content, longer than before\n")
    os.utime(path, (1700000100, 1700000100))
    # A file cache may revalidate about once a second: allow a short delay.
    deadline = time.monotonic() + 3
    while True:
        status, h2, body = srv.http("GET", "/hello.txt")
        if body != HELLO or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert body == b"changed content, longer than before\n"
    assert h2["etag"] != h["etag"]
    assert h2["last-modified"] == email.utils.formatdate(1700000100,
                                                         usegmt=True)


def test_head_same_headers_no_body(srv):
    _, hg, _ = srv.http("GET", "/data.bin")
    data, closed = srv.raw(b"HEAD /data.bin HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                           b"Connection: close\r\n\r\n")
    assert closed
    head, sep, rest = data.partition(b"\r\n\r\n")
    assert sep and rest == b"", "HEAD response carried %d body bytes" % len(rest)
    assert head.startswith(b"HTTP/1.1 200")
    r = parse_responses(data, head_methods=(0,))[0]
    assert r.headers["content-length"] == hg["content-length"]
    assert r.headers["content-type"] == hg["content-type"]
    assert r.headers["etag"] == hg["etag"]


def test_query_string_ignored_for_files(srv):
    status, _, body = srv.http("GET", "/hello.txt?v=3&x=y")
    assert status == 200 and body == HELLO


def test_percent_encoded_name(srv):
    status, _, body = srv.http("GET", "/with%20space.txt")
    assert status == 200 and body == b"spaced\n"
    status, _, body = srv.http("GET", "/hello%2Etxt")
    assert status == 200 and body == HELLO


def test_missing_file_404(srv):
    status, _, _ = srv.http("GET", "/nope.html")
    assert status == 404
    status, _, _ = srv.http("GET", "/sub/nope/deeper.txt")
    assert status == 404


def test_directory_redirect_and_index(srv):
    status, h, _ = srv.http("GET", "/sub")
    assert status == 301
    assert h["location"].endswith("/sub/"), h["location"]
    status, _, body = srv.http("GET", "/sub/")
    assert status == 200 and body == FILES["htdocs/sub/index.html"]


def test_directory_redirect_keeps_query(srv):
    status, h, _ = srv.http("GET", "/sub?a=1")
    assert status == 301
    assert re.search(r"/sub/(\?a=1)?$", h["location"]), h["location"]


def raw_get(srv, target):
    data = srv.request(("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                        "Connection: close\r\n\r\n" % target).encode())
    return parse_responses(data)[0]


@pytest.mark.parametrize("target", [
    "/sub",
    "/\\evil.example/../sub",
    "//evil.example/..//sub",
    "/%5Cevil.example/../sub",
    "/%5cevil.example/%2e%2e/sub",
    "/\\/evil.example/../../sub",
])
def test_directory_redirect_stays_on_site(srv, target):
    # built from the normalised path: never "//host" or "/\\host", which
    # browsers follow to another site
    r = raw_get(srv, target)
    loc = r.headers["location"]
    assert r.status == 301 and not loc.startswith(("//", "/\\")), loc
    assert loc == "/sub/"
    status, _, body = srv.get(loc)
    assert status == 200 and body == FILES["htdocs/sub/index.html"]


def test_directory_redirect_escapes_odd_names(srv):
    for target in ("/odd%20dir%5Cx", "/odd%20dir\\x"):
        r = raw_get(srv, target)
        assert (r.status, r.headers["location"]) == (301, "/odd%20dir%5Cx/")
    status, _, body = srv.get("/odd%20dir%5Cx/")
    assert status == 200 and body == FILES["htdocs/odd dir\\x/index.html"]


def test_directory_without_index_is_not_listed(srv):
    status, _, body = srv.http("GET", "/noindex/")
    assert status in (403, 404)
    assert b"readme.txt" not in body


# ---- Range -------------------------------------------------------------------

def test_range_single(srv):
    status, h, body = srv.http("GET", "/data.bin", {"Range": "bytes=0-4"})
    assert status == 206
    assert body == BIN[0:5]
    assert h["content-range"] == "bytes 0-4/%d" % len(BIN)
    assert int(h["content-length"]) == 5


def test_range_middle_open_and_suffix(srv):
    n = len(BIN)
    status, h, body = srv.http("GET", "/data.bin", {"Range": "bytes=1000-1999"})
    assert status == 206 and body == BIN[1000:2000]
    status, h, body = srv.http("GET", "/data.bin", {"Range": "bytes=%d-" % (n - 10)})
    assert status == 206 and body == BIN[-10:]
    assert h["content-range"] == "bytes %d-%d/%d" % (n - 10, n - 1, n)
    status, h, body = srv.http("GET", "/data.bin", {"Range": "bytes=-7"})
    assert status == 206 and body == BIN[-7:]
    assert h["content-range"] == "bytes %d-%d/%d" % (n - 7, n - 1, n)


def test_range_end_past_size_is_clipped(srv):
    n = len(BIN)
    status, h, body = srv.http("GET", "/data.bin",
                               {"Range": "bytes=%d-%d" % (n - 3, n + 5000)})
    assert status == 206 and body == BIN[-3:]
    assert h["content-range"] == "bytes %d-%d/%d" % (n - 3, n - 1, n)


def test_range_unsatisfiable_416(srv):
    n = len(BIN)
    status, h, _ = srv.http("GET", "/data.bin", {"Range": "bytes=%d-" % n})
    assert status == 416
    assert h["content-range"] == "bytes */%d" % n


def test_multi_range_gets_full_200(srv):
    status, h, body = srv.http("GET", "/data.bin",
                               {"Range": "bytes=0-1,5-6"})
    assert status == 200 and body == BIN


def test_range_with_head(srv):
    r = parse_responses(srv.request(
        b"HEAD /data.bin HTTP/1.1\r\nHost: x\r\nRange: bytes=0-9\r\n"
        b"Connection: close\r\n\r\n"), head_methods=(0,))[0]
    assert r.status == 206 and r.headers["content-length"] == "10"


# ---- conditional requests ----------------------------------------------------

def test_if_modified_since(srv):
    _, h, _ = srv.http("GET", "/hello.txt")
    lm = h["last-modified"]
    status, h2, body = srv.http("GET", "/hello.txt",
                                {"If-Modified-Since": lm})
    assert status == 304 and body == b""
    old = email.utils.formatdate(1000000000, usegmt=True)
    status, _, body = srv.http("GET", "/hello.txt",
                               {"If-Modified-Since": old})
    assert status == 200 and body == HELLO


def test_if_none_match(srv):
    _, h, _ = srv.http("GET", "/hello.txt")
    etag = h["etag"]
    status, h2, body = srv.http("GET", "/hello.txt", {"If-None-Match": etag})
    assert status == 304 and body == b""
    assert h2.get("etag") == etag
    status, _, body = srv.http("GET", "/hello.txt",
                               {"If-None-Match": '"not-the-etag"'})
    assert status == 200 and body == HELLO
    status, _, _ = srv.http("GET", "/hello.txt",
                            {"If-None-Match": '"zzz", %s' % etag})
    assert status == 304


def test_304_then_keepalive_continues(srv):
    _, h, _ = srv.http("GET", "/hello.txt")
    with srv.connect() as c:
        r = c.request("GET", "/hello.txt", {"If-None-Match": h["etag"]})
        assert r.status == 304 and r.body == b""
        r = c.request("GET", "/hello.txt")
        assert r.status == 200 and r.body == HELLO


# ---- no escape from the document root ----------------------------------------

@pytest.mark.parametrize("path", [
    "/../secret.txt",
    "/sub/../../secret.txt",
    "/%2e%2e/secret.txt",
    "/%2E%2E/secret.txt",
    "/sub/%2e%2e/%2e%2e/secret.txt",
    "/%2e%2e%2fsecret.txt",
    "/..%2fsecret.txt",
    "/sub/..%2f..%2fsecret.txt",
    "/%252e%252e/secret.txt",
    "/./../secret.txt",
    "//../secret.txt",
])
def test_traversal_refused(srv, path):
    data = srv.request(("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                        "Connection: close\r\n\r\n" % path).encode())
    assert SECRET not in data
    assert re.match(rb"HTTP/1\.[01] (400|403|404) ", data), data[:200]


def test_symlink_out_of_root_refused(srv):
    htdocs = srv.conf_dir / "htdocs"
    os.symlink(srv.conf_dir / "secret.txt", htdocs / "escape.txt")
    os.symlink(srv.conf_dir, htdocs / "escdir")
    for path in ("/escape.txt", "/escdir/secret.txt"):
        status, _, body = srv.http("GET", path)
        assert status in (403, 404), (path, status)
        assert SECRET not in body


def test_nul_byte_in_path_refused(srv):
    data = srv.request(b"GET /hello.txt%00.png HTTP/1.1\r\nHost: x\r\n"
                       b"Connection: close\r\n\r\n")
    assert re.match(rb"HTTP/1\.[01] (400|403|404) ", data), data[:200]


# ---- curl, as a real client --------------------------------------------------

def test_curl_get_big_file(srv):
    status, h, body = curl_head_and_body(srv.url + "/big.bin")
    assert status == 200
    assert len(body) == len(BIG) and body == BIG


def test_curl_head(srv):
    rc, out, err = curl("-I", srv.url + "/hello.txt")
    assert rc == 0, err
    assert out.startswith(b"HTTP/1.1 200")
    assert b"\r\ncontent-length: %d\r\n" % len(HELLO) in out.lower()


def test_curl_range(srv):
    status, h, body = curl_head_and_body(srv.url + "/big.bin",
                                         "-r", "100-199")
    assert status == 206 and body == BIG[100:200]


def test_curl_304(srv):
    status, h, _ = curl_head_and_body(srv.url + "/hello.txt")
    status, _, body = curl_head_and_body(
        srv.url + "/hello.txt", "-H", "If-None-Match: " + h["etag"])
    assert status == 304 and body == b""
    status, _, body = curl_head_and_body(
        srv.url + "/hello.txt", "-H", "If-Modified-Since: " + h["last-modified"])
    assert status == 304 and body == b""


def test_curl_404_and_301(srv):
    status, _, _ = curl_head_and_body(srv.url + "/missing")
    assert status == 404
    status, h, _ = curl_head_and_body(srv.url + "/sub")
    assert status == 301 and h["location"].endswith("/sub/")
    # Following the redirect lands on the index.
    rc, body, err = curl("-L", srv.url + "/sub")
    assert rc == 0 and body == FILES["htdocs/sub/index.html"], err


# ---- virtual hosts ------------------------------------------------------------

def test_virtual_hosts(tremolo):
    sites = {
        "default": DEFAULT_SITE,
        "a": "[HOST]\n    ServerName a.test www.a.test\n"
             "    DocumentRoot site_a\n    Handler static\n",
        "wild": "[HOST]\n    ServerName *.wild.test\n"
                "    DocumentRoot site_w\n    Handler static\n",
    }
    files = {"htdocs/index.html": b"default\n",
             "site_a/index.html": b"site a\n",
             "site_w/index.html": b"wildcard\n"}
    srv = tremolo(sites=sites, files=files)
    cases = [("a.test", b"site a\n"), ("www.a.test", b"site a\n"),
             ("A.TEST", b"site a\n"), ("a.test:%d" % srv.port, b"site a\n"),
             ("x.wild.test", b"wildcard\n"), ("y.z.wild.test", b"wildcard\n"),
             ("unknown.test", b"default\n"), ("127.0.0.1", b"default\n")]
    for host, want in cases:
        status, _, body = srv.http("GET", "/", {"Host": host})
        assert (status, body) == (200, want), host


def test_custom_error_page(tremolo):
    site = ("[HOST]\n    ServerName 127.0.0.1 localhost\n    Default on\n"
            "    DocumentRoot htdocs\n    ErrorPage 404 /errors/404.html\n")
    page = b"<h1>nothing here, sorry</h1>\n"
    srv = tremolo(sites={"default": site},
                  files={"htdocs/index.html": b"x", "htdocs/errors/404.html": page})
    status, headers, body = srv.http("GET", "/missing")
    assert status == 404 and body == page
    assert headers["content-type"].startswith("text/html")
    # statuses without an ErrorPage keep the built-in body
    status, _, body = srv.http("DELETE", "/index.html")
    assert status == 405 and b"405 Method Not Allowed" in body


def test_error_page_file_must_exist(check_config):
    site = ("[HOST]\n    ServerName a\n    DocumentRoot htdocs\n"
            "    ErrorPage 404 /nope.html\n")
    rc, out = check_config(sites={"a": site})
    assert rc == 1 and "a.conf:4: ErrorPage:" in out, out
