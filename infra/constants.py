"""Names, limits and retention of every deployed resource, in one place."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from aws_cdk import Duration
from aws_cdk import aws_logs as logs

from whetstone.core.layout import INCOMING_ROOT, JOBS_ROOT
from whetstone.core.spec import MAX_STORAGE_GB

REPO_ROOT = Path(__file__).resolve().parents[1]
STATE_MACHINE_FILE = REPO_ROOT / "state_machine" / "workflow.asl.json"
BUILDSPEC_FILE = REPO_ROOT / "trainer_container" / "buildspec.yml"

APP_NAME = "Whetstone"
STACK_PREFIX = "Whetstone"

# What goes into the Lambda code asset (relative to the repository root); the rest of the
# repository (tests, trainer, bench) stays out.
LAMBDA_SOURCES = ("whetstone", "functions")
LAMBDA_EXCLUDED_PARTS = frozenset({"__pycache__", ".mypy_cache", ".pytest_cache", "console_assets"})

# Context keys (cdk.json or `-c key=value`).
CTX_LAYER_DIR = "whetstone:dependencies_layer_dir"
CTX_CLUSTER_NAME = "whetstone:cluster_name"
CTX_ALLOWED_ORIGIN = "whetstone:allowed_origin"
DEFAULT_CLUSTER_NAME = "whetstone"

# Job store (the keys themselves come from whetstone.adapters.aws.dynamodb_requests).
JOB_LOG_GROUP = "/whetstone/jobs"
JOB_LOG_RETENTION = logs.RetentionDays.THREE_MONTHS
FUNCTION_LOG_RETENTION = logs.RetentionDays.ONE_MONTH
ACCESS_LOG_RETENTION = logs.RetentionDays.THREE_MONTHS
WORKFLOW_LOG_RETENTION = logs.RetentionDays.THREE_MONTHS

# Artifacts bucket prefixes and their lifecycle.
INCOMING_PREFIX = INCOMING_ROOT
INCOMING_EXPIRY = Duration.days(30)
# Checkpoints and models lie under jobs/<org>/<job>/ (whetstone.core.layout): a lifecycle filter
# matches prefixes only, so the whole jobs/ tree moves to Intelligent-Tiering (large, rarely
# read files after training); expiry stays the user's decision (DELETE /jobs/{id}).
JOBS_PREFIX = JOBS_ROOT
JOBS_TIERING_AFTER = Duration.days(30)
ABORTED_UPLOAD_EXPIRY = Duration.days(7)
NONCURRENT_VERSION_EXPIRY = Duration.days(30)

# API.
API_STAGE = "v1"
API_THROTTLE_RATE = 50  # requests per second, steady
API_THROTTLE_BURST = 100
# Per organization, checked by the API Lambda (whetstone/adapters/aws/dynamodb_throttle.py):
# a fifth of the stage's steady rate, so one organization cannot starve the others.
ORG_REQUESTS_PER_WINDOW = 100
ORG_THROTTLE_WINDOW_S = 10
BINARY_MEDIA_TYPES = ("multipart/form-data",)
USER_ORG_ATTRIBUTE = "organization"  # read by whetstone.api.identity as custom:organization
TOKEN_VALIDITY = Duration.hours(1)
# API Gateway keeps the authorizer's answer per credential this long: a revoked API key
# stops working within it, and a key's last use is recorded at most once per period.
AUTHORIZER_CACHE_TTL = Duration.minutes(1)
AUTHORIZER_TIMEOUT = Duration.seconds(10)

# Lambda sizing.
LAMBDA_MEMORY_MB = 1024
LAMBDA_TIMEOUT = Duration.seconds(29)  # API Gateway's integration limit
STEP_TIMEOUT = Duration.minutes(5)
# Cancel (or Fail, on a stopping job) archives a stopped job's checkpoints: Lambda's longest
# run. The data work of a job (prepare, finalize) runs on the cluster, not in a Lambda.
ARCHIVE_STEP_TIMEOUT = Duration.minutes(15)
INGEST_TIMEOUT = Duration.seconds(60)
RECONCILE_TIMEOUT = Duration.minutes(5)
RECONCILE_EVERY = Duration.minutes(10)

# Workflow.
# Also the ASL's TimeoutSeconds: max_run_hours (720) of training, plus preparing, queueing
# and finalizing.
WORKFLOW_TIMEOUT = Duration.days(35)
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
    timeout: Duration = STEP_TIMEOUT


# Every step Lambda reads and writes the job (table, blobs, job logs); these are the extras.
STEP_FUNCTIONS = (
    StepFunction("BeginFunctionArn", "functions.workflow.begin"),
    StepFunction("WritePlanFunctionArn", "functions.workflow.write_plan"),
    StepFunction("ResolveImageFunctionArn", "functions.workflow.resolve_image", frozenset({"ecr"})),
    StepFunction("BuildStartedFunctionArn", "functions.workflow.build_started"),
    StepFunction(
        "BuildFinishedFunctionArn",
        "functions.workflow.build_finished",
        frozenset({"ecr", "build_logs"}),
    ),
    StepFunction(
        "RunStageFunctionArn", "functions.workflow.run_stage", frozenset({"eks", "pod_identity"})
    ),
    StepFunction("RecordPreparedFunctionArn", "functions.workflow.record_prepared"),
    StepFunction("CompleteFunctionArn", "functions.workflow.complete"),
    StepFunction(
        "FailFunctionArn",
        "functions.workflow.fail",
        frozenset({"eks", "build_logs", "pod_identity"}),
        timeout=ARCHIVE_STEP_TIMEOUT,
    ),
    StepFunction(
        "CancelFunctionArn",
        "functions.workflow.cancel",
        frozenset({"eks", "pod_identity"}),
        timeout=ARCHIVE_STEP_TIMEOUT,
    ),
    StepFunction(
        "PauseFunctionArn",
        "functions.workflow.pause",
        frozenset({"eks", "pod_identity"}),
        timeout=ARCHIVE_STEP_TIMEOUT,
    ),
)
API_HANDLER = "functions.api.handler"
AUTHORIZER_HANDLER = "functions.authorizer.handler"
INGEST_HANDLER = "functions.ingest.handler"
S3_TRIGGER_HANDLER = "functions.s3_trigger.handler"
RECONCILER_HANDLER = "functions.reconciler.handler"
# The deploy uploads `git archive` of the repository here; CodeBuild builds from it. Only the
# role named BUILD_SOURCE_ROLE_PREFIX-<region> may write under BUILD_SOURCE_PREFIX.
BUILD_SOURCE_PREFIX = "build/"
BUILD_SOURCE_KEY = f"{BUILD_SOURCE_PREFIX}whetstone-source.zip"
BUILD_SOURCE_ROLE_PREFIX = "whetstone-build-source"

# Fixed names: other stacks build ARNs from them (no cross-stack exports to pin), and
# cdk-nag findings on them have predictable ids. One deployment per account and region.
TABLE_NAME = "whetstone"
GSI_NAMES = ("GSI1",)
STATE_MACHINE_NAME = "whetstone-jobs"
ARTIFACTS_BUCKET_PREFIX = "whetstone-artifacts"

# Compute (EKS). Without CTX_CLUSTER_NAME the compute stack creates a cluster named
# DEFAULT_CLUSTER_NAME; with it, it imports that existing cluster by name.
KUBERNETES_VERSION = "1.35"  # with the kubectl v1.35 layer; Karpenter 1.11 supports 1.29-1.35
KARPENTER_VERSION = "1.11.1"
KARPENTER_CHART = "oci://public.ecr.aws/karpenter/karpenter"
KARPENTER_NAMESPACE = "kube-system"
KARPENTER_SERVICE_ACCOUNT = "karpenter"
CTX_NODE_CLASS = "whetstone:node_class"  # an imported cluster's EC2NodeClass
# A created cluster's API endpoint: "public" (the default: public and private), "private",
# or allowed CIDRs ("203.0.113.0/24,198.51.100.7/32": public from those only, and private).
CTX_ENDPOINT_ACCESS = "whetstone:endpoint_access"
VPC_CNI_ADDON = "vpc-cni"
NODE_CLASS_NAME = "whetstone-gpu"
# A GPU node's data volume (image layers, the pod's scratch space): room for the largest
# `hardware.storage_gb` a job may ask for, plus the images and the kubelet's reserve.
GPU_NODE_DISK_GB = MAX_STORAGE_GB + 100
GPU_NODE_POOL_LIMIT = 64  # GPUs one node pool may hold at once (a runaway guard)
GPU_NODE_EMPTY_AFTER = "5m"  # an empty GPU node is removed after this
CLUSTER_AZS = 2
SYSTEM_NODE_TYPE = "t3.medium"  # Karpenter, CoreDNS, the CloudWatch agent; no GPU pods
SYSTEM_NODES = 2
CLUSTER_LOG_ADDON = "amazon-cloudwatch-observability"
CLUSTER_LOG_NAMESPACE = "amazon-cloudwatch"
CLUSTER_LOG_SERVICE_ACCOUNT = "cloudwatch-agent"
POD_IDENTITY_ADDON = "eks-pod-identity-agent"
# Kubernetes groups the Lambdas' access entries map to; infra.constructs.cluster_rbac binds
# each to its ClusterRole.
WORKFLOW_K8S_GROUP = "whetstone-workflow"
API_K8S_GROUP = "whetstone-api"
# The trainer pods' role (EKS Pod Identity). IAM names are global: the region keeps two
# deployments of one account apart.
TRAINER_ROLE_PREFIX = "whetstone-trainer"
# The vLLM pods' role (EKS Pod Identity): reads of jobs' models only.
SERVING_ROLE_PREFIX = "whetstone-serving"

# Observability.
API_NAME = "whetstone"
DASHBOARD_NAME = "whetstone"
METRICS_NAMESPACE = "Whetstone"
ALARM_TOPIC_NAME = "whetstone-alarms"
CLUSTER_LOG_RETENTION = logs.RetentionDays.ONE_MONTH

# Console (issue 17): the web console's built assets, served from a private bucket through
# CloudFront, signed in with the user pool's hosted UI. `make console` builds the folder; a
# synth without it deploys a page that says so.
CONSOLE_ASSETS_DIR = REPO_ROOT / "whetstone" / "console_assets"
CONSOLE_CONFIG_FILE = "config.json"  # read by the console at start: runtime, API, sign-in
CONSOLE_INDEX = "index.html"
CONSOLE_SCOPES = ("openid", "email")
# The hosted UI's domain prefix: https://<prefix>.auth.<region>.amazoncognito.com; unique
# per region, hence the account.
CONSOLE_DOMAIN_PREFIX = "whetstone"
CONSOLE_HSTS_MAX_AGE = Duration.days(365 * 2)
