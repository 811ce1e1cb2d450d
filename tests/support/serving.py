"""Completed jobs whose output holds a real (untrained) LoRA adapter on a tiny base."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from support.jobs import make_job
from whetstone.core.job import Caller, Deployment, JobRecord, utcnow
from whetstone.core.layout import JobLayout
from whetstone.core.lifecycle import JobStatus
from whetstone.core.spec import ADAPTER_METHODS
from whetstone.core.tokens import hash_token
from whetstone.service.platform import Platform
from whetstone.service.records import transition
from whetstone.serving.auth import ServerKeys
from whetstone.serving.server import ModelServer

_TO_COMPLETED = (JobStatus.PREPARING, JobStatus.DEPLOYING, JobStatus.TRAINING, JobStatus.COMPLETED)


def build_base(folder: Path) -> Path:
    from whetstone.inference.tiny import build_tiny_model

    return build_tiny_model(folder, hidden=32, layers=1, heads=2)


def write_adapter(
    base: Path, out: Path, *, r: int = 8, target_modules: tuple[str, ...] = ("q_proj", "v_proj")
) -> Path:
    """An adapter with non-zero weights (so it changes the answers) and the base's tokenizer."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(base)
    config = LoraConfig(
        r=r, lora_alpha=2 * r, target_modules=list(target_modules), init_lora_weights=False
    )
    torch.manual_seed(1)
    peft_model = get_peft_model(model, config)
    peft_model.save_pretrained(out)
    AutoTokenizer.from_pretrained(base).save_pretrained(out)
    return out


def completed_job(platform: Platform, org_id: str, model_dir: Path | None) -> JobRecord:
    """A job through its lifecycle to completed, `model_dir` copied to its output/model/."""
    job = make_job(org_id)
    platform.jobs.create(job.with_status(JobStatus.PENDING, "job created"))
    if model_dir is not None:
        prefix = JobLayout.of(job).model
        for path in sorted(model_dir.rglob("*")):
            if path.is_file():
                platform.blobs.put(
                    prefix + path.relative_to(model_dir).as_posix(), path.read_bytes()
                )
    for status in _TO_COMPLETED:
        job = transition(platform, job.job_id, status)
    return job


class Rendezvous:
    """A Deployer whose starts wait for each other: with two deploys of one job at once,
    both servers exist before either deploy records its deployment (the race to win)."""

    def __init__(self, inner: Any, parties: int = 2) -> None:
        self.inner = inner
        self._barrier = threading.Barrier(parties, timeout=60)  # a guard against a hang only

    def start(
        self, job: JobRecord, model_uri: str, *, base_model: str | None, max_lora_rank: int
    ) -> Deployment:
        started = self.inner.start(
            job, model_uri, base_model=base_model, max_lora_rank=max_lora_rank
        )
        self._barrier.wait()
        return started  # type: ignore[no-any-return]

    def status(self, job: JobRecord) -> Deployment:
        return self.inner.status(job)  # type: ignore[no-any-return]

    def stop(self, job: JobRecord) -> None:
        self.inner.stop(job)

    def request_headers(self, job: JobRecord) -> dict[str, str]:
        return self.inner.request_headers(job)  # type: ignore[no-any-return]


def deploy_twice_at_once(platform: Platform, caller: Caller, job_id: str) -> list[Any]:
    """Two deploys of the job on two threads: each one's deployment or error.

    The store's conditional write is atomic in SQLite and in DynamoDB, not in moto, where two
    threads can both pass the condition before either writes: a lock around `save` gives the
    test's store the atomicity the real ones have."""
    from whetstone.service.deployments import deploy

    results: list[Any] = []
    store, lock = platform.jobs, threading.Lock()
    save = store.save

    def atomic_save(job: JobRecord, *, expected_version: int) -> JobRecord:
        with lock:
            return save(job, expected_version=expected_version)

    def one() -> None:
        try:
            results.append(deploy(platform, caller, job_id))
        except Exception as error:
            results.append(error)

    store.save = atomic_save  # type: ignore[method-assign]
    try:
        threads = [threading.Thread(target=one) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        del store.save  # the store's own method again
    return results


class ServingDeployer:
    """Serves each job at once (ready) with a local model server over `model` (a stand-in
    for ChatModel), behind a key; an adapter job's server answers its base model too, as the
    process deployer records it."""

    key = "whsk_the-test-servers-key"

    def __init__(self, model: Any) -> None:
        self.model = model
        self.servers: dict[str, ModelServer] = {}

    def start(
        self, job: JobRecord, model_uri: str, *, base_model: str | None, max_lora_rank: int
    ) -> Deployment:
        base = job.spec.base_model if job.spec.tuning_method in ADAPTER_METHODS else None
        keys = ServerKeys(hash_token(self.key))
        server = ModelServer(("127.0.0.1", 0), self.model, job.job_id, keys=keys, base_name=base)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self.servers[job.job_id] = server
        now = utcnow()
        return Deployment(
            status="ready",
            model=job.job_id,
            base_model=base,
            endpoint=f"http://127.0.0.1:{server.server_address[1]}/v1",
            max_lora_rank=max_lora_rank,
            created_at=now,
            updated_at=now,
        )

    def status(self, job: JobRecord) -> Deployment:
        assert job.deployment is not None
        return job.deployment

    def request_headers(self, job: JobRecord) -> dict[str, str]:
        return {"authorization": f"Bearer {self.key}"}

    def stop(self, job: JobRecord) -> None:
        server = self.servers.pop(job.job_id, None)
        if server is not None:
            server.shutdown()

    def stop_all(self) -> None:
        for job_id in list(self.servers):
            self.servers.pop(job_id).shutdown()
