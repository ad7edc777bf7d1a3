"""Live-only events (asset positions): never logged, never replayed, coalesced per key.

A fast tracker must not flood slow links (issue 5): for each coalescing key (e.g. one asset), this
process sends at most one event per `interval` to the key's rooms, hence to each of its clients; the
newest value offered during the quiet period is sent when it ends (trailing edge), so the last position
always arrives.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Callable

MIN_INTERVAL_SECONDS = 1.0
# A key quiet for this long is forgotten (bounded memory with many assets).
FORGET_AFTER_SECONDS = 60.0


@dataclass
class _KeyState:
    last_sent: float
    pending: tuple | None = field(default=None)


class Coalescer:
    def __init__(
        self,
        emit: Callable[[str, list, dict], None],
        *,
        interval: float = MIN_INTERVAL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._emit = emit
        self.interval = interval
        self._clock = clock
        self._keys: dict[str, _KeyState] = {}
        self._lock = threading.Lock()
        self._pending_signal = threading.Event()
        self.running = False

    def offer(self, key: str | None, type: str, rooms: list, envelope: dict) -> bool:
        """Send now if the key has been quiet for `interval`, else keep it as the key's pending value.
        Returns whether it was sent now."""
        if key is None:
            self._emit(type, rooms, envelope)
            return True
        now = self._clock()
        with self._lock:
            state = self._keys.get(key)
            if state is None or now - state.last_sent >= self.interval:
                self._keys[key] = _KeyState(last_sent=now)
                send = True
            else:
                state.pending = (type, rooms, envelope)
                send = False
        if send:
            self._emit(type, rooms, envelope)
        else:
            self._pending_signal.set()
        return send

    def flush_due(self) -> float | None:
        """Send the pending values whose quiet period is over; returns seconds until the next one is due."""
        now = self._clock()
        due, next_due = [], None
        with self._lock:
            for key, state in list(self._keys.items()):
                if state.pending is None:
                    if now - state.last_sent > FORGET_AFTER_SECONDS:
                        del self._keys[key]
                    continue
                wait = state.last_sent + self.interval - now
                if wait <= 0:
                    due.append(state.pending)
                    state.pending, state.last_sent = None, now
                else:
                    next_due = wait if next_due is None else min(next_due, wait)
        for type, rooms, envelope in due:
            self._emit(type, rooms, envelope)
        return next_due

    def loop(self) -> None:
        self.running = True
        while self.running:
            next_due = self.flush_due()
            self._pending_signal.wait(next_due if next_due is not None else 5.0)
            self._pending_signal.clear()

    def stop(self) -> None:
        self.running = False
        self._pending_signal.set()
