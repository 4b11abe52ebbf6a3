"""The command line: -V, -h, -t (check config), -c, -l, -w, -D."""

import os
import re
import signal
import subprocess
import time

from tremolo_harness import (DEFAULT_INDEX, DEFAULT_SITE, can_connect, free_port,
                             tremolo_bin, version)


def run(*args, timeout=20):
    p = subprocess.run([tremolo_bin()] + list(args), stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=timeout,
                       stdin=subprocess.DEVNULL)
    return p.returncode, p.stdout.decode("utf-8", "replace")


def line_of(path, needle):
    """1-based number of the first line of `path` containing `needle`."""
    for i, line in enumerate(path.read_text().splitlines(), 1):
        if needle in line:
            return i
    raise AssertionError("%r not in %s" % (needle, path))


# ---- -V / -h ---------------------------------------------------------------

def test_version_flag_prints_name_and_version():
    rc, out = run("-V")
    assert rc == 0, out
    assert "tremolo/%s" % version() in out


def test_help_lists_every_option():
    rc, out = run("-h")
    assert rc == 0, out
    for opt in ("-c", "-l", "-w", "-t", "-D", "-V", "-h"):
        assert re.search(r"(^|\s)%s\b" % re.escape(opt), out), (opt, out)


def test_unknown_option_fails_with_usage():
    rc, out = run("--no-such-option")
    assert rc != 0
    assert out.strip(), "no message for an unknown option"


# ---- -t ----------------------------------------------------------------------

def test_check_config_good(check_config):
    rc, out = check_config()
    assert rc == 0, out
    path = check_config.last.conf_path
    assert "configuration file %s test is successful" % path in out, out


def test_check_config_does_not_start_a_server(check_config):
    rc, out = check_config()
    assert rc == 0, out
    assert not can_connect("127.0.0.1", check_config.last.port)


def test_check_config_bad_value_reports_file_line_key(check_config):
    rc, out = check_config(server="Workers lots")
    path = check_config.last.conf_path
    assert rc == 1, out
    line = line_of(path, "Workers lots")
    assert "tremolo: %s:%d: Workers:" % (path, line) in out, out


def test_check_config_unknown_key(check_config):
    rc, out = check_config(server="KeepAlive on\nNoSuchKey 12")
    path = check_config.last.conf_path
    assert rc == 1, out
    line = line_of(path, "NoSuchKey")
    assert "tremolo: %s:%d: NoSuchKey:" % (path, line) in out, out


def test_check_config_bad_size_and_bool(check_config):
    rc, out = check_config(server="MaxRequestLine 12Q")
    assert rc == 1 and "MaxRequestLine:" in out, out
    rc, out = check_config(server="KeepAlive perhaps")
    assert rc == 1 and "KeepAlive:" in out, out


def test_check_config_error_in_site_file_names_that_file(check_config):
    site = ("[HOST]\n"
            "    ServerName bad.test\n"
            "    DocumentRoot htdocs\n"
            "    NoSuchSiteKey yes\n")
    rc, out = check_config(sites={"default": DEFAULT_SITE, "bad": site})
    path = check_config.last.conf_dir / "sites" / "bad.conf"
    assert rc == 1, out
    assert "%s:4: NoSuchSiteKey:" % path in out, out


def test_check_config_missing_file():
    rc, out = run("-t", "-c", "/nonexistent/tremolo.conf")
    assert rc == 1, out
    assert "/nonexistent/tremolo.conf" in out


def test_check_config_unknown_plugin(check_config):
    rc, out = check_config(plugins=("liana", "no_such_plugin"))
    assert rc == 1, out
    assert "no_such_plugin" in out


# ---- -c, -l, -w, -D ----------------------------------------------------------

def test_pid_file_holds_the_pid(tremolo):
    srv = tremolo()
    pid = int((srv.conf_dir / "tremolo.pid").read_text().split()[0])
    assert pid == srv.pid


def test_listen_override_replaces_config_listen(tremolo):
    srv = tremolo(extra_args=("-l", "127.0.0.1:{port2}"))
    p2 = srv.ports["port2"]
    status, _, body = srv.http("GET", "/", port=p2)
    assert status == 200 and body == DEFAULT_INDEX
    # The Listen line of the file ({port}) is not opened.
    assert srv.ports["port"] != p2
    assert not can_connect("127.0.0.1", srv.ports["port"])


def test_listen_override_repeatable_and_port_only(tremolo):
    srv = tremolo(extra_args=("-l", "127.0.0.1:{port2}", "-l", "{port3}"))
    for name in ("port2", "port3"):
        status, _, body = srv.http("GET", "/", port=srv.ports[name])
        assert status == 200 and body == DEFAULT_INDEX, name


def test_several_listen_lines(tremolo):
    srv = tremolo(listen=["127.0.0.1:{port}", "127.0.0.1:{port2}"])
    for p in srv.ports.values():
        assert srv.http("GET", "/", port=p)[0] == 200


def test_ipv6_listen(tremolo):
    import socket
    try:
        s = socket.socket(socket.AF_INET6)
        s.bind(("::1", 0))
        s.close()
    except OSError:
        import pytest
        pytest.skip("no IPv6 loopback")
    srv = tremolo(listen=["127.0.0.1:{port}", "[::1]:{port2}"])
    c = socket.create_connection(("::1", srv.ports["port2"]), timeout=5)
    c.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
    data = b""
    while True:
        chunk = c.recv(65536)
        if not chunk:
            break
        data += chunk
    c.close()
    assert data.startswith(b"HTTP/1.1 200")
    assert data.endswith(DEFAULT_INDEX)


def test_workers_flag_overrides_config(tremolo):
    srv = tremolo(workers=1, extra_args=("-w", "3"))
    want = ["tremolo-w0", "tremolo-w1", "tremolo-w2"]
    deadline = time.monotonic() + 5
    while True:
        names = srv.threads()
        workers = sorted(n for n in names if re.fullmatch(r"tremolo-w\d+", n))
        if workers == want or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert workers == want, names


def test_listen_in_use_fails_clearly(tremolo):
    import socket
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen(1)
    port = blocker.getsockname()[1]
    try:
        srv = tremolo(listen=["127.0.0.1:%d" % port], start=False)
        p = subprocess.run(srv.command(), stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=15)
        assert p.returncode != 0
        text = p.stdout.decode(errors="replace") + srv.error_log()
        assert str(port) in text, text
    finally:
        blocker.close()


def test_daemonize(tremolo):
    srv = tremolo(extra_args=("-D",))
    # The launched process exited 0; the daemon is another process, alone in
    # its session, and serving.
    assert srv.proc.returncode == 0
    assert srv.pid != srv.proc.pid
    assert os.getsid(srv.pid) == srv.pid
    status, _, body = srv.http("GET", "/")
    assert status == 200 and body == DEFAULT_INDEX
    assert srv.stop() == 0
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and can_connect("127.0.0.1", srv.port):
        time.sleep(0.05)
    assert not can_connect("127.0.0.1", srv.port)


def test_sigint_stops_cleanly(tremolo):
    srv = tremolo()
    srv.signal(signal.SIGINT)
    assert srv.wait_exit(10) == 0


def test_default_config_file_checks(tmp_path):
    """The shipped conf/ passes -t (run from the source tree)."""
    from tremolo_harness import src_dir
    conf = src_dir() / "conf" / "tremolo.conf"
    p = subprocess.run([tremolo_bin(), "-t", "-c", str(conf)],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=20, cwd=str(tmp_path))
    out = p.stdout.decode(errors="replace")
    assert p.returncode == 0, out
    assert "test is successful" in out


def test_free_port_helper_avoids_reserved_range():
    for _ in range(20):
        assert not 2000 <= free_port() <= 2099
