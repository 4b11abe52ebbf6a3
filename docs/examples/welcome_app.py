"""The demo node `make run` starts: a WSGI app served through Tremolo's
ZeroMQ gateway (plugins/zmq/nodes/python/tremolo_wsgi.py). The welcome page
fetches /node/ to show that a live node answered.

    PYTHONPATH=docs/examples /usr/bin/python3 \
        plugins/zmq/nodes/python/tremolo_wsgi.py welcome_app:app \
        --id demo-1 --connect tcp://127.0.0.1:5000
"""

import os
import time


def app(environ, start_response):
    body = ("Hello from node pid %d at %s: you asked for %s from %s:%s.\n" % (
        os.getpid(), time.strftime("%H:%M:%S"), environ.get("PATH_INFO"),
        environ.get("REMOTE_ADDR"), environ.get("REMOTE_PORT"))).encode()
    start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8"),
                              ("Content-Length", str(len(body)))])
    return [body]
