"""The six GPU types, their instances, prices and node selection."""

from __future__ import annotations

import pytest

from whetstone.core.catalog.hardware import GPUS, GpuType, device_peak_tflops, get_gpu


def test_the_six_gpu_types_of_product_md_are_there() -> None:
    assert {g.value for g in GPUS} == {
        "nvidia-t4",
        "nvidia-l4",
        "nvidia-a10g",
        "nvidia-a100-40gb",
        "nvidia-a100-80gb",
        "nvidia-h100",
    }
    assert [GPUS[g].vram_gb for g in GpuType] == [16, 24, 24, 40, 80, 80]


def test_only_the_t4_lacks_bf16() -> None:
    assert [g for g, info in GPUS.items() if not info.bf16] == [GpuType.T4]


@pytest.mark.parametrize(
    ("gpu_type", "family"),
    [
        ("nvidia-t4", "g4dn"),
        ("nvidia-l4", "g6"),
        ("nvidia-a10g", "g5"),
        ("nvidia-a100-40gb", "p4d"),
        ("nvidia-a100-80gb", "p4de"),
        ("nvidia-h100", "p5"),
    ],
)
def test_each_gpu_runs_on_its_instance_family(gpu_type: str, family: str) -> None:
    gpu = get_gpu(gpu_type)
    for count in range(1, 9):
        assert gpu.instance_for(count).instance_type.startswith(f"{family}.")
        assert gpu.instance_for(count).gpus >= count
    assert gpu.node_selector()["karpenter.k8s.aws/instance-family"] == family


def test_the_two_a100s_are_told_apart_by_node_selection() -> None:
    a100_40 = get_gpu("nvidia-a100-40gb").node_selector()
    a100_80 = get_gpu("nvidia-a100-80gb").node_selector()
    assert a100_40 != a100_80


def test_the_smallest_instance_that_holds_the_gpus_is_picked() -> None:
    t4 = get_gpu("nvidia-t4")
    assert t4.instance_for(1).instance_type == "g4dn.xlarge"
    assert t4.instance_for(2).instance_type == "g4dn.12xlarge"
    assert t4.instance_for(8).instance_type == "g4dn.metal"


def test_a_job_pays_its_share_of_a_shared_node() -> None:
    a100 = get_gpu("nvidia-a100-40gb")
    assert a100.hourly_rate(1) == pytest.approx(a100.instance_for(1).hourly_usd / 8)
    assert a100.hourly_rate(8) == pytest.approx(a100.instance_for(8).hourly_usd)


@pytest.mark.parametrize(
    ("device_name", "peak"),
    [
        ("Tesla T4", 65.0),
        ("NVIDIA L4", 121.0),
        ("NVIDIA A10G", 70.0),
        ("NVIDIA A100-SXM4-40GB", 312.0),
        ("NVIDIA A100-SXM4-80GB", 312.0),
        ("NVIDIA H100 80GB HBM3", 989.0),
        ("NVIDIA H200", 989.0),
        ("NVIDIA L40S", 362.0),
        ("NVIDIA GeForce RTX 4090", None),
    ],
)
def test_a_gpu_is_known_by_the_name_cuda_gives_it(device_name: str, peak: float | None) -> None:
    # Given the name torch.cuda.get_device_name() reports, when its peak is looked up,
    # then it is the catalog's dense 16-bit peak (an L40S is no L4), or unknown
    assert device_peak_tflops(device_name) == peak
