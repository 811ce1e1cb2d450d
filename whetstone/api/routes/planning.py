"""Configuration routes: base models, hardware, requirements, fit and cost."""

from __future__ import annotations

import urllib.parse
from typing import Annotated

import annotated_types
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from pydantic.fields import FieldInfo

from whetstone.api.identity import current_caller
from whetstone.api.schemas.planning import (
    BaseModelsResponse,
    EstimateCostRequest,
    EstimateCostResponse,
    GpuOption,
    HardwareOptionsResponse,
    MethodRequirementResponse,
    PlanningRequest,
    RequirementsResponse,
    ValidateHardwareResponse,
)
from whetstone.core.catalog.hardware import GPUS
from whetstone.core.catalog.model_facts import BaseModelInfo, Family
from whetstone.core.spec import HardwareParams, Method
from whetstone.service import planning
from whetstone.service.models import find_base_model, resolve_base_model
from whetstone.settings import get_settings

router = Router()


def _resolve(model_id: str) -> BaseModelInfo:
    """The model's facts; a hub or S3 model outside the catalog by its config.json."""
    settings = get_settings()
    model = find_base_model(model_id, settings, org_id=current_caller(router).org_id)
    # A hub model whose config cannot be read here: resolve says why and what to do instead.
    return model or resolve_base_model(model_id, allow_local_paths=settings.runtime == "local")


def _range(field: FieldInfo) -> dict[str, int]:
    bounds: dict[str, int] = {"default": int(field.default)}
    for rule in field.metadata:
        if isinstance(rule, annotated_types.Ge):
            bounds["min"] = int(rule.ge)  # type: ignore[call-overload]
        if isinstance(rule, annotated_types.Le):
            bounds["max"] = int(rule.le)  # type: ignore[call-overload]
    return bounds


@router.get("/base-models", summary="List available base models")
def list_base_models(
    family: Annotated[Family | None, Query(description="Only this model family.")] = None,
    method: Annotated[
        Method | None, Query(description="Only models some GPU configuration can train so.")
    ] = None,
    max_parameters_b: Annotated[
        float | None, Query(gt=0, description="Only models of at most this many billions.")
    ] = None,
) -> BaseModelsResponse:
    models = planning.list_base_models(
        family=family, method=method, max_parameters_b=max_parameters_b
    )
    return BaseModelsResponse(models=models)


@router.get("/hardware-options", summary="List hardware configurations")
def hardware_options() -> HardwareOptionsResponse:
    gpus = [
        GpuOption(
            gpu_type=gpu.gpu_type,
            name=gpu.name,
            vram_gb=gpu.vram_gb,
            memory_gib=gpu.memory_gib,
            bf16=gpu.bf16,
            peak_tflops=gpu.peak_tflops,
            best_for=gpu.best_for,
            instances=list(gpu.instances),
            hourly_rate_usd=gpu.hourly_rate(1),
            node_selector=gpu.node_selector(),
        )
        for gpu in GPUS.values()
    ]
    fields = HardwareParams.model_fields
    return HardwareOptionsResponse(
        gpus=gpus,
        gpu_count=_range(fields["gpu_count"]),
        storage_gb=_range(fields["storage_gb"]),
    )


@router.get("/models/<model_id>/requirements", summary="Hardware requirements of a model")
def model_requirements(
    model_id: Annotated[
        str,
        Path(
            description="Catalog model id, hf://<repo> or (local runtime) a folder path, "
            "percent-encoded as one path segment."
        ),
    ],
) -> RequirementsResponse:
    model = _resolve(urllib.parse.unquote(model_id))
    needs = planning.model_requirements(model)
    methods = [MethodRequirementResponse.from_record(need) for need in needs]
    return RequirementsResponse(model=model, methods=methods)


@router.post("/validate-hardware", summary="Validate hardware against model requirements")
def validate_hardware(request: PlanningRequest) -> ValidateHardwareResponse:
    spec = request.to_spec()
    report = planning.validate_hardware(_resolve(request.model_id), spec)
    return ValidateHardwareResponse(
        **report.model_dump(),
        model_id=request.model_id,
        method=spec.method,
        gpu_type=spec.hardware.gpu_type,
        gpu_count=spec.hardware.gpu_count,
        instance_type=spec.hardware.instance_type or "",
    )


@router.post("/estimate-cost", summary="Estimate training time and cost")
def estimate_cost(request: EstimateCostRequest) -> EstimateCostResponse:
    spec = request.to_spec()
    estimate, fit = planning.estimate_job_cost(
        _resolve(request.model_id), spec, request.num_examples, request.tokens_per_example
    )
    return EstimateCostResponse(
        **estimate.model_dump(),
        model_id=request.model_id,
        method=spec.method,
        gpu_type=spec.hardware.gpu_type,
        gpu_count=spec.hardware.gpu_count,
        num_examples=request.num_examples,
        epochs=spec.training.epochs,
        **fit.model_dump(
            include={"fits", "required_gib", "available_gib", "smallest_fitting", "setting_changes"}
        ),
    )
