"""Smaller correctness gaps (issue 17, item 7), on SQLite and PostgreSQL: one rule for numbers in JSON bodies,
one form per 9-line line 6 and 9, 409 bodies that keep `status` for the HTTP reason phrase, a consultation's
patient.casualty_id checked."""

from __future__ import annotations

import pytest

from core.errors import payload
from tests.casevac.conftest import CASUALTY, body
from tests.casevac.fleet.factories import AssetFactory
from tests.helpers import assert_error
from tests.telemed.conftest import book, make_clinician, now_frozen  # noqa: F401 - fixtures

R = "/api/v1/casevac/requests"


# -- numbers -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "location, field", [({"lat": "4.36", "lon": 18.55}, "lat"), ({"lat": 4.36, "lon": "18.55"}, "lon")]
)
def test_a_number_sent_as_a_string_is_refused_for_coordinates_as_for_counts(client, medic, headers, location, field):
    assert_error(client.post(R, json=body(location=location), headers=headers(medic)), 422, ("location", field))
    assert_error(client.post(R, json=body(litter="2"), headers=headers(medic)), 422, ("litter",))


def test_position_reports_follow_the_same_rule(client, coordinator, headers):
    asset = AssetFactory(mission_id=coordinator.mission_id)
    url = f"/api/v1/assets/{asset.id}/positions"
    assert_error(client.post(url, json={"lat": "4.36", "lon": 18.55}, headers=headers(coordinator)), 422, ("lat",))
    assert client.post(url, json={"lat": 4.36, "lon": 18.55}, headers=headers(coordinator)).status_code == 202


def test_query_strings_are_still_numbers_written_as_text(client, coordinator, headers):
    response = client.get(R, query_string={"limit": "5"}, headers=headers(coordinator))
    assert response.status_code == 200


# -- lines 6 and 9: one form each --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "lines, field",
    [
        ({"security": "N", "wounds": "gunshot wound, left arm"}, "wounds"),
        ({"cbrn": ["chemical"], "terrain": "open field"}, "terrain"),
    ],
)
def test_a_filing_with_both_forms_of_a_line_is_422(client, medic, headers, lines, field):
    assert_error(client.post(R, json=body(**lines), headers=headers(medic)), 422, (field,))
    assert_error(
        client.patch(f"{R}/{_filed(client, medic, headers)}", json=lines, headers=headers(medic)), 422, (field,)
    )


def _filed(client, user, headers, **lines) -> str:
    response = client.post(R, json=body(**lines), headers=headers(user))
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()["id"]


def test_a_patch_adding_the_other_form_of_a_stored_line_is_422_unless_it_clears_it(client, medic, headers):
    request_id = _filed(client, medic, headers, security="N", cbrn=["chemical"])
    assert_error(client.patch(f"{R}/{request_id}", json={"wounds": "burns"}, headers=headers(medic)), 422, ("wounds",))
    assert_error(
        client.patch(f"{R}/{request_id}", json={"terrain": "marsh"}, headers=headers(medic)), 422, ("terrain",)
    )
    switched = client.patch(
        f"{R}/{request_id}",
        json={"wounds": "burns", "security": None, "terrain": "marsh", "cbrn": None},
        headers=headers(medic),
    )
    assert switched.status_code == 200, switched.get_data(as_text=True)
    answer = switched.get_json()
    assert (answer["wounds"], answer["security"], answer["terrain"], answer["cbrn"]) == ("burns", None, "marsh", None)


# -- 409 bodies: `status` is the HTTP reason phrase ---------------------------------------------------------------


def test_409_bodies_name_the_records_state_in_current_not_in_status(client, medic, coordinator, headers):
    request_id = _filed(client, medic, headers)
    for status in ("cancelled",):
        moved = client.post(
            f"{R}/{request_id}/status", json={"status": status, "note": "walked out"}, headers=headers(coordinator)
        )
        assert moved.status_code == 200, moved.get_data(as_text=True)
    for response in (
        client.patch(f"{R}/{request_id}", json={"callsign": "X-1"}, headers=headers(coordinator)),
        client.post(f"{R}/{request_id}/status", json={"status": "dispatched"}, headers=headers(coordinator)),
    ):
        conflict = assert_error(response, 409)
        assert conflict["status"] == "Conflict" and conflict["current"] == "cancelled", conflict


def test_an_extra_field_never_replaces_code_status_or_message():
    body_ = payload(409, "taken", status="delivered", current="delivered")
    assert (body_["code"], body_["status"], body_["message"], body_["current"]) == (
        409,
        "Conflict",
        "taken",
        "delivered",
    )


# -- a consultation's patient.casualty_id ------------------------------------------------------------------------


def test_a_consultations_casualty_id_must_be_a_casualty_of_the_mission(
    client, medic, headers, make_clinician, book, now_frozen
):
    from datetime import datetime, timezone

    from tests.factories import MissionFactory, UserFactory

    clinician = make_clinician()
    start = datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)
    unknown = book(medic, clinician, start, patient={"casualty_id": "not-a-casualty"})
    assert_error(unknown, 422, ("patient", "casualty_id"))
    other_medic = UserFactory(role="medic", mission_id=MissionFactory().id)
    foreign = client.post(R, json=body(casualties=[dict(CASUALTY)]), headers=headers(other_medic)).get_json()
    foreign_casualty = foreign["casualties"][0]["id"]
    assert_error(
        book(medic, clinician, start, patient={"casualty_id": foreign_casualty}), 422, ("patient", "casualty_id")
    )
    own = client.post(R, json=body(casualties=[dict(CASUALTY)]), headers=headers(medic)).get_json()
    booked = book(medic, clinician, start, patient={"casualty_id": own["casualties"][0]["id"]})
    assert booked.status_code == 201, booked.get_data(as_text=True)
    assert booked.get_json()["patient"]["casualty_id"] == own["casualties"][0]["id"]


# -- MGRS: polar areas refused, a coarse square kept with its precision ------------------------------------------


@pytest.mark.parametrize("reference", ["ZAH1234", "AAN", "Y TF 12 34", "BAN0000000000"])
def test_polar_mgrs_references_are_refused(client, medic, headers, reference):
    response = client.post(R, json=body(location={"mgrs": reference}), headers=headers(medic))
    assert_error(response, 422, ("location", "mgrs"))


def test_a_100_km_square_is_kept_with_its_precision_a_warning_and_cot_ce(client, medic, coordinator, headers):
    import xml.etree.ElementTree as ET

    response = client.post(R, json=body(location={"mgrs": "34NBK"}), headers=headers(medic))
    assert response.status_code == 201, response.get_data(as_text=True)
    filed = response.get_json()
    assert filed["location"]["mgrs"] == "34NBK" and filed["location"]["precision_m"] == 100000
    assert len(filed["warnings"]) == 1 and "100 km square" in filed["warnings"][0]
    # The point is the centre of the square (50 km east and north of its south-west corner).
    assert 4.0 < filed["location"]["lat"] < 4.3 and 18.6 < filed["location"]["lon"] < 18.9
    shown = client.get(f"{R}/{filed['id']}", headers=headers(coordinator)).get_json()
    assert shown["location"]["precision_m"] == 100000 and shown["warnings"] == filed["warnings"]
    cot = client.get(f"{R}/{filed['id']}/cot", headers=headers(coordinator))
    point = ET.fromstring(cot.get_data()).find("point")
    assert float(point.get("ce")) == pytest.approx(100000 / 2**0.5, rel=1e-3)


@pytest.mark.parametrize(
    "reference, precision, warned",
    [("34NBK2882", 1000, True), ("34NBK285825", 100, False), ("34NBK2863382493", 1, False)],
)
def test_finer_references_keep_their_precision_and_warn_only_above_100_m(
    client, medic, headers, reference, precision, warned
):
    filed = client.post(R, json=body(location={"mgrs": reference}), headers=headers(medic)).get_json()
    assert filed["location"]["precision_m"] == precision and bool(filed["warnings"]) is warned


def test_lat_lon_pickups_have_no_warning_and_an_unknown_ce(client, medic, coordinator, headers):
    import xml.etree.ElementTree as ET

    filed = client.post(R, json=body(), headers=headers(medic)).get_json()
    assert filed["warnings"] == [] and filed["location"]["precision_m"] == 1
    cot = client.get(f"{R}/{filed['id']}/cot", headers=headers(coordinator))
    assert ET.fromstring(cot.get_data()).find("point").get("ce") == "9999999.0"
