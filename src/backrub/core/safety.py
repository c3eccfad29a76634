"""The safety check: the conditions a person says apply → a verdict.

`stop` means no session at all; `caution` lists what changes (areas skipped, a pressure ceiling,
tools not used); `clear` means nothing applies. The planner refuses a `stop` verdict itself, so no
adapter can forget to.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from backrub.core.errors import BadInput
from backrub.core.models import PRESSURE_WORDS, Finding, Reason, Verdict, VerdictLevel

if TYPE_CHECKING:
    from collections.abc import Iterable

    from backrub.core.catalogue import Catalogue


def parse_finding(catalogue: Catalogue, text: str) -> Finding:
    """`pregnancy` or `sunburn-or-rash=shoulders` (the form `--has` takes) → a Finding."""
    condition_id, _, region = text.strip().partition("=")
    return make_finding(catalogue, condition_id.strip(), region.strip() or None)


def make_finding(catalogue: Catalogue, condition_id: str, region: str | None) -> Finding:
    """A condition that applies, with the area for an `avoid` one (and only for those)."""
    condition = catalogue.condition(condition_id)
    if condition.effect == "avoid":
        if not region:
            raise BadInput(
                f"{condition.id} needs the area it affects; "
                f"areas: {', '.join(_avoidable(catalogue))}."
            )
        if region not in catalogue.regions:
            raise BadInput(
                f"Unknown area {region!r} for {condition.id}; "
                f"choose from: {', '.join(_avoidable(catalogue))}."
            )
        return Finding(condition.id, region)
    if region:
        raise BadInput(f"{condition.id} does not take an area; leave the area out.")
    return Finding(condition.id)


def _avoidable(catalogue: Catalogue) -> list[str]:
    return [*catalogue.focus_region_ids, "whole-back"]


def assess(catalogue: Catalogue, findings: Iterable[Finding]) -> Verdict:
    reasons: list[Reason] = []
    cap: int | None = None
    avoid_regions: set[str] = set()
    avoid_tools: set[str] = set()
    level: VerdictLevel = "clear"
    seen: set[Finding] = set()
    for finding in findings:
        if finding in seen:
            continue
        seen.add(finding)
        condition = catalogue.condition(finding.condition)
        if condition.effect == "stop":
            level = "stop"
            change = "Stops the session: " + condition.advice
        elif condition.effect == "cap":
            # The catalogue guarantees a cap; 2 (light) is the safe reading if it were missing.
            limit = condition.pressure_cap or 2
            cap = limit if cap is None else min(cap, limit)
            change = f"Keeps the pressure {PRESSURE_WORDS[limit]} (level {limit} or less)"
            if condition.avoid_tools:
                change += f"; no {', '.join(condition.avoid_tools)}"
                avoid_tools.update(condition.avoid_tools)
            change += "."
        else:
            region = catalogue.region(finding.region or "whole-back")
            avoid_regions.add(region.id)
            if region.id == "whole-back":
                level = "stop"
                change = "Stops the session: no part of the back is left to massage."
            else:
                change = f"Skips the {region.name}."
        if level != "stop":
            level = "caution"
        reasons.append(Reason(condition=condition, region=finding.region, change=change))
    if level != "stop" and avoid_regions.issuperset(catalogue.focus_region_ids):
        level = "stop"
        reasons.append(
            Reason(
                condition=reasons[-1].condition,
                region=None,
                change="Stops the session: every part of the back is to be avoided.",
            )
        )
    return Verdict(
        level=level,
        reasons=tuple(reasons),
        pressure_cap=cap,
        avoid_regions=frozenset(avoid_regions),
        avoid_tools=frozenset(avoid_tools),
    )
