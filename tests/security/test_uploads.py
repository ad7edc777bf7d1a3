"""Uploads are never served with an executable or renderable content type (issue 8, security review): the type
is read from the content, only JPEG, PNG and PDF are kept, and downloads are attachments with nosniff."""

from __future__ import annotations

import io

import pytest

from tests.security.test_authz_matrix import PNG, World

ACCEPTED = {"image/jpeg", "image/png", "application/pdf"}
HOSTILE = {
    "elf-renamed.jpg": b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 120,
    "pe-renamed.png": b"MZ\x90\x00\x03\x00\x00\x00\x04\x00" + b"\x00" * 120,
    "page.pdf": b"<!DOCTYPE html><html><script>alert(document.cookie)</script></html>",
    "vector.png": b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>',
    "script.jpg": b"#!/bin/sh\nrm -rf /\n",
    "archive.pdf": b"PK\x03\x04" + b"\x00" * 120,
}


@pytest.fixture
def world(client, make_user, headers, frozen_clock):
    frozen_clock(World.T0)
    return World(client, make_user, headers)


def _upload(world, consultation_id, name, content):
    return world.client.post(
        f"/api/v1/telemed/consultations/{consultation_id}/attachments",
        headers=world.as_("medic"),
        content_type="multipart/form-data",
        data={"file": (io.BytesIO(content), name)},
    )


def test_executable_and_renderable_uploads_are_refused_whatever_their_name(world):
    consultation = world.consultation("diagnostic")["id"]
    for name, content in HOSTILE.items():
        response = _upload(world, consultation, name, content)
        assert response.status_code == 415, (name, response.status_code, response.get_data(as_text=True)[:200])
    listed = world.client.get(
        f"/api/v1/telemed/consultations/{consultation}/attachments", headers=world.as_("medic")
    ).get_json()
    assert listed["items"] == []


def test_a_download_is_an_attachment_of_the_detected_type_with_nosniff(world):
    consultation = world.consultation("diagnostic")["id"]
    # A PNG named like a web page: stored and served as what its content is, never as HTML.
    created = _upload(world, consultation, "report.html", PNG + b"<script>alert(1)</script>")
    assert created.status_code == 201, created.get_data(as_text=True)
    download = world.client.get(
        f"/api/v1/telemed/consultations/{consultation}/attachments/{created.get_json()['id']}",
        headers=world.as_("clinician"),
    )
    assert download.status_code == 200
    assert download.mimetype in ACCEPTED and download.mimetype == "image/png"
    assert download.headers["Content-Disposition"].startswith("attachment;")
    assert ".html" not in download.headers["Content-Disposition"]
    assert download.headers["X-Content-Type-Options"] == "nosniff"
    assert "default-src 'none'" in download.headers["Content-Security-Policy"]
