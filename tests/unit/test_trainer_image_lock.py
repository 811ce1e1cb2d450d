"""The trainer image installs its packages from hashed locks, from PyPI alone."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

CONTAINER = Path(__file__).resolve().parents[2] / "trainer_container"
DOCKERFILE = CONTAINER / "Dockerfile"
REQUIREMENTS = CONTAINER / "requirements.txt"
LOCKS = (CONTAINER / "requirements.lock", CONTAINER / "requirements-build.lock")
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)$")
_HASH = re.compile(r"^--hash=sha256:[0-9a-f]{64}$")


def _logical_lines(text: str) -> list[str]:
    """The lines pip reads: comments dropped, backslash continuations joined."""
    joined = re.sub(r"\\\n", " ", text)
    lines = (line.split("#", 1)[0].strip() for line in joined.splitlines())
    return [line for line in lines if line]


def _pip_installs(dockerfile: str) -> list[str]:
    return [line for line in _logical_lines(dockerfile) if "pip install" in line]


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _locked_versions(lock: Path) -> dict[str, str]:
    versions = {}
    for line in _logical_lines(lock.read_text()):
        pin = _PIN.match(line.split()[0])
        assert pin, f"{lock.name}: not an exact pin: {line}"
        versions[_normalized(pin.group(1))] = pin.group(2)
    return versions


def test_every_pip_install_of_the_image_requires_hashes_from_pypi_alone() -> None:
    # Given the Dockerfile's pip installs
    installs = _pip_installs(DOCKERFILE.read_text())

    # Then each installs a lock with --require-hashes from one index, never an extra one
    assert installs
    for command in re.split(r"&&", " ".join(installs)):
        if "pip install" not in command:
            continue
        assert "--require-hashes" in command
        assert "--no-deps" in command
        assert "--extra-index-url" not in command
        assert re.search(r"-r /tmp/requirements(-build)?\.lock\b", command)
    assert not any("requirements.txt" in line for line in _logical_lines(DOCKERFILE.read_text()))


@pytest.mark.parametrize("lock", LOCKS, ids=lambda path: path.name)
def test_every_requirement_line_of_a_lock_carries_a_hash(lock: Path) -> None:
    # Given the lock's requirements, as pip reads them
    requirements = _logical_lines(lock.read_text())

    # Then each is an exact pin followed by at least one sha256 hash, and nothing else
    assert requirements
    for requirement in requirements:
        pin, *options = requirement.split()
        assert _PIN.match(pin), requirement
        assert options, f"{pin} has no hash"
        assert all(_HASH.match(option) for option in options), requirement


def test_the_lock_pins_every_package_of_requirements_txt_at_its_version() -> None:
    # Given the image's direct requirements and the lock compiled from them
    locked = _locked_versions(LOCKS[0])
    direct = {
        _normalized(pin.group(1)): pin.group(2)
        for line in _logical_lines(REQUIREMENTS.read_text())
        if (pin := _PIN.match(line))
    }

    # Then the lock is not stale: each direct requirement is locked at its pinned version
    assert direct
    assert {name: locked.get(name) for name in direct} == direct


def test_the_build_lock_pins_the_setuptools_of_the_main_lock() -> None:
    # Given both locks
    main, build = (_locked_versions(lock) for lock in LOCKS)

    # Then the sdist builds with the setuptools the main lock resolved, and only that
    assert build == {"setuptools": main["setuptools"]}
