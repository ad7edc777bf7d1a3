"""Demo data (idempotent): a mission around Bangui with the demo users of API.md; each domain adds its
part with register_seeder(app, seed_demo) from its init_app (a function seed_demo(session, *, mission, users))."""

from __future__ import annotations

import secrets

from flask import Flask, current_app

from config.extensions import db
from core import service
from core.models import Mission, User

DEMO_MISSION = {
    "code": "DEMO",
    "name": "Demo mission (Bangui)",
    "lat": 4.3947,
    "lon": 18.5582,
    "timezone": "Africa/Bangui",
}
# What service.create_user takes of each demo user (all share the demo password).
DEMO_USERS = [
    {"username": "demo-admin", "role": "admin", "display_name": "Demo admin", "superadmin": True},
    {"username": "demo-coordinator", "role": "coordinator", "display_name": "Demo medical coordinator"},
    {"username": "demo-medic", "role": "medic", "display_name": "Demo field medic"},
    {"username": "demo-clinician", "role": "clinician", "display_name": "Demo clinician (general medicine)"},
    {"username": "demo-psychiatrist", "role": "clinician", "display_name": "Demo psychiatrist"},
    {"username": "demo-member", "role": "member", "display_name": "Demo peacekeeper"},
]
SEEDERS = "demo_seeders"


def register_seeder(app: Flask, seeder) -> None:
    """A domain's part of the demo, called after the mission and users exist, in registration order."""
    seeders = app.extensions.setdefault(SEEDERS, [])
    if seeder not in seeders:
        seeders.append(seeder)


def seeders(app: Flask | None = None) -> list:
    return list((app or current_app).extensions.get(SEEDERS, []))


def seed_demo(session, *, password: str | None) -> tuple[Mission, dict[str, User], str | None]:
    """Create what is missing; returns the generated password when one was made (print it once)."""
    mission = session.execute(db.select(Mission).where(Mission.code == DEMO_MISSION["code"])).scalar_one_or_none()
    if mission is None:
        mission = service.create_mission(session, actor=None, **DEMO_MISSION)
    generated = None
    users: dict[str, User] = {}
    for fields in DEMO_USERS:
        username = fields["username"]
        user = session.execute(db.select(User).where(User.username == username)).scalar_one_or_none()
        if user is None:
            if password is None:
                generated = password = secrets.token_urlsafe(12)
            user = service.create_user(session, actor=None, password=password, mission_id=mission.id, **fields)
        users[username] = user
    for seeder in seeders():
        seeder(session, mission=mission, users=users)
    session.commit()
    return mission, users, generated
