"""The 9-line as a compact binary message for Iridium short-burst data (RockBLOCK-class devices: 340 bytes
mobile-originated at most, billed by 50-byte credits). Lines 1-5 take 30 bytes for a typical request, and at
most 50 whenever frequency, call sign and suffix take at most 29 bytes of UTF-8 together; lines 6-9 and
MIST-AT casualties follow when room allows. Byte by byte in docs/casevac.md ("Satellite messages"); all
integers big-endian.

    0   1  0x91: the 9-line (9), format version 1
    1   1  kind: 0x01 a new request (lines 1-5, then optional sections); 0x02 completes the sender's latest
           open request (optional sections only)
  kind 0x01:
    2   4  line 1 latitude, signed microdegrees
    6   4  line 1 longitude, signed microdegrees
   10   1  bits 7-3: line 3 categories present (urgent, urgent-surgical, priority, routine, convenience);
           bits 2-0: line 4 (hoist, extraction, ventilator; none set: A none)
   11   k  one count (1-99) per line 3 category present, in that order
    .   1  line 5 litter (0-99)
    .   1  line 5 ambulatory (0-99)
    .  1+n line 2 frequency: length n, then n bytes of UTF-8
    .  1+n line 2 call sign
    .  1+n line 2 suffix (length 0: none)
  then, for both kinds, sections until the end, each a tag byte and its value:
    0x06 1   line 6 security: ASCII N, P, E or X
    0x16 1+n line 6 wounds (text)
    0x07 1   line 7 marking: 0 panels, 1 pyrotechnic, 2 smoke, 3 none, 4 other
    0x17 1+n line 7 marking detail (text)
    0x08 1+2m line 8: m, then m pairs (category index in NATIONALITY_CATEGORIES, count)
    0x09 1   line 9 CBRN: bits 3-0 chemical, biological, radiological, nuclear (0: none)
    0x19 1+n line 9 terrain (text)
    0x0C 2+  a MIST-AT casualty (below)
    0x0E 1+n remarks (text)
  a casualty: 2 bytes of presence bits (bit 15 first) then the values present, in this order:
    15 zap 1+n | 14 age 1 | 13 sex 1 (M, F, U) | 12 mechanism 1 (index in MECHANISMS) | 11 precedence 1
    (index in PRECEDENCES) | 10 time of injury 4 (minutes since 1970-01-01 UTC) | 9 pulse 2 | 8 resp rate 1 |
    7 SpO2 1 | 6 systolic 2 | 5 diastolic 1 | 4 GCS 1 | 3 AVPU 1 (A, V, P, U) | 2 temperature 2 (tenths of
    a degree C) | 1 treatments 1+m (m codes: index in TREATMENTS) | 0 injuries 1+m texts (1+n each)
"""

from __future__ import annotations

import struct
from datetime import datetime, timezone

from casevac.codes import MECHANISMS, NATIONALITY_CATEGORIES, TREATMENTS
from casevac.precedence import PRECEDENCES

MAGIC = 0x91
KIND_NEW = 0x01
KIND_COMPLETE = 0x02
MAX_BYTES = 340  # Iridium SBD, mobile-originated (RockBLOCK)
LINES_1_TO_5_BUDGET = 50
EQUIPMENT = ("hoist", "extraction", "ventilator")
MARKING = ("panels", "pyrotechnic", "smoke", "none", "other")
CBRN = ("chemical", "biological", "radiological", "nuclear")
SECURITY = ("N", "P", "E", "X")
AVPU = ("A", "V", "P", "U")
SEXES = ("M", "F", "U")
TAG_SECURITY, TAG_WOUNDS, TAG_MARKING, TAG_MARKING_DETAIL = 0x06, 0x16, 0x07, 0x17
TAG_NATIONALITY, TAG_CBRN, TAG_TERRAIN, TAG_CASUALTY, TAG_REMARKS = 0x08, 0x09, 0x19, 0x0C, 0x0E
# Casualty presence bits, most significant first.
CASUALTY_FIELDS = (
    "zap",
    "age",
    "sex",
    "mechanism",
    "precedence",
    "time_of_injury",
    "pulse",
    "resp_rate",
    "spo2",
    "sbp",
    "dbp",
    "gcs",
    "avpu",
    "temp_c",
    "treatments",
    "injuries",
)
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


class SbdError(ValueError):
    """A message that cannot be read (or written): `where` names the part, as in the layout above."""

    def __init__(self, where: str, message: str):
        self.where = where
        self.message = message
        super().__init__(f"{where}: {message}")


def _vocabularies():
    # NATIONALITY_CATEGORIES is the mission's configured list (casevac.codes.configure), read at each call.
    return MECHANISMS, NATIONALITY_CATEGORIES, TREATMENTS


# ---- encoding -------------------------------------------------------------------------------------


def encode(body: dict, *, kind: int = KIND_NEW, max_bytes: int = MAX_BYTES) -> bytes:
    """A request body (the keys of POST /casevac/requests) as an SBD message. Lines 6-9 and remarks must
    fit (else SbdError); casualties are added in order while they fit in max_bytes."""
    out = bytearray([MAGIC, kind])
    if kind == KIND_NEW:
        out += _lines_1_to_5(body)
    elif kind != KIND_COMPLETE:
        raise SbdError("kind", "0x01 (new request) or 0x02 (completion)")
    out += _optional_sections(body)
    if len(out) > max_bytes:
        raise SbdError("message", f"{len(out)} bytes: more than {max_bytes} before any casualty")
    for casualty in body.get("casualties") or []:
        section = bytes([TAG_CASUALTY]) + _casualty(casualty)
        if len(out) + len(section) > max_bytes:
            break
        out += section
    return bytes(out)


def _text(value: str, where: str) -> bytes:
    raw = value.encode("utf-8", "surrogatepass")
    if len(raw) > 255:
        raise SbdError(where, "at most 255 bytes of UTF-8")
    return bytes([len(raw)]) + raw


def _micro(value: float) -> int:
    return int(round(value * 1_000_000))


def _lines_1_to_5(body: dict) -> bytes:
    location = body["location"]
    if "lat" not in location or "lon" not in location:
        from casevac import geo

        point = geo.parse_location(location)
        location = {"lat": point.lat, "lon": point.lon}
    patients = body["patients"]
    equipment = [e for e in body.get("equipment") or [] if e != "none"]
    flags = 0
    for i, name in enumerate(PRECEDENCES):
        if patients.get(name):
            flags |= 0x80 >> i
    for i, name in enumerate(EQUIPMENT):
        if name in equipment:
            flags |= 0x04 >> i
    out = bytearray(struct.pack(">iiB", _micro(location["lat"]), _micro(location["lon"]), flags))
    out += bytes(patients[name] for name in PRECEDENCES if patients.get(name))
    out += bytes([body["litter"], body["ambulatory"]])
    out += _text(body["frequency"], "line 2 frequency") + _text(body["callsign"], "line 2 call sign")
    out += _text(body.get("suffix") or "", "line 2 suffix")
    return bytes(out)


def _optional_sections(body: dict) -> bytes:
    _, categories, _ = _vocabularies()
    out = bytearray()
    if body.get("security") is not None:
        out += bytes([TAG_SECURITY]) + body["security"].encode("ascii")
    if body.get("wounds"):
        out += bytes([TAG_WOUNDS]) + _text(body["wounds"], "line 6 wounds")
    if body.get("marking") is not None:
        out += bytes([TAG_MARKING, MARKING.index(body["marking"])])
    if body.get("marking_detail"):
        out += bytes([TAG_MARKING_DETAIL]) + _text(body["marking_detail"], "line 7 marking detail")
    if body.get("nationality") is not None:
        items = list(body["nationality"].items())
        out += bytes([TAG_NATIONALITY, len(items)])
        for name, count in items:
            out += bytes([categories.index(name), count])
    if body.get("cbrn") is not None:
        bits = 0
        for name in body["cbrn"]:
            bits |= 0x08 >> CBRN.index(name)
        out += bytes([TAG_CBRN, bits])
    if body.get("terrain"):
        out += bytes([TAG_TERRAIN]) + _text(body["terrain"], "line 9 terrain")
    if body.get("remarks"):
        out += bytes([TAG_REMARKS]) + _text(body["remarks"], "remarks")
    return bytes(out)


def _casualty(casualty: dict) -> bytes:
    mechanisms, _, treatments = _vocabularies()
    signs = casualty.get("signs") or {}
    values = {**{k: v for k, v in casualty.items() if k != "signs"}, **signs}
    bits, out = 0, bytearray()
    for position, name in enumerate(CASUALTY_FIELDS):
        value = values.get(name)
        if value is None or (name in ("treatments", "injuries", "zap") and not value):
            continue
        bits |= 0x8000 >> position
        if name == "zap":
            out += _text(value, "casualty zap")
        elif name in ("age", "resp_rate", "spo2", "dbp", "gcs"):
            out.append(value)
        elif name in ("pulse", "sbp"):
            out += struct.pack(">H", value)
        elif name in ("sex", "avpu"):
            out += value.encode("ascii")
        elif name == "mechanism":
            out.append(mechanisms.index(value))
        elif name == "precedence":
            out.append(PRECEDENCES.index(value))
        elif name == "time_of_injury":
            moment = value if isinstance(value, datetime) else datetime.fromisoformat(value.replace("Z", "+00:00"))
            out += struct.pack(">I", int((moment - _EPOCH).total_seconds() // 60))
        elif name == "temp_c":
            out += struct.pack(">H", int(round(value * 10)))
        elif name == "treatments":
            out.append(len(value))
            out += bytes(treatments.index(t["code"]) for t in value)
        elif name == "injuries":
            out.append(len(value))
            for injury in value:
                out += _text(injury, "casualty injuries")
    return struct.pack(">H", bits) + bytes(out)


# ---- decoding -------------------------------------------------------------------------------------


class _Reader:
    def __init__(self, data: bytes):
        self.data = data
        self.pos = 0

    def take(self, count: int, where: str) -> bytes:
        if self.pos + count > len(self.data):
            raise SbdError(
                where, f"the message ends at byte {len(self.data)}: {count} more expected at byte {self.pos}"
            )
        chunk = self.data[self.pos : self.pos + count]
        self.pos += count
        return chunk

    def byte(self, where: str) -> int:
        return self.take(1, where)[0]

    def text(self, where: str) -> str:
        length = self.byte(where)
        raw = self.take(length, where)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise SbdError(where, "not UTF-8") from None

    def done(self) -> bool:
        return self.pos >= len(self.data)


def decode(data: bytes) -> dict:
    """The API body the message carries (keys of POST /casevac/requests), plus `kind` ("new" or
    "complete") and `lines` (the line numbers present). Raises SbdError naming the part."""
    mechanisms, categories, treatments = _vocabularies()
    reader = _Reader(bytes(data))
    if reader.byte("header") != MAGIC:
        raise SbdError("header", f"byte 0 must be 0x{MAGIC:02X} (9-line, version 1)")
    kind = reader.byte("kind")
    body: dict = {}
    lines: list[int] = []
    if kind == KIND_NEW:
        lat, lon, flags = struct.unpack(">iiB", reader.take(9, "line 1"))
        if not (-90_000_000 <= lat <= 90_000_000 and -180_000_000 <= lon <= 180_000_000):
            raise SbdError("line 1", "latitude -90..90 and longitude -180..180 degrees")
        body["location"] = {"lat": lat / 1_000_000, "lon": lon / 1_000_000}
        patients = {}
        for i, name in enumerate(PRECEDENCES):
            count = reader.byte("line 3") if flags & (0x80 >> i) else 0
            if flags & (0x80 >> i) and not 1 <= count <= 99:
                raise SbdError("line 3", f"{name} count {count}: 1 to 99 when present")
            patients[name] = count
        body["patients"] = patients
        body["equipment"] = [name for i, name in enumerate(EQUIPMENT) if flags & (0x04 >> i)]
        body["litter"], body["ambulatory"] = reader.byte("line 5"), reader.byte("line 5")
        if body["litter"] > 99 or body["ambulatory"] > 99:
            raise SbdError("line 5", "counts 0 to 99")
        if sum(patients.values()) != body["litter"] + body["ambulatory"]:
            raise SbdError(
                "line 5",
                f"litter + ambulatory ({body['litter'] + body['ambulatory']}) must equal "
                f"the patients of line 3 ({sum(patients.values())})",
            )
        if not patients or sum(patients.values()) < 1:
            raise SbdError("line 3", "at least one patient")
        body["frequency"] = reader.text("line 2 frequency")
        body["callsign"] = reader.text("line 2 call sign")
        suffix = reader.text("line 2 suffix")
        if suffix:
            body["suffix"] = suffix
        lines += [1, 2, 3, 4, 5]
    elif kind != KIND_COMPLETE:
        raise SbdError("kind", f"0x{kind:02X}: expected 0x01 (new request) or 0x02 (completion)")
    casualties = []
    while not reader.done():
        tag = reader.byte("section")
        if tag == TAG_SECURITY:
            code = chr(reader.byte("line 6 security"))
            if code not in SECURITY:
                raise SbdError("line 6 security", "N, P, E or X")
            body["security"] = code
            lines.append(6)
        elif tag == TAG_WOUNDS:
            body["wounds"] = reader.text("line 6 wounds")
            lines.append(6)
        elif tag == TAG_MARKING:
            index = reader.byte("line 7 marking")
            if index >= len(MARKING):
                raise SbdError("line 7 marking", "0 panels, 1 pyrotechnic, 2 smoke, 3 none, 4 other")
            body["marking"] = MARKING[index]
            lines.append(7)
        elif tag == TAG_MARKING_DETAIL:
            body["marking_detail"] = reader.text("line 7 marking detail")
        elif tag == TAG_NATIONALITY:
            nationality = {}
            for _ in range(reader.byte("line 8")):
                index, count = reader.byte("line 8"), reader.byte("line 8")
                if index >= len(categories) or count > 99:
                    raise SbdError("line 8", f"category index 0-{len(categories) - 1} and a count 0-99")
                nationality[categories[index]] = count
            body["nationality"] = nationality
            lines.append(8)
        elif tag == TAG_CBRN:
            bits = reader.byte("line 9 CBRN")
            if bits > 0x0F:
                raise SbdError("line 9 CBRN", "bits 3-0 only (chemical, biological, radiological, nuclear)")
            body["cbrn"] = [name for i, name in enumerate(CBRN) if bits & (0x08 >> i)]
            lines.append(9)
        elif tag == TAG_TERRAIN:
            body["terrain"] = reader.text("line 9 terrain")
            lines.append(9)
        elif tag == TAG_REMARKS:
            body["remarks"] = reader.text("remarks")
        elif tag == TAG_CASUALTY:
            casualties.append(_read_casualty(reader, len(casualties) + 1, mechanisms, treatments))
        else:
            raise SbdError("section", f"unknown tag 0x{tag:02X} at byte {reader.pos - 1}")
    if casualties:
        body["casualties"] = casualties
    body["kind"] = "new" if kind == KIND_NEW else "complete"
    body["lines"] = sorted(set(lines))
    return body


def _read_casualty(reader: _Reader, number: int, mechanisms, treatments) -> dict:
    where = f"casualty {number}"
    (bits,) = struct.unpack(">H", reader.take(2, where))
    casualty: dict = {}
    signs: dict = {}
    for position, name in enumerate(CASUALTY_FIELDS):
        if not bits & (0x8000 >> position):
            continue
        part = f"{where} {name}"
        if name == "zap":
            casualty["zap"] = reader.text(part)
        elif name in ("age", "resp_rate", "spo2", "dbp", "gcs"):
            value = reader.byte(part)
            (casualty if name == "age" else signs)[name] = value
        elif name in ("pulse", "sbp"):
            signs[name] = struct.unpack(">H", reader.take(2, part))[0]
        elif name in ("sex", "avpu"):
            value = chr(reader.byte(part))
            if value not in (SEXES if name == "sex" else AVPU):
                raise SbdError(part, "one of " + ", ".join(SEXES if name == "sex" else AVPU))
            (casualty if name == "sex" else signs)[name] = value
        elif name == "mechanism":
            index = reader.byte(part)
            if index >= len(mechanisms):
                raise SbdError(part, f"index 0-{len(mechanisms) - 1} in MECHANISMS")
            casualty["mechanism"] = mechanisms[index]
        elif name == "precedence":
            index = reader.byte(part)
            if index >= len(PRECEDENCES):
                raise SbdError(part, "index 0-4: urgent, urgent_surgical, priority, routine, convenience")
            casualty["precedence"] = PRECEDENCES[index]
        elif name == "time_of_injury":
            minutes = struct.unpack(">I", reader.take(4, part))[0]
            moment = datetime.fromtimestamp(minutes * 60, tz=timezone.utc)
            casualty["time_of_injury"] = moment.isoformat().replace("+00:00", "Z")
        elif name == "temp_c":
            signs["temp_c"] = struct.unpack(">H", reader.take(2, part))[0] / 10
        elif name == "treatments":
            codes = []
            for _ in range(reader.byte(part)):
                index = reader.byte(part)
                if index >= len(treatments):
                    raise SbdError(part, f"index 0-{len(treatments) - 1} in TREATMENTS")
                codes.append({"code": treatments[index]})
            casualty["treatments"] = codes
        elif name == "injuries":
            casualty["injuries"] = [reader.text(part) for _ in range(reader.byte(part))]
    if signs:
        casualty["signs"] = signs
    return casualty
