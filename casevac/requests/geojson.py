"""GeoJSON output of the queue (RFC 7946: a FeatureCollection of Points, longitude first)."""

from __future__ import annotations

from casevac.requests.schemas import RequestSummaryOut

_summary = RequestSummaryOut()


def feature(request) -> dict:
    properties = _summary.dump(request)
    location = properties.pop("location")
    properties["mgrs"] = location["mgrs"]
    return {
        "type": "Feature",
        "id": request.id,
        # RFC 7946 section 3.1.1: [longitude, latitude].
        "geometry": {"type": "Point", "coordinates": [location["lon"], location["lat"]]},
        "properties": properties,
    }


def feature_collection(requests, *, next_cursor: str | None = None) -> dict:
    # next_cursor is a foreign member (RFC 7946 section 6.1): paging works as on the JSON list.
    return {"type": "FeatureCollection", "features": [feature(r) for r in requests], "next_cursor": next_cursor}
