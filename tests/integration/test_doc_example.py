"""The example plugin of docs/plugin-api.md (docs/examples/plugins/greet/,
built as a test plugin): the guide shows the file whole, and the plugin
does what the guide says: stage 30 answers through the response API, a
site's [GREET] Shout inherits the global one and is range-checked like it,
a stream filter upper-cases the body, stage 40 sees every finished
response."""

import os
import re
from pathlib import Path

import pytest

BUILD = os.environ["TREMOLO_BUILD"]
SRC = Path(os.environ["TREMOLO_SRC"])
GREET = os.path.join(BUILD, "tests", "plugins", "tremolo-greet.so")
GUIDE = SRC / "docs" / "plugin-api.md"
# <!-- example: PATH --> right before a fenced block: the block is PATH.
EXAMPLE = re.compile(r"<!-- example: (\S+) -->\n```c\n(.*?)```\n", re.S)


def site(name, default=False, greet=None):
    text = "[HOST]\n    ServerName %s\n    DocumentRoot htdocs\n" % name
    text += "    Handler %s\n" % ("static" if name == "files" else "greet")
    if default:
        text += "    Default on\n"
    if greet is not None:
        text += "[GREET]\n" + "".join("    %s\n" % e for e in greet)
    return text


def test_guide_shows_each_example_file_whole():
    shown = EXAMPLE.findall(GUIDE.read_text())
    assert [p for p, _ in shown] == ["docs/examples/plugins/greet/greet.c"]
    for path, text in shown:
        assert text == (SRC / path).read_text(), (
            "%s and its copy in %s differ" % (path, GUIDE))


@pytest.fixture
def greet(tremolo):
    return tremolo(
        plugins=("liana", GREET),
        plugin_confs={"greet": "[GREET]\n    Greeting Hello, world\n"
                               "    Shout on\n"},
        sites={"a": site("plain", default=True),
               "b": site("quiet", greet=["Shout off"]),
               "c": site("loud", greet=[]),
               "d": site("files")})


@pytest.mark.parametrize("host, body", [
    ("plain", b"HELLO, WORLD"),         # no [GREET]: the global Shout
    ("quiet", b"Hello, world"),         # the site's own Shout
    ("loud", b"HELLO, WORLD"),          # [GREET] without Shout inherits it
])
def test_site_shout_inherits_the_global_one(greet, host, body):
    status, headers, got = greet.http("GET", "/x", headers={"Host": host})
    assert (status, got) == (200, body)
    assert headers["content-type"] == "text/plain"
    assert headers["content-length"] == "12"


def test_head_is_answered_without_body(greet):
    status, headers, got = greet.http("HEAD", "/h", headers={"Host": "loud"})
    assert (status, got, headers["content-length"]) == (200, b"", "12")
    greet.wait_log(r"greet: /h 200 0 bytes\n")


def test_stage_40_sees_every_response(greet):
    assert greet.http("GET", "/g", headers={"Host": "quiet"})[0] == 200
    index = greet.http("GET", "/index.html", headers={"Host": "files"})
    assert index[0] == 200
    assert greet.http("GET", "/nope", headers={"Host": "files"})[0] == 404
    greet.wait_log(r"greet: /g 200 12 bytes\n")
    greet.wait_log(r"greet: /index.html 200 %d bytes\n" % len(index[2]))
    greet.wait_log(r"greet: /nope 404 \d+ bytes\n")


def test_site_value_is_checked_like_the_global_one(check_config):
    rc, out = check_config(plugins=("liana", GREET),
                           sites={"a": site("a", True, ["Shout maybe"])})
    assert rc != 0
    site_why = re.search(r"sites/a\.conf:7: Shout: (.*)", out)
    assert site_why, out
    rc, out = check_config(plugins=("liana", GREET),
                           plugin_confs={"greet": "[GREET]\n    Shout maybe\n"})
    assert rc != 0
    assert "greet.conf:2: Shout: " + site_why.group(1) in out, out
