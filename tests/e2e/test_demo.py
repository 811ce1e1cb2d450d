"""`make demo`'s path end to end, on a fresh machine: the tiny base is pre-trained, then
learns the sample task through the platform, and the evaluation report shows it."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

from whetstone.cli import demo
from whetstone.core.spec_dataset import SplitParams

torch = pytest.importorskip("torch")


@pytest.mark.slow
# Pre-training and fine-tuning take about 2.5 CPU-minutes (docs/trainer.md, "Tiny models"),
# several times that in wall time on cores other work shares, which the suite's 600 s default
# does not allow.
@pytest.mark.timeout(1800)
def test_the_demo_pretrains_its_base_fine_tunes_it_and_shows_the_learning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a machine with no pre-trained tiny base cached
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    # and the one thread per process the demo sets, undone after the test: torch is loaded
    # already here, so the pre-training in this process needs telling too
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)

    # When the demo runs
    try:
        code = demo.main(["--out", str(tmp_path / "out")])
    finally:
        torch.set_num_threads(threads)

    # Then it pre-trained the base, fine-tuned it and wrote the curve and the adapter
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "pre-training a tiny base model" in printed
    assert (tmp_path / "out" / "loss.png").stat().st_size > 0
    assert (tmp_path / "out" / "adapter" / "adapter_config.json").exists()
    # and the training loss fell toward zero
    first, last = map(float, re.findall(r"training loss ([\d.]+) -> ([\d.]+)", printed)[0])
    assert last < first / 5, printed
    # and the evaluation report shows the fine-tuned model answering where the base did not
    assert "exact match" in printed and "FINE-TUNED" in printed
    tuned, samples, base = map(
        int, re.findall(r"answers (\d+) of (\d+) held-out .*base model (\d+)", printed)[0]
    )
    assert samples > 0 and base < tuned and tuned >= samples // 2, printed


def test_the_demo_fine_tunes_in_at_most_120_steps_to_stay_near_two_minutes() -> None:
    # Given the demo's sample dataset, the default split and its training settings
    training = demo.DEMO_CONFIG["training"]
    rows = demo.SAMPLE_EXAMPLES * SplitParams().train // 100

    # When its job counts its optimizer steps
    steps = training["epochs"] * math.ceil(rows / training["batch_size"])

    # Then they are the 120 that learn the task, not more: each costs the demo's wall time
    assert steps <= 120


def test_the_demo_runs_one_thread_per_process_unless_told_otherwise() -> None:
    # Given an environment that sets no thread count, and one that sets four
    unset: dict[str, str] = {}
    four = {"OMP_NUM_THREADS": "4"}

    # When the demo sets up its processes' threads
    demo.one_thread_per_process(unset)
    demo.one_thread_per_process(four)

    # Then pre-training and the trainers it starts use one thread, or the four asked for
    assert unset["OMP_NUM_THREADS"] == "1"
    assert four["OMP_NUM_THREADS"] == "4"
