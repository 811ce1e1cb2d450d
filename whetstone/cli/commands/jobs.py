"""`whet jobs ...` and `whet stats`: create, watch, manage, download and deploy jobs."""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path
from typing import Any, get_args

from whetstone.api.schemas.deployments import DeploymentResponse
from whetstone.api.schemas.jobs import JobResponse
from whetstone.api.schemas.transfers import ArtifactName
from whetstone.cli.commands.common import (
    EXIT_JOB_FAILED,
    EXIT_JOB_PAUSED,
    EXIT_OK,
    EXIT_USAGE,
    Handler,
    api_options,
    connect,
    emit,
    timestamp,
    wants_json,
)
from whetstone.cli.commands.evaluation import show_evaluation
from whetstone.cli.commands.metrics import show_metrics
from whetstone.cli.output import ProgressBar, duration, fields, inline, table, to_json, usd
from whetstone.client import Job, load_job_config
from whetstone.core.job import LOG_LEVELS, LogEntry
from whetstone.core.lifecycle import JobStatus, status_label
from whetstone.core.spec import Method

DEFAULT_POLL_S = 2.0


def _hardware(job: JobResponse) -> str:
    """What the job ran on once the trainer said; what it asked for until then."""
    if job.device is not None:
        return job.device.label
    return f"{job.spec.hardware.gpu_count} x {job.spec.hardware.gpu_type}"


def _row(job: JobResponse) -> list[object]:
    return [
        job.job_id,
        job.name,
        status_label(job.status),
        job.spec.base_model,
        job.spec.method,
        _hardware(job),
        job.created_at,
        usd(job.cost.current_usd),
    ]


JOB_HEADERS = ["JOB ID", "NAME", "STATUS", "BASE MODEL", "METHOD", "HARDWARE", "CREATED", "COST"]


def _efficiency(metrics: dict[str, float]) -> str:
    """e.g. '1,568 useful tok/s, 4.6% padding, MFU 12.0%' (MFU unknown on an uncatalogued GPU)."""
    mfu = metrics.get("mfu")
    return (
        f"{metrics['useful_tokens_per_second']:,.0f} useful tok/s, "
        f"{metrics.get('padding_waste_pct', 0.0):.1f}% padding, "
        f"MFU {'-' if mfu is None else f'{mfu:.1%}'}"
    )


def _describe(job: JobResponse) -> str:
    progress = job.progress
    pairs: list[tuple[str, object]] = [
        ("job", job.job_id),
        ("name", job.name),
        ("status", status_label(job.status)),
        ("base model", job.spec.base_model),
        ("method", job.spec.method),
        ("hardware", _hardware(job)),
        ("dataset", job.dataset.source),
        ("examples", job.dataset.num_examples),
        ("created", job.created_at),
        ("finished", job.finished_at),
        ("progress", f"step {progress.step}/{progress.max_steps}, epoch {progress.epoch:.2f}"),
        ("ETA", duration(None if job.is_terminal else progress.eta_seconds)),
        (
            "cost",
            f"{usd(job.cost.current_usd)} of ~{usd(job.cost.estimated_total_usd)} "
            f"at {usd(job.cost.hourly_rate_usd)}/h",
        ),
        (
            "estimate",
            f"{job.estimate.estimated_hours:.2f} h, {usd(job.estimate.estimated_cost_usd)}"
            if job.estimate
            else "after the prepare stage reads the model",
        ),
    ]
    pairs += [(name, value) for name, value in sorted(job.latest_metrics.items())]
    if "useful_tokens_per_second" in job.latest_metrics:
        pairs.append(("efficiency", _efficiency(job.latest_metrics)))
    if job.dataset.warnings:
        pairs.append(("dataset warnings", ", ".join(job.dataset.warnings)))
    if job.error is not None:
        pairs.append(("error", f"{job.error.message} ({job.error.code} at {job.error.step})"))
    history = table(
        ["STATUS", "AT", "MESSAGE"],
        [[status_label(change.status), change.at, change.message] for change in job.status_history],
    )
    return fields(pairs) + "\n\n" + history


def _await(args: argparse.Namespace, job: Job) -> int:
    """Wait for the job with a progress bar; print the final record; 3 if it did not complete."""
    bar = ProgressBar()
    try:
        final = job.wait(poll_s=args.poll, on_update=bar.update)
    finally:
        bar.close()
    emit(args, final, lambda: _describe(final))
    if final.status is JobStatus.COMPLETED:
        return EXIT_OK
    if final.status is JobStatus.PAUSED:
        why = final.status_history[-1].message if final.status_history else None
        print(
            f"whet: job {final.job_id} paused{f' ({why})' if why else ''}; continue it with "
            f"`whet jobs resume {final.job_id}`",
            file=sys.stderr,
        )
        return EXIT_JOB_PAUSED
    reason = f": {final.error.message}" if final.error else ""
    print(f"whet: job {final.job_id} ended {final.status}{reason}", file=sys.stderr)
    return EXIT_JOB_FAILED


def _create(args: argparse.Namespace) -> int:
    client = connect(args)
    if args.dataset is not None:
        job = client.create_job(
            args.config,
            args.dataset,
            name=args.name,
            idempotency_key=args.idempotency_key,
            allow_over_budget=args.allow_over_budget,
        )
    else:
        name, spec = load_job_config(args.config)
        if not (spec.get("dataset") or {}).get("source"):
            print(
                "whet: give a dataset file, or set dataset.source in the config "
                "(an upload id, s3://... or hf://...)",
                file=sys.stderr,
            )
            return EXIT_USAGE
        job = client.create_job_json(
            spec,
            name=args.name or name,
            idempotency_key=args.idempotency_key,
            allow_over_budget=args.allow_over_budget,
        )
    if args.wait:
        if not wants_json(args):
            print(f"created {job.job_id}", file=sys.stderr)
        return _await(args, job)
    emit(args, job.record, lambda: _describe(job.record))
    return EXIT_OK


def _list(args: argparse.Namespace) -> int:
    found = connect(args).list_jobs(
        status=args.status,
        method=args.method,
        base_model=args.base_model,
        created_after=args.created_after,
        created_before=args.created_before,
        page_size=min(args.limit, 100),
    )
    jobs = list(itertools.islice(found, args.limit))
    emit(args, jobs, lambda: table(JOB_HEADERS, [_row(job) for job in jobs]))
    return EXIT_OK


def _get(args: argparse.Namespace) -> int:
    job = connect(args).get_job(args.job_id).record
    emit(args, job, lambda: _describe(job))
    return EXIT_OK


def _wait(args: argparse.Namespace) -> int:
    return _await(args, connect(args).job(args.job_id))


def _log_line(entry: LogEntry) -> str:
    when = entry.time.strftime("%Y-%m-%d %H:%M:%S")
    line = f"{when}  {entry.source:<10}  {entry.level:<8}  {entry.message}"
    return f"{line}  [{inline(entry.fields)}]" if entry.fields else line


def _logs(args: argparse.Namespace) -> int:
    client = connect(args)
    filters: dict[str, Any] = {"log_type": args.type, "level": args.level}
    if args.follow:
        entries = client.job(args.job_id).follow(args.poll, **filters)
    else:
        entries = client.logs(args.job_id, start_time=args.since, end_time=args.until, **filters)
    if args.limit is not None:
        entries = itertools.islice(entries, args.limit)
    for entry in entries:
        print(entry.model_dump_json() if wants_json(args) else _log_line(entry), flush=True)
    return EXIT_OK


def _stop(args: argparse.Namespace) -> int:
    job = connect(args).stop_job(args.job_id)
    emit(args, job, lambda: f"{job.job_id} {job.status}")
    return EXIT_OK


def _pause(args: argparse.Namespace) -> int:
    job = connect(args).pause_job(args.job_id)
    emit(args, job, lambda: f"{job.job_id} {job.status}")
    return EXIT_OK


def _resume(args: argparse.Namespace) -> int:
    job = connect(args).resume_job(
        args.job_id, max_cost_usd=args.max_cost_usd, allow_over_budget=args.allow_over_budget
    )
    emit(args, job, lambda: f"{job.job_id} {job.status}")
    return EXIT_OK


def _confirm(args: argparse.Namespace, done: str) -> int:
    """Say what was done to the job: `{"job_id", <done>: true}` with --json."""
    if wants_json(args):
        print(to_json({"job_id": args.job_id, done: True}))
    else:
        print(f"{done} {args.job_id}")
    return EXIT_OK


def _delete(args: argparse.Namespace) -> int:
    connect(args).delete_job(args.job_id)
    return _confirm(args, "deleted")


def _download(args: argparse.Namespace) -> int:
    if args.step is not None and args.artifact is None:
        args.artifact = "checkpoint"  # a step names a checkpoint
    path = connect(args).download(
        args.job_id, args.output or Path.cwd(), artifact=args.artifact, step=args.step
    )
    if wants_json(args):
        print(
            to_json(
                {
                    "job_id": args.job_id,
                    "artifact": args.artifact or "model",
                    "step": args.step,
                    "path": str(path),
                    "size_bytes": path.stat().st_size,
                }
            )
        )
    else:
        print(f"wrote {path} ({path.stat().st_size:,} bytes)")
    return EXIT_OK


def _describe_deployment(job_id: str, deployment: DeploymentResponse) -> str:
    pairs: list[tuple[str, object]] = [
        ("job", job_id),
        ("status", deployment.status),
        ("endpoint", deployment.endpoint),
        ("model", deployment.model),
        ("base model", deployment.base_model),
        ("max LoRA rank", deployment.max_lora_rank),
        ("created", deployment.created_at),
        ("updated", deployment.updated_at),
        ("message", deployment.message),
    ]
    pairs += [(p.severity, f"{p.message} ({p.code})") for p in deployment.problems]
    return fields(pairs)


def _deployment_line(job_id: str, deployment: DeploymentResponse) -> str:
    parts = [job_id, f"deployment {deployment.status}"]
    if deployment.endpoint and deployment.status == "ready":
        parts.append(deployment.endpoint)
    if deployment.message:
        parts.append(deployment.message)
    return "  ".join(parts)


def _deploy(args: argparse.Namespace) -> int:
    job = connect(args).job(args.job_id)
    started = job.deploy(max_lora_rank=args.max_lora_rank)
    if not args.wait:
        emit(args, started, lambda: _describe_deployment(args.job_id, started))
        return EXIT_OK
    last = ""

    def show(deployment: DeploymentResponse) -> None:
        nonlocal last
        line = _deployment_line(args.job_id, deployment)
        if line != last:
            print(line, file=sys.stderr, flush=True)
            last = line

    final = job.wait_for_deployment(poll_s=args.poll, on_update=show)
    emit(args, final, lambda: _describe_deployment(args.job_id, final))
    if final.status == "ready":
        return EXIT_OK
    print(f"whet: the deployment of {args.job_id} ended {final.status}", file=sys.stderr)
    return EXIT_JOB_FAILED


def _deployment(args: argparse.Namespace) -> int:
    deployment = connect(args).get_deployment(args.job_id)
    emit(args, deployment, lambda: _describe_deployment(args.job_id, deployment))
    return EXIT_OK


def _undeploy(args: argparse.Namespace) -> int:
    connect(args).delete_deployment(args.job_id)
    return _confirm(args, "undeployed")


def _stats(args: argparse.Namespace) -> int:
    stats = connect(args).stats()
    emit(
        args,
        stats,
        lambda: fields(
            [
                ("jobs", stats.total_jobs),
                *[(f"  {status}", n) for status, n in sorted(stats.jobs_by_status.items())],
                ("GPU hours", f"{stats.gpu_hours:.2f}"),
                ("spend", usd(stats.spend_usd)),
                (
                    "success rate",
                    None if stats.success_rate is None else f"{stats.success_rate:.0%}",
                ),
            ]
        ),
    )
    return EXIT_OK


def _poll_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--poll", type=float, default=DEFAULT_POLL_S, help="seconds between two polls"
    )


def _job_command(
    sub: Any, parent: argparse.ArgumentParser, name: str, run: Handler, help: str
) -> argparse.ArgumentParser:
    """The subcommand `jobs <name> JOB_ID`, run by `run`."""
    command: argparse.ArgumentParser = sub.add_parser(name, parents=[parent], help=help)
    command.add_argument("job_id")
    command.set_defaults(run=run)
    return command


def register(commands: Any) -> None:
    """Add `jobs ...` and `stats` to the `whet` subcommands."""
    parent = api_options()
    jobs = commands.add_parser(
        "jobs", parents=[parent], help="create, watch and manage fine-tuning jobs"
    )
    sub = jobs.add_subparsers(dest="jobs_command", required=True, metavar="COMMAND")

    create = sub.add_parser("create", parents=[parent], help="create a job")
    create.add_argument("config", help="job config, YAML or JSON: a job spec or {name, spec}")
    create.add_argument(
        "dataset",
        nargs="?",
        help="dataset file; files over 8 MB are uploaded first. Omit it when the config "
        "sets dataset.source (an upload id, s3://... or hf://...)",
    )
    create.add_argument("--name", help="a name for the job (overrides the config's)")
    create.add_argument("--idempotency-key", help="retrying with the same key returns the job")
    create.add_argument(
        "--allow-over-budget",
        action="store_true",
        help="create the job even when its estimate passes the organization's monthly budget",
    )
    create.add_argument(
        "--wait", action="store_true", help="wait for the job to end, showing its progress"
    )
    _poll_argument(create)
    create.set_defaults(run=_create)

    listing = sub.add_parser("list", parents=[parent], help="list jobs, newest first")
    listing.add_argument("--status", choices=[s.value for s in JobStatus])
    listing.add_argument("--method", choices=[m.value for m in Method])
    listing.add_argument("--base-model", help="only jobs of this base model")
    listing.add_argument("--created-after", type=timestamp, help="ISO 8601 time")
    listing.add_argument("--created-before", type=timestamp, help="ISO 8601 time")
    listing.add_argument("--limit", type=int, default=50, help="show at most this many")
    listing.set_defaults(run=_list)

    _job_command(sub, parent, "get", _get, "show a job")

    wait = _job_command(
        sub, parent, "wait", _wait, "wait for a job to end (exit 3 if failed or cancelled)"
    )
    _poll_argument(wait)

    logs = _job_command(sub, parent, "logs", _logs, "show a job's logs, oldest first")
    logs.add_argument("--type", choices=["build", "deployment", "training"], help="log source")
    logs.add_argument("--level", choices=LOG_LEVELS, help="this level and above")
    logs.add_argument("--since", type=timestamp, help="from this ISO 8601 time")
    logs.add_argument("--until", type=timestamp, help="until this ISO 8601 time, excluded")
    logs.add_argument("--limit", type=int, help="show at most this many entries")
    logs.add_argument(
        "-f", "--follow", action="store_true", help="keep printing new entries until the job ends"
    )
    _poll_argument(logs)

    metrics = _job_command(sub, parent, "metrics", show_metrics, "show a job's metrics by step")
    metrics.add_argument("--names", help="comma-separated series, e.g. loss,eval_loss")
    metrics.add_argument("--min-step", type=int)
    metrics.add_argument("--max-step", type=int)
    metrics.add_argument("--max-points", type=int, help="downsample each series to this many")
    metrics.add_argument(
        "--plot", metavar="PNG", help="also write train/validation loss and learning rate as a PNG"
    )

    _job_command(
        sub, parent, "evaluation", show_evaluation, "show a job's evaluation: base vs fine-tuned"
    )

    _job_command(sub, parent, "stop", _stop, "stop a job")
    _job_command(sub, parent, "pause", _pause, "checkpoint a job and release its compute")
    resume = _job_command(sub, parent, "resume", _resume, "continue a paused job")
    resume.add_argument(
        "--max-cost-usd",
        type=float,
        help="a new cost cap for the job (needed to resume one paused at its cap)",
    )
    resume.add_argument(
        "--allow-over-budget",
        action="store_true",
        help="resume even when its remaining estimate passes the organization's monthly budget",
    )

    _job_command(sub, parent, "delete", _delete, "delete an ended job, its logs, metrics and model")

    download = _job_command(
        sub,
        parent,
        "download",
        _download,
        "download a completed job's model, adapter, merged model or a checkpoint "
        "(a stopped job's checkpoints too)",
    )
    download.add_argument(
        "--artifact",
        choices=get_args(ArtifactName),
        help="model (default): the final model as trained; adapter; merged: the base with "
        "the LoRA adapter merged in; checkpoint: one kept checkpoint, with --step",
    )
    download.add_argument(
        "--step", type=int, help="the checkpoint's step (implies --artifact checkpoint)"
    )
    download.add_argument(
        "-o",
        "--output",
        help="file or folder to write (default ./<job_id>.tar.gz, "
        "./<job_id>-checkpoint-<step>.tar.gz ...)",
    )

    deploy = _job_command(
        sub,
        parent,
        "deploy",
        _deploy,
        "serve a completed job's model as an OpenAI-compatible endpoint",
    )
    deploy.add_argument(
        "--max-lora-rank", type=int, help="the server's max LoRA rank (the platform's if unset)"
    )
    deploy.add_argument(
        "--wait",
        action="store_true",
        help="wait until it is ready (exit 0) or failed (exit 3), progress on stderr",
    )
    _poll_argument(deploy)

    _job_command(
        sub, parent, "deployment", _deployment, "show a job's deployment and its readiness"
    )

    _job_command(sub, parent, "undeploy", _undeploy, "stop serving a job's model")

    stats = commands.add_parser("stats", parents=[parent], help="your jobs, GPU hours and spend")
    stats.set_defaults(run=_stats)
