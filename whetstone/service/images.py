"""The content-addressed tag of the trainer image.

The image is built from the trainer sources, the whetstone modules it copies (the
platform's contract, whetstone.core, and the generation it shares with the platform,
whetstone.inference) and the dependency lock file; the tag is a hash of exactly those,
so an unchanged trainer is never built twice and a changed one always is.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

# What the image is built from, relative to the repository root.
IMAGE_SOURCES = (
    "trainer_container",
    "whetstone/__init__.py",
    "whetstone/core",
    "whetstone/inference",
    "constraints.txt",
)
_SKIPPED_PARTS = frozenset({"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache"})
TAG_LENGTH = 16


def image_source_files(repo_root: Path) -> list[Path]:
    """Every file the tag covers, sorted by its path relative to `repo_root`."""
    files: list[Path] = []
    for source in IMAGE_SOURCES:
        path = repo_root / source
        if path.is_file():
            files.append(path)
        elif path.is_dir():
            files.extend(
                p
                for p in path.rglob("*")
                if p.is_file()
                and not _SKIPPED_PARTS.intersection(p.relative_to(repo_root).parts)
                and p.suffix != ".pyc"
            )
    return sorted(files, key=lambda p: p.relative_to(repo_root).as_posix())


def trainer_image_tag(repo_root: Path) -> str:
    """sha256 over each source's relative path and contents, first 16 hex digits."""
    digest = hashlib.sha256()
    for path in image_source_files(repo_root):
        relative = path.relative_to(repo_root).as_posix().encode()
        content = path.read_bytes()
        # Lengths first, so no two different trees hash the same stream.
        digest.update(len(relative).to_bytes(8, "big") + relative)
        digest.update(len(content).to_bytes(8, "big") + content)
    return digest.hexdigest()[:TAG_LENGTH]


if __name__ == "__main__":
    # The build (trainer_container/buildspec.yml) runs this file by path, without the
    # package's dependencies, to check the source it got against the tag it must push.
    import sys

    print(trainer_image_tag(Path(sys.argv[1] if len(sys.argv) > 1 else ".")))
