"""Cue timing in real time: how late cues are given, backrub's player against a naive sleep loop.

A schedule of cues every 0.5 s for 60 s runs through the real engine (`backrub.core.engine`) and
the real terminal player (`backrub.cli.live.run_plain` with `LiveSession`, `ScaledClock` at speed
1, i.e. the steady `time.monotonic` clock, sleeping `_time_to_next_cue` between ticks), saving
progress at every step boundary into a fresh SQLite store exactly as `backrub start` does — the
save runs in `settle()`, after the cue is given, but before the next tick, so a slow save still
delays the cues after it. The schedule: a real
plan's first step copied 60 times with `seconds=1` (self mode, no check-ins), so the engine gives
a step cue on each whole second and the step's halfway cue on each half second, plus the finish
cue: 121 cues, 0.5 s apart. (Steps of 0.5 s would put cues 0.25 s apart, halfway cues included.)
The saved state holds all 60 steps, more than a real plan's 10–27, so each save is a little
larger than in a real session. Backrub's cues are also shown split: step cues (each followed by
a save) and halfway cues; `--no-save` leaves the saves out.

The baseline, measured in the same run for the same length: `for each cue: time.sleep(0.5);
fire`, which accumulates every oversleep. Lateness = (steady-clock time the cue was given −
session start) − cue.at. Drift = mean lateness over the last quarter of the run minus the first.
Aim (issue #3): p99 under 10 ms and no drift between the first and last part of the run.

    python bench/cue_timing.py [--seconds S] [--no-save]
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from backrub.cli.live import LiveSession, Said, ScaledClock, run_plain
from backrub.config import Settings
from backrub.core import engine
from backrub.core.catalogue import load_catalogue
from backrub.core.export import plan_as_dict
from backrub.core.models import FeedbackEvent, Focus, PlanRequest
from backrub.core.planner import build_plan, rules_for
from backrub.core.safety import assess
from backrub.store import open_store

if TYPE_CHECKING:
    from backrub.cli.live import Saver
    from backrub.core.engine import Cue, LiveState

SPACING = 0.5


class TimedSession(LiveSession):
    """The real LiveSession; records the steady-clock moment each cue leaves `tick()`."""

    given: list[tuple[Cue, float]]
    started_at: float

    def start(self) -> None:
        super().start()
        # The clock reading the engine started from (ScaledClock at speed 1 is time.monotonic).
        assert self.state.anchor is not None  # noqa: S101  (for mypy: a started state runs)
        self.started_at = self.state.anchor

    def tick(self) -> list[Said]:
        said = super().tick()
        now = time.monotonic()
        self.given.extend((s.cue, now) for s in said)
        return said


def session_state(seconds: int) -> tuple[LiveState, dict[str, object]]:
    """A live state of `seconds` one-second steps (cues every 0.5 s), and its plan as stored."""
    catalogue = load_catalogue()
    request = PlanRequest("self", 20, (Focus("shoulders", 7),), 3)
    verdict = assess(catalogue, [])
    plan = build_plan(catalogue, request, verdict)
    first = plan.steps[0]._replace(check_in=False)
    steps = tuple(first._replace(position=i, seconds=1, start=i) for i in range(seconds))
    plan = plan._replace(steps=steps)
    return engine.new_session(plan, rules_for(request, verdict)), plan_as_dict(catalogue, plan)


def run_backrub(seconds: int, *, save: bool) -> list[tuple[float, float]]:
    state, stored_plan = session_state(seconds)
    clock = ScaledClock(1.0)
    with tempfile.TemporaryDirectory(prefix="backrub-bench-") as folder:
        store = open_store(Settings(data_dir=Path(folder), cache_dir=Path(folder) / "cache"))
        session_id = store.create(
            started_at=datetime.now(UTC),
            mode="self",
            minutes_planned=20,
            focus=[Focus("shoulders", 7)],
            verdict="clear",
            verdict_conditions=[],
            tension_before=6,
            plan=stored_plan,
            state=engine.state_as_dict(state, clock.now()),
        )

        def progress(state: LiveState, now: float, event: FeedbackEvent | None) -> None:
            # What `backrub start` saves at each step boundary (no feedback in this run).
            data = engine.state_as_dict(state, now)
            done = int(engine.position(state, now).elapsed)
            store.save_progress(session_id, seq=state.seq, seconds_done=done, state=data)

        saver: Saver = progress if save else _no_save
        session = TimedSession(catalogue=load_catalogue(), state=state, clock=clock, save=saver)
        session.given = []
        run_plain(session, write=lambda _line: None)
        store.close()
    return [(cue.at, (given - session.started_at) - cue.at) for cue, given in session.given]


def _no_save(state: LiveState, now: float, event: FeedbackEvent | None) -> None:
    return None


def run_naive(cue_times: list[float]) -> list[tuple[float, float]]:
    start = time.monotonic()
    given = []
    previous = 0.0
    for at in cue_times:
        time.sleep(at - previous)  # 0.5 s, except 0 before the cue at the start
        previous = at
        given.append(time.monotonic())
    return [(at, (g - start) - at) for g, at in zip(given, cue_times, strict=True)]


def summary(name: str, lateness: list[tuple[float, float]], seconds: int) -> float:
    """Prints p50, p99, max, the mean in the first and last quarter, and the drift; returns p99."""
    ms = [late * 1000 for _, late in lateness]
    p99 = statistics.quantiles(ms, n=100, method="inclusive")[98]
    first = [late * 1000 for at, late in lateness if at < seconds / 4]
    last = [late * 1000 for at, late in lateness if at >= seconds * 3 / 4]
    first_mean, last_mean = statistics.fmean(first), statistics.fmean(last)
    print(
        f"{name:34s} {statistics.median(ms):7.2f} {p99:7.2f} {max(ms):7.2f}   "
        f"{first_mean:7.2f} {last_mean:7.2f} {last_mean - first_mean:+8.2f}"
    )
    return p99


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=60, help="length of each loop (whole s)")
    parser.add_argument(
        "--no-save", action="store_true", help="leave out the store's progress saves"
    )
    args = parser.parse_args()
    seconds: int = max(4, args.seconds)
    state, _ = session_state(seconds)
    cue_times = [c.at for c in engine.schedule(state)]
    if any(b - a != SPACING for a, b in itertools.pairwise(cue_times)):
        raise SystemExit(f"the schedule is not one cue every {SPACING} s: {cue_times[:6]} …")
    naive = run_naive(cue_times)
    real = run_backrub(seconds, save=not args.no_save)
    what = "engine + player" + ("" if args.no_save else " + saves")
    print(
        f"{len(cue_times)} cues, {SPACING} s apart, {seconds} s per loop; lateness in ms\n"
        f"{'':34s} {'p50':>7s} {'p99':>7s} {'max':>7s}   "
        f"{'first¼':>7s} {'last¼':>7s} {'drift':>8s}"
    )
    if len(real) != len(cue_times):
        raise SystemExit(f"backrub gave {len(real)} cues of {len(cue_times)}")
    naive_p99 = summary("naive sleep loop", naive, seconds)
    real_p99 = summary(f"backrub ({what})", real, seconds)
    kinds = {c.at: c.kind for c in engine.schedule(state)}
    saved = "" if args.no_save else ", each followed by a progress save"
    for kind, why in (("step", saved), ("halfway", "")):
        ms = [late * 1000 for at, late in real if kinds[at] == kind]
        print(f"  {kind} cues{why}: p50 {statistics.median(ms):.2f}, max {max(ms):.2f}")
    print(
        f"p99 ratio naive/backrub: {naive_p99 / real_p99:.1f}x "
        "(aim: backrub p99 under 10 ms, no drift)"
    )


if __name__ == "__main__":
    main()
