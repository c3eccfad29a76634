"""The live session and its history, driven as a person (or a script) would."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from typing import TYPE_CHECKING

import icalendar
import pytest
from typer.testing import CliRunner

from backrub.cli.main import make_app

if TYPE_CHECKING:
    from pathlib import Path

    from backrub.core.catalogue import Catalogue

runner = CliRunner()
FAST = ["--speed", "1000", "--minutes", "15"]


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("BACKRUB_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


def run(catalogue: Catalogue, *args: str, input: str | None = None) -> tuple[int, str, str]:
    result = runner.invoke(
        make_app(catalogue), list(args), input=input, env={"COLUMNS": "160"}, terminal_width=160
    )
    return result.exit_code, result.stdout, result.stderr


def history(catalogue: Catalogue) -> list[dict[str, object]]:
    code, out, err = run(catalogue, "history", "--json")
    assert code == 0, err
    sessions: list[dict[str, object]] = json.loads(out)["sessions"]
    return sessions


def test_unattended_session_is_guided_and_saved(catalogue: Catalogue, data_dir: Path) -> None:
    code, out, err = run(
        catalogue, "start", "--none", "--before", "7", "--after", "3", "--yes",
        "--mode", "partner", "--focus", "shoulders=8", *FAST,
    )  # fmt: skip
    assert code == 0, err
    steps = [line for line in out.splitlines() if "] Step " in line]
    assert steps[0].startswith("[ 0:00] Step 1 of ")
    count = int(steps[0].split(" of ")[1].split(".")[0])
    assert len(steps) == count
    assert "Ask: is the pressure right?" in out
    assert "[15:00] That's the end." in out
    assert "Saved. Tension 7 → 3." in out
    (saved,) = history(catalogue)
    assert saved["status"] == "finished"
    assert saved["tension_before"] == 7 and saved["tension_after"] == 3
    assert saved["seconds_done"] == 900
    assert saved["verdict"] == "clear"


def test_stop_verdict_starts_nothing(catalogue: Catalogue, data_dir: Path) -> None:
    code, out, _ = run(catalogue, "start", "--has", "pregnancy", "--yes", *FAST)
    assert code == 3
    assert "Pregnancy" in out and "Step 1" not in out
    assert history(catalogue) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--before", "11"], "--before must be 0 to 10 (got 11)."),
        (["--after", "x"], "--after must be a whole number 0 to 10 (got 'x')."),
        (["--speed", "0"], "--speed must be a number above 0 and at most 1000 (got '0')."),
        (["--minutes", "90"], "minutes must be 15 to 60 (got 90)."),
        (["--focus", "knee"], "Unknown region 'knee'"),
    ],
)
def test_start_bad_input_saves_nothing(
    catalogue: Catalogue, data_dir: Path, args: list[str], message: str
) -> None:
    base = ["start", "--none", "--before", "5", "--after", "2", "--yes", "--speed", "1000"]
    code, _, err = run(catalogue, *base, *args)
    assert code == 2
    assert message in err
    assert history(catalogue) == []


def test_asks_tension_until_it_is_valid(catalogue: Catalogue, data_dir: Path) -> None:
    answers = "\n".join(["", "eleven", "12", "6", "2", "sore left shoulder"]) + "\n"
    code, out, err = run(catalogue, "start", "--none", *FAST, input=answers)
    assert code == 0, err
    assert "How tense is your back, 0–10?" in out
    assert "tension must be a whole number 0 to 10 (got 'eleven')." in out
    assert "tension must be 0 to 10 (got 12)." in out
    (saved,) = history(catalogue)
    assert (saved["tension_before"], saved["tension_after"]) == (6, 2)
    assert saved["note"] == "sore left shoulder"


def test_history_stats_remind_export_forget(
    catalogue: Catalogue, data_dir: Path, tmp_path: Path
) -> None:
    for before, after in ((8, 4), (6, 3)):
        code, _, err = run(
            catalogue, "start", "--none", "--before", str(before), "--after", str(after),
            "--yes", "--focus", "lower-back=7", *FAST,
        )  # fmt: skip
        assert code == 0, err
    code, out, _ = run(catalogue, "history")
    assert code == 0
    assert "8 → 4" in out and "6 → 3" in out and "lower back" in out

    code, out, _ = run(catalogue, "stats", "--json")
    stats = json.loads(out)
    assert stats["sessions"] == 2
    assert stats["average_drop"] == pytest.approx(3.5)
    assert stats["regions"][0]["region"] == "lower-back"
    assert 7 <= stats["interval_days"] <= 30
    code, out, _ = run(catalogue, "stats")
    assert "Tension eases by 3.5 points" in out and "What helps" in out

    ics = tmp_path / "backrub.ics"
    code, out, err = run(catalogue, "remind", "--every", "auto", "--at", "19:30", "-o", str(ics))
    assert code == 0, err
    event = icalendar.Calendar.from_ical(ics.read_bytes()).walk("VEVENT")[0]
    assert event.decoded("dtstart").hour == 19
    assert event["rrule"]["FREQ"] in (["WEEKLY"], ["MONTHLY"])

    dump = tmp_path / "mine.json"
    code, out, _ = run(catalogue, "export", "-o", str(dump))
    assert code == 0 and "Wrote 2 session(s)" in out
    exported = json.loads(dump.read_text())
    assert len(exported["sessions"]) == 2
    assert exported["sessions"][0]["plan"]["steps"]

    code, out, _ = run(catalogue, "forget", input="n\n")
    assert "Nothing was deleted." in out and len(history(catalogue)) == 2
    code, out, _ = run(catalogue, "forget", "--yes")
    assert code == 0 and "Deleted 2 session(s)" in out
    assert history(catalogue) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--at", "25:00"], "--at must be a time of day as HH:MM"),
        (["--every", "daily"], "--every must be one of: weekly, fortnightly, monthly, auto"),
        (["--minutes", "5"], "minutes must be 15 to 60"),
        (["-o", "/nonexistent/dir/x.ics"], "Cannot write /nonexistent/dir/x.ics"),
    ],
)
def test_remind_bad_input(
    catalogue: Catalogue, data_dir: Path, args: list[str], message: str
) -> None:
    code, _, err = run(catalogue, "remind", *args)
    assert code == 2
    assert message in err


def test_voice_speaks_each_cue_or_says_it_cannot(
    catalogue: Catalogue, data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    code, out, _ = run(catalogue, "start", "--none", "--before", "4", "--after", "2", "--yes",
                       "--voice", *FAST)  # fmt: skip
    assert code == 0
    assert "No text-to-speech engine found (install espeak-ng): running silent." in out

    # A stand-in engine at the process boundary records what it is asked to say.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    spoken = tmp_path / "spoken.txt"
    engine = bin_dir / "espeak-ng"
    engine.write_text(f'#!/bin/sh\nprintf "%s\\n" "$3" >> {spoken}\n')
    engine.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    code, out, _ = run(catalogue, "start", "--none", "--before", "4", "--after", "2", "--yes",
                       "--voice", "--speed", "200", "--minutes", "15")  # fmt: skip
    assert code == 0
    time.sleep(0.3)
    said = spoken.read_text()
    assert "Step 1 of" in said and "That's the end." in said


def test_a_killed_session_resumes_where_it_was(catalogue: Catalogue, data_dir: Path) -> None:
    env = {**os.environ, "BACKRUB_DATA_DIR": str(data_dir)}
    cmd = [sys.executable, "-m", "backrub", "start", "--none", "--before", "6", "--yes",
           "--speed", "100", "--minutes", "15"]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if "Step 3 of" in line:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    (saved,) = history(catalogue)
    assert saved["status"] == "active"

    code, out, err = run(catalogue, "start", "--resume", "--after", "2", "--yes", "--speed", "1000")
    assert code == 0, err
    assert "Picking up where you left off." in out
    assert "Step 1 of" not in out and "Step 2 of" not in out  # not started over
    assert "That's the end." in out
    (saved,) = history(catalogue)
    assert saved["status"] == "finished" and saved["tension_after"] == 2


def test_resume_with_nothing_to_resume(catalogue: Catalogue, data_dir: Path) -> None:
    code, _, err = run(catalogue, "start", "--resume", "--yes")
    assert code == 2
    assert "There is no unfinished session to resume" in err


def test_a_bad_database_url_is_one_sentence(
    catalogue: Catalogue, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BACKRUB_DATABASE_URL", "not a url at all")
    code, out, err = run(catalogue, "history")
    assert code == 2
    assert err.startswith("Error: BACKRUB_DATABASE_URL is not a database URL backrub can use")
    assert "Traceback" not in err and out == ""


def test_a_database_from_a_newer_backrub_is_refused_and_kept(
    catalogue: Catalogue, data_dir: Path
) -> None:
    code, _, err = run(
        catalogue, "start", "--none", "--before", "5", "--after", "1", "--yes", *FAST
    )
    assert code == 0, err
    database = data_dir / "backrub.db"
    with sqlite3.connect(database) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999'")
    code, _, err = run(catalogue, "history")
    assert code == 2
    assert "This database was written by a newer backrub" in err
    with sqlite3.connect(database) as conn:
        assert conn.execute("SELECT count(*) FROM sessions").fetchone() == (1,)
        assert conn.execute("SELECT version_num FROM alembic_version").fetchone() == ("9999",)
