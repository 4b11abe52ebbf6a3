"""auth: HTTP Basic per location (stage 20), and the tremolo-passwd tool."""

import base64
import os
import re
import signal
import stat

import pytest

from plugin_util import start_fails, tremolo_passwd, wait_for
from tremolo_harness import DEFAULT_SITE

PLUGINS = ("liana", "auth")
PRIVATE = b"<html>private index</html>\n"
SECRET = b"secret file\n"
FILES = {
    "htdocs/index.html": b"<html>public</html>\n",
    "htdocs/private/index.html": PRIVATE,
    "htdocs/private/a.txt": SECRET,
    "htdocs/privateer": b"not protected\n",
    "htdocs/admin/x.txt": b"admin\n",
}
SITE = DEFAULT_SITE + ("[AUTH]\n    Location /private\n"
                       "    Realm Staff only\n    Users private.users\n")


def basic(user, password):
    raw = ("%s:%s" % (user, password)).encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


def make_server(tremolo, site=SITE, users=(("alice", "s3cret"),),
                users_file="private.users"):
    srv = tremolo(plugins=PLUGINS, sites={"default": site}, files=FILES,
                  start=False)
    create = True
    for user, password in users:
        args = ["-c"] if create else []
        rc, err = tremolo_passwd(*args, srv.conf_dir / users_file, user,
                                 password=password)
        assert rc == 0, err
        create = False
    return srv.start()


@pytest.fixture
def srv(tremolo):
    return make_server(tremolo, users=(("alice", "s3cret"),
                                       ("bob", "pa:ss w0rd")))


def assert_401(resp):
    status, headers, body = resp
    assert status == 401
    assert headers["www-authenticate"] == \
        'Basic realm="Staff only", charset="UTF-8"'
    assert SECRET not in body and PRIVATE not in body


def test_no_credentials(srv):
    assert_401(srv.get("/private/a.txt"))
    assert_401(srv.get("/private/"))
    assert_401(srv.get("/private"))


def test_wrong_password_and_unknown_user(srv):
    assert_401(srv.get("/private/a.txt", headers=basic("alice", "wrong")))
    assert_401(srv.get("/private/a.txt", headers=basic("alice", "s3cre")))
    assert_401(srv.get("/private/a.txt", headers=basic("alice", "s3cretX")))
    assert_401(srv.get("/private/a.txt", headers=basic("carol", "s3cret")))
    assert_401(srv.get("/private/a.txt", headers=basic("", "s3cret")))


def test_right_password(srv):
    status, _, body = srv.get("/private/a.txt", headers=basic("alice",
                                                              "s3cret"))
    assert status == 200 and body == SECRET
    # the password is everything after the first colon
    status, _, body = srv.get("/private/a.txt", headers=basic("bob",
                                                              "pa:ss w0rd"))
    assert status == 200 and body == SECRET
    # one user's password is not another's
    assert_401(srv.get("/private/a.txt", headers=basic("bob", "s3cret")))


def test_malformed_authorization(srv):
    good = basic("alice", "s3cret")["Authorization"].split()[1]
    for value in ["Bearer " + good, "Basic", "Basic !!!!", "Basic " + good[:-1],
                  "Basic " + base64.b64encode(b"alice").decode(),
                  "Basic " + base64.b64encode(b"alice:s3cret\x00x").decode(),
                  "Digest username=alice"]:
        assert_401(srv.get("/private/a.txt", headers={"Authorization": value}))
    # the scheme is case-insensitive (RFC 9110 section 11.1)
    assert srv.get("/private/a.txt",
                   headers={"Authorization": "basic " + good})[0] == 200


def test_outside_location_is_public(srv):
    assert srv.get("/index.html")[0] == 200
    assert srv.get("/admin/x.txt")[0] == 200
    status, _, body = srv.get("/privateer")
    assert status == 200 and body == b"not protected\n"


def test_path_tricks_stay_protected(srv):
    for path in ["/%70rivate/a.txt", "/x/../private/a.txt",
                 "/./private/a.txt", "/private/./a.txt", "//private/a.txt",
                 "/private%2fa.txt"]:
        status, _, body = srv.get(path)
        assert status == 401 and SECRET not in body, (path, status)


def test_keepalive_requests_reuse_verification(srv):
    with srv.connect() as c:
        for _ in range(20):
            r = c.request("GET", "/private/a.txt",
                          headers=basic("alice", "s3cret"))
            assert r.status == 200 and r.body == SECRET
        r = c.request("GET", "/private/a.txt", headers=basic("alice", "no"))
        assert r.status == 401


def test_most_specific_location_wins(tremolo):
    site = DEFAULT_SITE + (
        "[AUTH]\n    Location /\n    Realm Everything\n    Users all.users\n"
        "[AUTH]\n    Location /private/\n    Realm Staff only\n"
        "    Users private.users\n")
    srv = tremolo(plugins=PLUGINS, sites={"default": site}, files=FILES,
                  start=False)
    assert tremolo_passwd("-c", srv.conf_dir / "all.users", "guest",
                          password="g")[0] == 0
    assert tremolo_passwd("-c", srv.conf_dir / "private.users", "alice",
                          password="a")[0] == 0
    srv.start()
    status, headers, _ = srv.get("/index.html")
    assert status == 401 and 'realm="Everything"' in headers["www-authenticate"]
    assert srv.get("/index.html", headers=basic("guest", "g"))[0] == 200
    assert_401(srv.get("/private/a.txt", headers=basic("guest", "g")))
    assert srv.get("/private/a.txt", headers=basic("alice", "a"))[0] == 200


def test_reload_applies_new_password(tremolo):
    srv = make_server(tremolo)
    assert srv.get("/private/a.txt", headers=basic("alice", "s3cret"))[0] \
        == 200
    rc, err = tremolo_passwd(srv.conf_dir / "private.users", "alice",
                             password="n3w")
    assert rc == 0, err
    srv.reload()
    assert_401(srv.get("/private/a.txt", headers=basic("alice", "s3cret")))
    assert srv.get("/private/a.txt", headers=basic("alice", "n3w"))[0] == 200


def test_unsupported_hash_refused_at_start(tremolo):
    srv = tremolo(plugins=PLUGINS, sites={"default": SITE}, files=dict(
        FILES, **{"private.users": "# users\nalice:$1$salt$abcdefgh\n"}),
        start=False)
    rc, out = start_fails(srv)
    assert rc != 0
    assert re.search(r"private\.users:2: unsupported hash type", out), out


def test_missing_users_file_refused_at_start(tremolo):
    srv = tremolo(plugins=PLUGINS, sites={"default": SITE}, files=FILES,
                  start=False)
    rc, out = start_fails(srv)
    assert rc != 0
    assert re.search(r"default\.conf:\d+: Users: .*private\.users", out), out


def test_bad_users_file_fails_config_test(check_config):
    """Users files are read while the configuration is checked, so
    `tremolo -t` (and a reload) catches them, with file:line."""
    rc, out = check_config(plugins=PLUGINS, sites={"default": SITE},
                           files={"private.users": "alice:$6$s$h\nbob\n"})
    assert rc != 0
    assert re.search(r"private\.users:2: expected user:hash", out), out
    rc, out = check_config(plugins=PLUGINS, sites={"default": SITE})
    assert rc != 0
    users_line = SITE.count("\n")
    assert re.search(r"default\.conf:%d: Users: .*private\.users: No such "
                     r"file" % users_line, out), out


def test_bad_reload_keeps_old_users(tremolo):
    srv = make_server(tremolo)
    (srv.conf_dir / "private.users").write_text("alice:plaintext\n")
    srv.signal(signal.SIGHUP)
    assert wait_for(lambda: "unsupported hash type" in srv.error_log())
    assert srv.alive()
    assert srv.get("/private/a.txt", headers=basic("alice", "s3cret"))[0] \
        == 200


def test_location_required(check_config):
    rc, out = check_config(plugins=PLUGINS, sites={
        "default": DEFAULT_SITE + "[AUTH]\n    Users x.users\n"})
    assert rc != 0
    auth_line = DEFAULT_SITE.count("\n") + 1
    assert re.search(r"default\.conf:%d: \[AUTH\]: Location is required"
                     % auth_line, out), out


def test_bad_realm_refused(check_config):
    rc, out = check_config(plugins=PLUGINS, sites={
        "default": DEFAULT_SITE + '[AUTH]\n    Location /p\n'
                                  '    Realm say "hi"\n    Users x.users\n'})
    assert rc != 0
    realm_line = DEFAULT_SITE.count("\n") + 3
    assert re.search(r"default\.conf:%d: Realm: .*no quotes" % realm_line,
                     out), out


# ---- tremolo-passwd ---------------------------------------------------------

def test_passwd_create_update_delete(tmp_path):
    f = tmp_path / "users"
    assert tremolo_passwd("-c", f, "alice", password="one")[0] == 0
    assert stat.S_IMODE(os.stat(f).st_mode) == 0o640
    assert tremolo_passwd(f, "bob", password="two")[0] == 0
    first = f.read_text().splitlines()
    assert [l.split(":")[0] for l in first] == ["alice", "bob"]
    assert all(l.split(":", 1)[1].startswith("$6$") for l in first)
    assert tremolo_passwd(f, "alice", password="three")[0] == 0
    second = f.read_text().splitlines()
    assert second[1] == first[1] and second[0] != first[0]
    assert second[0].startswith("alice:$6$")
    rc, _ = tremolo_passwd("-D", f, "alice")
    assert rc == 0
    assert f.read_text().splitlines() == [first[1]]
    rc, err = tremolo_passwd("-D", f, "alice")
    assert rc == 1 and "alice" in err
    # -c truncates
    assert tremolo_passwd("-c", f, "carol", password="x")[0] == 0
    assert [l.split(":")[0] for l in f.read_text().splitlines()] == ["carol"]
    assert not [p for p in tmp_path.iterdir() if p.name != "users"], \
        "temporary file left behind"


def test_passwd_errors(tmp_path):
    rc, err = tremolo_passwd(tmp_path / "none", "alice", password="x")
    assert rc == 1 and "-c" in err
    rc, err = tremolo_passwd("-c", tmp_path / "u", "a:b", password="x")
    assert rc == 1 and "user name" in err
    rc, err = tremolo_passwd("-c", tmp_path / "u", "alice", password="")
    assert rc == 1 and "empty" in err
    rc, err = tremolo_passwd("-c", tmp_path / "u", "alice")   # no stdin
    assert rc == 1
    rc, err = tremolo_passwd("onlyone")
    assert rc == 1 and "usage" in err
    rc, err = tremolo_passwd("-c", tmp_path / "no-dir" / "u", "alice",
                             password="x")
    assert rc == 1 and "no-dir" in err
    assert not (tmp_path / "u").exists()
