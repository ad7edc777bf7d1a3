"""What the dispatch rules read and answer, as small value objects: a request's need (lines 1 and 3-6 of the
9-line and its casualties' clocks), an asset's and a facility's state, an (asset, facility) option and a
page of recommendations. casevac.dispatch.service builds them from the database; the rules are pure over
them (casevac.dispatch.rules, casevac.dispatch.plan)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Mapping, NamedTuple

from casevac.precedence import precedence_of


class CasualtyClock(NamedTuple):
    precedence: str | None
    time_of_injury: datetime | None


@dataclass(frozen=True)
class EvacuationNeed:
    """What a request needs from an evacuation (lines 1, 3, 4, 5 and 6 of the 9-line, and the casualties)."""

    pickup: tuple[float, float]
    patients: Mapping[str, int]
    litter: int
    ambulatory: int
    filed_at: datetime
    deadline: datetime | None
    equipment: frozenset[str] = frozenset()
    casualties: tuple[CasualtyClock, ...] = ()
    security: str | None = None
    request_id: str | None = None

    @property
    def total(self) -> int:
        return self.litter + self.ambulatory

    @property
    def precedence(self) -> str | None:
        return precedence_of(self.patients)

    @property
    def surgical(self) -> int:
        described = sum(1 for c in self.casualties if c.precedence == "urgent_surgical")
        return max(self.patients.get("urgent_surgical", 0), described)

    def clocks(self) -> tuple[list[datetime], list[datetime], bool]:
        """Times of injury for the resuscitation leg (every casualty) and the surgery leg (urgent-surgical
        casualties); whether the filing time stood in for an unknown time of injury (DOMAIN.md section 3)."""
        stand_in = False
        resuscitation: list[datetime] = []
        surgery: list[datetime] = []
        described: dict[str | None, int] = {}
        for casualty in self.casualties:
            injured = casualty.time_of_injury
            if injured is None:
                injured, stand_in = self.filed_at, True
            resuscitation.append(injured)
            if casualty.precedence == "urgent_surgical":
                surgery.append(injured)
            described[casualty.precedence] = described.get(casualty.precedence, 0) + 1
        for precedence, count in self.patients.items():
            missing = max(0, count - described.get(precedence, 0))
            if missing:
                stand_in = True
                resuscitation.extend([self.filed_at] * missing)
                if precedence == "urgent_surgical":
                    surgery.extend([self.filed_at] * missing)
        return resuscitation, surgery, stand_in


class AssetState(NamedTuple):  # a tuple: a thousand of them are built per recommendation
    id: str
    callsign: str
    kind: str
    capabilities: frozenset[str]
    litter_capacity: int
    ambulatory_capacity: int
    cruise_speed_kmh: float
    readiness_minutes: float
    status: str
    position: tuple[float, float]


class FacilityState(NamedTuple):
    id: str
    name: str
    level: str
    capabilities: frozenset[str]
    status: str
    beds_available: int
    helipad: bool
    location: tuple[float, float]


@dataclass
class Option:
    asset_id: str
    facility_id: str
    callsign: str
    facility_name: str
    pickup_eta_minutes: float
    delivery_eta_minutes: float
    distance_km: float
    route_km: float
    meets_deadline: bool
    meets_ten_one_two: bool
    ground_leg: bool
    score_minutes: float
    reasons: list[str] = field(default_factory=list)

    def rank_key(self):
        late = not (self.meets_deadline and self.meets_ten_one_two)
        return (late, self.score_minutes, self.delivery_eta_minutes, self.callsign, self.facility_name)

    def as_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class Recommendations:
    options: list[Option]
    excluded_assets: list[dict]
    excluded_facilities: list[dict]
    night: bool
    time_of_injury_estimated: bool

    def as_dict(self) -> dict:
        return {
            "options": [o.as_dict() for o in self.options],
            "excluded_assets": self.excluded_assets,
            "excluded_facilities": self.excluded_facilities,
            "night": self.night,
            "time_of_injury_estimated": self.time_of_injury_estimated,
        }
