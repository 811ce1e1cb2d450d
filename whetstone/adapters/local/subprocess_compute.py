"""Compute on this machine: one `python -m trainer <stage>` subprocess per job at a time.

The trainer prints its events as JSON lines; a reader thread hands each to the
ingest service as it arrives, and turns anything else it prints into training
log lines. A stop sends SIGTERM (the trainer checkpoints and exits), then
SIGKILL after the grace period. Each trainer's pid is kept in a file, so a
server that restarts can end a trainer its predecessor left behind.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from whetstone.core.events import TrainerEvent, TrainerStage, parse_trainer_event
from whetstone.core.job import JobRecord, LogEntry, LogLevelName, utcnow
from whetstone.core.trainer_exit import TrainerExit
from whetstone.observability import logger
from whetstone.ports import ComputeState, ComputeStatus, LogStore

EventSink = Callable[[TrainerEvent], None]


@dataclass
class _Run:
    process: subprocess.Popen[bytes]
    stage: TrainerStage
    readers: list[threading.Thread] = field(default_factory=list)


class SubprocessCompute:
    def __init__(
        self,
        on_event: EventSink,
        logs: LogStore,
        pid_dir: Path,
        *,
        grace_s: float = 60.0,
        env: dict[str, str] | None = None,
    ) -> None:
        self._on_event = on_event
        self._logs = logs
        self._pid_dir = pid_dir
        self._grace_s = grace_s
        self._env = env
        self._runs: dict[str, _Run] = {}
        self._lock = threading.Lock()

    def launch(
        self, job: JobRecord, plan_uri: str, image: str, stage: TrainerStage = TrainerStage.TRAIN
    ) -> None:
        """`image` is the Python interpreter of the local environment."""
        env = {**os.environ, **(self._env or {}), "PYTHONUNBUFFERED": "1"}
        process = subprocess.Popen(
            [image or sys.executable, "-m", "trainer", stage.value, "--spec", plan_uri],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            env=env,
        )
        self._pid_dir.mkdir(parents=True, exist_ok=True)
        self._pid_file(job.job_id).write_text(str(process.pid))
        run = _Run(process, stage)
        assert process.stdout is not None and process.stderr is not None
        for stream, level in ((process.stdout, "info"), (process.stderr, "warning")):
            reader = threading.Thread(
                target=self._read, args=(job.job_id, stream, level), daemon=True
            )
            reader.start()
            run.readers.append(reader)
        with self._lock:
            self._runs[job.job_id] = run

    def _pid_file(self, job_id: str) -> Path:
        return self._pid_dir / f"{job_id}.pid"

    def _read(self, job_id: str, stream: IO[bytes], level: LogLevelName) -> None:
        for raw in stream:
            line = raw.decode("utf-8", errors="replace").rstrip()
            if not line:
                continue
            try:
                event = parse_trainer_event(line) if line.startswith("{") else None
            except ValueError:
                event = None
            try:
                if event is not None and event.job_id == job_id:
                    self._on_event(event)
                else:
                    entry = LogEntry(time=utcnow(), source="training", level=level, message=line)
                    self._logs.append(job_id, [entry])
            except Exception:
                logger.exception("trainer output not recorded", job_id=job_id)

    def status(self, job: JobRecord, stage: TrainerStage = TrainerStage.TRAIN) -> ComputeStatus:
        with self._lock:
            run = self._runs.get(job.job_id)
        if run is None or run.stage is not stage:
            return ComputeStatus(state=ComputeState.MISSING, message=f"no {stage} process")
        code = run.process.poll()
        if code is None:
            return ComputeStatus(state=ComputeState.RUNNING)
        for reader in run.readers:  # every event is ingested before the verdict
            reader.join()
        if code == TrainerExit.DONE:
            return ComputeStatus(state=ComputeState.SUCCEEDED)
        how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
        return ComputeStatus(state=ComputeState.FAILED, message=f"the trainer {how}")

    def stop(self, job: JobRecord) -> None:
        with self._lock:
            run = self._runs.pop(job.job_id, None)
        pid_file = self._pid_file(job.job_id)
        if run is None:
            self._end_orphan(job.job_id, pid_file)
        elif run.process.poll() is None:
            run.process.terminate()
            try:
                run.process.wait(timeout=self._grace_s)
            except subprocess.TimeoutExpired:
                logger.warning("trainer ignored SIGTERM; killing it", job_id=job.job_id)
                run.process.kill()
                run.process.wait()
        if run is not None:
            for reader in run.readers:
                reader.join(timeout=5)
        pid_file.unlink(missing_ok=True)

    def _end_orphan(self, job_id: str, pid_file: Path) -> None:
        """End a trainer a previous server started for this job, if it still runs."""
        import psutil

        if not pid_file.exists():
            return
        try:
            process = psutil.Process(int(pid_file.read_text()))
            if "trainer" not in process.cmdline():
                return  # the pid was reused by something else
            logger.warning("ending a trainer left by a previous server", job_id=job_id)
            process.terminate()
            process.wait(timeout=self._grace_s)
        except psutil.TimeoutExpired:
            process.kill()
        except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
            pass
