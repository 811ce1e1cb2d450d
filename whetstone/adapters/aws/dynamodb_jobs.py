"""The JobStore on DynamoDB: sends the requests dynamodb_requests.py builds (whose
docstring gives the table's layout and access patterns), pages through the answers
and retries what DynamoDB leaves unprocessed."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import boto3

from whetstone.adapters.aws import dynamodb_quota as quota
from whetstone.adapters.aws import dynamodb_requests as ddb
from whetstone.core.errors import ConflictError, QuotaExceededError, StaleWriteError
from whetstone.core.job import JobFilter, JobRecord, MetricPoint
from whetstone.core.quota import ActiveLimits, ActiveUsage, quota_refusal

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import (
        PutItemInputTypeDef,
        PutTypeDef,
        WriteRequestTypeDef,
    )


class DynamoDBJobStore:
    """JobStore on one DynamoDB table (its layout: dynamodb_requests.py's docstring)."""

    def __init__(
        self,
        table_name: str,
        client: DynamoDBClient | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._table = table_name
        self._client: DynamoDBClient = client or boto3.client("dynamodb")
        self._sleep = sleep

    def create(self, job: JobRecord, *, limits: ActiveLimits | None = None) -> None:
        requests = ddb.create_job_requests(self._table, job)
        errors = self._client.exceptions
        if len(requests) == 1 and limits is None:
            try:
                self._client.put_item(**requests[0]["Put"])
            except errors.ConditionalCheckFailedException as error:
                raise _job_exists(job) from error
            return
        gpus = job.spec.hardware.gpu_count
        if limits is not None:
            refusal = quota_refusal(self.active_usage(job.org_id), gpus, limits)
            if refusal is not None:
                raise refusal
            requests.append(quota.reserve_item(self._table, job.org_id, gpus, limits))
        try:
            self._client.transact_write_items(TransactItems=requests)
        except errors.TransactionCanceledException as error:
            failed = [
                reason.get("Code") == "ConditionalCheckFailed"
                for reason in error.response.get("CancellationReasons", [])
            ]
            if failed[:1] == [True]:
                raise _job_exists(job) from error
            if job.idempotency_key is not None and failed[1:2] == [True]:
                raise ConflictError(
                    f"the idempotency key {job.idempotency_key!r} was already used by another "
                    "job of this organization",
                    code="idempotency_key_in_use",
                    details={"idempotency_key": job.idempotency_key},
                ) from error
            if limits is not None and failed[-1:] == [True]:
                raise _quota_full(self.active_usage(job.org_id), gpus, limits) from error
            raise

    def active_usage(self, org_id: str) -> ActiveUsage:
        usage = self._read_counter(org_id)
        if usage is not None:
            return usage
        usage = self._count_active(org_id)
        try:
            self._client.put_item(**quota.seed_request(self._table, org_id, usage))
        except self._client.exceptions.ConditionalCheckFailedException:
            return self._read_counter(org_id) or usage
        return usage

    def _read_counter(self, org_id: str) -> ActiveUsage | None:
        response = self._client.get_item(
            TableName=self._table, Key=quota.counter_key(org_id), ConsistentRead=True
        )
        return quota.usage_from_item(response.get("Item"))

    def _count_active(self, org_id: str) -> ActiveUsage:
        jobs = gpus = 0
        query = quota.active_jobs_query(self._table, org_id)
        while True:
            response = self._client.query(**query)
            for item in response["Items"]:
                jobs += 1
                gpus += ddb.record_from_item(item).spec.hardware.gpu_count
            last_key = response.get("LastEvaluatedKey")
            if last_key is None:
                return ActiveUsage(jobs=jobs, gpus=gpus)
            query["ExclusiveStartKey"] = last_key

    def get(self, job_id: str) -> JobRecord | None:
        response = self._client.get_item(
            TableName=self._table, Key=ddb.job_key(job_id), ConsistentRead=True
        )
        item = response.get("Item")
        return None if item is None else ddb.record_from_item(item)

    def save(self, job: JobRecord, *, expected_version: int) -> JobRecord:
        saved = job.model_copy(update={"version": expected_version + 1})
        request = ddb.save_job_request(self._table, saved, expected_version)
        if saved.is_terminal and self._save_ending(request, saved):
            return saved
        try:
            self._client.put_item(**request)
        except self._client.exceptions.ConditionalCheckFailedException as error:
            raise StaleWriteError(
                f"job {job.job_id} changed since it was read at version {expected_version}; "
                "read it again and retry",
                details={"job_id": job.job_id, "expected_version": expected_version},
            ) from error
        return saved

    def _save_ending(self, request: PutItemInputTypeDef, job: JobRecord) -> bool:
        """Write the job's terminal status and give its quota back, in one transaction, if
        the stored job had not ended; False when it had (or its organization has no
        counter yet): the caller's plain conditional save follows."""
        put: PutTypeDef = {
            "TableName": request["TableName"],
            "Item": request["Item"],
            "ConditionExpression": f"{request['ConditionExpression']} AND {quota.NOT_ENDED}",
            "ExpressionAttributeNames": {
                **request.get("ExpressionAttributeNames", {}),
                "#status": "status",
            },
            "ExpressionAttributeValues": {
                **request.get("ExpressionAttributeValues", {}),
                **quota.not_ended_values(),
            },
        }
        release = quota.release_item(self._table, job.org_id, job.spec.hardware.gpu_count)
        try:
            self._client.transact_write_items(TransactItems=[{"Put": put}, release])
        except self._client.exceptions.TransactionCanceledException:
            return False
        return True

    def list_jobs(
        self, org_id: str, filters: JobFilter, *, limit: int, cursor: str | None
    ) -> tuple[list[JobRecord], str | None]:
        start_key = None if cursor is None else ddb.decode_cursor(cursor, org_id)
        if limit <= 0 or ddb.is_empty_range(filters):
            return [], None
        items: list[ddb.Item] = []
        read = 0
        while len(items) < limit and read < ddb.LIST_READ_BUDGET:
            query = ddb.list_jobs_query(
                self._table, org_id, filters, limit=limit - len(items), start_key=start_key
            )
            query["Limit"] = min(query["Limit"], ddb.LIST_READ_BUDGET - read)
            response = self._client.query(**query)
            read += response.get("ScannedCount", len(response["Items"]))
            items.extend(response["Items"])
            start_key = response.get("LastEvaluatedKey")
            if start_key is None:
                break
        page = items[:limit]
        if len(items) > limit:
            next_cursor: str | None = ddb.encode_cursor(ddb.index_key(page[-1]))
        else:
            # A sparse filter may leave the page short: the next one starts past what was
            # read, so no request reads more than the budget.
            next_cursor = None if start_key is None else ddb.encode_cursor(start_key)
        return [ddb.record_from_item(item) for item in page], next_cursor

    def list_unfinished(self) -> list[JobRecord]:
        jobs: list[JobRecord] = []
        request = ddb.unfinished_jobs_scan(self._table)
        while True:
            page = self._client.scan(**request)
            jobs.extend(ddb.record_from_item(item) for item in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return sorted(jobs, key=lambda job: job.created_at)
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def find_by_idempotency_key(self, org_id: str, key: str) -> JobRecord | None:
        response = self._client.get_item(
            TableName=self._table,
            Key=ddb.idempotency_key_item_key(org_id, key),
            ConsistentRead=True,
        )
        item = response.get("Item")
        if item is None:
            return None
        job = self.get(item["job_id"]["S"])
        return job if job is not None and job.org_id == org_id else None

    def delete(self, job_id: str) -> None:
        job = self.get(job_id)
        keys: list[ddb.Item] = []
        query = ddb.job_partition_keys_query(self._table, job_id)
        while True:
            response = self._client.query(**query)
            keys.extend(response["Items"])
            last_key = response.get("LastEvaluatedKey")
            if last_key is None:
                break
            query["ExclusiveStartKey"] = last_key
        keys.sort(key=lambda key: key["SK"]["S"] == ddb.JOB_SK)
        if job is not None and not job.is_terminal:
            self._release(job)
        if job is not None and job.idempotency_key is not None:
            keys.append(ddb.idempotency_key_item_key(job.org_id, job.idempotency_key))
        self._batch_write(ddb.delete_requests(keys))

    def put_metrics(self, job_id: str, points: Sequence[MetricPoint]) -> None:
        self._batch_write(ddb.put_metric_requests(job_id, points))

    def query_metrics(
        self,
        job_id: str,
        *,
        names: Sequence[str] | None,
        min_step: int | None,
        max_step: int | None,
        limit: int | None = None,
    ) -> list[MetricPoint]:
        if limit is not None and names is None:
            names = self.metric_names(job_id, limit=sys.maxsize)
        points: list[MetricPoint] = []
        for query in ddb.metric_queries(
            self._table, job_id, names=names, min_step=min_step, max_step=max_step
        ):
            found = 0
            while limit is None or found < limit:
                if limit is not None:
                    query["Limit"] = limit - found
                response = self._client.query(**query)
                found += len(response["Items"])
                points.extend(ddb.point_from_item(item) for item in response["Items"])
                last_key = response.get("LastEvaluatedKey")
                if last_key is None:
                    break
                query["ExclusiveStartKey"] = last_key
        # DynamoDB orders by the sort key, where '#' ends a name: sort as the port says.
        return sorted(points, key=lambda point: (point.name, point.step))

    def _release(self, job: JobRecord) -> None:
        update = quota.release_item(self._table, job.org_id, job.spec.hardware.gpu_count)
        try:
            self._client.transact_write_items(TransactItems=[update])
        except self._client.exceptions.TransactionCanceledException:
            return  # no counter: the organization's first create counts its jobs

    def metric_names(self, job_id: str, *, limit: int) -> list[str]:
        names: list[str] = []
        while len(names) < limit:
            after = names[-1] if names else None
            response = self._client.query(**ddb.next_metric_name_query(self._table, job_id, after))
            if not response["Items"]:
                return names
            names.append(response["Items"][0]["metric_name"]["S"])
        return names

    def _batch_write(self, requests: Sequence[WriteRequestTypeDef]) -> None:
        """BatchWriteItem in chunks of 25, sending UnprocessedItems again with backoff."""
        for chunk in ddb.chunks(requests):
            pending: Sequence[Any] = chunk
            for attempt in range(ddb.BATCH_WRITE_ATTEMPTS):
                if attempt:
                    self._sleep(min(0.05 * 2**attempt, 2.0))
                response = self._client.batch_write_item(RequestItems={self._table: pending})
                pending = response.get("UnprocessedItems", {}).get(self._table, [])
                if not pending:
                    break
            else:
                raise RuntimeError(
                    f"DynamoDB left {len(pending)} writes unprocessed after "
                    f"{ddb.BATCH_WRITE_ATTEMPTS} attempts"
                )


def _quota_full(usage: ActiveUsage, gpus: int, limits: ActiveLimits) -> QuotaExceededError:
    """Why the counter refused the job; a job that ended in between leaves room, but the
    refusal stands (the caller may retry)."""
    return quota_refusal(usage, gpus, limits) or QuotaExceededError(
        "your organization's running jobs reached its quota as this job was created; try again",
        code="quota_jobs",
    )


def _job_exists(job: JobRecord) -> ConflictError:
    return ConflictError(f"a job with id {job.job_id} already exists", code="job_exists")
