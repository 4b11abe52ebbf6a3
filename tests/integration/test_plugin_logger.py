"""logger: the access log at stage 40 (combined and JSON lines, USR1
reopen, per-vhost logs, log-injection escaping)."""

import base64
import json
import os
import re
import signal

from plugin_util import tremolo_passwd, wait_for
from tremolo_harness import DEFAULT_INDEX, DEFAULT_SITE

PLUGINS = ("liana", "logger")
COMBINED = re.compile(
    r'^(?P<addr>\S+) - (?P<user>\S+) \[(?P<time>[^\]]+)\] "(?P<request>[^"]*)" '
    r'(?P<status>\d{3}) (?P<bytes>\d+) "(?P<referer>[^"]*)" '
    r'"(?P<ua>[^"]*)"$')


def logger(access_log="access.log", fmt="combined"):
    return {"logger": "[LOGGER]\n    AccessLog %s\n    Format %s\n"
                      % (access_log, fmt)}


def open_files(pid):
    """The paths of the files process pid has open."""
    out = []
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            out.append(os.readlink("/proc/%d/fd/%s" % (pid, fd)))
        except OSError:
            pass
    return out


def lines_of(path, n, timeout=5):
    """Waits until `path` holds at least n lines; returns them."""
    def read():
        try:
            return path.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return []
    wait_for(lambda: len(read()) >= n, timeout)
    return read()


def test_combined_line(tremolo):
    srv = tremolo(plugins=PLUGINS, plugin_confs=logger())
    status, _, body = srv.get("/index.html?a=1", headers={
        "User-Agent": "pytest-agent/1.0", "Referer": "http://ref.test/x"})
    assert status == 200 and body == DEFAULT_INDEX
    status404, _, body404 = srv.get("/missing.html")
    assert status404 == 404
    lines = lines_of(srv.conf_dir / "access.log", 2)
    assert len(lines) == 2, lines
    m = COMBINED.match(lines[0])
    assert m, lines[0]
    assert m["addr"] == "127.0.0.1" and m["user"] == "-"
    assert m["request"] == "GET /index.html?a=1 HTTP/1.1"
    assert int(m["status"]) == 200
    assert int(m["bytes"]) == len(DEFAULT_INDEX)
    assert m["referer"] == "http://ref.test/x"
    assert m["ua"] == "pytest-agent/1.0"
    assert re.fullmatch(r"\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}",
                        m["time"])
    m = COMBINED.match(lines[1])
    assert m and int(m["status"]) == 404
    assert int(m["bytes"]) == len(body404)
    assert m["referer"] == "-"


def test_head_logs_zero_bytes(tremolo):
    srv = tremolo(plugins=PLUGINS, plugin_confs=logger())
    assert srv.http("HEAD", "/index.html")[0] == 200
    m = COMBINED.match(lines_of(srv.conf_dir / "access.log", 1)[0])
    assert m and m["request"].startswith("HEAD ") and m["bytes"] == "0"


def test_log_injection_is_escaped(tremolo):
    srv = tremolo(plugins=PLUGINS, plugin_confs=logger())
    # HTAB is the one control byte a field value may carry (RFC 9110)
    evil = b'evil" 200 0 "-" "x\ty'
    data = srv.request(b"GET /index.html HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                       b"User-Agent: " + evil + b"\r\n"
                       b"Referer: \xff\xfe\r\nConnection: close\r\n\r\n")
    assert data.startswith(b"HTTP/1.1 200")
    lines = lines_of(srv.conf_dir / "access.log", 1)
    assert len(lines) == 1
    m = COMBINED.match(lines[0])
    assert m, lines[0]
    assert m["ua"] == r'evil\x22 200 0 \x22-\x22 \x22x\x09y'
    assert m["referer"] == r"\xff\xfe"


def test_json_format(tremolo):
    srv = tremolo(plugins=PLUGINS, plugin_confs=logger(fmt="json"))
    assert srv.get("/index.html?q=%22x", headers={
        "User-Agent": 'ua "quoted" \\ back'})[0] == 200
    srv.request(b"GET /nope HTTP/1.0\r\nUser-Agent: \xc3\xa9\xff\r\n\r\n")
    lines = lines_of(srv.conf_dir / "access.log", 2)
    assert len(lines) == 2
    e = json.loads(lines[0])
    assert e["method"] == "GET" and e["uri"] == "/index.html?q=%22x"
    assert e["protocol"] == "HTTP/1.1" and e["status"] == 200
    assert e["bytes"] == len(DEFAULT_INDEX)
    assert e["remote_addr"] == "127.0.0.1"
    assert e["user_agent"] == 'ua "quoted" \\ back'
    assert e["host"].startswith("127.0.0.1")
    assert e["referer"] is None
    assert isinstance(e["request_time_ms"], int) and e["request_time_ms"] >= 0
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d",
                        e["time"])
    e = json.loads(lines[1])
    assert e["status"] == 404 and e["protocol"] == "HTTP/1.0"
    # valid UTF-8 (é) passes, the stray 0xff byte becomes \u00ff
    assert e["user_agent"] == "\u00e9\u00ff"
    assert e["host"] is None


def test_usr1_reopens_after_rename(tremolo):
    srv = tremolo(plugins=PLUGINS, plugin_confs=logger())
    log = srv.conf_dir / "access.log"
    rotated = srv.conf_dir / "access.log.1"
    assert srv.get("/index.html?n=1")[0] == 200
    lines_of(log, 1)
    os.rename(log, rotated)
    assert srv.get("/index.html?n=2")[0] == 200
    # Until USR1 the server keeps writing to the renamed file.
    assert len(lines_of(rotated, 2)) == 2
    srv.signal(signal.SIGUSR1)
    # The new file exists as soon as the master opens it, a moment before
    # it takes the old descriptor's place: wait until the server's
    # descriptor names the new file, not until the file exists.
    assert wait_for(lambda: str(log) in open_files(srv.pid), 5), \
        "access.log not reopened after USR1"
    assert srv.get("/index.html?n=3")[0] == 200
    new = lines_of(log, 1)
    assert len(new) == 1 and "n=3" in new[0]
    old = rotated.read_text().splitlines()
    assert len(old) == 2 and "n=1" in old[0] and "n=2" in old[1]


def test_per_vhost_log(tremolo):
    other = ("[HOST]\n    ServerName other.test\n    DocumentRoot htdocs\n"
             "    Handler static\n"
             "[LOGGER]\n    AccessLog other.log\n    Format json\n")
    quiet = ("[HOST]\n    ServerName quiet.test\n    DocumentRoot htdocs\n"
             "    Handler static\n[LOGGER]\n    AccessLog off\n")
    srv = tremolo(plugins=PLUGINS, plugin_confs=logger("main.log"),
                  sites={"default": DEFAULT_SITE, "other": other,
                         "quiet": quiet})
    assert srv.get("/index.html?v=other",
                   headers={"Host": "other.test"})[0] == 200
    assert srv.get("/index.html?v=quiet",
                   headers={"Host": "quiet.test"})[0] == 200
    assert srv.get("/index.html?v=main")[0] == 200
    other_lines = lines_of(srv.conf_dir / "other.log", 1)
    main_lines = lines_of(srv.conf_dir / "main.log", 1)
    assert len(other_lines) == 1
    assert json.loads(other_lines[0])["uri"] == "/index.html?v=other"
    assert len(main_lines) == 1 and COMBINED.match(main_lines[0])
    assert "v=main" in main_lines[0]
    assert not any("quiet" in l for l in other_lines + main_lines)


def test_remote_user_from_basic_credentials(tremolo):
    srv = tremolo(plugins=PLUGINS, plugin_confs=logger(fmt="json"))
    cred = base64.b64encode(b"alice:secret-pw").decode()
    assert srv.get("/index.html",
                   headers={"Authorization": "Basic " + cred})[0] == 200
    lines = lines_of(srv.conf_dir / "access.log", 1)
    e = json.loads(lines[0])
    assert e["remote_user"] == "alice"
    assert "secret-pw" not in lines[0]


def test_remote_user_not_logged_on_401(tremolo):
    srv = tremolo(plugins=("liana", "auth", "logger"), start=False,
                  plugin_confs=logger(),
                  sites={"default": DEFAULT_SITE + "[AUTH]\n"
                         "    Location /\n    Users users\n"})
    rc, err = tremolo_passwd("-c", srv.conf_dir / "users", "alice",
                             password="right")
    assert rc == 0, err
    srv.start()
    good = "Basic " + base64.b64encode(b"alice:right").decode()
    bad = "Basic " + base64.b64encode(b"mallory:guess").decode()
    assert srv.get("/index.html", headers={"Authorization": bad})[0] == 401
    assert srv.get("/index.html", headers={"Authorization": good})[0] == 200
    lines = lines_of(srv.conf_dir / "access.log", 2)
    m401, m200 = COMBINED.match(lines[0]), COMBINED.match(lines[1])
    assert m401 and m401["status"] == "401" and m401["user"] == "-"
    assert m200 and m200["status"] == "200" and m200["user"] == "alice"
    assert "mallory" not in lines[0]


def test_bad_format_refused(check_config):
    rc, out = check_config(plugins=PLUGINS, plugin_confs=logger(fmt="xml"))
    assert rc != 0
    assert re.search(r"logger\.conf:3: Format: \"xml\"", out), out
