"""The planner's rules (issue #2), checked over all valid inputs with hypothesis."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backrub.core.catalogue import Catalogue, load_catalogue
from backrub.core.errors import SafetyStop
from backrub.core.models import (
    PHASES,
    PRESSURE_WORDS,
    Finding,
    Focus,
    Plan,
    PlanHistory,
    PlanRequest,
    Verdict,
)
from backrub.core.planner import CHECK_IN_EVERY, build_plan, replan, rules_for
from backrub.core.safety import assess

CATALOGUE = load_catalogue()
FOCUS_IDS = CATALOGUE.focus_region_ids
CAUTIONS = [c.id for c in CATALOGUE.conditions.values() if c.effect != "stop"]


@st.composite
def requests(draw: st.DrawFn) -> PlanRequest:
    regions = draw(st.lists(st.sampled_from(FOCUS_IDS), unique=True, max_size=len(FOCUS_IDS)))
    return PlanRequest(
        mode=draw(st.sampled_from(["self", "partner"])),
        minutes=draw(st.integers(15, 60)),
        focus=tuple(Focus(r, draw(st.integers(0, 10))) for r in regions),
        ceiling=draw(st.integers(2, 5)),
        oil=draw(st.booleans()),
    )


@st.composite
def verdicts(draw: st.DrawFn) -> Verdict:
    findings = []
    for cid in draw(st.lists(st.sampled_from(CAUTIONS), unique=True, max_size=4)):
        region = None
        if CATALOGUE.conditions[cid].effect == "avoid":
            region = draw(st.sampled_from(FOCUS_IDS))
        findings.append(Finding(cid, region))
    return assess(CATALOGUE, findings)


def planned(request: PlanRequest, verdict: Verdict) -> Plan | None:
    if verdict.level == "stop":
        with pytest.raises(SafetyStop):
            build_plan(CATALOGUE, request, verdict)
        return None
    return build_plan(CATALOGUE, request, verdict)


common = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@common
@given(requests(), verdicts())
def test_time_adds_up_and_no_step_is_too_short(request: PlanRequest, verdict: Verdict) -> None:
    plan = planned(request, verdict)
    if plan is None:
        return
    assert sum(s.seconds for s in plan.steps) == request.minutes * 60
    assert all(s.seconds >= 30 for s in plan.steps)
    starts = [s.start for s in plan.steps]
    assert starts == [sum(s.seconds for s in plan.steps[:i]) for i in range(len(plan.steps))]


@common
@given(requests(), verdicts())
def test_pressure_starts_light_rises_gently_and_ends_light(
    request: PlanRequest, verdict: Verdict
) -> None:
    plan = planned(request, verdict)
    if plan is None:
        return
    levels = [s.pressure for s in plan.steps]
    ceiling = min(request.ceiling, verdict.pressure_cap or 5)
    assert plan.steps[0].phase == "warm-up" and levels[0] <= 2
    assert plan.steps[-1].phase == "finish" and levels[-1] <= 2
    assert all(1 <= p <= ceiling for p in levels)
    assert all(b - a <= 1 for a, b in itertools.pairwise(levels))
    for s in plan.steps:
        assert s.pressure <= CATALOGUE.regions[s.region].max_pressure
        low, high = CATALOGUE.techniques[s.technique].pressure
        assert low <= s.pressure <= high, s


@common
@given(requests(), verdicts())
def test_phases_in_order_and_finish_goes_top_to_bottom(
    request: PlanRequest, verdict: Verdict
) -> None:
    plan = planned(request, verdict)
    if plan is None:
        return
    order = [PHASES.index(s.phase) for s in plan.steps]
    assert order == sorted(order)
    assert {s.phase for s in plan.steps} == set(PHASES)
    for s in plan.steps:
        assert s.phase in CATALOGUE.techniques[s.technique].phases
        assert request.mode in CATALOGUE.techniques[s.technique].modes
        if s.phase == "finish":
            assert "top to bottom" in s.cue


@common
@given(requests(), verdicts())
def test_focus_time_follows_tension(request: PlanRequest, verdict: Verdict) -> None:
    plan = planned(request, verdict)
    if plan is None:
        return
    time: dict[str, int] = {}
    for s in plan.steps:
        if s.phase == "focus":
            time[s.region] = time.get(s.region, 0) + s.seconds
    wanted = [f for f in request.focus if f.region not in verdict.avoid_regions]
    if wanted:
        assert set(time) == {f.region for f in wanted}
        for a in wanted:
            for b in wanted:
                if a.tension > b.tension:
                    assert time[a.region] >= time[b.region]
    else:
        defaults = [r for r in CATALOGUE.facts.default_focus if r not in verdict.avoid_regions]
        assert set(defaults) <= set(time)


@common
@given(requests(), verdicts())
def test_partner_check_ins_after_each_rise_and_every_five_minutes(
    request: PlanRequest, verdict: Verdict
) -> None:
    plan = planned(request, verdict)
    if plan is None:
        return
    steps = plan.steps
    if request.mode == "self":
        assert not any(s.check_in for s in steps)
        return
    for prev, step in itertools.pairwise(steps):
        if step.pressure > prev.pressure:
            assert step.check_in, step
    moments = [0] + [s.start for s in steps if s.check_in] + [request.minutes * 60]
    assert all(b - a <= CHECK_IN_EVERY for a, b in itertools.pairwise(moments))


@common
@given(requests(), verdicts())
def test_self_mode_uses_self_help_and_cues_breathing(
    request: PlanRequest, verdict: Verdict
) -> None:
    plan = planned(request, verdict)
    if plan is None or request.mode != "self":
        return
    for s in plan.steps:
        region = CATALOGUE.regions[s.region]
        assert CATALOGUE.facts.breathing in s.cue
        if not region.reachable_alone:
            assert s.self_help == region.self_help
            assert s.tool == "massage-ball"


@common
@given(requests(), verdicts())
def test_avoided_regions_are_never_worked(request: PlanRequest, verdict: Verdict) -> None:
    plan = planned(request, verdict)
    if plan is None:
        return
    for s in plan.steps:
        assert s.region not in verdict.avoid_regions
        assert s.tool not in verdict.avoid_tools
        if s.region == "whole-back" and verdict.avoid_regions:
            assert "Keep your hands off" in s.cue


@common
@given(requests(), verdicts())
def test_same_input_same_plan(request: PlanRequest, verdict: Verdict) -> None:
    plan = planned(request, verdict)
    if plan is None:
        return
    assert build_plan(CATALOGUE, request, verdict) == plan


@common
@given(
    requests(), st.sampled_from([c.id for c in CATALOGUE.conditions.values() if c.effect == "stop"])
)
def test_any_stop_condition_yields_no_plan(request: PlanRequest, stop_id: str) -> None:
    verdict = assess(CATALOGUE, [Finding(stop_id)])
    assert verdict.level == "stop"
    with pytest.raises(SafetyStop):
        build_plan(CATALOGUE, request, verdict)


def test_catalogue_fixture_matches(catalogue: Catalogue) -> None:
    # The module-level catalogue is the shipped one (hypothesis needs it before fixtures exist).
    assert catalogue == CATALOGUE


def _focus_seconds(plan: Plan, region: str) -> int:
    return sum(s.seconds for s in plan.steps if s.phase == "focus" and s.region == region)


@common
@given(requests(), st.sampled_from(FOCUS_IDS), st.sampled_from(FOCUS_IDS))
def test_history_gives_high_regions_time_and_tender_regions_a_light_touch(
    request: PlanRequest, high: str, tender: str
) -> None:
    verdict = assess(CATALOGUE, [])
    plain = build_plan(CATALOGUE, request, verdict)
    history = PlanHistory(high_regions=frozenset({high}), tender_regions=frozenset({tender}))
    learned = build_plan(CATALOGUE, request, verdict, history)
    assert learned == build_plan(CATALOGUE, request, verdict, history)
    assert learned.total_seconds == plain.total_seconds
    if any(f.region == high for f in request.focus) and len(request.focus) > 1:
        assert _focus_seconds(learned, high) >= _focus_seconds(plain, high)
    for s in learned.steps:
        if s.region == tender:
            assert s.pressure <= 2


@common
@given(requests(), verdicts(), st.data())
def test_a_replan_that_keeps_steps_equals_one_made_afresh(
    request: PlanRequest, verdict: Verdict, data: st.DataObject
) -> None:
    """Re-planning keeps a step that comes out unchanged rather than making it again: what it
    keeps must be exactly what making every step afresh gives, for any step, level and
    ceiling (each step of `fresh` has lost its technique, so none of them can be kept)."""
    plan = planned(request, verdict)
    if plan is None:
        return
    rules = rules_for(request, verdict)
    current = data.draw(st.integers(0, len(plan.steps) - 1))
    level = data.draw(st.integers(1, 5))
    ceiling = data.draw(st.integers(1, 5))
    kept = replan(CATALOGUE, rules, plan.steps, current=current, level=level, ceiling=ceiling)
    blank = [*plan.steps[:current], *(s._replace(technique="") for s in plan.steps[current:])]
    fresh = replan(CATALOGUE, rules, blank, current=current, level=level, ceiling=ceiling)
    assert kept[current:] == fresh[current:]
    assert kept[:current] == plan.steps[:current]


def test_a_replan_follows_the_catalogue_it_is_given() -> None:
    """Re-plans keep what they work out about a session's steps from one feedback to the next;
    a catalogue that caps an area lower (an upgrade, another app in the same process) must
    still be obeyed for the very same steps and rules."""
    request = PlanRequest("partner", 20, (Focus("shoulders", 8),), 5)
    verdict = assess(CATALOGUE, [])
    plan = build_plan(CATALOGUE, request, verdict)
    rules = rules_for(request, verdict)
    current = next(i for i, s in enumerate(plan.steps) if s.region == "shoulders")
    before = replan(CATALOGUE, rules, plan.steps, current=current, level=3, ceiling=5)
    assert max(s.pressure for s in before[current + 1 :] if s.region == "shoulders") > 1
    regions = dict(CATALOGUE.regions)
    regions["shoulders"] = regions["shoulders"]._replace(max_pressure=1)
    gentler = CATALOGUE._replace(regions=regions)
    after = replan(gentler, rules, plan.steps, current=current, level=1, ceiling=5)
    assert {s.pressure for s in after[current:] if s.region == "shoulders"} == {1}


@common
@given(requests(), verdicts())
def test_each_steps_words_and_tool_come_from_its_technique(
    request: PlanRequest, verdict: Verdict
) -> None:
    """Every field of a step in its place: its index, the technique's first tool, its halfway
    line and the guide's breathing line, its pressure named at the end of the cue."""
    plan = planned(request, verdict)
    if plan is None:
        return
    for index, step in enumerate(plan.steps):
        technique = CATALOGUE.techniques[step.technique]
        assert step.position == index
        assert step.tool == technique.tools[0]
        assert step.halfway == technique.cues.halfway
        assert step.breath == CATALOGUE.facts.breathing
        assert step.region in CATALOGUE.regions and step.phase in PHASES
        assert f"{PRESSURE_WORDS[step.pressure].capitalize()} pressure." in step.cue
        assert isinstance(step.check_in, bool) and isinstance(step.avoid, tuple)
        assert step.self_help is None or request.mode == "self"
