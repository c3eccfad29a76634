"""The docs say what the code does: settings documented, --help pages current, links that
resolve, and a README short enough to read first."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from backrub.config import ENV_PREFIX, Settings

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "bench" / "RESULTS.md"]
# A Markdown link's target, or an HTML src/href (web addresses are skipped by the test).
LOCAL_LINK = re.compile(r"\]\(([^)\s]+)\)|(?:src|href)=\"([^\"]+)\"")


def test_every_setting_is_documented() -> None:
    hosting = (ROOT / "docs" / "hosting.md").read_text()
    for field in Settings._fields:
        assert f"`{ENV_PREFIX}{field.upper()}`" in hosting, field


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


def _anchors(markdown: str) -> set[str]:
    """The fragment names GitHub gives a page's headings."""
    names = set()
    for heading in re.findall(r"^#+ (.+)$", markdown, flags=re.MULTILINE):
        name = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        names.add(name)
    return names


def test_links_between_the_readme_and_the_docs_resolve() -> None:
    broken = []
    for page in DOCS:
        text = page.read_text()
        for groups in LOCAL_LINK.findall(text):
            target = groups[0] or groups[1]
            if re.match(r"[a-z]+:", target):
                continue
            path, _, anchor = target.partition("#")
            linked = (page.parent / path).resolve() if path else page
            if not linked.exists():
                broken.append(f"{page.relative_to(ROOT)}: {target}")
            elif anchor and linked.suffix == ".md" and anchor not in _anchors(linked.read_text()):
                broken.append(f"{page.relative_to(ROOT)}: {target} (no such heading)")
    assert not broken, broken


def test_the_readme_stays_short() -> None:
    # A newcomer reads it in five minutes; the rest belongs in docs/.
    assert len((ROOT / "README.md").read_bytes()) < 8192
