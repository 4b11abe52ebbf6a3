"""[HOST] Listen: a site bound to some listeners is served only there (421
elsewhere); sites without Listen share every listener no site reserved;
ServerName may carry a :PORT, which is ignored when matching Host."""

SITE_A = ("[HOST]\n    ServerName a.test\n    DocumentRoot a\n"
          "    Listen 127.0.0.1:{port2}\n")
SITE_B = ("[HOST]\n    ServerName b.test:8080 b2.test\n    DocumentRoot b\n"
          "    Default on\n")
SITE_C = ("[HOST]\n    ServerName c.test\n    DocumentRoot c\n"
          "    Listen 127.0.0.1:{port3}\n")


def _server(tremolo):
    return tremolo(listen=["127.0.0.1:{port}", "127.0.0.1:{port2}",
                           "127.0.0.1:{port3}"],
                   sites={"a": SITE_A, "b": SITE_B, "c": SITE_C},
                   files={"a/index.html": "A", "b/index.html": "B",
                          "c/index.html": "C", "htdocs/x": ""})


def test_site_served_only_on_its_listeners(tremolo):
    srv = _server(tremolo)
    shared, own_a, own_c = srv.port, srv.ports["port2"], srv.ports["port3"]
    assert srv.http("GET", "/", {"Host": "a.test"}, port=own_a)[2] == b"A"
    # a.test is reserved to its own listener: elsewhere it is misdirected
    for port in (shared, own_c):
        status, _, _ = srv.http("GET", "/", {"Host": "a.test"}, port=port)
        assert status == 421
    # b has no Listen: it is on the listener nobody reserved, and only there
    assert srv.http("GET", "/", {"Host": "b.test"}, port=shared)[2] == b"B"
    assert srv.http("GET", "/", {"Host": "b.test"}, port=own_a)[0] == 421


def test_unknown_host_goes_to_the_listeners_default(tremolo):
    srv = _server(tremolo)
    # the Default site where it is served, else the first site served there
    assert srv.http("GET", "/", {"Host": "x.test"})[2] == b"B"
    assert srv.http("GET", "/", {"Host": "x.test"},
                    port=srv.ports["port2"])[2] == b"A"
    assert srv.http("GET", "/", {"Host": "x.test"},
                    port=srv.ports["port3"])[2] == b"C"


def test_server_name_port_is_ignored_for_matching(tremolo):
    srv = _server(tremolo)
    for host in ("b.test", "b.test:8080", "b.test:1", "B2.test:80"):
        assert srv.http("GET", "/", {"Host": host})[2] == b"B", host


def test_listen_must_be_a_server_listen(check_config):
    rc, out = check_config(sites={"a": "[HOST]\n    ServerName a\n"
                                       "    DocumentRoot htdocs\n"
                                       "    Listen 127.0.0.1:1\n"})
    assert rc != 0
    assert "sites/a.conf:4: Listen: 127.0.0.1:1 is not one of [SERVER] " \
           "Listen" in out
    rc, out = check_config(sites={"a": "[HOST]\n    ServerName a\n"
                                       "    DocumentRoot htdocs\n"
                                       "    Listen 127.0.0.1:x\n"})
    assert rc != 0 and "sites/a.conf:4: Listen:" in out


def test_same_host_with_two_ports_in_two_sites_is_refused(check_config):
    rc, out = check_config(sites={
        "a": "[HOST]\n    ServerName h:8080\n    DocumentRoot htdocs\n",
        "b": "[HOST]\n    ServerName h:9090\n    DocumentRoot htdocs\n"})
    assert rc != 0
    assert 'ServerName: "h" is already used by' in out
