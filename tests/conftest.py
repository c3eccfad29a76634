from __future__ import annotations

import os
from typing import TYPE_CHECKING

import pytest

from backrub.core.catalogue import Catalogue, load_catalogue

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture(scope="session", autouse=True)
def _private_dirs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Keep every test, and every backrub it starts, out of the real user's data and cache."""
    saved = {k: os.environ.get(k) for k in ("BACKRUB_DATA_DIR", "BACKRUB_CACHE_DIR")}
    os.environ["BACKRUB_DATA_DIR"] = str(tmp_path_factory.mktemp("data"))
    os.environ["BACKRUB_CACHE_DIR"] = str(tmp_path_factory.mktemp("cache"))
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def catalogue() -> Catalogue:
    return load_catalogue()
