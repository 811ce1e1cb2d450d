"""Checkpoints published to S3 (moto): only complete ones count, rotation, and restore."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from trainer.checkpoints import CheckpointStore
from trainer.storage import S3Location

from whetstone.core.layout import CHECKPOINT_COMPLETE_MARKER, OutputNames


def _save_locally(store: CheckpointStore, step: int, best: int | None = None) -> None:
    folder = store.local_dir / f"checkpoint-{step}"
    folder.mkdir(parents=True)
    (folder / "weights.bin").write_bytes(bytes([step]) * 10)
    best_path = str(store.local_dir / f"checkpoint-{best}") if best else None
    (folder / "trainer_state.json").write_text(json.dumps({"best_model_checkpoint": best_path}))


def test_s3_checkpoints_publish_rotate_and_restore_on_a_new_node(tmp_path: Path) -> None:
    boto3 = pytest.importorskip("boto3")
    moto = pytest.importorskip("moto")
    with moto.mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="jobs")
        output = S3Location("s3://jobs/job-1", client)

        # Given a node that saved and published checkpoints 2, 4 and 6 (best: 4), keeping two
        node1 = CheckpointStore(output, tmp_path / "node-1")
        for step in (2, 4, 6):
            _save_locally(node1, step, best=4 if step == 6 else None)
            if step == 6:  # the Trainer's rotation removed the oldest before this save
                for old in node1.local_dir.glob("checkpoint-2"):
                    for f in old.iterdir():
                        f.unlink()
                    old.rmdir()
            location = node1.publish(f"checkpoint-{step}")
        # and a checkpoint 8 whose upload never finished (no marker)
        partial = f"job-1/{OutputNames.checkpoint(8)}/weights.bin"
        client.put_object(Bucket="jobs", Key=partial, Body=b"")

        # When a new node restores
        node2 = CheckpointStore(output, tmp_path / "node-2")
        restored = node2.restore_latest()

        # Then it gets the latest complete checkpoint and the best one, never the partial one
        assert location == f"s3://jobs/job-1/{OutputNames.checkpoint(6)}"
        assert node2.complete_checkpoints() == ["checkpoint-4", "checkpoint-6"]
        assert restored == node2.local_dir / "checkpoint-6"
        assert (restored / "weights.bin").read_bytes() == bytes([6]) * 10
        assert (node2.local_dir / "checkpoint-4" / "weights.bin").exists()
        assert (restored / CHECKPOINT_COMPLETE_MARKER).exists()
