"""Build the platform (the adapters behind the ports) for the configured runtime, once."""

from __future__ import annotations

from functools import lru_cache

from whetstone.core.job import JobRecord
from whetstone.observability import logger
from whetstone.service.platform import Platform
from whetstone.settings import Settings, get_settings


class NoWorkflowOrchestrator:
    """Used until a workflow runner is configured: jobs are stored and stay pending."""

    def start(self, job: JobRecord) -> None:
        logger.warning("no workflow runner configured; job stays pending", job_id=job.job_id)

    def stop(self, job: JobRecord) -> None:
        logger.warning("no workflow runner configured; nothing to stop", job_id=job.job_id)


def build_platform(settings: Settings) -> Platform:
    if settings.runtime == "aws":
        from whetstone.adapters.aws.cloudwatch_logs import CloudWatchLogStore
        from whetstone.adapters.aws.dynamodb_jobs import DynamoDBJobStore
        from whetstone.adapters.aws.s3_blobs import S3BlobStore

        return Platform(
            jobs=DynamoDBJobStore(settings.table_name),
            logs=CloudWatchLogStore(settings.log_group),
            blobs=S3BlobStore(settings.bucket),
            orchestrator=NoWorkflowOrchestrator(),
            settings=settings,
        )
    from whetstone.adapters.local.file_logs import FileLogStore
    from whetstone.adapters.local.folder_blobs import FolderBlobStore
    from whetstone.adapters.local.sqlite_jobs import SQLiteJobStore

    home = settings.home
    return Platform(
        jobs=SQLiteJobStore(home / "jobs.sqlite3"),
        logs=FileLogStore(home / "logs"),
        blobs=FolderBlobStore(home / "blobs"),
        orchestrator=NoWorkflowOrchestrator(),
        settings=settings,
    )


@lru_cache(maxsize=1)
def get_platform() -> Platform:
    return build_platform(get_settings())
