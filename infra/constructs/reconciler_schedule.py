"""The reconciler Lambda on a schedule: repairs jobs whose workflow or Kubernetes Job is gone."""

from __future__ import annotations

from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra.constants import (
    RECONCILE_EVERY,
    RECONCILE_TIMEOUT,
    RECONCILER_HANDLER,
    WORKFLOW_K8S_GROUP,
)
from infra.constructs.python_function import PythonFunction
from infra.grants import (
    grant_cluster_access,
    grant_manage_workflow,
    grant_pod_identity,
)


class ReconcilerSchedule(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        environment: dict[str, str],
        layers: list[lambda_.ILayerVersion],
        cluster_name: str,
    ) -> None:
        super().__init__(scope, construct_id)
        self.reconciler = PythonFunction(
            self,
            "Reconciler",
            handler=RECONCILER_HANDLER,
            environment=environment,
            timeout=RECONCILE_TIMEOUT,
            layers=layers,
            description="Whetstone reconciler of lost workflows and Kubernetes Jobs",
        )
        role = self.reconciler.role
        grant_cluster_access(role, cluster_name, WORKFLOW_K8S_GROUP)
        grant_pod_identity(role, cluster_name)
        grant_manage_workflow(role)
        self.rule = events.Rule(
            self,
            "Schedule",
            schedule=events.Schedule.rate(RECONCILE_EVERY),
            targets=[targets.LambdaFunction(self.reconciler.function, retry_attempts=2)],
        )
