"""sabot.kafka.BatchConsumer against the real broker: whole polls as Arrow
batches, native decoding with bad values reported (not dropped), and commits only
on request (a new consumer of the group resumes exactly at the committed
positions). References: the confluent-kafka client and plain json."""

from __future__ import annotations

import json
import os
import time
import uuid

import pyarrow as pa
import pytest
import sabot as sb

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
def topic():
    name = f"test-bc-{uuid.uuid4().hex[:12]}"
    sb.kafka.create_topic(name, 3)
    yield name
    sb.kafka.delete_topic(name)


def produce(topic: str, values: list[bytes | None], keys: list[bytes]) -> None:
    from confluent_kafka import Producer

    p = Producer({"bootstrap.servers": BOOTSTRAP, "partitioner": "murmur2_random"})
    for k, v in zip(keys, values, strict=True):
        p.produce(topic, key=k, value=v)
    assert p.flush(30) == 0


def drain(consumer: sb.kafka.BatchConsumer, want: int, deadline_s: float = 60.0):
    polls = []
    got = 0
    deadline = time.monotonic() + deadline_s
    while got < want and time.monotonic() < deadline:
        p = consumer.poll(max_messages=1000, timeout=0.2)
        if len(p):
            polls.append(p)
            got += len(p)
    return polls


def test_polls_decode_and_report_bad_values(topic: str) -> None:
    schema = pa.schema([("user", pa.string()), ("n", pa.int64())])
    values: list[bytes | None] = [
        json.dumps({"user": f"u{i % 7}", "n": i}).encode() for i in range(3000)
    ]
    values[1234] = b'{"user": "broken", "n": '  # truncated JSON
    values[2000] = None  # a tombstone: no value, not an error
    keys = [f"k{i % 11}".encode() for i in range(3000)]
    produce(topic, values, keys)

    with sb.kafka.BatchConsumer(
        topic, group=f"g-{uuid.uuid4().hex[:8]}", format="json", schema=schema
    ) as c:
        polls = drain(c, 3000)
    messages = pa.Table.from_batches([p.messages for p in polls])
    assert messages.num_rows == 3000
    assert messages.schema.names == [
        "topic",
        "partition",
        "offset",
        "timestamp",
        "key",
        "value",
        "headers",
    ]
    # every partition's offsets are 0..n-1 without a gap or a repeat
    by_partition: dict[int, list[int]] = {}
    for part, off in zip(
        messages["partition"].to_pylist(), messages["offset"].to_pylist(), strict=True
    ):
        by_partition.setdefault(part, []).append(off)
    for offs in by_partition.values():
        assert offs == list(range(len(offs)))
    # decoded rows equal json.loads of each good value, in message order
    decoded: list[dict] = []
    bad: list[tuple[bytes, str]] = []
    for p in polls:
        vals = p.messages["value"].to_pylist()
        decoded += [
            {"value": vals[i], **row}
            for i, row in zip(p.row_message.to_pylist(), p.rows.to_pylist(), strict=True)
        ]
        bad += [(vals[i], reason) for i, reason in p.errors]
    expected = [v for v in values if v is not None and v != values[1234]]
    assert [d.pop("value") for d in decoded] == [
        v for v in [m for p in polls for m in p.messages["value"].to_pylist()] if v in expected
    ]
    assert sorted((d["user"], d["n"]) for d in decoded) == sorted(
        (json.loads(v)["user"], json.loads(v)["n"]) for v in expected
    )
    assert len(bad) == 1 and bad[0][0] == values[1234] and bad[0][1]


def test_commits_only_what_it_is_told(topic: str) -> None:
    produce(topic, [str(i).encode() for i in range(900)], [f"k{i}".encode() for i in range(900)])
    group = f"g-{uuid.uuid4().hex[:8]}"
    with sb.kafka.BatchConsumer(topic, group=group) as c:
        polls = drain(c, 900)
        t = pa.Table.from_batches([p.messages for p in polls])
        # commit the position after the first half of each partition only
        ends: dict[int, int] = {}
        for part, off in zip(t["partition"].to_pylist(), t["offset"].to_pylist(), strict=True):
            ends[part] = max(ends.get(part, -1), off + 1)
        half = {part: end // 2 for part, end in ends.items()}
        c.commit([(topic, part, off) for part, off in half.items()])
    with sb.kafka.BatchConsumer(topic, group=group) as c:
        polls = drain(c, sum(ends[p] - half[p] for p in ends))
        assert len(c.poll(max_messages=1000, timeout=0.5)) == 0  # nothing beyond
    again = pa.Table.from_batches([p.messages for p in polls])
    got = sorted(zip(again["partition"].to_pylist(), again["offset"].to_pylist(), strict=True))
    assert got == sorted((p, o) for p in ends for o in range(half[p], ends[p]))


def test_headers_come_back_in_order(topic: str) -> None:
    from confluent_kafka import Producer

    p = Producer({"bootstrap.servers": BOOTSTRAP})
    p.produce(topic, value=b"a", headers=[("reply-to", b"t1"), ("id", b"7"), ("empty", None)])
    p.produce(topic, value=b"b")
    assert p.flush(30) == 0
    with sb.kafka.BatchConsumer(topic, group=f"g-{uuid.uuid4().hex[:8]}") as c:
        polls = drain(c, 2)
    t = pa.Table.from_batches([p.messages for p in polls])
    got = dict(zip(t["value"].to_pylist(), t["headers"].to_pylist(), strict=True))
    assert got[b"a"] == [("reply-to", b"t1"), ("id", b"7"), ("empty", None)]
    assert got[b"b"] is None


def test_unknown_topic_is_a_clear_error() -> None:
    with pytest.raises(RuntimeError, match="no-such-topic-"):
        sb.kafka.BatchConsumer(f"no-such-topic-{uuid.uuid4().hex[:6]}", group="g")
