"""Cursor-on-Target <-> 9-line, pure: no I/O, no database, no clock (times are arguments).

Inbound: `StreamSplitter` cuts a TAK stream (events back to back, XML declarations between them) into
events, `parse()` reads one with a hardened parser (defusedxml: no DTD, no entities, no external
references), `classify()` says what it is and `nine_line()` turns a MEDEVAC event into the body the API's
`RequestIn` schema validates, with every default it had to apply listed in `notes`.

Outbound: `medevac()` (the marker of a request), `delete()` (t-x-d-d), `chat()` (GeoChat b-t-f to one
contact), `asset()`, `facility()` and `presence()` (the gateway's own SA, so the TAK server routes direct
messages to it).

Attribute names are those of ATAK-CIV's MedicalDetailHandler.java (what ATAK writes and reads), plus the
other spellings in circulation: OpenTAKServer's CasEvac model (`terrain_detail`, `urgent_surgical`,
`convenience`, `freq` as a float, `<zMist>` directly under `<_medevac_>`), `non_us_*`, letters or words
instead of ATAK's indices for lines 6 and 7, and a single `precedence`. What ATAK has no field for (line 2
suffix, line 6 wounds, line 9 CBRN, the exact UN line-8 categories, a casualty's age, sex, time of injury,
precedence and treatment times) rides in our own `<__medevac_un>` element and `un` attribute of `<zMist>`,
which ATAK keeps on the marker and other TAK software ignores; a human-readable copy goes in `<remarks>`.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET  # nosec B405 - builds XML only; parsing goes through defusedxml
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import defusedxml.ElementTree as SafeET

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
_SECURITY_WORDS = {
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
_MARKING_WORDS = {
    "panel": "panels",
    "panels": "panels",
    "pyro": "pyrotechnic",
    "pyrotechnic": "pyrotechnic",
    "pyrotechnic signal": "pyrotechnic",
    "smoke": "smoke",
    "none": "none",
    "other": "other",
}
# Line 8: UN categories -> ATAK's (docs/casevac.md), and back (the first UN category of each ATAK field).
NATIONALITY_TO_ATAK = {
    "un_military": "us_military",
    "un_police": "us_military",
    "un_civilian": "us_civilian",
    "host_nation_forces": "nonus_military",
    "civilian": "nonus_civilian",
    "detainee": "epw",
    "child": "child",
}
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
_VITAL_ALIASES = {
    "hr": "pulse",
    "pulse": "pulse",
    "p": "pulse",
    "rr": "resp_rate",
    "resp": "resp_rate",
    "spo2": "spo2",
    "sao2": "spo2",
    "o2": "spo2",
    "sbp": "sbp",
    "bp": "bp",
    "dbp": "dbp",
    "gcs": "gcs",
    "avpu": "avpu",
    "t": "temp_c",
    "temp": "temp_c",
}
# What medics type for a mechanism (MIST "M") -> casevac.requests.schemas.MECHANISMS.
_MECHANISM_WORDS = {
    "gsw": "gunshot",
    "gunshot": "gunshot",
    "ied": "blast",
    "blast": "blast",
    "mine": "blast",
    "frag": "fragmentation",
    "shrapnel": "fragmentation",
    "mva": "vehicle_collision",
    "rta": "vehicle_collision",
    "rtc": "vehicle_collision",
    "fall": "fall",
    "burn": "burn",
    "burns": "burn",
    "stab": "stab",
    "knife": "stab",
    "crush": "crush",
    "drowning": "drowning",
}
_VITAL_RANGES = {
    "pulse": (0, 300),
    "resp_rate": (0, 99),
    "spo2": (0, 100),
    "sbp": (0, 300),
    "dbp": (0, 250),
    "gcs": (3, 15),
    "temp_c": (20, 45),
}
# Characters XML 1.0 cannot carry, even escaped: replaced by U+FFFD on the way out.
_XML_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


class CotError(ValueError):
    """The bytes are not a CoT event this gateway can use (the reason is safe to log)."""


# ---------------------------------------------------------------- the stream


class StreamSplitter:
    """Cuts a TAK XML stream into events. `feed(bytes)` returns the complete events received so far (bytes,
    without XML declarations); a partial event waits for the next feed. An event larger than
    MAX_EVENT_BYTES, or garbage without any `<event`, is dropped and counted in `dropped`."""

    def __init__(self, max_bytes: int = MAX_EVENT_BYTES):
        self.buffer = b""
        self.max_bytes = max_bytes
        self.dropped = 0

    def feed(self, data: bytes) -> list[bytes]:
        self.buffer += data
        out = []
        while True:
            start = self.buffer.find(b"<event")
            if start < 0:
                # Keep a possible "<eve" split across reads; the rest (declarations, whitespace) is noise.
                keep = self.buffer[-6:]
                self.buffer = keep if b"<" in keep else b""
                return out
            if start:
                self.buffer = self.buffer[start:]
            end = _event_end(self.buffer)
            if end is None:
                if len(self.buffer) > self.max_bytes:
                    # Oversized or never closed: skip to the next event start (or what comes next).
                    self.dropped += 1
                    following = self.buffer.find(b"<event", 6)
                    self.buffer = self.buffer[following:] if following > 0 else b""
                    continue
                return out
            out.append(self.buffer[:end])
            self.buffer = self.buffer[end:]


def _event_end(buffer: bytes) -> int | None:
    # "<" never appears inside an attribute value, so the first ">" closes the start tag.
    head_end = buffer.find(b">")
    if head_end < 0:
        return None
    if buffer[head_end - 1 : head_end] == b"/":
        return head_end + 1
    close = buffer.find(b"</event>", head_end)
    return None if close < 0 else close + len(b"</event>")


def parse(data: bytes | str) -> ET.Element:
    """One event, parsed without DTDs, entities or external references (CotError otherwise)."""
    if len(data) > MAX_EVENT_BYTES:
        raise CotError("event too large")
    try:
        root = SafeET.fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except SafeET.ParseError as exc:
        raise CotError(f"not well-formed XML: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - defusedxml's DTDForbidden, EntitiesForbidden, ...
        raise CotError(f"refused XML: {type(exc).__name__}") from None
    if root.tag != "event":
        raise CotError(f"root element is <{root.tag}>, not <event>")
    return root


# ---------------------------------------------------------------- reading events


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
        callsign=_clean(contact.get("callsign")) if contact is not None else None,
        sender_uid=_clean(link.get("uid")) if link is not None else None,
        sender_callsign=_clean(link.get("parent_callsign")) if link is not None else None,
        kind="other",
        own=flow is not None and FLOW_TAG in flow.attrib,
        element=root,
    )
    if type_.startswith(MEDEVAC) and (detail.find("_medevac_") is not None or type_ == MEDEVAC):
        event.kind = "medevac"
    elif type_ == DELETE:
        event.kind = "delete"
        target = detail.find("link")
        event.target_uid = _clean(target.get("uid")) if target is not None else None
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
            event.course = _float(track.get("course"))
            speed = _float(track.get("speed"))  # m/s in CoT
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
    lat, lon = _float(point.get("lat")), _float(point.get("lon"))
    if lat is None or lon is None or not -90 <= lat <= 90 or not -180 <= lon <= 180:
        return None, None
    return lat, lon


def _float(value) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number == number and abs(number) != float("inf") else None


def _clean(value) -> str | None:
    value = (value or "").strip()
    return value or None


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
    callsign = raw_callsign or event.sender_callsign or _clean(a.get("title"))
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
    if _true(a.get("equipment_other")) or _clean(a.get("equipment_detail")):
        extra_remarks.append(f"Line 4 other: {_clean(a.get('equipment_detail')) or 'not specified'}")

    # Line 6
    if "security" in a:
        security = _security(a.get("security"))
        if security is None:
            notes.append(f"line 6 security {a.get('security')!r} not understood: left open")
        body["security"] = security
    if "wounds" in ext:
        body["wounds"] = ext["wounds"][:500]

    # Line 7
    marking, detail_text = a.get("hlz_marking"), _clean(a.get("hlz_other"))
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
    mists = med.findall("zMistsMap/zMist") + med.findall("zMist")
    total = sum(body["patients"].values())
    if len(mists) > total:
        notes.append(f"{len(mists)} casualty cards for {total} patients: the first {total} kept")
        for mist in mists[total:]:
            extra_remarks.append(
                "Casualty " + " / ".join(f"{k.upper()}: {v}" for k in "zmist" if (v := _clean(mist.get(k))))
            )
        mists = mists[:total]
    body["casualties"] = [_casualty(mist, notes) for mist in mists]

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
        if (value := _clean(a.get(name)))
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
    number = _float(value)
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
    return _SECURITY_WORDS.get(text.lower())


def _marking(value) -> str | None:
    text = (value or "").strip()
    if text.isdigit() and int(text) < len(MARKING):
        return MARKING[int(text)]
    if len(text) == 1 and text.upper() in "ABCDE":
        return MARKING["ABCDE".index(text.upper())]
    word = text.lower().split(" - ")[-1].split("(")[0].strip()
    return _MARKING_WORDS.get(word)


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
        direction = _clean(a.get("terrain_slope_dir"))
        parts.append(f"slope ({direction})" if direction else "slope")
    if _true(a.get("terrain_rough")):
        parts.append("rough")
    if _true(a.get("terrain_loose")):
        parts.append("loose")
    other = _clean(a.get("terrain_other_detail")) or _clean(a.get("terrain_detail"))
    if other and other.lower() not in ("true", "false"):
        parts.append(other)
    elif _true(a.get("terrain_other")):
        parts.append("other")
    return ", ".join(parts) or None


def _casualty(mist: ET.Element, notes: list[str]) -> dict:
    exact = {}
    if mist.get("un"):
        try:
            exact = json.loads(mist.get("un"))
        except ValueError:
            exact = {}
        if not isinstance(exact, dict):
            exact = {}
    out: dict = {}
    zap = _clean(mist.get("z")) or _clean(mist.get("title"))
    if zap:
        out["zap"] = zap[:32]
    mechanism, detail = _mechanism(mist.get("m") or "")
    if mechanism:
        out["mechanism"] = mechanism
    if detail is not None:
        out["mechanism_detail"] = detail[:200]
    injuries = _split(mist.get("i") or "")
    if injuries:
        out["injuries"] = [text[:200] for text in injuries[:20]]
    signs = _signs(mist.get("s") or "", notes, zap)
    if signs:
        out["signs"] = signs
    if "treatments" in exact and isinstance(exact["treatments"], list):
        out["treatments"] = exact["treatments"][:50]
    else:
        treatments = _treatments(mist.get("t") or "")
        if treatments:
            out["treatments"] = treatments[:50]
    for name in ("zap", "mechanism", "mechanism_detail", "injuries", "age", "sex", "time_of_injury", "precedence"):
        if name in exact:
            out[name] = exact[name]
    for name in ("zap", "mechanism", "mechanism_detail", "injuries"):
        if name in out and name not in exact and exact.get("exact"):
            del out[name]
    if "signs_taken_at" in exact and "signs" in out:
        out["signs"]["taken_at"] = exact["signs_taken_at"]
    return out


def _mechanism(text: str) -> tuple[str | None, str | None]:
    from casevac.requests.schemas import MECHANISMS

    text = text.strip()
    if not text:
        return None, None
    head, sep, rest = text.partition(": ")
    if head in MECHANISMS:
        return head, rest if sep else None
    word = text.lower().replace(" ", "_")
    if word in MECHANISMS:
        return word, None
    first = re.split(r"[\s,;:/_-]+", text.lower(), maxsplit=1)[0]
    if first in _MECHANISM_WORDS:
        return _MECHANISM_WORDS[first], text
    for mechanism in MECHANISMS:
        if word.startswith(mechanism):
            return mechanism, text
    return "other", text


def _split(text: str) -> list[str]:
    """Items joined by "; " (a literal ";" inside an item written as "\\;")."""
    if not text.strip():
        return []
    items, current, escaped = [], [], False
    for char in text:
        if escaped:
            current.append(char if char in ";\\" else "\\" + char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == ";":
            items.append("".join(current))
            current = []
        else:
            current.append(char)
    if escaped:
        current.append("\\")
    items.append("".join(current))
    return [
        item[1:] if item.startswith(" ") and index else item
        for index, item in enumerate(items)
        if item.strip() or len(items) == 1
    ]


def _join(items) -> str:
    return "; ".join(item.replace("\\", "\\\\").replace(";", "\\;") for item in items)


_SIGN = re.compile(r"^\s*([A-Za-z0-9]+)\s*[:=]?\s*([0-9]+(?:\.[0-9]+)?(?:/[0-9]+)?|[AVPUavpu])\s*$")


def _signs(text: str, notes: list[str], zap: str | None) -> dict:
    signs: dict = {}
    for part in re.split(r"[,;]", text):
        if not part.strip():
            continue
        match = _SIGN.match(part)
        name = _VITAL_ALIASES.get(match.group(1).lower()) if match else None
        if name is None:
            notes.append(f"casualty {zap or '?'}: sign {part.strip()[:40]!r} not understood")
            continue
        value = match.group(2)
        if name == "bp" and "/" in value:
            systolic, diastolic = value.split("/")
            signs.update(_ranged("sbp", systolic, notes, zap), **_ranged("dbp", diastolic, notes, zap))
        elif name == "avpu":
            if value.upper() in "AVPU":
                signs["avpu"] = value.upper()
        else:
            signs.update(_ranged("sbp" if name == "bp" else name, value, notes, zap))
    return signs


def _ranged(name: str, value: str, notes: list[str], zap) -> dict:
    low, high = _VITAL_RANGES[name]
    number = float(value)
    if name != "temp_c":
        if number != int(number):
            notes.append(f"casualty {zap or '?'}: {name} {value} not a whole number")
            return {}
        number = int(number)
    if not low <= number <= high:
        notes.append(f"casualty {zap or '?'}: {name} {value} out of range")
        return {}
    return {name: number}


_TREATMENT = re.compile(r"^(?P<code>[a-z_]+)(?: (?P<hh>\d\d):(?P<mm>\d\d)Z)?$")


def _treatments(text: str) -> list[dict]:
    from casevac.requests.schemas import TREATMENTS

    out = []
    for item in _split(text):
        item = item.strip()
        if not item:
            continue
        match = _TREATMENT.match(item)
        code = match.group("code") if match else item.lower().replace(" ", "_")
        if code in TREATMENTS:
            out.append({"code": code})
        else:
            out.append({"code": "other", "detail": item[:200]})
    return out


# ---------------------------------------------------------------- writing events


def cot_time(value: datetime) -> str:
    value = value.astimezone(timezone.utc)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def _xml_text(value) -> str:
    return _XML_FORBIDDEN.sub("\ufffd", str(value))


def _root(
    *,
    uid: str,
    type_: str,
    time: datetime,
    stale: datetime,
    lat: float,
    lon: float,
    how: str = "h-g-i-g-o",
    hae: str = UNKNOWN,
) -> tuple[ET.Element, ET.Element]:
    root = ET.Element(
        "event",
        {
            "version": "2.0",
            "uid": _xml_text(uid),
            "type": type_,
            "how": how,
            "time": cot_time(time),
            "start": cot_time(time),
            "stale": cot_time(stale),
        },
    )
    ET.SubElement(
        root, "point", {"lat": repr(float(lat)), "lon": repr(float(lon)), "hae": hae, "ce": UNKNOWN, "le": UNKNOWN}
    )
    detail = ET.SubElement(root, "detail")
    return root, detail


def _done(root: ET.Element, detail: ET.Element, flow_time: datetime) -> bytes:
    ET.SubElement(detail, "_flow-tags_", {FLOW_TAG: cot_time(flow_time)})
    return ET.tostring(root, encoding="utf-8")


def medevac(
    lines: dict,
    *,
    uid: str,
    time: datetime,
    stale: datetime,
    status_text: str | None = None,
    sender_uid: str | None = None,
) -> bytes:
    """The MEDEVAC marker of a 9-line (a dict shaped like the API's request: location lat/lon, callsign,
    frequency, patients, equipment, litter, ambulatory, lines 6-9, remarks, casualties). `status_text` goes
    in <remarks> (status, asset, ETA), so medline_remarks stays the medic's own remarks."""
    location = lines["location"]
    root, detail = _root(uid=uid, type_=MEDEVAC, time=time, stale=stale, lat=location["lat"], lon=location["lon"])
    ET.SubElement(detail, "contact", {"callsign": _xml_text(lines["callsign"])})
    if sender_uid:
        ET.SubElement(
            detail,
            "link",
            {
                "uid": _xml_text(sender_uid),
                "relation": "p-p",
                "type": "a-f-G-U-C",
                "parent_callsign": _xml_text(lines["callsign"]),
            },
        )
    patients = lines["patients"]
    equipment = set(lines.get("equipment") or [])
    precedence = next((name for name in PRECEDENCES if patients.get(name, 0) > 0), "urgent")
    a = {
        "title": _xml_text(f"{lines['callsign']} {precedence}"),
        "casevac": "false",
        "freq": _xml_text(lines["frequency"]),
        "zone_prot_selection": "0",
        **{name: str(patients.get(name, 0)) for name in PRECEDENCES},
        "equipment_none": "true" if not equipment else "false",
        "hoist": _bool("hoist" in equipment),
        "extraction_equipment": _bool("extraction" in equipment),
        "ventilator": _bool("ventilator" in equipment),
        "litter": str(lines["litter"]),
        "ambulatory": str(lines["ambulatory"]),
    }
    if lines.get("security"):
        a["security"] = str(SECURITY.index(lines["security"]))
    if lines.get("marking"):
        a["hlz_marking"] = str(MARKING.index(lines["marking"]))
    if lines.get("marking_detail") is not None:
        a["hlz_other"] = _xml_text(lines["marking_detail"])
    counts: dict[str, int] = {}
    for category, count in (lines.get("nationality") or {}).items():
        target = NATIONALITY_TO_ATAK.get(category)
        if target:
            counts[target] = counts.get(target, 0) + count
    a.update({name: str(count) for name, count in counts.items()})
    if lines.get("terrain"):
        a.update({"terrain_other": "true", "terrain_other_detail": _xml_text(lines["terrain"])})
    elif lines.get("cbrn") is not None:
        a["terrain_none"] = "true"
    if lines.get("remarks") is not None:
        a["medline_remarks"] = _xml_text(lines["remarks"])
    med = ET.SubElement(detail, "_medevac_", a)
    if lines.get("casualties"):
        mists = ET.SubElement(med, "zMistsMap")
        for position, casualty in enumerate(lines["casualties"]):
            ET.SubElement(mists, "zMist", _mist(casualty, position))
    ext = {}
    if len(equipment) > 1:
        ext["equipment"] = ",".join(lines["equipment"])
    for name in ("suffix", "wounds", "terrain", "marking_detail"):
        if lines.get(name) is not None:
            ext[name] = _xml_text(lines[name])
    if "cbrn" in lines:
        ext["cbrn"] = ",".join(lines["cbrn"]) if lines["cbrn"] is not None else "-"
    if "nationality" in lines:
        ext["nationality"] = (
            ",".join(f"{k}:{v}" for k, v in lines["nationality"].items()) if lines["nationality"] is not None else "-"
        )
    if ext:
        ET.SubElement(detail, "__medevac_un", ext)
    summary = [status_text] if status_text else []
    if lines.get("wounds"):
        summary.append(f"Line 6 wounds: {lines['wounds']}")
    if lines.get("cbrn"):
        summary.append("Line 9 CBRN: " + ", ".join(lines["cbrn"]))
    if summary:
        ET.SubElement(detail, "remarks").text = _xml_text("\n".join(summary))
    return _done(root, detail, time)


def _bool(value: bool) -> str:
    return "true" if value else "false"


def _mist(casualty: dict, position: int) -> dict:
    signs = casualty.get("signs") or {}
    vitals = [
        f"{label} {signs[key]!r}" if key == "temp_c" else f"{label} {signs[key]}"
        for key, label in VITAL_LABELS
        if key in signs
    ]
    treatments = casualty.get("treatments") or []
    mechanism = casualty.get("mechanism") or ""
    if casualty.get("mechanism_detail") is not None:
        mechanism = f"{mechanism or 'other'}: {casualty['mechanism_detail']}"
    # Exactly what the API holds, for our own round trip (ATAK shows and edits z, m, i, s and t).
    exact = {
        name: casualty[name]
        for name in (
            "zap",
            "mechanism",
            "mechanism_detail",
            "injuries",
            "age",
            "sex",
            "time_of_injury",
            "precedence",
            "treatments",
        )
        if name in casualty
    }
    exact["exact"] = True
    if signs.get("taken_at") is not None:
        exact["signs_taken_at"] = signs["taken_at"]
    out = {
        "title": _xml_text(casualty.get("zap") or f"casualty {position + 1}"),
        "z": _xml_text(casualty.get("zap") or ""),
        "m": _xml_text(mechanism),
        "i": _xml_text(_join(casualty.get("injuries") or [])),
        "s": ", ".join(vitals),
        "t": _xml_text(_join(t["code"] + (f" {str(t['at'])[11:16]}Z" if t.get("at") else "") for t in treatments)),
    }
    if exact:
        out["un"] = _xml_text(json.dumps(exact, separators=(",", ":"), default=_iso, ensure_ascii=False))
    return out


def _iso(value) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)


def delete(uid: str, *, time: datetime) -> bytes:
    """t-x-d-d: the marker `uid` is gone (ATAK's own form: a link to it and a forced delete)."""
    root, detail = _root(
        uid=f"{uid}-delete",
        type_=DELETE,
        time=time,
        stale=time + timedelta(minutes=5),
        lat=0.0,
        lon=0.0,
        how="h-g-i-g-o",
    )
    ET.SubElement(detail, "link", {"uid": _xml_text(uid), "relation": "none", "type": "none"})
    ET.SubElement(detail, "__forcedelete")
    return _done(root, detail, time)


def chat(
    *,
    sender_uid: str,
    sender_callsign: str,
    to_uid: str,
    to_callsign: str,
    message_id: str,
    text: str,
    time: datetime,
    lat: float = 0.0,
    lon: float = 0.0,
) -> bytes:
    """A direct GeoChat message, as ATAK's GeoChatService writes one. The uid is deterministic
    (GeoChat.<sender>.<recipient>.<message id>), so a message re-sent after a crash is the same message."""
    root, detail = _root(
        uid=f"GeoChat.{sender_uid}.{to_uid}.{message_id}",
        type_=CHAT,
        time=time,
        stale=time + timedelta(days=1),
        lat=lat,
        lon=lon,
    )
    chat_el = ET.SubElement(
        detail,
        "__chat",
        {
            "parent": "RootContactGroup",
            "groupOwner": "false",
            "messageId": _xml_text(message_id),
            "chatroom": _xml_text(to_callsign),
            "id": _xml_text(to_uid),
            "senderCallsign": _xml_text(sender_callsign),
        },
    )
    ET.SubElement(
        chat_el, "chatgrp", {"uid0": _xml_text(sender_uid), "uid1": _xml_text(to_uid), "id": _xml_text(to_uid)}
    )
    ET.SubElement(detail, "link", {"uid": _xml_text(sender_uid), "type": "a-f-G-U-C", "relation": "p-p"})
    remarks = ET.SubElement(
        detail,
        "remarks",
        {"source": _xml_text(f"BAO.F.ATAK.{sender_uid}"), "to": _xml_text(to_uid), "time": cot_time(time)},
    )
    remarks.text = _xml_text(text)
    ET.SubElement(ET.SubElement(detail, "marti"), "dest", {"callsign": _xml_text(to_callsign)})
    return _done(root, detail, time)


# MIL-STD-2525 air/ground medevac types, as ATAK's point dropper names them.
ASSET_TYPES = {"rotary_wing": "a-f-A-M-H-H", "fixed_wing": "a-f-A-M-F-Q", "ground_ambulance": "a-f-G-E-V-m"}
FACILITY_TYPE = "a-f-G-U-i-m-etf"  # friendly medical treatment facility


def asset(
    *,
    uid: str,
    callsign: str,
    kind: str,
    status: str,
    lat: float,
    lon: float,
    time: datetime,
    stale: datetime,
    heading: float | None = None,
    speed_kmh: float | None = None,
    remarks: str | None = None,
) -> bytes:
    root, detail = _root(
        uid=uid, type_=ASSET_TYPES.get(kind, "a-f-G"), time=time, stale=stale, lat=lat, lon=lon, how="m-g"
    )
    ET.SubElement(detail, "contact", {"callsign": _xml_text(callsign)})
    if heading is not None or speed_kmh is not None:
        ET.SubElement(
            detail,
            "track",
            {"course": repr(float(heading or 0.0)), "speed": repr(round(float(speed_kmh or 0.0) / 3.6, 3))},
        )
    ET.SubElement(detail, "status", {"readiness": _bool(status == "available")})
    ET.SubElement(detail, "remarks").text = _xml_text(remarks or f"{kind}, {status}")
    return _done(root, detail, time)


def facility(
    *,
    uid: str,
    name: str,
    level: str,
    status: str,
    beds: int,
    lat: float,
    lon: float,
    time: datetime,
    stale: datetime,
    capabilities=(),
) -> bytes:
    root, detail = _root(uid=uid, type_=FACILITY_TYPE, time=time, stale=stale, lat=lat, lon=lon, how="h-e")
    ET.SubElement(detail, "contact", {"callsign": _xml_text(name)})
    text = f"Level {level}, {status}, beds available {beds}"
    if capabilities:
        text += "; " + ", ".join(capabilities)
    ET.SubElement(detail, "remarks").text = _xml_text(text)
    return _done(root, detail, time)


def presence(*, uid: str, callsign: str, time: datetime, stale: datetime, lat: float = 0.0, lon: float = 0.0) -> bytes:
    """The gateway's own SA: TAK servers (taky, FreeTAKServer) route direct messages to a client only once it
    has described itself with takv, contact and __group."""
    root, detail = _root(uid=uid, type_="a-f-G-U-C", time=time, stale=stale, lat=lat, lon=lon, how="h-e")
    ET.SubElement(detail, "takv", {"os": "linux", "device": "server", "version": "1", "platform": "medevac"})
    ET.SubElement(detail, "contact", {"callsign": _xml_text(callsign), "endpoint": "*:-1:stcp"})
    ET.SubElement(detail, "__group", {"name": "Cyan", "role": "HQ"})
    return _done(root, detail, time)


def ping(*, uid: str, time: datetime) -> bytes:
    root, detail = _root(
        uid=f"{uid}-ping",
        type_="t-x-c-t",
        time=time,
        stale=time + timedelta(seconds=20),
        lat=0.0,
        lon=0.0,
        how="h-g-i-g-o",
    )
    return ET.tostring(root, encoding="utf-8")
