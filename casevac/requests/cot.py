"""Cursor-on-Target export of a 9-line (DOMAIN.md section 7): what ATAK / WinTAK show as a MEDEVAC.

The event is the TAK gateway's marker, from the one writer of it (casevac.tak.codec.writing.medevac:
ATAK-CIV's attribute names, the UN line-8 categories mapped as docs/casevac.md says), with the export's own
uid, times and circular error. `lines()` is the request as that writer's 9-line dict, for the gateway too.
"""

from __future__ import annotations

from datetime import timedelta

from casevac.codes import LATER_LINES
from casevac.tak.codec import writing
from core import clock

# A file of its own says what it is (the gateway's events on a stream carry no declaration).
XML_DECLARATION = b"<?xml version='1.0' encoding='utf-8'?>\n"


def event(request) -> bytes:
    """The request as one CoT event (XML)."""
    now = clock.now()
    stale = request.deadline or (request.created_at + timedelta(hours=24))
    # ce: the circular error (m). Known for an MGRS pickup: the half-diagonal of its square around the centre.
    circular_error = request.location_precision_m / 2**0.5 if request.location_source == "mgrs" else None
    return XML_DECLARATION + writing.medevac(
        lines(request),
        uid=f"medevac-{request.id}",
        time=now,
        start=request.created_at,
        stale=max(stale, now),
        circular_error_m=circular_error,
    )


def lines(request) -> dict:
    """The request as the codec's 9-line dict (the API's field names)."""
    out = {
        "location": {"lat": request.lat, "lon": request.lon},
        "callsign": request.callsign,
        "frequency": request.frequency,
        "patients": request.patients,
        "equipment": list(request.equipment or []),
        "litter": request.litter,
        "ambulatory": request.ambulatory,
    }
    for name in ("suffix", *LATER_LINES):
        value = getattr(request, name)
        if value is not None:
            out[name] = value
    out["casualties"] = [_casualty_lines(c) for c in request.casualties]
    return out


def _casualty_lines(casualty) -> dict:
    out = {}
    for name in ("zap", "age", "sex", "mechanism", "mechanism_detail", "precedence"):
        value = getattr(casualty, name)
        if value is not None:
            out[name] = value
    if casualty.time_of_injury is not None:
        out["time_of_injury"] = clock.as_utc(casualty.time_of_injury).isoformat()
    if casualty.injuries:
        out["injuries"] = list(casualty.injuries)
    signs = casualty.signs
    if signs:
        out["signs"] = {k: v for k, v in signs.items() if k != "taken_at"}
    if casualty.treatments:
        out["treatments"] = list(casualty.treatments)
    return out
