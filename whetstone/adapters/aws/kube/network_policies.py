"""The network of an organization's namespace: nothing in or out but what its pods need.

Every pod of the namespace is denied all traffic; then it may resolve names (kube-dns in
kube-system), fetch its EKS Pod Identity credentials (the node's agent at 169.254.170.23,
port 80) and open HTTPS (443) connections to anything outside the link-local range (S3,
EventBridge, ECR, the Hugging Face hub): the instance metadata service (169.254.169.254)
stays out of reach, pods take credentials from Pod Identity only. Servers accept their
port from the cluster's private address ranges only (the API server's service proxy that
sends the golden prompt, the kubelet's probes); trainers accept nothing.
Pure functions returning dicts.
"""

from __future__ import annotations

from whetstone.adapters.aws.kube.client import Manifest

NETWORK_API = "networking.k8s.io/v1"
DEFAULT_DENY = "whetstone-default-deny"
EGRESS = "whetstone-egress"
SERVING_INGRESS = "whetstone-serving-ingress"
POD_IDENTITY_AGENT_V4 = "169.254.170.23/32"
POD_IDENTITY_AGENT_V6 = "fd00:ec2::23/128"
LINK_LOCAL = "169.254.0.0/16"
# RFC 1918: where a VPC's nodes and the control plane's network interfaces live.
PRIVATE_RANGES = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")


def _policy(namespace: str, name: str, spec: Manifest) -> Manifest:
    return {
        "apiVersion": NETWORK_API,
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def default_deny_manifest(namespace: str) -> Manifest:
    """No traffic in or out of any pod of the namespace unless another policy allows it."""
    spec = {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    return _policy(namespace, DEFAULT_DENY, spec)


def egress_manifest(namespace: str) -> Manifest:
    """DNS, Pod Identity credentials and HTTPS outside the link-local range."""
    dns_ports = [{"protocol": protocol, "port": 53} for protocol in ("UDP", "TCP")]
    kube_dns = {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
        "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
    }
    agent = [{"ipBlock": {"cidr": cidr}} for cidr in (POD_IDENTITY_AGENT_V4, POD_IDENTITY_AGENT_V6)]
    return _policy(
        namespace,
        EGRESS,
        {
            "podSelector": {},
            "policyTypes": ["Egress"],
            "egress": [
                {"to": [kube_dns], "ports": dns_ports},
                {"to": agent, "ports": [{"protocol": "TCP", "port": 80}]},
                {
                    "to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": [LINK_LOCAL]}}],
                    "ports": [{"protocol": "TCP", "port": 443}],
                },
            ],
        },
    )


def serving_ingress_manifest(namespace: str, servers: dict[str, str], port: int) -> Manifest:
    """The port of the pods labelled `servers`, from the private ranges the platform
    reaches them from."""
    return _policy(
        namespace,
        SERVING_INGRESS,
        {
            "podSelector": {"matchLabels": servers},
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": [{"ipBlock": {"cidr": cidr}} for cidr in PRIVATE_RANGES],
                    "ports": [{"protocol": "TCP", "port": port}],
                }
            ],
        },
    )
