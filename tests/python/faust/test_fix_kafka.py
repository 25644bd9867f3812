"""Fixes of the Faust layer against the real broker (127.0.0.1:19092): one
consumer per app for all agents (no start-up rebalances, no duplicates),
retried offset lookups on a topic created a moment ago."""

from __future__ import annotations

import asyncio
import collections
import threading
from typing import Any

import pytest
import sabot as faust
from faust_testutil import run, unique, wait_until
from sabot import kafka as sk


def _group_members(bootstrap: str, group: str) -> int:
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": bootstrap})
    desc = admin.describe_consumer_groups([group])[group].result(timeout=30)
    return len(desc.members)


def test_agents_share_one_consumer_no_duplicates(kafka_bootstrap: str) -> None:
    """Three agents of one app on three backlogged topics: one group member,
    every record processed exactly once within the run (a member per agent
    rebalanced the group while records were in flight and re-read them)."""
    names = [unique(f"ff-shared{i}") for i in range(3)]
    per_topic = 3000
    for n in names:
        sk.create_topic(n, 4, bootstrap=kafka_bootstrap)

    async def main() -> None:
        app_id = unique("ff-app")
        app = faust.App(app_id, broker=f"kafka://{kafka_bootstrap}", broker_commit_interval=30)
        topics = [app.topic(n, value_type=int, partitions=4) for n in names]
        seen: collections.Counter[tuple[str, int, int]] = collections.Counter()
        values: dict[str, list[int]] = {n: [] for n in names}

        def make(topic: Any) -> Any:
            async def body(stream):
                async for event in stream.events():
                    m = event.message
                    seen[(m.topic, m.partition, m.offset)] += 1
                    values[m.topic].append(event.value)
                    await asyncio.sleep(0)

            body.__name__ = body.__qualname__ = f"agent_{topic.name.replace('-', '_')}"
            return app.agent(topic)(body)

        for t in topics:
            make(t)
        for t in topics:
            for f in [await t.send(key=str(i), value=i) for i in range(per_topic)]:
                await f
        await app.start()
        await wait_until(
            lambda: sum(len(v) for v in values.values()) >= 3 * per_topic,
            timeout=90,
            what="every record",
        )
        members = await asyncio.get_running_loop().run_in_executor(
            None, _group_members, kafka_bootstrap, app_id
        )
        await app.stop()
        await app.close()
        assert members == 1
        dups = {k: c for k, c in seen.items() if c > 1}
        assert not dups, f"{len(dups)} records processed twice"
        for n in names:
            assert sorted(values[n]) == list(range(per_topic))

    run(main(), timeout=150)


def test_end_offsets_retry_until_topic_exists(kafka_bootstrap: str) -> None:
    """An offset lookup racing the topic's creation waits for it (retryable
    errors are retried until a deadline) instead of killing the worker."""
    from sabot.faust.transport.kafka import KafkaTransport

    transport = KafkaTransport(f"kafka://{kafka_bootstrap}")
    with pytest.raises(RuntimeError, match="still failing after"):
        transport.watermarks(unique("ff-missing"), deadline_s=0.5)

    name = unique("ff-late")
    result: dict[str, Any] = {}

    def lookup() -> None:
        try:
            result["ends"] = transport.end_offsets(name)
        except Exception as exc:  # noqa: BLE001 - reported by the assertion
            result["error"] = exc

    t = threading.Thread(target=lookup)
    t.start()
    sk.create_topic(name, 3, bootstrap=kafka_bootstrap)
    t.join(90)
    assert not t.is_alive()
    assert result.get("error") is None, result.get("error")
    assert result["ends"] == [0, 0, 0]


def test_plain_and_yielding_agents_get_headers(kafka_bootstrap: str) -> None:
    """Headers reach every agent through the engine's consumer: a plain agent
    sees event.headers, a yielding one answers ask (reply address in headers)."""
    name = unique("ff-headers")

    async def main() -> None:
        app = faust.App(unique("ff-app"), broker=f"kafka://{kafka_bootstrap}")
        topic = app.topic(name, value_type=int, partitions=2)
        got: list[tuple[int, dict]] = []

        @app.agent(topic)
        async def plain(stream):
            async for event in stream.events():
                got.append((event.value, dict(event.headers)))

        @app.agent(app.topic(unique("ff-square"), partitions=2))
        async def square(stream):
            async for v in stream:
                yield v * v

        await app.start()
        for i in range(20):
            hdrs = {"trace": f"t{i}".encode()} if i % 2 else None
            await (await topic.send(key=str(i), value=i, headers=hdrs))
        replies = await asyncio.gather(*(square.ask(value=i, timeout=60) for i in range(5)))
        await wait_until(lambda: len(got) == 20, timeout=60, what="20 events")
        assert all(
            type(a.source.consumer).__name__ in ("TopicView", "NativeKafkaConsumer")
            for a in (plain, square)
        )
        await app.stop()
        await app.close()
        assert replies == [i * i for i in range(5)]
        assert sorted(got, key=lambda g: g[0]) == [
            (i, {"trace": f"t{i}".encode()} if i % 2 else {}) for i in range(20)
        ]

    run(main(), timeout=120)
