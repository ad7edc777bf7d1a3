"""CASEVAC request schemas: the validator, the serialiser and the OpenAPI document (API.md, CASEVAC)."""

from __future__ import annotations

from datetime import timedelta

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from casevac import ten_one_two
from casevac.codes import (
    AVPU,
    CBRN,
    EQUIPMENT_CODES,
    MARKING,
    MAX_PER_CATEGORY,
    MECHANISMS,
    NATIONALITY_CATEGORIES,
    SECURITY,
    SEXES,
    TREATMENTS,
    VITAL_RANGES,
)
from casevac.requests.models import PRECEDENCES, STATUSES, SignsReading
from core import clock
from core.fields import Text
from core.pagination import PageArgs, page_schema

# A clock on a field device may run a little fast; beyond this a time in the future is a mistake.
CLOCK_SKEW = timedelta(minutes=5)


class _OneOfCurrent(validate.Validator):
    """OneOf over a list that configuration may change after import; the message lists the values."""

    def __init__(self, choices: list[str]):
        self.choices = choices

    def __call__(self, value):
        if value not in self.choices:
            raise ValidationError(f"Must be one of: {', '.join(self.choices)}.")
        return value


def _not_future(value):
    if value > clock.now() + CLOCK_SKEW:
        raise ValidationError("is in the future")
    return value


def _time(**kwargs):
    return fields.AwareDateTime(validate=_not_future, **kwargs)


def _count(**kwargs):
    return fields.Integer(strict=True, validate=validate.Range(min=0, max=MAX_PER_CATEGORY), **kwargs)


def _vital(name: str, kind=fields.Integer, **kwargs):
    """A vital sign, within its plausible range (casevac.codes.VITAL_RANGES)."""
    low, high = VITAL_RANGES[name]
    return kind(validate=validate.Range(min=low, max=high), **kwargs)


def _text(max_length: int, **kwargs):
    return Text(validate=validate.Length(max=max_length), **kwargs)


# ---- input ----------------------------------------------------------------------------------------


class PickupLocationIn(Schema):
    """One of {"lat", "lon"}, {"mgrs"} or {"text"} (degrees-minutes-seconds or decimal)."""

    lat = fields.Float(validate=validate.Range(min=-90, max=90))
    lon = fields.Float(validate=validate.Range(min=-180, max=180))
    mgrs = _text(30, metadata={"example": "34NBK2863382493"})
    text = _text(100, metadata={"example": "4°21'40\"N 18°33'18\"E"})


class PatientsIn(Schema):
    """Line 3: patients by precedence (A urgent, B urgent-surgical, C priority, D routine, E convenience)."""

    urgent = _count(load_default=0)
    urgent_surgical = _count(load_default=0)
    priority = _count(load_default=0)
    routine = _count(load_default=0)
    convenience = _count(load_default=0)


class SignsIn(Schema):
    """One set of vital signs, with the time taken (default: now)."""

    taken_at = _time()
    pulse = _vital("pulse", strict=True)
    resp_rate = _vital("resp_rate", strict=True)
    spo2 = _vital("spo2", strict=True)
    sbp = _vital("sbp", strict=True)
    dbp = _vital("dbp", strict=True)
    gcs = _vital("gcs", strict=True)
    avpu = Text(validate=validate.OneOf(AVPU))
    temp_c = _vital("temp_c", fields.Float)

    @validates_schema
    def _some_vital(self, data, **kwargs):
        if not any(key in data for key in SignsReading.VITALS):
            raise ValidationError(f"give at least one of {', '.join(SignsReading.VITALS)}", "_schema")


class TreatmentIn(Schema):
    code = Text(required=True, validate=validate.OneOf(TREATMENTS))
    at = _time(metadata={"description": "when given (default: when recorded)"})
    detail = _text(200)


class CasualtyPatch(Schema):
    """MIST-AT corrections; `signs` and `treatments` are appended to the history, never replace it."""

    zap = _text(32)
    age = fields.Integer(strict=True, allow_none=True, validate=validate.Range(min=0, max=120))
    sex = Text(allow_none=True, validate=validate.OneOf(SEXES))
    time_of_injury = _time(allow_none=True)
    mechanism = Text(allow_none=True, validate=validate.OneOf(MECHANISMS))
    mechanism_detail = _text(200, allow_none=True)
    injuries = fields.List(_text(200), validate=validate.Length(max=20))
    signs = fields.Nested(SignsIn)
    treatments = fields.List(fields.Nested(TreatmentIn), validate=validate.Length(max=50))
    precedence = Text(allow_none=True, validate=validate.OneOf(PRECEDENCES))


class CasualtyIn(CasualtyPatch):
    """One casualty (MIST-AT): Mechanism, Injuries, Signs, Treatment, plus age, time of injury, zap number."""


class _Lines6to9(Schema):
    security = Text(allow_none=True, validate=validate.OneOf(SECURITY))
    wounds = _text(500, allow_none=True, metadata={"description": "line 6 in peacetime"})
    marking = Text(allow_none=True, validate=validate.OneOf(MARKING))
    marking_detail = _text(200, allow_none=True)
    nationality = fields.Dict(
        keys=Text(validate=_OneOfCurrent(NATIONALITY_CATEGORIES)),
        values=_count(),
        allow_none=True,
        metadata={"description": "line 8: {category: count}", "example": {"un_military": 2}},
    )
    cbrn = fields.List(Text(validate=validate.OneOf(CBRN)), allow_none=True, validate=validate.Length(max=4))
    terrain = _text(500, allow_none=True, metadata={"description": "line 9 in peacetime"})
    remarks = _text(2000, allow_none=True)

    @validates_schema
    def _one_form_per_line(self, data, **kwargs):
        errors = {}
        for wartime, peacetime, line in LINE_FORMS:
            if data.get(wartime) and data.get(peacetime):
                errors[peacetime] = [
                    f"line {line} is either {wartime} (wartime) or {peacetime} (peacetime), "
                    f"not both: send {wartime}: null to switch"
                ]
        if errors:
            raise ValidationError(errors)


# Lines 6 and 9 have a wartime and a peacetime form (DOMAIN.md section 1): one of the two, never both.
LINE_FORMS = (("security", "wounds", 6), ("cbrn", "terrain", 9))


class RequestIn(_Lines6to9):
    """A 9-line MEDEVAC request: lines 1-5 required, 6-9 optional (completed later with PATCH)."""

    client_ref = Text(
        validate=validate.Length(min=1, max=64), metadata={"description": "makes filing idempotent per actor"}
    )
    location = fields.Nested(PickupLocationIn, required=True)
    callsign = Text(required=True, validate=validate.Length(min=1, max=64))
    frequency = Text(required=True, validate=validate.Length(min=1, max=32))
    suffix = _text(16, allow_none=True)
    patients = fields.Nested(PatientsIn, required=True)
    equipment = fields.List(
        Text(validate=validate.OneOf(EQUIPMENT_CODES)), load_default=list, validate=validate.Length(max=4)
    )
    litter = _count(required=True)
    ambulatory = _count(required=True)
    casualties = fields.List(fields.Nested(CasualtyIn), load_default=list, validate=validate.Length(max=100))

    @validates_schema
    def _consistent(self, data, **kwargs):
        errors = {}
        total = sum(data["patients"].values())
        # DOMAIN.md section 1, consistency rule: line 3 total equals line 5 total.
        if total != data["litter"] + data["ambulatory"]:
            errors["patients"] = [
                f"the sum of patients ({total}) must equal litter + ambulatory ({data['litter'] + data['ambulatory']})"
            ]
        elif total < 1:
            errors["patients"] = ["at least one patient"]
        if len(data.get("casualties") or []) > max(total, 1):
            errors["casualties"] = [f"more casualties than patients ({total})"]
        equipment_error = _equipment_error(data.get("equipment") or [])
        if equipment_error:
            errors["equipment"] = [equipment_error]
        if errors:
            raise ValidationError(errors)


class RequestPatch(_Lines6to9):
    """Complete or correct lines 1-9 and remarks: `location` (line 1) and `patients` (line 3, replaced
    whole: a category left out is 0) with `litter` and `ambulatory`; line 3 must still equal line 5."""

    location = fields.Nested(PickupLocationIn)
    patients = fields.Nested(PatientsIn)
    callsign = Text(validate=validate.Length(min=1, max=64))
    frequency = Text(validate=validate.Length(min=1, max=32))
    suffix = _text(16, allow_none=True)
    equipment = fields.List(Text(validate=validate.OneOf(EQUIPMENT_CODES)), validate=validate.Length(max=4))
    litter = _count()
    ambulatory = _count()

    @validates_schema
    def _equipment(self, data, **kwargs):
        error = _equipment_error(data.get("equipment") or [])
        if error:
            raise ValidationError({"equipment": [error]})


def _equipment_error(equipment: list[str]) -> str | None:
    if "none" in equipment and len(equipment) > 1:
        return "'none' cannot be combined with hoist, extraction or ventilator"
    return None


class RequestStatusIn(Schema):
    status = Text(required=True, validate=validate.OneOf(STATUSES))
    note = _text(500, allow_none=True)


class RequestListArgs(PageArgs):
    status = Text(validate=validate.OneOf(STATUSES))
    precedence = Text(validate=validate.OneOf(PRECEDENCES))
    active = fields.Boolean(metadata={"description": "true: not delivered nor cancelled"})
    near = Text(metadata={"description": "lat,lon (WGS-84 degrees)", "example": "4.36,18.55"})
    radius_km = fields.Float(
        validate=validate.Range(min=0, max=20100, min_inclusive=False),
        metadata={"description": "with near (default 50 km); geodesic"},
    )
    format = Text(validate=validate.OneOf(("json", "geojson")))


class CasevacMetricsArgs(Schema):
    from_ = fields.AwareDateTime(data_key="from", metadata={"description": "default: 7 days before `to`"})
    to = fields.AwareDateTime(metadata={"description": "default: now"})


# ---- output ---------------------------------------------------------------------------------------


class PickupLocationOut(Schema):
    lat = fields.Float()
    lon = fields.Float()
    mgrs = fields.String()
    source = fields.String(metadata={"description": "latlon | mgrs | text: the form that was sent"})
    text = fields.String()
    precision_m = fields.Float(
        metadata={"description": "side of the MGRS square the point is the centre of (1 for lat/lon and text)"}
    )


class SignsOut(Schema):
    taken_at = fields.DateTime()
    pulse = fields.Integer()
    resp_rate = fields.Integer()
    spo2 = fields.Integer()
    sbp = fields.Integer()
    dbp = fields.Integer()
    gcs = fields.Integer()
    avpu = fields.String()
    temp_c = fields.Float()


class TreatmentOut(Schema):
    code = fields.String()
    at = fields.String()
    detail = fields.String()


class TenOneTwoLegOut(Schema):
    due = fields.DateTime()
    met_at = fields.DateTime(allow_none=True)
    state = fields.String(metadata={"enum": list(ten_one_two.STATES)})


class TenOneTwoOut(Schema):
    first_aid = fields.Nested(TenOneTwoLegOut)
    resuscitation = fields.Nested(TenOneTwoLegOut)
    surgery = fields.Nested(TenOneTwoLegOut)


class CasualtyOut(Schema):
    id = fields.String()
    zap = fields.String(allow_none=True)
    age = fields.Integer(allow_none=True)
    sex = fields.String(allow_none=True)
    time_of_injury = fields.DateTime(allow_none=True)
    clock_start = fields.DateTime(metadata={"description": "10-1-2 clocks run from here"})
    clock_from = fields.Method(
        "_clock_from", metadata={"description": "time_of_injury, or filed_at when the time of injury is unknown"}
    )
    mechanism = fields.String(allow_none=True)
    mechanism_detail = fields.String(allow_none=True)
    injuries = fields.List(fields.String())
    signs = fields.Nested(SignsOut, allow_none=True, metadata={"description": "the latest reading"})
    signs_count = fields.Integer(metadata={"description": "readings kept (full history on the casualty)"})
    treatments = fields.List(fields.Nested(TreatmentOut))
    precedence = fields.String(attribute="effective_precedence")
    timeline = fields.Method("_timeline", metadata={"description": "10-1-2: first_aid, resuscitation, surgery"})

    def _clock_from(self, casualty):
        return "time_of_injury" if casualty.time_of_injury else "filed_at"

    def _timeline(self, casualty):
        return _TEN_ONE_TWO.dump(ten_one_two.timeline(casualty, now=clock.now()))


class CasualtyDetailOut(CasualtyOut):
    request_id = fields.String()
    signs_history = fields.Method("_signs_history", metadata={"description": "every reading, oldest first"})

    def _signs_history(self, casualty):
        return _SIGNS.dump([reading.as_dict() for reading in casualty.signs_history])


# Built once (a schema instance costs about 0.1 ms): dumped for every casualty of every request view.
_TEN_ONE_TWO = TenOneTwoOut()
_SIGNS = SignsOut(many=True)


class StatusChangeOut(Schema):
    status = fields.String()
    from_status = fields.String(allow_none=True)
    at = fields.DateTime()
    by = fields.String(allow_none=True)
    note = fields.String(allow_none=True)


class RequestSummaryOut(Schema):
    """A queue entry: compact for slow links (the casualties are on the request itself)."""

    id = fields.String()
    mission_id = fields.String()
    status = fields.String()
    precedence = fields.String()
    location = fields.Nested(PickupLocationOut)
    callsign = fields.String()
    frequency = fields.String()
    patients = fields.Dict(keys=fields.String(), values=fields.Integer())
    equipment = fields.List(fields.String())
    litter = fields.Integer()
    ambulatory = fields.Integer()
    lines_complete = fields.Boolean()
    missing_lines = fields.List(fields.Integer())
    filed_by = fields.String()
    created_at = fields.DateTime()
    updated_at = fields.DateTime()
    deadline = fields.DateTime(allow_none=True)
    asset_id = fields.String(allow_none=True)
    facility_id = fields.String(allow_none=True)
    escalated_at = fields.DateTime(allow_none=True)
    casualties_count = fields.Method("_casualties_count")
    distance_km = fields.Float(metadata={"description": "with ?near=: geodesic distance"})

    def _casualties_count(self, request):
        # The queue counts in one query (service.list_requests); a full request has its casualties loaded.
        counted = getattr(request, "casualties_count", None)
        return counted if counted is not None else len(request.casualties)


class RequestOut(RequestSummaryOut):
    client_ref = fields.String(allow_none=True)
    suffix = fields.String(allow_none=True)
    security = fields.String(allow_none=True)
    wounds = fields.String(allow_none=True)
    marking = fields.String(allow_none=True)
    marking_detail = fields.String(allow_none=True)
    nationality = fields.Dict(keys=fields.String(), values=fields.Integer(), allow_none=True)
    cbrn = fields.List(fields.String(), allow_none=True)
    terrain = fields.String(allow_none=True)
    remarks = fields.String(allow_none=True)
    surgery_escalated_at = fields.DateTime(allow_none=True)
    warnings = fields.List(
        fields.String(),
        metadata={"description": "what the server accepted but the sender should know (a coarse MGRS square)"},
    )
    history = fields.List(fields.Nested(StatusChangeOut))
    casualties = fields.List(fields.Nested(CasualtyOut))


RequestPage = page_schema(RequestSummaryOut, "CasevacRequestPage")


class StageMediansOut(Schema):
    acknowledged = fields.Float(allow_none=True)
    dispatched = fields.Float(allow_none=True)
    at_pickup = fields.Float(allow_none=True)
    delivered = fields.Float(allow_none=True)


class ComplianceOut(Schema):
    counted = fields.Integer(metadata={"description": "cases whose outcome is known"})
    met = fields.Integer()
    share = fields.Float(allow_none=True, metadata={"description": "met / counted (null when none counted)"})


class CasevacMetricsOut(Schema):
    from_ = fields.DateTime(data_key="from")
    to = fields.DateTime()
    total = fields.Integer()
    by_precedence = fields.Dict(keys=fields.String(), values=fields.Integer())
    by_status = fields.Dict(keys=fields.String(), values=fields.Integer())
    median_minutes = fields.Nested(StageMediansOut, metadata={"description": "from filing to each stage"})
    within_deadline = fields.Nested(ComplianceOut, metadata={"description": "delivered within the precedence deadline"})
    ten_one_two = fields.Dict(
        keys=fields.String(),
        values=fields.Nested(ComplianceOut),
        metadata={"description": "per leg, over casualties whose leg is met or breached"},
    )
