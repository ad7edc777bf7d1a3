"""Demo assets and facilities for the demo mission (Central African Republic, around Bangui).

Level 1 facilities at team sites, a Level 2 with surgery in Bambari, a Level 3 in the capital Bangui; two
helicopters (one with hoist and night capability) and ground ambulances at the sites. Positions are the
real towns; capabilities and numbers are plausible, not any mission's actual order of battle.
"""

from __future__ import annotations

from sqlalchemy import select

from casevac.fleet.models import FACILITY_CAPABILITIES, Asset, Facility
from core import clock

BANGUI_MPOKO = ("Bangui M'Poko airport", 4.3985, 18.5188)
BAMBARI = ("Bambari airfield", 5.8470, 20.6490)

# The columns of each row below, as the model names them.
FACILITY_COLUMNS = ("name", "level", "capabilities", "beds_available", "helipad", "lat", "lon")
FACILITIES = [
    (
        "Level 3 Bangui",
        "3",
        list(FACILITY_CAPABILITIES),  # a Level 3 has every capability
        50,
        True,
        4.3720,
        18.5620,
    ),
    ("Level 1 Bangui camp", "1", ["mental_health"], 5, False, 4.3930, 18.5280),
    ("Level 2 Bambari", "2", ["damage_control_surgery", "icu", "blood_bank"], 15, True, 5.7600, 20.6700),
    ("Level 1 Kaga-Bandoro", "1", [], 5, True, 6.9896, 19.1874),
    ("Level 1 Bouar", "1", [], 5, True, 5.9340, 15.5960),
    ("Level 1 Bria", "1", [], 5, True, 6.5423, 21.9863),
    ("Level 1+ Berberati", "1+", ["blood_bank"], 8, True, 4.2612, 15.7922),
]

ASSET_COLUMNS = (
    "callsign",
    "kind",
    "capabilities",
    "litter_capacity",
    "ambulatory_capacity",
    "cruise_speed_kmh",
    "readiness_minutes",
    "base_name",
    "base_lat",
    "base_lon",
)
ASSETS = [
    (
        "MEDEVAC-1",
        "rotary_wing",
        ["hoist", "night", "medical_crew", "extraction", "ventilator"],
        6,
        4,
        220,
        15,
        *BANGUI_MPOKO,
    ),
    ("MEDEVAC-2", "rotary_wing", ["medical_crew"], 4, 4, 200, 30, *BAMBARI),
    ("AMB-BANGUI-1", "ground_ambulance", ["medical_crew", "armored"], 2, 2, 50, 5, "Bangui", 4.3730, 18.5610),
    ("AMB-BANGUI-2", "ground_ambulance", ["medical_crew"], 2, 2, 50, 5, "Bangui", 4.3930, 18.5280),
    ("AMB-BAMBARI-1", "ground_ambulance", ["medical_crew"], 2, 2, 45, 10, "Bambari", 5.7600, 20.6700),
    ("AMB-KAGA-1", "ground_ambulance", ["armored"], 2, 2, 40, 10, "Kaga-Bandoro", 6.9896, 19.1874),
    ("AMB-BOUAR-1", "ground_ambulance", ["medical_crew"], 2, 2, 45, 10, "Bouar", 5.9340, 15.5960),
]


def seed_demo(session, *, mission, users) -> None:
    """Idempotent: adds what is missing by name / callsign; the caller commits."""
    now = clock.now()
    new = {"mission_id": mission.id, "created_at": now, "updated_at": now}
    names = set(session.execute(select(Facility.name).where(Facility.mission_id == mission.id)).scalars())
    for row in FACILITIES:
        columns = dict(zip(FACILITY_COLUMNS, row, strict=True))
        if columns["name"] not in names:
            session.add(Facility(**columns, status="normal", **new))
    callsigns = set(session.execute(select(Asset.callsign).where(Asset.mission_id == mission.id)).scalars())
    for row in ASSETS:
        columns = dict(zip(ASSET_COLUMNS, row, strict=True))
        if columns["callsign"] not in callsigns:
            session.add(Asset(**columns, status="available", **new))
    session.flush()
