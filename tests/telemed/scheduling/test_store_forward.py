"""Store-and-forward: attachments checked from their content, size cap, replies and the response clock."""

from __future__ import annotations

import io
import struct
import zlib
from datetime import timedelta
from pathlib import Path

from tests.helpers import assert_error

API = "/api/v1/telemed"


def png_bytes() -> bytes:
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = b"\x00\xff\x00\x00"  # one red pixel
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + b"\x00" * 64 + b"\xff\xd9"
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
ELF = b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 120
WINDOWS_EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 112


def _async_consult(book, make_clinician, make_user):
    dermatologist = make_clinician(specialties=["dermatology"])
    medic = make_user("medic")
    resp = book(medic, dermatologist, None, modality="async", reason="rash on forearm, photos attached")
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json(), dermatologist, medic


def upload(client, headers, user, cid, data, name):
    return client.post(
        f"{API}/consultations/{cid}/attachments",
        headers=headers(user),
        data={"file": (io.BytesIO(data), name)},
        content_type="multipart/form-data",
    )


def test_images_and_pdf_are_stored_under_random_names_and_served_as_attachments(
    app, client, make_clinician, make_user, book, headers, now_frozen, tmp_path
):
    app.extensions["settings"] = settings = app.extensions["settings"].with_(UPLOAD_DIR=str(tmp_path))
    consult, dermatologist, medic = _async_consult(book, make_clinician, make_user)
    cid = consult["id"]
    for data, name, mime in (
        (png_bytes(), "lesion.png", "image/png"),
        (JPEG, "close-up.jpeg", "image/jpeg"),
        (PDF, "../../etc/report.pdf", "application/pdf"),
    ):
        resp = upload(client, headers, medic, cid, data, name)
        assert resp.status_code == 201, resp.get_json()
        body = resp.get_json()
        assert body["content_type"] == mime and body["size_bytes"] == len(data)
        stored = list(Path(settings.UPLOAD_DIR).iterdir())
        assert all(p.name not in name and "/" not in body["filename"] for p in stored)
        got = client.get(f"{API}/consultations/{cid}/attachments/{body['id']}", headers=headers(dermatologist.user))
        assert got.status_code == 200 and got.data == data and got.mimetype == mime
        assert got.headers["Content-Disposition"].startswith("attachment")
        assert got.headers["X-Content-Type-Options"] == "nosniff"
    listed = client.get(f"{API}/consultations/{cid}/attachments", headers=headers(dermatologist.user)).get_json()
    assert len(listed["items"]) == 3
    assert_error(client.get(f"{API}/consultations/{cid}/attachments", headers=headers(make_user("medic"))), 404)


def test_executables_renamed_as_images_are_refused(
    app, client, make_clinician, make_user, book, headers, now_frozen, tmp_path
):
    app.extensions["settings"] = app.extensions["settings"].with_(UPLOAD_DIR=str(tmp_path))
    consult, _, medic = _async_consult(book, make_clinician, make_user)
    for data, name in (
        (ELF, "photo.jpg"),
        (WINDOWS_EXE, "scan.png"),
        (b"<script>alert(1)</script>", "x.pdf"),
        (b"#!/bin/sh\nrm -rf /\n", "wound.jpeg"),
    ):
        body = assert_error(upload(client, headers, medic, consult["id"], data, name), 415)
        assert body["allowed"] == ["image/jpeg", "image/png", "application/pdf"]
    assert list(tmp_path.iterdir()) == []
    resp = client.post(f"{API}/consultations/{consult['id']}/attachments", headers=headers(medic), json={"file": "x"})
    assert_error(resp, 415)  # JSON is not multipart
    resp = client.post(
        f"{API}/consultations/{consult['id']}/attachments",
        headers=headers(medic),
        data={"other": "x"},
        content_type="multipart/form-data",
    )
    assert_error(resp, 422, ("file",), location="files")


def test_upload_over_the_size_cap_is_413(app, client, make_clinician, make_user, book, headers, now_frozen, tmp_path):
    app.extensions["settings"] = app.extensions["settings"].with_(UPLOAD_DIR=str(tmp_path), MAX_UPLOAD_MB=1)
    consult, _, medic = _async_consult(book, make_clinician, make_user)
    big = JPEG[:-2] + b"\x00" * (1024 * 1024) + b"\xff\xd9"
    assert_error(upload(client, headers, medic, consult["id"], big, "big.jpg"), 413)
    fits = JPEG[:-2] + b"\x00" * (1024 * 1024 - len(JPEG)) + b"\xff\xd9"
    assert upload(client, headers, medic, consult["id"], fits, "fits.jpg").status_code == 201


def test_reply_stops_the_response_clock_and_metrics_report_the_median(
    client, make_clinician, make_user, book, headers, frozen_clock, now_frozen
):
    dermatologist = make_clinician(specialties=["dermatology"])
    medic = make_user("medic")
    waits_hours = [2, 10, 30]
    ids = []
    for i, _hours in enumerate(waits_hours):
        frozen_clock(now_frozen + timedelta(minutes=i))
        ids.append(book(medic, dermatologist, None, modality="async").get_json()["id"])
    book(medic, dermatologist, None, modality="async")  # never answered
    for cid, hours, i in zip(ids, waits_hours, range(3), strict=False):
        # A message from the medic does not stop the clock; the clinician's first reply does.
        frozen_clock(now_frozen + timedelta(minutes=i, hours=hours - 1))
        client.post(f"{API}/consultations/{cid}/replies", json={"text": "more photos"}, headers=headers(medic))
        frozen_clock(now_frozen + timedelta(minutes=i, hours=hours))
        resp = client.post(
            f"{API}/consultations/{cid}/replies",
            json={"text": "eczema; hydrocortisone 1%"},
            headers=headers(dermatologist.user),
        )
        assert resp.status_code == 201
        frozen_clock(now_frozen + timedelta(minutes=i, hours=hours + 5))
        client.post(
            f"{API}/consultations/{cid}/replies", json={"text": "review in a week"}, headers=headers(dermatologist.user)
        )
    got = client.get(f"{API}/consultations/{ids[0]}", headers=headers(medic)).get_json()
    assert got["response_minutes"] == 120.0
    replies = client.get(f"{API}/consultations/{ids[0]}/replies", headers=headers(medic)).get_json()["items"]
    assert [r["text"] for r in replies] == ["more photos", "eczema; hydrocortisone 1%", "review in a week"]
    metrics = client.get(f"{API}/metrics", headers=headers(make_user("coordinator"))).get_json()
    assert metrics["store_and_forward"] == {"count": 4, "answered": 3, "median_minutes_to_first_reply": 600.0}
    assert metrics["mental_health"] is None
    assert_error(client.get(f"{API}/metrics", headers=headers(medic)), 403)
    assert_error(
        client.post(f"{API}/consultations/{ids[0]}/replies", json={"text": "x"}, headers=headers(make_user("medic"))),
        404,
    )
