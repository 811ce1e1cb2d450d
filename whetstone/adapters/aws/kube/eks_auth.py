"""Reaching an EKS cluster's API server from a Lambda: its endpoint and CA from
DescribeCluster, and a bearer token made as `aws eks get-token` makes it (a presigned STS
GetCallerIdentity URL), fresh for every call since it lives 60 seconds."""

from __future__ import annotations

import base64
import tempfile
from typing import TYPE_CHECKING, Any

from whetstone.adapters.aws.kube.client import KubeClient

if TYPE_CHECKING:
    from mypy_boto3_eks.client import EKSClient
    from mypy_boto3_sts.client import STSClient

K8S_AWS_ID_HEADER = "x-k8s-aws-id"
TOKEN_PREFIX = "k8s-aws-v1."
TOKEN_EXPIRY_S = 60


def eks_token(sts: STSClient, cluster_name: str) -> str:
    """A bearer token for the cluster: a presigned STS GetCallerIdentity URL that carries
    the cluster name in the signed `x-k8s-aws-id` header, as `aws eks get-token` makes it."""

    def keep_cluster(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        if K8S_AWS_ID_HEADER in params:
            context[K8S_AWS_ID_HEADER] = params.pop(K8S_AWS_ID_HEADER)

    def add_header(request: Any, **_: Any) -> None:
        if K8S_AWS_ID_HEADER in request.context:
            request.headers[K8S_AWS_ID_HEADER] = request.context[K8S_AWS_ID_HEADER]

    events = sts.meta.events
    events.register("provide-client-params.sts.GetCallerIdentity", keep_cluster)
    events.register("before-sign.sts.GetCallerIdentity", add_header)
    try:
        url = sts.generate_presigned_url(
            "get_caller_identity",
            Params={K8S_AWS_ID_HEADER: cluster_name},
            ExpiresIn=TOKEN_EXPIRY_S,
            HttpMethod="GET",
        )
    finally:
        events.unregister("provide-client-params.sts.GetCallerIdentity", keep_cluster)
        events.unregister("before-sign.sts.GetCallerIdentity", add_header)
    return TOKEN_PREFIX + base64.urlsafe_b64encode(url.encode()).decode().rstrip("=")


class EksConnection:
    """ApiClients for the cluster: the endpoint and CA looked up once, a token per client."""

    def __init__(self, cluster_name: str, eks: EKSClient, sts: STSClient) -> None:
        self._cluster = cluster_name
        self._eks = eks
        self._sts = sts
        self._endpoint: str | None = None
        self._ca_file: str | None = None

    def api_client(self) -> Any:
        """An ApiClient authenticated with a fresh token."""
        from kubernetes import client

        if self._endpoint is None:
            cluster = self._eks.describe_cluster(name=self._cluster)["cluster"]
            with tempfile.NamedTemporaryFile("wb", suffix=".crt", delete=False) as ca:
                ca.write(base64.b64decode(cluster["certificateAuthority"]["data"]))
            self._endpoint, self._ca_file = cluster["endpoint"], ca.name
        configuration = client.Configuration()
        configuration.host = self._endpoint
        configuration.ssl_ca_cert = self._ca_file
        configuration.api_key = {"BearerToken": eks_token(self._sts, self._cluster)}
        configuration.api_key_prefix = {"BearerToken": "Bearer"}
        return client.ApiClient(configuration)


class KubernetesApi(KubeClient):
    """The Kubernetes API of an EKS cluster, authenticated with a fresh EKS token per call
    (a KubeClient over an EksConnection; tests build an EksConnection with their own AWS
    clients instead)."""

    def __init__(self, cluster_name: str, region: str | None = None) -> None:
        import boto3

        eks = boto3.client("eks", region_name=region)
        sts = boto3.client(
            "sts",
            region_name=region,
            endpoint_url=f"https://sts.{region}.amazonaws.com" if region else None,
        )
        super().__init__(EksConnection(cluster_name, eks, sts).api_client)
