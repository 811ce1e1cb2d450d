"""Planning use cases: the catalog, requirements, hardware validation and cost estimates."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from whetstone.core.catalog.base_models import BASE_MODELS
from whetstone.core.catalog.model_facts import BaseModelInfo, Family
from whetstone.core.deferred import DeferredModel
from whetstone.core.estimates import (
    CostEstimate,
    FitReport,
    HardwareChoice,
    check_fit,
    estimate_cost,
    estimate_memory,
    smallest_fitting_hardware,
)
from whetstone.core.spec import JobSpec, Method


def list_base_models(
    *,
    family: Family | None = None,
    method: Method | None = None,
    max_parameters_b: float | None = None,
) -> list[BaseModelInfo]:
    """Catalog models, filtered; with `method`, only those some GPU configuration can train."""
    models = [
        model
        for model in BASE_MODELS
        if (family is None or model.family == family)
        and (max_parameters_b is None or model.parameters_b <= max_parameters_b)
    ]
    if method is not None:
        models = [
            model
            for model in models
            if smallest_fitting_hardware(model, JobSpec(base_model=model.id, method=method))
        ]
    return models


class MethodRequirement(DeferredModel):
    """What one method needs for a model at the default settings."""

    method: Annotated[Method, Field(description="Training method.")]
    required_gib: Annotated[
        float, Field(description="Memory per GPU at default settings on a bf16 GPU, GiB.")
    ]
    trainable_parameters: Annotated[int, Field(description="Parameters the method trains.")]
    smallest_fitting: Annotated[
        HardwareChoice | None,
        Field(description="The cheapest GPU configuration that fits; null when none does."),
    ]


def model_requirements(model: BaseModelInfo) -> list[MethodRequirement]:
    requirements = []
    for method in Method:
        spec = JobSpec(base_model=model.id, method=method, hardware={"gpu_type": "nvidia-h100"})
        memory = estimate_memory(model, spec)
        requirements.append(
            MethodRequirement(
                method=method,
                required_gib=memory.total_gib,
                trainable_parameters=memory.trainable_parameters,
                smallest_fitting=smallest_fitting_hardware(
                    model, JobSpec(base_model=model.id, method=method)
                ),
            )
        )
    return requirements


def validate_hardware(model: BaseModelInfo, spec: JobSpec) -> FitReport:
    return check_fit(model, spec)


def estimate_job_cost(
    model: BaseModelInfo, spec: JobSpec, num_examples: int, tokens_per_example: int | None
) -> tuple[CostEstimate, FitReport]:
    return estimate_cost(model, spec, num_examples, tokens_per_example), check_fit(model, spec)
