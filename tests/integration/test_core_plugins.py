"""Plugin loading: built-in and shared-object plugins, enabling and
disabling them in plugins.load without a rebuild, and the loader's refusals
(unknown plugin, wrong ABI, a section of a plugin that is not loaded, a
listener naming a network layer that is not loaded)."""

import os
import subprocess

import pytest

BUILD = os.environ["TREMOLO_BUILD"]
SRC = os.environ["TREMOLO_SRC"]


def so(name):
    path = os.path.join(BUILD, "plugins", "tremolo-%s.so" % name)
    if not os.path.exists(path):
        pytest.fail("%s was not built (TREMOLO_PLUGINS_SHARED_COPIES)" % path)
    return path


def access_lines(srv):
    path = srv.conf_dir / "access.log"
    return path.read_text().splitlines() if path.exists() else []


def test_shared_object_plugins_serve_and_log(tremolo):
    srv = tremolo(plugins=(so("liana"), so("logger")),
                  plugin_confs={"logger": "[LOGGER]\n    AccessLog access.log\n"})
    status, _, body = srv.http("GET", "/")
    assert status == 200 and body
    srv.stop()
    lines = access_lines(srv)
    assert len(lines) == 1 and '"GET / HTTP/1.1" 200' in lines[0], lines


def test_builtin_and_disabled_plugin(tremolo):
    conf = {"logger": "[LOGGER]\n    AccessLog access.log\n"}
    on = tremolo(plugins=("liana", "logger"), plugin_confs=conf)
    assert on.http("GET", "/")[0] == 200
    on.stop()
    assert len(access_lines(on)) == 1

    # Same binary, logger left out of plugins.load: nothing logs, and its
    # own file (logger.conf) being present is not an error.
    off = tremolo(plugins=("liana",), plugin_confs=conf)
    assert off.http("GET", "/")[0] == 200
    off.stop()
    assert access_lines(off) == []


def test_unknown_plugin_refused(check_config):
    rc, out = check_config(plugins=("liana", "nosuchplugin"))
    assert rc == 1
    assert 'plugins.load:3: Load: no plugin "nosuchplugin"' in out, out


def test_plugin_loaded_twice_refused(check_config):
    rc, out = check_config(plugins=("liana", "liana"))
    assert rc == 1 and "loaded twice" in out, out


def test_wrong_abi_refused(check_config, tmp_path):
    src = tmp_path / "old.c"
    src.write_text(
        '#include "mk_server/mk_plugin.h"\n'
        "MK_PLUGIN_EXPORT const struct mk_plugin mk_plugin_old = {\n"
        '    .abi = MK_PLUGIN_ABI + 41, .name = "old" };\n')
    lib = tmp_path / "tremolo-old.so"
    subprocess.run(["cc", "-shared", "-fPIC", "-I", SRC, "-o", str(lib),
                    str(src)], check=True)
    rc, out = check_config(plugins=("liana", str(lib)))
    assert rc == 1
    assert "plugin ABI %d" % (41 + abi()) in out and "rebuild" in out, out


def abi():
    with open(os.path.join(SRC, "mk_server", "mk_plugin.h")) as f:
        for line in f:
            if line.startswith("#define MK_PLUGIN_ABI "):
                return int(line.split()[2])
    raise AssertionError("MK_PLUGIN_ABI not found")


def test_section_of_unloaded_plugin_refused(check_config):
    site = ("[HOST]\n    ServerName a\n    DocumentRoot htdocs\n"
            "[LOGGER]\n    AccessLog x.log\n")
    rc, out = check_config(plugins=("liana",), sites={"a": site})
    assert rc == 1
    assert ("a.conf:4: section [LOGGER] belongs to plugin LOGGER, which is "
            "not loaded") in out, out


def test_unknown_section_in_site_refused(check_config):
    site = ("[HOST]\n    ServerName a\n    DocumentRoot htdocs\n"
            "[NOSUCH]\n    X y\n")
    rc, out = check_config(sites={"a": site})
    assert rc == 1 and "a.conf:4: unknown section [NOSUCH]" in out, out


def test_listener_layer_must_be_loaded(check_config):
    rc, out = check_config(listen=["127.0.0.1:{port} tls"])
    assert rc == 1
    assert 'network layer "tls" is not a loaded network plugin' in out, out


def test_content_handler_must_exist(check_config):
    site = ("[HOST]\n    ServerName a\n    DocumentRoot htdocs\n"
            "[LOCATION /api]\n    Handler nosuch\n")
    rc, out = check_config(sites={"a": site})
    assert rc == 1
    assert "a.conf:4: Handler:" in out and "nosuch" in out, out
