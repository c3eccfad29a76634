"""The validated catalogue, cached on disk between runs.

Validating the data files with pydantic costs about ten times a bare Python start; the files only
change when backrub is upgraded. So the first run validates and pickles the result, keyed by a hash
of the files' bytes and backrub's version, and later runs load the pickle. The cache lives in the
user's own cache directory (only they can write there), and a missing, stale or unreadable cache
just means validating again.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import sys
import tempfile
from typing import TYPE_CHECKING

from backrub import __version__
from backrub.core.catalogue import Catalogue, parse_catalogue, read_packaged_files

if TYPE_CHECKING:
    from pathlib import Path


def cache_key(files: dict[str, bytes]) -> str:
    digest = hashlib.sha256(f"{__version__}|{sys.version}".encode())
    for name in sorted(files):
        digest.update(name.encode() + b"\0" + files[name] + b"\0")
    return digest.hexdigest()[:32]


def cached_catalogue(cache_dir: Path) -> Catalogue:
    files = read_packaged_files()
    path = cache_dir / f"catalogue-{cache_key(files)}.pickle"
    try:
        with path.open("rb") as fh:
            # Trusted: written by backrub itself into the user's own cache directory.
            loaded = pickle.load(fh)  # noqa: S301
        if isinstance(loaded, Catalogue):
            return loaded
    except (OSError, EOFError, pickle.UnpicklingError, AttributeError, ImportError):
        pass
    catalogue = parse_catalogue(files)
    _write_atomically(path, pickle.dumps(catalogue, protocol=pickle.HIGHEST_PROTOCOL))
    return catalogue


def _write_atomically(path: Path, data: bytes) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".catalogue-")
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except OSError:
        # A read-only or full cache directory only costs speed, never correctness.
        return
