"""POST /api/v1/fine-tuning/datasets/validate through the Lambda handler."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.apigw import ApiResponse, call_api
from support.aws_workflow import CALLER

from whetstone.core.job import Caller
from whetstone.service.platform import Platform

URL = "/api/v1/fine-tuning/datasets/validate"
BOUNDARY = "whetstone-test-boundary"


def _chat_lines(count: int) -> bytes:
    return b"".join(
        json.dumps(
            {
                "messages": [
                    {"role": "user", "content": f"q{i}"},
                    {"role": "assistant", "content": f"a{i}"},
                ]
            }
        ).encode()
        + b"\n"
        for i in range(count)
    )


def _multipart(fields: dict[str, str], file: bytes, filename: str) -> bytes:
    parts = [
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    ]
    parts.append(
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n".encode()
        + file
        + b"\r\n"
    )
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()


def _upload(file: bytes, filename: str = "data.jsonl", **fields: str) -> ApiResponse:
    return call_api(
        "POST",
        URL,
        body=_multipart(fields, file, filename),
        headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
    )


def test_given_a_valid_upload_when_validated_then_200_with_a_valid_report() -> None:
    response = _upload(_chat_lines(150))

    assert response.status == 200
    assert response.body["valid"] is True
    assert response.body["format"] == "openai"
    assert response.body["num_examples"] == 150
    assert response.body["warnings"][0]["code"] == "few_examples"
    assert response.body["stats"]["tokens"]["method"] == "approximate"


def test_given_an_upload_with_a_bad_line_when_validated_then_the_error_has_code_and_line() -> None:
    data = _chat_lines(150) + b'{"messages": [{"role": "user", "content": "x"}]}\n'

    response = _upload(data)

    assert response.status == 200
    assert response.body["valid"] is False
    assert response.body["errors"] == [
        {
            "code": "last_turn_not_assistant",
            "message": response.body["errors"][0]["message"],
            "line": 151,
            "row": None,
            "field": "messages[0].role",
        }
    ]


def test_given_a_csv_upload_with_a_column_mapping_when_validated_then_classification() -> None:
    rows = "review,stars\n" + "".join(f"text number {i},{i % 2}\n" for i in range(120))

    response = _upload(rows.encode(), "reviews.csv", text_column="review", label_column="stars")

    assert response.body["valid"] is True
    assert response.body["format"] == "csv"
    assert response.body["kind"] == "classification"
    assert response.body["stats"]["classes"]["counts"] == {"0": 60, "1": 60}


def test_given_a_json_body_naming_a_local_path_when_validated_then_the_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from whetstone.settings import get_settings

    (tmp_path / "data.jsonl").write_bytes(_chat_lines(120))
    monkeypatch.setenv("WHETSTONE_DATASET_ROOTS", json.dumps([str(tmp_path)]))
    get_settings.cache_clear()

    response = call_api("POST", URL, json_body={"source": str(tmp_path / "data.jsonl")})

    assert response.status == 200
    assert response.body["num_examples"] == 120


def test_given_a_path_outside_the_roots_when_validated_then_422_path_not_allowed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from whetstone.settings import get_settings

    monkeypatch.setenv("WHETSTONE_DATASET_ROOTS", json.dumps([str(tmp_path / "roots")]))
    get_settings.cache_clear()

    response = call_api("POST", URL, json_body={"source": "/etc/passwd"})

    assert response.status == 422
    assert response.body["code"] == "path_not_allowed"


def test_given_neither_file_nor_source_when_validated_then_422() -> None:
    response = call_api("POST", URL, json_body={})

    assert response.status == 422


def test_given_an_hf_source_that_is_a_path_when_validated_then_422_invalid_source() -> None:
    response = call_api("POST", URL, json_body={"source": "hf://../../etc"})

    assert response.status == 422
    assert response.body["code"] == "invalid_source"


def test_given_aws_when_another_orgs_s3_object_is_validated_then_422_unread(
    aws_platform: Platform,
) -> None:
    # Given another organization's dataset in the artifacts bucket
    key = "datasets/beta/job-1/data.jsonl"
    aws_platform.blobs.put(key, _chat_lines(120))
    source = aws_platform.blobs.uri(key)

    # When acme's user validates it, Then it is refused; beta's own user reads it
    refused = call_api("POST", URL, json_body={"source": source}, caller=CALLER)
    owned = call_api(
        "POST", URL, json_body={"source": source}, caller=Caller(user_id="bob", org_id="beta")
    )

    assert (refused.status, refused.body["code"]) == (422, "source_not_allowed")
    assert (owned.status, owned.body["num_examples"]) == (200, 120)
