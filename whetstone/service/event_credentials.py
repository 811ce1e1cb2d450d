"""Per-job event credentials: a trainer may only report on its own job.

`prepare` gives the job a random credential: the plan carries it (only that job's pod can
read the plan: the trainer role confines S3 to the job's prefix), the job record its
sha256. The trainer puts it on every event; ingest drops an event whose credential does
not hash to its job's. Jobs whose record holds no hash (the local runtime, where the
platform reads the trainer's own stdout) take events without one.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from whetstone.core.events import TrainerEvent
from whetstone.core.job import JobRecord
from whetstone.core.plan import EventSinkSettings
from whetstone.service.platform import Platform
from whetstone.service.records import update_job


def credential_sha256(credential: str) -> str:
    """The hex sha256 the job record keeps of a credential."""
    return hashlib.sha256(credential.encode("utf-8")).hexdigest()


def issue_event_credential(
    platform: Platform, job_id: str, events: EventSinkSettings
) -> EventSinkSettings:
    """`events` with a new credential for an EventBridge sink, its hash recorded on the
    job; a stdout sink is returned as it is."""
    if events.kind != "eventbridge":
        return events
    credential = secrets.token_urlsafe(32)
    digest = credential_sha256(credential)

    def record(current: JobRecord) -> JobRecord:
        return current.model_copy(update={"event_credential_sha256": digest})

    update_job(platform, job_id, record)
    return events.model_copy(update={"credential": credential})


def event_is_authentic(job: JobRecord, event: TrainerEvent) -> bool:
    """Whether `event` carries the credential of `job` (always, for a job that has none)."""
    expected = job.event_credential_sha256
    if expected is None:
        return True
    if event.credential is None:
        return False
    return hmac.compare_digest(credential_sha256(event.credential), expected)
