"""Defaults that follow the run: warmup from its length, workers from the machine's cores."""

from __future__ import annotations

from typing import Any

import pytest

from whetstone.core.run_defaults import (
    WARMUP_LONGER_THAN_RUN,
    dataloader_workers,
    run_steps,
    spec_warnings,
    warmup_steps,
)
from whetstone.core.spec import JobSpec


def make(**fields: Any) -> JobSpec:
    return JobSpec.model_validate({"base_model": "llama-3.1-8b-instruct", **fields})


@pytest.mark.parametrize(("total", "derived"), [(30, 3), (1, 1), (995, 100), (5000, 100)])
def test_unset_warmup_is_a_tenth_of_the_run_at_most_product_mds_100(
    total: int, derived: int
) -> None:
    # Given a spec that leaves warmup unset
    spec = make()
    # When the warmup of a run of `total` optimizer steps is decided
    # Then it is a tenth of the run, rounded up, never above 100
    assert warmup_steps(spec, total) == derived


def test_a_warmup_set_by_hand_is_kept() -> None:
    assert warmup_steps(make(training={"warmup_steps": 100}), 30) == 100
    assert warmup_steps(make(training={"warmup_steps": 0}), 30) == 0


@pytest.mark.parametrize(("cpus", "workers"), [(1, 0), (2, 1), (5, 4), (64, 4)])
def test_unset_workers_leave_a_core_to_the_main_process_at_most_4(cpus: int, workers: int) -> None:
    # Given a spec that leaves dataloader_workers unset, on a machine with `cpus` cores
    # Then the loader gets one fewer than the cores, never above product.md's 4
    assert dataloader_workers(make(), cpus) == workers


def test_workers_set_by_hand_are_kept_whatever_the_cores() -> None:
    assert dataloader_workers(make(advanced={"dataloader_workers": 8}), 2) == 8


def test_run_steps_count_optimizer_updates_over_every_epoch() -> None:
    # Given 100 examples, 80 of them in the train split, 4 per batch, 4 batches per update
    spec = make(training={"epochs": 3})
    # Then each epoch has ceil(20 / 4) = 5 updates, 15 in all
    assert run_steps(spec, 100) == 15


def test_a_warmup_longer_than_the_run_warns_with_what_to_do() -> None:
    # Given product.md's old fixed warmup set by hand on a 30-step run
    spec = make(training={"warmup_steps": 100, "learning_rate": 1e-3})
    # When the spec is checked against the run
    (warning,) = spec_warnings(spec, 30)
    # Then the warning names the warmup, the run's steps and the fix
    assert warning.code == WARMUP_LONGER_THAN_RUN
    assert "warmup_steps 100" in warning.message and "30 optimizer steps" in warning.message
    assert "leave it unset" in warning.message


def test_a_derived_or_fitting_warmup_does_not_warn() -> None:
    assert spec_warnings(make(), 30) == []
    assert spec_warnings(make(training={"warmup_steps": 30}), 30) == []
