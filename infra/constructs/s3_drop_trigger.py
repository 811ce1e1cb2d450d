"""S3 ObjectCreated under incoming/ → the s3_trigger Lambda, which creates the job."""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_notifications as s3n
from constructs import Construct

from infra.constants import INCOMING_PREFIX, INGEST_TIMEOUT, S3_TRIGGER_HANDLER
from infra.constructs.python_function import PythonFunction
from infra.grants import (
    acknowledge,
    artifacts_bucket_name,
    grant_start_workflow,
)


class S3DropTrigger(Construct):
    """The notification is set on the bucket by name (CDK's BucketNotifications custom
    resource), so the data stack does not depend on this one."""

    def __init__(
        self, scope: Construct, construct_id: str, *, layers: list[lambda_.ILayerVersion]
    ) -> None:
        super().__init__(scope, construct_id)
        self.function = PythonFunction(
            self,
            "Function",
            handler=S3_TRIGGER_HANDLER,
            environment={},
            timeout=INGEST_TIMEOUT,
            layers=layers,
            description="Whetstone S3 drop (incoming/) into jobs",
        )
        grant_start_workflow(self.function.role)
        bucket = s3.Bucket.from_bucket_name(self, "Bucket", artifacts_bucket_name())
        bucket.add_event_notification(
            s3.EventType.OBJECT_CREATED,
            s3n.LambdaDestination(self.function.function),
            s3.NotificationKeyFilter(prefix=INCOMING_PREFIX),
        )
        # The custom resource's handler is a singleton of the stack.
        stack = Stack.of(self)
        for child in stack.node.children:
            if child.node.id.startswith("BucketNotificationsHandler"):
                acknowledge(
                    child,
                    "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/"
                    "service-role/AWSLambdaBasicExecutionRole]",
                    "CDK's own BucketNotifications handler; it only writes its logs.",
                )
                acknowledge(
                    child,
                    "AwsSolutions-IAM5[Resource::*]",
                    "CDK's BucketNotifications handler: s3:PutBucketNotification on the "
                    "bucket the custom resource names (CDK grants it on *).",
                )
                acknowledge(
                    child,
                    "AwsSolutions-L1",
                    "CDK's BucketNotifications handler; its runtime is chosen by aws-cdk-lib.",
                )
