"""The prepare stage's memory stays bounded by streaming: a 1 GiB generated dataset goes
through `python -m trainer prepare` (the subprocess the local runtime runs) with a peak
RSS under 500 MB. The figure is recorded in docs/datasets.md."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from whetstone.core.plan import PlanDataset, TrainerPlan
from whetstone.core.spec import JobSpec

GIB = 1024**3
RSS_LIMIT_BYTES = 500 * 1024**2
# Runs argv[1:] with its output discarded; prints its exit code and peak RSS in KiB.
_MEASURE = (
    "import resource, subprocess, sys; "
    "code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, "
    "stderr=subprocess.DEVNULL).returncode; "
    "print(code, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
)
FILLER = "lorem ipsum dolor sit amet " * 300  # ~8 KB a line: 130k examples in 1 GiB


def _generate(path: Path, size: int) -> int:
    """Unique text examples up to `size` bytes, written in large blocks."""
    count = 0
    with path.open("wb") as out:
        written = 0
        while written < size:
            block = "".join(
                f'{{"text": "example {count + i}: {FILLER}"}}\n' for i in range(1000)
            ).encode()
            out.write(block)
            written += len(block)
            count += 1000
    return count


def test_a_1_gib_dataset_is_prepared_in_under_500_mb(tmp_path: Path) -> None:
    # Given a 1 GiB dataset and the plan of a job on it
    source = tmp_path / "big.jsonl"
    count = _generate(source, GIB)
    plan = TrainerPlan(
        job_id="job-big",
        spec=JobSpec(base_model="qwen2.5-0.5b-instruct"),
        data=str(tmp_path / "job" / "data"),
        output=str(tmp_path / "job" / "output"),
        model_source=str(tmp_path / "no-tokenizer"),
        job_files=str(tmp_path / "job"),
        dataset=PlanDataset(source=str(source), max_file_bytes=5 * GIB, max_row_bytes=1024**2),
    )
    plan_path = tmp_path / "plan.json"
    plan_path.write_text(plan.model_dump_json())

    # When the prepare stage runs as its own process, started by a small one that reports
    # its child's peak (a child forked from this test process would count its memory too)
    measured = subprocess.run(
        [sys.executable, "-c", _MEASURE, sys.executable, "-m", "trainer", "prepare", "--spec"]
        + [str(plan_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    returncode, peak_kib = (int(value) for value in measured.stdout.split())

    # Then it splits every example, and its peak RSS stays under 500 MB
    assert returncode == 0, measured.stderr
    lines = sum(
        1
        for name in ("train", "validation", "test")
        for _ in (tmp_path / "job" / "data" / f"{name}.jsonl").open("rb")
    )
    assert lines == count
    peak = peak_kib * 1024
    print(f"prepare of {source.stat().st_size / GIB:.2f} GiB: peak RSS {peak / 1024**2:.0f} MiB")
    assert peak < RSS_LIMIT_BYTES
    for path in (source, *(tmp_path / "job" / "data").iterdir()):
        path.unlink()  # 2 GiB a run: not kept among pytest's last temporary folders
