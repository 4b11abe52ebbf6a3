"""The spec's example nodes (plugins/zmq/nodes/python/examples), run as
real processes against a real Tremolo: hello world, the chunked response,
and the group broadcast node (its WebSocket side needs the websocket
plugin; here its routed `ROOM:websocket` messages reach every member
through the msgprobe test plugin, which registers that type)."""

import os
import signal
import socket
import subprocess

import pytest

from tremolo_harness import build_request, free_port, parse_responses
from test_plugin_zmq import MSGPROBE, get_ok, wait_for

EXAMPLES = os.path.join(os.environ["TREMOLO_SRC"], "plugins", "zmq", "nodes",
                        "python", "examples")


@pytest.fixture
def example(tremolo):
    """example(script, extra_plugins=()) -> server with that node running."""
    procs = []

    def start(script, extra_plugins=()):
        endpoint = "tcp://127.0.0.1:%d" % free_port()
        site = ("[HOST]\n    ServerName 127.0.0.1 localhost\n    Default on\n"
                "    Handler zmq\n[ZMQ]\n    Node ex-*\n")
        srv = tremolo(plugins=("liana", "zmq") + tuple(extra_plugins),
                      sites={"default": site},
                      plugin_confs={"zmq": "[ZMQ]\n    Bind %s\n"
                                           "    PingFreq 500ms\n" % endpoint})
        procs.append(subprocess.Popen(
            ["/usr/bin/python3", os.path.join(EXAMPLES, script),
             "--id", "ex-1", "--connect", endpoint],
            stdin=subprocess.DEVNULL))
        srv.wait_log(r'node "ex-1" is available', timeout=10)
        return srv

    yield start
    for p in procs:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def test_hello_world_keepalive_and_http10(example):
    srv = example("hello.py")
    assert get_ok(srv)[2] == b"Hello World\n"
    c = srv.connect()
    for _ in range(3):                      # Content-Length: kept alive
        r = c.request("GET", "/")
        assert (r.status, r.body) == (200, b"Hello World\n")
    c.close()
    data, closed = srv.raw(b"GET / HTTP/1.0\r\nHost: a\r\n\r\n")
    assert closed                           # HTTP/1.0: the node ends it
    resp = parse_responses(data)[0]
    assert resp.status == 200 and resp.body == b"Hello World\n"


def test_chunked_response_http11_and_http10(example):
    srv = example("chunked.py")
    expected = b"".join(b"part %d\n" % i for i in range(5))
    status, headers, body = get_ok(srv)
    assert status == 200 and body == expected
    assert headers["transfer-encoding"] == "chunked"
    c = srv.connect()
    for _ in range(2):                      # framing per request (10.3)
        r = c.request("GET", "/again")
        assert (r.status, r.body) == (200, expected)
    c.close()
    data, closed = srv.raw(b"GET / HTTP/1.0\r\nHost: a\r\n\r\n")
    assert closed and data.startswith(b"HTTP/1.0 200") and data.endswith(expected)
    assert b"Transfer-Encoding" not in data


def test_groups_example_broadcasts_to_the_room(example):
    srv = example("groups.py", extra_plugins=(MSGPROBE,))
    assert get_ok(srv)[2] == b"open a WebSocket to /ROOM to chat\n"
    clients = []
    for _ in range(3):
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
        s.sendall(build_request("GET", "/lobby", {"Upgrade": "websocket",
                                                  "Connection": "Upgrade"}))
        clients.append(s)
    # each member is told it joined: a `websocket` to its own session
    for s in clients:
        want = b"[websocket:joined lobby]"
        data = b""
        while len(data) < len(want):
            data += s.recv(4096)
        assert data == want
    for s in clients:
        s.close()


PID_APP = '''
import os

def app(environ, start_response):
    out = str(os.getpid()).encode()
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(out)))])
    return [out]
'''

PID_ASGI_APP = '''
import os

async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    out = str(os.getpid()).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"),
                            (b"content-length", str(len(out)).encode())]})
    await send({"type": "http.response.body", "body": out})
'''

HELPER = os.path.dirname(EXAMPLES)


def _gone(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.mark.parametrize("command", [
    ["-m", "tremolo_node", "--wsgi", "pidapp:app"],
    [os.path.join(HELPER, "tremolo_wsgi.py"), "pidapp:app"],
    ["-m", "tremolo_node", "--asgi", "pidapp:asgi"],
], ids=["m_tremolo_node", "tremolo_wsgi", "m_tremolo_node_asgi"])
def test_processes_have_distinct_identities(tremolo, tmp_path, command):
    """`python3 -m tremolo_node --wsgi ... --processes 2` (and
    `tremolo_wsgi.py ... --processes 2`, and `--asgi`): two node processes,
    pyp-1 and pyp-2, both serving; SIGTERM to the parent ends both."""
    if "--asgi" in command and not os.path.exists(
            os.path.join(HELPER, "tremolo_asgi.py")):
        pytest.skip("tremolo_asgi.py (the ASGI adapter) is not in this tree")
    endpoint = "tcp://127.0.0.1:%d" % free_port()
    site = ("[HOST]\n    ServerName 127.0.0.1 localhost\n    Default on\n"
            "    Handler zmq\n[ZMQ]\n    Node pyp-*\n")
    srv = tremolo(plugins=("liana", "zmq"), sites={"default": site},
                  plugin_confs={"zmq": "[ZMQ]\n    Bind %s\n"
                                       "    PingFreq 500ms\n" % endpoint})
    (tmp_path / "pidapp.py").write_text(PID_APP + PID_ASGI_APP.replace(
        "async def app(", "async def asgi("))
    env = dict(os.environ, PYTHONPATH=HELPER)
    parent = subprocess.Popen(
        ["/usr/bin/python3"] + command
        + ["--processes", "2", "--id", "pyp", "--connect", endpoint],
        cwd=str(tmp_path), env=env, stdin=subprocess.DEVNULL)
    try:
        srv.wait_log(r'node "pyp-1" is available', timeout=10)
        srv.wait_log(r'node "pyp-2" is available', timeout=10)
        get_ok(srv)
        # Least live sessions (spec 4.2): two open keep-alive connections
        # are bound to different nodes, so they reach different processes.
        conns = [srv.connect() for _ in range(2)]
        pids = set()
        for c in conns:
            r = c.request("GET", "/")
            assert r.status == 200
            pids.add(int(r.body))
        for c in conns:
            c.close()
        assert len(pids) == 2 and parent.pid not in pids
        with open("/proc/%d/task/%d/children" % (parent.pid, parent.pid)) as f:
            assert set(map(int, f.read().split())) == pids
        parent.send_signal(signal.SIGTERM)
        assert parent.wait(10) == 0
        assert all(_gone(p) for p in pids)
    finally:
        if parent.poll() is None:
            parent.send_signal(signal.SIGTERM)   # it stops its children
            try:
                parent.wait(10)
            except subprocess.TimeoutExpired:
                parent.kill()
                parent.wait()
