"""What leaves the system about a consultation: the video bridge's join token, the iCalendar invitation,
FHIR R4 Appointment and Slot resources."""

from __future__ import annotations

import functools
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
    from telemed.scheduling.video import ice_servers

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


# What a mail, an invitation or its summary says of a consultation: a forwarded or glanced-at invitation does
# not say "mental health" (DOMAIN.md section 6: stigma keeps people from care).
KIND_LABELS = {"diagnostic": "Telemedicine consultation", "mental_health": "Confidential consultation"}


def ics(session, *, actor: User, consultation_id: str) -> bytes:
    """GET .ics: the consultation as the invitation its participants are mailed (METHOD:REQUEST, or CANCEL once
    cancelled or a no-show)."""
    consultation = access.load_visible(session, actor, consultation_id)
    access.audit_read(session, actor, consultation, "ics")
    session.commit()
    return calendar(session, consultation)


def sequence(consultation) -> int:
    """RFC 5546 section 2.1.4: SEQUENCE grows with every significant change: each new time, the cancellation."""
    moves = sum(1 for h in consultation.history or [] if h.get("reason") == "rescheduled")
    return moves + (1 if consultation.status in RELEASED_STATUSES else 0)


def calendar(session, consultation, *, uninvited: str | None = None) -> bytes:
    """An iTIP object (RFC 5546 over RFC 5545): METHOD:REQUEST while the consultation holds its time, METHOD:CANCEL
    with STATUS:CANCELLED once released; one stable UID, SEQUENCE, DTSTAMP. DTSTART/DTEND in the clinician's zone
    (with its VTIMEZONE), UTC in the description. The clinician is the ORGANIZER and, as CHAIR, the first ATTENDEE
    (a REQUEST needs at least one); then the patient and, for a diagnostic consultation, whoever booked it. A user
    without an e-mail address is addressed as urn:uuid: (RFC 4122), so the attendee list stays complete; nobody
    is mailed there. No reason or free-text patient name: invitations get forwarded.

    `uninvited`: the CANCEL that removes one attendee (an invitation revoked) while the event stands (RFC 5546
    section 3.2.5: no STATUS, that attendee alone, a SEQUENCE above the one they were sent)."""
    from zoneinfo import ZoneInfo

    import icalendar

    released = consultation.status in RELEASED_STATUSES
    tz = ZoneInfo(consultation.clinician.timezone)
    cal = icalendar.Calendar()
    cal.add("prodid", "-//Field medical coordination//telemed//EN")
    cal.add("version", "2.0")
    cal.add("method", "CANCEL" if released or uninvited else "REQUEST")
    cal.add_component(_vtimezone(consultation.clinician.timezone, consultation.start.year))
    event = icalendar.Event()
    event.add("uid", f"{consultation.id}@telemed")
    event.add("dtstamp", clock.now())
    event.add("dtstart", consultation.start.astimezone(tz))
    event.add("dtend", consultation.end.astimezone(tz))
    name = consultation.clinician.display_name or "clinician"
    kind = KIND_LABELS[consultation.kind]
    event.add("summary", f"{kind} ({consultation.modality}) with {name}")
    event.add(
        "description",
        f"{kind}, {consultation.modality}. "
        f"{_fhir_instant(consultation.start)} to {_fhir_instant(consultation.end)} UTC "
        f"({consultation.clinician.timezone} for the clinician). Join from the app, "
        f"from 15 minutes before the start.",
    )
    if not uninvited:
        event.add("status", "CANCELLED" if released else "CONFIRMED")
    event.add("sequence", sequence(consultation) + (1 if uninvited else 0))
    organizer = consultation.clinician.user
    event.add("organizer", _address(organizer, name=name))
    replies = bool(organizer.email) and not uninvited  # an RSVP needs an organizer a reply can reach
    listed = attendees(session, consultation)
    if uninvited:
        listed = [(session.get(User, uninvited), "REQ-PARTICIPANT")]
    for user, role in listed:
        chair = user.id == organizer.id
        accepted = chair or user.id == consultation.booked_by
        event.add(
            "attendee",
            _address(
                user,
                name=name if chair else None,
                ROLE=role,
                PARTSTAT="ACCEPTED" if accepted else "NEEDS-ACTION",
                RSVP="TRUE" if replies and not accepted and not released else "FALSE",
            ),
        )
    cal.add_component(event)
    return cal.to_ical()


@functools.lru_cache(maxsize=256)
def _vtimezone(tzid: str, year: int):
    """The zone's VTIMEZONE with its transitions from the start of the consultation's year for two years (RFC 5545
    3.6.5: it covers the event), made once per zone and year in a process. icalendar's default, 1970 to 2038, took
    7 ms or more to build for every invitation and is 2.3 KB of each mail instead of 0.5 KB (Europe/Oslo).
    Shared read-only between calendars."""
    from datetime import date

    import icalendar

    return icalendar.Timezone.from_tzid(tzid, first_date=date(year, 1, 1), last_date=date(year + 2, 1, 1))


def attendees(session, consultation) -> list[tuple[User, str]]:
    """The invitation's attendees with their RFC 5545 ROLE: the clinician (CHAIR), the patient if a user, for
    a diagnostic consultation its booker (a required participant when the patient is no user: a casualty), then
    the interpreters and second clinicians invited (policy.active_invitations), required participants."""
    out = [(consultation.clinician.user, "CHAIR")]
    seen = {consultation.clinician.user_id}
    booker = consultation.booked_by if consultation.kind != "mental_health" else None
    for user_id, role in (
        (consultation.patient_user_id, "REQ-PARTICIPANT"),
        (booker, "OPT-PARTICIPANT" if consultation.patient_user_id else "REQ-PARTICIPANT"),
    ):
        if user_id and user_id not in seen:
            seen.add(user_id)
            out.append((session.get(User, user_id), role))
    for invitation in policy.active_invitations(consultation):
        if invitation.user_id not in seen:
            seen.add(invitation.user_id)
            out.append((session.get(User, invitation.user_id), "REQ-PARTICIPANT"))
    return out


def _address(user: User, *, name: str | None = None, **params):
    import uuid

    import icalendar

    if user.email:
        uri = f"mailto:{user.email}"
    else:
        try:
            uri = f"urn:uuid:{uuid.UUID(user.id)}"
        except ValueError:  # the demo's and tests' shorter ids: a stable UUID made from the id
            uri = f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, 'user:' + user.id)}"
    address = icalendar.vCalAddress(uri)
    # A parameter value may not hold a double quote (RFC 5545 section 3.1).
    address.params["CN"] = (name or user.display_name or user.username).replace('"', "'")
    address.params.update(params)
    return address


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
