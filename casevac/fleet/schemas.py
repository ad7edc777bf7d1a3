"""Assets and facilities: one schema is the validator, the serialiser and the OpenAPI document."""

from __future__ import annotations

from datetime import timezone

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from casevac.fleet.models import (
    ASSET_CAPABILITIES,
    ASSET_KINDS,
    ASSET_STATUSES,
    FACILITY_CAPABILITIES,
    FACILITY_LEVELS,
    FACILITY_STATUSES,
    MAX_FIXES_PER_REPORT,
)
from core.fields import Text, unique
from core.pagination import PageArgs, page_schema


def _lat(**kwargs):
    return fields.Float(validate=validate.Range(min=-90, max=90), allow_nan=False, **kwargs)


def _lon(**kwargs):
    return fields.Float(validate=validate.Range(min=-180, max=180), allow_nan=False, **kwargs)


class _Whole(fields.Nested):
    """A nested object replaced as a whole: a PATCH (partial load) still needs all its required fields."""

    def _deserialize(self, value, attr, data, partial=None, **kwargs):
        return super()._deserialize(value, attr, data, partial=False, **kwargs)


class LocationSchema(Schema):
    lat = _lat(required=True)
    lon = _lon(required=True)


class BaseSchema(Schema):
    name = Text(load_default=None, allow_none=True, validate=validate.Length(max=200))
    lat = _lat(required=True)
    lon = _lon(required=True)


class AssetIn(Schema):
    callsign = Text(required=True, validate=validate.Length(min=1, max=64))
    kind = fields.String(required=True, validate=validate.OneOf(ASSET_KINDS))
    capabilities = fields.List(
        fields.String(validate=validate.OneOf(ASSET_CAPABILITIES)), load_default=list, validate=unique
    )
    litter_capacity = fields.Integer(required=True, validate=validate.Range(min=0, max=200))
    ambulatory_capacity = fields.Integer(required=True, validate=validate.Range(min=0, max=200))
    cruise_speed_kmh = fields.Float(
        required=True, allow_nan=False, validate=validate.Range(min=1, max=1500, min_inclusive=True)
    )
    readiness_minutes = fields.Integer(
        required=True, validate=validate.Range(min=0, max=7 * 24 * 60), metadata={"description": "time to launch"}
    )
    status = fields.String(
        load_default="available",
        validate=validate.OneOf(tuple(s for s in ASSET_STATUSES if s != "tasked")),
        metadata={"description": "'tasked' is set by dispatch only"},
    )
    base = fields.Nested(BaseSchema, required=True)

    @validates_schema
    def _carries_someone(self, data, partial=None, **kwargs):
        litter, ambulatory = data.get("litter_capacity"), data.get("ambulatory_capacity")
        if litter is not None and ambulatory is not None and litter + ambulatory < 1:
            raise ValidationError("an evacuation asset carries at least one patient", "litter_capacity")


class AssetPatch(AssetIn):
    """Every field optional; a tasked asset keeps its status until its request ends."""

    base = _Whole(BaseSchema)


class PositionOut(Schema):
    """A fix as the API answers it: the asset's latest position, an accepted report, a point of the track."""

    lat = fields.Float()
    lon = fields.Float()
    heading = fields.Float(allow_none=True)
    speed_kmh = fields.Float(allow_none=True)
    reported_at = fields.DateTime()


class AssetOut(Schema):
    id = fields.String()
    mission_id = fields.String()
    callsign = fields.String()
    kind = fields.String(metadata={"enum": list(ASSET_KINDS)})
    capabilities = fields.List(fields.String())
    litter_capacity = fields.Integer()
    ambulatory_capacity = fields.Integer()
    cruise_speed_kmh = fields.Float()
    readiness_minutes = fields.Integer()
    status = fields.String(metadata={"enum": list(ASSET_STATUSES)})
    tasked_request_id = fields.String(allow_none=True)
    base = fields.Nested(BaseSchema)
    position = fields.Nested(
        PositionOut, allow_none=True, metadata={"description": "latest reported position; null before the first report"}
    )
    has_device_token = fields.Boolean()
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


AssetPage = page_schema(AssetOut, "AssetPage")


class AssetListArgs(PageArgs):
    status = fields.String(validate=validate.OneOf(ASSET_STATUSES))
    kind = fields.String(validate=validate.OneOf(ASSET_KINDS))
    capability = fields.String(validate=validate.OneOf(ASSET_CAPABILITIES))


class PositionIn(Schema):
    lat = _lat(required=True)
    lon = _lon(required=True)
    heading = fields.Float(
        load_default=None,
        allow_none=True,
        allow_nan=False,
        validate=validate.Range(min=0, max=360, max_inclusive=False),
        metadata={"description": "degrees true, 0 <= heading < 360"},
    )
    speed_kmh = fields.Float(
        load_default=None, allow_none=True, allow_nan=False, validate=validate.Range(min=0, max=2000)
    )
    reported_at = fields.AwareDateTime(
        load_default=None,
        allow_none=True,
        default_timezone=timezone.utc,
        metadata={"description": "when the fix was taken; default: on receipt"},
    )


class PositionBatchIn(Schema):
    fixes = fields.List(
        fields.Nested(PositionIn),
        required=True,
        validate=validate.Length(min=1, max=MAX_FIXES_PER_REPORT),
        metadata={
            "description": f"1 to {MAX_FIXES_PER_REPORT} fixes in any order (a tracker's "
            "buffer); the newest by reported_at becomes the latest position"
        },
    )


class PositionAccepted(PositionOut):
    asset_id = fields.String()
    latest = fields.Boolean(
        metadata={"description": "false when a newer report was already in: kept in the track only"}
    )


class PositionBatchAccepted(Schema):
    asset_id = fields.String()
    accepted = fields.Integer(metadata={"description": "fixes stored in the track (all of the batch)"})
    latest = fields.Boolean(
        metadata={
            "description": "whether the batch's newest fix became the asset's latest "
            "position (false when a newer report was already in)"
        }
    )
    latest_index = fields.Integer(
        allow_none=True,
        metadata={
            "description": "index in `fixes` of the fix now the latest position (the newest by reported_at, the "
            "later one on a tie); null when latest is false"
        },
    )


class TrackArgs(PageArgs):
    limit = fields.Integer(load_default=500, validate=validate.Range(min=1, max=5000))
    since = fields.AwareDateTime(load_default=None, default_timezone=timezone.utc)


class TrackPoint(PositionOut):
    source = fields.String()


class TrackOut(Schema):
    asset_id = fields.String()
    items = fields.List(fields.Nested(TrackPoint), metadata={"description": "oldest first"})
    next_cursor = fields.String(allow_none=True)


class DeviceTokenOut(Schema):
    asset_id = fields.String()
    device_token = fields.String(
        metadata={"description": "shown once; send as 'Authorization: Device <token>' to POST /assets/{id}/positions"}
    )


class FacilityIn(Schema):
    name = Text(required=True, validate=validate.Length(min=1, max=200))
    level = fields.String(required=True, validate=validate.OneOf(FACILITY_LEVELS))
    capabilities = fields.List(
        fields.String(validate=validate.OneOf(FACILITY_CAPABILITIES)), load_default=list, validate=unique
    )
    status = fields.String(load_default="normal", validate=validate.OneOf(FACILITY_STATUSES))
    beds_available = fields.Integer(load_default=0, validate=validate.Range(min=0, max=10000))
    helipad = fields.Boolean(load_default=False)
    location = fields.Nested(LocationSchema, required=True)


class FacilityPatch(FacilityIn):
    """Every field optional: availability updates are PATCHes of status and beds_available."""

    location = _Whole(LocationSchema)


class FacilityOut(Schema):
    id = fields.String()
    mission_id = fields.String()
    name = fields.String()
    level = fields.String(metadata={"enum": list(FACILITY_LEVELS)})
    capabilities = fields.List(fields.String())
    status = fields.String(metadata={"enum": list(FACILITY_STATUSES)})
    beds_available = fields.Integer()
    helipad = fields.Boolean()
    location = fields.Nested(LocationSchema)
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


FacilityPage = page_schema(FacilityOut, "FacilityPage")


class FacilityListArgs(PageArgs):
    status = fields.String(validate=validate.OneOf(FACILITY_STATUSES))
    level = fields.String(validate=validate.OneOf(FACILITY_LEVELS))
    capability = fields.String(validate=validate.OneOf(FACILITY_CAPABILITIES))
