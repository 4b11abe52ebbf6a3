"""A plain ASGI 3 application (no framework) for test_asgi_node.py, run by
plugins/zmq/nodes/python/tremolo_asgi.py. What it saw is kept in SEEN and
served at /seen, so a test can ask the node what its app was told."""

import hashlib
import json

SEEN = {"lifespan": [], "disconnects": [], "ws": []}


async def _read_all(receive, events=None):
    body = bytearray()
    while True:
        m = await receive()
        if m["type"] == "http.disconnect":
            return bytes(body), True
        body += m["body"]
        if events is not None:
            events.append([len(m["body"]), m["more_body"]])
        if not m["more_body"]:
            return bytes(body), False


async def _json(send, obj, status=200):
    data = json.dumps(obj).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": data})


async def http(scope, receive, send):
    path = scope["path"]
    if path == "/echo":
        events = []
        body, _ = await _read_all(receive, events)
        await _json(send, {"events": events, "len": len(body),
                           "sha256": hashlib.sha256(body).hexdigest()})
    elif path == "/scope":
        s = {k: v for k, v in scope.items() if k not in ("state", "extensions")}
        s["headers"] = [[k.decode("latin-1"), v.decode("latin-1")]
                        for k, v in scope["headers"]]
        s["raw_path"] = scope["raw_path"].decode("latin-1")
        s["query_string"] = scope["query_string"].decode("latin-1")
        s["state"] = scope.get("state", {}).get("started")
        await _json(send, s)
    elif path == "/download":
        n = int(scope["query_string"].decode().split("=")[1])
        data = bytes(i % 251 for i in range(n))
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/octet-stream")]})
        await send({"type": "http.response.body", "body": data})
    elif path == "/stream":
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain")]})
        for i in range(5):
            await send({"type": "http.response.body",
                        "body": b"part %d\n" % i, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    elif path == "/stream-length":
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", b"10")]})
        await send({"type": "http.response.body", "body": b"01234",
                    "more_body": True})
        await send({"type": "http.response.body", "body": b"56789"})
    elif path == "/boom":
        raise RuntimeError("boom before the response")
    elif path == "/boom-late":
        await send({"type": "http.response.start", "status": 200,
                    "headers": []})
        await send({"type": "http.response.body", "body": b"partial",
                    "more_body": True})
        raise RuntimeError("boom mid-response")
    elif path == "/wait-disconnect":
        # reads the body, then waits for the client to go away
        got = 0
        while True:
            m = await receive()
            if m["type"] == "http.disconnect":
                SEEN["disconnects"].append(got)
                return
            got += len(m["body"])
    elif path == "/nocontent":
        await send({"type": "http.response.start", "status": 204,
                    "headers": []})
        await send({"type": "http.response.body", "body": b""})
    elif path == "/seen":
        await _json(send, SEEN)
    else:
        await _json(send, {"error": "no route"}, status=404)


async def websocket(scope, receive, send):
    path = scope["path"]
    m = await receive()
    assert m["type"] == "websocket.connect", m
    if path == "/ws/reject":
        await send({"type": "websocket.close", "code": 4003})
        return
    if path == "/ws/boom":
        raise RuntimeError("boom before accept")
    sub = "chat" if "chat" in scope["subprotocols"] else None
    await send({"type": "websocket.accept", "subprotocol": sub})
    while True:
        m = await receive()
        if m["type"] == "websocket.disconnect":
            SEEN["ws"].append([m["code"], m.get("reason", "")])
            return
        if m.get("text") is not None:
            text = m["text"]
            if text.startswith("close:"):
                _, code, reason = text.split(":", 2)
                await send({"type": "websocket.close", "code": int(code),
                            "reason": reason})
                return
            if text == "scope":
                await send({"type": "websocket.send", "text": json.dumps({
                    "path": scope["path"], "query": scope["query_string"]
                    .decode(), "subprotocols": scope["subprotocols"],
                    "scheme": scope["scheme"]})})
                continue
            await send({"type": "websocket.send", "text": text})
        else:
            await send({"type": "websocket.send", "bytes": m["bytes"]})


async def lifespan(scope, receive, send):
    while True:
        m = await receive()
        SEEN["lifespan"].append(m["type"])
        if m["type"] == "lifespan.startup":
            if "state" in scope:
                scope["state"]["started"] = True
            await send({"type": "lifespan.startup.complete"})
        elif m["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def app(scope, receive, send):
    await {"http": http, "websocket": websocket,
           "lifespan": lifespan}[scope["type"]](scope, receive, send)
