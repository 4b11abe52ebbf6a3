"""Hello world node (spec example): answers every request with a fixed page.

    /usr/bin/python3 hello.py [--id node1] [--connect tcp://127.0.0.1:5000]

Content-Length framing keeps HTTP/1.1 connections alive, so no `end` is sent.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from tremolo_node import Handler, Node  # noqa: E402

PAGE = b"Hello World\n"


class Hello(Handler):
    def on_request(self, sid, req):
        self.node.headers(sid, "200 OK", [("Content-Type", "text/plain"),
                                         ("Content-Length", str(len(PAGE)))])
        if req.get("REQUEST_METHOD") != "HEAD":
            self.node.body(sid, PAGE)
        if req.get("SERVER_PROTOCOL") != "HTTP/1.1" \
                and "keep-alive" not in req.get("HTTP_CONNECTION", "").lower():
            self.node.end(sid)      # HTTP/1.0 without keep-alive: close


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--id", default="node1")
    ap.add_argument("--connect", action="append")
    args = ap.parse_args()
    node = Node(args.id, args.connect or ["tcp://127.0.0.1:5000"])
    try:
        node.run(Hello())
    finally:
        node.close()


if __name__ == "__main__":
    main()
