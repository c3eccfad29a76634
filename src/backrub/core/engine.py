"""The live session: a plan → cues on absolute deadlines, plus pause, resume, skip, extend and
feedback that re-plans what is left.

Everything is a pure function of a `LiveState` and a clock reading. Deadlines are offsets of
*active* time (time not paused) from the session's start, computed from the plan each time — never
accumulated — so nothing drifts over an hour, and a pause shifts what follows by exactly its
length. The state is a plain value: `state_as_dict` / `state_from_dict` save and restore it, and a
restored session continues where it was, paused; `state_view` is what the page is shown.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from backrub.core.errors import BadInput
from backrub.core.models import FEEDBACK_KINDS, PHASES, PRESSURE_WORDS, FeedbackEvent, Step
from backrub.core.planner import Rules, make_step, replan

if TYPE_CHECKING:
    from collections.abc import Sequence

    from backrub.core.catalogue import Catalogue
    from backrub.core.models import Plan

CueKind = Literal["step", "halfway", "check-in", "finish"]
# The giver asks the receiver this long into a step that has a check-in.
CHECK_IN_AFTER = 20.0
EXTEND_SECONDS = 60.0
BREATH_IN = 4.0
BREATH_OUT = 6.0
# A saved state: its steps as decided (`SAVED_STEP`), their words made when it is restored.
STATE_FORMAT = 2


class Cue(NamedTuple):
    id: str
    kind: CueKind
    at: float
    step: int
    text: str


class LiveState(NamedTuple):
    steps: tuple[Step, ...]
    rules: Rules
    # The soft ceiling feedback moves (never above rules.limit).
    ceiling: int
    # Live length of each step: the plan's, changed by skip and extend.
    durations: tuple[float, ...]
    # Active seconds accumulated until `anchor`; `anchor` is the clock reading when the session
    # last started running, None while paused or not started.
    active: float = 0.0
    anchor: float | None = None
    started: bool = False
    stopped: bool = False
    fired: frozenset[str] = frozenset()
    # Heard since the state was made or restored (a snapshot leaves it out: `state_as_dict`).
    feedback: tuple[FeedbackEvent, ...] = ()
    tender: tuple[str, ...] = ()
    # Bumped by every change, so a store can refuse a save older than the one it has.
    seq: int = 0


class Position(NamedTuple):
    step: int
    step_elapsed: float
    step_remaining: float
    elapsed: float
    remaining: float
    total: float
    running: bool
    finished: bool


class Breath(NamedTuple):
    phase: Literal["in", "out"]
    # 0 → 1 through the current in- or out-breath.
    progress: float


def new_session(plan: Plan, rules: Rules) -> LiveState:
    steps = plan.steps
    return LiveState(
        steps=steps,
        rules=rules,
        ceiling=rules.limit,
        durations=tuple(float(s.seconds) for s in steps),
    )


# ---- reading the state ----------------------------------------------------------------------


def active_time(state: LiveState, now: float) -> float:
    return state.active + (now - state.anchor if state.anchor is not None else 0.0)


def starts(state: LiveState) -> list[float]:
    out, t = [], 0.0
    for d in state.durations:
        out.append(t)
        t += d
    return out


def total(state: LiveState) -> float:
    return sum(state.durations)


def position(state: LiveState, now: float) -> Position:
    t = active_time(state, now)
    begin = starts(state)
    end = total(state)
    finished = state.stopped or t >= end
    index = len(state.steps) - 1
    for i, (b, d) in enumerate(zip(begin, state.durations, strict=True)):
        if t < b + d:
            index = i
            break
    elapsed_in = min(max(0.0, t - begin[index]), state.durations[index])
    return Position(
        step=index,
        step_elapsed=elapsed_in,
        step_remaining=state.durations[index] - elapsed_in,
        elapsed=min(t, end),
        remaining=max(0.0, end - t),
        total=end,
        running=state.anchor is not None and not finished,
        finished=finished,
    )


def schedule(state: LiveState) -> list[Cue]:
    """Every cue of the session, in time order, on the current plan and durations."""
    cues: list[Cue] = []
    for i, (step, begin, length) in enumerate(
        zip(state.steps, starts(state), state.durations, strict=True)
    ):
        cues.append(Cue(f"step:{i}", "step", begin, i, step.cue))
        if step.check_in and state.rules.mode == "partner":
            at = begin + min(CHECK_IN_AFTER, length / 4)
            cues.append(Cue(f"check:{i}", "check-in", at, i, "Ask: is the pressure right?"))
        cues.append(Cue(f"half:{i}", "halfway", begin + length / 2, i, step.halfway))
    cues.sort(key=lambda c: (c.at, c.step))
    end = total(state)
    cues.append(
        Cue("finish", "finish", end, len(state.steps) - 1, "That's the end. Rest a moment.")
    )
    return cues


def breath(state: LiveState, now: float) -> Breath:
    """The breathing pacer: in for 4 s, out for 6 s, in step with active time."""
    t = active_time(state, now) % (BREATH_IN + BREATH_OUT)
    if t < BREATH_IN:
        return Breath("in", t / BREATH_IN)
    return Breath("out", (t - BREATH_IN) / BREATH_OUT)


# ---- changing it ----------------------------------------------------------------------------


def _bump(state: LiveState, **changes: Any) -> LiveState:
    return state._replace(seq=state.seq + 1, **changes)


def start(state: LiveState, now: float) -> LiveState:
    if state.started:
        return resume(state, now)
    return _bump(state, started=True, anchor=now)


def pause(state: LiveState, now: float) -> LiveState:
    if state.anchor is None:
        return state
    return _bump(state, active=active_time(state, now), anchor=None)


def resume(state: LiveState, now: float) -> LiveState:
    if state.anchor is not None or state.stopped:
        return state
    return _bump(state, anchor=now, started=True)


def toggle(state: LiveState, now: float) -> LiveState:
    return pause(state, now) if state.anchor is not None else resume(state, now)


def due(state: LiveState, now: float) -> tuple[LiveState, list[Cue]]:
    """The cues whose deadline has come and that have not been given yet, oldest first."""
    if not state.started:
        return state, []
    t = active_time(state, now)
    ready = [c for c in schedule(state) if c.at <= t and c.id not in state.fired]
    if not ready:
        return state, []
    return state._replace(fired=state.fired | {c.id for c in ready}), ready


def skip(state: LiveState, now: float) -> LiveState:
    """End the current step now; the next one starts at once. Its unsaid cues are dropped."""
    pos = position(state, now)
    if pos.finished:
        return state
    i = pos.step
    durations = list(state.durations)
    durations[i] = pos.step_elapsed
    dropped = {f"half:{i}", f"check:{i}"}
    return _bump(state, durations=tuple(durations), fired=state.fired | dropped)


def extend(state: LiveState, now: float, seconds: float = EXTEND_SECONDS) -> LiveState:
    """Give the current step more time; everything after it moves later by as much."""
    pos = position(state, now)
    if pos.finished:
        return state
    durations = list(state.durations)
    durations[pos.step] += seconds
    return _bump(state, durations=tuple(durations))


def stop(state: LiveState, now: float) -> LiveState:
    """End early (the partial session is still saved by the adapter)."""
    paused = pause(state, now)
    return _bump(paused, stopped=True)


def feedback(
    catalogue: Catalogue, state: LiveState, now: float, kind: str
) -> tuple[LiveState, str]:
    """The receiver's word: 'good', 'softer', 'firmer' or 'tender' (this spot, lighter, and
    remembered). Re-plans what is left; returns the new state and a sentence to say."""
    if kind not in FEEDBACK_KINDS:
        raise BadInput(f"feedback must be one of: {', '.join(FEEDBACK_KINDS)} (got {kind!r}).")
    pos = position(state, now)
    if pos.finished:
        return state, "The session has ended."
    i = pos.step
    step = state.steps[i]
    region = catalogue.regions[step.region]
    event = FeedbackEvent(kind, round(active_time(state, now), 3), i, step.region)
    rules, ceiling, level = state.rules, state.ceiling, step.pressure
    tender = state.tender
    if kind == "softer":
        level = max(1, step.pressure - 1)
        ceiling = max(1, min(ceiling, level))
        message = f"Softer: {PRESSURE_WORDS[level]} pressure now."
        if level == step.pressure:
            message = "That is already the lightest touch."
    elif kind == "firmer":
        level = min(step.pressure + 1, rules.cap_for(region))
        if level == step.pressure:
            message = "That is as firm as this session goes here."
        else:
            ceiling = max(ceiling, level)
            message = f"Firmer: {PRESSURE_WORDS[level]} pressure now."
    elif kind == "tender":
        level = max(1, step.pressure - 1)
        caps = dict(rules.region_caps)
        caps[step.region] = min(caps.get(step.region, 5), level)
        rules = rules._replace(region_caps=tuple(sorted(caps.items())))
        tender = tuple(dict.fromkeys((*tender, step.region)))
        message = f"Tender spot: lighter on the {region.name} from now on."
    else:
        message = "Good — carry on like this."
    steps = state.steps
    if kind != "good":
        steps = replan(catalogue, rules, steps, current=i, level=level, ceiling=ceiling)
        if steps[i].technique != step.technique:
            message += f" Switch to {catalogue.techniques[steps[i].technique].name.lower()}."
    new = _bump(
        state,
        steps=steps,
        rules=rules,
        ceiling=ceiling,
        tender=tender,
        feedback=(*state.feedback, event),
    )
    return new, message


# ---- saving and restoring -------------------------------------------------------------------

# What a saved step holds: what the planner decided for it. Its words (the cue, the breath, the
# halfway line, the self-help), its tool and the areas it avoids follow from those, the catalogue
# and the session's rules (`planner.make_step`), so they are made again when it is restored.
SAVED_STEP = ("phase", "region", "technique", "pressure", "seconds", "start", "check_in")
# The page's view of a state (`state_view`): every step whole, with its words.
VIEW_FORMAT = 1


def state_as_dict(
    state: LiveState, now: float, *, like: tuple[LiveState, dict[str, Any]] | None = None
) -> dict[str, Any]:
    """A JSON-ready snapshot to save. Running time is folded in; a restored session starts
    paused.

    Each step is saved as what was decided for it (`SAVED_STEP`), not its words: a saved state
    is a few hundred bytes rather than several KB, and it is written at every feedback, skip
    and extend. The page sees the steps whole: `state_view`. Field by field rather than through
    `as_plain`, which is generic (tests check the two agree).

    The feedback heard is not part of it: a store keeps those events apart (they are the
    session's record), and in a snapshot they were a list that grew all session and was written
    again at every save. A restored state has heard nothing (`state_from_dict`).

    `like`: the state this one was made from, and its snapshot (as made here, or as read back
    from JSON). What the two states share — the same steps, rules, durations, tender areas — is
    that snapshot's very values rather than made again, so a caller can tell what changed by
    identity (tests check the result is the same).
    """
    old, data = like if like is not None else (None, {})
    return {
        "steps": _saved_steps(state, old, data),
        "rules": data["rules"]
        if old is not None and state.rules is old.rules
        else _rules_as_dict(state.rules),
        "ceiling": state.ceiling,
        "durations": data["durations"]
        if old is not None and state.durations == old.durations
        else list(state.durations),
        "active": active_time(state, now),
        "anchor": None,
        "started": state.started,
        "stopped": state.stopped,
        "fired": data["fired"]
        if old is not None and state.fired == old.fired
        else sorted(state.fired),
        "tender": data["tender"]
        if old is not None and state.tender == old.tender
        else list(state.tender),
        "seq": state.seq,
        "format": STATE_FORMAT,
    }


def state_view(state: LiveState, now: float) -> dict[str, Any]:
    """The state as the page reads it (the `state` of the session's view): as saved, but with
    every step whole, its words included."""
    return {
        **state_as_dict(state, now),
        "steps": [_step_as_dict(step) for step in state.steps],
        "format": VIEW_FORMAT,
    }


def _rules_as_dict(rules: Rules) -> dict[str, Any]:
    return {
        "mode": rules.mode,
        "limit": rules.limit,
        "avoid_regions": sorted(rules.avoid_regions),
        "avoid_tools": sorted(rules.avoid_tools),
        "region_caps": [[region, cap] for region, cap in rules.region_caps],
    }


def _saved_steps(
    state: LiveState, old: LiveState | None, data: dict[str, Any]
) -> list[dict[str, Any]]:
    if old is None or data.get("format") != STATE_FORMAT:
        return [_saved_step(step) for step in state.steps]
    shared = len(old.steps)
    kept: list[dict[str, Any]] = data["steps"]
    steps = [
        kept[i] if i < shared and step is old.steps[i] else _saved_step(step)
        for i, step in enumerate(state.steps)
    ]
    # Unchanged: the very list saved, so that the caller sees it did not change.
    same = len(steps) == len(kept) and all(a is b for a, b in zip(steps, kept, strict=True))
    return kept if same else steps


def _saved_step(step: Step) -> dict[str, Any]:
    return {
        "phase": step.phase,
        "region": step.region,
        "technique": step.technique,
        "pressure": step.pressure,
        "seconds": step.seconds,
        "start": step.start,
        "check_in": step.check_in,
    }


def _step_as_dict(step: Step) -> dict[str, Any]:
    data = step._asdict()
    data["avoid"] = list(step.avoid)
    return data


def state_from_dict(data: dict[str, Any], catalogue: Catalogue) -> LiveState:
    """A saved state (or the page's view of one), restored paused. A saved step's words are
    made from `catalogue`, as the planner makes them; a view's steps carry their own."""
    try:
        form = data.get("format")
        if form not in (STATE_FORMAT, VIEW_FORMAT):
            raise ValueError("unknown format")
        raw = data["rules"]
        rules = Rules(
            mode=raw["mode"],
            limit=int(raw["limit"]),
            avoid_regions=frozenset(raw["avoid_regions"]),
            avoid_tools=frozenset(raw["avoid_tools"]),
            region_caps=tuple((str(r), int(c)) for r, c in raw["region_caps"]),
        )
        if form == STATE_FORMAT:
            steps = tuple(
                _restored_step(catalogue, rules, i, s) for i, s in enumerate(data["steps"])
            )
        else:
            steps = tuple(_step(s) for s in data["steps"])
        return LiveState(
            steps=steps,
            rules=rules,
            ceiling=int(data["ceiling"]),
            durations=tuple(float(d) for d in data["durations"]),
            active=float(data["active"]),
            anchor=None,
            started=bool(data["started"]),
            stopped=bool(data["stopped"]),
            fired=frozenset(data["fired"]),
            tender=tuple(data["tender"]),
            seq=int(data["seq"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise BadInput(f"The saved session cannot be read ({exc}); start a new one.") from None


def _restored_step(catalogue: Catalogue, rules: Rules, index: int, saved: Any) -> Step:
    if not isinstance(saved, dict) or set(saved) != set(SAVED_STEP):
        raise ValueError(f"step {index + 1} must have exactly {', '.join(SAVED_STEP)}")
    region = catalogue.regions.get(saved["region"])
    technique = catalogue.techniques.get(saved["technique"])
    if region is None or technique is None or saved["phase"] not in PHASES:
        raise ValueError(f"step {index + 1} names a phase, area or technique this backrub lacks")
    return make_step(
        catalogue,
        rules,
        index=index,
        phase=saved["phase"],
        region=region,
        technique=technique,
        seconds=int(saved["seconds"]),
        start=int(saved["start"]),
        level=int(saved["pressure"]),
        check_in=bool(saved["check_in"]),
    )


def _step(data: Sequence[Any] | dict[str, Any]) -> Step:
    fields = dict(data) if isinstance(data, dict) else dict(zip(Step._fields, data, strict=True))
    fields["avoid"] = tuple(fields.get("avoid") or ())
    return Step(**fields)
