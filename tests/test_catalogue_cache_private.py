"""The cached catalogue is a pickle, and a pickle runs code: only a file this user wrote and no
one else can change is loaded; any other is ignored and written anew."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

from backrub.catalogue_cache import cached_catalogue
from backrub.core.catalogue import Catalogue


class Planted:
    """Unpickling it creates the file `marker`."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[Path]]:
        return (Path.touch, (self.marker,))


def test_a_cache_file_others_can_write_is_not_loaded(tmp_path: Path) -> None:
    cached_catalogue(tmp_path)
    (path,) = tmp_path.glob("catalogue-*.pickle")
    assert path.stat().st_mode & 0o777 == 0o600
    marker = tmp_path / "planted-code-ran"
    path.write_bytes(pickle.dumps(Planted(marker)))
    os.chmod(path, 0o666)  # noqa: S103 (the point of the test)

    assert isinstance(cached_catalogue(tmp_path), Catalogue)
    assert not marker.exists()
    (path,) = tmp_path.glob("catalogue-*.pickle")
    assert path.stat().st_mode & 0o777 == 0o600
