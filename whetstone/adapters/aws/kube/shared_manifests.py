"""What training and serving manifests share: the organization's namespace and quota, the
job's ServiceAccount, the labels and names. Pure functions returning dicts."""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass

from whetstone.adapters.aws.kube.client import Manifest
from whetstone.adapters.aws.kube.network_policies import default_deny_manifest, egress_manifest
from whetstone.core.job import JobRecord

_DNS_LABEL = re.compile(r"[^a-z0-9-]+")
_MAX_LABEL = 63
# 13 base32 characters are 65 bits of sha256: two org ids sharing a namespace would take
# about 2**32 organizations to happen by chance.
_DIGEST_CHARS = 13
LABEL_APP = "app.kubernetes.io/name"
LABEL_JOB = "whetstone.dev/job-id"
LABEL_ORG = "whetstone.dev/org-id"
# A job's ServiceAccount is the trainer's; its servers run under their own (serving_manifests).
TRAINER_APP = "whetstone-trainer"
GPU_RESOURCE = "nvidia.com/gpu"


@dataclass(frozen=True)
class JobSettings:
    """Cluster-wide choices the manifests follow (from Settings)."""

    namespace_prefix: str = "whetstone-"
    event_bus_name: str = "whetstone"
    region: str = "us-east-1"
    ttl_s: int = 3600
    deadline_factor: float = 2.0
    deadline_floor_s: int = 3600
    grace_s: int = 120  # the trainer checkpoints and uploads after SIGTERM
    max_active_gpus: int = 16
    max_active_jobs: int = 10


def org_slug(org_id: str, max_length: int = _MAX_LABEL) -> str:
    """A DNS label of at most `max_length` characters naming exactly one org id: a readable
    part (lowercase, other characters as `-`) and a digest of the exact id, since the
    readable part alone maps `Acme`/`acme`, `a_b`/`a.b` and long ids to one name."""
    digest = hashlib.sha256(org_id.encode("utf-8")).digest()
    suffix = base64.b32encode(digest).decode("ascii").lower()[:_DIGEST_CHARS]
    room = max_length - _DIGEST_CHARS - 1
    readable = _DNS_LABEL.sub("-", org_id.lower())[:room].strip("-") or "org"
    return f"{readable}-{suffix}"


def namespace_name(org_id: str, prefix: str) -> str:
    """The organization's namespace: `prefix` and the org's slug, a DNS-1123 label of at
    most 63 characters that no other org id shares."""
    return prefix + org_slug(org_id, _MAX_LABEL - len(prefix))


def job_namespace(job: JobRecord, settings: JobSettings) -> str:
    """The namespace of the job's organization."""
    return namespace_name(job.org_id, settings.namespace_prefix)


def org_label(org_id: str) -> str:
    """The organization id as a label value (the same slug as its namespace)."""
    return org_slug(org_id)


def job_labels(job: JobRecord, app: str) -> dict[str, str]:
    """The labels of every object made for the job by `app` (trainer or server)."""
    return {LABEL_APP: app, LABEL_ORG: org_label(job.org_id), LABEL_JOB: job.job_id}


def namespace_manifest(org_id: str, settings: JobSettings) -> Manifest:
    """The organization's namespace, enforcing the restricted Pod Security Standard."""
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": namespace_name(org_id, settings.namespace_prefix),
            "labels": {
                LABEL_ORG: org_label(org_id),
                "pod-security.kubernetes.io/enforce": "restricted",
                "pod-security.kubernetes.io/enforce-version": "latest",
            },
        },
    }


def resource_quota_manifest(org_id: str, settings: JobSettings) -> Manifest:
    """The organization's ceiling: GPUs and Jobs, beside the API's own quota check."""
    return {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {
            "name": "whetstone-quota",
            "namespace": namespace_name(org_id, settings.namespace_prefix),
        },
        "spec": {
            "hard": {
                f"requests.{GPU_RESOURCE}": str(settings.max_active_gpus),
                "count/jobs.batch": str(settings.max_active_jobs * 2),
            }
        },
    }


def service_account_manifest(job: JobRecord, settings: JobSettings) -> Manifest:
    """One ServiceAccount per job, named after it: its Pod Identity session tag
    `kubernetes-service-account` is the job id, which the trainer role's policy puts
    into the only S3 prefix it may touch."""
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {
            "name": job.job_id,
            "namespace": job_namespace(job, settings),
            "labels": job_labels(job, TRAINER_APP),
        },
        "automountServiceAccountToken": False,
    }


def namespace_manifests(job: JobRecord, settings: JobSettings) -> list[Manifest]:
    """The namespace of the job's organization, its quota and network policies."""
    namespace = job_namespace(job, settings)
    return [
        namespace_manifest(job.org_id, settings),
        resource_quota_manifest(job.org_id, settings),
        default_deny_manifest(namespace),
        egress_manifest(namespace),
    ]


def org_manifests(job: JobRecord, settings: JobSettings) -> list[Manifest]:
    """The namespace, its quota and network policies, and the service account a job's
    training runs in (applying them again is a no-op)."""
    return [*namespace_manifests(job, settings), service_account_manifest(job, settings)]
