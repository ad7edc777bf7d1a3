"""Idempotent filing over a poor link: client_ref or Idempotency-Key, enforced by a unique constraint."""

import threading

from casevac.requests.models import CasevacRequest
from config.extensions import db
from realtime.models import Event
from tests.casevac.conftest import CASUALTY, body
from tests.helpers import assert_error

URL = "/api/v1/casevac/requests"


def count_requests() -> int:
    return db.session.execute(db.select(db.func.count()).select_from(CasevacRequest)).scalar()


def test_same_client_ref_same_body_returns_the_original(client, headers, medic):
    payload = body(client_ref="7b0c-1", casualties=[CASUALTY])
    first = client.post(URL, json=payload, headers=headers(medic))
    again = client.post(URL, json=payload, headers=headers(medic))
    assert first.status_code == 201 and again.status_code == 200
    assert again.get_json()["id"] == first.get_json()["id"] and again.get_json()["client_ref"] == "7b0c-1"
    # A retry with the keys in another order and the same instant written differently is the same body.
    reordered = dict(reversed(list(payload.items())))
    reordered["casualties"] = [{**CASUALTY, "time_of_injury": "2026-11-28T10:12:00+01:00"}]
    assert client.post(URL, json=reordered, headers=headers(medic)).status_code == 200
    assert count_requests() == 1
    assert db.session.execute(db.select(db.func.count()).select_from(Event)).scalar() == 1


def test_same_client_ref_other_body_is_a_409(client, headers, medic, make_user):
    first = client.post(URL, json=body(client_ref="r-1"), headers=headers(medic)).get_json()
    conflict = assert_error(
        client.post(URL, json=body(client_ref="r-1", callsign="OTHER"), headers=headers(medic)), 409
    )
    assert conflict["id"] == first["id"]
    # The client_ref is per user: another medic may use the same one.
    assert client.post(URL, json=body(client_ref="r-1"), headers=headers(make_user("medic"))).status_code == 201
    assert count_requests() == 2


def test_idempotency_key_header_acts_as_client_ref(client, headers, medic):
    h = {**headers(medic), "Idempotency-Key": "key-42"}
    first = client.post(URL, json=body(), headers=h)
    assert first.status_code == 201 and first.get_json()["client_ref"] == "key-42"
    assert client.post(URL, json=body(), headers=h).status_code == 200
    assert client.post(URL, json=body(client_ref="key-42"), headers=headers(medic)).status_code == 200
    assert_error(client.post(URL, json=body(litter=1, ambulatory=1), headers=h), 409)
    assert_error(client.post(URL, json=body(client_ref="other"), headers=h), 422, ("client_ref",))
    assert_error(
        client.post(URL, json=body(), headers={**headers(medic), "Idempotency-Key": "x" * 65}),
        422,
        ("Idempotency-Key",),
        location="headers",
    )
    assert count_requests() == 1


def test_without_client_ref_every_filing_is_new(client, headers, medic):
    assert client.post(URL, json=body(), headers=headers(medic)).status_code == 201
    assert client.post(URL, json=body(), headers=headers(medic)).status_code == 201
    assert count_requests() == 2


def test_twenty_parallel_identical_submissions_make_one_request(pg_app, pg_make_user, headers):
    medic = pg_make_user("medic")
    auth = headers(medic)
    payload = body(client_ref="burst-1", casualties=[CASUALTY])
    barrier = threading.Barrier(20)
    responses = []

    def submit():
        client = pg_app.test_client()
        barrier.wait()
        response = client.post(URL, json=payload, headers=auth)
        responses.append((response.status_code, (response.get_json() or {}).get("id")))

    threads = [threading.Thread(target=submit) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    codes = sorted(code for code, _ in responses)
    assert codes == [200] * 19 + [201], responses
    assert len({request_id for _, request_id in responses}) == 1
    db.session.expire_all()
    assert count_requests() == 1
    assert db.session.execute(db.select(db.func.count()).select_from(Event)).scalar() == 1
