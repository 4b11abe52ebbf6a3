"""A tremolo_socketio node (plugins/zmq/nodes/python) behind the socketio
plugin, driven by socket.io-client 4 (tests/js/sio_python_node.js):
polling, websocket and the upgrade; NodeConnect auto and node; Server and
AsyncServer; the pure-Python and the C runtime. Connect with auth and a
refusal, events with acks carrying several arguments and binary, call()
from a handler, a room with skip_sid across a namespace, and a disconnect
from the node.
"""

import importlib.util
import os
import signal
import shutil
import subprocess
from pathlib import Path

import pytest

from tremolo_harness import free_port

SRC = Path(os.environ["TREMOLO_SRC"])
HELPER = SRC / "plugins" / "zmq" / "nodes" / "python"
JS = SRC / "tests" / "js"

APP = '''
import tremolo_socketio as socketio
sio = socketio.{kind}()


@sio.event
{a}def connect(sid, environ, auth):
    {w}sio.emit("welcome", "hello " + environ["TREMOLO_TRANSPORT"], to=sid)


@sio.on("connect", namespace="/chat")
{a}def chat_connect(sid, environ, auth):
    if not auth or auth.get("token") != "ok":
        raise socketio.ConnectionRefusedError("bad token", {{"why": "auth"}})
    sio.enter_room(sid, "r", namespace="/chat")


@sio.on("say", namespace="/chat")
{a}def say(sid, text):
    {w}sio.emit("said", text, room="r", skip_sid=sid, namespace="/chat")
    return "ok"


@sio.on("all", namespace="/chat")
{a}def all_(sid, text):
    {w}sio.emit("said", "all:" + text, room="r", namespace="/chat")


@sio.event
{a}def echo(sid, *args):
    return args


@sio.event
{a}def ask(sid):
    return ("answer", {w}sio.call("q", b"\\x01\\x02", to=sid, timeout=5))


@sio.event
{a}def bye(sid):
    {w}sio.disconnect(sid)
'''


def app_source(kind):
    """The app for Server (plain handlers) or AsyncServer (coroutines)."""
    coro = kind == "AsyncServer"
    return APP.format(kind=kind, a="async " if coro else "",
                      w="await " if coro else "")


@pytest.fixture
def sio_site(tremolo, check_config, tmp_path):
    node = shutil.which("node")
    if not node or not (JS / "node_modules" / "socket.io-client").exists():
        pytest.fail("node and tests/js/node_modules/socket.io-client are "
                    "needed: run `sh tests/js/setup.sh`", pytrace=False)
    procs = []

    def start(mode, kind, runtime):
        plugins = ("liana", "zmq", "websocket", "socketio")
        endpoint = "tcp://127.0.0.1:%d" % free_port()
        site = ("[HOST]\n    ServerName 127.0.0.1 localhost\n"
                "    Default on\n    Handler zmq\n[ZMQ]\n    Node sio-*\n"
                "[SOCKETIO]\n    Namespace /\n    Namespace /chat\n"
                "    NodeConnect %s\n" % mode)
        confs = {"zmq": "[ZMQ]\n    Bind %s\n    PingFreq 500ms\n" % endpoint}
        rc, out = check_config(plugins=plugins, sites={"default": site},
                               plugin_confs=confs)
        if rc != 0 and "socketio" in out:
            pytest.skip("this build has no socketio plugin: %s" % out.strip())
        srv = tremolo(plugins=plugins, sites={"default": site},
                      plugin_confs=confs, workers=2)
        (tmp_path / "sioapp.py").write_text(app_source(kind))
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            [str(HELPER)] + [p for p in env.get("PYTHONPATH", "").split(
                os.pathsep) if p])
        if runtime == "pure":
            env["TREMOLO_NODE_PURE"] = "1"
        cmd = ["/usr/bin/python3", str(HELPER / "tremolo_socketio.py"),
               "sioapp:sio", "--id", "sio-1", "--connect", endpoint]
        if mode == "node":
            cmd.append("--node-connect")
        procs.append(subprocess.Popen(cmd, cwd=tmp_path, env=env,
                                      stdin=subprocess.DEVNULL))
        srv.wait_log(r'node "sio-1" is available', timeout=10)
        return srv

    yield start
    for p in procs:
        p.send_signal(signal.SIGTERM)
        try:
            assert p.wait(10) == 0
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            raise


def run_client(srv, transports, mode):
    out = subprocess.run(
        [shutil.which("node"), str(JS / "sio_python_node.js"), srv.url,
         transports, mode], capture_output=True, text=True, timeout=60)
    assert out.stdout.rstrip().endswith("ALL OK"), out.stdout + out.stderr


@pytest.mark.parametrize("runtime", ["pure", "ext"])
@pytest.mark.parametrize("kind", ["Server", "AsyncServer"])
@pytest.mark.parametrize("mode", ["auto", "node"])
def test_python_node_with_socket_io_client(sio_site, mode, kind, runtime):
    if (runtime == "ext" and os.environ.get("TREMOLO_REQUIRE_EXT") != "1"
            and importlib.util.find_spec("_tremolo") is None):
        pytest.skip("the _tremolo extension is not built (PYTHONPATH)")
    srv = sio_site(mode, kind, runtime)
    for transports in ("polling", "websocket", "polling,websocket"):
        run_client(srv, transports, mode)
