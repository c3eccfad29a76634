"""The docs say what the code does: settings documented, --help pages current."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from backrub.config import ENV_PREFIX, Settings

ROOT = Path(__file__).resolve().parent.parent


def test_every_setting_is_documented_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    for field in Settings._fields:
        assert f"`{ENV_PREFIX}{field.upper()}`" in readme, field


def test_settings_read_the_environment(tmp_path: Path) -> None:
    settings = Settings.from_env({"BACKRUB_CACHE_DIR": str(tmp_path), "BACKRUB_DATA_DIR": "/x"})
    assert settings.cache_dir == tmp_path
    assert settings.data_dir == Path("/x")
    assert Settings.from_env({}).cache_dir.name == "backrub"


def test_cli_help_in_docs_is_current(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "cogapp", "--check", str(ROOT / "docs" / "cli.md")],
        capture_output=True,
        text=True,
        env={**os.environ, "BACKRUB_CACHE_DIR": str(tmp_path)},
    )
    assert result.returncode == 0, "docs/cli.md is stale: run `make docs`\n" + result.stdout
