"""Fixes of the Faust layer (memory broker): typed agent topics, monitor keys,
scalar decoding through the models' maybe_model."""

from __future__ import annotations

import sabot as faust
from faust_testutil import run, unique, wait_until
from sabot.faust.models import maybe_model


class Point(faust.Record):
    x: int
    y: float


def test_agent_without_topic_uses_value_type() -> None:
    """@app.agent(value_type=X) with no topic: the agent's own topic decodes X."""

    async def main() -> None:
        app = faust.App(unique("t"), broker="memory://")
        got: list[object] = []

        @app.agent(value_type=Point, key_type=str)
        async def points(stream):
            async for k, p in stream.items():
                got.append((k, p))

        assert points.channel.value_type is Point
        assert points.channel.key_type is str
        await app.start()
        await points.send(key="a", value=Point(x=1, y=2.5))
        await points.send(key="b", value={"x": 3, "y": 4.0})
        await wait_until(lambda: len(got) == 2, what="2 points")
        await app.stop()
        assert [k for k, _ in got] == ["a", "b"]
        assert all(isinstance(p, Point) for _, p in got)
        assert [(p.x, p.y) for _, p in got] == [(1, 2.5), (3, 4.0)]

    run(main())


def test_monitor_keys_are_full_agent_names() -> None:
    """Every per-agent counter of app.monitor is keyed by agent.name."""

    async def main() -> None:
        app = faust.App(unique("t"), broker="memory://")
        topic = app.topic("numbers", value_type=int, partitions=2)
        seen: list[int] = []

        @app.agent(topic, restart_backoff=(0.0, 0.0))
        async def picky(stream):
            async for v in stream:
                if v == 3:
                    raise ValueError("three")
                seen.append(v)

        await app.start()
        for i in range(6):
            await topic.send(key=str(i), value=i)
        await wait_until(lambda: len(seen) == 5, what="5 values")
        await app.stop()
        snap = app.monitor.snapshot()
        for key in ("agent_events", "agent_crashes", "agent_restarts", "circuit_open"):
            assert set(snap[key]) == {picky.name}, (key, snap[key])
        assert snap["agent_events"][picky.name] == 6
        assert snap["agent_crashes"][picky.name] == 1

    run(main())


def test_maybe_model_and_scalar_values() -> None:
    assert isinstance(maybe_model(Point, {"x": 1, "y": 2.0}), Point)
    assert maybe_model(None, {"x": 1}) == {"x": 1}
    app = faust.App(unique("t"), broker="memory://")
    ints = app.topic("ints", value_type=int, value_serializer="raw")
    assert ints.decode_value(b"42") == 42
    floats = app.topic("floats", value_type=float, value_serializer="raw")
    assert floats.decode_value(b"2.5") == 2.5
    strs = app.topic("strs", value_type=str, value_serializer="raw")
    assert strs.decode_value(b"hi") == "hi"
