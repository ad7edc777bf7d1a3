"""Live-only events: coalesced so a fast tracker does not flood slow links (issue 5)."""

from __future__ import annotations

from realtime import audience, events, setup
from realtime.volatile import Coalescer
from tests.realtime.conftest import received


class FakeClock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


def test_at_most_one_per_key_per_second_and_the_newest_value_last():
    clock, sent = FakeClock(), []
    coalescer = Coalescer(lambda type, rooms, envelope: sent.append(envelope["n"]), clock=clock)
    for n in range(10):  # a tracker at 10 Hz for one second
        coalescer.offer("asset-1", "asset.position", ["r"], {"n": n})
        clock.t += 0.1 if n < 9 else 0.05
    coalescer.offer("asset-2", "asset.position", ["r"], {"n": "other asset"})  # keys are independent
    assert sent == [0, "other asset"]
    clock.t = 1000.95
    assert coalescer.flush_due() is not None and sent == [0, "other asset"]
    clock.t = 1001.0
    coalescer.flush_due()
    assert sent == [0, "other asset", 9]  # the newest value, once the quiet second is over
    clock.t = 1002.5
    coalescer.flush_due()
    coalescer.offer("asset-1", "asset.position", ["r"], {"n": 10})  # quiet long enough: sent at once
    assert sent == [0, "other asset", 9, 10]


def test_unkeyed_volatile_events_are_not_coalesced():
    sent = []
    coalescer = Coalescer(lambda type, rooms, envelope: sent.append(envelope), clock=FakeClock())
    for n in range(3):
        coalescer.offer(None, "asset.updated", ["r"], {"n": n})
    assert len(sent) == 3


def test_emit_volatile_reaches_only_the_audience_and_is_not_logged(app, mission, make_user, connect, monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(setup.state, "coalescer", Coalescer(setup._emit_local, clock=clock))
    coordinator, medic = make_user("coordinator"), make_user("medic")
    c, m = connect(coordinator), connect(medic)
    for n in range(5):
        events.emit_volatile(
            "asset.position", audience.coordinators(mission.id), {"asset_id": "a1", "n": n}, coalesce_key="asset:a1"
        )
    got = received(c, "asset.position")
    assert [e["data"]["n"] for e in got] == [0] and got[0]["seq"] is None
    clock.t += 1.0
    setup.state.coalescer.flush_due()
    assert [e["data"]["n"] for e in received(c, "asset.position")] == [4]
    assert received(m) == []
    sync = c.emit("sync", {"since": 0}, callback=True)
    assert sync["events"] == []  # live-only: never replayed


def test_volatile_events_travel_through_redis_to_every_process_listener(
    app, mission, make_user, connect, redis_url, monkeypatch
):
    """With REDIS_URL each process hears the volatile channel and coalesces for its own clients."""
    import threading
    import time

    from realtime.bus import Bus

    prefix = app.extensions["settings"].REDIS_PREFIX + "-volatile-test"
    bus = Bus(redis_url, prefix)
    heard = threading.Event()
    wakes = []
    monkeypatch.setattr(setup.state, "bus", bus)
    monkeypatch.setattr(setup.state, "coalescer", Coalescer(setup._emit_local))

    def on_volatile(message):
        setup._on_volatile(message)
        heard.set()

    listener = threading.Thread(target=bus.listen, args=(lambda announced: wakes.append(1), on_volatile))
    listener.start()
    try:
        deadline = time.monotonic() + 5
        while not wakes and time.monotonic() < deadline:  # subscribed (it wakes the relay on subscribing)
            time.sleep(0.01)
        c = connect(make_user("coordinator"))
        events.emit_volatile(
            "asset.position", audience.coordinators(mission.id), {"asset_id": "a1", "lat": 4.1}, coalesce_key="asset:a1"
        )
        assert heard.wait(5)
        [position] = received(c, "asset.position")
        assert position["data"] == {"asset_id": "a1", "lat": 4.1} and position["seq"] is None
    finally:
        bus.stop()
        listener.join(5)
    assert wakes  # a (re)subscription wakes the relay, to catch up what was announced meanwhile
