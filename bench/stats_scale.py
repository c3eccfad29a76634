"""History at scale: `backrub stats` over 10,000 stored sessions, as a multiple of reading them.

A fresh SQLite file in a temporary folder (the real store: `open_store(Settings(...))`, schema
by its own migrations) gets N sessions of one owner, about 12 hours apart: 1–3 focus regions
with tensions, tension before and after (some missing), a few stopped early, a fifth with one to
three feedback events, and the plan and state JSON `backrub start` keeps, built by the real
planner and engine. They are written through the store's API — `SessionStore.create`,
`add_feedback`, `finish`, a transaction each — which takes about 22 s for 10,000 (against 9 s in
one transaction, with the data generated in both). `--bulk` writes the same values through the
store's own SQLAlchemy tables in one transaction instead, for larger N.

Then, best of 3 each, alternated: reading them, `store.sessions(newest_first=False)` (the
baseline), and reading them plus `compute_stats(records, today=…)` — what `backrub stats`
does. Aim (issue #3): read + stats under 2× the read. Also timed: the real command
`backrub stats --json` end to end (BACKRUB_DATA_DIR at the file's folder, a fresh
BACKRUB_CACHE_DIR), next to the same command on an empty history, runs alternated, medians.

    python bench/stats_scale.py [--sessions N] [--runs N] [--bulk]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import insert

from backrub.config import Settings
from backrub.core import engine
from backrub.core.catalogue import load_catalogue
from backrub.core.export import plan_as_dict
from backrub.core.insights import compute_stats
from backrub.core.models import FeedbackEvent, Finding, Focus, PlanRequest
from backrub.core.planner import build_plan, rules_for
from backrub.core.safety import assess
from backrub.store import open_store, saved_state
from backrub.store import validation as check
from backrub.store.engine import transaction
from backrub.store.tables import FeedbackRow, SessionRow

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from backrub.core.catalogue import Catalogue
    from backrub.store import SessionStore

TODAY = date(2026, 11, 25)
LAST_START = datetime(2026, 11, 24, 19, 30, tzinfo=UTC)


def history(catalogue: Catalogue, n: int, seed: int = 3) -> Iterator[dict[str, Any]]:
    """N sessions, newest first, each as the fields the store keeps (seeded: same every run)."""
    rng = random.Random(seed)  # noqa: S311  (test data, not secrets)
    regions = catalogue.focus_region_ids
    verdicts = {
        "clear": assess(catalogue, []),
        "caution": assess(catalogue, [Finding("osteoporosis")]),
    }
    started = LAST_START
    for i in range(n):
        mode = rng.choice(("self", "partner"))
        minutes = rng.choice((15, 20, 30, 45, 60))
        focus = tuple(Focus(r, rng.randint(3, 9)) for r in rng.sample(regions, rng.randint(1, 3)))
        level = "caution" if rng.random() < 0.1 else "clear"
        verdict = verdicts[level]
        request = PlanRequest(mode, minutes, focus, rng.randint(2, 4))
        plan = build_plan(catalogue, request, verdict)
        before = rng.randint(2, 9) if rng.random() < 0.9 else None
        after = max(0, before - rng.randint(-1, 4)) if before is not None else None
        stopped = rng.random() < 0.08
        done = minutes * 60 if not stopped else rng.randint(60, minutes * 60 - 1)
        events = []
        if rng.random() < 0.2:
            for at in sorted(rng.uniform(0, done) for _ in range(rng.randint(1, 3))):
                step = engine.position(engine.new_session(plan, rules_for(request, verdict)), at)
                region = plan.steps[step.step].region
                kind = rng.choice(("good", "softer", "firmer", "tender"))
                events.append(FeedbackEvent(kind, round(at, 3), step.step, region))
        live = engine.new_session(plan, rules_for(request, verdict))
        live = engine.stop(engine.start(live, 0.0), float(done))
        yield {
            "id": f"{rng.getrandbits(128):032x}",
            "started_at": started,
            # The newest session is still going, as it would be while `backrub start` runs.
            "status": "active" if i == 0 else ("stopped" if stopped else "finished"),
            "mode": mode,
            "minutes_planned": minutes,
            "seconds_done": done,
            "focus": focus,
            "verdict": level,
            "verdict_conditions": [r.condition.id for r in verdict.reasons],
            "tension_before": before,
            "tension_after": after if i else None,
            "note": "Shoulders felt better." if rng.random() < 0.05 else None,
            "tender": [e.region for e in events if e.kind == "tender"],
            "feedback": events,
            "plan": plan_as_dict(catalogue, plan),
            "state": engine.state_as_dict(live, float(done)),
        }
        started -= timedelta(hours=rng.uniform(4, 20))


def store_through_tables(store: SessionStore, sessions: Iterator[dict[str, Any]]) -> int:
    """One transaction; the rows hold what `SessionStore.create` + `finish` write."""
    rows, events = [], []
    for s in sessions:
        end = s["started_at"] + timedelta(seconds=s["seconds_done"])
        active = s["status"] == "active"
        rows.append(
            {
                "id": s["id"],
                "owner": store.owner,
                "started_at": s["started_at"],
                "ended_at": None if active else end,
                "status": s["status"],
                "mode": s["mode"],
                "minutes_planned": s["minutes_planned"],
                "seconds_done": s["seconds_done"],
                "progress_seq": len(s["feedback"]),
                "focus": check.focus(s["focus"]),
                "verdict": s["verdict"],
                "verdict_conditions": s["verdict_conditions"],
                "tension_before": s["tension_before"],
                "tension_after": s["tension_after"],
                "note": s["note"],
                "tender": list(dict.fromkeys(s["tender"])),
                "plan": s["plan"],
                # As the store keeps a state: the document and the progress columns.
                "state": saved_state.document(s["state"]),
                **saved_state.progress(s["state"])._asdict(),
                "updated_at": end,
            }
        )
        events += [{"session_id": s["id"], **check.feedback(e)} for e in s["feedback"]]
    with transaction(store.engine, write=True) as conn:
        conn.execute(insert(SessionRow), rows)
        conn.execute(insert(FeedbackRow), events)
    return len(events)


def store_through_api(store: SessionStore, sessions: Iterator[dict[str, Any]]) -> int:
    count = 0
    for s in sessions:
        session_id = store.create(
            started_at=s["started_at"],
            mode=s["mode"],
            minutes_planned=s["minutes_planned"],
            focus=s["focus"],
            verdict=s["verdict"],
            verdict_conditions=s["verdict_conditions"],
            tension_before=s["tension_before"],
            plan=s["plan"],
            state=s["state"],
        )
        for seq, event in enumerate(s["feedback"], start=1):
            tender = [e.region for e in s["feedback"][:seq] if e.kind == "tender"]
            store.add_feedback(
                session_id,
                event=event,
                seq=seq,
                seconds_done=int(event.at),
                state=s["state"],
                tender=tender,
            )
            count += 1
        if s["status"] != "active":
            store.finish(
                session_id,
                status=s["status"],
                seconds_done=s["seconds_done"],
                tension_after=s["tension_after"],
                note=s["note"],
                ended_at=s["started_at"] + timedelta(seconds=s["seconds_done"]),
            )
    return count


def best_of(fns: dict[str, Callable[[], object]], rounds: int = 3) -> dict[str, float]:
    """The fastest of `rounds` timings of each function, the functions alternated."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: min(t) for name, t in times.items()}


def wall(cmd: list[str], env: dict[str, str]) -> tuple[float, bytes]:
    start = time.perf_counter()
    out = subprocess.run(cmd, env=env, check=True, capture_output=True).stdout
    return time.perf_counter() - start, out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5, help="runs of `backrub stats --json`")
    parser.add_argument(
        "--bulk", action="store_true", help="write through the tables in one transaction"
    )
    args = parser.parse_args()
    n: int = args.sessions
    work = Path(tempfile.mkdtemp(prefix="backrub-bench-"))
    data, cache, empty = work / "data", work / "cache", work / "empty"
    catalogue = load_catalogue()

    store = open_store(Settings(data_dir=data, cache_dir=cache))
    start = time.perf_counter()
    write = store_through_tables if args.bulk else store_through_api
    events = write(store, history(catalogue, n))
    written = time.perf_counter() - start
    store.close()
    size = (data / "backrub.db").stat().st_size / 1e6

    store = open_store(Settings(data_dir=data, cache_dir=cache))

    def read() -> object:
        return store.sessions(newest_first=False)

    def read_and_stats() -> object:
        return compute_stats(store.sessions(newest_first=False), today=TODAY, tz=UTC)

    best = best_of({"read": read, "read + stats": read_and_stats})
    records = store.sessions(newest_first=False)
    stats_alone = best_of({"stats": lambda: compute_stats(records, today=TODAY, tz=UTC)})["stats"]
    counted = compute_stats(records, today=TODAY, tz=UTC).sessions
    store.close()

    env = {k: v for k, v in os.environ.items() if k != "BACKRUB_DATABASE_URL"}
    env["BACKRUB_CACHE_DIR"] = str(cache)
    command = [str(Path(sys.executable).with_name("backrub")), "stats", "--json"]
    wall(command, {**env, "BACKRUB_DATA_DIR": str(empty)})  # warms the catalogue cache
    full_runs, empty_runs = [], []
    for _ in range(args.runs):
        empty_runs.append(wall(command, {**env, "BACKRUB_DATA_DIR": str(empty)})[0])
        seconds, out = wall(command, {**env, "BACKRUB_DATA_DIR": str(data)})
        full_runs.append(seconds)
    if json.loads(out)["sessions"] != counted:
        raise SystemExit(f"backrub stats counted {json.loads(out)['sessions']}, not {counted}")
    shutil.rmtree(work)

    how = "through the tables in one transaction" if args.bulk else "through SessionStore"
    print(
        f"{n} sessions ({counted} ended), {events} feedback events, SQLite file {size:.0f} MB; "
        f"written {how} in {written:.1f} s"
    )
    read_s, both_s = best["read"], best["read + stats"]
    print(f"read     store.sessions(newest_first=False)   best of 3 {read_s * 1000:8.1f} ms")
    print(f"stats    compute_stats(records) alone          best of 3 {stats_alone * 1000:8.1f} ms")
    print(f"read + stats (what `backrub stats` does)       best of 3 {both_s * 1000:8.1f} ms")
    print(f"ratio: {both_s / read_s:.2f}x reading them (aim: under 2x)")
    full, bare = statistics.median(full_runs), statistics.median(empty_runs)
    print(
        f"backrub stats --json, end to end: median {full * 1000:.0f} ms "
        f"({bare * 1000:.0f} ms on an empty history; {args.runs} runs each)"
    )


if __name__ == "__main__":
    main()
