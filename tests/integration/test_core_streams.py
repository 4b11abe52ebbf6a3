"""Streams: many request/response exchanges in flight on one connection,
through the toy protocol `lineproto` (tests/plugins/lineproto.c, selected
by `Listen ... protocol=lineproto`), each
through stages 20 (auth), 30 (static or the `echo` handler) and 40
(logger). Its wire: `<id> <METHOD> <path> <body length>\\n` opens a stream,
`<id> = <n>\\n<bytes>` sends it body bytes; each answer is
`<id> <status> <length>\\n<body>`."""

import os
import re
import socket

from plugin_util import tremolo_passwd
from test_plugin_logger import lines_of

BUILD = os.path.join(os.environ["TREMOLO_BUILD"], "tests", "plugins")
LINEPROTO = os.path.join(BUILD, "tremolo-lineproto.so")
ECHO = os.path.join(BUILD, "tremolo-echo.so")
INDEX = b"<html>streams</html>\n"
SECRET = b"secret file\n"
SITE = ("[HOST]\n    ServerName localhost\n    Default on\n"
        "    DocumentRoot htdocs\n"
        "[LOCATION /echo]\n    Handler echo\n"
        "[AUTH]\n    Location /private\n    Realm Staff\n"
        "    Users private.users\n")


def start(tremolo):
    srv = tremolo(plugins=("liana", LINEPROTO, "auth", "logger", ECHO),
                  sites={"default": SITE},
                  plugin_confs={"logger": "[LOGGER]\n    AccessLog access.log\n"
                                          "    Format combined\n"},
                  files={"htdocs/index.html": INDEX,
                         "htdocs/private/a.txt": SECRET},
                  listen=["127.0.0.1:{port} liana protocol=lineproto"],
                  start=False)
    rc, err = tremolo_passwd("-c", srv.conf_dir / "private.users", "alice",
                             password="s3cret")
    assert rc == 0, err
    return srv.start()


class Client:
    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data)

    def answer(self):
        """The next answer: (id, status, body); waits at most 5 s."""
        while True:
            head, sep, rest = self.buf.partition(b"\n")
            if sep:
                sid, status, length = head.split()
                if len(rest) >= int(length):
                    self.buf = rest[int(length):]
                    return sid.decode(), int(status), rest[:int(length)]
            chunk = self.sock.recv(65536)
            assert chunk, "closed with %r pending" % self.buf
            self.buf += chunk

    def close(self):
        self.sock.close()


def test_two_streams_in_flight_on_one_connection(tremolo):
    srv = start(tremolo)
    c = Client(srv.port)
    # stream 1 waits for its body at the echo handler while stream 2 is
    # served by the static handler: both are open at once
    c.send(b"1 POST /echo/x 5\n2 GET /index.html 0\n")
    assert c.answer() == ("2", 200, INDEX)
    c.send(b"1 = 2\nhe")
    c.send(b"3 GET /private/a.txt 0\n")     # stage 20 answers this one
    sid, status, body = c.answer()
    assert (sid, status) == ("3", 401) and SECRET not in body
    c.send(b"1 = 3\nllo")
    assert c.answer() == ("1", 200, b"hello")
    c.close()


def test_stage_40_runs_per_stream(tremolo):
    srv = start(tremolo)
    c = Client(srv.port)
    c.send(b"a GET /index.html 0\nb GET /nope.html 0\n")
    answers = sorted([c.answer()[:2], c.answer()[:2]])
    assert answers == [("a", 200), ("b", 404)]
    lines = lines_of(srv.conf_dir / "access.log", 2)
    seen = sorted(re.search(r'"GET (\S+) HTTP/1.1" (\d+)', l).groups()
                  for l in lines)
    assert seen == [("/index.html", "200"), ("/nope.html", "404")]
    c.close()


def test_closing_with_streams_pending(tremolo):
    srv = start(tremolo)
    c = Client(srv.port)
    c.send(b"1 POST /echo/x 100\n1 = 4\nhalf")
    c.close()                                # the stream never ends
    c = Client(srv.port)                     # the server carries on
    c.send(b"2 GET /index.html 0\n")
    assert c.answer() == ("2", 200, INDEX)
    c.close()
