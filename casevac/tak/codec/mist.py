"""A casualty's MIST card (`<zMist>`: z ZAP, m mechanism, i injuries, s signs, t treatments) both ways, with
the exact API record in its `un` attribute for our own round trip (ATAK shows and edits z, m, i, s and t)."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET  # nosec B405 - a type only; parsing goes through defusedxml
from datetime import datetime

from casevac.codes import MECHANISMS, TREATMENTS, VITAL_RANGES
from casevac.tak.codec.vocabulary import VITAL_LABELS, clean, xml_text

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
# What medics type for a mechanism (MIST "M") -> casevac.codes.MECHANISMS.
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


def read(mist: ET.Element, notes: list[str]) -> dict:
    exact = {}
    if mist.get("un"):
        try:
            exact = json.loads(mist.get("un"))
        except ValueError:
            exact = {}
        if not isinstance(exact, dict):
            exact = {}
    out: dict = {}
    zap = clean(mist.get("z")) or clean(mist.get("title"))
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
    low, high = VITAL_RANGES[name]
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


def write(casualty: dict, position: int) -> dict:
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
        "title": xml_text(casualty.get("zap") or f"casualty {position + 1}"),
        "z": xml_text(casualty.get("zap") or ""),
        "m": xml_text(mechanism),
        "i": xml_text(_join(casualty.get("injuries") or [])),
        "s": ", ".join(vitals),
        "t": xml_text(_join(t["code"] + (f" {str(t['at'])[11:16]}Z" if t.get("at") else "") for t in treatments)),
    }
    if exact:
        out["un"] = xml_text(json.dumps(exact, separators=(",", ":"), default=_iso, ensure_ascii=False))
    return out


def _iso(value) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)
