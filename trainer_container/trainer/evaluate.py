"""The evaluation step: greedy answers of the fine-tuned model and of its base to held-out
prompts, scored by exact match and ROUGE-L (whetstone.core.evaluation holds the report).

It runs in the train stage right after the test loss, while the trained model is loaded. An
adapter's base is the same model with the adapter disabled; a fully fine-tuned model's base
is loaded again only when the memory left holds it twice over, else the report says why it
was not scored. Its cost is bounded by `evaluation.max_samples`, `evaluation.max_new_tokens`
and a time cap (`EVALUATION_TIME_CAP_S`).
"""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch

from whetstone.core.datasets.records import Example, ExampleKind, split_file
from whetstone.core.evaluation import (
    EVALUATION_TIME_CAP_S,
    SAMPLE_ROWS,
    EvaluationReport,
    EvaluationRow,
    EvaluationScores,
    EvaluationSource,
    perplexity,
    skipped,
)
from whetstone.core.events import TrainerPhase
from whetstone.core.spec import ADAPTER_METHODS, JobSpec
from whetstone.inference.generation import ChatModel

from .data import DataError
from .events import EventEmitter
from .storage import Location, open_location

_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class Case:
    """One prompt (the turns before the answer) and the answer expected."""

    messages: list[dict[str, str]]
    expected: str


def case_of(example: Example) -> Case | None:
    """The prompt and expected answer of a test example (for a preference pair, the preferred
    answer); None for plain text, which has none."""
    if example.kind is ExampleKind.CHAT and example.messages:
        turns = list(example.messages)
        last = max(i for i, t in enumerate(turns) if t.role == "assistant")
        prompt = [{"role": t.role, "content": t.content} for t in turns[:last]]
        return Case(prompt, turns[last].content) if prompt else None
    if example.kind is ExampleKind.COMPLETION:
        return Case([{"role": "user", "content": example.prompt or ""}], example.completion or "")
    if example.kind is ExampleKind.CLASSIFICATION:
        return Case([{"role": "user", "content": example.text or ""}], example.label or "")
    if example.kind is ExampleKind.PREFERENCE and example.messages:  # dpo: the preferred answer
        prompt = [{"role": t.role, "content": t.content} for t in example.messages]
        return Case(prompt, example.chosen or "")
    return None


def test_split_cases(data: Location, limit: int) -> list[Case]:
    """Up to `limit` prompt/answer cases from the test split, in file order."""
    if not data.exists(split_file("test")):
        return []
    cases: list[Case] = []
    for line in data.iter_lines(split_file("test")):
        if len(cases) >= limit:
            break
        if line.strip():
            case = case_of(Example.model_validate_json(line))
            if case is not None:
                cases.append(case)
    return cases


def prompt_file_cases(source: str, limit: int) -> list[Case]:
    """Up to `limit` cases from a JSON-lines file of {"prompt", "expected"} rows (a local path
    or an s3:// URI)."""
    parent, _, name = source.rstrip("/").rpartition("/")
    try:
        raw = open_location(parent or ".").read_bytes(name)
    except Exception as error:
        raise DataError(f"evaluation.prompts_source {source!r} is unreadable: {error}") from error
    cases: list[Case] = []
    for number, line in enumerate(raw.splitlines(), start=1):
        if len(cases) >= limit:
            break
        if not line.strip():
            continue
        row = json.loads(line)
        if not isinstance(row, dict) or not {"prompt", "expected"} <= row.keys():
            raise DataError(
                f"evaluation.prompts_source line {number} needs the keys prompt and expected"
            )
        cases.append(Case([{"role": "user", "content": str(row["prompt"])}], str(row["expected"])))
    return cases


def exact_match(answer: str, expected: str) -> bool:
    """Equal once surrounding and repeated whitespace is ignored."""
    return answer.split() == expected.split()


class _WordTokenizer:
    """Lower-cased word tokens in any script (rouge-score's own keeps ASCII letters only)."""

    def tokenize(self, text: str) -> list[str]:
        return _WORD.findall(text.lower())


def score(answers: list[str], expected: list[str]) -> EvaluationScores:
    """Exact-match rate and mean ROUGE-L F-measure of answers against expected texts."""
    from rouge_score.rouge_scorer import RougeScorer

    scorer = RougeScorer(["rougeL"], tokenizer=_WordTokenizer())
    pairs = list(zip(answers, expected, strict=True))
    if not pairs:
        return EvaluationScores(exact_match=0.0, rouge_l=0.0)
    matches = sum(exact_match(a, e) for a, e in pairs)
    rouge = sum(scorer.score(e, a)["rougeL"].fmeasure for a, e in pairs)
    return EvaluationScores(exact_match=matches / len(pairs), rouge_l=rouge / len(pairs))


@dataclass
class Generator:
    """Answers prompts with the fine-tuned model and, where it can, with the base."""

    chat: ChatModel
    max_new_tokens: int
    base_chat: ChatModel | None = None  # a separately loaded base (full fine-tuning)
    adapter: bool = False  # the base is the model with its adapter disabled

    @property
    def scores_base(self) -> bool:
        return self.adapter or self.base_chat is not None

    def _answer(self, chat: ChatModel, messages: list[dict[str, str]]) -> str:
        prompt = chat.chat_prompt(messages)
        return chat.generate(prompt, max_tokens=self.max_new_tokens).text

    def fine_tuned(self, messages: list[dict[str, str]]) -> str:
        return self._answer(self.chat, messages)

    def base(self, messages: list[dict[str, str]]) -> str | None:
        if self.base_chat is not None:
            return self._answer(self.base_chat, messages)
        if not self.adapter:
            return None
        with self.chat.model.disable_adapter():  # type: ignore[operator]
            return self._answer(self.chat, messages)


def run_cases(
    generator: Generator, cases: list[Case], *, time_cap_s: float
) -> tuple[list[EvaluationRow], bool, float]:
    """Answer each case until the time cap; returns the rows, whether the cap cut them
    short, and the seconds spent."""
    started = time.monotonic()
    rows: list[EvaluationRow] = []
    for case in cases:
        if time.monotonic() - started > time_cap_s:
            return rows, True, time.monotonic() - started
        rows.append(
            EvaluationRow(
                prompt=case.messages[-1]["content"],
                expected=case.expected,
                fine_tuned=generator.fine_tuned(case.messages),
                base=generator.base(case.messages),
            )
        )
    return rows, False, time.monotonic() - started


def _base_fits(model: Any) -> bool:
    """Whether a second copy of the model's weights fits in the memory left, twice over."""
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    if next(model.parameters()).is_cuda:
        free, _ = torch.cuda.mem_get_info()
    else:
        import psutil

        free = psutil.virtual_memory().available
    return bool(free > 2 * weights)


def _load_base(model: Any, tokenizer: Any, model_path: str, revision: str | None) -> ChatModel:
    """The base weights loaded again, in the trained model's dtype and on its device."""
    from transformers import AutoModelForCausalLM

    parameter = next(model.parameters())
    base = AutoModelForCausalLM.from_pretrained(
        model_path, revision=revision, dtype=parameter.dtype
    )
    return ChatModel(base.to(parameter.device).eval(), tokenizer)


@contextlib.contextmanager
def generating(model: Any) -> Iterator[None]:
    """The model set up to generate (eval mode, KV cache, plain SDPA attention: the packed
    attention of training takes whole rows only), then set back."""
    config = model.get_base_model().config if hasattr(model, "get_base_model") else model.config
    use_cache, attention = config.use_cache, config._attn_implementation
    config.use_cache = True
    if attention not in ("sdpa", "eager", "flash_attention_2"):
        model.set_attn_implementation("sdpa")
    model.eval()
    try:
        yield
    finally:
        config.use_cache = use_cache
        if config._attn_implementation != attention:
            model.set_attn_implementation(attention)


@dataclass
class EvaluationInputs:
    """What the evaluation step needs from the recipe: the trained model, where its base and
    data lie, the test loss and how many processes run."""

    model: Any
    tokenizer: Any
    data: Location
    model_path: str
    revision: str | None
    test_loss: float | None
    world_size: int


def _prompts(spec: JobSpec, data: Location) -> tuple[EvaluationSource, list[Case]]:
    settings = spec.evaluation
    if settings.prompts_source:
        return "prompts_source", prompt_file_cases(settings.prompts_source, settings.max_samples)
    return "test_split", test_split_cases(data, settings.max_samples)


def _generator(spec: JobSpec, inputs: EvaluationInputs) -> tuple[Generator, str | None]:
    """The generator of the trained model and its base, and why the base is not scored."""
    chat = ChatModel(inputs.model, inputs.tokenizer)
    max_new_tokens = spec.evaluation.max_new_tokens
    if spec.tuning_method in ADAPTER_METHODS:
        return Generator(chat, max_new_tokens, adapter=True), None
    if not _base_fits(inputs.model):
        note = (
            "full fine-tuning: the memory left cannot hold a second copy of the base "
            "weights, so only the fine-tuned model was scored"
        )
        return Generator(chat, max_new_tokens), note
    base = _load_base(inputs.model, inputs.tokenizer, inputs.model_path, inputs.revision)
    return Generator(chat, max_new_tokens, base_chat=base), None


def evaluate_generations(spec: JobSpec, inputs: EvaluationInputs) -> EvaluationReport:
    """The evaluation step of a trained model: skipped (saying why) or scored."""
    loss = inputs.test_loss
    if not spec.evaluation.enabled:
        return skipped("evaluation.enabled is false", test_loss=loss)
    if inputs.world_size > 1:
        return skipped(
            "generations are scored in single-process runs only; this run used "
            f"{inputs.world_size} processes",
            test_loss=loss,
        )
    source, cases = _prompts(spec, inputs.data)
    if not cases:
        return skipped(
            "no prompt with an expected answer to evaluate: the test split is empty or holds "
            "plain text only",
            test_loss=loss,
        )
    generator, base_note = _generator(spec, inputs)
    with generating(inputs.model):
        rows, capped, seconds = run_cases(generator, cases, time_cap_s=EVALUATION_TIME_CAP_S)
    expected = [row.expected for row in rows]
    return EvaluationReport(
        status="completed",
        source=source,
        samples=len(rows),
        max_new_tokens=spec.evaluation.max_new_tokens,
        fine_tuned=score([row.fine_tuned for row in rows], expected),
        base=score([row.base or "" for row in rows], expected) if generator.scores_base else None,
        base_note=base_note,
        test_loss=loss,
        test_perplexity=perplexity(loss),
        rows=rows[:SAMPLE_ROWS],
        seconds=round(seconds, 3),
        time_cap_s=EVALUATION_TIME_CAP_S,
        time_capped=capped,
    )


def run_evaluation(
    spec: JobSpec, inputs: EvaluationInputs, emitter: EventEmitter
) -> EvaluationReport:
    """The evaluation step as the recipe runs it: an `evaluating` status, the report, a log
    line of its scores. The model is trained by now: a failure here leaves a skipped report
    and a warning, never a failed run."""
    emitter.status(TrainerPhase.EVALUATING, "scoring generations of the fine-tuned and base model")
    try:
        report = evaluate_generations(spec, inputs)
    except Exception as error:
        emitter.log("warning", f"evaluation failed: {type(error).__name__}: {error}")
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        reason = f"evaluation failed: {type(error).__name__}: {error}"
        return skipped(reason, test_loss=inputs.test_loss)
    if report.status == "skipped":
        emitter.log("info", f"evaluation skipped: {report.reason}")
    else:
        emitter.log(
            "info",
            "evaluation scored",
            samples=report.samples,
            seconds=report.seconds,
            fine_tuned=report.fine_tuned.model_dump() if report.fine_tuned else None,
            base=report.base.model_dump() if report.base else None,
            time_capped=report.time_capped,
        )
    return report
