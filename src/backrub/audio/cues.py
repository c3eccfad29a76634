"""What the track says and when: the engine's cue timeline, placed so that no cue is cut off.

Placement rules (also in the README):
- A cue starts at the moment the plan gives it, unless the cue before it is still being spoken:
  then it starts `GAP` seconds after that one ends. Only the overlapping cue moves, and only by
  the overlap; the ambient bed and the breathing pace keep the plan's clock throughout.
- Each step's cue is announced by a chime `CHIME_LEAD` seconds before its first word, so the
  track opens with a chime and the first words come `CHIME_LEAD` seconds in.
- The plan's last cue ("That's the end…") is due when the session ends, which is where the track
  ends; it is placed to finish `TAIL` seconds before the end instead, followed by a closing chime.
  If that would overlap the cue before, that cue moves earlier by the overlap.
- The track lasts exactly the plan's length.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

from backrub.core import engine
from backrub.core.errors import BadInput

if TYPE_CHECKING:
    from collections.abc import Sequence

    from backrub.core.catalogue import Catalogue
    from backrub.core.models import Plan
    from backrub.core.planner import Rules

GAP = 0.75
CHIME_LEAD = 1.5
TAIL = 4.0
EPSILON = 1e-6  # seconds: far below a sample, above float rounding


class Spoken(NamedTuple):
    kind: str  # the engine's cue kinds, and "breath"
    step: int
    planned: float  # seconds from the start, as the engine schedules it
    text: str


class Placed(NamedTuple):
    spoken: Spoken
    start: float
    seconds: float
    # When this cue's chime rings (step cues), else None.
    chime: float | None


def spoken_cues(plan: Plan, rules: Rules) -> list[Spoken]:
    """Every cue of the plan in order, worded as the terminal player says them."""
    state = engine.new_session(plan, rules)
    count = len(plan.steps)
    out: list[Spoken] = []
    for cue in engine.schedule(state):
        text = f"Step {cue.step + 1} of {count}. {cue.text}" if cue.kind == "step" else cue.text
        out.append(Spoken(cue.kind, cue.step, cue.at, text))
        if cue.kind == "step" and cue.step == 0 and plan.steps[0].breath:
            # The pace is heard in the ambient bed; say once what it is.
            out.append(Spoken("breath", 0, cue.at, plan.steps[0].breath))
    return out


def _before(cue: Spoken) -> float:
    return CHIME_LEAD if cue.kind == "step" else GAP


def place(cues: Sequence[Spoken], lengths: Sequence[float], total: float) -> list[Placed]:
    """Start times for cues with these spoken lengths in a track `total` seconds long."""
    starts: list[float] = []
    end = 0.0
    for cue, length in zip(cues, lengths, strict=True):
        earliest = end + _before(cue) if starts else (CHIME_LEAD if cue.kind == "step" else 0.0)
        start = max(cue.planned, earliest)
        if cue.kind == "finish":
            start = total - TAIL - length
        starts.append(start)
        end = start + length
    # Backwards: the finish cue (or a long tail of cues) must fit before the end.
    for i in range(len(starts) - 2, -1, -1):
        latest = starts[i + 1] - _before(cues[i + 1]) - lengths[i]
        if latest < starts[i] - EPSILON:
            starts[i] = latest
    if starts and starts[0] < (CHIME_LEAD if cues[0].kind == "step" else 0.0) - EPSILON:
        raise BadInput("The spoken cues do not fit in the track; choose more minutes.")
    return [
        Placed(cue, start, length, start - CHIME_LEAD if cue.kind == "step" else None)
        for cue, start, length in zip(cues, starts, lengths, strict=True)
    ]


def chimes(placed: Sequence[Placed], total: float) -> list[float]:
    times = [p.chime for p in placed if p.chime is not None]
    if placed and placed[-1].spoken.kind == "finish":
        last = placed[-1]
        times.append(min(last.start + last.seconds + GAP, total - 1.0))
    return times


def cue_list(placed: Sequence[Placed], *, total: float, track: str, voice: str) -> dict[str, Any]:
    """The `<name>.json` beside the track: every cue's start (where it is heard) and text."""
    return {
        "track": track,
        "seconds": total,
        "voice": voice,
        "cues": [
            {
                "start": round(p.start, 3),
                "end": round(p.start + p.seconds, 3),
                "planned": round(p.spoken.planned, 3),
                "kind": p.spoken.kind,
                "step": p.spoken.step + 1,
                "text": p.spoken.text,
            }
            for p in placed
        ],
        "chimes": [round(t, 3) for t in chimes(placed, total)],
    }


def chapters(catalogue: Catalogue, plan: Plan, placed: Sequence[Placed]) -> dict[str, Any]:
    """Podcasting 2.0 JSON chapters (podcast namespace, version 1.2.0): one chapter per step,
    starting at its chime, and one for the rest at the end."""
    items = []
    for p in placed:
        if p.spoken.kind == "step" and p.chime is not None:
            step = plan.steps[p.spoken.step]
            region = catalogue.regions[step.region].name
            phase = step.phase.replace("-", " ").capitalize()
            title = f"Step {step.position + 1}: {phase} — {region}"
            items.append({"startTime": round(max(0.0, p.chime), 3), "title": title})
        elif p.spoken.kind == "finish":
            items.append({"startTime": round(p.start, 3), "title": "Rest"})
    return {"version": "1.2.0", "chapters": items}
