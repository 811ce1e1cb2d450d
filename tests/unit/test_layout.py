"""The storage layout: every key the platform and the trainer share, pinned.

Stored jobs and running trainers depend on these names: a change here moves files that
already exist, so it must be a deliberate one.
"""

from __future__ import annotations

import pytest

from whetstone.core.layout import (
    CHECKPOINT_COMPLETE_MARKER,
    JOBS_ROOT,
    JobLayout,
    OutputNames,
    UploadLayout,
    checkpoint_name,
    checkpoint_step,
)
from whetstone.core.trainer_exit import TrainerExit

LAYOUT = JobLayout("acme", "ftjob-1")
NAMES = (
    "plan data output model merged checkpoints golden results run_manifest evaluation "
    "model_archive merged_archive checkpoint_archives"
).split()


def test_every_key_of_a_job_lies_under_its_prefix() -> None:
    # Given the layout of one job, Then each key is the one stored jobs use
    assert LAYOUT.prefix == "jobs/acme/ftjob-1/"
    assert LAYOUT.plan == "jobs/acme/ftjob-1/plan.json"
    assert LAYOUT.prepared == "jobs/acme/ftjob-1/prepared.json"
    assert LAYOUT.data == "jobs/acme/ftjob-1/data/"
    assert LAYOUT.split("test") == "jobs/acme/ftjob-1/data/test.jsonl"
    assert LAYOUT.output == "jobs/acme/ftjob-1/output/"
    assert LAYOUT.model == "jobs/acme/ftjob-1/output/model/"
    assert LAYOUT.merged == "jobs/acme/ftjob-1/output/merged/"
    assert LAYOUT.checkpoints == "jobs/acme/ftjob-1/output/checkpoints/"
    assert LAYOUT.checkpoint(40) == "jobs/acme/ftjob-1/output/checkpoints/checkpoint-40/"
    assert LAYOUT.golden == "jobs/acme/ftjob-1/output/golden.json"
    assert LAYOUT.results == "jobs/acme/ftjob-1/output/results.json"
    assert LAYOUT.run_manifest == "jobs/acme/ftjob-1/output/run_manifest.json"
    assert LAYOUT.evaluation == "jobs/acme/ftjob-1/output/evaluation.json"
    assert LAYOUT.model_archive == "jobs/acme/ftjob-1/model.tar.gz"
    assert LAYOUT.merged_archive == "jobs/acme/ftjob-1/merged.tar.gz"
    assert LAYOUT.checkpoint_archives == "jobs/acme/ftjob-1/archives/checkpoints/"
    assert (
        LAYOUT.checkpoint_archive(40)
        == "jobs/acme/ftjob-1/archives/checkpoints/checkpoint-40.tar.gz"
    )


def test_names_relative_to_the_job_are_its_keys_less_the_prefix() -> None:
    # Given each name read on the class (relative to the job, as a local folder mirroring
    # the job uses it) and on a layout (the full key)
    for attribute in NAMES:
        relative, full = getattr(JobLayout, attribute), getattr(LAYOUT, attribute)
        # Then the full key is the prefix and the relative name
        assert not relative.startswith(JOBS_ROOT) and full == LAYOUT.key(relative)


def test_the_trainer_writes_the_names_the_platform_reads_under_the_output() -> None:
    # Given the names the trainer uses under its output location
    # Then the platform finds them under the job's output folder
    assert LAYOUT.output + OutputNames.MODEL + "/" == LAYOUT.model
    assert LAYOUT.output + OutputNames.MERGED + "/" == LAYOUT.merged
    assert LAYOUT.output + OutputNames.CHECKPOINTS + "/" == LAYOUT.checkpoints
    assert LAYOUT.output + OutputNames.checkpoint(7) + "/" == LAYOUT.checkpoint(7)
    assert LAYOUT.output + OutputNames.GOLDEN == LAYOUT.golden
    assert LAYOUT.output + OutputNames.RESULTS == LAYOUT.results
    assert LAYOUT.output + OutputNames.RUN_MANIFEST == LAYOUT.run_manifest
    assert OutputNames.METRICS == "metrics.jsonl"
    assert OutputNames.checkpoint("checkpoint-7") == OutputNames.checkpoint(7)
    assert CHECKPOINT_COMPLETE_MARKER == "whetstone-complete"


@pytest.mark.parametrize(
    ("name", "step"),
    [("checkpoint-12", 12), ("checkpoint-0", 0), ("checkpoint-x", None), ("ckpt-3", None)],
)
def test_a_checkpoint_folder_name_gives_its_step(name: str, step: int | None) -> None:
    assert checkpoint_step(name) == step


def test_a_checkpoint_name_and_its_step_round_trip() -> None:
    assert checkpoint_step(checkpoint_name(25)) == 25


@pytest.mark.parametrize(
    ("key", "step"),
    [
        ("jobs/acme/ftjob-1/archives/checkpoints/checkpoint-8.tar.gz", 8),
        ("jobs/acme/ftjob-1/archives/checkpoints/checkpoint-8.zip", None),
        ("jobs/acme/ftjob-2/archives/checkpoints/checkpoint-8.tar.gz", None),
        ("jobs/acme/ftjob-1/model.tar.gz", None),
    ],
)
def test_only_this_jobs_checkpoint_archives_give_a_step(key: str, step: int | None) -> None:
    assert LAYOUT.checkpoint_archive_step(key) == step


def test_a_dataset_sent_with_a_job_lies_apart_under_a_safe_name() -> None:
    # Given file names a caller chose, When they become keys, Then they are safe
    assert LAYOUT.datasets == "datasets/acme/ftjob-1/"
    assert LAYOUT.dataset("train.jsonl") == "datasets/acme/ftjob-1/train.jsonl"
    assert LAYOUT.dataset("../my data?.csv") == "datasets/acme/ftjob-1/.._my_data_.csv"
    assert LAYOUT.dataset("") == "datasets/acme/ftjob-1/dataset"


@pytest.mark.parametrize("name", [".", "..", "..."])
def test_a_dataset_name_that_would_be_a_path_step_is_replaced(name: str) -> None:
    # Given a file name made of dots only, When it becomes a key, Then it is no path step
    assert LAYOUT.dataset(name) == "datasets/acme/ftjob-1/dataset"


def test_an_upload_keeps_its_bytes_in_one_key_under_its_folder() -> None:
    upload = UploadLayout("acme", "upload-abc")

    assert upload.prefix == "uploads/acme/upload-abc/"
    assert upload.data == "uploads/acme/upload-abc/data"


@pytest.mark.parametrize(
    ("key", "upload_id"),
    [
        ("uploads/acme/upload-abc/data", "upload-abc"),
        ("uploads/other/upload-abc/data", None),
        ("datasets/acme/ftjob-1/train.jsonl", None),
        ("uploads/acme/upload-abc", None),
    ],
)
def test_a_key_names_its_upload_only_inside_the_organizations_uploads(
    key: str, upload_id: str | None
) -> None:
    upload = UploadLayout.of_key("acme", key)

    assert (upload.upload_id if upload else None) == upload_id


def test_the_trainer_exit_codes_are_the_ones_computes_read() -> None:
    # Kubernetes' pod failure policy and the subprocess compute match these numbers
    assert (TrainerExit.DONE, TrainerExit.FAILED, TrainerExit.INTERRUPTED) == (0, 1, 143)
