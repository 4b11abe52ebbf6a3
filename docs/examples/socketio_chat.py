"""A socket.io chat as a Tremolo node: a python-socketio WSGI app, ported.

This is a python-socketio application in the shape of that project's
"examples/server/wsgi" chat (a Flask page, a socketio.Server wrapped in a
socketio.WSGIApp, rooms to join, leave and talk in).  Written for
python-socketio it would differ in exactly two lines, both marked
"PORTED" below:

    import socketio                  ->  import tremolo_socketio as socketio
    app.run(threaded=True)           ->  socketio.serve(app.wsgi_app, ...)

Run it (the helper on PYTHONPATH, or installed by `cmake --install`):

    PYTHONPATH=plugins/zmq/nodes/python:build/python \\
        /usr/bin/python3 docs/examples/socketio_chat.py

against a Tremolo site whose `[ZMQ]` lists node `chat-1` and whose
`[SOCKETIO]` section is on, with the socket.io client bundle served as a
static file at /socket.io.min.js (Tremolo does not serve it: copy
node_modules/socket.io-client/dist/socket.io.min.js into the site's
document root).  Open the page in two browsers, join a room in both and
talk.  The same app also runs as

    python3 tremolo_socketio.py socketio_chat:app.wsgi_app --id chat-1 \\
        --connect tcp://127.0.0.1:5000
"""

from flask import Flask

import tremolo_socketio as socketio        # PORTED: was `import socketio`

sio = socketio.Server(logger=True, async_mode="threading")
app = Flask(__name__)
app.wsgi_app = socketio.WSGIApp(sio, app.wsgi_app)

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>socket.io chat</title>
<script src="/socket.io.min.js"></script></head>
<body>
<form id="join">room <input id="room" value="lobby"> <button>join</button>
  <button type="button" id="leave">leave</button></form>
<form id="say">say <input id="text"> <button>send</button></form>
<ul id="log"></ul>
<script>
const socket = io();
const log = (t) => { const li = document.createElement("li");
  li.textContent = t; document.getElementById("log").prepend(li); };
const room = () => document.getElementById("room").value;
socket.on("connect", () => log("connected as " + socket.id));
socket.on("status", (m) => log("* " + m.text));
socket.on("chat", (m) => log("[" + m.room + "] " + m.from + ": " + m.text));
socket.on("disconnect", () => log("disconnected"));
document.getElementById("join").onsubmit = (e) => { e.preventDefault();
  socket.emit("join", {room: room()}, (n) => log("in " + n + " room(s)")); };
document.getElementById("leave").onclick = () =>
  socket.emit("leave", {room: room()});
document.getElementById("say").onsubmit = (e) => { e.preventDefault();
  socket.emit("say", {room: room(), text: document.getElementById("text").value});
  document.getElementById("text").value = ""; };
</script></body></html>
"""


@app.route("/")
def index():
    return PAGE


@sio.event
def connect(sid, environ, auth):
    sio.emit("status", {"text": "welcome, " + sid[:8]}, to=sid)


@sio.event
def join(sid, message):
    room = str(message["room"])
    sio.enter_room(sid, room)
    sio.emit("status", {"text": sid[:8] + " joined " + room}, room=room)
    return len(sio.rooms(sid)) - 1      # the ack: rooms the client is in


@sio.event
def leave(sid, message):
    room = str(message["room"])
    sio.emit("status", {"text": sid[:8] + " left " + room}, room=room,
             skip_sid=sid)
    sio.leave_room(sid, room)


@sio.event
def say(sid, message):
    room = str(message["room"])
    if room not in sio.rooms(sid):
        sio.emit("status", {"text": "join " + room + " first"}, to=sid)
        return
    sio.emit("chat", {"room": room, "from": sid[:8],
                      "text": str(message.get("text", ""))}, room=room)


@sio.event
def disconnect(sid):
    print("client gone:", sid)


if __name__ == "__main__":
    # PORTED: was `app.run(threaded=True)`
    socketio.serve(app.wsgi_app, "chat-1", ["tcp://127.0.0.1:5000"])
