"""The full-screen terminal player (Textual): what to do now, how firm, how long, what is next,
and a breathing pacer — large, calm, and driven by keys an oily hand can find."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widgets import Footer, ProgressBar, Static

from backrub.core.models import PHASES, PRESSURE_WORDS

if TYPE_CHECKING:
    from backrub.cli.live import LiveSession

PHASE_COLOUR = {"warm-up": "#e0b36a", "strokes": "#7fb8c9", "focus": "#c99ad6", "finish": "#8fc79a"}
TICK = 0.1


def clock(seconds: float) -> str:
    s = max(0, int(seconds + 0.999))
    return f"{s // 60}:{s % 60:02d}"


def gauge(level: int) -> str:
    return "●" * level + "○" * (5 - level)


class Player(App[None]):
    CSS = """
    Screen { background: #1f2a33; color: #e8e4da; }
    #where { padding: 1 2 0 2; text-style: bold; }
    #cue { padding: 1 2; height: auto; min-height: 4; }
    #timers { padding: 0 2; }
    #pressure { padding: 0 2; color: #e0a458; }
    #breath { padding: 1 2 0 2; color: #7fb8c9; }
    #checkin { padding: 0 2; color: #e0a458; text-style: bold; height: auto; }
    #message { padding: 0 2; color: #b8c4cc; height: auto; }
    #next { padding: 1 2 0 2; color: #9aa5ad; }
    #phases { padding: 0 2; }
    ProgressBar { padding: 0 2; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("space", "pause_resume", "pause/resume"),
        Binding("n", "skip", "next step"),
        Binding("e", "extend", "+1 min"),
        Binding("plus,equals_sign", "firmer", "firmer", key_display="+"),
        Binding("minus", "softer", "softer", key_display="-"),
        Binding("t", "tender", "tender spot"),
        Binding("g", "good", "good"),
        Binding("q", "stop", "stop"),
    ]

    def __init__(self, session: LiveSession) -> None:
        super().__init__()
        self.session = session
        self.title = "backrub"

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(id="where")
            yield Static(id="pressure")
            yield Static(id="cue")
            yield Static(id="timers")
            yield ProgressBar(total=100, show_eta=False, id="progress")
            yield Static(id="phases")
            yield Static(id="breath")
            yield Static(id="checkin")
            yield Static(id="message")
            yield Static(id="next")
        yield Footer()

    def on_mount(self) -> None:
        if not self.session.state.started:
            self.session.start()
        self.refresh_view()
        self.set_interval(TICK, self.tick)

    def tick(self) -> None:
        self.session.tick()
        self.refresh_view()
        self.session.settle()
        if self.session.finished:
            self.exit()

    def refresh_view(self) -> None:
        s = self.session
        pos = s.position()
        step = s.state.steps[pos.step]
        count = len(s.state.steps)
        region = s.catalogue.regions[step.region].name
        technique = s.catalogue.techniques[step.technique]
        colour = PHASE_COLOUR[step.phase]
        where = Text()
        where.append(f"Step {pos.step + 1} of {count}  ", style="#9aa5ad")
        where.append(step.phase, style=colour)
        where.append(f"  ·  {technique.name}  ·  {region}  ·  {step.tool}")
        self.query_one("#where", Static).update(where)
        self.query_one("#pressure", Static).update(
            f"Pressure  {gauge(step.pressure)}  {PRESSURE_WORDS[step.pressure]}"
        )
        cue = step.cue.replace(step.breath, "").strip()
        if step.self_help:
            cue += f"\nCan't reach? {step.self_help}"
        self.query_one("#cue", Static).update(cue)
        paused = "   ⏸ paused" if not pos.running and not pos.finished else ""
        self.query_one("#timers", Static).update(
            f"This step {clock(pos.step_remaining)}   ·   "
            f"Session {clock(pos.remaining)} left of {clock(pos.total)}{paused}"
        )
        bar = self.query_one("#progress", ProgressBar)
        bar.update(total=pos.total, progress=pos.elapsed)
        self.query_one("#phases", Static).update(self._phases(step.phase))
        b = s.breath()
        width = 1 + int(19 * (b.progress if b.phase == "in" else 1 - b.progress))
        word = "Breathe in " if b.phase == "in" else "Breathe out"
        self.query_one("#breath", Static).update(f"{word}  {'━' * width}")
        check = ""
        if s.checking_in():
            check = "Ask: is the pressure right?   g good · - softer · + firmer · t tender"
        self.query_one("#checkin", Static).update(check)
        self.query_one("#message", Static).update(s.message)
        following = s.step(1)
        self.query_one("#next", Static).update(
            f"Next: {s.describe(following)}" if following else "Next: the end — rest a moment."
        )

    def _phases(self, current: str) -> Text:
        text = Text()
        for phase in PHASES:
            style = f"bold {PHASE_COLOUR[phase]}" if phase == current else "#5d6a73"
            text.append(f" {phase} ", style=style)
            if phase != PHASES[-1]:
                text.append("›", style="#5d6a73")
        return text

    def action_pause_resume(self) -> None:
        self.session.toggle()
        self.refresh_view()

    def action_skip(self) -> None:
        self.session.skip()
        self.tick()

    def action_extend(self) -> None:
        self.session.extend()
        self.refresh_view()

    def action_firmer(self) -> None:
        self.session.feedback("firmer")
        self.refresh_view()

    def action_softer(self) -> None:
        self.session.feedback("softer")
        self.refresh_view()

    def action_tender(self) -> None:
        self.session.feedback("tender")
        self.refresh_view()

    def action_good(self) -> None:
        self.session.feedback("good")
        self.refresh_view()

    def action_stop(self) -> None:
        self.session.stop()
        self.exit()
