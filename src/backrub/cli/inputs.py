"""Turning command-line text into core values, with one clear sentence when it is wrong."""

from __future__ import annotations

from typing import TYPE_CHECKING

from backrub.core.errors import BadInput, OutOfRange
from backrub.core.models import PRESSURE_CEILINGS, Finding, Focus, PlanRequest
from backrub.core.planner import validate_request
from backrub.core.safety import parse_finding

if TYPE_CHECKING:
    from collections.abc import Sequence

    from backrub.core.catalogue import Catalogue

DEFAULT_TENSION = 7
MAX_SPEED = 1000


def parse_focus(catalogue: Catalogue, texts: Sequence[str]) -> tuple[Focus, ...]:
    """`shoulders=8` or `shoulders` (tension 7)."""
    focus = []
    for text in texts:
        region, sep, tension_text = text.partition("=")
        region = region.strip()
        catalogue.region(region)  # unknown → UnknownRegion listing the valid ids
        if not catalogue.regions[region].focusable:
            raise BadInput(
                f"{region} is used for warm-up and finish; focus on one of: "
                f"{', '.join(catalogue.focus_region_ids)}."
            )
        tension = DEFAULT_TENSION
        if sep:
            try:
                tension = int(tension_text)
            except ValueError:
                raise BadInput(
                    f"Tension for {region} must be a whole number 0 to 10 (got {tension_text!r})."
                ) from None
            if not 0 <= tension <= 10:
                raise OutOfRange(f"tension for {region}", tension, 0, 10)
        focus.append(Focus(region, tension))
    return tuple(focus)


def parse_whole(name: str, text: str, low: int, high: int) -> int:
    try:
        return int(text)
    except ValueError:
        raise BadInput(f"{name} must be a whole number {low} to {high} (got {text!r}).") from None


def parse_tension(text: str, name: str) -> int:
    """A 0–10 answer to "how tense is your back?"."""
    return _in_range(name, text, 0, 10)


def parse_speed(text: str) -> float:
    try:
        speed = float(text)
    except ValueError:
        speed = -1.0
    if not 0 < speed <= MAX_SPEED:
        raise BadInput(f"--speed must be a number above 0 and at most {MAX_SPEED} (got {text!r}).")
    return speed


def _in_range(name: str, text: str, low: int, high: int) -> int:
    value = parse_whole(name, text, low, high)
    if not low <= value <= high:
        raise OutOfRange(name, value, low, high)
    return value


def parse_pressure(text: str) -> int:
    try:
        return PRESSURE_CEILINGS[text.strip().lower()]
    except KeyError:
        raise BadInput(
            f"pressure must be one of: {', '.join(PRESSURE_CEILINGS)} (got {text!r})."
        ) from None


def parse_request(
    catalogue: Catalogue, *, minutes: str, mode: str, focus: Sequence[str], pressure: str, oil: bool
) -> PlanRequest:
    """The session options as the planner takes them, every one checked."""
    facts = catalogue.facts
    request = PlanRequest(
        mode=mode,  # type: ignore[arg-type]  # checked just below
        minutes=parse_whole("minutes", minutes, facts.min_minutes, facts.max_minutes),
        focus=parse_focus(catalogue, focus),
        ceiling=parse_pressure(pressure),
        oil=oil,
    )
    validate_request(catalogue, request)
    return request


def parse_findings(catalogue: Catalogue, has: Sequence[str], none: bool) -> list[Finding]:
    if none and has:
        raise BadInput("Give either --none or --has, not both.")
    return [parse_finding(catalogue, text) for text in has]
