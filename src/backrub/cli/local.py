"""This computer's side of the CLI: the local profile's store, and files written whole.

The store (SQLAlchemy) is imported only when a command opens it, so `backrub plan` on a first
run loads no database code.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from backrub.cli.common import fail
from backrub.config import Settings

if TYPE_CHECKING:
    from collections.abc import Iterator

    from backrub.store import SessionStore


@contextmanager
def local_store() -> Iterator[SessionStore]:
    """The local profile's store, its database connections closed when the block ends."""
    from backrub.store import open_store

    store = open_store(Settings.from_env())
    try:
        yield store
    finally:
        store.close()


@contextmanager
def history_store() -> Iterator[SessionStore | None]:
    """The local store to learn from, or None when there is no database yet (a first run):
    planning then creates nothing."""
    settings = Settings.from_env()
    if settings.database_url is None and not settings.sqlite_file.is_file():
        yield None
        return
    with local_store() as store:
        yield store


def write_file(path: Path, data: bytes) -> None:
    """Write all or nothing: a half-written file is never left behind."""
    import os
    import tempfile

    try:
        folder = path.resolve().parent
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.")
    except OSError as error:
        fail(f"Cannot write {path}: {error.strerror or error}.")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except OSError as error:
        Path(tmp).unlink(missing_ok=True)
        fail(f"Cannot write {path}: {error.strerror or error}.")
