"""Casualties of a CASEVAC request (MIST-AT, DOMAIN.md section 2): created with the filing or added later,
corrected, vital signs and treatments appended (the history is kept); the audited full read."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from casevac import policy
from casevac.requests import events
from casevac.requests.access import ensure_may_edit, lock
from casevac.requests.models import CasevacRequest, Casualty, SignsReading
from core import audit, clock
from core.errors import conflict, not_found


def new_casualty(body: dict, *, position: int, actor, now: datetime) -> Casualty:
    casualty = Casualty(
        position=position,
        zap=body.get("zap"),
        age=body.get("age"),
        sex=body.get("sex"),
        time_of_injury=_utc(body.get("time_of_injury")),
        mechanism=body.get("mechanism"),
        mechanism_detail=body.get("mechanism_detail"),
        injuries=list(body.get("injuries") or []),
        treatments=[_treatment(t, now) for t in body.get("treatments") or []],
        precedence=body.get("precedence"),
        created_at=now,
        updated_at=now,
    )
    if body.get("signs"):
        casualty.signs_history.append(_reading(body["signs"], actor=actor, now=now))
    return casualty


def _treatment(body: dict, now: datetime) -> dict:
    out = {"code": body["code"], "at": clock.as_utc(body.get("at") or now).isoformat()}
    if body.get("detail"):
        out["detail"] = body["detail"]
    return out


def _reading(body: dict, *, actor, now: datetime) -> SignsReading:
    values = {name: body[name] for name in SignsReading.VITALS if name in body}
    return SignsReading(taken_at=_utc(body.get("taken_at")) or now, recorded_at=now, recorded_by=actor.id, **values)


def _utc(value: datetime | None) -> datetime | None:
    """As the database gives it back (UTC), so a view built from memory equals a later read."""
    return clock.as_utc(value) if value is not None else None


def add_casualty(session, *, actor, request_id: str, body: dict) -> Casualty:
    request = lock(session, actor=actor, request_id=request_id)
    ensure_may_edit(actor, request)
    if len(request.casualties) >= request.patients_total:
        raise conflict(
            f"the request has {request.patients_total} patients (line 3) and as many casualties; "
            "correct line 3 by filing again or update an existing casualty"
        )
    now = clock.now()
    casualty = new_casualty(body, position=len(request.casualties), actor=actor, now=now)
    request.casualties.append(casualty)
    request.updated_at = now
    session.flush()
    audit.record(
        session,
        actor,
        "casevac.casualty.add",
        casualty,
        mission_id=request.mission_id,
        detail={"request_id": request.id},
    )
    events.publish(session, "casevac.updated", request, change="casualties")
    session.commit()
    return casualty


def get_casualty(session, *, actor, casualty_id: str) -> Casualty:
    casualty = session.get(Casualty, casualty_id) if isinstance(casualty_id, str) else None
    if casualty is None or not policy.may_see_request(actor, casualty.request):
        raise not_found("casualty")
    return casualty


def casualty_in_mission(session, *, casualty_id: str, mission_id: str) -> bool:
    """For other domains (a consultation's patient.casualty_id): whether this casualty is of a request of the
    mission. Existence only: seeing the record is still the CASEVAC policy's to decide."""
    if not isinstance(casualty_id, str) or not casualty_id:
        return False
    query = (
        select(Casualty.id)
        .join(CasevacRequest, Casualty.request_id == CasevacRequest.id)
        .where(Casualty.id == casualty_id, CasevacRequest.mission_id == mission_id)
    )
    return session.execute(query).first() is not None


def read_casualty(session, *, actor, casualty_id: str) -> Casualty:
    """A casualty's full medical record (every vital-sign reading): the read is audited. The request view,
    polled by coordinators' screens, is not: it shows the latest reading only."""
    casualty = get_casualty(session, actor=actor, casualty_id=casualty_id)
    audit.record(
        session,
        actor,
        "casevac.casualty.read",
        casualty,
        mission_id=casualty.request.mission_id,
        detail={"request_id": casualty.request_id},
    )
    session.commit()
    return casualty


def update_casualty(session, *, actor, casualty_id: str, changes: dict) -> Casualty:
    """Correct MIST-AT fields; `signs` and `treatments` append (DOMAIN.md section 2: keep the history)."""
    casualty = get_casualty(session, actor=actor, casualty_id=casualty_id)
    request = lock(session, actor=actor, request_id=casualty.request_id)
    ensure_may_edit(actor, request, allow_after_dispatch_for_filer=True)
    now = clock.now()
    changes = dict(changes)
    fields_changed = []
    signs = changes.pop("signs", None)
    treatments = changes.pop("treatments", None)
    for name, value in changes.items():
        if getattr(casualty, name) != value:
            setattr(casualty, name, value)
            fields_changed.append(name)
    if signs:
        casualty.signs_history.append(_reading(signs, actor=actor, now=now))
        fields_changed.append("signs")
    if treatments:
        casualty.treatments = list(casualty.treatments or []) + [_treatment(t, now) for t in treatments]
        fields_changed.append("treatments")
    if not fields_changed:
        return casualty
    casualty.updated_at = request.updated_at = now
    audit.record(
        session,
        actor,
        "casevac.casualty.update",
        casualty,
        mission_id=request.mission_id,
        detail={"request_id": request.id, "fields": sorted(fields_changed)},
    )
    events.publish(session, "casevac.updated", request, change="casualties")
    session.commit()
    return casualty
