"""Per-site plugin settings that inherit the global ones (issue 11, "config
inheritance once"): every per-site key of the zmq and websocket plugins is
parsed and range-checked as its global key is, and refused with the site
file's file:line and the global key's reason; a key a site leaves out takes
the value set in zmq.conf / websocket.conf, not the built-in default."""

import re

import pytest

from test_plugin_websocket import (BINARY, TEXT, connect, ws_site, wsgw,
                                   zmq_conf)  # noqa: F401 (fixture)
from test_plugin_zmq import wait_for
from test_plugin_zmq_queues import held_sessions, holder
from test_plugin_zmq_sites import A, available, site, zsites  # noqa: F401

ZMQ_GLOBAL = "[ZMQ]\n    Bind tcp://127.0.0.1:{port1}\n    PingFreq 1s\n"


def reason(out, fname, key):
    """(line, reason) of the `fname:line: key: reason` message in out."""
    m = re.search(r"%s:(\d+): %s: (.*)" % (re.escape(fname), re.escape(key)),
                  out)
    assert m, out
    return int(m.group(1)), m.group(2).strip()


def line_of(text, entry):
    return text.splitlines().index("    " + entry) + 1


# ---- zmq ---------------------------------------------------------------------

@pytest.mark.parametrize("entry", [
    "NodeTimeout 5ms", "MaxHops 33", "MaxHops -1", "PingFreq 1ms",
    "Groups 0", "GroupsPerSession 0", "Sessions -1", "Sessions x",
])
def test_zmq_site_value_out_of_range_is_refused_like_the_global(
        check_config, entry):
    key = entry.split()[0]
    text = site(A, ["n"], [entry], default=True)
    rc, out = check_config(plugins=("liana", "zmq"), sites={"a": text},
                           plugin_confs={"zmq": ZMQ_GLOBAL})
    assert rc != 0, out
    line, why = reason(out, "sites/a.conf", key)
    assert line == line_of(text, entry), out

    rc, out = check_config(plugins=("liana", "zmq"),
                           sites={"a": site(A, ["n"], default=True)},
                           plugin_confs={"zmq": "[ZMQ]\n    Bind tcp://127.0.0"
                                                ".1:{port1}\n    %s\n" % entry})
    assert rc != 0, out
    assert reason(out, "zmq.conf", key) == (3, why)


def test_zmq_site_write_queue_limit_has_the_servers_minimum(check_config):
    text = site(A, ["n"], ["WriteQueueLimit 1K"], default=True)
    rc, out = check_config(plugins=("liana", "zmq"), sites={"a": text},
                           plugin_confs={"zmq": ZMQ_GLOBAL})
    assert rc != 0, out
    line, why = reason(out, "sites/a.conf", "WriteQueueLimit")
    assert line == line_of(text, "WriteQueueLimit 1K"), out

    rc, out = check_config(server="WriteQueueLimit 1K",
                           plugins=("liana", "zmq"),
                           sites={"a": site(A, ["n"], default=True)},
                           plugin_confs={"zmq": ZMQ_GLOBAL})
    assert rc != 0, out
    assert reason(out, "tremolo.conf", "WriteQueueLimit")[1] == why


def test_zmq_site_values_in_range_are_accepted(check_config):
    text = site(A, ["n"], ["NodeTimeout 10ms", "MaxHops 32", "PingFreq 10ms",
                           "Groups 1", "GroupsPerSession 1", "Sessions 0",
                           "WriteQueueLimit 64K"], default=True)
    rc, out = check_config(plugins=("liana", "zmq"), sites={"a": text},
                           plugin_confs={"zmq": ZMQ_GLOBAL})
    assert rc == 0, out


@pytest.mark.parametrize("site_line,cap", [(None, 2), ("GroupsPerSession 3", 3)])
def test_zmq_site_inherits_groups_per_session_from_zmq_conf(zsites, site_line,
                                                            cap):
    """zmq.conf says GroupsPerSession 2; a site that leaves it out has that
    cap (not the built-in 1024), one that sets 3 has 3."""
    srv = zsites({"a": site(A, ["n"], [site_line] if site_line else [],
                            default=True)},
                 zmq_conf="GroupsPerSession 2")
    sids = []
    node = srv.node(srv.endpoint(), b"n", holder(sids))
    available(srv, "n")
    conns = held_sessions(srv, sids, 1)
    for i in range(cap + 1):
        node.send(sids[0], b"join", b"g%d" % i)
    srv.wait_log(r"join refused, GroupsPerSession \(%d\) reached" % cap)
    for s in conns:
        s.close()


# ---- websocket ----------------------------------------------------------------

WS_BAD = ["MaxMessageSize 0", "PingInterval 2d", "IdleTimeout 2d",
          "SendQueueLimit 1K", "CloseTimeout 5ms", "SlowReaderCode 1011",
          "BinaryMessages text", "Deflate maybe", "DeflateWindowBits 8",
          "DeflateMemLevel 10", "DeflateContextTakeover 2",
          "DeflateMemory lots"]


@pytest.mark.parametrize("entry", WS_BAD)
def test_websocket_site_value_out_of_range_is_refused_like_the_global(
        check_config, entry):
    key = entry.split()[0]
    text = ws_site(entry)
    confs = {"zmq": zmq_conf("tcp://127.0.0.1:{port1}")}
    rc, out = check_config(plugins=("liana", "zmq", "websocket"),
                           sites={"default": text}, plugin_confs=confs)
    assert rc != 0, out
    line, why = reason(out, "sites/default.conf", key)
    assert line == line_of(text, entry), out

    confs["websocket"] = "[WEBSOCKET]\n    %s\n" % entry
    rc, out = check_config(plugins=("liana", "zmq", "websocket"),
                           sites={"default": ws_site()}, plugin_confs=confs)
    assert rc != 0, out
    assert reason(out, "websocket.conf", key) == (2, why)


@pytest.mark.parametrize("site_ws,binary", [
    ("CloseTimeout 3s", "websocket/binary"),       # left out: websocket.conf's
    ("BinaryMessages websocket", "websocket"),     # set: the site's
])
def test_websocket_site_inherits_websocket_conf(wsgw, site_ws, binary):
    """websocket.conf says BinaryMessages websocket/binary; the site has a
    [WEBSOCKET] section either way."""
    srv = wsgw(ws=site_ws, on_msg=None, plugin_confs={
        "websocket": "[WEBSOCKET]\n    BinaryMessages websocket/binary\n"})
    ws, sid = connect(srv)
    ws.send_frame(BINARY, b"\x00bin")
    ws.send_frame(TEXT, "text")
    assert wait_for(lambda: len(srv.node.messages(sid)) == 2)
    assert srv.node.messages(sid) == [(binary, b"\x00bin"),
                                      ("websocket", b"text")]
