"""Request and response bodies of the planning routes: base models, hardware, fit and cost."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from whetstone.api.schemas.base import WireModel, field_of
from whetstone.core.catalog.hardware import PRICE_REGION, PRICES_TAKEN_ON, GpuType, InstanceOption
from whetstone.core.catalog.model_facts import BaseModelInfo
from whetstone.core.deferred import DeferredModel
from whetstone.core.estimates import CostEstimate, FitReport, HardwareChoice, SettingChange
from whetstone.core.spec import HardwareParams, JobSpec, Method, TrainingParams
from whetstone.core.strict import StrictModel


def _unless_in_config(model: type[BaseModel], name: str) -> Any:
    """`model`'s field `name`, constraints kept, defaulting to null: the config's value or the
    spec's default then applies."""
    field = field_of(model, name)
    default = getattr(field.default, "value", field.default)
    field.description = f"{field.description} Unset: the config's, else {default}."
    field.default = None
    return field


def _overlay(section: Any, **values: Any) -> dict[str, Any]:
    """A config section with the request's set values over it."""
    merged = dict(section or {})
    merged.update({key: value for key, value in values.items() if value is not None})
    return merged


class PlanningRequest(StrictModel):
    """A model, a method and hardware; any other job spec setting goes in `config`."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    model_id: Annotated[
        str,
        Field(
            min_length=1,
            description="Catalog model id, hf://<repo>, s3://... or a local folder path.",
        ),
    ]
    method: Method | None = _unless_in_config(JobSpec, "method")
    gpu_type: GpuType | None = _unless_in_config(HardwareParams, "gpu_type")
    gpu_count: int | None = _unless_in_config(HardwareParams, "gpu_count")
    config: Annotated[
        dict[str, Any] | None,
        Field(
            description="Further job spec sections as in a job config (training, advanced, "
            "lora, quantization, prompt_tuning, dataset, hardware) and method; the fields above, "
            "when set, win."
        ),
    ] = None

    def to_spec(self) -> JobSpec:
        """The job spec this request describes; raises pydantic's ValidationError."""
        data = self._sections()
        data["base_model"] = self.model_id
        if self.method is not None:
            data["method"] = self.method
        return JobSpec.model_validate(data)

    def _sections(self) -> dict[str, Any]:
        data: dict[str, Any] = dict(self.config or {})
        data["hardware"] = _overlay(
            data.get("hardware"), gpu_type=self.gpu_type, gpu_count=self.gpu_count
        )
        return data


class EstimateCostRequest(PlanningRequest):
    num_examples: Annotated[
        int, Field(ge=1, le=100_000_000, description="Examples in the dataset, before the split.")
    ]
    epochs: int | None = _unless_in_config(TrainingParams, "epochs")
    tokens_per_example: Annotated[
        int | None,
        Field(
            ge=1,
            le=1_000_000,
            description="Mean tokens per example when known; a documented default otherwise.",
        ),
    ] = None

    def _sections(self) -> dict[str, Any]:
        data = super()._sections()
        data["training"] = _overlay(data.get("training"), epochs=self.epochs)
        return data


class BaseModelsResponse(DeferredModel):
    models: Annotated[list[BaseModelInfo], Field(description="Matching catalog models.")]


class GpuOption(DeferredModel):
    gpu_type: GpuType
    name: str
    vram_gb: int
    memory_gib: float
    bf16: bool
    peak_tflops: float
    best_for: str
    instances: list[InstanceOption]
    hourly_rate_usd: Annotated[float, Field(description="Rate of a one-GPU job, USD/h.")]
    node_selector: Annotated[dict[str, str], Field(description="Karpenter node labels.")]


class HardwareOptionsResponse(DeferredModel):
    gpus: list[GpuOption]
    gpu_count: Annotated[dict[str, int], Field(description="Allowed range of gpu_count.")]
    storage_gb: Annotated[dict[str, int], Field(description="Allowed range and default, GB.")]
    prices_taken_on: str = PRICES_TAKEN_ON
    price_region: str = PRICE_REGION


class MethodRequirementResponse(WireModel):
    """What one training method needs for a model at the default settings."""

    method: Annotated[Method, Field(description="The training method.")]
    required_gib: Annotated[float, Field(description="GiB per GPU, default settings, bf16.")]
    trainable_parameters: Annotated[int, Field(description="Parameters the method trains.")]
    smallest_fitting: Annotated[
        HardwareChoice | None, Field(description="The cheapest hardware it fits; null: none.")
    ]


class RequirementsResponse(DeferredModel):
    model: BaseModelInfo
    methods: Annotated[
        list[MethodRequirementResponse], Field(description="Per method, at the default settings.")
    ]


class ValidateHardwareResponse(FitReport):
    model_id: str
    method: Method
    gpu_type: GpuType
    gpu_count: int
    instance_type: str


class EstimateCostResponse(CostEstimate):
    model_id: str
    method: Method
    gpu_type: GpuType
    gpu_count: int
    num_examples: int
    epochs: int
    fits: bool = field_of(FitReport, "fits")
    required_gib: float = field_of(FitReport, "required_gib")
    available_gib: float = field_of(FitReport, "available_gib")
    smallest_fitting: HardwareChoice | None = field_of(FitReport, "smallest_fitting")
    setting_changes: list[SettingChange] = field_of(FitReport, "setting_changes")
