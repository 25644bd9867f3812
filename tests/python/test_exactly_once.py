"""End-to-end exactly-once through whole jobs: Kafka source offsets and the
exactly-once Kafka and file sinks with checkpoints, a job stopped without
warning (cancel) and restarted from its latest checkpoint at another
parallelism. Output is read back with confluent-kafka (read_committed) and
pyarrow, and compared with the input computed in plain Python.

Connector-level cases (a sink instance dropped between SnapshotState and
NotifyCheckpointComplete, commit markers, zombie fencing, rescaled restores)
are in cpp/src/sabot/connectors/{kafka,file}/*_checkpoint_test.cc; the kill -9
chaos run is tests/chaos/chaos.py.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sabot as sb

BOOTSTRAP = sb.kafka.DEFAULT_BOOTSTRAP
SCHEMA = pa.schema([("id", pa.int64()), ("v", pa.int64())])

pytestmark = pytest.mark.kafka


@pytest.fixture(scope="module", autouse=True)
def broker() -> str:
    if not sb.kafka.broker_available(BOOTSTRAP):
        if os.environ.get("SABOT_REQUIRE_KAFKA") == "1":
            pytest.fail(f"no Kafka broker at {BOOTSTRAP}; run make kafka-up")
        pytest.skip(f"no Kafka broker at {BOOTSTRAP} (make kafka-up)")
    return BOOTSTRAP


@pytest.fixture
def new_topic() -> Iterator[Callable[[int], str]]:
    created: list[str] = []

    def make(partitions: int = 1) -> str:
        name = f"eos-{uuid.uuid4().hex[:12]}"
        sb.kafka.create_topic(name, partitions)
        created.append(name)
        return name

    yield make
    for name in created:
        sb.kafka.delete_topic(name)


def produce(topic: str, ids: range) -> None:
    from confluent_kafka import Producer

    p = Producer({"bootstrap.servers": BOOTSTRAP, "enable.idempotence": True, "linger.ms": 5})
    for i in ids:
        p.produce(topic, json.dumps({"id": i, "v": i % 7}).encode(), str(i).encode())
        if i % 5000 == 0:
            p.poll(0)
    assert p.flush(60) == 0


def read(topic: str, committed: bool = True) -> list[dict]:
    """Every message of `topic` up to its end (the last stable offset when
    read_committed), decoded from JSON."""
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer(
        {
            "bootstrap.servers": BOOTSTRAP,
            "group.id": f"reader-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "isolation.level": "read_committed" if committed else "read_uncommitted",
        }
    )
    parts = c.list_topics(topic, timeout=10).topics[topic].partitions
    c.assign([TopicPartition(topic, p, 0) for p in parts])
    out, at_end = [], set()
    deadline = time.monotonic() + 60
    while len(at_end) < len(parts) and time.monotonic() < deadline:
        for m in c.consume(1000, timeout=0.5):
            if m.error():
                at_end.add(m.partition())
                continue
            at_end.discard(m.partition())
            out.append(json.loads(m.value()))
    c.close()
    assert len(at_end) == len(parts), f"did not reach the end of {topic}"
    return out


def wait_until(predicate: Callable[[], bool], timeout: float = 60.0) -> bool:
    tick = threading.Event()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        tick.wait(0.05)
    return predicate()


def pipeline(env: sb.Environment, source_topic: str, p: int, **source: object) -> sb.DataStream:
    stream = sb.kafka.source(
        env,
        source_topic,
        format="json",
        schema=SCHEMA,
        assignment="static",
        start="earliest",
        parallelism=p,
        **source,
    ).uid("source")
    return stream.select("id", w=sb.col("v") * 10).uid("double")


def test_kafka_to_kafka_exactly_once_across_a_restart_at_another_parallelism(
    new_topic, tmp_path: Path
) -> None:
    source, out = new_topic(4), new_topic(2)
    produce(source, range(0, 20_000))
    job = f"eos-{uuid.uuid4().hex[:8]}"
    ckpt = str(tmp_path / "ckpt")

    env = sb.Environment(parallelism=2)
    pipeline(env, source, 2).write_kafka(out, delivery="exactly_once", uid="out", key="id")
    handle = env.start(checkpoint_dir=ckpt, checkpoint_interval_ms=100, job_name=job)
    assert handle.await_checkpoints(3, timeout=60)
    handle.cancel()  # no end of input, no final commit: as if the process died
    handle.wait()
    partial = Counter(r["id"] for r in read(out))
    assert all(n == 1 for n in partial.values())  # never twice, even so far

    produce(source, range(20_000, 30_000))
    env = sb.Environment(parallelism=3)
    stats = pipeline(env, source, 3, stop_at_end=True).write_kafka(
        out, delivery="exactly_once", uid="out", key="id"
    )
    result = env.execute(checkpoint_dir=ckpt, restore="latest", job_name=job)
    rows = read(out)
    assert Counter(r["id"] for r in rows) == Counter(range(30_000))  # each exactly once
    assert all(r["w"] == (r["id"] % 7) * 10 for r in rows)
    assert result is not None and stats.snapshot()["pending_bytes"] == 0


def test_output_appears_only_when_its_checkpoint_completes(new_topic, tmp_path: Path) -> None:
    source, out = new_topic(2), new_topic(1)
    produce(source, range(500))
    env = sb.Environment(parallelism=1)
    stats = pipeline(env, source, 1).write_kafka(out, delivery="exactly_once", uid="out")
    handle = env.start(
        checkpoint_dir=str(tmp_path / "ckpt"), job_name=f"eos-{uuid.uuid4().hex[:8]}"
    )
    try:
        # Every row reached the sink, which holds it until a checkpoint completes.
        assert wait_until(lambda: stats.snapshot()["pending_bytes"] > 0)
        assert wait_until(lambda: handle.metrics()["operators"][-1]["rows_in"] == 500)
        assert read(out, committed=False) == []  # not even produced yet
        handle.trigger_checkpoint()
        assert handle.await_checkpoints(1, timeout=60)
        assert wait_until(lambda: stats.snapshot()["transactions"] == 1)
        assert sorted(r["id"] for r in read(out)) == list(range(500))
    finally:
        handle.cancel()
        handle.wait()


def test_source_commits_checkpointed_offsets_for_monitoring(new_topic, tmp_path: Path) -> None:
    from confluent_kafka import Consumer, TopicPartition

    source = new_topic(2)
    produce(source, range(1000))
    group = f"monitor-{uuid.uuid4().hex[:8]}"
    env = sb.Environment(parallelism=1)
    stream = pipeline(env, source, 1, group=group)
    stream.discard()
    handle = env.start(checkpoint_dir=str(tmp_path / "ckpt"), job_name=group)

    def committed() -> int:
        c = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": group})
        offsets = c.committed([TopicPartition(source, p) for p in range(2)], timeout=10)
        c.close()
        return sum(max(0, tp.offset) for tp in offsets)

    try:
        assert wait_until(lambda: handle.metrics()["operators"][-1]["rows_in"] == 1000)
        assert committed() == 0  # static assignment: nothing before a checkpoint
        handle.trigger_checkpoint()
        assert handle.await_checkpoints(1, timeout=60)
        assert wait_until(lambda: committed() == 1000)
    finally:
        handle.cancel()
        handle.wait()


def test_file_sink_exactly_once_across_a_restart(new_topic, tmp_path: Path) -> None:
    source = new_topic(3)
    produce(source, range(12_000))
    out, ckpt = tmp_path / "out", str(tmp_path / "ckpt")
    job = f"files-{uuid.uuid4().hex[:8]}"

    env = sb.Environment(parallelism=2)
    pipeline(env, source, 2, batch_size=500).write_parquet(out)
    handle = env.start(checkpoint_dir=ckpt, checkpoint_interval_ms=50, job_name=job)
    assert handle.await_checkpoints(2, timeout=60)
    handle.cancel()
    handle.wait()
    visible = [f for f in out.iterdir() if not f.name.startswith(".")]
    assert all(f.name.startswith("part-") and f.suffix == ".parquet" for f in visible)

    produce(source, range(12_000, 15_000))
    env = sb.Environment(parallelism=1)
    pipeline(env, source, 1, stop_at_end=True).write_parquet(out)
    env.execute(checkpoint_dir=ckpt, restore="latest", job_name=job)
    files = sorted(f for f in out.iterdir() if not f.name.startswith("."))
    assert not [f for f in out.iterdir() if f.name.endswith(".inprogress")]
    ids = pa.concat_tables([pq.read_table(f) for f in files])["id"].to_pylist()
    assert Counter(ids) == Counter(range(15_000))
