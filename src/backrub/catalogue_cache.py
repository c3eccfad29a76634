"""The validated catalogue, cached on disk between runs.

Validating the data files with pydantic takes longer than the rest of a command's start; the
files only change when backrub is upgraded. So the first run validates and pickles the result,
keyed by a hash of the files' bytes and backrub's version, and later runs load the pickle. The
cache lives in the user's own cache directory (only they can write there), and a missing, stale
or unreadable cache just means validating again.
"""

from __future__ import annotations

import os
import pickle
import sys
import tempfile
import zlib
from pathlib import Path

from backrub import __version__
from backrub.core import catalogue as catalogue_module
from backrub.core import models
from backrub.core.catalogue import Catalogue, parse_catalogue, read_packaged_files


def cache_key(files: dict[str, bytes]) -> str:
    # A checksum, not a secure hash: it only has to notice an upgrade, and importing hashlib
    # would cost start-up time. The pickle holds instances of the model classes, so a change to
    # them (and to the catalogue's own class) must miss the cache too.
    parts = [f"{__version__}|{sys.version}".encode()]
    parts += [Path(m.__file__).read_bytes() for m in (models, catalogue_module) if m.__file__]
    for name in sorted(files):
        parts += [name.encode(), files[name]]
    blob = b"\0".join(parts)
    return f"{zlib.crc32(blob):08x}{len(blob):x}"


def cached_catalogue(cache_dir: Path) -> Catalogue:
    files = read_packaged_files()
    path = cache_dir / f"catalogue-{cache_key(files)}.pickle"
    try:
        with path.open("rb") as fh:
            # Trusted only when written by this user (backrub writes it 0600) and writable by
            # no one else: a pickle runs code, so a cache directory shared by mistake
            # (BACKRUB_CACHE_DIR=/tmp/…) must not let another account plant one.
            if _private(os.fstat(fh.fileno())):
                loaded = pickle.load(fh)  # noqa: S301 # nosec B301
                if isinstance(loaded, Catalogue):
                    return loaded
    except (OSError, EOFError, pickle.UnpicklingError, AttributeError, ImportError, TypeError):
        pass
    catalogue = parse_catalogue(files)
    _write_atomically(path, pickle.dumps(catalogue, protocol=pickle.HIGHEST_PROTOCOL))
    for stale in cache_dir.glob("catalogue-*.pickle"):
        if stale != path:
            stale.unlink(missing_ok=True)
    return catalogue


def _private(stat: os.stat_result) -> bool:
    if not hasattr(os, "getuid"):  # Windows: the user's profile folder is private already
        return True
    return stat.st_uid == os.getuid() and not stat.st_mode & 0o022


def _write_atomically(path: Path, data: bytes) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".catalogue-")
    except OSError:
        # A read-only cache directory only costs speed, never correctness.
        return
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except OSError:
        Path(tmp).unlink(missing_ok=True)
