"""The local workflow runner: the steps of whetstone.service.workflow, in order, in threads.

A queue with a concurrency limit (the local GPUs, or one job on CPU) runs each
job through begin → write plan → image → prepare stage → record prepared → train
stage → finalize stage → complete; each stage is a `python -m trainer <stage>`
subprocess (the same program, and code, the aws runtime runs on its cluster), waited
for here while a stop or (in the train stage) a pause is watched for. A pause stops the
trainer, which checkpoints, and ends the job's thread; a resume starts a new one at the
launch. After a restart, `reconcile` picks every unfinished job up where it can be
resumed: from the start, from its plan (the trainer resumes from its latest checkpoint),
or to cancelled when a stop was under way; a paused job stays paused, one left pausing is
paused; and it reconciles the model servers a previous run left (failed, idle past the
TTL, or of deleted jobs).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from enum import Enum

from whetstone.core.events import TrainerStage
from whetstone.core.job import JobRecord, utcnow
from whetstone.core.layout import JobLayout
from whetstone.core.lifecycle import JobStatus
from whetstone.core.plan import EventSinkSettings
from whetstone.observability import logger
from whetstone.ports import Compute, ComputeState, ImageBuilder
from whetstone.service import pausing, workflow
from whetstone.service.platform import Platform, PlatformRef
from whetstone.service.serving_reconcile import ServedModels, reconcile_deployments

LOCAL_IMAGE_TAG = "local"


def _logged(job_id: str, what: str, repair: Callable[[], None]) -> None:
    try:
        repair()
    except Exception:
        logger.exception("reconciling a job failed", job_id=job_id, what=what)


class _Resume(Enum):
    FROM_START = "start"
    FROM_PREPARE = "prepare"
    FROM_PLAN = "plan"
    FROM_PAUSE = "pause"


class LocalRunner:
    """The Orchestrator of the local runtime."""

    def __init__(
        self,
        platform: PlatformRef,
        compute: Compute,
        images: ImageBuilder,
        *,
        concurrency: int = 1,
        poll_interval_s: float = 1.0,
    ) -> None:
        self._platform_ref = platform
        self._compute = compute
        self._images = images
        self._poll_interval_s = poll_interval_s
        self._pool = ThreadPoolExecutor(concurrency, thread_name_prefix="whetstone-job")
        self._wake = threading.Event()

    @property
    def _platform(self) -> Platform:
        return self._platform_ref.get()

    def start(self, job: JobRecord) -> None:
        self._pool.submit(self._run, job.job_id, _Resume.FROM_START)

    def stop(self, job: JobRecord) -> None:
        self._wake.set()  # the job's poll loop sees the stop at once

    def pause(self, job: JobRecord) -> None:
        self._wake.set()  # the job's poll loop sees the pause at once

    def resume(self, job: JobRecord) -> None:
        self._pool.submit(self._run, job.job_id, _Resume.FROM_PAUSE)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def reconcile(self) -> int:
        """Resume or end every job left unfinished by a previous run; returns how many."""
        jobs = self._platform.jobs.list_unfinished()
        for job in jobs:
            logger.info("reconciling job", job_id=job.job_id, status=job.status.value)
            if job.status is JobStatus.STOPPING:
                workflow.cancel(self._platform, job.job_id, self._compute)
            elif job.status is JobStatus.PAUSED:
                continue
            elif job.status is JobStatus.PAUSING:
                self._pool.submit(self._pause, job.job_id)
            elif job.status is JobStatus.PENDING:
                self._pool.submit(self._run, job.job_id, _Resume.FROM_START)
            elif job.status in (JobStatus.PREPARING, JobStatus.BUILDING):
                self._pool.submit(self._run, job.job_id, _Resume.FROM_PREPARE)
            else:
                self._pool.submit(self._run, job.job_id, _Resume.FROM_PLAN)
        self._reconcile_deployments()
        return len(jobs)

    def _reconcile_deployments(self) -> None:
        """The model servers, as the aws reconciler does them (service/serving_reconcile.py)."""
        deployer = self._platform.deployer
        if isinstance(deployer, ServedModels):
            reconcile_deployments(self._platform, deployer, now=utcnow(), isolate=_logged)

    def _run(self, job_id: str, resume: _Resume) -> None:
        platform, compute = self._platform, self._compute
        step = "begin"
        try:
            if resume in (_Resume.FROM_PLAN, _Resume.FROM_PAUSE):
                job = platform.jobs.get(job_id)
                if job is None:
                    return
                plan_uri = platform.blobs.uri(JobLayout.of(job).plan)
                compute.stop(job)  # a trainer the previous server left behind
                after = "a restart" if resume is _Resume.FROM_PLAN else "a pause"
                workflow.log(platform, job_id, "deployment", f"resuming after {after}")
                image = self._images.find(LOCAL_IMAGE_TAG) or ""
            else:
                if resume is _Resume.FROM_START:
                    workflow.begin(platform, job_id)
                step = "prepare"
                events = EventSinkSettings(kind="stdout")
                plan_uri = workflow.write_plan(platform, job_id, events).plan_uri
                step = "build"
                choice = workflow.resolve_image(platform, job_id, self._images, LOCAL_IMAGE_TAG)
                image = choice.image or workflow.build_image(
                    platform, job_id, self._images, LOCAL_IMAGE_TAG
                )
                step = "prepare"
                self._stage(job_id, plan_uri, image, TrainerStage.PREPARE)
                workflow.record_prepared(platform, job_id)
            step = "launch"
            workflow.launch(platform, job_id, compute, plan_uri, image)
            step = "train"
            self._wait(job_id, TrainerStage.TRAIN)
            step = "finalize"
            self._stage(job_id, plan_uri, image, TrainerStage.FINALIZE)
            workflow.complete(platform, job_id)
        except workflow.JobPaused:
            self._pause(job_id)
        except workflow.JobStopped:
            workflow.cancel(platform, job_id, compute)
        except workflow.WorkflowError as error:
            workflow.fail(platform, job_id, compute, error.code, error.message, error.step)
        except Exception as error:
            logger.exception("workflow step crashed", job_id=job_id, step=step)
            workflow.fail(platform, job_id, compute, "internal_error", str(error), step)

    def _pause(self, job_id: str) -> None:
        """Stop the trainer (it checkpoints) → paused; a stop that came meanwhile cancels."""
        try:
            pausing.pause(self._platform, job_id, self._compute)
        except workflow.JobStopped:
            workflow.cancel(self._platform, job_id, self._compute)
        except Exception as error:
            logger.exception("workflow step crashed", job_id=job_id, step="pause")
            platform, compute = self._platform, self._compute
            workflow.fail(platform, job_id, compute, "internal_error", str(error), "pause")

    def _stage(self, job_id: str, plan_uri: str, image: str, stage: TrainerStage) -> None:
        """Run a data stage of the trainer (prepare, finalize) and wait for it."""
        job = self._platform.jobs.get(job_id)
        if job is None or job.is_stop_requested:
            raise workflow.JobStopped(f"stop requested before the {stage} stage")
        self._compute.launch(job, plan_uri, image, stage)
        workflow.log(self._platform, job_id, "deployment", f"{stage} stage started")
        self._wait(job_id, stage)

    def _wait(self, job_id: str, stage: TrainerStage) -> None:
        """Until the stage's process ends: JobStopped when a stop is asked for meanwhile,
        JobPaused when a pause is (in the train stage: one that has ended completes the job),
        the stage's failure when it fails."""
        platform, compute = self._platform, self._compute
        while True:
            job = platform.jobs.get(job_id)
            if job is None or job.is_stop_requested:
                raise workflow.JobStopped(f"stop requested during the {stage} stage")
            if stage is TrainerStage.TRAIN and pausing.pause_at_cost_cap(platform, job, utcnow()):
                continue  # a trainer silent past its cap is paused too
            status = compute.status(job, stage)
            if status.state is ComputeState.SUCCEEDED:
                compute.stop(job)  # releases the finished process's bookkeeping
                return
            if stage is TrainerStage.TRAIN and job.status is JobStatus.PAUSING:
                raise workflow.JobPaused("pause requested during the train stage")
            if status.state not in (ComputeState.PENDING, ComputeState.RUNNING):
                failed = platform.jobs.get(job_id) or job  # with the error ingested last
                reason = failed.error.message if failed.error else status.message
                code = failed.error.code if failed.error else None
                raise _STAGE_FAILURES[stage](reason or f"the {stage} stage stopped", code=code)
            self._wake.wait(self._poll_interval_s)
            self._wake.clear()


_STAGE_FAILURES: dict[TrainerStage, type[workflow.WorkflowError]] = {
    TrainerStage.PREPARE: workflow.DatasetInvalid,
    TrainerStage.TRAIN: workflow.TrainingFailed,
    TrainerStage.FINALIZE: workflow.ArtifactsMissing,
}
