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

import io
import itertools
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Callable

import pytest

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
    data: dict | None = None  # multipart form (uploads)


@dataclass
class Row:
    method: str
    rule: str
    own: tuple
    other: tuple
    make: Callable[["World"], Req] = lambda w: Req()
    variant: str = ""  # several rows may check one route on different records (e.g. a mental-health one)
    pending: bool = False  # written from API.md before the route reached main: skipped while it is absent


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

    # Telemedicine: mission A's clinician (the "clinician" user) takes diagnostic and mental-health
    # consultations around the clock; each booking takes the next free half hour after T0 + 1 day.
    T0 = datetime(2026, 12, 1, tzinfo=timezone.utc)
    _clinician: dict | None = None
    _slot = 0

    def clinician(self) -> dict:
        if self._clinician is None:
            user = self.users[("own", "clinician")]
            self._clinician = self.api(
                "POST",
                "/api/v1/telemed/clinicians",
                "admin",
                json={
                    "user_id": user.id,
                    "specialties": ["general_medicine", "psychiatry"],
                    "languages": ["en"],
                    "timezone": "UTC",
                    "kinds": ["diagnostic", "mental_health"],
                },
            )
            self.api(
                "PUT",
                f"/api/v1/telemed/clinicians/{self._clinician['id']}/availability",
                "admin",
                expect=200,
                json=AROUND_THE_CLOCK,
            )
        return self._clinician

    def next_start(self) -> datetime:
        self._slot += 1
        return self.T0 + timedelta(days=1, minutes=30 * self._slot)

    def casevac(self, casualties: int = 0) -> dict:
        """A request filed by mission A's medic."""
        return self.api("POST", "/api/v1/casevac/requests", "medic", json=nine_line(casualties))

    def asset(self) -> dict:
        return self.api(
            "POST",
            "/api/v1/assets",
            "coordinator",
            json={
                "callsign": unique("HELO-"),
                "kind": "rotary_wing",
                "capabilities": ["hoist", "medical_crew", "night"],
                "litter_capacity": 4,
                "ambulatory_capacity": 4,
                "cruise_speed_kmh": 250,
                "readiness_minutes": 10,
                "base": {"name": "Bangui M'Poko", "lat": 4.398, "lon": 18.519},
            },
        )

    def facility(self) -> dict:
        return self.api(
            "POST",
            "/api/v1/facilities",
            "coordinator",
            json={
                "name": unique("Level 2 hospital "),
                "level": "2",
                "capabilities": ["damage_control_surgery", "icu"],
                "status": "normal",
                "beds_available": 10,
                "helipad": True,
                "location": {"lat": 4.37, "lon": 18.56},
            },
        )

    def screening(self, flagged: bool = False) -> dict:
        """A PHQ-9 mission A's member took; flagged: item 9 above 0 (DOMAIN.md section 6)."""
        return self.api(
            "POST",
            "/api/v1/telemed/screenings",
            "member",
            json={"instrument": "phq9", "answers": [1] * 8 + [1 if flagged else 0]},
        )

    def referral(self) -> dict:
        return self.api(
            "POST",
            "/api/v1/telemed/self-referrals",
            "member",
            json={"reason": "trouble sleeping since the convoy", "preferred_language": "en"},
        )

    def consultation(self, kind: str = "diagnostic", start: datetime | None = None) -> dict:
        """Diagnostic: booked by the medic for a named casualty; mental health: booked by the member for self."""
        booker = "medic" if kind == "diagnostic" else "member"
        start = start or self.next_start()
        return self.api(
            "POST",
            "/api/v1/telemed/consultations",
            booker,
            json={
                "kind": kind,
                "clinician_id": self.clinician()["id"],
                "modality": "video",
                "start": start.isoformat(),
                "reason": "matrix check",
                "patient": {"name": "Cpl Matrix"} if kind == "diagnostic" else {},
            },
        )


def nine_line(casualties: int = 0) -> dict:
    """Lines 1-5 of a 9-line (the minimum a medic sends on first contact)."""
    return {
        "client_ref": unique("ref-"),
        "location": {"lat": 4.3612, "lon": 18.555},
        "callsign": "BRAVO-2-6",
        "frequency": "38.90",
        "patients": {"urgent": 1, "urgent_surgical": 0, "priority": 0, "routine": 0, "convenience": 0},
        "equipment": [],
        "litter": 1,
        "ambulatory": 0,
        "casualties": [{"zap": f"A-{i}", "age": 27, "mechanism": "blast"} for i in range(casualties)],
    }


AROUND_THE_CLOCK = {
    "weekly": [{"day": d, "start": "00:00", "end": "24:00"} for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")],
    "overrides": [],
    "slot_minutes": 30,
    "buffer_minutes": 0,
    "min_notice_minutes": 0,
}
# A 1x1 PNG: the upload type is read from the content.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
    "0000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)


def _user_in_a(w: World) -> Req:
    return Req(path={"user_id": w.users[("own", "medic")].id})


def _new_user(w: World) -> Req:
    return Req(
        json={
            "username": unique("matrix-user-"),
            "password": "matrix-password-123",
            "role": "medic",
            "mission_id": w.a.id,
        }
    )


def _login(w: World) -> Req:
    # A fresh account per call: successful logins count against the per-account limit too.
    return Req(json={"username": w.make_user("medic", w.a).username, "password": PASSWORD})


def _clinician(w: World) -> Req:
    return Req(path={"clinician_id": w.clinician()["id"]})


def _new_profile(w: World) -> Req:
    user = w.make_user("clinician", w.a)
    return Req(
        json={"user_id": user.id, "specialties": ["radiology"], "languages": ["fr"], "timezone": "Asia/Kathmandu"}
    )


def _diag(w: World, **extra) -> Req:
    return Req(path={"consultation_id": w.consultation("diagnostic")["id"]}, **extra)


def _mental(w: World, **extra) -> Req:
    return Req(path={"consultation_id": w.consultation("mental_health")["id"]}, **extra)


def _joinable(w: World) -> Req:
    # Inside the join window: the clock stands 5 minutes before the start (later bookings stay in its future).
    from core import clock

    start = w.next_start()
    consultation = w.consultation("diagnostic", start)
    clock.freeze(start - timedelta(minutes=5))
    return Req(path={"consultation_id": consultation["id"]})


def _interpreter(w: World) -> dict:
    return {"user_id": w.make_user("member", w.a).id, "part": "interpreter", "language": "fr"}


def _invited(w: World) -> Req:
    req = _diag(w)
    url = f"/api/v1/telemed/consultations/{req.path['consultation_id']}/participants"
    req.path["participant_id"] = w.api("POST", url, "clinician", json=_interpreter(w))["id"]
    return req


def _with_attachment(w: World) -> Req:
    req = _diag(w)
    body = w.api(
        "POST",
        f"/api/v1/telemed/consultations/{req.path['consultation_id']}/attachments",
        "medic",
        data={"file": (io.BytesIO(PNG), "x.png")},
        content_type="multipart/form-data",
    )
    req.path["attachment_id"] = body["id"]
    return req


def _booking(w: World) -> Req:
    return Req(
        json={
            "kind": "diagnostic",
            "clinician_id": w.clinician()["id"],
            "modality": "video",
            "start": w.next_start().isoformat(),
            "reason": "matrix check",
            "patient": {"name": "Cpl B"},
        }
    )


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
    # The pages (web/, issue 13): static shells and files, public; every piece of data they show comes from
    # the API above with the user's token. The tiles answer 404 while MAP_TILES is unset (as here).
    *[
        Row("GET", page, ALL_200, ALL_200)
        for page in (
            "/",
            "/console",
            "/field",
            "/clinic",
            "/me",
            "/docs",
            "/field-sw.js",
            "/field.webmanifest",
            "/map/config.json",
            "/me/config.json",
        )
    ],
    Row("GET", "/assets/<filename>", ALL_200, ALL_200, lambda w: Req(path={"filename": "js/api.js"})),
    Row("GET", "/tiles/mission.pmtiles", (404,) * 7, (404,) * 7),
    Row("GET", "/tiles/<z>/<x>/<y>", (404,) * 7, (404,) * 7, lambda w: Req(path={"z": 0, "x": 0, "y": 0})),
    # Accounts (core).
    Row("GET", "/api/v1/auth/me", AUTH_200, AUTH_200),
    # Revokes the caller's own device tokens (tests/core/test_device_tokens.py).
    Row("DELETE", "/api/v1/auth/device-token", (204,) * 6 + (401,), (204,) * 6 + (401,)),
    Row("GET", "/api/v1/missions", AUTH_200, AUTH_200),
    Row(
        "POST",
        "/api/v1/missions",
        (403, 403, 403, 403, 403, 201, 401),
        (403, 403, 403, 403, 403, 201, 401),
        lambda w: Req(json={"code": unique("MX-"), "name": "Matrix mission"}),
    ),
    Row(
        "GET",
        "/api/v1/missions/<mission_id>",
        AUTH_200,
        (404, 404, 404, 404, 404, 200, 401),
        lambda w: Req(path={"mission_id": w.a.id}),
    ),
    Row("GET", "/api/v1/users", ADMIN_200, ADMIN_200),
    # Creating a user in another mission: that mission is "unknown" to the admin (422 on mission_id).
    Row("POST", "/api/v1/users", (201, 403, 403, 403, 403, 201, 401), (422, 403, 403, 403, 403, 201, 401), _new_user),
    Row(
        "GET",
        "/api/v1/users/<user_id>",
        (200, 404, 200, 404, 404, 200, 401),
        (404, 404, 404, 404, 404, 200, 401),
        _user_in_a,
    ),
    Row(
        "PATCH",
        "/api/v1/users/<user_id>",
        ADMIN_200,
        (404, 403, 403, 403, 403, 200, 401),
        lambda w: Req(path=_user_in_a(w).path, json={"display_name": unique("Medic ")}),
    ),
    Row("GET", "/api/v1/audit", ADMIN_200, ADMIN_200),
    Row(
        "PATCH",
        "/api/v1/users/<user_id>",
        (200, 403, 403, 403, 403, 200, 401),
        (404, 403, 403, 403, 403, 200, 401),
        lambda w: Req(path={"user_id": w.users[("own", "medic")].id}, json={"display_name": unique("Cpl ")}),
    ),
]

C = "/api/v1/casevac"
# CASEVAC (casevac.requests.service): medics and coordinators file; a medic sees and edits what they filed (before
# dispatch), coordinators and admins their mission's requests; clinicians and members have no access.
FILED_SEEN = ((200, 200, 200, 403, 403, 200, 401), (404, 404, 404, 403, 403, 200, 401))
FILED_201 = ((201, 201, 201, 403, 403, 201, 401), (404, 404, 404, 403, 403, 201, 401))
READERS_200 = (200, 200, 200, 403, 403, 200, 401)


def _request(w: World, **extra) -> Req:
    return Req(path={"request_id": w.casevac()["id"]}, **extra)


def _casualty(w: World, **extra) -> Req:
    return Req(path={"casualty_id": w.casevac(casualties=1)["casualties"][0]["id"]}, **extra)


CASEVAC: list[Row] = [
    Row(
        "POST",
        f"{C}/requests",
        (403, 201, 201, 403, 403, 403, 401),
        (403, 201, 201, 403, 403, 403, 401),
        lambda w: Req(json=nine_line()),
    ),
    Row("GET", f"{C}/requests", READERS_200, READERS_200),
    Row("GET", f"{C}/requests/<request_id>", *FILED_SEEN, _request),
    Row("PATCH", f"{C}/requests/<request_id>", *FILED_SEEN, lambda w: _request(w, json={"marking": "smoke"})),
    Row("GET", f"{C}/requests/<request_id>/cot", *FILED_SEEN, _request),
    # Cancelling before dispatch: coordinators, and the filing medic (API.md lifecycle).
    Row(
        "POST",
        f"{C}/requests/<request_id>/status",
        *FILED_SEEN,
        lambda w: _request(w, json={"status": "cancelled", "note": "duplicate"}),
    ),
    Row(
        "POST",
        f"{C}/requests/<request_id>/casualties",
        *FILED_201,
        lambda w: _request(w, json={"zap": "B-7", "age": 31, "mechanism": "gunshot"}),
    ),
    Row("GET", f"{C}/casualties/<casualty_id>", *FILED_SEEN, _casualty),
    Row(
        "PATCH",
        f"{C}/casualties/<casualty_id>",
        *FILED_SEEN,
        lambda w: _casualty(w, json={"signs": {"pulse": 120, "spo2": 93}}),
    ),
    Row("GET", f"{C}/metrics", (200, 200, 403, 403, 403, 200, 401), (200, 200, 403, 403, 403, 200, 401)),
]

T = "/api/v1/telemed"
# Consultation access (telemed.scheduling.access.may_see, participants): a diagnostic one is seen by its clinician, the
# medic who booked it and the mission's coordinators and admins; a mental-health one by its clinician and its
# patient only, whatever the role (DOMAIN.md section 6). Only participants join, reschedule, write and read
# replies and attachments; notes are written by the consultation's clinician.
DIAG_SEEN = ((200, 200, 200, 200, 404, 200, 401), (404, 404, 404, 404, 404, 200, 401))
PARTICIPANTS_200 = ((403, 403, 200, 200, 404, 403, 401), (404, 404, 404, 404, 404, 403, 401))
PARTICIPANTS_201 = ((403, 403, 201, 201, 404, 403, 401), (404, 404, 404, 404, 404, 403, 401))
TELEMED: list[Row] = [
    Row("GET", f"{T}/clinicians", AUTH_200, AUTH_200),
    # A clinician may create only their own profile; another mission's user is "unknown" (422 on user_id).
    Row(
        "POST",
        f"{T}/clinicians",
        (201, 403, 403, 403, 403, 201, 401),
        (422, 403, 403, 422, 403, 201, 401),
        _new_profile,
    ),
    Row("GET", f"{T}/clinicians/<clinician_id>", AUTH_200, (404, 404, 404, 404, 404, 200, 401), _clinician),
    Row(
        "PATCH",
        f"{T}/clinicians/<clinician_id>",
        (200, 403, 403, 200, 403, 200, 401),
        (404, 403, 403, 404, 403, 200, 401),
        lambda w: Req(path=_clinician(w).path, json={"languages": ["en"]}),
    ),
    Row(
        "GET", f"{T}/clinicians/<clinician_id>/availability", AUTH_200, (404, 404, 404, 404, 404, 200, 401), _clinician
    ),
    Row(
        "PUT",
        f"{T}/clinicians/<clinician_id>/availability",
        (200, 403, 403, 200, 403, 200, 401),
        (404, 403, 403, 404, 403, 200, 401),
        lambda w: Req(path=_clinician(w).path, json=AROUND_THE_CLOCK),
    ),
    Row(
        "GET",
        f"{T}/slots",
        AUTH_200,
        AUTH_200,
        lambda w: Req(query={"from": w.T0.isoformat(), "to": (w.T0 + timedelta(days=1)).isoformat()}),
    ),
    Row("GET", f"{T}/consultations", AUTH_200, AUTH_200),
    # Booking needs a clinician of the caller's own mission (another mission's is an unknown clinician_id).
    Row(
        "POST", f"{T}/consultations", (201, 201, 201, 201, 403, 201, 401), (422, 422, 422, 422, 403, 422, 401), _booking
    ),
    Row("GET", f"{T}/consultations/<consultation_id>", *DIAG_SEEN, _diag),
    Row(
        "GET",
        f"{T}/consultations/<consultation_id>",
        (404, 404, 404, 200, 200, 404, 401),
        (404,) * 6 + (401,),
        _mental,
        variant="mental_health",
    ),
    Row(
        "POST",
        f"{T}/consultations/<consultation_id>/status",
        (200, 200, 200, 200, 404, 200, 401),
        (404, 404, 404, 404, 404, 200, 401),
        lambda w: _diag(w, json={"status": "checked_in"}),
    ),
    Row(
        "POST",
        f"{T}/consultations/<consultation_id>/status",
        (404, 404, 404, 200, 200, 404, 401),
        (404,) * 6 + (401,),
        lambda w: _mental(w, json={"status": "checked_in"}),
        variant="mental_health",
    ),
    # Coordinators and admins manage diagnostic bookings as participants do (not mental-health ones).
    Row(
        "POST",
        f"{T}/consultations/<consultation_id>/reschedule",
        *DIAG_SEEN,
        lambda w: _diag(w, json={"start": w.next_start().isoformat()}),
    ),
    Row("GET", f"{T}/consultations/<consultation_id>/join", *PARTICIPANTS_200, _joinable),
    # Invited participants (telemed.policy.may_invite): the consultation's clinician, or an admin for a
    # diagnostic one; whoever sees the consultation sees who is invited; each caller lists their own invitations.
    Row(
        "POST",
        f"{T}/consultations/<consultation_id>/participants",
        (201, 403, 403, 201, 404, 201, 401),
        (404, 404, 404, 404, 404, 201, 401),
        lambda w: _diag(w, json=_interpreter(w)),
    ),
    Row(
        "POST",
        f"{T}/consultations/<consultation_id>/participants",
        (404, 404, 404, 201, 403, 404, 401),
        (404,) * 6 + (401,),
        lambda w: _mental(w, json=_interpreter(w)),
        variant="mental_health",
    ),
    Row("GET", f"{T}/consultations/<consultation_id>/participants", *DIAG_SEEN, _diag),
    Row(
        "DELETE",
        f"{T}/consultations/<consultation_id>/participants/<participant_id>",
        (200, 403, 403, 200, 404, 200, 401),
        (404, 404, 404, 404, 404, 200, 401),
        lambda w: _invited(w),
    ),
    Row("GET", f"{T}/invitations", AUTH_200, AUTH_200),
    # Consent (telemed/consent): the texts in force and one's own records; each user consents for themself.
    Row("GET", f"{T}/consent-texts", AUTH_200, AUTH_200),
    Row("GET", f"{T}/consents", AUTH_200, AUTH_200),
    Row(
        "POST",
        f"{T}/consents",
        (201, 201, 201, 201, 201, 201, 401),
        (201, 201, 201, 201, 201, 201, 401),
        lambda w: Req(json={"kind": "diagnostic", "version": "2026-12-01"}),
    ),
    Row(
        "POST",
        f"{T}/consultations/<consultation_id>/notes",
        (403, 403, 403, 201, 403, 403, 401),
        (403, 403, 403, 404, 403, 403, 401),
        lambda w: _diag(w, json={"kind": "clinical", "text": "Wound clean, no infection."}),
    ),
    Row(
        "POST",
        f"{T}/consultations/<consultation_id>/notes",
        (403, 403, 403, 201, 403, 403, 401),
        (403, 403, 403, 404, 403, 403, 401),
        lambda w: _mental(
            w, json={"kind": "psychotherapy", "text": f"Matrix session {unique('n')}: talked about the night patrol"}
        ),
        variant="psychotherapy",
    ),
    # Notes are read by the consultation's clinician and its patient (a diagnostic one booked for a named
    # casualty has no patient account).
    Row(
        "GET",
        f"{T}/consultations/<consultation_id>/notes",
        (403, 403, 403, 200, 404, 403, 401),
        (404, 404, 404, 404, 404, 403, 401),
        _diag,
    ),
    Row(
        "POST",
        f"{T}/consultations/<consultation_id>/replies",
        *PARTICIPANTS_201,
        lambda w: _diag(w, json={"text": "Photo attached."}),
    ),
    Row("GET", f"{T}/consultations/<consultation_id>/replies", *PARTICIPANTS_200, _diag),
    Row(
        "POST",
        f"{T}/consultations/<consultation_id>/attachments",
        *PARTICIPANTS_201,
        lambda w: _diag(w, data={"file": (io.BytesIO(PNG), "wound.png")}),
    ),
    Row("GET", f"{T}/consultations/<consultation_id>/attachments", *PARTICIPANTS_200, _diag),
    Row("GET", f"{T}/consultations/<consultation_id>/attachments/<attachment_id>", *PARTICIPANTS_200, _with_attachment),
    Row("GET", f"{T}/consultations/<consultation_id>.ics", *DIAG_SEEN, _diag),
    Row("GET", f"{T}/consultations/<consultation_id>/fhir", *DIAG_SEEN, _diag),
    Row("GET", f"{T}/metrics", (200, 200, 403, 403, 403, 200, 401), (200, 200, 403, 403, 403, 200, 401)),
]
MATRIX += TELEMED + CASEVAC

# Mental health (telemed.mental.confidentiality.visible): a screening or self-referral is seen by its member and the
# mission's mental-health clinicians only, whatever the role; superadmin included (DOMAIN.md section 6).
# The world's clinician has psychiatry among their specialties; mission B's clinician has no profile.
MEMBER_OR_MH = ((404, 404, 404, 200, 200, 404, 401), (404,) * 6 + (401,))
CARE_200 = ((403, 403, 403, 200, 200, 403, 401), (403, 403, 403, 403, 200, 403, 401))


def _screening(w: World, flagged: bool = False) -> Req:
    return Req(path={"screening_id": w.screening(flagged)["id"]})


def _referral(w: World, **extra) -> Req:
    return Req(path={"referral_id": w.referral()["id"]}, **extra)


MENTAL: list[Row] = [
    Row("GET", f"{T}/screening-instruments", AUTH_200, AUTH_200),
    # A member screens themself; a mental-health clinician enters one for a member of their mission.
    Row(
        "POST",
        f"{T}/screenings",
        (403, 403, 403, 201, 201, 403, 401),
        (403, 403, 403, 403, 422, 403, 401),
        lambda w: Req(json={"instrument": "gad7", "answers": [1] * 7, "member_id": w.users[("own", "member")].id}),
    ),
    Row("GET", f"{T}/screenings", *CARE_200),
    Row("GET", f"{T}/screenings/<screening_id>", *MEMBER_OR_MH, _screening),
    Row(
        "POST",
        f"{T}/screenings/<screening_id>/acknowledge",
        (403, 403, 403, 200, 403, 403, 401),
        (403, 403, 403, 404, 403, 403, 401),
        lambda w: _screening(w, flagged=True),
    ),
    Row("GET", f"{T}/screening-alerts", (403, 403, 403, 200, 403, 403, 401), (403,) * 6 + (401,)),
    Row(
        "GET",
        f"{T}/members/<member_id>/screening-trend",
        (403, 403, 403, 200, 200, 403, 401),
        (403, 403, 403, 404, 404, 403, 401),
        lambda w: Req(path={"member_id": w.users[("own", "member")].id}, query={"instrument": "phq9"}),
    ),
    Row(
        "POST",
        f"{T}/self-referrals",
        (403, 403, 403, 403, 201, 403, 401),
        (403, 403, 403, 403, 201, 403, 401),
        lambda w: Req(json={"reason": "I would like to talk to someone", "preferred_language": "fr"}),
    ),
    Row("GET", f"{T}/self-referrals", *CARE_200),
    Row("GET", f"{T}/self-referrals/<referral_id>", *MEMBER_OR_MH, _referral),
    Row(
        "POST",
        f"{T}/self-referrals/<referral_id>/book",
        (403, 403, 403, 403, 201, 403, 401),
        (403, 403, 403, 403, 404, 403, 401),
        lambda w: _referral(w, json={"clinician_id": w.clinician()["id"], "start": w.next_start().isoformat()}),
    ),
    Row(
        "POST",
        f"{T}/self-referrals/<referral_id>/close",
        (403, 403, 403, 200, 200, 403, 401),
        (403, 403, 403, 404, 404, 403, 401),
        _referral,
    ),
    Row("GET", f"{T}/me/access-log", AUTH_200, AUTH_200),
    Row("GET", f"{T}/mental-health/metrics", (200, 200, 403, 200, 403, 200, 401), (200, 200, 403, 403, 403, 200, 401)),
]
MATRIX += MENTAL

# Assets, facilities, dispatch (API.md): reads by medics, coordinators and admins; writes by coordinators and
# admins; live positions from a coordinator (or the asset's own device token); dispatch and plan by
# coordinators and admins. Pending: written before the dispatch work reached main.
A = "/api/v1"
FLEET_READ = ((200, 200, 200, 403, 403, 200, 401), (404, 404, 404, 403, 403, 200, 401))
FLEET_WRITE = ((200, 200, 403, 403, 403, 200, 401), (404, 404, 403, 403, 403, 200, 401))
FLEET_LIST = (200, 200, 200, 403, 403, 200, 401)
FLEET_CREATE = (201, 201, 403, 403, 403, 201, 401)


def _asset(w: World, **extra) -> Req:
    return Req(path={"asset_id": w.asset()["id"]}, **extra)


def _facility(w: World, **extra) -> Req:
    return Req(path={"facility_id": w.facility()["id"]}, **extra)


def _awaiting_dispatch(w: World) -> Req:
    request = w.casevac()
    w.api(
        "POST",
        f"/api/v1/casevac/requests/{request['id']}/status",
        "coordinator",
        expect=200,
        json={"status": "acknowledged"},
    )
    return Req(
        path={"request_id": request["id"]}, json={"asset_id": w.asset()["id"], "facility_id": w.facility()["id"]}
    )


FLEET: list[Row] = [
    Row("GET", f"{A}/assets", FLEET_LIST, FLEET_LIST),
    Row(
        "POST",
        f"{A}/assets",
        FLEET_CREATE,
        FLEET_CREATE,
        lambda w: Req(
            json={
                "callsign": unique("AMB-"),
                "kind": "ground_ambulance",
                "capabilities": [],
                "litter_capacity": 2,
                "ambulatory_capacity": 2,
                "cruise_speed_kmh": 60,
                "readiness_minutes": 5,
                "base": {"lat": 4.36, "lon": 18.55},
            }
        ),
    ),
    Row("GET", f"{A}/assets/<asset_id>", *FLEET_READ, _asset),
    Row("PATCH", f"{A}/assets/<asset_id>", *FLEET_WRITE, lambda w: _asset(w, json={"readiness_minutes": 15})),
    Row(
        "POST",
        f"{A}/assets/<asset_id>/positions",
        (403, 202, 403, 403, 403, 403, 401),
        (403, 404, 403, 403, 403, 403, 401),
        lambda w: _asset(w, json={"lat": 4.40, "lon": 18.53}),
    ),
    Row("GET", f"{A}/assets/<asset_id>/positions", *FLEET_READ, _asset),
    Row(
        "POST",
        f"{A}/assets/<asset_id>/device-token",
        (201, 201, 403, 403, 403, 201, 401),
        (404, 404, 403, 403, 403, 201, 401),
        _asset,
    ),
    Row(
        "DELETE",
        f"{A}/assets/<asset_id>/device-token",
        (204, 204, 403, 403, 403, 204, 401),
        (404, 404, 403, 403, 403, 204, 401),
        _asset,
    ),
    Row("GET", f"{A}/facilities", FLEET_LIST, FLEET_LIST),
    Row(
        "POST",
        f"{A}/facilities",
        FLEET_CREATE,
        FLEET_CREATE,
        lambda w: Req(
            json={"name": unique("Level 1 "), "level": "1", "capabilities": [], "location": {"lat": 4.35, "lon": 18.5}}
        ),
    ),
    Row("GET", f"{A}/facilities/<facility_id>", *FLEET_READ, _facility),
    Row("PATCH", f"{A}/facilities/<facility_id>", *FLEET_WRITE, lambda w: _facility(w, json={"beds_available": 3})),
    Row("GET", f"{C}/requests/<request_id>/recommendations", *FLEET_WRITE, _request),
    Row("POST", f"{C}/requests/<request_id>/dispatch", *FLEET_WRITE, _awaiting_dispatch),
    Row(
        "POST",
        f"{C}/plan",
        (200, 200, 403, 403, 403, 200, 401),
        (200, 200, 403, 403, 403, 200, 401),
        lambda w: Req(json={}),
    ),
]
MATRIX += FLEET


def _gateway(w: World) -> Req:
    body = w.api("POST", "/api/v1/casevac/gateways", "admin", json={"name": unique("gw-"), "kind": "sms"})
    return Req(path={"gateway_id": body["id"]})


# Field links (casevac.links): admins issue and revoke gateway secrets; the intake endpoints take a gateway
# secret, never a user's token (401 for every role; tests/casevac/links/test_intake.py covers the secrets).
GATEWAY_401 = (401,) * 7
LINKS = [
    Row(
        "POST",
        f"{C}/gateways",
        (201, 403, 403, 403, 403, 201, 401),
        (201, 403, 403, 403, 403, 201, 401),
        lambda w: Req(json={"name": unique("gw-"), "kind": "sms"}),
    ),
    Row("GET", f"{C}/gateways", ADMIN_200, ADMIN_200),
    Row(
        "DELETE",
        f"{C}/gateways/<gateway_id>",
        (204, 403, 403, 403, 403, 204, 401),
        (404, 403, 403, 403, 403, 204, 401),
        _gateway,
    ),
    Row(
        "POST",
        f"{C}/sms",
        GATEWAY_401,
        GATEWAY_401,
        lambda w: Req(json={"from": "+23670123456", "text": "1", "message_id": unique("m")}),
    ),
    Row("POST", f"{C}/sms/twilio", GATEWAY_401, GATEWAY_401),
    Row("POST", f"{C}/sms/smssync", GATEWAY_401, GATEWAY_401),
    # SMSSync's task check authenticates the gateway secret, never a user token.
    Row("GET", f"{C}/sms/smssync", GATEWAY_401, GATEWAY_401, lambda w: Req(query={"task": "send"})),
    Row("POST", f"{C}/sbd", GATEWAY_401, GATEWAY_401),
]
MATRIX += LINKS

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


# Authorisation does not depend on the backend, and the matrix makes ~1,000 calls: it runs once, on PostgreSQL
# (production's database, mandatory in CI); the domains' own tests cover both backends.
@pytest.mark.parametrize("app", ["postgresql"], indirect=True)
def test_every_endpoint_as_every_role_from_every_mission(app, client, make_user, headers, frozen_clock):
    routes = route_table(app)
    declared = {(row.method, row.rule) for row in MATRIX}
    missing = sorted(routes - declared)
    assert not missing, "routes without a row in MATRIX (declare who may call them):\n" + "\n".join(
        f"  {m} {r}" for m, r in missing
    )
    landed = {_area(r) for _, r in routes}
    pending = {(row.method, row.rule) for row in MATRIX if row.pending}
    stale = sorted((m, r) for m, r in declared - routes - pending if _area(r) is None or _area(r) in landed)
    assert not stale, f"MATRIX rows for routes that do not exist (renamed or removed?): {stale}"

    frozen_clock(World.T0)
    world = World(client, make_user, headers)
    mismatches = []
    calls = 0
    for row in MATRIX:
        if (row.method, row.rule) not in routes:
            continue  # its area has not landed yet
        # A GET changes nothing (audited reads add rows, not state): one record serves its 14 calls.
        shared = row.make(world) if row.method == "GET" else None
        for scope, expected in (("own", row.own), ("other", row.other)):
            for role, want in zip(ROLES, expected, strict=False):
                req = shared or row.make(world)
                if req.data is not None:
                    body = {"data": req.data, "content_type": "multipart/form-data"}
                else:
                    body = {"json": req.json}
                response = client.open(
                    _url(row.rule, req.path),
                    method=row.method,
                    query_string=req.query,
                    headers=world.auth(scope, role),
                    **body,
                )
                calls += 1
                if response.status_code != want:
                    mismatches.append(
                        f"{row.method} {row.rule}{' [' + row.variant + ']' if row.variant else ''} as {role} "
                        f"({scope} mission): expected {want}, "
                        f"got {response.status_code} {response.get_data(as_text=True)[:200]}"
                    )
    assert not mismatches, f"{len(mismatches)} of {calls} calls differ from MATRIX:\n" + "\n".join(mismatches)
    assert calls >= 14 * 10


def test_the_matrix_notices_a_new_endpoint():
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
