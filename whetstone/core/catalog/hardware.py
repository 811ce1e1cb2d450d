"""The six GPU types a job can run on, their EC2 instances and prices.

Prices are us-east-1 on-demand Linux rates, taken on PRICES_TAKEN_ON. Peak
TFLOPS are NVIDIA's dense (no sparsity) tensor-core figures at 16 bits: FP16 on
the T4, BF16 on the rest. Sources: the NVIDIA T4, L4, A100 and H100 (SXM) datasheets
(65, 121, 312, 989 TFLOPS: half their with-sparsity figures); the A10G, AWS's variant of the
A10 with no datasheet of its own, at the 70 TFLOPS that AWS and measurements report.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

PRICES_TAKEN_ON = "2025-06-30"
PRICE_REGION = "us-east-1"

# Karpenter's well-known node labels. The GPU name alone does not tell the two
# A100s apart, so nodes are selected by instance family as well.
GPU_NAME_LABEL = "karpenter.k8s.aws/instance-gpu-name"
INSTANCE_FAMILY_LABEL = "karpenter.k8s.aws/instance-family"
GPU_TAINT_KEY = "nvidia.com/gpu"
# The CPU node pool of the trainer's prepare and finalize stages: its label, value and taint.
CPU_POOL_LABEL = "whetstone.dev/pool"
CPU_POOL = "cpu"


class GpuType(StrEnum):
    """The valid `gpu_type` values of product.md."""

    T4 = "nvidia-t4"
    L4 = "nvidia-l4"
    A10G = "nvidia-a10g"
    A100_40GB = "nvidia-a100-40gb"
    A100_80GB = "nvidia-a100-80gb"
    H100 = "nvidia-h100"


class InstanceOption(BaseModel):
    """One EC2 instance size carrying a given GPU."""

    model_config = ConfigDict(frozen=True)

    instance_type: Annotated[str, Field(description="EC2 instance type, e.g. 'g5.xlarge'.")]
    gpus: Annotated[int, Field(ge=1, description="GPUs on the instance.")]
    hourly_usd: Annotated[float, Field(gt=0, description="On-demand price per hour, USD.")]


class GpuInfo(BaseModel):
    """Facts about one GPU type."""

    model_config = ConfigDict(frozen=True)

    gpu_type: Annotated[GpuType, Field(description="The `gpu_type` value.")]
    name: Annotated[str, Field(description="Marketing name.")]
    vram_gb: Annotated[int, Field(description="Memory per GPU, GB (as the vendor counts it).")]
    memory_gib: Annotated[
        float, Field(description="Memory per GPU that CUDA reports as total, GiB.")
    ]
    bf16: Annotated[bool, Field(description="Whether the GPU computes in bfloat16.")]
    peak_tflops: Annotated[float, Field(description="Dense 16-bit tensor peak, TFLOPS.")]
    karpenter_gpu_name: Annotated[str, Field(description="Value of the GPU-name node label.")]
    instances: Annotated[
        tuple[InstanceOption, ...], Field(description="Instance sizes, fewest GPUs first.")
    ]
    best_for: Annotated[str, Field(description="What product.md recommends it for.")]

    @property
    def max_gpus(self) -> int:
        return self.instances[-1].gpus

    def instance_for(self, gpu_count: int) -> InstanceOption:
        """The smallest instance with at least `gpu_count` GPUs (what Karpenter would pick)."""
        for option in self.instances:
            if option.gpus >= gpu_count:
                return option
        raise ValueError(f"{self.gpu_type} offers at most {self.max_gpus} GPUs per node")

    def hourly_rate(self, gpu_count: int) -> float:
        """The job's share of its node's price: node rate x gpu_count / node GPUs.

        A100 and H100 nodes come with 8 GPUs (p4d, p4de, p5.48xlarge); a
        one-GPU job is charged its eighth, as product.md's examples do.
        """
        option = self.instance_for(gpu_count)
        return option.hourly_usd * gpu_count / option.gpus

    def training_rate(self, gpu_count: int) -> float:
        """What a training job of `gpu_count` GPUs is charged per hour: its node's whole price.

        A trainer holds its node alone (required anti-affinity, docs/workflow.md "exclusive
        node"), so a one-GPU job on an 8-GPU p4d pays all of it: what the bill says.
        """
        return self.instance_for(gpu_count).hourly_usd

    def node_selector(self, gpu_count: int = 1) -> dict[str, str]:
        """Kubernetes node labels that pick this GPU type for a job of `gpu_count` GPUs."""
        family = self.instance_for(gpu_count).instance_type.split(".")[0]
        return {GPU_NAME_LABEL: self.karpenter_gpu_name, INSTANCE_FAMILY_LABEL: family}


# The columns of a row of the table below, after which come the GPU's instance sizes.
_GPU_COLUMNS = (
    "gpu_type",
    "name",
    "vram_gb",
    "memory_gib",
    "bf16",
    "peak_tflops",
    "karpenter_gpu_name",
    "best_for",
)


def _gpu(row: tuple[object, ...], *instances: tuple[str, int, float]) -> GpuInfo:
    """A GPU from its row; each instance size is (EC2 type, GPUs, USD per hour)."""
    sizes = [InstanceOption(instance_type=t, gpus=g, hourly_usd=p) for t, g, p in instances]
    return GpuInfo.model_validate(
        {**dict(zip(_GPU_COLUMNS, row, strict=True)), "instances": tuple(sizes)}
    )


# The table below is laid out by hand; keep the formatter away from it.
# fmt: off

GPUS: dict[GpuType, GpuInfo] = {gpu.gpu_type: gpu for gpu in (
    _gpu((GpuType.T4, "NVIDIA T4", 16, 15.0, False, 65.0, "t4", "LoRA/QLoRA on 7B models"),
         ("g4dn.xlarge", 1, 0.526), ("g4dn.12xlarge", 4, 3.912), ("g4dn.metal", 8, 7.824)),
    _gpu((GpuType.L4, "NVIDIA L4", 24, 22.5, True, 121.0, "l4", "LoRA on 13B models"),
         ("g6.xlarge", 1, 0.8048), ("g6.12xlarge", 4, 4.6016), ("g6.48xlarge", 8, 13.3504)),
    _gpu((GpuType.A10G, "NVIDIA A10G", 24, 22.5, True, 70.0, "a10g", "LoRA/Full on 7-13B models"),
         ("g5.xlarge", 1, 1.006), ("g5.12xlarge", 4, 5.672), ("g5.48xlarge", 8, 16.288)),
    _gpu((GpuType.A100_40GB, "NVIDIA A100 40GB", 40, 40.0, True, 312.0, "a100",
          "Full fine-tuning 13B+, LoRA 70B"),
         ("p4d.24xlarge", 8, 21.96)),
    _gpu((GpuType.A100_80GB, "NVIDIA A100 80GB", 80, 80.0, True, 312.0, "a100",
          "Full fine-tuning 70B"),
         ("p4de.24xlarge", 8, 27.447)),
    _gpu((GpuType.H100, "NVIDIA H100", 80, 79.6, True, 989.0, "h100", "Maximum performance"),
         ("p5.4xlarge", 1, 6.88), ("p5.48xlarge", 8, 55.04)),
)}

# fmt: on


def get_gpu(gpu_type: GpuType | str) -> GpuInfo:
    return GPUS[GpuType(gpu_type)]


# GPUs a trainer may find that are no job's `gpu_type` (a local run, a machine lent for tests):
# dense 16-bit peaks, TFLOPS. H200: the H100 SXM's compute (NVIDIA H200 datasheet, 1,979 with
# sparsity); L40S: NVIDIA L40S datasheet (362 dense BF16).
_OTHER_PEAK_TFLOPS = {"h200": 989.0, "l40s": 362.0}


def device_peak_tflops(device_name: str) -> float | None:
    """The dense 16-bit peak TFLOPS of a GPU by the name CUDA gives it (e.g. 'NVIDIA
    A100-SXM4-40GB', 'Tesla T4'), or None for a GPU this catalog does not know."""
    words = set(re.split(r"[^a-z0-9]+", device_name.lower()))
    for gpu in GPUS.values():
        if gpu.karpenter_gpu_name in words:
            return gpu.peak_tflops
    return next((peak for word, peak in _OTHER_PEAK_TFLOPS.items() if word in words), None)
