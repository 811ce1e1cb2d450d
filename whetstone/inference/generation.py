"""One loaded model and the generation the endpoints share: chat template, stop tokens,
greedy unless a temperature is given."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from whetstone.core.serving import GOLDEN_MAX_TOKENS, GOLDEN_MESSAGES

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from whetstone.inference.loading import CausalLM

# Tokens that end an assistant turn besides the tokenizer's eos (ChatML, Llama 3, Gemma).
_END_OF_TURN = ("<|im_end|>", "<|eot_id|>", "<end_of_turn>")


@dataclass(frozen=True)
class Generation:
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str  # "stop" or "length"


class ChatModel:
    """A model and its tokenizer; one generation at a time."""

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
    ) -> Generation:
        """Greedy when temperature is 0; `stop` strings cut the text (and count as a stop)."""
        import torch

        encoded = self.tokenizer(prompt, add_special_tokens=False, return_tensors="pt")
        encoded = encoded.to(self.model.device)
        prompt_tokens = int(encoded["input_ids"].shape[1])
        sampling: dict[str, Any] = (
            {"do_sample": True, "temperature": temperature, "top_p": top_p}
            if temperature > 0
            else {"do_sample": False, "temperature": None, "top_p": None, "top_k": None}
        )
        with self._lock, torch.no_grad():
            if seed is not None:
                torch.manual_seed(seed)
            output = self.model.generate(
                **encoded,
                max_new_tokens=max_tokens,
                eos_token_id=self.stop_ids or None,
                pad_token_id=self.tokenizer.pad_token_id,
                **sampling,
            )
        new_ids = [int(i) for i in output[0, prompt_tokens:]]
        completion_tokens = len(new_ids)  # the end-of-turn token counts, as in vLLM
        finish = "length"
        if new_ids and new_ids[-1] in self.stop_ids:
            new_ids = new_ids[:-1]
            finish = "stop"
        # One sequence of ids decodes to one string.
        text = cast(str, self.tokenizer.decode(new_ids, skip_special_tokens=True))
        for marker in stop or []:
            cut = text.find(marker)
            if marker and cut >= 0:
                text, finish = text[:cut], "stop"
        return Generation(text, prompt_tokens, completion_tokens, finish)


def golden_answer(model: ChatModel) -> str:
    """The model's greedy answer to the golden prompt, which a deployment must repeat."""
    prompt = model.chat_prompt(list(GOLDEN_MESSAGES))
    return model.generate(prompt, max_tokens=GOLDEN_MAX_TOKENS).text
