"""What leaves the system about a consultation: the video bridge's join token, the iCalendar invitation,
FHIR R4 Appointment and Slot resources."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

import jwt as pyjwt

from core import clock
from core.errors import conflict, forbidden
from core.models import User
from telemed import policy
from telemed.scheduling import access
from telemed.scheduling.models import RELEASED_STATUSES

JOIN_OPENS_BEFORE = timedelta(minutes=15)


def _video_secret(settings) -> str:
    if settings.VIDEO_APP_SECRET:
        return settings.VIDEO_APP_SECRET
    # Derived, so a default deployment works; set VIDEO_APP_SECRET to share it with the bridge.
    return hmac.new(settings.SECRET_KEY.encode(), b"telemed-video-bridge", hashlib.sha256).hexdigest()


def join(session, *, actor: User, consultation_id: str, settings) -> dict:
    """A room and this participant's token, valid from 15 minutes before the start to the end. An invitee's
    token names their part and invitation (`context.user.part`, `context.user.invitation`): the call checks
    the invitation is still in force at every step."""
    consultation = access.load_visible(session, actor, consultation_id)
    if not policy.may_join(actor, consultation):
        raise forbidden("only the consultation's participants and invitees join it")
    access.audit_read(session, actor, consultation, "join")
    session.commit()
    if consultation.modality == "async":
        raise conflict("a store-and-forward consultation has no live session", allowed=[])
    if consultation.status not in ("booked", "checked_in", "in_progress"):
        raise conflict(f"the consultation is {consultation.status}", allowed=[])
    if actor.id == consultation.patient_user_id:
        # The patient consents to the text in force for this kind first (telemed/consent): 409 with `missing`.
        from telemed.consent import service as consent

        consent.require(session, actor, consultation.kind)
    valid_from = consultation.start - JOIN_OPENS_BEFORE
    valid_until = consultation.end
    now = clock.now()
    if not valid_from <= now < valid_until:
        raise conflict(
            "the join link is valid from 15 minutes before the start to the end",
            valid_from=valid_from.isoformat(),
            valid_until=valid_until.isoformat(),
        )
    # Jitsi token authentication (prosody mod_auth_token): aud, iss = app id, sub = domain, room, nbf, exp.
    claims = {
        "aud": "jitsi",
        "iss": settings.VIDEO_APP_ID,
        "sub": settings.VIDEO_DOMAIN or "*",
        "room": consultation.room,
        "nbf": int(valid_from.timestamp()),
        "exp": int(valid_until.timestamp()),
        "iat": int(now.timestamp()),
        "jti": secrets.token_urlsafe(16),
        "context": {
            "user": {
                "id": actor.id,
                "name": actor.display_name or actor.username,
                "moderator": actor.id == consultation.clinician.user_id,
                **_part_claims(actor, consultation),
            }
        },
    }
    token = pyjwt.encode(claims, _video_secret(settings), algorithm="HS256")
    url = f"https://{settings.VIDEO_DOMAIN}/{consultation.room}?jwt={token}" if settings.VIDEO_DOMAIN else None
    from telemed.video import ice_servers

    return {
        "room": consultation.room,
        "token": token,
        "valid_from": valid_from,
        "valid_until": valid_until,
        "url": url,
        "ice_servers": ice_servers(settings, actor.id, valid_until),
        "ice_transport_policy": settings.TURN_POLICY if settings.TURN_URLS and settings.TURN_SECRET else "all",
    }


def _part_claims(actor: User, consultation) -> dict:
    if actor.id in policy.participants(consultation):
        return {"part": "clinician" if actor.id == consultation.clinician.user_id else "participant"}
    invited = policy.invitation(actor, consultation)
    return {"part": "interpreter" if invited.part == "interpreter" else "second_clinician", "invitation": invited.id}


def fhir_slot_bundle(slots: list[dict]) -> dict:
    """A FHIR R4 searchset Bundle of Slot resources (status free; the Schedule is the clinician's)."""
    entries = []
    for slot in slots:
        slot_id = hashlib.sha256(f"{slot['clinician_id']}|{slot['start'].isoformat()}".encode()).hexdigest()[:32]
        entries.append(
            {
                "fullUrl": f"urn:uuid:{_uuid_like(slot_id)}",
                "resource": {
                    "resourceType": "Slot",
                    "id": slot_id,
                    "schedule": {"reference": f"Schedule/{slot['clinician_id']}"},
                    "status": "free",
                    "start": _fhir_instant(slot["start"]),
                    "end": _fhir_instant(slot["end"]),
                },
            }
        )
    return {"resourceType": "Bundle", "type": "searchset", "total": len(entries), "entry": entries}


def _uuid_like(hex32: str) -> str:
    return f"{hex32[:8]}-{hex32[8:12]}-{hex32[12:16]}-{hex32[16:20]}-{hex32[20:32]}"


def _fhir_instant(value: datetime) -> str:
    return clock.as_utc(value).isoformat().replace("+00:00", "Z")


def ics(session, *, actor: User, consultation_id: str) -> bytes:
    """An RFC 5545 invitation: DTSTART/DTEND in the clinician's zone (with its VTIMEZONE), UTC in the
    description. No reason or patient name: invitations get forwarded."""
    from zoneinfo import ZoneInfo

    import icalendar

    consultation = access.load_visible(session, actor, consultation_id)
    access.audit_read(session, actor, consultation, "ics")
    session.commit()
    tz = ZoneInfo(consultation.clinician.timezone)
    cal = icalendar.Calendar()
    cal.add("prodid", "-//Field medical coordination//telemed//EN")
    cal.add("version", "2.0")
    cal.add("method", "CANCEL" if consultation.status in RELEASED_STATUSES else "REQUEST")
    event = icalendar.Event()
    event.add("uid", f"{consultation.id}@telemed")
    event.add("dtstamp", clock.now())
    event.add("dtstart", consultation.start.astimezone(tz))
    event.add("dtend", consultation.end.astimezone(tz))
    name = consultation.clinician.display_name or "clinician"
    kind = "Mental-health consultation" if consultation.kind == "mental_health" else "Telemedicine consultation"
    event.add("summary", f"{kind} ({consultation.modality}) with {name}")
    event.add(
        "description",
        f"{kind}, {consultation.modality}. "
        f"{_fhir_instant(consultation.start)} to {_fhir_instant(consultation.end)} UTC "
        f"({consultation.clinician.timezone} for the clinician). Join from the app, "
        f"from 15 minutes before the start.",
    )
    event.add("status", "CANCELLED" if consultation.status in RELEASED_STATUSES else "CONFIRMED")
    event.add("sequence", sum(1 for h in consultation.history or [] if h.get("reason") == "rescheduled"))
    cal.add_component(event)
    cal.add_missing_timezones()
    return cal.to_ical()


FHIR_STATUS = {
    "booked": "booked",
    "checked_in": "checked-in",
    "in_progress": "arrived",
    "fulfilled": "fulfilled",
    "cancelled": "cancelled",
    "noshow": "noshow",
}


def fhir_appointment(session, *, actor: User, consultation_id: str) -> dict:
    """A FHIR R4 Appointment. In progress maps to `arrived` (the session itself is an Encounter of class VR);
    cancelationReason only when cancelled or noshow (DOMAIN.md section 5)."""
    consultation = access.load_visible(session, actor, consultation_id)
    access.audit_read(session, actor, consultation, "fhir")
    session.commit()
    patient_actor = (
        {"reference": f"Patient/{consultation.patient_user_id}"}
        if consultation.patient_user_id
        else {"display": consultation.patient_name or f"casualty {consultation.patient_casualty_id}"}
    )
    resource = {
        "resourceType": "Appointment",
        "id": consultation.id,
        "status": FHIR_STATUS[consultation.status],
        "serviceCategory": [{"text": consultation.kind.replace("_", " ")}],
        "appointmentType": {"text": consultation.modality},
        "specialty": [{"text": s} for s in consultation.clinician.specialties],
        "start": _fhir_instant(consultation.start),
        "end": _fhir_instant(consultation.end),
        "minutesDuration": consultation.duration_minutes,
        "created": consultation.created_at.date().isoformat(),
        "participant": [
            {
                "actor": {
                    "reference": f"Practitioner/{consultation.clinician_id}",
                    "display": consultation.clinician.display_name or "clinician",
                },
                "required": "required",
                "status": "accepted",
            },
            {"actor": patient_actor, "required": "required", "status": "accepted"},
        ],
    }
    if consultation.kind != "mental_health":
        resource["description"] = consultation.reason
    if consultation.status in RELEASED_STATUSES and consultation.status_reason:
        resource["cancelationReason"] = {"text": consultation.status_reason}
    return resource
