"""Geography: line 1 of the 9-line (DOMAIN.md section 1) and the one place that computes a distance.

A pickup site arrives as decimal degrees (GPS), an MGRS grid reference (what the field reads off a map)
or a degrees-minutes-seconds string; every form is normalised to WGS-84 lat/lon plus a 1 m MGRS
reference, so every response carries all three.
"""

from __future__ import annotations

import math
import re
import warnings
from dataclasses import dataclass, replace
from datetime import datetime

import mgrs as mgrs_lib
import numpy as np
from geographiclib.geodesic import Geodesic
from geopy.distance import ELLIPSOIDS
from geopy.point import Point

from core.clock import as_utc

_MGRS = mgrs_lib.MGRS()
# 1 m precision: five digits each for easting and northing.
MGRS_PRECISION = 5
# UTM zones (1-60 + band letter C-X without I, O) and the polar UPS zones (A, B, Y, Z without a zone number),
# then the 100 km square and 0-10 digits (an even count: easting and northing at equal precision).
# Zones 1-9 with or without a leading zero: to_mgrs (the mgrs library) writes 01-09, most maps and GPS 1-9.
_MGRS_PATTERN = re.compile(r"^(?:(?:0?[1-9]|[1-5][0-9]|60)[C-HJ-NP-X]|[ABYZ])[A-HJ-NP-Z]{2}(?:\d\d){0,5}$")
# "4 21 40 N 18 33 18 E" and "N 4 21 40 E 18 33 18": geopy reads spaces alone as something else
# (it took the example as 33 N), so spelled-out DMS with spaces is rewritten with symbols first.
_SPACED_DMS = re.compile(
    r"^\s*(?P<lat_front>[NS])?\s*(?P<lat_d>\d{1,2})\s+(?P<lat_m>\d{1,2}(?:\.\d+)?)(?:\s+(?P<lat_s>\d{1,2}(?:\.\d+)?))?"
    r"\s*(?P<lat_back>[NS])?\s*[,;]?\s*"
    r"(?P<lon_front>[EW])?\s*(?P<lon_d>\d{1,3})\s+(?P<lon_m>\d{1,2}(?:\.\d+)?)(?:\s+(?P<lon_s>\d{1,2}(?:\.\d+)?))?"
    r"\s*(?P<lon_back>[EW])?\s*$",
    re.IGNORECASE,
)
MAX_TEXT = 100


class LocationError(ValueError):
    """A location the caller sent cannot be used; `field` is the key inside `location` to blame."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Location:
    lat: float
    lon: float
    mgrs: str  # at the precision the caller gave (an MGRS reference), else at 1 m
    source: str  # "latlon" | "mgrs" | "text": the form the caller used
    precision_m: float = 1.0  # side of the MGRS square the point is the centre of (1 m for lat/lon, text)


# Coarser than this (a 6-figure grid, 100 m), a pickup point is flagged in the answer (coarse_location_warning).
COARSE_PRECISION_M = 100.0


def mgrs_precision_m(reference: str | None) -> float:
    """The side in metres of the square an MGRS reference names: 100 km with no digits, 1 m with ten."""
    digits = len(re.sub(r"\D", "", re.sub(r"^\d{1,2}", "", reference or "")))
    return float(10 ** (MGRS_PRECISION - min(digits // 2, MGRS_PRECISION)))


def coarse_location_warning(precision_m: float) -> str | None:
    if precision_m <= COARSE_PRECISION_M:
        return None
    size = f"{precision_m / 1000:g} km" if precision_m >= 1000 else f"{precision_m:g} m"
    return (
        f"location: the MGRS reference names a {size} square; the pickup point is its centre, known only to "
        f"within {precision_m / 2**0.5:,.0f} m: send more digits (8 or 10) when you have them"
    )


# geopy's geodesic (Karney, on geographiclib) with its WGS-84 ellipsoid in km, built once: geopy builds a new
# Geodesic object for every distance, about half of its cost; the numbers are the same (tests/casevac/test_geo.py).
_MAJOR_KM, _MINOR_KM, _FLATTENING = ELLIPSOIDS["WGS-84"]
_WGS84_KM = Geodesic(_MAJOR_KM, _FLATTENING)


def distance_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Geodesic distance in km between two (lat, lon) points (ARCHITECTURE.md: geopy's geodesic for every
    distance)."""
    return _WGS84_KM.Inverse(float(a[0]), float(a[1]), float(b[0]), float(b[1]), Geodesic.DISTANCE)["s12"]


def to_mgrs(lat: float, lon: float) -> str:
    """The MGRS (UTM or, beyond 84N / 80S, UPS) reference of a point at 1 m precision (zones 1-9 written 01-09,
    as the mgrs library does). The point is first rounded to 1e-7 degree (about 1 cm): within 1e-8 degree south
    of the equator the library writes a southern band with northing 0 (31MAA6602100000), a square that does
    not exist."""
    return _MGRS.toMGRS(round(lat, 7), round(lon, 7), MGRSPrecision=MGRS_PRECISION)


def from_latlon(lat, lon) -> Location:
    lat, lon = _number(lat, "lat"), _number(lon, "lon")
    if not -90.0 <= lat <= 90.0:
        raise LocationError("lat", "latitude must be between -90 and 90 degrees")
    if not -180.0 <= lon <= 180.0:
        raise LocationError("lon", "longitude must be between -180 and 180 degrees")
    if lon == 180.0:
        lon = -180.0  # one meridian, one spelling (RFC 7946 allows both; -180 keeps sorting simple)
    return Location(lat=lat, lon=lon, mgrs=to_mgrs(lat, lon), source="latlon")


def from_mgrs(text: str) -> Location:
    """An MGRS reference at any precision (0-5 digits per axis): the point is the centre of the square it
    names, and the square's side is kept (precision_m). Polar (UPS) references are refused: no mission is
    there, and a typing slip in the zone must not become a point at a pole."""
    reference = re.sub(r"\s+", "", str(text)).upper()
    if not reference:
        raise LocationError("mgrs", "empty grid reference")
    if not _MGRS_PATTERN.match(reference):
        raise LocationError(
            "mgrs",
            "not an MGRS grid reference: zone (1-60) + band letter, 100 km square, "
            "then an even number of digits (e.g. 34NBK2863382493 or 34N BK 28633 82493)",
        )
    if reference[0] in "ABYZ":
        raise LocationError("mgrs", "polar (UPS) grid references are not accepted: give lat and lon instead")
    prefix_length = len(reference) - len(re.search(r"\d*$", reference).group())
    digits = reference[prefix_length:]
    half = len(digits) // 2
    centre = reference
    if half < MGRS_PRECISION:
        # The centre of the square: one more digit, 5, on each axis.
        centre = reference[:prefix_length] + digits[:half] + "5" + digits[half:] + "5"
    try:
        lat, lon = _MGRS.toLatLon(centre)
    except Exception:  # noqa: BLE001 - the C library reports every bad reference the same way
        raise LocationError("mgrs", "this grid reference does not exist (zone, band and square disagree)") from None
    if not (math.isfinite(lat) and math.isfinite(lon)):
        raise LocationError("mgrs", "this grid reference does not exist")
    lon = -180.0 if lon >= 180.0 else lon
    precision = mgrs_precision_m(reference)
    return Location(
        lat=lat, lon=lon, mgrs=reference if precision > 1 else to_mgrs(lat, lon), source="mgrs", precision_m=precision
    )


def from_text(text: str) -> Location:
    """Degrees-minutes-seconds or decimal text, parsed by geopy's Point after a strict range check."""
    raw = str(text).strip()
    if not raw:
        raise LocationError("text", "empty location text")
    if len(raw) > MAX_TEXT:
        raise LocationError("text", f"at most {MAX_TEXT} characters")
    spaced = _SPACED_DMS.match(raw)
    if spaced:
        raw = _symbolise(spaced)
    match = re.match(Point.POINT_PATTERN, re.sub(r"''", '"', raw))
    if not match or match.group("latitude_degrees") is None or match.group("longitude_degrees") is None:
        raise LocationError(
            "text", "unparsable: use e.g. 4°21'40\"N 18°33'18\"E, 4 21 40 N 18 33 18 E or 4.3612, 18.5550"
        )
    for axis, limit in (("latitude", 90.0), ("longitude", 180.0)):
        degrees = abs(float(match.group(f"{axis}_degrees")))
        minutes = float(match.group(f"{axis}_arcminutes") or 0)
        seconds = float(match.group(f"{axis}_arcseconds") or 0)
        if minutes >= 60 or seconds >= 60:
            raise LocationError("text", f"{axis}: minutes and seconds must be below 60")
        if degrees + minutes / 60 + seconds / 3600 > limit:
            raise LocationError("text", f"{axis} must be at most {limit:g} degrees")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            point = Point.from_string(raw)
    except (ValueError, UserWarning):
        raise LocationError("text", "unparsable or out of range coordinates") from None
    return replace(from_latlon(point.latitude, point.longitude), source="text")


def parse_location(location: dict) -> Location:
    """Exactly one of {"lat", "lon"}, {"mgrs"} or {"text"} (API.md, CASEVAC requests)."""
    if not isinstance(location, dict) or not location:
        raise LocationError("_schema", 'give one of {"lat", "lon"}, {"mgrs"} or {"text"}')
    forms = [
        name
        for name in ("latlon", "mgrs", "text")
        if (name == "latlon" and ("lat" in location or "lon" in location))
        or (name != "latlon" and location.get(name) is not None)
    ]
    if len(forms) != 1:
        raise LocationError("_schema", 'give exactly one of {"lat", "lon"}, {"mgrs"} or {"text"}')
    if forms[0] == "latlon":
        for key in ("lat", "lon"):
            if location.get(key) is None:
                raise LocationError(key, "required with " + ("lon" if key == "lat" else "lat"))
        return from_latlon(location["lat"], location["lon"])
    if forms[0] == "mgrs":
        return from_mgrs(location["mgrs"])
    return from_text(location["text"])


def bounding_box(lat: float, lon: float, radius_km: float) -> tuple[float, float, list[tuple[float, float]]]:
    """A generous (lat_min, lat_max, [lon ranges]) box around a circle, for an index-friendly prefilter;
    the exact filter is distance_km. Splits at the antimeridian and opens fully near the poles."""
    lat_margin = radius_km / 110.5 + 0.01  # a degree of latitude is at least 110.5 km
    lat_min, lat_max = max(-90.0, lat - lat_margin), min(90.0, lat + lat_margin)
    if lat_max >= 89.0 or lat_min <= -89.0:
        return lat_min, lat_max, [(-180.0, 180.0)]
    widest = max(abs(lat_min), abs(lat_max))
    lon_margin = radius_km / (111.4 * math.cos(math.radians(widest))) + 0.01
    if lon_margin >= 180.0:
        return lat_min, lat_max, [(-180.0, 180.0)]
    west, east = lon - lon_margin, lon + lon_margin
    if west < -180.0:
        return lat_min, lat_max, [(west + 360.0, 180.0), (-180.0, east)]
    if east > 180.0:
        return lat_min, lat_max, [(west, 180.0), (-180.0, east - 360.0)]
    return lat_min, lat_max, [(west, east)]


def _number(value, field: str) -> float:
    if isinstance(value, bool):
        raise LocationError(field, "not a number")
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        raise LocationError(field, "not a number") from None
    if not math.isfinite(number):
        raise LocationError(field, "not a finite number")
    return number


def _symbolise(match: re.Match) -> str:
    def half(prefix: str, front: str, back: str) -> str:
        hemisphere = (match.group(front) or match.group(back) or "").upper()
        seconds = match.group(f"{prefix}_s")
        text = f"{match.group(prefix + '_d')}°{match.group(prefix + '_m')}'"
        if seconds is not None:
            text += f'{seconds}"'
        return text + hemisphere

    return half("lat", "lat_front", "lat_back") + " " + half("lon", "lon_front", "lon_back")


# Night for flying: the sun more than 6 degrees below the horizon (end of civil twilight).
NIGHT_SUN_ELEVATION_DEG = -6.0
EARTH_MEAN_RADIUS_KM = 6371.0088


def sun_elevation_deg(lat: float, lon: float, at: datetime) -> float:
    """Solar elevation (NOAA general solar position equations), accurate to a fraction of a degree."""
    at = as_utc(at)
    day_of_year = at.timetuple().tm_yday
    hours = at.hour + at.minute / 60 + at.second / 3600
    gamma = 2 * math.pi / 365 * (day_of_year - 1 + (hours - 12) / 24)
    equation_of_time = 229.18 * (
        0.000075
        + 0.001868 * math.cos(gamma)
        - 0.032077 * math.sin(gamma)
        - 0.014615 * math.cos(2 * gamma)
        - 0.040849 * math.sin(2 * gamma)
    )
    declination = (
        0.006918
        - 0.399912 * math.cos(gamma)
        + 0.070257 * math.sin(gamma)
        - 0.006758 * math.cos(2 * gamma)
        + 0.000907 * math.sin(2 * gamma)
        - 0.002697 * math.cos(3 * gamma)
        + 0.00148 * math.sin(3 * gamma)
    )
    true_solar_minutes = hours * 60 + equation_of_time + 4 * lon
    hour_angle = math.radians(true_solar_minutes / 4 - 180)
    phi = math.radians(lat)
    cos_zenith = math.sin(phi) * math.sin(declination) + math.cos(phi) * math.cos(declination) * math.cos(hour_angle)
    return 90 - math.degrees(math.acos(max(-1.0, min(1.0, cos_zenith))))


def is_night(point: tuple[float, float], at: datetime) -> bool:
    return sun_elevation_deg(point[0], point[1], at) < NIGHT_SUN_ELEVATION_DEG


def sphere_km(lat1, lon1, lat2, lon2):
    """Great-circle distance on the mean-radius sphere (a screen only; never reported)."""
    lat1, lon1, lat2, lon2 = map(np.radians, (lat1, lon1, lat2, lon2))
    a = np.sin((lat2 - lat1) / 2) ** 2 + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_MEAN_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))
