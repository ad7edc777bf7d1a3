"""Small answers for thin links (issue 16), around the CASEVAC request endpoints without changing them:

- `Prefer: return=minimal` (RFC 7240) on filing, PATCH and status change: the answer carries `id`,
  `status`, `precedence` and `seq` only (the same status code), with `Preference-Applied: return=minimal`.
  `seq` is the delivery seq of the newest event about the request (casevac.created / casevac.updated), so a
  client can tell its own change in the event stream; null in the rare case it is not sequenced yet.
- `GET /casevac/requests?fields=a,b,c`: the queue entries with those fields only, and `?view=compact`: a
  documented compact entry (below) for polling clients.
"""

from __future__ import annotations

import json
from datetime import timedelta

from flask import Flask, request
from sqlalchemy import select

from core.errors import ApiError

PREFIX = "/api/v1/casevac"
MINIMAL_ROUTES = {
    ("POST", f"{PREFIX}/requests"),
    ("PATCH", f"{PREFIX}/requests/<request_id>"),
    ("POST", f"{PREFIX}/requests/<request_id>/status"),
}
QUEUE = ("GET", f"{PREFIX}/requests")
MINIMAL_FIELDS = ("id", "status", "precedence")


def prefers_minimal() -> bool:
    """RFC 7240: `Prefer: return=minimal` among the comma-separated preferences (token case-insensitive,
    the value possibly quoted, parameters after `;` ignored)."""
    for header in request.headers.getlist("Prefer"):
        for preference in header.split(","):
            name, _, value = preference.split(";")[0].strip().partition("=")
            if name.strip().lower() == "return" and value.strip().strip('"').lower() == "minimal":
                return True
    return False


def _route() -> tuple[str, str] | None:
    rule = request.url_rule.rule if request.url_rule is not None else None
    return (request.method, rule) if rule else None


def summary_fields() -> tuple[str, ...]:
    from casevac.requests.service import summary_fields

    return summary_fields()


def _requested_fields() -> tuple[str, ...] | None:
    """The queue projection asked for: ?fields=a,b or ?view=compact (422 naming the unknown ones)."""
    view = request.args.get("view")
    raw = request.args.get("fields")
    if view is None and raw is None:
        return None
    if view is not None and view != "compact":
        raise ApiError(422, "invalid query parameter 'view'", errors={"query": {"view": ["Must be one of: compact."]}})
    if view is not None and raw is not None:
        raise ApiError(
            422, "give ?fields= or ?view=compact, not both", errors={"query": {"fields": ["not with view=compact"]}}
        )
    if view == "compact":
        return ("compact",)
    allowed = summary_fields()
    names = tuple(dict.fromkeys(name.strip() for name in raw.split(",") if name.strip()))
    unknown = [name for name in names if name not in allowed]
    if unknown or not names:
        raise ApiError(
            422,
            "invalid query parameter 'fields'",
            errors={
                "query": {"fields": [f"unknown: {', '.join(unknown) or '(none given)'}; allowed: {', '.join(allowed)}"]}
            },
        )
    return names


def _seconds(value: str | None) -> str | None:
    """2026-12-01T13:25:05.186684+00:00 -> 2026-12-01T13:25:05Z (the compact view's times)."""
    if not value:
        return value
    return value[:19] + "Z" if value.endswith("+00:00") else value


def compact_entry(item: dict) -> dict:
    """One queue entry of the compact view: what a polling screen shows, the time to the second, the
    location as lat/lon to 5 decimals (1.1 m), line 3 as its total."""
    location = item.get("location") or {}
    return {
        "id": item["id"],
        "status": item["status"],
        "precedence": item["precedence"],
        "lat": round(location["lat"], 5) if location.get("lat") is not None else None,
        "lon": round(location["lon"], 5) if location.get("lon") is not None else None,
        "patients": sum((item.get("patients") or {}).values()),
        "litter": item.get("litter"),
        "ambulatory": item.get("ambulatory"),
        "equipment": item.get("equipment"),
        "callsign": item.get("callsign"),
        "missing_lines": item.get("missing_lines"),
        "updated_at": _seconds(item.get("updated_at")),
        "deadline": _seconds(item.get("deadline")),
        "asset_id": item.get("asset_id"),
        "escalated_at": _seconds(item.get("escalated_at")),
    }


def latest_seq(request_id: str, mission_id: str, since) -> int | None:
    """The seq of the newest event about a request, sequencing committed events first if the relay has
    not yet (sequence() is the relay's own serialized step: safe to run from any process)."""
    from config.extensions import db
    from realtime import relay
    from realtime.models import Event

    def find():
        rows = db.session.execute(
            select(Event.id, Event.seq, Event.data)
            .where(Event.mission_id == mission_id, Event.at >= since, Event.type.like("casevac.%"))
            .order_by(Event.id.desc())
            .limit(50)
        ).all()
        return next(((row.id, row.seq) for row in rows if (row.data or {}).get("id") == request_id), None)

    found = find()
    if found is not None and found[1] is None:
        db.session.rollback()
        relay.sequence(db.engine)
        found = find()
    db.session.rollback()
    return found[1] if found else None


PREFER_DOC = {
    "in": "header",
    "name": "Prefer",
    "required": False,
    "schema": {"type": "string"},
    "description": "return=minimal (RFC 7240): the answer is {id, status, precedence, seq} only, with "
    "Preference-Applied: return=minimal",
}
QUEUE_DOCS = [
    {
        "in": "query",
        "name": "fields",
        "required": False,
        "schema": {"type": "string"},
        "description": "comma-separated fields of the queue entry to keep (e.g. id,status,precedence)",
    },
    {
        "in": "query",
        "name": "view",
        "required": False,
        "schema": {"type": "string", "enum": ["compact"]},
        "description": "compact: id, status, precedence, lat, lon, patients (total), litter, ambulatory, equipment, "
        "callsign, missing_lines, updated_at, deadline, asset_id, escalated_at (docs/casevac.md)",
    },
]


def document(api) -> None:
    """Add the Prefer header and the queue's fields/view to the OpenAPI operations these hooks change (the
    views themselves are casevac.requests'; this runs after their blueprint is registered)."""
    paths = getattr(api.spec, "_paths", {})

    def add(rule: str, method: str, parameters: list[dict]) -> None:
        operation = paths.get(rule.replace("<request_id>", "{request_id}"), {}).get(method.lower())
        if operation is not None:
            names = {(p.get("in"), p.get("name")) for p in operation.get("parameters", []) if isinstance(p, dict)}
            operation.setdefault("parameters", []).extend(p for p in parameters if (p["in"], p["name"]) not in names)

    for method, rule in MINIMAL_ROUTES:
        add(rule, method, [PREFER_DOC])
    add(QUEUE[1], QUEUE[0], QUEUE_DOCS)


def init_app(app: Flask) -> None:
    @app.before_request
    def _validate_projection():
        if _route() == QUEUE:
            _requested_fields()

    @app.after_request
    def _small_answers(response):
        route = _route()
        if route is None or response.status_code not in (200, 201) or response.mimetype != "application/json":
            return response
        if route in MINIMAL_ROUTES and prefers_minimal():
            body = json.loads(response.get_data())
            from casevac.requests.service import find_request
            from config.extensions import db

            row = find_request(db.session, body["id"])  # the request this very answer was made from
            since = row.updated_at if row is not None else None
            minimal = {name: body.get(name) for name in MINIMAL_FIELDS}
            minimal["seq"] = latest_seq(body["id"], body["mission_id"], since - timedelta(seconds=1)) if since else None
            response.set_data(json.dumps(minimal, separators=(",", ":")))
            response.headers["Preference-Applied"] = "return=minimal"
            return response
        if route == QUEUE:
            wanted = _requested_fields()
            if wanted is None:
                return response
            page = json.loads(response.get_data())
            if wanted == ("compact",):
                page["items"] = [compact_entry(item) for item in page["items"]]
            else:
                page["items"] = [{name: item.get(name) for name in wanted} for item in page["items"]]
            response.set_data(json.dumps(page, separators=(",", ":")))
        return response
