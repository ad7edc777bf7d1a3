"""Recording and checking consent."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError

from config.extensions import db
from core import audit
from core.errors import conflict
from core.models import User
from telemed.consent import texts
from telemed.consent.models import ConsentRecord


def has_current(session, user_id: str, kind: str) -> bool:
    version = texts.current(kind)["version"]
    query = db.select(ConsentRecord.id).where(
        ConsentRecord.patient_id == user_id, ConsentRecord.kind == kind, ConsentRecord.version == version
    )
    return session.execute(query).first() is not None


def require(session, user: User, kind: str) -> None:
    """409 saying what is missing, unless the user consented to the text in force for this kind."""
    if not has_current(session, user.id, kind):
        now = texts.current(kind)
        raise conflict(
            f"consent to the {kind.replace('_', ' ')} consultation text (version {now['version']}) is missing: "
            "POST /api/v1/telemed/consents {kind, version} first",
            missing={"kind": kind, "version": now["version"]},
        )


def record(session, *, actor: User, kind: str, version: str) -> tuple[ConsentRecord, bool]:
    """(the record, created?): consenting again to the same version returns the first record."""
    now = texts.current(kind)
    if version != now["version"]:
        raise conflict("only the consent text in force can be agreed to", current_version=now["version"])
    existing = _find(session, actor.id, kind, version)
    if existing is not None:
        return existing, False
    row = ConsentRecord(
        mission_id=actor.mission_id, patient_id=actor.id, kind=kind, version=version, text_sha256=now["sha256"]
    )
    session.add(row)
    try:
        session.flush()
    except IntegrityError:  # a concurrent consent to the same version won
        session.rollback()
        return _find(session, actor.id, kind, version), False
    audit.record(
        session, actor, "telemed.consent", row, mission_id=actor.mission_id, detail={"kind": kind, "version": version}
    )
    session.commit()
    return row, True


def _find(session, user_id, kind, version):
    query = db.select(ConsentRecord).where(
        ConsentRecord.patient_id == user_id, ConsentRecord.kind == kind, ConsentRecord.version == version
    )
    return session.execute(query).scalar_one_or_none()


def mine(session, user: User) -> list[ConsentRecord]:
    query = (
        db.select(ConsentRecord)
        .where(ConsentRecord.patient_id == user.id)
        .order_by(ConsentRecord.recorded_at, ConsentRecord.id)
    )
    return list(session.execute(query).scalars())
