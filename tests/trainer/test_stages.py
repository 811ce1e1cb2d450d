"""The trainer's prepare and finalize stages on a folder and on S3 (moto): splits and
prepared.json, archives that are visible only once whole, and a retried finalize that
rebuilds only the archive it had not finished."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from trainer.events import EventEmitter
from trainer.finalize import ArtifactsMissing, finalize_outputs
from trainer.prepare import prepare_dataset
from trainer.storage import FolderLocation, S3Location

from whetstone.core.datasets.prepared import PreparedData
from whetstone.core.events import TrainerEvent
from whetstone.core.layout import CHECKPOINT_COMPLETE_MARKER, JobLayout
from whetstone.core.plan import PlanDataset, TrainerPlan
from whetstone.core.spec import JobSpec


class _Events:
    def __init__(self) -> None:
        self.events: list[TrainerEvent] = []

    def send(self, event: TrainerEvent) -> None:
        self.events.append(event)

    def close(self) -> None:
        pass


def _plan(job: Path, source: Path | None = None) -> TrainerPlan:
    dataset = (
        PlanDataset(source=str(source), max_file_bytes=1024**3, max_row_bytes=1024**2)
        if source
        else None
    )
    return TrainerPlan(
        job_id="job-1",
        spec=JobSpec(base_model="qwen2.5-0.5b-instruct"),
        data=str(job / "data"),
        output=str(job / "output"),
        model_source=str(job / "no-model-here"),
        job_files=str(job),
        dataset=dataset,
    )


def _write(root: Path, files: dict[str, bytes]) -> None:
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


MODEL = {
    "model/adapter_config.json": b"{}",
    "model/adapter_model.safetensors": b"weights" * 1000,
}


def _checkpoint(step: int) -> dict[str, bytes]:
    folder = f"checkpoints/checkpoint-{step}/"
    return {
        folder + "adapter_model.safetensors": b"w" * step,
        folder + "optimizer.pt": b"resume only",
        folder + CHECKPOINT_COMPLETE_MARKER: b"",
    }


def test_a_retried_finalize_rebuilds_only_the_archive_it_had_not_finished(tmp_path: Path) -> None:
    # Given a trained output with a model and two checkpoints, finalized once
    _write(tmp_path / "output", {**MODEL, **_checkpoint(2), **_checkpoint(4)})
    plan = _plan(tmp_path)
    first = finalize_outputs(plan, EventEmitter("job-1", _Events()))
    model_archive = tmp_path / JobLayout.model_archive
    before = model_archive.stat()
    # ... whose last archive was not finished (a stopped run leaves none: it is written
    # beside its place and renamed in only once whole)
    unfinished = "archives/checkpoints/checkpoint-4.tar.gz"
    (tmp_path / unfinished).unlink()

    # When finalize runs again
    second = finalize_outputs(plan, EventEmitter("job-1", _Events()))

    # Then it builds only the unfinished archive; the model's is the same file as before
    assert set(first) == {
        JobLayout.model_archive,
        "archives/checkpoints/checkpoint-2.tar.gz",
        unfinished,
    }
    assert list(second) == [unfinished]
    after = model_archive.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert (tmp_path / unfinished).is_file()


def test_finalize_refuses_an_output_without_a_loadable_model(tmp_path: Path) -> None:
    # Given an output with only a checkpoint
    _write(tmp_path / "output", _checkpoint(2))

    # When finalize runs, then it fails naming the missing model and builds nothing
    with pytest.raises(ArtifactsMissing, match="no loadable model"):
        finalize_outputs(_plan(tmp_path), EventEmitter("job-1", _Events()))
    assert not (tmp_path / JobLayout.model_archive).exists()


def test_a_folder_file_that_fails_half_way_is_not_left_behind(tmp_path: Path) -> None:
    # Given a folder location
    location = FolderLocation(tmp_path)

    # When writing a file fails half-way
    with pytest.raises(RuntimeError), location.open_write("a/archive.tar.gz") as out:
        out.write(b"half")
        raise RuntimeError("disk gone")

    # Then no file, and no temporary one, remains
    assert not location.is_whole("a/archive.tar.gz")
    assert location.list_files("a") == {}


def test_an_s3_multipart_object_exists_only_once_completed() -> None:
    with mock_aws():
        # Given a bucket
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="stage-tests")
        location = S3Location("s3://stage-tests/jobs/j", client)

        # When one object is written whole and another fails half-way
        with location.open_write("model.tar.gz") as out:
            out.write(b"x" * 100)
        with pytest.raises(RuntimeError), location.open_write("merged.tar.gz") as out:
            out.write(b"half")
            raise RuntimeError("stopped")

        # Then only the whole one exists, and it says it is whole
        assert location.is_whole("model.tar.gz")
        assert location.list_files("") == {"model.tar.gz": 100}
        assert client.list_multipart_uploads(Bucket="stage-tests").get("Uploads", []) == []


def _rows(count: int) -> bytes:
    rows = [{"prompt": f"Say {i}", "completion": f"{i} said"} for i in range(count)]
    return "\n".join(json.dumps(row) for row in rows).encode()


def _prepared(job: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((job / JobLayout.prepared).read_text())
    return data


def test_prepare_splits_the_dataset_and_counts_each_split(tmp_path: Path) -> None:
    # Given a plan whose dataset is a local file of 200 examples
    source = tmp_path / "d.jsonl"
    source.write_bytes(_rows(200))

    # When the prepare stage runs
    prepared = prepare_dataset(_plan(tmp_path, source), EventEmitter("job-1", _Events()))

    # Then the split files hold every example, and prepared.json counts them
    assert prepared.valid
    written = {
        name: len((tmp_path / "data" / f"{name}.jsonl").read_bytes().splitlines())
        for name in ("train", "validation", "test")
    }
    assert {name: s.examples for name, s in prepared.splits.items()} == written
    assert sum(written.values()) == 200 and prepared.tokens > 0
    assert (tmp_path / "data" / "manifest.json").is_file()
    # the base model's tokenizer is not here: the counts say they are estimates
    stored = PreparedData.model_validate(_prepared(tmp_path))
    assert stored.tokens_estimated is True and stored.base_model_config is None


def test_prepare_records_the_base_models_config_for_the_fit_check(tmp_path: Path) -> None:
    # Given a plan whose base model folder holds a config.json (and no weights)
    source = tmp_path / "d.jsonl"
    source.write_bytes(_rows(20))
    _write(tmp_path / "no-model-here", {"config.json": b'{"model_type": "llama"}'})

    # When the prepare stage runs, then prepared.json carries that config
    prepare_dataset(_plan(tmp_path, source), EventEmitter("job-1", _Events()))
    assert _prepared(tmp_path)["base_model_config"] == {"model_type": "llama"}


def test_prepare_of_an_invalid_dataset_writes_the_report_and_no_splits(tmp_path: Path) -> None:
    # Given a dataset with too few examples and a broken line
    source = tmp_path / "d.jsonl"
    source.write_bytes(_rows(10) + b"\n{not json\n")

    # When the prepare stage runs
    prepared = prepare_dataset(_plan(tmp_path, source), EventEmitter("job-1", _Events()))

    # Then prepared.json says invalid, with the errors, and nothing was split
    stored = _prepared(tmp_path)
    assert stored["valid"] is False and prepared.message
    codes = {issue["code"] for issue in stored["report"]["errors"]}
    assert {"invalid_json", "too_few_examples"} <= codes
    assert not (tmp_path / "data" / "train.jsonl").exists()
