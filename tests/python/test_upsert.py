"""Upsert sinks: Kafka (the real broker at 127.0.0.1:19092, read back with the
confluent-kafka client as a compacted topic would keep it) and files (Parquet,
CSV), against plain-Python references of the changelog."""

from __future__ import annotations

import json
import os
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
import sabot as sb

BOOTSTRAP = sb.kafka.DEFAULT_BOOTSTRAP


def random_changelog(n: int, keys: int, seed: int) -> tuple[pa.Table, dict[int, dict]]:
    """A well-formed changelog (+I new key, -U/+U update, -D delete) and the
    plain-Python table it leaves behind."""
    rng = random.Random(seed)
    live: dict[int, dict] = {}
    rows = []
    for _ in range(n):
        k = rng.randrange(keys)
        row = {"k": k, "v": rng.randrange(1_000), "name": f"n{rng.randrange(50)}"}
        if k not in live:
            rows.append({**row, "_op": 0})
            live[k] = row
        elif rng.random() < 0.25:
            rows.append({**live.pop(k), "_op": 3})
        else:
            rows.append({**live[k], "_op": 1})
            rows.append({**row, "_op": 2})
            live[k] = row
    schema = pa.schema(
        [("k", pa.int64()), ("v", pa.int64()), ("name", pa.string()), ("_op", pa.int8())]
    )
    return pa.Table.from_pylist(rows, schema=schema), live


# -- Kafka -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def broker() -> str:
    if not sb.kafka.broker_available(BOOTSTRAP):
        if os.environ.get("SABOT_REQUIRE_KAFKA") == "1":
            pytest.fail(f"no Kafka broker at {BOOTSTRAP}; run make kafka-up")
        pytest.skip(f"no Kafka broker at {BOOTSTRAP} (make kafka-up)")
    return BOOTSTRAP


@pytest.fixture
def new_topic(broker) -> Iterator[Callable[..., str]]:
    created: list[str] = []

    def make(partitions: int = 3) -> str:
        name = f"upsert-{uuid.uuid4().hex[:12]}"
        sb.kafka.create_topic(name, partitions, config={"cleanup.policy": "compact"})
        created.append(name)
        return name

    yield make
    for name in created:
        sb.kafka.delete_topic(name)


def read_topic(topic: str, expected: int, timeout_s: float = 60.0) -> list:
    """Every message of `topic` (key, value or None, partition), read from the
    beginning with confluent-kafka, an independent client."""
    from confluent_kafka import Consumer

    consumer = Consumer(
        {
            "bootstrap.servers": BOOTSTRAP,
            "group.id": f"ref-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    out = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(out) < expected and time.monotonic() < deadline:
            for m in consumer.consume(num_messages=1000, timeout=0.5):
                if m.error():
                    raise RuntimeError(m.error())
                out.append((m.key(), m.value(), m.partition(), m.offset()))
    finally:
        consumer.close()
    return out


def compact(messages: list) -> dict[bytes, bytes]:
    """What a compacted topic keeps: the last message per key, minus tombstones.
    Order within a partition is by offset; a key lives in one partition."""
    last: dict[bytes, tuple[int, bytes | None]] = {}
    partition_of: dict[bytes, int] = {}
    for key, value, partition, offset in messages:
        assert partition_of.setdefault(key, partition) == partition, "a key in two partitions"
        if key not in last or offset > last[key][0]:
            last[key] = (offset, value)
    return {k: v for k, (_, v) in last.items() if v is not None}


@pytest.mark.parametrize("parallelism", [1, 4])
def test_kafka_upsert_of_a_changelog_with_deletes(new_topic, parallelism):
    changelog, live = random_changelog(4_000, 250, seed=parallelism)
    ops = changelog["_op"].to_pylist()
    topic = new_topic(3)
    env = sb.Environment(parallelism=parallelism)
    stats = env.from_table(changelog, batch_size=101).write_kafka_upsert(topic, key="k")
    env.execute()
    expected_messages = sum(1 for op in ops if op != 1)
    s = stats.snapshot()
    assert s["dropped_update_before"] == ops.count(1)
    assert s["tombstones"] == ops.count(3) > 0
    assert s["upserts"] + s["tombstones"] == expected_messages == s["delivered"]
    messages = read_topic(topic, expected_messages)
    assert len(messages) == expected_messages
    assert sum(1 for m in messages if m[1] is None) == ops.count(3)  # tombstones present
    kept = compact(messages)
    got = {json.loads(k)["k"]: json.loads(v) for k, v in kept.items()}
    assert got == live
    assert all(json.loads(k) == {"k": json.loads(k)["k"]} for k in kept)


def test_kafka_upsert_of_a_group_by_with_string_keys(new_topic):
    rng = random.Random(5)
    rows = [{"user": f"u{rng.randrange(40)}", "amount": rng.randrange(100)} for _ in range(3_000)]
    want: dict[str, dict] = {}
    for r in rows:
        cur = want.setdefault(r["user"], {"user": r["user"], "total": 0, "n": 0})
        cur["total"] += r["amount"]
        cur["n"] += 1
    topic = new_topic(2)
    env = sb.Environment(parallelism=2)
    totals = (
        env.from_iterable(rows, batch_size=200)
        .key_by("user")
        .aggregate(total=sb.sum("amount"), n=sb.count())
    )
    stats = totals.write_kafka_upsert(topic, key="user", key_format="string")
    env.execute()
    s = stats.snapshot()
    assert s["tombstones"] == 0 and s["dropped_update_before"] > 0
    messages = read_topic(topic, s["upserts"])
    got = {k.decode(): json.loads(v) for k, v in compact(messages).items()}
    assert got == want


def test_kafka_upsert_errors(broker):
    env = sb.Environment(parallelism=1)
    stream = env.from_table(pa.table({"k": [1]}))
    with pytest.raises(ValueError, match="key_format"):
        stream.write_kafka_upsert("t", key="k", key_format="avro")
    with pytest.raises(ValueError, match="key columns"):
        stream.write_kafka_upsert("t", key=[])
    stream.write_kafka_upsert(f"missing-{uuid.uuid4().hex[:8]}", key="k")
    with pytest.raises(sb.JobError, match="cannot write topic"):
        env.execute()


# -- files ---------------------------------------------------------------------------


def read_parts(path: Path, fmt: str) -> pa.Table:
    parts = sorted(path.glob(f"part-*.{fmt}"))
    assert parts, f"no part files in {path}"
    assert not list(path.glob(".*.tmp")), "a temporary file was left behind"
    read = pq.read_table if fmt == "parquet" else pacsv.read_csv
    return pa.concat_tables([read(p) for p in parts])


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
@pytest.mark.parametrize("parallelism", [1, 3])
def test_upsert_files_hold_the_final_table(tmp_path, fmt, parallelism):
    changelog, live = random_changelog(3_000, 200, seed=7 + parallelism)
    env = sb.Environment(parallelism=parallelism)
    files = env.from_table(changelog, batch_size=64).write_upsert_files(
        tmp_path / "out", key="k", format=fmt
    )
    env.execute()
    assert files.files_written == parallelism
    table = read_parts(tmp_path / "out", fmt)
    assert table.column_names == ["k", "v", "name"]
    assert {r["k"]: r for r in table.to_pylist()} == live


def test_upsert_file_is_rewritten_on_each_checkpoint(tmp_path):
    """The source triggers checkpoint 1 at the start of phase 2 and then waits
    until the test has read the file: once the checkpoint completed it must hold
    exactly the table of the rows before the barrier (phase 1 plus the first
    batch of phase 2)."""
    rng = random.Random(2)
    batch = 50
    phase1 = [{"user": f"u{rng.randrange(30)}", "x": rng.randrange(10)} for _ in range(10 * batch)]
    phase2 = [{"user": f"u{rng.randrange(30)}", "x": rng.randrange(10)} for _ in range(6 * batch)]
    job_box: dict[str, sb.JobHandle] = {}
    started, checked = threading.Event(), threading.Event()

    def rows() -> Iterator[dict]:
        yield from phase1
        started.wait(30)
        job_box["job"].trigger_checkpoint(1)
        yield from phase2[:batch]
        checked.wait(60)
        yield from phase2[batch:]

    def sums(rs: list[dict]) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in rs:
            out[r["user"]] = out.get(r["user"], 0) + r["x"]
        return out

    env = sb.Environment(parallelism=2, num_threads=3)
    totals = env.from_iterable(rows(), batch_size=batch).key_by("user").aggregate(s=sb.sum("x"))
    files = totals.write_upsert_files(tmp_path / "sums", key="user")
    job = env.start()
    job_box["job"] = job
    started.set()
    try:
        deadline = time.monotonic() + 60
        while job.metrics()["completed_checkpoints"] < 1 and time.monotonic() < deadline:
            threading.Event().wait(0.01)
        assert job.metrics()["completed_checkpoints"] == 1
        # Each instance renames its pre-committed file when notified.
        while files.files_written < 2 and time.monotonic() < deadline:
            threading.Event().wait(0.01)
        assert files.files_written == 2
        table = read_parts(tmp_path / "sums", "parquet")
        assert {r["user"]: r["s"] for r in table.to_pylist()} == sums(phase1 + phase2[:batch])
    finally:
        checked.set()
    job.wait()
    assert files.files_written == 4  # and again at the end
    table = read_parts(tmp_path / "sums", "parquet")
    assert {r["user"]: r["s"] for r in table.to_pylist()} == sums(phase1 + phase2)
