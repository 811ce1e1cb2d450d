"""Downloads with a choice of archive, and deployments, through the SDK and the `whet` CLI
against a running `whet serve` over real HTTP."""

from __future__ import annotations

import io
import re
import tarfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from support.clients import Result
from support.jobs import make_job
from support.platform import use_ports

from whetstone.client import Job, WhetstoneAPIError, WhetstoneClient
from whetstone.core.job import Deployment, JobRecord, utcnow
from whetstone.core.layout import CHECKPOINT_COMPLETE_MARKER, JobLayout
from whetstone.core.lifecycle import JobStatus
from whetstone.runtime import get_platform
from whetstone.service import workflow
from whetstone.service.records import transition

OUTPUT = {
    "model/adapter_config.json": b'{"r": 8, "target_modules": ["q_proj", "v_proj"]}',
    "model/adapter_model.safetensors": b"adapter",
    "model/chat_template.jinja": b"{% for m in messages %}{{ m.content }}{% endfor %}",
    "merged/config.json": b"{}",
    "merged/model.safetensors": b"merged",
    "checkpoints/checkpoint-3/adapter_model.safetensors": b"weights at 3",
    f"checkpoints/checkpoint-3/{CHECKPOINT_COMPLETE_MARKER}": b"",
}


@dataclass
class ScriptedDeployer:
    """A Deployer whose server reports the given statuses, one per status call."""

    statuses: list[str] = field(default_factory=lambda: ["starting", "ready"])
    stopped: list[str] = field(default_factory=list)

    def _deployment(self, job: JobRecord, status: str) -> Deployment:
        now = utcnow()
        failed = status == "failed"
        return Deployment(
            status=status,
            model=job.job_id,
            base_model="tiny-base",
            endpoint=None if failed else "http://127.0.0.1:9/v1",
            max_lora_rank=16,
            created_at=now,
            updated_at=now,
            message="the model server exited with code 1" if failed else None,
        )

    def start(
        self, job: JobRecord, model_uri: str, *, base_model: str | None, max_lora_rank: int
    ) -> Deployment:
        return self._deployment(job, "starting")

    def status(self, job: JobRecord) -> Deployment:
        status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        return self._deployment(job, status)

    def stop(self, job: JobRecord) -> None:
        self.stopped.append(job.job_id)


pytestmark = pytest.mark.usefixtures("no_user_config")


@pytest.fixture(autouse=True)
def _no_pauses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Job, "wait_between_polls", lambda self, seconds: None)


@pytest.fixture
def deployer(monkeypatch: pytest.MonkeyPatch) -> ScriptedDeployer:
    scripted = ScriptedDeployer()
    use_ports(monkeypatch, deployer=scripted)
    return scripted


@pytest.fixture
def job_id() -> str:
    """A completed LoRA job of the local user, its archives built by the workflow."""
    platform = get_platform()
    job = make_job("local")
    platform.jobs.create(job)
    for name, data in OUTPUT.items():
        platform.blobs.put(JobLayout.of(job).output + name, data)
    for status in (JobStatus.PREPARING, JobStatus.DEPLOYING, JobStatus.TRAINING):
        transition(platform, job.job_id, status)
    return workflow.finalize(platform, job.job_id).job_id


def names_in(path: Path) -> list[str]:
    with tarfile.open(fileobj=io.BytesIO(path.read_bytes()), mode="r:gz") as tar:
        return sorted(tar.getnames())


# -- SDK --------------------------------------------------------------------------------------


def test_sdk_downloads_each_archive_under_its_own_name(
    client: WhetstoneClient, job_id: str, tmp_path: Path
) -> None:
    job = client.job(job_id)

    model = job.download(tmp_path)
    merged = job.download(tmp_path, artifact="merged")
    checkpoint = client.download(job_id, tmp_path, artifact="checkpoint", step=3)

    assert model.name == f"{job_id}.tar.gz"
    assert names_in(model) == [
        "adapter_config.json",
        "adapter_model.safetensors",
        "chat_template.jinja",
    ]
    assert merged.name == f"{job_id}-merged.tar.gz"
    assert names_in(merged) == ["config.json", "model.safetensors"]
    assert checkpoint.name == f"{job_id}-checkpoint-3.tar.gz"
    assert names_in(checkpoint) == ["adapter_model.safetensors"]


def test_sdk_a_missing_checkpoint_raises_with_the_available_steps(
    client: WhetstoneClient, job_id: str, tmp_path: Path
) -> None:
    with pytest.raises(WhetstoneAPIError) as refused:
        client.download(job_id, tmp_path, artifact="checkpoint", step=9)

    assert refused.value.status == 404 and refused.value.code == "checkpoint_not_found"
    assert refused.value.details == {"available_steps": [3]}
    assert list(tmp_path.iterdir()) == []


def test_sdk_deploys_waits_until_ready_and_undeploys(
    client: WhetstoneClient, job_id: str, deployer: ScriptedDeployer
) -> None:
    job = client.job(job_id)
    seen: list[str] = []

    started = job.deploy()
    ready = job.wait_for_deployment(on_update=lambda d: seen.append(d.status))
    job.undeploy()

    assert started.status == "starting"
    assert seen == ["starting", "ready"] and ready.endpoint == "http://127.0.0.1:9/v1"
    assert client.get_deployment(job_id).status == "deleted"
    assert deployer.stopped == [job_id]


def test_sdk_a_job_without_deployment_raises_not_found(
    client: WhetstoneClient, job_id: str, deployer: ScriptedDeployer
) -> None:
    with pytest.raises(WhetstoneAPIError) as missing:
        client.get_deployment(job_id)
    assert missing.value.code == "deployment_not_found"


# -- CLI --------------------------------------------------------------------------------------


def test_cli_download_writes_the_chosen_archive(
    whet: Callable[..., Result], job_id: str, tmp_path: Path
) -> None:
    target = tmp_path / "merged.tar.gz"

    merged = whet("jobs", "download", job_id, "--artifact", "merged", "-o", str(target))
    checkpoint = whet("jobs", "download", job_id, "--step", "3", "-o", str(tmp_path), "--json")

    assert merged.code == 0 and names_in(target) == ["config.json", "model.safetensors"]
    assert checkpoint.code == 0, checkpoint.err
    assert checkpoint.json()["artifact"] == "checkpoint" and checkpoint.json()["step"] == 3
    assert Path(checkpoint.json()["path"]).name == f"{job_id}-checkpoint-3.tar.gz"


def test_cli_download_refusals_exit_1_with_the_servers_message(
    whet: Callable[..., Result], job_id: str, tmp_path: Path
) -> None:
    missing = whet("jobs", "download", job_id, "--step", "7", "-o", str(tmp_path))
    no_step = whet("jobs", "download", job_id, "--artifact", "checkpoint", "-o", str(tmp_path))
    unknown = whet("jobs", "download", job_id, "--artifact", "weights")

    assert (
        missing.code == 1 and "checkpoint_not_found" in missing.err and "at step 3" in missing.err
    )
    assert no_step.code == 1 and "step_required" in no_step.err
    assert unknown.code == 2
    assert list(tmp_path.iterdir()) == []


def test_cli_deploy_wait_shows_progress_on_stderr_and_exits_0_when_ready(
    whet: Callable[..., Result], job_id: str, deployer: ScriptedDeployer
) -> None:
    result = whet("jobs", "deploy", job_id, "--wait", "--json")

    assert result.code == 0, result.err
    assert result.json()["status"] == "ready"
    assert result.err.splitlines() == [
        f"{job_id}  deployment starting",
        f"{job_id}  deployment ready  http://127.0.0.1:9/v1",
    ]


def test_cli_deploy_wait_exits_3_when_the_deployment_fails(
    whet: Callable[..., Result], job_id: str, deployer: ScriptedDeployer
) -> None:
    deployer.statuses = ["starting", "failed"]

    result = whet("jobs", "deploy", job_id, "--wait")

    assert result.code == 3
    assert "status:" in result.out and "failed" in result.out
    assert "the model server exited with code 1" in result.err


def test_cli_deploy_then_deployment_then_undeploy(
    whet: Callable[..., Result], job_id: str, deployer: ScriptedDeployer
) -> None:
    started = whet("jobs", "deploy", job_id, "--json")
    shown = whet("jobs", "deployment", job_id)
    again = whet("jobs", "deploy", job_id)
    undeployed = whet("jobs", "undeploy", job_id, "--json")
    after = whet("jobs", "deployment", job_id, "--json")

    assert started.code == 0 and started.json()["status"] == "starting"
    assert shown.code == 0 and "starting" in shown.out and "http://127.0.0.1:9/v1" in shown.out
    assert re.search(r"base model:\s+tiny-base", shown.out)  # answered beside the adapter
    assert again.code == 1 and "already_deployed" in again.err
    assert undeployed.code == 0 and undeployed.json() == {"job_id": job_id, "undeployed": True}
    assert after.json()["status"] == "deleted"


def test_cli_deployment_of_an_undeployed_job_exits_1(
    whet: Callable[..., Result], job_id: str, deployer: ScriptedDeployer
) -> None:
    result = whet("jobs", "deployment", job_id)
    assert result.code == 1 and "deployment_not_found" in result.err
