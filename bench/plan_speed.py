"""Plan building speed: plans per second, and the time per plan as a multiple of a baseline.

The baseline, measured in the same run, is the least work any planner must do for the same
output: constructing the plan's Step values from their already-known fields. The aim (issue #2):
a plan in under 1 ms.

Also the re-plan a partner's "softer" or "firmer" makes of the rest of the session
(`engine.feedback` on the first step, the words alternating so that each one changes the steps),
against the same baseline: the web app makes one at every feedback (bench/load.py).

    python bench/plan_speed.py [--seconds S]
"""

from __future__ import annotations

import argparse
import itertools
import time
from typing import TYPE_CHECKING

from backrub.core import engine
from backrub.core.catalogue import load_catalogue
from backrub.core.models import Finding, Focus, Plan, PlanRequest, Step
from backrub.core.planner import build_plan, rules_for
from backrub.core.safety import assess

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator


def rate(fn: Callable[[], object], seconds: float) -> float:
    """Calls per second over about `seconds`, best of three rounds."""
    best = 0.0
    for _ in range(3):
        count, start = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - start) < seconds / 3:
            for _ in range(50):
                fn()
            count += 50
        best = max(best, count / elapsed)
    return best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=3.0)
    seconds = parser.parse_args().seconds
    catalogue = load_catalogue()
    cases = {
        "20 min partner, 2 focus": (
            PlanRequest("partner", 20, (Focus("shoulders", 8), Focus("lower-back", 5)), 3),
            [],
        ),
        "60 min self, 6 focus, 2 cautions": (
            PlanRequest(
                "self",
                60,
                tuple(Focus(r, 3 + i) for i, r in enumerate(catalogue.focus_region_ids)),
                5,
            ),
            [Finding("osteoporosis"), Finding("sunburn-or-rash", "mid-back")],
        ),
    }
    for name, (request, findings) in cases.items():
        verdict = assess(catalogue, findings)
        plan = build_plan(catalogue, request, verdict)
        fields = [tuple(s) for s in plan.steps]

        def baseline(fields: list[tuple[object, ...]] = fields, plan: Plan = plan) -> Plan:
            return Plan(plan.request, plan.verdict, tuple(Step(*f) for f in fields))  # type: ignore[arg-type]

        def planner(request: PlanRequest = request, verdict: object = verdict) -> Plan:
            return build_plan(catalogue, request, verdict)  # type: ignore[arg-type]

        live = engine.new_session(plan, rules_for(request, verdict))  # type: ignore[arg-type]
        words = itertools.cycle(["softer", "firmer"])

        def replan(live: engine.LiveState = live, words: Iterator[str] = words) -> object:
            return engine.feedback(catalogue, live, 1.0, next(words))

        base, real, again = rate(baseline, seconds), rate(planner, seconds), rate(replan, seconds)
        print(
            f"{name:34s} {real:9.0f} plans/s  {1e6 / real:7.1f} µs/plan  "
            f"{base / real:5.1f}x baseline ({len(plan.steps)} steps)"
        )
        label = "  re-plan after softer/firmer"
        print(
            f"{label:34s} {again:9.0f} /s      {1e6 / again:7.1f} µs       "
            f"{base / again:5.1f}x baseline"
        )


if __name__ == "__main__":
    main()
