"""The workflow's failures and its prepare-stage steps live in modules of their own, and
`whetstone.service.workflow` still answers for every step and failure its callers name."""

from __future__ import annotations

import pytest

from whetstone.runtime import get_platform
from whetstone.service import workflow, workflow_errors, workflow_prepare

FAILURES = [
    "WorkflowError",
    "JobStopped",
    "JobPaused",
    "DatasetInvalid",
    "ImageBuildFailed",
    "LaunchFailed",
    "TrainingFailed",
    "ModelDoesNotFit",
    "ModelFactsUnknown",
    "ArtifactsMissing",
]


@pytest.mark.parametrize(
    ("name", "module"),
    [(name, workflow_errors) for name in FAILURES]
    + [(name, workflow_prepare) for name in ("write_plan", "record_prepared", "prepare")],
)
def test_given_a_moved_name_when_read_from_the_workflow_then_it_is_the_modules_own(
    name: str, module: object
) -> None:
    assert getattr(workflow, name) is getattr(module, name)


def test_given_a_deleted_job_when_a_step_needs_it_then_the_workflow_ends_as_stopped() -> None:
    with pytest.raises(workflow_errors.JobStopped, match="no longer exists") as raised:
        workflow_errors.require_job(get_platform(), "ftjob-gone")

    assert (raised.value.code, raised.value.step) == ("stopped", "workflow")
