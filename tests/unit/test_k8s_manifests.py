"""The EKS manifests, validated against the real Kubernetes schemas, and the EKS token."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import boto3
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from moto import mock_aws
from support.jobs import make_job
from support.kube import validate

from whetstone.adapters.aws.kube.eks_auth import eks_token
from whetstone.adapters.aws.kube.shared_manifests import (
    JobSettings,
    namespace_name,
    org_label,
)
from whetstone.adapters.aws.kube.training_manifests import (
    active_deadline_s,
    job_manifest,
    manifests_for,
)
from whetstone.adapters.aws.kube.training_status import (
    EVENTS_SEEN_ANNOTATION,
    job_state,
    new_event_entries,
)
from whetstone.adapters.aws.sfn_orchestrator import (
    DEFINITION_PATH,
    DEFINITION_PLACEHOLDERS,
    definition_placeholders,
    render_definition,
)
from whetstone.core.catalog.hardware import GPU_NAME_LABEL, GPU_TAINT_KEY, GpuType
from whetstone.core.events import TrainerStage
from whetstone.core.job import JobRecord
from whetstone.core.spec import HardwareParams
from whetstone.ports import ComputeState
from whetstone.service.images import trainer_image_tag

SETTINGS = JobSettings()
PLAN = "s3://whetstone-artifacts/jobs/acme/ftjob-1/plan.json"
BUILDSPEC = Path(__file__).resolve().parents[2] / "trainer_container" / "buildspec.yml"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/whetstone-trainer@sha256:" + "a" * 64


def job_on(gpu: GpuType, count: int = 1, storage_gb: int = 200) -> JobRecord:
    job = make_job("Acme Corp")
    hardware = HardwareParams(gpu_type=gpu, gpu_count=count, storage_gb=storage_gb)
    return job.model_copy(update={"spec": job.spec.model_copy(update={"hardware": hardware})})


@pytest.mark.parametrize("gpu", list(GpuType))
def test_given_each_gpu_type_when_manifests_are_built_then_all_fit_the_kubernetes_schemas(
    gpu: GpuType,
) -> None:
    for manifest in manifests_for(job_on(gpu), PLAN, IMAGE, SETTINGS):
        validate(manifest)


def test_given_a_job_when_its_manifest_is_built_then_the_pod_asks_for_its_gpus_and_storage() -> (
    None
):
    manifest = job_manifest(job_on(GpuType.A10G, count=4, storage_gb=300), PLAN, IMAGE, SETTINGS)

    pod = manifest["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["resources"]["limits"] == {"nvidia.com/gpu": "4", "ephemeral-storage": "300Gi"}
    assert pod["nodeSelector"][GPU_NAME_LABEL] == "a10g"
    assert pod["nodeSelector"]["karpenter.k8s.aws/instance-family"] == "g5"
    assert {"key": GPU_TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"} in pod[
        "tolerations"
    ]
    assert container["args"] == ["--spec", PLAN] and container["image"] == IMAGE


def test_given_a_job_when_its_manifest_is_built_then_the_pod_is_restricted_and_alone() -> None:
    manifest = job_manifest(job_on(GpuType.T4), PLAN, IMAGE, SETTINGS)

    pod = manifest["spec"]["template"]["spec"]
    container = pod["containers"][0]["securityContext"]
    assert pod["securityContext"]["runAsNonRoot"] and container["readOnlyRootFilesystem"]
    assert container["capabilities"] == {"drop": ["ALL"]}
    assert not container["allowPrivilegeEscalation"]
    anti = pod["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert anti[0]["topologyKey"] == "kubernetes.io/hostname"
    assert pod["serviceAccountName"] == manifest["metadata"]["name"]


def test_given_a_job_when_its_manifest_is_built_then_node_loss_does_not_count_as_failure() -> None:
    manifest = job_manifest(job_on(GpuType.T4), PLAN, IMAGE, SETTINGS)

    rules = manifest["spec"]["podFailurePolicy"]["rules"]
    assert rules[0] == {
        "action": "Ignore",
        "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}],
    }
    assert rules[1]["action"] == "FailJob"
    assert manifest["spec"]["ttlSecondsAfterFinished"] == SETTINGS.ttl_s


def test_given_an_estimate_when_the_deadline_is_set_then_it_has_the_margin() -> None:
    job = job_on(GpuType.T4)

    deadline = active_deadline_s(job, SETTINGS)

    expected = job.estimate.estimated_hours * 3600 * SETTINGS.deadline_factor
    assert deadline >= expected + SETTINGS.deadline_floor_s
    assert job_manifest(job, PLAN, IMAGE, SETTINGS)["spec"]["activeDeadlineSeconds"] == deadline


def test_given_an_estimate_grown_fifty_fold_when_the_deadline_is_set_then_it_is_fifty_fold() -> (
    None
):
    job = job_on(GpuType.A10G)
    grown = job.estimate.model_copy(update={"estimated_hours": job.estimate.estimated_hours * 50})

    before = active_deadline_s(job, SETTINGS) - SETTINGS.deadline_floor_s
    after = active_deadline_s(job.model_copy(update={"estimate": grown}), SETTINGS)

    assert after - SETTINGS.deadline_floor_s == pytest.approx(50 * before, abs=50)


def test_given_max_run_hours_when_the_deadline_is_set_then_it_is_the_cap_with_a_margin() -> None:
    job = job_on(GpuType.A10G)
    hardware = job.spec.hardware.model_copy(update={"max_run_hours": 100.0})
    capped = job.model_copy(update={"spec": job.spec.model_copy(update={"hardware": hardware})})

    assert active_deadline_s(capped, SETTINGS) == 100 * 3600 + SETTINGS.deadline_floor_s


@pytest.mark.parametrize("stage", [TrainerStage.PREPARE, TrainerStage.FINALIZE])
def test_given_a_data_stage_when_its_manifests_are_built_then_a_cpu_job_of_its_own_fits_the_schemas(
    stage: TrainerStage,
) -> None:
    job = job_on(GpuType.H100, 8)

    manifests = manifests_for(job, PLAN, IMAGE, SETTINGS, stage)

    for manifest in manifests:
        validate(manifest)
    stage_job = manifests[-1]
    assert stage_job["metadata"]["name"] == f"{job.job_id}-{stage}"
    pod = stage_job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["args"] == [stage.value, "--spec", PLAN]
    assert "nvidia.com/gpu" not in json.dumps(container["resources"])
    assert pod["nodeSelector"]["whetstone.dev/pool"] == "cpu"
    assert pod["tolerations"] == [
        {"key": "whetstone.dev/pool", "operator": "Exists", "effect": "NoSchedule"}
    ]


DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
PREFIXES = st.sampled_from(["whetstone-", "", "w", "a-much-longer-prefix"])


def test_given_an_org_id_when_named_then_the_namespace_reads_as_the_org() -> None:
    assert namespace_name("Acme Corp_EU", "whetstone-").startswith("whetstone-acme-corp-eu-")
    assert len(namespace_name("x" * 100, "whetstone-")) == 63


@pytest.mark.parametrize(
    ("one", "other"), [("Acme", "acme"), ("a_b", "a.b"), ("x" * 70 + "1", "x" * 70 + "2")]
)
def test_given_ids_that_slug_alike_when_named_then_their_namespaces_differ(
    one: str, other: str
) -> None:
    assert namespace_name(one, "whetstone-") != namespace_name(other, "whetstone-")
    assert org_label(one) != org_label(other)


@settings(max_examples=300)
@given(ids=st.lists(st.text(min_size=1, max_size=120), min_size=2, unique=True), prefix=PREFIXES)
def test_given_distinct_org_ids_when_named_then_no_two_share_a_valid_namespace(
    ids: list[str], prefix: str
) -> None:
    names = [namespace_name(org_id, prefix) for org_id in ids]

    assert len(set(names)) == len(ids)
    assert all(DNS_LABEL.match(name) and len(name) <= 63 for name in names)
    assert all(DNS_LABEL.match(org_label(org_id)) for org_id in ids)


def test_given_job_conditions_when_read_then_the_compute_state_follows() -> None:
    running_pod = [{"status": {"phase": "Running"}}]
    complete = {"status": {"conditions": [{"type": "Complete", "status": "True"}]}}
    deadline = {
        "status": {
            "conditions": [{"type": "Failed", "status": "True", "reason": "DeadlineExceeded"}]
        }
    }

    assert job_state(None, []).state is ComputeState.MISSING
    assert job_state({"status": {}}, []).state is ComputeState.PENDING
    assert job_state({"status": {"active": 1}}, running_pod).state is ComputeState.RUNNING
    assert job_state(complete, []).state is ComputeState.SUCCEEDED
    failed = job_state(deadline, [])
    assert failed.state is ComputeState.FAILED and "deadline" in (failed.message or "")


def test_given_events_seen_up_to_a_mark_when_copied_then_only_newer_ones_come() -> None:
    events = [
        {"lastTimestamp": "2025-03-01T12:00:01Z", "message": "scheduled", "type": "Normal"},
        {"lastTimestamp": "2025-03-01T12:00:09Z", "message": "back-off", "type": "Warning"},
    ]

    entries, mark = new_event_entries(events, "2025-03-01T12:00:01Z")

    assert [(e.message, e.level) for e in entries] == [("back-off", "warning")]
    assert mark == "2025-03-01T12:00:09Z" and EVENTS_SEEN_ANNOTATION.startswith("whetstone.dev/")


def test_given_a_cluster_when_a_token_is_made_then_it_is_a_presigned_get_caller_identity(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        sts = boto3.client(
            "sts", region_name="eu-west-1", endpoint_url="https://sts.eu-west-1.amazonaws.com"
        )
        token = eks_token(sts, "whetstone")

    assert token.startswith("k8s-aws-v1.") and "=" not in token
    encoded = token.removeprefix("k8s-aws-v1.")
    url = urlparse(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode())
    query = parse_qs(url.query)
    assert url.netloc == "sts.eu-west-1.amazonaws.com"
    assert query["Action"] == ["GetCallerIdentity"] and query["X-Amz-Expires"] == ["60"]
    assert "x-k8s-aws-id" in query["X-Amz-SignedHeaders"][0].split(";")


def test_given_the_definition_when_read_then_its_placeholders_are_the_shared_list() -> None:
    text = DEFINITION_PATH.read_text()

    assert definition_placeholders(text) == set(DEFINITION_PLACEHOLDERS)
    rendered = json.loads(render_definition({name: "x" for name in DEFINITION_PLACEHOLDERS}))
    assert rendered["StartAt"] == "Begin"


def test_given_the_image_sources_when_one_changes_then_the_tag_changes(tmp_path: Path) -> None:
    (tmp_path / "trainer_container").mkdir()
    (tmp_path / "whetstone" / "core").mkdir(parents=True)
    (tmp_path / "constraints.txt").write_text("torch==2.13.0\n")
    (tmp_path / "whetstone" / "core" / "spec.py").write_text("A = 1\n")
    before = trainer_image_tag(tmp_path)

    (tmp_path / "whetstone" / "core" / "spec.py").write_text("A = 2\n")

    after = trainer_image_tag(tmp_path)
    assert len(before) == 16 and before != after
    assert trainer_image_tag(tmp_path) == after


def _buildspec_source_check() -> str:
    commands = yaml.safe_load(BUILDSPEC.read_text())["phases"]["pre_build"]["commands"]
    (check,) = [c for c in commands if "whetstone/service/images.py" in c]
    return str(check)


@pytest.mark.parametrize("matches", [True, False])
def test_given_a_build_source_when_its_hash_is_not_the_image_tag_then_the_build_stops(
    matches: bool,
) -> None:
    repo = BUILDSPEC.parents[1]
    tag = trainer_image_tag(repo) if matches else "0" * 16

    done = subprocess.run(
        ["bash", "-c", "set -euo pipefail\n" + _buildspec_source_check()],
        cwd=repo,
        env={**os.environ, "TAG": tag},
        capture_output=True,
        text=True,
        check=False,
    )

    assert (done.returncode == 0) is matches
    assert ("not building" in done.stderr) is not matches
