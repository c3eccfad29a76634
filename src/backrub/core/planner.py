"""The planner: what a person wants + the safety verdict → a session plan.

The rules it keeps (tested as properties):
1. step seconds add up to exactly minutes × 60, and no step is shorter than 30 s;
2. pressure starts at ≤ 2, changes by at most one level from step to step, never exceeds the
   ceiling (the preference, a caution's cap, the region's own limit) and ends at ≤ 2;
3. phases come warm-up → strokes → focus → finish; the finish goes from top to bottom;
4. focus time is shared by tension: a tenser region never gets less time than a less tense one;
5. partner mode has a check-in after every rise in pressure and at least every 5 minutes;
6. self mode uses the self-help alternative where the hands cannot reach, and breathing is cued;
7. no step works on an avoided region, and a `stop` verdict yields no plan at all;
8. the same input gives the same plan.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Generic, NamedTuple, TypeVar

from backrub.core.errors import BadInput, OutOfRange, SafetyStop, UnknownRegion
from backrub.core.models import (
    MODES,
    PRESSURE_WORDS,
    Focus,
    Mode,
    Phase,
    Plan,
    PlanHistory,
    PlanRequest,
    Region,
    Step,
    Technique,
    Verdict,
)

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from backrub.core.catalogue import Catalogue

T = TypeVar("T")
LEVELS = (1, 2, 3, 4, 5)
MIN_STEP = 30
# Steps stay short enough that a check-in at every step start can keep the 5-minute rule.
MAX_STEP = 150
CHECK_IN_EVERY = 300
# Each phase's share of the session; focus takes what is left.
WARM_UP_SHARE = 0.15
STROKES_SHARE = 0.15
FINISH_SHARE = 0.12
# Every focus region gets at least this long before the rest is shared by tension.
FOCUS_BASE = 60
# Tension 0 still earns a share, so a region the person picked is never dropped.
TENSION_OFFSET = 1
START_LEVEL = 2
END_LEVEL = 2
STROKES_LEVEL = 3
# How a step's cue ends, by level: " Light pressure."
PRESSURE_SENTENCES = {
    level: f" {word.capitalize()} pressure." for level, word in PRESSURE_WORDS.items()
}
# A region marked tender is kept at light pressure.
TENDER_LEVEL = 2
# How much tenser a region counts when its tension stayed high in past sessions.
HIGH_TENSION_BOOST = 3


class Rules(NamedTuple):
    """What every step must respect. The live session keeps it to re-plan after feedback."""

    mode: Mode
    # The hard ceiling: the person's preference, lowered by a caution's cap. Never exceeded.
    limit: int
    avoid_regions: frozenset[str] = frozenset()
    avoid_tools: frozenset[str] = frozenset()
    # Regions to keep lighter (marked tender now or in past sessions): region → highest level.
    region_caps: tuple[tuple[str, int], ...] = ()

    def cap_for(self, region: Region, caps: Mapping[str, int] | None = None) -> int:
        """The highest level for `region` (`caps`: `region_caps` as a dict, when the caller
        asks for many regions: made once rather than at every step of a re-plan)."""
        found = dict(self.region_caps) if caps is None else caps
        return min(self.limit, region.max_pressure, found.get(region.id, 5))


class _Slot(NamedTuple):
    """A step before its pressure is smoothed and its technique chosen."""

    phase: Phase
    region: Region
    seconds: int
    # Position among the slots of the same phase and region (varies the technique), and how
    # many there are.
    turn: int
    of: int


def rules_for(request: PlanRequest, verdict: Verdict, history: PlanHistory | None = None) -> Rules:
    tender = sorted(history.tender_regions) if history else []
    return Rules(
        mode=request.mode,
        limit=min(request.ceiling, verdict.pressure_cap or 5),
        avoid_regions=verdict.avoid_regions,
        avoid_tools=verdict.avoid_tools,
        region_caps=tuple((r, TENDER_LEVEL) for r in tender),
    )


def validate_request(catalogue: Catalogue, request: PlanRequest) -> None:
    facts = catalogue.facts
    if request.mode not in MODES:
        raise BadInput(f"mode must be one of: {', '.join(MODES)} (got {request.mode!r}).")
    if not facts.min_minutes <= request.minutes <= facts.max_minutes:
        raise OutOfRange("minutes", request.minutes, facts.min_minutes, facts.max_minutes)
    if not 1 <= request.ceiling <= 5:
        raise OutOfRange("pressure", request.ceiling, 1, 5)
    seen: set[str] = set()
    for f in request.focus:
        region = catalogue.regions.get(f.region)
        if region is None or not region.focusable:
            raise UnknownRegion(f.region, catalogue.focus_region_ids)
        if f.region in seen:
            raise BadInput(f"{f.region} is given twice; give each focus region once.")
        seen.add(f.region)
        if not 0 <= f.tension <= 10:
            raise OutOfRange(f"tension for {f.region}", f.tension, 0, 10)


def build_plan(
    catalogue: Catalogue,
    request: PlanRequest,
    verdict: Verdict,
    history: PlanHistory | None = None,
) -> Plan:
    validate_request(catalogue, request)
    if verdict.level == "stop":
        raise SafetyStop(verdict, "The safety check says stop: no session can be planned.")
    rules = rules_for(request, verdict, history)
    slots = _slots(catalogue, request, verdict, history)
    caps = dict(rules.region_caps)
    levels = _smooth([_target(s, rules, caps) for s in slots])
    steps = _assemble(catalogue, rules, slots, levels)
    return Plan(request=request, verdict=verdict, steps=tuple(steps))


def replan(
    catalogue: Catalogue,
    rules: Rules,
    steps: Sequence[Step],
    *,
    current: int,
    level: int,
    ceiling: int,
) -> tuple[Step, ...]:
    """Re-plan from step `current` on, which now runs at `level`, under a (lowered or raised)
    `ceiling`: the rest rises by at most one level a step, stays within the rules and still ends
    light. Earlier steps, and every step's time, are kept."""
    ceiling = min(ceiling, rules.limit)
    shape = tuple([(s.phase, s.region, s.seconds) for s in steps])
    plan = _skeleton(_Same(catalogue), shape, rules)
    targets = [min(t, ceiling) for t in plan.targets[current:]]
    targets[0] = level
    levels = [*(s.pressure for s in steps[:current]), *_smooth(targets, fixed_first=True)]
    return tuple(steps[:current]) + tuple(
        _assemble(
            catalogue,
            rules,
            plan.slots,
            levels,
            first=current,
            before=steps[:current],
            old=steps,
            choices=plan.choices,
        )
    )


class _Same(Generic[T]):
    """A value compared and hashed by identity: the catalogue as part of a cache's key (the
    key holds it, so its id cannot be reused while the entry is kept)."""

    __slots__ = ("value",)

    def __init__(self, value: T) -> None:
        self.value = value

    def __hash__(self) -> int:
        return id(self.value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Same) and other.value is self.value


class _Skeleton(NamedTuple):
    """What a re-plan needs of a session besides the levels: its slots, each slot's target
    before the feedback's ceiling, and the technique each slot would get at each level."""

    slots: tuple[_Slot, ...]
    targets: tuple[int, ...]
    # choices[slot][level - 1]
    choices: tuple[tuple[Technique, ...], ...]


@lru_cache(maxsize=1024)
def _skeleton(
    catalogue: _Same[Catalogue], shape: tuple[tuple[Phase, str, int], ...], rules: Rules
) -> _Skeleton:
    """Made once for a session's steps (their phase, area and length, which a re-plan never
    changes) under its rules, not at every feedback: most of a re-plan's time before."""
    found = catalogue.value
    groups: dict[tuple[str, str], int] = {}
    for phase, region, _ in shape:
        groups[(phase, region)] = groups.get((phase, region), 0) + 1
    seen: dict[tuple[str, str], int] = {}
    slots = []
    for phase, region, seconds in shape:
        turn = seen.get((phase, region), 0)
        seen[(phase, region)] = turn + 1
        slots.append(_Slot(phase, found.regions[region], seconds, turn, groups[(phase, region)]))
    caps = dict(rules.region_caps)
    return _Skeleton(
        slots=tuple(slots),
        targets=tuple(_target(slot, rules, caps) for slot in slots),
        choices=tuple(
            tuple(_choose_technique(found, rules, slot, level) for level in LEVELS)
            for slot in slots
        ),
    )


def focus_regions(
    catalogue: Catalogue, request: PlanRequest, verdict: Verdict
) -> tuple[Focus, ...]:
    """The focus regions actually worked: the request's, or the guide's defaults, minus avoided."""
    chosen = [f for f in request.focus if f.region not in verdict.avoid_regions]
    if not chosen:
        defaults = [*catalogue.facts.default_focus, *catalogue.focus_region_ids]
        chosen = [
            Focus(r, 5)
            for r in dict.fromkeys(defaults)
            if r not in verdict.avoid_regions and catalogue.regions[r].focusable
        ][: len(catalogue.facts.default_focus)]
    # Top to bottom, so the hands move down the back rather than jumping around it.
    return tuple(sorted(chosen, key=lambda f: (catalogue.regions[f.region].center[1], f.region)))


def _slots(
    catalogue: Catalogue, request: PlanRequest, verdict: Verdict, history: PlanHistory | None
) -> list[_Slot]:
    total = request.minutes * 60
    warm = round(total * WARM_UP_SHARE)
    strokes = round(total * STROKES_SHARE)
    finish = round(total * FINISH_SHARE)
    focus_total = total - warm - strokes - finish
    whole = catalogue.regions["whole-back"]
    slots = _phase_slots("warm-up", whole, _split(warm))
    slots += _phase_slots("strokes", whole, _split(strokes))
    focus = focus_regions(catalogue, request, verdict)
    high = history.high_regions if history else frozenset()
    # A region whose tension stayed high last time counts as tenser now, so it gets more time.
    tensions = [
        min(10, f.tension + HIGH_TENSION_BOOST) if f.region in high else f.tension for f in focus
    ]
    for f, share in zip(focus, _share_by_tension(focus_total, tensions), strict=True):
        slots += _phase_slots("focus", catalogue.regions[f.region], _split(share))
    slots += _phase_slots("finish", whole, _split(finish))
    return slots


def _phase_slots(phase: Phase, region: Region, parts: list[int]) -> list[_Slot]:
    return [_Slot(phase, region, s, i, len(parts)) for i, s in enumerate(parts)]


def _target(slot: _Slot, rules: Rules, caps: Mapping[str, int]) -> int:
    """The pressure a slot aims for before smoothing (`caps`: the rules' region caps)."""
    cap = rules.cap_for(slot.region, caps)
    if slot.phase == "warm-up":
        return min(1 + slot.turn, START_LEVEL, cap)
    if slot.phase == "strokes":
        return min(STROKES_LEVEL, cap)
    if slot.phase == "finish":
        # The last of several finishing steps is the lightest touch of all.
        last_of_many = slot.of > 1 and slot.turn == slot.of - 1
        return min(1 if last_of_many else END_LEVEL, cap)
    return cap


def _assemble(
    catalogue: Catalogue,
    rules: Rules,
    slots: Sequence[_Slot],
    levels: Sequence[int],
    *,
    first: int = 0,
    before: Sequence[Step] = (),
    old: Sequence[Step] = (),
    choices: Sequence[Sequence[Technique]] = (),
) -> list[Step]:
    """Steps for slots[first:], choosing techniques and placing check-ins.

    Re-planning, a step of `old` whose technique, pressure, check-in and start come out the same
    is kept as it is rather than made again (the rest of a step follows from those, the slot
    it was made from and the session's mode and avoided regions, which never change).
    `choices`: each slot's technique at each level, when known (`_skeleton`)."""
    start = sum(s.seconds for s in slots[:first])
    last_check_in = max((s.start for s in before if s.check_in), default=0)
    steps = []
    for index in range(first, len(slots)):
        slot, level = slots[index], levels[index]
        check_in = False
        if rules.mode == "partner":
            rose = index > 0 and level > levels[index - 1]
            # Flag this step if its end would otherwise leave more than 5 minutes unasked.
            if rose or start + slot.seconds - last_check_in > CHECK_IN_EVERY:
                check_in = True
                last_check_in = start
        technique = (
            choices[index][level - 1]
            if choices
            else _choose_technique(catalogue, rules, slot, level)
        )
        kept = old[index] if index < len(old) else None
        if (
            kept is not None
            and kept.technique == technique.id
            and kept.pressure == level
            and kept.check_in == check_in
            and kept.start == start
        ):
            steps.append(kept)
        else:
            steps.append(
                make_step(
                    catalogue,
                    rules,
                    index=index,
                    phase=slot.phase,
                    region=slot.region,
                    technique=technique,
                    seconds=slot.seconds,
                    start=start,
                    level=level,
                    check_in=check_in,
                )
            )
        start += slot.seconds
    return steps


@lru_cache(maxsize=1024)
def _opening(template: str, region_name: str) -> str:
    """A technique's opening words for an area: the same few are made at every re-plan, and at
    every restore."""
    return template.format(region=region_name).rstrip()


def _split(total: int) -> list[int]:
    """Cut a phase into near-equal steps of at most MAX_STEP seconds (never under MIN_STEP)."""
    count = max(1, -(-total // MAX_STEP))
    base, extra = divmod(total, count)
    return [base + (1 if i < extra else 0) for i in range(count)]


def _share_by_tension(total: int, tensions: Sequence[int]) -> list[int]:
    """Largest-remainder apportionment, so a tenser region never gets less than a less tense one."""
    rest = total - FOCUS_BASE * len(tensions)
    weights = [t + TENSION_OFFSET for t in tensions]
    whole = sum(weights)
    exact = [rest * w / whole for w in weights]
    shares = [int(e) for e in exact]
    leftover = rest - sum(shares)
    by_remainder = sorted(
        range(len(exact)), key=lambda i: (-(exact[i] - shares[i]), -weights[i], i)
    )
    for i in by_remainder[:leftover]:
        shares[i] += 1
    return [FOCUS_BASE + s for s in shares]


def _smooth(targets: Sequence[int], *, fixed_first: bool = False) -> list[int]:
    """Rise and fall by at most one level per step, starting and ending light.

    With `fixed_first` the first level is kept as it is (the step running now, re-planned);
    only what follows it is smoothed."""
    levels = list(targets)
    if not fixed_first:
        levels[0] = min(levels[0], START_LEVEL)
    for i in range(1, len(levels)):
        levels[i] = min(levels[i], levels[i - 1] + 1)
    levels[-1] = min(levels[-1], END_LEVEL)
    for i in range(len(levels) - 2, 0 if fixed_first else -1, -1):
        levels[i] = min(levels[i], levels[i + 1] + 1)
    return levels


def _choose_technique(catalogue: Catalogue, rules: Rules, slot: _Slot, level: int) -> Technique:
    candidates = catalogue.techniques_for(
        phase=slot.phase,
        mode=rules.mode,
        region=slot.region.id,
        avoid_tools=rules.avoid_tools,
    )
    fitting = [t for t in candidates if t.pressure[0] <= level <= t.pressure[1]]
    # The catalogue's coverage check guarantees a fit; fall back to any candidate regardless.
    pool = fitting or list(candidates)
    return pool[slot.turn % len(pool)]


def make_step(
    catalogue: Catalogue,
    rules: Rules,
    *,
    index: int,
    phase: Phase,
    region: Region,
    technique: Technique,
    seconds: int,
    start: int,
    level: int,
    check_in: bool,
) -> Step:
    """A step whole, its words included, from what the planner decided for it: the rest follows
    from the catalogue and the session's rules (a restored session makes its steps so too)."""
    breath = catalogue.facts.breathing
    cue = _opening(technique.cues.start, region.name) + PRESSURE_SENTENCES[level]
    avoid: tuple[str, ...] = ()
    if region.id == "whole-back" and rules.avoid_regions:
        avoid = tuple(sorted(rules.avoid_regions))
        names = " and the ".join(catalogue.regions[r].name for r in avoid)
        cue += f" Keep your hands off the {names}: skip over it."
    self_help = None
    if rules.mode == "self":
        if not region.reachable_alone:
            self_help = region.self_help
        cue += f" {breath}"
    # In Step's field order (`_make` checks their number).
    return Step._make(
        (
            index,  # position
            phase,
            region.id,
            technique.id,
            technique.tools[0],  # tool
            level,  # pressure
            seconds,
            start,
            cue,
            check_in,
            breath,
            technique.cues.halfway,
            self_help,
            avoid,
        )
    )
