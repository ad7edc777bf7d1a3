"""The codes and spellings of the 9-line as text (DOMAIN.md section 1; docs/casevac.md "The 9-line as
text"), shared by the parser (casevac.links.text) and the encoder (casevac.links.text_encode): line
codes and the words a medic may use for them, line markers, and the error naming the line.
"""

from __future__ import annotations

import re

from casevac.precedence import PRECEDENCES

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

MARKER = re.compile(r"^(?:L|LN|LINE)?([1-9])[:.)=\-]?$", re.IGNORECASE)
# "1:34NBK...", "L2=38.90", "3)1A", "1.34NBK..." (but not "4.5": a decimal number is not glued to a marker).
MARKER_GLUED = re.compile(r"^((?:L|LN|LINE)?[1-9])(?:[:=)]|\.(?!\d+$))(.+)$", re.IGNORECASE)
LINE_WORD = re.compile(r"^(?:L|LN|LINE)$", re.IGNORECASE)
NUMBER = re.compile(r"^[+-]?\d{1,3}(?:\.\d+)?$")


class TextError(ValueError):
    """A 9-line text that cannot be read: `line` (1-9, or None for the message as a whole) and what it
    expects, in words a medic can act on."""

    def __init__(self, line: int | None, message: str):
        self.line = line
        self.message = message
        super().__init__(f"line {line}: {message}" if line else message)


EXPECTS = {
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
