"""The CoT vocabulary both directions share: event types, limits, ATAK's codes for lines 4 and 6-8 and the
vital signs, the error, CoT's time format, and the small readers and writers of attribute values."""

from __future__ import annotations

import re
from datetime import datetime, timezone

MEDEVAC = "b-r-f-h-c"
DELETE = "t-x-d-d"
CHAT = "b-t-f"
EMERGENCIES = {"b-a-o-tbl": "911", "b-a-o-opn": "troops_in_contact", "b-a-o-pan": "ring_the_bell"}
EMERGENCY_CANCEL = "b-a-o-can"
# The flow tag every event this backend writes carries: an echo of our own event is not news.
FLOW_TAG = "medevac-gateway"
UNKNOWN = "9999999.0"  # CoT's "unknown" for hae, ce, le
MAX_EVENT_BYTES = 256 * 1024
MAX_REMARKS = 2000
MAX_PER_CATEGORY = 99
PRECEDENCES = ("urgent", "urgent_surgical", "priority", "routine", "convenience")

# Lines 6 and 7: ATAK writes the index into its list (arrays.xml "security" and "hlz_marking").
SECURITY = ("N", "P", "E", "X")
MARKING = ("panels", "pyrotechnic", "smoke", "none", "other")
SECURITY_WORDS = {
    "no enemy": "N",
    "none": "N",
    "possible": "P",
    "possible enemy": "P",
    "enemy": "E",
    "enemy in area": "E",
    "caution": "E",
    "escort": "X",
    "armed escort": "X",
}
MARKING_WORDS = {
    "panel": "panels",
    "panels": "panels",
    "pyro": "pyrotechnic",
    "pyrotechnic": "pyrotechnic",
    "pyrotechnic signal": "pyrotechnic",
    "smoke": "smoke",
    "none": "none",
    "other": "other",
}
# Line 8: ATAK's categories back to the UN's (the first UN category of each ATAK field; casevac.codes has the way out).
ATAK_TO_NATIONALITY = {
    "us_military": "un_military",
    "us_civilian": "un_civilian",
    "nonus_military": "host_nation_forces",
    "non_us_military": "host_nation_forces",
    "nonus_civilian": "civilian",
    "non_us_civilian": "civilian",
    "epw": "detainee",
    "child": "child",
}
EQUIPMENT = {
    "hoist": "hoist",
    "extraction_equipment": "extraction",
    "extraction": "extraction",
    "ventilator": "ventilator",
}
# zMist "s": label <-> vital sign (casevac.requests.models.SignsReading.VITALS).
VITAL_LABELS = (
    ("pulse", "HR"),
    ("resp_rate", "RR"),
    ("spo2", "SpO2"),
    ("sbp", "SBP"),
    ("dbp", "DBP"),
    ("gcs", "GCS"),
    ("avpu", "AVPU"),
    ("temp_c", "T"),
)
# Characters XML 1.0 cannot carry, even escaped: replaced by U+FFFD on the way out.
XML_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


class CotError(ValueError):
    """The bytes are not a CoT event this gateway can use (the reason is safe to log)."""


def cot_time(value: datetime) -> str:
    value = value.astimezone(timezone.utc)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def xml_text(value) -> str:
    return XML_FORBIDDEN.sub("\ufffd", str(value))


def to_float(value) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number == number and abs(number) != float("inf") else None


def clean(value) -> str | None:
    value = (value or "").strip()
    return value or None
