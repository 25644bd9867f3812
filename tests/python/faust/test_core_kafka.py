"""Faust core against the real Kafka broker (127.0.0.1:19092): agents, sinks,
ask, and offset commits that never pass an in-flight record (concurrency 4)."""

from __future__ import annotations

import asyncio
from typing import Any

import pyarrow as pa
import sabot as faust
from faust_testutil import run, unique, wait_until
from sabot import kafka as sk


def test_kafka_agent_sink_and_commit(kafka_bootstrap: str) -> None:
    src_name, dst_name = unique("fc-src"), unique("fc-dst")

    async def main() -> None:
        app = faust.App(
            unique("fc-app"), broker=f"kafka://{kafka_bootstrap}", broker_commit_interval=0.05
        )
        src = app.topic(src_name, key_type=str, value_type=int, partitions=3)
        dst = app.topic(dst_name, value_type=int, partitions=1)
        seen: list[tuple[str, int]] = []
        out: list[int] = []

        @app.agent(src, sink=[dst])
        async def double(stream):
            async for k, v in stream.items():
                seen.append((k, v))
                yield v * 2

        @app.agent(dst)
        async def collect(stream):
            async for v in stream:
                out.append(v)

        await app.start()
        futs = [await src.send(key=f"k{i % 5}", value=i) for i in range(300)]
        mds = await asyncio.gather(*futs)
        assert {md.partition for md in mds} <= {0, 1, 2}
        # keys land where Kafka's Java default partitioner puts them
        for i, md in enumerate(mds):
            assert md.partition == sk.partition_for_key(f"k{i % 5}", 3)
        await wait_until(lambda: len(out) == 300, timeout=60, what="300 doubled values")
        await app.stop()
        assert sorted(v for _, v in seen) == list(range(300))
        assert all(k == f"k{v % 5}" for k, v in seen)
        assert sorted(out) == [2 * i for i in range(300)]
        committed = app.transport.committed(app.conf.id, src_name)
        ends = app.transport.end_offsets(src_name)
        assert committed == {(src_name, p): e for p, e in enumerate(ends)}
        await app.close()

    run(main(), timeout=120)


def test_kafka_commit_never_passes_in_flight_concurrency(kafka_bootstrap: str) -> None:
    """concurrency=4 on one partition: while record 5 is held, later records
    complete, commits run, and the committed offset stays <= 5. After release
    everything is committed; a restarted app re-reads nothing processed and
    nothing is lost."""
    name = unique("fc-inflight")
    app_id = unique("fc-app")

    async def main() -> None:
        app = faust.App(
            app_id, broker=f"kafka://{kafka_bootstrap}", broker_commit_interval=0.02, batch_size=16
        )
        topic = app.topic(name, value_type=int, partitions=1)
        release = asyncio.Event()
        held = asyncio.Event()
        done: list[int] = []

        @app.agent(topic, concurrency=4)
        async def work(stream):
            async for v in stream:
                if v == 5:
                    held.set()
                    await release.wait()
                done.append(v)

        await app.start()
        for f in [await topic.send(value=i) for i in range(64)]:
            await f
        await asyncio.wait_for(held.wait(), 60)
        await wait_until(lambda: len(done) == 63, timeout=60, what="all records but the held one")
        for _ in range(3):  # several commit rounds while record 5 is in flight
            await work.source.commit()
        committed = app.transport.committed(app_id, name)[(name, 0)]
        assert committed <= 5, committed
        release.set()
        await wait_until(lambda: len(done) == 64, timeout=30, what="the held record")
        await app.stop()
        assert app.transport.committed(app_id, name)[(name, 0)] == 64
        await app.close()

        # restart: only new records arrive
        app2 = faust.App(app_id, broker=f"kafka://{kafka_bootstrap}")
        topic2 = app2.topic(name, value_type=int, partitions=1)
        again: list[int] = []

        @app2.agent(topic2, concurrency=4)
        async def work2(stream):
            async for v in stream:
                again.append(v)

        await app2.start()
        for f in [await topic2.send(value=i) for i in range(64, 70)]:
            await f
        await wait_until(lambda: len(again) == 6, timeout=60, what="6 new records")
        await app2.stop()
        await app2.close()
        assert sorted(again) == list(range(64, 70))

    run(main(), timeout=180)


def test_kafka_ask_reply(kafka_bootstrap: str) -> None:
    async def main() -> None:
        app = faust.App(unique("fc-ask"), broker=f"kafka://{kafka_bootstrap}")

        @app.agent(app.topic(unique("fc-square"), partitions=2))
        async def square(stream):
            async for v in stream:
                yield v * v

        await app.start()
        replies = await asyncio.gather(*(square.ask(value=i, timeout=60) for i in range(10)))
        await app.stop()
        await app.close()
        assert replies == [i * i for i in range(10)]

    run(main(), timeout=120)


class Order(faust.Record):
    user: str
    amount: int


def test_kafka_records_and_batches(kafka_bootstrap: str) -> None:
    """Record values per record and as Arrow batches."""
    name = unique("fc-orders")

    async def main() -> None:
        app = faust.App(unique("fc-app"), broker=f"kafka://{kafka_bootstrap}")
        orders = app.topic(name, value_type=Order, partitions=2)
        plain = app.topic(name, partitions=2)
        records: list[Order] = []
        batches: list[pa.RecordBatch] = []
        dicts: list[pa.RecordBatch] = []

        @app.agent(orders)
        async def per_record(stream):
            async for order in stream:
                records.append(order)

        @app.agent(orders)
        async def per_batch(stream):
            async for batch in stream.batches():
                batches.append(batch)

        @app.agent(plain)
        async def untyped_batches(stream):
            async for batch in stream.batches():
                dicts.append(batch)

        await app.start()
        for f in [
            await orders.send(key=f"u{i % 3}", value=Order(user=f"u{i % 3}", amount=i))
            for i in range(200)
        ]:
            await f
        await wait_until(
            lambda: (
                len(records) == 200
                and sum(b.num_rows for b in batches) == 200
                and sum(b.num_rows for b in dicts) == 200
            ),
            timeout=60,
            what="200 orders three ways",
        )
        await app.stop()
        await app.close()
        assert all(isinstance(r, Order) for r in records)
        assert sorted((r.user, r.amount) for r in records) == sorted(
            (f"u{i % 3}", i) for i in range(200)
        )
        for got in (batches, dicts):
            t = pa.Table.from_batches(got)
            assert sorted(
                zip(t.column("user").to_pylist(), t.column("amount").to_pylist(), strict=True)
            ) == sorted((f"u{i % 3}", i) for i in range(200))

    run(main(), timeout=120)


def test_topic_as_datastream(kafka_bootstrap: str) -> None:
    """The DataStream operators on a Faust topic: the native Kafka source reads
    the Records' JSON with the Record's Arrow schema."""
    import pyarrow.compute as pc
    import sabot as sb

    name = unique("fc-ds")

    async def produce() -> Any:
        app = faust.App(unique("fc-app"), broker=f"kafka://{kafka_bootstrap}")
        orders = app.topic(name, value_type=Order, partitions=2)
        for f in [
            await orders.send(key=f"u{i % 3}", value=Order(user=f"u{i % 3}", amount=i))
            for i in range(100)
        ]:
            await f
        await app.close()
        return orders

    orders = run(produce(), timeout=60)
    env = sb.Environment(parallelism=1)
    table = (
        orders.datastream(env, start="earliest", stop_at_end=True)
        .filter(sb.col("amount") >= 50)
        .to_table()
    )
    assert table.num_rows == 50
    assert pc.sum(table.column("amount")).as_py() == sum(range(50, 100))


def test_memory_topic_as_datastream() -> None:
    import sabot as sb

    async def produce() -> Any:
        app = faust.App(unique("t"), broker="memory://")
        orders = app.topic("o", value_type=Order, partitions=2)
        for i in range(10):
            await orders.send(value=Order(user=f"u{i % 2}", amount=i))
        return orders

    orders = run(produce())
    env = sb.Environment(parallelism=1)
    t = orders.datastream(env).filter(sb.col("user") == "u1").to_table()
    assert sorted(t.column("amount").to_pylist()) == [1, 3, 5, 7, 9]
