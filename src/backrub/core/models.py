"""The frozen types backrub's core works with.

They are plain dataclasses, not pydantic models: building a pydantic model class costs tens of
milliseconds at import, and the CLI's plan path must start fast. pydantic still validates the
catalogue files into these very classes (see ``catalogue.py``); ``__pydantic_config__`` is read by
pydantic there and ignored everywhere else.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Literal

from annotated_types import Ge, Interval, Le

Phase = Literal["warm-up", "strokes", "focus", "finish"]
PHASES: tuple[Phase, ...] = ("warm-up", "strokes", "focus", "finish")
Mode = Literal["self", "partner"]
MODES: tuple[Mode, ...] = ("self", "partner")
Effect = Literal["stop", "avoid", "cap"]
Kind = Literal["contraindication", "red-flag", "caution"]
MotionKind = Literal["circles", "glide", "knead", "press", "rake"]
Direction = Literal["up", "down", "out", "in", "along", "still"]
VerdictLevel = Literal["clear", "caution", "stop"]

Level = Annotated[int, Interval(ge=1, le=5)]
Unit = Annotated[float, Ge(0.0), Le(1.0)]
Tension = Annotated[int, Interval(ge=0, le=10)]
Seconds = Annotated[int, Ge(30)]

PRESSURE_WORDS: dict[int, str] = {1: "feather", 2: "light", 3: "medium", 4: "firm", 5: "deep"}
# `--pressure NAME` sets this ceiling (issue #2's contract).
PRESSURE_CEILINGS: dict[str, int] = {"light": 2, "medium": 3, "firm": 4, "deep": 5}

_FORBID = {"extra": "forbid"}


# ---- catalogue: the knowledge, loaded from package data ------------------------------------


@dataclass(frozen=True)
class Source:
    __pydantic_config__ = _FORBID
    name: str
    # Only where a stable public address is known; a name alone still lets a person look it up.
    url: str | None = None


@dataclass(frozen=True)
class Region:
    """An area of the back, drawn in the back map's unit box (x left→right, y neck→hips)."""

    __pydantic_config__ = _FORBID
    id: str
    name: str
    description: str
    # Where the label and the hand marker sit.
    center: tuple[Unit, Unit]
    # Polygons in the unit box; two for a region the body has on both sides.
    shapes: tuple[tuple[tuple[Unit, Unit], ...], ...]
    paired: bool
    # Can a person work this area well on their own back with their hands?
    reachable_alone: bool
    # What to do instead when it is not (a massage ball against a wall, …).
    self_help: str | None = None
    # May a person pick it as a focus area? (`whole-back` is for warm-up and finish only.)
    focusable: bool = True
    # Never more than this pressure here, whatever the preference (e.g. over the kidneys).
    max_pressure: Level = 5


@dataclass(frozen=True)
class Motion:
    """How the hands move, for the animation and the terminal sketch.

    ``path`` is in unit coordinates relative to the target region's bounding box, so one technique
    draws correctly on every region it applies to.
    """

    __pydantic_config__ = _FORBID
    kind: MotionKind
    path: tuple[tuple[Unit, Unit], ...]
    direction: Direction
    # Motion cycles per minute at medium pressure; firmer pressure is slower.
    tempo: Annotated[float, Interval(gt=0, le=120)]


@dataclass(frozen=True)
class Cues:
    __pydantic_config__ = _FORBID
    # Said when the step starts; `{region}` is replaced by the region's name.
    start: str
    halfway: str
    # Said by the giver in partner mode; for self mode it is skipped.
    check_in: str = "Ask: is the pressure right?"


@dataclass(frozen=True)
class Technique:
    __pydantic_config__ = _FORBID
    id: str
    name: str
    summary: str
    phases: tuple[Phase, ...]
    modes: tuple[Mode, ...]
    regions: tuple[str, ...]
    tools: tuple[str, ...]
    pressure: tuple[Level, Level]
    tempo: str
    duration: tuple[Seconds, Seconds]
    repetitions: str
    instructions: tuple[str, ...]
    direction: str
    tips: tuple[str, ...]
    mistakes: tuple[str, ...]
    warning: str
    motion: Motion
    cues: Cues
    # Absent for a mode the technique is not used in.
    start_position_self: str | None = None
    start_position_partner: str | None = None


@dataclass(frozen=True)
class Condition:
    __pydantic_config__ = _FORBID
    id: str
    label: str
    question: str
    kind: Kind
    effect: Effect
    why: str
    advice: str
    sources: tuple[Source, ...]
    # `cap`: the highest pressure level allowed.
    pressure_cap: Level | None = None
    # Tools that must not be used (osteoporosis: no knuckles).
    avoid_tools: tuple[str, ...] = ()


@dataclass(frozen=True)
class SetupItem:
    __pydantic_config__ = _FORBID
    id: str
    text: str
    why: str


@dataclass(frozen=True)
class Facts:
    """What the source guide states and the product honours."""

    __pydantic_config__ = _FORBID
    min_minutes: Annotated[int, Ge(1)]
    max_minutes: Annotated[int, Ge(1)]
    default_minutes: Annotated[int, Ge(1)]
    frequency: str
    benefits: tuple[str, ...]
    rules: tuple[str, ...]
    breathing: str
    default_focus: tuple[str, ...]


@dataclass(frozen=True)
class CatalogueData:
    """The shape of the packaged data files, merged into one value."""

    __pydantic_config__ = _FORBID
    regions: tuple[Region, ...]
    techniques: tuple[Technique, ...]
    conditions: tuple[Condition, ...]
    setup: tuple[SetupItem, ...]
    facts: Facts


# ---- safety ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    """One condition the person says applies; `region` names the area for an `avoid` one."""

    condition: str
    region: str | None = None


@dataclass(frozen=True)
class Reason:
    condition: Condition
    region: str | None
    # What it changes, in plain words: "Stops the session.", "Skips the lower back." …
    change: str


@dataclass(frozen=True)
class Verdict:
    level: VerdictLevel
    reasons: tuple[Reason, ...] = ()
    pressure_cap: int | None = None
    avoid_regions: frozenset[str] = frozenset()
    avoid_tools: frozenset[str] = frozenset()

    @property
    def see_doctor(self) -> bool:
        return any(r.condition.kind == "red-flag" for r in self.reasons)


# ---- planning -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Focus:
    region: str
    tension: int = 7


@dataclass(frozen=True)
class PlanRequest:
    mode: Mode = "self"
    minutes: int = 20
    focus: tuple[Focus, ...] = ()
    # The highest pressure level the person wants (2 light … 5 deep).
    ceiling: int = 3
    oil: bool = True


@dataclass(frozen=True)
class Step:
    index: int
    phase: Phase
    region: str
    technique: str
    tool: str
    pressure: int
    seconds: int
    # Offset of the step's start from the session's start.
    start: int
    cue: str
    check_in: bool
    breath: str
    # Said at half-time.
    halfway: str
    # For self mode where the hands cannot reach: the alternative that is used instead.
    self_help: str | None = None
    # Regions the hands stay off during a whole-back step.
    avoid: tuple[str, ...] = ()


@dataclass(frozen=True)
class Plan:
    request: PlanRequest
    verdict: Verdict
    steps: tuple[Step, ...] = field(default_factory=tuple)

    @property
    def total_seconds(self) -> int:
        return sum(s.seconds for s in self.steps)
