"""Plans and verdicts as plain data (for `--json`, the web API and the store)."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from backrub.core.catalogue import Catalogue
    from backrub.core.insights import Stats
    from backrub.core.models import Plan, Reason, SessionRecord, Verdict


def as_plain(value: Any) -> Any:
    """A NamedTuple tree → dicts and lists, ready for JSON (dates as ISO 8601 text)."""
    if isinstance(value, date):
        return value.isoformat()
    if hasattr(value, "_asdict"):
        return {k: as_plain(v) for k, v in value._asdict().items()}
    if isinstance(value, tuple | list):
        return [as_plain(v) for v in value]
    if isinstance(value, frozenset | set):
        return sorted(as_plain(v) for v in value)
    return value


def reason_as_dict(reason: Reason) -> dict[str, Any]:
    c = reason.condition
    return {
        "condition": c.id,
        "label": c.label,
        "kind": c.kind,
        "effect": c.effect,
        "region": reason.region,
        "change": reason.change,
        "why": c.why,
        "advice": c.advice,
        "sources": [{"name": s.name, "url": s.url} for s in c.sources],
    }


def verdict_as_dict(verdict: Verdict) -> dict[str, Any]:
    return {
        "verdict": verdict.level,
        "see_doctor": verdict.see_doctor,
        "reasons": [reason_as_dict(r) for r in verdict.reasons],
        "pressure_cap": verdict.pressure_cap,
        "avoid_regions": sorted(verdict.avoid_regions),
        "avoid_tools": sorted(verdict.avoid_tools),
    }


def plan_as_dict(catalogue: Catalogue, plan: Plan) -> dict[str, Any]:
    request = plan.request
    return {
        "mode": request.mode,
        "minutes": request.minutes,
        "total_seconds": plan.total_seconds,
        "pressure_ceiling": request.ceiling,
        "oil": request.oil,
        "focus": [{"region": f.region, "tension": f.tension} for f in request.focus],
        "safety": verdict_as_dict(plan.verdict),
        "setup": [{"id": s.id, "text": s.text, "why": s.why} for s in catalogue.setup],
        "steps": [
            {
                "index": s.position,
                "phase": s.phase,
                "region": s.region,
                "region_name": catalogue.regions[s.region].name,
                "technique": s.technique,
                "technique_name": catalogue.techniques[s.technique].name,
                "tool": s.tool,
                "pressure": s.pressure,
                "seconds": s.seconds,
                "start": s.start,
                "cue": s.cue,
                "halfway": s.halfway,
                "breath": s.breath,
                "check_in": s.check_in,
                "self_help": s.self_help,
                "avoid": list(s.avoid),
            }
            for s in plan.steps
        ],
    }


def record_as_dict(record: SessionRecord) -> dict[str, Any]:
    """A stored session, as an item of `backrub history --json` (what `as_plain` makes of it,
    field by field: the player's answers carry one at every feedback)."""
    ended = record.ended_at
    return {
        "id": record.id,
        "started_at": record.started_at.isoformat(),
        "mode": record.mode,
        "minutes_planned": record.minutes_planned,
        "seconds_done": record.seconds_done,
        "status": record.status,
        "focus": [focus._asdict() for focus in record.focus],
        "verdict": record.verdict,
        "verdict_conditions": list(record.verdict_conditions),
        "tension_before": record.tension_before,
        "tension_after": record.tension_after,
        "note": record.note,
        "tender": list(record.tender),
        "feedback": [event._asdict() for event in record.feedback],
        "ended_at": None if ended is None else ended.isoformat(),
    }


def stats_as_dict(result: Stats) -> dict[str, Any]:
    """As `backrub stats --json`."""
    data: dict[str, Any] = as_plain(result)
    data["trend"] = [
        {"day": p.day.isoformat(), "before": p.before, "after": p.after} for p in result.trend
    ]
    data["per_month"] = [{"month": m, "sessions": c} for m, c in result.per_month]
    return data
