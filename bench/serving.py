"""What the serving benchmarks share (crash_safety, concurrency, load): the session they create,
`backrub serve --workers N` in a process group of its own, a PostgreSQL database of the run's
own, and the CPU time of chosen processes. Imported by the scripts beside it (`python bench/x.py`
puts bench/ on the path)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
LOCAL = "127.0.0.1"
POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432"
SESSION_BODY = {
    "mode": "partner",
    "minutes": 20,
    "focus": [{"region": "shoulders", "tension": 8}],
    "pressure": "medium",
    "tension_before": 7,
}


@contextlib.contextmanager
def server(workers: int, env: dict[str, str], log: IO[str]) -> Iterator[tuple[str, int]]:
    """`backrub serve --port 0 --workers N` in a process group of its own; yields (address, pid).

    Stopped with Ctrl-C's signal to the whole group (the supervisor and its workers), killed if
    that takes more than 15 s."""
    cmd = [sys.executable, "-m", "backrub", "serve", "--port", "0", "--workers", str(workers)]
    proc = subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=log, text=True, start_new_session=True
    )
    try:
        assert proc.stdout is not None  # noqa: S101  (for mypy: stdout is a pipe)
        line = proc.stdout.readline()
        if "http://" not in line:
            raise SystemExit(f"the server did not start: {line.strip()} (see its stderr)")
        yield line.split("http://", 1)[1].split()[0], proc.pid
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # a worker left behind
        if proc.stdout is not None:
            proc.stdout.close()


@contextlib.contextmanager
def postgres_database(server_url: str, label: str) -> Iterator[str]:
    """A fresh database on the server for this run, dropped afterwards; yields its URL."""
    import psycopg
    from psycopg import sql

    name = f"backrub_bench_{label}_{os.getpid()}"
    admin = server_url.replace("postgresql+psycopg://", "postgresql://") + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield f"{server_url}/{name}"
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def cpu_seconds(chosen: Callable[[int, int, int], bool]) -> float:
    """User + system CPU seconds so far of the live processes `chosen(pid, parent, group)`
    picks, all their threads included."""
    return sum(cpu_by_process(chosen).values())


def cpu_by_process(chosen: Callable[[int, int, int], bool]) -> dict[int, float]:
    """`cpu_seconds`, process by process."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            pid = int(entry.name)
            if chosen(pid, int(fields[1]), int(fields[2])):
                found[pid] = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return found
