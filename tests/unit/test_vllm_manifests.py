"""The vLLM deployment on EKS: manifests against the real Kubernetes schemas, the GPU choice,
readiness from the Kubernetes API (a fake one), and the deploy routes of the aws runtime."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from support.apigw import call_api
from support.aws_workflow import aws_workflow
from support.jobs import make_job
from support.kube import FakeKube, condition, container_status, validate
from support.platform import use_ports
from support.serving import Rendezvous, deploy_twice_at_once

from whetstone.adapters.aws.eks_deployer import EksDeployer
from whetstone.adapters.aws.kube.client import KubernetesUnavailable
from whetstone.adapters.aws.kube.serving_manifests import (
    FETCH_CONTAINER,
    SERVER_CONTAINER,
    ServingSettings,
    deployment_manifest,
    deployment_name,
    service_manifest,
    serving_manifests,
    vllm_args,
)
from whetstone.adapters.aws.kube.shared_manifests import GPU_RESOURCE, LABEL_JOB, JobSettings
from whetstone.adapters.aws.kube.workload_identity import ClusterAccess
from whetstone.cli.tokens import DEFAULT_CALLER
from whetstone.core.catalog.base_models import get_base_model
from whetstone.core.catalog.hardware import GPU_TAINT_KEY, GpuType, get_gpu
from whetstone.core.job import Deployment, JobRecord
from whetstone.core.layout import JobLayout
from whetstone.core.lifecycle import JobStatus
from whetstone.core.serving import GOLDEN_MAX_TOKENS
from whetstone.core.serving_hardware import choose_serving_hardware, job_serving_hardware
from whetstone.core.spec import Method
from whetstone.runtime import get_platform
from whetstone.service.deployments import saved_golden_answer
from whetstone.service.platform import Platform

SETTINGS = ServingSettings(cluster=JobSettings(region="us-east-1"))
MODEL_URI = "s3://whetstone-artifacts/jobs/acme/ftjob-1/output/model/"
T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
GENERATION = {"generation": "g1", "key": "whsk_key"}


def adapter_job(base: str = "llama-3.1-8b-instruct", method: Method = Method.LORA) -> JobRecord:
    return make_job("Acme Corp", base_model=base, method=method, status=JobStatus.COMPLETED)


def pod_of(manifest: dict) -> dict:
    return manifest["spec"]["template"]["spec"]


def container(manifest: dict, name: str) -> dict:
    pod = pod_of(manifest)
    return next(c for c in pod["containers"] + pod["initContainers"] if c["name"] == name)


# --- manifests ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("base", "method"),
    [
        ("llama-3.1-8b-instruct", Method.LORA),
        ("qwen2.5-0.5b-instruct", Method.QLORA),
        ("llama-3.1-70b-instruct", Method.LORA),
        ("mistral-7b-instruct-v0.3", Method.FULL),
    ],
)
def test_given_a_completed_job_when_its_serving_manifests_are_built_then_all_fit_the_schemas(
    base: str, method: Method
) -> None:
    job = adapter_job(base, method)
    hardware = job_serving_hardware(job.spec, 16)

    for manifest in serving_manifests(job, MODEL_URI, hardware, 16, SETTINGS, **GENERATION):
        validate(manifest)


def test_given_a_lora_job_when_its_server_is_built_then_the_base_serves_the_adapter_by_name() -> (
    None
):
    job = adapter_job()

    args = vllm_args(job, job_serving_hardware(job.spec, 16), 16)

    assert args[0] == "meta-llama/Llama-3.1-8B-Instruct"
    assert "--enable-lora" in args
    assert args[args.index("--lora-modules") + 1] == f"{job.job_id}=/models/adapter"
    assert args[args.index("--max-lora-rank") + 1] == "16"
    assert args[args.index("--max-loras") + 1] == "1"
    assert args[args.index("--tokenizer") + 1] == "/models/adapter"


def test_given_a_rank_vllm_does_not_offer_when_the_server_is_built_then_it_rounds_up() -> None:
    job = adapter_job()

    args = vllm_args(job, job_serving_hardware(job.spec, 24), 24)

    assert args[args.index("--max-lora-rank") + 1] == "32"


def test_given_a_full_fine_tune_when_its_server_is_built_then_the_folder_is_served_by_name() -> (
    None
):
    job = adapter_job("mistral-7b-instruct-v0.3", Method.FULL)

    args = vllm_args(job, job_serving_hardware(job.spec, 16), 16)

    assert args[0] == "/models/model"
    assert args[args.index("--served-model-name") + 1] == job.job_id
    assert "--enable-lora" not in args and "--lora-modules" not in args


def test_given_a_job_when_its_deployment_is_built_then_s3_is_fetched_into_the_served_folder() -> (
    None
):
    job = adapter_job()
    manifest = deployment_manifest(
        job, MODEL_URI, job_serving_hardware(job.spec, 16), 16, SETTINGS, generation="g1"
    )

    fetch = container(manifest, FETCH_CONTAINER)
    assert fetch["command"][-2:] == [MODEL_URI, "/models/adapter"]
    mounts = {m["name"] for m in fetch["volumeMounts"]}
    assert "models" in mounts
    assert "emptyDir" in next(v for v in pod_of(manifest)["volumes"] if v["name"] == "models")
    # the deploy's own identity (the serving role), never the job's (the trainer role)
    assert pod_of(manifest)["serviceAccountName"] == f"vllm-{job.job_id}-g1"


def test_given_a_job_when_its_deployment_is_built_then_gpus_node_and_taint_follow_the_catalog() -> (
    None
):
    job = adapter_job("llama-3.1-70b-instruct")
    hardware = job_serving_hardware(job.spec, 16)
    manifest = deployment_manifest(job, MODEL_URI, hardware, 16, SETTINGS, generation="g1")

    pod = pod_of(manifest)
    server = container(manifest, SERVER_CONTAINER)
    gpus = str(hardware.gpu_count)
    assert server["resources"]["limits"] == {GPU_RESOURCE: gpus}
    assert server["resources"]["requests"][GPU_RESOURCE] == gpus
    expected = get_gpu(hardware.gpu_type).node_selector(hardware.gpu_count)
    assert expected.items() <= pod["nodeSelector"].items()
    assert {"key": GPU_TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"} in pod[
        "tolerations"
    ]
    args = server["args"]
    assert args[args.index("--tensor-parallel-size") + 1] == gpus


def test_given_a_job_when_its_deployment_is_built_then_health_probes_and_labels_link_it() -> None:
    job = adapter_job()
    manifest = deployment_manifest(
        job, MODEL_URI, job_serving_hardware(job.spec, 16), 16, SETTINGS, generation="g1"
    )
    service = service_manifest(job, SETTINGS, generation="g1")

    server = container(manifest, SERVER_CONTAINER)
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert server[probe]["httpGet"]["path"] == "/health"
    labels = manifest["spec"]["template"]["metadata"]["labels"]
    assert manifest["metadata"]["labels"][LABEL_JOB] == job.job_id
    assert service["spec"]["selector"].items() <= labels.items()
    assert manifest["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert service["spec"]["type"] == "ClusterIP"
    assert manifest["spec"]["progressDeadlineSeconds"] == SETTINGS.ready_timeout_s


# --- GPU choice ---------------------------------------------------------------------------


def test_given_a_small_model_when_serving_gpus_are_chosen_then_one_gpu_suffices() -> None:
    hardware = choose_serving_hardware(get_base_model("qwen2.5-0.5b-instruct"), max_lora_rank=16)

    assert hardware.gpu_count == 1
    assert hardware.required_gib <= hardware.available_gib


def test_given_a_70b_model_when_serving_gpus_are_chosen_then_it_is_not_one_24gb_gpu() -> None:
    hardware = choose_serving_hardware(get_base_model("llama-3.1-70b-instruct"), max_lora_rank=16)

    gpu = get_gpu(hardware.gpu_type)
    assert not (hardware.gpu_count == 1 and gpu.vram_gb <= 24)
    assert gpu.memory_gib * hardware.gpu_count > hardware.weights_gib > 130


def test_given_an_8b_model_when_serving_gpus_are_chosen_then_one_24gb_gpu_holds_it() -> None:
    hardware = choose_serving_hardware(get_base_model("llama-3.1-8b-instruct"), max_lora_rank=16)

    assert hardware.gpu_count == 1 and get_gpu(hardware.gpu_type).vram_gb == 24
    assert hardware.max_model_len == 8192


def test_given_a_model_trained_in_bf16_when_gpus_are_chosen_then_no_t4_serves_it() -> None:
    model = get_base_model("qwen2.5-0.5b-instruct")

    assert choose_serving_hardware(model).gpu_type is GpuType.T4  # the cheapest otherwise
    assert choose_serving_hardware(model, require_bf16=True).gpu_type is not GpuType.T4


# --- EksDeployer on a fake Kubernetes API -------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def kube() -> FakeKube:
    return FakeKube()


@pytest.fixture
def clock() -> Clock:
    return Clock()


def deployer(kube: FakeKube, clock: Clock, golden: str | None = "Paris.") -> EksDeployer:
    return EksDeployer(
        lambda: ClusterAccess(api=kube),
        SETTINGS,
        expected_golden=lambda job: golden,
        clock=clock,
    )


def started(
    kube: FakeKube, clock: Clock, golden: str | None = "Paris."
) -> tuple[EksDeployer, JobRecord]:
    job = adapter_job()
    subject = deployer(kube, clock, golden)
    deployment = subject.start(job, MODEL_URI, base_model=None, max_lora_rank=16)
    return subject, job.model_copy(update={"deployment": deployment})


def available(kube: FakeKube, job: JobRecord) -> None:
    kube.serving_pod(
        job.job_id,
        {
            "phase": "Running",
            "initContainerStatuses": [
                container_status(
                    FETCH_CONTAINER,
                    state={"terminated": {"exitCode": 0, "reason": "Completed"}},
                )
            ],
            "containerStatuses": [container_status(SERVER_CONTAINER, ready=True)],
        },
    )
    kube.set_deployment_status(job.job_id, {"replicas": 1, "availableReplicas": 1})


def status_when_answering(
    kube: FakeKube, clock: Clock, answer: str | Exception, golden: str | None = "Paris."
) -> tuple[JobRecord, Deployment]:
    """A started server that is up and answers the golden prompt with `answer` (or fails the
    request with it): the deployment as its first status read finds it."""
    subject, job = started(kube, clock, golden)
    available(kube, job)
    kube.served_answers[deployment_name(job)] = answer
    return job, subject.status(job)


def test_given_a_job_when_it_is_deployed_then_a_deployment_and_a_service_start(
    kube: FakeKube, clock: Clock
) -> None:
    _, job = started(kube, clock)

    deployment = job.deployment
    assert deployment is not None and deployment.status == "starting"
    assert deployment.model == job.job_id
    namespace = kube.deployment(job.job_id)["metadata"]["namespace"]
    name = deployment_name(job)
    assert deployment.endpoint == f"http://{name}.{namespace}.svc.cluster.local:8000/v1"
    assert ("Service", namespace, name) in kube.objects
    assert ("ServiceAccount", namespace, name) in kube.objects


@pytest.mark.parametrize(
    ("method", "base"),
    [(Method.LORA, "meta-llama/Llama-3.1-8B-Instruct"), (Method.FULL, None)],
)
def test_given_a_job_when_it_is_deployed_then_the_record_names_the_base_vllm_serves_too(
    kube: FakeKube, clock: Clock, method: Method, base: str | None
) -> None:
    # Given a LoRA job (vLLM serves its base under the base's repo) and a full fine-tune
    job = adapter_job(method=method)

    # When it is deployed
    deployment = deployer(kube, clock).start(job, MODEL_URI, base_model=None, max_lora_rank=16)

    # Then the deployment records the name its server answers as the base, None for full
    assert deployment.base_model == base
    if base is not None:
        assert vllm_args(job, job_serving_hardware(job.spec, 16), 16)[0] == base


def test_given_no_pod_yet_when_status_is_read_then_it_is_starting(
    kube: FakeKube, clock: Clock
) -> None:
    subject, job = started(kube, clock)

    assert subject.status(job).status == "starting"


def test_given_the_server_answers_as_the_saved_model_when_status_is_read_then_it_is_ready(
    kube: FakeKube, clock: Clock
) -> None:
    job, deployment = status_when_answering(kube, clock, "Paris.")

    assert deployment.status == "ready" and deployment.problems == []
    _, _, path, body = kube.proxied[-1]
    assert path == "/v1/chat/completions"
    assert body["model"] == job.job_id and body["temperature"] == 0
    assert body["max_tokens"] == GOLDEN_MAX_TOKENS


def test_given_the_server_answers_otherwise_when_status_is_read_then_it_failed_and_is_gone(
    kube: FakeKube, clock: Clock
) -> None:
    _, deployment = status_when_answering(kube, clock, "Lyon.")

    assert deployment.status == "failed" and deployment.endpoint is None
    assert [p.code for p in deployment.problems] == ["golden_mismatch"]
    assert "Deployment" not in kube.kinds() and "Service" not in kube.kinds()


def test_given_the_server_refuses_the_golden_request_then_it_failed_saying_why(
    kube: FakeKube, clock: Clock
) -> None:
    refusal = "the model server answered 404: The model `x` does not exist."

    _, deployment = status_when_answering(kube, clock, ValueError(refusal))

    assert deployment.status == "failed"
    assert deployment.message is not None and refusal in deployment.message
    assert "Deployment" not in kube.kinds()


def test_given_no_recorded_golden_answer_when_the_server_answers_then_ready_with_a_warning(
    kube: FakeKube, clock: Clock
) -> None:
    _, deployment = status_when_answering(kube, clock, "Paris.", golden=None)

    assert deployment.status == "ready"
    assert [(p.code, p.severity) for p in deployment.problems] == [("golden_unchecked", "warning")]


def test_given_an_image_that_cannot_be_pulled_when_status_is_read_then_it_failed_saying_so(
    kube: FakeKube, clock: Clock
) -> None:
    subject, job = started(kube, clock)
    waiting = {"waiting": {"reason": "ImagePullBackOff", "message": "manifest unknown"}}
    kube.serving_pod(
        job.job_id,
        {
            "phase": "Pending",
            "containerStatuses": [container_status(SERVER_CONTAINER, state=waiting)],
        },
    )

    deployment = subject.status(job)

    assert deployment.status == "failed"
    assert deployment.message is not None and "ImagePullBackOff" in deployment.message
    assert "manifest unknown" in deployment.message
    assert "Deployment" not in kube.kinds()


def fetch_crash_loops(kube: FakeKube, job: JobRecord, error: str, restarts: int) -> None:
    """The server's pod waits on its model fetch, which exited with `error` `restarts` times."""
    fetch = container_status(
        FETCH_CONTAINER,
        state={"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 10s"}},
        last_terminated={"exitCode": 1, "message": error},
        restarts=restarts,
    )
    kube.serving_pod(job.job_id, {"phase": "Pending", "initContainerStatuses": [fetch]})


def test_given_the_model_fetch_crash_loops_when_status_is_read_then_its_error_is_the_reason(
    kube: FakeKube, clock: Clock
) -> None:
    subject, job = started(kube, clock)
    fetch_crash_loops(kube, job, "fatal error: AccessDenied", restarts=3)

    message = subject.status(job).message or ""

    assert "fetching the model from S3" in message and "AccessDenied" in message


def test_given_a_first_crash_of_the_fetch_when_status_is_read_then_it_is_still_starting(
    kube: FakeKube, clock: Clock
) -> None:
    subject, job = started(kube, clock)
    fetch_crash_loops(kube, job, "connection reset by S3", restarts=1)

    deployment = subject.status(job)

    assert deployment.status == "starting"
    assert "Deployment" in kube.kinds()


def test_given_a_pod_unschedulable_past_the_grace_when_status_is_read_then_it_failed(
    kube: FakeKube, clock: Clock
) -> None:
    subject, job = started(kube, clock)
    unschedulable = condition(
        "PodScheduled",
        "False",
        "Unschedulable",
        "0/3 nodes are available: 3 Insufficient nvidia.com/gpu.",
        since=T0,
    )
    kube.serving_pod(job.job_id, {"phase": "Pending", "conditions": [unschedulable]})

    clock.now = T0 + timedelta(seconds=60)
    waiting = subject.status(job)
    clock.now = T0 + timedelta(seconds=SETTINGS.unschedulable_grace_s + 1)
    failed = subject.status(job)

    assert waiting.status == "starting" and waiting.message == "waiting for a GPU node"
    assert failed.status == "failed" and "Insufficient nvidia.com/gpu" in (failed.message or "")


def test_given_a_deployment_past_its_progress_deadline_when_status_is_read_then_it_failed(
    kube: FakeKube, clock: Clock
) -> None:
    subject, job = started(kube, clock)
    stalled = condition("Progressing", "False", "ProgressDeadlineExceeded")
    kube.set_deployment_status(job.job_id, {"conditions": [stalled]})

    deployment = subject.status(job)

    assert deployment.status == "failed" and "not ready within" in (deployment.message or "")


def test_given_a_quota_refusal_when_status_is_read_then_it_failed_with_the_api_message(
    kube: FakeKube, clock: Clock
) -> None:
    subject, job = started(kube, clock)
    quota = "exceeded quota: whetstone-quota, requested: requests.nvidia.com/gpu=1"
    refused = condition("ReplicaFailure", "True", "FailedCreate", quota)
    kube.set_deployment_status(job.job_id, {"conditions": [refused]})

    assert "exceeded quota" in (subject.status(job).message or "")


def test_given_a_deployment_when_it_is_stopped_twice_then_everything_is_gone_and_it_is_safe(
    kube: FakeKube, clock: Clock
) -> None:
    subject, job = started(kube, clock)

    subject.stop(job)
    subject.stop(job)

    assert {"Deployment", "Service", "ServiceAccount"}.isdisjoint(kube.kinds())


# --- the deploy routes, aws runtime under moto ----------------------------------------------


def completed_job(platform: Platform, method: Method = Method.LORA) -> JobRecord:
    job = make_job(DEFAULT_CALLER.org_id, method=method, status=JobStatus.COMPLETED)
    platform.jobs.create(job)
    layout = JobLayout.of(job)
    if method is Method.PROMPT_TUNING:
        config = {"peft_type": "PROMPT_TUNING", "num_virtual_tokens": 20}
    else:
        config = {"peft_type": "LORA", "r": 16, "target_modules": ["q_proj", "v_proj"]}
    platform.blobs.put(layout.model + "adapter_config.json", json.dumps(config).encode())
    platform.blobs.put(layout.model + "chat_template.jinja", b"{{ messages }}")
    golden = {"messages": [], "max_tokens": GOLDEN_MAX_TOKENS, "answer": "Paris."}
    platform.blobs.put(layout.golden, json.dumps(golden).encode())
    return job


@pytest.fixture
def aws_platform(monkeypatch: pytest.MonkeyPatch, kube: FakeKube) -> Iterator[Platform]:
    deployer = EksDeployer(
        lambda: ClusterAccess(api=kube),
        SETTINGS,
        expected_golden=lambda job: saved_golden_answer(get_platform(), job),
    )
    with aws_workflow(monkeypatch, kube) as platform:
        assert isinstance(platform.deployer, EksDeployer)  # what the aws runtime builds
        yield use_ports(monkeypatch, deployer=deployer)


def test_given_the_aws_runtime_when_a_job_is_deployed_then_it_becomes_ready_and_can_go(
    aws_platform: Platform, kube: FakeKube
) -> None:
    job = completed_job(aws_platform)
    base = f"/api/v1/fine-tuning/jobs/{job.job_id}"

    accepted = call_api("POST", f"{base}/deploy")
    kube.served_answers[deployment_name(aws_platform.jobs.get(job.job_id))] = "Paris."  # type: ignore[arg-type]
    available(kube, job)
    ready = call_api("GET", f"{base}/deployment")
    deleted = call_api("DELETE", f"{base}/deployment")

    assert accepted.status == 202 and accepted.body["status"] == "starting"
    assert ready.status == 200 and ready.body["status"] == "ready"
    assert deleted.status == 204 and "Deployment" not in kube.kinds()
    stored = aws_platform.jobs.get(job.job_id)
    assert stored is not None and isinstance(stored.deployment, Deployment)
    assert stored.deployment.status == "deleted"


def test_given_the_aws_runtime_when_a_prompt_tuning_job_is_deployed_then_vllm_refuses_it(
    aws_platform: Platform, kube: FakeKube
) -> None:
    job = completed_job(aws_platform, Method.PROMPT_TUNING)

    refused = call_api("POST", f"/api/v1/fine-tuning/jobs/{job.job_id}/deploy")

    assert refused.status == 422 and refused.body["code"] == "not_servable"
    assert "adapter_type_unsupported" in json.dumps(refused.body["details"])
    assert "Deployment" not in kube.kinds()


def test_given_the_cluster_fails_half_way_through_a_deploy_then_503_and_nothing_is_left(
    aws_platform: Platform, kube: FakeKube
) -> None:
    job = completed_job(aws_platform)
    kube.reject_kinds["Deployment"] = KubernetesUnavailable("the Kubernetes API answered 503")

    refused = call_api("POST", f"/api/v1/fine-tuning/jobs/{job.job_id}/deploy")

    assert refused.status == 503 and refused.body["code"] == "unavailable"
    assert refused.headers["retry-after"] == "5"
    assert {"Deployment", "Service"}.isdisjoint(kube.kinds())
    stored = aws_platform.jobs.get(job.job_id)
    assert stored is not None and stored.deployment is None


def test_given_a_damaged_golden_record_when_the_server_answers_then_ready_unchecked(
    aws_platform: Platform, kube: FakeKube
) -> None:
    job = completed_job(aws_platform)
    aws_platform.blobs.put(JobLayout.of(job).golden, b'{"answer": ')
    base = f"/api/v1/fine-tuning/jobs/{job.job_id}"

    call_api("POST", f"{base}/deploy")
    kube.served_answers[deployment_name(aws_platform.jobs.get(job.job_id))] = "Paris."  # type: ignore[arg-type]
    available(kube, job)
    ready = call_api("GET", f"{base}/deployment")
    again = call_api("GET", f"{base}/deployment")

    assert ready.status == 200 and ready.body["status"] == "ready"
    assert [p["code"] for p in again.body["problems"]] == ["golden_unchecked"]  # listed once


def test_given_two_deploys_of_one_job_at_once_then_the_recorded_one_keeps_all_it_needs(
    monkeypatch: pytest.MonkeyPatch, aws_platform: Platform, kube: FakeKube
) -> None:
    # Given a completed job and a deployer whose two starts meet before either records
    job = completed_job(aws_platform)
    platform = use_ports(monkeypatch, deployer=Rendezvous(aws_platform.deployer))

    # When the job is deployed twice at once
    results = deploy_twice_at_once(platform, DEFAULT_CALLER, job.job_id)

    # Then one deploy is recorded, the other refused
    won = [r for r in results if isinstance(r, Deployment)]
    assert len(won) == 1 and len(results) == 2, results
    recorded = platform.jobs.get(job.job_id)
    assert recorded is not None and recorded.deployment == won[0]
    # and every object of the recorded deploy is there, the other deploy's are gone
    namespace = kube.deployment(job.job_id)["metadata"]["namespace"]
    name = deployment_name(recorded)
    left = {(kind, n) for kind, ns, n in kube.objects if ns == namespace and n.startswith("vllm-")}
    assert left == {
        ("Deployment", name),
        ("Service", name),
        ("ServiceAccount", name),
        ("Secret", f"{name}-api-key"),
        ("ConfigMap", f"{name}-middleware"),
    }
    # and the recorded deploy still becomes ready
    kube.served_answers[name] = "Paris."
    available(kube, recorded)
    assert aws_platform.deployer is not None
    assert aws_platform.deployer.status(recorded).status == "ready"
