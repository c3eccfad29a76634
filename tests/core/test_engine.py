"""The live session engine on a fake clock: deadlines, controls, feedback, save and restore."""

from __future__ import annotations

import itertools
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backrub.core import engine
from backrub.core.catalogue import load_catalogue
from backrub.core.errors import BadInput
from backrub.core.export import as_plain
from backrub.core.models import Finding, Focus, PlanRequest
from backrub.core.planner import build_plan, rules_for
from backrub.core.safety import assess

CATALOGUE = load_catalogue()


class FakeClock:
    def __init__(self, start: float = 1000.0) -> None:
        self.t = start

    def now(self) -> float:
        return self.t

    def tick(self, seconds: float) -> float:
        self.t += seconds
        return self.t


def session(
    mode: str = "partner", minutes: int = 20, ceiling: int = 4, findings: tuple[Finding, ...] = ()
) -> engine.LiveState:
    request = PlanRequest(mode, minutes, (Focus("shoulders", 8), Focus("lower-back", 5)), ceiling)  # type: ignore[arg-type]
    verdict = assess(CATALOGUE, findings)
    return engine.new_session(build_plan(CATALOGUE, request, verdict), rules_for(request, verdict))


def run_to_end(
    state: engine.LiveState, clock: FakeClock, step: float
) -> tuple[engine.LiveState, list[tuple[float, engine.Cue]]]:
    """Tick until the finish cue; return (state, [(active time delivered, cue)])."""
    delivered = []
    for _ in range(100_000):
        if "finish" in state.fired:
            return state, delivered
        state, cues = engine.due(state, clock.now())
        delivered += [(engine.active_time(state, clock.now()), c) for c in cues]
        if any(c.kind == "finish" for c in cues):
            return state, delivered
        clock.tick(step)
    raise AssertionError("the session never finished")


def test_cues_fire_on_absolute_deadlines_without_drift() -> None:
    clock = FakeClock()
    state = engine.start(session(minutes=60), clock.now())
    state, delivered = run_to_end(state, clock, 0.7)
    step_cues = [(t, c) for t, c in delivered if c.kind == "step"]
    assert [c.step for _, c in step_cues] == list(range(len(state.steps)))
    lateness = [t - c.at for t, c in delivered]
    assert all(0 <= late < 0.7 + 1e-9 for late in lateness)
    # The last cue is no later than the first: lateness does not accumulate over the hour.
    assert delivered[-1][1].at == pytest.approx(3600.0)
    assert max(lateness[-5:]) < 0.7 + 1e-9


def test_pause_shifts_what_follows_by_exactly_the_paused_time() -> None:
    clock = FakeClock()
    state = engine.start(session(), clock.now())
    first_step_end = state.steps[1].start
    clock.tick(30)
    state = engine.pause(state, clock.now())
    clock.tick(125.5)  # paused: nothing is due, time does not pass for the session
    state, cues = engine.due(state, clock.now())
    assert [c.id for c in cues] == ["step:0"]
    assert engine.position(state, clock.now()).elapsed == pytest.approx(30)
    state = engine.resume(state, clock.now())
    clock.tick(first_step_end - 30 - 0.01)
    state, cues = engine.due(state, clock.now())
    assert "step:1" not in [c.id for c in cues]
    clock.tick(0.02)
    state, cues = engine.due(state, clock.now())
    assert "step:1" in [c.id for c in cues]


def test_a_saved_state_holds_every_field_as_the_generic_conversion_would() -> None:
    # state_as_dict is written out field by field for speed; it must say what as_plain says.
    clock = FakeClock()
    finding = Finding("sunburn-or-rash", "lower-back")
    state = engine.start(session(findings=(finding,)), clock.now())
    clock.tick(200.25)
    state, _ = engine.due(state, clock.now())
    state, _ = engine.feedback(CATALOGUE, state, clock.now(), "tender")
    state, _ = engine.feedback(CATALOGUE, state, clock.tick(3), "softer")
    state = engine.skip(state, clock.tick(1))
    assert state.feedback and state.tender and state.rules.region_caps and state.fired
    saved = engine.state_as_dict(state, clock.tick(2))
    generic = as_plain(state._replace(active=engine.active_time(state, clock.now()), anchor=None))
    del generic["feedback"]  # kept by the store as the session's record, not in the state
    generic["fired"] = sorted(state.fired)
    # Saved, a step is what was decided for it; the page's view has every step whole.
    decided = [{k: step[k] for k in engine.SAVED_STEP} for step in generic["steps"]]
    assert saved == {**generic, "steps": decided, "format": engine.STATE_FORMAT}
    assert json.loads(json.dumps(saved)) == saved
    view = engine.state_view(state, clock.now())
    assert view == {**generic, "format": engine.VIEW_FORMAT}
    assert json.loads(json.dumps(view)) == view


def test_a_saved_state_keeps_no_words_and_restores_them_from_the_catalogue() -> None:
    """The words are the catalogue's to make: the saved state is a fraction of the view's size,
    and restoring either gives the very steps the session had, words and all."""
    clock = FakeClock()
    # Self mode on an area the hands cannot reach (a self-help line), an area avoided (a line in
    # the whole-back cues, and the steps' `avoid`).
    request = PlanRequest("self", 20, (Focus("mid-back", 8), Focus("lower-back", 5)), 4)
    verdict = assess(CATALOGUE, (Finding("sunburn-or-rash", "lower-back"),))
    plan = build_plan(CATALOGUE, request, verdict)
    state = engine.start(engine.new_session(plan, rules_for(request, verdict)), clock.now())
    state, _ = engine.feedback(CATALOGUE, state, clock.tick(100), "firmer")
    saved = json.loads(json.dumps(engine.state_as_dict(state, clock.now())))
    view = json.loads(json.dumps(engine.state_view(state, clock.now())))
    text = json.dumps(saved)
    assert all(step.cue not in text and step.halfway not in text for step in state.steps)
    assert any(step.self_help for step in state.steps) and any(s.avoid for s in state.steps)
    assert len(text) * 3 < len(json.dumps(view))
    for kept in (saved, view):
        restored = engine.state_from_dict(kept, CATALOGUE)
        assert restored.steps == state.steps
        assert restored == engine.state_from_dict(saved, CATALOGUE)


OPERATIONS = ("skip", "extend", "good", "softer", "firmer", "tender", "cues", "wait")


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from(OPERATIONS), st.floats(0.5, 90)), min_size=1, max_size=25),
    st.sampled_from(["self", "partner"]),
    st.booleans(),
)
def test_a_snapshot_made_like_the_last_one_is_the_same_as_one_made_afresh(
    operations: list[tuple[str, float]], mode: str, renumbered: bool
) -> None:
    """The server saves each event's state `like` the one it restored (reusing what the two
    share): that must give exactly the snapshot made from nothing, through every kind of change,
    whether the earlier snapshot was made here or read back from JSON."""
    clock = FakeClock()
    finding = Finding("sunburn-or-rash", "lower-back")
    state = engine.start(session(mode, findings=(finding,)), clock.now())
    saved = json.loads(json.dumps(engine.state_as_dict(state, clock.now())))
    for operation, seconds in operations:
        # As the server does it: restore the saved JSON, apply one change, save it `like` that.
        restored = engine.state_from_dict(saved, CATALOGUE)
        at = restored.active + seconds
        new = restored._replace(active=at, anchor=None, started=True)
        if operation == "skip":
            new = engine.skip(new, at)
        elif operation == "extend":
            new = engine.extend(new, at)
        elif operation == "cues":
            new, _ = engine.due(new, at)
        elif operation != "wait":
            new, _ = engine.feedback(CATALOGUE, new, at, operation)
        if renumbered:
            new = new._replace(seq=new.seq + 1)
        made = engine.state_as_dict(new, at, like=(restored, saved))
        assert made == engine.state_as_dict(new, at), operation
        assert json.loads(json.dumps(made)) == made
        saved = json.loads(json.dumps(made))


def test_save_and_restore_mid_step_resumes_exactly_where_it_was() -> None:
    clock = FakeClock()
    state = engine.start(session(), clock.now())
    clock.tick(200.25)
    state, _ = engine.due(state, clock.now())
    state, _ = engine.feedback(CATALOGUE, state, clock.now(), "tender")
    before = engine.position(state, clock.now())
    saved = json.loads(json.dumps(engine.state_as_dict(state, clock.now())))

    later = FakeClock(start=5.0)  # another process: another clock origin
    restored = engine.state_from_dict(saved, CATALOGUE)
    after = engine.position(restored, later.now())
    assert after.step == before.step
    assert after.elapsed == pytest.approx(before.elapsed)
    assert not after.running  # a restored session waits for the person to resume
    assert restored.steps == state.steps and restored.tender == state.tender
    # What was heard is the store's to keep (the session's record), not the state's.
    assert state.feedback and "feedback" not in saved and restored.feedback == ()
    restored = engine.resume(restored, later.now())
    restored, cues = engine.due(restored, later.now())
    assert cues == []  # nothing already said is said again


def test_unreadable_saved_state_is_a_clear_error() -> None:
    with pytest.raises(BadInput, match="cannot be read"):
        engine.state_from_dict({"format": 1, "steps": "nonsense"}, CATALOGUE)


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"technique": "levitation"}, "lacks"),
        ({"region": "elbow"}, "lacks"),
        ({"phase": "encore"}, "lacks"),
        ({"pressure": 9}, "cannot be read"),
        ({"extra": 1}, "must have exactly"),
    ],
)
def test_a_saved_step_the_catalogue_cannot_make_is_a_clear_error(
    change: dict[str, object], words: str
) -> None:
    saved = engine.state_as_dict(session(), 0.0)
    saved["steps"][1] = {**saved["steps"][1], **change}
    with pytest.raises(BadInput, match="cannot be read") as raised:
        engine.state_from_dict(saved, CATALOGUE)
    assert words in str(raised.value)


def test_skip_moves_on_at_once_and_extend_adds_a_minute() -> None:
    clock = FakeClock()
    state = engine.start(session(), clock.now())
    clock.tick(10)
    state, _ = engine.due(state, clock.now())
    total = engine.total(state)
    state = engine.skip(state, clock.now())
    state, cues = engine.due(state, clock.now())
    assert [c.id for c in cues] == ["step:1"]
    assert engine.total(state) == pytest.approx(total - (state.steps[0].seconds - 10))
    before = engine.total(state)
    state = engine.extend(state, clock.now())
    assert engine.total(state) == pytest.approx(before + 60)
    assert engine.position(state, clock.now()).step == 1


def test_softer_lowers_now_and_for_the_rest() -> None:
    clock = FakeClock()
    state = engine.start(session(ceiling=4), clock.now())
    focus_at = next(s.start for s in state.steps if s.phase == "focus")
    clock.tick(focus_at + 100)
    i = engine.position(state, clock.now()).step
    old = state.steps[i].pressure
    state, message = engine.feedback(CATALOGUE, state, clock.now(), "softer")
    assert state.steps[i].pressure == old - 1
    assert "Softer" in message
    assert all(s.pressure <= old - 1 for s in state.steps[i:])
    assert state.steps[-1].pressure <= 2
    assert engine.total(state) == 20 * 60  # time is kept
    assert state.feedback[-1].kind == "softer"


def test_firmer_never_passes_the_preference_or_a_caution() -> None:
    clock = FakeClock()
    state = engine.start(session(ceiling=5, findings=(Finding("blood-thinners"),)), clock.now())
    clock.tick(next(s.start for s in state.steps if s.phase == "focus") + 5)
    for _ in range(4):
        state, message = engine.feedback(CATALOGUE, state, clock.now(), "firmer")
    assert max(s.pressure for s in state.steps) <= 2
    assert message == "That is as firm as this session goes here."


def test_tender_spot_is_lighter_here_and_remembered() -> None:
    clock = FakeClock()
    state = engine.start(session(ceiling=4), clock.now())
    clock.tick(next(s.start for s in state.steps if s.region == "shoulders") + 5)
    state, message = engine.feedback(CATALOGUE, state, clock.now(), "tender")
    assert state.tender == ("shoulders",)
    i = engine.position(state, clock.now()).step
    cap = state.steps[i].pressure
    assert all(s.pressure <= cap for s in state.steps[i:] if s.region == "shoulders")
    assert "tops of the shoulders" in message


def test_unknown_feedback_is_bad_input() -> None:
    with pytest.raises(BadInput, match="feedback must be one of: good, softer, firmer, tender"):
        engine.feedback(CATALOGUE, session(), 0.0, "harder")


def test_breathing_pacer_is_four_in_six_out() -> None:
    clock = FakeClock()
    state = engine.start(session(), clock.now())
    assert engine.breath(state, clock.tick(1)).phase == "in"
    assert engine.breath(state, clock.tick(3.5)).phase == "out"
    assert engine.breath(state, clock.tick(5.6)).phase == "in"


events = st.lists(
    st.one_of(
        st.tuples(st.just("tick"), st.floats(0.1, 400)),
        st.tuples(st.sampled_from(["pause", "resume", "skip", "extend", "save"]), st.just(0.0)),
        st.tuples(st.just("feedback"), st.sampled_from(["good", "softer", "firmer", "tender"])),
    ),
    max_size=60,
)


@settings(max_examples=200, deadline=None)
@given(events, st.sampled_from(["self", "partner"]), st.integers(15, 60))
def test_no_sequence_of_events_skips_or_repeats_a_step(
    sequence: list[tuple[str, object]], mode: str, minutes: int
) -> None:
    clock = FakeClock()
    state = engine.start(session(mode=mode, minutes=minutes), clock.now())
    said: list[str] = []
    for name, arg in sequence:
        if name == "tick":
            clock.tick(float(arg))  # type: ignore[arg-type]
        elif name == "feedback":
            state, _ = engine.feedback(CATALOGUE, state, clock.now(), str(arg))
        elif name == "save":
            state = engine.resume(
                engine.state_from_dict(engine.state_as_dict(state, clock.now()), CATALOGUE),
                clock.now(),
            )
        else:
            state = getattr(engine, name)(state, clock.now())
        state, cues = engine.due(state, clock.now())
        said += [c.id for c in cues]
        levels = [s.pressure for s in state.steps]
        assert levels[-1] <= 2
        assert max(levels) <= state.rules.limit
    state = engine.resume(state, clock.now())
    state, rest = run_to_end(state, clock, 5.0)
    said += [c.id for _, c in rest]
    steps = [int(i.split(":")[1]) for i in said if i.startswith("step:")]
    assert steps == list(range(len(state.steps)))
    assert said.count("finish") == 1 and said[-1] == "finish"
    assert len(said) == len(set(said))
    for a, b in itertools.pairwise(state.steps):
        assert b.start == a.start + a.seconds
