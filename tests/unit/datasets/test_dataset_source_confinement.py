"""Every dataset source resolves inside what the caller's organization may read."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from unit.datasets.dataset_builders import chat, jsonl

from whetstone.adapters.local.folder_blobs import FolderBlobStore
from whetstone.core.datasets.report import ValidationReport
from whetstone.core.errors import InvalidInputError
from whetstone.core.spec_dataset import DatasetParams
from whetstone.service.datasets import (
    DatasetCheck,
    check_source,
    prepare_splits,
    validate_source,
)
from whetstone.service.hub_cache import HubRepo, cache_folders
from whetstone.settings import Settings

ARTIFACTS = "artifacts"
BETA_SOURCE = f"s3://{ARTIFACTS}/datasets/beta/job-1/data.jsonl"


def _aws(**extra: object) -> Settings:
    return Settings(runtime="aws", bucket=ARTIFACTS, **extra)  # type: ignore[arg-type]


def _code(source: str, settings: Settings, org_id: str = "acme") -> str | None:
    try:
        check_source(source, settings, org_id=org_id)
    except InvalidInputError as error:
        return error.code
    return None


@pytest.mark.parametrize(
    "source",
    [
        "hf://..",
        "hf://../secrets",
        "hf://owner/..",
        "hf:///etc/passwd",
        "hf://owner/name/extra",
        "hf://./name",
        "hf://owner/na..me",
        "hf://glue",
        "hf://owner/name@../../x",
        "hf://~/data",
    ],
)
def test_given_an_hf_source_that_is_a_path_when_checked_then_invalid_source(
    source: str, tmp_path: Path
) -> None:
    settings = Settings(home=tmp_path, dataset_roots=[tmp_path])

    assert _code(source, settings) == "invalid_source"


def test_given_an_hf_id_naming_a_local_folder_when_validated_then_the_folder_is_not_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a folder owner/name beside the server holding a readable dataset, and the hub
    # cache claiming the id (so the offline check lets it through to the loader)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "owner" / "name").mkdir(parents=True)
    (tmp_path / "owner" / "name" / "data.jsonl").write_bytes(jsonl([chat(i) for i in range(120)]))
    for folder in cache_folders(HubRepo("dataset", "owner/name")):
        folder.mkdir(parents=True)
    settings = Settings(home=tmp_path / "home", dataset_roots=[tmp_path / "roots"])

    # When it is validated as hf://owner/name, Then the hub is asked, not the folder
    with pytest.raises(InvalidInputError) as raised:
        validate_source("hf://owner/name", DatasetCheck(), settings, org_id="acme")

    assert raised.value.code == "hf_unavailable"


@pytest.mark.parametrize(
    ("source", "org_id", "code"),
    [
        (f"s3://{ARTIFACTS}/datasets/acme/job-1/data.jsonl", "acme", None),
        (f"s3://{ARTIFACTS}/uploads/acme/upload-1/data", "acme", None),
        (f"s3://{ARTIFACTS}/incoming/acme/chat.jsonl", "acme", None),
        (f"s3://{ARTIFACTS}/datasets/beta/job-1/data.jsonl", "acme", "source_not_allowed"),
        (f"s3://{ARTIFACTS}/uploads/acme-2/upload-1/data", "acme", "source_not_allowed"),
        (f"s3://{ARTIFACTS}/datasets/acme/../beta/data.jsonl", "acme", "invalid_source"),
        (f"s3://{ARTIFACTS}/datasets/a/b/data.jsonl", "a/b", "source_not_allowed"),
        ("s3://somebody-elses/data.jsonl", "acme", "source_not_allowed"),
    ],
)
def test_given_aws_when_an_s3_source_is_checked_then_only_the_orgs_own_keys_pass(
    source: str, org_id: str, code: str | None
) -> None:
    assert _code(source, _aws(), org_id) == code


@pytest.mark.parametrize(
    ("source", "code"),
    [
        ("s3://shared/acme/train.jsonl", None),
        ("s3://shared/acme/sub/train.jsonl", None),
        ("s3://shared/acme-other/train.jsonl", "source_not_allowed"),
        ("s3://shared/beta/train.jsonl", "source_not_allowed"),
        ("s3://acme-data/any/train.jsonl", None),
    ],
)
def test_given_buckets_an_administrator_granted_when_checked_then_only_those_pass(
    source: str, code: str | None
) -> None:
    settings = _aws(org_dataset_buckets={"acme": ["shared/acme/", "acme-data"]})

    assert _code(source, settings) == code
    assert _code(source, settings, org_id="beta") == "source_not_allowed"


@pytest.fixture
def s3_client() -> Iterator[object]:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=ARTIFACTS)
        client.put_object(
            Bucket=ARTIFACTS,
            Key="datasets/beta/job-1/data.jsonl",
            Body=jsonl([chat(i) for i in range(120)]),
        )
        yield client


def test_given_aws_when_an_orgs_object_is_validated_then_only_that_org_reads_it(
    s3_client: object,
) -> None:
    def validate_as(org_id: str) -> ValidationReport:
        client: Any = s3_client
        return validate_source(BETA_SOURCE, DatasetCheck(), _aws(), org_id=org_id, s3_client=client)

    with pytest.raises(InvalidInputError) as raised:
        validate_as("acme")
    report = validate_as("beta")

    assert raised.value.code == "source_not_allowed"
    assert (report.valid, report.num_examples) == (True, 120)


def test_given_aws_when_another_orgs_object_is_prepared_then_no_split_is_written(
    s3_client: object, tmp_path: Path
) -> None:
    blobs = FolderBlobStore(tmp_path / "blobs")

    with pytest.raises(InvalidInputError) as raised:
        prepare_splits(
            BETA_SOURCE,
            DatasetParams(),
            cutoff_length=2048,
            seed=1,
            blobs=blobs,
            prefix="jobs/acme/job-2/data/",
            settings=_aws(),
            org_id="acme",
            s3_client=s3_client,  # type: ignore[arg-type]
        )

    assert raised.value.code == "source_not_allowed"
    assert blobs.list("jobs/") == []


def test_given_a_symlink_out_of_the_roots_when_checked_then_path_not_allowed(
    tmp_path: Path,
) -> None:
    root = tmp_path / "roots"
    root.mkdir()
    (tmp_path / "secret.jsonl").write_bytes(jsonl([chat(i) for i in range(120)]))
    (root / "data.jsonl").symlink_to(tmp_path / "secret.jsonl")
    settings = Settings(home=tmp_path / "home", dataset_roots=[root])

    assert _code(str(root / "data.jsonl"), settings) == "path_not_allowed"
