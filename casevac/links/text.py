"""The 9-line as text, in the radio format medics already use (DOMAIN.md section 1; docs/casevac.md
"The 9-line as text"): line numbers, each followed by that line's codes.

    1 34NBK3497887318 2 38.90 BRAVO26 3 1A 1B 4 A 5 2L 6 P 7 C 8 2A 9 N

`parse` reads it as leniently as a radio operator would: any case; `1`, `L1`, `LINE 1`, `1:`, `1.`,
`1)` as line markers; commas, semicolons, slashes, bars and new lines as spaces; `1A` or `A1` for counts.
Lines 1-5 come together, in order (lines 6-9 may follow, in any subset, in the same or a later message);
a message of lines 6-9 only completes a request. Free text that would otherwise be misread (a call sign
with a space, line 6 wounds, line 9 terrain) goes in double quotes, `""` for a quote inside. Errors are
`TextError`s naming the line and what it expects.

The codes and spellings are casevac.links.text_codes; casevac.links.text_encode writes a request back in the
same form, and `parse(encode(x))` gives back the lines it carries (hypothesis checks it in
tests/casevac/links/test_text.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from casevac import geo
from casevac.codes import NATIONALITY_CATEGORIES
from casevac.links.text_codes import (
    CBRN_CODES,
    CBRN_NONE,
    EQUIPMENT_CODES,
    EQUIPMENT_WORDS,
    EXPECTS,
    LINE_WORD,
    MARKER,
    MARKER_GLUED,
    MARKING_CODES,
    MARKING_WORDS,
    NUMBER,
    PREAMBLE,
    PRECEDENCE_CODES,
    PRECEDENCE_WORDS,
    SECURITY,
    SEPARATORS,
    TYPE_CODES,
    TYPE_WORDS,
    TextError,
)
from casevac.precedence import PRECEDENCES

__all__ = ["TextError", "parse"]


@dataclass(frozen=True)
class _Token:
    text: str
    quoted: bool = False


# ---- parsing --------------------------------------------------------------------------------------


def parse(text: str, *, nationality_categories: list[str] | tuple[str, ...] | None = None) -> dict:
    """The API body of the lines the text carries (keys as in POST /casevac/requests), plus `lines`: the
    line numbers read. Raises TextError."""
    if nationality_categories is None:
        nationality_categories = NATIONALITY_CATEGORIES  # configured in place (casevac.codes.configure)
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
        glued = MARKER_GLUED.match(word)
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
    match = MARKER.match(token.text)
    if match:
        return int(match.group(1)), 1
    if LINE_WORD.match(token.text) and i + 1 < len(tokens) and not tokens[i + 1].quoted:
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
            raise TextError(missing[0], f"missing: lines 1-5 are all needed on first contact ({EXPECTS[missing[0]]})")
    for number, values in lines:
        if not values:
            raise TextError(number, f"empty: expected {EXPECTS[number]}")
    return lines


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
        elif len(numbers) == 2 and all(NUMBER.match(v) for v in numbers):
            location = {"lat": float(numbers[0]), "lon": float(numbers[1])}
        else:
            location = {"text": joined}
    try:
        geo.parse_location(location)
    except geo.LocationError as exc:
        raise TextError(number, f"{exc.message}; expected {EXPECTS[1]}") from None
    body["location"] = location


def _line2(body, values, number, categories):
    if len(values) < 2:
        raise TextError(number, f"expected {EXPECTS[2]}, got {_words(values)!r}")
    if len(values) > 3:
        raise TextError(
            number, f'expected {EXPECTS[2]}: {len(values)} items; quote a call sign with spaces ("BRAVO 2 6")'
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
    code = "(?P<code>" + "|".join(sorted(map(re.escape, vocabulary), key=len, reverse=True)) + ")"
    count = r"(?P<count>\d{1,2})"
    # Count first (1A, 1A2C, 2URGENT, 1XA, 1*A), else code first (A1, A1C2, A-1, A:1).
    for pattern in (count + "[X*:]?" + code, code + "[X*:-]?" + count):
        pairs = _pairs_covering(item, re.compile(pattern), vocabulary)
        if pairs:
            return pairs
    return None


def _pairs_covering(item: str, pattern: re.Pattern, vocabulary: dict) -> list[tuple[str, int]] | None:
    """(code, count) of each match of `pattern`, back to back from the start; None unless they cover the item."""
    pairs, pos = [], 0
    while pos < len(item):
        match = pattern.match(item, pos)
        if not match:
            return None
        pairs.append((vocabulary[match["code"]], int(match["count"])))
        pos = match.end()
    return pairs or None


def _line3(body, values, number, categories):
    counts = _counts(values, number, PRECEDENCE_CODES, PRECEDENCE_WORDS, EXPECTS[3])
    if sum(counts.values()) < 1:
        raise TextError(number, f"at least one patient: expected {EXPECTS[3]}")
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
            raise TextError(number, f"{token.text!r} is not an equipment code: expected {EXPECTS[4]}")
        for name in names:
            if name is None:
                none = True
            elif name not in equipment:
                equipment.append(name)
    if none and equipment:
        raise TextError(number, "A (none) cannot be combined with B hoist, C extraction or D ventilator")
    body["equipment"] = equipment


def _line5(body, values, number, categories):
    counts = _counts(values, number, TYPE_CODES, TYPE_WORDS, EXPECTS[5])
    body["litter"], body["ambulatory"] = counts.get("litter", 0), counts.get("ambulatory", 0)
    if body["litter"] + body["ambulatory"] < 1:
        raise TextError(number, f"at least one patient: expected {EXPECTS[5]}")


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
        raise TextError(number, f"{head.text!r} is not a marking: expected {EXPECTS[7]}")
    body["marking"] = marking
    if values[1:]:
        body["marking_detail"] = _words(values[1:])
        if len(body["marking_detail"]) > 200:
            raise TextError(number, "the marking detail is longer than 200 characters")


def _line8(body, values, number, categories):
    codes = {chr(ord("A") + i): name for i, name in enumerate(categories[:26])}
    words = {name.upper(): name for name in categories}
    what = EXPECTS[8] + ": " + ", ".join(f"{code} {name}" for code, name in codes.items())
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
