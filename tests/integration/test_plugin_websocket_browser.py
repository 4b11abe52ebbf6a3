"""websocket plugin in a real browser: headless Chromium (Debian's
/usr/bin/chromium, driven by playwright-core through tests/js/browser.js)
loads a page that Tremolo serves from DocumentRoot
(tests/integration/ws_pages/chat.html). The page opens
ws://127.0.0.1:PORT/ws, chats with the Python echo node (texts, a 70,000
character message, a binary ArrayBuffer) and closes; the test reads what
the page saw from window.results."""

import json
import os
import subprocess

import pytest

import test_plugin_websocket
from test_plugin_websocket import JS_DIR, PAGES_DIR, node_bin

# The fixture (servers with the echo node), from test_plugin_websocket.py.
wsgw = test_plugin_websocket.wsgw

CHROMIUM = "/usr/bin/chromium"
TEXTS = ["hello from chromium", "ünïcødé ✓ 🎵", "x" * 70000, "last"]


def run_page(url, tmp_path, timeout_ms=20000):
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail("%s not found: make deps installs Debian's chromium"
                    % CHROMIUM, pytrace=False)
    cfg = {"url": url, "timeout": timeout_ms,
           "screenshot": str(tmp_path / "page.png")}
    p = subprocess.run([node_bin(), str(JS_DIR / "browser.js"),
                        json.dumps(cfg)], cwd=str(JS_DIR),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=timeout_ms / 1000 + 60)
    try:
        out = json.loads(p.stdout.decode().strip().splitlines()[-1])
    except (ValueError, IndexError):
        pytest.fail("browser.js printed no result (exit %d)\nstdout: %s\n"
                    "stderr: %s" % (p.returncode, p.stdout[-2000:],
                                    p.stderr[-3000:]), pytrace=False)
    assert p.returncode == 0 and out["done"], \
        "the page did not finish: %s\nstderr: %s" % (
            json.dumps(out)[:3000], p.stderr.decode()[-2000:])
    return out


@pytest.mark.parametrize("deflate", [False, True],
                         ids=["plain", "permessage-deflate"])
def test_chromium_chats_through_the_echo_node(wsgw, tmp_path, deflate):
    ws = "BinaryMessages websocket/binary"
    if deflate:
        ws += "\nDeflate on"
    page = (PAGES_DIR / "chat.html").read_bytes()
    srv = wsgw(ws=ws, files={"htdocs/chat.html": page})
    out = run_page("http://127.0.0.1:%d/chat.html" % srv.port, tmp_path)
    res = out["results"]
    seen = dict(res, texts=[t[:30] + ("...(%d)" % len(t) if len(t) > 30
                                      else "") for t in res["texts"]],
                binaries=[len(b) for b in res["binaries"]],
                console=out["console"])
    assert res["errors"] == [], "the page saw: %s" % seen
    assert res["opened"] is True
    assert res["texts"] == TEXTS, [t[:40] for t in res["texts"]]
    assert res["binaries"] == [list(range(256))]
    assert res["closeCode"] == 1000 and res["wasClean"] is True, res
    if deflate:
        assert "permessage-deflate" in res["extensions"], res["extensions"]
    else:
        assert res["extensions"] == "", res["extensions"]
    # The node saw the browser's upgrade and its messages, typed.
    node = srv.node
    sids = [s for s, v in node.of_type("uwsgi")
            if v.get("QUERY_STRING") == "from=chromium"]
    assert len(sids) == 1, node.of_type("uwsgi")
    sid = sids[0]
    v = node.vars_of(sid)
    assert v["HTTP_ORIGIN"] == "http://127.0.0.1:%d" % srv.port
    assert v["HTTP_UPGRADE"].lower() == "websocket"
    # the page closes with 1000 "bye": the node hears the browser's close
    # code and reason (`websocket/close`) before `end`
    assert node.messages(sid) == [
        ("websocket", TEXTS[0].encode()), ("websocket", TEXTS[1].encode()),
        ("websocket/binary", bytes(range(256))),
        ("websocket", TEXTS[2].encode()), ("websocket", TEXTS[3].encode()),
        ("websocket/close", b"\x03\xe8bye")]
    node.wait_end(sid)
