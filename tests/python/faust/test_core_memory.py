"""Faust core on the in-process memory:// broker: topics, agents, streams,
sinks, ask/cast, supervision, commit safety, test_context."""

from __future__ import annotations

import asyncio
import json
import logging

import pyarrow as pa
import pytest
import sabot as faust
from faust_testutil import run, unique, wait_until
from sabot.faust.events import current_event


def test_import_sabot_as_faust() -> None:
    for name in ("App", "Topic", "Channel", "Event", "Stream", "current_event", "uuid"):
        assert getattr(faust, name) is not None
    assert len(faust.uuid()) == 36
    with pytest.raises(AttributeError):
        faust.NoSuchName  # noqa: B018


def test_agent_counts_every_value_and_commits() -> None:
    async def main() -> None:
        app = faust.App(unique("t"), broker="memory://")
        topic = app.topic("numbers", value_type=int, partitions=4)
        seen: list[int] = []

        @app.agent(topic)
        async def summer(stream):
            async for v in stream:
                seen.append(v)

        await app.start()
        for i in range(1000):
            await topic.send(key=str(i % 7), value=i)
        await wait_until(lambda: len(seen) == 1000, what="1000 values")
        await app.stop()
        assert sorted(seen) == list(range(1000))
        committed = app.transport.committed(app.conf.id)
        assert sum(committed.values()) == 1000
        assert committed == {
            ("numbers", p): e for p, e in enumerate(app.transport.end_offsets("numbers"))
        }
        assert app.monitor.events_in["numbers"] == 1000
        # every per-agent counter is keyed by the agent's full name (agent.name)
        assert app.monitor.agent_events[summer.name] == 1000
        assert summer.name.endswith(".summer")

    run(main())


def test_items_events_filter_enumerate_and_current_event() -> None:
    async def main() -> None:
        app = faust.App(unique("t"), broker="memory://")
        topic = app.topic(
            "words", key_type=str, value_type=str, value_serializer="raw", partitions=1
        )
        out: dict[str, list] = {"items": [], "events": [], "filter": [], "enum": []}

        @app.agent(topic)
        async def a_items(stream):
            async for k, v in stream.items():
                ev = current_event()
                out["items"].append((k, v, ev.message.offset, ev.key))

        @app.agent(topic)
        async def a_events(stream):
            async for ev in stream.events():
                out["events"].append((ev.key, ev.value, ev.message.partition, ev.message.topic))

        @app.agent(topic)
        async def a_filter(stream):
            async for i, v in stream.filter(lambda v: v.startswith("b")).enumerate(start=1):
                out["filter"].append((i, v))

        await app.start()
        for i, w in enumerate(["apple", "banana", "blueberry", "cherry"]):
            await topic.send(key=f"k{i}", value=w)
        await wait_until(
            lambda: len(out["items"]) == 4 and len(out["events"]) == 4 and len(out["filter"]) == 2,
            what="all agents",
        )
        await app.stop()
        assert out["items"] == [
            ("k0", "apple", 0, "k0"),
            ("k1", "banana", 1, "k1"),
            ("k2", "blueberry", 2, "k2"),
            ("k3", "cherry", 3, "k3"),
        ]
        assert [e[:2] for e in out["events"]] == [
            (f"k{i}", w) for i, w in enumerate(["apple", "banana", "blueberry", "cherry"])
        ]
        assert {e[3] for e in out["events"]} == {"words"}
        assert out["filter"] == [(1, "banana"), (2, "blueberry")]

    run(main())


def test_yield_into_sinks_agent_topic_and_callable() -> None:
    async def main() -> None:
        app = faust.App(unique("t"), broker="memory://")
        src = app.topic("src", value_type=int, partitions=2)
        dst = app.topic("dst", value_type=int, partitions=1)
        got_callable: list[int] = []
        got_agent: list[int] = []
        got_topic: list[int] = []

        @app.agent()
        async def collector(stream):
            async for v in stream:
                got_agent.append(v)

        @app.agent(dst)
        async def from_topic(stream):
            async for v in stream:
                got_topic.append(v)

        @app.agent(src, sink=[collector, dst, got_callable.append])
        async def doubler(stream):
            async for v in stream:
                yield v * 2

        await app.start()
        for i in range(50):
            await src.send(value=i)
        want = sorted(2 * i for i in range(50))
        await wait_until(
            lambda: len(got_agent) == 50 and len(got_topic) == 50 and len(got_callable) == 50,
            what="sinks",
        )
        await app.stop()
        assert (
            sorted(got_agent) == want and sorted(got_topic) == want and sorted(got_callable) == want
        )

    run(main())


def test_ask_and_cast() -> None:
    async def main() -> None:
        app = faust.App(unique("t"), broker="memory://")
        casts: list[int] = []

        @app.agent()
        async def square(stream):
            async for v in stream:
                casts.append(v)
                yield v * v

        await app.start()
        replies = await asyncio.gather(*(square.ask(value=i, timeout=10) for i in range(20)))
        assert replies == [i * i for i in range(20)]
        assert await square.join([1, 2, 3]) == [1, 4, 9]
        assert [r async for r in square.map([4, 5])] == [16, 25]
        await square.cast(value=99)
        await wait_until(lambda: 99 in casts, what="cast")
        await app.stop()

    run(main())


def test_channel_passes_objects() -> None:
    async def main() -> None:
        app = faust.App(unique("t"), broker="memory://")
        ch = app.channel()
        got: list = []

        class Thing:
            def __init__(self, n: int) -> None:
                self.n = n

        @app.agent(ch)
        async def agent(stream):
            async for v in stream:
                got.append(v)

        await app.start()
        things = [Thing(i) for i in range(5)]
        for t in things:
            await ch.send(value=t)
        await wait_until(lambda: len(got) == 5, what="channel values")
        await app.stop()
        assert [g is t for g, t in zip(got, things, strict=True)] == [True] * 5

    run(main())


def test_take_within_and_batches_fast_path() -> None:
    async def main() -> None:
        app = faust.App(unique("t"), broker="memory://")
        topic = app.topic("events", partitions=1)
        lists: list[list] = []
        batches: list[pa.RecordBatch] = []

        @app.agent(topic)
        async def taker(stream):
            async for values in stream.take(10, within=0.05):
                lists.append(values)

        @app.agent(topic)
        async def batcher(stream):
            async for batch in stream.batches():
                batches.append(batch)

        await app.start()
        for i in range(25):
            await topic.send(value={"id": i, "name": f"n{i}"})
        await wait_until(lambda: sum(map(len, lists)) == 25, what="take lists")
        await wait_until(lambda: sum(b.num_rows for b in batches) == 25, what="batches")
        await app.stop()
        assert all(1 <= len(v) <= 10 for v in lists)
        assert [x["id"] for v in lists for x in v] == list(range(25))
        table = pa.Table.from_batches(batches)
        assert table.column("id").to_pylist() == list(range(25))
        assert table.column("name").to_pylist() == [f"n{i}" for i in range(25)]
        # take() acknowledges after the list was handled: everything committed
        assert sum(app.transport.committed(f"{app.conf.id}-taker").values()) == 25

    run(main())


def test_group_by_repartitions_by_new_key() -> None:
    async def main() -> None:
        app = faust.App(unique("t"), broker="memory://")
        topic = app.topic("orders", partitions=3)
        seen: list[tuple] = []

        @app.agent(topic)
        async def by_user(stream):
            async for order in stream.group_by(lambda o: o["user"], name="user"):
                ev = current_event()
                seen.append((order["user"], ev.message.topic, ev.message.partition, ev.key))

        await app.start()
        for i in range(60):
            await topic.send(key=str(i), value={"user": f"u{i % 5}", "amount": i})
        await wait_until(lambda: len(seen) == 60, what="repartitioned values")
        await app.stop()
        rtopic = f"{app.conf.id}-by_user-user-repartition"
        assert {s[1] for s in seen} == {rtopic}
        parts: dict[str, set] = {}
        for user, _, p, key in seen:
            parts.setdefault(user, set()).add(p)
            assert key == user.encode()
        assert all(len(p) == 1 for p in parts.values())  # one user, one partition

    run(main())


def test_commit_never_passes_in_flight_with_concurrency() -> None:
    """With concurrency 4, records finish out of order; while an early record
    is held the committed offset of its partition stays at or before it."""

    async def main() -> None:
        app = faust.App(unique("t"), broker="memory://", broker_commit_interval=0.01, batch_size=8)
        topic = app.topic("work", value_type=int, partitions=1)
        release = asyncio.Event()
        held = asyncio.Event()
        done: list[int] = []

        @app.agent(topic, concurrency=4)
        async def worker(stream):
            async for v in stream:
                if v == 3:
                    held.set()
                    await release.wait()
                done.append(v)

        await app.start()
        for i in range(40):
            await topic.send(value=i)
        await asyncio.wait_for(held.wait(), 10)
        await wait_until(lambda: len(done) == 39, what="all but the held record")
        src = worker.source
        await src.commit()
        committed = app.transport.committed(app.conf.id).get(("work", 0), 0)
        assert committed <= 3, committed
        release.set()
        await wait_until(lambda: len(done) == 40, what="held record")
        await app.stop()
        assert app.transport.committed(app.conf.id)[("work", 0)] == 40

    run(main())


def test_noack_commits_only_acked() -> None:
    async def main() -> None:
        app = faust.App(unique("t"), broker="memory://")
        topic = app.topic("acks", value_type=int, partitions=1)
        events: list = []

        @app.agent(topic)
        async def lazy(stream):
            async for ev in stream.noack().events():
                events.append(ev)

        await app.start()
        for i in range(10):
            await topic.send(value=i)
        await wait_until(lambda: len(events) == 10, what="events")
        for ev in events[:4]:
            ev.ack()
        events[6].ack()
        await lazy.source.commit()
        # batch-granular: nothing of an incompletely acked batch is committed
        assert app.transport.committed(app.conf.id).get(("acks", 0), 0) == 0
        for ev in events:
            ev.ack()
        await app.stop()
        assert app.transport.committed(app.conf.id)[("acks", 0)] == 10

    run(main())


def test_crashing_agent_restarts_one_for_one_and_logs(caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        app = faust.App(unique("t"), broker="memory://")
        topic = app.topic("crashy", value_type=int, partitions=1)
        good: list[int] = []
        other: list[int] = []

        @app.agent(topic, restart_backoff=(0.001, 0.01))
        async def flaky(stream):
            async for v in stream:
                if v % 10 == 5:
                    raise ValueError(f"bad value {v}")
                good.append(v)

        @app.agent(topic)
        async def steady(stream):
            async for v in stream:
                other.append(v)

        await app.start()
        for i in range(30):
            await topic.send(value=i)
        await wait_until(lambda: len(good) == 27 and len(other) == 30, what="processing")
        await app.stop()
        assert good == [i for i in range(30) if i % 10 != 5]
        assert app.transport.committed(f"{app.conf.id}-flaky") == {("crashy", 0): 30}
        assert app.monitor.agent_crashes[flaky.name] == 3
        assert app.monitor.agent_restarts[flaky.name] == 3
        assert app.monitor.agent_crashes.get(steady.name, 0) == 0

    with caplog.at_level(logging.WARNING, logger="sabot.faust"):
        run(main())
    text = caplog.text
    assert "crashed on crashy[0]@5" in text and "bad value 15" in text
    assert "restarting" in text


def test_one_for_all_restarts_every_actor() -> None:
    async def main() -> None:
        app = faust.App(unique("t"), broker="memory://")
        topic = app.topic("ofa", value_type=int, partitions=1)
        done: list[int] = []

        @app.agent(
            topic, concurrency=3, supervisor_strategy="one_for_all", restart_backoff=(0.001, 0.01)
        )
        async def group(stream):
            async for v in stream:
                if v == 7:
                    raise RuntimeError("boom")
                done.append(v)

        await app.start()
        for i in range(20):
            await topic.send(value=i)
        await wait_until(lambda: len(set(done)) == 19, what="all but 7")
        await app.stop()
        assert set(done) == set(range(20)) - {7}
        # the chunks of the cancelled actors were requeued: everything acknowledged
        assert app.transport.committed(app.conf.id) == {("ofa", 0): 20}
        assert app.monitor.agent_crashes[group.name] == 1
        assert app.monitor.agent_restarts[group.name] == 3  # every actor restarted

    run(main())


def test_circuit_breaker_opens_and_recovers() -> None:
    async def main() -> None:
        app = faust.App(unique("t"), broker="memory://")
        topic = app.topic("cb", value_type=int, partitions=1)
        ok: list[int] = []

        @app.agent(topic, restart_backoff=(0.001, 0.001), max_failures=3, circuit_reset=0.05)
        async def fragile(stream):
            async for v in stream:
                if v < 3:
                    raise RuntimeError(f"fail {v}")
                ok.append(v)

        await app.start()
        for i in range(6):
            await topic.send(value=i)
        await wait_until(lambda: ok == [3, 4, 5], what="recovery after the breaker")
        await app.stop()
        assert fragile.breaker.trips == 1
        assert app.monitor.agent_crashes[fragile.name] == 3
        assert app.monitor.circuit_open[fragile.name] is False

    run(main())


def test_test_context_without_broker() -> None:
    app = faust.App(unique("t"), broker="kafka://127.0.0.1:1")  # never contacted

    @app.agent()
    async def add(stream):
        async for v in stream:
            yield v["a"] + v["b"]

    @app.agent()
    async def failing(stream):
        async for v in stream:
            raise KeyError(v)
            yield v

    async def main() -> None:
        async with add.test_context() as agent:
            event = await agent.put({"a": 4, "b": 5})
            assert agent.results[event.message.offset] == 9
            event = await agent.put({"a": 1, "b": 2})
            assert agent.results[event.message.offset] == 3
        async with failing.test_context() as agent:
            with pytest.raises(KeyError):
                await agent.put("x")

    run(main())


def test_graceful_stop_commits_processed_only() -> None:
    async def main() -> None:
        app = faust.App(unique("t"), broker="memory://shared-" + unique("b"))
        topic = app.topic("g", value_type=int, partitions=2)
        seen: list[int] = []

        @app.agent(topic)
        async def agent(stream):
            async for v in stream:
                seen.append(v)

        await app.start()
        for i in range(100):
            await topic.send(value=i)
        await wait_until(lambda: len(seen) == 100, what="100")
        await app.stop()
        # a second app on the same broker and group resumes after the commit
        app2 = faust.App(app.conf.id, broker=app.conf.broker)
        topic2 = app2.topic("g", value_type=int, partitions=2)
        seen2: list[int] = []

        @app2.agent(topic2)
        async def agent2(stream):
            async for v in stream:
                seen2.append(v)

        await app2.start()
        for i in range(100, 110):
            await topic2.send(value=i)
        await wait_until(lambda: len(seen2) == 10, what="10 new")
        await app2.stop()
        assert sorted(seen2) == list(range(100, 110))

    run(main())


def test_json_values_roundtrip_bytes_on_memory_broker() -> None:
    async def main() -> None:
        app = faust.App(unique("t"), broker="memory://")
        topic = app.topic("j", partitions=1)
        await topic.send(key="k", value={"x": [1, 2]})
        part = app.transport.broker.topics["j"].parts[0]
        assert part.keys[0] == b"k" and json.loads(part.values[0]) == {"x": [1, 2]}

    run(main())


def test_one_for_all_requeues_the_chunks_of_cancelled_actors() -> None:
    """Actor A waits inside record 3 when actor B crashes on record 10: under
    one_for_all A is cancelled; its unfinished chunk goes back to the queue, so
    record 3 and the rest of A's chunk are processed after the restart and the
    whole partition is committed (nothing holds the commit back)."""

    async def main() -> None:
        app = faust.App(unique("t"), broker="memory://", batch_size=4)
        topic = app.topic("rq", value_type=int, partitions=1)
        in_three = asyncio.Event()
        done: list[int] = []
        attempts: dict[int, int] = {}

        @app.agent(
            topic, concurrency=2, supervisor_strategy="one_for_all", restart_backoff=(0.001, 0.01)
        )
        async def agent(stream):
            async for v in stream:
                attempts[v] = attempts.get(v, 0) + 1
                if v == 3 and attempts[v] == 1:
                    in_three.set()
                    await asyncio.Event().wait()  # held until cancelled
                if v == 10 and attempts[v] == 1:
                    await in_three.wait()
                    raise RuntimeError("boom")
                done.append(v)

        await app.start()
        for i in range(16):
            await topic.send(value=i)
        await wait_until(lambda: set(done) == set(range(16)) - {10}, what="all but 10")
        await app.stop()
        assert attempts[3] == 2  # cancelled once, processed after the restart
        assert app.transport.committed(app.conf.id) == {("rq", 0): 16}

    run(main())


def test_echo_sends_to_channels_and_yields() -> None:
    async def main() -> None:
        app = faust.App(unique("t"), broker="memory://")
        src = app.topic("e-src", value_type=int, partitions=1)
        copy = app.topic("e-copy", value_type=int, partitions=1)
        seen: list[int] = []
        copied: list[int] = []

        @app.agent(src)
        async def echoer(stream):
            async for v in stream.echo(copy):
                seen.append(v)

        @app.agent(copy)
        async def reader(stream):
            async for v in stream:
                copied.append(v)

        await app.start()
        for i in range(10):
            await src.send(value=i)
        await wait_until(lambda: len(seen) == 10 and len(copied) == 10, what="echo")
        await app.stop()
        assert seen == copied == list(range(10))

    run(main())


def test_undecodable_values_are_logged_skipped_and_committed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def main() -> None:
        app = faust.App(unique("t"), broker="memory://")
        topic = app.topic("bad", partitions=1)
        got: list = []

        @app.agent(topic)
        async def reader(stream):
            async for v in stream:
                got.append(v)

        await app.start()
        for raw in [b'{"a": 1}', b"{not json", b' {"a": 2} ', b"[1, 2]", b"\xff\xfe", b"3"]:
            await topic.send(value=raw)
        await wait_until(lambda: len(got) == 4, what="the 4 good values")
        await app.stop()
        assert got == [{"a": 1}, {"a": 2}, [1, 2], 3]
        assert app.monitor.decode_errors == 2
        assert app.transport.committed(app.conf.id) == {("bad", 0): 6}

    with caplog.at_level(logging.ERROR, logger="sabot.faust"):
        run(main())
    assert "bad[0]@1 does not decode" in caplog.text and "bad[0]@4 does not decode" in caplog.text


def test_send_soon_runs_and_is_kept_until_done() -> None:
    async def main() -> None:
        app = faust.App(unique("t"), broker="memory://")
        topic = app.topic("soon", value_type=int, partitions=1)
        tasks = [topic.send_soon(value=i) for i in range(5)]
        assert len(app._pending_sends) == 5
        mds = [await (await t) for t in tasks]
        assert [md.offset for md in mds] == [0, 1, 2, 3, 4]
        await asyncio.sleep(0)  # done callbacks run on the next loop iteration
        assert not app._pending_sends

    run(main())


def test_poll_failures_are_retried_not_fatal(caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        app = faust.App(unique("t"), broker="memory://")
        topic = app.topic("flaky-poll", value_type=int, partitions=1)
        got: list[int] = []

        @app.agent(topic)
        async def reader(stream):
            async for v in stream:
                got.append(v)

        await app.start()
        consumer = reader.source.consumer
        real = consumer.getmany
        fails = {"left": 2}

        async def flaky(max_records: int, timeout: float):  # noqa: ANN202
            if fails["left"]:
                fails["left"] -= 1
                raise ConnectionError("broker went away")
            return await real(max_records, timeout)

        consumer.getmany = flaky
        for i in range(5):
            await topic.send(value=i)
        await wait_until(lambda: got == [0, 1, 2, 3, 4], what="values after poll failures")
        await app.stop()
        assert app.monitor.fetch_errors == 2

    with caplog.at_level(logging.ERROR, logger="sabot.faust"):
        run(main())
    assert "poll failed (ConnectionError('broker went away'))" in caplog.text


class Withdrawal(faust.Record):
    user: str
    amount: float


def test_group_by_record_field_and_record_values() -> None:
    async def main() -> None:
        app = faust.App(unique("t"), broker="memory://")
        topic = app.topic("withdrawals", value_type=Withdrawal, partitions=4)
        seen: list[tuple] = []

        @app.agent(topic)
        async def by_user(stream):
            async for w in stream.group_by(Withdrawal.user):
                ev = current_event()
                seen.append((w.user, w.amount, ev.key, ev.message.partition))

        await app.start()
        for i in range(40):
            await topic.send(key=str(i), value=Withdrawal(user=f"u{i % 4}", amount=float(i)))
        await wait_until(lambda: len(seen) == 40, what="40 withdrawals")
        await app.stop()
        assert all(isinstance(s[1], float) for s in seen)
        assert sorted(s[1] for s in seen) == [float(i) for i in range(40)]
        parts: dict[str, set] = {}
        for user, _, key, p in seen:
            assert key == user.encode()
            parts.setdefault(user, set()).add(p)
        assert all(len(p) == 1 for p in parts.values())

    run(main())
