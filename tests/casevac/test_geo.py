"""Line 1 parsing against known points, and the antimeridian and pole edge cases (no database needed)."""

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from casevac import geo


def close(a, b, tolerance=1e-4):
    return abs(a - b) <= tolerance


def test_published_mgrs_references_decode_to_their_points():
    # USNG/MGRS standard example: the Washington Monument, 18S UJ 23487 06483 = 38.8895 N, 77.0352 W.
    washington = geo.from_mgrs("18S UJ 23487 06483")
    assert close(washington.lat, 38.8895) and close(washington.lon, -77.0352)
    assert washington.mgrs == "18SUJ2348706483" and washington.source == "mgrs"
    # The equator on the prime meridian: zone 31 (central meridian 3 E), easting 500000 - 333979 = 166021 m.
    origin = geo.from_mgrs("31NAA6602100000")
    assert close(origin.lat, 0.0) and close(origin.lon, 0.0)
    # Lower precision and spaces, lower case: the 1 km square of the same monument.
    coarse = geo.from_mgrs("18s uj 234 064")
    assert close(coarse.lat, 38.8895, 0.01) and close(coarse.lon, -77.0352, 0.01)


def test_latlon_round_trips_through_mgrs():
    bangui = geo.from_latlon(4.3612, 18.5550)
    assert bangui.mgrs == "34NBK2863382493"
    back = geo.from_mgrs(bangui.mgrs)
    assert geo.distance_km((bangui.lat, bangui.lon), (back.lat, back.lon)) < 0.002


@settings(max_examples=400, deadline=None)
@given(lat=st.floats(-80, 84, allow_nan=False), lon=st.floats(-180, 180, allow_nan=False))
def test_every_grid_we_write_reads_back_to_its_point(lat, lon):
    reference = geo.to_mgrs(lat, lon)
    back = geo.from_mgrs(reference)  # the grid names a 1 m square: its centre may lie across a zone boundary
    assert geo.distance_km((lat, lon), (back.lat, back.lon)) < 0.002


@pytest.mark.parametrize(
    "lat, lon, expected",
    [
        (1e-05, -170.0, "02NPF1128000001"),  # zones 1-9 written with a leading zero, and read back
        (-1e-09, 0.0, "31NAA6602100000"),  # a hair south of the equator (the library writes 31MAA..., no such square)
        (-1e-07, 0.0, "31MAV6602199999"),
    ],
)
def test_grids_near_the_equator_and_in_zones_1_to_9(lat, lon, expected):
    assert geo.to_mgrs(lat, lon) == expected
    assert geo.from_mgrs(expected).mgrs == expected


def test_zones_1_to_9_are_read_with_or_without_a_leading_zero():
    padded, bare = geo.from_mgrs("04QFJ1234567890"), geo.from_mgrs("4QFJ1234567890")
    assert (padded.lat, padded.lon) == (bare.lat, bare.lon)
    assert geo.from_mgrs("4QFJ").mgrs == "4QFJ" and geo.from_mgrs("04qfj").mgrs == "04QFJ"  # coarse: as given


def test_poles_use_ups_grid_references_out_but_polar_references_are_refused_in():
    north = geo.from_latlon(90, 0)
    south = geo.from_latlon(-90, 0)
    assert north.mgrs.startswith("Z") and south.mgrs.startswith("B")
    near_pole = geo.from_latlon(84.5, 10.0)  # beyond 84 N: UPS, not UTM
    assert near_pole.mgrs[0] in "YZ"
    # Issue 17: a polar (UPS) reference sent in is refused, not decoded to a point near a pole.
    for reference in (north.mgrs, south.mgrs, "BAN0000000000", near_pole.mgrs):
        with pytest.raises(geo.LocationError, match="polar"):
            geo.from_mgrs(reference)


def test_antimeridian_is_one_meridian():
    east = geo.from_latlon(0, 180)
    west = geo.from_latlon(0, -180)
    assert east.lon == west.lon == -180.0 and east.mgrs == west.mgrs
    assert east.mgrs.startswith("01N")
    assert geo.from_latlon(0, 179.99999).mgrs.startswith("60N")
    # Two points either side of the antimeridian are close, not 360 degrees apart.
    assert geo.distance_km((0, 179.95), (0, -179.95)) == pytest.approx(11.13, abs=0.05)
    lat_min, lat_max, ranges = geo.bounding_box(0, 179.95, 20)
    assert len(ranges) == 2 and ranges[0][1] == 180.0 and ranges[1][0] == -180.0
    assert geo.bounding_box(89.9, 0, 50)[2] == [(-180.0, 180.0)]


@pytest.mark.parametrize(
    "text,lat,lon",
    [
        ("4°21'40\"N 18°33'18\"E", 4.361111, 18.555),
        ("4°21'40\"N, 18°33'18\"E", 4.361111, 18.555),
        ("4 21 40 N 18 33 18 E", 4.361111, 18.555),
        ("N 4 21 40 E 18 33 18", 4.361111, 18.555),
        ("4°21.5'N 18°33.3'E", 4.358333, 18.555),
        ("4 21 40 S 179 59 59 W", -4.361111, -179.999722),
        ("4.3612, 18.5550", 4.3612, 18.555),
        ("-33.8568, 151.2153", -33.8568, 151.2153),
    ],
)
def test_dms_and_decimal_text(text, lat, lon):
    location = geo.from_text(text)
    assert close(location.lat, lat) and close(location.lon, lon) and location.source == "text"
    assert location.mgrs == geo.to_mgrs(location.lat, location.lon)


@pytest.mark.parametrize(
    "form,value,field",
    [
        ("text", "", "text"),
        ("text", "   ", "text"),
        ("text", "hello", "text"),
        ("text", "4°21'70\"N 18°33'18\"E", "text"),
        ("text", "4°61'0\"N 18°33'18\"E", "text"),
        ("text", "91°0'0\"N 18°0'0\"E", "text"),
        ("text", "10, 190", "text"),
        ("text", "x" * 101, "text"),
        ("mgrs", "", "mgrs"),
        ("mgrs", "ZZZ", "mgrs"),
        ("mgrs", "34NCJ123", "mgrs"),
        ("mgrs", "61NAA0000000000", "mgrs"),
        ("mgrs", "34ICJ1234512345", "mgrs"),
        ("mgrs", "34NBK28633824931", "mgrs"),
    ],
)
def test_bad_text_and_grid_references_name_the_field(form, value, field):
    with pytest.raises(geo.LocationError) as raised:
        geo.parse_location({form: value})
    assert raised.value.field == field and raised.value.message


@pytest.mark.parametrize(
    "location,field",
    [
        ({"lat": 91, "lon": 0}, "lat"),
        ({"lat": -90.0001, "lon": 0}, "lat"),
        ({"lat": 0, "lon": 180.5}, "lon"),
        ({"lat": float("nan"), "lon": 0}, "lat"),
        ({"lat": 0, "lon": float("inf")}, "lon"),
        ({"lat": 1}, "lon"),
        ({"lon": 1}, "lat"),
        ({}, "_schema"),
        ({"lat": 1, "lon": 2, "mgrs": "31NAA6602100000"}, "_schema"),
        ({"mgrs": "31NAA6602100000", "text": "1, 2"}, "_schema"),
        ({"lat": True, "lon": 0}, "lat"),
    ],
)
def test_bad_coordinates(location, field):
    with pytest.raises(geo.LocationError) as raised:
        geo.parse_location(location)
    assert raised.value.field == field


def test_distance_km_is_geopys_geodesic_to_the_last_digit():
    # casevac.geo.distance_km calls geographiclib with geopy's WGS-84 ellipsoid once built (geopy builds it per
    # call): the same numbers, exactly, here and at the edges (poles, antimeridian, antipodes, one point).
    from geopy.distance import geodesic

    rng = random.Random(12)
    pairs = [
        ((rng.uniform(-90, 90), rng.uniform(-180, 180)), (rng.uniform(-90, 90), rng.uniform(-180, 180)))
        for _ in range(300)
    ]
    pairs += [((90, 0), (-90, 0)), ((0, 179.95), (0, -179.95)), ((0, 0), (0, 180)), ((4.36, 18.55), (4.36, 18.55))]
    assert [geo.distance_km(a, b) for a, b in pairs] == [geodesic(a, b).km for a, b in pairs]
