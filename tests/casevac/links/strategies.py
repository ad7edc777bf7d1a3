"""Hypothesis strategies: every 9-line the API accepts (RequestIn loads each one), and how to compare the
lines a codec carries."""

from __future__ import annotations

from hypothesis import strategies as st

from casevac import codes, geo
from casevac.requests import schemas
from casevac.requests.models import PRECEDENCES

# Any text a JSON body can carry and the database store (core.fields.Text refuses NUL and lone surrogates).
TEXT_CHARS = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")


def text(min_size=0, max_size=20):
    return st.text(TEXT_CHARS, min_size=min_size, max_size=max_size)


lat = st.floats(-90, 90, allow_nan=False)
lon = st.floats(-180, 180, allow_nan=False)


def _readable(location: dict) -> bool:
    try:
        geo.parse_location(location)
        return True
    except geo.LocationError:
        return False


@st.composite
def _locations(draw):
    form = draw(st.sampled_from(["latlon", "mgrs", "text"]))
    a, b = draw(lat), draw(lon)
    if form == "latlon":
        return {"lat": a, "lon": b}
    if form == "mgrs":
        reference = geo.to_mgrs(a, b)
        digits = draw(st.integers(0, 5))
        head, tail = reference[:-10], reference[-10:]
        reference = head + tail[:5][:digits] + tail[5:][:digits]
        if draw(st.booleans()):
            reference = reference.lower()
        return {"mgrs": reference}
    return {"text": f"{a:.5f}, {b:.5f}"}


# Only locations the service accepts (polar grids, for instance, are refused).
locations = lambda: _locations().filter(_readable)  # noqa: E731


@st.composite
def patients_and_types(draw):
    counts = draw(st.lists(st.integers(0, 99), min_size=5, max_size=5).filter(lambda c: 1 <= sum(c) <= 99 * 2))
    total = sum(counts)
    litter = draw(st.integers(max(0, total - 99), min(99, total)))
    return dict(zip(PRECEDENCES, counts, strict=False)), litter, total - litter


@st.composite
def casualties(draw):
    casualty = {}
    optional = {
        "zap": text(0, 32),
        "age": st.integers(0, 120),
        "sex": st.sampled_from(codes.SEXES),
        "mechanism": st.sampled_from(codes.MECHANISMS),
        "precedence": st.sampled_from(PRECEDENCES),
        "time_of_injury": st.integers(0, 20_000_000).map(
            lambda m: __import__("datetime")
            .datetime.fromtimestamp(m * 60, __import__("datetime").timezone.utc)
            .isoformat()
            .replace("+00:00", "Z")
        ),
        "injuries": st.lists(text(0, 40), max_size=3),
        "treatments": st.lists(st.sampled_from(codes.TREATMENTS).map(lambda c: {"code": c}), max_size=4),
        "signs": st.fixed_dictionaries(
            {},
            optional={
                "pulse": st.integers(0, 300),
                "resp_rate": st.integers(0, 99),
                "spo2": st.integers(0, 100),
                "sbp": st.integers(0, 300),
                "dbp": st.integers(0, 250),
                "gcs": st.integers(3, 15),
                "avpu": st.sampled_from(codes.AVPU),
                "temp_c": st.integers(200, 450).map(lambda t: t / 10),
            },
        ).filter(bool),
    }
    for name, strategy in optional.items():
        if draw(st.booleans()):
            casualty[name] = draw(strategy)
    return casualty


@st.composite
def requests(draw, with_casualties=False):
    patients, litter, ambulatory = draw(patients_and_types())
    body = {
        "location": draw(locations()),
        "frequency": draw(text(1, 32)),
        "callsign": draw(text(1, 64)),
        "patients": patients,
        "litter": litter,
        "ambulatory": ambulatory,
        "equipment": draw(st.one_of(st.just(["none"]), st.lists(st.sampled_from(codes.EQUIPMENT), max_size=4))),
    }
    optional = {
        "suffix": text(0, 16),
        "security": st.sampled_from(codes.SECURITY),
        "wounds": text(0, 80),
        "marking": st.sampled_from(codes.MARKING),
        "marking_detail": text(0, 60),
        "nationality": st.dictionaries(
            st.sampled_from(codes.DEFAULT_NATIONALITY_CATEGORIES), st.integers(0, 99), max_size=4
        ),
        "cbrn": st.lists(st.sampled_from(codes.CBRN), max_size=4),
        "terrain": text(0, 80),
        "remarks": text(0, 80),
    }
    for name, strategy in optional.items():
        if draw(st.booleans()):
            body[name] = draw(strategy)
    # Line 6 is security (wartime) or wounds (peacetime), line 9 CBRN or terrain: never both (RequestIn).
    for wartime, peacetime in (("security", "wounds"), ("cbrn", "terrain")):
        if wartime in body and peacetime in body:
            del body[draw(st.sampled_from((wartime, peacetime)))]
    if with_casualties:
        total = sum(patients.values())
        body["casualties"] = draw(st.lists(casualties(), max_size=min(total, 6)))
    # What the API accepts, by its own validator: the strategy must not generate anything else.
    return schemas.RequestIn().load(body)


def blank(value):
    return None if value in ("", None) else value


def same_place(a: dict, b: dict, metres: float = 1.5) -> bool:
    """Line 1 of two bodies names the same point: within 1.5 m (a 1 m MGRS square's diagonal; the text form
    writes the grid, which may be on the other side of a zone boundary from the point)."""
    pa, pb = geo.parse_location(a["location"]), geo.parse_location(b["location"])
    return geo.distance_km((pa.lat, pa.lon), (pb.lat, pb.lon)) * 1000 <= metres


def carried(body: dict, *, marking_detail_needs_marking: bool = False) -> dict:
    """Lines 2-9 of a body, normalised as the service stores them (line 4 without repeats or "none", empty
    text as absent; lines 4 and 9 as sets); line 1 is compared with same_place."""
    equipment = body.get("equipment") or []
    out = {
        "frequency": body["frequency"],
        "callsign": body["callsign"],
        "suffix": blank(body.get("suffix")),
        "patients": {name: body["patients"].get(name, 0) for name in PRECEDENCES},
        # Line 4 is a set of equipment (the binary form is a bit mask, in the DOMAIN.md order).
        "equipment": [e for e in codes.EQUIPMENT if e in equipment],
        "litter": body["litter"],
        "ambulatory": body["ambulatory"],
        "security": body.get("security"),
        "wounds": blank(body.get("wounds")),
        "marking": body.get("marking"),
        "marking_detail": blank(body.get("marking_detail")),
        "nationality": body.get("nationality"),
        # Line 9 CBRN is a set of contaminations (the binary form is a bit mask, in the DOMAIN.md order).
        "cbrn": None if body.get("cbrn") is None else [c for c in codes.CBRN if c in body["cbrn"]],
        "terrain": blank(body.get("terrain")),
    }
    if marking_detail_needs_marking and out["marking"] is None:
        out["marking_detail"] = None
    return out
