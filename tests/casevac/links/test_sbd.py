"""The binary 9-line for Iridium SBD (casevac.links.sbd): the documented layout, sizes, errors, round trips."""

import pytest
from hypothesis import HealthCheck, given, settings

from casevac import geo
from casevac.links import sbd
from casevac.links.sbd import SbdError
from casevac.requests import schemas
from tests.casevac.links.strategies import carried, requests

TYPICAL = {
    "location": {"lat": 4.3612, "lon": 18.555},
    "frequency": "38.90",
    "callsign": "BRAVO26",
    "patients": {"urgent": 1, "urgent_surgical": 1, "priority": 0, "routine": 0, "convenience": 0},
    "equipment": ["hoist"],
    "litter": 2,
    "ambulatory": 0,
}


def test_the_layout_byte_by_byte():
    data = sbd.encode(TYPICAL)
    assert data.hex(" ") == (
        "91 01 00 42 8b f0 01 1b 20 78 "  # magic, kind, lat 4361200, lon 18555000
        "c4 01 01 02 00 "  # A+B present, hoist; 1 A, 1 B; 2 litter, 0 amb.
        "05 33 38 2e 39 30 07 42 52 41 56 4f 32 36 00"
    )  # "38.90", "BRAVO26", no suffix
    assert len(data) == 30
    decoded = sbd.decode(data)
    assert decoded == {**TYPICAL, "kind": "new", "lines": [1, 2, 3, 4, 5]}


def test_lines_1_to_5_fit_in_50_bytes_with_29_bytes_of_line_2():
    every = {
        **TYPICAL,
        "patients": {"urgent": 2, "urgent_surgical": 3, "priority": 4, "routine": 5, "convenience": 6},
        "litter": 11,
        "ambulatory": 9,
        "equipment": ["hoist", "extraction", "ventilator"],
        "frequency": "138.925",
        "callsign": "MINUSCA-ZAMBIA-26",
        "suffix": "A7",
    }  # 26 bytes of line 2
    assert len(sbd.encode(every)) <= sbd.LINES_1_TO_5_BUDGET


def test_lines_6_to_9_and_casualties_when_room_allows():
    full = {
        **TYPICAL,
        "security": "P",
        "marking": "smoke",
        "nationality": {"un_military": 2},
        "cbrn": [],
        "casualties": [
            {
                "zap": "A-1",
                "age": 27,
                "mechanism": "blast",
                "precedence": "urgent_surgical",
                "time_of_injury": "2026-11-28T09:12:00Z",
                "injuries": ["left leg amputation"],
                "signs": {"pulse": 128, "resp_rate": 26, "spo2": 91, "sbp": 85, "avpu": "V"},
                "treatments": [{"code": "tourniquet"}],
            }
        ]
        * 2,
    }
    data = sbd.encode(full)
    decoded = sbd.decode(data)
    assert decoded["lines"] == [1, 2, 3, 4, 5, 6, 7, 8, 9]
    assert decoded["casualties"] == full["casualties"]
    short = sbd.encode(full, max_bytes=len(data) - 1)  # no room for the second casualty: left out
    assert len(sbd.decode(short)["casualties"]) == 1
    with pytest.raises(SbdError):
        sbd.encode({**TYPICAL, "terrain": "x" * 300})


def test_a_completion_carries_only_sections():
    data = sbd.encode({"security": "N", "terrain": "open ground"}, kind=sbd.KIND_COMPLETE)
    assert data[:2] == bytes([0x91, 0x02])
    assert sbd.decode(data) == {"security": "N", "terrain": "open ground", "kind": "complete", "lines": [6, 9]}


@pytest.mark.parametrize(
    "data,where",
    [
        (b"", "header"),
        (b"\x90\x01", "header"),
        (b"\x91\x07", "kind"),
        (bytes.fromhex("9101 00428bf0 011b2078 c4 01"), "line 3"),
        (bytes.fromhex("9101 00428bf0 011b2078 c4 0101 0300 00 00 00"), "line 5"),
        (bytes.fromhex("9101 00428bf0 011b2078 00 00 00 00 00 00"), "line 3"),
        (bytes.fromhex("9101 7fffffff 011b2118 80 01 0100 00 00 00"), "line 1"),
        (bytes.fromhex("9101 00428bf0 011b2078 80 01 0100 05 3338 0000"), "line 2 frequency"),
        (bytes.fromhex("9102 0651"), "line 6 security"),
        (bytes.fromhex("9102 0709"), "line 7 marking"),
        (bytes.fromhex("9102 ff"), "section"),
        (bytes.fromhex("9102 0c 1000 ff"), "casualty 1 mechanism"),
        (bytes.fromhex("9102 16 02 ffff"), "line 6 wounds"),
    ],
)
def test_errors_name_the_part(data, where):
    with pytest.raises(SbdError) as raised:
        sbd.decode(data)
    assert raised.value.where == where


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=requests(with_casualties=True))
def test_round_trip_of_every_9_line_the_api_accepts(body):
    data = sbd.encode(body, max_bytes=100_000)
    decoded = sbd.decode(data)
    assert decoded.pop("kind") == "new"
    decoded.pop("lines")
    accepted = schemas.RequestIn().load(decoded)
    assert carried(accepted) == carried(body)
    assert accepted.get("remarks") in (body.get("remarks") or None, body.get("remarks"))
    # Line 1 to the microdegree (0.11 m).
    a, b = geo.parse_location(body["location"]), accepted["location"]
    assert abs(a.lat - b["lat"]) <= 5e-7 and abs(((a.lon - b["lon"]) + 180) % 360 - 180) <= 5e-7
    assert _casualties(accepted) == _casualties(body)


def _casualties(body):
    out = []
    for casualty in body.get("casualties") or []:
        item = {k: v for k, v in casualty.items() if v not in (None, [], "")}
        if "time_of_injury" in item:
            item["time_of_injury"] = item["time_of_injury"].isoformat()
        item["treatments"] = [t["code"] for t in casualty.get("treatments") or []]
        out.append(item)
    return out


@settings(max_examples=200, deadline=None)
@given(data=__import__("hypothesis").strategies.binary(max_size=120))
def test_any_bytes_decode_or_raise_sbd_error(data):
    try:
        sbd.decode(bytes([0x91]) + data)
    except SbdError:
        pass
