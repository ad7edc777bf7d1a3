"""Cursor-on-Target export of a 9-line (DOMAIN.md section 7): what ATAK / WinTAK show as a MEDEVAC.

An `<event type="b-r-f-h-c">` with the pickup `<point>` and `<detail><_medevac_ .../></detail>`, one
`<zMist>` per casualty. ATAK's line 8 attributes are US-centred; the UN categories map onto them as
own forces -> us_*, host nation and other civilians -> nonus_*, detainees -> epw (see docs/casevac.md).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET  # nosec B405 - builds XML only, never parses input
from datetime import timedelta

from casevac.codes import NATIONALITY_TO_ATAK
from core import clock

COT_TYPE = "b-r-f-h-c"
# ATAK encodes lines 6 and 7 as indices into these lists.
SECURITY_INDEX = {"N": "0", "P": "1", "E": "2", "X": "3"}
MARKING_INDEX = {"panels": "0", "pyrotechnic": "1", "smoke": "2", "none": "3", "other": "4"}
# Unknown accuracy, in CoT's own convention.
UNKNOWN = "9999999.0"


def _time(value) -> str:
    return clock.as_utc(value).strftime("%Y-%m-%dT%H:%M:%S.") + f"{clock.as_utc(value).microsecond // 1000:03d}Z"


def _bool(value: bool) -> str:
    return "true" if value else "false"


def event(request) -> str:
    """The request as one CoT event (XML text)."""
    now = clock.now()
    stale = request.deadline or (request.created_at + timedelta(hours=24))
    root = ET.Element(
        "event",
        {
            "version": "2.0",
            "uid": f"medevac-{request.id}",
            "type": COT_TYPE,
            "how": "h-g-i-g-o",
            "time": _time(now),
            "start": _time(request.created_at),
            "stale": _time(max(stale, now)),
        },
    )
    # ce: the circular error (m). Known for an MGRS pickup: the half-diagonal of its square around the centre.
    precision = request.location_precision_m
    ce = f"{precision / 2**0.5:.1f}" if request.location_source == "mgrs" else UNKNOWN
    ET.SubElement(
        root,
        "point",
        {"lat": f"{request.lat:.7f}", "lon": f"{request.lon:.7f}", "hae": UNKNOWN, "ce": ce, "le": UNKNOWN},
    )
    detail = ET.SubElement(root, "detail")
    ET.SubElement(detail, "contact", {"callsign": request.callsign})
    equipment = set(request.equipment or [])
    attributes = {
        "title": f"{request.callsign} {request.precedence}",
        "casevac": _bool(request.active),
        "freq": request.frequency,
        "zone_prot_selection": "0",
        **{name: str(count) for name, count in request.patients.items()},
        "equipment_none": _bool(not equipment),
        "hoist": _bool("hoist" in equipment),
        "extraction_equipment": _bool("extraction" in equipment),
        "ventilator": _bool("ventilator" in equipment),
        "litter": str(request.litter),
        "ambulatory": str(request.ambulatory),
    }
    if request.security:
        attributes["security"] = SECURITY_INDEX[request.security]
    if request.marking:
        attributes["hlz_marking"] = MARKING_INDEX[request.marking]
    counts: dict[str, int] = {}
    for category, count in (request.nationality or {}).items():
        target = NATIONALITY_TO_ATAK.get(category)
        if target:
            counts[target] = counts.get(target, 0) + count
    attributes.update({name: str(count) for name, count in counts.items()})
    if request.terrain:
        attributes.update({"terrain_other": "true", "terrain_other_detail": request.terrain})
    elif request.cbrn is not None:
        attributes["terrain_none"] = "true"
    remarks = [request.remarks or ""]
    if request.cbrn:
        remarks.append("CBRN: " + ", ".join(request.cbrn))
    attributes["medline_remarks"] = " ".join(r for r in remarks if r).strip()
    medevac = ET.SubElement(detail, "_medevac_", attributes)
    if request.casualties:
        mists = ET.SubElement(medevac, "zMistsMap")
        for casualty in request.casualties:
            ET.SubElement(mists, "zMist", _mist(casualty))
    return ET.tostring(root, encoding="unicode", xml_declaration=True)


def _mist(casualty) -> dict:
    signs = casualty.signs or {}
    vitals = [
        f"{label} {signs[key]}"
        for key, label in (
            ("pulse", "HR"),
            ("resp_rate", "RR"),
            ("spo2", "SpO2"),
            ("sbp", "SBP"),
            ("gcs", "GCS"),
            ("avpu", "AVPU"),
            ("temp_c", "T"),
        )
        if key in signs
    ]
    treatments = [t["code"] + (f" {t['at'][11:16]}Z" if t.get("at") else "") for t in casualty.treatments or []]
    return {
        "title": casualty.zap or f"casualty {casualty.position + 1}",
        "z": casualty.zap or "",
        "m": " ".join(filter(None, [casualty.mechanism, casualty.mechanism_detail])),
        "i": "; ".join(casualty.injuries or []),
        "s": ", ".join(vitals),
        "t": "; ".join(treatments),
    }
