"""CASEVAC endpoints (API.md, CASEVAC requests): thin views, parse -> service -> respond."""

from __future__ import annotations

import json

from flask import Response, request
from flask.views import MethodView
from flask_smorest import Blueprint

from casevac import policy
from casevac.requests import access, casualties, cot, geojson, lifecycle, metrics, schemas, service
from config.extensions import db
from core import auth

blp = Blueprint(
    "casevac",
    __name__,
    url_prefix="/api/v1/casevac",
    description="CASEVAC: 9-line MEDEVAC requests, casualties (MIST-AT), lifecycle, 10-1-2, metrics",
)

GEOJSON = "application/geo+json"
COT_XML = "application/xml"


@blp.route("/requests")
class Requests(MethodView):
    @blp.arguments(schemas.RequestIn)
    @blp.response(201, schemas.RequestOut)
    @blp.alt_response(
        200,
        schema=schemas.RequestOut,
        description="a retry: the same client_ref (or Idempotency-Key) with the same body",
    )
    @blp.alt_response(409, description="the same client_ref with a different body")
    @blp.doc(
        parameters=[
            {
                "in": "header",
                "name": "Idempotency-Key",
                "required": False,
                "schema": {"type": "string", "maxLength": 64},
                "description": "acts as client_ref when the body has none",
            }
        ]
    )
    def post(self, body):
        """File a 9-line MEDEVAC request (lines 1-5 required, 6-9 optional); idempotent by client_ref."""
        actor = auth.current_user(roles=policy.FILERS)
        filed, created = service.file_request(
            db.session, actor=actor, body=body, idempotency_key=request.headers.get("Idempotency-Key")
        )
        return filed, (201 if created else 200)

    @blp.arguments(schemas.RequestListArgs, location="query")
    @blp.response(200, schemas.RequestPage)
    @blp.doc(
        responses={
            "200": {
                "description": "the queue, one page",
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/CasevacRequestPage"}},
                    GEOJSON: {
                        "schema": {
                            "type": "object",
                            "description": "with Accept: application/geo+json or ?format=geojson: an RFC 7946 "
                            "FeatureCollection of Points (longitude first), properties as in the JSON list, "
                            "plus next_cursor",
                        }
                    },
                },
            }
        }
    )
    def get(self, args):
        """The coordinator's queue (most urgent first, then oldest); a medic's own requests."""
        actor = auth.current_user(roles=policy.REQUEST_READERS)
        wants_geojson = args.pop("format", None) == "geojson" or _prefers_geojson()
        page = service.list_requests(db.session, actor=actor, **args)
        if wants_geojson:
            body = geojson.feature_collection(page["items"], next_cursor=page["next_cursor"])
            return Response(json.dumps(body, separators=(",", ":")), mimetype=GEOJSON)
        return page


@blp.route("/requests/<request_id>")
class RequestById(MethodView):
    @blp.response(200, schemas.RequestOut)
    def get(self, request_id):
        """One request with its casualties (latest signs, 10-1-2 timeline) and status history."""
        actor = auth.current_user(roles=policy.REQUEST_READERS)
        return access.get_visible(db.session, actor=actor, request_id=request_id)

    @blp.arguments(schemas.RequestPatch)
    @blp.response(200, schemas.RequestOut)
    @blp.alt_response(409, description="the request is final, or dispatched and the caller is the medic")
    def patch(self, body, request_id):
        """Complete or correct line 2, lines 4-9 and remarks."""
        actor = auth.current_user(roles=policy.REQUEST_READERS)
        return service.update_request(db.session, actor=actor, request_id=request_id, changes=body)


@blp.route("/requests/<request_id>/cot")
class RequestCursorOnTarget(MethodView):
    @blp.doc(
        responses={
            "200": {
                "description": "a Cursor-on-Target event (type b-r-f-h-c) for ATAK / WinTAK",
                "content": {COT_XML: {"schema": {"type": "string"}}},
            }
        }
    )
    def get(self, request_id):
        """The request as a Cursor-on-Target 9-line (DOMAIN.md section 7)."""
        actor = auth.current_user(roles=policy.REQUEST_READERS)
        found = service.export_request(db.session, actor=actor, request_id=request_id)
        return Response(cot.event(found), mimetype=COT_XML)


@blp.route("/requests/<request_id>/status")
class RequestStatus(MethodView):
    @blp.arguments(schemas.RequestStatusIn)
    @blp.response(200, schemas.RequestOut)
    @blp.alt_response(409, description="not an allowed move: the body lists `allowed` and `current`")
    def post(self, body, request_id):
        """Move along requested -> acknowledged -> (dispatch) -> at_pickup -> in_transit -> delivered;
        cancelled (with a note) from any state before delivered."""
        actor = auth.current_user(roles=policy.REQUEST_READERS)
        return lifecycle.transition(db.session, actor=actor, request_id=request_id, **body)


@blp.route("/requests/<request_id>/casualties")
class RequestCasualties(MethodView):
    @blp.arguments(schemas.CasualtyIn)
    @blp.response(201, schemas.CasualtyDetailOut)
    def post(self, body, request_id):
        """Add a casualty (MIST-AT) to a request."""
        actor = auth.current_user(roles=policy.REQUEST_READERS)
        return casualties.add_casualty(db.session, actor=actor, request_id=request_id, body=body)


@blp.route("/casualties/<casualty_id>")
class CasualtyById(MethodView):
    @blp.response(200, schemas.CasualtyDetailOut)
    def get(self, casualty_id):
        """One casualty with the full history of vital signs."""
        actor = auth.current_user(roles=policy.REQUEST_READERS)
        return casualties.read_casualty(db.session, actor=actor, casualty_id=casualty_id)

    @blp.arguments(schemas.CasualtyPatch)
    @blp.response(200, schemas.CasualtyDetailOut)
    def patch(self, body, casualty_id):
        """Correct MIST-AT fields; new `signs` and `treatments` are appended, never overwritten."""
        actor = auth.current_user(roles=policy.REQUEST_READERS)
        return casualties.update_casualty(db.session, actor=actor, casualty_id=casualty_id, changes=body)


@blp.route("/metrics")
class Metrics(MethodView):
    @blp.arguments(schemas.CasevacMetricsArgs, location="query")
    @blp.response(200, schemas.CasevacMetricsOut)
    def get(self, args):
        """Counts by precedence, median minutes per stage, share within deadline, 10-1-2 compliance."""
        actor = auth.current_user(roles=policy.DRIVERS)
        return metrics.metrics(db.session, actor=actor, start=args.get("from_"), end=args.get("to"))


def _prefers_geojson() -> bool:
    """Only when named explicitly (a wildcard Accept keeps plain JSON) and not ranked below JSON."""
    accept = request.accept_mimetypes
    named = {value.lower(): quality for value, quality in accept}
    return named.get(GEOJSON, 0) > 0 and named[GEOJSON] >= accept["application/json"]
