"""Per-socket limits on the events a client emits (issue 17): a token bucket per connection, applied where
an incoming event arrives, before python-socketio starts a task for its handler. A flood of emits from one
client (1,800 `sync` calls raised the other clients' latency 25-fold) costs this process a dictionary look-up
per event: an event over the limit is answered at once (its acknowledgement, when asked for, is
`{"code": 429, "message", "retry_after"}`), and a client that goes on regardless is disconnected with
`session.revoked` `{"reason": "rate_limited"}` (realtime.authority).

SOCKET_EVENTS_PER_SECOND (default 5) refills the bucket; SOCKET_EVENTS_BURST (default 20) is its size and the
number of refused events in a row after which the client is disconnected.
"""

from __future__ import annotations

import threading
import time

from core import errors


class Buckets:
    def __init__(self, rate: float, burst: int):
        self.rate = float(rate)
        self.burst = int(burst)
        self._state: dict[str, list[float]] = {}  # sid -> [tokens, last refill (monotonic), refused in a row]
        self._lock = threading.Lock()

    def take(self, sid: str, now: float | None = None) -> tuple[bool, int, float]:
        """(allowed, refused in a row, seconds until the next token)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            state = self._state.get(sid)
            if state is None:
                state = self._state[sid] = [float(self.burst), now, 0]
            state[0] = min(float(self.burst), state[0] + (now - state[1]) * self.rate)
            state[1] = now
            if state[0] >= 1.0:
                state[0] -= 1.0
                state[2] = 0
                return True, 0, 0.0
            state[2] += 1
            return False, int(state[2]), (1.0 - state[0]) / self.rate if self.rate > 0 else 60.0

    def forget(self, sid: str) -> None:
        with self._lock:
            self._state.pop(sid, None)


buckets = Buckets(5, 20)


def install(server, rate: float, burst: int) -> None:
    """Wrap this Socket.IO server's incoming-event entry point (one per app: create_app makes a new server)."""
    from socketio import packet

    from realtime import authority

    buckets.rate, buckets.burst = float(rate), int(burst)
    if getattr(server, "_medevac_limited", False):
        return
    original = server._handle_event

    def _handle_event(eio_sid, namespace, id, data):
        namespace = namespace or "/"
        sid = server.manager.sid_from_eio_sid(eio_sid, namespace)
        if sid is None:
            return original(eio_sid, namespace, id, data)
        allowed, refused, retry_after = buckets.take(sid)
        if allowed:
            return original(eio_sid, namespace, id, data)
        if id is not None:
            answer = errors.payload(
                429,
                f"too many events: at most {buckets.rate:g} per second (bursts of {buckets.burst})",
                retry_after=round(retry_after, 3),
            )
            server._send_packet(eio_sid, server.packet_class(packet.ACK, namespace=namespace, id=id, data=[answer]))
        if refused >= buckets.burst:
            buckets.forget(sid)
            authority.end(sid, "rate_limited")
        return None

    server._handle_event = _handle_event
    server._medevac_limited = True
