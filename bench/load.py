"""Load: live sessions against `backrub serve --workers 2`, how many it holds, and whether every
accepted event is in the database afterwards.

Issue 16: "live sessions, each sending an event every 5 s (3× a real player's rate), against
`backrub serve --workers 2`, for 60 s, on SQLite and on PostgreSQL. Aim: at least 1,000 sessions
held with p99 < 100 ms and 0 failed requests, and every accepted event found in the database
afterwards (count them). Report the most sessions held at p99 < 100 ms."

How: `python -m backrub serve --port 0 --workers 2` (two uvicorn app processes sharing the socket)
on a fresh SQLite file, then on a PostgreSQL database of its own (created and dropped here). The
sessions are created through the API first. Each simulated session is an asyncio task with its own
keep-alive connection (a player's browser has its own) that starts at a random moment in the first
5 s and then sends one event every 5 s on an absolute schedule, as the player's outbox does: one
at a time, `seq` rising by one, `active` rising by 5 s, two cue ids given; a `progress` save, or
one time in six a `feedback` (good, softer or firmer at random: a re-plan and a stored feedback
row). A request fails when it does not answer 200 with `accepted: true` (nothing should be
refused: each session's `seq` only rises), or raises (a timeout is 30 s).

Latency is from sending a request to its answer. The load generator runs on the same 2 cores as
the server, so its own CPU is reported, and how late its event loop wakes from a 50 ms sleep
("lag", p99): that delay is part of every latency it measures. The server's CPU per event (both
workers, from /proc) says what an event costs whatever else the machine is doing; on PostgreSQL
also its backends' CPU and the connections opened to it during the run (pg_stat_database).

Then the step search for the most sessions held (held: p99 under 100 ms, no failed request, and
the events sent at the rate asked for): the same server, 20 s runs, doubling from the main run's
count while held (halving while not), then halfway between the most held and the fewest not held
until they are within a quarter. Bounded: at most 5 search runs a backend, and none begun after
the search has taken 2 minutes (sessions created for it included).

Last, the count: the server is stopped and its database opened directly (SQLAlchemy): each
session's saved `progress_seq` must equal the events accepted for it, and its feedback rows the
feedback events accepted. A difference, or a failed request, exits with status 1.

    python bench/load.py [--sessions 1000] [--seconds 60] [--step-seconds 20] [--no-search]
                         [--backend sqlite|postgresql|both] [--workers 2]
                         [--postgres postgresql+psycopg://postgres@127.0.0.1:5432]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import signal
import ssl
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
from sqlalchemy import create_engine, text

from serving import (
    LOCAL,
    POSTGRES,
    SESSION_BODY,
    cpu_by_process,
    cpu_seconds,
    postgres_database,
    server,
)

PERIOD = 5.0  # seconds between one session's events
FEEDBACK_ONE_IN = 6
AIM_SESSIONS = 1000
AIM_P99_MS = 100.0
ON_TIME = 0.95  # a run that sent less than this share of its events a second fell behind
LOOP_TICK_S = 0.05
MAX_LOOP_LAG_S = 0.02  # beyond this (p99) the generator's own delays are part of the latency
MAX_SEARCH_RUNS = 5
SEARCH_BUDGET_S = 120.0
# Shared by every session's client: building one per client costs milliseconds of CPU each.
TLS = ssl.create_default_context()


def group_cpu(leader: int) -> float:
    """CPU seconds of every live process in the server's process group (supervisor, workers)."""
    return cpu_seconds(lambda _pid, _parent, group: group == leader)


@dataclass(frozen=True)
class Database:
    """The PostgreSQL database a run uses, watched from outside: its backends' CPU and the
    connections opened to it. SQLite (`name` None) has neither: it works inside the server."""

    name: str | None = None
    admin: str = ""  # a URL of the server's own `postgres` database

    def backends(self) -> dict[int, float]:
        """CPU seconds so far of each backend serving the database (its process title names it)."""
        if self.name is None:
            return {}
        mark = f" {self.name} ".encode()

        def serves(pid: int, _parent: int, _group: int) -> bool:
            title = Path(f"/proc/{pid}/cmdline").read_bytes()
            return title.startswith(b"postgres: ") and mark in title

        return cpu_by_process(serves)

    def connections(self) -> int:
        """Connections opened to the database so far (PostgreSQL 14+ counts them)."""
        if self.name is None:
            return 0
        with psycopg.connect(self.admin, autocommit=True) as conn:
            row = conn.execute(
                "SELECT sessions FROM pg_stat_database WHERE datname = %s", (self.name,)
            ).fetchone()
        return int(row[0]) if row else 0


# ---- the simulated sessions ------------------------------------------------------------------


@dataclass
class Live:
    """One session as its player keeps it between runs: its connection and what was accepted."""

    id: str
    client: httpx.AsyncClient
    seq: int = 0
    active: float = 0.0
    accepted: int = 0
    feedback: int = 0  # feedback events accepted


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)  # seconds, accepted requests
    failures: dict[str, int] = field(default_factory=dict)
    sent: int = 0
    feedback: int = 0  # feedback events sent

    def fail(self, why: str) -> None:
        self.failures[why] = self.failures.get(why, 0) + 1


async def play(live: Live, start: float, until: float, tally: Tally) -> None:
    """One session: an event every PERIOD seconds from a random offset, one at a time."""
    due = start + random.uniform(0, PERIOD)  # noqa: S311  (a jitter, not a secret)
    path = f"/api/v1/sessions/{live.id}/events"
    while due < until:
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        sent = time.perf_counter()
        live.seq += 1
        live.active += PERIOD
        body: dict[str, Any] = {
            "kind": "progress",
            "active": min(live.active, 1150.0),  # inside the 20-minute timeline
            "seq": live.seq,
            "fired": ["step:0", "half:0"],
        }
        feedback = random.randrange(FEEDBACK_ONE_IN) == 0  # noqa: S311
        if feedback:
            body |= {"kind": "feedback", "feedback": random.choice(["good", "softer", "firmer"])}  # noqa: S311
            tally.feedback += 1
        tally.sent += 1
        try:
            answer = await live.client.post(path, json=body)
        except httpx.HTTPError as error:
            tally.fail(type(error).__name__)
        else:
            if answer.status_code != 200:
                tally.fail(f"HTTP {answer.status_code}")
            elif not answer.json()["accepted"]:
                tally.fail("refused")
            else:
                tally.latencies.append(time.perf_counter() - sent)
                live.accepted += 1
                live.feedback += feedback
        due += PERIOD


@dataclass
class Run:
    sessions: int
    seconds: float
    sent: int
    feedback: int
    accepted: int
    failures: dict[str, int]
    p50: float  # ms
    p99: float  # ms
    worst: float  # ms
    loop_lag_p99: float  # s
    connections: int  # opened to PostgreSQL during the run
    server_cpu: float  # share of one core, all app processes
    database_cpu: float  # PostgreSQL's backends for this database
    generator_cpu: float

    @property
    def failed(self) -> int:
        return sum(self.failures.values())

    @property
    def on_time(self) -> bool:
        """The events went out at the rate asked for (the schedule is absolute: a run whose
        answers or sends fall behind takes longer than asked)."""
        return self.sent / self.seconds >= ON_TIME * self.sessions / PERIOD

    @property
    def held(self) -> bool:
        return not self.failures and self.p99 < AIM_P99_MS and self.on_time

    @property
    def cpu_per_event(self) -> float:
        """The server's CPU milliseconds per event sent."""
        return self.server_cpu * self.seconds / max(self.sent, 1) * 1000

    @property
    def database_per_event(self) -> float:
        return self.database_cpu * self.seconds / max(self.sent, 1) * 1000


def percentile(values: list[float], share: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


async def watch_loop(lags: list[float]) -> None:
    """How late the generator's event loop wakes up: its own delay, added to every latency."""
    while True:
        before = time.perf_counter()
        await asyncio.sleep(LOOP_TICK_S)
        lags.append(time.perf_counter() - before - LOOP_TICK_S)


async def run_load(sessions: list[Live], seconds: float, pid: int, database: Database) -> Run:
    tally, lags = Tally(), list[float]()
    server_before, backends_before = group_cpu(pid), database.backends()
    connections_before, generator_before = database.connections(), os.times()
    watcher = asyncio.create_task(watch_loop(lags))
    start = time.perf_counter()
    await asyncio.gather(*(play(s, start, start + seconds, tally) for s in sessions))
    wall = time.perf_counter() - start
    watcher.cancel()
    server_used = group_cpu(pid) - server_before
    # Only backends alive throughout: a closed one's CPU time is gone with it.
    backends_after = database.backends()
    database_used = sum(
        backends_after[pid] - used for pid, used in backends_before.items() if pid in backends_after
    )
    generator_after = os.times()
    generator_used = (generator_after.user - generator_before.user) + (
        generator_after.system - generator_before.system
    )
    return Run(
        sessions=len(sessions),
        seconds=wall,
        sent=tally.sent,
        feedback=tally.feedback,
        accepted=len(tally.latencies),
        failures=tally.failures,
        p50=percentile(tally.latencies, 0.50) * 1000,
        p99=percentile(tally.latencies, 0.99) * 1000,
        worst=max(tally.latencies, default=float("nan")) * 1000,
        loop_lag_p99=percentile(lags, 0.99),
        connections=database.connections() - connections_before,
        server_cpu=server_used / wall,
        database_cpu=database_used / wall,
        generator_cpu=generator_used / wall,
    )


def player(where: str, csrf: str) -> httpx.AsyncClient:
    """One player's client: one keep-alive connection, kept idle longer than the 5 s between
    events (the server keeps it 75 s)."""
    return httpx.AsyncClient(
        base_url=f"http://{where}",
        timeout=30,
        verify=TLS,
        limits=httpx.Limits(max_connections=1, keepalive_expiry=60),
        cookies={"backrub_csrf": csrf},
        headers={"X-CSRF-Token": csrf},
    )


async def create_sessions(where: str, csrf: str, count: int) -> list[Live]:
    gate = asyncio.Semaphore(8)

    async def one() -> Live:
        client = player(where, csrf)
        async with gate:
            answer = await client.post("/api/v1/sessions", json=SESSION_BODY)
        return Live(str(answer.raise_for_status().json()["id"]), client)

    return list(await asyncio.gather(*(one() for _ in range(count))))


HEADER = (
    f"  {'':10s}{'sess.':>6s}{'s':>5s}{'sent':>7s}{'ev/s':>6s}{'failed':>7s}{'p50 ms':>8s}"
    f"{'p99 ms':>8s}{'max ms':>8s}{'server':>8s}{'ms/ev':>7s}{'db':>5s}{'conn':>6s}{'gen.':>6s}"
    f"{'lag ms':>7s}"
)


def show(label: str, run: Run) -> None:
    why = [] if run.on_time else ["late"]
    if run.failures:
        why.append(str(run.failures))
    print(
        f"  {label:10s}{run.sessions:6d}{run.seconds:5.0f}{run.sent:7d}"
        f"{run.sent / run.seconds:6.0f}{run.failed:7d}{run.p50:8.1f}{run.p99:8.1f}"
        f"{run.worst:8.0f}{run.server_cpu:8.0%}{run.cpu_per_event:7.2f}{run.database_cpu:5.0%}"
        f"{run.connections:6d}{run.generator_cpu:6.0%}{run.loop_lag_p99 * 1000:7.0f}  "
        f"{'held' if run.held else 'NOT held'} {' '.join(why)}",
        flush=True,
    )


@dataclass
class Outcome:
    """One backend's figures: the main run, the search, and the sessions it played."""

    name: str
    main: Run
    runs: list[Run]
    best: int | None  # most sessions held; None: none held, or no search
    pool: list[Live]
    counted: str = ""
    counts_match: bool = False


def next_count(best: int | None, worst: int | None, last: int) -> int | None:
    """The step search: double while held, halve while not, then halfway until the gap is at
    most a quarter of the most held."""
    if worst is None:
        return last * 2
    if best is None:
        return last // 2 if last > 1 else None
    if worst - best > best // 4:
        return (best + worst) // 2
    return None


async def measure(
    name: str, where: str, pid: int, database: Database, args: argparse.Namespace
) -> Outcome:
    async with httpx.AsyncClient(base_url=f"http://{where}", timeout=30) as first:
        (await first.get("/")).raise_for_status()  # a page sets the CSRF cookie
        csrf = first.cookies["backrub_csrf"]
    began = time.perf_counter()
    pool = await create_sessions(where, csrf, args.sessions)
    print(
        f"{name}: {args.sessions} sessions created in {time.perf_counter() - began:.1f} s; each "
        f"sends an event every {PERIOD:g} s"
    )
    print(HEADER)
    main_run = await run_load(pool, args.seconds, pid, database)
    show("main run", main_run)
    outcome = Outcome(name, main_run, [main_run], None, pool)
    if args.no_search:
        return outcome
    best = args.sessions if main_run.held else None
    worst = None if main_run.held else args.sessions
    count = next_count(best, worst, args.sessions)
    search_began = time.perf_counter()
    for _ in range(MAX_SEARCH_RUNS):
        if count is None or time.perf_counter() - search_began > SEARCH_BUDGET_S:
            break
        if len(pool) < count:
            pool += await create_sessions(where, csrf, count - len(pool))
        run = await run_load(pool[:count], args.step_seconds, pid, database)
        outcome.runs.append(run)
        show("step", run)
        if run.held:
            best = count if best is None else max(best, count)
        else:
            worst = count if worst is None else min(worst, count)
        count = next_count(best, worst, count)
    outcome.best = best
    return outcome


async def played(
    name: str, where: str, pid: int, database: Database, args: argparse.Namespace
) -> Outcome:
    outcome = await measure(name, where, pid, database, args)
    await asyncio.gather(*(live.client.aclose() for live in outcome.pool))
    return outcome


# ---- the count, in the database itself -------------------------------------------------------


def count_saved(url: str, outcome: Outcome) -> None:
    """Each session's `progress_seq` against the events accepted for it, and its feedback rows
    against the feedback accepted; the sentence goes in `outcome.counted`."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            seqs = {r[0]: r[1] for r in conn.execute(text("SELECT id, progress_seq FROM sessions"))}
            rows = {
                r[0]: r[1]
                for r in conn.execute(
                    text("SELECT session_id, count(*) FROM feedback_events GROUP BY session_id")
                )
            }
    finally:
        engine.dispose()
    ours = {live.id: live for live in outcome.pool}
    differ = [
        key
        for key in seqs.keys() | rows.keys() | ours.keys()
        if key not in ours
        or seqs.get(key) != ours[key].accepted
        or rows.get(key, 0) != ours[key].feedback
    ]
    accepted = sum(live.accepted for live in outcome.pool)
    feedback = sum(live.feedback for live in outcome.pool)
    outcome.counts_match = not differ
    outcome.counted = (
        f"{len(seqs)} sessions, {sum(seqs.values())} events saved (progress_seq) for {accepted} "
        f"accepted, {sum(rows.values())} feedback rows for {feedback} accepted: "
        + ("all match" if not differ else f"{len(differ)} sessions DIFFER, e.g. {differ[:3]}")
    )


def run_backend(name: str, env: dict[str, str], url: str, args: argparse.Namespace) -> Outcome:
    database = Database()
    if url.startswith("postgresql"):
        admin = args.postgres.replace("postgresql+psycopg://", "postgresql://") + "/postgres"
        database = Database(url.rsplit("/", 1)[1], admin)
    with tempfile.TemporaryFile("w+") as log:
        with server(args.workers, env, log) as (where, pid):
            outcome = asyncio.run(played(name, where, pid, database, args))
        log.seek(0)
        stderr = log.read()
    if "Traceback" in stderr or "database is locked" in stderr:
        print("  server stderr:\n" + stderr[:3000])
    count_saved(url, outcome)
    print(f"  counted in the database: {outcome.counted}", flush=True)
    return outcome


# ---- the summary -----------------------------------------------------------------------------


def summary(outcomes: list[Outcome], args: argparse.Namespace) -> bool:
    """The figures a reader wants, one block; True when no request failed and the counts match."""
    print(
        f"\nSummary: backrub serve --workers {args.workers}, each session an event every "
        f"{PERIOD:g} s; aim: {AIM_SESSIONS} sessions at p99 < {AIM_P99_MS:.0f} ms, 0 failed, "
        "every accepted event in the database"
    )
    passed = True
    for o in outcomes:
        m = o.main
        failed_any = sum(r.failed for r in o.runs)
        met = m.sessions >= AIM_SESSIONS and m.held and o.counts_match
        print(f"  {o.name}")
        print(
            f"    main run      {m.sessions} sessions, {m.seconds:.0f} s: {m.sent} events sent "
            f"({m.feedback} feedback), {m.accepted} accepted, {m.failed} failed; "
            f"p50 {m.p50:.1f} ms, p99 {m.p99:.1f} ms"
        )
        print(f"    in the DB     {o.counted}")
        if not args.no_search:
            held = f"{o.best} sessions" if o.best else "none of the runs"
            tried = ", ".join(f"{r.sessions} {'held' if r.held else 'not'}" for r in o.runs)
            print(f"    most held     {held} at p99 < {AIM_P99_MS:.0f} ms ({tried})")
        database = (
            f"PostgreSQL {m.database_cpu:.0%}, {m.database_per_event:.2f} ms an event, "
            f"{m.connections} connections opened; "
            if o.name == "PostgreSQL"
            else ""
        )
        print(
            f"    CPU           server {m.server_cpu:.0%} of a core, {m.cpu_per_event:.2f} ms an "
            f"event; {database}generator {m.generator_cpu:.0%}, its loop late "
            f"{m.loop_lag_p99 * 1000:.0f} ms (p99)"
            + ("  (part of the latency)" if m.loop_lag_p99 >= MAX_LOOP_LAG_S else "")
        )
        print(
            f"    aim           {'met' if met else 'NOT met'}; {failed_any} failed requests in "
            f"all runs"
        )
        passed &= failed_any == 0 and o.counts_match
    return passed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", type=int, default=AIM_SESSIONS, help="the main run's")
    parser.add_argument("--seconds", type=float, default=60.0, help="the main run's length")
    parser.add_argument("--step-seconds", type=float, default=20.0, help="each search run's")
    parser.add_argument("--no-search", action="store_true", help="the main run only")
    parser.add_argument("--workers", type=int, default=2, help="backrub serve --workers")
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--postgres", default=POSTGRES, help="server URL, without a database")
    args = parser.parse_args()
    # Ctrl-C (even when started where SIGINT is ignored) and SIGTERM both unwind through the
    # finally blocks that stop the server and drop the database.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    folder = Path(tempfile.mkdtemp(prefix="backrub-load-"))
    env = {
        **os.environ,
        "BACKRUB_DATA_DIR": str(folder / "data"),
        "BACKRUB_CACHE_DIR": str(folder / "cache"),
    }
    env.pop("BACKRUB_DATABASE_URL", None)
    print(
        f"backrub serve --workers {args.workers} on {LOCAL}; load from one asyncio process (httpx, "
        f"a connection per session) on the same {os.cpu_count()} cores. server, gen.: CPU used "
        "(100 % = one core); ms/ev: the server's CPU per event; db: PostgreSQL's backends' CPU; "
        "conn: connections opened to PostgreSQL; lag: how late the generator's loop woke (p99)"
    )
    outcomes = []
    try:
        if args.backend in ("sqlite", "both"):
            url = f"sqlite:///{folder / 'data' / 'backrub.db'}"
            outcomes.append(run_backend("SQLite", env, url, args))
        if args.backend in ("postgresql", "both"):
            with postgres_database(args.postgres, "load") as url:
                pg_env = {**env, "BACKRUB_DATABASE_URL": url}
                outcomes.append(run_backend("PostgreSQL", pg_env, url, args))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    sys.exit(0 if summary(outcomes, args) else 1)


if __name__ == "__main__":
    main()
