"""The fleet's version (casevac.fleet.versions): every committed write to assets or facilities moves it, however
it is made; nothing else does; what a process keeps of the fleet is reused only while it holds."""

from __future__ import annotations

from casevac.fleet import snapshot, versions
from casevac.fleet.models import Asset, Facility
from config.extensions import db
from core.models import Mission
from tests.casevac.fleet.factories import AssetFactory, FacilityFactory
from tests.factories import MissionFactory


def moved(write) -> bool:
    """Whether `write()` followed by a commit moved the fleet's version."""
    before = versions.current(db.session)
    db.session.commit()  # the read above began a transaction: the write gets its own
    write()
    db.session.commit()
    return versions.current(db.session) != before


def test_every_committed_fleet_write_moves_the_version_however_it_is_made(app):
    mission = MissionFactory()
    asset = AssetFactory(mission_id=mission.id)
    facility = FacilityFactory(mission_id=mission.id)
    table = Asset.__table__
    assert moved(lambda: AssetFactory(mission_id=mission.id))  # an ORM insert
    assert moved(lambda: setattr(db.session.get(Asset, asset.id), "readiness_minutes", 25))  # an ORM flush
    assert moved(lambda: db.session.execute(db.update(Asset).where(Asset.id == asset.id).values(status="offline")))
    assert moved(lambda: db.session.execute(db.update(table).where(table.c.id == asset.id).values(lat=4.1, lon=18.2)))
    assert moved(lambda: setattr(db.session.get(Facility, facility.id), "beds_available", 3))
    assert moved(lambda: db.session.execute(db.delete(Facility).where(Facility.id == facility.id)))


def test_reads_other_writes_and_rolled_back_fleet_writes_leave_it_alone(app):
    mission = MissionFactory()
    asset = AssetFactory(mission_id=mission.id)
    assert not moved(lambda: db.session.execute(db.select(Asset)).all())
    assert not moved(lambda: setattr(db.session.get(Mission, mission.id), "name", "renamed"))
    before = versions.current(db.session)
    db.session.execute(db.update(Asset).where(Asset.id == asset.id).values(status="offline"))
    db.session.rollback()
    assert versions.current(db.session) == before


def statuses(mission_id: str) -> list[str]:
    return [row.status for row in snapshot.fleet(db.session, mission_id=mission_id)[0]]


def test_kept_rows_serve_while_the_version_holds_and_never_an_uncommitted_write(app):
    mission = MissionFactory()
    asset = AssetFactory(mission_id=mission.id, status="available")
    FacilityFactory(mission_id=mission.id)
    first = snapshot.fleet(db.session, mission_id=mission.id)
    again = snapshot.fleet(db.session, mission_id=mission.id)
    assert again[0] is first[0] and again[1] is first[1]  # kept

    # A transaction that wrote to the fleet reads its own (uncommitted, uncounted) rows, and keeps nothing.
    db.session.execute(db.update(Asset).where(Asset.id == asset.id).values(status="maintenance"))
    assert statuses(mission.id) == ["maintenance"]
    db.session.rollback()
    assert statuses(mission.id) == ["available"]

    db.session.execute(db.update(Asset).where(Asset.id == asset.id).values(status="maintenance"))
    db.session.commit()
    assert statuses(mission.id) == ["maintenance"]
