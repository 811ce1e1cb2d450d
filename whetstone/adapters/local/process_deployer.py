"""Deployments on this machine: one `python -m whetstone.serving` subprocess per job.

An adapter's server also answers the job's base model under the job's `base_model` (the
adapter off), as the deployment's `base_model` records.

A watcher thread waits for the server to answer, then asks it the golden prompt
and compares its greedy answer with the saved model's, computed in this process;
only then is the deployment ready. The server's pid is kept in a file, so a
restarted `whet serve` can still stop a server its predecessor started.

Each start is a new generation: its files are `<job>.<generation>.{pid,log,key}`, so a
deploy that lost a race to another deploy of the same job stops only its own server. The
server requires the key in `<job>.<generation>.key` (0600, in a 0700 folder: only the user
running the platform reads it) or a `whet token` of the job's organization.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from whetstone.core.job import Deployment, JobRecord, utcnow
from whetstone.core.layout import OutputNames
from whetstone.core.server_keys import new_generation, new_server_key
from whetstone.core.serving import (
    GOLDEN_MAX_TOKENS,
    GOLDEN_MESSAGES,
    GoldenRecord,
    check_golden,
)
from whetstone.core.spec import ADAPTER_METHODS
from whetstone.core.tokens import hash_token
from whetstone.observability import logger
from whetstone.service.serving_metrics import requests_answered
from whetstone.service.serving_requests import post_json

# (model_dir, base_model) -> the saved model's greedy answer to the golden prompt.
GoldenAnswer = Callable[[str, str | None], str]
_POLL_S = 0.25
_LOG_TAIL_CHARS = 2000


def saved_model_answer(model_dir: str, base_model: str | None) -> str:
    """The saved model's greedy answer to the golden prompt: the one the trainer recorded
    beside the model, or else computed by loading the model in this process."""
    recorded = Path(model_dir).parent / OutputNames.GOLDEN
    if recorded.is_file():
        return GoldenRecord.model_validate_json(recorded.read_text()).answer
    from whetstone.inference.generation import ChatModel, golden_answer

    return golden_answer(ChatModel.load(model_dir, base_model))


def _name(job_id: str, generation: str | None) -> str:
    """The stem of a deployment's run files (a deployment from before generations: the
    job id alone)."""
    return f"{job_id}.{generation}" if generation else job_id


def _recorded_name(job: JobRecord) -> str:
    return _name(job.job_id, job.deployment.generation if job.deployment else None)


def free_port(host: str) -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


def _write_private(path: Path, text: str) -> None:
    """Create `path` readable by its owner only, from its first byte."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)


def _bearer(key: str | None) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"} if key else {}


@dataclass
class _Served:
    process: subprocess.Popen[bytes]
    deployment: Deployment
    log_path: Path
    key: str


class ProcessDeployer:
    def __init__(
        self,
        run_dir: Path,
        *,
        python: str = sys.executable,
        host: str = "127.0.0.1",
        ready_timeout_s: float = 600.0,
        stop_grace_s: float = 10.0,
        golden_answer: GoldenAnswer = saved_model_answer,
        tokens_home: Path | None = None,
    ) -> None:
        self._run_dir = run_dir
        self._tokens_home = tokens_home
        self._python = python
        self._host = host
        self._ready_timeout_s = ready_timeout_s
        self._stop_grace_s = stop_grace_s
        self._golden_answer = golden_answer
        self._served: dict[str, _Served] = {}
        self._lock = threading.Lock()

    def start(
        self, job: JobRecord, model_uri: str, *, base_model: str | None, max_lora_rank: int
    ) -> Deployment:
        self._run_dir.mkdir(parents=True, exist_ok=True)
        self._run_dir.chmod(0o700)  # the keys lie here
        generation = new_generation()
        name = _name(job.job_id, generation)
        key = new_server_key()
        _write_private(self._key_file(name), key)
        port = free_port(self._host)
        command = [self._python, "-m", "whetstone.serving", "--model-dir", model_uri]
        command += ["--host", self._host, "--port", str(port), "--name", job.job_id]
        command += ["--key-file", str(self._key_file(name))]
        if self._tokens_home is not None:
            command += ["--org", job.org_id, "--tokens-home", str(self._tokens_home)]
        if base_model:
            command += ["--base", base_model]
        served_base = job.spec.base_model if job.spec.tuning_method in ADAPTER_METHODS else None
        if served_base:
            command += ["--base-name", served_base]
        log_path = self._log_file(name)
        try:
            with log_path.open("wb") as log:
                process = subprocess.Popen(
                    command,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    env={**os.environ, "PYTHONUNBUFFERED": "1"},
                )
        except OSError:
            self._remove(name, None)  # nothing runs: its files go
            raise
        self._pid_file(name).write_text(str(process.pid))
        now = utcnow()
        deployment = Deployment(
            status="starting",
            model=job.job_id,
            base_model=served_base,
            endpoint=f"http://{self._host}:{port}/v1",
            pid=process.pid,
            max_lora_rank=max_lora_rank,
            created_at=now,
            updated_at=now,
            message="loading the model",
            generation=generation,
            key_sha256=hash_token(key),
        )
        served = _Served(process, deployment, log_path, key)
        with self._lock:
            self._served[name] = served
        threading.Thread(
            target=self._watch, args=(name, served, model_uri, base_model), daemon=True
        ).start()
        logger.info("deployment started", job_id=job.job_id, pid=process.pid, port=port)
        return deployment

    def status(self, job: JobRecord) -> Deployment:
        recorded = job.deployment
        with self._lock:
            served = self._served.get(_recorded_name(job))
        if served is not None:
            return served.deployment
        if recorded is None or not recorded.is_live:
            raise LookupError(f"job {job.job_id} has no live deployment")
        if (
            recorded.status == "ready"
            and recorded.endpoint
            and self._answers(recorded.endpoint, self._key(_recorded_name(job)))
        ):
            return recorded  # served by a process a previous server started
        return recorded.model_copy(
            update={
                "status": "failed",
                "pid": None,
                "updated_at": utcnow(),
                "message": "the server of this deployment is gone (the platform restarted "
                "while it started, or it crashed); deploy again",
            }
        )

    def stop(self, job: JobRecord) -> None:
        pid = job.deployment.pid if job.deployment is not None else None
        self._remove(_recorded_name(job), pid)
        logger.info("deployment stopped", job_id=job.job_id)

    def request_headers(self, job: JobRecord) -> dict[str, str]:
        """What a request to the job's server must carry: its key."""
        return _bearer(self._key(_recorded_name(job)))

    def served_job_ids(self) -> list[str]:
        """Jobs whose server this deployer started, or a previous one did (its pid file)."""
        with self._lock:
            served = set(self._served)
        found = {path.stem for path in self._run_dir.glob("*.pid")}
        return sorted({name.split(".", 1)[0] for name in served | found})

    def requests_answered(self, job: JobRecord) -> int | None:
        """The local server's request counter, from its /metrics."""
        endpoint = job.deployment.endpoint if job.deployment else None
        if not endpoint:
            return None
        try:
            request = urllib.request.Request(
                endpoint.removesuffix("/v1") + "/metrics", headers=self.request_headers(job)
            )
            with urllib.request.urlopen(request, timeout=2) as response:
                return requests_answered(response.read().decode(errors="replace"))
        except (OSError, ValueError):
            return None

    def remove_orphan(self, job_id: str) -> None:
        """End the servers of a job that has no record (found by their pid files)."""
        with self._lock:
            names = {name for name in self._served if name.split(".", 1)[0] == job_id}
        # `<job>.pid` (before generations) and `<job>.<generation>.pid`
        names |= {path.stem for path in self._run_dir.glob(f"{job_id}.*pid")}
        for name in sorted(names):
            pid_file = self._pid_file(name)
            text = pid_file.read_text().strip() if pid_file.is_file() else ""
            self._remove(name, int(text) if text.isdigit() else None)

    def _remove(self, name: str, pid: int | None) -> None:
        with self._lock:
            served = self._served.pop(name, None)
        if served is not None:
            self._end(served.process)
        elif pid is not None:
            self._end_orphan(name, pid)
        self._pid_file(name).unlink(missing_ok=True)
        self._key_file(name).unlink(missing_ok=True)
        self._log_file(name).unlink(missing_ok=True)  # a failure's tail is in its message

    def _log_file(self, name: str) -> Path:
        return self._run_dir / f"{name}.log"

    def _pid_file(self, name: str) -> Path:
        return self._run_dir / f"{name}.pid"

    def _key_file(self, name: str) -> Path:
        return self._run_dir / f"{name}.key"

    def _key(self, name: str) -> str | None:
        with self._lock:
            served = self._served.get(name)
        if served is not None:
            return served.key
        try:
            return self._key_file(name).read_text(encoding="utf-8").strip() or None
        except OSError:
            return None

    def _end(self, process: subprocess.Popen[bytes]) -> None:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=self._stop_grace_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def _end_orphan(self, name: str, pid: int) -> None:
        import psutil

        try:
            process = psutil.Process(pid)
            if "whetstone.serving" not in process.cmdline():
                return  # the pid was reused by something else
            logger.warning(
                "ending a model server left by a previous server", job_id=name.split(".")[0]
            )
            process.terminate()
            process.wait(timeout=self._stop_grace_s)
        except psutil.TimeoutExpired:
            process.kill()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass

    def _update(self, name: str, served: _Served, **changes: Any) -> None:
        with self._lock:
            if self._served.get(name) is not served:
                return  # stopped meanwhile: the record is the service's now
            changes["updated_at"] = utcnow()
            served.deployment = served.deployment.model_copy(update=changes)

    def _fail(self, name: str, served: _Served, message: str, **changes: Any) -> None:
        logger.warning("deployment failed", job_id=served.deployment.model, reason=message)
        self._end(served.process)
        self._update(name, served, status="failed", pid=None, message=message, **changes)

    def _watch(self, name: str, served: _Served, model_uri: str, base: str | None) -> None:
        expected: dict[str, str] = {}

        def compute_expected() -> None:
            try:
                expected["answer"] = self._golden_answer(model_uri, base)
            except Exception as error:
                expected["error"] = f"{type(error).__name__}: {error}"

        golden = threading.Thread(target=compute_expected, daemon=True)
        golden.start()
        endpoint = served.deployment.endpoint or ""
        deadline = time.monotonic() + self._ready_timeout_s
        while not self._answers(endpoint, served.key):
            code = served.process.poll()
            if code is not None:
                self._fail(
                    name,
                    served,
                    f"the model server exited with code {code}: " + self._log_tail(served.log_path),
                )
                return
            if time.monotonic() > deadline:
                self._fail(
                    name,
                    served,
                    f"the model server did not answer within "
                    f"{self._ready_timeout_s:.0f} s: " + self._log_tail(served.log_path),
                )
                return
            time.sleep(_POLL_S)
        self._update(name, served, message="checking the golden prompt")
        golden.join()
        if "error" in expected:
            self._fail(
                name,
                served,
                "the saved model could not be loaded to compute the "
                f"golden answer: {expected['error']}",
            )
            return
        try:
            served_answer = self._ask_golden(endpoint, served.deployment.model, served.key)
        except (OSError, ValueError, KeyError) as error:
            self._fail(name, served, f"the golden prompt request failed: {error}")
            return
        problem = check_golden(expected["answer"], served_answer)
        if problem is not None:
            self._fail(name, served, problem.message, problems=[problem])
            return
        self._update(name, served, status="ready", message=None)
        logger.info("deployment ready", job_id=served.deployment.model, endpoint=endpoint)

    def _answers(self, endpoint: str, key: str | None) -> bool:
        try:
            request = urllib.request.Request(f"{endpoint}/models", headers=_bearer(key))
            with urllib.request.urlopen(request, timeout=2) as response:
                return bool(response.status == 200)
        except (OSError, ValueError):
            return False

    def _ask_golden(self, endpoint: str, model: str, key: str) -> str:
        body = {
            "model": model,
            "messages": list(GOLDEN_MESSAGES),
            "max_tokens": GOLDEN_MAX_TOKENS,
            "temperature": 0,
        }
        answer = post_json(f"{endpoint}/chat/completions", body, _bearer(key), timeout_s=120)
        return str(answer["choices"][0]["message"]["content"])

    @staticmethod
    def _log_tail(path: Path) -> str:
        try:
            text = path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return text[-_LOG_TAIL_CHARS:].strip() or "(empty log)"
