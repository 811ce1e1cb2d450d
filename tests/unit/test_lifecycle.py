"""Job statuses move only along the transition table."""

from __future__ import annotations

import pytest
from support.jobs import HAPPY_PATH

from whetstone.core.errors import ConflictError
from whetstone.core.lifecycle import (
    PAUSABLE_STATUSES,
    STATUS_DESCRIPTIONS,
    TERMINAL_STATUSES,
    TRANSITIONS,
    JobStatus,
    check_transition,
)


def test_there_are_the_ten_statuses_of_product_md_and_pause() -> None:
    assert {s.value for s in JobStatus} == {
        *HAPPY_PATH,
        "failed",
        "stopping",
        "cancelled",
        "pausing",
        "paused",
    }
    assert set(STATUS_DESCRIPTIONS) == set(JobStatus)


def test_the_happy_path_is_allowed_step_by_step() -> None:
    for current, target in zip(HAPPY_PATH, HAPPY_PATH[1:], strict=False):
        check_transition(JobStatus(current), JobStatus(target))


@pytest.mark.parametrize(
    "status",
    sorted(set(JobStatus) - TERMINAL_STATUSES - {JobStatus.STOPPING, JobStatus.PAUSED}),
)
def test_every_running_status_can_fail_or_be_stopped(status: JobStatus) -> None:
    assert {JobStatus.FAILED, JobStatus.STOPPING} <= TRANSITIONS[status]


def test_a_paused_job_holds_nothing_so_a_stop_cancels_it_at_once() -> None:
    assert TRANSITIONS[JobStatus.PAUSED] == {
        JobStatus.DEPLOYING,
        JobStatus.CANCELLED,
        JobStatus.FAILED,
    }


def test_only_a_starting_or_training_job_pauses_and_a_pause_ends_paused_or_completed() -> None:
    pausable = {status for status, targets in TRANSITIONS.items() if JobStatus.PAUSING in targets}
    assert pausable == PAUSABLE_STATUSES == {JobStatus.DEPLOYING, JobStatus.TRAINING}
    assert {JobStatus.PAUSED, JobStatus.COMPLETED} <= TRANSITIONS[JobStatus.PAUSING]
    assert JobStatus.EVALUATING not in TRANSITIONS[JobStatus.PAUSING]


def test_stopping_ends_in_cancelled() -> None:
    check_transition(JobStatus.STOPPING, JobStatus.CANCELLED)


@pytest.mark.parametrize("status", sorted(TERMINAL_STATUSES))
def test_terminal_statuses_go_nowhere(status: JobStatus) -> None:
    with pytest.raises(ConflictError, match="none \\(terminal\\)"):
        check_transition(status, JobStatus.TRAINING)


def test_an_illegal_transition_says_what_is_allowed() -> None:
    with pytest.raises(ConflictError) as caught:
        check_transition(JobStatus.PENDING, JobStatus.TRAINING)
    assert caught.value.code == "illegal_transition"
    assert "may go to" in caught.value.message
