"""The quota behaviour every JobStore shares, asserted once for the local and the aws store."""

from __future__ import annotations

import threading

import pytest

from support.jobs import make_job
from whetstone.core.errors import QuotaExceededError
from whetstone.core.lifecycle import JobStatus
from whetstone.core.quota import ActiveLimits, ActiveUsage
from whetstone.core.spec import HardwareParams
from whetstone.ports import JobStore

ROOMY_GPUS = 100


def assert_concurrent_creates_stop_at_the_quota(
    store: JobStore, *, attempts: int = 8, quota: int = 3
) -> None:
    """Given a quota of `quota` jobs, when `attempts` threads create at once, then exactly
    `quota` are stored and the others are refused."""
    limits = ActiveLimits(max_jobs=quota, max_gpus=ROOMY_GPUS)
    start = threading.Barrier(attempts)
    outcomes: list[str] = []

    def create() -> None:
        job = make_job()
        start.wait()
        try:
            store.create(job, limits=limits)
        except QuotaExceededError as error:
            outcomes.append(error.code)
        else:
            outcomes.append("created")

    threads = [threading.Thread(target=create) for _ in range(attempts)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes) == ["created"] * quota + ["quota_jobs"] * (attempts - quota)
    assert store.active_usage("org-a").jobs == quota


def assert_an_ended_job_gives_its_slot_back_once(store: JobStore) -> None:
    """Given a full quota, when a job ends (and is saved again after), then one create
    fits again, and no more."""
    limits = ActiveLimits(max_jobs=2, max_gpus=ROOMY_GPUS)
    gpus = HardwareParams(gpu_count=2)
    first, second = make_job(hardware=gpus), make_job(hardware=gpus)
    store.create(first, limits=limits)
    store.create(second, limits=limits)
    with pytest.raises(QuotaExceededError):
        store.create(make_job(), limits=limits)

    ended = store.save(first.with_status(JobStatus.CANCELLED), expected_version=0)
    store.save(ended.model_copy(update={"name": "renamed"}), expected_version=ended.version)

    assert store.active_usage("org-a") == ActiveUsage(jobs=1, gpus=2)
    store.create(make_job(), limits=limits)
    with pytest.raises(QuotaExceededError):
        store.create(make_job(), limits=limits)


def assert_the_gpu_quota_counts_the_gpus_of_jobs_not_ended(store: JobStore) -> None:
    """Given jobs holding 3 of 4 GPUs, when a 2-GPU job is created, then it is refused
    naming the GPU quota, and a 1-GPU job fits."""
    limits = ActiveLimits(max_jobs=10, max_gpus=4)
    store.create(make_job(hardware=HardwareParams(gpu_count=3)), limits=limits)

    with pytest.raises(QuotaExceededError) as refused:
        store.create(make_job(hardware=HardwareParams(gpu_count=2)), limits=limits)
    store.create(make_job(hardware=HardwareParams(gpu_count=1)), limits=limits)

    assert refused.value.code == "quota_gpus"
    assert store.active_usage("org-a") == ActiveUsage(jobs=2, gpus=4)
    assert store.active_usage("org-b") == ActiveUsage()
