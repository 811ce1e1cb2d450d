"""Kubernetes RBAC of the Lambdas' groups, and an admission policy that keeps them inside
the organizations' namespaces (RBAC cannot name a namespace pattern).

The manifest builders are pure functions (tests validate them against the Kubernetes
schemas); the construct applies them through the cluster's kubectl provider.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import aws_eks_v2 as eks
from constructs import Construct

from infra.constants import API_K8S_GROUP, WORKFLOW_K8S_GROUP
from whetstone.settings import Settings

Manifest = dict[str, Any]
RBAC_API = "rbac.authorization.k8s.io/v1"
ADMISSION_API = "admissionregistration.k8s.io/v1"
NAMESPACE_POLICY = "whetstone-namespaces-only"
NAMESPACE_PREFIX: str = Settings.model_fields["namespace_prefix"].default


def _rule(group: str, resources: list[str], verbs: list[str]) -> Manifest:
    return {"apiGroups": [group], "resources": resources, "verbs": verbs}


# whetstone.adapters.aws.eks_compute's Kubernetes calls: launch (namespace, quota,
# network policies, service account, Job), poll (Job, its pods and events, the
# events-copied annotation), stop (Job, service account), the reconciler (trainer Jobs of
# every namespace).
WORKFLOW_RULES = (
    _rule("", ["namespaces"], ["get", "create"]),
    _rule("", ["resourcequotas"], ["get", "create"]),
    _rule("networking.k8s.io", ["networkpolicies"], ["get", "create"]),
    _rule("", ["serviceaccounts"], ["get", "create", "delete"]),
    _rule("", ["pods"], ["get", "list"]),
    _rule("", ["events"], ["list"]),
    _rule("batch", ["jobs"], ["get", "list", "create", "patch", "delete"]),
)
# whetstone.adapters.aws.eks_deployer: a deploy applies the namespace, quota and network
# policies (no-ops after training), the servers' ingress policy, and its own service
# account, key Secret, middleware ConfigMap, Service and vLLM Deployment; status reads the
# Deployment and its pods, reads the key Secret it named and POSTs the golden prompt, and
# /v1/chat/completions requests, with the key through the service proxy; stop deletes what
# the deploy made. Secrets: get by name, never list, so the group reads only the keys it
# created (it could start pods mounting any Secret of these namespaces anyway); the
# workflow group touches none.
API_RULES = (
    _rule("", ["namespaces"], ["get", "create"]),
    _rule("", ["resourcequotas"], ["get", "create"]),
    _rule("networking.k8s.io", ["networkpolicies"], ["get", "create"]),
    _rule("", ["serviceaccounts"], ["get", "create", "delete"]),
    _rule("", ["secrets"], ["get", "create", "delete"]),
    _rule("", ["configmaps"], ["create", "delete"]),
    _rule("apps", ["deployments"], ["get", "list", "create", "delete"]),
    _rule("", ["services"], ["get", "create", "delete"]),
    _rule("", ["services/proxy"], ["create"]),
    _rule("", ["pods"], ["get", "list"]),
)
GROUP_RULES = {WORKFLOW_K8S_GROUP: WORKFLOW_RULES, API_K8S_GROUP: API_RULES}


def cluster_role_manifest(group: str) -> Manifest:
    return {
        "apiVersion": RBAC_API,
        "kind": "ClusterRole",
        "metadata": {"name": group},
        "rules": list(GROUP_RULES[group]),
    }


def cluster_role_binding_manifest(group: str) -> Manifest:
    return {
        "apiVersion": RBAC_API,
        "kind": "ClusterRoleBinding",
        "metadata": {"name": group},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": group},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": group}],
    }


def namespace_policy_manifest(prefix: str = NAMESPACE_PREFIX) -> Manifest:
    """Writes by the Lambdas' groups only in (or on) namespaces named `prefix`...: the
    ClusterRoles above reach every namespace, kube-system included."""
    groups = " || ".join(f"'{group}' in request.userInfo.groups" for group in GROUP_RULES)
    return {
        "apiVersion": ADMISSION_API,
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": NAMESPACE_POLICY},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {
                "resourceRules": [
                    {
                        "apiGroups": ["", "apps", "batch", "networking.k8s.io"],
                        "apiVersions": ["*"],
                        "operations": ["CREATE", "UPDATE", "DELETE", "CONNECT"],
                        # "*" alone leaves out subresources such as services/proxy (CONNECT)
                        "resources": ["*", "*/*"],
                    }
                ]
            },
            "matchConditions": [{"name": "whetstone-lambdas", "expression": groups}],
            "validations": [
                {
                    "expression": f"request.namespace != '' ? "
                    f"request.namespace.startsWith('{prefix}') : "
                    f"request.name.startsWith('{prefix}')",
                    "message": f"Whetstone writes only in namespaces named {prefix}...",
                }
            ],
        },
    }


def namespace_policy_binding_manifest() -> Manifest:
    return {
        "apiVersion": ADMISSION_API,
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": NAMESPACE_POLICY},
        "spec": {"policyName": NAMESPACE_POLICY, "validationActions": ["Deny"]},
    }


def rbac_manifests() -> list[Manifest]:
    return [
        *(cluster_role_manifest(group) for group in GROUP_RULES),
        *(cluster_role_binding_manifest(group) for group in GROUP_RULES),
        namespace_policy_manifest(),
        namespace_policy_binding_manifest(),
    ]


class ClusterRbac(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, cluster: eks.ICluster) -> None:
        super().__init__(scope, construct_id)
        self.manifest = eks.KubernetesManifest(
            self, "Manifest", cluster=cluster, manifest=rbac_manifests(), overwrite=True
        )
