"""Checkpoints at the output location, resume from the latest, and stopping on SIGTERM.

The Trainer writes `checkpoint-<step>` folders locally. Each finished one is published to
`<output>/checkpoints/` (uploaded for s3://, written in place for a folder) and then marked
complete with a marker file, so a run killed mid-upload never resumes from half a
checkpoint. A restarted run with the same output downloads the latest complete checkpoint
(and the best one, for early stopping) and the Trainer restores global step, optimizer,
scheduler, RNG and data position from it.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path
from types import FrameType

from whetstone.core.layout import CHECKPOINT_COMPLETE_MARKER, OutputNames, checkpoint_step

from .storage import Location


class CheckpointStore:
    """The checkpoints of one run: where the Trainer writes them, where they are kept."""

    def __init__(self, output: Location, workdir: Path) -> None:
        self.output = output
        in_place = output.local_path(OutputNames.CHECKPOINTS)
        self.remote = in_place is None
        self.local_dir = in_place if in_place is not None else workdir / OutputNames.CHECKPOINTS
        self.local_dir.mkdir(parents=True, exist_ok=True)

    def _rel(self, name: str) -> str:
        return OutputNames.checkpoint(name)

    def publish(self, name: str) -> str:
        """Mark a saved checkpoint complete at the output; return where it lies."""
        local = self.local_dir / name
        if self.remote:
            self.output.upload_dir(local, self._rel(name))
            self.output.write_bytes(f"{self._rel(name)}/{CHECKPOINT_COMPLETE_MARKER}", b"")
            kept = {p.name for p in self.local_dir.iterdir() if p.is_dir()}
            for remote_name in self.output.list_dirs(OutputNames.CHECKPOINTS):
                if checkpoint_step(remote_name) is not None and remote_name not in kept:
                    self.output.delete_dir(self._rel(remote_name))
        else:
            (local / CHECKPOINT_COMPLETE_MARKER).write_bytes(b"")
        return self.output.child_uri(self._rel(name))

    def complete_checkpoints(self) -> list[str]:
        names = [
            name
            for name in self.output.list_dirs(OutputNames.CHECKPOINTS)
            if checkpoint_step(name) is not None
            and self.output.exists(f"{self._rel(name)}/{CHECKPOINT_COMPLETE_MARKER}")
        ]
        return sorted(names, key=lambda n: checkpoint_step(n) or 0)

    def restore_latest(self) -> Path | None:
        """The local folder of the latest complete checkpoint, fetched if needed; or None."""
        names = self.complete_checkpoints()
        if not names:
            return None
        latest = names[-1]
        if self.remote:
            self.output.download_dir(self._rel(latest), self.local_dir / latest)
            state = json.loads((self.local_dir / latest / "trainer_state.json").read_text())
            best = Path(state.get("best_model_checkpoint") or "").name
            if best in names and best != latest:
                self.output.download_dir(self._rel(best), self.local_dir / best)
        return self.local_dir / latest


class Interrupted(Exception):
    """SIGTERM arrived while no training step was running to checkpoint from."""


class StopRequest:
    """Turns SIGTERM (spot interruption, stop) into a checkpoint and a clean exit.

    While training, the signal only sets `requested`; the stop callback then saves a
    checkpoint at the end of the current step and ends training. Outside training there is
    nothing to save, so the signal raises `Interrupted` at once.
    """

    def __init__(self) -> None:
        self.requested = False
        self.training = False

    def install(self) -> None:
        signal.signal(signal.SIGTERM, self._handle)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.requested = True
        if not self.training:
            raise Interrupted(f"signal {signum} before training")
