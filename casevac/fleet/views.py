"""Assets and facilities: /api/v1/assets, /api/v1/facilities (API.md "Assets, facilities, dispatch")."""

from __future__ import annotations

from flask import request
from flask.views import MethodView
from flask_smorest import Blueprint, abort
from marshmallow import ValidationError, missing
from werkzeug.exceptions import HTTPException

from casevac import policy
from casevac.fleet import assets, device_tokens, facilities, positions
from casevac.fleet.schemas import (
    AssetIn,
    AssetListArgs,
    AssetOut,
    AssetPage,
    AssetPatch,
    DeviceTokenOut,
    FacilityIn,
    FacilityListArgs,
    FacilityOut,
    FacilityPage,
    FacilityPatch,
    PositionAccepted,
    PositionBatchAccepted,
    PositionBatchIn,
    PositionIn,
    TrackArgs,
    TrackOut,
)
from config.extensions import db
from core import auth

blp = Blueprint("fleet", __name__, url_prefix="/api/v1", description="Evacuation assets and medical facilities")


@blp.route("/assets")
class Assets(MethodView):
    @blp.arguments(AssetListArgs, location="query")
    @blp.response(200, AssetPage)
    def get(self, args):
        """The mission's evacuation assets with their latest positions, by callsign."""
        actor = auth.current_user(roles=policy.FLEET_READERS)
        return assets.list_assets(db.session, actor=actor, **args, store=positions.live_store())

    @blp.arguments(AssetIn)
    @blp.response(201, AssetOut)
    @blp.alt_response(409, description="callsign already used in the mission")
    def post(self, body):
        """Register an asset (coordinator or admin)."""
        actor = auth.current_user(roles=policy.FLEET_WRITERS)
        return assets.create_asset(db.session, actor=actor, **body, store=positions.live_store())


@blp.route("/assets/<asset_id>")
class AssetById(MethodView):
    @blp.response(200, AssetOut)
    def get(self, asset_id):
        """One asset with its latest position."""
        actor = auth.current_user(roles=policy.FLEET_READERS)
        return assets.get_asset_view(db.session, actor=actor, asset_id=asset_id, store=positions.live_store())

    @blp.arguments(AssetPatch(partial=True))
    @blp.response(200, AssetOut)
    @blp.alt_response(409, description="the asset is tasked: its status follows its request")
    def patch(self, body, asset_id):
        """Change an asset (coordinator or admin); status available, maintenance or offline."""
        actor = auth.current_user(roles=policy.FLEET_WRITERS)
        return assets.update_asset(db.session, actor=actor, asset_id=asset_id, **body, store=positions.live_store())


_POSITION_SINGLE, _POSITION_BATCH = PositionIn(), PositionBatchIn()
_SINGLE_OUT, _BATCH_OUT = PositionAccepted(), PositionBatchAccepted()


def _one_of(*schemas) -> dict:
    return {"content": {"application/json": {"schema": {"oneOf": list(schemas)}}}}


def _position_report() -> tuple[list[dict], bool]:
    """The body of a position report: one fix (API.md) or {"fixes": [...]}; -> (fixes, batch). Parsed here,
    not by @blp.arguments, because the body is one of two schemas (documented as oneOf on the view)."""
    # The JSON as flask-smorest's own parser reads it: an empty body is an empty object (422 naming the missing
    # fields), malformed JSON is 400, exactly as on every other endpoint.
    data = blp.ARGUMENTS_PARSER.load_json(request, _POSITION_SINGLE)
    data = {} if data is missing else data
    batch = isinstance(data, dict) and "fixes" in data
    try:
        body = (_POSITION_BATCH if batch else _POSITION_SINGLE).load(data)
    except ValidationError as err:
        abort(422, messages={"json": err.messages})
    return (body["fixes"] if batch else [body]), batch


@blp.route("/assets/<asset_id>/positions")
class AssetPositions(MethodView):
    @blp.doc(
        requestBody={"required": True, **_one_of(PositionIn, PositionBatchIn)},
        responses={
            "202": {
                "description": "one fix: the fix and `latest`; a batch: the counts and which "
                "fix became the latest position",
                **_one_of(PositionAccepted, PositionBatchAccepted),
            }
        },
    )
    @blp.response(202)
    @blp.alt_response(401, description="no bearer token and no valid device token")
    @blp.alt_response(403, description="a device token of another asset")
    @blp.alt_response(422, response="UNPROCESSABLE_ENTITY")
    def post(self, asset_id):
        """Report a live position, or a batch of buffered fixes: a coordinator (bearer token) or the asset itself
        with its device token (`Authorization: Device <token>`), which may do nothing else."""
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        try:
            fixes, batch = _position_report()
        except HTTPException:
            if scheme == device_tokens.DEVICE_SCHEME:
                # Only on this error path (the valid path checks the token with the write, in one Redis call):
                # a bad device token is 401 and another asset's is 403, before anything about the body.
                device_tokens.device_asset(db.session, token=token.strip(), asset_id=asset_id)
            raise
        if scheme == device_tokens.DEVICE_SCHEME:
            result = device_tokens.report_as_device(
                db.session,
                token=token.strip(),
                asset_id=asset_id,
                fixes=fixes,
                batch=batch,
                store=positions.live_store(),
            )
        else:
            actor = auth.current_user(roles={"coordinator"})
            mission_id = device_tokens.asset_mission(db.session, actor=actor, asset_id=asset_id)
            result = positions.report_positions(
                db.session,
                asset_id=asset_id,
                mission_id=mission_id,
                source="coordinator",
                fixes=fixes,
                batch=batch,
                store=positions.live_store(),
            )
        return _BATCH_OUT.dump(result) if batch else _SINGLE_OUT.dump(positions.single_fix_view(result, fixes))

    @blp.arguments(TrackArgs, location="query")
    @blp.response(200, TrackOut)
    def get(self, args, asset_id):
        """The asset's track (every accepted fix), oldest first."""
        actor = auth.current_user(roles=policy.FLEET_READERS)
        return assets.track(db.session, actor=actor, asset_id=asset_id, **args, store=positions.live_store())


@blp.route("/assets/<asset_id>/device-token")
class AssetDeviceToken(MethodView):
    @blp.response(201, DeviceTokenOut)
    def post(self, asset_id):
        """Issue the asset's device token (shown once; replaces any previous one). Coordinator or admin."""
        actor = auth.current_user(roles=policy.FLEET_WRITERS)
        return device_tokens.issue_device_token(
            db.session, actor=actor, asset_id=asset_id, store=positions.live_store()
        )

    @blp.response(204)
    def delete(self, asset_id):
        """Revoke the asset's device token."""
        actor = auth.current_user(roles=policy.FLEET_WRITERS)
        device_tokens.revoke_device_token(db.session, actor=actor, asset_id=asset_id, store=positions.live_store())


@blp.route("/facilities")
class Facilities(MethodView):
    @blp.arguments(FacilityListArgs, location="query")
    @blp.response(200, FacilityPage)
    def get(self, args):
        """The mission's medical facilities, by name."""
        return facilities.list_facilities(db.session, actor=auth.current_user(roles=policy.FLEET_READERS), **args)

    @blp.arguments(FacilityIn)
    @blp.response(201, FacilityOut)
    @blp.alt_response(409, description="name already used in the mission")
    def post(self, body):
        """Register a facility (coordinator or admin)."""
        return facilities.create_facility(db.session, actor=auth.current_user(roles=policy.FLEET_WRITERS), **body)


@blp.route("/facilities/<facility_id>")
class FacilityById(MethodView):
    @blp.response(200, FacilityOut)
    def get(self, facility_id):
        """One facility."""
        actor = auth.current_user(roles=policy.FLEET_READERS)
        return facilities.get_facility(db.session, actor=actor, facility_id=facility_id)

    @blp.arguments(FacilityPatch(partial=True))
    @blp.response(200, FacilityOut)
    def patch(self, body, facility_id):
        """Update a facility, e.g. its availability (status, beds_available): publishes facility.updated."""
        actor = auth.current_user(roles=policy.FLEET_WRITERS)
        return facilities.update_facility(db.session, actor=actor, facility_id=facility_id, **body)
