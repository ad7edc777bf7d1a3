"""Factories for the shared models; domains add theirs beside their tests (tests/<domain>/factories.py)."""

from __future__ import annotations

import factory
from factory.alchemy import SQLAlchemyModelFactory

from config.extensions import db
from core.auth import hash_password
from core.models import Mission, User

PASSWORD = "correct-horse-battery"
_HASH = None


def password_hash() -> str:
    global _HASH
    if _HASH is None:
        _HASH = hash_password(PASSWORD)  # argon2 is slow on purpose: hash once per run
    return _HASH


class BaseFactory(SQLAlchemyModelFactory):
    class Meta:
        abstract = True
        sqlalchemy_session_factory = lambda: db.session  # noqa: E731
        sqlalchemy_session_persistence = "commit"


class MissionFactory(BaseFactory):
    class Meta:
        model = Mission

    code = factory.Sequence(lambda n: f"M{n:04d}")
    name = factory.Sequence(lambda n: f"Mission {n}")
    lat = 4.3947
    lon = 18.5582
    timezone = "Africa/Bangui"


class UserFactory(BaseFactory):
    class Meta:
        model = User

    username = factory.Sequence(lambda n: f"user{n:05d}")
    display_name = factory.LazyAttribute(lambda o: o.username.title())
    password_hash = factory.LazyFunction(password_hash)
    role = "medic"
    mission_id = factory.LazyFunction(lambda: MissionFactory().id)
    superadmin = False
    active = True
