"""BlobStore on a local folder: keys are relative paths under the root."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

from whetstone.core.errors import InvalidInputError, NotFoundError

_CHUNK = 1024 * 1024


class FolderBlobStore:
    """Objects are files under `root`; writes are atomic (temp file, then rename)."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def _path(self, key: str) -> Path:
        parts = [p for p in key.split("/") if p]
        if not parts or any(p in (".", "..") for p in parts) or "\\" in key:
            raise InvalidInputError(
                f"blob key {key!r} is not a plain '/'-separated path; drop '..', '.' and '\\\\'"
            )
        return self.root.joinpath(*parts)

    def put(self, key: str, data: bytes | BinaryIO) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as out:
                if isinstance(data, bytes):
                    out.write(data)
                else:
                    shutil.copyfileobj(data, out, _CHUNK)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def open(self, key: str) -> BinaryIO:
        try:
            return self._path(key).open("rb")
        except FileNotFoundError:
            raise NotFoundError(f"no blob at {key!r}") from None

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def _stat(self, key: str) -> os.stat_result:
        try:
            return self._path(key).stat()
        except FileNotFoundError:
            raise NotFoundError(f"no blob at {key!r}") from None

    def size(self, key: str) -> int:
        return self._stat(key).st_size

    def revision(self, key: str) -> str:
        stat = self._stat(key)
        return f"{stat.st_size}-{stat.st_mtime_ns}"

    def list(self, prefix: str) -> Sequence[str]:
        keys = []
        for path in self.root.rglob("*"):
            if path.is_file() and not path.name.startswith(".tmp-"):
                key = path.relative_to(self.root).as_posix()
                if key.startswith(prefix):
                    keys.append(key)
        return sorted(keys)

    def delete_prefix(self, prefix: str) -> int:
        keys = self.list(prefix)
        for key in keys:
            self._path(key).unlink(missing_ok=True)
        if prefix.strip("/") and prefix.endswith("/"):
            self._remove_empty_folders(self._path(prefix))
        return len(keys)

    def _remove_empty_folders(self, folder: Path) -> None:
        """The folder of a deleted prefix and those below it, once empty (deepest first)."""
        if not folder.is_dir():
            return
        below = [path for path in folder.rglob("*") if path.is_dir()]
        for path in sorted(below, key=lambda p: len(p.parts), reverse=True) + [folder]:
            try:
                path.rmdir()
            except OSError:  # not empty: a write in flight keeps its folder
                continue

    def uri(self, key: str) -> str:
        return str(self._path(key))

    def presign_get(self, key: str, expires_s: int) -> str | None:
        return None

    def presign_put(self, key: str, expires_s: int) -> str | None:
        return None
