"""Telemedicine request and response schemas (API.md "Telemedicine")."""

from __future__ import annotations

import re
from datetime import date
from zoneinfo import available_timezones

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from core.fields import Text, Time
from core.lists import list_schema
from core.pagination import PageArgs, page_schema
from telemed.kinds import KINDS
from telemed.scheduling.availability import DAYS
from telemed.scheduling.models import (
    MODALITIES,
    NOTE_KINDS,
    SPECIALTIES,
    STATUSES,
)

# ISO 639-1 (two-letter language codes).
ISO_639_1 = frozenset(
    """
aa ab ae af ak am an ar as av ay az ba be bg bh bi bm bn bo br bs ca ce ch co cr cs cu cv cy da de dv dz
ee el en eo es et eu fa ff fi fj fo fr fy ga gd gl gn gu gv ha he hi ho hr ht hu hy hz ia id ie ig ii ik
io is it iu ja jv ka kg ki kj kk kl km kn ko kr ks ku kv kw ky la lb lg li ln lo lt lu lv mg mh mi mk ml
mn mr ms mt my na nb nd ne ng nl nn no nr nv ny oc oj om or os pa pi pl ps pt qu rm rn ro ru rw sa sc sd
se sg si sk sl sm sn so sq sr ss st su sv sw ta te tg th ti tk tl tn to tr ts tt tw ty ug uk ur uz ve vi
vo wa wo xh yi yo za zh zu""".split()
)
_TIMEZONES = None
HHMM = re.compile(r"^(?:[01]\d|2[0-3]):[0-5]\d$|^24:00$")


def _timezones() -> set[str]:
    global _TIMEZONES
    if _TIMEZONES is None:
        _TIMEZONES = available_timezones()
    return _TIMEZONES


def _validate_timezone(value: str) -> None:
    if value not in _timezones():
        raise ValidationError("not an IANA time zone name (e.g. Africa/Bangui, Europe/Oslo)")


def _validate_language(value: str) -> None:
    if value not in ISO_639_1:
        raise ValidationError("not an ISO 639-1 language code (two lower-case letters, e.g. en, fr, ar)")


# ---------------------------------------------------------------------------------------------------
# Clinicians and availability


class ClinicianIn(Schema):
    user_id = Text(required=True, validate=validate.Length(min=1, max=36))
    display_name = Text(load_default=None, allow_none=True, validate=validate.Length(max=200))
    specialties = fields.List(
        fields.String(validate=validate.OneOf(SPECIALTIES)),
        required=True,
        validate=validate.Length(min=1, max=len(SPECIALTIES)),
    )
    languages = fields.List(Text(validate=_validate_language), required=True, validate=validate.Length(min=1, max=20))
    timezone = Text(required=True, validate=_validate_timezone)
    kinds = fields.List(
        fields.String(validate=validate.OneOf(KINDS)),
        load_default=None,
        validate=validate.Length(min=1, max=len(KINDS)),
        metadata={"description": "kinds of consultation taken; default from the specialties"},
    )


class ClinicianPatch(Schema):
    display_name = Text(allow_none=True, validate=validate.Length(max=200))
    specialties = fields.List(
        fields.String(validate=validate.OneOf(SPECIALTIES)), validate=validate.Length(min=1, max=len(SPECIALTIES))
    )
    languages = fields.List(Text(validate=_validate_language), validate=validate.Length(min=1, max=20))
    timezone = Text(validate=_validate_timezone)
    kinds = fields.List(fields.String(validate=validate.OneOf(KINDS)), validate=validate.Length(min=1, max=len(KINDS)))
    active = fields.Boolean()


class Window(Schema):
    start = Text(required=True, validate=validate.Regexp(HHMM, error="HH:MM, 00:00 to 23:59"))
    end = Text(required=True, validate=validate.Regexp(HHMM, error="HH:MM, 00:01 to 24:00"))

    @validates_schema
    def _order(self, data, **kwargs):
        if HHMM.match(data.get("start", "")) and HHMM.match(data.get("end", "")) and data["end"] <= data["start"]:
            raise ValidationError("must be after start", field_name="end")


class WeeklyWindow(Window):
    day = Text(required=True, validate=validate.OneOf(DAYS))


class Override(Schema):
    date = fields.Date(required=True)
    windows = fields.List(
        fields.Nested(Window),
        required=True,
        validate=validate.Length(max=24),
        metadata={"description": "replaces that day's weekly windows; empty closes the day"},
    )


def _overlapping(windows: list[tuple[str, str]]) -> bool:
    ordered = sorted(windows)
    return any(b[0] < a[1] for a, b in zip(ordered, ordered[1:], strict=False))


class AvailabilityIn(Schema):
    weekly = fields.List(fields.Nested(WeeklyWindow), required=True, validate=validate.Length(max=7 * 24))
    overrides = fields.List(fields.Nested(Override), load_default=list, validate=validate.Length(max=1000))
    slot_minutes = fields.Integer(load_default=30, validate=validate.Range(min=5, max=480))
    buffer_minutes = fields.Integer(load_default=0, validate=validate.Range(min=0, max=240))
    min_notice_minutes = fields.Integer(load_default=60, validate=validate.Range(min=0, max=60 * 24 * 30))
    horizon_days = fields.Integer(
        load_default=60,
        validate=validate.Range(min=1, max=366),
        metadata={"description": "how far ahead bookings may be made"},
    )

    @validates_schema
    def _consistent(self, data, **kwargs):
        by_day: dict[str, list] = {}
        for window in data.get("weekly", []):
            by_day.setdefault(window["day"], []).append((window["start"], window["end"]))
        for day, windows in by_day.items():
            if _overlapping(windows):
                raise ValidationError(f"windows overlap on {day}", field_name="weekly")
        seen: set[date] = set()
        for override in data.get("overrides", []):
            if override["date"] in seen:
                raise ValidationError(f"{override['date']} is given twice", field_name="overrides")
            seen.add(override["date"])
            if _overlapping([(w["start"], w["end"]) for w in override["windows"]]):
                raise ValidationError(f"windows overlap on {override['date']}", field_name="overrides")


class OverrideOut(Schema):
    date = fields.String(metadata={"format": "date"})
    windows = fields.List(fields.Nested(Window))


class AvailabilityOut(Schema):
    weekly = fields.List(fields.Nested(WeeklyWindow))
    overrides = fields.List(fields.Nested(OverrideOut))
    slot_minutes = fields.Integer()
    buffer_minutes = fields.Integer()
    min_notice_minutes = fields.Integer()
    horizon_days = fields.Integer()
    timezone = fields.String()


class ClinicianOut(Schema):
    id = fields.String()
    user_id = fields.String()
    mission_id = fields.String()
    display_name = Text(allow_none=True)
    specialties = fields.List(fields.String())
    languages = fields.List(fields.String())
    kinds = fields.List(fields.String())
    timezone = fields.String()
    active = fields.Boolean()
    availability = fields.Method("_availability")
    created_at = fields.DateTime()

    def _availability(self, obj):
        return AvailabilityOut().dump(obj)


ClinicianPage = page_schema(ClinicianOut, "ClinicianPage")


class ClinicianListArgs(PageArgs):
    specialty = fields.String(validate=validate.OneOf(SPECIALTIES))
    language = Text(validate=_validate_language)
    kind = fields.String(validate=validate.OneOf(KINDS))


# ---------------------------------------------------------------------------------------------------
# Slots


class SlotArgs(ClinicianListArgs):
    """The slots of the clinicians the clinician list's filters select, in a time range."""

    from_ = Time(data_key="from", metadata={"description": "default: now"})
    to = Time(metadata={"description": "default: from + 7 days; at most 31 days after from"})
    duration = fields.Integer(
        validate=validate.Range(min=5, max=480),
        metadata={"description": "minutes; default: each clinician's slot length"},
    )
    clinician_id = Text(validate=validate.Length(max=36))
    format = Text(load_default="json", validate=validate.OneOf(("json", "fhir")))


class SlotOut(Schema):
    clinician_id = fields.String()
    start = fields.DateTime()
    end = fields.DateTime()


SlotPage = page_schema(SlotOut, "SlotPage")


# ---------------------------------------------------------------------------------------------------
# Consultations


class PatientIn(Schema):
    name = Text(load_default=None, allow_none=True, validate=validate.Length(min=1, max=200))
    user_id = Text(load_default=None, allow_none=True, validate=validate.Length(max=36))
    casualty_id = Text(load_default=None, allow_none=True, validate=validate.Length(max=36))


class ConsultationIn(Schema):
    kind = Text(required=True, validate=validate.OneOf(KINDS))
    clinician_id = Text(required=True, validate=validate.Length(min=1, max=36))
    start = Time(load_default=None, allow_none=True, metadata={"description": "required unless modality is async"})
    duration_minutes = fields.Integer(
        load_default=None,
        allow_none=True,
        validate=validate.Range(min=5, max=480),
        metadata={"description": "default: the clinician's slot length"},
    )
    modality = Text(required=True, validate=validate.OneOf(MODALITIES))
    reason = Text(required=True, validate=validate.Length(min=1, max=4000))
    patient = fields.Nested(PatientIn, load_default=dict)

    @validates_schema
    def _start(self, data, **kwargs):
        if data.get("modality") != "async" and data.get("start") is None:
            raise ValidationError("required unless modality is async", field_name="start")


class StatusIn(Schema):
    status = Text(required=True, validate=validate.OneOf(STATUSES))
    reason = Text(load_default=None, allow_none=True, validate=validate.Length(min=1, max=2000))


class RescheduleIn(Schema):
    start = Time(required=True)


class PatientOut(Schema):
    name = Text(allow_none=True)
    user_id = Text(allow_none=True)
    casualty_id = Text(allow_none=True)


class HistoryOut(Schema):
    status = fields.String()
    at = fields.String()
    by = Text(allow_none=True)
    reason = Text(allow_none=True)
    start = Text(allow_none=True)


class ConsultationOut(Schema):
    id = fields.String()
    mission_id = fields.String()
    kind = fields.String()
    clinician_id = fields.String()
    modality = fields.String()
    status = fields.String()
    start = fields.DateTime()
    end = fields.DateTime()
    duration_minutes = fields.Integer()
    reason = fields.String(allow_none=True, metadata={"description": "null for an invited interpreter (need to know)"})
    patient = fields.Method("_patient")
    booked_by = fields.String()
    status_reason = Text(allow_none=True, metadata={"description": "why cancelled or noshow"})
    history = fields.List(fields.Nested(HistoryOut))
    first_reply_at = fields.DateTime(allow_none=True)
    response_minutes = fields.Method(
        "_response_minutes", allow_none=True, metadata={"description": "store-and-forward: minutes to the first reply"}
    )
    created_at = fields.DateTime()
    updated_at = fields.DateTime()

    def _patient(self, obj):
        return {"name": obj.patient_name, "user_id": obj.patient_user_id, "casualty_id": obj.patient_casualty_id}

    def _response_minutes(self, obj):
        if obj.first_reply_at is None:
            return None
        return round((obj.first_reply_at - obj.created_at).total_seconds() / 60, 1)


ConsultationPage = page_schema(ConsultationOut, "ConsultationPage")


class ConsultationListArgs(PageArgs):
    status = fields.String(validate=validate.OneOf(STATUSES))
    kind = fields.String(validate=validate.OneOf(KINDS))
    clinician_id = Text(validate=validate.Length(max=36))
    from_ = Time(data_key="from")
    to = Time()


class JoinOut(Schema):
    room = fields.String()
    token = fields.String(
        metadata={"description": "a JWT for the video bridge (Jitsi token auth), this participant only"}
    )
    valid_from = fields.DateTime()
    valid_until = fields.DateTime()
    url = Text(allow_none=True)
    ice_servers = fields.List(
        fields.Dict(),
        metadata={
            "description": "RTCIceServer entries for the in-browser call: TURN with coturn REST-API credentials "
            "for this participant, valid until valid_until (empty without TURN_URLS)"
        },
    )
    ice_transport_policy = fields.String(
        metadata={"enum": ["all", "relay"], "description": "RTCConfiguration.iceTransportPolicy (TURN_POLICY)"}
    )


class NoteIn(Schema):
    kind = Text(required=True, validate=validate.OneOf(NOTE_KINDS))
    text = Text(required=True, validate=validate.Length(min=1, max=20000))


class ReplyOut(Schema):
    id = fields.String()
    consultation_id = fields.String()
    author_id = fields.String()
    text = fields.String()
    created_at = fields.DateTime()


class NoteOut(ReplyOut):
    """A note has the columns of any text written in a consultation (WrittenInConsultation), and its kind."""

    kind = fields.String()


NoteList = list_schema(NoteOut, "NoteList")


class ReplyIn(Schema):
    text = Text(required=True, validate=validate.Length(min=1, max=20000))


ReplyList = list_schema(ReplyOut, "ReplyList")


class UploadIn(Schema):
    file = fields.Raw(required=True, metadata={"type": "string", "format": "binary"})


class AttachmentOut(Schema):
    id = fields.String()
    consultation_id = fields.String()
    content_type = fields.String()
    size_bytes = fields.Integer()
    sha256 = fields.String()
    filename = Text(allow_none=True)
    uploaded_by = fields.String()
    created_at = fields.DateTime()


AttachmentList = list_schema(AttachmentOut, "AttachmentList")


class MetricsArgs(Schema):
    from_ = Time(data_key="from")
    to = Time()


class MetricsOut(Schema):
    from_ = fields.DateTime(data_key="from", allow_none=True)
    to = fields.DateTime(allow_none=True)
    consultations = fields.Dict()
    by_status = fields.Dict()
    by_modality = fields.Dict()
    mental_health = fields.Integer(
        allow_none=True,
        metadata={"description": "count of mental-health consultations, null when under 5 (not identifying)"},
    )
    store_and_forward = fields.Dict(
        metadata={"description": "count, answered, median_minutes_to_first_reply (DOMAIN.md section 5)"}
    )
