"""Chunked response node (spec example): streams a counted response.

    /usr/bin/python3 chunked.py [--id node1] [--connect tcp://127.0.0.1:5000]

HTTP/1.1 requests get `Transfer-Encoding: chunked` and `chunk` messages (an
empty chunk ends the response, the connection stays open).  HTTP/1.0 clients
cannot decode chunks (spec 2.3), so they get a close-delimited body and `end`.
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from tremolo_node import Handler, Node  # noqa: E402


class Chunked(Handler):
    def __init__(self, parts=5, delay=0.0):
        self.parts = parts
        self.delay = delay

    def on_request(self, sid, req):
        n = self.node
        if req.get("SERVER_PROTOCOL") == "HTTP/1.1":
            n.headers(sid, "200 OK", [("Content-Type", "text/plain"),
                                     ("Transfer-Encoding", "chunked")])
            for i in range(self.parts):
                n.chunk(sid, b"part %d\n" % i)
                time.sleep(self.delay)
            n.chunk(sid, b"")       # terminator: 0\r\n\r\n
        else:
            n.headers(sid, "200 OK", [("Content-Type", "text/plain"),
                                     ("Connection", "close")],
                      protocol="HTTP/1.0")
            for i in range(self.parts):
                n.body(sid, b"part %d\n" % i)
            n.end(sid)              # the close marks the end of the body


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--id", default="node1")
    ap.add_argument("--connect", action="append")
    ap.add_argument("--delay", type=float, default=0.0)
    args = ap.parse_args()
    node = Node(args.id, args.connect or ["tcp://127.0.0.1:5000"])
    try:
        node.run(Chunked(delay=args.delay))
    finally:
        node.close()


if __name__ == "__main__":
    main()
