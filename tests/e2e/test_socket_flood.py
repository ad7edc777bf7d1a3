"""A flood of emits from one real Socket.IO client against a real server (issue 17): the flooder gets 429
acknowledgements, then is disconnected with a reason, and another client's `sync` keeps being answered
throughout. The latency figures (flood vs. none, limiter on vs. off) are measured by bench/socket_flood.py."""

from __future__ import annotations

import threading

import pytest

from tests.e2e.conftest import Listener, login

pytestmark = pytest.mark.e2e

FLOOD = 1800


def test_a_flood_of_1800_emits_is_cut_off_and_other_clients_are_served(start_server):
    server = start_server(SOCKET_EVENTS_PER_SECOND="5", SOCKET_EVENTS_BURST="20")
    flooder = Listener(server.url, login(server, "demo-coordinator"))
    other = Listener(server.url, login(server, "demo-admin"))
    acks: list[dict] = []
    lock = threading.Lock()

    def _ack(answer=None):
        with lock:
            acks.append(answer)

    sent = 0
    for _ in range(FLOOD):
        if not flooder.client.connected:
            break
        try:
            flooder.client.emit("sync", {"since": 0}, callback=_ack)
        except Exception:  # noqa: BLE001 - the server has cut the connection: the flood ends here
            break
        sent += 1
    flooder.wait_for(lambda envelopes: any(e and e.get("type") == "session.revoked" for e in envelopes), 20)
    [revoked] = flooder.events("session.revoked")
    assert revoked["data"]["reason"] == "rate_limited"
    # Meanwhile the other client is answered, every time.
    for _ in range(5):
        assert "events" in other.client.call("sync", {"since": 0}, timeout=10)
    with lock:
        served = [a for a in acks if a and "events" in a]
        refused = [a for a in acks if a and a.get("code") == 429]
    assert len(served) <= 20 + 5, len(served)  # the burst and what refilled while the flood went on
    assert refused and all(a["retry_after"] > 0 for a in refused)
    other.close()
    flooder.close()
