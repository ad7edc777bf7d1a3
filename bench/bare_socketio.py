"""The baseline of bench/realtime_fanout.py: a bare Flask-SocketIO server (same Redis message queue, same
serving mode) that broadcasts a payload to a room when POST /fire is called. No database, no auth."""

import os

from flask import Flask, request
from flask_socketio import SocketIO, join_room

app = Flask(__name__)
socketio = SocketIO(
    app,
    message_queue=os.environ.get("REDIS_URL"),
    channel=os.environ.get("CHANNEL", "bare"),
    async_mode=os.environ.get("SOCKETIO_ASYNC_MODE", "threading"),
)


@socketio.on("connect")
def connect(auth=None):
    join_room("coordinators")


@app.post("/fire")
def fire():
    socketio.emit(
        "casevac.created",
        {"seq": 0, "type": "casevac.created", "at": "", "data": request.get_json()},
        to="coordinators",
    )
    return {"ok": True}


@app.get("/healthz")
def healthz():
    return {"status": "ok"}
