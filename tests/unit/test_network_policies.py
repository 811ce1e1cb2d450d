"""Each organization namespace's network: default deny, then only what the pods need."""

from __future__ import annotations

from typing import Any

from support.jobs import make_job
from support.kube import validate

from whetstone.adapters.aws.kube.network_policies import DEFAULT_DENY, EGRESS, SERVING_INGRESS
from whetstone.adapters.aws.kube.serving_manifests import (
    PORT,
    SERVING_APP,
    ServingSettings,
    serving_manifests,
)
from whetstone.adapters.aws.kube.shared_manifests import LABEL_APP, JobSettings, job_namespace
from whetstone.adapters.aws.kube.training_manifests import manifests_for
from whetstone.core.serving_hardware import job_serving_hardware

PLAN = "s3://whetstone-artifacts/jobs/acme/ftjob-1/plan.json"
IMAGE = "whetstone-trainer:tag"
MODEL = "s3://whetstone-artifacts/jobs/acme/ftjob-1/output/model/"


def _policies(manifests: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {m["metadata"]["name"]: m for m in manifests if m["kind"] == "NetworkPolicy"}


def _training() -> dict[str, dict[str, Any]]:
    return _policies(manifests_for(make_job("Acme"), PLAN, IMAGE, JobSettings()))


def _serving() -> dict[str, dict[str, Any]]:
    job = make_job("Acme")
    hardware = job_serving_hardware(job.spec, 16)
    return _policies(
        serving_manifests(job, MODEL, hardware, 16, ServingSettings(), generation="g1", key="k")
    )


def test_given_a_launch_when_built_then_its_namespace_denies_all_traffic_by_default() -> None:
    policies = _training()

    deny = policies[DEFAULT_DENY]
    assert deny["metadata"]["namespace"] == job_namespace(make_job("Acme"), JobSettings())
    assert deny["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    assert SERVING_INGRESS not in policies  # a trainer accepts no connection
    for policy in policies.values():
        validate(policy)


def test_given_the_egress_policy_then_only_dns_pod_identity_and_https_leave() -> None:
    egress = _training()[EGRESS]["spec"]["egress"]

    ports = sorted({(port["protocol"], port["port"]) for rule in egress for port in rule["ports"]})
    assert ports == [("TCP", 53), ("TCP", 80), ("TCP", 443), ("UDP", 53)]
    dns, agent, https = egress
    assert dns["to"][0]["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "kube-system"
    }
    assert {peer["ipBlock"]["cidr"] for peer in agent["to"]} == {
        "169.254.170.23/32",
        "fd00:ec2::23/128",
    }
    # The instance metadata service (169.254.169.254) is link-local: out of reach.
    assert https["to"] == [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["169.254.0.0/16"]}}]


def test_given_a_deploy_when_built_then_only_the_servers_port_admits_connections() -> None:
    policies = _serving()

    assert {DEFAULT_DENY, EGRESS, SERVING_INGRESS} <= policies.keys()
    ingress = policies[SERVING_INGRESS]["spec"]
    assert ingress["podSelector"] == {"matchLabels": {LABEL_APP: SERVING_APP}}
    assert [rule["ports"] for rule in ingress["ingress"]] == [[{"protocol": "TCP", "port": PORT}]]
    for policy in policies.values():
        validate(policy)
