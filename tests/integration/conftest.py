"""pytest fixtures for the integration tests (see tremolo_harness.py).

    def test_x(tremolo):
        srv = tremolo(server="KeepAliveTimeout 1s", workers=2)
        status, headers, body = srv.http("GET", "/")

    def test_y(check_config):
        rc, out = check_config(server="Workers abc")

Every server a test started is stopped at teardown (SIGTERM by pid); when
the test failed, each server's error log is added to the report. A server
whose stderr holds a ThreadSanitizer report fails the test, even when the
report came at stop (`make test-tsan` runs with halt_on_error).
"""

import os
import re
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import tremolo_harness  # noqa: E402


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.when == "call" and rep.failed:
        for i, srv in enumerate(getattr(item, "_tremolo_servers", [])):
            rep.sections.append(("tremolo #%d error log (%s)" % (
                i, srv.conf_dir), srv.error_log() or "(empty)"))
            err = srv.stderr()
            if err:
                rep.sections.append(("tremolo #%d stderr" % i, err))


@pytest.fixture
def tremolo(request, tmp_path):
    servers = []
    request.node._tremolo_servers = servers

    def factory(server="", sites=None, plugins=("liana",), plugin_confs=None,
                files=None, workers=1, listen=None, start=True,
                extra_args=(), env=None):
        conf_dir = tmp_path / ("srv%d" % len(servers))
        srv = tremolo_harness.Tremolo(
            conf_dir, server=server, sites=sites, plugins=plugins,
            plugin_confs=plugin_confs, files=files, workers=workers,
            listen=listen, extra_args=extra_args)
        srv.env = env
        servers.append(srv)
        if start:
            srv.start()
        return srv

    yield factory

    problems = []
    for srv in servers:
        if srv.alive():
            try:
                srv.stop()
            except pytest.fail.Exception as e:
                problems.append(str(e))
        report = _SANITIZER_REPORT.search(srv.stderr())
        if report:
            problems.append("ThreadSanitizer report in %s:\n%s" % (
                srv.conf_dir / "stderr.txt", srv.stderr()[report.start():]))
        _drop_big_files(srv.conf_dir)
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


_SANITIZER_REPORT = re.compile(r"WARNING: ThreadSanitizer")


def _drop_big_files(conf_dir, limit=4 * 1024 * 1024):
    """pytest keeps the temp dirs of recent runs: do not keep 50 MB
    downloads in them."""
    for p in conf_dir.rglob("*"):
        try:
            if p.is_file() and not p.is_symlink() and p.stat().st_size > limit:
                p.unlink()
        except OSError:
            pass


@pytest.fixture
def check_config(tmp_path):
    """Write a configuration like `tremolo(...)` does and run `tremolo -t`
    on it; returns (exit code, stdout+stderr). The Tremolo object (with its
    .conf_path) is available as check_config.last."""
    n = [0]

    def run(server="", sites=None, plugins=("liana",), plugin_confs=None,
            files=None, workers=1, listen=None, extra_args=()):
        conf_dir = tmp_path / ("check%d" % n[0])
        n[0] += 1
        srv = tremolo_harness.Tremolo(
            conf_dir, server=server, sites=sites, plugins=plugins,
            plugin_confs=plugin_confs, files=files, workers=workers,
            listen=listen, extra_args=extra_args)
        run.last = srv
        return srv.check_config()

    run.last = None
    return run
