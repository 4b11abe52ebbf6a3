"""Group broadcast node (spec example): a WebSocket chat room.

    /usr/bin/python3 groups.py [--id node1] [--connect tcp://127.0.0.1:5000]

Open ws://HOST/ROOM: the gateway does the WebSocket handshake and then sends
the upgrade's `uwsgi`; the node joins the session to group ROOM (no `headers`
for WebSocket sessions).  Each client message is broadcast with the routed
type `ROOM:websocket` (every member, the sender too unless `noecho`), and a
`ROOM:msg` tells every node serving that room (other nodes included) about it.
Plain HTTP requests get a short usage text.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from tremolo_node import Handler, Node  # noqa: E402

USAGE = b"open a WebSocket to /ROOM to chat\n"


class Rooms(Handler):
    def __init__(self):
        self.room = {}              # sid -> group name
        self.seen = 0               # msgs received from the room's nodes

    def on_request(self, sid, req):
        room = req.get("PATH_INFO", "/").strip("/") or "lobby"
        if req.get("HTTP_UPGRADE", "").lower() == "websocket":
            room = room[:64]
            self.room[sid] = room
            self.node.join(sid, room)
            self.node.websocket(sid, ("joined %s" % room).encode())
            return
        self.node.headers(sid, "200 OK", [("Content-Type", "text/plain"),
                                         ("Content-Length", str(len(USAGE)))])
        self.node.body(sid, USAGE)

    def on_websocket(self, sid, data):
        room = self.room.get(sid)
        if room is None:
            return
        self.node.websocket(sid, data, route=room)
        self.node.msg(sid, room, b"said:" + data)

    def on_msg(self, sid, data):
        self.seen += 1

    def on_end(self, sid):
        self.room.pop(sid, None)    # the gateway drops memberships itself

    def on_spawn(self):
        self.room.clear()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--id", default="node1")
    ap.add_argument("--connect", action="append")
    args = ap.parse_args()
    node = Node(args.id, args.connect or ["tcp://127.0.0.1:5000"])
    try:
        node.run(Rooms())
    finally:
        node.close()


if __name__ == "__main__":
    main()
