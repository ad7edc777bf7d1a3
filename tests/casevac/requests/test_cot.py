"""Cursor-on-Target export (DOMAIN.md section 7)."""

import xml.etree.ElementTree as ET

from casevac.tak.codec import reading, stream
from tests.casevac.conftest import CASUALTY, FULL_LINES, body
from tests.helpers import assert_error


def test_cot_event_carries_the_nine_line_and_one_zmist_per_casualty(client, headers, medic, coordinator, make_user):
    second = {"zap": "A-2", "mechanism": "gunshot", "injuries": ["chest"], "signs": {"pulse": 90}}
    filed = client.post(
        "/api/v1/casevac/requests",
        json=body(casualties=[CASUALTY, second], remarks="hot LZ <north>", **FULL_LINES),
        headers=headers(medic),
    ).get_json()
    response = client.get(f"/api/v1/casevac/requests/{filed['id']}/cot", headers=headers(coordinator))
    assert response.status_code == 200 and response.mimetype == "application/xml"
    root = ET.fromstring(response.get_data())
    assert root.tag == "event" and root.get("type") == "b-r-f-h-c" and root.get("uid") == f"medevac-{filed['id']}"
    point = root.find("point")
    assert float(point.get("lat")) == 4.3612 and float(point.get("lon")) == 18.555
    medevac = root.find("detail/_medevac_")
    assert medevac.get("freq") == "38.90" and medevac.get("urgent") == "1" and medevac.get("urgent_surgical") == "1"
    assert medevac.get("hoist") == "true" and medevac.get("equipment_none") == "false"
    assert medevac.get("litter") == "2" and medevac.get("security") == "1" and medevac.get("hlz_marking") == "2"
    assert medevac.get("us_military") == "2" and medevac.get("terrain_other") == "true"
    assert medevac.get("medline_remarks") == "hot LZ <north>"  # escaped on the wire, intact when parsed
    mists = medevac.findall("zMistsMap/zMist")
    assert [m.get("z") for m in mists] == ["A-1", "A-2"]
    assert mists[0].get("m") == "blast" and "HR 128" in mists[0].get("s") and "tourniquet" in mists[0].get("t")
    assert_error(client.get(f"/api/v1/casevac/requests/{filed['id']}/cot", headers=headers(make_user("medic"))), 404)


def test_cot_export_is_the_gateway_marker_and_decodes_back_to_the_filed_lines(client, headers, medic, coordinator):
    """One writer (casevac.tak.codec.writing.medevac): the export carries the lines ATAK has no field for and
    the gateway's flow tag, so the TAK gateway reads it back exactly and takes it for its own echo."""
    lines = dict(suffix="A", marking="other", marking_detail="orange panel", cbrn=["chemical"], security="N")
    filed = client.post("/api/v1/casevac/requests", json=body(**lines), headers=headers(medic)).get_json()
    response = client.get(f"/api/v1/casevac/requests/{filed['id']}/cot", headers=headers(coordinator))
    assert response.get_data().startswith(b"<?xml ")
    event = reading.classify(stream.parse(response.get_data()))
    assert event.own and event.kind == "medevac"
    decoded = reading.nine_line(event)
    assert decoded.notes == [] and {name: decoded.body.get(name) for name in lines} == lines
    assert event.element.find("detail/_medevac_").get("hlz_other") == "orange panel"
