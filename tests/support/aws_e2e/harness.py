"""The whole aws runtime on one machine, for a test to drive through the API handler.

Real: the API Lambda's handler (API Gateway events with Cognito claims), the state
machine's definition (executed by moto's Step Functions interpreter), the step, ingest
and S3-trigger handlers, the reconciler's pass, the Kubernetes manifests and the trainer
they run.
Simulated: the AWS APIs (moto in server mode), the Kubernetes API and its Job controller
(process_kube.py), the hub (an offline cache) and Pod Identity (test credentials).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

from functions import ingest, s3_trigger
from support.apigw import call_api
from support.aws_e2e.event_delivery import EventDelivery
from support.aws_e2e.hub import hub_cache
from support.aws_e2e.moto_server import deploy_stacks, moto_server
from support.aws_e2e.process_kube import Pod, ProcessKube
from support.aws_workflow import BUCKET, STATE_MACHINE_ARN
from support.sfn_mock import MockedStepFunctions
from support.workflow_functions import handlers_by_name
from whetstone import runtime
from whetstone.adapters.aws import eks_compute
from whetstone.adapters.aws.kube.object_status import condition
from whetstone.core.job import utcnow
from whetstone.service.reconcile import reconcile

API = "/api/v1/fine-tuning"
MODEL_ID = "llama-3.2-1b-instruct"
TERMINAL = ("completed", "failed", "cancelled")
POLL_S = 0.5


@dataclass
class AwsRuntime:
    kube: ProcessKube
    deliveries: list[EventDelivery]

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        """The API handler's JSON answer to an API Gateway event (asserting a 2xx)."""
        response = call_api(method, f"{API}{path}", **kwargs)
        assert response.status < 300, (response.status, response.body)
        return response.body

    def job(self, job_id: str) -> dict[str, Any]:
        job: dict[str, Any] = self.api("GET", f"/jobs/{job_id}")
        return job

    def wait_until(
        self, job_id: str, done: Callable[[dict[str, Any]], bool], timeout_s: float = 300
    ) -> dict[str, Any]:
        """The job once `done` holds; fails the test with the containers' output on timeout.
        Once a Kubernetes Job has failed, the scheduled reconciler runs (its grace period
        skipped), as it would find the stage's wait unanswered."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            job = self.job(job_id)
            if done(job):
                return job
            if self._a_kubernetes_job_failed():
                self.reconcile_after_grace()
            for delivery in self.deliveries:
                assert not delivery.errors, delivery.errors[0]
            time.sleep(POLL_S)
        raise AssertionError(f"{job_id} stuck at {job['status']}:\n{self.container_logs()}")

    def wait_for_end(self, job_id: str) -> dict[str, Any]:
        return self.wait_until(job_id, lambda job: job["status"] in TERMINAL)

    def wait_for_pod(self, job_name: str, timeout_s: float = 60) -> Pod:
        """The Job's running pod, once there is one."""
        deadline = time.monotonic() + timeout_s
        while (pod := self.kube.running(job_name)) is None:
            assert time.monotonic() < deadline, f"no pod of {job_name} runs"
            time.sleep(POLL_S / 5)
        return pod

    def _a_kubernetes_job_failed(self) -> bool:
        return any(
            condition(job, "Failed") is not None for job in self.kube.list_objects("Job", None)
        )

    def wait_for_drop(self, key: str, timeout_s: float = 60) -> str:
        """The job id the S3-drop trigger wrote to `key` once it accepted a drop."""
        s3 = boto3.client("s3")
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                body = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
                return str(json.loads(body)["job_id"])
            except s3.exceptions.NoSuchKey:
                assert time.monotonic() < deadline, f"no {key}"
                time.sleep(POLL_S)

    def container_logs(self) -> str:
        """The tail of every pod's output (what `kubectl logs` would show)."""
        return "\n".join(
            f"--- {pod.name} (exit {pod.process.poll()})\n"
            + (pod.folder / "container.log").read_text(errors="replace")[-3000:]
            for pod in self.kube.pods
        )

    def reconcile_after_grace(self) -> None:
        """A pass of the reconciler Lambda's work as it runs once the pending grace period
        has passed."""
        platform = runtime.get_platform()
        ports = runtime.get_aws_workflow_ports()
        later = utcnow() + timedelta(seconds=platform.settings.pending_grace_s)
        reconcile(platform, ports.orchestrator, ports.compute, now=later)


@contextmanager
def aws_runtime(
    monkeypatch: pytest.MonkeyPatch, folder: Path, tiny_model: Path
) -> Iterator[AwsRuntime]:
    """The stacks deployed on a moto server, the step Lambdas invoked by the state machine
    in this process, trainer Jobs run as subprocesses and their events delivered to ingest."""
    with moto_server(monkeypatch) as endpoint:
        queues = deploy_stacks()
        MockedStepFunctions(handlers_by_name()).install(monkeypatch)
        node_env = {
            "PATH": "/usr/bin:/bin",
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "HF_HUB_OFFLINE": "1",
            "HF_HUB_CACHE": str(hub_cache(folder / "hub", MODEL_ID, tiny_model)),
        }
        kube = ProcessKube(folder=folder / "node", node_env=node_env)
        monkeypatch.setattr(eks_compute, "KubernetesApi", lambda *args, **kwargs: kube)
        runtime.get_settings.cache_clear()
        runtime.get_platform.cache_clear()
        runtime.get_aws_workflow_ports.cache_clear()
        deliveries = [
            EventDelivery(queues.ingest, ingest.handler),
            EventDelivery(queues.drop, s3_trigger.handler),
        ]
        for delivery in deliveries:
            delivery.start()
        try:
            yield AwsRuntime(kube, deliveries)
        finally:
            _stop_executions()
            for delivery in deliveries:
                delivery.stop()
            kube.stop_all()
            runtime.get_platform.cache_clear()
            runtime.get_aws_workflow_ports.cache_clear()


def _stop_executions() -> None:
    """Nothing of a test's workflow runs on into the next test."""
    sfn = boto3.client("stepfunctions")
    running = sfn.list_executions(stateMachineArn=STATE_MACHINE_ARN, statusFilter="RUNNING")
    for execution in running["executions"]:
        sfn.stop_execution(executionArn=execution["executionArn"])
