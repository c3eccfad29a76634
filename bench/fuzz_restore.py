"""Fuzzing the restore parser with atheris (coverage-guided, libFuzzer): `check_backup`, which
reads and validates a backup file without touching a database, is fed mutated bytes for a fixed
time. Its own `BackupError`/`StoreError` sentences are the expected answer to a bad file; any
other exception is a crash. Crashes are counted (the run goes on), each distinct one printed once
and its input saved.

The seed corpus is a real backup (every table) written by `write_backup` from a small SQLite
database, plain and gzip'd, with a dictionary of the format's field names and values.

    pip install -e '.[fuzz]'
    python bench/fuzz_restore.py [--seconds 600] [--crashes DIR]
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import os
import sys
import tempfile
import time
import traceback
from datetime import UTC, datetime, timedelta
from pathlib import Path

import atheris

from backrub.config import Settings
from backrub.core.models import FeedbackEvent, Focus
from backrub.store import SessionStore, make_engine, migrate
from backrub.store.accounts import AccountStore
from backrub.store.errors import StoreError
from backrub.store.remote import RemoteStore
from backrub.store.tables import Base

with atheris.instrument_imports(
    include=["backrub.store.backup", "backrub.store.backup_rows", "backrub.store.validation"]
):
    import backrub.store

    # Imported already (by the store's other modules): imported again here, instrumented.
    sys.modules.pop("backrub.store.validation", None)
    del backrub.store.validation
    from backrub.store import backup

NOW = datetime(2025, 3, 1, 19, 30, tzinfo=UTC)


def seed_backup(folder: Path) -> bytes:
    """A backup with rows in every table, as backrub writes it."""
    engine = make_engine(
        Settings(data_dir=folder, cache_dir=folder, database_url=f"sqlite:///{folder}/seed.db")
    )
    migrate(engine)
    user = AccountStore(engine).create_user(
        email="a@example.org",
        password_hash="$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA",  # noqa: S106 (not a secret)
        now=NOW,
    )
    AccountStore(engine).open_login(
        user_id=user.id, token_hash="ab" * 32, now=NOW, expires_at=NOW + timedelta(days=1)
    )
    store = SessionStore(engine, user.id)
    session = store.create(
        started_at=NOW, mode="partner", minutes_planned=20,
        focus=(Focus("shoulders", 8),), verdict="caution", verdict_conditions=("sunburn",),
        tension_before=7, plan={"steps": [{"pressure": 2, "seconds": 90.5}]},
        state={"step": 0, "active": 0.0, "started": False, "fired": []},
    )  # fmt: skip
    store.add_feedback(
        session, event=FeedbackEvent("softer", 12.5, 0, "shoulders"), seq=1,
        seconds_done=12, state={"step": 0, "active": 12.5, "started": True, "fired": ["step:0"]},
        tender=("shoulders",),
    )  # fmt: skip
    RemoteStore(engine).open(owner=user.id, session_id=session, now=NOW)
    done = store.create(
        started_at=NOW, mode="self", minutes_planned=15, focus=(), verdict="clear",
        verdict_conditions=(), tension_before=None, plan={},
        state={"active": 0.0, "started": False, "fired": []},
    )  # fmt: skip
    store.finish(done, status="stopped", seconds_done=60, tension_after=2, note="ok", ended_at=NOW)
    path = folder / "seed.gz"
    backup.write_backup(engine, path, now=NOW)
    engine.dispose()
    return gzip.decompress(path.read_bytes())


def dictionary() -> list[str]:
    words = {"table", "row", "end", "format", "version", "schema", backup.FORMAT, "0002"}
    for table in Base.metadata.sorted_tables:
        words.add(table.name)
        words.update(column.name for column in table.columns)
    words.update(("active", "finished", "stopped", "self", "partner", "clear", "caution"))
    words.update(("good", "softer", "firmer", "tender", "region", "tension"))
    tokens = [json.dumps(w) for w in sorted(words)]
    tokens += ["null", "true", "false", "-1", "1e999", "NaN", "2147483648", "{}", "[]"]
    tokens += ['"2025-03-01T19:30:00+00:00"', '"0001-01-01T00:00:00+14:00"', '"\\u0000"']
    tokens += ['"\\ud800"', "\\n"]
    return [f"{json.dumps(t)}" for t in tokens]


def fuzzed_value(fdp: atheris.FuzzedDataProvider, depth: int = 0) -> object:
    """A JSON value of any kind, for the structured half of the inputs."""
    kind = fdp.ConsumeIntInRange(0, 9 if depth < 3 else 6)
    if kind == 0:
        return None
    if kind == 1:
        return fdp.ConsumeBool()
    if kind == 2:
        return fdp.ConsumeInt(8)
    if kind == 3:
        return fdp.ConsumeRegularFloat()
    if kind == 4:
        return fdp.ConsumeUnicode(fdp.ConsumeIntInRange(0, 40))
    if kind == 5:
        return "2025-03-01T19:30:00" + fdp.ConsumeUnicode(fdp.ConsumeIntInRange(0, 8))
    if kind == 6:
        return fdp.PickValueInList(["active", "finished", "partner", "good", "0002", ""])
    if kind == 7:
        return [fuzzed_value(fdp, depth + 1) for _ in range(fdp.ConsumeIntInRange(0, 3))]
    size = fdp.ConsumeIntInRange(0, 3)
    return {fdp.ConsumeUnicode(6): fuzzed_value(fdp, depth + 1) for _ in range(size)}


def structured(seed_lines: list[dict[str, object]], data: bytes) -> bytes:
    """The seed backup with a few of its values replaced, keys dropped or lines moved: inputs
    that get past the JSON parser to the validators."""
    fdp = atheris.FuzzedDataProvider(data)
    lines = json.loads(json.dumps(seed_lines))
    for _ in range(fdp.ConsumeIntInRange(1, 3)):
        index = fdp.ConsumeIntInRange(0, len(lines) - 1)
        line = lines[index]
        target = line.get("row", line.get("end", line))
        action = fdp.ConsumeIntInRange(0, 5)
        keys = sorted(target)
        key = fdp.PickValueInList(keys) if keys else "x"
        if action <= 3:
            target[key] = fuzzed_value(fdp)
        elif action == 4:
            target.pop(key, None)
        else:
            lines.insert(fdp.ConsumeIntInRange(0, len(lines)), lines.pop(index))
    text = "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines)
    return text.encode("utf-8", "surrogatepass")


class Target:
    def __init__(self, seconds: float, crash_dir: Path, seed: bytes) -> None:
        self.seed_lines = [json.loads(line) for line in seed.splitlines()]
        self.deadline = time.monotonic() + seconds
        self.started = time.monotonic()
        self.crash_dir = crash_dir
        self.runs = 0
        self.refused = 0
        self.crashes = 0
        self.distinct: dict[str, int] = {}

    def __call__(self, data: bytes) -> None:
        self.runs += 1
        # Half the inputs are bytes as libFuzzer mutates them; half are edits of the seed.
        if data[:1] == b"~":
            data = structured(self.seed_lines, data[1:])
        try:
            backup.check_backup(io.BytesIO(data))
        except StoreError:  # BackupError is one: the sentence a bad file deserves
            self.refused += 1
        except Exception as error:  # a crash: anything else; counted, and the run goes on
            self.crash(data, error)
        if self.runs % 1024 == 0 and time.monotonic() > self.deadline:
            self.report()

    def crash(self, data: bytes, error: Exception) -> None:
        self.crashes += 1
        frame = traceback.extract_tb(error.__traceback__)[-1]
        key = f"{type(error).__name__} at {Path(frame.filename).name}:{frame.lineno}"
        if key not in self.distinct:
            self.crash_dir.mkdir(parents=True, exist_ok=True)
            (self.crash_dir / f"crash-{len(self.distinct)}").write_bytes(data)
            print(f"CRASH {key}: {error!r}"[:500], flush=True)
        self.distinct[key] = self.distinct.get(key, 0) + 1

    def report(self) -> None:
        elapsed = time.monotonic() - self.started
        print(
            f"\nfuzz_restore: {self.runs} executions in {elapsed:.0f} s "
            f"({self.runs / elapsed:.0f}/s), {self.refused} refused with a sentence, "
            f"{self.crashes} crashes ({len(self.distinct)} distinct)",
            flush=True,
        )
        for key, count in self.distinct.items():
            print(f"  {count:>8}  {key}")
        sys.stdout.flush()
        # libFuzzer never returns to Python; leave with the verdict as the exit code.
        os._exit(1 if self.crashes else 0)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=600.0)
    parser.add_argument("--crashes", type=Path, default=Path("fuzz-crashes"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        folder = Path(work)
        seed = seed_backup(folder)
        corpus = folder / "corpus"
        corpus.mkdir()
        (corpus / "plain").write_bytes(seed)
        (corpus / "gzip").write_bytes(gzip.compress(seed, mtime=0))
        for number in range(16):
            (corpus / f"edit-{number}").write_bytes(b"~" + os.urandom(64))
        for number, line in enumerate(seed.splitlines(keepends=True)[1:]):
            (corpus / f"line-{number}").write_bytes(seed.splitlines(keepends=True)[0] + line)
        words = folder / "json.dict"
        words.write_text("\n".join(dictionary()) + "\n")
        target = Target(args.seconds, args.crashes, seed)
        atheris.Setup(
            [
                sys.argv[0],
                str(corpus),
                f"-dict={words}",
                f"-max_total_time={int(args.seconds) + 60}",
                "-max_len=20000",
                "-rss_limit_mb=2048",
                "-print_final_stats=1",
            ],
            target,
        )
        atheris.Fuzz()


if __name__ == "__main__":
    main()
