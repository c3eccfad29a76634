"""backrub's settings, read from BACKRUB_* environment variables.

A NamedTuple rather than pydantic-settings: building a pydantic model costs more start-up
time than the whole `backrub plan` command may take. Every field is documented in
docs/hosting.md (a test checks).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from collections.abc import Mapping

ENV_PREFIX = "BACKRUB_"


class Settings(NamedTuple):
    # Where backrub keeps its database and other user data.
    data_dir: Path
    # Where backrub keeps files it can rebuild (the validated catalogue).
    cache_dir: Path
    # An SQLAlchemy URL; None means SQLite in `data_dir` (backrub.db).
    database_url: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        # Imported here: platformdirs is only needed when no directory is given.
        import platformdirs

        data_dir = env.get(f"{ENV_PREFIX}DATA_DIR") or platformdirs.user_data_dir("backrub")
        cache_dir = env.get(f"{ENV_PREFIX}CACHE_DIR") or platformdirs.user_cache_dir("backrub")
        return cls(
            data_dir=Path(data_dir),
            cache_dir=Path(cache_dir),
            database_url=env.get(f"{ENV_PREFIX}DATABASE_URL") or None,
        )

    @property
    def sqlite_file(self) -> Path:
        """The database file when no database URL is set."""
        return self.data_dir / "backrub.db"
