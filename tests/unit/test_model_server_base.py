"""The local model server answers the job's base model beside the fine-tuned one: an adapter
model, given `--base-name`, answers that name with its adapter off (LoRA and prompt tuning);
a full model serves no base; a base generation never overlaps one with the adapter on."""

from __future__ import annotations

import json
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import generate_latest
from support.jobs import make_job
from support.serving import build_base, write_adapter

from whetstone.adapters.local.process_deployer import ProcessDeployer
from whetstone.core.spec import Method
from whetstone.inference.generation import ChatModel
from whetstone.service.serving_metrics import requests_answered
from whetstone.serving.__main__ import build_server
from whetstone.serving.server import ModelServer

KEY = "whsk_the-deployments-key"
NAME = "job-1"
BASE_NAME = "tiny-base"
MESSAGES = [{"role": "user", "content": "What is the capital of France?"}]
# Only breaks the wait of a test whose generations are not serialised; it then fails.
GUARD_S = 30.0


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tiny base, a LoRA adapter and a prompt-tuning adapter on it, each changing its
    answers."""
    import torch
    from peft import PromptTuningConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = tmp_path_factory.mktemp("models")
    base = build_base(folder / "base")
    prompt_tuned = folder / "prompt_tuning"
    torch.manual_seed(1)
    soft_prompt = get_peft_model(
        AutoModelForCausalLM.from_pretrained(base),
        PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=4),
    )
    soft_prompt.save_pretrained(prompt_tuned)
    AutoTokenizer.from_pretrained(base).save_pretrained(prompt_tuned)
    return {
        "base": base,
        "lora": write_adapter(base, folder / "lora"),
        "prompt_tuning": prompt_tuned,
    }


def _answer(model: ChatModel, *, base: bool = False) -> str:
    return model.generate(model.chat_prompt(MESSAGES), max_tokens=12, base=base).text


@pytest.mark.parametrize("method", ["lora", "prompt_tuning"])
def test_an_adapter_model_answers_as_its_base_with_the_adapter_off(
    models: dict[str, Path], method: str
) -> None:
    # Given an adapter whose answer differs from its base model's
    plain = _answer(ChatModel.load(models["base"]))
    adapted = ChatModel.load(models[method])
    assert adapted.serves_base and _answer(adapted) != plain

    # When it answers as its base, then as itself again
    as_base = _answer(adapted, base=True)
    again = _answer(adapted)

    # Then the base answer is the base model's own, and the adapter is back on after it
    assert as_base == plain
    assert again == _answer(adapted) != plain


def test_a_full_model_serves_no_base(models: dict[str, Path]) -> None:
    model = ChatModel.load(models["base"])
    assert not model.serves_base
    with pytest.raises(ValueError, match="serves no base"):
        _answer(model, base=True)


def _serve(models: dict[str, Path], folder: str, tmp_path: Path) -> Iterator[ModelServer]:
    key_file = tmp_path / "key"
    key_file.write_text(KEY)
    args = ["--model-dir", str(models[folder]), "--port", "0", "--name", NAME]
    server = build_server([*args, "--base-name", BASE_NAME, "--key-file", str(key_file)])
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def lora_server(models: dict[str, Path], tmp_path: Path) -> Iterator[ModelServer]:
    yield from _serve(models, "lora", tmp_path)


@pytest.fixture
def full_server(models: dict[str, Path], tmp_path: Path) -> Iterator[ModelServer]:
    yield from _serve(models, "base", tmp_path)


def _call(server: ModelServer, path: str, body: Any = None, key: str | None = KEY) -> Any:
    request = urllib.request.Request(
        f"http://127.0.0.1:{server.server_address[1]}{path}",
        data=json.dumps(body).encode() if body is not None else None,
        headers={"content-type": "application/json"}
        | ({"authorization": f"Bearer {key}"} if key else {}),
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def _chat(server: ModelServer, model: str, key: str | None = KEY) -> Any:
    body = {"model": model, "messages": MESSAGES, "max_tokens": 12, "temperature": 0}
    return _call(server, "/v1/chat/completions", body, key)


def test_the_server_answers_the_base_name_as_the_base_model(
    lora_server: ModelServer, models: dict[str, Path]
) -> None:
    # Given the server of a LoRA model, started with a base name
    # When it is asked its models, and the same chat of the fine-tuned model and of the base
    listed = [card["id"] for card in _call(lora_server, "/v1/models")["data"]]
    tuned = _chat(lora_server, NAME)
    base = _chat(lora_server, BASE_NAME)

    # Then it lists both, and each answers in its own name with its own weights
    assert listed == [NAME, BASE_NAME]
    assert _call(lora_server, f"/v1/models/{BASE_NAME}")["id"] == BASE_NAME
    assert (tuned["model"], base["model"]) == (NAME, BASE_NAME)
    base_text = base["choices"][0]["message"]["content"]
    assert base_text == _answer(ChatModel.load(models["base"]))
    assert tuned["choices"][0]["message"]["content"] != base_text
    # and both count as requests of this one server, which the reconciler reads for idleness
    assert requests_answered(generate_latest(lora_server.registry).decode()) == 2


def test_the_base_name_needs_the_key_as_every_route_does(lora_server: ModelServer) -> None:
    with pytest.raises(urllib.error.HTTPError) as refused:
        _chat(lora_server, BASE_NAME, key="whsk_wrong")
    assert refused.value.code == 401


def test_a_full_model_ignores_the_base_name(full_server: ModelServer) -> None:
    # Given a full model's server started with a base name: it has no base to answer as
    assert full_server.base_name is None
    assert [card["id"] for card in _call(full_server, "/v1/models")["data"]] == [NAME]

    # When the base name is asked for, then it is not a model of this server
    with pytest.raises(urllib.error.HTTPError) as refused:
        _chat(full_server, BASE_NAME)
    assert refused.value.code == 404


class _AnnouncingLock:
    """The model's lock, announcing a caller that finds it held (it then waits for it)."""

    def __init__(self, inner: Any, waiting: threading.Event) -> None:
        self._inner, self._waiting = inner, waiting

    def __enter__(self) -> None:
        if self._inner.locked():
            self._waiting.set()
        self._inner.__enter__()

    def __exit__(self, *exc: object) -> None:
        self._inner.__exit__(*exc)


def test_a_base_generation_waits_for_a_fine_tuned_one_under_way(models: dict[str, Path]) -> None:
    # Given a LoRA model whose first generation holds on until it is released
    model = ChatModel.load(models["lora"])
    expected = {"tuned": _answer(model), "base": _answer(model, base=True)}
    inside, released, waiting = threading.Event(), threading.Event(), threading.Event()
    generate = model.model.generate
    first = [True]

    def held_generate(*args: Any, **kwargs: Any) -> Any:
        if first:
            first.clear()
            inside.set()
            released.wait(GUARD_S)
        return generate(*args, **kwargs)

    model.model.generate = held_generate  # type: ignore[method-assign]
    model._lock = _AnnouncingLock(model._lock, waiting)  # type: ignore[assignment]
    answers: dict[str, str] = {}

    def ask(which: str) -> None:
        answers[which] = _answer(model, base=which == "base")

    # When a fine-tuned generation is under way and a base one is asked for meanwhile
    tuned = threading.Thread(target=ask, args=("tuned",))
    tuned.start()
    assert inside.wait(GUARD_S)
    base = threading.Thread(target=ask, args=("base",))
    base.start()
    assert waiting.wait(GUARD_S)
    released.set()
    tuned.join()
    base.join()

    # Then the base one waited, with the adapter on, and each got its own answer
    assert answers == expected


@pytest.mark.parametrize(
    ("method", "base"), [(Method.LORA, "llama-3.1-8b-instruct"), (Method.FULL, None)]
)
def test_the_local_deployer_asks_an_adapters_server_for_its_base_and_records_it(
    tmp_path: Path, method: Method, base: str | None
) -> None:
    # Given a deployer whose "python" only sleeps (no model is loaded)
    fake_python = tmp_path / "python"
    fake_python.write_text(f"#!{sys.executable}\nimport time\ntime.sleep(30)\n")
    fake_python.chmod(0o755)
    deployer = ProcessDeployer(tmp_path / "run", python=str(fake_python), ready_timeout_s=30)
    job = make_job(base_model="llama-3.1-8b-instruct", method=method)

    # When it starts the server of a LoRA job, and of a full fine-tune
    deployment = deployer.start(job, str(tmp_path / "model"), base_model=None, max_lora_rank=8)
    try:
        cmdline = Path(f"/proc/{deployment.pid}/cmdline").read_bytes().decode().split("\0")
    finally:
        deployer.stop(job.model_copy(update={"deployment": deployment}))

    # Then an adapter's server answers its base under the job's base model, as recorded
    assert deployment.base_model == base
    if base is None:
        assert "--base-name" not in cmdline
    else:
        assert cmdline[cmdline.index("--base-name") + 1] == base
