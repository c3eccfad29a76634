"""Two terminals writing at once, and a terminal killed mid-write, never corrupt the history.

Real processes on a real database file (and the PostgreSQL server for the two writers).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import text
from store_states import state_at

from backrub.store import open_store

if TYPE_CHECKING:
    from collections.abc import Callable

    from backrub.config import Settings
    from backrub.store import SessionStore

    Make = Callable[..., str]

WRITER = Path(__file__).with_name("store_writer.py")
SAVES = 300


def writer(*args: object) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(WRITER), *map(str, args)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize("kind", ["progress", "feedback"])
def test_two_writers_at_once_lose_nothing(
    store: SessionStore, settings: Settings, new_session: Make, kind: str
) -> None:
    session_id = new_session()
    url = settings.database_url
    # Interleaved sequence numbers: odd from one process, even from the other.
    procs = [writer(kind, url, session_id, first, 2, SAVES) for first in (1, 2)]
    try:
        for proc in procs:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "ready", proc.stderr
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        results = [proc.communicate(timeout=60) for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    for proc, (out, err) in zip(procs, results, strict=True):
        assert "locked" not in err
        assert proc.returncode == 0, err
        assert out.startswith("applied ")
    record = store.get(session_id)
    assert record.seconds_done == 2 * SAVES
    last = state_at(2 * SAVES, tender=[] if kind == "progress" else [f"region-{2 * SAVES}"])
    assert store.plan_and_state(session_id)[1] == last
    if kind == "progress":
        applied = sum(int(out.split()[1]) for out, _ in results)
        assert 1 <= applied <= 2 * SAVES
    else:
        assert len(record.feedback) == 2 * SAVES
        assert record.tender == (f"region-{2 * SAVES}",)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_killed_writer_leaves_a_sound_database(
    store: SessionStore, settings: Settings, new_session: Make
) -> None:
    session_id = new_session()
    proc = writer("endless", settings.database_url, session_id)
    assert proc.stdout is not None
    try:
        # Let it commit a good number of saves, then kill it wherever it is.
        deadline = time.monotonic() + 30
        committed = 0
        while committed < 150:
            assert time.monotonic() < deadline and proc.poll() is None, proc.stderr
            committed = int(proc.stdout.readline() or 0)
        proc.send_signal(signal.SIGKILL)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    last_reported = max([committed, *(int(line) for line in out.split() if line.isdigit())])

    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
        assert conn.exec_driver_sql("PRAGMA foreign_key_check").all() == []
    record = store.get(session_id)
    seq = record.seconds_done
    # Everything it said was committed is there, and each save is whole: its event, its
    # progress and its tender region, or none of them.
    assert seq >= last_reported
    assert len(record.feedback) == seq
    assert record.tender == (f"region-{seq}",)
    assert store.plan_and_state(session_id)[1] == state_at(seq, tender=[f"region-{seq}"])

    # And the store still works, from a fresh start too.
    assert store.save_progress(
        session_id, seq=seq + 1, seconds_done=seq + 1, state=state_at(seq + 1)
    )
    again = open_store(settings)
    try:
        assert again.get(session_id).seconds_done == seq + 1
        with again.engine.connect() as conn:
            assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
    finally:
        again.close()
