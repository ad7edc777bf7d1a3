"""The scorer against DOMAIN.md section 6: every band edge, every cut-off, the maxima, PCL-5's DSM-5 cluster
rule both ways, AUDIT-C by sex, PHQ-9 item 9, and malformed answers. Pure functions: no app needed."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from telemed.mental import screening
from telemed.mental.screening import AnswersError, score


def spread(total: int, items: int, item_max: int, *, last_zero: bool = False) -> list[int]:
    """Answers adding up to `total`, filled from the first item (optionally keeping the last item at 0)."""
    answers = [0] * items
    slots = range(items - 1) if last_zero else range(items)
    remaining = total
    for i in slots:
        answers[i] = min(item_max, remaining)
        remaining -= answers[i]
    assert remaining == 0, "total too large for these items"
    return answers


# (total, band, positive) at 0, on both sides of every cut point, and at the maximum.
PHQ9_EDGES = [
    (0, "minimal", False),
    (4, "minimal", False),
    (5, "mild", False),
    (9, "mild", False),
    (10, "moderate", True),
    (14, "moderate", True),
    (15, "moderately_severe", True),
    (19, "moderately_severe", True),
    (20, "severe", True),
    (24, "severe", True),
]
GAD7_EDGES = [
    (0, "minimal", False),
    (4, "minimal", False),
    (5, "mild", False),
    (9, "mild", False),
    (10, "moderate", True),
    (14, "moderate", True),
    (15, "severe", True),
    (21, "severe", True),
]


@pytest.mark.parametrize("total,band,positive", PHQ9_EDGES)
def test_phq9_bands_and_cut_off(total, band, positive):
    # Item 9 stays 0 so only the total decides here (item 9 has its own tests).
    result = score("phq9", spread(total, 9, 3, last_zero=True))
    assert (result.score, result.severity, result.positive) == (total, band, positive)
    assert "suicidal_ideation" not in result.flags


def test_phq9_maximum_is_27_severe_and_flags_item_9():
    result = score("phq9", [3] * 9)
    assert (result.score, result.severity, result.positive) == (27, "severe", True)
    assert result.flags == ["suicidal_ideation", "severe_symptoms"]
    assert result.recommended_action == "same_day_safety_assessment"


def test_phq9_item_9_at_1_with_total_1_is_flagged_for_a_same_day_safety_assessment():
    result = score("phq9", [0, 0, 0, 0, 0, 0, 0, 0, 1])
    assert (result.score, result.severity, result.positive) == (1, "minimal", False)
    assert result.flags == ["suicidal_ideation"]
    assert result.recommended_action == "same_day_safety_assessment"


@pytest.mark.parametrize("item9", [1, 2, 3])
def test_phq9_any_item_9_above_0_flags_whatever_the_total(item9):
    assert score("phq9", [0] * 8 + [item9]).flags[0] == "suicidal_ideation"
    assert score("phq9", [2] * 8 + [item9]).recommended_action == "same_day_safety_assessment"


def test_phq9_item_9_at_0_with_high_total_is_not_suicidal_ideation():
    result = score("phq9", [3] * 8 + [0])
    assert result.score == 24 and result.flags == ["severe_symptoms"]
    assert result.recommended_action == "urgent_consultation"


@pytest.mark.parametrize("total,band,positive", GAD7_EDGES)
def test_gad7_bands_and_cut_off(total, band, positive):
    result = score("gad7", spread(total, 7, 3))
    assert (result.score, result.severity, result.positive) == (total, band, positive)


def test_severe_scores_recommend_an_urgent_consultation_and_moderate_a_consultation():
    assert score("gad7", spread(15, 7, 3)).recommended_action == "urgent_consultation"
    assert score("gad7", spread(15, 7, 3)).flags == ["severe_symptoms"]
    assert score("gad7", spread(14, 7, 3)).recommended_action == "consultation"
    assert score("gad7", spread(14, 7, 3)).flags == []
    assert score("phq9", spread(20, 9, 3, last_zero=True)).recommended_action == "urgent_consultation"
    assert score("phq9", spread(19, 9, 3, last_zero=True)).recommended_action == "consultation"
    assert score("phq9", spread(9, 9, 3, last_zero=True)).recommended_action == "no_action"


def test_every_instrument_at_0_is_negative_and_unflagged():
    for code, inst in screening.INSTRUMENTS.items():
        result = score(code, [0] * inst.items, sex="male")
        assert result.score == 0 and not result.positive and result.flags == [], code
        assert result.recommended_action == "no_action"


def test_every_instrument_at_its_maximum():
    expected = {"phq9": 27, "gad7": 21, "pcl5": 80, "auditc": 12}
    for code, inst in screening.INSTRUMENTS.items():
        result = score(code, [inst.item_max] * inst.items, sex="female")
        assert result.score == expected[code] and result.positive, code


# PCL-5 ------------------------------------------------------------------------------------------------


def pcl5(**items) -> list[int]:
    """PCL-5 answers: item_N=value, the rest 0."""
    answers = [0] * 20
    for key, value in items.items():
        answers[int(key.removeprefix("item_")) - 1] = value
    return answers


def test_pcl5_cut_off_between_32_and_33():
    # Items 1-5 (cluster B) stay at 1, so the DSM-5 rule fails and only the cut-off decides.
    at_32 = [1] * 8 + [2] * 12
    result = score("pcl5", at_32)
    assert result.score == 32 and result.criteria == {"cut_off": False, "dsm5_clusters": False}
    assert not result.positive
    at_33 = [1] * 7 + [2] * 13
    result = score("pcl5", at_33)
    assert result.score == 33 and result.criteria == {"cut_off": True, "dsm5_clusters": False}
    assert result.positive


def test_pcl5_passes_the_cut_off_but_fails_the_clusters():
    # B, D, E heavily endorsed, C (items 6-7) not at all: total 44 >= 33, DSM-5 rule not met.
    answers = pcl5(
        item_1=4,
        item_2=4,
        item_3=4,
        item_4=4,
        item_5=4,
        item_8=4,
        item_9=4,
        item_10=4,
        item_11=4,
        item_15=4,
        item_16=4,
        item_6=1,
        item_7=1,
    )
    result = score("pcl5", answers)
    assert result.score == 46
    assert result.criteria == {"cut_off": True, "dsm5_clusters": False}
    assert result.clusters["C"] == {"endorsed": 0, "needed": 1, "met": False}
    assert all(result.clusters[name]["met"] for name in "BDE")
    assert result.positive  # the cut-off alone is a provisional positive


def test_pcl5_meets_the_clusters_but_not_the_cut_off():
    # The DSM-5 minimum: 1 B + 1 C + 2 D + 2 E items at 2 = 12 < 33.
    answers = pcl5(item_1=2, item_6=2, item_8=2, item_9=2, item_15=2, item_16=2)
    result = score("pcl5", answers)
    assert result.score == 12
    assert result.criteria == {"cut_off": False, "dsm5_clusters": True}
    assert result.positive


@pytest.mark.parametrize("missing", ["B", "C", "D", "E"])
def test_pcl5_each_cluster_one_short_fails_the_rule(missing):
    full = {"B": {"item_1": 2}, "C": {"item_6": 2}, "D": {"item_8": 2, "item_9": 2}, "E": {"item_15": 2, "item_16": 2}}
    items = {}
    for name, part in full.items():
        if name == missing:
            # One short of what the cluster needs: drop the last endorsed item.
            part = dict(list(part.items())[:-1])
        items.update(part)
    result = score("pcl5", pcl5(**items))
    assert result.criteria["dsm5_clusters"] is False
    assert result.clusters[missing]["met"] is False
    assert not result.positive


def test_pcl5_items_rated_1_never_count_towards_a_cluster():
    result = score("pcl5", [1] * 20)
    assert result.score == 20 and result.criteria == {"cut_off": False, "dsm5_clusters": False}
    assert not result.positive and result.severity is None


# AUDIT-C ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sex,total,positive",
    [
        ("male", 3, False),
        ("male", 4, True),
        ("female", 2, False),
        ("female", 3, True),
        (None, 2, False),
        (None, 3, True),
        ("other", 3, True),
        ("male", 12, True),
        ("female", 0, False),
    ],
)
def test_auditc_threshold_by_sex(sex, total, positive):
    result = score("auditc", spread(total, 3, 4), sex=sex)
    assert result.score == total and result.positive is positive
    assert result.criteria == {"cut_off": positive}


# Reliable change ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "code,before,after,expected",
    [
        ("phq9", 15, 10, "improved"),
        ("phq9", 15, 11, "no_reliable_change"),
        ("phq9", 10, 15, "worsened"),
        ("phq9", 10, 14, "no_reliable_change"),
        ("pcl5", 50, 40, "improved"),
        ("pcl5", 50, 41, "no_reliable_change"),
        ("pcl5", 30, 40, "worsened"),
        ("gad7", 20, 0, None),
        ("auditc", 0, 12, None),
    ],
)
def test_reliable_change(code, before, after, expected):
    assert screening.reliable_change(code, before, after) == expected


# Malformed answers -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "answers,errors",
    [
        ([0] * 8, ["PHQ-9 (depression) has 9 items: got 8 answers"]),
        ([0] * 10, ["PHQ-9 (depression) has 9 items: got 10 answers"]),
        ([0, 0, 0, 4, 0, 0, 0, 0, 0], {3: ["item 4: must be an integer from 0 to 3"]}),
        ([0, 0, 0, 0, 0, 0, 0, 0, -1], {8: ["item 9: must be an integer from 0 to 3"]}),
        (["1", 0, 0, 0, 0, 0, 0, 0, 0], {0: ["item 1: must be an integer from 0 to 3"]}),
        ([0, None, 0, 0, 0, 0, 0, 0, 0], {1: ["item 2: must be an integer from 0 to 3"]}),
        ([0, 0, True, 0, 0, 0, 0, 0, 0], {2: ["item 3: must be an integer from 0 to 3"]}),
        ([0, 0, 0, 1.0, 0, 0, 0, 0, 0], {3: ["item 4: must be an integer from 0 to 3"]}),
        ([0, 0, 0, 0, 0, 0, 0, 0, "x"], {8: ["item 9: must be an integer from 0 to 3"]}),
    ],
)
def test_malformed_answers_name_the_item(answers, errors):
    with pytest.raises(AnswersError) as caught:
        score("phq9", answers)
    assert caught.value.errors == errors


def test_several_bad_items_are_all_named():
    with pytest.raises(AnswersError) as caught:
        score("gad7", [9, 0, "a", 0, 0, 0, False])
    assert set(caught.value.errors) == {0, 2, 6}


@settings(max_examples=150, deadline=None)
@given(
    code=st.sampled_from(sorted(screening.INSTRUMENTS)),
    answers=st.lists(
        st.one_of(st.integers(-3, 7), st.booleans(), st.none(), st.text(max_size=2), st.floats(allow_nan=True)),
        max_size=24,
    ),
    sex=st.sampled_from([None, "female", "male", "other"]),
)
def test_any_answers_either_score_within_range_or_raise_answers_error(code, answers, sex):
    inst = screening.INSTRUMENTS[code]
    try:
        result = score(code, answers, sex=sex)
    except AnswersError:
        return
    assert 0 <= result.score <= inst.max_score
    assert result.recommended_action in screening.ACTION_ORDER
    if inst.bands:
        assert result.severity is not None
