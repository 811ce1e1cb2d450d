"""The generic Kubernetes client over the official `kubernetes` package, against a fake API
server behind its REST layer: the requests each kind and verb makes, what 404 and 409 mean,
the retries on 429/5xx and the one mapping of what is left to the domain's errors."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from kubernetes.client.rest import RESTResponse
from support.jobs import make_job
from urllib3.exceptions import NewConnectionError

from whetstone.adapters.aws.kube.client import Backoff, KubeClient, KubernetesUnavailable
from whetstone.adapters.aws.kube.serving_manifests import ServingSettings, serving_manifests
from whetstone.adapters.aws.kube.shared_manifests import JobSettings, job_namespace
from whetstone.adapters.aws.kube.training_manifests import manifests_for
from whetstone.core.lifecycle import JobStatus
from whetstone.core.serving_hardware import job_serving_hardware
from whetstone.core.spec import Method

JOB = {
    "apiVersion": "batch/v1",
    "kind": "Job",
    "metadata": {"name": "ftjob-1", "namespace": "whetstone-acme"},
}


@dataclass
class _Answer:
    status: int
    data: bytes
    reason: str = "answer"
    headers: dict[str, str] = field(default_factory=lambda: {"content-type": "application/json"})

    def getheaders(self) -> dict[str, str]:
        return self.headers


@dataclass
class FakeApiServer:
    """Answers requests with `answers` in order, then with 200 and the object (`body`, or
    what a POST sent), and records them."""

    answers: list[tuple[int, Any] | Exception] = field(default_factory=list)
    body: Any = field(default_factory=lambda: dict(JOB))
    requests: list[tuple[str, str, Any]] = field(default_factory=list)
    sent_headers: list[Any] = field(default_factory=list)

    def request(
        self,
        method: str,
        url: str,
        headers: Any = None,
        body: Any = None,
        post_params: Any = None,
        _request_timeout: Any = None,
    ) -> RESTResponse:
        self.requests.append((method, url, body))
        self.sent_headers.append(headers)
        created = body if method == "POST" else self.body  # a create answers the object
        answer = self.answers.pop(0) if self.answers else (200, created)
        if isinstance(answer, Exception):
            raise answer
        status, content = answer
        return RESTResponse(_Answer(status, json.dumps(content).encode()))


@pytest.fixture
def server() -> FakeApiServer:
    return FakeApiServer()


@pytest.fixture
def waits() -> list[float]:
    return []


@pytest.fixture
def kube(server: FakeApiServer, waits: list[float]) -> KubeClient:
    def connect() -> client.ApiClient:
        configuration = client.Configuration()
        configuration.host = "https://cluster.example"
        api = client.ApiClient(configuration)
        api.rest_client = server
        return api

    return KubeClient(connect, Backoff(attempts=3, first_delay_s=0.5), sleep=waits.append)


def paths(server: FakeApiServer) -> list[str]:
    return [
        f"{method} {url.removeprefix('https://cluster.example')}"
        for method, url, _ in server.requests
    ]


def test_given_a_launch_and_a_deploy_when_applied_then_each_object_is_created_unchanged(
    kube: KubeClient, server: FakeApiServer
) -> None:
    job = make_job("Acme", method=Method.LORA, status=JobStatus.COMPLETED)
    hardware = job_serving_hardware(job.spec, 16)
    manifests = [
        *manifests_for(job, "s3://b/plan.json", "image", JobSettings()),
        *serving_manifests(
            job, "s3://b/model/", hardware, 16, ServingSettings(), generation="g1", key="k"
        )[-2:],
    ]

    for manifest in manifests:
        kube.apply(manifest)

    ns = job_namespace(job, JobSettings())
    policies = f"/apis/networking.k8s.io/v1/namespaces/{ns}/networkpolicies"
    collections = [
        "/api/v1/namespaces",
        f"/api/v1/namespaces/{ns}/resourcequotas",
        policies,
        policies,
        f"/api/v1/namespaces/{ns}/serviceaccounts",
        f"/apis/batch/v1/namespaces/{ns}/jobs",
        f"/api/v1/namespaces/{ns}/services",
        f"/apis/apps/v1/namespaces/{ns}/deployments",
    ]
    assert paths(server) == [f"POST {collection}" for collection in collections]
    assert [body for _, _, body in server.requests] == manifests  # the typed models lose nothing


def test_given_an_existing_object_when_applied_then_it_is_left_as_it_is(
    kube: KubeClient, server: FakeApiServer
) -> None:
    server.answers = [(409, {"kind": "Status", "reason": "AlreadyExists"})]

    kube.apply(JOB)

    assert len(server.requests) == 1


def test_given_no_such_object_when_read_or_deleted_then_none_and_no_error(
    kube: KubeClient, server: FakeApiServer
) -> None:
    server.answers = [(404, {"kind": "Status"}), (404, {"kind": "Status"})]

    found = kube.read("Job", "whetstone-acme", "ftjob-1")
    kube.delete("Job", "whetstone-acme", "ftjob-1")

    assert found is None and len(server.requests) == 2


def test_given_an_object_when_read_then_it_comes_back_as_a_plain_dict(
    kube: KubeClient, server: FakeApiServer
) -> None:
    found = kube.read("Job", "whetstone-acme", "ftjob-1")

    assert found is not None and found["metadata"]["name"] == "ftjob-1"
    assert paths(server) == ["GET /apis/batch/v1/namespaces/whetstone-acme/jobs/ftjob-1"]


def test_given_a_workload_when_deleted_then_its_pods_go_first_and_others_plainly(
    kube: KubeClient, server: FakeApiServer
) -> None:
    kube.delete("Job", "whetstone-acme", "ftjob-1")
    kube.delete("ServiceAccount", "whetstone-acme", "ftjob-1")

    assert paths(server) == [
        "DELETE /apis/batch/v1/namespaces/whetstone-acme/jobs/ftjob-1?propagationPolicy=Foreground",
        "DELETE /api/v1/namespaces/whetstone-acme/serviceaccounts/ftjob-1",
    ]


def test_given_labels_when_objects_are_listed_then_the_selector_asks_for_all_of_them(
    kube: KubeClient, server: FakeApiServer
) -> None:
    server.body = {"items": [dict(JOB)]}

    everywhere = kube.list_objects("Job", None, {"app": "trainer", "org": "acme"})
    in_namespace = kube.list_objects("Pod", "whetstone-acme")

    assert [item["metadata"]["name"] for item in everywhere] == ["ftjob-1"]
    assert len(in_namespace) == 1
    assert paths(server) == [
        "GET /apis/batch/v1/jobs?labelSelector=app%3Dtrainer%2Corg%3Dacme",
        "GET /api/v1/namespaces/whetstone-acme/pods",
    ]


def test_given_annotations_when_set_then_the_object_is_patched_with_them(
    kube: KubeClient, server: FakeApiServer
) -> None:
    kube.annotate("Job", "whetstone-acme", "ftjob-1", {"whetstone.dev/mark": "t"})

    method, _, body = server.requests[0]
    assert method == "PATCH" and body == {"metadata": {"annotations": {"whetstone.dev/mark": "t"}}}


def test_given_a_throttled_then_failing_api_when_called_then_it_is_tried_again_with_backoff(
    kube: KubeClient, server: FakeApiServer, waits: list[float]
) -> None:
    server.answers = [(429, {"kind": "Status"}), (503, {"kind": "Status"})]

    found = kube.read("Job", "whetstone-acme", "ftjob-1")

    assert found is not None and len(server.requests) == 3
    assert waits == [0.5, 1.0]


def test_given_an_api_that_keeps_failing_when_called_then_kubernetes_unavailable(
    kube: KubeClient, server: FakeApiServer, waits: list[float]
) -> None:
    server.answers = [(500, {"kind": "Status"})] * 3

    with pytest.raises(KubernetesUnavailable, match="answered 500"):
        kube.apply(JOB)

    assert len(server.requests) == 3 and len(waits) == 2


def test_given_a_refusal_when_called_then_the_api_error_escapes_untried(
    kube: KubeClient, server: FakeApiServer, waits: list[float]
) -> None:
    server.answers = [(403, {"kind": "Status", "reason": "Forbidden"})]

    with pytest.raises(ApiException) as raised:
        kube.delete("Job", "whetstone-acme", "ftjob-1")

    assert raised.value.status == 403 and waits == []


def test_given_an_unreachable_server_when_called_then_kubernetes_unavailable(
    kube: KubeClient, server: FakeApiServer
) -> None:
    server.answers = [NewConnectionError(None, "connection refused")]

    with pytest.raises(KubernetesUnavailable, match="unreachable"):
        kube.read("Job", "whetstone-acme", "ftjob-1")


def test_given_a_model_server_when_posted_to_then_its_json_answer_comes_back(
    kube: KubeClient, server: FakeApiServer
) -> None:
    server.answers = [(503, {"error": "loading"}), (200, {"choices": []})]

    answer = kube.post_to_service(
        "whetstone-acme", "vllm-ftjob-1", "http", "/v1/x", {"a": 1}, {"X-Whetstone-Model-Key": "k"}
    )

    assert answer == {"choices": []}
    method, url, body = server.requests[-1]
    assert url.endswith("/api/v1/namespaces/whetstone-acme/services/vllm-ftjob-1:http/proxy/v1/x")
    assert method == "POST" and body == {"a": 1}
    assert server.sent_headers[-1]["X-Whetstone-Model-Key"] == "k"


def test_given_a_model_server_that_refuses_when_posted_to_then_a_value_error_says_why(
    kube: KubeClient, server: FakeApiServer
) -> None:
    server.answers = [(404, {"error": "The model `x` does not exist."})]

    with pytest.raises(ValueError, match="answered 404: .*does not exist"):
        kube.post_to_service("whetstone-acme", "vllm-ftjob-1", "http", "/v1/x", {}, {})
