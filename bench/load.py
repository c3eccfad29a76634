"""Load: simulated live sessions against `backrub serve --workers 2`, and how many it holds.

Issue 6: "200 simulated live sessions (each saving progress every 5 s and sending feedback now and
then) against 2 processes on 127.0.0.1 for 60 s: 0 failed requests, p99 latency reported; and the
maximum sessions held at p99 < 200 ms. Bounded in time, loopback only."

How: `python -m backrub serve --port 0 --workers 2` (two uvicorn app processes sharing the socket)
on a PostgreSQL database of its own (created and dropped here; `--backend sqlite` or `both` for
SQLite too). The sessions are created through the API first. Each simulated session is an asyncio
task that starts at a random moment in the first 5 s and then sends one event every 5 s on an
absolute schedule, as the player's outbox does — one at a time, `seq` rising by one, `active`
rising by 5 s, two cue ids given: a `progress` save, or one time in six a `feedback` (good,
softer or firmer at random: a re-plan and a stored feedback event). All go through one
`httpx.AsyncClient` with an unbounded pool, so no request waits for a connection. A request fails
when it does not answer 200 with `accepted: true` (nothing should be refused: each session's `seq`
only rises), or raises (a timeout is 30 s).

Latency is from sending a request to its answer. The load generator runs on the same 2 cores as
the server, so it is reported too: its CPU, and how late the sends started against their schedule
("lag": when the generator or the answers fall behind, the offered load drops and the latency of
the late requests is not counted — the lag shows it).

Then the step search: the same server, 20 s runs at 400, 800, 1600, … sessions (the first ones
reused, their `seq` going on), doubling while the run is held — p99 under 200 ms, no failed
request, and the generator keeping up (lag p99 under 1 s) — then runs halfway between the
last held and the first not held (halving the gap while it is over a quarter of the last held).
The largest held is the figure. Bounded: at most 5 search runs.

    python bench/load.py [--sessions 200] [--seconds 60] [--step-seconds 20] [--no-search]
                         [--backend postgresql|sqlite|both]
                         [--postgres postgresql+psycopg://postgres@127.0.0.1:5432]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from serving import LOCAL, POSTGRES, SESSION_BODY, cpu_seconds, postgres_database, server

PERIOD = 5.0  # seconds between one session's events
FEEDBACK_ONE_IN = 6
AIM_P99_MS = 200.0
MAX_LAG_S = 1.0  # a run where sends start later than this (p99) did not offer its load
MAX_SEARCH_RUNS = 5


def group_cpu(leader: int) -> float:
    """CPU seconds of every live process in the server's process group (supervisor, workers)."""
    return cpu_seconds(lambda _pid, _parent, group: group == leader)


# ---- the simulated sessions ------------------------------------------------------------------


@dataclass
class Live:
    """One session as its player keeps it between runs."""

    id: str
    seq: int = 0
    active: float = 0.0


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)  # seconds, answered requests
    lags: list[float] = field(default_factory=list)  # seconds a send started after its time
    failures: dict[str, int] = field(default_factory=dict)
    progress: int = 0
    feedback: int = 0

    def fail(self, why: str) -> None:
        self.failures[why] = self.failures.get(why, 0) + 1


async def play(
    client: httpx.AsyncClient, live: Live, start: float, until: float, tally: Tally
) -> None:
    """One session: an event every PERIOD seconds from a random offset, one at a time."""
    due = start + random.uniform(0, PERIOD)  # noqa: S311  (a jitter, not a secret)
    path = f"/api/v1/sessions/{live.id}/events"
    while due < until:
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        sent = time.perf_counter()
        tally.lags.append(sent - due)
        live.seq += 1
        live.active += PERIOD
        body: dict[str, Any] = {
            "kind": "progress",
            "active": min(live.active, 1150.0),  # inside the 20-minute timeline
            "seq": live.seq,
            "fired": ["step:0", "half:0"],
        }
        if random.randrange(FEEDBACK_ONE_IN) == 0:  # noqa: S311
            feeling = random.choice(["good", "softer", "firmer"])  # noqa: S311
            body |= {"kind": "feedback", "feedback": feeling}
            tally.feedback += 1
        else:
            tally.progress += 1
        try:
            answer = await client.post(path, json=body)
        except httpx.HTTPError as error:
            tally.fail(type(error).__name__)
        else:
            if answer.status_code != 200:
                tally.fail(f"HTTP {answer.status_code}")
            elif not answer.json()["accepted"]:
                tally.fail("refused")
            else:
                tally.latencies.append(time.perf_counter() - sent)
        due += PERIOD


@dataclass
class Run:
    sessions: int
    seconds: float
    requests: int
    progress: int
    feedback: int
    failures: dict[str, int]
    p50: float  # ms
    p99: float  # ms
    worst: float  # ms
    lag_p99: float  # s
    server_cpu: float  # share of one core, all app processes
    client_cpu: float

    @property
    def held(self) -> bool:
        return not self.failures and self.p99 < AIM_P99_MS and self.lag_p99 < MAX_LAG_S


def percentile(values: list[float], share: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


async def run_load(
    client: httpx.AsyncClient, sessions: list[Live], seconds: float, pid: int
) -> Run:
    tally = Tally()
    server_before, client_before = group_cpu(pid), os.times()
    start = time.perf_counter()
    await asyncio.gather(*(play(client, s, start, start + seconds, tally) for s in sessions))
    wall = time.perf_counter() - start
    server_used, client_after = group_cpu(pid) - server_before, os.times()
    client_used = (client_after.user - client_before.user) + (
        client_after.system - client_before.system
    )
    return Run(
        sessions=len(sessions),
        seconds=wall,
        requests=tally.progress + tally.feedback,
        progress=tally.progress,
        feedback=tally.feedback,
        failures=tally.failures,
        p50=percentile(tally.latencies, 0.50) * 1000,
        p99=percentile(tally.latencies, 0.99) * 1000,
        worst=max(tally.latencies, default=float("nan")) * 1000,
        lag_p99=percentile(tally.lags, 0.99),
        server_cpu=server_used / wall,
        client_cpu=client_used / wall,
    )


async def create_sessions(client: httpx.AsyncClient, count: int) -> list[Live]:
    gate = asyncio.Semaphore(8)

    async def one() -> Live:
        async with gate:
            answer = await client.post("/api/v1/sessions", json=SESSION_BODY)
            return Live(str(answer.raise_for_status().json()["id"]))

    return list(await asyncio.gather(*(one() for _ in range(count))))


def show(label: str, run: Run) -> None:
    failures = sum(run.failures.values())
    detail = f" {run.failures}" if run.failures else ""
    print(
        f"  {label:12s}{run.sessions:6d}{run.seconds:6.0f}{run.requests:8d}"
        f"{run.requests / run.seconds:7.1f}{failures:7d}{run.p50:8.1f}{run.p99:8.1f}"
        f"{run.worst:8.0f}{run.lag_p99:7.2f}{run.server_cpu:8.0%}{run.client_cpu:7.0%}"
        f"  {'held' if run.held else 'NOT held'}{detail}",
        flush=True,
    )


HEADER = (
    f"  {'':12s}{'sess.':>6s}{'s':>6s}{'req':>8s}{'req/s':>7s}{'failed':>7s}{'p50 ms':>8s}"
    f"{'p99 ms':>8s}{'max ms':>8s}{'lag s':>7s}{'server':>8s}{'client':>7s}"
)


async def measure(
    name: str,
    where: str,
    pid: int,
    *,
    sessions: int,
    seconds: float,
    step_seconds: float,
    search: bool,
) -> tuple[Run, int | None]:
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
    async with httpx.AsyncClient(base_url=f"http://{where}", timeout=30, limits=limits) as client:
        (await client.get("/")).raise_for_status()  # a page sets the CSRF cookie
        client.headers["X-CSRF-Token"] = client.cookies["backrub_csrf"]
        began = time.perf_counter()
        pool = await create_sessions(client, sessions)
        print(
            f"{name}: {sessions} sessions created in {time.perf_counter() - began:.1f} s; each "
            f"sends an event every {PERIOD:g} s"
        )
        print(HEADER)
        main_run = await run_load(client, pool, seconds, pid)
        show("main run", main_run)
        if not search:
            return main_run, None
        # The step search: double while held, then once halfway.
        best: int | None = sessions if main_run.held else None
        worst: int | None = None
        count = sessions * 2
        for _ in range(MAX_SEARCH_RUNS):
            if len(pool) < count:
                pool += await create_sessions(client, count - len(pool))
            run = await run_load(client, pool[:count], step_seconds, pid)
            show("step", run)
            if run.held:
                best = count
            else:
                worst = count
            if worst is None:
                count *= 2
            elif best is not None and worst - best > best // 4:
                count = (best + worst) // 2
            else:
                break
        return main_run, best


def run_backend(name: str, env: dict[str, str], args: argparse.Namespace) -> bool:
    with tempfile.TemporaryFile("w+") as log:
        with server(2, env, log) as (where, pid):
            main_run, best = asyncio.run(
                measure(
                    name,
                    where,
                    pid,
                    sessions=args.sessions,
                    seconds=args.seconds,
                    step_seconds=args.step_seconds,
                    search=not args.no_search,
                )
            )
        log.seek(0)
        stderr = log.read()
    print(
        f"  {name}, {args.sessions} sessions for {main_run.seconds:.0f} s: {main_run.requests} "
        f"requests ({main_run.progress} progress, {main_run.feedback} feedback), "
        f"{sum(main_run.failures.values())} failed, p50 {main_run.p50:.1f} ms, "
        f"p99 {main_run.p99:.1f} ms"
    )
    if not args.no_search:
        held = f"{best} sessions" if best else "none of the steps"
        print(f"  most sessions held at p99 < {AIM_P99_MS:.0f} ms: {held}")
    if "Traceback" in stderr or "database is locked" in stderr:
        print("  server stderr:\n" + stderr[:3000])
    return not main_run.failures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=60.0, help="the main run's length")
    parser.add_argument("--step-seconds", type=float, default=20.0, help="each search run's")
    parser.add_argument("--no-search", action="store_true", help="the main run only")
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="postgresql")
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
        f"backrub serve --workers 2 on {LOCAL}; load from one asyncio process (httpx) on the "
        f"same {os.cpu_count()} cores. lag: how late sends started (p99); server, client: CPU "
        "used (100 % = one core)"
    )
    passed = True
    try:
        if args.backend in ("postgresql", "both"):
            with postgres_database(args.postgres, "load") as url:
                passed &= run_backend("PostgreSQL", {**env, "BACKRUB_DATABASE_URL": url}, args)
        if args.backend in ("sqlite", "both"):
            passed &= run_backend("SQLite", env, args)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    sys.exit(0 if passed else 1)


if __name__ == "__main__":
    main()
