"""Per-socket limits on emitted events (issue 17): a token bucket per connection, on SQLite and PostgreSQL.
The flood with a real Socket.IO client against a real server is in tests/e2e/test_socket_flood.py."""

from __future__ import annotations

import time
from types import SimpleNamespace

from realtime import limits
from realtime.limits import Buckets, buckets


def _packets(sock) -> list[dict]:
    packets, sock.queue = list(sock.queue), []
    return packets


def test_a_flooding_socket_gets_429_acks_then_is_disconnected_and_others_are_served(
    app, make_user, connect, monkeypatch
):
    flooder, other = connect(make_user("coordinator")), connect(make_user("coordinator"))
    # The flood happens within one instant: on a loaded machine 200 emits can take long enough for the bucket
    # to refill a token, which is the limiter working, not what this test is about (the refill has its own).
    monkeypatch.setattr(limits, "time", SimpleNamespace(monotonic=lambda: 1000.0))
    answers = []
    for _ in range(200):
        if not flooder.is_connected():
            break
        answers.append(flooder.emit("sync", {"since": 0}, callback=True))
    served = [a for a in answers if a and "events" in a]
    refused = [a for a in answers if a and a.get("code") == 429]
    assert len(served) == buckets.burst  # the burst, then nothing more within this second
    assert len(refused) == buckets.burst and all(a["retry_after"] > 0 for a in refused)
    assert not flooder.is_connected()
    assert [p["args"][0]["data"]["reason"] for p in _packets(flooder) if p["name"] == "session.revoked"] == [
        "rate_limited"
    ]
    monkeypatch.undo()
    assert "events" in other.emit("sync", {"since": 0}, callback=True)


def test_events_without_a_handler_count_too(app, make_user, connect):
    sock = connect(make_user("medic"))
    for _ in range(buckets.burst * 2):
        sock.emit("join", {"room": "mission:x"})
    assert not sock.is_connected()


def test_the_bucket_refills_at_its_rate():
    limiter = Buckets(rate=10, burst=3)
    now = 100.0
    assert [limiter.take("s", now)[0] for _ in range(4)] == [True, True, True, False]
    assert limiter.take("s", now + 0.05)[0] is False  # half a token
    assert limiter.take("s", now + 0.15)[0] is True
    allowed, refused, retry_after = limiter.take("s", now + 0.15)
    assert (allowed, refused) == (False, 1) and 0 < retry_after <= 0.1
    limiter.forget("s")
    assert limiter.take("s", now + 0.15)[0] is True


def test_a_client_within_the_rate_is_never_limited(app, make_user, connect):
    sock = connect(make_user("coordinator"))
    for _ in range(buckets.burst + 10):
        assert "events" in sock.emit("sync", {"since": 0}, callback=True)
        time.sleep(1.05 / buckets.rate)
    assert sock.is_connected()
