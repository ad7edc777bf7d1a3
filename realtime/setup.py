"""Bind the real-time layer to an app: socket handlers, the relay's wake-up after commit, the Redis bus;
and (in a serving process only) the background tasks: relay loop, sweeper, Redis listener, coalescer."""

from __future__ import annotations

import logging

from config.extensions import socketio
from realtime import events
from realtime.relay import relay
from realtime.sweeper import sweeper
from realtime.volatile import Coalescer

log = logging.getLogger(__name__)


def _emit_local(type: str, rooms: list, envelope: dict) -> None:
    socketio.emit(type, envelope, to=list(rooms), ignore_queue=True)


class _State:
    bus = None
    coalescer = Coalescer(_emit_local)
    started = False


state = _State()


def init_app(app) -> None:
    from realtime import sockets

    sockets.register()

    settings = app.extensions["settings"]
    events.on_commit(relay.wake_now)
    relay.poll_seconds = settings.RELAY_POLL_SECONDS
    if settings.REDIS_URL:
        from realtime.bus import Bus

        state.bus = Bus(settings.REDIS_URL, settings.REDIS_PREFIX)
        relay.notify_others = lambda events: state.bus.publish(state.bus.wake_channel, {"events": events})
    else:
        state.bus = None
        relay.notify_others = None


def dispatch_volatile(type: str, rooms: list, envelope: dict, coalesce_key: str | None) -> None:
    """Every process coalesces and emits to its own clients; Redis carries the event to the others."""
    message = {"type": type, "rooms": list(rooms), "envelope": envelope, "key": coalesce_key}
    if state.bus is not None and state.bus.publish(state.bus.volatile_channel, message):
        return  # this process receives it back from Redis like every other one
    state.coalescer.offer(coalesce_key, type, list(rooms), envelope)


def _on_volatile(message: dict) -> None:
    state.coalescer.offer(message.get("key"), message["type"], message["rooms"], message["envelope"])


def start_background(app) -> None:
    """Start this process's relay, sweeper, coalescer and Redis listener (a serving process calls it once,
    e.g. gunicorn's post_worker_init in config/gunicorn.py)."""
    if state.started:
        return
    state.started = True
    with app.app_context():
        from config.extensions import db

        relay.start_from_now(db.engine)
    socketio.start_background_task(relay.loop, app)
    socketio.start_background_task(sweeper.loop, app)
    socketio.start_background_task(state.coalescer.loop)
    if state.bus is not None:
        socketio.start_background_task(state.bus.listen, relay.on_announced, _on_volatile)
    log.info("realtime background tasks started (relay, sweeper%s)", ", redis listener" if state.bus else "")


def stop_background() -> None:
    relay.stop()
    sweeper.stop()
    state.coalescer.stop()
    if state.bus is not None:
        state.bus.stop()
    state.started = False
