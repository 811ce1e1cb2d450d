"""A job's workload and its identity: its ServiceAccount, and the EKS Pod Identity
association that gives it a role: the trainer role (whose policy confines S3 to the job's
prefix by a session tag) for training, the read-only serving role (confined to the job's
model by a session policy) for serving. Both start and remove their workloads the same way."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from whetstone.adapters.aws.kube.client import KubeApi, Manifest

if TYPE_CHECKING:
    from mypy_boto3_eks.client import EKSClient


class PodIdentity:
    """EKS Pod Identity associations: a workload's service account → `role_arn`."""

    def __init__(self, cluster_name: str, role_arn: str, client: EKSClient | None = None) -> None:
        if client is None:
            import boto3

            client = boto3.client("eks")
        self._eks = client
        self._cluster = cluster_name
        self._role_arn = role_arn

    def associate(
        self, namespace: str, service_account: str, session_policy: str | None = None
    ) -> None:
        """Give the service account's pods the role; `session_policy` (JSON) narrows what
        they may do with it (EKS allows one only without session tags)."""
        narrowed: dict[str, Any] = (
            {"policy": session_policy, "disableSessionTags": True} if session_policy else {}
        )
        try:
            self._eks.create_pod_identity_association(
                clusterName=self._cluster,
                namespace=namespace,
                serviceAccount=service_account,
                roleArn=self._role_arn,
                **narrowed,
            )
        except self._eks.exceptions.ResourceInUseException:
            pass  # launched before: the association exists

    def dissociate(self, namespace: str, service_account: str) -> None:
        listed = self._eks.list_pod_identity_associations(
            clusterName=self._cluster, namespace=namespace, serviceAccount=service_account
        )
        for association in listed.get("associations", []):
            self._eks.delete_pod_identity_association(
                clusterName=self._cluster, associationId=association["associationId"]
            )


def _service_account(manifest: Manifest) -> str | None:
    """The ServiceAccount a workload's pods run under (a Job's or a Deployment's)."""
    template = (manifest.get("spec") or {}).get("template") or {}
    name = (template.get("spec") or {}).get("serviceAccountName")
    return str(name) if name else None


@dataclass(frozen=True)
class ClusterAccess:
    """The Kubernetes API and, when a role for the workloads is configured, EKS Pod Identity
    (the trainer role for training, the serving role for serving)."""

    api: KubeApi
    pod_identity: PodIdentity | None = None

    def apply_all(self, manifests: Sequence[Manifest], session_policy: str | None = None) -> None:
        """Apply in order; a workload's ServiceAccount is associated with the role (narrowed
        by `session_policy`) just before the workload, so its pods start with their
        credentials."""
        for manifest in manifests:
            service_account = _service_account(manifest)
            if service_account is not None and self.pod_identity is not None:
                namespace = manifest["metadata"]["namespace"]
                self.pod_identity.associate(namespace, service_account, session_policy)
            self.api.apply(manifest)

    def remove_identity(self, namespace: str, service_account: str) -> None:
        """Delete the ServiceAccount and its association (either may be gone already)."""
        self.api.delete("ServiceAccount", namespace, service_account)
        if self.pod_identity is not None:
            self.pod_identity.dissociate(namespace, service_account)
