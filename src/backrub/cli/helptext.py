"""Every command's --help, rendered at a fixed width, for docs/cli.md (kept current by a test)."""

from __future__ import annotations

from typer.testing import CliRunner

from backrub.catalogue_cache import cached_catalogue
from backrub.cli.main import make_app
from backrub.config import Settings

COMMANDS = (
    (),
    ("check",),
    ("plan",),
    ("techniques",),
    ("start",),
    ("history",),
    ("stats",),
    ("remind",),
    ("export",),
    ("forget",),
    ("backup",),
    ("restore",),
    ("audio",),
    ("serve",),
)
WIDTH = 100


def help_pages() -> list[tuple[str, str]]:
    app = make_app(cached_catalogue(Settings.from_env().cache_dir))
    runner = CliRunner()
    pages = []
    for command in COMMANDS:
        result = runner.invoke(
            app,
            [*command, "--help"],
            prog_name="backrub",
            env={"COLUMNS": str(WIDTH), "TERM": "dumb", "NO_COLOR": "1"},
            terminal_width=WIDTH,
        )
        lines = [line.rstrip() for line in result.stdout.splitlines()]
        pages.append((" ".join(["backrub", *command, "--help"]), "\n".join(lines) + "\n"))
    return pages
