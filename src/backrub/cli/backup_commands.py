"""`backup` and `restore`: the whole database (every account and session) to one portable file
and back. The store is imported inside the commands, so other commands start as fast as before.

No `from __future__ import annotations` here: Typer reads the option annotations at run time.
"""

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from backrub.cli.common import reported
from backrub.config import Settings

FileArg = Annotated[Path, typer.Argument(help="The backup file (gzip'd JSON lines).")]


def _summary(counts: dict[str, int]) -> str:
    return (
        f"{counts['users']} account(s), {counts['sessions']} session(s) with "
        f"{counts['feedback_events']} feedback event(s), {counts['logins']} signed-in "
        f"browser(s) and {counts['remotes']} remote code(s)"
    )


def backup(file: FileArg) -> None:
    """Back up the whole database (every account and session) to one file.

    The same file format from SQLite and PostgreSQL: `backrub restore` reads it into either.
    The file is written whole or not at all, readable by you only (it holds password
    hashes). Failed sign-ins and the remote's waiting messages are not kept.
    """
    with reported():
        from backrub.store import make_engine
        from backrub.store.backup import write_backup

        engine = make_engine(Settings.from_env())
        try:
            counts = write_backup(engine, file, now=datetime.now(UTC))
        finally:
            engine.dispose()
    typer.echo(f"Backed up {_summary(counts)} to {file}.")


def restore(
    file: FileArg,
    replace: Annotated[
        bool,
        typer.Option(
            "--replace", help="Delete everything in the database first (else it must be empty)."
        ),
    ] = False,
) -> None:
    """Restore a backup into the database, all or nothing.

    The database must hold no accounts or sessions, unless --replace is given. Every row is
    checked first: a damaged file is one sentence, exit code 2, and the database unchanged.
    """
    with reported():
        from backrub.store import make_engine
        from backrub.store.backup import restore_backup

        engine = make_engine(Settings.from_env())
        try:
            counts = restore_backup(engine, file, replace=replace)
        finally:
            engine.dispose()
    typer.echo(f"Restored {_summary(counts)} from {file}.")


def register(app: typer.Typer) -> None:
    app.command()(backup)
    app.command()(restore)
