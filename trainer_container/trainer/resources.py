"""Samples node resources every few seconds: GPUs through NVML when present, CPU and RAM."""

from __future__ import annotations

import threading
from typing import Any

import psutil

from whetstone.core.events import GpuSample, ResourcesDetail

from .events import EventEmitter

_MIB = 1024 * 1024


def _nvml() -> Any:
    try:
        import pynvml

        pynvml.nvmlInit()
        return pynvml
    except Exception:  # no driver, no library: report CPU and RAM only
        return None


def _gpu_samples(nvml: Any) -> list[GpuSample]:
    if nvml is not None:
        samples = []
        for index in range(nvml.nvmlDeviceGetCount()):
            handle = nvml.nvmlDeviceGetHandleByIndex(index)
            memory = nvml.nvmlDeviceGetMemoryInfo(handle)
            name = nvml.nvmlDeviceGetName(handle)
            samples.append(
                GpuSample(
                    index=index,
                    name=name.decode() if isinstance(name, bytes) else str(name),
                    utilization_pct=float(nvml.nvmlDeviceGetUtilizationRates(handle).gpu),
                    memory_used_mb=memory.used / _MIB,
                    memory_total_mb=memory.total / _MIB,
                    temperature_c=float(
                        nvml.nvmlDeviceGetTemperature(handle, nvml.NVML_TEMPERATURE_GPU)
                    ),
                )
            )
        return samples
    import torch

    if not torch.cuda.is_available():
        return []
    return [
        GpuSample(
            index=i,
            name=torch.cuda.get_device_name(i),
            memory_used_mb=torch.cuda.memory_reserved(i) / _MIB,
            memory_total_mb=torch.cuda.get_device_properties(i).total_memory / _MIB,
        )
        for i in range(torch.cuda.device_count())
    ]


def sample_resources(nvml: Any = None) -> ResourcesDetail:
    memory = psutil.virtual_memory()
    return ResourcesDetail(
        gpus=_gpu_samples(nvml),
        cpu_pct=psutil.cpu_percent(interval=None),
        ram_used_mb=(memory.total - memory.available) / _MIB,
        ram_total_mb=memory.total / _MIB,
        process_rss_mb=psutil.Process().memory_info().rss / _MIB,
    )


class ResourceMonitor:
    """A daemon thread that emits a resources event every `interval_s` seconds."""

    def __init__(self, emitter: EventEmitter, interval_s: float) -> None:
        self._emitter = emitter
        self._interval = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="resources", daemon=True)

    def _run(self) -> None:
        nvml = _nvml()
        psutil.cpu_percent(interval=None)  # the first reading is meaningless: prime it
        while not self._stop.wait(self._interval):
            try:
                self._emitter.resources(sample_resources(nvml))
            except Exception as exc:  # a failed sample must never stop training
                self._emitter.log("warning", "resource sample failed", error=str(exc))

    def __enter__(self) -> ResourceMonitor:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
