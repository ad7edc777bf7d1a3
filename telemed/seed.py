"""Demo clinicians (idempotent): the two demo users of API.md plus clinicians in several zones and languages
(issue 6: a trauma surgeon in Europe/Oslo, a radiologist in Asia/Kathmandu, a psychologist in
America/New_York, a paediatrician across the date line in Pacific/Auckland)."""

from __future__ import annotations

from config.extensions import db
from core.models import User
from core.service import add_user
from telemed.scheduling.models import Clinician

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri")


def _weekly(start: str, end: str, days=WEEKDAYS, split: tuple[str, str] | None = None) -> list[dict]:
    if split:
        return [
            w
            for d in days
            for w in ({"day": d, "start": start, "end": split[0]}, {"day": d, "start": split[1], "end": end})
        ]
    return [{"day": d, "start": start, "end": end} for d in days]


# username, display name, specialties, languages, zone, kinds, weekly, slot minutes
DEMO_CLINICIANS = [
    (
        "demo-clinician",
        "Demo clinician (general medicine)",
        ["general_medicine"],
        ["en", "fr"],
        "Africa/Bangui",
        ["diagnostic"],
        _weekly("08:00", "17:00", split=("12:00", "13:00")),
        30,
    ),
    (
        "demo-psychiatrist",
        "Demo psychiatrist",
        ["psychiatry"],
        ["fr", "en"],
        "Africa/Nairobi",
        ["mental_health"],
        _weekly("09:00", "17:00", days=WEEKDAYS + ("sat",)),
        45,
    ),
    (
        "demo-trauma-surgeon",
        "Demo trauma surgeon (Oslo)",
        ["trauma_surgery"],
        ["en", "no"],
        "Europe/Oslo",
        ["diagnostic"],
        _weekly("07:30", "15:30"),
        30,
    ),
    (
        "demo-radiologist",
        "Demo radiologist (Kathmandu)",
        ["radiology"],
        ["en", "ne", "hi"],
        "Asia/Kathmandu",
        ["diagnostic"],
        _weekly("09:00", "18:00", days=("sun", "mon", "tue", "wed", "thu", "fri")),
        20,
    ),
    (
        "demo-psychologist",
        "Demo psychologist (New York)",
        ["psychology"],
        ["en", "es"],
        "America/New_York",
        ["mental_health"],
        _weekly("08:00", "16:00"),
        50,
    ),
    (
        "demo-paediatrician",
        "Demo paediatrician (Auckland)",
        ["paediatrics", "general_medicine"],
        ["en", "mi"],
        "Pacific/Auckland",
        ["diagnostic"],
        _weekly("08:00", "12:00"),
        30,
    ),
]


def seed_demo(session, *, mission, users: dict[str, User]) -> None:
    """Create the missing demo clinician users and profiles. Extra clinician users share demo-admin's password
    (DEMO_PASSWORD, or the one printed at first run)."""
    template = users.get("demo-admin")
    for username, display_name, specialties, languages, zone, kinds, weekly, slot in DEMO_CLINICIANS:
        user = (
            users.get(username)
            or session.execute(db.select(User).where(User.username == username)).scalar_one_or_none()
        )
        if user is None:
            if template is None:
                continue
            user = User(
                username=username,
                display_name=display_name,
                password_hash=template.password_hash,
                role="clinician",
                mission_id=mission.id,
            )
            add_user(session, user, actor=None, audit_detail={"seed": True})
        if user.role != "clinician":
            continue
        exists = session.execute(db.select(Clinician.id).where(Clinician.user_id == user.id)).scalar_one_or_none()
        if exists:
            continue
        session.add(
            Clinician(
                user_id=user.id,
                mission_id=user.mission_id,
                display_name=display_name,
                specialties=specialties,
                languages=languages,
                timezone=zone,
                kinds=kinds,
                weekly=weekly,
                overrides=[],
                slot_minutes=slot,
                buffer_minutes=10,
                min_notice_minutes=60,
                horizon_days=60,
            )
        )
    session.flush()
