"""sio_echo_app.py -- the Python node of tests/bench/socketio.sh, written
against tremolo_socketio (plugins/zmq/nodes/python), the python-socketio
style Server API. The same work as tests/bench/sio_server.js (npm
socket.io) and tests/bench/sio_node.c:

    connect        -> the session enters room "all"
    "echo" + ack   -> the ack gets the event's arguments back
    "bcast"        -> emit("tick", T) to room "all", T = CLOCK_MONOTONIC in
                      ms (time.monotonic_ns, the load client's clock)

Run as node IDENTITY against Tremolo's [ZMQ] Bind endpoint:

    PYTHONPATH=plugins/zmq/nodes/python:build/python \\
        /usr/bin/python3 tests/bench/sio_echo_app.py IDENTITY ENDPOINT

(or `python3 plugins/zmq/nodes/python/tremolo_socketio.py
sio_echo_app:sio --id IDENTITY --connect ENDPOINT` with tests/bench on
PYTHONPATH). With python-socketio, only the import and the start line would
differ.
"""
import sys
import time

import tremolo_socketio as socketio

sio = socketio.Server()


@sio.event
def connect(sid, environ, auth):
    sio.enter_room(sid, "all")


@sio.on("echo")
def echo(sid, *args):
    return args                 # a tuple: the ack carries every argument


@sio.on("bcast")
def bcast(sid, *args):
    sio.emit("tick", time.monotonic_ns() / 1e6, room="all")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: sio_echo_app.py IDENTITY ENDPOINT")
    sio.run(sys.argv[1], [sys.argv[2]])
