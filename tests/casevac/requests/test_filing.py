"""Filing a 9-line request: every code of every line accepted, every bad value a 422 naming the field."""

import pytest

from casevac import codes
from casevac.requests.models import PRECEDENCES
from core.models import AuditEntry
from realtime.models import Event
from tests.casevac.conftest import CASUALTY, FULL_LINES, body
from tests.helpers import assert_error

URL = "/api/v1/casevac/requests"


def one_patient(precedence: str) -> dict:
    return {name: int(name == precedence) for name in PRECEDENCES}


def test_lines_1_to_5_alone_are_accepted_and_6_to_9_completed_later(client, headers, medic, file_request):
    filed = file_request()
    assert filed["status"] == "requested" and filed["lines_complete"] is False
    assert filed["missing_lines"] == [6, 7, 8, 9]
    assert filed["location"] == {
        "lat": 4.3612,
        "lon": 18.555,
        "mgrs": "34NBK2863382493",
        "source": "latlon",
        "precision_m": 1.0,
    }
    assert filed["precedence"] == "urgent" and filed["filed_by"] == medic.id and filed["mission_id"] == medic.mission_id
    assert filed["asset_id"] is None and filed["facility_id"] is None
    assert [h["status"] for h in filed["history"]] == ["requested"]
    url = f"{URL}/{filed['id']}"
    partial = client.patch(url, json={"security": "N", "marking": "panels"}, headers=headers(medic))
    assert partial.status_code == 200 and partial.get_json()["missing_lines"] == [8, 9]
    done = client.patch(
        url, json={"nationality": {"un_police": 1, "civilian": 1}, "cbrn": ["chemical"]}, headers=headers(medic)
    ).get_json()
    assert done["lines_complete"] is True and done["missing_lines"] == []
    assert done["cbrn"] == ["chemical"] and done["nationality"] == {"un_police": 1, "civilian": 1}
    assert client.get(url, headers=headers(medic)).get_json()["lines_complete"] is True


def test_filing_writes_audit_and_event_in_the_same_transaction(app, file_request, medic):
    from config.extensions import db

    filed = file_request()
    events = db.session.execute(db.select(Event).where(Event.type == "casevac.created")).scalars().all()
    assert len(events) == 1
    event = events[0]
    assert event.data["id"] == filed["id"] and event.mission_id == medic.mission_id
    assert f"mission:{medic.mission_id}:role:coordinator" in event.rooms and f"user:{medic.id}" in event.rooms
    assert "remarks" not in event.data and "casualties" not in event.data
    audit = db.session.execute(db.select(AuditEntry).where(AuditEntry.subject_id == filed["id"])).scalars().all()
    assert [a.action for a in audit] == ["casevac.file"]


@pytest.mark.parametrize(
    "precedence,hours", [("urgent", 1), ("urgent_surgical", 1), ("priority", 4), ("routine", 24), ("convenience", None)]
)
def test_precedence_is_the_most_urgent_present_and_sets_the_deadline(file_request, precedence, hours):
    from datetime import datetime

    filed = file_request(patients=one_patient(precedence), litter=1, ambulatory=0)
    assert filed["precedence"] == precedence
    if hours is None:
        assert filed["deadline"] is None
    else:
        created = datetime.fromisoformat(filed["created_at"])
        assert (datetime.fromisoformat(filed["deadline"]) - created).total_seconds() == hours * 3600
    mixed = file_request(patients={"routine": 2, "priority": 1, "convenience": 1}, litter=2, ambulatory=2)
    assert mixed["precedence"] == "priority"


def test_every_code_of_every_line_is_accepted(client, headers, medic):
    def ok(**overrides):
        response = client.post(URL, json=body(**overrides), headers=headers(medic))
        assert response.status_code == 201, (overrides, response.get_json())
        return response.get_json()

    for precedence in PRECEDENCES:  # line 3
        assert ok(patients=one_patient(precedence), litter=1, ambulatory=0)["patients"][precedence] == 1
    for equipment in [[], ["none"], ["hoist"], ["extraction"], ["ventilator"], ["hoist", "extraction", "ventilator"]]:
        expected = [e for e in equipment if e != "none"]  # line 4: A none is the empty list
        assert ok(equipment=equipment)["equipment"] == expected
    assert ok(equipment=["hoist", "hoist"])["equipment"] == ["hoist"]
    assert ok(litter=0, ambulatory=2)["ambulatory"] == 2  # line 5
    for security in codes.SECURITY:  # line 6 (wartime)
        assert ok(security=security)["security"] == security
    assert ok(wounds="2 gunshot wounds")["missing_lines"] == [7, 8, 9]  # line 6 (peacetime)
    for marking in codes.MARKING:  # line 7
        assert ok(marking=marking)["marking"] == marking
    for category in codes.NATIONALITY_CATEGORIES:  # line 8
        assert ok(nationality={category: 2})["nationality"] == {category: 2}
    for cbrn in codes.CBRN:  # line 9 (wartime)
        assert ok(cbrn=[cbrn])["cbrn"] == [cbrn]
    assert ok(cbrn=[])["missing_lines"] == [6, 7, 8]  # "no contamination" completes line 9
    assert ok(terrain="rocky ridge")["terrain"] == "rocky ridge"  # line 9 (peacetime)
    assert ok(suffix="A", remarks="hot LZ")["suffix"] == "A"
    assert ok(location={"mgrs": "34N BK 28633 82493"})["location"]["source"] == "mgrs"
    text = ok(location={"text": "4°21'40\"N 18°33'18\"E"})["location"]
    assert text["source"] == "text" and text["mgrs"] == "34NBK2863382483" and text["text"]


INVALID = [
    # (overrides, field path inside errors.json)
    ({"location": None}, ("location",)),
    ({"location": {}}, ("location", "_schema")),
    ({"location": {"lat": 91, "lon": 0}}, ("location", "lat")),
    ({"location": {"lat": 0, "lon": -181}}, ("location", "lon")),
    ({"location": {"lat": "north", "lon": 0}}, ("location", "lat")),
    ({"location": {"lat": 4.0}}, ("location", "lon")),
    ({"location": {"mgrs": "99ZZZ"}}, ("location", "mgrs")),
    ({"location": {"mgrs": ""}}, ("location", "mgrs")),
    ({"location": {"text": "somewhere near the river"}}, ("location", "text")),
    ({"location": {"text": ""}}, ("location", "text")),
    ({"location": {"lat": 1, "lon": 1, "text": "1, 1"}}, ("location", "_schema")),
    ({"location": {"altitude": 3}}, ("location", "altitude")),
    ({"callsign": None}, ("callsign",)),
    ({"callsign": ""}, ("callsign",)),
    ({"frequency": None}, ("frequency",)),
    ({"frequency": "1" * 33}, ("frequency",)),
    ({"patients": None}, ("patients",)),
    ({"patients": {"urgent": -1}, "litter": 0}, ("patients", "urgent")),
    ({"patients": {"urgent": 1.5}}, ("patients", "urgent")),
    ({"patients": {"urgent": "1"}}, ("patients", "urgent")),
    ({"patients": {"walking_wounded": 1}}, ("patients", "walking_wounded")),
    ({"patients": {"urgent": 1}, "litter": 2}, ("patients",)),  # line 3 total != line 5 total
    ({"patients": {"urgent": 0}, "litter": 0}, ("patients",)),  # no patient at all
    ({"litter": -1}, ("litter",)),
    ({"litter": None}, ("litter",)),
    ({"ambulatory": None}, ("ambulatory",)),
    ({"litter": 100}, ("litter",)),
    ({"equipment": ["parachute"]}, ("equipment", "0")),
    ({"equipment": ["none", "hoist"]}, ("equipment",)),
    ({"equipment": "hoist"}, ("equipment",)),
    ({"security": "Z"}, ("security",)),
    ({"marking": "flare"}, ("marking",)),
    ({"nationality": {"epw": 1}}, ("nationality",)),
    ({"nationality": {"un_military": -1}}, ("nationality",)),
    ({"nationality": ["un_military"]}, ("nationality",)),
    ({"cbrn": ["toxic"]}, ("cbrn", "0")),
    ({"terrain": "x" * 501}, ("terrain",)),
    ({"client_ref": ""}, ("client_ref",)),
    ({"client_ref": "x" * 65}, ("client_ref",)),
    ({"line_10": "?"}, ("line_10",)),
    ({"casualties": [CASUALTY, CASUALTY, CASUALTY]}, ("casualties",)),  # more casualties than patients
    ({"casualties": [{"precedence": "expectant"}]}, ("casualties", "0", "precedence")),
    ({"casualties": [{"age": 200}]}, ("casualties", "0", "age")),
    ({"casualties": [{"mechanism": "magic"}]}, ("casualties", "0", "mechanism")),
    ({"casualties": [{"time_of_injury": "2026-11-28T09:12:00"}]}, ("casualties", "0", "time_of_injury")),
    ({"casualties": [{"time_of_injury": "2999-01-01T00:00:00Z"}]}, ("casualties", "0", "time_of_injury")),
    ({"casualties": [{"signs": {}}]}, ("casualties", "0", "signs", "_schema")),
    ({"casualties": [{"signs": {"spo2": 101}}]}, ("casualties", "0", "signs", "spo2")),
    ({"casualties": [{"signs": {"avpu": "X"}}]}, ("casualties", "0", "signs", "avpu")),
    ({"casualties": [{"signs": {"gcs": 2}}]}, ("casualties", "0", "signs", "gcs")),
    ({"casualties": [{"treatments": [{"code": "leeches"}]}]}, ("casualties", "0", "treatments", "0", "code")),
    (
        {"casualties": [{"treatments": [{"at": "2026-11-28T09:15:00Z"}]}]},
        ("casualties", "0", "treatments", "0", "code"),
    ),
]


def test_every_invalid_value_is_a_422_naming_the_field(client, headers, medic):
    for overrides, path in INVALID:
        response = client.post(URL, json=body(**overrides), headers=headers(medic))
        assert response.status_code == 422, (overrides, response.get_json())
        error = assert_error(response, 422, path)
        assert error["errors"], overrides
    # Allowed values are listed in the message, so a field client can correct itself.
    listed = client.post(URL, json=body(security="Z"), headers=headers(medic)).get_json()
    assert "N, P, E, X" in listed["errors"]["json"]["security"][0]
    nationality = client.post(URL, json=body(nationality={"epw": 1}), headers=headers(medic)).get_json()
    assert "un_military" in str(nationality["errors"]["json"]["nationality"])
    # Nothing was filed by any of them.
    assert client.get(URL, headers=headers(medic)).get_json()["items"] == []


def test_only_medics_and_coordinators_file(client, headers, make_user):
    for role in ("admin", "clinician", "member"):
        assert_error(client.post(URL, json=body(), headers=headers(make_user(role))), 403)
    assert client.post(URL, json=body(), headers=headers(make_user("coordinator"))).status_code == 201
    assert_error(client.post(URL, json=body()), 401)
    assert_error(
        client.post(
            URL,
            data="callsign=x",
            headers={**headers(make_user("medic")), "Content-Type": "application/x-www-form-urlencoded"},
        ),
        415,
    )


def test_gzip_request_body_is_accepted(client, headers, medic):
    import gzip
    import json

    raw = gzip.compress(json.dumps(body(**FULL_LINES)).encode())
    response = client.post(
        URL, data=raw, headers={**headers(medic), "Content-Type": "application/json", "Content-Encoding": "gzip"}
    )
    assert response.status_code == 201 and response.get_json()["lines_complete"] is True


def test_nationality_categories_are_configurable(client, headers, medic):
    from types import SimpleNamespace

    try:
        codes.configure(SimpleNamespace(NATIONALITY_CATEGORIES="own_military, epw"))
        assert client.post(URL, json=body(nationality={"epw": 1}), headers=headers(medic)).status_code == 201
        assert_error(
            client.post(URL, json=body(nationality={"un_military": 1}), headers=headers(medic)), 422, ("nationality",)
        )
    finally:
        codes.configure(SimpleNamespace(NATIONALITY_CATEGORIES=""))
    assert "child" in codes.NATIONALITY_CATEGORIES and "un_police" in codes.NATIONALITY_CATEGORIES


def test_the_201_answer_is_what_a_later_read_returns_with_times_in_utc(
    client, headers, medic, coordinator, file_request
):
    # The filing answers from the objects it wrote (no reload): they must equal what the database gives back.
    casualty = {
        **CASUALTY,
        "time_of_injury": "2026-11-28T10:12:00+01:00",
        "signs": {**CASUALTY["signs"], "taken_at": "2026-11-28T10:20:00+01:00"},
    }
    second = {key: value for key, value in CASUALTY.items() if key != "signs"} | {"zap": "B-2"}
    filed = file_request(patients={"urgent": 1, "urgent_surgical": 1}, litter=2, casualties=[casualty, second])
    read = client.get(f"{URL}/{filed['id']}", headers=headers(coordinator)).get_json()
    assert filed == read
    assert filed["casualties"][0]["time_of_injury"] == "2026-11-28T09:12:00+00:00"
    detail = client.get(f"/api/v1/casevac/casualties/{filed['casualties'][0]['id']}", headers=headers(medic)).get_json()
    assert detail["signs_history"][0]["taken_at"] == "2026-11-28T09:20:00+00:00"
