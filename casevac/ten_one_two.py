"""The 10-1-2 casualty response timeline (DOMAIN.md section 3: NATO COMEDS 2011, UN DOS Policy on
Casualty Evacuation in the Field 2020.7). Every clock runs from the time of injury; where it is unknown,
the request's filing time stands in (Casualty.clock_start).

What counts as a leg being met:
- first_aid (10 min): the earliest bleeding or airway control treatment recorded for the casualty;
- resuscitation (1 h): medical staff reached the casualty: the evacuation asset at pickup when it has a medical
  crew, else the destination facility at delivery;
- surgery (2 h): the casualty was handed over at a destination with damage-control surgery (status delivered);
  a delivery to a facility without it leaves the leg pending, then breached. Dispatch chooses a destination
  with surgery for casualties that need it (AJMedP-2: by need, not by distance).
Dispatch ranks its options with the same two rules (resuscitation_at, surgery_at), so a recommendation that
"meets 10-1-2" is one the timeline will count as met.

States of a leg: `met` (done by the due time), `breached` (done late, or not done and past due),
`at_risk` (not done, due within the leg's warning margin: the coordinator should act now),
`pending` (not done, time left). A cancelled request's clocks stop at its cancellation.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from core.clock import as_utc


@dataclass(frozen=True)
class Leg:
    name: str
    window: timedelta
    at_risk_before: timedelta


LEGS = (
    Leg("first_aid", timedelta(minutes=10), timedelta(minutes=2)),
    Leg("resuscitation", timedelta(hours=1), timedelta(minutes=15)),
    Leg("surgery", timedelta(hours=2), timedelta(minutes=30)),
)
LEG_NAMES = tuple(leg.name for leg in LEGS)
STATES = ("met", "pending", "at_risk", "breached")
# Bleeding and airway control (DOMAIN.md sections 2 and 3): what begins the 10-minute first-aid leg.
FIRST_AID_TREATMENTS = frozenset(
    {
        "tourniquet",
        "haemostatic_dressing",
        "pressure_dressing",
        "airway_adjunct",
        "surgical_airway",
        "needle_decompression",
        "chest_seal",
        "recovery_position",
    }
)


def leg_state(*, due: datetime, met_at: datetime | None, now: datetime, at_risk_before: timedelta) -> str:
    """Boundaries: done exactly at the due time is met; not done exactly at the due time is at_risk
    (still achievable this instant); one instant later it is breached."""
    if met_at is not None:
        return "met" if met_at <= due else "breached"
    if now > due:
        return "breached"
    if now >= due - at_risk_before:
        return "at_risk"
    return "pending"


def first_aid_at(treatments: list[dict]) -> datetime | None:
    times = [_time(t.get("at")) for t in treatments or [] if t.get("code") in FIRST_AID_TREATMENTS]
    times = [t for t in times if t is not None]
    return min(times) if times else None


def resuscitation_at(*, pickup, delivery, medical_crew: bool | None):
    """When resuscitation begins: at pickup with a medical crew on the asset, else at delivery (times, or ETAs)."""
    return pickup if medical_crew else delivery


def surgery_at(*, delivery, surgery_at_destination: bool | None):
    """When damage-control surgery can begin: at delivery to a facility that has it, else not yet."""
    return delivery if surgery_at_destination else None


def met_times(casualty) -> dict[str, datetime | None]:
    request = casualty.request
    return {
        "first_aid": first_aid_at(casualty.treatments),
        "resuscitation": resuscitation_at(
            pickup=request.at_pickup_at, delivery=request.delivered_at, medical_crew=request.medical_crew
        ),
        "surgery": surgery_at(delivery=request.delivered_at, surgery_at_destination=request.surgery_at_destination),
    }


def timeline(casualty, *, now: datetime) -> dict:
    """{leg: {"due", "met_at", "state"}} for one casualty, evaluated at `now`."""
    start = casualty.clock_start
    request = casualty.request
    if request.status == "cancelled" and request.cancelled_at is not None:
        now = min(now, request.cancelled_at)
    met = met_times(casualty)
    out = {}
    for leg in LEGS:
        due = start + leg.window
        met_at = met[leg.name]
        out[leg.name] = {
            "due": due,
            "met_at": met_at,
            "state": leg_state(due=due, met_at=met_at, now=now, at_risk_before=leg.at_risk_before),
        }
    return out


def surgery_due(request) -> datetime:
    """The earliest 2-hour surgery deadline among the request's casualties (filing time stands in)."""
    starts = [c.clock_start for c in request.casualties] or [request.created_at]
    return min(starts) + LEGS[2].window


def _time(value) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return as_utc(value)
    try:
        return as_utc(datetime.fromisoformat(str(value).replace("Z", "+00:00")))
    except ValueError:
        return None
