"""Reading events: `classify()` says what any event is (the `Event` the gateway acts on) and `nine_line()`
turns a MEDEVAC event into the body the API's `RequestIn` schema validates, with every default it had to
apply listed in `notes`."""

from __future__ import annotations

import xml.etree.ElementTree as ET  # nosec B405 - builds elements only; parsing goes through defusedxml
from dataclasses import dataclass, field
from datetime import datetime, timezone

from casevac.codes import NATIONALITY_TO_ATAK
from casevac.tak.codec import mist
from casevac.tak.codec.vocabulary import (
    ATAK_TO_NATIONALITY,
    DELETE,
    EMERGENCIES,
    EMERGENCY_CANCEL,
    EQUIPMENT,
    FLOW_TAG,
    MARKING,
    MARKING_WORDS,
    MAX_PER_CATEGORY,
    MAX_REMARKS,
    MEDEVAC,
    PRECEDENCES,
    SECURITY,
    SECURITY_WORDS,
    CotError,
    clean,
    to_float,
)


@dataclass
class Event:
    """What the gateway needs of any event."""

    uid: str
    type: str
    time: datetime | None
    lat: float | None
    lon: float | None
    callsign: str | None  # <contact callsign>
    sender_uid: str | None  # <link relation="p-p" uid> (the device that made it)
    sender_callsign: str | None  # <link parent_callsign>
    kind: str  # medevac | delete | position | emergency | emergency_cancel | chat | other
    own: bool  # carries our flow tag: an echo of what this backend sent
    element: ET.Element = field(repr=False)
    course: float | None = None
    speed_kmh: float | None = None
    target_uid: str | None = None  # t-x-d-d: the uid deleted
    emergency: str | None = None  # 911 | troops_in_contact | ring_the_bell


def classify(root: ET.Element) -> Event:
    uid = (root.get("uid") or "").strip()
    type_ = (root.get("type") or "").strip()
    if not uid or not type_:
        raise CotError("event without uid or type")
    detail = root.find("detail")
    if detail is None:
        detail = ET.Element("detail")
    lat, lon = _point(root)
    contact = detail.find("contact")
    link = _sender_link(detail)
    flow = detail.find("_flow-tags_")
    event = Event(
        uid=uid,
        type=type_,
        time=_parse_time(root.get("time")),
        lat=lat,
        lon=lon,
        callsign=clean(contact.get("callsign")) if contact is not None else None,
        sender_uid=clean(link.get("uid")) if link is not None else None,
        sender_callsign=clean(link.get("parent_callsign")) if link is not None else None,
        kind="other",
        own=flow is not None and FLOW_TAG in flow.attrib,
        element=root,
    )
    if type_.startswith(MEDEVAC) and (detail.find("_medevac_") is not None or type_ == MEDEVAC):
        event.kind = "medevac"
    elif type_ == DELETE:
        event.kind = "delete"
        target = detail.find("link")
        event.target_uid = clean(target.get("uid")) if target is not None else None
    elif type_ in EMERGENCIES:
        event.kind, event.emergency = "emergency", EMERGENCIES[type_]
        beacon = detail.find("emergency")
        if beacon is not None and (beacon.text or "").strip():
            event.callsign = beacon.text.strip()
        elif event.callsign and event.callsign.endswith("-Alert"):
            event.callsign = event.callsign[: -len("-Alert")]
    elif type_ == EMERGENCY_CANCEL:
        event.kind = "emergency_cancel"
        beacon = detail.find("emergency")
        if beacon is not None and (beacon.text or "").strip():
            event.callsign = beacon.text.strip()
    elif type_.startswith("b-t-f"):
        event.kind = "chat"
    elif type_.startswith("a-f-") and contact is not None and lat is not None:
        event.kind = "position"
        track = detail.find("track")
        if track is not None:
            event.course = to_float(track.get("course"))
            speed = to_float(track.get("speed"))  # m/s in CoT
            event.speed_kmh = round(speed * 3.6, 3) if speed is not None and speed >= 0 else None
            if event.course is not None and not 0 <= event.course < 360:
                event.course = event.course % 360 if abs(event.course) < 1e6 else None
    return event


def _sender_link(detail: ET.Element) -> ET.Element | None:
    for link in detail.findall("link"):
        if link.get("relation") == "p-p" and link.get("uid"):
            return link
    return None


def _point(root: ET.Element) -> tuple[float | None, float | None]:
    point = root.find("point")
    if point is None:
        return None, None
    lat, lon = to_float(point.get("lat")), to_float(point.get("lon"))
    if lat is None or lon is None or not -90 <= lat <= 90 or not -180 <= lon <= 180:
        return None, None
    return lat, lon


def _parse_time(value) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


# ---------------------------------------------------------------- MEDEVAC -> 9-line


@dataclass
class NineLine:
    body: dict  # the RequestIn body (client_ref excluded)
    notes: list[str]  # the defaults applied, as said in the remarks


def nine_line(event: Event, *, categories=tuple(NATIONALITY_TO_ATAK)) -> NineLine:
    """The 9-line body of a MEDEVAC event. Missing or malformed fields get the default a coordinator would
    expect, each said in `notes` (and at the end of the remarks); no point at all is a CotError (a
    request without a pickup site cannot be served)."""
    if event.lat is None:
        raise CotError("MEDEVAC event without a valid <point>")
    detail = event.element.find("detail")
    med = detail.find("_medevac_") if detail is not None else None
    if med is None:
        med = ET.Element("_medevac_")
    ext = detail.find("__medevac_un") if detail is not None else None
    ext = ext.attrib if ext is not None else {}
    a = med.attrib
    notes: list[str] = []
    body: dict = {"location": {"lat": event.lat, "lon": event.lon}}

    # Line 2
    contact = event.element.find("detail/contact")
    raw_callsign = contact.get("callsign") if contact is not None else None
    callsign = raw_callsign or event.sender_callsign or clean(a.get("title"))
    if not callsign:
        callsign = f"TAK-{event.uid[:8]}"
        notes.append(f"line 2 callsign missing: {callsign} used")
    body["callsign"] = callsign[:64]
    frequency = a.get("freq") or None
    if frequency is None:
        frequency = "not given"
        notes.append("line 2 frequency missing")
    body["frequency"] = frequency[:32]
    if "suffix" in ext:
        body["suffix"] = ext["suffix"][:16]

    # Lines 3 and 5
    patients = {name: _count(a.get(name), name, notes) for name in PRECEDENCES}
    litter, ambulatory = _count(a.get("litter"), "litter", notes), _count(a.get("ambulatory"), "ambulatory", notes)
    single = _precedence_word(a.get("precedence"))
    if single and not sum(patients.values()):
        patients[single] = max(litter + ambulatory, 1)
    body["patients"], body["litter"], body["ambulatory"] = _reconcile(patients, litter, ambulatory, notes)

    # Line 4
    equipment = [code for name, code in EQUIPMENT.items() if _true(a.get(name))]
    body["equipment"] = list(dict.fromkeys(equipment))
    ordered = [item for item in (ext.get("equipment") or "").split(",") if item]
    if sorted(ordered) == sorted(body["equipment"]):
        body["equipment"] = ordered  # the order the medic gave (ours); ATAK's flags decide what is in it
    extra_remarks = []
    if _true(a.get("equipment_other")) or clean(a.get("equipment_detail")):
        extra_remarks.append(f"Line 4 other: {clean(a.get('equipment_detail')) or 'not specified'}")

    # Line 6
    if "security" in a:
        security = _security(a.get("security"))
        if security is None:
            notes.append(f"line 6 security {a.get('security')!r} not understood: left open")
        body["security"] = security
    if "wounds" in ext:
        body["wounds"] = ext["wounds"][:500]

    # Line 7
    marking, detail_text = a.get("hlz_marking"), clean(a.get("hlz_other"))
    if marking is not None or (detail_text and "marking_detail" not in ext):
        code = _marking(marking) if marking is not None else "other"
        if code is None:
            notes.append(f"line 7 marking {marking!r} not understood: left open")
        body["marking"] = code
        if detail_text:
            body["marking_detail"] = detail_text[:200]
    if "marking_detail" in ext:
        body["marking_detail"] = ext["marking_detail"][:200]

    # Line 8
    if "nationality" in ext:
        body["nationality"] = _nationality_ext(ext["nationality"], categories)
    else:
        counts: dict[str, int] = {}
        for name, category in ATAK_TO_NATIONALITY.items():
            if name in a:
                count = _count(a.get(name), name, notes)
                if not count:
                    continue
                if category in categories:
                    counts[category] = min(counts.get(category, 0) + count, MAX_PER_CATEGORY)
                elif count:
                    extra_remarks.append(f"Line 8 {name}: {count}")
        if counts:
            body["nationality"] = counts

    # Line 9
    if "cbrn" in ext:
        body["cbrn"] = [item for item in ext["cbrn"].split(",") if item] if ext["cbrn"] != "-" else None
    if "terrain" in ext:
        body["terrain"] = ext["terrain"][:500]
    elif "cbrn" not in ext:
        terrain = _terrain(a)
        if terrain:
            body["terrain"] = terrain[:500]

    # Casualties
    cards = med.findall("zMistsMap/zMist") + med.findall("zMist")
    total = sum(body["patients"].values())
    if len(cards) > total:
        notes.append(f"{len(cards)} casualty cards for {total} patients: the first {total} kept")
        for card in cards[total:]:
            extra_remarks.append(
                "Casualty " + " / ".join(f"{k.upper()}: {v}" for k in "zmist" if (v := clean(card.get(k))))
            )
        cards = cards[:total]
    body["casualties"] = [mist.read(card, notes) for card in cards]

    # Remarks: the medic's, the HLZ brief, then what the gateway assumed.
    hlz = [
        f"{label} {value}"
        for name, label in (
            ("zone_protected_coord", "zone protected:"),
            ("zone_prot_marker", "protected marker:"),
            ("marked_by", "marked by"),
            ("obstacles", "obstacles:"),
            ("winds_are_from", "winds from"),
            ("friendlies", "friendlies:"),
            ("enemy", "enemy:"),
            ("hlz_remarks", "HLZ remarks:"),
        )
        if (value := clean(a.get(name)))
    ]
    parts = [a["medline_remarks"]] if "medline_remarks" in a else []
    added = (["HLZ: " + "; ".join(hlz)] if hlz else []) + extra_remarks
    if notes:
        added.append("[TAK gateway] " + "; ".join(notes))
    # A marker the gateway sent back already has these in its remarks (ATAK keeps the HLZ fields on the
    # marker and re-sends both when the medic edits it): never append them twice.
    parts += [part for part in added if part not in (a.get("medline_remarks") or "")]
    remarks = "\n".join(parts)
    if len(remarks) > MAX_REMARKS:
        remarks = remarks[: MAX_REMARKS - 12] + " [truncated]"
    if parts:
        body["remarks"] = remarks
    return NineLine(body=body, notes=notes)


def _count(value, name: str, notes: list[str]) -> int:
    if value is None or str(value).strip() == "":
        return 0
    number = to_float(value)
    if number is None or number < 0 or number != int(number):
        notes.append(f"{name} {value!r} is not a count: 0 used")
        return 0
    if number > MAX_PER_CATEGORY:
        notes.append(f"{name} {int(number)} capped at {MAX_PER_CATEGORY}")
        return MAX_PER_CATEGORY
    return int(number)


def _precedence_word(value) -> str | None:
    value = (value or "").strip().lower().replace("-", "_").replace(" ", "_")
    letters = {"a": "urgent", "b": "urgent_surgical", "c": "priority", "d": "routine", "e": "convenience"}
    return letters.get(value) or (value if value in PRECEDENCES else None)


def _reconcile(patients: dict, litter: int, ambulatory: int, notes: list[str]) -> tuple[dict, int, int]:
    """Line 3 must equal line 5 and count at least one patient (DOMAIN.md section 1). The coordinator's
    reading: patients of unknown precedence are urgent, of unknown type litter (the more demanding)."""
    line3, line5 = sum(patients.values()), litter + ambulatory
    if line3 == 0 and line5 == 0:
        notes.append("lines 3 and 5 missing: 1 urgent litter patient assumed")
        return {**patients, "urgent": 1}, 1, 0
    if line3 < line5:
        extra = min(line5 - line3, MAX_PER_CATEGORY - patients["urgent"])
        notes.append(
            f"line 3 counts {line3} patients, line 5 {line5}: {line5 - line3} of unknown precedence counted urgent"
        )
        patients = {**patients, "urgent": patients["urgent"] + extra}
        line3 = sum(patients.values())
        if line3 < line5:  # urgent was full: drop the remainder from line 5
            litter, ambulatory = _trim(litter, ambulatory, line3)
    if line3 > line5:
        extra = line3 - line5
        notes.append(f"line 5 counts {line5} patients, line 3 {line3}: {extra} of unknown type counted litter")
        litter = min(litter + extra, MAX_PER_CATEGORY)
        if litter + ambulatory < line3:
            ambulatory = min(line3 - litter, MAX_PER_CATEGORY)
    return patients, litter, ambulatory


def _trim(litter: int, ambulatory: int, total: int) -> tuple[int, int]:
    litter = min(litter, total)
    return litter, total - litter


def _true(value) -> bool:
    return (value or "").strip().lower() in ("true", "1", "yes")


def _security(value) -> str | None:
    text = (value or "").strip()
    if text.isdigit() and int(text) < len(SECURITY):
        return SECURITY[int(text)]
    if text.upper() in SECURITY:
        return text.upper()
    return SECURITY_WORDS.get(text.lower())


def _marking(value) -> str | None:
    text = (value or "").strip()
    if text.isdigit() and int(text) < len(MARKING):
        return MARKING[int(text)]
    if len(text) == 1 and text.upper() in "ABCDE":
        return MARKING["ABCDE".index(text.upper())]
    word = text.lower().split(" - ")[-1].split("(")[0].strip()
    return MARKING_WORDS.get(word)


def _nationality_ext(value: str, categories) -> dict | None:
    if value == "-":
        return None
    out = {}
    for part in value.split(","):
        name, _, count = part.partition(":")
        if name in categories and count.isdigit():
            out[name] = min(int(count), MAX_PER_CATEGORY)
    return out


def _terrain(a) -> str | None:
    parts = []
    if _true(a.get("terrain_none")):
        parts.append("none")
    if _true(a.get("terrain_slope")):
        direction = clean(a.get("terrain_slope_dir"))
        parts.append(f"slope ({direction})" if direction else "slope")
    if _true(a.get("terrain_rough")):
        parts.append("rough")
    if _true(a.get("terrain_loose")):
        parts.append("loose")
    other = clean(a.get("terrain_other_detail")) or clean(a.get("terrain_detail"))
    if other and other.lower() not in ("true", "false"):
        parts.append(other)
    elif _true(a.get("terrain_other")):
        parts.append("other")
    return ", ".join(parts) or None
