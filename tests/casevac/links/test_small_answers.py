"""Small answers (issue 16): gzip when accepted, Prefer: return=minimal, the queue's ?fields= and
?view=compact, ETag/304 polling, JSON answers without the page-only headers."""

import gzip
import json

import pytest

from core.http import SECURITY_HEADERS
from tests.casevac.conftest import body
from tests.helpers import assert_error

URL = "/api/v1/casevac/requests"
GZIP = {"Accept-Encoding": "gzip"}
MINIMAL = {"Prefer": "return=minimal"}


def file_many(client, headers, medic, count):
    for n in range(count):
        response = client.post(URL, json=body(client_ref=f"r-{n}", callsign=f"BRAVO-{n}"), headers=headers(medic))
        assert response.status_code == 201


def test_json_geojson_and_cot_answers_are_gzipped_when_accepted(client, headers, medic, coordinator):
    file_many(client, headers, medic, 3)
    plain = client.get(URL, headers=headers(coordinator))
    zipped = client.get(URL, headers=headers(coordinator, **GZIP))
    assert "Content-Encoding" not in plain.headers
    assert zipped.headers["Content-Encoding"] == "gzip" and "Accept-Encoding" in zipped.headers["Vary"]
    assert json.loads(gzip.decompress(zipped.data)) == plain.get_json()
    assert int(zipped.headers["Content-Length"]) == len(zipped.data) < len(plain.data) / 3
    # The ETag is the content's (weak on the compressed representation): a poll with either gets 304.
    assert zipped.headers["ETag"] == "W/" + plain.headers["ETag"]
    for etag in (plain.headers["ETag"], zipped.headers["ETag"]):
        poll = client.get(URL, headers=headers(coordinator, **GZIP, **{"If-None-Match": etag}))
        assert poll.status_code == 304 and poll.data == b""
    geo = client.get(URL + "?format=geojson", headers=headers(coordinator, **GZIP))
    assert geo.mimetype == "application/geo+json" and geo.headers["Content-Encoding"] == "gzip"
    one = plain.get_json()["items"][0]["id"]
    cot = client.get(f"{URL}/{one}/cot", headers=headers(coordinator, **GZIP))
    assert cot.mimetype == "application/xml" and gzip.decompress(cot.data).startswith(b"<")
    # Small answers and refusals of gzip stay as they are.
    small = client.get("/healthz", headers=GZIP)
    assert "Content-Encoding" not in small.headers
    refused = client.get(URL, headers=headers(coordinator, **{"Accept-Encoding": "gzip;q=0, br"}))
    assert "Content-Encoding" not in refused.headers


def test_json_answers_carry_nosniff_and_cache_control_only(client, headers, medic, coordinator):
    file_many(client, headers, medic, 1)
    answer = client.get(URL, headers=headers(coordinator))
    assert answer.headers["X-Content-Type-Options"] == "nosniff" and answer.headers["Cache-Control"]
    for page_only in ("X-Frame-Options", "Content-Security-Policy", "Referrer-Policy", "Cross-Origin-Resource-Policy"):
        assert page_only not in answer.headers
    error = client.get(URL)
    assert error.status_code == 401 and error.headers["Cache-Control"] == "no-store"
    assert "X-Frame-Options" not in error.headers
    # Other content (CoT XML) keeps every header.
    cot = client.get(f"{URL}/{answer.get_json()['items'][0]['id']}/cot", headers=headers(coordinator))
    assert all(cot.headers.get(k) for k in SECURITY_HEADERS)


def test_prefer_return_minimal_on_filing_patch_and_status(client, headers, medic, coordinator):
    filed = client.post(URL, json=body(client_ref="m-1"), headers=headers(medic, **MINIMAL))
    assert filed.status_code == 201 and filed.headers["Preference-Applied"] == "return=minimal"
    minimal = filed.get_json()
    assert set(minimal) == {"id", "status", "precedence", "seq"}
    assert minimal["status"] == "requested" and minimal["precedence"] == "urgent"
    assert isinstance(minimal["seq"], int) and minimal["seq"] >= 1
    retry = client.post(URL, json=body(client_ref="m-1"), headers=headers(medic, **MINIMAL))
    assert retry.status_code == 200 and retry.get_json() == minimal
    url = f"{URL}/{minimal['id']}"
    patched = client.patch(
        url, json={"security": "N"}, headers=headers(medic, Prefer='respond-async, return="minimal"; x=1')
    )
    assert patched.headers["Preference-Applied"] == "return=minimal"
    assert patched.get_json()["seq"] > minimal["seq"]
    moved = client.post(f"{url}/status", json={"status": "acknowledged"}, headers=headers(coordinator, **MINIMAL))
    assert moved.status_code == 200
    assert moved.get_json()["status"] == "acknowledged" and moved.get_json()["seq"] > patched.get_json()["seq"]
    # Without the preference (or with return=representation) the whole request, as before.
    full = client.post(
        f"{url}/status",
        json={"status": "cancelled", "note": "x"},
        headers=headers(coordinator, Prefer="return=representation"),
    )
    assert "Preference-Applied" not in full.headers and "history" in full.get_json()
    # Errors are never shortened.
    assert_error(
        client.post(f"{url}/status", json={"status": "requested"}, headers=headers(coordinator, **MINIMAL)), 409
    )


def test_the_seq_is_the_one_the_event_stream_carries(app, client, headers, medic):
    from config.extensions import db
    from realtime.models import Event

    minimal = client.post(URL, json=body(), headers=headers(medic, **MINIMAL)).get_json()
    event = db.session.execute(db.select(Event).where(Event.seq == minimal["seq"])).scalar_one()
    assert event.type == "casevac.created" and event.data["id"] == minimal["id"]


def test_queue_fields_and_compact_view(client, headers, medic, coordinator):
    file_many(client, headers, medic, 3)
    picked = client.get(URL + "?fields=id,status,precedence", headers=headers(coordinator)).get_json()
    assert [set(item) for item in picked["items"]] == [{"id", "status", "precedence"}] * 3
    assert "next_cursor" in picked
    full = client.get(URL, headers=headers(coordinator)).get_json()
    compact = client.get(URL + "?view=compact&limit=50", headers=headers(coordinator)).get_json()
    first = compact["items"][0]
    assert first["patients"] == 2 and first["lat"] == 4.3612 and first["updated_at"].endswith("Z")
    assert first["updated_at"][:19] == full["items"][0]["updated_at"][:19]
    assert len(json.dumps(compact)) < len(json.dumps(full)) / 2
    for query, field in (
        ("?fields=id,nope", "fields"),
        ("?fields=", "fields"),
        ("?view=tiny", "view"),
        ("?view=compact&fields=id", "fields"),
    ):
        assert_error(client.get(URL + query, headers=headers(coordinator)), 422, (field,), location="query")


@pytest.mark.parametrize("app", ["sqlite"], indirect=True)
def test_the_queue_page_of_50_is_under_8_kb_compressed(app, client, headers, medic, coordinator):
    file_many(client, headers, medic, 50)
    page = client.get(URL + "?limit=50", headers=headers(coordinator, **GZIP))
    assert len(json.loads(gzip.decompress(page.data))["items"]) == 50
    assert len(page.data) <= 8 * 1024, len(page.data)
