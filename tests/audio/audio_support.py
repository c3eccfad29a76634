"""Shared pieces for the guided-audio tests: a short plan to render fast, a counting voice."""

from __future__ import annotations

from typing import TYPE_CHECKING

from backrub.core.models import PlanRequest
from backrub.core.planner import build_plan, rules_for
from backrub.core.safety import assess

if TYPE_CHECKING:
    from backrub.audio.loudness import Samples
    from backrub.audio.voices import Voice
    from backrub.core.catalogue import Catalogue
    from backrub.core.models import Plan
    from backrub.core.planner import Rules


class CountingVoice:
    """A real voice, counting how often it is asked to speak."""

    def __init__(self, inner: Voice) -> None:
        self.inner = inner
        self.engine = inner.engine
        self.name = inner.name
        self.spoken: list[str] = []

    def synthesize(self, text: str) -> tuple[Samples, int]:
        self.spoken.append(text)
        return self.inner.synthesize(text)


def short_plan(catalogue: Catalogue, *, seconds: int = 40, steps: int = 2) -> tuple[Plan, Rules]:
    """A real partner plan cut to its first `steps` steps of `seconds` each: the audio tests'
    fast path (the planner's 15-minute minimum is tested end to end elsewhere)."""
    request = PlanRequest(mode="partner", minutes=15, focus=(), ceiling=3, oil=True)
    verdict = assess(catalogue, [])
    plan = build_plan(catalogue, request, verdict)
    cut = tuple(
        s._replace(seconds=seconds, start=i * seconds, check_in=True)
        for i, s in enumerate(plan.steps[:steps])
    )
    return plan._replace(steps=cut), rules_for(request, verdict)
