"""Dispatch schemas: recommendations, the dispatch itself and the mass-casualty plan (API.md)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from core.fields import Id, unique


class RecommendationArgs(Schema):
    limit = fields.Integer(load_default=10, validate=validate.Range(min=1, max=100))


class OptionOut(Schema):
    asset_id = fields.String()
    facility_id = fields.String()
    callsign = fields.String()
    facility_name = fields.String()
    pickup_eta_minutes = fields.Float()
    delivery_eta_minutes = fields.Float()
    distance_km = fields.Float(metadata={"description": "geodesic: asset to pickup to facility"})
    route_km = fields.Float(metadata={"description": "the distance travelled: by road, geodesic x ROAD_FACTOR"})
    meets_deadline = fields.Boolean()
    meets_ten_one_two = fields.Boolean()
    ground_leg = fields.Boolean(metadata={"description": "a helicopter to a facility without helipad"})
    score_minutes = fields.Float(metadata={"description": "delivery ETA plus ranking penalties"})
    reasons = fields.List(fields.String())


class BuiltList(fields.List):
    """A list whose items the service builds JSON-ready, with exactly the item schema's fields (strings and
    lists of strings): answered as built, not dumped item by item (some 400 excluded assets cost 3 ms a
    recommendation in marshmallow). The item schema still documents them (OpenAPI);
    tests/casevac/dispatch/test_api.py compares the answer with the item-by-item dump."""

    def _serialize(self, value, attr, obj, **kwargs):
        return None if value is None else list(value)


class ExcludedAssetOut(Schema):
    asset_id = fields.String()
    callsign = fields.String()
    reasons = fields.List(fields.String())


class ExcludedFacilityOut(Schema):
    facility_id = fields.String()
    name = fields.String()
    reasons = fields.List(fields.String())


class RecommendationsOut(Schema):
    request_id = fields.String()
    computed_at = fields.DateTime()
    options = fields.List(fields.Nested(OptionOut), metadata={"description": "best first"})
    # Built by casevac.dispatch.rules.recommend as {asset_id, callsign, reasons} and {facility_id, name, reasons}.
    excluded_assets = BuiltList(fields.Nested(ExcludedAssetOut))
    excluded_facilities = BuiltList(fields.Nested(ExcludedFacilityOut))
    night = fields.Boolean(metadata={"description": "night at the pickup site (sun below -6 degrees)"})
    time_of_injury_estimated = fields.Boolean(
        metadata={"description": "the filing time stood in for an unknown time of injury"}
    )


class DispatchIn(Schema):
    asset_id = Id(required=True)
    facility_id = Id(required=True)


class PlanIn(Schema):
    request_ids = fields.List(
        Id(),
        load_default=None,
        validate=[validate.Length(min=1, max=500), unique],
        metadata={"description": "default: every request of the mission awaiting dispatch"},
    )


class AssignmentOut(Schema):
    request_id = fields.String()
    precedence = fields.String()
    asset_id = fields.String()
    facility_id = fields.String()
    pickup_eta_minutes = fields.Float()
    delivery_eta_minutes = fields.Float()
    meets_deadline = fields.Boolean()
    meets_ten_one_two = fields.Boolean()
    reasons = fields.List(fields.String())


class UnservedOut(Schema):
    request_id = fields.String()
    reason = fields.String()


class PlanOut(Schema):
    computed_at = fields.DateTime()
    assignments = fields.List(fields.Nested(AssignmentOut), metadata={"description": "most urgent first"})
    unserved = fields.List(fields.Nested(UnservedOut))
    late = fields.List(
        fields.Nested(UnservedOut), metadata={"description": "assigned, but missing the deadline or 10-1-2"}
    )
