from __future__ import annotations

import pytest

from backrub.core.catalogue import CONTRAINDICATIONS, Catalogue
from backrub.core.errors import BadInput, UnknownCondition
from backrub.core.models import Finding
from backrub.core.safety import assess, parse_finding

RED_FLAGS = [
    "saddle-numbness",
    "bladder-or-bowel",
    "leg-weakness",
    "fever",
    "weight-loss",
    "history-of-cancer",
    "recent-fall",
    "night-pain",
]


def test_nothing_applies_is_clear(catalogue: Catalogue) -> None:
    verdict = assess(catalogue, [])
    assert verdict.level == "clear"
    assert verdict.reasons == ()


@pytest.mark.parametrize("condition", CONTRAINDICATIONS)
def test_each_contraindication_alone_stops(catalogue: Catalogue, condition: str) -> None:
    verdict = assess(catalogue, [Finding(condition)])
    assert verdict.level == "stop"
    assert not verdict.see_doctor or condition == "deep-vein-thrombosis"
    (reason,) = verdict.reasons
    assert reason.change.startswith("Stops the session")
    assert any("source guide" in s.name for s in reason.condition.sources)


@pytest.mark.parametrize("condition", RED_FLAGS)
def test_red_flags_stop_and_send_to_a_doctor(catalogue: Catalogue, condition: str) -> None:
    verdict = assess(catalogue, [Finding(condition)])
    assert verdict.level == "stop"
    assert verdict.see_doctor
    assert "doctor" in verdict.reasons[0].change


def test_a_stop_outweighs_cautions(catalogue: Catalogue) -> None:
    findings = [
        Finding("osteoporosis"),
        Finding("pregnancy"),
        Finding("recent-injury", "shoulders"),
    ]
    assert assess(catalogue, findings).level == "stop"


def test_caps_take_the_lowest_and_collect_tools(catalogue: Catalogue) -> None:
    verdict = assess(catalogue, [Finding("osteoporosis"), Finding("blood-thinners")])
    assert verdict.level == "caution"
    assert verdict.pressure_cap == 2
    assert verdict.avoid_tools == {"knuckles"}
    assert "level 2" in verdict.reasons[0].change


def test_avoid_names_the_region(catalogue: Catalogue) -> None:
    verdict = assess(catalogue, [Finding("sunburn-or-rash", "lower-back")])
    assert verdict.level == "caution"
    assert verdict.avoid_regions == {"lower-back"}
    assert verdict.reasons[0].change == "Skips the lower back."


def test_avoiding_the_whole_back_or_every_region_stops(catalogue: Catalogue) -> None:
    assert assess(catalogue, [Finding("sunburn-or-rash", "whole-back")]).level == "stop"
    every = [Finding("recent-injury", r) for r in catalogue.focus_region_ids]
    assert assess(catalogue, every).level == "stop"


def test_every_condition_has_a_readable_source(catalogue: Catalogue) -> None:
    for condition in catalogue.conditions.values():
        assert condition.sources, condition.id
        for source in condition.sources:
            assert source.name
            assert source.url is None or source.url.startswith("https://")


def test_parse_finding_forms(catalogue: Catalogue) -> None:
    assert parse_finding(catalogue, "pregnancy") == Finding("pregnancy")
    assert parse_finding(catalogue, "recent-injury=shoulders") == Finding(
        "recent-injury", "shoulders"
    )
    with pytest.raises(UnknownCondition, match="choose from: open-wounds"):
        parse_finding(catalogue, "headache")
    with pytest.raises(BadInput, match="needs the area"):
        parse_finding(catalogue, "recent-injury")
    with pytest.raises(BadInput, match="Unknown area 'knee'"):
        parse_finding(catalogue, "recent-injury=knee")
    with pytest.raises(BadInput, match="does not take an area"):
        parse_finding(catalogue, "pregnancy=shoulders")
