"""The lifecycle of API.md: every legal and illegal move, who may move, history, audit, events, races."""

import threading

import pytest

from casevac.requests import lifecycle
from casevac.requests.models import STATUSES, CasevacRequest, StatusChange
from config.extensions import db
from core.models import AuditEntry
from realtime.models import Event
from tests.helpers import assert_error

PATH = ["requested", "acknowledged", "dispatched", "at_pickup", "in_transit", "delivered"]
LEGAL = {
    "requested": {"acknowledged", "cancelled"},
    "acknowledged": {"cancelled"},
    "dispatched": {"at_pickup", "cancelled"},
    "at_pickup": {"in_transit", "cancelled"},
    "in_transit": {"delivered", "cancelled"},
    "delivered": set(),
    "cancelled": set(),
}


def status_url(request_id):
    return f"/api/v1/casevac/requests/{request_id}/status"


@pytest.fixture
def reach(client, headers, coordinator, file_request):
    """reach(state) -> a request id in that state, moved there the way clients do."""

    def _reach(state: str) -> str:
        request_id = file_request()["id"]
        if state == "cancelled":
            response = client.post(
                status_url(request_id), json={"status": "cancelled", "note": "duplicate"}, headers=headers(coordinator)
            )
            assert response.status_code == 200
            return request_id
        for step in PATH[1 : PATH.index(state) + 1]:
            if step == "dispatched":
                request = db.session.get(CasevacRequest, request_id)
                assert lifecycle.mark_dispatched(
                    db.session,
                    actor=coordinator,
                    request=request,
                    asset_id="asset-1",
                    facility_id="facility-1",
                    medical_crew=True,
                    surgery_at_destination=True,
                )
                db.session.commit()
            else:
                response = client.post(status_url(request_id), json={"status": step}, headers=headers(coordinator))
                assert response.status_code == 200, response.get_json()
        return request_id

    return _reach


def test_every_legal_and_illegal_move(client, headers, coordinator, reach):
    for current in STATUSES:
        for target in STATUSES:
            request_id = reach(current)
            payload = {"status": target, "note": "reason given"}
            response = client.post(status_url(request_id), json=payload, headers=headers(coordinator))
            if target in LEGAL[current]:
                assert response.status_code == 200, (current, target, response.get_json())
                body = response.get_json()
                assert body["status"] == target and body["history"][-1]["status"] == target
                assert body["history"][-1]["from_status"] == current and body["history"][-1]["by"] == coordinator.id
            else:
                error = assert_error(response, 409)
                assert error["current"] == current, (current, target)
                assert set(error["allowed"]) == LEGAL[current], (current, target, error)
                if target == "dispatched" and current in ("requested", "acknowledged"):
                    assert "dispatch" in error["message"]


def test_full_path_records_history_audit_and_events(client, headers, coordinator, medic, reach):
    request_id = reach("delivered")
    body = client.get(f"/api/v1/casevac/requests/{request_id}", headers=headers(medic)).get_json()
    assert [h["status"] for h in body["history"]] == PATH
    assert body["asset_id"] == "asset-1" and body["facility_id"] == "facility-1"
    actions = (
        db.session.execute(
            db.select(AuditEntry.action).where(AuditEntry.subject_id == request_id).order_by(AuditEntry.id)
        )
        .scalars()
        .all()
    )
    assert actions == ["casevac.file"] + [f"casevac.status.{s}" for s in PATH[1:]]
    events = (
        db.session.execute(db.select(Event).where(Event.data["id"].as_string() == request_id).order_by(Event.id))
        .scalars()
        .all()
    )
    assert [e.type for e in events] == ["casevac.created"] + ["casevac.updated"] * 5
    assert [e.data["status"] for e in events] == PATH
    assert all(f"user:{medic.id}" in e.rooms for e in events)


def test_cancel_needs_a_note_and_the_filing_medic_may_cancel_only_before_dispatch(
    client, headers, medic, make_user, reach
):
    request_id = reach("requested")
    assert_error(
        client.post(status_url(request_id), json={"status": "cancelled"}, headers=headers(medic)), 422, ("note",)
    )
    assert_error(
        client.post(status_url(request_id), json={"status": "cancelled", "note": "  "}, headers=headers(medic)),
        422,
        ("note",),
    )
    # The medic does not drive the lifecycle otherwise.
    refused = assert_error(
        client.post(status_url(request_id), json={"status": "acknowledged"}, headers=headers(medic)), 409
    )
    assert refused["allowed"] == ["cancelled"]
    cancelled = client.post(
        status_url(request_id), json={"status": "cancelled", "note": "patient walked"}, headers=headers(medic)
    )
    assert cancelled.status_code == 200 and cancelled.get_json()["history"][-1]["note"] == "patient walked"
    dispatched = reach("dispatched")
    late = assert_error(
        client.post(status_url(dispatched), json={"status": "cancelled", "note": "x"}, headers=headers(medic)), 409
    )
    assert late["allowed"] == []
    # Another medic, a clinician: not theirs (404) or not their role (403).
    assert_error(
        client.post(
            status_url(dispatched), json={"status": "cancelled", "note": "x"}, headers=headers(make_user("medic"))
        ),
        404,
    )
    assert_error(
        client.post(status_url(dispatched), json={"status": "at_pickup"}, headers=headers(make_user("clinician"))), 403
    )
    # The mission's admin may drive it (escalations go to admins too).
    assert (
        client.post(
            status_url(dispatched), json={"status": "at_pickup"}, headers=headers(make_user("admin"))
        ).status_code
        == 200
    )


def test_unknown_status_is_a_422_listing_the_states(client, headers, coordinator, reach):
    request_id = reach("requested")
    error = assert_error(
        client.post(status_url(request_id), json={"status": "landed"}, headers=headers(coordinator)), 422, ("status",)
    )
    assert "acknowledged" in error["errors"]["json"]["status"][0]
    assert_error(client.post(status_url("missing"), json={"status": "acknowledged"}, headers=headers(coordinator)), 404)


def test_release_hooks_run_in_the_transaction_of_cancel_and_delivery(client, headers, coordinator, reach):
    seen = []

    def hook(session, request):
        seen.append((request.id, request.status, request.asset_id))
        session.add(
            AuditEntry(
                actor_id=None,
                mission_id=request.mission_id,
                action="test.release",
                subject_type="asset",
                subject_id=request.asset_id,
            )
        )

    lifecycle.RELEASE_HOOKS.append(hook)
    try:
        delivered = reach("delivered")
        cancelled_id = reach("at_pickup")
        client.post(
            status_url(cancelled_id), json={"status": "cancelled", "note": "weather"}, headers=headers(coordinator)
        )
        reach("in_transit")  # not final: no hook
    finally:
        lifecycle.RELEASE_HOOKS.remove(hook)
    assert seen == [(delivered, "delivered", "asset-1"), (cancelled_id, "cancelled", "asset-1")]
    assert (
        db.session.execute(
            db.select(db.func.count()).select_from(AuditEntry).where(AuditEntry.action == "test.release")
        ).scalar()
        == 2
    )


def test_mark_dispatched_only_from_requested_or_acknowledged(coordinator, reach):
    for state, expected in (
        ("requested", True),
        ("acknowledged", True),
        ("dispatched", False),
        ("at_pickup", False),
        ("delivered", False),
        ("cancelled", False),
    ):
        request = db.session.get(CasevacRequest, reach(state))
        assert (
            lifecycle.mark_dispatched(
                db.session,
                actor=coordinator,
                request=request,
                asset_id="a2",
                facility_id="f2",
                medical_crew=True,
                surgery_at_destination=True,
            )
            is expected
        ), state
        db.session.commit()
        if expected:
            assert request.status == "dispatched" and request.asset_id == "a2" and request.acknowledged_at
            assert request.history[-1].status == "dispatched"


def test_two_coordinators_acknowledging_at_once_make_one_history_entry(pg_app, pg_make_user, headers):
    from tests.casevac.conftest import body

    make_user = pg_make_user
    medic, coordinators = make_user("medic"), [make_user("coordinator") for _ in range(8)]
    client = pg_app.test_client()
    request_id = client.post("/api/v1/casevac/requests", json=body(), headers=headers(medic)).get_json()["id"]
    auth = [headers(c) for c in coordinators]
    barrier = threading.Barrier(len(coordinators))
    codes = []

    def acknowledge(h):
        barrier.wait()
        response = pg_app.test_client().post(status_url(request_id), json={"status": "acknowledged"}, headers=h)
        codes.append(response.status_code)

    threads = [threading.Thread(target=acknowledge, args=(h,)) for h in auth]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(codes) == [200] + [409] * (len(coordinators) - 1)
    db.session.expire_all()
    changes = (
        db.session.execute(
            db.select(StatusChange).where(StatusChange.request_id == request_id, StatusChange.status == "acknowledged")
        )
        .scalars()
        .all()
    )
    assert len(changes) == 1
    events = db.session.execute(db.select(Event).where(Event.type == "casevac.updated")).scalars().all()
    assert len(events) == 1


def test_racing_dispatch_and_cancel_one_wins(pg_app, pg_make_user, headers):
    """mark_dispatched in one transaction against a cancel in another: exactly one of them changes it."""
    from core.models import User
    from tests.casevac.conftest import body

    medic, coordinator_id = pg_make_user("medic"), pg_make_user("coordinator").id
    client = pg_app.test_client()
    request_id = client.post("/api/v1/casevac/requests", json=body(), headers=headers(medic)).get_json()["id"]
    barrier = threading.Barrier(2)
    results = {}
    medic_headers = headers(medic)

    def dispatch():
        with pg_app.app_context():
            request = db.session.get(CasevacRequest, request_id)
            coordinator_row = db.session.get(User, coordinator_id)
            barrier.wait()
            results["dispatch"] = lifecycle.mark_dispatched(
                db.session,
                actor=coordinator_row,
                request=request,
                asset_id="a",
                facility_id="f",
                medical_crew=True,
                surgery_at_destination=True,
            )
            db.session.commit()
            db.session.remove()

    def cancel():
        barrier.wait()
        results["cancel"] = (
            pg_app.test_client()
            .post(status_url(request_id), json={"status": "cancelled", "note": "x"}, headers=medic_headers)
            .status_code
        )

    threads = [threading.Thread(target=dispatch), threading.Thread(target=cancel)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert (results["dispatch"], results["cancel"]) in ((True, 409), (False, 200))
    db.session.expire_all()
    changes = (
        db.session.execute(db.select(StatusChange.status).where(StatusChange.request_id == request_id)).scalars().all()
    )
    assert len(changes) == 2
