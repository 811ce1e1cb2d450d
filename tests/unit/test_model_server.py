"""The local model server and model servers' metrics: the request counter the reconciler
reads to find idle servers (vLLM's and the local server's own), malformed requests
answered 4xx, and the key every route but /health requires."""

from __future__ import annotations

import http.client
import json
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import generate_latest
from support.jobs import make_job
from support.streaming import GatedModel, read_releasing

from whetstone.adapters.local.process_deployer import ProcessDeployer
from whetstone.cli.tokens import TokenFile, create_token
from whetstone.core.job import Caller, Deployment
from whetstone.core.tokens import hash_token
from whetstone.inference.generation import Generation
from whetstone.service.serving_metrics import requests_answered
from whetstone.serving.auth import ServerKeys
from whetstone.serving.server import ModelServer

KEY = "whsk_the-deployments-key"

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
def server(tmp_path: Path) -> Iterator[ModelServer]:
    keys = ServerKeys(hash_token(KEY), TokenFile(tmp_path), "acme")
    served = ModelServer(("127.0.0.1", 0), _EchoModel(), "m", keys=keys)  # type: ignore[arg-type]
    threading.Thread(target=served.serve_forever, daemon=True).start()
    yield served
    served.shutdown()


def _chat(port: int, key: str | None = KEY) -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "say hello"}]}
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/v1/chat/completions",
        data=json.dumps(body).encode(),
        headers={"content-type": "application/json"}
        | ({"authorization": f"Bearer {key}"} if key else {}),
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
    (tmp_path / f"{job.job_id}.key").write_text(KEY)  # where the deployer keeps the key
    assert deployer.requests_answered(job) == 0

    # When it answers two chat requests, then its counter (as the reconciler reads it) says so
    _chat(port)
    _chat(port)
    assert deployer.requests_answered(job) == 2


def _raw(
    port: int, method: str, headers: dict[str, str], body: bytes = b"", path: str = ""
) -> tuple[int, Any]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    connection.putrequest(method, path or "/v1/chat/completions", skip_accept_encoding=True)
    for name, value in headers.items():
        connection.putheader(name, value)
    connection.endheaders(body)
    response = connection.getresponse()
    answer = (response.status, response.getheader("allow"), json.loads(response.read()))
    connection.close()
    return answer[0], answer[1:]


@pytest.mark.parametrize("length", ["-1", "abc", "1e3"])
def test_a_malformed_content_length_is_a_400(server: ModelServer, length: str) -> None:
    headers = {"Content-Length": length, "Authorization": f"Bearer {KEY}"}
    status, (_, body) = _raw(server.server_address[1], "POST", headers)
    assert status == 400 and "Content-Length" in body["error"]["message"]


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/v1/chat/completions"), ("GET", "/v1/models"), ("GET", "/metrics")],
)
@pytest.mark.parametrize(
    "authorization", [None, "Bearer whsk_wrong", "Basic " + KEY, "Bearer ", KEY]
)
def test_a_request_without_the_key_is_a_401(
    server: ModelServer, method: str, path: str, authorization: str | None
) -> None:
    # Given a model server whose deployment key is KEY
    headers = {"Content-Length": "2"} | ({"Authorization": authorization} if authorization else {})

    # When a request comes without it, or with another credential
    status, (_, body) = _raw(server.server_address[1], method, headers, b"{}", path)

    # Then it is refused before anything is served
    assert status == 401 and body["error"]["code"] == "invalid_api_key"
    assert requests_answered(generate_latest(server.registry).decode()) == 0


def test_the_key_and_the_orgs_tokens_are_served_and_health_needs_none(
    server: ModelServer, tmp_path: Path
) -> None:
    # Given tokens of the job's organization and of another one
    own = create_token(tmp_path, Caller(user_id="alice", org_id="acme"))
    other = create_token(tmp_path, Caller(user_id="mallory", org_id="globex"))
    port = server.server_address[1]

    # When each asks the server, then the key and the organization's token are answered
    _chat(port, KEY)
    _chat(port, own)
    with pytest.raises(urllib.error.HTTPError) as refused:
        _chat(port, other)
    assert refused.value.code == 401
    # and the liveness probe needs no key
    assert _raw(port, "GET", {}, path="/health")[0] == 200


def test_the_deployer_keeps_the_key_private_and_out_of_the_command_line(tmp_path: Path) -> None:
    # Given a deployer whose "python" only sleeps (no model is loaded)
    fake_python = tmp_path / "python"
    fake_python.write_text(f"#!{sys.executable}\nimport time\ntime.sleep(30)\n")
    fake_python.chmod(0o755)
    deployer = ProcessDeployer(tmp_path / "run", python=str(fake_python), ready_timeout_s=30)
    job = make_job()

    # When it starts a server
    deployment = deployer.start(job, str(tmp_path / "model"), base_model=None, max_lora_rank=8)
    try:
        started = job.model_copy(update={"deployment": deployment})
        key_file = tmp_path / "run" / f"{job.job_id}.{deployment.generation}.key"

        # Then the key lies in a file only its owner reads, in a folder only its owner opens
        assert key_file.stat().st_mode & 0o777 == 0o600
        assert (tmp_path / "run").stat().st_mode & 0o777 == 0o700
        key = key_file.read_text()
        assert deployment.key_sha256 == hash_token(key)
        assert deployer.request_headers(started) == {"authorization": f"Bearer {key}"}
        # and never on the command line, which every user of the machine can read
        cmdline = Path(f"/proc/{deployment.pid}/cmdline").read_bytes().decode()
        assert key not in cmdline and str(key_file) in cmdline
    finally:
        deployer.stop(started)
    assert not key_file.exists()


@pytest.mark.parametrize("method", ["PUT", "DELETE", "TRACE", "BREW"])
def test_other_methods_are_405_with_allow(server: ModelServer, method: str) -> None:
    status, (allow, body) = _raw(server.server_address[1], method, {"Content-Length": "0"})
    assert status == 405 and allow == "GET, POST"
    assert body["error"]["code"] == "method_not_allowed"


def test_a_streamed_chat_completion_sends_each_piece_as_it_is_generated() -> None:
    # Given the local server of a model whose second piece waits for a reader of the first
    openai = pytest.importorskip("openai")
    model = GatedModel()
    keys = ServerKeys(hash_token(KEY))
    served = ModelServer(("127.0.0.1", 0), model, "m", keys=keys)  # type: ignore[arg-type]
    threading.Thread(target=served.serve_forever, daemon=True).start()
    client = openai.OpenAI(
        base_url=f"http://127.0.0.1:{served.server_address[1]}/v1", api_key=KEY, max_retries=0
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
