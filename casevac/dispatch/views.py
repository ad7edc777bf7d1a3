"""Recommendations, dispatch and the mass-casualty plan: /api/v1/casevac/... (API.md "Assets, facilities,
dispatch")."""

from __future__ import annotations

from flask import current_app, jsonify
from flask.views import MethodView
from flask_smorest import Blueprint

from casevac import policy
from casevac.dispatch import service as dispatch
from casevac.dispatch.schemas import DispatchIn, PlanIn, PlanOut, RecommendationArgs, RecommendationsOut
from casevac.fleet import positions
from config.extensions import db
from core import auth

blp = Blueprint(
    "dispatch",
    __name__,
    url_prefix="/api/v1/casevac",
    description="Evacuation recommendations, dispatch and the mass-casualty plan",
)


@blp.route("/requests/<request_id>/recommendations")
class Recommendations(MethodView):
    @blp.arguments(RecommendationArgs, location="query")
    @blp.response(200, RecommendationsOut)
    @blp.alt_response(409, description="the request is delivered or cancelled")
    def get(self, args, request_id):
        """Feasible (asset, facility) options, best first, with ETAs, deadline and 10-1-2 checks and reasons;
        and why each excluded asset or facility was left out."""
        actor = auth.current_user(roles=policy.DRIVERS)
        return dispatch.recommend_for_request(
            db.session,
            actor=actor,
            request_id=request_id,
            limit=args["limit"],
            settings=current_app.extensions["settings"],
            store=positions.live_store(),
        )


@blp.route("/requests/<request_id>/dispatch")
class Dispatch(MethodView):
    @blp.arguments(DispatchIn)
    # The answer is the request, dumped by the requests' service (casevac.requests.lifecycle.answer): the
    # schema here only names it in the OpenAPI document.
    @blp.response(200, "RequestOut")
    @blp.alt_response(
        409,
        description="the asset is not available, the request is not awaiting dispatch, or "
        "the asset or facility cannot serve it (reasons listed)",
    )
    def post(self, body, request_id):
        """Dispatch an asset to a facility: the request becomes dispatched and the asset tasked, atomically."""
        actor = auth.current_user(roles=policy.DRIVERS)
        return jsonify(
            dispatch.assign(db.session, actor=actor, request_id=request_id, **body, store=positions.live_store())
        )


@blp.route("/plan")
class Plan(MethodView):
    @blp.arguments(PlanIn)
    @blp.response(200, PlanOut)
    def post(self, body):
        """A joint assignment of available assets to open requests (mass-casualty mode), most urgent first,
        minimising the total time to delivery (surgery, for urgent-surgical cases). Changes nothing."""
        actor = auth.current_user(roles=policy.DRIVERS)
        return dispatch.plan_for_requests(
            db.session,
            actor=actor,
            request_ids=body.get("request_ids"),
            settings=current_app.extensions["settings"],
            store=positions.live_store(),
        )
