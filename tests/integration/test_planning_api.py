"""The five configuration routes, through the Lambda handler and through `whet serve`."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import quote

import pytest
from support.apigw import call_api
from support.model_folder import model_folder

from whetstone.cli.server import build_proxy_event

API = "/api/v1/fine-tuning"

SCENARIO = {
    "model_id": "mistral-7b-instruct-v0.3",
    "method": "lora",
    "num_examples": 1000,
    "epochs": 3,
    "gpu_type": "nvidia-t4",
    "gpu_count": 1,
}


def test_base_models_lists_the_catalog_and_filters_it() -> None:
    everything = call_api("GET", f"{API}/base-models")
    qwen = call_api("GET", f"{API}/base-models?family=qwen&max_parameters_b=8")

    assert everything.status == 200 and len(everything.body["models"]) >= 30
    assert qwen.body["models"] and all(m["family"] == "qwen" for m in qwen.body["models"])
    assert all(m["num_parameters"] <= 8e9 for m in qwen.body["models"])


def test_base_models_by_method_keeps_only_trainable_ones() -> None:
    full = call_api("GET", f"{API}/base-models?method=full").body["models"]
    qlora = call_api("GET", f"{API}/base-models?method=qlora").body["models"]
    assert len(full) <= len(qlora)


def test_base_models_rejects_an_unknown_family_with_its_location() -> None:
    response = call_api("GET", f"{API}/base-models?family=gpt")
    assert response.status == 400
    assert response.body["details"][0]["loc"] == "query.family"


def test_hardware_options_lists_six_gpus_with_prices_and_ranges() -> None:
    body = call_api("GET", f"{API}/hardware-options").body
    assert len(body["gpus"]) == 6
    assert body["gpu_count"] == {"default": 1, "min": 1, "max": 8}
    assert body["storage_gb"] == {"default": 100, "min": 50, "max": 1000}
    assert all(gpu["hourly_rate_usd"] > 0 for gpu in body["gpus"])


def test_requirements_give_every_method_a_memory_figure() -> None:
    response = call_api("GET", f"{API}/models/llama-3.1-8b-instruct/requirements")
    methods = {m["method"]: m for m in response.body["methods"]}
    assert set(methods) == {"lora", "qlora", "full", "prompt_tuning", "dpo"}
    assert methods["qlora"]["required_gib"] < methods["full"]["required_gib"]
    assert all(m["smallest_fitting"] is not None for m in methods.values())


def test_requirements_of_an_unknown_model_is_404_with_a_hint() -> None:
    response = call_api("GET", f"{API}/models/gpt-5/requirements")
    assert response.status == 404
    assert response.body["code"] == "model_not_found"
    assert "base-models" in response.body["message"]


def test_validate_hardware_reports_the_fit() -> None:
    fits = call_api(
        "POST",
        f"{API}/validate-hardware",
        json_body={
            "model_id": "llama-3.1-8b-instruct",
            "method": "qlora",
            "config": {"training": {"batch_size": 1}},
        },
    )
    too_small = call_api(
        "POST",
        f"{API}/validate-hardware",
        json_body={"model_id": "llama-3.3-70b-instruct", "method": "full", "gpu_count": 1},
    )
    assert fits.status == 200 and fits.body["fits"] and fits.body["headroom_gib"] > 0
    assert not too_small.body["fits"]
    assert too_small.body["smallest_fitting"]["gpu_count"] > 1


def test_validate_hardware_reports_spec_rules_with_their_path() -> None:
    response = call_api(
        "POST",
        f"{API}/validate-hardware",
        json_body={"model_id": "llama-3.1-8b-instruct", "config": {"training": {"epochs": 99}}},
    )
    assert response.status == 422
    assert response.body["details"][0]["loc"] == "training.epochs"


def test_estimate_cost_answers_hours_and_cost_for_the_minimal_body() -> None:
    response = call_api("POST", f"{API}/estimate-cost", json_body=SCENARIO)
    assert response.status == 200
    assert 0.5 <= response.body["estimated_hours"] <= 2
    assert 0.5 <= response.body["estimated_cost_usd"] <= 2
    assert response.body["hourly_rate_usd"] == 0.526


def test_estimate_cost_rejects_out_of_range_fields_by_name() -> None:
    response = call_api("POST", f"{API}/estimate-cost", json_body={**SCENARIO, "gpu_count": 9})
    assert response.status == 422
    assert response.body["details"][0]["loc"] == "body.gpu_count"


def test_estimate_cost_rejects_unknown_fields() -> None:
    response = call_api("POST", f"{API}/estimate-cost", json_body={**SCENARIO, "gpus": 2})
    assert response.status == 422
    assert "unknown field 'gpus'; did you mean 'gpu_type'?" in response.body["message"]


def test_estimate_cost_takes_method_epochs_and_hardware_from_the_config() -> None:
    # Given a config that asks for QLoRA, 7 epochs and an H100, and a body that sets none of them
    config = {"method": "qlora", "training": {"epochs": 7}, "hardware": {"gpu_type": "nvidia-h100"}}
    body = {"model_id": "llama-3.1-8b-instruct", "num_examples": 1000, "config": config}

    # When the cost is estimated
    response = call_api("POST", f"{API}/estimate-cost", json_body=body)

    # Then the config's settings are the ones estimated
    assert response.status == 200
    assert (response.body["method"], response.body["epochs"]) == ("qlora", 7)
    assert response.body["gpu_type"] == "nvidia-h100"


def test_fields_set_in_the_body_win_over_the_config() -> None:
    config = {"method": "qlora", "training": {"epochs": 7}, "hardware": {"gpu_type": "nvidia-h100"}}
    body = {"model_id": "llama-3.1-8b-instruct", "method": "lora", "epochs": 2, "config": config}

    estimate = call_api("POST", f"{API}/estimate-cost", json_body={**body, "num_examples": 10})
    body.pop("epochs")
    fit = call_api("POST", f"{API}/validate-hardware", json_body=body)

    assert (estimate.body["method"], estimate.body["epochs"]) == ("lora", 2)
    assert (fit.body["method"], fit.body["gpu_type"]) == ("lora", "nvidia-h100")


def test_estimate_cost_names_what_fits_when_the_job_does_not() -> None:
    body = {"model_id": "llama-3.3-70b-instruct", "method": "full", "num_examples": 100}

    response = call_api("POST", f"{API}/estimate-cost", json_body=body)

    assert response.status == 200 and response.body["fits"] is False
    assert response.body["available_gib"] < response.body["required_gib"]
    assert response.body["smallest_fitting"]["gpu_count"] > 1


def test_requirements_accept_a_local_folder_and_a_hub_id_as_one_path_segment(
    tmp_path: Any,
) -> None:
    folder = quote(model_folder(tmp_path), safe="")
    hub_id = quote("hf://Qwen/Qwen2.5-0.5B-Instruct", safe="")

    local = call_api("GET", f"{API}/models/{folder}/requirements")
    hub = call_api("GET", f"{API}/models/{hub_id}/requirements")

    assert local.status == 200 and local.body["model"]["id"] == str(tmp_path)
    assert hub.status == 200 and hub.body["model"]["id"] == "qwen2.5-0.5b-instruct"


def test_malformed_json_is_a_client_error() -> None:
    response = call_api(
        "POST",
        f"{API}/estimate-cost",
        body=b"{not json",
        headers={"content-type": "application/json"},
    )
    assert response.status == 422


def test_local_model_folders_are_read_from_config_json(tmp_path: Any) -> None:
    model_folder(tmp_path)

    response = call_api(
        "POST", f"{API}/estimate-cost", json_body={**SCENARIO, "model_id": str(tmp_path)}
    )

    assert response.status == 200 and response.body["fits"]


def test_openapi_document_describes_the_routes() -> None:
    response = call_api("GET", "/api/v1/openapi.json")
    paths = response.body["paths"]
    for path in (
        "/base-models",
        "/hardware-options",
        "/models/{model_id}/requirements",
        "/validate-hardware",
        "/estimate-cost",
    ):
        assert f"{API}{path}" in paths
    schemas = response.body["components"]["schemas"]
    gpu_count = schemas["EstimateCostRequest"]["properties"]["gpu_count"]
    assert {"type": "integer", "minimum": 1, "maximum": 8} in gpu_count["anyOf"]


def test_binary_bodies_travel_base64_and_intact() -> None:
    payload = bytes(range(256)) * 4
    event = build_proxy_event(
        "POST", "/x", {"content-type": "multipart/form-data; boundary=b"}, payload, "127.0.0.1"
    )
    assert event["isBase64Encoded"]
    assert base64.b64decode(event["body"]) == payload


def http(method: str, url: str, body: Any = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("content-type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", f"{API}/base-models", None),
        ("GET", f"{API}/hardware-options", None),
        ("GET", f"{API}/models/llama-3.1-8b-instruct/requirements", None),
        ("POST", f"{API}/validate-hardware", {"model_id": "llama-3.1-8b-instruct"}),
        ("POST", f"{API}/estimate-cost", SCENARIO),
        ("GET", "/api/v1/openapi.json", None),
    ],
)
def test_whet_serve_answers_every_route_over_http(
    server_url: str, method: str, path: str, body: Any
) -> None:
    status, _ = http(method, f"{server_url}{path}", body)
    assert status == 200


def test_whet_serve_maps_errors_like_the_lambda(server_url: str) -> None:
    status, body = http("GET", f"{server_url}{API}/models/nope/requirements")
    assert status == 404 and body["code"] == "model_not_found"


def test_whet_serve_serves_interactive_docs(server_url: str) -> None:
    with urllib.request.urlopen(f"{server_url}/api/v1/docs", timeout=30) as response:
        assert response.status == 200
        assert b"swagger" in response.read().lower()


def test_the_whet_command_starts_a_server_that_answers(tmp_path: Any) -> None:
    env = {**os.environ, "WHETSTONE_HOME": str(tmp_path / "home")}
    process = subprocess.Popen(
        [sys.executable, "-m", "whetstone.cli.main", "serve", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        first_line = process.stdout.readline()
        url = first_line.split("listening on ")[1].split()[0]
        status, body = http("POST", f"{url}{API}/estimate-cost", SCENARIO)
        assert status == 200 and body["estimated_cost_usd"] > 0
        assert (tmp_path / "home").is_dir()
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_an_unexpected_failure_is_a_500_that_leaks_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    from whetstone.service import planning

    def broken(**_: Any) -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(planning, "list_base_models", broken)
    response = call_api("GET", f"{API}/base-models")
    assert response.status == 500 and response.body["code"] == "internal_error"
    assert "secret" not in response.body["message"]


def test_an_unknown_route_is_404() -> None:
    assert call_api("GET", f"{API}/nothing-here").status == 404
