"""The single DynamoDB table of jobs, keyed exactly as the DynamoDB adapter expects."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from constructs import Construct

from infra.constants import TABLE_NAME
from whetstone.adapters.aws.dynamodb_requests import table_definition

_TYPES = {"S": dynamodb.AttributeType.STRING, "N": dynamodb.AttributeType.NUMBER}


class JobsTable(Construct):
    """Keys and GSIs read from `table_definition()`, so the two cannot drift apart."""

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        definition = table_definition(TABLE_NAME)
        types = {
            a["AttributeName"]: _TYPES[a["AttributeType"]]
            for a in definition["AttributeDefinitions"]
        }

        def key(schema: list[dict[str, str]], kind: str) -> dynamodb.Attribute | None:
            names = [k["AttributeName"] for k in schema if k["KeyType"] == kind]
            return dynamodb.Attribute(name=names[0], type=types[names[0]]) if names else None

        table_keys: list[dict[str, str]] = list(definition["KeySchema"])  # type: ignore[arg-type]
        partition_key = key(table_keys, "HASH")
        assert partition_key is not None
        self.table = dynamodb.TableV2(
            self,
            "Table",
            table_name=definition["TableName"],
            partition_key=partition_key,
            sort_key=key(table_keys, "RANGE"),
            billing=dynamodb.Billing.on_demand(),
            encryption=dynamodb.TableEncryptionV2.aws_managed_key(),
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            deletion_protection=True,
            removal_policy=RemovalPolicy.RETAIN,
            global_secondary_indexes=[
                dynamodb.GlobalSecondaryIndexPropsV2(
                    index_name=index["IndexName"],
                    partition_key=key(list(index["KeySchema"]), "HASH"),  # type: ignore[arg-type]
                    sort_key=key(list(index["KeySchema"]), "RANGE"),  # type: ignore[arg-type]
                    projection_type=dynamodb.ProjectionType[index["Projection"]["ProjectionType"]],
                )
                for index in definition["GlobalSecondaryIndexes"]
            ],
        )
