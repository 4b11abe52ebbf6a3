"""A small Flask app for test_flask_node.py, run by tremolo_wsgi.py."""

from flask import Flask, jsonify, redirect, request, url_for

app = Flask(__name__)
ITEMS = {}


@app.get("/")
def index():
    return "hello from flask\n"


@app.get("/hello/<name>")
def hello(name):
    return "hello %s (%s)\n" % (name, request.args.get("lang", "en"))


@app.post("/items")
def add_item():
    data = request.get_json()
    if not isinstance(data, dict) or "name" not in data:
        return jsonify(error="name required"), 400
    item_id = len(ITEMS) + 1
    ITEMS[item_id] = data
    return jsonify(id=item_id, item=data, scheme=request.scheme), 201


@app.get("/items/<int:item_id>")
def get_item(item_id):
    if item_id not in ITEMS:
        return jsonify(error="not found"), 404
    return jsonify(ITEMS[item_id])


@app.get("/old")
def old():
    return redirect(url_for("hello", name="moved"))
