"""A second process writing to the store, for the concurrency tests (not a test module).

python store_writer.py progress|feedback URL SESSION FIRST_SEQ STEP COUNT
    waits for "go" on stdin, then makes COUNT progress saves (or feedback with progress)
    with seq FIRST_SEQ, FIRST_SEQ + STEP, …
python store_writer.py endless URL SESSION
    saves feedback and progress until it is killed, printing each seq once it is committed
"""

from __future__ import annotations

import sys
from pathlib import Path

from store_states import state_at

from backrub.config import Settings
from backrub.core.models import FeedbackEvent
from backrub.store import SessionStore, open_store


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def main(mode: str, url: str, session_id: str, *numbers: str) -> None:
    store = open_store(Settings(data_dir=Path(), cache_dir=Path(), database_url=url))
    if mode == "endless":
        seq = 0
        while True:
            seq += 1
            feedback(store, session_id, seq)
            say(str(seq))
    first, step, count = map(int, numbers)
    say("ready")
    if sys.stdin.readline().strip() != "go":
        raise SystemExit("no go")
    applied = 0
    for n in range(count):
        seq = first + n * step
        if mode == "progress":
            applied += store.save_progress(
                session_id, seq=seq, seconds_done=seq, state=state_at(seq)
            )
        else:
            feedback(store, session_id, seq)
    say(f"applied {applied}")
    store.close()


def feedback(store: SessionStore, session_id: str, seq: int) -> None:
    # The event, the progress and the tender region change in one transaction (that reads
    # before it writes): all or none of them, whoever else writes or however it ends.
    store.add_feedback(
        session_id,
        event=FeedbackEvent("good", float(seq), 0, "neck"),
        seq=seq,
        seconds_done=seq,
        state=state_at(seq, tender=[f"region-{seq}"]),
        tender=[f"region-{seq}"],
    )


if __name__ == "__main__":
    main(*sys.argv[1:])
