"""The compute stack: a created cluster with Karpenter's GPU pools, RBAC and the trainer
role; and the same stack importing an existing cluster by name."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import pytest
from aws_cdk import App
from aws_cdk.assertions import Match, Template
from support.jobs import make_job

from infra.app_builder import build_app
from infra.constants import (
    API_K8S_GROUP,
    CLUSTER_LOG_ADDON,
    CTX_CLUSTER_NAME,
    CTX_LAYER_DIR,
    CTX_NODE_CLASS,
    DEFAULT_CLUSTER_NAME,
    EVENT_BUS_NAME,
    KARPENTER_VERSION,
    KUBERNETES_VERSION,
    NODE_CLASS_NAME,
    WORKFLOW_K8S_GROUP,
)
from infra.constructs.cluster_rbac import (
    GROUP_RULES,
    cluster_role_binding_manifest,
    cluster_role_manifest,
    namespace_policy_binding_manifest,
    namespace_policy_manifest,
)
from infra.constructs.gpu_node_pools import (
    cpu_node_pool_manifest,
    gpu_node_pool_manifests,
    node_pool_name,
)
from infra.constructs.karpenter import node_class_manifest
from infra.constructs.training_cluster import EndpointSetting
from whetstone.adapters.aws.kube.shared_manifests import JobSettings
from whetstone.adapters.aws.kube.training_manifests import cpu_stage_manifest, job_manifest
from whetstone.core.catalog.hardware import GPU_NAME_LABEL, GPU_TAINT_KEY, GPUS, GpuType
from whetstone.core.events import TrainerStage
from whetstone.core.job import JobRecord
from whetstone.core.spec import MAX_STORAGE_GB, HardwareParams

STACK = "WhetstoneCompute"
INSTANCE_TYPE = "node.kubernetes.io/instance-type"
INSTANCE_FAMILY = "karpenter.k8s.aws/instance-family"


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The compute stack of an app told to use the existing cluster `research`."""
    outdir = tmp_path_factory.mktemp("imported.out")
    layer = tmp_path_factory.mktemp("layer")
    (layer / "python").mkdir()
    context = {CTX_LAYER_DIR: str(layer), CTX_CLUSTER_NAME: "research", CTX_NODE_CLASS: "gpu"}
    build_app(App(outdir=str(outdir), context=context)).synth()
    template: dict[str, Any] = json.loads((outdir / f"{STACK}.template.json").read_text())
    return template


def _manifests(template: dict[str, Any]) -> list[dict[str, Any]]:
    """Every object the stack applies through kubectl whose manifest has no token."""
    found = []
    for resource in template["Resources"].values():
        if resource["Type"] == "Custom::AWSCDK-EKS-KubernetesResource":
            manifest = resource["Properties"]["Manifest"]
            if isinstance(manifest, str):
                found.extend(json.loads(manifest))
    return found


def _of_kind(template: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [m for m in _manifests(template) if m["kind"] == kind]


def _policy_statements(synthesized: Any, role_prefix: str) -> list[dict[str, Any]]:
    return [
        statement
        for name, policy in synthesized.resources(STACK, "AWS::IAM::Policy").items()
        if name.startswith(role_prefix)
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def validate(manifest: dict[str, Any]) -> None:
    """Against the schemas of the cluster's Kubernetes version."""
    kubernetes_validate.validate(manifest, f"{KUBERNETES_VERSION}.0", strict=True)


def job_on(gpu: GpuType, count: int) -> JobRecord:
    """A pending job as the API records it, asking for `count` GPUs of type `gpu`."""
    hardware = HardwareParams(gpu_type=gpu, gpu_count=count, storage_gb=200)
    return make_job("Acme Corp", created_at=datetime(2026, 1, 1, tzinfo=UTC), hardware=hardware)


def _admits(pool: dict[str, Any], pod: dict[str, Any]) -> bool:
    """Karpenter's view, reduced to what Whetstone uses: every nodeSelector label is one a
    node of the pool can carry, and every taint of the pool is tolerated."""
    spec = pool["spec"]["template"]["spec"]
    allowed = {r["key"]: set(r["values"]) for r in spec["requirements"]}
    allowed[INSTANCE_FAMILY] = {t.split(".")[0] for t in allowed.get(INSTANCE_TYPE, ())}
    labels = pool["spec"]["template"].get("metadata", {}).get("labels", {})
    allowed.update({key: {value} for key, value in labels.items()})
    fits = all(value in allowed.get(key, set()) for key, value in pod["nodeSelector"].items())
    tolerated = {(t["key"], t["effect"]) for t in pod["tolerations"]}
    return fits and all((t["key"], t["effect"]) in tolerated for t in spec["taints"])


def test_cluster_takes_access_entries_and_logs_every_control_plane_type(
    template: Template,
) -> None:
    template.has_resource_properties(
        "AWS::EKS::Cluster",
        {
            "Name": DEFAULT_CLUSTER_NAME,
            "Version": KUBERNETES_VERSION,
            "AccessConfig": {"AuthenticationMode": "API"},
            "Logging": {
                "ClusterLogging": {
                    "EnabledTypes": [
                        {"Type": t}
                        for t in ("api", "audit", "authenticator", "controllerManager", "scheduler")
                    ]
                }
            },
        },
    )


def test_karpenter_chart_is_pinned_and_knows_its_cluster(synthesized: Any) -> None:
    (chart,) = synthesized.resources(STACK, "Custom::AWSCDK-EKS-HelmChart").values()
    props = chart["Properties"]
    assert props["Version"] == KARPENTER_VERSION
    assert props["Repository"].startswith("oci://public.ecr.aws/karpenter")
    assert json.loads(props["Values"])["settings"]["clusterName"] == DEFAULT_CLUSTER_NAME


def test_one_tainted_on_demand_node_pool_per_catalog_gpu(synthesized: Any) -> None:
    pools = [
        p
        for p in _of_kind(synthesized.templates[STACK], "NodePool")
        if p["metadata"]["name"] != "whetstone-cpu"
    ]
    assert sorted(p["metadata"]["name"] for p in pools) == sorted(
        node_pool_name(gpu) for gpu in GPUS.values()
    )
    for pool in pools:
        spec = pool["spec"]["template"]["spec"]
        assert spec["taints"] == [{"key": GPU_TAINT_KEY, "value": "true", "effect": "NoSchedule"}]
        assert spec["nodeClassRef"]["name"] == NODE_CLASS_NAME
        requirements = {r["key"]: r["values"] for r in spec["requirements"]}
        assert requirements["karpenter.sh/capacity-type"] == ["on-demand"]
        # Running trainers are never consolidated away
        assert pool["spec"]["disruption"]["consolidationPolicy"] == "WhenEmpty"


def test_each_pool_offers_exactly_the_catalog_instances_of_its_gpu() -> None:
    for gpu, pool in zip(GPUS.values(), gpu_node_pool_manifests(NODE_CLASS_NAME), strict=True):
        requirements = {
            r["key"]: r["values"] for r in pool["spec"]["template"]["spec"]["requirements"]
        }
        assert requirements[INSTANCE_TYPE] == [o.instance_type for o in gpu.instances]
        assert requirements[GPU_NAME_LABEL] == [gpu.karpenter_gpu_name]


@pytest.mark.parametrize("gpu", list(GpuType))
def test_every_trainer_pod_fits_exactly_its_own_gpu_pool(gpu: GpuType) -> None:
    # Given the pools, and a trainer pod for each GPU count the catalog offers
    pools = {p["metadata"]["name"]: p for p in gpu_node_pool_manifests(NODE_CLASS_NAME)}
    for option in GPUS[gpu].instances:
        manifest = job_manifest(job_on(gpu, option.gpus), "s3://b/p.json", "img", JobSettings())
        pod = manifest["spec"]["template"]["spec"]
        # When Karpenter looks for a pool that admits it
        admitting = [name for name, pool in pools.items() if _admits(pool, pod)]
        # Then exactly the pool of its GPU type does (the two A100s stay apart)
        assert admitting == [node_pool_name(GPUS[gpu])], (gpu, option.gpus)


def test_the_prepare_and_finalize_pods_fit_only_the_cpu_pool() -> None:
    # Given every pool, and the prepare stage's pod of a job on the largest GPUs
    pools = [*gpu_node_pool_manifests(NODE_CLASS_NAME), cpu_node_pool_manifest(NODE_CLASS_NAME)]
    for stage in (TrainerStage.PREPARE, TrainerStage.FINALIZE):
        job = job_on(GpuType.H100, 8)
        manifest = cpu_stage_manifest(job, "s3://b/p.json", "img", JobSettings(), stage)
        pod = manifest["spec"]["template"]["spec"]
        # When Karpenter looks for a pool that admits it, then only the CPU pool does
        admitting = [pool["metadata"]["name"] for pool in pools if _admits(pool, pod)]
        assert admitting == ["whetstone-cpu"]


def test_gpu_nodes_keep_imds_from_pods_and_encrypt_their_disks() -> None:
    node_class = node_class_manifest("whetstone", "node-role", "sg-1")
    spec = node_class["spec"]
    assert spec["metadataOptions"] == {"httpTokens": "required", "httpPutResponseHopLimit": 1}
    assert all(device["ebs"]["encrypted"] for device in spec["blockDeviceMappings"])
    assert spec["subnetSelectorTerms"] == [{"tags": {"karpenter.sh/discovery": "whetstone"}}]
    assert spec["amiSelectorTerms"][0]["alias"].startswith("bottlerocket@")


def test_gpu_nodes_have_disk_for_the_largest_storage_a_job_may_ask() -> None:
    spec = node_class_manifest("whetstone", "node-role", "sg-1")["spec"]
    (data,) = [d for d in spec["blockDeviceMappings"] if d["deviceName"] == "/dev/xvdb"]

    assert int(data["ebs"]["volumeSize"].removesuffix("Gi")) > MAX_STORAGE_GB


def test_karpenter_writes_only_to_resources_its_cluster_owns(synthesized: Any) -> None:
    owned = f"kubernetes.io/cluster/{DEFAULT_CLUSTER_NAME}"
    # Reads, and launching into the shared subnets, security group and AWS AMIs, need no tag
    untagged = {"LaunchFromSharedResources", "Describe", "AmiParameters", "Prices"}
    untagged |= {"ReadInstanceProfiles", "Cluster", "PassNodeRole"}
    statements = _policy_statements(synthesized, "KarpenterControllerRole")
    for statement in statements:
        if statement["Sid"] not in untagged:
            assert owned in json.dumps(statement["Condition"]), statement["Sid"]
    (pass_role,) = [s for s in statements if s["Sid"] == "PassNodeRole"]
    assert pass_role["Condition"] == {"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}}
    assert pass_role["Resource"]["Fn::GetAtt"][0].startswith("KarpenterNodeRole")


def test_karpenter_controller_and_gpu_nodes_are_known_to_the_cluster(template: Template) -> None:
    template.has_resource_properties(
        "AWS::EKS::PodIdentityAssociation",
        {
            "ClusterName": DEFAULT_CLUSTER_NAME,
            "Namespace": "kube-system",
            "ServiceAccount": "karpenter",
        },
    )
    template.has_resource_properties(
        "AWS::EKS::AccessEntry", {"ClusterName": DEFAULT_CLUSTER_NAME, "Type": "EC2_LINUX"}
    )


def test_log_agent_addon_gets_its_role_through_pod_identity(template: Template) -> None:
    template.has_resource_properties(
        "AWS::EKS::Addon",
        {
            "AddonName": CLUSTER_LOG_ADDON,
            "ClusterName": DEFAULT_CLUSTER_NAME,
            "PodIdentityAssociations": [
                {"ServiceAccount": "cloudwatch-agent", "RoleArn": Match.any_value()}
            ],
        },
    )


def test_trainer_role_is_for_pods_of_this_cluster_only(synthesized: Any) -> None:
    (role,) = [
        r
        for n, r in synthesized.resources(STACK, "AWS::IAM::Role").items()
        if n.startswith("TrainerRole")
    ]
    (trust,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "pods.eks.amazonaws.com"}
    assert sorted(trust["Action"]) == ["sts:AssumeRole", "sts:TagSession"]
    assert "aws:SourceArn" in trust["Condition"]["ArnEquals"]
    assert "whetstone-trainer-" in json.dumps(role["Properties"]["RoleName"])


def test_trainer_role_reaches_its_job_prefix_and_the_bus_only(synthesized: Any) -> None:
    statements = _policy_statements(synthesized, "TrainerRole")
    actions = sorted(
        a
        for s in statements
        for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    )
    assert actions == sorted(
        [
            "s3:AbortMultipartUpload",
            "s3:DeleteObject",
            "s3:GetObject",
            "s3:PutObject",
            "s3:ListBucket",
            "events:PutEvents",
        ]
    )
    text = json.dumps(statements)
    assert "/jobs/*/${aws:PrincipalTag/kubernetes-service-account}/*" in text
    assert f"event-bus/{EVENT_BUS_NAME}" in text
    for statement in statements:  # a session of another cluster gets nothing
        assert statement["Condition"]["StringEquals"]["aws:PrincipalTag/eks-cluster-name"] == (
            DEFAULT_CLUSTER_NAME
        )


def test_serving_role_is_for_pods_of_this_cluster_and_only_reads_models(
    synthesized: Any,
) -> None:
    # Given the role vLLM pods get
    (role,) = [
        r
        for n, r in synthesized.resources(STACK, "AWS::IAM::Role").items()
        if n.startswith("ServingRole")
    ]
    (trust,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "pods.eks.amazonaws.com"}
    assert "aws:SourceArn" in trust["Condition"]["ArnEquals"]
    statements = _policy_statements(synthesized, "ServingRole")

    # Then it may read the jobs' models and nothing else: no Put, no Delete, no other key
    actions = sorted(
        a
        for s in statements
        for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    )
    assert actions == ["s3:GetObject", "s3:ListBucket"]
    assert not any(word in json.dumps(statements) for word in ("Put", "Delete", "s3:*"))
    assert "/jobs/*/*/output/model/*" in json.dumps(statements)


def test_rbac_manifests_fit_the_kubernetes_schemas() -> None:
    for group in GROUP_RULES:
        validate(cluster_role_manifest(group))
        validate(cluster_role_binding_manifest(group))
    validate(namespace_policy_manifest())
    validate(namespace_policy_binding_manifest())


def test_rbac_grants_no_wildcard_and_no_listing_of_secrets(synthesized: Any) -> None:
    roles = _of_kind(synthesized.templates[STACK], "ClusterRole")
    assert sorted(r["metadata"]["name"] for r in roles) == sorted(
        [WORKFLOW_K8S_GROUP, API_K8S_GROUP]
    )
    for role in roles:
        for rule in role["rules"]:
            assert "*" not in rule["verbs"] + rule["resources"] + rule["apiGroups"]
    # The deployer reads the key Secrets it names; nobody lists Secrets, the workflow none.
    assert {r for _, r, _ in _granted(WORKFLOW_K8S_GROUP)}.isdisjoint({"secrets"})
    secrets = {verb for _, resource, verb in _granted(API_K8S_GROUP) if resource == "secrets"}
    assert secrets == {"get", "create", "delete"}


def _granted(group: str) -> set[tuple[str, str, str]]:
    """(API group, resource, verb) triples the ClusterRole of a Kubernetes group allows."""
    return {
        (api_group, resource, verb)
        for rule in cluster_role_manifest(group)["rules"]
        for api_group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


def test_workflow_group_may_do_what_the_eks_compute_adapter_calls() -> None:
    # EksCompute: apply, read the Job, list its pods and events, annotate and delete the Job,
    # delete the service account, list the trainer Jobs
    needed = {
        ("", "namespaces", "create"),
        ("", "resourcequotas", "create"),
        ("networking.k8s.io", "networkpolicies", "create"),
        ("", "serviceaccounts", "create"),
        ("batch", "jobs", "create"),
        ("batch", "jobs", "get"),
        ("", "pods", "list"),
        ("", "events", "list"),
        ("batch", "jobs", "patch"),
        ("batch", "jobs", "delete"),
        ("", "serviceaccounts", "delete"),
        ("batch", "jobs", "list"),
    }
    assert needed <= _granted(WORKFLOW_K8S_GROUP)


def test_api_group_may_do_what_the_eks_deployer_calls() -> None:
    # EksDeployer: apply (namespace, quota, service account, Deployment, Service), read the
    # Deployment, list its pods, post_to_service, delete the Service and Deployment
    needed = {
        ("", "namespaces", "create"),
        ("", "resourcequotas", "create"),
        ("networking.k8s.io", "networkpolicies", "create"),
        ("", "serviceaccounts", "create"),
        ("apps", "deployments", "create"),
        ("", "services", "create"),
        ("apps", "deployments", "get"),
        ("", "pods", "list"),
        ("", "services/proxy", "create"),
        ("", "services", "delete"),
        ("apps", "deployments", "delete"),
        ("", "serviceaccounts", "delete"),
        ("", "secrets", "create"),
        ("", "secrets", "get"),
        ("", "secrets", "delete"),
        ("", "configmaps", "create"),
        ("", "configmaps", "delete"),
    }
    assert needed <= _granted(API_K8S_GROUP)


def test_lambda_groups_write_only_in_whetstone_namespaces() -> None:
    spec = namespace_policy_manifest("whetstone-")["spec"]
    condition = spec["matchConditions"][0]["expression"]
    assert f"'{WORKFLOW_K8S_GROUP}' in request.userInfo.groups" in condition
    assert f"'{API_K8S_GROUP}' in request.userInfo.groups" in condition
    assert "startsWith('whetstone-')" in spec["validations"][0]["expression"]
    assert namespace_policy_binding_manifest()["spec"]["validationActions"] == ["Deny"]


def _admission_matches(rules: list[dict[str, Any]], group: str, resource: str) -> bool:
    """Kubernetes' matching of resourceRules: '*' is every resource, '*/*' every
    subresource, 'r/*' every subresource of r."""
    for rule in rules:
        if group not in rule["apiGroups"] and "*" not in rule["apiGroups"]:
            continue
        name, _, sub = resource.partition("/")
        for pattern in rule["resources"]:
            wanted, _, wanted_sub = pattern.partition("/")
            if (wanted in ("*", name)) and (wanted_sub in ("*", sub) if sub else not wanted_sub):
                return True
    return False


def test_the_namespace_policy_sees_every_write_the_lambda_groups_may_make() -> None:
    rules = namespace_policy_manifest("whetstone-")["spec"]["matchConstraints"]["resourceRules"]
    for group_rules in GROUP_RULES.values():
        for rule in group_rules:
            for resource in rule["resources"]:
                assert _admission_matches(rules, rule["apiGroups"][0], resource), resource


def test_imported_cluster_gets_pools_rbac_and_trainer_role_but_no_new_cluster(
    imported: dict[str, Any],
) -> None:
    template = Template.from_json(imported)
    for kind, count in {
        "AWS::EKS::Cluster": 0,
        "AWS::EC2::VPC": 0,
        "AWS::EKS::Nodegroup": 0,
        "AWS::EKS::Addon": 0,
        "Custom::AWSCDK-EKS-HelmChart": 0,
        "Custom::AWSCDK-EKS-KubernetesResource": 2,  # node pools, RBAC
        "AWS::EKS::AccessEntry": 1,  # the kubectl provider
    }.items():
        template.resource_count_is(kind, count)
    template.has_resource_properties(
        "AWS::EKS::AccessEntry",
        {
            "ClusterName": "research",
            "AccessPolicies": [
                {
                    "AccessScope": {"Type": "cluster"},
                    "PolicyArn": Match.any_value(),
                }
            ],
        },
    )
    (entry,) = [r for r in imported["Resources"].values() if r["Type"] == "AWS::EKS::AccessEntry"]
    assert "cluster-access-policy/AmazonEKSClusterAdminPolicy" in json.dumps(entry)
    pools = _of_kind(imported, "NodePool")
    assert len(pools) == len(GPUS) + 1  # and the CPU pool
    assert {p["spec"]["template"]["spec"]["nodeClassRef"]["name"] for p in pools} == {"gpu"}
    assert "research" in json.dumps(imported["Outputs"]["ClusterName"])


def test_given_no_endpoint_setting_then_the_api_endpoint_is_public(
    synthesized: Any,
) -> None:
    assert EndpointSetting.parse(None) == EndpointSetting.parse("public") == EndpointSetting()
    (cluster,) = synthesized.resources("WhetstoneCompute", "AWS::EKS::Cluster").values()
    vpc_config = cluster["Properties"]["ResourcesVpcConfig"]
    assert vpc_config["EndpointPublicAccess"] and vpc_config["EndpointPrivateAccess"]


def test_given_private_or_cidrs_when_set_then_the_api_endpoint_follows() -> None:
    assert EndpointSetting.parse("private") == EndpointSetting(public=False)
    assert EndpointSetting.parse("203.0.113.0/24, 198.51.100.7/32") == EndpointSetting(
        public_cidrs=("203.0.113.0/24", "198.51.100.7/32")
    )


def test_the_created_cluster_enforces_network_policies(synthesized: Any) -> None:
    addons = synthesized.resources("WhetstoneCompute", "AWS::EKS::Addon").values()
    cni = [a["Properties"] for a in addons if a["Properties"]["AddonName"] == "vpc-cni"]
    assert len(cni) == 1 and cni[0]["ResolveConflicts"] == "OVERWRITE"
    assert json.loads(cni[0]["ConfigurationValues"]) == {"enableNetworkPolicy": "true"}
