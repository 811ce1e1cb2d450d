"""The local runtime reconciles its model server processes when it starts, as aws does."""

from __future__ import annotations

from whetstone.adapters.local.process_deployer import ProcessDeployer
from whetstone.adapters.local.runner import LocalRunner
from whetstone.runtime import get_platform


def test_given_a_server_left_for_a_deleted_job_when_the_runner_reconciles_then_it_is_removed() -> (
    None
):
    # Given the pid file of a server a previous run started for a job that no longer exists
    platform = get_platform()
    assert isinstance(platform.deployer, ProcessDeployer)
    assert isinstance(platform.orchestrator, LocalRunner)
    run_dir = platform.settings.home / "run" / "deployments"
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "ftjob-gone.pid").write_text("999999999")  # no such process any more

    # When the runner reconciles at start
    platform.orchestrator.reconcile()
    platform.orchestrator.shutdown()

    # Then the server's files are gone and nothing is served
    assert not (run_dir / "ftjob-gone.pid").exists()
    assert platform.deployer.served_job_ids() == []
