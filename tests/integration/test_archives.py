"""The download archives finalize streams into the store."""

from __future__ import annotations

import io
import tarfile

import pytest

from whetstone.core.layout import JobLayout
from whetstone.runtime import get_platform
from whetstone.service.artifacts import _write_archive

LAYOUT = JobLayout("acme", "ftjob-1")
SOURCE = LAYOUT.model
KEY = LAYOUT.model_archive


def test_an_archive_holds_every_file_under_its_name() -> None:
    platform = get_platform()
    files = {"adapter_config.json": b"{}", "weights/adapter_model.safetensors": b"x" * 300_000}
    for name, data in files.items():
        platform.blobs.put(SOURCE + name, data)

    _write_archive(platform, SOURCE, {name: len(data) for name, data in files.items()}, KEY)

    with platform.blobs.open(KEY) as stream, tarfile.open(fileobj=io.BytesIO(stream.read())) as tar:
        assert {m.name: tar.extractfile(m).read() for m in tar.getmembers()} == files  # type: ignore[union-attr]


def test_an_archive_that_fails_half_way_is_not_left_truncated() -> None:
    platform = get_platform()
    platform.blobs.put(SOURCE + "a.safetensors", b"a" * 1000)
    platform.blobs.put(SOURCE + "b.safetensors", b"b" * 10)  # shorter than listed

    with pytest.raises(OSError):
        _write_archive(platform, SOURCE, {"a.safetensors": 1000, "b.safetensors": 5000}, KEY)

    assert not platform.blobs.exists(KEY)
