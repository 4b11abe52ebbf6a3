"""What a client gets from a node through the zmq gateway, against real pyzmq
nodes (issue 10, points 3, 5 and 6):

* every response after which the server closes says `Connection: close`
  (KeepAliveMaxRequests, the client's own close, HTTP/1.0, a graceful stop,
  a refused upgrade, a body that only the close ends), whatever the node's
  head said, and a node's own `Connection: close` closes;
* a node's bytes past the end its own head announced never reach the
  client (Content-Length, chunked coding, `chunk` against a Content-Length,
  a head sent through `body`), so a node cannot forge the answer to the
  client's next request;
* nodes get in PATH_INFO the decoded, normalised path that every access
  rule (locations, auth) decided on, and the raw target in REQUEST_URI."""

import signal

import pytest

from plugin_util import tremolo_passwd, wait_for
from test_plugin_zmq import Node
from tremolo_harness import build_request, free_port, parse_responses

SITE = ("[HOST]\n    ServerName 127.0.0.1 localhost\n    Default on\n"
        "    DocumentRoot htdocs\n    Handler zmq\n"
        "[LOCATION /static]\n    Handler static\n"
        "[ZMQ]\n    Node node1\n")
FILES = {"htdocs/static/f.txt": b"a static file\n"}
AUTH = ("[AUTH]\n    Location /private\n    Realm Staff\n"
        "    Users private.users\n")
ALICE = {"Authorization": "Basic YWxpY2U6czNjcmV0"}        # alice:s3cret
EVIL = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nevil"
CHUNKED = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"


def cl_head(n, extra=b""):
    return b"HTTP/1.1 200 OK\r\n%sContent-Length: %d\r\n\r\n" % (extra, n)


def ok(body, extra=b""):
    return [(b"headers", cl_head(len(body), extra)), (b"body", body)]


def answering(fn):
    """A node app: fn(env) gives the (type, body) messages of the answer."""
    def app(node, sid, env):
        for typ, body in fn(env):
            node.send(sid, typ, body)
    return app


def echo_path(env):
    return ok(env[b"PATH_INFO"] + b" " + env[b"REQUEST_URI"])


@pytest.fixture
def zgw(tremolo):
    """zgw(app, server="", site_extra="", plugins=(), users=False) -> a
    started server whose site sends everything but /static to node1 (a
    pyzmq DEALER running `app`, as srv.node), with [AUTH] users if asked."""
    nodes = []

    def start(app, server="", site_extra="", plugins=(), users=False):
        endpoint = "tcp://127.0.0.1:%d" % free_port()
        srv = tremolo(plugins=("liana", "zmq") + tuple(plugins),
                      sites={"default": SITE + site_extra}, files=FILES,
                      plugin_confs={"zmq": "[ZMQ]\n    Bind %s\n"
                                           "    PingFreq 500ms\n" % endpoint},
                      server=server, start=False)
        if users:
            rc, err = tremolo_passwd("-c", srv.conf_dir / "private.users",
                                     "alice", password="s3cret")
            assert rc == 0, err
        srv.start()
        srv.node = Node(endpoint, b"node1", app)
        nodes.append(srv.node)
        srv.wait_log(r'node "node1" is available')
        return srv

    yield start
    for n in nodes:
        n.close()


def connection_fields(r):
    return [v.lower() for k, v in r.header_list if k == "connection"]


# ---- point 3: the last response says Connection: close ------------------------

@pytest.mark.parametrize("last", ["/node", "/static/f.txt"])
def test_last_keepalive_response_says_close(zgw, last):
    srv = zgw(answering(lambda env: ok(b"from the node")),
              server="KeepAliveMaxRequests 3")
    with srv.connect() as c:
        for path in ("/one", "/two"):
            r = c.request("GET", path)
            assert r.body == b"from the node" and not connection_fields(r)
        r = c.request("GET", last)
        assert r.status == 200 and connection_fields(r) == ["close"], \
            r.raw_head
        assert c.closed_by_peer(3)


def test_node_keepalive_head_becomes_close(zgw):
    srv = zgw(answering(lambda env: ok(b"x", b"Connection: keep-alive\r\n"
                                       b"Keep-Alive: timeout=5\r\n")),
              server="KeepAliveMaxRequests 2")
    with srv.connect() as c:
        assert connection_fields(c.request("GET", "/1")) == ["keep-alive"]
        r = c.request("GET", "/2")
        assert connection_fields(r) == ["close"] and r.body == b"x", \
            r.raw_head
        assert r.headers["keep-alive"] == "timeout=5"   # the rest verbatim
        assert c.closed_by_peer(3)


@pytest.mark.parametrize("req", [
    build_request("GET", "/", {"Connection": "close"}),
    b"GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n",
], ids=["connection-close", "http10"])
def test_client_that_closes_is_told_so(zgw, req):
    srv = zgw(answering(lambda env: ok(b"hi")))
    data, closed = srv.raw(req)
    r = parse_responses(data)[0]
    assert closed and r.body == b"hi" and connection_fields(r) == ["close"], \
        data


def test_node_connection_close_closes(zgw):
    srv = zgw(answering(lambda env: ok(b"bye", b"Connection: close\r\n")))
    with srv.connect() as c:
        r = c.request("GET", "/")
        assert connection_fields(r) == ["close"] and r.body == b"bye"
        assert c.closed_by_peer(3)


def test_response_during_graceful_stop_says_close(zgw):
    held = []
    srv = zgw(lambda node, sid, env: held.append(sid),
              server="DrainTimeout 10s")
    with srv.connect() as c:
        c.send(build_request("GET", "/slow"))
        assert wait_for(lambda: held)
        srv.signal(signal.SIGTERM)
        assert wait_for(lambda: srv.listen_sockets() == 0)   # draining now
        for typ, body in ok(b"late"):
            srv.node.send(held[0], typ, body)
        r = c.read_response()
        assert r.body == b"late" and connection_fields(r) == ["close"], \
            r.raw_head
        assert c.closed_by_peer(3)


def test_refused_upgrade_says_close(zgw):
    srv = zgw(answering(lambda env: ok(b"no", b"Connection: keep-alive\r\n")),
              plugins=("websocket",))
    data, closed = srv.raw(build_request("GET", "/ws", {
        "Upgrade": "websocket", "Connection": "Upgrade",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version": "13", "Sec-WebSocket-Protocol": "chat"}))
    r = parse_responses(data)[0]
    assert (r.status, r.body) == (200, b"no") and closed, data
    assert connection_fields(r) == ["close"], r.raw_head


def test_body_ended_by_the_close_says_so(zgw):
    srv = zgw(answering(lambda env: [
        (b"headers", b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n"),
        (b"chunk", b"abc"), (b"body", b"def"), (b"chunk", b"")]))
    with srv.connect() as c:
        c.send(build_request("GET", "/"))
        r = c.read_response()                  # runs to the close
        assert r.body == b"abcdef" and connection_fields(r) == ["close"], \
            r.raw_head


# ---- point 5: nothing past the end the node's head announced -------------------

def forging(first):
    """Answers /first with the messages `first`, anything else with
    200 "real"."""
    return answering(lambda env: first if env[b"PATH_INFO"] == b"/first"
                     else ok(b"real"))


@pytest.mark.parametrize("first,status,body", [
    ([(b"headers", cl_head(5)), (b"body", b"hello" + EVIL)], 200, b"hello"),
    ([(b"headers", CHUNKED), (b"body", b"5\r\nhello\r\n0\r\n\r\n" + EVIL)],
     200, b"hello"),
    ([(b"headers", cl_head(5)), (b"chunk", b"hello" + EVIL)], 200, b"hello"),
    ([(b"body", cl_head(5) + b"hello" + EVIL)], 200, b"hello"),
    ([(b"body", b"HTTP/1.1 204 No Content\r\n\r\n" + EVIL)], 204, b""),
], ids=["past-length", "past-last-chunk",
        "chunk-past-length", "head-in-body", "body-of-204"])
def test_node_cannot_forge_the_next_response(zgw, first, status, body):
    srv = zgw(forging(first))
    with srv.connect() as c:
        for _ in range(2):
            r = c.request("GET", "/first")
            assert (r.status, r.body) == (status, body), r.raw_head
            r = c.request("GET", "/second")
            assert (r.status, r.body) == (200, b"real"), r.raw_head
    srv.wait_log(r'node "node1" sent .*: dropped \(logged once per node\)')
    assert srv.error_log().count('node "node1" sent') == 1


def test_late_body_never_reaches_another_handler(zgw):
    """A piece sent after the response ended is dropped: the static file
    that answers the next request comes whole. (One that comes late enough
    to meet the node's next request on the connection is that node's
    answer to it: nothing in the protocol tells them apart.)"""
    srv = zgw(forging([(b"headers", cl_head(5)), (b"body", b"hello"),
                       (b"body", EVIL)]))
    with srv.connect() as c:
        assert c.request("GET", "/first").body == b"hello"
        for _ in range(3):
            r = c.request("GET", "/static/f.txt")
            assert r.body == FILES["htdocs/static/f.txt"], r.raw_head
    srv.wait_log(r'node "node1" sent body bytes after its response ended: '
                 r'dropped \(logged once per node\)')


def test_chunk_messages_count_against_content_length(zgw):
    srv = zgw(answering(lambda env: [(b"headers", cl_head(6)),
                                     (b"chunk", b"abc"), (b"chunk", b"def"),
                                     (b"chunk", b"")]))
    with srv.connect() as c:
        for _ in range(2):                    # unframed; still keep-alive
            r = c.request("GET", "/")
            assert r.body == b"abcdef" and not connection_fields(r), \
                r.raw_head


@pytest.mark.parametrize("messages", [
    [(b"headers", cl_head(10)), (b"chunk", b"abc"), (b"chunk", b"")],
    [(b"headers", CHUNKED), (b"body", b"3\r\nabc\r\nzz\r\nhello")],
], ids=["short-of-length", "broken-chunked"])
def test_broken_framing_closes(zgw, messages):
    srv = zgw(answering(lambda env: messages))
    data, closed = srv.raw(build_request("GET", "/"))
    assert closed and data.startswith(b"HTTP/1.1 200 ") and \
        b"hello" not in data, data
    srv.wait_log(r'node "node1" (ended its body|broke the chunked)')


@pytest.mark.parametrize("messages", [
    [(b"body", b"HTTP/1.1 200 OK\r\nContent-Le")],
    [(b"headers", b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n")],
    [(b"chunk", b"data")],
], ids=["partial-head-in-body", "interim-head", "chunk-first"])
def test_response_without_a_usable_head_is_502(zgw, messages):
    srv = zgw(answering(lambda env: messages))
    data, _ = srv.raw(build_request("GET", "/", {"Connection": "close"}))
    assert data.startswith(b"HTTP/1.1 502 "), data


# ---- point 6: PATH_INFO is the path the access rules saw -----------------------

@pytest.mark.parametrize("target,path", [
    ("/x/../env", b"/env"), ("/x/%2e%2e/env", b"/env"), ("//env", b"/env"),
    ("/./env", b"/env"), ("/a%20b/./c?q=%2e%2e", b"/a b/c"),
    ("/x/./dir/", b"/x/dir/"),
])
def test_path_info_is_the_normalised_path(zgw, target, path):
    srv = zgw(answering(echo_path))
    with srv.connect() as c:
        r = c.request("GET", target)
    assert r.body == path + b" " + target.encode(), r.body


@pytest.mark.parametrize("target", ["/../env", "/x/../../env", "/%2e%2e/env",
                                    "/x/%2E%2E/%2e%2e/env"])
def test_path_above_the_root_is_400(zgw, target):
    srv = zgw(answering(echo_path))
    data, _ = srv.raw(build_request("GET", target))
    assert data.startswith(b"HTTP/1.1 400 "), data
    assert b"uwsgi" not in srv.node.types()


def test_auth_and_node_decide_on_the_same_path(zgw):
    srv = zgw(answering(echo_path), site_extra=AUTH, plugins=("auth",),
              users=True)
    with srv.connect() as c:
        # /private/../x is /x: public, and the node is told /x
        r = c.request("GET", "/private/../x")
        assert (r.status, r.body) == (200, b"/x /private/../x"), r.raw_head
        for target in ("/public/../private/secret", "/x/%2e%2e/private",
                       "//private/a", "/%70rivate/a"):
            assert c.request("GET", target).status == 401, target
        r = c.request("GET", "/public/../private/secret", ALICE)
        assert r.body == b"/private/secret /public/../private/secret"
    assert srv.node.types().count(b"uwsgi") == 2    # no refused one came
