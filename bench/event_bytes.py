"""Bytes of the CASEVAC events on the websocket, per audience (issue 16, "events carry no field their audience
does not need"): a request filed by a medic (lines 1-5, an MGRS grid), acknowledged, dispatched, corrected
(line 1), picked up; each event as a coordinator and as the filing medic receive it.

    PYTHONPATH=. .venv/bin/python bench/event_bytes.py

The real app on a temporary SQLite file, real HTTP requests through the Flask test client, the relay's real
emit to in-process Socket.IO clients; each envelope received is encoded by the server's own packet class
as it goes in a websocket frame: the Engine.IO message `4` + the Socket.IO packet `2["<type>",{envelope}]`
(the frame's own 2-4 header bytes not counted). Not part of make test.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from socketio import packet  # noqa: E402

from config.app import create_app  # noqa: E402
from config.extensions import db, socketio  # noqa: E402
from realtime.relay import relay  # noqa: E402
from tests.casevac.conftest import body  # noqa: E402
from tests.casevac.fleet.factories import AssetFactory, FacilityFactory  # noqa: E402
from tests.conftest import _migrate, test_settings  # noqa: E402
from tests.factories import MissionFactory, UserFactory  # noqa: E402
from tests.helpers import auth_headers  # noqa: E402

API = "/api/v1/casevac"
SAMPLES: dict = {}


def wire_bytes(name: str, envelope: dict) -> int:
    """The websocket payload the server sends for this event (Engine.IO message + Socket.IO event packet)."""
    encoded = socketio.server.packet_class(packet.EVENT, namespace="/", data=[name, envelope]).encode()
    return len(("4" + encoded).encode())


def run() -> dict[str, list[tuple[str, int]]]:
    url = f"sqlite:///{tempfile.mkdtemp(prefix='event-bytes-')}/bench.db"
    _migrate(url)
    app = create_app(test_settings(url, LOG_LEVEL="WARNING"))
    out: dict[str, list[tuple[str, int]]] = {}
    with app.app_context():
        mission = MissionFactory()
        medic, coordinator = (UserFactory(role=role, mission_id=mission.id) for role in ("medic", "coordinator"))
        asset = AssetFactory(mission_id=mission.id, capabilities=["hoist", "night", "medical_crew"])
        facility = FacilityFactory(mission_id=mission.id, lat=4.37, lon=18.56)
        relay.start_from_now(db.engine)
        sockets = {
            who: socketio.test_client(app, auth={"token": auth_headers(user)["Authorization"].split(" ")[1]})
            for who, user in (("coordinator", coordinator), ("filing medic", medic))
        }
        http = app.test_client()
        steps = [
            ("file (MGRS)", medic, "post", "/requests", body(location={"mgrs": "34NBK3497887318"})),
            ("acknowledge", coordinator, "post", "/requests/{id}/status", {"status": "acknowledged"}),
            (
                "dispatch",
                coordinator,
                "post",
                "/requests/{id}/dispatch",
                {"asset_id": asset.id, "facility_id": facility.id},
            ),
            ("correct line 1", coordinator, "patch", "/requests/{id}", {"location": {"lat": 4.36123, "lon": 18.55511}}),
            ("at pickup", coordinator, "post", "/requests/{id}/status", {"status": "at_pickup"}),
        ]
        request_id = None
        for label, user, method, path, payload in steps:
            for client in sockets.values():
                client.get_received()
            response = getattr(http, method)(API + path.format(id=request_id), json=payload, headers=auth_headers(user))
            assert response.status_code in (200, 201), (label, response.get_data(as_text=True)[:400])
            request_id = request_id or response.get_json()["id"]
            relay.run_once(db.engine)
            for who, client in sockets.items():
                for received in client.get_received():
                    if received["name"].startswith("casevac."):
                        size = wire_bytes(received["name"], received["args"][0])
                        SAMPLES.setdefault((who, label), received["args"][0])
                        out.setdefault(who, []).append((f"{label}: {received['name']}", size))
        for client in sockets.values():
            client.disconnect()
    return out


if __name__ == "__main__":
    results = run()
    for who, rows in results.items():
        print(f"{who}:")
        for label, size in rows:
            print(f"  {label:45s} {size:5d} B")
        print(f"  mean {statistics.mean(size for _, size in rows):.0f} B over {len(rows)} events")
    if "--samples" in sys.argv:
        for (who, label), envelope in SAMPLES.items():
            print(who, label, json.dumps(envelope, separators=(",", ":")))
