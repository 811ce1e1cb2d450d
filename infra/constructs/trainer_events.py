"""The EventBridge bus trainers send to, and the rule that feeds the ingest Lambda."""

from __future__ import annotations

from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra.constants import EVENT_BUS_NAME, INGEST_HANDLER, INGEST_TIMEOUT, TRAINER_EVENT_SOURCE
from infra.constructs.python_function import PythonFunction
from infra.grants import grant_task_callbacks


class TrainerEvents(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, layers: list[lambda_.ILayerVersion]
    ) -> None:
        super().__init__(scope, construct_id)
        self.bus = events.EventBus(self, "Bus", event_bus_name=EVENT_BUS_NAME)
        self.ingest = PythonFunction(
            self,
            "Ingest",
            handler=INGEST_HANDLER,
            environment={"WHETSTONE_EVENT_BUS_NAME": EVENT_BUS_NAME},
            timeout=INGEST_TIMEOUT,
            layers=layers,
            description="Whetstone trainer events into jobs",
        )
        # A stage's end event answers the workflow's wait; its metrics keep the wait alive.
        grant_task_callbacks(self.ingest.role)
        self.rule = events.Rule(
            self,
            "Rule",
            event_bus=self.bus,
            event_pattern=events.EventPattern(source=[TRAINER_EVENT_SOURCE]),
            targets=[targets.LambdaFunction(self.ingest.function, retry_attempts=4)],
        )
