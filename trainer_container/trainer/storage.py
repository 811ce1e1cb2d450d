"""Files under a location that is either a local folder or an s3:// prefix."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, Protocol, cast

from .multipart import ARCHIVE_METADATA, MultipartWriter


class StorageError(Exception):
    """A location could not be read or written."""


class Location(Protocol):
    uri: str

    def child_uri(self, rel: str) -> str: ...
    def local_path(self, rel: str = "") -> Path | None: ...
    def exists(self, rel: str) -> bool: ...
    def read_bytes(self, rel: str) -> bytes: ...
    def write_bytes(self, rel: str, data: bytes) -> None: ...
    def iter_lines(self, rel: str) -> Iterator[bytes]: ...
    def list_dirs(self, rel: str) -> list[str]: ...
    def list_files(self, rel: str) -> dict[str, int]: ...
    def open_read(self, rel: str) -> contextlib.AbstractContextManager[IO[bytes]]: ...
    def open_write(self, rel: str) -> contextlib.AbstractContextManager[IO[bytes]]: ...
    def is_whole(self, rel: str) -> bool: ...
    def upload_dir(self, local: Path, rel: str) -> None: ...
    def download_dir(self, rel: str, local: Path) -> None: ...
    def delete_dir(self, rel: str) -> None: ...


class FolderLocation:
    """A local folder (the local runtime, tests)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser().resolve()
        self.uri = str(self.root)

    def _path(self, rel: str) -> Path:
        return self.root / rel if rel else self.root

    def child_uri(self, rel: str) -> str:
        return str(self._path(rel))

    def local_path(self, rel: str = "") -> Path | None:
        return self._path(rel)

    def exists(self, rel: str) -> bool:
        return self._path(rel).exists()

    def read_bytes(self, rel: str) -> bytes:
        try:
            return self._path(rel).read_bytes()
        except OSError as exc:
            raise StorageError(f"cannot read {self._path(rel)}: {exc}") from exc

    def write_bytes(self, rel: str, data: bytes) -> None:
        path = self._path(rel)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(data)
        tmp.replace(path)

    def iter_lines(self, rel: str) -> Iterator[bytes]:
        try:
            with self._path(rel).open("rb") as handle:
                yield from handle
        except OSError as exc:
            raise StorageError(f"cannot read {self._path(rel)}: {exc}") from exc

    def list_dirs(self, rel: str) -> list[str]:
        path = self._path(rel)
        return sorted(p.name for p in path.iterdir() if p.is_dir()) if path.is_dir() else []

    def list_files(self, rel: str) -> dict[str, int]:
        """The size of each file under `rel`, by its name relative to `rel`."""
        root = self._path(rel)
        if not root.is_dir():
            return {}
        return {
            path.relative_to(root).as_posix(): path.stat().st_size
            for path in root.rglob("*")
            if path.is_file() and not path.name.startswith(".tmp-")
        }

    def open_read(self, rel: str) -> contextlib.AbstractContextManager[IO[bytes]]:
        try:
            return self._path(rel).open("rb")
        except OSError as exc:
            raise StorageError(f"cannot read {self._path(rel)}: {exc}") from exc

    @contextlib.contextmanager
    def open_write(self, rel: str) -> Iterator[IO[bytes]]:
        """A file written beside its place and renamed into it once whole; removed if the
        writing fails, so a file that exists is always whole."""
        path = self._path(rel)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as out:
                yield out
            os.replace(tmp, path)
        finally:
            Path(tmp).unlink(missing_ok=True)

    def is_whole(self, rel: str) -> bool:
        """Whether a file written with `open_write` was finished (it exists only then)."""
        return self._path(rel).is_file()

    def upload_dir(self, local: Path, rel: str) -> None:
        target = self._path(rel)
        if local.resolve() == target:
            return
        shutil.copytree(local, target, dirs_exist_ok=True)

    def download_dir(self, rel: str, local: Path) -> None:
        source = self._path(rel)
        if source == local.resolve():
            return
        shutil.copytree(source, local, dirs_exist_ok=True)

    def delete_dir(self, rel: str) -> None:
        shutil.rmtree(self._path(rel), ignore_errors=True)


class S3Location:
    """An s3://bucket/prefix (the aws runtime). The client is injectable for tests."""

    def __init__(self, uri: str, client: Any = None) -> None:
        bucket, _, prefix = uri.removeprefix("s3://").partition("/")
        if not bucket:
            raise StorageError(f"{uri!r} names no bucket")
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.uri = f"s3://{bucket}/{self.prefix}" if self.prefix else f"s3://{bucket}"
        if client is None:
            import boto3

            client = boto3.client("s3")
        self.client = client

    def _key(self, rel: str) -> str:
        return "/".join(p for p in (self.prefix, rel.strip("/")) if p)

    def child_uri(self, rel: str) -> str:
        return f"s3://{self.bucket}/{self._key(rel)}"

    def local_path(self, rel: str = "") -> Path | None:
        return None

    def exists(self, rel: str) -> bool:
        response = self.client.list_objects_v2(Bucket=self.bucket, Prefix=self._key(rel), MaxKeys=1)
        return bool(response.get("KeyCount"))

    def read_bytes(self, rel: str) -> bytes:
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=self._key(rel))["Body"]
            return bytes(body.read())
        except Exception as exc:
            raise StorageError(f"cannot read {self.child_uri(rel)}: {exc}") from exc

    def write_bytes(self, rel: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self._key(rel), Body=data)

    def iter_lines(self, rel: str) -> Iterator[bytes]:
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=self._key(rel))["Body"]
        except Exception as exc:
            raise StorageError(f"cannot read {self.child_uri(rel)}: {exc}") from exc
        for line in body.iter_lines():
            yield line + b"\n"

    def _keys(self, rel: str) -> Iterator[str]:
        prefix = self._key(rel) + "/"
        for page in self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=prefix
        ):
            for item in page.get("Contents", []):
                yield item["Key"]

    def list_dirs(self, rel: str) -> list[str]:
        prefix = self._key(rel) + "/"
        names: set[str] = set()
        for page in self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=prefix, Delimiter="/"
        ):
            for common in page.get("CommonPrefixes", []):
                names.add(common["Prefix"][len(prefix) :].strip("/"))
        return sorted(names)

    def list_files(self, rel: str) -> dict[str, int]:
        """The size of each object under `rel`, by its key relative to `rel`."""
        prefix = self._key(rel) + "/"
        files: dict[str, int] = {}
        for page in self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=prefix
        ):
            for item in page.get("Contents", []):
                files[item["Key"][len(prefix) :]] = int(item["Size"])
        return files

    def open_read(self, rel: str) -> contextlib.AbstractContextManager[IO[bytes]]:
        """The object as a stream (one GET, read as it goes)."""
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=self._key(rel))["Body"]
        except Exception as exc:
            raise StorageError(f"cannot read {self.child_uri(rel)}: {exc}") from exc
        return contextlib.closing(body)

    @contextlib.contextmanager
    def open_write(self, rel: str) -> Iterator[IO[bytes]]:
        """A multipart upload, completed once whole (aborted if the writing fails)."""
        with MultipartWriter(self.client, self.bucket, self._key(rel)) as writer:
            yield cast(IO[bytes], writer)

    def is_whole(self, rel: str) -> bool:
        """Whether the object exists and carries the metadata only a completed multipart
        upload of `open_write` has."""
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self._key(rel))
        except Exception:
            return False
        return ARCHIVE_METADATA in head.get("Metadata", {})

    def upload_dir(self, local: Path, rel: str) -> None:
        for path in sorted(local.rglob("*")):
            if path.is_file():
                key = self._key(f"{rel}/{path.relative_to(local).as_posix()}")
                self.client.upload_file(str(path), self.bucket, key)

    def download_dir(self, rel: str, local: Path) -> None:
        prefix = self._key(rel) + "/"
        for key in self._keys(rel):
            target = local / key[len(prefix) :]
            target.parent.mkdir(parents=True, exist_ok=True)
            self.client.download_file(self.bucket, key, str(target))

    def delete_dir(self, rel: str) -> None:
        keys = list(self._keys(rel))
        for start in range(0, len(keys), 1000):
            chunk = [{"Key": key} for key in keys[start : start + 1000]]
            self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": chunk})


def open_location(uri: str, *, s3_client: Any = None) -> Location:
    """The location `uri` names: s3://bucket/prefix or a folder path."""
    if uri.startswith("s3://"):
        return S3Location(uri, s3_client)
    return FolderLocation(uri)
