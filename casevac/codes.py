"""The 9-line's codes (API.md, CASEVAC; DOMAIN.md sections 1 and 2): lines 4 and 6-9, the MIST-AT
vocabulary, the count limit. Shared by the requests' schemas, the TAK codec and the field links."""

from __future__ import annotations

# Line 4 (A none, B hoist, C extraction equipment, D ventilator); "none" alone is the same as [].
EQUIPMENT = ("hoist", "extraction", "ventilator")
EQUIPMENT_CODES = EQUIPMENT + ("none",)
# Line 6, wartime: N no enemy, P possible enemy, E enemy in area (approach with caution), X armed escort.
SECURITY = ("N", "P", "E", "X")
# Line 7: A panels, B pyrotechnic, C smoke, D none, E other.
MARKING = ("panels", "pyrotechnic", "smoke", "none", "other")
# Lines 6-9 and the remarks as the request stores them (API.md field names): optional, each None until given.
LATER_LINES = ("security", "wounds", "marking", "marking_detail", "nationality", "cbrn", "terrain", "remarks")
# Line 9, wartime: chemical, biological, radiological, nuclear contamination.
CBRN = ("chemical", "biological", "radiological", "nuclear")
# Line 8 for a UN mission (DOMAIN.md section 1) plus a child count. Configurable: the setting
# NATIONALITY_CATEGORIES replaces this list (configure() below, called by casevac.init_app).
DEFAULT_NATIONALITY_CATEGORIES = (
    "un_military",
    "un_police",
    "un_civilian",
    "host_nation_forces",
    "civilian",
    "detainee",
    "child",
)
NATIONALITY_CATEGORIES: list[str] = list(DEFAULT_NATIONALITY_CATEGORIES)
# Line 8 as ATAK counts it (its attributes are US-centred, docs/casevac.md): own forces -> us_*, host nation and
# other civilians -> nonus_*, detainees -> epw. Read by the CoT export and the TAK codec.
NATIONALITY_TO_ATAK = {
    "un_military": "us_military",
    "un_police": "us_military",
    "un_civilian": "us_civilian",
    "host_nation_forces": "nonus_military",
    "civilian": "nonus_civilian",
    "detainee": "epw",
    "child": "child",
}
MECHANISMS = (
    "blast",
    "gunshot",
    "fragmentation",
    "vehicle_collision",
    "fall",
    "burn",
    "crush",
    "stab",
    "blunt",
    "drowning",
    "electrical",
    "heat_illness",
    "cold_injury",
    "cbrn",
    "animal",
    "illness",
    "other",
)
# MIST-AT "T" (DOMAIN.md section 2).
TREATMENTS = (
    "tourniquet",
    "haemostatic_dressing",
    "pressure_dressing",
    "airway_adjunct",
    "surgical_airway",
    "recovery_position",
    "needle_decompression",
    "chest_seal",
    "iv_fluids",
    "io_fluids",
    "txa",
    "blood",
    "analgesia",
    "antibiotics",
    "splint",
    "pelvic_binder",
    "hypothermia_prevention",
    "oxygen",
    "other",
)
AVPU = ("A", "V", "P", "U")
# MIST-AT "S": the plausible range of each measured vital sign (the API refuses a value outside it; the TAK
# codec leaves one out, with a note).
VITAL_RANGES = {
    "pulse": (0, 300),
    "resp_rate": (0, 99),
    "spo2": (0, 100),
    "sbp": (0, 300),
    "dbp": (0, 250),
    "gcs": (3, 15),
    "temp_c": (20, 45),
}
SEXES = ("M", "F", "U")
MAX_PER_CATEGORY = 99


def configure(settings) -> None:
    """Line 8 categories from the settings (kept as one list object: validators read it at call time)."""
    categories = [c.strip() for c in (getattr(settings, "NATIONALITY_CATEGORIES", "") or "").split(",") if c.strip()]
    NATIONALITY_CATEGORIES[:] = categories or list(DEFAULT_NATIONALITY_CATEGORIES)
