"""Checkpoints, savepoints and restore from Python, and the CLI path."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sabot as sb
from conftest import rows
from sabot import checkpoint

SABOT = str(Path(sys.executable).parent / "sabot")


def bids(env: sb.Environment, events: int, parallelism: int, rate_limit: int = 0) -> sb.DataStream:
    stream = sb.nexmark.bids(env, events=events, parallelism=parallelism, rate_limit=rate_limit)
    return stream.select("auction", "bidder", "price", "dateTime")


def uninterrupted(events: int, parallelism: int) -> pa.Table:
    env = sb.Environment(parallelism=parallelism, num_threads=2)
    return bids(env, events, parallelism).to_table()


def wait_for(condition, timeout: float = 60.0) -> bool:
    """Polls ``condition`` until it holds or ``timeout`` seconds passed."""
    pause = threading.Event()
    waited = 0.0
    while not condition():
        if waited > timeout:
            return False
        pause.wait(0.01)
        waited += 0.01
    return True


def test_options_are_checked(tmp_path: Path) -> None:
    env = sb.Environment(parallelism=1)
    sb.nexmark.bids(env, events=1000).discard()
    with pytest.raises(TypeError, match="unknown job option 'checkpoint_dirr'"):
        env.execute(checkpoint_dirr=str(tmp_path))
    with pytest.raises(TypeError, match="checkpoint_interval_ms must be an int"):
        env.execute(checkpoint_dir=tmp_path, checkpoint_interval_ms="10")
    with pytest.raises(TypeError, match="unaligned_checkpoints must be a bool"):
        env.execute(checkpoint_dir=tmp_path, unaligned_checkpoints=1)
    with pytest.raises(ValueError, match="retain_checkpoints"):
        env.execute(checkpoint_dir=tmp_path, retain_checkpoints=0)
    with pytest.raises(ValueError, match="needs checkpoint_dir"):
        env.execute(checkpoint_interval_ms=100)
    with pytest.raises(ValueError, match="restore='latest' needs checkpoint_dir"):
        env.execute(restore="latest")
    with pytest.raises(ValueError, match="state_backend"):
        env.execute(state_backend="leveldb")
    with pytest.raises(sb.JobError, match="does not exist"):
        env.execute(restore=str(tmp_path / "nowhere"))
    # Accepted options run the job.
    result = env.execute(
        checkpoint_dir=tmp_path / "ckpt",
        checkpoint_interval_ms=1000,
        retain_checkpoints=2,
        tolerable_checkpoint_failures=0,
        unaligned_checkpoints=True,
        job_name="options",
        state_backend="memory",
        state_dir=tmp_path / "state",
    )
    assert result.operator("nexmark_source").get("rows_out") == 1000 * 46 // 50


def test_periodic_checkpoints_are_durable_and_retained(tmp_path: Path) -> None:
    env = sb.Environment(parallelism=2, num_threads=2)
    bids(env, 2_000_000, 2, rate_limit=50_000).discard()
    handle = env.start(
        checkpoint_dir=tmp_path / "ckpt",
        checkpoint_interval_ms=20,
        retain_checkpoints=2,
        job_name="py-checkpoints",
    )
    assert handle.await_checkpoints(4), handle.checkpoint_stats()
    handle.cancel()
    handle.wait()
    stats = handle.checkpoint_stats()
    assert stats["completed"] >= 4
    assert stats["failed"] == 0
    assert stats["last_failure"] == ""
    completed = sorted(
        p.name for p in (tmp_path / "ckpt").glob("chk-*") if (p / "_metadata").exists()
    )
    assert len(completed) == 2
    latest = checkpoint.latest_checkpoint(tmp_path / "ckpt")
    assert latest is not None
    assert Path(latest).name == max(completed, key=lambda name: int(name[4:]))
    assert checkpoint.verify(latest) == latest
    metadata = checkpoint.read_metadata(latest)
    assert metadata["kind"] == "checkpoint"
    assert metadata["job_name"] == "py-checkpoints"
    assert metadata["max_parallelism"] == 128
    source = next(op for op in metadata["operators"] if op["uid"] == "nexmark_source#0")
    assert source["parallelism"] == 2
    positions = [row for inst in source["instances"] for row in inst["positions"]["splits"]]
    assert sorted(row["split"] for row in positions) == [0, 1]
    assert all(row["events"] > 0 for row in positions)


@pytest.mark.parametrize("new_parallelism", [1, 3])
def test_stop_with_savepoint_then_restore_emits_every_row_once(
    tmp_path: Path, new_parallelism: int
) -> None:
    events = 300_000
    env = sb.Environment(parallelism=2, num_threads=2)
    first = bids(env, events, 2, rate_limit=30_000).collect()
    handle = env.start(checkpoint_dir=tmp_path / "ckpt")
    assert wait_for(lambda: handle.metrics()["operators"][0]["rows_out"] > 5_000)
    savepoint = handle.stop_with_savepoint(tmp_path / "savepoint")
    handle.wait()
    assert checkpoint.read_metadata(savepoint)["kind"] == "savepoint"
    assert handle.checkpoint_stats()["savepoints"] == 1

    env2 = sb.Environment(parallelism=new_parallelism, num_threads=2)
    second = bids(env2, events, new_parallelism).collect()
    env2.execute(restore=savepoint)
    assert 0 < first.num_rows < events
    assert second.num_rows > 0
    both = pa.concat_tables([first.table(), second.table()])
    assert rows(both) == rows(uninterrupted(events, 2))


def test_savepoint_of_a_running_job_holds_batch_positions(tmp_path: Path) -> None:
    # 400 batches over 2 splits; a Python map behind a rebalance holds the job
    # until the savepoint was requested (backpressure keeps the sources busy
    # until the savepoint completed).
    table = pa.table({"n": pa.array(range(40_000), pa.int64())})
    batches = table.to_batches(max_chunksize=100)
    release = threading.Event()

    def held(batch: pa.RecordBatch) -> pa.RecordBatch:
        release.wait(60)
        return batch

    env = sb.Environment(parallelism=2, num_threads=2, channel_max_rows=2000)
    everything = env.from_batches(batches, parallelism=2).rebalance().map(held).collect()
    handle = env.start(checkpoint_dir=tmp_path / "ckpt")
    result: dict[str, str] = {}
    taker = threading.Thread(target=lambda: result.update(path=handle.savepoint(tmp_path / "sp")))
    taker.start()
    assert wait_for(lambda: handle.checkpoint_stats()["in_progress_id"] > 0)
    release.set()
    taker.join(60)
    handle.wait()
    assert everything.num_rows == 40_000  # the savepoint did not stop the job

    metadata = checkpoint.read_metadata(result["path"])
    source = next(op for op in metadata["operators"] if op["uid"] == "batches_source#0")
    positions = [row for inst in source["instances"] for row in inst["positions"]["splits"]]
    assert sorted(row["split"] for row in positions) == [0, 1]
    # What the restored run must emit: each split's batches from its position.
    remaining = [
        b
        for row in positions
        for i, b in enumerate(batches)
        if i % row["num_splits"] == row["split"] and i >= row["next"]
    ]
    assert len(remaining) < len(batches)
    env2 = sb.Environment(parallelism=3, num_threads=2)
    restored = (
        env2.from_batches(batches, parallelism=3)
        .rebalance()
        .map(held)
        .to_table(restore=result["path"])
    )
    want = pa.Table.from_batches(remaining, schema=table.schema) if remaining else table.slice(0, 0)
    assert rows(restored) == rows(want)


def test_failed_checkpoints_fail_the_job_after_tolerable_failures(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    env = sb.Environment(parallelism=1)
    bids(env, 5_000_000, 1, rate_limit=50_000).discard()
    with pytest.raises(sb.JobError, match="2 consecutive failed checkpoints") as info:
        env.execute(
            checkpoint_dir=blocker, checkpoint_interval_ms=10, tolerable_checkpoint_failures=1
        )
    assert str(blocker) in str(info.value)


def test_uids_name_state_across_plan_changes(tmp_path: Path) -> None:
    env = sb.Environment(parallelism=1)
    sb.nexmark.bids(env, events=2_000_000, rate_limit=50_000).uid("bids").discard()
    handle = env.start(checkpoint_dir=tmp_path / "ckpt")
    assert wait_for(lambda: handle.metrics()["operators"][0]["rows_out"] > 0)
    assert handle.trigger_checkpoint() == 1
    assert handle.await_checkpoints(1)
    handle.cancel()
    handle.wait()
    latest = checkpoint.latest_checkpoint(tmp_path / "ckpt")
    assert [op["uid"] for op in checkpoint.read_metadata(latest)["operators"]] == ["bids"]

    renamed = sb.Environment(parallelism=1)
    sb.nexmark.bids(renamed, events=2_000_000).discard()  # uid now nexmark_source#0
    with pytest.raises(sb.JobError, match="'bids'.*allow_non_restored_state"):
        renamed.execute(checkpoint_dir=tmp_path / "ckpt", restore="latest")
    again = sb.Environment(parallelism=1)
    kept = sb.nexmark.bids(again, events=2_000_000).uid("bids").collect()
    again.execute(checkpoint_dir=tmp_path / "ckpt", restore="latest")
    assert 0 < kept.num_rows < 2_000_000 * 46 // 50


JOB = """
import sys

import pyarrow.parquet as pq
import sabot as sb

out, ckpt, rate = sys.argv[1], sys.argv[2], int(sys.argv[3])
env = sb.Environment(parallelism=2, num_threads=2)
stream = sb.nexmark.bids(env, events=300_000, parallelism=2, rate_limit=rate)
collected = stream.select("auction", "bidder", "price", "dateTime").collect()
env.execute(checkpoint_dir=ckpt, checkpoint_interval_ms=50, job_name="cli-job")
pq.write_table(collected.table(), out)
"""


def test_cli_savepoint_stop_and_run_restore(tmp_path: Path) -> None:
    job = tmp_path / "job.py"
    job.write_text(JOB)
    ckpt = tmp_path / "ckpt"
    first = subprocess.Popen(
        [SABOT, "run", str(job), str(tmp_path / "out1.parquet"), str(ckpt), "30000"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert wait_for(lambda: checkpoint.latest_checkpoint(ckpt) is not None)
        taken = subprocess.run(
            [SABOT, "savepoint", str(ckpt), "--stop", "--path", str(tmp_path / "sp")],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert taken.returncode == 0, taken.stderr
        answer = json.loads(taken.stdout)
        assert answer["path"] == str(tmp_path / "sp")
        _, err = first.communicate(timeout=120)
        assert first.returncode == 0, err
    finally:
        if first.poll() is None:
            first.kill()
    second = subprocess.run(
        [
            SABOT,
            "run",
            "--restore",
            answer["path"],
            str(job),
            str(tmp_path / "out2.parquet"),
            str(tmp_path / "ckpt2"),
            "0",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert second.returncode == 0, second.stderr
    assert "restoring from savepoint" in second.stderr
    out1 = pq.read_table(tmp_path / "out1.parquet")
    out2 = pq.read_table(tmp_path / "out2.parquet")
    assert out1.num_rows > 0 and out2.num_rows > 0
    assert rows(pa.concat_tables([out1, out2])) == rows(uninterrupted(300_000, 2))


def test_cli_savepoint_without_a_running_job_fails_clearly(tmp_path: Path) -> None:
    (tmp_path / "ckpt").mkdir()
    taken = subprocess.run(
        [SABOT, "savepoint", str(tmp_path / "ckpt"), "--timeout", "0.5"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert taken.returncode == 1
    assert "no running job took the savepoint request" in taken.stderr
    assert not (tmp_path / "ckpt" / "_savepoint_request").exists()
