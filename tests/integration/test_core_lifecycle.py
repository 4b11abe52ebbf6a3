"""Processes, threads and signals: workers and schedulers, kernel feature
log, HUP reload during a long download, TERM drain, QUIT, USR1."""

import hashlib
import os
import re
import signal
import socket
import threading
import time

from tremolo_harness import DEFAULT_SITE, build_request, can_connect

BIG_SIZE = 50 * 1024 * 1024
_BLOCK = hashlib.sha256(b"tremolo").digest() * 2048       # 64 KiB
BIG = _BLOCK * (BIG_SIZE // len(_BLOCK))
BIG_SHA = hashlib.sha256(BIG).hexdigest()


def worker_names(srv):
    return sorted((n for n in srv.threads() if re.fullmatch(r"tremolo-w\d+", n)),
                  key=lambda n: int(n[9:]))


def wait_for(pred, timeout, step=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(step)
    return pred()


class SlowDownload(threading.Thread):
    """GET a big file and read it at a bounded rate, so that the transfer
    takes `seconds`; records byte count, sha256, status and errors."""

    def __init__(self, port, path, size, seconds=3.5):
        super().__init__(daemon=True)
        self.port, self.path, self.size = port, path, size
        self.rate = size / seconds
        self.got = 0
        self.sha = hashlib.sha256()
        self.status = None
        self.error = None
        self.started_body = threading.Event()

    def run(self):
        try:
            s = socket.socket()
            # A small receive buffer keeps the server's send side busy: the
            # response really is in flight while the test acts.
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
            s.settimeout(15)
            s.connect(("127.0.0.1", self.port))
            s.sendall(build_request("GET", self.path, {"Connection": "close"}))
            buf = b""
            while b"\r\n\r\n" not in buf:
                chunk = s.recv(65536)
                if not chunk:
                    raise EOFError("closed before the head")
                buf += chunk
            head, _, body = buf.partition(b"\r\n\r\n")
            self.status = int(head.split()[1])
            self.sha.update(body)
            self.got = len(body)
            self.started_body.set()
            t0 = time.monotonic()
            while True:
                ahead = self.got / self.rate - (time.monotonic() - t0)
                if ahead > 0:
                    time.sleep(ahead)
                chunk = s.recv(65536)
                if not chunk:
                    break
                self.sha.update(chunk)
                self.got += len(chunk)
            s.close()
        except Exception as e:  # checked by the test
            self.error = repr(e)
        finally:
            self.started_body.set()

    def check_complete(self, size, sha):
        assert self.error is None, self.error
        assert self.status == 200
        assert self.got == size, "got %d of %d bytes" % (self.got, size)
        assert self.sha.hexdigest() == sha


# ---- workers, schedulers, threads ---------------------------------------------

def test_reuseport_workers_and_listeners(tremolo):
    srv = tremolo(workers=2, server="Scheduler reuseport")
    assert wait_for(lambda: worker_names(srv) == ["tremolo-w0", "tremolo-w1"],
                    5), srv.threads()
    assert wait_for(lambda: "tremolo-clock" in srv.threads(), 5)
    names = srv.threads()
    assert "tremolo-clock" in names
    assert "tremolo-accept" not in names
    assert srv.listen_sockets() == 2
    for _ in range(10):
        assert srv.http("GET", "/")[0] == 200


def test_fair_scheduler_one_listener(tremolo):
    srv = tremolo(workers=2, server="Scheduler fair")
    assert wait_for(lambda: worker_names(srv) == ["tremolo-w0", "tremolo-w1"],
                    5), srv.threads()
    assert wait_for(lambda: "tremolo-accept" in srv.threads(), 5)
    assert srv.listen_sockets() == 1
    conns = [srv.connect() for _ in range(6)]
    try:
        for c in conns:
            assert c.request("GET", "/").status == 200
    finally:
        for c in conns:
            c.close()


def test_workers_zero_means_one_per_core(tremolo):
    srv = tremolo(workers=0)
    cores = (os.cpu_count(), len(os.sched_getaffinity(0)))
    assert wait_for(lambda: len(worker_names(srv)) in cores, 5), srv.threads()
    n = len(worker_names(srv))
    assert wait_for(lambda: srv.listen_sockets() == n, 5)


def test_startup_log_reports_workers_scheduler_kernel(tremolo):
    srv = tremolo(workers=2)
    srv.wait_log(r"workers: 2, scheduler: reuseport, event loop: epoll")
    srv.wait_log(r"kernel: SO_REUSEPORT (yes|no), TCP_FASTOPEN (yes|no), "
                 r"TCP_DEFER_ACCEPT (yes|no)")
    log = srv.error_log()
    # This Linux has SO_REUSEPORT; the detection must see it.
    assert "SO_REUSEPORT yes" in log


def test_pid_file_and_clean_exit(tremolo):
    srv = tremolo()
    assert int((srv.conf_dir / "tremolo.pid").read_text()) == srv.pid
    assert srv.stop() == 0


# ---- HUP reload ----------------------------------------------------------------

def test_reload_keeps_download_and_applies_new_config(tremolo):
    files = {"htdocs/index.html": b"old root\n", "htdocs/big.bin": BIG,
             "htdocs2/index.html": b"new root\n",
             "newsite/index.html": b"new site\n"}
    srv = tremolo(files=files, workers=2)
    dl = SlowDownload(srv.port, "/big.bin", BIG_SIZE, seconds=3.5)
    dl.start()
    assert dl.started_body.wait(10) and dl.error is None, dl.error

    # New config: the default site moves to htdocs2; a new site appears.
    srv.write("sites/default.conf",
              DEFAULT_SITE.replace("DocumentRoot htdocs",
                                   "DocumentRoot htdocs2"))
    srv.write("sites/new.conf", "[HOST]\n    ServerName new.test\n"
              "    DocumentRoot newsite\n    Handler static\n")
    srv.reload()
    assert dl.is_alive(), "download finished before the reload: test is void"

    status, _, body = srv.http("GET", "/")
    assert (status, body) == (200, b"new root\n")
    status, _, body = srv.http("GET", "/", {"Host": "new.test"})
    assert (status, body) == (200, b"new site\n")

    dl.join(20)
    assert not dl.is_alive(), "download stuck after reload"
    dl.check_complete(BIG_SIZE, BIG_SHA)
    assert srv.alive()


def test_reload_keeps_connection_mid_request(tremolo):
    """A connection that is half-way through sending its request when HUP
    arrives is not dropped: the rest of the request gets its answer."""
    srv = tremolo(server="HeaderTimeout 30s")
    with srv.connect() as c:
        c.send(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        time.sleep(0.2)
        srv.reload()
        c.send(b"X-After: reload\r\n\r\n")
        r = c.read_response()
        assert r.status == 200


def test_reload_idle_keepalive_closed_cleanly_or_kept(tremolo):
    """An idle keep-alive connection may be closed after a reload (as nginx
    does), but only cleanly: it either still answers or it is closed."""
    srv = tremolo(server="KeepAliveTimeout 30s")
    with srv.connect() as c:
        assert c.request("GET", "/").status == 200
        srv.reload()
        time.sleep(0.3)
        try:
            r = c.request("GET", "/")
            assert r.status == 200
        except (EOFError, BrokenPipeError, ConnectionResetError):
            pass
    assert srv.http("GET", "/")[0] == 200


def test_reload_changes_workers_and_listen(tremolo):
    srv = tremolo(workers=1)
    assert wait_for(lambda: worker_names(srv) == ["tremolo-w0"], 5)
    text = srv.conf_path.read_text().replace("Workers 1", "Workers 2")
    srv.write("tremolo.conf", text)
    srv.reload()
    assert wait_for(lambda: len(worker_names(srv)) == 2, 5), srv.threads()
    assert wait_for(lambda: srv.listen_sockets() == 2, 5)
    assert srv.http("GET", "/")[0] == 200


def test_bad_reload_keeps_old_config(tremolo):
    srv = tremolo(files={"htdocs/index.html": b"still here\n"})
    srv.write("tremolo.conf", srv.conf_path.read_text() + "    Broken@Key\n")
    srv.signal(signal.SIGHUP)
    time.sleep(1.0)
    assert srv.alive(), srv.error_log()
    assert "configuration reloaded" not in srv.error_log()
    status, _, body = srv.http("GET", "/")
    assert (status, body) == (200, b"still here\n")


def test_many_reloads_do_not_leak_threads(tremolo):
    srv = tremolo(workers=2)
    for _ in range(5):
        srv.reload()
    assert wait_for(lambda: len(worker_names(srv)) == 2, 5), srv.threads()
    assert srv.threads().count("tremolo-clock") == 1
    assert srv.http("GET", "/")[0] == 200


# ---- TERM drain, QUIT, INT, USR1 ----------------------------------------------

def test_term_drains_inflight_download(tremolo):
    srv = tremolo(files={"htdocs/big.bin": BIG}, workers=2,
                  server="DrainTimeout 15s")
    dl = SlowDownload(srv.port, "/big.bin", BIG_SIZE, seconds=3.5)
    dl.start()
    assert dl.started_body.wait(10) and dl.error is None, dl.error
    t0 = time.monotonic()
    srv.signal(signal.SIGTERM)
    # New connections are refused once the listeners are closed.
    assert wait_for(lambda: not can_connect("127.0.0.1", srv.port), 2), \
        "still accepting after SIGTERM"
    assert dl.is_alive(), "download finished before TERM: test is void"
    assert srv.alive(), "exited without draining"
    rc = srv.wait_exit(15)
    assert rc == 0, (rc, srv.error_log())
    dl.join(5)
    dl.check_complete(BIG_SIZE, BIG_SHA)
    assert time.monotonic() - t0 < 15


def test_term_with_idle_keepalive_exits_fast(tremolo):
    srv = tremolo(server="KeepAliveTimeout 60s\nDrainTimeout 10s")
    c = srv.connect()
    assert c.request("GET", "/").status == 200
    t0 = time.monotonic()
    srv.signal(signal.SIGTERM)
    rc = srv.wait_exit(10)
    c.close()
    assert rc == 0
    # Idle connections do not hold the drain: closed at once.
    assert time.monotonic() - t0 < 3


def test_drain_timeout_bounds_a_stalled_client(tremolo):
    srv = tremolo(files={"htdocs/big.bin": BIG},
                  server="DrainTimeout 2s\nSendTimeout 60s")
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)
    s.connect(("127.0.0.1", srv.port))
    s.sendall(build_request("GET", "/big.bin"))
    s.recv(1024)           # the response has begun; then never read again
    t0 = time.monotonic()
    srv.signal(signal.SIGTERM)
    rc = srv.wait_exit(10)
    s.close()
    assert rc is not None, "did not exit within 10 s (DrainTimeout 2s)"
    assert time.monotonic() - t0 < 5


def test_quit_stops_fast(tremolo):
    srv = tremolo(files={"htdocs/big.bin": BIG}, server="DrainTimeout 30s")
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)
    s.connect(("127.0.0.1", srv.port))
    s.sendall(build_request("GET", "/big.bin"))
    s.recv(1024)
    t0 = time.monotonic()
    srv.signal(signal.SIGQUIT)
    rc = srv.wait_exit(5)
    s.close()
    assert rc is not None, "SIGQUIT did not stop the server"
    assert time.monotonic() - t0 < 3


def test_usr1_reopens_error_log(tremolo):
    srv = tremolo()
    log = srv.conf_dir / "error.log"
    assert log.exists()
    os.rename(log, srv.conf_dir / "error.log.1")
    srv.signal(signal.SIGUSR1)
    assert wait_for(log.exists, 5), "error.log not reopened after USR1"
    srv.reload()  # waits for 'configuration reloaded' in the new file
    assert "configuration reloaded" in log.read_text()
    assert srv.http("GET", "/")[0] == 200
