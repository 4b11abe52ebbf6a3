"""Helpers shared by the plugin integration tests (mandril, logger, auth)."""

import os
import subprocess
import time
from pathlib import Path

import pytest


def wait_for(pred, timeout=5.0, step=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(step)
    return pred()


def start_fails(srv, timeout=15):
    """Run the server in the foreground expecting it to refuse to start;
    returns (exit code, stdout+stderr+error log)."""
    try:
        p = subprocess.run(srv.command(*srv.extra_args),
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           stdin=subprocess.DEVNULL, timeout=timeout,
                           cwd=str(srv.conf_dir))
    except subprocess.TimeoutExpired:
        pytest.fail("tremolo started although its configuration is bad")
    return p.returncode, p.stdout.decode("utf-8", "replace") + srv.error_log()


def passwd_bin():
    build = os.environ.get("TREMOLO_BUILD")
    if build:
        return str(Path(build) / "tremolo-passwd")
    return str(Path(__file__).resolve().parents[2] / "build" /
               "tremolo-passwd")


def tremolo_passwd(*args, password=None):
    """Runs tremolo-passwd; returns (exit code, stderr text)."""
    stdin = (password + "\n").encode() if password is not None else b""
    p = subprocess.run([passwd_bin()] + [str(a) for a in args], input=stdin,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=30)
    return p.returncode, p.stderr.decode("utf-8", "replace")
