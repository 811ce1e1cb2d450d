"""Configuration from the environment, parsed once.

Read by hand rather than with pydantic-settings, whose import alone cost every Lambda's
cold start about 50 ms (bench/api_latency.py).
"""

from __future__ import annotations

import json
import os
import typing
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, NonNegativeInt, PositiveInt

from whetstone.core.serving import DEFAULT_MAX_LORA_RANK, MAX_LORA_RANK_LIMIT

ENV_PREFIX = "WHETSTONE_"
# Settings that also answer to a variable the platform sets (the Lambda runtime's region).
_FALLBACK_VARIABLES = {"aws_region": "AWS_REGION"}


class Settings(BaseModel):
    """Every setting Whetstone reads from the environment: `WHETSTONE_<NAME>`, in any case;
    list settings as JSON."""

    runtime: Annotated[
        Literal["local", "aws"], Field(description="Which adapters back the services.")
    ] = "local"
    home: Annotated[Path, Field(description="Where the local runtime keeps its state.")] = Path(
        "~/.whetstone"
    ).expanduser()
    dataset_roots: Annotated[
        list[Path],
        Field(
            description="Folders local dataset paths may point into (local runtime), as a JSON "
            "list; empty means <home>/datasets only.",
        ),
    ] = Field(default_factory=list)
    org_dataset_buckets: Annotated[
        dict[str, list[str]],
        Field(
            description="S3 locations beyond its own keys each organization may name as a "
            'dataset source (aws), as JSON: {"<org>": ["<bucket>", "<bucket>/<prefix>"]}.',
        ),
    ] = Field(default_factory=dict)
    openai_model_aliases: Annotated[
        dict[str, str],
        Field(
            description="Base models that OpenAI model names stand for in /v1 job creation, as "
            'JSON: {"gpt-4o-mini-2024-07-18": "qwen2.5-7b-instruct"}; so an OpenAI script '
            "runs with only its base URL and key changed.",
        ),
    ] = Field(default_factory=dict)
    org_monthly_budget_usd: Annotated[
        dict[str, float],
        Field(
            description="Each organization's monthly budget in USD, as JSON: "
            '{"<org>": 500}. Creating a job whose estimate would bring the spend of the '
            "organization's jobs created this month (UTC) past it is refused unless the "
            "request sets allow_over_budget; an organization not listed has no budget.",
        ),
    ] = Field(default_factory=dict)
    max_upload_bytes: Annotated[
        int, Field(ge=1, description="Largest dataset file accepted, in bytes.")
    ] = 5 * 1024**3
    sync_validation_max_bytes: Annotated[
        int,
        Field(
            ge=0,
            description="Datasets up to this size are validated when the job is created, so "
            "errors come back at once; larger ones (and s3:// and hf:// sources) are validated "
            "by the trainer's prepare stage.",
        ),
    ] = 10 * 1024**2
    max_row_bytes: Annotated[
        int, Field(ge=1, description="Largest dataset line or row accepted, in bytes.")
    ] = 1024**2
    table_name: Annotated[str, Field(description="DynamoDB table of jobs (aws).")] = "whetstone"
    bucket: Annotated[str, Field(description="S3 bucket of datasets and artifacts (aws).")] = (
        "whetstone-artifacts"
    )
    log_group: Annotated[str, Field(description="CloudWatch log group of jobs (aws).")] = (
        "/whetstone/jobs"
    )
    user_pool_id: Annotated[
        str | None, Field(description="Cognito user pool whose ID tokens the authorizer accepts.")
    ] = None
    user_pool_client_id: Annotated[
        str | None, Field(description="The app client those ID tokens must be issued to.")
    ] = None
    console_client_id: Annotated[
        str | None,
        Field(
            description="The web console's app client (aws, hosted UI sign-in): the "
            "authorizer accepts ID tokens issued to it as well."
        ),
    ] = None
    console_origin: Annotated[
        str | None,
        Field(
            description="The web console's origin (aws: https://<CloudFront domain>): the "
            "API's answers to requests from it carry CORS headers, and to no other origin."
        ),
    ] = None
    max_active_jobs: Annotated[
        PositiveInt, Field(description="Jobs an organization may have running at once.")
    ] = 10
    max_active_gpus: Annotated[
        PositiveInt, Field(description="GPUs an organization's running jobs may hold.")
    ] = 16
    org_requests_per_window: Annotated[
        int,
        Field(
            ge=0,
            description="Requests an organization may make to the API in each "
            "org_throttle_window_s window (aws); 0 turns the per-organization limit off.",
        ),
    ] = 100
    org_throttle_window_s: Annotated[
        int, Field(ge=1, le=3600, description="The window of org_requests_per_window, seconds.")
    ] = 10
    local_concurrency: Annotated[
        int, Field(ge=1, le=64, description="Jobs the local runtime trains at once.")
    ] = 1
    stop_grace_s: Annotated[
        float,
        Field(ge=1, le=600, description="Seconds a stopped trainer gets to checkpoint."),
    ] = 60.0
    max_lora_rank: Annotated[
        int,
        Field(
            ge=1,
            le=MAX_LORA_RANK_LIMIT,
            description="Largest adapter rank deployments accept unless a deploy asks for more "
            "(vLLM's --max-lora-rank).",
        ),
    ] = DEFAULT_MAX_LORA_RANK
    deploy_ready_timeout_s: Annotated[
        float,
        Field(ge=1, le=3600, description="Seconds a local model server gets to answer."),
    ] = 600.0
    local_hourly_rate_usd: Annotated[
        float,
        Field(
            ge=0,
            description="What an hour of a local job costs, USD (the machine is yours: 0 "
            "unless you price it); local jobs' cost and estimate use it.",
        ),
    ] = 0.0

    # The aws workflow (state machine, EKS, image builds, trainer events).
    aws_region: Annotated[
        str,
        Field(
            description="AWS region of the deployment; without WHETSTONE_AWS_REGION, "
            "AWS_REGION (which the Lambda runtime sets)."
        ),
    ] = "us-east-1"
    state_machine_arn: Annotated[
        str | None, Field(description="ARN of the job workflow state machine (aws).")
    ] = None
    event_bus_name: Annotated[
        str, Field(description="EventBridge bus the trainer sends its events to (aws).")
    ] = "whetstone"
    cluster_name: Annotated[str, Field(description="EKS cluster that runs trainers (aws).")] = (
        "whetstone"
    )
    ecr_repository_uri: Annotated[
        str,
        Field(description="ECR repository of trainer images, <account>.dkr.ecr.<region>..."),
    ] = ""
    build_project: Annotated[
        str, Field(description="CodeBuild project that builds the trainer image (aws).")
    ] = "whetstone-trainer-image"
    namespace_prefix: Annotated[
        str,
        Field(
            pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?-?$",
            max_length=20,
            description="Prefix of each organization's Kubernetes namespace.",
        ),
    ] = "whetstone-"
    trainer_role_arn: Annotated[
        str | None,
        Field(
            description="IAM role trainer pods assume through EKS Pod Identity; its policy "
            "scopes S3 to the job's prefix by the kubernetes-service-account session tag."
        ),
    ] = None
    serving_role_arn: Annotated[
        str | None,
        Field(
            description="IAM role vLLM pods assume through EKS Pod Identity: reads of jobs' "
            "models only, narrowed per deploy to the job's model by a session policy."
        ),
    ] = None
    job_ttl_s: Annotated[
        NonNegativeInt,
        Field(description="Seconds a finished Kubernetes Job is kept for debugging."),
    ] = 3600
    deadline_factor: Annotated[
        float,
        Field(ge=1, description="activeDeadlineSeconds = estimated time x this + the floor."),
    ] = 2.0
    deadline_floor_s: Annotated[
        int, Field(ge=600, description="Seconds added to every deadline (node start, pulls).")
    ] = 3600
    serving_ready_timeout_s: Annotated[
        int,
        Field(
            ge=300,
            le=4 * 3600,
            description="Seconds a vLLM deployment on EKS gets to become ready: GPU node, "
            "image pull, weights download and load (its progressDeadlineSeconds).",
        ),
    ] = 3600
    pending_grace_s: Annotated[
        int,
        Field(ge=60, description="Seconds a pending job may wait for its workflow to start."),
    ] = 300
    deployment_idle_ttl_s: Annotated[
        int | None,
        Field(
            ge=60,
            description="Seconds a model deployment may serve no request before the "
            "reconciler scales it to zero (stops its server); unset: never.",
        ),
    ] = None

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """The settings `environ` (the process environment by default) sets; the others keep
        their defaults. A bad value raises ValueError (pydantic's ValidationError is one)."""
        environ = os.environ if environ is None else environ
        variables = {name.upper(): value for name, value in environ.items()}
        values: dict[str, Any] = {}
        for name, field in cls.model_fields.items():
            names = [ENV_PREFIX + name.upper()]
            if name in _FALLBACK_VARIABLES:
                names.append(_FALLBACK_VARIABLES[name])
            found = next((variable for variable in names if variable in variables), None)
            if found:
                values[name] = _parsed(variables[found], field.annotation, found)
        return cls.model_validate(values)


def _parsed(value: str, annotation: Any, variable: str) -> Any:
    origin = typing.get_origin(annotation)
    if origin not in (list, dict):
        return value  # pydantic converts numbers, paths and literals from their text
    example = 'list, e.g. ["/data"]' if origin is list else 'object, e.g. {"acme": ["bucket"]}'
    try:
        return json.loads(value)
    except ValueError as error:
        raise ValueError(f"{variable} must be a JSON {example}: {error}") from error


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings.from_environment()
