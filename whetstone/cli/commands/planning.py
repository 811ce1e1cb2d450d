"""Planning commands: models, hardware, requirements, validate-hardware, estimate."""

from __future__ import annotations

import argparse
from typing import Any, get_args

from whetstone.cli.commands.common import EXIT_OK, EXIT_REFUSED, api_options, connect, emit
from whetstone.cli.output import cell, fields, table, usd
from whetstone.client import load_job_config
from whetstone.core.catalog.hardware import GPUS
from whetstone.core.catalog.model_facts import Family
from whetstone.core.estimates import HardwareChoice, SettingChange
from whetstone.core.spec import Method

METHODS = [m.value for m in Method]
GPU_TYPES = list(GPUS)


def _models(args: argparse.Namespace) -> int:
    models = connect(args).base_models(
        family=args.family, method=args.method, max_parameters_b=args.max_params
    )
    emit(
        args,
        models,
        lambda: table(
            ["ID", "FAMILY", "PARAMS", "MODALITY", "GATED", "LICENSE", "BEST FOR"],
            [
                [
                    m.id,
                    m.family,
                    f"{m.parameters_b:.1f}B",
                    m.modality,
                    m.gated,
                    m.license,
                    m.best_for,
                ]
                for m in models
            ],
        ),
    )
    return EXIT_OK


def _hardware(args: argparse.Namespace) -> int:
    options = connect(args).hardware_options()
    footer = (
        f"gpu_count {_range(options.gpu_count)}, storage_gb {_range(options.storage_gb)}; "
        f"prices of {options.price_region}, taken on {options.prices_taken_on}"
    )
    rows = [
        [g.gpu_type, g.name, f"{g.vram_gb} GB", g.bf16, usd(g.hourly_rate_usd), g.best_for]
        for g in options.gpus
    ]
    headers = ["GPU TYPE", "NAME", "VRAM", "BF16", "USD/H (1 GPU)", "BEST FOR"]
    emit(args, options, lambda: table(headers, rows) + "\n\n" + footer)
    return EXIT_OK


def _range(bounds: dict[str, int]) -> str:
    return f"{bounds.get('min', '?')}-{bounds.get('max', '?')} (default {bounds.get('default')})"


def _requirements(args: argparse.Namespace) -> int:
    answer = connect(args).requirements(args.model_id)
    emit(
        args,
        answer,
        lambda: (
            f"{answer.model.name} ({answer.model.parameters_b:.1f}B parameters)\n\n"
            + table(
                ["METHOD", "GIB PER GPU", "TRAINABLE PARAMS", "SMALLEST FIT", "USD/H"],
                [
                    [
                        r.method,
                        f"{r.required_gib:.1f}",
                        f"{r.trainable_parameters:,}",
                        f"{r.smallest_fitting.gpu_count} x {r.smallest_fitting.gpu_type} "
                        f"({r.smallest_fitting.instance_type})"
                        if r.smallest_fitting
                        else "none fits",
                        usd(r.smallest_fitting.hourly_rate_usd) if r.smallest_fitting else "-",
                    ]
                    for r in answer.methods
                ],
            )
        ),
    )
    return EXIT_OK


def _spec_config(args: argparse.Namespace) -> dict[str, Any] | None:
    if not args.config:
        return None
    _, spec = load_job_config(args.config)
    spec.pop("base_model", None)
    return spec


def _what_fits(smallest: HardwareChoice | None, changes: list[SettingChange]) -> list[str]:
    lines = []
    if smallest is not None:
        lines.append(
            f"smallest configuration that fits: {smallest.gpu_count} x {smallest.gpu_type} "
            f"({smallest.instance_type}, {usd(smallest.hourly_rate_usd)}/h)"
        )
    lines += [f"or set {change.setting} to {cell(change.value)}" for change in changes]
    return lines


def _validate_hardware(args: argparse.Namespace) -> int:
    report = connect(args).validate_hardware(
        args.model_id,
        method=args.method,
        gpu_type=args.gpu_type,
        gpu_count=args.gpu_count,
        config=_spec_config(args),
    )

    def human() -> str:
        lines = [
            fields(
                [
                    ("model", report.model_id),
                    ("method", report.method),
                    (
                        "hardware",
                        f"{report.gpu_count} x {report.gpu_type} ({report.instance_type})",
                    ),
                    ("fits", report.fits),
                    ("required", f"{report.required_gib:.1f} GiB per GPU"),
                    ("available", f"{report.available_gib:.1f} GiB per GPU"),
                    ("headroom", f"{report.headroom_gib:.1f} GiB"),
                ]
            )
        ]
        if not report.fits:
            lines += _what_fits(report.smallest_fitting, report.setting_changes)
        return "\n".join(lines)

    emit(args, report, human)
    return EXIT_OK if report.fits else EXIT_REFUSED


def _estimate(args: argparse.Namespace) -> int:
    estimate = connect(args).estimate_cost(
        args.model_id,
        args.examples,
        method=args.method,
        gpu_type=args.gpu_type,
        gpu_count=args.gpu_count,
        epochs=args.epochs,
        tokens_per_example=args.tokens_per_example,
        config=_spec_config(args),
    )

    def human() -> str:
        details = fields(
            [
                ("model", estimate.model_id),
                ("method", estimate.method),
                (
                    "hardware",
                    f"{estimate.gpu_count} x {estimate.gpu_type} ({estimate.instance_type})",
                ),
                ("examples", f"{estimate.num_examples:,} x {estimate.epochs} epochs"),
                (
                    "tokens",
                    f"{estimate.total_tokens:,} ({estimate.tokens_per_example} per example)",
                ),
                (
                    "hours",
                    f"{estimate.estimated_hours:.2f} (training "
                    f"{estimate.training_hours:.2f} + overhead {estimate.overhead_hours:.2f})",
                ),
                ("hourly rate", usd(estimate.hourly_rate_usd)),
                ("cost", usd(estimate.estimated_cost_usd)),
                ("fits", f"{cell(estimate.fits)} ({estimate.required_gib:.1f} GiB per GPU)"),
            ]
        )
        if estimate.fits:
            return details
        misfit = (
            f"does not fit: the job needs {estimate.required_gib:.1f} GiB per GPU and "
            f"{estimate.gpu_type} has {estimate.available_gib:.1f} GiB"
        )
        what_fits = _what_fits(estimate.smallest_fitting, estimate.setting_changes)
        return "\n".join([misfit, *what_fits, "", details])

    emit(args, estimate, human)
    return EXIT_OK if estimate.fits else EXIT_REFUSED


def _hardware_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model_id", help="catalog model id, hf://<repo>, s3://... or a path")
    parser.add_argument(
        "--method", choices=METHODS, help="training method (default: the config's, else lora)"
    )
    parser.add_argument(
        "--gpu-type", choices=GPU_TYPES, help="GPU type (default: the config's, else nvidia-t4)"
    )
    parser.add_argument(
        "--gpu-count", type=int, help="number of GPUs (default: the config's, else 1)"
    )
    parser.add_argument(
        "--config", help="a job config (YAML/JSON): method, hardware, training, lora...; flags win"
    )


def register(commands: Any) -> None:
    """Add the planning commands to the `whet` subcommands."""
    parent = api_options()
    models = commands.add_parser("models", parents=[parent], help="list available base models")
    models.add_argument("--family", choices=get_args(Family), help="only this model family")
    models.add_argument("--method", choices=METHODS, help="only models some GPU can train so")
    models.add_argument("--max-params", type=float, help="at most this many billion parameters")
    models.set_defaults(run=_models)

    hardware = commands.add_parser("hardware", parents=[parent], help="list hardware options")
    hardware.set_defaults(run=_hardware)

    requirements = commands.add_parser(
        "requirements", parents=[parent], help="hardware requirements of a model, per method"
    )
    requirements.add_argument("model_id", help="catalog model id, hf://<repo> or a local folder")
    requirements.set_defaults(run=_requirements)

    check = commands.add_parser(
        "validate-hardware",
        parents=[parent],
        help="check that a model fits the hardware (exit 1 when it does not)",
    )
    _hardware_arguments(check)
    check.set_defaults(run=_validate_hardware)

    estimate = commands.add_parser(
        "estimate", parents=[parent], help="estimate training time and cost"
    )
    _hardware_arguments(estimate)
    estimate.add_argument(
        "--examples", type=int, required=True, help="examples in the dataset, before the split"
    )
    estimate.add_argument("--epochs", type=int, help="epochs (default: the config's, else 3)")
    estimate.add_argument("--tokens-per-example", type=int, help="mean tokens per example")
    estimate.set_defaults(run=_estimate)
