"""The fine-tuning recipe, top-down: config → tokenizer → data → model → trainer → train →
evaluate → save.
"""

from __future__ import annotations

import gc
import importlib.metadata
import json
import math
import os
import platform
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, Literal

import torch

from whetstone.core.catalog.base_models import get_base_model
from whetstone.core.datasets.records import SplitManifest, split_file
from whetstone.core.estimates import resolve_optimizer
from whetstone.core.events import TrainerPhase, TrainingDevice
from whetstone.core.layout import OutputNames, checkpoint_step
from whetstone.core.plan import TrainerPlan
from whetstone.core.run_defaults import (
    dataloader_workers,
    spec_warnings,
    steps_per_epoch,
    warmup_steps,
)
from whetstone.core.serving import GOLDEN_MAX_TOKENS, GOLDEN_MESSAGES, GoldenRecord
from whetstone.core.spec import LORA_METHODS, JobSpec, Method, resolve_precision
from whetstone.inference.generation import ChatModel, golden_answer

from .attention import PACKED_SDPA, register_packed_attention
from .callbacks import (
    CheckpointCallback,
    MetricsCallback,
    RunTimeCapCallback,
    StopOnSignalCallback,
)
from .checkpoints import CheckpointStore, StopRequest
from .data import (
    DataError,
    ExampleEncoder,
    PackingCollator,
    PaddingCollator,
    StreamedSplit,
    TokenizedSplit,
    ensure_chat_ready,
    read_manifest,
    read_split,
)
from .dpo import EVALUATION_KEYS, DpoTrainer, PreferenceCollator, require_data_for_method
from .efficiency import efficiency_meter
from .evaluate import EvaluationInputs, run_evaluation
from .events import EventEmitter
from .fused_norm import use_fused_rms_norm
from .fused_rotary import use_fused_rotary
from .loop import WhetstoneTrainer
from .methods import (
    LoadContext,
    MethodStrategy,
    ModelLoadError,
    merge_adapter,
    strategy_for,
)
from .model_card import CARD_NAME, render_model_card
from .resources import ResourceMonitor
from .storage import Location, open_location

_OPTIMIZERS = {
    "adamw_torch": "adamw_torch",
    "adamw_8bit": "adamw_bnb_8bit",
    "adafactor": "adafactor",
}
_LIBRARIES = (
    "torch",
    "transformers",
    "peft",
    "accelerate",
    "datasets",
    "bitsandbytes",
    "torchao",
    "tokenizers",
    "safetensors",
)


@dataclass
class Runtime:
    """Facts about where this process runs, decided once and logged."""

    on_gpu: bool
    world_size: int
    local_rank: int
    precision: Literal["bf16", "fp16", "fp32"]
    batching: Literal["length_grouped", "packed", "padded"]
    attn_implementation: str
    optimizer: str
    dataloader_workers: int
    warmup_steps: int | None = None  # decided once the train split's size is known
    notes: list[str] = field(default_factory=list)


@dataclass
class RunResult:
    outcome: Literal["done", "interrupted"]
    global_step: int
    results: dict[str, Any]


def _has_flash_attention() -> bool:
    try:
        import flash_attn  # noqa: F401
    except ImportError:
        return False
    return True


def detect_runtime(plan: TrainerPlan) -> Runtime:
    spec = plan.spec
    on_gpu = torch.cuda.is_available()
    precision = resolve_precision(spec, gpu_bf16=torch.cuda.is_bf16_supported() if on_gpu else None)
    flash = on_gpu and _has_flash_attention()
    batching = plan.options.batching
    if batching == "auto":
        # Packing wastes no compute on padding. It needs attention that keeps examples apart:
        # flash-attention's varlen kernel on a GPU, per-example SDPA (trainer.attention) on a
        # CPU. A GPU without flash-attention groups by length instead: one padded SDPA call per
        # batch keeps it busier than a call per example.
        # Prompt tuning's soft prompt and dpo's paired sequences need one row per example.
        packable = (flash or not on_gpu) and spec.method not in (Method.PROMPT_TUNING, Method.DPO)
        batching = "packed" if packable else "length_grouped"
    if flash:
        attention = "flash_attention_2"
    else:
        attention = PACKED_SDPA if batching == "packed" else "sdpa"
    optimizer = _OPTIMIZERS[resolve_optimizer(spec)]
    return Runtime(
        on_gpu=on_gpu,
        world_size=int(os.environ.get("WORLD_SIZE", "1")),
        local_rank=int(os.environ.get("LOCAL_RANK", "0")),
        precision=precision,
        batching=batching,
        attn_implementation=attention,
        optimizer=optimizer,
        dataloader_workers=dataloader_workers(spec, _cpus_available()),
    )


def _cpus_available() -> int:
    """The cores this process may run on (its affinity, as a container's cpuset limits it)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def resolve_model_source(source: str, workdir: Path) -> tuple[str, str | None, str]:
    """(what from_pretrained loads, revision, the name to record) for a model source."""
    if source.startswith("hf://"):
        repo, _, revision = source.removeprefix("hf://").partition("@")
        return repo, revision or None, repo
    if source.startswith("s3://"):
        target = workdir / "base-model"
        if not (target / "config.json").exists():
            open_location(source).download_dir("", target)
        return str(target), None, source
    try:
        repo = get_base_model(source).hf_repo
        return repo, None, repo
    except KeyError:
        pass
    path = Path(source).expanduser()
    if path.is_dir():
        return str(path.resolve()), None, str(path.resolve())
    raise ModelLoadError(
        f"model source {source!r} is not a catalog id, hf://<repo>, s3://... or an existing folder"
    )


def _fsdp_needed(model: Any, runtime: Runtime, spec: JobSpec) -> bool:
    """Full fine-tuning across GPUs shards with FSDP when one GPU cannot hold its state."""
    if spec.tuning_method is not Method.FULL or runtime.world_size < 2 or not runtime.on_gpu:
        return False
    params = sum(p.numel() for p in model.parameters())
    weight = 2 if runtime.precision == "bf16" else 4
    states = {"adamw_torch": 2 * weight, "adamw_bnb_8bit": 2, "adafactor": 0.1}[runtime.optimizer]
    needed = params * (2 * weight + states) * 1.2  # weights, grads, states, some activations
    return bool(needed > 0.9 * torch.cuda.get_device_properties(runtime.local_rank).total_memory)


def _training_arguments(
    plan: TrainerPlan,
    runtime: Runtime,
    output_dir: Path,
    *,
    has_validation: bool,
    max_steps: int,
    fsdp_layers: list[str] | None,
) -> Any:
    from transformers import TrainingArguments

    spec, adv, opts = plan.spec, plan.spec.advanced, plan.options
    evaluate = has_validation and adv.eval_strategy != "no"
    fsdp: dict[str, Any] = {}
    if fsdp_layers is not None:
        fsdp = {
            "fsdp": "full_shard auto_wrap",
            "fsdp_config": {"transformer_layer_cls_to_wrap": fsdp_layers},
        }
    return TrainingArguments(
        output_dir=str(output_dir),
        per_device_train_batch_size=spec.training.batch_size,
        per_device_eval_batch_size=spec.training.batch_size,
        gradient_accumulation_steps=spec.training.gradient_accumulation_steps,
        num_train_epochs=spec.training.epochs,
        max_steps=max_steps,
        learning_rate=spec.training.learning_rate,
        warmup_steps=runtime.warmup_steps or 0,
        weight_decay=spec.training.weight_decay,
        optim=runtime.optimizer,
        logging_steps=adv.logging_steps,
        logging_first_step=True,
        eval_strategy=adv.eval_strategy if evaluate else "no",
        eval_steps=adv.eval_steps,
        eval_on_start=evaluate and opts.evaluate_at_start,
        save_strategy=adv.save_strategy,
        save_steps=adv.save_steps,
        save_total_limit=opts.save_total_limit,
        load_best_model_at_end=evaluate and adv.early_stopping,
        metric_for_best_model="eval_loss",
        greater_is_better=False,
        prediction_loss_only=True,
        dataloader_num_workers=runtime.dataloader_workers,
        dataloader_pin_memory=runtime.on_gpu,
        bf16=runtime.precision == "bf16",
        fp16=runtime.precision == "fp16",
        use_cpu=not runtime.on_gpu,
        activation_checkpointing=adv.gradient_checkpointing,
        activation_checkpointing_kwargs={"use_reentrant": False},
        seed=adv.seed,
        data_seed=adv.seed,
        report_to="none",
        disable_tqdm=True,
        remove_unused_columns=False,
        label_names=["labels"],
        include_num_input_tokens_seen="non_padding",
        ddp_find_unused_parameters=False,
        **fsdp,
    )


def _base_config(model: Any) -> Any:
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return base.config


def _library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in _LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


@dataclass
class LoadedData:
    """The splits of a job, encoded, and what the run manifest records about them."""

    manifest: SplitManifest
    train: TokenizedSplit | StreamedSplit
    validation: TokenizedSplit
    test: TokenizedSplit
    train_examples: int
    hashes: dict[str, str]
    group_lengths: list[int] | None


def run_plan(
    plan: TrainerPlan, *, emitter: EventEmitter, workdir: Path, stop: StopRequest
) -> RunResult:
    """Run one training job end to end; raises on failure (the caller reports it)."""
    started = datetime.now(UTC)
    workdir.mkdir(parents=True, exist_ok=True)
    emitter.status(TrainerPhase.LOADING, "loading model and data")

    runtime = detect_runtime(plan)
    _report_runtime(runtime, emitter)
    output = open_location(plan.output)
    source = open_location(plan.data)
    model_path, revision, model_name = resolve_model_source(plan.resolved_model_source, workdir)
    tokenizer = _load_tokenizer(model_path, revision, emitter)
    data = _load_data(plan, runtime, source, tokenizer, emitter)
    strategy, model = _load_model(plan, runtime, model_path, revision, emitter)
    store = CheckpointStore(output, workdir)
    trainer, metrics, use_fsdp = _build_trainer(
        plan, runtime, model, tokenizer, data, store, stop, emitter
    )

    cap = RunTimeCapCallback(plan.options.max_run_hours)
    trainer.add_callback(cap)

    with ResourceMonitor(emitter, plan.events.resources_interval_s):
        _train(trainer, store, stop, emitter, _device(runtime))
        exceeded = None if stop.requested else cap.exceeded()
        if exceeded is not None:
            raise exceeded
        if stop.requested:
            emitter.status(
                TrainerPhase.INTERRUPTED,
                "stopped by SIGTERM after saving a checkpoint",
                step=trainer.state.global_step,
            )
            return RunResult("interrupted", trainer.state.global_step, {})
        results = _evaluate(trainer, data.test, emitter)
        results["efficiency"] = metrics.efficiency.report()
        evaluation = run_evaluation(
            plan.spec,
            EvaluationInputs(
                trainer.model,
                tokenizer,
                source,
                model_path,
                revision,
                results.get("test_loss"),
                runtime.world_size,
            ),
            emitter,
        )
        model_dir = _save_model(trainer, workdir, emitter)

    step = trainer.state.global_step
    if int(os.environ.get("RANK", "0")) == 0:
        output.write_bytes(OutputNames.EVALUATION, evaluation.model_dump_json(indent=2).encode())
        extra = _manifest_extra(started, data, runtime, use_fsdp, model, revision)
        extra["evaluation"] = evaluation.model_dump(mode="json")
        extra["efficiency"] = results["efficiency"]
        _write_artifacts(
            plan,
            output=output,
            workdir=workdir,
            model_dir=model_dir,
            model_name=model_name,
            model_path=model_path,
            revision=revision,
            trains_adapter=strategy.trains_adapter,
            history=metrics.history,
            results=results,
            manifest_extra=extra,
            emitter=emitter,
        )
        del trainer, model  # the golden answer loads the saved model afresh
        _record_golden(output, model_dir, model_path, runtime, emitter)
    emitter.status(TrainerPhase.DONE, "training complete", step=step)
    return RunResult("done", step, results)


def _record_golden(
    output: Location, model_dir: Path, model_path: str, runtime: Runtime, emitter: EventEmitter
) -> None:
    """Record the saved model's greedy answer to the golden prompt (OutputNames.GOLDEN), which a
    deployment must repeat. The model is loaded back as a server loads it (the base in its
    own dtype with the adapter, or the full model); one that cannot be loaded here records
    nothing, and its deployments say that their answers went unchecked."""
    gc.collect()
    if runtime.on_gpu:
        torch.cuda.empty_cache()
    try:
        chat = ChatModel.load(model_dir, base_model=model_path)
        if runtime.on_gpu:
            chat.model.to("cuda")
        record = GoldenRecord(
            messages=list(GOLDEN_MESSAGES), max_tokens=GOLDEN_MAX_TOKENS, answer=golden_answer(chat)
        )
        output.write_bytes(OutputNames.GOLDEN, record.model_dump_json(indent=2).encode())
    # The model is trained and saved: whatever goes wrong here (out of memory, a template
    # that fails, storage) must not fail the run, only leave its deployments unchecked.
    except Exception as error:
        emitter.log(
            "warning",
            "no golden answer recorded, deployments will not check it: "
            f"{type(error).__name__}: {error}",
        )


def _device(runtime: Runtime) -> TrainingDevice:
    if not runtime.on_gpu:
        return TrainingDevice(gpu_count=0)
    return TrainingDevice(
        gpu_count=torch.cuda.device_count(), gpu_name=torch.cuda.get_device_name(0)
    )


def _report_runtime(runtime: Runtime, emitter: EventEmitter) -> None:
    emitter.log(
        "info",
        "runtime decided",
        device="cuda" if runtime.on_gpu else "cpu",
        gpus=torch.cuda.device_count() if runtime.on_gpu else 0,
        world_size=runtime.world_size,
        precision=runtime.precision,
        batching=runtime.batching,
        attention=runtime.attn_implementation,
        optimizer=runtime.optimizer,
        dataloader_workers=runtime.dataloader_workers,
    )


def _load_tokenizer(model_path: str, revision: str | None, emitter: EventEmitter) -> Any:
    """The model's tokenizer, given a chat template and a pad token when it lacks them."""
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(model_path, revision=revision)
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot load the tokenizer from {model_path}: {exc}") from exc
    for change in ensure_chat_ready(tokenizer):
        emitter.log("warning", change)
    return tokenizer


def _load_data(
    plan: TrainerPlan, runtime: Runtime, data: Location, tokenizer: Any, emitter: EventEmitter
) -> LoadedData:
    """Encode the splits (the train split streamed when the spec asks) and report them."""
    spec = plan.spec
    manifest = read_manifest(data)
    require_data_for_method(manifest.kind, spec.method)
    encoder = ExampleEncoder(tokenizer, spec.sequence_length, plan.options.loss_on)
    hashes: dict[str, str] = {}
    validation, hashes["validation"] = read_split(data, "validation", encoder)
    test, hashes["test"] = read_split(data, "test", encoder)
    train: TokenizedSplit | StreamedSplit
    group_lengths: list[int] | None = None
    train_examples = manifest.counts.get("train", 0)
    if spec.dataset.max_samples is not None:
        train_examples = min(train_examples, spec.dataset.max_samples)
    if spec.dataset.streaming:
        train = StreamedSplit(
            lambda: data.iter_lines(split_file("train")),
            encoder,
            seed=spec.advanced.seed,
            buffer=plan.options.stream_buffer,
            group_batch=spec.training.batch_size if runtime.batching == "length_grouped" else None,
            limit=spec.dataset.max_samples,
        )
    else:
        train, hashes["train"] = read_split(data, "train", encoder, limit=spec.dataset.max_samples)
        train_examples = len(train)
        if not train_examples:
            raise DataError("the train split has no example left to train on")
        if runtime.batching == "length_grouped":
            group_lengths = train.lengths
    emitter.log(
        "info",
        "data loaded",
        train=train_examples,
        validation=len(validation),
        test=len(test),
        dropped_without_labels=encoder.dropped,
        streaming=spec.dataset.streaming,
        cutoff=spec.sequence_length,
    )
    return LoadedData(manifest, train, validation, test, train_examples, hashes, group_lengths)


def _load_model(
    plan: TrainerPlan,
    runtime: Runtime,
    model_path: str,
    revision: str | None,
    emitter: EventEmitter,
) -> tuple[MethodStrategy, Any]:
    """The base model with the method applied, initialised from the job's seed (LoRA A
    matrices, soft prompts)."""
    from transformers import set_seed

    spec = plan.spec
    set_seed(spec.advanced.seed)
    strategy = strategy_for(spec.tuning_method)
    if runtime.attn_implementation == PACKED_SDPA:
        register_packed_attention()
    ctx = LoadContext(
        model_path=model_path,
        revision=revision,
        precision=runtime.precision,
        on_gpu=runtime.on_gpu,
        device_map={"": runtime.local_rank}
        if runtime.on_gpu and spec.tuning_method is Method.QLORA
        else None,
        attn_implementation=runtime.attn_implementation,
    )
    model = strategy.load(spec, ctx)
    fused_norms = use_fused_rms_norm(model)
    fused_rotary = use_fused_rotary(model)
    # No KV cache in training: it wastes memory, and with one, transformers stops reading
    # packed-sequence boundaries from the position ids.
    _base_config(model).use_cache = False
    for note in ctx.notes:
        emitter.log("info", note)
    emitter.log(
        "info",
        "model ready",
        method=spec.method.value,
        trainable_parameters=sum(p.numel() for p in model.parameters() if p.requires_grad),
        total_parameters=sum(p.numel() for p in model.parameters()),
        fused_rms_norms=fused_norms,
        fused_rotary=fused_rotary,
    )
    return strategy, model


def _build_trainer(
    plan: TrainerPlan,
    runtime: Runtime,
    model: Any,
    tokenizer: Any,
    data: LoadedData,
    store: CheckpointStore,
    stop: StopRequest,
    emitter: EventEmitter,
) -> tuple[WhetstoneTrainer, MetricsCallback, bool]:
    """The Trainer with its arguments, collator and callbacks; also whether it uses FSDP."""
    from transformers import EarlyStoppingCallback
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    spec = plan.spec
    run_steps = steps_per_epoch(data.train_examples, spec.training, runtime.world_size)
    run_steps *= spec.training.epochs
    max_steps = plan.options.max_steps or (run_steps if spec.dataset.streaming else -1)
    _decide_warmup(plan, runtime, plan.options.max_steps or run_steps, emitter)
    fsdp_layers = list(getattr(model, "_no_split_modules", None) or [])
    use_fsdp = _fsdp_needed(model, runtime, spec)
    if use_fsdp and runtime.optimizer == "adamw_bnb_8bit":
        runtime.optimizer = "adamw_torch"
        emitter.log("info", "fsdp shards optimizer states; using adamw_torch")
    args = _training_arguments(
        plan,
        runtime,
        store.local_dir,
        has_validation=len(data.validation) > 0,
        max_steps=max_steps,
        fsdp_layers=fsdp_layers if use_fsdp else None,
    )
    if len(data.validation) == 0 and spec.advanced.early_stopping:
        emitter.log("warning", "no validation split: evaluation and early stopping are off")
    meter = efficiency_meter(
        model, spec, on_gpu=runtime.on_gpu, world_size=runtime.world_size, emitter=emitter
    )
    metrics = MetricsCallback(
        emitter,
        spec.training.batch_size * spec.training.gradient_accumulation_steps * runtime.world_size,
        meter,
    )
    callbacks: list[Any] = [metrics, CheckpointCallback(store, emitter), StopOnSignalCallback(stop)]
    if args.load_best_model_at_end:
        callbacks.append(EarlyStoppingCallback(spec.advanced.early_stopping_patience))
    padding = PaddingCollator(
        pad_id=int(tokenizer.pad_token_id), multiple_of=8 if runtime.on_gpu else 1
    )
    collator: Any = PackingCollator() if runtime.batching == "packed" else padding
    preference: dict[str, Any] = {}
    if spec.method is Method.DPO:
        collator = PreferenceCollator(padding)
        preference = {"beta": spec.dpo.beta, "trains_adapter": spec.dpo.tuning != "full"}
    trainer = (DpoTrainer if preference else WhetstoneTrainer)(
        **preference,
        model=model,
        args=args,
        train_dataset=data.train,
        eval_dataset=data.validation.sorted_by_length() if len(data.validation) else None,
        data_collator=collator,
        processing_class=tokenizer,
        callbacks=callbacks,
        group_lengths=data.group_lengths,
        efficiency=meter,
    )
    trainer.remove_callback(PrinterCallback)  # both print to stdout, the event stream
    trainer.remove_callback(ProgressCallback)
    return trainer, metrics, use_fsdp


def _decide_warmup(
    plan: TrainerPlan, runtime: Runtime, total_steps: int, emitter: EventEmitter
) -> None:
    """Set the run's warmup from its optimizer steps and log it, warning when a warmup set by
    hand outlasts the run."""
    runtime.warmup_steps = warmup_steps(plan.spec, total_steps)
    for warning in spec_warnings(plan.spec, total_steps):
        emitter.log("warning", warning.message, code=warning.code)
    emitter.log(
        "info",
        "schedule decided",
        optimizer_steps=total_steps,
        warmup_steps=runtime.warmup_steps,
        warmup_derived=plan.spec.training.warmup_steps is None,
    )


def _train(
    trainer: WhetstoneTrainer,
    store: CheckpointStore,
    stop: StopRequest,
    emitter: EventEmitter,
    device: TrainingDevice,
) -> None:
    """Train, resuming from the latest checkpoint at the output; SIGTERM ends it early."""
    resume = store.restore_latest()
    if resume is not None:
        emitter.log("info", "resuming from checkpoint", checkpoint=resume.name)
    step = checkpoint_step(resume.name) if resume else 0
    emitter.status(TrainerPhase.TRAINING, step=step, device=device)
    stop.training = True
    try:
        trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    finally:
        stop.training = False


def _evaluate(
    trainer: WhetstoneTrainer, test: TokenizedSplit, emitter: EventEmitter
) -> dict[str, Any]:
    """The results of the run: its training state, then the loss on the test split."""
    from transformers import EarlyStoppingCallback

    state = trainer.state
    results: dict[str, Any] = {
        "global_step": state.global_step,
        "epoch": state.epoch,
        "best_eval_loss": state.best_metric,
        "best_checkpoint": Path(state.best_model_checkpoint).name
        if state.best_model_checkpoint
        else None,
        "stopped_early": state.global_step < state.max_steps,
    }
    trainer.remove_callback(EarlyStoppingCallback)  # it would read the test metrics
    if len(test):
        emitter.status(TrainerPhase.EVALUATING, "final evaluation on the test split")
        test_metrics = trainer.evaluate(test.sorted_by_length(), metric_key_prefix="test")
        results["test_loss"] = test_metrics["test_loss"]
        results["test_perplexity"] = math.exp(min(test_metrics["test_loss"], 50.0))
        # dpo's held-out preference accuracies: its loss alone says little of what it learned
        results |= {
            k: v for k, v in test_metrics.items() if k.removeprefix("test_") in EVALUATION_KEYS
        }
        emitter.log(
            "info",
            "test evaluation",
            loss=results["test_loss"],
            perplexity=results["test_perplexity"],
        )
    return results


def _save_model(trainer: WhetstoneTrainer, workdir: Path, emitter: EventEmitter) -> Path:
    """Save the trained model (or adapter) and tokenizer locally; returns the folder."""
    emitter.status(TrainerPhase.SAVING, "writing artifacts")
    model_dir = workdir / OutputNames.MODEL
    # A workdir reused by a resumed run may hold an earlier save (an adapter beside a
    # full model would make loaders pick the wrong one): start the folder afresh.
    shutil.rmtree(model_dir, ignore_errors=True)
    _base_config(trainer.model).use_cache = True  # saved for inference
    trainer.save_model(str(model_dir))
    return model_dir


def _manifest_extra(
    started: datetime,
    data: LoadedData,
    runtime: Runtime,
    use_fsdp: bool,
    model: Any,
    revision: str | None,
) -> dict[str, Any]:
    """What the run manifest records beyond the plan: data hashes, runtime, revision."""
    return {
        "started_at": started.isoformat(),
        "dataset": {
            "source_sha256": data.manifest.sha256,
            "split_seed": data.manifest.seed,
            "counts": data.manifest.counts,
            "file_sha256": data.hashes,
        },
        "runtime": {
            "precision": runtime.precision,
            "batching": runtime.batching,
            "attention": runtime.attn_implementation,
            "optimizer": runtime.optimizer,
            "world_size": runtime.world_size,
            "fsdp": use_fsdp,
            "warmup_steps": runtime.warmup_steps,
            "dataloader_workers": runtime.dataloader_workers,
            "device": torch.cuda.get_device_name(0) if runtime.on_gpu else "cpu",
        },
        "model_revision": getattr(model.config, "_commit_hash", None) or revision,
    }


def _write_artifacts(
    plan: TrainerPlan,
    *,
    output: Any,
    workdir: Path,
    model_dir: Path,
    model_name: str,
    model_path: str,
    revision: str | None,
    trains_adapter: bool,
    history: list[dict[str, Any]],
    results: dict[str, Any],
    manifest_extra: dict[str, Any],
    emitter: EventEmitter,
) -> None:
    adapter_config = model_dir / "adapter_config.json"
    if adapter_config.exists():  # record the base as the user named it, not a temp folder
        config = json.loads(adapter_config.read_text())
        config["base_model_name_or_path"] = model_name
        adapter_config.write_text(json.dumps(config, indent=2))
    for stale in ("training_args.bin",):
        (model_dir / stale).unlink(missing_ok=True)
    card = partial(
        render_model_card,
        job_id=plan.job_id,
        spec=plan.spec,
        base_model=model_name,
        dataset=manifest_extra["dataset"],
        runtime=manifest_extra["runtime"],
        history=history,
        results=results,
    )
    (model_dir / CARD_NAME).write_text(card(adapter=trains_adapter))
    output.upload_dir(model_dir, OutputNames.MODEL)
    if plan.options.merge_adapter:
        if plan.spec.tuning_method in LORA_METHODS:
            merged_dir = workdir / OutputNames.MERGED
            merge_adapter(model_dir, model_path, revision, merged_dir)
            from transformers import AutoTokenizer

            AutoTokenizer.from_pretrained(model_dir).save_pretrained(merged_dir)
            (merged_dir / CARD_NAME).write_text(card(adapter=False))
            output.upload_dir(merged_dir, OutputNames.MERGED)
            results["merged_model"] = output.child_uri(OutputNames.MERGED)
        else:
            emitter.log("warning", "merge_adapter applies to lora and qlora only; skipped")
    results["model"] = output.child_uri(OutputNames.MODEL)
    results["artifact_kind"] = "adapter" if trains_adapter else "full_model"
    output.write_bytes(
        OutputNames.METRICS, "".join(json.dumps(row) + "\n" for row in history).encode()
    )
    output.write_bytes(OutputNames.RESULTS, json.dumps(results, indent=2, default=str).encode())
    manifest = {
        "job_id": plan.job_id,
        "spec": plan.spec.model_dump(mode="json"),
        "plan": plan.model_dump(mode="json", exclude={"events": {"credential"}}),
        "seed": plan.spec.advanced.seed,
        "base_model": model_name,
        "libraries": _library_versions(),
        "image_digest": plan.image_digest,
        "source_revision": plan.source_revision,
        "finished_at": datetime.now(UTC).isoformat(),
        **manifest_extra,
    }
    output.write_bytes(
        OutputNames.RUN_MANIFEST, json.dumps(manifest, indent=2, default=str).encode()
    )
