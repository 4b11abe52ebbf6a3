"""Start a WSGI app as a node (tremolo_wsgi.py) against a real Tremolo, on
either runtime: "pure" (TREMOLO_NODE_PURE=1) or "ext" (the C extension
_tremolo from the build's python/ directory)."""

import glob
import os
import signal
import subprocess
import time

import pytest

from tremolo_harness import free_port

HELPER = os.path.join(os.environ["TREMOLO_SRC"], "plugins", "zmq", "nodes",
                      "python")
HERE = os.path.dirname(os.path.abspath(__file__))


def ext_dir():
    """The build's python/ directory holding _tremolo, or skip (fail when
    TREMOLO_REQUIRE_EXT=1, as ctest sets it)."""
    d = os.path.join(os.environ.get("TREMOLO_BUILD", ""), "python")
    if glob.glob(os.path.join(d, "_tremolo*.so")):
        return d
    if os.environ.get("TREMOLO_REQUIRE_EXT") == "1":
        pytest.fail("_tremolo is not built in %s" % d)
    pytest.skip("the _tremolo extension is not built")



def node_env(runtime):
    """The environment of a node on the "pure" (RawNode) or "ext"
    (_tremolo) runtime: the helper, this directory and, for "ext", the
    build's python/ on PYTHONPATH."""
    env = dict(os.environ)
    path = [HELPER, HERE]
    if runtime == "ext":
        path.insert(0, ext_dir())
        env.pop("TREMOLO_NODE_PURE", None)
    else:
        env["TREMOLO_NODE_PURE"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(path)
    return env

class WsgiNodes:
    def __init__(self, tremolo, tmp_path):
        self.tremolo = tremolo
        self.tmp_path = tmp_path
        self.procs = []

    def start(self, app_spec, runtime, workers=1, node_id="wsgi-1"):
        """A Tremolo whose default site goes to node_id, and the node."""
        endpoint = "tcp://127.0.0.1:%d" % free_port()
        site = ("[HOST]\n    ServerName 127.0.0.1 localhost\n    Default on\n"
                "    Handler zmq\n[ZMQ]\n    Node %s\n" % node_id)
        srv = self.tremolo(plugins=("liana", "zmq"), sites={"default": site},
                           workers=workers,
                           plugin_confs={"zmq": "[ZMQ]\n    Bind %s\n"
                                                "    PingFreq 500ms\n" % endpoint})
        env = node_env(runtime)
        log = self.tmp_path / ("node-%d.log" % len(self.procs))
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                ["/usr/bin/python3", os.path.join(HELPER, "tremolo_wsgi.py"),
                 app_spec, "--id", node_id, "--connect", endpoint],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                cwd=HERE, env=env)
        self.procs.append(proc)
        srv.wait_log(r'node "%s" is available' % node_id, timeout=10)
        want = "C (_tremolo)" if runtime == "ext" else "pure-Python"
        deadline = time.monotonic() + 5
        while want not in log.read_text(errors="replace"):
            assert time.monotonic() < deadline, log.read_text(errors="replace")
            time.sleep(0.05)
        srv.node_log = log
        srv.node_proc = proc
        return srv

    def stop(self):
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
                raise AssertionError("the node ignored SIGTERM")


@pytest.fixture(params=["pure", "ext"])
def wsgi_node(request, tremolo, tmp_path):
    """wsgi_node(app_spec) -> server with that app as node wsgi-1 running
    on the parametrized runtime."""
    nodes = WsgiNodes(tremolo, tmp_path)

    def start(app_spec, **kw):
        return nodes.start(app_spec, request.param, **kw)

    start.runtime = request.param
    yield start
    nodes.stop()
