"""Which packages import which: the platform never imports the trainer package, and the
trainer image ships (and its tag covers) every whetstone module the trainer imports."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from whetstone.service.images import IMAGE_SOURCES

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "trainer_container" / "Dockerfile"


def _python_files(*folders: str) -> list[Path]:
    return sorted(path for folder in folders for path in (ROOT / folder).rglob("*.py"))


def _imported_modules(path: Path) -> set[str]:
    """Every absolute module a file imports, at its top or inside a function."""
    modules: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules.add(node.module)
    return modules


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def _image_copies() -> list[str]:
    """The repository paths the trainer image's Dockerfile copies in."""
    return re.findall(r"^COPY (\S+) ", DOCKERFILE.read_text(encoding="utf-8"), re.MULTILINE)


def test_no_platform_module_imports_the_trainer_package() -> None:
    # Given every module of the platform and of its Lambda entry points
    files = _python_files("whetstone", "functions")

    # When their imports are read, lazy ones included
    offenders = {
        path.relative_to(ROOT).as_posix(): sorted(
            m for m in _imported_modules(path) if _within(m, "trainer")
        )
        for path in files
    }

    # Then none imports trainer, the demo and the local server included
    assert {"whetstone/cli/demo.py", "whetstone/serving/server.py"} <= offenders.keys()
    assert {path: names for path, names in offenders.items() if names} == {}


def test_the_trainer_image_tag_covers_every_source_the_image_copies() -> None:
    # Given the paths the Dockerfile copies into the image
    copies = _image_copies()

    # When each is matched against the sources the image tag hashes
    uncovered = [
        source
        for source in copies
        if not any(source == s or source.startswith(s + "/") for s in IMAGE_SOURCES)
    ]

    # Then a change to any of them builds a new image
    assert "whetstone/inference" in copies
    assert uncovered == []


def test_the_trainer_image_ships_every_whetstone_package_its_code_imports() -> None:
    # Given the packages the image copies in
    folders = [source for source in _image_copies() if (ROOT / source).is_dir()]
    packages = [f.replace("/", ".") for f in folders if f.startswith("whetstone/")]

    # When the whetstone modules their code imports are listed
    imported = {
        m
        for path in _python_files(*folders)
        for m in _imported_modules(path)
        if _within(m, "whetstone")
    }

    # Then each lies in a package the image carries
    assert {"whetstone.core", "whetstone.inference"} <= set(packages)
    assert "whetstone.inference.generation" in imported
    assert sorted(m for m in imported if not any(_within(m, p) for p in packages)) == []
