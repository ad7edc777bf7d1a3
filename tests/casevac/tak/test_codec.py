"""The pure CoT codec: golden events from ATAK-CIV and other TAK software, the round trip of every 9-line the
API accepts, hostile XML and the stream splitter."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from marshmallow import ValidationError

from casevac import codes
from casevac.requests import schemas, service
from casevac.tak.codec import reading, stream, vocabulary, writing

GOLDEN = Path(__file__).parent / "golden"
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=timezone.utc)


def decode(data: bytes) -> reading.NineLine:
    return reading.nine_line(reading.classify(stream.parse(data)))


@pytest.mark.parametrize("name", sorted(p.stem for p in GOLDEN.glob("*.xml")))
def test_golden_event_decodes_to_the_expected_nine_line_which_the_api_accepts(name):
    decoded = decode((GOLDEN / f"{name}.xml").read_bytes())
    expected = json.loads((GOLDEN / f"{name}.json").read_text())
    assert decoded.body == expected
    schemas.RequestIn().load(decoded.body)  # what the gateway files passes the API's own validation


def test_atak_civ_names_are_read_as_atak_writes_them():
    body = decode((GOLDEN / "atak_civ.xml").read_bytes()).body
    assert body["patients"]["urgent"] == 2 and body["patients"]["priority"] == 1
    assert body["security"] == "P" and body["marking"] == "smoke"  # indices 1 and 2
    assert body["nationality"] == {"un_military": 2, "civilian": 1, "child": 1}
    assert body["casualties"][0]["signs"]["sbp"] == 85 and body["casualties"][0]["signs"]["dbp"] == 50
    assert "winds from NE 10 kt" in body["remarks"] and "enemy: north 1 km" in body["remarks"]


def test_defaults_are_said_in_the_remarks():
    decoded = decode((GOLDEN / "sparse.xml").read_bytes())
    assert decoded.body["callsign"] == "ECHO-1"  # the sender's callsign when the event has no <contact>
    assert decoded.body["patients"]["urgent"] == 1 and decoded.body["litter"] == 1
    assert decoded.body["remarks"].startswith("[TAK gateway] ") and len(decoded.notes) == 2


def test_event_kinds():
    def kind(xml: str) -> reading.Event:
        return reading.classify(stream.parse(xml))

    position = kind(
        '<event uid="ANDROID-1" type="a-f-G-U-C" time="2026-11-28T12:00:00Z"><point lat="4.4" lon="18.5"/>'
        '<detail><contact callsign="DUSTOFF-1"/><track course="90" speed="10"/></detail></event>'
    )
    assert position.kind == "position" and position.callsign == "DUSTOFF-1" and position.speed_kmh == 36.0
    beacon = kind(
        '<event uid="ANDROID-1-9-1-1" type="b-a-o-tbl"><point lat="4.4" lon="18.5"/><detail>'
        '<link uid="ANDROID-1" relation="p-p" type="a-f-G-U-C"/><contact callsign="BRAVO-2-6-Alert"/>'
        '<emergency type="911 Alert">BRAVO-2-6</emergency></detail></event>'
    )
    assert beacon.kind == "emergency" and beacon.emergency == "911" and beacon.callsign == "BRAVO-2-6"
    cancel = kind(
        '<event uid="ANDROID-1-9-1-1" type="b-a-o-can"><point lat="4.4" lon="18.5"/><detail>'
        '<emergency cancel="true">BRAVO-2-6</emergency></detail></event>'
    )
    assert cancel.kind == "emergency_cancel"
    gone = reading.classify(stream.parse(writing.delete("abc", time=NOW)))
    assert gone.kind == "delete" and gone.target_uid == "abc" and gone.own


@pytest.mark.parametrize(
    "xml",
    [
        b"<event",
        b"<foo uid='1' type='b-r-f-h-c'/>",
        b"<event type='b-r-f-h-c'/>",
        b'<?xml version="1.0"?><!DOCTYPE event [<!ENTITY x "boom">]><event uid="1" type="a">&x;</event>',
        b'<!DOCTYPE event [<!ENTITY x SYSTEM "file:///etc/passwd">]><event uid="1" type="a">&x;</event>',
        b"<event uid='1' type='" + b"x" * (vocabulary.MAX_EVENT_BYTES + 1) + b"'/>",
    ],
)
def test_hostile_or_broken_xml_is_refused(xml):
    with pytest.raises(vocabulary.CotError):
        reading.classify(stream.parse(xml))


def test_medevac_without_a_point_is_refused():
    event = reading.classify(
        stream.parse(b'<event uid="1" type="b-r-f-h-c"><point lat="x" lon="1"/><detail><_medevac_/></detail></event>')
    )
    with pytest.raises(vocabulary.CotError):
        reading.nine_line(event)


def test_stream_splitter_cuts_events_across_reads_and_drops_oversized_ones():
    one = writing.ping(uid="a", time=NOW)
    two = writing.delete("b", time=NOW)
    data = b'<?xml version="1.0" encoding="UTF-8"?>\n' + one + b"\n" + two + b"<event uid='c' type='t-x-c-t'/>"
    splitter = stream.StreamSplitter()
    out = []
    for i in range(0, len(data), 7):
        out += splitter.feed(data[i : i + 7])
    assert out == [one, two, b"<event uid='c' type='t-x-c-t'/>"]
    small = stream.StreamSplitter(max_bytes=100)
    assert small.feed(b"<event uid='x' type='y'>" + b"a" * 200) == []
    assert small.dropped == 1
    assert small.feed(one) == [one]


def test_chat_is_what_atak_and_taky_read_as_a_direct_message():
    root = stream.parse(
        writing.chat(
            sender_uid="gw",
            sender_callsign="MEDEVAC-DEMO",
            to_uid="ANDROID-1",
            to_callsign="BRAVO",
            message_id="m-1",
            text="acknowledged",
            time=NOW,
        )
    )
    assert root.get("type") == "b-t-f" and root.get("uid") == "GeoChat.gw.ANDROID-1.m-1"
    chat = root.find("detail/__chat")
    assert chat.get("id") == "ANDROID-1" and chat.get("chatroom") == "BRAVO" and chat.find("chatgrp") is not None
    assert root.find("detail/link").get("uid") == "gw" and root.find("detail/remarks").text == "acknowledged"


# ---- the round trip: every 9-line the API accepts -> CoT -> the same lines ---------------------

# XML 1.0 cannot carry these even escaped (the encoder replaces them with U+FFFD; tested below).
_TEXT = st.text(
    st.characters(
        blacklist_categories=("Cs",), blacklist_characters="\x00\r\ufffe\uffff" + "".join(map(chr, range(1, 32)))
    ),
    max_size=40,
)
_LONG_TEXT = st.text(
    st.characters(
        blacklist_categories=("Cs",),
        blacklist_characters="\x00\ufffe\uffff" + "".join(chr(c) for c in range(1, 32) if c not in (9, 10)),
    ),
    max_size=200,
)
_COUNT = st.integers(0, 99)
_PAST = st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2026, 11, 1), timezones=st.just(timezone.utc))


@st.composite
def casualties(draw, total):
    out = []
    for _ in range(draw(st.integers(0, min(total, 3)))):
        casualty = draw(
            st.fixed_dictionaries(
                {},
                optional={
                    "zap": _TEXT.filter(lambda s: len(s) <= 32),
                    "age": st.none() | st.integers(0, 120),
                    "sex": st.none() | st.sampled_from(codes.SEXES),
                    "time_of_injury": st.none() | _PAST,
                    "mechanism": st.none() | st.sampled_from(codes.MECHANISMS),
                    "mechanism_detail": st.none() | _TEXT,
                    "injuries": st.lists(_TEXT, max_size=3),
                    "signs": st.fixed_dictionaries(
                        {"pulse": st.integers(0, 300)},
                        optional={
                            "resp_rate": st.integers(0, 99),
                            "spo2": st.integers(0, 100),
                            "sbp": st.integers(0, 300),
                            "dbp": st.integers(0, 250),
                            "gcs": st.integers(3, 15),
                            "avpu": st.sampled_from(codes.AVPU),
                            "temp_c": st.floats(20, 45, allow_nan=False),
                            "taken_at": _PAST,
                        },
                    ),
                    "treatments": st.lists(
                        st.fixed_dictionaries(
                            {"code": st.sampled_from(codes.TREATMENTS)}, optional={"at": _PAST, "detail": _TEXT}
                        ),
                        max_size=3,
                    ),
                    "precedence": st.none() | st.sampled_from(vocabulary.PRECEDENCES),
                },
            )
        )
        out.append(casualty)
    return out


@st.composite
def nine_lines(draw):
    patients = {name: draw(_COUNT) for name in vocabulary.PRECEDENCES}
    total = sum(patients.values())
    assume(1 <= total <= 198)
    litter = draw(st.integers(max(0, total - 99), min(99, total)))
    body = {
        "location": {
            "lat": draw(st.floats(-90, 90, allow_nan=False)),
            "lon": draw(st.floats(-180, 180, allow_nan=False)),
        },
        "callsign": draw(_TEXT.filter(lambda s: 1 <= len(s) <= 64)),
        "frequency": draw(_TEXT.filter(lambda s: 1 <= len(s) <= 32)),
        "patients": patients,
        "litter": litter,
        "ambulatory": total - litter,
        "equipment": draw(st.lists(st.sampled_from(codes.EQUIPMENT), max_size=3, unique=True) | st.just(["none"])),
    }
    optional = draw(
        st.fixed_dictionaries(
            {},
            optional={
                "suffix": st.none() | _TEXT.filter(lambda s: len(s) <= 16),
                "security": st.none() | st.sampled_from(codes.SECURITY),
                "wounds": st.none() | _LONG_TEXT,
                "marking": st.none() | st.sampled_from(codes.MARKING),
                "marking_detail": st.none() | _TEXT,
                "nationality": st.none()
                | st.dictionaries(st.sampled_from(codes.DEFAULT_NATIONALITY_CATEGORIES), _COUNT),
                "cbrn": st.none() | st.lists(st.sampled_from(codes.CBRN), max_size=4, unique=True),
                "terrain": st.none() | _LONG_TEXT,
                "remarks": st.none() | _LONG_TEXT,
            },
        )
    )
    body.update(optional)
    body["casualties"] = draw(casualties(total))
    return body


def _stored(body: dict) -> dict:
    """The lines as the request keeps them: line 4 "none" is the empty list, and an optional field sent as
    null is stored as not given."""
    loaded = schemas.RequestIn().load(body)
    loaded["equipment"] = service._equipment(loaded["equipment"])
    loaded["casualties"] = [{k: v for k, v in c.items() if v is not None} for c in loaded["casualties"]]
    return {k: v for k, v in loaded.items() if v is not None}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(nine_lines())
def test_every_nine_line_the_api_accepts_round_trips_through_cot(body):
    try:
        expected = _stored(body)
    except ValidationError:
        assume(False)
    cot = writing.medevac(expected, uid="medevac-x", time=NOW, stale=NOW + timedelta(days=1))
    decoded = decode(cot)
    assert decoded.notes == []
    assert _stored(decoded.body) == expected


def test_characters_xml_cannot_carry_are_replaced_not_fatal():
    body = _stored(
        {
            "location": {"lat": 1, "lon": 2},
            "callsign": "A\x01B",
            "frequency": "1",
            "patients": {"urgent": 1},
            "litter": 1,
            "ambulatory": 0,
            "remarks": "bell\x07",
        }
    )
    decoded = decode(writing.medevac(body, uid="u", time=NOW, stale=NOW))
    assert decoded.body["callsign"] == "A\ufffdB" and decoded.body["remarks"] == "bell\ufffd"
