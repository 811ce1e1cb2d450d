"""Settings from the environment: `WHETSTONE_<NAME>` in any case, JSON lists, AWS_REGION."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from whetstone.settings import Settings


def test_unset_variables_keep_the_defaults_and_unknown_ones_are_ignored() -> None:
    settings = Settings.from_environment({"WHETSTONE_URL": "http://x", "PATH": "/bin"})

    assert settings == Settings()


def test_values_are_converted_to_each_settings_type_whatever_the_case() -> None:
    settings = Settings.from_environment(
        {
            "WHETSTONE_RUNTIME": "aws",
            "whetstone_max_active_jobs": "3",
            "WHETSTONE_STOP_GRACE_S": "12.5",
            "WHETSTONE_HOME": "/srv/whetstone",
            "WHETSTONE_DATASET_ROOTS": '["/data", "/mnt/more"]',
            "WHETSTONE_STATE_MACHINE_ARN": "arn:aws:states:us-east-1:1:stateMachine:w",
        }
    )

    assert settings.runtime == "aws"
    assert settings.max_active_jobs == 3
    assert settings.stop_grace_s == 12.5
    assert settings.home == Path("/srv/whetstone")
    assert settings.dataset_roots == [Path("/data"), Path("/mnt/more")]
    assert settings.state_machine_arn == "arn:aws:states:us-east-1:1:stateMachine:w"


def test_the_region_falls_back_to_the_lambda_runtimes_variable() -> None:
    assert Settings.from_environment({"AWS_REGION": "eu-west-1"}).aws_region == "eu-west-1"
    both = {"AWS_REGION": "eu-west-1", "WHETSTONE_AWS_REGION": "ap-south-1"}
    assert Settings.from_environment(both).aws_region == "ap-south-1"


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        ("WHETSTONE_MAX_ACTIVE_JOBS", "0", "max_active_jobs"),
        ("WHETSTONE_RUNTIME", "kubernetes", "runtime"),
    ],
)
def test_a_bad_value_names_the_setting(variable: str, value: str, named: str) -> None:
    with pytest.raises(ValidationError, match=named):
        Settings.from_environment({variable: value})


def test_a_list_that_is_not_json_says_how_to_write_it() -> None:
    with pytest.raises(ValueError, match=r"WHETSTONE_DATASET_ROOTS must be a JSON list"):
        Settings.from_environment({"WHETSTONE_DATASET_ROOTS": "/data"})


def test_the_buckets_granted_each_organization_are_read_as_a_json_object() -> None:
    granted = '{"acme": ["acme-data", "shared/acme"]}'

    settings = Settings.from_environment({"WHETSTONE_ORG_DATASET_BUCKETS": granted})

    assert settings.org_dataset_buckets == {"acme": ["acme-data", "shared/acme"]}
    with pytest.raises(ValueError, match=r"WHETSTONE_ORG_DATASET_BUCKETS must be a JSON object"):
        Settings.from_environment({"WHETSTONE_ORG_DATASET_BUCKETS": "acme=acme-data"})
