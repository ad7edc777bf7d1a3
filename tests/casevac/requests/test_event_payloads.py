"""What each audience of a CASEVAC event receives (issue 16: events carry no field their audience does not
need): coordinators the queue and map fields with coordinates to 5 decimals, the filing medic the state of
their request; measured as the bytes of the websocket frame payload (bench/event_bytes.py)."""

from __future__ import annotations

from flask import current_app
from socketio import packet

from casevac.requests.models import CasevacRequest
from config.extensions import db, socketio
from realtime.relay import relay
from tests.casevac.conftest import body
from tests.casevac.fleet.factories import AssetFactory, FacilityFactory
from tests.helpers import auth_headers

API = "/api/v1/casevac"
COORDINATOR_KEYS = {"id", "mission_id", "status", "precedence", "lat", "lon", "patients", "equipment"}
COORDINATOR_KEYS |= {"lines_complete", "deadline", "updated_at"}


def wire_bytes(name: str, envelope: dict) -> int:
    encoded = socketio.server.packet_class(packet.EVENT, namespace="/", data=[name, envelope]).encode()
    return len(("4" + encoded).encode())


def connect(user):
    token = auth_headers(user)["Authorization"].split(" ", 1)[1]
    return socketio.test_client(current_app._get_current_object(), auth={"token": token})


def casevac_events(client) -> list[dict]:
    return [p["args"][0] for p in client.get_received() if p["name"].startswith("casevac.")]


def test_coordinators_and_the_filing_medic_get_their_own_payload(client, medic, coordinator):
    asset = AssetFactory(mission_id=medic.mission_id, capabilities=["hoist", "night", "medical_crew"])
    facility = FacilityFactory(mission_id=medic.mission_id, lat=4.37, lon=18.56)
    relay.start_from_now(db.engine)
    coordinator_socket, medic_socket = connect(coordinator), connect(medic)
    try:
        filed = client.post(
            f"{API}/requests", json=body(location={"mgrs": "34NBK3497887318"}), headers=auth_headers(medic)
        )
        assert filed.status_code == 201
        request_id = filed.get_json()["id"]
        relay.run_once()
        [to_coordinator] = casevac_events(coordinator_socket)
        [to_medic] = casevac_events(medic_socket)
        data = to_coordinator["data"]
        assert set(data) == COORDINATOR_KEYS, set(data) ^ COORDINATOR_KEYS  # no nulls (asset, facility), no filer
        stored = db.session.get(CasevacRequest, request_id)
        assert (data["lat"], data["lon"]) == (round(stored.lat, 5), round(stored.lon, 5)) != (stored.lat, stored.lon)
        assert to_medic["data"] == {"id": request_id, "status": "requested"}
        assert to_medic["seq"] == to_coordinator["seq"]
        assert wire_bytes("casevac.created", to_coordinator) <= 440 and wire_bytes("casevac.created", to_medic) <= 180

        dispatched = client.post(
            f"{API}/requests/{request_id}/dispatch",
            json={"asset_id": asset.id, "facility_id": facility.id},
            headers=auth_headers(coordinator),
        )
        assert dispatched.status_code == 200, dispatched.get_json()
        moved = client.patch(
            f"{API}/requests/{request_id}",
            json={"location": {"lat": 4.361234567, "lon": 18.555}},
            headers=auth_headers(coordinator),
        )
        assert moved.status_code == 200, moved.get_json()
        relay.run_once()
        for_coordinator = {e["type"]: e["data"] for e in casevac_events(coordinator_socket)}
        status, lines, corrected = casevac_events(medic_socket)
        assert for_coordinator["casevac.updated"]["asset_id"] == asset.id
        assert for_coordinator["casevac.updated"]["facility_id"] == facility.id
        assert status["data"] == {"id": request_id, "status": "dispatched", "asset_id": asset.id}
        assert lines["data"] == {
            "id": request_id,
            "status": "dispatched",
            "asset_id": asset.id,
            "lat": 4.36123,
            "lon": 18.555,
        }
        assert corrected["type"] == "casevac.corrected"
        assert corrected["data"] == {"id": request_id, "fields": ["location"], "lat": 4.36123, "lon": 18.555}
    finally:
        coordinator_socket.disconnect()
        medic_socket.disconnect()
