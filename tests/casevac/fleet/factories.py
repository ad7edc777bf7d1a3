"""Factories for assets and facilities (kept apart from the requests' conftest/factories of tests/casevac)."""

from __future__ import annotations

import factory

from casevac.fleet.models import Asset, Facility
from tests.factories import BaseFactory, MissionFactory

# Bangui (the demo mission's capital) and points around it.
BANGUI = (4.3947, 18.5582)


class AssetFactory(BaseFactory):
    class Meta:
        model = Asset

    mission_id = factory.LazyFunction(lambda: MissionFactory().id)
    callsign = factory.Sequence(lambda n: f"ASSET-{n:04d}")
    kind = "rotary_wing"
    capabilities = factory.LazyFunction(lambda: ["medical_crew"])
    litter_capacity = 4
    ambulatory_capacity = 4
    cruise_speed_kmh = 240.0
    readiness_minutes = 10
    status = "available"
    base_name = "Bangui M'Poko"
    base_lat = BANGUI[0]
    base_lon = BANGUI[1]


class FacilityFactory(BaseFactory):
    class Meta:
        model = Facility

    mission_id = factory.LazyFunction(lambda: MissionFactory().id)
    name = factory.Sequence(lambda n: f"Facility {n:04d}")
    level = "2"
    capabilities = factory.LazyFunction(lambda: ["damage_control_surgery", "icu", "blood_bank"])
    status = "normal"
    beds_available = 10
    helipad = True
    lat = BANGUI[0]
    lon = BANGUI[1]


ASSET_BODY = {
    "callsign": "PUMA-1",
    "kind": "rotary_wing",
    "capabilities": ["hoist", "night", "medical_crew"],
    "litter_capacity": 6,
    "ambulatory_capacity": 4,
    "cruise_speed_kmh": 250,
    "readiness_minutes": 15,
    "base": {"name": "Bangui M'Poko", "lat": 4.3985, "lon": 18.5188},
}
FACILITY_BODY = {
    "name": "Level 2 Bangui",
    "level": "2",
    "capabilities": ["damage_control_surgery", "icu"],
    "status": "normal",
    "beds_available": 12,
    "helipad": True,
    "location": {"lat": 4.37, "lon": 18.56},
}
