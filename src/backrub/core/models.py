"""The immutable types backrub's core works with.

They are NamedTuples, not pydantic models or dataclasses: building a pydantic model class costs
tens of milliseconds and a frozen dataclass about a millisecond, while the CLI's plan path must
start fast. pydantic still validates the catalogue files into these very classes (see
``catalogue.py``), and refuses keys a NamedTuple does not have.
"""

from __future__ import annotations

from datetime import datetime  # noqa: TC003  (pydantic and pickle need it at run time)
from typing import TYPE_CHECKING, Literal, NamedTuple

Phase = Literal["warm-up", "strokes", "focus", "finish"]
PHASES: tuple[Phase, ...] = ("warm-up", "strokes", "focus", "finish")
Mode = Literal["self", "partner"]
MODES: tuple[Mode, ...] = ("self", "partner")
Effect = Literal["stop", "avoid", "cap"]
Kind = Literal["contraindication", "red-flag", "caution"]
MotionKind = Literal["circles", "glide", "knead", "press", "rake"]
Direction = Literal["up", "down", "out", "in", "along", "still"]
VerdictLevel = Literal["clear", "caution", "stop"]

if TYPE_CHECKING:
    # At run time these names exist only where pydantic validates the catalogue
    # (`catalogue._validate_shapes`), bound to their ranges: the CLI need not import
    # annotated_types to start.
    Level = int  # a pressure level, 1 to 5
    Unit = float  # a coordinate in the back map's unit box, 0 to 1
    Seconds = int  # a duration of at least 30 s
    Tempo = float  # motion cycles per minute, above 0 and at most 120
    Minutes = int  # at least 1

PRESSURE_WORDS: dict[int, str] = {1: "feather", 2: "light", 3: "medium", 4: "firm", 5: "deep"}
# `--pressure NAME` sets this ceiling (issue #2's contract).
PRESSURE_CEILINGS: dict[str, int] = {"light": 2, "medium": 3, "firm": 4, "deep": 5}


# ---- catalogue: the knowledge, loaded from package data ------------------------------------


class Source(NamedTuple):
    name: str
    # Only where a stable public address is known; a name alone still lets a person look it up.
    url: str | None = None


class Region(NamedTuple):
    """An area of the back, drawn in the back map's unit box (x left→right, y neck→hips)."""

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


class Motion(NamedTuple):
    """How the hands move, for the animation and the terminal sketch.

    ``path`` is in unit coordinates relative to the target region's bounding box, so one technique
    draws correctly on every region it applies to.
    """

    kind: MotionKind
    path: tuple[tuple[Unit, Unit], ...]
    direction: Direction
    # Motion cycles per minute at medium pressure; firmer pressure is slower.
    tempo: Tempo


class Cues(NamedTuple):
    # Said when the step starts; `{region}` is replaced by the region's name.
    start: str
    halfway: str
    # Said by the giver in partner mode; for self mode it is skipped.
    check_in: str = "Ask: is the pressure right?"


class Technique(NamedTuple):
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


class Condition(NamedTuple):
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


class SetupItem(NamedTuple):
    id: str
    text: str
    why: str


class Facts(NamedTuple):
    """What the source guide states and the product honours."""

    min_minutes: Minutes
    max_minutes: Minutes
    default_minutes: Minutes
    frequency: str
    benefits: tuple[str, ...]
    rules: tuple[str, ...]
    breathing: str
    default_focus: tuple[str, ...]


class CatalogueData(NamedTuple):
    """The shape of the packaged data files, merged into one value."""

    regions: tuple[Region, ...]
    techniques: tuple[Technique, ...]
    conditions: tuple[Condition, ...]
    setup: tuple[SetupItem, ...]
    facts: Facts


# ---- safety ---------------------------------------------------------------------------------


class Finding(NamedTuple):
    """One condition the person says applies; `region` names the area for an `avoid` one."""

    condition: str
    region: str | None = None


class Reason(NamedTuple):
    condition: Condition
    region: str | None
    # What it changes, in plain words: "Stops the session.", "Skips the lower back." …
    change: str


class Verdict(NamedTuple):
    level: VerdictLevel
    reasons: tuple[Reason, ...] = ()
    pressure_cap: int | None = None
    avoid_regions: frozenset[str] = frozenset()
    avoid_tools: frozenset[str] = frozenset()

    @property
    def see_doctor(self) -> bool:
        return any(r.condition.kind == "red-flag" for r in self.reasons)


# ---- planning -------------------------------------------------------------------------------


class Focus(NamedTuple):
    region: str
    tension: int = 7


class PlanRequest(NamedTuple):
    mode: Mode = "self"
    minutes: int = 20
    focus: tuple[Focus, ...] = ()
    # The highest pressure level the person wants (2 light … 5 deep).
    ceiling: int = 3
    oil: bool = True


class Step(NamedTuple):
    position: int  # 0-based; "index" in JSON (a NamedTuple cannot have a field named index)
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


class Plan(NamedTuple):
    request: PlanRequest
    verdict: Verdict
    steps: tuple[Step, ...] = ()

    @property
    def total_seconds(self) -> int:
        return sum(s.seconds for s in self.steps)


# ---- history --------------------------------------------------------------------------------

SessionStatus = Literal["active", "finished", "stopped"]
FeedbackKind = Literal["good", "softer", "firmer", "tender"]
FEEDBACK_KINDS: tuple[FeedbackKind, ...] = ("good", "softer", "firmer", "tender")


class FeedbackEvent(NamedTuple):
    """Something the receiver said during a session, at `at` seconds of active session time."""

    kind: FeedbackKind
    at: float
    step: int
    region: str


class SessionRecord(NamedTuple):
    """One session as the store keeps it. Times are timezone-aware UTC datetimes, read from the
    wall clock by the adapter that saves them (the core never reads a clock)."""

    id: str
    started_at: datetime
    mode: Mode
    minutes_planned: int
    seconds_done: int
    status: SessionStatus
    focus: tuple[Focus, ...]
    # The safety verdict and only the ids that caused it — never the full answers.
    verdict: VerdictLevel
    verdict_conditions: tuple[str, ...]
    tension_before: int | None = None
    tension_after: int | None = None
    note: str | None = None
    # Regions the receiver marked tender: planned lighter next time.
    tender: tuple[str, ...] = ()
    feedback: tuple[FeedbackEvent, ...] = ()
    ended_at: datetime | None = None


class PlanHistory(NamedTuple):
    """What the planner learns from past sessions (see insights.history_for_planning)."""

    # Focus regions whose tension stayed high: they get more focus time.
    high_regions: frozenset[str] = frozenset()
    # Regions the receiver marked tender: planned lighter.
    tender_regions: frozenset[str] = frozenset()
