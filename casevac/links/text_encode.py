"""The 9-line written as text (docs/casevac.md "The 9-line as text"): the encoder of the radio format that
casevac.links.text parses, for replies and for relaying a request over voice or chat."""

from __future__ import annotations

import re

from casevac import geo
from casevac.codes import NATIONALITY_CATEGORIES
from casevac.links.text_codes import (
    CBRN_CODES,
    EQUIPMENT_CODES,
    LINE_WORD,
    MARKER,
    MARKER_GLUED,
    MARKING_CODES,
    PREAMBLE,
    PRECEDENCE_CODES,
    SEPARATORS,
    TYPE_CODES,
)


def encode(
    request: dict,
    *,
    lines: tuple[int, ...] | list[int] | None = None,
    nationality_categories: list[str] | tuple[str, ...] | None = None,
) -> str:
    """A request (an API body or a request view: the keys of POST /casevac/requests) as 9-line text.
    `lines`: which lines to write (default: 1-5 and those of 6-9 the request has)."""
    if nationality_categories is None:
        nationality_categories = NATIONALITY_CATEGORIES  # configured in place (casevac.codes.configure)
    wanted = (
        list(lines)
        if lines is not None
        else [1, 2, 3, 4, 5]
        + [
            n
            for n, present in (
                (6, _has(request, "security", "wounds")),
                (7, _has(request, "marking")),
                (8, _has(request, "nationality")),
                (9, _has(request, "cbrn", "terrain")),
            )
            if present
        ]
    )
    parts: list[str] = []
    for number in wanted:
        parts.append(str(number))
        parts.append(_ENCODERS[number](request, nationality_categories))
    return " ".join(part for part in parts if part != "")


def _has(request: dict, *names: str) -> bool:
    return any(request.get(name) is not None and request.get(name) != "" for name in names)


def quote(text: str) -> str:
    return '"' + re.sub('(["\u201c\u201d])', r"\1\1", text) + '"'


def _free(text: str) -> str:
    """A word as it is when the parser reads it back unchanged, else quoted."""
    if (
        not text
        or any(char.isspace() or char in SEPARATORS or char in '"\u201c\u201d' for char in text)
        or MARKER.match(text)
        or MARKER_GLUED.match(text)
        or LINE_WORD.match(text)
        or text.upper() in PREAMBLE
    ):
        return quote(text)
    return text


def _encode1(request, categories):
    """The grid (what the field reads off a map); decimal degrees where the grid cannot be read back (the
    mgrs package writes some points on the equator in a southern band it then refuses)."""
    location = request["location"]
    if location.get("mgrs"):
        reference = location["mgrs"]
    else:
        reference = geo.parse_location({k: v for k, v in location.items() if k in ("lat", "lon", "text")}).mgrs
    # The mgrs package writes zones 1-9 with a leading zero ("01N..."), which the API's grid reading refuses.
    reference = re.sub(r"^0(?=\d)", "", re.sub(r"\s+", "", reference).upper())
    try:
        geo.from_mgrs(reference)
        return reference
    except geo.LocationError:
        point = geo.parse_location({k: v for k, v in location.items() if k in ("lat", "lon", "text")})
        return f"{point.lat:.6f} {point.lon:.6f}"


def _encode2(request, categories):
    out = [_free(request["frequency"]), _free(request["callsign"])]
    if request.get("suffix"):
        out.append(_free(request["suffix"]))
    return " ".join(out)


def _encode3(request, categories):
    patients = request["patients"]
    return " ".join(f"{patients[name]}{code}" for code, name in PRECEDENCE_CODES.items() if patients.get(name))


def _encode4(request, categories):
    letters = {name: code for code, name in EQUIPMENT_CODES.items() if name}
    equipment = [e for e in (request.get("equipment") or []) if e != "none"]
    return "".join(letters[e] for e in equipment) or "A"


def _encode5(request, categories):
    return " ".join(f"{request[name]}{code}" for code, name in TYPE_CODES.items() if request.get(name))


def _encode6(request, categories):
    parts = [request["security"]] if request.get("security") else []
    if request.get("wounds"):
        parts.append(quote(request["wounds"]))
    return " ".join(parts)


def _encode7(request, categories):
    code = {name: code for code, name in MARKING_CODES.items()}[request["marking"]]
    return code + (" " + quote(request["marking_detail"]) if request.get("marking_detail") else "")


def _encode8(request, categories):
    letters = {name: chr(ord("A") + i) for i, name in enumerate(categories[:26])}
    items = [(name, count) for name, count in (request.get("nationality") or {}).items()]
    if not items:
        return "NONE"
    return " ".join(f"{count}{letters[name]}" if name in letters else f"{count}{name.upper()}" for name, count in items)


def _encode9(request, categories):
    parts = []
    if request.get("cbrn") is not None:
        letters = {name: code for code, name in CBRN_CODES.items()}
        parts.append("".join(letters[name] for name in request["cbrn"]) or "NONE")
    if request.get("terrain"):
        parts.append(quote(request["terrain"]))
    return " ".join(parts)


_ENCODERS = {
    1: _encode1,
    2: _encode2,
    3: _encode3,
    4: _encode4,
    5: _encode5,
    6: _encode6,
    7: _encode7,
    8: _encode8,
    9: _encode9,
}
