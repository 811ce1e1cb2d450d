"""The local model server and model servers' metrics: the request counter the reconciler
reads to find idle servers (vLLM's and the local server's own), and malformed requests
answered 4xx."""

from __future__ import annotations

import http.client
import json
import threading
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from support.jobs import make_job
from support.streaming import GatedModel, read_releasing

from whetstone.adapters.local.process_deployer import ProcessDeployer
from whetstone.core.job import Deployment
from whetstone.inference.generation import Generation
from whetstone.service.serving_metrics import requests_answered
from whetstone.serving.server import ModelServer

VLLM_METRICS = """\
# HELP vllm:request_success_total Count of successfully processed requests.
# TYPE vllm:request_success_total counter
vllm:request_success_total{finished_reason="stop",model_name="m"} 3.0
vllm:request_success_total{finished_reason="length",model_name="m"} 2.0
# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{model_name="m"} 1.0
"""


def test_vllms_request_counter_is_summed_over_its_labels() -> None:
    assert requests_answered(VLLM_METRICS) == 5


@pytest.mark.parametrize("text", ["", "# TYPE other_total counter\nother_total 9\n", "a{ 1"])
def test_metrics_without_a_request_counter_tell_nothing(text: str) -> None:
    assert requests_answered(text) is None


class _EchoModel:
    """A stand-in for ChatModel: answers with the prompt's last word."""

    def chat_prompt(self, messages: list[dict[str, str]]) -> str:
        return messages[-1]["content"]

    def generate(self, prompt: str, **options: Any) -> Generation:
        return Generation(prompt.split()[-1], 1, 1, "stop")


@pytest.fixture
def server() -> Iterator[ModelServer]:
    served = ModelServer(("127.0.0.1", 0), _EchoModel(), "m")  # type: ignore[arg-type]
    threading.Thread(target=served.serve_forever, daemon=True).start()
    yield served
    served.shutdown()


def _chat(port: int) -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "say hello"}]}
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/v1/chat/completions",
        data=json.dumps(body).encode(),
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert json.loads(response.read())["choices"][0]["message"]["content"] == "hello"


def test_the_local_server_counts_the_requests_it_answers(
    server: ModelServer, tmp_path: Path
) -> None:
    # Given a local model server and a job whose deployment it is
    port = server.server_address[1]
    now = datetime.now(UTC)
    deployment = Deployment(
        status="ready",
        model="m",
        endpoint=f"http://127.0.0.1:{port}/v1",
        max_lora_rank=16,
        created_at=now,
        updated_at=now,
    )
    job = make_job().model_copy(update={"deployment": deployment})
    deployer = ProcessDeployer(tmp_path)
    assert deployer.requests_answered(job) == 0

    # When it answers two chat requests, then its counter (as the reconciler reads it) says so
    _chat(port)
    _chat(port)
    assert deployer.requests_answered(job) == 2


def _raw(port: int, method: str, headers: dict[str, str], body: bytes = b"") -> tuple[int, Any]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    connection.putrequest(method, "/v1/chat/completions", skip_accept_encoding=True)
    for name, value in headers.items():
        connection.putheader(name, value)
    connection.endheaders(body)
    response = connection.getresponse()
    answer = (response.status, response.getheader("allow"), json.loads(response.read()))
    connection.close()
    return answer[0], answer[1:]


@pytest.mark.parametrize("length", ["-1", "abc", "1e3"])
def test_a_malformed_content_length_is_a_400(server: ModelServer, length: str) -> None:
    status, (_, body) = _raw(server.server_address[1], "POST", {"Content-Length": length})
    assert status == 400 and "Content-Length" in body["error"]["message"]


@pytest.mark.parametrize("method", ["PUT", "DELETE", "TRACE", "BREW"])
def test_other_methods_are_405_with_allow(server: ModelServer, method: str) -> None:
    status, (allow, body) = _raw(server.server_address[1], method, {"Content-Length": "0"})
    assert status == 405 and allow == "GET, POST"
    assert body["error"]["code"] == "method_not_allowed"


def test_a_streamed_chat_completion_sends_each_piece_as_it_is_generated() -> None:
    # Given the local server of a model whose second piece waits for a reader of the first
    openai = pytest.importorskip("openai")
    model = GatedModel()
    served = ModelServer(("127.0.0.1", 0), model, "m")  # type: ignore[arg-type]
    threading.Thread(target=served.serve_forever, daemon=True).start()
    client = openai.OpenAI(
        base_url=f"http://127.0.0.1:{served.server_address[1]}/v1", api_key="-", max_retries=0
    )

    # When the official client streams a chat completion, asking for the usage
    chunks = read_releasing(
        client.chat.completions.create(
            model="m",
            messages=[{"role": "user", "content": "hi"}],
            stream=True,
            stream_options={"include_usage": True},
        ),
        model,
    )
    served.shutdown()

    # Then it had the first piece before the second was generated, and the chunks make
    # OpenAI's stream: the text, the finish reason, then the usage
    assert model.in_time is True
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello world"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage.total_tokens == 5 and chunks[-1].model == "m"
