"""A live session at the terminal: the engine driven by a real clock, saved as it goes, spoken
when asked. Both players — the full-screen one and the plain one for scripts — use `LiveSession`.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from typing import TYPE_CHECKING, NamedTuple, Protocol

from backrub.core import engine
from backrub.core.models import PRESSURE_WORDS

if TYPE_CHECKING:
    from collections.abc import Callable

    from backrub.core.catalogue import Catalogue
    from backrub.core.engine import Cue, LiveState
    from backrub.core.models import FeedbackEvent, Step


class Clock(Protocol):
    def now(self) -> float: ...


class ScaledClock:
    """The steady clock, running `speed` times faster (for demonstrations and tests)."""

    def __init__(self, speed: float = 1.0) -> None:
        self.speed = speed
        self.origin = time.monotonic()

    def now(self) -> float:
        return self.origin + (time.monotonic() - self.origin) * self.speed


class Speaker:
    """Speaks cues with a local text-to-speech engine, without waiting for it to finish."""

    ENGINES = ("espeak-ng", "espeak")

    def __init__(self, executable: str) -> None:
        self.executable = executable
        self.current: subprocess.Popen[bytes] | None = None

    @classmethod
    def find(cls) -> Speaker | None:
        for name in cls.ENGINES:
            path = shutil.which(name)
            if path:
                return cls(path)
        return None

    def say(self, text: str) -> None:
        # A new cue replaces one still being spoken: the newest instruction is what matters.
        self.stop()
        self.current = subprocess.Popen(  # noqa: S603  (a fixed executable; text is an argument)
            [self.executable, "-s", "140", text],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def stop(self) -> None:
        if self.current is not None:
            if self.current.poll() is None:
                self.current.terminate()
            self.current.wait()
        self.current = None

    def finish(self, timeout: float = 15.0) -> None:
        """Let the last words be said (the session's goodbye), then stop."""
        if self.current is not None:
            try:
                self.current.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        self.stop()


class Saver(Protocol):
    def __call__(self, state: LiveState, now: float, event: FeedbackEvent | None) -> None: ...


class Said(NamedTuple):
    cue: Cue
    text: str


class LiveSession:
    """One running session: controls, cues, saving at step boundaries and on feedback."""

    def __init__(
        self,
        *,
        catalogue: Catalogue,
        state: LiveState,
        clock: Clock,
        save: Saver,
        speaker: Speaker | None = None,
    ) -> None:
        self.catalogue = catalogue
        self.state = state
        self.clock = clock
        self.save = save
        self.speaker = speaker
        self.message = ""
        self.check_in_until: float | None = None
        self.stopped_early = False
        self.unsaved = False

    # -- reading --

    def position(self) -> engine.Position:
        return engine.position(self.state, self.clock.now())

    def breath(self) -> engine.Breath:
        return engine.breath(self.state, self.clock.now())

    def step(self, offset: int = 0) -> Step | None:
        i = self.position().step + offset
        return self.state.steps[i] if 0 <= i < len(self.state.steps) else None

    @property
    def finished(self) -> bool:
        return self.position().finished

    def describe(self, step: Step) -> str:
        region = self.catalogue.regions[step.region].name
        technique = self.catalogue.techniques[step.technique].name
        return f"{technique} · {region} · {PRESSURE_WORDS[step.pressure]}"

    # -- driving --

    def start(self) -> None:
        self.state = engine.start(self.state, self.clock.now())

    def tick(self) -> list[Said]:
        """Give the cues that are due; save at each step boundary."""
        now = self.clock.now()
        self.state, cues = engine.due(self.state, now)
        said = [Said(c, self._text(c)) for c in cues]
        if said and self.speaker:
            self.speaker.say(" ".join(s.text for s in said))
        if any(c.kind == "check-in" for c in cues):
            self.check_in_until = engine.active_time(self.state, now) + 30
        if any(c.kind in ("step", "finish") for c in cues):
            # Saved by `settle`, once the player has shown the cue: a save takes a few
            # milliseconds, which must not make the cue late.
            self.unsaved = True
        return said

    def settle(self) -> None:
        """Save the step boundary that `tick` crossed, if any."""
        if self.unsaved:
            self.unsaved = False
            self._save(self.clock.now(), None)

    def checking_in(self) -> bool:
        if self.check_in_until is None:
            return False
        return engine.active_time(self.state, self.clock.now()) < self.check_in_until

    def toggle(self) -> None:
        self.state = engine.toggle(self.state, self.clock.now())
        self.message = "Paused — press space to go on." if self.state.anchor is None else ""

    def skip(self) -> None:
        self.state = engine.skip(self.state, self.clock.now())
        self.message = "On to the next step."

    def extend(self) -> None:
        self.state = engine.extend(self.state, self.clock.now())
        self.message = "One more minute here."

    def feedback(self, kind: str) -> str:
        now = self.clock.now()
        self.state, self.message = engine.feedback(self.catalogue, self.state, now, kind)
        self.check_in_until = None
        event = self.state.feedback[-1] if self.state.feedback else None
        self._save(now, event)
        if self.speaker:
            self.speaker.say(self.message)
        return self.message

    def stop(self) -> None:
        now = self.clock.now()
        self.stopped_early = not self.finished
        self.state = engine.stop(self.state, now)
        self._save(now, None)
        if self.speaker:
            self.speaker.stop()

    def _save(self, now: float, event: FeedbackEvent | None) -> None:
        self.unsaved = False
        self.state = self.state._replace(seq=self.state.seq + 1)
        self.save(self.state, now, event)

    def _text(self, cue: Cue) -> str:
        if cue.kind == "step":
            return f"Step {cue.step + 1} of {len(self.state.steps)}. {cue.text}"
        return cue.text


def run_plain(
    session: LiveSession,
    *,
    write: Callable[[str], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """The player for scripts and pipes: one line per cue, until the end (Ctrl-C stops early)."""
    write = write or _print_line
    session.start()
    try:
        while True:
            for said in session.tick():
                at = round(said.cue.at)
                line = f"[{at // 60:2d}:{at % 60:02d}] {said.text}"
                if said.cue.kind == "step":
                    step = session.state.steps[said.cue.step]
                    line += f"  ({session.describe(step)})"
                write(line)
            session.settle()
            if session.finished:
                return
            sleep(_time_to_next_cue(session))
    except KeyboardInterrupt:
        session.stop()
        write("Stopped early; what you did is saved.")


def _print_line(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _time_to_next_cue(session: LiveSession) -> float:
    """Sleep until the next deadline, computed from the schedule — never a fixed step, so nothing
    drifts — but wake at least every half second of real time."""
    state, now = session.state, session.clock.now()
    t = engine.active_time(state, now)
    upcoming = [c.at for c in engine.schedule(state) if c.id not in state.fired and c.at > t]
    wait = (min(upcoming) - t) if upcoming else 0.0
    speed = getattr(session.clock, "speed", 1.0)
    return max(0.001, min(0.5, wait / speed))
