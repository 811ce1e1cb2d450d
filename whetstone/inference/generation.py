"""One loaded model and the generation the endpoints share: chat template, stop tokens,
greedy unless a temperature is given; whole, or streamed as it is generated."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Required, TypedDict, Unpack, cast

from whetstone.core.serving import GOLDEN_MAX_TOKENS, GOLDEN_MESSAGES

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from whetstone.inference.loading import CausalLM

# Tokens that end an assistant turn besides the tokenizer's eos (ChatML, Llama 3, Gemma).
_END_OF_TURN = ("<|im_end|>", "<|eot_id|>", "<end_of_turn>")


class Sampling(TypedDict, total=False):
    """How a generation samples, beside its prompt and stop strings."""

    max_tokens: Required[int]
    temperature: float  # 0 (the default): greedy
    top_p: float
    seed: int | None
    base: bool  # True: the base model answers, the adapter off (see ChatModel.serves_base)


@dataclass(frozen=True)
class Generation:
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str  # "stop" or "length"


class ChatModel:
    """A model and its tokenizer; one generation at a time, so a generation of the base
    model (its adapter off) never overlaps one with the adapter on."""

    def __init__(self, model: CausalLM, tokenizer: PreTrainedTokenizerBase) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self._lock = threading.Lock()
        vocab = tokenizer.get_vocab()
        ids = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
        ids += [vocab[token] for token in _END_OF_TURN if token in vocab]
        self.stop_ids: list[int] = sorted(set(ids))

    @classmethod
    def load(cls, model_dir: str | Path, base_model: str | None = None) -> ChatModel:
        from whetstone.inference.loading import load_trained_model

        model, tokenizer = load_trained_model(model_dir, base_model=base_model)
        return cls(model, tokenizer)

    @property
    def serves_base(self) -> bool:
        """Whether the model is an adapter that can be turned off to answer as its base."""
        return hasattr(self.model, "disable_adapter")

    def chat_prompt(self, messages: list[dict[str, str]]) -> str:
        text = self.tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=True
        )
        return cast(str, text)  # untokenized: the template's text

    def generate(
        self,
        prompt: str,
        *,
        max_tokens: int,
        temperature: float = 0.0,
        top_p: float = 1.0,
        seed: int | None = None,
        stop: list[str] | None = None,
        base: bool = False,
    ) -> Generation:
        """Greedy when temperature is 0; `stop` strings cut the text (and count as a stop);
        `base`: the base model answers (an adapter model only)."""
        sampling = Sampling(
            max_tokens=max_tokens, temperature=temperature, top_p=top_p, seed=seed, base=base
        )
        return self._finish(*self._run(prompt, sampling, None), stop or [])

    def stream(
        self, prompt: str, *, stop: list[str] | None = None, **sampling: Unpack[Sampling]
    ) -> Iterator[str | Generation]:
        """`generate`, its text given piece by piece as the tokens come, then the whole
        Generation; the pieces join to its text."""
        tokens = _TokenQueue()
        outcome: list[tuple[int, list[int]] | BaseException] = []

        def run() -> None:
            try:
                outcome.append(self._run(prompt, sampling, tokens))
            except BaseException as error:  # noqa: BLE001 - raised again by the consumer
                outcome.append(error)
            finally:
                tokens.end()

        worker = threading.Thread(target=run, daemon=True)
        worker.start()
        # Text that could be the start of a stop string, or half a character, waits.
        hold = max((len(marker) - 1 for marker in stop or []), default=0)
        ids: list[int] = []
        sent = ""
        while (token := tokens.queue.get()) is not None:
            ids.append(token)
            text = self._text([i for i in ids if i not in self.stop_ids])
            if any(marker and marker in text for marker in stop or []):
                break  # the stop string ends the text; the rest is not sent
            ready = text[: max(len(sent), len(text) - hold)].rstrip("\ufffd")
            if len(ready) > len(sent) and ready.startswith(sent):
                yield ready[len(sent) :]
                sent = ready
        worker.join()
        result = outcome[0]
        if isinstance(result, BaseException):
            raise result
        generation = self._finish(*result, stop or [])
        if len(generation.text) > len(sent):
            yield generation.text[len(sent) :]
        yield generation

    def _run(
        self, prompt: str, sampling: Sampling, streamer: _TokenQueue | None
    ) -> tuple[int, list[int]]:
        """The prompt's token count and the new token ids."""
        import torch

        encoded = self.tokenizer(prompt, add_special_tokens=False, return_tensors="pt")
        encoded = encoded.to(self.model.device)
        prompt_tokens = int(encoded["input_ids"].shape[1])
        temperature = sampling.get("temperature", 0.0)
        how: dict[str, Any] = (
            {"do_sample": True, "temperature": temperature, "top_p": sampling.get("top_p", 1.0)}
            if temperature > 0
            else {"do_sample": False, "temperature": None, "top_p": None, "top_k": None}
        )
        seed = sampling.get("seed")
        # The adapter is turned off only while the lock is held: no other generation sees it.
        with self._lock, self._adapter_off(sampling.get("base", False)), torch.no_grad():
            if seed is not None:
                torch.manual_seed(seed)
            output = self.model.generate(
                **encoded,
                max_new_tokens=sampling["max_tokens"],
                eos_token_id=self.stop_ids or None,
                pad_token_id=self.tokenizer.pad_token_id,
                streamer=streamer,
                **how,
            )
        return prompt_tokens, [int(i) for i in output[0, prompt_tokens:]]

    def _adapter_off(self, base: bool) -> AbstractContextManager[Any]:
        if not base:
            return nullcontext()
        if not self.serves_base:
            raise ValueError("the model has no adapter to turn off: it serves no base")
        return cast(AbstractContextManager[Any], self.model.disable_adapter())  # type: ignore[attr-defined]

    def _text(self, ids: list[int]) -> str:
        # One sequence of ids decodes to one string.
        return cast(str, self.tokenizer.decode(ids, skip_special_tokens=True))

    def _finish(self, prompt_tokens: int, new_ids: list[int], stop: list[str]) -> Generation:
        completion_tokens = len(new_ids)  # the end-of-turn token counts, as in vLLM
        finish = "length"
        if new_ids and new_ids[-1] in self.stop_ids:
            new_ids = new_ids[:-1]
            finish = "stop"
        text = self._text(new_ids)
        for marker in stop:
            cut = text.find(marker)
            if marker and cut >= 0:
                text, finish = text[:cut], "stop"
        return Generation(text, prompt_tokens, completion_tokens, finish)


class _TokenQueue:
    """What `model.generate` streams (its `streamer`): the prompt's ids first, skipped, then
    each new token's id, then the end (None)."""

    def __init__(self) -> None:
        self.queue: queue.Queue[int | None] = queue.Queue()
        self._prompt_seen = False

    def put(self, value: Any) -> None:
        if not self._prompt_seen:
            self._prompt_seen = True
            return
        for token in value.reshape(-1).tolist():
            self.queue.put(int(token))

    def end(self) -> None:
        self.queue.put(None)


def golden_answer(model: ChatModel) -> str:
    """The model's greedy answer to the golden prompt, which a deployment must repeat."""
    prompt = model.chat_prompt(list(GOLDEN_MESSAGES))
    return model.generate(prompt, max_tokens=GOLDEN_MAX_TOKENS).text
