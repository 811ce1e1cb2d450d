"""The six GPU types a job can run on, their EC2 instances and prices.

Prices are us-east-1 on-demand Linux rates, taken on PRICES_TAKEN_ON. Peak
TFLOPS are NVIDIA's dense (no sparsity) tensor-core figures at 16 bits: FP16 on
the T4, BF16 on the rest.
"""

from __future__ import annotations

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

    def node_selector(self, gpu_count: int = 1) -> dict[str, str]:
        """Kubernetes node labels that pick this GPU type for a job of `gpu_count` GPUs."""
        family = self.instance_for(gpu_count).instance_type.split(".")[0]
        return {GPU_NAME_LABEL: self.karpenter_gpu_name, INSTANCE_FAMILY_LABEL: family}


def _instances(*rows: tuple[str, int, float]) -> tuple[InstanceOption, ...]:
    return tuple(InstanceOption(instance_type=t, gpus=g, hourly_usd=p) for t, g, p in rows)


GPUS: dict[GpuType, GpuInfo] = {
    gpu.gpu_type: gpu
    for gpu in (
        GpuInfo(
            gpu_type=GpuType.T4,
            name="NVIDIA T4",
            vram_gb=16,
            memory_gib=15.0,
            bf16=False,
            peak_tflops=65.0,
            karpenter_gpu_name="t4",
            instances=_instances(
                ("g4dn.xlarge", 1, 0.526), ("g4dn.12xlarge", 4, 3.912), ("g4dn.metal", 8, 7.824)
            ),
            best_for="LoRA/QLoRA on 7B models",
        ),
        GpuInfo(
            gpu_type=GpuType.L4,
            name="NVIDIA L4",
            vram_gb=24,
            memory_gib=22.5,
            bf16=True,
            peak_tflops=121.0,
            karpenter_gpu_name="l4",
            instances=_instances(
                ("g6.xlarge", 1, 0.8048), ("g6.12xlarge", 4, 4.6016), ("g6.48xlarge", 8, 13.3504)
            ),
            best_for="LoRA on 13B models",
        ),
        GpuInfo(
            gpu_type=GpuType.A10G,
            name="NVIDIA A10G",
            vram_gb=24,
            memory_gib=22.5,
            bf16=True,
            peak_tflops=70.0,
            karpenter_gpu_name="a10g",
            instances=_instances(
                ("g5.xlarge", 1, 1.006), ("g5.12xlarge", 4, 5.672), ("g5.48xlarge", 8, 16.288)
            ),
            best_for="LoRA/Full on 7-13B models",
        ),
        GpuInfo(
            gpu_type=GpuType.A100_40GB,
            name="NVIDIA A100 40GB",
            vram_gb=40,
            memory_gib=40.0,
            bf16=True,
            peak_tflops=312.0,
            karpenter_gpu_name="a100",
            instances=_instances(("p4d.24xlarge", 8, 21.96)),
            best_for="Full fine-tuning 13B+, LoRA 70B",
        ),
        GpuInfo(
            gpu_type=GpuType.A100_80GB,
            name="NVIDIA A100 80GB",
            vram_gb=80,
            memory_gib=80.0,
            bf16=True,
            peak_tflops=312.0,
            karpenter_gpu_name="a100",
            instances=_instances(("p4de.24xlarge", 8, 27.447)),
            best_for="Full fine-tuning 70B",
        ),
        GpuInfo(
            gpu_type=GpuType.H100,
            name="NVIDIA H100",
            vram_gb=80,
            memory_gib=79.6,
            bf16=True,
            peak_tflops=989.0,
            karpenter_gpu_name="h100",
            instances=_instances(("p5.4xlarge", 1, 6.88), ("p5.48xlarge", 8, 55.04)),
            best_for="Maximum performance",
        ),
    )
}


def get_gpu(gpu_type: GpuType | str) -> GpuInfo:
    return GPUS[GpuType(gpu_type)]
