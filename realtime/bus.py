"""Redis pub/sub between server processes: wake-ups for the relay and live-only (volatile) events.

Nothing here is needed for correctness: the event log is in the database and every process's relay polls
it. Redis only makes the other processes deliver at once. A Redis outage never fails a caller: publishing
gives up quickly (and stops trying for a moment), and the listener reconnects with a capped backoff.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Callable

log = logging.getLogger(__name__)

# After a failed publish, skip Redis for this long: a dead Redis must not slow every request down.
BACKOFF_SECONDS = 2.0


class Bus:
    def __init__(self, redis_url: str, prefix: str):
        import redis

        from config.extensions import redis_client

        self._redis = redis
        self.client = redis_client(redis_url)
        self.wake_channel = f"{prefix}-relay"
        self.volatile_channel = f"{prefix}-volatile"
        self._down_until = 0.0
        self.running = False

    def publish(self, channel: str, message: dict) -> bool:
        if time.monotonic() < self._down_until:
            return False
        try:
            self.client.publish(channel, json.dumps(message))
            return True
        except self._redis.RedisError as exc:
            self._down_until = time.monotonic() + BACKOFF_SECONDS
            log.warning("redis publish on %s failed (%s); delivery continues from the database", channel, exc)
            return False

    def listen(self, on_wake: Callable[[list | None], None], on_volatile: Callable[[dict], None]) -> None:
        """Run until stop(): subscribe, dispatch, and after every (re)subscription wake the relay so that
        whatever was announced while this process was not listening is delivered now. `on_wake` gets the
        announced events, or None when the relay must read the log."""
        self.running = True
        backoff = 0.2
        while self.running:
            pubsub = None
            try:
                pubsub = self.client.pubsub(ignore_subscribe_messages=True)
                pubsub.subscribe(self.wake_channel, self.volatile_channel)
                backoff = 0.2
                on_wake(None)
                while self.running:
                    message = pubsub.get_message(timeout=1.0)
                    if not message or message.get("type") != "message":
                        continue
                    channel = (
                        message["channel"].decode() if isinstance(message["channel"], bytes) else message["channel"]
                    )
                    if channel == self.wake_channel:
                        try:
                            announced = json.loads(message["data"]).get("events")
                        except (ValueError, AttributeError):
                            announced = None
                        on_wake(announced if isinstance(announced, list) else None)
                    elif channel == self.volatile_channel:
                        try:
                            on_volatile(json.loads(message["data"]))
                        except (ValueError, KeyError, TypeError):
                            log.warning("ignored a malformed volatile message")
            except Exception as exc:  # noqa: BLE001 - Redis away: retry, the relay polls meanwhile
                if self.running:
                    log.warning("redis listener lost its connection (%s); retrying in %.1fs", exc, backoff)
                    time.sleep(backoff)
                    backoff = min(backoff * 2, 5.0)
            finally:
                if pubsub is not None:
                    try:
                        pubsub.close()
                    except Exception:  # noqa: BLE001
                        pass

    def stop(self) -> None:
        self.running = False
