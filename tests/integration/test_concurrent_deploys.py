"""Two deploys of one job at once (local runtime): one is recorded, the other removes only
the server it started itself, so the recorded one keeps running with its files."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from support.http import is_running
from support.platform import use_ports
from support.serving import Rendezvous, completed_job, deploy_twice_at_once

from whetstone.adapters.local.process_deployer import ProcessDeployer
from whetstone.core.errors import ConflictError
from whetstone.core.job import Caller, Deployment

ALICE = Caller(user_id="alice", org_id="acme")


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "model"
    folder.mkdir()
    config = {"peft_type": "LORA", "r": 8, "target_modules": ["q_proj", "v_proj"]}
    (folder / "adapter_config.json").write_text(json.dumps(config))
    (folder / "chat_template.jinja").write_text("{{ messages }}")
    return folder


@pytest.fixture
def sleeping_python(tmp_path: Path) -> str:
    """A "python" that only sleeps: a model server that never loads a model."""
    script = tmp_path / "python"
    script.write_text(f"#!{sys.executable}\nimport time\ntime.sleep(60)\n")
    script.chmod(0o755)
    return str(script)


def test_two_deploys_of_one_job_at_once_leave_the_recorded_server_whole(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, model_dir: Path, sleeping_python: str
) -> None:
    # Given a completed job and a deployer whose two starts meet before either records
    run_dir = tmp_path / "run"
    deployer = ProcessDeployer(run_dir, python=sleeping_python, ready_timeout_s=600)
    platform = use_ports(monkeypatch, deployer=Rendezvous(deployer))
    job = completed_job(platform, ALICE.org_id, model_dir)

    # When the job is deployed twice at once
    results = deploy_twice_at_once(platform, ALICE, job.job_id)

    # Then one deploy is recorded and the other was refused as already deployed
    won = [r for r in results if isinstance(r, Deployment)]
    lost = [r for r in results if isinstance(r, Exception)]
    assert len(won) == 1 and len(lost) == 1, results
    assert isinstance(lost[0], ConflictError) and lost[0].code == "already_deployed"
    recorded = platform.jobs.get(job.job_id)
    assert recorded is not None and recorded.deployment is not None
    assert recorded.deployment.generation == won[0].generation
    # and the recorded server still runs with its pid and key files: only the loser's are gone
    assert recorded.deployment.pid is not None and is_running(recorded.deployment.pid)
    stem = f"{job.job_id}.{won[0].generation}"
    assert sorted(p.name for p in run_dir.iterdir()) == [
        f"{stem}.{s}" for s in ("key", "log", "pid")
    ]
    assert deployer.request_headers(recorded)["authorization"].startswith("Bearer whsk_")

    deployer.stop(recorded)
    assert not is_running(recorded.deployment.pid)
