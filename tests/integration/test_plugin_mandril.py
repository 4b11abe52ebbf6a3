"""mandril: IP allow/deny at connect time (stage 10)."""

import re
import socket

import pytest

from plugin_util import start_fails, wait_for
from tremolo_harness import DEFAULT_INDEX, can_connect

PLUGINS = ("liana", "mandril")
GET = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


def mandril(*lines):
    return {"mandril": "[MANDRIL]\n" + "".join("    %s\n" % l for l in lines)}


def denied(srv):
    """True when the server closes without sending a single byte."""
    data, closed = srv.raw(GET, timeout=5)
    return data == b"" and closed


def test_deny_localhost_closes_before_reading(tremolo):
    srv = tremolo(plugins=PLUGINS,
                  plugin_confs=mandril("Deny 127.0.0.0/8", "LogDenied on"))
    assert denied(srv)
    assert wait_for(lambda: re.search(r"denied.*127\.0\.0\.1",
                                      srv.error_log()))


def test_log_denied_off_is_quiet(tremolo):
    srv = tremolo(plugins=PLUGINS, plugin_confs=mandril("Deny all"))
    assert denied(srv)
    assert "denied" not in srv.error_log()


def test_allow_localhost(tremolo):
    srv = tremolo(plugins=PLUGINS,
                  plugin_confs=mandril("Allow 127.0.0.1", "Deny all"))
    status, _, body = srv.get("/")
    assert status == 200 and body == DEFAULT_INDEX


def test_first_match_wins(tremolo):
    # The Deny of the host comes after a broader Allow: the Allow decides.
    srv = tremolo(plugins=PLUGINS, plugin_confs=mandril(
        "Allow 127.0.0.0/8", "Deny 127.0.0.1", "Default deny"))
    assert srv.get("/")[0] == 200
    srv2 = tremolo(plugins=PLUGINS, plugin_confs=mandril(
        "Deny 127.0.0.1/32", "Allow 127.0.0.0/8"))
    assert denied(srv2)


def test_other_networks_do_not_match(tremolo):
    srv = tremolo(plugins=PLUGINS, plugin_confs=mandril(
        "Deny 10.0.0.0/8", "Deny 2001:db8::/32", "Deny 127.0.0.2"))
    assert srv.get("/")[0] == 200


def test_default_policy(tremolo):
    srv = tremolo(plugins=PLUGINS, plugin_confs=mandril(
        "Allow 192.0.2.0/24", "Default deny"))
    assert denied(srv)
    srv2 = tremolo(plugins=PLUGINS, plugin_confs=mandril(
        "Deny 192.0.2.0/24", "Default allow"))
    assert srv2.get("/")[0] == 200


def test_ipv4_mapped_peer_matches_ipv4_rule(tremolo):
    """On a dual-stack listener an IPv4 client is seen as ::ffff:127.0.0.1;
    an IPv4 rule must still catch it."""
    try:
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        s.bind(("::", 0))
        s.close()
    except OSError:
        pytest.skip("no dual-stack IPv6 here")
    srv = tremolo(plugins=PLUGINS, listen=["[::]:{port}"],
                  plugin_confs=mandril("Deny 127.0.0.1", "LogDenied on"))
    if not can_connect("127.0.0.1", srv.port):
        pytest.skip("the [::] listener is IPv6-only")
    assert denied(srv)


@pytest.mark.parametrize("value, reason", [
    ("10.0.0.0/33", '"10.0.0.0/33": prefix length out of range'),
    ("2001:db8::/129", '"2001:db8::/129": prefix length out of range'),
    ("10.0.0.0/x", '"10.0.0.0/x": bad prefix length'),
    ("10.0.0", '"10.0.0": not an IPv4/IPv6 address'),
])
def test_bad_cidr_refused_with_file_and_line(check_config, value, reason):
    rc, out = check_config(plugins=PLUGINS, plugin_confs={
        "mandril": "[MANDRIL]\n    Allow 127.0.0.1\n    Deny %s\n" % value})
    assert rc != 0
    assert re.search(r"mandril\.conf:3: Deny: " + re.escape(reason), out), out


def test_bad_cidr_stops_start(tremolo):
    srv = tremolo(plugins=PLUGINS, start=False,
                  plugin_confs=mandril("Allow 10.0.0.0/33"))
    rc, out = start_fails(srv)
    assert rc != 0
    assert "mandril.conf:2: Allow: \"10.0.0.0/33\": prefix length out of " \
           "range" in out, out


def test_bad_default_refused(check_config):
    rc, out = check_config(plugins=PLUGINS,
                           plugin_confs=mandril("Default maybe"))
    assert rc != 0
    assert re.search(r"mandril\.conf:2: Default", out), out
