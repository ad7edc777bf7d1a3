"""Bind the real-time layer to an app: socket handlers and the relay that emits committed events."""
from __future__ import annotations


def init_app(app) -> None:
    from realtime import sockets  # noqa: F401 - registers the socket handlers
