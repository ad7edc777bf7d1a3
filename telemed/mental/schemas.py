"""Mental-health schemas: validators, serialisers and the OpenAPI document in one (flask-smorest)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from core.fields import Text, Time
from core.pagination import PageArgs, page_schema
from telemed.mental import screening
from telemed.mental.models import INSTRUMENT_CODES, REFERRAL_STATUSES

ACTIONS = list(screening.ACTION_ORDER)
FLAGS = [screening.SUICIDAL_IDEATION, screening.SEVERE_SYMPTOMS]


class ScreeningIn(Schema):
    instrument = fields.String(required=True, validate=validate.OneOf(INSTRUMENT_CODES))
    # Items are checked by the scorer against the instrument's table (count, integer, range), so every bad
    # item is named with the instrument's own range: errors {"answers": {"<index>": ["item N: ..."]}}.
    answers = fields.List(
        fields.Raw(allow_none=True, metadata={"type": "integer"}),
        required=True,
        validate=validate.Length(max=100),
        metadata={"description": "one integer per item, in the instrument's order"},
    )
    sex = fields.String(
        load_default=None,
        allow_none=True,
        validate=validate.OneOf(screening.SEXES),
        metadata={"description": "AUDIT-C threshold: 4 for men, 3 for women (and when not given or other)"},
    )
    member_id = Text(
        load_default=None,
        allow_none=True,
        validate=validate.Length(max=36),
        metadata={"description": "clinician-administered screening: the member screened"},
    )


class OfferedSlotOut(Schema):
    clinician_id = fields.String()
    start = fields.DateTime()
    end = fields.DateTime()
    display_name = fields.String(allow_none=True)
    specialties = fields.List(fields.String())
    languages = fields.List(fields.String(), metadata={"description": "ISO 639-1"})


class ReferralBookIn(Schema):
    clinician_id = Text(required=True, validate=validate.Length(max=36))
    start = Time(required=True, metadata={"description": "one of the offered slots' start"})
    modality = fields.String(load_default="video", validate=validate.OneOf(["video", "audio", "chat"]))
    duration_minutes = fields.Integer(load_default=None, allow_none=True, validate=validate.Range(min=5, max=240))


class BookedConsultationOut(Schema):
    id = fields.String()
    clinician_id = fields.String()
    kind = fields.String()
    status = fields.String()
    modality = fields.String()
    start = fields.DateTime()
    end = fields.DateTime()


class AlertStateOut(Schema):
    id = fields.String()
    raised_at = fields.DateTime()
    ack_due_at = fields.DateTime()
    acknowledged_at = fields.DateTime(allow_none=True)
    acknowledged_by = fields.String(allow_none=True)
    escalated_at = fields.DateTime(allow_none=True)


class ClusterOut(Schema):
    endorsed = fields.Integer()
    needed = fields.Integer()
    met = fields.Boolean()


class ScreeningOut(Schema):
    id = fields.String()
    mission_id = fields.String()
    member_id = fields.String()
    entered_by = fields.String()
    instrument = fields.String(metadata={"enum": list(INSTRUMENT_CODES)})
    answers = fields.List(fields.Integer())
    sex = fields.String(allow_none=True)
    score = fields.Integer()
    severity = fields.String(
        allow_none=True,
        metadata={"description": "the instrument's band (PHQ-9, GAD-7); null for instruments without bands"},
    )
    positive = fields.Boolean()
    criteria = fields.Dict(
        keys=fields.String(),
        values=fields.Boolean(),
        metadata={"description": "each rule of the instrument: cut_off, dsm5_clusters"},
    )
    clusters = fields.Dict(keys=fields.String(), values=fields.Nested(ClusterOut), allow_none=True)
    flags = fields.List(fields.String(metadata={"enum": FLAGS}))
    recommended_action = fields.String(metadata={"enum": ACTIONS})
    recommended_action_text = fields.String()
    created_at = fields.DateTime()
    alert = fields.Nested(AlertStateOut, allow_none=True)


class ScreeningCreatedOut(ScreeningOut):
    offered_slots = fields.List(
        fields.Nested(OfferedSlotOut),
        metadata={"description": "earliest free mental-health slots, offered when the result is positive or flagged"},
    )
    clinician_notified = fields.Boolean()


ScreeningPage = page_schema(ScreeningOut, "ScreeningPage")


class ScreeningListArgs(PageArgs):
    member_id = Text(validate=validate.Length(max=36))
    instrument = fields.String(validate=validate.OneOf(INSTRUMENT_CODES))
    flagged = fields.Boolean()


class MemberRef(Schema):
    id = fields.String()
    display_name = fields.String(allow_none=True)


class AlertOut(AlertStateOut):
    """A clinician's worklist entry: the alert's state, who and what kind of risk (never answers or score)."""

    screening_id = fields.String()
    member = fields.Nested(MemberRef)
    flags = fields.List(fields.String(metadata={"enum": FLAGS}))
    recommended_action = fields.String(metadata={"enum": ACTIONS})


AlertPage = page_schema(AlertOut, "ScreeningAlertPage")


class AlertListArgs(PageArgs):
    state = fields.String(load_default="open", validate=validate.OneOf(["open", "acknowledged", "all"]))


class TrendArgs(Schema):
    instrument = fields.String(required=True, validate=validate.OneOf(INSTRUMENT_CODES))


class TrendPointOut(Schema):
    screening_id = fields.String()
    at = fields.DateTime()
    score = fields.Integer()
    severity = fields.String(allow_none=True)
    positive = fields.Boolean()
    flags = fields.List(fields.String())
    change = fields.Integer(allow_none=True, metadata={"description": "score minus the previous score"})
    reliable_change = fields.String(
        allow_none=True,
        metadata={
            "enum": ["improved", "worsened", "no_reliable_change"],
            "description": "null when the instrument states no reliable-change threshold",
        },
    )


class TrendOverallOut(Schema):
    from_score = fields.Integer()
    to_score = fields.Integer()
    change = fields.Integer()
    reliable_change = fields.String(allow_none=True)


class TrendOut(Schema):
    member_id = fields.String()
    instrument = fields.String()
    reliable_change_points = fields.Integer(allow_none=True)
    points = fields.List(fields.Nested(TrendPointOut))
    overall = fields.Nested(TrendOverallOut, allow_none=True)


class SelfReferralIn(Schema):
    reason = Text(required=True, validate=validate.Length(min=1, max=4000))
    preferred_language = fields.String(
        load_default=None,
        allow_none=True,
        validate=validate.Regexp(r"^[a-z]{2}$", error="an ISO 639-1 code: two lower-case letters, e.g. fr"),
    )
    contact = Text(
        load_default=None,
        allow_none=True,
        validate=validate.Length(max=200),
        metadata={"description": "how the member prefers to be reached"},
    )


class SelfReferralOut(Schema):
    id = fields.String()
    mission_id = fields.String()
    member_id = fields.String()
    reason = fields.String()
    preferred_language = fields.String(allow_none=True)
    contact = fields.String(allow_none=True)
    status = fields.String(metadata={"enum": list(REFERRAL_STATUSES)})
    consultation_id = fields.String(allow_none=True)
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class SelfReferralDetailOut(SelfReferralOut):
    offered_slots = fields.List(fields.Nested(OfferedSlotOut))
    consultation = fields.Nested(BookedConsultationOut, allow_none=True)


SelfReferralPage = page_schema(SelfReferralOut, "SelfReferralPage")


class SelfReferralListArgs(PageArgs):
    status = fields.String(validate=validate.OneOf(REFERRAL_STATUSES))


class AccessActorOut(Schema):
    id = fields.String()
    display_name = fields.String(allow_none=True)
    role = fields.String()
    you = fields.Boolean()


class AccessEntryOut(Schema):
    at = fields.DateTime()
    action = fields.String()
    subject_type = fields.String()
    subject_id = fields.String()
    actor = fields.Nested(AccessActorOut, allow_none=True, metadata={"description": "null: the system (escalation)"})


AccessLogPage = page_schema(AccessEntryOut, "AccessLogPage")


class MentalHealthMetricsArgs(Schema):
    month = fields.String(
        validate=validate.Regexp(
            r"^20\d{2}-(0[1-9]|1[0-2])$", error="YYYY-MM between 2000-01 and 2099-12, e.g. 2026-11"
        )
    )


class InstrumentMetricsOut(Schema):
    instrument = fields.String()
    people = fields.Integer(allow_none=True)
    results = fields.Dict(keys=fields.String(), values=fields.Integer(allow_none=True))
    flagged = fields.Dict(keys=fields.String(), values=fields.Integer(allow_none=True))


class ReferralMetricsOut(Schema):
    people = fields.Integer(allow_none=True)


class MentalHealthMetricsOut(Schema):
    mission_id = fields.String()
    month = fields.String()
    min_group_size = fields.Integer(metadata={"description": "counts under this are withheld (null)"})
    instruments = fields.List(fields.Nested(InstrumentMetricsOut))
    self_referrals = fields.Nested(ReferralMetricsOut)


class BandOut(Schema):
    name = fields.String()
    low = fields.Integer()
    high = fields.Integer()


class InstrumentOut(Schema):
    code = fields.String()
    name = fields.String()
    items = fields.Integer()
    item_min = fields.Integer()
    item_max = fields.Integer()
    max_score = fields.Integer()
    bands = fields.List(fields.Nested(BandOut))
    reliable_change = fields.Integer(allow_none=True)


class InstrumentList(Schema):
    items = fields.List(fields.Nested(InstrumentOut))
