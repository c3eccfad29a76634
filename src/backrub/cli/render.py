"""Rich renderings of verdicts, plans, the technique library and the history, for a person at a
terminal."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from backrub.core.insights import sparkline
from backrub.core.models import PRESSURE_WORDS

if TYPE_CHECKING:
    from collections.abc import Sequence

    from rich.console import RenderableType

    from backrub.core.catalogue import Catalogue
    from backrub.core.insights import Stats
    from backrub.core.models import Plan, SessionRecord, Technique, Verdict

PHASE_STYLE = {"warm-up": "yellow", "strokes": "cyan", "focus": "magenta", "finish": "green"}
VERDICT_STYLE = {"clear": "green", "caution": "yellow", "stop": "red"}
VERDICT_TITLE = {
    "clear": "Clear — nothing stands in the way of a massage.",
    "caution": "Caution — a massage is fine, with the changes below.",
    "stop": "Stop — no massage today.",
}


def gauge(level: int) -> str:
    return "●" * level + "○" * (5 - level)


def clock(seconds: int) -> str:
    return f"{seconds // 60}:{seconds % 60:02d}"


def verdict(v: Verdict) -> RenderableType:
    style = VERDICT_STYLE[v.level]
    parts: list[RenderableType] = []
    if v.level == "stop" and v.see_doctor:
        parts.append(Text("See a doctor first.", style="bold red"))
    for reason in v.reasons:
        c = reason.condition
        label = c.label + (f" ({reason.region})" if reason.region else "")
        parts.append(Text(label, style="bold"))
        parts.append(Text(f"  {reason.change}"))
        parts.append(Text(f"  Why: {c.why}", style="dim"))
        for source in c.sources:
            link = f" — {source.url}" if source.url else ""
            parts.append(Text(f"  Source: {source.name}{link}", style="dim"))
    if v.level == "clear":
        parts.append(Text("None of the conditions apply. Enjoy the massage."))
    return Panel(Group(*parts), title=VERDICT_TITLE[v.level], border_style=style, expand=False)


def plan(catalogue: Catalogue, p: Plan, *, checked: bool) -> RenderableType:
    r = p.request
    head = Text(
        f"{r.minutes}-minute {r.mode} massage · up to {PRESSURE_WORDS[r.ceiling]} pressure",
        style="bold",
    )
    table = Table(show_header=True, header_style="bold", expand=False, box=None, padding=(0, 1))
    table.add_column("#", justify="right")
    table.add_column("at", justify="right")
    table.add_column("phase")
    table.add_column("where")
    table.add_column("how")
    table.add_column("firm", no_wrap=True)
    table.add_column("time", justify="right")
    table.add_column("what to do", ratio=1)
    helped: set[str] = set()
    for s in p.steps:
        # The breathing cue is part of every self-mode step; on paper it is said once, below.
        cue = s.cue.replace(s.breath, "").strip()
        if s.check_in:
            cue += " ✋ Check in: ask how it feels."
        if s.self_help and s.region not in helped:
            helped.add(s.region)
            cue += f" (Can't reach? {s.self_help})"
        table.add_row(
            str(s.position + 1),
            clock(s.start),
            Text(s.phase, style=PHASE_STYLE[s.phase]),
            catalogue.regions[s.region].name,
            catalogue.techniques[s.technique].name,
            gauge(s.pressure),
            clock(s.seconds),
            cue,
        )
    setup = Text("Before you start: " + " ".join(item.text for item in catalogue.setup))
    parts: list[RenderableType] = [head, setup, table]
    if r.mode == "self":
        parts.append(Text(f"Throughout: {catalogue.facts.breathing}", style="cyan"))
    if p.verdict.level == "caution":
        parts.append(verdict(p.verdict))
    if not checked:
        parts.append(
            Text(
                "Planned as if no safety condition applies. "
                "The live session starts with the safety check (backrub check).",
                style="italic yellow",
            )
        )
    return Group(*parts)


def library(catalogue: Catalogue) -> RenderableType:
    regions = Table(title="Regions", header_style="bold", expand=False)
    regions.add_column("id")
    regions.add_column("name")
    regions.add_column("on your own")
    for region in catalogue.regions.values():
        alone = "yes" if region.reachable_alone else f"no — {region.self_help}"
        regions.add_row(region.id, region.name, alone)
    techniques = Table(title="Techniques", header_style="bold", expand=False)
    techniques.add_column("id")
    techniques.add_column("name")
    techniques.add_column("phases")
    techniques.add_column("for")
    techniques.add_column("regions")
    techniques.add_column("pressure", no_wrap=True)
    for t in catalogue.techniques.values():
        techniques.add_row(
            t.id,
            t.name,
            ", ".join(t.phases),
            ", ".join(t.modes),
            ", ".join(t.regions),
            f"{t.pressure[0]}–{t.pressure[1]}",
        )
    hint = Text("Show one card in full: backrub techniques ID  (all cards: --all)", style="dim")
    return Group(regions, techniques, hint)


def card(catalogue: Catalogue, t: Technique) -> RenderableType:
    lines: list[RenderableType] = [Text(t.summary, style="italic")]
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold")
    facts.add_column()
    facts.add_row("For", ", ".join(t.modes))
    facts.add_row("Where", ", ".join(catalogue.regions[r].name for r in t.regions))
    facts.add_row("With", ", ".join(t.tools))
    facts.add_row(
        "Pressure",
        f"{PRESSURE_WORDS[t.pressure[0]]} to {PRESSURE_WORDS[t.pressure[1]]} "
        f"({gauge(t.pressure[1])})",
    )
    facts.add_row("Tempo", t.tempo)
    facts.add_row("Time", f"{clock(t.duration[0])} to {clock(t.duration[1])}")
    facts.add_row("Repetitions", t.repetitions)
    facts.add_row("Direction", t.direction)
    if t.start_position_self:
        facts.add_row("Start (self)", t.start_position_self)
    if t.start_position_partner:
        facts.add_row("Start (partner)", t.start_position_partner)
    lines.append(facts)
    lines.append(Text("How", style="bold"))
    lines += [Text(f" {n}. {step}") for n, step in enumerate(t.instructions, 1)]
    lines.append(Text("Tips", style="bold"))
    lines += [Text(f" • {tip}") for tip in t.tips]
    lines.append(Text("Common mistakes", style="bold"))
    lines += [Text(f" • {m}") for m in t.mistakes]
    lines.append(Text(f"⚠ {t.warning}", style="yellow"))
    return Panel(Group(*lines), title=f"{t.name}  [{t.id}]", expand=False)


def history(catalogue: Catalogue, records: Sequence[SessionRecord]) -> RenderableType:
    table = Table(header_style="bold", box=None, padding=(0, 1))
    for column in ("when", "mode", "minutes", "tension", "focus", ""):
        table.add_column(column)
    for r in records:
        when = r.started_at.astimezone().strftime("%a %d %b %Y %H:%M")
        tension = f"{_num(r.tension_before)} → {_num(r.tension_after)}"
        focus = ", ".join(catalogue.regions[f.region].name for f in r.focus) or "guide's default"
        status = {"active": "unfinished", "stopped": "stopped early", "finished": ""}[r.status]
        done = f"{r.seconds_done // 60}:{r.seconds_done % 60:02d} of {r.minutes_planned}:00"
        table.add_row(when, r.mode, done, tension, focus, status)
    return table


def _num(value: int | None) -> str:
    return "–" if value is None else str(value)


def stats_lines(result: Stats) -> str:
    """Sessions, the trend, the streak and the next session, as plain lines."""
    lines = [f"Sessions: {result.sessions}"]
    lines.append(
        "Per month: " + ", ".join(f"{month} ({count})" for month, count in result.per_month)
    )
    if result.average_drop is not None:
        lines.append(f"Tension eases by {result.average_drop:.1f} points on average.")
    before = sparkline([p.before for p in result.trend])
    after = sparkline([p.after for p in result.trend])
    lines.append(f"Before  {before}\nAfter   {after}   ({result.trend_direction})")
    lines.append(
        f"Streak: {result.streak_weeks} week(s) in a row (longest {result.longest_streak_weeks})."
    )
    if result.next_session:
        lines.append(
            f"Next session: around {result.next_session:%a %d %b} "
            f"(every {result.interval_days} days suits you now)."
        )
    lines.append(result.message)
    return "\n".join(lines)


def what_helps(catalogue: Catalogue, result: Stats) -> RenderableType:
    table = Table(title="What helps", header_style="bold", box=None, padding=(0, 1))
    table.add_column("focus region")
    table.add_column("sessions", justify="right")
    table.add_column("average drop", justify="right")
    for effect in result.regions:
        name = catalogue.regions[effect.region].name
        table.add_row(name, str(effect.sessions), f"{effect.average_drop:.1f}")
    return table
