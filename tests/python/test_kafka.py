"""The Kafka source and sink against a real broker (``make kafka-up``).

Every test creates its own topics. References are independent clients: the
confluent-kafka Python client (PyPI), kcat (Debian) and Kafka's own Java console
producer (from the broker's jars). Run apart with ``pytest -m kafka``; skipped when
no broker is reachable, unless SABOT_REQUIRE_KAFKA=1 (``make test`` sets it).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pyarrow as pa
import pytest
import sabot as sb

ROOT = Path(__file__).resolve().parents[2]
BOOTSTRAP = sb.kafka.DEFAULT_BOOTSTRAP

pytestmark = pytest.mark.kafka


@pytest.fixture(scope="module", autouse=True)
def broker() -> str:
    if not sb.kafka.broker_available(BOOTSTRAP):
        if os.environ.get("SABOT_REQUIRE_KAFKA") == "1":
            pytest.fail(f"no Kafka broker at {BOOTSTRAP}; run make kafka-up")
        pytest.skip(f"no Kafka broker at {BOOTSTRAP} (make kafka-up)")
    return BOOTSTRAP


@pytest.fixture
def new_topic() -> Iterator[Callable[..., str]]:
    created: list[str] = []

    def make(partitions: int = 1, **config: object) -> str:
        name = f"test-{uuid.uuid4().hex[:12]}"
        sb.kafka.create_topic(name, partitions, config=config)
        created.append(name)
        return name

    yield make
    for name in created:
        sb.kafka.delete_topic(name)


def confluent_producer(**extra: object):
    from confluent_kafka import Producer

    return Producer({"bootstrap.servers": BOOTSTRAP, **extra})


def confluent_read_all(topic: str, expected: int, timeout_s: float = 30.0) -> list:
    """Reads `expected` messages of `topic` from the beginning with confluent-kafka."""
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
    deadline = time.time() + timeout_s
    try:
        while len(out) < expected and time.time() < deadline:
            for m in consumer.consume(num_messages=1000, timeout=0.5):
                if m.error():
                    raise RuntimeError(m.error())
                out.append(m)
    finally:
        consumer.close()
    assert len(out) == expected, f"reference consumer read {len(out)} of {expected}"
    return out


def json_rows(n: int, seed: int = 0) -> list[dict]:
    return [
        {"id": i, "user": f"u{(i * 7 + seed) % 13}", "amount": (i * 37 % 1000) / 10.0}
        for i in range(n)
    ]


SCHEMA = pa.schema([("id", pa.int64()), ("user", pa.string()), ("amount", pa.float64())])


# -- reading what other clients wrote -----------------------------------------------


def test_reads_confluent_kafka_messages_with_metadata(new_topic) -> None:
    topic = new_topic(3)
    rows = json_rows(3000)
    producer = confluent_producer()
    for r in rows:
        producer.produce(
            topic,
            key=r["user"].encode(),
            value=json.dumps(r).encode(),
            headers=[("trace", f"t{r['id']}".encode())],
        )
    assert producer.flush(30) == 0

    env = sb.Environment(parallelism=1)
    stream = sb.kafka.source(
        env,
        topic,
        format="json",
        schema=SCHEMA,
        start="earliest",
        stop_at_end=True,
        metadata=["key", "topic", "partition", "offset", "timestamp", "headers"],
        metadata_prefix="k_",
    )
    got = stream.to_table()
    assert got.num_rows == 3000
    assert got.schema.field("k_partition").type == pa.int32()
    assert got.schema.field("k_timestamp").type == pa.timestamp("ms", tz="UTC")

    reference = confluent_read_all(topic, 3000)
    expected = sorted(
        (
            json.loads(m.value())["id"],
            m.key(),
            m.partition(),
            m.offset(),
            m.timestamp()[1],
            [(k, v) for k, v in m.headers()],
        )
        for m in reference
    )
    actual = sorted(
        zip(
            got.column("id").to_pylist(),
            got.column("k_key").to_pylist(),
            got.column("k_partition").to_pylist(),
            got.column("k_offset").to_pylist(),
            [
                int(t.timestamp() * 1000)
                for t in got.column("k_timestamp").cast(pa.timestamp("ms", tz="UTC")).to_pylist()
            ],
            got.column("k_headers").to_pylist(),
            strict=True,
        )
    )
    assert actual == expected
    assert set(got.column("k_topic").to_pylist()) == {topic}
    by_id = {r["id"]: r for r in rows}
    for i, user, amount in zip(
        got.column("id").to_pylist(),
        got.column("user").to_pylist(),
        got.column("amount").to_pylist(),
        strict=True,
    ):
        assert (user, amount) == (by_id[i]["user"], by_id[i]["amount"])
    stats = stream.kafka_stats.snapshot()
    assert stats["messages"] == 3000 and stats["rows"] == 3000


@pytest.mark.skipif(shutil.which("kcat") is None, reason="kcat not installed")
def test_reads_kcat_messages(new_topic) -> None:
    topic = new_topic(2)
    lines = [
        f"k{i % 5}\t" + json.dumps({"id": i, "user": f"u{i}", "amount": i / 2}) for i in range(500)
    ]
    subprocess.run(
        ["kcat", "-P", "-b", BOOTSTRAP, "-t", topic, "-K", "\t", "-H", "origin=kcat"],
        input="\n".join(lines) + "\n",
        text=True,
        check=True,
        timeout=60,
    )
    env = sb.Environment(parallelism=1)
    got = sb.kafka.source(
        env, topic, schema=SCHEMA, start="earliest", stop_at_end=True, metadata=["key", "headers"]
    ).to_table()
    expected = sorted(
        (line.split("\t")[0].encode(), json.loads(line.split("\t")[1])["id"]) for line in lines
    )
    actual = sorted(zip(got.column("key").to_pylist(), got.column("id").to_pylist(), strict=True))
    assert actual == expected
    assert all(h == [("origin", b"kcat")] for h in got.column("headers").to_pylist())


# -- writing what other clients read -------------------------------------------------


def test_written_messages_read_by_kcat_and_confluent(new_topic) -> None:
    topic = new_topic(4)
    table = pa.Table.from_pylist(json_rows(2000), schema=SCHEMA)
    env = sb.Environment(parallelism=2)
    stats = env.from_table(table, batch_size=300, parallelism=2).write_kafka(
        topic, key="user", producer_config={"compression.type": "lz4", "linger.ms": 10}
    )
    env.execute()
    assert stats.snapshot()["delivered"] == 2000

    reference = confluent_read_all(topic, 2000)
    decoded = sorted((m.key().decode(), json.loads(m.value())["id"]) for m in reference)
    assert decoded == sorted((r["user"], r["id"]) for r in table.to_pylist())
    for m in reference:
        value = json.loads(m.value())
        assert value == {k: value[k] for k in ("id", "user", "amount")}
        assert m.partition() == sb.kafka.partition_for_key(m.key(), 4)

    if shutil.which("kcat"):
        out = subprocess.run(
            [
                "kcat",
                "-C",
                "-b",
                BOOTSTRAP,
                "-t",
                topic,
                "-o",
                "beginning",
                "-e",
                "-q",
                "-f",
                "%k\t%s\n",
            ],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout.splitlines()
        assert (
            sorted((k, json.loads(v)["id"]) for k, v in (line.split("\t", 1) for line in out))
            == decoded
        )


def test_ipc_and_headers_round_trip(new_topic) -> None:
    topic = new_topic(1)
    headers_type = pa.map_(pa.string(), pa.binary())
    table = pa.table(
        {
            "id": pa.array(range(100), pa.int64()),
            "tags": pa.array([[("h", str(i).encode())] for i in range(100)], headers_type),
        }
    )
    env = sb.Environment(parallelism=1)
    env.from_table(table, batch_size=100).write_kafka(topic, format="json", headers="tags")
    env.execute()
    env = sb.Environment(parallelism=1)
    got = sb.kafka.source(
        env,
        topic,
        schema=pa.schema([("id", pa.int64())]),
        start="earliest",
        stop_at_end=True,
        metadata=["headers"],
    ).to_table()
    assert got.column("id").to_pylist() == list(range(100))
    assert got.column("headers").to_pylist() == [[("h", str(i).encode())] for i in range(100)]

    ipc_topic = new_topic(1)
    data = pa.Table.from_pylist(json_rows(5000), schema=SCHEMA)
    env = sb.Environment(parallelism=1)
    env.from_table(data, batch_size=1000).write_kafka(ipc_topic, format="ipc")
    env.execute()
    assert sum(h for _, h in sb.kafka.watermarks(ipc_topic)) == 5  # one message per batch
    env = sb.Environment(parallelism=1)
    back = sb.kafka.source(env, ipc_topic, format="ipc", start="earliest", stop_at_end=True)
    assert back.to_table().select(["id", "user", "amount"]).equals(data)


def test_start_positions(new_topic) -> None:
    topic = new_topic(1)
    producer = confluent_producer()
    base = 1_700_000_000_000
    for i in range(100):
        producer.produce(topic, value=json.dumps({"id": i}).encode(), timestamp=base + i * 1000)
    assert producer.flush(30) == 0
    schema = pa.schema([("id", pa.int64())])

    def read(**kw) -> list[int]:
        env = sb.Environment(parallelism=1)
        t = sb.kafka.source(env, topic, schema=schema, stop_at_end=True, **kw).to_table()
        return t.column("id").to_pylist() if t.num_rows else []

    assert read(start="earliest") == list(range(100))
    assert read(start="latest") == []
    assert read(start="timestamp", start_timestamp_ms=base + 60_000) == list(range(60, 100))
    assert read(start="earliest", end_offsets={(topic, 0): 10}) == list(range(10))
    group = f"g-{uuid.uuid4().hex}"
    assert read(start="committed", group=group, end_offsets={(topic, 0): 30}) == list(range(30))
    # The group committed offset 30: the next job resumes there.
    assert read(start="committed", group=group) == list(range(30, 100))


# -- partitioning compatible with Kafka's Java client --------------------------------


def test_same_key_same_partition_as_java_console_producer(new_topic) -> None:
    partitions = 6
    java_topic = new_topic(partitions)
    sabot_topic = new_topic(partitions)
    keys = [f"key-{i}" for i in range(200)] + ["21", "a", "foobar", "été"]
    classpath = subprocess.run(
        ["bash", str(ROOT / "scripts" / "kafka.sh"), "classpath"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    subprocess.run(
        [
            "java",
            "-cp",
            classpath,
            "org.apache.kafka.tools.ConsoleProducer",
            "--bootstrap-server",
            BOOTSTRAP,
            "--topic",
            java_topic,
            "--property",
            "parse.key=true",
            "--property",
            "key.separator=\t",
        ],
        input="".join(f"{k}\tv\n" for k in keys),
        text=True,
        check=True,
        timeout=120,
        env={**os.environ, "KAFKA_LOG4J_OPTS": ""},
    )
    env = sb.Environment(parallelism=1)
    env.from_table(pa.table({"k": keys, "value": ["v"] * len(keys)})).write_kafka(
        sabot_topic, key="k", format="string", exclude_key_from_value=True
    )
    env.execute()

    def placement(topic: str) -> dict[str, int]:
        return {m.key().decode(): m.partition() for m in confluent_read_all(topic, len(keys))}

    java, ours = placement(java_topic), placement(sabot_topic)
    assert java == ours
    assert len(set(java.values())) == partitions  # the keys really spread
    assert all(sb.kafka.partition_for_key(k, partitions) == p for k, p in java.items())


# -- bad input ------------------------------------------------------------------------

BAD_VALUES = [b"{not json", b"\xff\xfe\x00\x01", b'{"id": "x-not-a-number"']


def produce_mixed(topic: str) -> tuple[list[int], list[tuple[int, bytes]]]:
    """Good JSON with bad values in between; returns good ids and (offset, bad bytes)."""
    producer = confluent_producer()
    good, bad = [], []
    offset = 0
    for i in range(60):
        if i % 20 == 7:
            value = BAD_VALUES[(i // 20) % len(BAD_VALUES)]
            bad.append((offset, value))
            producer.produce(topic, key=b"k%d" % i, value=value, headers=[("h", b"1")])
        else:
            good.append(i)
            producer.produce(topic, key=b"k%d" % i, value=json.dumps({"id": i}).encode())
        offset += 1
    assert producer.flush(30) == 0
    return good, bad


ID_SCHEMA = pa.schema([("id", pa.int64())])


def test_bad_record_fail_names_topic_partition_offset(new_topic) -> None:
    topic = new_topic(1)
    _, bad = produce_mixed(topic)
    env = sb.Environment(parallelism=1)
    sb.kafka.source(env, topic, schema=ID_SCHEMA, start="earliest", stop_at_end=True).discard()
    with pytest.raises(sb.JobError) as info:
        env.execute()
    message = str(info.value)
    assert f"topic '{topic}' partition 0 offset {bad[0][0]}" in message, message


def test_bad_record_skip_is_counted(new_topic) -> None:
    topic = new_topic(1)
    good, bad = produce_mixed(topic)
    env = sb.Environment(parallelism=1)
    stream = sb.kafka.source(
        env, topic, schema=ID_SCHEMA, start="earliest", stop_at_end=True, bad_records="skip"
    )
    got = stream.to_table()
    assert sorted(got.column("id").to_pylist()) == good
    stats = stream.kafka_stats.snapshot()
    assert stats["skipped"] == len(bad) == stats["bad_records"]


def test_bad_record_dead_letter_keeps_original_bytes(new_topic) -> None:
    topic = new_topic(1)
    dlq = new_topic(1)
    good, bad = produce_mixed(topic)
    env = sb.Environment(parallelism=1)
    stream = sb.kafka.source(
        env,
        topic,
        schema=ID_SCHEMA,
        start="earliest",
        stop_at_end=True,
        bad_records="dead_letter",
        dead_letter_topic=dlq,
    )
    got = stream.to_table()
    assert sorted(got.column("id").to_pylist()) == good
    assert stream.kafka_stats.snapshot()["dead_lettered"] == len(bad)
    letters = confluent_read_all(dlq, len(bad))
    seen = []
    for m in letters:
        headers = dict(m.headers())
        assert headers["sabot.source.topic"] == topic.encode()
        assert headers["sabot.source.partition"] == b"0"
        assert headers["sabot.error"]
        assert headers["h"] == b"1"  # the original headers travel along
        seen.append((int(headers["sabot.source.offset"]), m.value()))
        assert m.key() == b"k%d" % int(headers["sabot.source.offset"])
    assert sorted(seen) == bad


# -- delivery errors -------------------------------------------------------------------


def test_writing_to_missing_topic_fails_the_job() -> None:
    env = sb.Environment(parallelism=1)
    env.from_table(pa.table({"id": [1, 2]})).write_kafka(f"missing-{uuid.uuid4().hex}")
    with pytest.raises(sb.JobError, match="does not exist"):
        env.execute()


def test_broker_rejection_is_a_job_error(new_topic) -> None:
    topic = new_topic(1, **{"max.message.bytes": 1000})
    env = sb.Environment(parallelism=1)
    env.from_table(pa.table({"id": [1, 2], "blob": ["x" * 5000, "y"]})).write_kafka(
        topic, producer_config={"message.timeout.ms": 10000}
    )
    with pytest.raises(sb.JobError) as info:
        env.execute()
    assert "delivery to topic" in str(info.value) and "too large" in str(info.value).lower()


# -- groups and rebalances --------------------------------------------------------------


def produce_ids(topic: str, ids: range) -> None:
    producer = confluent_producer(**{"linger.ms": 5})
    for i in ids:
        producer.produce(topic, key=str(i).encode(), value=json.dumps({"id": i}).encode())
    assert producer.flush(30) == 0


def test_parallel_instances_share_the_partitions(new_topic) -> None:
    topic = new_topic(4)
    produce_ids(topic, range(4000))
    env = sb.Environment(parallelism=2)
    stream = sb.kafka.source(
        env, topic, schema=ID_SCHEMA, group=f"g-{uuid.uuid4().hex}", stop_at_end=True, parallelism=2
    )
    ids = stream.to_table().column("id").to_pylist()
    assert set(ids) == set(range(4000))
    assert len(ids) == 4000, Counter(ids).most_common(3)


def test_two_jobs_in_one_group_lose_nothing_across_rebalances(new_topic) -> None:
    topic = new_topic(4)
    group = f"g-{uuid.uuid4().hex}"
    produce_ids(topic, range(0, 3000))

    def job() -> tuple[sb.DataStream, sb.Collected, sb.JobHandle]:
        env = sb.Environment(parallelism=1)
        stream = sb.kafka.source(env, topic, schema=ID_SCHEMA, group=group, commit_interval_ms=200)
        collected = stream.collect()
        return stream, collected, env.start()

    def wait_for(condition: Callable[[], bool], what: str, timeout_s: float = 60) -> None:
        deadline = time.time() + timeout_s
        while not condition():
            assert time.time() < deadline, f"timed out waiting for {what}"
            time.sleep(0.05)

    first_stream, first, first_handle = job()
    wait_for(lambda: first.num_rows >= 1000, "the first job to read")
    # The second job joins while the first is reading: the group rebalances
    # (eager protocol: the first job gives up all partitions, then gets half back).
    second_stream, second, second_handle = job()
    produce_ids(topic, range(3000, 6000))
    wait_for(lambda: second_stream.kafka_stats.snapshot()["assigned"] > 0, "the rebalance")
    wait_for(lambda: first_stream.kafka_stats.snapshot()["assigned"] > 0, "the first job's share")
    produce_ids(topic, range(6000, 8000))

    def ids() -> list[int]:
        out: list[int] = []
        for c in (first, second):
            out += c.table().column("id").to_pylist() if c.num_rows else []
        return out

    wait_for(lambda: len(set(ids())) >= 8000, "every message")
    for h in (first_handle, second_handle):
        h.cancel()
        try:
            h.wait()
        except sb.JobError:
            pass
    got = ids()
    assert set(got) == set(range(8000))
    assert second.num_rows > 0 and first.num_rows > 0
    assert first_stream.kafka_stats.snapshot()["rebalances"] >= 3  # assign, revoke, assign
    # At-least-once: a duplicate needs a partition that moved with uncommitted rows.
    assert len(got) - 8000 < 3000, Counter(got).most_common(3)


# -- backpressure -------------------------------------------------------------------------


def test_slow_downstream_pauses_fetching_and_loses_nothing(new_topic) -> None:
    topic = new_topic(2)
    produce_ids(topic, range(2000))

    def slow(batch: pa.RecordBatch) -> pa.RecordBatch:
        time.sleep(0.25)
        return batch

    env = sb.Environment(parallelism=1)
    stream = sb.kafka.source(
        env,
        topic,
        schema=ID_SCHEMA,
        start="earliest",
        stop_at_end=True,
        batch_size=500,
        pause_after_ms=100,
    )
    got = stream.map(slow).to_table()
    assert sorted(got.column("id").to_pylist()) == list(range(2000))
    assert stream.kafka_stats.snapshot()["pauses"] >= 1


def test_topic_pattern_subscription(new_topic) -> None:
    prefix = f"pat{uuid.uuid4().hex[:8]}"
    topics = []
    for i in range(2):
        name = f"{prefix}-{i}"
        sb.kafka.create_topic(name, 1)
        topics.append(name)
    try:
        for i, t in enumerate(topics):
            produce_ids(t, range(i * 100, i * 100 + 100))
        env = sb.Environment(parallelism=1)
        # Pattern subscriptions see new topics on a metadata refresh; keep it short.
        got = sb.kafka.source(
            env,
            f"^{prefix}-.*",
            schema=ID_SCHEMA,
            start="earliest",
            stop_at_end=True,
            metadata=["topic"],
            consumer_config={"topic.metadata.refresh.interval.ms": 500},
        ).to_table()
        assert sorted(got.column("id").to_pylist()) == list(range(200))
        assert set(got.column("topic").to_pylist()) == set(topics)
    finally:
        for t in topics:
            sb.kafka.delete_topic(t)


def test_admin_errors_are_clear() -> None:
    with pytest.raises(RuntimeError):
        sb.kafka.create_topic(f"t-{uuid.uuid4().hex}", 1, bootstrap="127.0.0.1:1", timeout_ms=1500)
    with pytest.raises(ValueError, match="unknown bad-record policy"):
        sb.kafka.source(sb.Environment(), "t", bad_records="ignore")
    with pytest.raises(ValueError, match="dead_letter_topic"):
        sb.kafka.source(sb.Environment(), "t", bad_records="dead_letter")


def test_watermarks_per_partition(new_topic) -> None:
    # Partition 0 holds events 60 s ahead of partition 1. One Sabot instance reads
    # both; with per-partition watermarks no row of partition 1 is late.
    topic = new_topic(partitions=2)
    producer = confluent_producer()
    for i in range(300):
        producer.produce(topic, json.dumps({"ts": 60_000 + i * 100, "v": 1}).encode(), partition=0)
        producer.produce(topic, json.dumps({"ts": i * 100, "v": 1}).encode(), partition=1)
    producer.flush(30)
    schema = pa.schema([("ts", pa.int64()), ("v", pa.int64())])
    env = sb.Environment(parallelism=1)
    src = sb.kafka.source(
        env,
        topic,
        schema=schema,
        start="earliest",
        stop_at_end=True,
        metadata=["partition"],
        batch_size=50,
    )
    w = (
        src.with_watermarks("ts", max_out_of_orderness="1s", per_split="partition")
        .window(sb.tumbling("10s"))
        .agg(n=sb.count())
    )
    main, late = w.collect(), w.late().collect()
    env.execute()
    assert late.num_rows == 0
    assert sum(main.table()["n"].to_pylist()) == 600
