"""Names, limits and retention of every deployed resource, in one place."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from aws_cdk import Duration
from aws_cdk import aws_logs as logs

REPO_ROOT = Path(__file__).resolve().parents[1]
STATE_MACHINE_FILE = REPO_ROOT / "state_machine" / "workflow.asl.json"
BUILDSPEC_FILE = REPO_ROOT / "trainer_container" / "buildspec.yml"

APP_NAME = "Whetstone"
STACK_PREFIX = "Whetstone"

# What goes into the Lambda code asset (relative to the repository root); the rest of the
# repository (tests, trainer, bench) stays out.
LAMBDA_SOURCES = ("whetstone", "functions")
LAMBDA_EXCLUDED_PARTS = frozenset({"__pycache__", ".mypy_cache", ".pytest_cache"})

# Context keys (cdk.json or `-c key=value`).
CTX_LAYER_DIR = "whetstone:dependencies_layer_dir"
CTX_CLUSTER_NAME = "whetstone:cluster_name"
CTX_ALLOWED_ORIGIN = "whetstone:allowed_origin"
DEFAULT_CLUSTER_NAME = "whetstone"

# Job store (the keys themselves come from whetstone.adapters.aws.dynamodb_jobs).
JOB_LOG_GROUP = "/whetstone/jobs"
JOB_LOG_RETENTION = logs.RetentionDays.THREE_MONTHS
FUNCTION_LOG_RETENTION = logs.RetentionDays.ONE_MONTH
ACCESS_LOG_RETENTION = logs.RetentionDays.THREE_MONTHS
WORKFLOW_LOG_RETENTION = logs.RetentionDays.THREE_MONTHS

# Artifacts bucket prefixes and their lifecycle.
INCOMING_PREFIX = "incoming/"
INCOMING_EXPIRY = Duration.days(30)
# Checkpoints and models lie at jobs/<org>/<job>/{checkpoints,model,...}/: a lifecycle filter
# matches prefixes only, so the whole jobs/ tree moves to Intelligent-Tiering (large, rarely
# read files after training); expiry stays the user's decision (DELETE /jobs/{id}).
JOBS_PREFIX = "jobs/"
JOBS_TIERING_AFTER = Duration.days(30)
ABORTED_UPLOAD_EXPIRY = Duration.days(7)
NONCURRENT_VERSION_EXPIRY = Duration.days(30)

# API.
API_STAGE = "v1"
API_THROTTLE_RATE = 50  # requests per second, steady
API_THROTTLE_BURST = 100
BINARY_MEDIA_TYPES = ("multipart/form-data",)
USER_ORG_ATTRIBUTE = "organization"  # read by whetstone.api.identity as custom:organization
TOKEN_VALIDITY = Duration.hours(1)

# Lambda sizing.
LAMBDA_MEMORY_MB = 1024
LAMBDA_TIMEOUT = Duration.seconds(29)  # API Gateway's integration limit
STEP_TIMEOUT = Duration.minutes(5)
INGEST_TIMEOUT = Duration.seconds(60)
RECONCILE_TIMEOUT = Duration.minutes(5)
RECONCILE_EVERY = Duration.minutes(10)

# Workflow.
WORKFLOW_TIMEOUT = Duration.days(7)  # also the ASL's TimeoutSeconds
EVENT_BUS_NAME = "whetstone"
TRAINER_EVENT_SOURCE = "whetstone.trainer"

# Build.
BUILD_PROJECT_NAME = "whetstone-trainer-image"
ECR_REPOSITORY_NAME = "whetstone/trainer"
ECR_KEEP_IMAGES = 20
ECR_UNTAGGED_EXPIRY = Duration.days(7)
BUILD_TIMEOUT = Duration.hours(2)  # the ASL's BuildImage TimeoutSeconds


@dataclass(frozen=True)
class StepFunction:
    """A Task state's Lambda: its ${Placeholder}, handler, and the AWS it needs."""

    placeholder: str
    handler: str
    needs: frozenset[str] = field(default_factory=frozenset)


# Every step Lambda reads and writes the job (table, blobs, job logs); these are the extras.
STEP_FUNCTIONS = (
    StepFunction("BeginFunctionArn", "functions.workflow.begin"),
    StepFunction("PrepareFunctionArn", "functions.workflow.prepare"),
    StepFunction("ResolveImageFunctionArn", "functions.workflow.resolve_image", frozenset({"ecr"})),
    StepFunction("BuildStartedFunctionArn", "functions.workflow.build_started"),
    StepFunction(
        "BuildFinishedFunctionArn",
        "functions.workflow.build_finished",
        frozenset({"ecr", "build_logs"}),
    ),
    StepFunction("LaunchFunctionArn", "functions.workflow.launch", frozenset({"eks"})),
    StepFunction("PollFunctionArn", "functions.workflow.poll", frozenset({"eks"})),
    StepFunction("FinalizeFunctionArn", "functions.workflow.finalize"),
    StepFunction("FailFunctionArn", "functions.workflow.fail", frozenset({"eks", "build_logs"})),
    StepFunction("CancelFunctionArn", "functions.workflow.cancel", frozenset({"eks"})),
)
API_HANDLER = "functions.api.handler"
INGEST_HANDLER = "functions.ingest.handler"
S3_TRIGGER_HANDLER = "functions.s3_trigger.handler"
RECONCILER_HANDLER = "functions.reconciler.handler"
# The deploy uploads `git archive` of the repository here; CodeBuild builds from it.
BUILD_SOURCE_KEY = "build/whetstone-source.zip"

# Fixed names: other stacks build ARNs from them (no cross-stack exports to pin), and
# cdk-nag findings on them have predictable ids. One deployment per account and region.
TABLE_NAME = "whetstone"
GSI_NAMES = ("GSI1",)
STATE_MACHINE_NAME = "whetstone-jobs"
ARTIFACTS_BUCKET_PREFIX = "whetstone-artifacts"
