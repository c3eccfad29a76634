"""Concurrency: two processes × 1,000 progress saves on one session, through two app processes.

Issue 6: "two processes × 1,000 progress updates on the same session: no 'database is locked'
error, the final position is the latest written, never a regression."

How: `python -m backrub serve --port 0 --workers 2` (two uvicorn app processes sharing the socket)
on a fresh SQLite file, then on a PostgreSQL database of its own (created and dropped here). One
session is created; two client OS processes (multiprocessing, spawned) wait for a shared "go" and
then each send 1,000 `progress` events to it back to back, one at a time as the player's outbox
does. Each event takes the next `seq` from a counter the two processes share, just before it is
sent, so the two streams interleave as two devices on one session would, and a request that
overtakes another in the server is refused; `active` = seq / 2 s (each seq its own position).
Each process has its own keep-alive connection, which either worker may have accepted.
Meanwhile a watcher in this process GETs the session back to back and checks that the saved `seq`
and `active` never go down. Checks:

- no answer other than 200 (no 5xx), and no "database is locked" (nor a traceback) in the server's
  stderr;
- the final saved `seq` is the highest acknowledged one (200 with `accepted: true`) and its
  `active` is that event's `active`: the latest written wins;
- never a regression: neither the watcher nor the acknowledgements saw `seq` go down.

An event whose `seq` is not above the stored one is refused (`accepted: false`) by design: those
are counted, not failures.

    python bench/concurrency.py [--saves 1000] [--backend sqlite|postgresql|both]
                                [--postgres postgresql+psycopg://postgres@127.0.0.1:5432]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from serving import POSTGRES, SESSION_BODY, postgres_database, server

if TYPE_CHECKING:
    from multiprocessing.queues import Queue
    from multiprocessing.sharedctypes import Synchronized
    from multiprocessing.synchronize import Barrier as BarrierType


# ---- a client process ------------------------------------------------------------------------


def active_of(seq: int) -> float:
    return seq / 2


def client_process(
    where: str,
    token: str,
    session: str,
    saves: int,
    counter: Synchronized[int],
    go: BarrierType,
    results: Queue[dict[str, Any]],
) -> None:
    """Send `saves` progress events, each with the next seq of the shared counter."""
    statuses: dict[str, int] = {}
    accepted = refused = 0
    acked = 0  # the highest seq acknowledged
    regressions = 0  # an answer whose saved seq is below one acknowledged earlier
    latencies: list[float] = []
    with httpx.Client(base_url=f"http://{where}", timeout=60) as client:
        client.cookies.set("backrub_csrf", token)
        headers = {"X-CSRF-Token": token}
        path = f"/api/v1/sessions/{session}/events"
        go.wait()  # both processes and the watcher start together
        for _ in range(saves):
            with counter.get_lock():
                counter.value += 1
                seq = counter.value
            body = {"kind": "progress", "active": active_of(seq), "seq": seq, "fired": []}
            began = time.perf_counter()
            answer = client.post(path, json=body, headers=headers)
            latencies.append(time.perf_counter() - began)
            statuses[str(answer.status_code)] = statuses.get(str(answer.status_code), 0) + 1
            if answer.status_code != 200:
                continue
            data = answer.json()
            saved = int(data["seq"] if "seq" in data else data["state"]["seq"])
            if data["accepted"]:
                accepted += 1
                acked = max(acked, seq)
            else:
                refused += 1
            if saved < acked:
                regressions += 1
    latencies.sort()
    results.put(
        {
            "statuses": statuses,
            "accepted": accepted,
            "refused": refused,
            "acked": acked,
            "regressions": regressions,
            "p50": latencies[len(latencies) // 2] * 1000,
            "p99": latencies[int(len(latencies) * 0.99)] * 1000,
        }
    )


# ---- the run ---------------------------------------------------------------------------------


@dataclass
class Watch:
    """The watcher's view: the session read back to back while both write."""

    reads: int = 0
    regressions: list[str] = field(default_factory=list)
    errors: int = 0


def watch(client: httpx.Client, path: str, stop: threading.Event, seen: Watch) -> None:
    last_seq, last_active = 0, 0.0
    while not stop.is_set():
        answer = client.get(path)
        if answer.status_code != 200:
            seen.errors += 1
            continue
        state = answer.json()["state"]
        seen.reads += 1
        seq, active = int(state["seq"]), float(state["active"])
        if seq < last_seq or active < last_active:
            seen.regressions.append(f"seq {last_seq} → {seq}, active {last_active} → {active}")
        last_seq, last_active = max(seq, last_seq), max(active, last_active)


def run_backend(name: str, env: dict[str, str], saves: int) -> bool:
    with tempfile.TemporaryFile("w+") as log:
        with (
            server(2, env, log) as (where, _pid),
            httpx.Client(base_url=f"http://{where}", timeout=60) as api,
        ):
            api.get("/").raise_for_status()  # a page sets the CSRF cookie
            token = api.cookies["backrub_csrf"]
            made = api.post("/api/v1/sessions", json=SESSION_BODY, headers={"X-CSRF-Token": token})
            session = str(made.raise_for_status().json()["id"])
            path = f"/api/v1/sessions/{session}"
            spawn = multiprocessing.get_context("spawn")
            counter = spawn.Value("i", 0)
            go = spawn.Barrier(3)
            queue: Queue[dict[str, Any]] = spawn.Queue()
            procs = [
                spawn.Process(
                    target=client_process,
                    args=(where, token, session, saves, counter, go, queue),
                )
                for _ in range(2)
            ]
            seen = Watch()
            stop = threading.Event()
            watcher = threading.Thread(target=watch, args=(api, path, stop, seen))
            try:
                for proc in procs:
                    proc.start()
                go.wait(timeout=120)  # both processes ready
                watcher.start()
                began = time.perf_counter()
                results = [queue.get(timeout=600) for _ in procs]
                wall = time.perf_counter() - began
            finally:
                stop.set()
                if watcher.is_alive():
                    watcher.join()
                for proc in procs:
                    proc.join(timeout=10)
                    if proc.is_alive():
                        proc.kill()
                        proc.join()
            final = api.get(path).raise_for_status().json()["state"]
        log.seek(0)
        stderr = log.read()
    return report(name, saves, results, final, seen, stderr, wall)


def report(
    name: str,
    saves: int,
    results: list[dict[str, Any]],
    final: dict[str, Any],
    seen: Watch,
    stderr: str,
    wall: float,
) -> bool:
    statuses: dict[str, int] = {}
    for result in results:
        for status, count in result["statuses"].items():
            statuses[status] = statuses.get(status, 0) + count
    acked = max(result["acked"] for result in results)
    not_ok = sum(count for status, count in statuses.items() if status != "200")
    errors_5xx = sum(count for status, count in statuses.items() if status.startswith("5"))
    locked = stderr.count("database is locked")
    tracebacks = stderr.count("Traceback")
    latest = int(final["seq"]) == acked and float(final["active"]) == active_of(acked)
    regressions = len(seen.regressions) + sum(result["regressions"] for result in results)
    print(f"{name}: 2 processes × {saves} progress saves, one session, 2 app processes")
    for number, result in enumerate(results, 1):
        print(
            f"  process {number}: {result['accepted']:5d} accepted, {result['refused']:5d} refused "
            f"(seq not above the saved one), p50 {result['p50']:.1f} ms, "
            f"p99 {result['p99']:.1f} ms"
        )
    print(
        f"  {2 * saves} saves in {wall:.1f} s ({2 * saves / wall:.0f}/s); answers "
        f"{dict(sorted(statuses.items()))}; 5xx: {errors_5xx}; "
        f'"database is locked": {locked}; tracebacks: {tracebacks}\n'
        f"  final: seq {final['seq']}, active {final['active']} — highest acknowledged seq "
        f"{acked} (active {active_of(acked)}): {'the latest written' if latest else 'WRONG'}\n"
        f"  regressions: {regressions} (watcher: {seen.reads} reads, "
        f"{len(seen.regressions)} went down; acknowledgements: "
        f"{sum(result['regressions'] for result in results)})"
    )
    for regression in seen.regressions[:5]:
        print(f"  REGRESSION {regression}")
    if tracebacks:
        print("  server stderr:\n" + stderr[stderr.index("Traceback") :][:2000])
    return not_ok == 0 and locked == 0 and tracebacks == 0 and latest and regressions == 0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--saves", type=int, default=1000, help="progress saves per process")
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--postgres", default=POSTGRES, help="server URL, without a database")
    args = parser.parse_args()
    # Ctrl-C (even when started where SIGINT is ignored) and SIGTERM both unwind through the
    # finally blocks that stop the server and drop the database.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    folder = Path(tempfile.mkdtemp(prefix="backrub-concurrency-"))
    env = {
        **os.environ,
        "BACKRUB_DATA_DIR": str(folder / "data"),
        "BACKRUB_CACHE_DIR": str(folder / "cache"),
    }
    env.pop("BACKRUB_DATABASE_URL", None)
    passed = True
    try:
        if args.backend in ("sqlite", "both"):
            passed &= run_backend("SQLite", env, args.saves)
        if args.backend in ("postgresql", "both"):
            with postgres_database(args.postgres, "concurrency") as url:
                pg_env = {**env, "BACKRUB_DATABASE_URL": url}
                passed &= run_backend("PostgreSQL", pg_env, args.saves)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print("all checks passed" if passed else "CHECKS FAILED")
    sys.exit(0 if passed else 1)


if __name__ == "__main__":
    main()
