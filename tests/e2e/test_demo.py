"""`make demo`'s path end to end: a tiny model learns the sample task through the platform."""

from __future__ import annotations

from pathlib import Path

import pytest

from whetstone.cli import demo

pytest.importorskip("torch")


def test_the_demo_fine_tunes_and_shows_the_learning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = demo.main(["--out", str(tmp_path / "out")])

    printed = capsys.readouterr().out
    assert code == 0, printed
    assert (tmp_path / "out" / "loss.png").stat().st_size > 0
    assert (tmp_path / "out" / "adapter" / "adapter_config.json").exists()
    summary = printed.splitlines()[-1]
    right = int(summary.split("answers ")[1].split(" of ")[0])
    assert right >= demo.HELD_OUT_SHOWN // 2, printed
