"""A FastAPI application for test_fastapi_node.py, run as a Tremolo node
by plugins/zmq/nodes/python/tremolo_asgi.py."""

from fastapi import FastAPI, WebSocket, WebSocketDisconnect
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

app = FastAPI()
STATE = {"started": False, "closed": []}


@app.on_event("startup")
async def startup():
    STATE["started"] = True


class Item(BaseModel):
    name: str
    price: float


@app.get("/hello")
async def hello():
    return {"hello": "world", "started": STATE["started"]}


@app.get("/items/{item_id}")
async def get_item(item_id: int, q: str = None):
    return {"item_id": item_id, "q": q}


@app.post("/items")
async def create_item(item: Item):
    return {"name": item.name, "double": item.price * 2}


@app.get("/stream")
async def stream(n: int = 3):
    async def gen():
        for i in range(n):
            yield ("line %d\n" % i).encode()
    return StreamingResponse(gen(), media_type="text/plain")


@app.get("/closed")
async def closed():
    return {"closed": STATE["closed"]}


@app.websocket("/ws/{room}")
async def ws(websocket: WebSocket, room: str):
    await websocket.accept()
    await websocket.send_json({"room": room})
    try:
        while True:
            msg = await websocket.receive()
            if msg["type"] == "websocket.disconnect":
                STATE["closed"].append(msg["code"])
                return
            if msg.get("text") == "bye":
                await websocket.close(code=4000)
                return
            if msg.get("text") is not None:
                await websocket.send_text(msg["text"].upper())
            else:
                await websocket.send_bytes(msg["bytes"][::-1])
    except WebSocketDisconnect as exc:
        STATE["closed"].append(exc.code)
