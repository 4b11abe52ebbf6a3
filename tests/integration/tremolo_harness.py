"""Start a real Tremolo binary on 127.0.0.1 with a throw-away configuration,
and talk to it.

The pytest fixture `tremolo` (conftest.py) is a factory around `Tremolo`:

    srv = tremolo(server="", sites=None, plugins=("liana",), plugin_confs=None,
                  files=None, workers=1, listen=None, start=True, extra_args=())

Placeholders `{port}`, `{port2}`, ... (regex `{port\\d*}`) in `listen`,
`server`, `sites`, `plugin_confs` and `extra_args` are replaced by free TCP
ports; `srv.ports` maps each placeholder name to its port. Nothing else in
those texts is touched, so braces in e.g. a JSON log format are safe.

Environment (set by ctest, see tests/CMakeLists.txt):
    TREMOLO_BIN    the binary under test
    TREMOLO_SRC    the source tree (for conf/mime.types)
    TREMOLO_BUILD  the build directory
"""

import http.client
import os
import re
import select
import signal as _signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

HOST = "127.0.0.1"
START_TIMEOUT = 10.0
DEFAULT_INDEX = b"<html><body><h1>tremolo test index</h1></body></html>\n"
DEFAULT_SITE = ("[HOST]\n"
                "    ServerName 127.0.0.1 localhost\n"
                "    Default on\n"
                "    DocumentRoot htdocs\n"
                "    Handler static\n")
RELOADED_MARK = "configuration reloaded"
STARTED_MARK = re.compile(r"workers: \d+, scheduler: ")

_PLACEHOLDER = re.compile(r"\{(port\d*)\}")
_handed_out = set()


def tremolo_bin():
    b = os.environ.get("TREMOLO_BIN")
    if not b:
        b = str(Path(os.environ.get("TREMOLO_BUILD", src_dir() / "build"))
                / "tremolo")
    return b


def src_dir():
    env = os.environ.get("TREMOLO_SRC")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2]


def version():
    """The project version, as CMakeLists.txt declares it."""
    text = (src_dir() / "CMakeLists.txt").read_text()
    m = re.search(r"project\(\s*tremolo\s+VERSION\s+([0-9][0-9.]*)", text)
    assert m, "no project(tremolo VERSION ...) in CMakeLists.txt"
    return m.group(1)


def free_port():
    """A TCP port free on 127.0.0.1 right now (bind to 0 and release).
    Avoids 2000-2099 (make run, demos) and ports this process already
    handed out. A small race with other processes is accepted."""
    for _ in range(200):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind((HOST, 0))
            port = s.getsockname()[1]
        finally:
            s.close()
        if 2000 <= port <= 2099 or port in _handed_out:
            continue
        _handed_out.add(port)
        return port
    raise RuntimeError("no free port found")


def _node_guard_override(text):
    """TREMOLO_NODE_GUARD=native (or on/off) runs a suite with that
    NodeGuard: added to a [ZMQ] section that names neither NodeGuard nor
    Curve (a test that sets them means its own)."""
    mode = os.environ.get("TREMOLO_NODE_GUARD")
    if (not mode or re.search(r"(?im)^\s*NodeGuard\s", text) or
            re.search(r"(?im)^\s*Curve\s+on", text)):
        return text
    return re.sub(r"(?m)^\[ZMQ\][ \t]*$", "[ZMQ]\n    NodeGuard %s" % mode,
                  text, count=1)


def _indent(text):
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line:
            out.append("    " + line)
    return out


def _parse_addr(entry):
    """'[ADDR:]PORT [LAYER]' -> (family, host to connect to, port)."""
    spec = entry.split()[0]
    if spec.startswith("["):
        host, _, port = spec[1:].partition("]:")
        if host in ("::", ""):
            host = "::1"
        return socket.AF_INET6, host, int(port)
    if ":" in spec:
        host, port = spec.rsplit(":", 1)
        if host in ("0.0.0.0", "*", ""):
            host = HOST
        return socket.AF_INET, host, int(port)
    return socket.AF_INET, HOST, int(spec)


def memory_env():
    """The environment for a server whose memory a test bounds: under
    AddressSanitizer the quarantine keeps every freed block out of reuse,
    so RSS would count all bytes that ever passed through, not what is
    held. Everything else ASan checks stays on."""
    env = dict(os.environ)
    if "ASAN_OPTIONS" in env:
        env["ASAN_OPTIONS"] += ":quarantine_size_mb=0"
    return env


def memory_bounded():
    """False under ThreadSanitizer (`make test-tsan` sets TSAN_OPTIONS): its
    shadow memory grows with every byte the process touches, so RSS says
    nothing about what the server holds. The normal and ASan runs check
    memory bounds; under TSan a test checks everything else."""
    return "TSAN_OPTIONS" not in os.environ


def raw_exchange(port, data, shut_wr=False, timeout=5.0):
    """Send bytes to a loopback port (optionally half-closing after them);
    read until the server closes or `timeout`. Returns (received bytes,
    closed by the server, seconds it took)."""
    if isinstance(data, str):
        data = data.encode("latin-1")
    s = socket.create_connection((HOST, port), timeout=timeout)
    t0 = time.monotonic()
    out, closed = b"", False
    try:
        try:
            s.sendall(data)
            if shut_wr:
                s.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass
        while True:
            left = t0 + timeout - time.monotonic()
            if left <= 0:
                break
            r, _, _ = select.select([s], [], [], left)
            if not r:
                break
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                closed = True
                break
            if not chunk:
                closed = True
                break
            out += chunk
    finally:
        s.close()
    return out, closed, time.monotonic() - t0


def can_connect(host, port, family=socket.AF_INET, timeout=0.5):
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect((host, port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def _pid_alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


class Response:
    """One parsed HTTP/1.x response: .status, .reason, .headers (lower-cased
    names; repeated headers joined with ', '), .header_list, .body, .raw_head."""

    def __init__(self, status, reason, headers, header_list, body, raw_head):
        self.status = status
        self.reason = reason
        self.headers = headers
        self.header_list = header_list
        self.body = body
        self.raw_head = raw_head

    def __repr__(self):
        return "<Response %d %r %d bytes>" % (self.status, self.headers,
                                               len(self.body))


def _parse_head(head):
    lines = head.split(b"\r\n")
    m = re.match(rb"HTTP/(\d\.\d) (\d{3})(?: (.*))?$", lines[0])
    if not m:
        raise ValueError("bad status line %r" % lines[0])
    headers, hlist = {}, []
    for ln in lines[1:]:
        if not ln:
            continue
        name, _, value = ln.partition(b":")
        name = name.decode("latin-1").strip().lower()
        value = value.decode("latin-1").strip()
        hlist.append((name, value))
        headers[name] = headers[name] + ", " + value if name in headers \
            else value
    return int(m.group(2)), (m.group(3) or b"").decode("latin-1"), headers, \
        hlist


def parse_one(data, head_only=False, eof=False):
    """Parse one response at the start of `data`. Returns (Response, rest)
    or (None, data) when `data` does not hold a whole response yet. A body
    without Content-Length or chunking runs to EOF (needs eof=True)."""
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return None, data
    head = data[:end]
    status, reason, headers, hlist = _parse_head(head)
    pos = end + 4
    if head_only or status in (204, 304) or 100 <= status < 200:
        return Response(status, reason, headers, hlist, b"", head), data[pos:]
    te = headers.get("transfer-encoding", "").lower()
    if "chunked" in te:
        body = b""
        while True:
            nl = data.find(b"\r\n", pos)
            if nl < 0:
                return None, data
            size = int(data[pos:nl].split(b";")[0], 16)
            pos = nl + 2
            if size == 0:
                trailer_end = data.find(b"\r\n\r\n", pos - 2)
                if trailer_end < 0:
                    return None, data
                return (Response(status, reason, headers, hlist, body, head),
                        data[trailer_end + 4:])
            if len(data) < pos + size + 2:
                return None, data
            body += data[pos:pos + size]
            pos += size + 2
    if "content-length" in headers:
        n = int(headers["content-length"])
        if len(data) < pos + n:
            return None, data
        return (Response(status, reason, headers, hlist, data[pos:pos + n],
                         head), data[pos + n:])
    if not eof:
        return None, data
    return Response(status, reason, headers, hlist, data[pos:], head), b""


def parse_responses(data, head_methods=()):
    """Parse all complete responses in `data` (a whole exchange read to EOF).
    head_methods: indexes of responses that answer HEAD (no body)."""
    out = []
    rest = data
    while rest:
        r, rest2 = parse_one(rest, head_only=len(out) in head_methods,
                             eof=True)
        if r is None:
            break
        out.append(r)
        rest = rest2
    return out


class Conn:
    """A raw client socket with a read buffer, for keep-alive and pipelining:
    send() bytes, then read_response() one response at a time."""

    def __init__(self, host, port, timeout=5.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.timeout = timeout
        self.buf = b""
        self.eof = False

    def send(self, data):
        if isinstance(data, str):
            data = data.encode("latin-1")
        self.sock.sendall(data)

    def _fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("no complete response in time; have %r"
                               % self.buf[:300])
        self.sock.settimeout(left)
        try:
            chunk = self.sock.recv(65536)
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            self.eof = True
        self.buf += chunk

    def read_response(self, head=False, timeout=None):
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            r, rest = parse_one(self.buf, head_only=head, eof=self.eof)
            if r is not None:
                self.buf = rest
                return r
            if self.eof:
                raise EOFError("connection closed; have %r" % self.buf[:300])
            self._fill(deadline)

    def request(self, method="GET", path="/", headers=None, body=b"",
                version="HTTP/1.1"):
        self.send(build_request(method, path, headers, body, version))
        return self.read_response(head=(method == "HEAD"))

    def closed_by_peer(self, timeout=2.0):
        """True when the server closes the connection within `timeout`
        (anything still buffered or arriving is discarded)."""
        deadline = time.monotonic() + timeout
        while not self.eof:
            try:
                self._fill(deadline)
            except (TimeoutError, socket.timeout):
                return False
            self.buf = b""
        return True

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def build_request(method="GET", path="/", headers=None, body=b"",
                  version="HTTP/1.1"):
    """Bytes of one request; adds Host: 127.0.0.1 unless given, and
    Content-Length for a non-empty body."""
    headers = dict(headers or {})
    names = {k.lower() for k in headers}
    if "host" not in names and version == "HTTP/1.1":
        headers["Host"] = HOST
    if isinstance(body, str):
        body = body.encode()
    if body and "content-length" not in names and \
            "transfer-encoding" not in names:
        headers["Content-Length"] = str(len(body))
    head = "%s %s %s\r\n" % (method, path, version)
    head += "".join("%s: %s\r\n" % kv for kv in headers.items())
    return head.encode("latin-1") + b"\r\n" + body


class Tremolo:
    """One server instance in its own configuration directory."""

    def __init__(self, conf_dir, server="", sites=None, plugins=("liana",),
                 plugin_confs=None, files=None, workers=1, listen=None,
                 extra_args=()):
        self.conf_dir = Path(conf_dir)
        self.host = HOST
        self.ports = {}
        self.proc = None
        self.pid = None
        self.returncode = None
        self._daemon = False
        self.extra_args = [self._subst(str(a)) for a in extra_args]
        self.env = None                  # the process environment: ours
        self._write_config(server, sites, plugins, plugin_confs, files,
                           workers, listen)

    # ---- configuration -------------------------------------------------

    def _subst(self, text):
        def repl(m):
            name = m.group(1)
            if name not in self.ports:
                self.ports[name] = free_port()
            return str(self.ports[name])
        return _PLACEHOLDER.sub(repl, text)

    def _write_config(self, server, sites, plugins, plugin_confs, files,
                      workers, listen):
        d = self.conf_dir
        d.mkdir(parents=True, exist_ok=True)
        (d / "sites").mkdir(exist_ok=True)

        user_lines = _indent(self._subst(server or ""))
        user_keys = {ln.split()[0].lower() for ln in user_lines
                     if not ln.strip().startswith("#")}
        if "listen" in user_keys:
            listen_entries = [ln.split(None, 1)[1] for ln in user_lines
                              if ln.split()[0].lower() == "listen"]
        else:
            listen_entries = [self._subst(e) for e in
                              (listen or ["127.0.0.1:{port}"])]
        defaults = [("Listen", e) for e in listen_entries] + [
            ("Workers", str(workers)),
            ("ErrorLog", str(d / "error.log")),
            ("PidFile", str(d / "tremolo.pid")),
            ("LogLevel", "info"),
            ("MimeTypes", str(src_dir() / "conf" / "mime.types")),
        ]
        lines = ["[SERVER]"]
        lines += ["    %s %s" % kv for kv in defaults
                  if kv[0].lower() not in user_keys]
        lines += user_lines
        self.conf_path = d / "tremolo.conf"
        self.conf_path.write_text("\n".join(lines) + "\n")

        (d / "plugins.load").write_text(
            "[PLUGINS]\n" + "".join("    Load %s\n" % p for p in plugins))

        if sites is None:
            sites = {"default": DEFAULT_SITE}
        for name, text in sites.items():
            fname = name if name.endswith(".conf") else name + ".conf"
            (d / "sites" / fname).write_text(self._subst(text))
        for name, text in (plugin_confs or {}).items():
            fname = name if name.endswith(".conf") else name + ".conf"
            if fname == "zmq.conf":
                text = _node_guard_override(text)
            (d / fname).write_text(self._subst(text))

        files = dict(files or {})
        if not any(k.startswith("htdocs/") for k in files):
            files["htdocs/index.html"] = DEFAULT_INDEX
        for rel, content in files.items():
            p = d / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, str):
                content = content.encode()
            p.write_bytes(content)

        # Where to wait for the server: the -l overrides if any, else Listen.
        args = self.extra_args
        overrides = [args[i + 1] for i, a in enumerate(args[:-1]) if a == "-l"]
        self.listen = overrides or listen_entries
        # .port is where the server really listens: the first -l or Listen.
        self.port = _parse_addr(self.listen[0])[2]
        self.url = "http://%s:%d" % (HOST, self.port)

    def write(self, rel, content):
        """Write a file under the conf dir (creating folders)."""
        p = self.conf_dir / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(content.encode() if isinstance(content, str) else content)
        return p

    # ---- process -------------------------------------------------------

    def command(self, *args):
        return [tremolo_bin(), "-c", str(self.conf_path)] + list(args)

    def check_config(self):
        """Run `tremolo -t -c CONF`; returns (exit code, stdout+stderr)."""
        p = subprocess.run(self.command("-t", *self.extra_args),
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=30, cwd=str(self.conf_dir))
        return p.returncode, p.stdout.decode("utf-8", "replace")

    def start(self, timeout=START_TIMEOUT):
        with open(self.conf_dir / "stdout.txt", "wb") as out, \
                open(self.conf_dir / "stderr.txt", "wb") as err:
            self.proc = subprocess.Popen(self.command(*self.extra_args),
                                         stdout=out, stderr=err,
                                         stdin=subprocess.DEVNULL,
                                         cwd=str(self.conf_dir),
                                         env=self.env)
        self.pid = self.proc.pid
        self._daemon = "-D" in self.extra_args
        deadline = time.monotonic() + timeout
        if self._daemon:
            self._adopt_daemon(deadline)
        pending = [_parse_addr(e) for e in self.listen]
        while pending:
            if not self.alive():
                self._fail_start("exited with code %s before listening"
                                 % self._exit_code())
            if time.monotonic() > deadline:
                self._fail_start("not listening on %s after %.0f s"
                                 % (pending, timeout))
            fam, host, port = pending[0]
            if can_connect(host, port, fam, timeout=0.2):
                pending.pop(0)
            else:
                time.sleep(0.05)
        # The port accepts as soon as the master has bound it; workers and
        # their thread names may follow a moment later. The start-up line
        # ("workers: N, scheduler: ...") says they are up. Not fatal: a test
        # may send the log elsewhere.
        end = min(deadline, time.monotonic() + 3)
        while time.monotonic() < end and not STARTED_MARK.search(
                self.error_log() + self.stderr()):
            time.sleep(0.02)
        return self

    def wait_log(self, pattern, timeout=5):
        """Wait until the error log matches the regex `pattern`; returns the
        match, or fails the test showing the log."""
        deadline = time.monotonic() + timeout
        while True:
            m = re.search(pattern, self.error_log())
            if m:
                return m
            if time.monotonic() > deadline:
                pytest.fail("no /%s/ in the error log within %s s:\n%s"
                            % (pattern, timeout, self.error_log()),
                            pytrace=False)
            time.sleep(0.05)

    def _adopt_daemon(self, deadline):
        """-D: the launched process exits 0 after forking; the daemon's pid
        is read from the PidFile."""
        try:
            rc = self.proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            self._fail_start("-D: the foreground process did not exit")
        if rc != 0:
            self._fail_start("-D: the foreground process exited %d" % rc)
        pidfile = self.conf_dir / "tremolo.pid"
        while time.monotonic() < deadline:
            try:
                pid = int(pidfile.read_text().split()[0])
                if _pid_alive(pid):
                    self.pid = pid
                    return
            except (FileNotFoundError, ValueError, IndexError):
                pass
            time.sleep(0.05)
        self._fail_start("-D: no live pid in %s" % pidfile)

    def _exit_code(self):
        if self.proc is not None and self.pid == self.proc.pid:
            return self.proc.poll()
        return None

    def _fail_start(self, why):
        if self.alive():
            self._kill()
        pytest.fail("tremolo %s\n--- command: %s\n--- error log:\n%s\n"
                    "--- stderr:\n%s" % (why, " ".join(self.command(
                        *self.extra_args)), self.error_log(), self.stderr()),
                    pytrace=False)

    def alive(self):
        if self.pid is None:
            return False
        if self.proc is not None and self.pid == self.proc.pid:
            return self.proc.poll() is None
        return _pid_alive(self.pid)

    def wait_exit(self, timeout):
        """Wait up to `timeout` s for the server to exit; returns its exit
        code (0 for a daemon, whose status we cannot see) or None."""
        deadline = time.monotonic() + timeout
        if self.proc is not None and self.pid == self.proc.pid:
            try:
                self.returncode = self.proc.wait(timeout)
                return self.returncode
            except subprocess.TimeoutExpired:
                return None
        while time.monotonic() < deadline:
            if not _pid_alive(self.pid):
                self.returncode = 0
                return 0
            time.sleep(0.05)
        return None

    def _kill(self):
        try:
            os.kill(self.pid, _signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.wait_exit(5)

    def signal(self, sig):
        os.kill(self.pid, sig)

    def stop(self, timeout=10):
        """SIGTERM and wait; returns the exit code. A server that ignores
        TERM is SIGKILLed and the test fails."""
        if self.pid is None:
            return None
        if not self.alive():
            return self.wait_exit(1)
        self.signal(_signal.SIGTERM)
        rc = self.wait_exit(timeout)
        if rc is None:
            self._kill()
            pytest.fail("tremolo did not exit within %s s of SIGTERM; "
                        "killed.\n--- error log:\n%s" % (timeout,
                                                         self.error_log()))
        return rc

    def reload(self, timeout=10):
        """SIGHUP, then wait for the next `configuration reloaded` line."""
        before = self.error_log().count(RELOADED_MARK)
        self.signal(_signal.SIGHUP)
        deadline = time.monotonic() + timeout
        while self.error_log().count(RELOADED_MARK) <= before:
            if not self.alive():
                pytest.fail("tremolo exited on SIGHUP\n--- error log:\n%s"
                            % self.error_log())
            if time.monotonic() > deadline:
                pytest.fail("no '%s' within %s s of SIGHUP\n--- error log:"
                            "\n%s" % (RELOADED_MARK, timeout,
                                      self.error_log()))
            time.sleep(0.05)

    # ---- looking at it -------------------------------------------------

    def _read(self, name):
        try:
            return (self.conf_dir / name).read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def error_log(self):
        return self._read("error.log")

    def stdout(self):
        return self._read("stdout.txt")

    def stderr(self):
        return self._read("stderr.txt")

    def threads(self):
        names = []
        for comm in Path("/proc/%d/task" % self.pid).glob("*/comm"):
            try:
                names.append(comm.read_text().strip())
            except (FileNotFoundError, ProcessLookupError):
                pass
        return names

    def listen_sockets(self, port=None):
        """How many LISTEN sockets this process has on `port` (ss -ltnpH)."""
        port = port or self.port
        out = subprocess.run(["ss", "-ltnpH"], stdout=subprocess.PIPE,
                             check=True, timeout=10).stdout.decode()
        n = 0
        for line in out.splitlines():
            f = line.split()
            if len(f) >= 4 and f[3].rsplit(":", 1)[-1] == str(port) and \
                    re.search(r"pid=%d," % self.pid, line):
                n += 1
        return n

    # ---- talking to it -------------------------------------------------

    def connect(self, timeout=5.0, port=None):
        return Conn(HOST, port or self.port, timeout)

    def raw(self, data, timeout=5.0, port=None):
        """Send `data`, read until the server closes or `timeout`; returns
        (bytes, closed) where closed tells whether the server closed."""
        return raw_exchange(port or self.port, data, timeout=timeout)[:2]

    def request(self, raw_bytes, timeout=5, port=None):
        """Raw exchange: send bytes, read until close or timeout."""
        return self.raw(raw_bytes, timeout, port)[0]

    def http(self, method, path, headers=None, body=None, port=None,
             timeout=10):
        """(status, {lower-cased header: value}, body) via http.client."""
        c = http.client.HTTPConnection(HOST, port or self.port,
                                       timeout=timeout)
        try:
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            data = r.read()
            hdrs = {}
            for k, v in r.getheaders():
                k = k.lower()
                hdrs[k] = hdrs[k] + ", " + v if k in hdrs else v
            return r.status, hdrs, data
        finally:
            c.close()

    def get(self, path, headers=None, port=None):
        """Shorthand: GET via http.client, returns the same triple."""
        return self.http("GET", path, headers=headers, port=port)
