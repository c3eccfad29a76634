"""What the API takes and gives, as pydantic models kept apart from the core's types.

Request bodies are strict (`"20"` is not a number, `1` is not `true`) and refuse unknown fields,
so a page's mistake is a clear 422 rather than a guess. Which regions and conditions exist is the
catalogue's business: the service checks those ids, and the core says what is allowed.
"""

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from backrub.core.models import FeedbackKind, Mode, SessionStatus, VerdictLevel

# The store keeps sequence numbers in a 32-bit column.
MAX_SEQ = 2**31 - 1
# A day of active time: far beyond 60 minutes and every "one more minute", still a real number.
MAX_ACTIVE = 86_400.0
MAX_ID = 100
NOTE_MAX = 2000
MAX_FINDINGS = 100
MAX_FOCUS = 20
MAX_FIRED = 5000

CUE_ID = re.compile(r"(?:step|half|check):[0-9]{1,4}|finish")
TIME_OF_DAY = re.compile(r"([01]?[0-9]|2[0-3]):[0-5][0-9]")


class Sentence(ValueError):
    """A whole sentence from a model's own check: errors.py reports it as it is."""


def _cue_id(value: str) -> str:
    if not CUE_ID.fullmatch(value):
        raise ValueError("must be a cue id: step:N, half:N, check:N or finish")
    return value


def _time_of_day(value: str) -> str:
    if not TIME_OF_DAY.fullmatch(value.strip()):
        raise ValueError("must be a time of day as HH:MM, 00:00 to 23:59")
    return value.strip()


def _invalid_text(value: Any) -> str | None:
    """A sentence for the first text in a JSON value that no database keeps — a NUL character,
    or half of a UTF-16 surrogate pair alone (`"\\ud800"`) — naming where it is, never what it
    says."""
    found = _first_invalid(value)
    if found is None:
        return None
    path, problem = found
    where = _where(path)
    if problem == "name":
        return f"{where} has a field name that is not valid text."
    if problem == "nul":
        return f"{where} must be plain text, without NUL characters (\\u0000)."
    return f"{where} must be valid Unicode text, without lone surrogates (\\ud800)."


def _first_invalid(value: Any) -> tuple[list[str | int], str] | None:
    """Where the first bad text is (its path, built only once found) and what is wrong."""
    if isinstance(value, str):
        problem = _text_problem(value)
        return None if problem is None else ([], problem)
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str) and _text_problem(key) is not None:
                return [], "name"
            found = _first_invalid(item)
            if found is not None:
                found[0].insert(0, key)
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = _first_invalid(item)
            if found is not None:
                found[0].insert(0, index)
                return found
    return None


def _text_problem(text: str) -> str | None:
    if "\x00" in text:
        return "nul"
    if text.isascii():
        return None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "surrogate"
    return None


def _where(path: list[str | int]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out or "The request body"


Tension = Annotated[int, Field(ge=0, le=10)]
Id = Annotated[str, Field(min_length=1, max_length=MAX_ID)]
CueId = Annotated[
    str,
    Field(max_length=20, json_schema_extra={"pattern": CUE_ID.pattern}),
    AfterValidator(_cue_id),
]
Active = Annotated[float, Field(ge=0, le=MAX_ACTIVE, allow_inf_nan=False)]
Pressure = Literal["light", "medium", "firm", "deep"]
EventKind = Literal["progress", "pause", "resume", "skip", "extend", "feedback"]
Every = Literal["auto", "weekly", "fortnightly", "monthly"]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    @model_validator(mode="before")
    @classmethod
    def _only_valid_text(cls, data: Any) -> Any:
        # Before any field is read, so the sentence never quotes the text (a password, a note).
        problem = _invalid_text(data)
        if problem is not None:
            raise Sentence(problem)
        return data


# ---- requests -------------------------------------------------------------------------------


class FindingIn(Body):
    condition: Id
    # Only for an "avoid" condition: the area of the back it affects.
    region: Id | None = None


class SafetyBody(Body):
    findings: list[FindingIn] = Field(default_factory=list, max_length=MAX_FINDINGS)


class FocusIn(Body):
    region: Id
    tension: Tension


class PlanBody(Body):
    mode: Mode = "self"
    minutes: int = Field(default=20, ge=15, le=60)
    focus: list[FocusIn] = Field(default_factory=list, max_length=MAX_FOCUS)
    pressure: Pressure = "medium"
    oil: bool = True
    findings: list[FindingIn] = Field(default_factory=list, max_length=MAX_FINDINGS)


class SessionBody(PlanBody):
    tension_before: Tension


class EventBody(Body):
    kind: EventKind
    # Seconds of active session time at which it happened, by the page's clock.
    active: Active
    seq: int = Field(ge=1, le=MAX_SEQ)
    feedback: FeedbackKind | None = None
    # Cues the page has given since the session started (or since its last event).
    fired: list[CueId] = Field(default_factory=list, max_length=MAX_FIRED)

    @model_validator(mode="after")
    def _feedback_goes_with_its_kind(self) -> "EventBody":
        if self.kind == "feedback" and self.feedback is None:
            raise Sentence(
                "A feedback event needs feedback: 'good', 'softer', 'firmer' or 'tender'."
            )
        if self.kind != "feedback" and self.feedback is not None:
            raise Sentence(f"feedback goes only with kind 'feedback' (got kind {self.kind!r}).")
        return self


class FinishBody(Body):
    active: Active
    tension_after: Tension
    note: Annotated[str | None, Field(max_length=NOTE_MAX)] = None
    # True when the session ends before its time is up.
    stopped: bool


class ReminderQuery(BaseModel):
    # Query strings are text: numbers are parsed from them, so this one is not strict.
    model_config = ConfigDict(extra="forbid")

    every: Every = "auto"
    at: Annotated[
        str,
        Field(max_length=5, json_schema_extra={"pattern": TIME_OF_DAY.pattern}),
        AfterValidator(_time_of_day),
    ] = "19:30"
    minutes: int | None = Field(default=None, ge=15, le=60)


# ---- answers --------------------------------------------------------------------------------


class ErrorOut(BaseModel):
    error: str


class SourceOut(BaseModel):
    name: str
    url: str | None


class ReasonOut(BaseModel):
    condition: str
    label: str
    kind: str
    effect: str
    region: str | None
    change: str
    why: str
    advice: str
    sources: list[SourceOut]


class VerdictOut(BaseModel):
    verdict: VerdictLevel
    see_doctor: bool
    reasons: list[ReasonOut]
    pressure_cap: int | None
    avoid_regions: list[str]
    avoid_tools: list[str]


class StopOut(ErrorOut):
    safety: VerdictOut


class FocusOut(BaseModel):
    region: str
    tension: int


class FeedbackOut(BaseModel):
    kind: FeedbackKind
    at: float
    step: int
    region: str


class RecordOut(BaseModel):
    id: str
    started_at: str
    mode: Mode
    minutes_planned: int
    seconds_done: int
    status: SessionStatus
    focus: list[FocusOut]
    verdict: VerdictLevel
    verdict_conditions: list[str]
    tension_before: int | None
    tension_after: int | None
    note: str | None
    tender: list[str]
    feedback: list[FeedbackOut]
    ended_at: str | None


class CueOut(BaseModel):
    id: str
    kind: Literal["step", "halfway", "check-in", "finish"]
    at: float
    step: int
    text: str


class SessionView(BaseModel):
    id: str
    record: RecordOut
    # As `backrub plan --json`, when the session was created.
    plan: dict[str, Any]
    # The engine's state as the page reads it (`engine.state_view`: every step whole).
    state: dict[str, Any]
    cues: list[CueOut]
    durations: list[float]
    total: float
    active: float


class EventAnswer(BaseModel):
    """The answer to an event that changed the timeline (skip, extend, feedback) or was refused:
    the session as `SessionView` has it, which the page adopts — but for the plan, which no
    event changes (the page has it from `GET /api/v1/sessions/{id}`), and for the record, which
    only a refused event's answer carries (the session may have ended meanwhile)."""

    # Only when `accepted` is false.
    id: str | None = None
    record: RecordOut | None = None
    # The saved state. No cues: the page makes them from the steps and durations (as the
    # session's view has them). For an accepted event, without its `steps`: those the event
    # changed come in `changed_steps`.
    state: dict[str, Any]
    # Only for an accepted event: [index, {field: value}] for each step it changed (re-planned
    # after feedback; none after a skip or extend), the fields that changed, to write into the
    # page's steps; and the `seq` of the saved state it was applied to (the page's copy must be
    # that one for the rest to hold). Absent, with `state.steps` whole, should the number of
    # steps change.
    changed_steps: list[tuple[int, dict[str, Any]]] | None = None
    applied_to: int | None = None
    durations: list[float]
    total: float
    active: float

    accepted: bool
    # What to say after feedback ("Softer: light pressure now."); None for other events.
    message: str | None


class EventSaved(BaseModel):
    """The answer to an accepted progress save, pause or resume: the timeline is as the page
    has it, so only what the server saved that the page may not know."""

    accepted: Literal[True]
    # The saved state's `seq`, active time and every cue given (the union of all sent).
    seq: int
    active: float
    fired: list[str]
    message: None


class SessionList(BaseModel):
    sessions: list[RecordOut]


class Deleted(BaseModel):
    deleted: int
