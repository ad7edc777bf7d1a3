"""The text 9-line (casevac.links.text): real-world spellings, errors naming the line, round trips."""

import pytest
from hypothesis import HealthCheck, given, settings

from casevac.links import text, text_codes, text_encode
from casevac.links.text import TextError
from casevac.requests import schemas
from tests.casevac.links.strategies import carried, requests, same_place

TWO_URGENT = {"urgent": 1, "urgent_surgical": 1, "priority": 0, "routine": 0, "convenience": 0}
ISSUE_EXAMPLE = "1 34NBK3497887318 2 38.90 BRAVO26 3 1A 1B 4 A 5 2L 6 P 7 C"
EXPECTED = {
    "location": {"mgrs": "34NBK3497887318"},
    "frequency": "38.90",
    "callsign": "BRAVO26",
    "patients": TWO_URGENT,
    "equipment": [],
    "litter": 2,
    "ambulatory": 0,
    "security": "P",
    "marking": "smoke",
    "lines": [1, 2, 3, 4, 5, 6, 7],
}


# How medics and radio operators actually write it: every one of these is the issue's example.
@pytest.mark.parametrize(
    "spelling",
    [
        ISSUE_EXAMPLE,
        ISSUE_EXAMPLE.lower(),
        "L1 34NBK3497887318 L2 38.90 BRAVO26 L3 1A 1B L4 A L5 2L L6 P L7 C",
        "LINE 1: 34NBK3497887318 LINE 2: 38.90 BRAVO26 LINE 3: 1A 1B LINE 4: A LINE 5: 2L LINE 6: P LINE 7: C",
        "Line1: 34NBK3497887318, Line2: 38.90 BRAVO26, Line3: 1A, 1B, Line4: A, Line5: 2L, Line6: P, Line7: C",
        "1: 34N BK 34978 87318\n2: 38.90 BRAVO26\n3: 1A 1B\n4: A\n5: 2L\n6: P\n7: C",
        "1.34NBK3497887318 2. 38.90 BRAVO26 3. A1 B1 4. NONE 5. L2 6. P 7. SMOKE",
        "1) 34NBK 34978 87318 / 2) 38.90 BRAVO26 / 3) 1xA 1xB / 4) A / 5) 2xL / 6) P / 7) C",
        "1:34NBK3497887318;2:38.90 BRAVO26;3:1A1B;4:A;5:2L;6:P;7:C",
        "MEDEVAC 1 34NBK3497887318 2 38.90 BRAVO26 3 1URGENT 1SURG 4 NONE 5 2LITTER 6 P 7 C",
        "9-line: 1 34nbk3497887318 | 2 38.90 BRAVO26 | 3 A-1 B-1 | 4 a | 5 L-2 | 6 p | 7 c",
        "LINE 1 34NBK3497887318 LINE 2 38.90 BRAVO26 LINE 3 1A 1B LINE 4 A LINE 5 2L 0A LINE 6 P LINE 7 C",
    ],
)
def test_real_world_spellings_of_the_issue_example(spelling):
    parsed = text.parse(spelling)
    if "BRAVO26" not in spelling:
        parsed["callsign"] = parsed["callsign"].upper()
    assert parsed == EXPECTED


@pytest.mark.parametrize(
    "spelling,expected",
    [
        (
            "1 4.3612 18.5550 2 38.90 DUSTOFF 3 1C 4 B 5 1A",
            {"location": {"lat": 4.3612, "lon": 18.555}, "equipment": ["hoist"], "ambulatory": 1, "litter": 0},
        ),
        (
            "1 4.3612,18.5550 2 38.90 DUSTOFF 3 1C 4 BD 5 1L",
            {"location": {"lat": 4.3612, "lon": 18.555}, "equipment": ["hoist", "ventilator"]},
        ),
        ('1 "4 21 40 N 18 33 18 E" 2 38.90 DUSTOFF 3 1C 4 A 5 1L', {"location": {"text": "4 21 40 N 18 33 18 E"}}),
        ("1 4 21 40 N 18 33 18 E 2 38.90 DUSTOFF 3 1C 4 A 5 1L", {"location": {"text": "4 21 40 N 18 33 18 E"}}),
        (
            '1 34NBK3497887318 2 38.90 "BRAVO 2 6" A 3 2C 4 B C 5 1L 1A',
            {"callsign": "BRAVO 2 6", "suffix": "A", "equipment": ["hoist", "extraction"]},
        ),
        (
            "1 34NBK3497887318 2 38.90 DUSTOFF 3 1A 2D 4 VENT 5 3L 8 2A 1E 9 NONE",
            {
                "patients": {"urgent": 1, "urgent_surgical": 0, "priority": 0, "routine": 2, "convenience": 0},
                "nationality": {"un_military": 2, "civilian": 1},
                "cbrn": [],
                "equipment": ["ventilator"],
            },
        ),
        (
            '1 34NBK3497887318 2 38.90 DUSTOFF 3 1A 4 A 5 1L 6 "GSW left thigh" 9 "open field, slope north"',
            {"wounds": "GSW left thigh", "terrain": "open field, slope north"},
        ),
        (
            '1 34NBK3497887318 2 38.90 DUSTOFF 3 1A 4 A 5 1L 6 X 7 E "orange panel" 9 CB',
            {"security": "X", "marking": "other", "marking_detail": "orange panel", "cbrn": ["chemical", "biological"]},
        ),
    ],
)
def test_other_forms(spelling, expected):
    parsed = text.parse(spelling)
    for key, value in expected.items():
        assert parsed[key] == value, key


@pytest.mark.parametrize(
    "message,line,words",
    [
        ("1 34NBK3497887318 2 38.90 BRAVO26 3 1Q 4 A 5 1L", 3, "A urgent"),
        ("1 34NBK3497887318 2 38.90 BRAVO26 3 1A 4 A 5 2L", 5, "line 3 counts 1"),
        ("1 34NBK3497887318 2 38.90 BRAVO26 3 1A 4 A", 5, "L litter"),
        ("1 99ZZZ1 2 38.90 BRAVO26 3 1A 4 A 5 1L", 1, "MGRS"),
        ("1 34NBK3497887318 2 38.90 3 1A 4 A 5 1L", 2, "call sign"),
        ("1 34NBK3497887318 2 38.90 BRAVO 2 6 3 1A 4 A 5 1L", 2, "quote a call sign"),
        ("1 34NBK3497887318 2 38.90 BRAVO26 3 1A 4 AB 5 1L", 4, "cannot be combined"),
        ("1 34NBK3497887318 2 38.90 BRAVO26 3 1A 4 Z 5 1L", 4, "D ventilator"),
        ("1 34NBK3497887318 2 38.90 BRAVO26 3 1A 1A 4 A 5 2L", 3, "given twice"),
        ("1 34NBK3497887318 2 38.90 BRAVO26 3 0A 4 A 5 0L", 3, "at least one"),
        ("1 34NBK3497887318 2 38.90 BRAVO26 3 1A 4 A 5 1L 7 Q", 7, "C smoke"),
        ("1 34NBK3497887318 2 38.90 BRAVO26 3 1A 4 A 5 1L 8 2Z", 8, "A un_military"),
        ("3 1A 4 A 5 1L", 1, "start with line 1"),
        ("1 34NBK3497887318 2 38.90 BRAVO26 3 4 A 5 1L", 3, "count and code"),
    ],
)
def test_errors_name_the_line_and_what_it_expects(message, line, words):
    with pytest.raises(TextError) as raised:
        text.parse(message)
    assert raised.value.line == line
    assert str(raised.value).startswith(f"line {line}: ")
    assert words in raised.value.message


@pytest.mark.parametrize("message", ["", "   ", "hello there", '1 "unclosed', "9line"])
def test_not_a_9_line(message):
    with pytest.raises(TextError):
        text.parse(message)


def test_lines_6_to_9_alone_complete_a_request():
    assert text.parse("6 N 7 A 8 1A 9 NONE") == {
        "security": "N",
        "marking": "panels",
        "nationality": {"un_military": 1},
        "cbrn": [],
        "lines": [6, 7, 8, 9],
    }
    assert text.parse("L8 3C") == {"nationality": {"un_civilian": 3}, "lines": [8]}


def test_configured_nationality_categories_give_the_letters():
    parsed = text.parse("8 1A 2B", nationality_categories=["own_military", "own_civilian"])
    assert parsed["nationality"] == {"own_military": 1, "own_civilian": 2}


def test_encoding_the_issue_example_and_the_sms_length_of_a_realistic_request():
    body = {**EXPECTED}
    body.pop("lines")
    assert text_encode.encode(body) == ISSUE_EXAMPLE
    realistic = {
        "location": {"lat": -4.36123, "lon": 18.55501},
        "frequency": "138.925",
        "callsign": "MINUSCA-ZAMBIA-26",
        "suffix": "ALPHA",
        "patients": {"urgent": 2, "urgent_surgical": 3, "priority": 4, "routine": 5, "convenience": 6},
        "equipment": ["hoist", "extraction", "ventilator"],
        "litter": 11,
        "ambulatory": 9,
    }
    lines_1_to_5 = text_encode.encode(realistic, lines=[1, 2, 3, 4, 5])
    assert len(lines_1_to_5) <= text_codes.SMS_LENGTH, lines_1_to_5
    assert text.parse(lines_1_to_5)["callsign"] == "MINUSCA-ZAMBIA-26"


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=requests())
def test_round_trip_of_every_9_line_the_api_accepts(body):
    encoded = text_encode.encode(body)
    decoded = text.parse(encoded)
    assert decoded.pop("lines")[:5] == [1, 2, 3, 4, 5]
    # The decoded body is itself accepted by the API, and carries the same lines.
    accepted = schemas.RequestIn().load(decoded)
    assert carried(accepted) == carried(body, marking_detail_needs_marking=True)
    assert same_place(accepted, body)
