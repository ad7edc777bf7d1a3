"""The authorisation matrix (issue 8): every endpoint of the route table (`app.url_map`), called as every role,
from the resource's own mission and from another, against ONE declared table of expected status codes.

- A route that is not in MATRIX fails the test (a new endpoint must declare who may call it).
- A MATRIX row whose route disappeared fails too, once its area has landed (rows of an area not yet in the
  route table, e.g. telemedicine before it is merged, are waiting and skipped).
- Each call gets fresh data from its row's `make` (built through the public API by an allowed user), so a
  state-changing call never sees the effect of the previous one.

Scopes: "own" = the caller belongs to the mission that owns the resource (or that the body names); "other" =
the caller belongs to another mission (API.md: another mission's records are 404, not 403). `superadmin` is an
admin with the superadmin flag (crosses missions); `anon` sends no token.
"""
from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from typing import Callable

from tests.factories import PASSWORD

ROLES = ("admin", "coordinator", "medic", "clinician", "member", "superadmin", "anon")
SCOPES = ("own", "other")
_counter = itertools.count()


def unique(prefix: str) -> str:
    return f"{prefix}{next(_counter):06d}"


@dataclass
class Req:
    path: dict = field(default_factory=dict)
    json: dict | None = None
    query: dict | None = None


@dataclass
class Row:
    method: str
    rule: str
    own: tuple
    other: tuple
    make: Callable[["World"], Req] = lambda w: Req()


class World:
    """Two missions (A owns the resources; B is "another mission"), a user of each role in each, a client."""

    def __init__(self, client, make_user, headers):
        from tests.factories import MissionFactory

        self.client = client
        self.headers = headers
        self.make_user = make_user
        self.mission = {"own": MissionFactory(), "other": MissionFactory()}
        self.users = {}
        for scope, mission in self.mission.items():
            for role in ROLES[:5]:
                self.users[(scope, role)] = make_user(role, mission)
            self.users[(scope, "superadmin")] = make_user("admin", mission, superadmin=True)
        self.a = self.mission["own"]
        self._tokens = {key: headers(user, 120) for key, user in self.users.items()}

    def auth(self, scope: str, role: str) -> dict:
        return {} if role == "anon" else dict(self._tokens[(scope, role)])

    def as_(self, role: str) -> dict:
        """Headers of a user of mission A (to build data through the API)."""
        return self.auth("own", role)

    def api(self, method: str, url: str, role: str, expect: int = 201, **kwargs) -> dict:
        response = self.client.open(url, method=method, headers=self.as_(role), **kwargs)
        assert response.status_code == expect, (method, url, response.status_code, response.get_data(True)[:500])
        return response.get_json()


def _user_in_a(w: World) -> Req:
    return Req(path={"user_id": w.users[("own", "medic")].id})


def _new_user(w: World) -> Req:
    return Req(json={"username": unique("matrix-user-"), "password": "matrix-password-123", "role": "medic",
                     "mission_id": w.a.id})


def _login(w: World) -> Req:
    # A fresh account per call: successful logins count against the per-account limit too.
    return Req(json={"username": w.make_user("medic", w.a).username, "password": PASSWORD})


#                           admin coord medic clin member super anon
ALL_200 = (200, 200, 200, 200, 200, 200, 200)
AUTH_200 = (200, 200, 200, 200, 200, 200, 401)
ADMIN_200 = (200, 403, 403, 403, 403, 200, 401)

MATRIX: list[Row] = [
    # Public: health, readiness, the OpenAPI document and login.
    Row("GET", "/healthz", ALL_200, ALL_200),
    Row("GET", "/readyz", ALL_200, ALL_200),
    Row("GET", "/openapi.json", ALL_200, ALL_200),
    Row("POST", "/api/v1/auth/login", ALL_200, ALL_200, _login),
    # Accounts (core).
    Row("GET", "/api/v1/auth/me", AUTH_200, AUTH_200),
    Row("GET", "/api/v1/missions", AUTH_200, AUTH_200),
    Row("POST", "/api/v1/missions",
        (403, 403, 403, 403, 403, 201, 401), (403, 403, 403, 403, 403, 201, 401),
        lambda w: Req(json={"code": unique("MX-"), "name": "Matrix mission"})),
    Row("GET", "/api/v1/missions/<mission_id>",
        AUTH_200, (404, 404, 404, 404, 404, 200, 401), lambda w: Req(path={"mission_id": w.a.id})),
    Row("GET", "/api/v1/users", ADMIN_200, ADMIN_200),
    # Creating a user in another mission: that mission is "unknown" to the admin (422 on mission_id).
    Row("POST", "/api/v1/users",
        (201, 403, 403, 403, 403, 201, 401), (422, 403, 403, 403, 403, 201, 401), _new_user),
    Row("GET", "/api/v1/users/<user_id>",
        (200, 404, 200, 404, 404, 200, 401), (404, 404, 404, 404, 404, 200, 401), _user_in_a),
    Row("GET", "/api/v1/audit", ADMIN_200, ADMIN_200),
]

# Areas: a row waits (is skipped) while no route of its area is registered yet.
AREAS = ("/api/v1/casevac", "/api/v1/assets", "/api/v1/facilities", "/api/v1/telemed")
IGNORED_METHODS = {"HEAD", "OPTIONS"}
_ARG = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")


def _normalise(rule: str) -> str:
    """`<string:id>` and `<id>` are the same route for the table."""
    return _ARG.sub(lambda m: f"<{m.group(1)}>", rule)


def route_table(app) -> set[tuple[str, str]]:
    routes = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        for method in rule.methods - IGNORED_METHODS:
            routes.add((method, _normalise(rule.rule)))
    return routes


def _area(rule: str) -> str | None:
    return next((a for a in AREAS if rule.startswith(a)), None)


def _url(rule: str, path: dict) -> str:
    return _ARG.sub(lambda m: str(path[m.group(1)]), rule)


def test_every_endpoint_as_every_role_from_every_mission(app, client, make_user, headers):
    routes = route_table(app)
    declared = {(row.method, row.rule) for row in MATRIX}
    missing = sorted(routes - declared)
    assert not missing, "routes without a row in MATRIX (declare who may call them):\n" + "\n".join(
        f"  {m} {r}" for m, r in missing)
    landed = {_area(r) for _, r in routes}
    stale = sorted((m, r) for m, r in declared - routes if _area(r) is None or _area(r) in landed)
    assert not stale, f"MATRIX rows for routes that do not exist (renamed or removed?): {stale}"

    world = World(client, make_user, headers)
    mismatches = []
    calls = 0
    for row in MATRIX:
        if (row.method, row.rule) not in routes:
            continue  # its area has not landed yet
        for scope, expected in (("own", row.own), ("other", row.other)):
            for role, want in zip(ROLES, expected):
                req = row.make(world)
                response = client.open(_url(row.rule, req.path), method=row.method, json=req.json,
                                       query_string=req.query, headers=world.auth(scope, role))
                calls += 1
                if response.status_code != want:
                    mismatches.append(f"{row.method} {row.rule} as {role} ({scope} mission): expected {want}, "
                                      f"got {response.status_code} {response.get_data(as_text=True)[:200]}")
    assert not mismatches, f"{len(mismatches)} of {calls} calls differ from MATRIX:\n" + "\n".join(mismatches)
    assert calls >= 14 * 10


def test_the_matrix_notices_a_new_endpoint(app):
    """A route added without a row is reported (the check above cannot pass vacuously)."""
    from flask import Flask

    probe = Flask("probe")
    probe.add_url_rule("/api/v1/new-thing/<thing_id>", "new_thing", lambda thing_id: "", methods=["GET", "DELETE"])
    routes = route_table(probe)
    declared = {(row.method, row.rule) for row in MATRIX}
    assert {("GET", "/api/v1/new-thing/<thing_id>"), ("DELETE", "/api/v1/new-thing/<thing_id>")} <= routes - declared


def test_the_openapi_document_marks_exactly_the_public_endpoints_as_public(client):
    """What MATRIX says an anonymous caller gets must agree with the document clients (and the fuzzer) read:
    an operation that answers without a token has `security: []`; every other one requires the bearer token."""
    spec = client.get("/openapi.json").get_json()
    default = spec.get("security")
    assert default == [{"bearerAuth": []}]
    wrong = []
    for row in MATRIX:
        path = _ARG.sub(lambda m: "{" + m.group(1) + "}", row.rule)
        operation = spec["paths"].get(path, {}).get(row.method.lower())
        if operation is None:
            continue  # not documented (the OpenAPI document itself) or not landed
        public = row.own[ROLES.index("anon")] < 400
        documented_public = operation.get("security", default) == []
        if public != documented_public:
            wrong.append(f"{row.method} {row.rule}: public={public}, document says public={documented_public}")
    assert wrong == [], "\n".join(wrong)
