"""Validated mental-health screening instruments (DOMAIN.md section 6): the instruments are data, and one
scorer reads them. A new instrument is one more `Instrument(...)` in INSTRUMENTS, not a new code path.

Every number here is DOMAIN.md section 6, checked against the instruments' own manuals:
- PHQ-9 (Kroenke, Spitzer & Williams 2001): 9 items 0-3, bands 0-4/5-9/10-14/15-19/20-27, positive >= 10;
  item 9 > 0 needs a same-day safety assessment whatever the total.
- GAD-7 (Spitzer et al. 2006): 7 items 0-3, bands 0-4/5-9/10-14/15-21, positive >= 10.
- PCL-5 (Weathers et al. 2013, National Center for PTSD): 20 items 0-4, provisional positive >= 33; the
  DSM-5 rule counts an item rated >= 2 and needs >= 1 of B (1-5), >= 1 of C (6-7), >= 2 of D (8-14),
  >= 2 of E (15-20).
- AUDIT-C (Bush et al. 1998): 3 items 0-4, positive >= 4 for men, >= 3 for women.
Reliable change (a difference between two screenings larger than measurement noise): 5 points on PHQ-9,
10 points on PCL-5 (DOMAIN.md section 6 / issue 7); the other instruments have none stated, so none.
"""

from __future__ import annotations

from dataclasses import dataclass

SEXES = ("female", "male", "other")

# recommended_action codes, most urgent first: a result carries the most urgent one that applies.
SAME_DAY_SAFETY_ASSESSMENT = "same_day_safety_assessment"
URGENT_CONSULTATION = "urgent_consultation"
CONSULTATION = "consultation"
NO_ACTION = "no_action"
ACTION_ORDER = (SAME_DAY_SAFETY_ASSESSMENT, URGENT_CONSULTATION, CONSULTATION, NO_ACTION)
ACTION_TEXT = {
    SAME_DAY_SAFETY_ASSESSMENT: "A mental-health clinician should assess your safety today. If you are in danger "
    "now, contact your medical officer or emergency line at once.",
    URGENT_CONSULTATION: "Book a consultation with a mental-health clinician within the next few days.",
    CONSULTATION: "Your answers suggest a consultation with a mental-health clinician would help.",
    NO_ACTION: "No action is needed now; screen again if things change.",
}

# Flags: results a clinician must act on (each raises screening.alert).
SUICIDAL_IDEATION = "suicidal_ideation"
SEVERE_SYMPTOMS = "severe_symptoms"


@dataclass(frozen=True)
class Band:
    low: int
    high: int
    name: str
    # A band in which the result needs an urgent consultation (flags SEVERE_SYMPTOMS).
    urgent: bool = False


@dataclass(frozen=True)
class Cluster:
    """DSM-5 symptom cluster: `needed` of `items` (1-based) must be endorsed."""

    name: str
    items: tuple[int, ...]
    needed: int


@dataclass(frozen=True)
class ItemFlag:
    """An item whose answer at or above `at_least` raises `flag` whatever the total."""

    item: int  # 1-based, as the instrument numbers it
    at_least: int
    flag: str
    action: str


@dataclass(frozen=True)
class Instrument:
    code: str
    name: str
    items: int
    item_max: int
    bands: tuple[Band, ...] = ()
    # Cut-off: positive at total >= cut_off; by sex when it differs (key None: sex not given).
    cut_off: int | None = None
    cut_off_by_sex: dict | None = None
    clusters: tuple[Cluster, ...] = ()
    # An item counts towards a cluster when rated at or above this (PCL-5: 2, "moderately").
    endorsed_at: int | None = None
    item_flags: tuple[ItemFlag, ...] = ()
    reliable_change: int | None = None
    item_min: int = 0

    @property
    def max_score(self) -> int:
        return self.items * self.item_max


INSTRUMENTS: dict[str, Instrument] = {
    i.code: i
    for i in (
        Instrument(
            code="phq9",
            name="PHQ-9 (depression)",
            items=9,
            item_max=3,
            bands=(
                Band(0, 4, "minimal"),
                Band(5, 9, "mild"),
                Band(10, 14, "moderate"),
                Band(15, 19, "moderately_severe"),
                Band(20, 27, "severe", urgent=True),
            ),
            cut_off=10,
            # Item 9: "thoughts that you would be better off dead, or of hurting yourself".
            item_flags=(ItemFlag(item=9, at_least=1, flag=SUICIDAL_IDEATION, action=SAME_DAY_SAFETY_ASSESSMENT),),
            reliable_change=5,
        ),
        Instrument(
            code="gad7",
            name="GAD-7 (anxiety)",
            items=7,
            item_max=3,
            bands=(
                Band(0, 4, "minimal"),
                Band(5, 9, "mild"),
                Band(10, 14, "moderate"),
                Band(15, 21, "severe", urgent=True),
            ),
            cut_off=10,
        ),
        Instrument(
            code="pcl5",
            name="PCL-5 (post-traumatic stress)",
            items=20,
            item_max=4,
            cut_off=33,
            clusters=(
                Cluster("B", (1, 2, 3, 4, 5), 1),
                Cluster("C", (6, 7), 1),
                Cluster("D", (8, 9, 10, 11, 12, 13, 14), 2),
                Cluster("E", (15, 16, 17, 18, 19, 20), 2),
            ),
            endorsed_at=2,
            reliable_change=10,
        ),
        Instrument(
            code="auditc",
            name="AUDIT-C (alcohol use)",
            items=3,
            item_max=4,
            # Sex not given (or "other"): the lower threshold, so no one at risk is missed.
            cut_off_by_sex={"male": 4, "female": 3, "other": 3, None: 3},
        ),
    )
}


class AnswersError(ValueError):
    """Malformed answers. `errors` is marshmallow-shaped: a list of messages for the whole list, or a
    dict {index: [message]} naming each bad item (0-based index, as marshmallow names list items)."""

    def __init__(self, errors):
        super().__init__(str(errors))
        self.errors = errors


@dataclass(frozen=True)
class Result:
    instrument: str
    score: int
    severity: str | None
    positive: bool
    criteria: dict
    flags: list[str]
    recommended_action: str
    clusters: dict | None = None

    @property
    def flagged(self) -> bool:
        return bool(self.flags)


def validate_answers(inst: Instrument, answers) -> list[int]:
    """Exact count, integers (not booleans, floats, strings or null) within the item range."""
    if not isinstance(answers, (list, tuple)):
        raise AnswersError([f"{inst.name} answers must be a list of {inst.items} integers"])
    if len(answers) != inst.items:
        raise AnswersError([f"{inst.name} has {inst.items} items: got {len(answers)} answers"])
    errors = {}
    for index, value in enumerate(answers):
        # bool is an int in Python: refuse it explicitly, a checkbox is not a rating.
        if isinstance(value, bool) or not isinstance(value, int) or not inst.item_min <= value <= inst.item_max:
            errors[index] = [f"item {index + 1}: must be an integer from {inst.item_min} to {inst.item_max}"]
    if errors:
        raise AnswersError(errors)
    return list(answers)


def _band(inst: Instrument, score: int) -> Band | None:
    for band in inst.bands:
        if band.low <= score <= band.high:
            return band
    return None


def _cut_off(inst: Instrument, sex: str | None) -> int | None:
    if inst.cut_off_by_sex is not None:
        return inst.cut_off_by_sex.get(sex, inst.cut_off_by_sex[None])
    return inst.cut_off


def score(code: str, answers, *, sex: str | None = None) -> Result:
    """Score one administration. Raises KeyError for an unknown instrument, AnswersError for bad answers."""
    inst = INSTRUMENTS[code]
    values = validate_answers(inst, answers)
    total = sum(values)
    band = _band(inst, total)

    criteria: dict[str, bool] = {}
    threshold = _cut_off(inst, sex)
    if threshold is not None:
        criteria["cut_off"] = total >= threshold
    clusters = None
    if inst.clusters:
        # DSM-5 rule (PCL-5): an item is endorsed when rated >= endorsed_at; every cluster needs its count.
        clusters = {}
        for cluster in inst.clusters:
            endorsed = sum(1 for item in cluster.items if values[item - 1] >= inst.endorsed_at)
            clusters[cluster.name] = {"endorsed": endorsed, "needed": cluster.needed, "met": endorsed >= cluster.needed}
        criteria["dsm5_clusters"] = all(c["met"] for c in clusters.values())
    # Positive when any of the instrument's rules says so: for PCL-5 both the cut-off and the DSM-5
    # cluster rule are accepted ways to a provisional diagnosis, and a screen errs towards sensitivity.
    positive = any(criteria.values())

    flags: list[str] = []
    actions = [NO_ACTION]
    for item_flag in inst.item_flags:
        if values[item_flag.item - 1] >= item_flag.at_least:
            flags.append(item_flag.flag)
            actions.append(item_flag.action)
    if band is not None and band.urgent:
        flags.append(SEVERE_SYMPTOMS)
        actions.append(URGENT_CONSULTATION)
    if positive:
        actions.append(CONSULTATION)
    action = min(actions, key=ACTION_ORDER.index)
    return Result(
        instrument=code,
        score=total,
        severity=band.name if band else None,
        positive=positive,
        criteria=criteria,
        flags=flags,
        recommended_action=action,
        clusters=clusters,
    )


def reliable_change(code: str, before: int, after: int) -> str | None:
    """'improved' / 'worsened' / 'no_reliable_change' (higher scores are worse on every instrument here);
    None when the instrument states no reliable-change threshold."""
    threshold = INSTRUMENTS[code].reliable_change
    if threshold is None:
        return None
    change = after - before
    if change <= -threshold:
        return "improved"
    if change >= threshold:
        return "worsened"
    return "no_reliable_change"


def describe() -> list[dict]:
    """The instruments as data, for clients that render the questionnaires' answer ranges."""
    return [
        {
            "code": i.code,
            "name": i.name,
            "items": i.items,
            "item_min": i.item_min,
            "item_max": i.item_max,
            "max_score": i.max_score,
            "bands": [{"name": b.name, "low": b.low, "high": b.high} for b in i.bands],
            "reliable_change": i.reliable_change,
        }
        for i in INSTRUMENTS.values()
    ]
