"""vLLM servers in the cluster: each deploy's key comes from a Secret (never in plain env or
args) and reaches vLLM through the API server's proxy in a header the proxy keeps; its pods
run under their own ServiceAccount with the read-only serving role, narrowed to the job's
model; stopping a deploy removes all it made."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from support.jobs import make_job
from support.kube import FakeKube

from whetstone.adapters.aws.eks_deployer import EksDeployer
from whetstone.adapters.aws.kube import serving_manifests as vllm
from whetstone.adapters.aws.kube.serving_identity import model_read_policy
from whetstone.adapters.aws.kube.shared_manifests import JobSettings
from whetstone.adapters.aws.kube.vllm_key_header import KeyHeader
from whetstone.adapters.aws.kube.workload_identity import ClusterAccess, PodIdentity
from whetstone.core.job import JobRecord
from whetstone.core.lifecycle import JobStatus
from whetstone.core.serving_hardware import job_serving_hardware
from whetstone.core.spec import Method
from whetstone.core.tokens import hash_token

KEY_ENV, KEY_HEADER, deployment_name = vllm.KEY_ENV, vllm.KEY_HEADER, vllm.deployment_name

SETTINGS = vllm.ServingSettings(cluster=JobSettings(region="us-east-1"))
MODEL_URI = "s3://whetstone-artifacts/jobs/acme/ftjob-1/output/model/"
SERVING_ROLE = "arn:aws:iam::123456789012:role/whetstone-serving"
KEY = "whsk_a-key-nobody-may-read"


def _job() -> JobRecord:
    return make_job("Acme", method=Method.LORA, status=JobStatus.COMPLETED)


def _manifests(job: JobRecord) -> dict[str, dict[str, Any]]:
    hardware = job_serving_hardware(job.spec, 16)
    built = vllm.serving_manifests(job, MODEL_URI, hardware, 16, SETTINGS, generation="g1", key=KEY)
    return {m["kind"]: m for m in built}


class FakeEks:
    """The EKS Pod Identity calls, recorded."""

    class exceptions:  # noqa: N801 - boto3's name
        ResourceInUseException = type("ResourceInUseException", (Exception,), {})

    def __init__(self) -> None:
        self.associations: dict[str, dict[str, Any]] = {}

    def create_pod_identity_association(self, **request: Any) -> None:
        self.associations[f"a-{len(self.associations)}"] = request

    def list_pod_identity_associations(self, **query: Any) -> dict[str, Any]:
        wanted = {k: query[k] for k in ("namespace", "serviceAccount")}
        return {
            "associations": [
                {"associationId": found}
                for found, request in self.associations.items()
                if wanted.items() <= request.items()
            ]
        }

    def delete_pod_identity_association(self, clusterName: str, associationId: str) -> None:  # noqa: N803
        del self.associations[associationId]


def _deployer(kube: FakeKube, eks: FakeEks) -> EksDeployer:
    identity = PodIdentity("whetstone", SERVING_ROLE, client=eks)  # type: ignore[arg-type]
    return EksDeployer(
        lambda: ClusterAccess(api=kube, pod_identity=identity),
        SETTINGS,
        expected_golden=lambda job: "Paris.",
    )


def test_vllm_takes_its_key_from_the_deploys_secret_never_from_plain_env_or_args() -> None:
    # Given a deploy's manifests
    manifests = _manifests(_job())
    deployment, secret = manifests["Deployment"], manifests["Secret"]
    server = deployment["spec"]["template"]["spec"]["containers"][0]
    assert server["name"] == vllm.SERVER_CONTAINER

    # Then vLLM reads VLLM_API_KEY from the deploy's Secret
    key_env = next(e for e in server["env"] if e["name"] == KEY_ENV)
    assert key_env == {
        "name": KEY_ENV,
        "valueFrom": {
            "secretKeyRef": {"name": secret["metadata"]["name"], "key": "key"},
        },
    }
    assert base64.b64decode(secret["data"]["key"]).decode() == KEY
    # and the key is nowhere in the Deployment: not in an env value, an arg or a command
    assert KEY not in json.dumps(deployment)
    assert "--api-key" not in server["args"]
    # and the middleware that takes the key from the proxy's header is mounted and loaded
    at = server["args"].index("--middleware")
    assert server["args"][at + 1] == "vllm_key_header.KeyHeader"
    assert {"name": "PYTHONPATH", "value": "/opt/whetstone"} in server["env"]
    source = manifests["ConfigMap"]["data"]["vllm_key_header.py"]
    assert "class KeyHeader" in source


def _through(middleware_headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    seen: list[tuple[bytes, bytes]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.extend(scope["headers"])

    scope = {"type": "http", "path": "/v1/models", "headers": middleware_headers}
    # Driven by hand: nothing in it awaits, so one step runs it to the end (no event loop).
    step = KeyHeader(app)(scope, None, None)  # type: ignore[arg-type]
    with pytest.raises(StopIteration):
        step.send(None)
    return seen


def test_the_middleware_passes_the_proxys_key_header_on_as_the_bearer_vllm_checks() -> None:
    # Given the header the platform sends (the API server's proxy removed Authorization)
    sent = [(KEY_HEADER.lower().encode(), KEY.encode()), (b"accept", b"application/json")]

    # Then vLLM's key check sees Authorization: Bearer <key>, and the key header no more
    assert sorted(_through(sent)) == [
        (b"accept", b"application/json"),
        (b"authorization", b"Bearer " + KEY.encode()),
    ]
    # and a request without it is left as it came: its own Authorization decides
    plain = [(b"authorization", b"Bearer other")]
    assert _through(plain) == plain


def test_the_golden_request_and_direct_calls_carry_the_deploys_key() -> None:
    # Given a started deploy whose server is up
    kube, eks = FakeKube(), FakeEks()
    subject = _deployer(kube, eks)
    job = _job()
    deployment = subject.start(job, MODEL_URI, base_model=None, max_lora_rank=16)
    job = job.model_copy(update={"deployment": deployment})
    namespace = kube.deployment(job.job_id)["metadata"]["namespace"]
    secret = kube.read("Secret", namespace, vllm.key_secret_name(deployment_name(job)))
    assert secret is not None
    key = base64.b64decode(secret["data"]["key"]).decode()
    assert deployment.key_sha256 == hash_token(key)
    kube.served_answers[deployment_name(job)] = "Paris."
    kube.set_deployment_status(job.job_id, {"replicas": 1, "availableReplicas": 1})
    kube.serving_pod(
        job.job_id, {"phase": "Running", "containerStatuses": []}
    )  # the probes passed: available

    # When its status is read (the golden check goes through the API server's proxy)
    subject.status(job)

    # Then the golden request carried the key in the header the proxy keeps
    assert kube.proxied_headers == [{KEY_HEADER: key}]
    # and a request sent straight to the server carries it as its bearer
    assert subject.request_headers(job) == {"authorization": f"Bearer {key}"}


def test_serving_pods_get_the_read_only_role_narrowed_to_the_jobs_model() -> None:
    # Given a deploy on a cluster with Pod Identity
    kube, eks = FakeKube(), FakeEks()
    job = _job()
    deployment = _deployer(kube, eks).start(job, MODEL_URI, base_model=None, max_lora_rank=16)
    name = deployment_name(job.model_copy(update={"deployment": deployment}))

    # Then its pods run under the deploy's own ServiceAccount, not the job's (the trainer's)
    pod = kube.deployment(job.job_id)["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == name != job.job_id
    # and that account gets the serving role, narrowed by a session policy to the model
    [association] = eks.associations.values()
    assert association["serviceAccount"] == name
    assert association["roleArn"] == SERVING_ROLE
    assert association["disableSessionTags"] is True
    assert association["policy"] == model_read_policy(MODEL_URI, "us-east-1")


def test_the_session_policy_only_reads_the_models_objects() -> None:
    policy = json.loads(model_read_policy(MODEL_URI, "us-east-1"))

    actions = {s["Action"]: s for s in policy["Statement"]}
    assert set(actions) == {"s3:GetObject", "s3:ListBucket"}
    prefix = "jobs/acme/ftjob-1/output/model/"
    assert actions["s3:GetObject"]["Resource"] == f"arn:aws:s3:::whetstone-artifacts/{prefix}*"
    assert actions["s3:ListBucket"]["Condition"] == {"StringLike": {"s3:prefix": f"{prefix}*"}}
    assert all(s["Effect"] == "Allow" for s in policy["Statement"])


def test_stopping_a_deploy_removes_everything_it_made() -> None:
    # Given a started deploy
    kube, eks = FakeKube(), FakeEks()
    subject = _deployer(kube, eks)
    job = _job()
    deployment = subject.start(job, MODEL_URI, base_model=None, max_lora_rank=16)

    # When it is stopped
    subject.stop(job.model_copy(update={"deployment": deployment}))

    # Then its Deployment, Service, Secret, ConfigMap, account and association are gone
    kinds = set(kube.kinds())
    assert {"Deployment", "Service", "Secret", "ConfigMap", "ServiceAccount"}.isdisjoint(kinds)
    assert eks.associations == {}
