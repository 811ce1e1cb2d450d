"""Splitting (seeded, stratified, leak-free), prepare_splits, sources and blob stores."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from unit.datasets.dataset_builders import chat, jsonl

from whetstone.adapters.aws.s3_blobs import S3BlobStore
from whetstone.adapters.local.folder_blobs import FolderBlobStore
from whetstone.core.datasets.records import Example, SplitManifest
from whetstone.core.errors import InvalidInputError
from whetstone.core.spec_dataset import DatasetParams, SplitParams
from whetstone.service.datasets import (
    DatasetCheck,
    parse_hf_source,
    prepare_splits,
    resolve_local_path,
    validate_source,
)
from whetstone.settings import Settings


def _settings(tmp_path: Path, **extra: object) -> Settings:
    return Settings(home=tmp_path / "home", dataset_roots=[tmp_path / "data"], **extra)


def _prepare(
    tmp_path: Path, data: bytes, *, seed: int = 42, prefix: str = "job/", **params: object
) -> tuple[FolderBlobStore, SplitManifest]:
    blobs = FolderBlobStore(tmp_path / "blobs")
    prepared = prepare_splits(
        data,
        DatasetParams(**params),  # type: ignore[arg-type]
        cutoff_length=2048,
        seed=seed,
        blobs=blobs,
        prefix=prefix,
        settings=_settings(tmp_path),
        org_id="acme",
        filename="data.jsonl",
    )
    return blobs, prepared.manifest


def _lines(blobs: FolderBlobStore, key: str) -> list[str]:
    with blobs.open(key) as stream:
        return stream.read().decode().splitlines()


def test_given_1000_examples_when_split_then_80_15_5_and_trainer_readable(tmp_path: Path) -> None:
    blobs, manifest = _prepare(tmp_path, jsonl([chat(i) for i in range(1000)]))

    assert manifest.counts == {"train": 800, "validation": 150, "test": 50}
    assert manifest.kind == "chat" and manifest.format == "openai"
    for line in _lines(blobs, "job/train.jsonl"):
        Example.model_validate_json(line)
    stored = SplitManifest.model_validate_json(_lines_joined(blobs, "job/manifest.json"))
    assert stored == manifest


def _lines_joined(blobs: FolderBlobStore, key: str) -> str:
    return "\n".join(_lines(blobs, key))


def test_given_the_same_seed_when_split_twice_then_identical_files(tmp_path: Path) -> None:
    data = jsonl([chat(i) for i in range(500)])
    first, _ = _prepare(tmp_path, data, prefix="a/")
    second, _ = _prepare(tmp_path, data, prefix="b/")

    for name in ("train", "validation", "test"):
        assert _lines(first, f"a/{name}.jsonl") == _lines(second, f"b/{name}.jsonl")


def test_given_another_seed_when_split_then_another_assignment(tmp_path: Path) -> None:
    data = jsonl([chat(i) for i in range(500)])
    blobs, _ = _prepare(tmp_path, data, prefix="a/", seed=1)
    _prepare(tmp_path, data, prefix="b/", seed=2)

    assert _lines(blobs, "a/test.jsonl") != _lines(blobs, "b/test.jsonl")


def test_given_max_samples_when_split_then_only_the_first_n_are_used(tmp_path: Path) -> None:
    _, manifest = _prepare(tmp_path, jsonl([chat(i) for i in range(500)]), max_samples=200)

    assert sum(manifest.counts.values()) == 200


def test_given_classes_when_split_then_each_class_is_cut_in_proportion(tmp_path: Path) -> None:
    records = [{"text": f"a{i}", "label": "a"} for i in range(800)]
    records += [{"text": f"b{i}", "label": "b"} for i in range(200)]

    split = SplitParams(train=80, validation=10, test=10)

    blobs, manifest = _prepare(tmp_path, jsonl(records), split=split)

    labels = [json.loads(line)["label"] for line in _lines(blobs, "job/test.jsonl")]
    assert (labels.count("a"), labels.count("b")) == (80, 20)
    assert manifest.counts == {"train": 800, "validation": 100, "test": 100}


def test_given_duplicates_when_split_then_no_identical_example_crosses_splits(
    tmp_path: Path,
) -> None:
    records = [chat(i % 150) for i in range(600)]

    blobs, _ = _prepare(tmp_path, jsonl(records))

    seen: dict[str, str] = {}
    for name in ("train", "validation", "test"):
        for line in _lines(blobs, f"job/{name}.jsonl"):
            assert seen.setdefault(line, name) == name


def test_given_invalid_data_when_prepared_then_dataset_invalid_with_the_report(
    tmp_path: Path,
) -> None:
    with pytest.raises(InvalidInputError) as raised:
        _prepare(tmp_path, jsonl([chat(i) for i in range(150)] + [b"{bad"]))

    assert raised.value.code == "dataset_invalid"
    assert raised.value.details["errors"][0]["line"] == 151
    assert "line 151" in raised.value.message


def test_given_a_path_with_dotdot_when_resolved_then_refused(tmp_path: Path) -> None:
    root = tmp_path / "data"
    root.mkdir()
    (tmp_path / "secret.jsonl").write_text("{}")

    with pytest.raises(InvalidInputError) as raised:
        resolve_local_path(str(root / ".." / "secret.jsonl"), [root])

    assert raised.value.code == "path_not_allowed"


def test_given_a_symlink_out_of_the_roots_when_resolved_then_refused(tmp_path: Path) -> None:
    root = tmp_path / "data"
    root.mkdir()
    (tmp_path / "secret.jsonl").write_text("{}")
    (root / "link.jsonl").symlink_to(tmp_path / "secret.jsonl")

    with pytest.raises(InvalidInputError) as raised:
        resolve_local_path(str(root / "link.jsonl"), [root])

    assert raised.value.code == "path_not_allowed"
    assert str(tmp_path / "secret.jsonl") in raised.value.message


def test_given_a_relative_path_inside_a_root_when_resolved_then_the_real_file(
    tmp_path: Path,
) -> None:
    root = tmp_path / "data"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "d.jsonl").write_text("{}")

    assert resolve_local_path("sub/d.jsonl", [root]) == (root / "sub" / "d.jsonl").resolve()


def test_given_a_missing_file_when_resolved_then_dataset_missing(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError) as raised:
        resolve_local_path(str(tmp_path / "nope.jsonl"), [tmp_path])

    assert raised.value.code == "dataset_missing"


@pytest.mark.parametrize(
    ("source", "parsed"),
    [
        ("hf://tatsu-lab/alpaca", ("tatsu-lab/alpaca", None, "train")),
        ("hf://nyu-mll/glue:sst2@validation", ("nyu-mll/glue", "sst2", "validation")),
        ("hf://org/name@test", ("org/name", None, "test")),
    ],
)
def test_given_an_hf_source_when_parsed_then_id_config_and_split(
    source: str, parsed: tuple[str, str | None, str]
) -> None:
    assert parse_hf_source(source) == parsed


def test_given_no_network_when_an_hf_dataset_is_validated_then_hf_unavailable(
    tmp_path: Path,
) -> None:
    with pytest.raises(InvalidInputError) as raised:
        validate_source(
            "hf://whetstone-test/does-not-exist",
            DatasetCheck(),
            _settings(tmp_path),
            org_id="acme",
        )

    assert raised.value.code == "hf_unavailable"


@pytest.fixture
def s3_client() -> Iterator[object]:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="data")
        yield client


def test_given_an_s3_uri_when_validated_then_the_report_of_the_object(
    tmp_path: Path, s3_client: object
) -> None:
    store = S3BlobStore("data", client=s3_client)  # type: ignore[arg-type]
    store.put("sets/chat.jsonl", jsonl([chat(i) for i in range(130)]))

    report = validate_source(
        "s3://data/sets/chat.jsonl",
        DatasetCheck(),
        _settings(tmp_path),
        org_id="acme",
        s3_client=s3_client,  # type: ignore[arg-type]
    )

    assert (report.valid, report.num_examples) == (True, 130)


def test_given_an_s3_store_when_written_then_encrypted_listed_and_deleted(
    s3_client: object,
) -> None:
    store = S3BlobStore("data", prefix="p/", client=s3_client)  # type: ignore[arg-type]
    store.put("a/1.jsonl", b"one")
    with open(__file__, "rb") as stream:
        store.put("a/2.py", stream)

    head = s3_client.head_object(Bucket="data", Key="p/a/1.jsonl")  # type: ignore[attr-defined]
    assert head["ServerSideEncryption"] == "AES256"
    assert store.list("a/") == ["a/1.jsonl", "a/2.py"]
    assert (store.exists("a/1.jsonl"), store.size("a/1.jsonl")) == (True, 3)
    assert store.open("a/1.jsonl").read() == b"one"
    assert store.delete_prefix("a/") == 2
    assert not store.exists("a/1.jsonl")


def test_given_a_folder_store_when_a_key_climbs_out_then_refused(tmp_path: Path) -> None:
    store = FolderBlobStore(tmp_path)

    with pytest.raises(InvalidInputError):
        store.put("../outside", b"x")


def test_given_a_versioned_bucket_when_a_prefix_is_deleted_then_no_version_remains(
    s3_client: object,
) -> None:
    client: Any = s3_client
    client.put_bucket_versioning(Bucket="data", VersioningConfiguration={"Status": "Enabled"})
    store = S3BlobStore("data", prefix="p/", client=client)
    store.put("jobs/a/1.bin", b"first")
    store.put("jobs/a/1.bin", b"second")
    client.delete_object(Bucket="data", Key="p/jobs/a/2.bin")  # a lone delete marker
    store.put("jobs/b/1.bin", b"kept")

    deleted = store.delete_prefix("jobs/a/")

    listed = client.list_object_versions(Bucket="data", Prefix="p/jobs/")
    left = [v["Key"] for v in [*listed.get("Versions", []), *listed.get("DeleteMarkers", [])]]
    assert deleted == 1 and left == ["p/jobs/b/1.bin"]
