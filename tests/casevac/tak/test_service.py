"""What TAK events do to the backend, and what the backend sends back, on both databases."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from casevac.dispatch import service as dispatch
from casevac.fleet.models import AssetPosition
from casevac.fleet.positions import DATABASE_ONLY
from casevac.requests import lifecycle
from casevac.requests.models import CasevacRequest
from casevac.tak import context, inbound, outbound
from casevac.tak.codec import reading, stream, vocabulary, writing
from casevac.tak.models import TakEmergency, TakRequestLink
from config.extensions import db
from core import clock
from core.models import AuditEntry, User
from realtime import relay
from realtime.models import Event
from tests.casevac.fleet.factories import AssetFactory, FacilityFactory

GOLDEN = Path(__file__).parent / "golden"
ATAK = (GOLDEN / "atak_civ.xml").read_bytes()
UID = "0b6c3f5e-5d0c-4b8e-9a51-2f2b1f6c9d11"
# What the golden 9-line asks for (hoist, ventilator, possible enemy): an asset that can serve it.
CAPABLE = ["hoist", "ventilator", "night", "armored", "medical_crew"]


@pytest.fixture
def ctx(app, mission):
    return context.ensure_context(db.session, mission_code=mission.code)


def requests_count():
    return db.session.execute(select(func.count()).select_from(CasevacRequest)).scalar_one()


def test_the_gateway_user_is_one_medic_per_mission(app, mission, ctx):
    again = context.ensure_context(db.session, mission_code=mission.code)
    assert again.user_id == ctx.user_id
    user = db.session.get(User, ctx.user_id)
    assert user.role == "medic" and user.mission_id == mission.id
    assert user.username == f"tak-gateway-{mission.code.lower()}"


def test_two_gateways_starting_together_create_one_user(app, mission, monkeypatch):
    create = context.accounts.add_user

    def racing(session, user, **options):
        other = User(**{name: getattr(user, name) for name in ("username", "role", "mission_id", "password_hash")})
        create(session, other, **options)  # the other gateway's, committed first
        return create(session, user, **options)  # ours: the username is taken (409)

    monkeypatch.setattr(context.accounts, "add_user", racing)
    ctx = context.ensure_context(db.session, mission_code=mission.code)
    users = db.session.execute(select(User).where(User.username == context.gateway_username(mission.code))).scalars()
    assert [user.id for user in users] == [ctx.user_id]
    created = db.session.execute(select(AuditEntry).where(AuditEntry.action == "user.create")).scalars().all()
    assert [(row.subject_id, row.detail) for row in created] == [
        (ctx.user_id, {"role": "medic", "service": "tak-gateway"})
    ]


def test_a_medevac_sent_three_times_is_filed_once_with_the_tak_callsign_and_audited(app, ctx):
    outcomes = [inbound.handle(db.session, ctx, ATAK) for _ in range(3)]
    assert outcomes == ["filed", "duplicate", "duplicate"]
    assert requests_count() == 1
    request = db.session.execute(select(CasevacRequest)).scalar_one()
    assert request.callsign == "BRAVO-2-6" and request.filed_by == ctx.user_id and request.client_ref == UID
    assert request.patients_total == 3 and len(request.casualties) == 2 and request.casualties[0].signs["pulse"] == 128
    link = db.session.get(TakRequestLink, request.id)
    assert link.event_uid == UID and link.sender_uid == "ANDROID-3f2c9a8e7d6b5a41"
    actions = db.session.execute(select(AuditEntry.action).where(AuditEntry.subject_id == request.id)).scalars().all()
    assert "casevac.file" in actions and "tak.file" in actions


def test_two_gateways_at_once_file_one_request(app, mission, ctx):
    other = context.ensure_context(db.session, mission_code=mission.code)
    assert inbound.handle(db.session, ctx, ATAK) == "filed"
    assert inbound.handle(db.session, other, ATAK) == "duplicate"
    # The other gateway had not seen the link: the unique (filed_by, client_ref) decides.
    db.session.query(TakRequestLink).delete()
    db.session.commit()
    assert inbound.handle(db.session, other, ATAK) == "duplicate"
    assert requests_count() == 1 and db.session.query(TakRequestLink).count() == 1
    # Unlinked again, and the event changed meanwhile: the change is applied to the one request.
    db.session.query(TakRequestLink).delete()
    db.session.commit()
    assert inbound.handle(db.session, other, ATAK.replace(b"security='1'", b"security='2'")) == "updated"
    assert requests_count() == 1 and db.session.execute(select(CasevacRequest.security)).scalar_one() == "E"


def test_a_later_event_updates_lines_and_appends_signs(app, ctx):
    inbound.handle(db.session, ctx, ATAK)
    changed = (
        ATAK.replace(b"security='1'", b"security='3'")
        .replace(b"HR 128", b"HR 140")
        .replace(b"Hot LZ, approach from south", b"LZ now cold")
    )
    assert inbound.handle(db.session, ctx, changed) == "updated"
    request = db.session.execute(select(CasevacRequest)).scalar_one()
    db.session.refresh(request)
    assert request.security == "X" and request.remarks.startswith("LZ now cold")
    first = request.casualties[0]
    assert first.signs["pulse"] == 140 and first.signs_count == 2  # appended, not overwritten
    assert requests_count() == 1


def test_delete_cancels_before_dispatch_and_notes_after(app, ctx, coordinator):
    inbound.handle(db.session, ctx, ATAK)
    request = db.session.execute(select(CasevacRequest)).scalar_one()
    gone = writing.delete(UID, time=clock.now()).replace(vocabulary.FLOW_TAG.encode(), b"x-other")
    assert inbound.handle(db.session, ctx, gone) == "cancelled"
    db.session.refresh(request)
    assert request.status == "cancelled" and "deleted the MEDEVAC marker" in request.history[-1].note

    second = ATAK.replace(UID.encode(), b"second-uid")
    inbound.handle(db.session, ctx, second)
    filed = db.session.execute(select(CasevacRequest).where(CasevacRequest.client_ref == "second-uid")).scalar_one()
    asset = AssetFactory(mission_id=ctx.mission_id, capabilities=CAPABLE, litter_capacity=4)
    facility = FacilityFactory(mission_id=ctx.mission_id, lat=4.37, lon=18.56)
    dispatch.assign(db.session, actor=coordinator, request_id=filed.id, asset_id=asset.id, facility_id=facility.id)
    gone = writing.delete("second-uid", time=clock.now()).replace(vocabulary.FLOW_TAG.encode(), b"x-other")
    assert inbound.handle(db.session, ctx, gone) == "noted"
    db.session.refresh(filed)
    assert filed.status == "dispatched" and "after dispatch: not cancelled" in filed.remarks


def test_our_own_echo_changes_nothing(app, ctx):
    inbound.handle(db.session, ctx, ATAK)
    request = db.session.execute(select(CasevacRequest)).scalar_one()
    marker = outbound.request_marker(db.session, ctx, request, settings=app.extensions["settings"], live=DATABASE_ONLY)
    assert inbound.handle(db.session, ctx, marker) == "own"


def test_position_reports_move_the_asset_with_that_callsign(app, ctx):
    asset = AssetFactory(mission_id=ctx.mission_id, callsign="DUSTOFF-1")
    at = clock.now() - timedelta(seconds=5)
    sa = (
        f'<event version="2.0" uid="ANDROID-heli" type="a-f-A-M-H" time="{vocabulary.cot_time(at)}" how="m-g">'
        '<point lat="4.41" lon="18.52" hae="300" ce="10" le="10"/><detail><contact callsign="dustoff-1"/>'
        '<track course="270.5" speed="50"/></detail></event>'
    ).encode()
    assert inbound.handle(db.session, ctx, sa) == "position"
    fix = db.session.execute(select(AssetPosition).where(AssetPosition.asset_id == asset.id)).scalar_one()
    assert (fix.lat, fix.lon, fix.heading, fix.speed_kmh, fix.source) == (4.41, 18.52, 270.5, 180.0, "tak")
    db.session.refresh(asset)
    assert asset.lat == 4.41
    future = sa.replace(vocabulary.cot_time(at).encode(), vocabulary.cot_time(at + timedelta(hours=1)).encode())
    assert inbound.handle(db.session, ctx, future) == "refused"  # the device-report rules: a clock fault
    stranger = sa.replace(b"dustoff-1", b"SOMEONE")
    assert inbound.handle(db.session, ctx, stranger) == "contact"
    assert ctx.contacts["someone"] == "ANDROID-heli"


def test_emergency_raised_once_to_coordinators_and_cancelled_once(app, ctx):
    beacon = (
        b'<event version="2.0" uid="ANDROID-1-9-1-1" type="b-a-o-tbl" time="2026-11-28T12:00:00Z"><point '
        b'lat="4.4" lon="18.5"/><detail><link uid="ANDROID-1" relation="p-p" type="a-f-G-U-C"/>'
        b'<contact callsign="BRAVO-Alert"/><emergency type="911 Alert">BRAVO</emergency></detail></event>'
    )
    assert [inbound.handle(db.session, ctx, beacon) for _ in range(3)] == ["emergency", "duplicate", "duplicate"]
    cancel = beacon.replace(b"b-a-o-tbl", b"b-a-o-can").replace(b'type="911 Alert"', b'cancel="true"')
    assert [inbound.handle(db.session, ctx, cancel) for _ in range(2)] == ["emergency_cancelled", "duplicate"]
    assert inbound.handle(db.session, ctx, beacon) == "emergency"  # raised again after a cancel
    logged = db.session.execute(
        select(Event.type, Event.data, Event.rooms).where(Event.type.like("emergency%")).order_by(Event.id)
    ).all()
    assert [e.type for e in logged] == ["emergency", "emergency.cancelled", "emergency"]
    assert logged[0].data["kind"] == "911" and logged[0].data["callsign"] == "BRAVO" and logged[0].data["lat"] == 4.4
    assert f"mission:{ctx.mission_id}:role:coordinator" in logged[0].rooms
    assert db.session.query(TakEmergency).count() == 1


@pytest.mark.parametrize(
    "raw",
    [
        b"<not xml",
        b"<event uid='a' type='b-r-f-h-c'><detail><_medevac_/></detail></event>",
        b"<event uid='a' type='a-f-G' time='not a time'><point lat='1' lon='2'/><detail>"
        b"<contact callsign='X'/></detail></event>",
    ],
)
def test_malformed_events_are_counted_never_fatal(app, ctx, raw):
    outcome = inbound.handle(db.session, ctx, raw)
    assert outcome in ("malformed", "refused", "contact") and ctx.stats[outcome] == 1
    assert requests_count() == 0


def test_outbound_markers_and_geochat_follow_the_event_log(app, ctx, coordinator):
    settings, live = app.extensions["settings"], DATABASE_ONLY
    server = "tak.test:8087"
    context.state(db.session, ctx, server)
    inbound.handle(db.session, ctx, ATAK)
    request = db.session.execute(select(CasevacRequest)).scalar_one()
    lifecycle.transition(db.session, actor=coordinator, request_id=request.id, status="acknowledged")
    asset = AssetFactory(mission_id=ctx.mission_id, callsign="DUSTOFF-7", capabilities=CAPABLE)
    facility = FacilityFactory(mission_id=ctx.mission_id, name="Role 2 Bangui", lat=4.37, lon=18.56)
    dispatch.assign(db.session, actor=coordinator, request_id=request.id, asset_id=asset.id, facility_id=facility.id)
    relay.sequence(db.engine)
    row = context.state(db.session, ctx, server)
    rows, last = outbound.pending(db.session, ctx, row.last_seq)
    sent = [
        reading.classify(stream.parse(cot))
        for entry in rows
        for cot in outbound.events_for(db.session, ctx, entry, settings=settings, live=live)
    ]
    chats = [e for e in sent if e.kind == "chat"]
    assert [c.element.find("detail/__chat").get("messageId") for c in chats] == [
        f"medevac-{request.id}-acknowledged",
        f"medevac-{request.id}-dispatched",
    ]
    assert all(c.element.find("detail/__chat").get("id") == "ANDROID-3f2c9a8e7d6b5a41" for c in chats)
    dispatched = chats[1].element.find("detail/remarks").text
    assert "DUSTOFF-7" in dispatched and "pickup ETA" in dispatched and "Role 2 Bangui" in dispatched
    markers = [e for e in sent if e.kind == "medevac"]
    assert markers and all(m.uid == UID for m in markers)  # the medic's own marker is updated
    assert "DISPATCHED" in markers[-1].element.find("detail/remarks").text
    assert any(e.uid == f"medevac-asset-{asset.id}" for e in sent)
    context.save_seq(db.session, ctx, server, last)
    assert outbound.pending(db.session, ctx, context.state(db.session, ctx, server).last_seq)[0] == []
    # Final: the marker is removed.
    for status in ("at_pickup", "in_transit", "delivered"):
        lifecycle.transition(db.session, actor=coordinator, request_id=request.id, status=status)
    relay.sequence(db.engine)
    rows, _ = outbound.pending(db.session, ctx, last)
    out = [
        reading.classify(stream.parse(cot))
        for entry in rows
        for cot in outbound.events_for(db.session, ctx, entry, settings=settings, live=live)
    ]
    assert out[-2].kind == "delete" and out[-2].target_uid == UID
    assert [e.element.find("detail/__chat").get("messageId").rsplit("-", 1)[-1] for e in out if e.kind == "chat"] == [
        "at_pickup",
        "delivered",
    ]


def test_picture_has_active_requests_assets_and_facilities(app, ctx):
    inbound.handle(db.session, ctx, ATAK)
    AssetFactory(mission_id=ctx.mission_id)
    FacilityFactory(mission_id=ctx.mission_id, name="Role 1")
    kinds = [
        reading.classify(stream.parse(cot)).type
        for cot in outbound.picture(db.session, ctx, settings=app.extensions["settings"], live=DATABASE_ONLY)
    ]
    assert kinds == ["b-r-f-h-c", "a-f-A-M-H-H", writing.FACILITY_TYPE]


def test_gateways_racing_on_one_event_file_it_once(pg_app):
    """Eight gateways receive the same MEDEVAC at the same moment (PostgreSQL, real concurrent writers): the
    unique (filed_by, client_ref) and the link's unique (mission, uid) decide."""
    import threading

    from tests.factories import MissionFactory

    mission = MissionFactory()
    context.ensure_context(db.session, mission_code=mission.code)
    barrier = threading.Barrier(8)
    outcomes = []

    def gateway():
        with pg_app.app_context():
            ctx = context.ensure_context(db.session, mission_code=mission.code)
            barrier.wait()
            outcomes.append(inbound.handle(db.session, ctx, ATAK))
            db.session.remove()

    threads = [threading.Thread(target=gateway) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(outcomes) == ["duplicate"] * 7 + ["filed"], outcomes
    db.session.expire_all()
    assert requests_count() == 1 and db.session.query(TakRequestLink).count() == 1
    assert (
        db.session.execute(
            select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "tak.file")
        ).scalar_one()
        == 1
    )


def test_a_medic_editing_the_marker_sent_back_does_not_repeat_the_hlz_brief(app, ctx):
    """ATAK keeps the HLZ fields of the first event on the marker; the marker we send back carries the remarks
    we stored (with the HLZ line); a re-send by the medic has both: the line is not appended again."""
    inbound.handle(db.session, ctx, ATAK)
    request = db.session.execute(select(CasevacRequest)).scalar_one()
    stored = request.remarks
    assert stored.count("HLZ: ") == 1
    echoed = ATAK.replace(
        b"medline_remarks='Hot LZ, approach from south'",
        b"medline_remarks='" + stored.replace("\n", "&#10;").encode() + b"'",
    )
    for _ in range(2):
        inbound.handle(db.session, ctx, echoed.replace(b"security='1'", b"security='2'"))
    db.session.refresh(request)
    assert request.security == "E" and request.remarks == stored


def test_with_redis_a_tak_position_is_live_at_once_and_reaches_the_track_on_flush(app, ctx, live_redis):
    from casevac.fleet import positions

    asset = AssetFactory(mission_id=ctx.mission_id, callsign="DUSTOFF-2")
    at = clock.now() - timedelta(seconds=3)
    sa = (
        f'<event version="2.0" uid="ANDROID-heli-2" type="a-f-A-M-H" time="{vocabulary.cot_time(at)}" how="m-g">'
        '<point lat="4.42" lon="18.53" hae="300" ce="10" le="10"/><detail><contact callsign="DUSTOFF-2"/>'
        "</detail></event>"
    ).encode()
    store = positions.live_store()
    assert store.redis is not None
    assert inbound.handle(db.session, ctx, sa, live=store) == "position"
    live = positions.latest_positions(db.session, mission_id=ctx.mission_id, assets=[asset], store=store)
    assert (live[asset.id]["lat"], live[asset.id]["lon"]) == (4.42, 18.53)
    marker = reading.classify(stream.parse(outbound.asset_marker(db.session, ctx, asset, live=store)))
    assert (marker.lat, marker.lon) == (4.42, 18.53)  # the asset marker shows the live position
    positions.flush_track(db.session, store=store)
    fix = db.session.execute(select(AssetPosition).where(AssetPosition.asset_id == asset.id)).scalar_one()
    assert fix.source == "tak"
