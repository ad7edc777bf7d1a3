"""Fixtures for the real-time tests: in-process Socket.IO clients and events published like a domain does."""

from __future__ import annotations

import pytest
from flask import current_app

from config.extensions import db, socketio
from realtime import events
from realtime.relay import relay
from tests.helpers import auth_headers


@pytest.fixture
def connect():
    """connect(user) -> a Flask-SocketIO test client authenticated as that user (disconnected at teardown).
    Works with the `app` and `pg_app` fixtures (whichever pushed the app context)."""
    clients = []

    def _connect(user, **kwargs):
        token = auth_headers(user)["Authorization"].split(" ", 1)[1]
        client = socketio.test_client(current_app._get_current_object(), auth={"token": token}, **kwargs)
        clients.append(client)
        return client

    yield _connect
    for client in clients:
        if client.is_connected():
            client.disconnect()


@pytest.fixture
def fresh_relay():
    """The process relay with its cursor at the current end of the log (as at server start)."""
    relay.start_from_now(db.engine)
    yield relay
    relay.cursor = None


@pytest.fixture
def publish():
    """publish(type, rooms, data, mission_id=) -> seq-less event committed in its own transaction."""

    def _publish(type, rooms, data=None, *, mission_id=None):
        row = events.publish(db.session, type, rooms, data or {}, mission_id=mission_id)
        db.session.commit()
        return row.id

    return _publish


def received(client, name=None) -> list[dict]:
    """Envelopes the test client received (optionally of one event name), in arrival order."""
    return [packet["args"][0] for packet in client.get_received() if name is None or packet["name"] == name]


def token_of(user) -> str:
    return auth_headers(user)["Authorization"].split(" ", 1)[1]


def sync_all(client, since: int = 0) -> tuple[list[dict], int]:
    """Follow `more` to the end: every envelope after `since` and the final watermark."""
    envelopes = []
    while True:
        ack = client.emit("sync", {"since": since}, callback=True)
        envelopes += ack["events"]
        since = ack["last_seq"]
        if not ack["more"]:
            return envelopes, since
