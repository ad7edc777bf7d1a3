"""Geography: the one place that computes a distance (geodesic, Karney, WGS-84)."""
from __future__ import annotations

from geopy.distance import geodesic


def distance_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Geodesic distance in km between two (lat, lon) points (ARCHITECTURE.md: geopy for every distance)."""
    return geodesic(a, b).km
