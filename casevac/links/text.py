"""The 9-line as text, in the radio format medics already use (DOMAIN.md section 1; docs/casevac.md
"The 9-line as text"): line numbers, each followed by that line's codes.

    1 34NBK3497887318 2 38.90 BRAVO26 3 1A 1B 4 A 5 2L 6 P 7 C 8 2A 9 N

`parse` reads it as leniently as a radio operator would: any case; `1`, `L1`, `LINE 1`, `1:`, `1.`,
`1)` as line markers; commas, semicolons, slashes, bars and new lines as spaces; `1A` or `A1` for counts.
Lines 1-5 come together, in order (lines 6-9 may follow, in any subset, in the same or a later message);
a message of lines 6-9 only completes a request. Free text that would otherwise be misread (a call sign
with a space, line 6 wounds, line 9 terrain) goes in double quotes, `""` for a quote inside. Errors are
`TextError`s naming the line and what it expects.

`encode` writes a request (an API body or view) back in the same form; `parse(encode(x))` gives back the
lines it carries (hypothesis checks it in tests/casevac/links/test_text.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from casevac import geo
from casevac.requests.models import PRECEDENCES

# Line 3 codes (DOMAIN.md section 1): A urgent, B urgent-surgical, C priority, D routine, E convenience.
PRECEDENCE_CODES = dict(zip("ABCDE", PRECEDENCES, strict=False))
PRECEDENCE_WORDS = {
    "URGENT": "urgent",
    "URG": "urgent",
    "SURGICAL": "urgent_surgical",
    "SURG": "urgent_surgical",
    "URGENT-SURGICAL": "urgent_surgical",
    "URGENT_SURGICAL": "urgent_surgical",
    "PRIORITY": "priority",
    "PRI": "priority",
    "ROUTINE": "routine",
    "ROU": "routine",
    "CONVENIENCE": "convenience",
    "CONV": "convenience",
}
# Line 4: A none, B hoist, C extraction equipment, D ventilator.
EQUIPMENT_CODES = {"A": None, "B": "hoist", "C": "extraction", "D": "ventilator"}
EQUIPMENT_WORDS = {
    "NONE": None,
    "HOIST": "hoist",
    "EXTRACTION": "extraction",
    "EXTRACT": "extraction",
    "VENTILATOR": "ventilator",
    "VENT": "ventilator",
}
# Line 5: L litter, A ambulatory.
TYPE_CODES = {"L": "litter", "A": "ambulatory"}
TYPE_WORDS = {"LITTER": "litter", "LIT": "litter", "AMBULATORY": "ambulatory", "AMB": "ambulatory"}
# Line 6 (wartime): N no enemy, P possible enemy, E enemy in area, X armed escort required.
SECURITY = ("N", "P", "E", "X")
# Line 7: A panels, B pyrotechnic, C smoke, D none, E other.
MARKING_CODES = dict(zip("ABCDE", ("panels", "pyrotechnic", "smoke", "none", "other"), strict=False))
MARKING_WORDS = {
    "PANELS": "panels",
    "PANEL": "panels",
    "PYROTECHNIC": "pyrotechnic",
    "PYRO": "pyrotechnic",
    "FLARE": "pyrotechnic",
    "SMOKE": "smoke",
    "NONE": "none",
    "OTHER": "other",
}
# Line 9 (wartime): C chemical, B biological, R radiological, N nuclear; NONE (or 0) for no contamination.
CBRN_CODES = {"C": "chemical", "B": "biological", "R": "radiological", "N": "nuclear"}
CBRN_NONE = ("NONE", "0", "-", "NIL")
# Words a medic may put before line 1.
PREAMBLE = {
    "9LINE",
    "9-LINE",
    "NINE-LINE",
    "NINELINE",
    "MEDEVAC",
    "CASEVAC",
    "MEDEVAC:",
    "CASEVAC:",
    "9LINE:",
    "9-LINE:",
}
SEPARATORS = ",;/|"
SMS_LENGTH = 160

_MARKER = re.compile(r"^(?:L|LN|LINE)?([1-9])[:.)=\-]?$", re.IGNORECASE)
# "1:34NBK...", "L2=38.90", "3)1A", "1.34NBK..." (but not "4.5": a decimal number is not glued to a marker).
_MARKER_GLUED = re.compile(r"^((?:L|LN|LINE)?[1-9])(?:[:=)]|\.(?!\d+$))(.+)$", re.IGNORECASE)
_LINE_WORD = re.compile(r"^(?:L|LN|LINE)$", re.IGNORECASE)
_COUNT_FIRST = re.compile(r"(\d{1,2})[X*]?([A-Z][A-Z_-]*?)(?=\d|$)")
_NUMBER = re.compile(r"^[+-]?\d{1,3}(?:\.\d+)?$")


class TextError(ValueError):
    """A 9-line text that cannot be read: `line` (1-9, or None for the message as a whole) and what it
    expects, in words a medic can act on."""

    def __init__(self, line: int | None, message: str):
        self.line = line
        self.message = message
        super().__init__(f"line {line}: {message}" if line else message)


@dataclass(frozen=True)
class _Token:
    text: str
    quoted: bool = False


# ---- parsing --------------------------------------------------------------------------------------


def parse(text: str, *, nationality_categories: list[str] | tuple[str, ...] | None = None) -> dict:
    """The API body of the lines the text carries (keys as in POST /casevac/requests), plus `lines`: the
    line numbers read. Raises TextError."""
    if nationality_categories is None:
        from casevac.requests import schemas

        nationality_categories = schemas.NATIONALITY_CATEGORIES
    tokens = _tokens(text)
    while tokens and not tokens[0].quoted and tokens[0].text.upper() in PREAMBLE:
        tokens.pop(0)
    if not tokens:
        raise TextError(None, "empty message: send lines 1-5, e.g. 1 34NBK3497887318 2 38.90 BRAVO26 3 1A 4 A 5 1L")
    lines = _split_lines(tokens)
    body: dict = {}
    for number, values in lines:
        _LINE_READERS[number](body, values, number, nationality_categories)
    numbers = [number for number, _ in lines]
    if 1 in numbers:
        total3 = sum(body["patients"].values())
        total5 = body["litter"] + body["ambulatory"]
        if total3 != total5:  # DOMAIN.md section 1, consistency rule: line 3 total equals line 5 total.
            raise TextError(
                5,
                f"{body['litter']} litter + {body['ambulatory']} ambulatory = {total5}, "
                f"but line 3 counts {total3} patients: the totals must be equal",
            )
    body["lines"] = numbers
    return body


def _tokens(text: str) -> list[_Token]:
    """Words and "quoted text" ("" inside quotes is one quote); separators outside quotes are spaces."""
    if not isinstance(text, str):
        raise TextError(None, "the message is not text")
    out: list[_Token] = []
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        if char.isspace() or char in SEPARATORS:
            i += 1
            continue
        if char in '"\u201c\u201d':
            chunk, i = [], i + 1
            while True:
                if i >= n:
                    raise TextError(None, 'a quote is not closed: end quoted text with "')
                if text[i] in '"\u201c\u201d':
                    if i + 1 < n and text[i + 1] == text[i]:
                        chunk.append(text[i])
                        i += 2
                        continue
                    i += 1
                    break
                chunk.append(text[i])
                i += 1
            out.append(_Token("".join(chunk), quoted=True))
            continue
        start = i
        while i < n and not text[i].isspace() and text[i] not in SEPARATORS and text[i] not in '"\u201c\u201d':
            i += 1
        word = text[start:i]
        glued = _MARKER_GLUED.match(word)
        if glued:
            out.extend([_Token(glued.group(1)), _Token(glued.group(2))])
        else:
            out.append(_Token(word))
    return out


def _marker(tokens: list[_Token], i: int) -> tuple[int, int] | None:
    """(line number, tokens it takes) when a line marker starts at tokens[i]."""
    token = tokens[i]
    if token.quoted:
        return None
    match = _MARKER.match(token.text)
    if match:
        return int(match.group(1)), 1
    if _LINE_WORD.match(token.text) and i + 1 < len(tokens) and not tokens[i + 1].quoted:
        follow = re.match(r"^([1-9])[:.)=\-]?$", tokens[i + 1].text)
        if follow:
            return int(follow.group(1)), 2
    return None


def _split_lines(tokens: list[_Token]) -> list[tuple[int, list[_Token]]]:
    """Cut the tokens at the line markers. Lines 1-5 come together and in order, so inside them only the
    next line's number is a marker (a bare 4 in a DMS line 1 is not line 4); from line 5 on, any higher
    line number is one (lines 6-9 may each be left out)."""
    first = _marker(tokens, 0)
    if first is None:
        raise TextError(None, f"start with a line number (1, L1 or LINE 1:), not {tokens[0].text!r}")
    if 2 <= first[0] <= 5:
        raise TextError(1, "lines 1-5 come together: start with line 1 (or send lines 6-9 alone to complete a request)")
    lines: list[tuple[int, list[_Token]]] = [(first[0], [])]
    i = first[1]
    while i < len(tokens):
        current = lines[-1][0]
        found = _marker(tokens, i)
        if found is not None and (found[0] == current + 1 or (current >= 5 and found[0] > current)):
            lines.append((found[0], []))
            i += found[1]
            continue
        lines[-1][1].append(tokens[i])
        i += 1
    numbers = [number for number, _ in lines]
    if numbers[0] == 1:
        missing = [n for n in range(1, 6) if n not in numbers]
        if missing:
            raise TextError(missing[0], f"missing: lines 1-5 are all needed on first contact ({_EXPECTS[missing[0]]})")
    for number, values in lines:
        if not values:
            raise TextError(number, f"empty: expected {_EXPECTS[number]}")
    return lines


_EXPECTS = {
    1: "the pickup site: an MGRS grid (34NBK3497887318) or lat lon (4.3612 18.5550)",
    2: "frequency, call sign and optional suffix (38.90 BRAVO26)",
    3: "patients by precedence as count and code (1A 2C): A urgent, B urgent-surgical, C priority, D routine, "
    "E convenience",
    4: "special equipment: A none, B hoist, C extraction, D ventilator (e.g. A, or B D)",
    5: "patients by type as count and code (2L 1A): L litter, A ambulatory",
    6: "security N (no enemy), P (possible enemy), E (enemy in area) or X (armed escort), and/or the wounds as text",
    7: "marking A panels, B pyrotechnic, C smoke, D none or E other (then optional detail)",
    8: "nationality as count and code (2A)",
    9: "CBRN codes C, B, R, N (or NONE), and/or the terrain as text",
}


def _words(values: list[_Token]) -> str:
    return " ".join(token.text for token in values)


def _line1(body, values, number, categories):
    if len(values) == 1 and values[0].quoted:
        location = {"text": values[0].text}
        compact = re.sub(r"\s+", "", values[0].text).upper()
        if geo._MGRS_PATTERN.match(compact):
            location = {"mgrs": compact}
    else:
        joined = _words(values)
        compact = re.sub(r"\s+", "", joined).upper()
        numbers = [t.text for t in values]
        if geo._MGRS_PATTERN.match(compact):
            location = {"mgrs": compact}
        elif len(numbers) == 2 and all(_NUMBER.match(v) for v in numbers):
            location = {"lat": float(numbers[0]), "lon": float(numbers[1])}
        else:
            location = {"text": joined}
    try:
        geo.parse_location(location)
    except geo.LocationError as exc:
        raise TextError(number, f"{exc.message}; expected {_EXPECTS[1]}") from None
    body["location"] = location


def _line2(body, values, number, categories):
    if len(values) < 2:
        raise TextError(number, f"expected {_EXPECTS[2]}, got {_words(values)!r}")
    if len(values) > 3:
        raise TextError(
            number, f'expected {_EXPECTS[2]}: {len(values)} items; quote a call sign with spaces ("BRAVO 2 6")'
        )
    for token, name, limit in zip(values, ("frequency", "callsign", "suffix"), (32, 64, 16), strict=False):
        if not token.text or len(token.text) > limit:
            raise TextError(number, f"the {name.replace('callsign', 'call sign')} must be 1 to {limit} characters")
    body["frequency"], body["callsign"] = values[0].text, values[1].text
    if len(values) == 3:
        body["suffix"] = values[2].text


def _counts(values, number, codes: dict, words: dict, what: str) -> dict[str, int]:
    """count+code items (1A, A1, 2URGENT, A-1, 1xA) into {name: count}; a code given twice is an error."""
    out: dict[str, int] = {}
    for token in values:
        item = token.text.upper()
        pairs = _count_pairs(item, codes, words)
        if pairs is None:
            raise TextError(number, f"{token.text!r} is not a count and code: expected {what}")
        for name, count in pairs:
            if name in out:
                raise TextError(number, f"{name.replace('_', '-')} is given twice: expected {what}")
            out[name] = count
    return out


def _count_pairs(item: str, codes: dict, words: dict) -> list[tuple[str, int]] | None:
    vocabulary = {**codes, **words}
    # count first: 1A, 1A2C, 2URGENT, 1XA, 1*A
    pairs, pos = [], 0
    pattern = re.compile(
        r"(\d{1,2})[X*:]?(" + "|".join(sorted(map(re.escape, vocabulary), key=len, reverse=True)) + r")"
    )
    while pos < len(item):
        match = pattern.match(item, pos)
        if not match:
            break
        pairs.append((vocabulary[match.group(2)], int(match.group(1))))
        pos = match.end()
    if pos == len(item) and pairs:
        return pairs
    # code first: A1, A1C2, A-1, A:1
    pairs, pos = [], 0
    pattern = re.compile(
        r"(" + "|".join(sorted(map(re.escape, vocabulary), key=len, reverse=True)) + r")[X*:-]?(\d{1,2})"
    )
    while pos < len(item):
        match = pattern.match(item, pos)
        if not match:
            return None
        pairs.append((vocabulary[match.group(1)], int(match.group(2))))
        pos = match.end()
    return pairs or None


def _line3(body, values, number, categories):
    counts = _counts(values, number, PRECEDENCE_CODES, PRECEDENCE_WORDS, _EXPECTS[3])
    if sum(counts.values()) < 1:
        raise TextError(number, f"at least one patient: expected {_EXPECTS[3]}")
    body["patients"] = {name: counts.get(name, 0) for name in PRECEDENCES}


def _line4(body, values, number, categories):
    equipment: list[str] = []
    none = False
    for token in values:
        item = token.text.upper()
        if item in EQUIPMENT_WORDS:
            names = [EQUIPMENT_WORDS[item]]
        elif item and all(char in EQUIPMENT_CODES for char in item):
            names = [EQUIPMENT_CODES[char] for char in item]
        else:
            raise TextError(number, f"{token.text!r} is not an equipment code: expected {_EXPECTS[4]}")
        for name in names:
            if name is None:
                none = True
            elif name not in equipment:
                equipment.append(name)
    if none and equipment:
        raise TextError(number, "A (none) cannot be combined with B hoist, C extraction or D ventilator")
    body["equipment"] = equipment


def _line5(body, values, number, categories):
    counts = _counts(values, number, TYPE_CODES, TYPE_WORDS, _EXPECTS[5])
    body["litter"], body["ambulatory"] = counts.get("litter", 0), counts.get("ambulatory", 0)
    if body["litter"] + body["ambulatory"] < 1:
        raise TextError(number, f"at least one patient: expected {_EXPECTS[5]}")


def _line6(body, values, number, categories):
    """A security code, then optional wounds text (both may be given); otherwise the text is the wounds."""
    rest = values
    if not values[0].quoted and values[0].text.upper() in SECURITY:
        body["security"] = values[0].text.upper()
        rest = values[1:]
    if rest:
        body["wounds"] = _words(rest)
        if len(body["wounds"]) > 500:
            raise TextError(number, "the wounds text is longer than 500 characters")


def _line7(body, values, number, categories):
    head = values[0]
    code = head.text.upper() if not head.quoted else ""
    marking = MARKING_CODES.get(code) or MARKING_WORDS.get(code)
    if marking is None:
        raise TextError(number, f"{head.text!r} is not a marking: expected {_EXPECTS[7]}")
    body["marking"] = marking
    if values[1:]:
        body["marking_detail"] = _words(values[1:])
        if len(body["marking_detail"]) > 200:
            raise TextError(number, "the marking detail is longer than 200 characters")


def _line8(body, values, number, categories):
    codes = {chr(ord("A") + i): name for i, name in enumerate(categories[:26])}
    words = {name.upper(): name for name in categories}
    what = _EXPECTS[8] + ": " + ", ".join(f"{code} {name}" for code, name in codes.items())
    if len(values) == 1 and not values[0].quoted and values[0].text.upper() in CBRN_NONE:
        body["nationality"] = {}
        return
    body["nationality"] = _counts(values, number, codes, words, what)


def _line9(body, values, number, categories):
    """CBRN codes (or NONE), then optional terrain text; otherwise the text is the terrain."""
    codes, rest = "", list(values)
    if not rest[0].quoted and rest[0].text.upper() in CBRN_NONE:
        body["cbrn"] = []
        rest = rest[1:]
    else:
        while (
            rest
            and not rest[0].quoted
            and rest[0].text
            and all(c in CBRN_CODES for c in rest[0].text.upper())
            and len(codes + rest[0].text) <= 4
        ):
            codes += rest.pop(0).text.upper()
        if codes:
            body["cbrn"] = [CBRN_CODES[char] for char in codes]
    if rest:
        body["terrain"] = _words(rest)
        if len(body["terrain"]) > 500:
            raise TextError(number, "the terrain text is longer than 500 characters")


_LINE_READERS = {1: _line1, 2: _line2, 3: _line3, 4: _line4, 5: _line5, 6: _line6, 7: _line7, 8: _line8, 9: _line9}


# ---- encoding -------------------------------------------------------------------------------------


def encode(
    request: dict,
    *,
    lines: tuple[int, ...] | list[int] | None = None,
    nationality_categories: list[str] | tuple[str, ...] | None = None,
) -> str:
    """A request (an API body or a request view: the keys of POST /casevac/requests) as 9-line text.
    `lines`: which lines to write (default: 1-5 and those of 6-9 the request has)."""
    if nationality_categories is None:
        from casevac.requests import schemas

        nationality_categories = schemas.NATIONALITY_CATEGORIES
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
        or _MARKER.match(text)
        or _MARKER_GLUED.match(text)
        or _LINE_WORD.match(text)
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
