# asgi_hello.py -- the ASGI app of tests/bench/gateway.sh: the same 13 bytes
# as wsgi_hello.py over HTTP, and a WebSocket echo (each text or binary
# message is sent back as it came). Run by `python3 -m tremolo_node --asgi`
# nodes and by uvicorn behind nginx.

async def app(scope, receive, send):
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain"),
                                (b"content-length", b"13")]})
        await send({"type": "http.response.body", "body": b"hello, world\n"})
    elif scope["type"] == "websocket":
        if (await receive())["type"] != "websocket.connect":
            return
        await send({"type": "websocket.accept"})
        while True:
            msg = await receive()
            if msg["type"] != "websocket.receive":
                return                          # websocket.disconnect
            if msg.get("text") is not None:
                await send({"type": "websocket.send", "text": msg["text"]})
            else:
                await send({"type": "websocket.send", "bytes": msg["bytes"]})
    elif scope["type"] == "lifespan":
        while True:
            msg = await receive()
            if msg["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif msg["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
