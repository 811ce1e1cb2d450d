"""`python -m trainer [prepare|train|finalize] --spec <plan.json | s3://...>`: one stage of
a fine-tuning job, train when none is named (docs/trainer.md, "Stages").

- prepare: validate and split the dataset into the job's data files, write prepared.json;
- train: fine-tune (the default);
- finalize: verify the model files and build the download archives.

Each stage ends with a status event that names it. Exit codes (whetstone.core.trainer_exit):
0 done, 1 failed (a `failed` status event says why), 143 stopped by SIGTERM (training saves
a checkpoint first, and a restart with the same output resumes from it).
"""

from __future__ import annotations

import argparse
import atexit
import os
import sys
import tempfile
import threading
import traceback
from pathlib import Path
from typing import Any, NoReturn

from pydantic import ValidationError

from whetstone.core.events import TrainerErrorCode, TrainerPhase, TrainerStage
from whetstone.core.plan import TrainerPlan
from whetstone.core.trainer_exit import TrainerExit


def read_uri(uri: str) -> bytes:
    """The bytes of a local file or an s3://bucket/key object."""
    if uri.startswith("s3://"):
        from .storage import S3Location

        parent, _, name = uri.rpartition("/")
        return S3Location(parent).read_bytes(name)
    return Path(uri).read_bytes()


def load_plan(uri: str) -> TrainerPlan:
    return TrainerPlan.model_validate_json(read_uri(uri))


def classify_error(exc: BaseException) -> tuple[TrainerErrorCode, str]:
    """A stable error code and a message a person can act on."""
    import torch

    from .callbacks import RunTimeExceeded
    from .data import DataError
    from .loop import NonFiniteLossError
    from .methods import ModelLoadError
    from .storage import StorageError

    if isinstance(exc, RunTimeExceeded):
        return TrainerErrorCode.RUN_TIME_EXCEEDED, str(exc)
    if isinstance(exc, NonFiniteLossError):
        return TrainerErrorCode.NON_FINITE_LOSS, str(exc)
    if isinstance(exc, torch.OutOfMemoryError):
        return (
            TrainerErrorCode.OUT_OF_MEMORY,
            "out of GPU memory: lower batch_size or cutoff_length, enable "
            "gradient_checkpointing, use qlora, or pick a larger gpu_type",
        )
    if isinstance(exc, DataError):
        return TrainerErrorCode.DATA_ERROR, str(exc)
    if isinstance(exc, ModelLoadError):
        return TrainerErrorCode.MODEL_LOAD_ERROR, str(exc)
    if isinstance(exc, StorageError):
        return TrainerErrorCode.STORAGE_ERROR, str(exc)
    return TrainerErrorCode.INTERNAL_ERROR, f"{type(exc).__name__}: {exc}"


def _relaunch_distributed(plan: TrainerPlan, argv: list[str]) -> None:
    """With gpu_count > 1 and that many GPUs, re-exec under torchrun (one process per GPU)."""
    if "LOCAL_RANK" in os.environ or plan.spec.hardware.gpu_count < 2:
        return
    import torch

    gpus = min(plan.spec.hardware.gpu_count, torch.cuda.device_count())
    if gpus < 2:
        return
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={gpus}",
        "-m",
        "trainer",
        *argv,
    ]
    sys.stdout.flush()
    os.execv(sys.executable, command)


def _stage_error(exc: BaseException) -> tuple[TrainerErrorCode, str]:
    """The code of a prepare or finalize failure; these stages never import torch."""
    from .finalize import ArtifactsMissing
    from .storage import StorageError

    if isinstance(exc, ArtifactsMissing):
        return TrainerErrorCode.ARTIFACTS_MISSING, str(exc)
    if isinstance(exc, StorageError):
        return TrainerErrorCode.STORAGE_ERROR, str(exc)
    return TrainerErrorCode.INTERNAL_ERROR, f"{type(exc).__name__}: {exc}"


def run_data_stage(stage: TrainerStage, plan: TrainerPlan, emitter: Any) -> int:
    """Run the prepare or the finalize stage; its last event is its terminal status."""
    from .checkpoints import Interrupted, StopRequest

    StopRequest().install()  # nothing to checkpoint: SIGTERM raises Interrupted at once
    code: TrainerErrorCode | None = None
    try:
        emitter.status(TrainerPhase.LOADING, f"{stage} started")
        if stage is TrainerStage.PREPARE:
            from .prepare import prepare_dataset

            prepared = prepare_dataset(plan, emitter)
            message = "dataset valid" if prepared.valid else f"dataset invalid: {prepared.message}"
        else:
            from .finalize import finalize_outputs

            built = finalize_outputs(plan, emitter)
            message = f"{len(built)} archive(s) built"
        phase, exit_code = TrainerPhase.DONE, TrainerExit.DONE
    except Interrupted:
        phase, exit_code = TrainerPhase.INTERRUPTED, TrainerExit.INTERRUPTED
        message = f"{stage} stopped by SIGTERM"
    except Exception as exc:
        code, message = _stage_error(exc)
        emitter.log("error", f"{stage} failed", traceback=traceback.format_exc(limit=20))
        phase, exit_code = TrainerPhase.FAILED, TrainerExit.FAILED
    emitter.status(phase, message, error_code=code)
    emitter.close()
    return exit_code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trainer", description=__doc__)
    parser.add_argument(
        "stage",
        nargs="?",
        choices=[stage.value for stage in TrainerStage],
        default=TrainerStage.TRAIN.value,
        help="the stage to run (default: train)",
    )
    parser.add_argument("--spec", required=True, help="trainer plan JSON: a path or s3:// URI")
    parser.add_argument("--workdir", default=None, help="local scratch folder")
    raw_argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(raw_argv)
    stage = TrainerStage(args.stage)
    from .train_process import describe, relaunch_for_training

    if stage is TrainerStage.TRAIN and argv is None:  # this process's own command line
        relaunch_for_training()

    # Events own stdout; anything a library prints goes to stderr instead.
    events_stream = sys.stdout
    sys.stdout = sys.stderr

    from .checkpoints import Interrupted, StopRequest
    from .events import EventEmitter, NullSink, StdoutSink, build_sink

    try:
        plan = load_plan(args.spec)
    except (ValidationError, OSError, ValueError) as exc:
        emitter = EventEmitter("unknown", StdoutSink(events_stream), stage)
        emitter.status(
            TrainerPhase.FAILED, f"unreadable plan: {exc}", error_code=TrainerErrorCode.INVALID_PLAN
        )
        emitter.close()
        return TrainerExit.FAILED
    if stage is not TrainerStage.TRAIN:
        sink = build_sink(plan.events, stream=events_stream)
        emitter = EventEmitter(plan.job_id, sink, stage, plan.events.credential)
        return run_data_stage(stage, plan, emitter)
    _relaunch_distributed(plan, raw_argv)

    rank = int(os.environ.get("RANK", "0"))
    sink = build_sink(plan.events, stream=events_stream) if rank == 0 else NullSink()
    emitter = EventEmitter(plan.job_id, sink, credential=plan.events.credential)
    from .job_log import route_library_logs

    route_library_logs(emitter)
    for line in describe():
        emitter.log("info", line)
    stop = StopRequest()
    stop.install()
    workdir = (
        Path(args.workdir or os.environ.get("WHETSTONE_WORKDIR") or tempfile.gettempdir())
        / f"whetstone-{plan.job_id}"
    )
    try:
        from .recipe import run_plan

        result = run_plan(plan, emitter=emitter, workdir=workdir, stop=stop)
    except Interrupted:
        emitter.status(TrainerPhase.INTERRUPTED, "stopped by SIGTERM before training started")
        return TrainerExit.INTERRUPTED
    except Exception as exc:
        code, message = classify_error(exc)
        emitter.log("error", "training failed", traceback=traceback.format_exc(limit=20))
        emitter.status(TrainerPhase.FAILED, message, error_code=code)
        return TrainerExit.FAILED
    finally:
        emitter.close()
    return TrainerExit.DONE if result.outcome == "done" else TrainerExit.INTERRUPTED


def exit_without_teardown(code: int) -> NoReturn:
    """Exit with `code` as the interpreter would, less its teardown of every loaded module."""
    # Freeing torch, transformers and pyarrow object by object took 3-6 s after the last event
    # and kept nothing. Nothing is lost by skipping it: every path of main closes its sink
    # before returning (a StdoutSink writes and flushes each line, an EventBridgeSink's close
    # sends what it buffered before it returns) and run_plan writes every artifact before its
    # last event. What a normal exit does that matters is done here, in its order: wait for
    # non-daemon threads, run the atexit handlers (logging.shutdown flushes log handlers,
    # multiprocessing reaps its children), flush the standard streams.
    for thread in threading.enumerate():
        if thread is not threading.current_thread() and not thread.daemon:
            thread.join()
    atexit._run_exitfuncs()
    try:
        for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
            if stream is not None:
                stream.flush()
    except (OSError, ValueError):
        code = 120  # the status the interpreter exits with when it cannot flush stdout
    os._exit(code)


if __name__ == "__main__":
    exit_without_teardown(main())
