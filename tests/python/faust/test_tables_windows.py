"""Windowed tables on the memory:// broker, against a plain-Python reference:
tumbling and hopping windows, out-of-order timestamps, expiry, late events,
on_window_close exactly once per window (also across a restart),
relative_to_field / relative_to_now, current / delta / now, windowed views."""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest

pytest.importorskip("sabot.faust.app")  # the App (core) lands in another branch

import sabot as faust  # noqa: E402
from faust_testutil import run, unique, wait_until
from sabot.faust.windows import HoppingWindow, TumblingWindow

BASE = 1_700_000_000.0  # event times, seconds


def reference(events, size, step, expires):
    """Window counts as the definition says, written independently: an event
    counts in each window [start, start + size) holding its time whose start is
    later than the last stale start at its arrival; a window closes (once) when
    the largest time seen passes start + expires (aligned to the step)."""
    latest = -math.inf
    counts: dict[tuple[str, float], int] = defaultdict(int)
    closed: list[tuple[tuple[str, tuple[float, float]], int]] = []
    closed_keys: set[tuple[str, float]] = set()
    late = 0

    def stale_start(t: float) -> float:
        return math.floor((t - expires) / step) * step

    for ts, key in events:
        if ts > latest:
            latest = ts
            cut = stale_start(latest)
            for wk in sorted(k for k in counts if k[1] <= cut and k not in closed_keys):
                closed.append(((wk[0], (wk[1], wk[1] + size - 0.1)), counts[wk]))
                closed_keys.add(wk)
        cut = stale_start(latest)
        start = math.floor(ts / step) * step
        while start > ts - size:
            if start <= cut:
                late += 1
            else:
                counts[(key, start)] += 1
            start -= step
    open_windows = {
        (k, (s, s + size - 0.1)): n for (k, s), n in counts.items() if (k, s) not in closed_keys
    }
    closed.sort(key=lambda c: (c[0][1][0], c[0][0]))
    return open_windows, closed, late


def _events(n: int, seed: int, disorder: float, keys: int = 3) -> list[tuple[float, str]]:
    """Times rising about 1s per event, each moved by up to ``disorder`` seconds."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        ts = BASE + i + rng.uniform(-disorder, disorder)
        out.append((round(ts, 3), f"k{rng.randrange(keys)}"))
    return out


def _run_windowed(events, make_table, *, app_id=None, broker="memory://", close_all=False):
    """Sends (ts, key) events through a one-partition topic to an agent that does
    ``table[key] += 1``; returns (closed windows, open windows, table)."""
    closed: list = []

    async def main():
        app = faust.App(app_id or unique("win"), broker=broker, topic_partitions=1)
        topic = app.topic("events", key_type=str, value_type=str, partitions=1)
        table = make_table(app, lambda key, value: closed.append((key, value)))
        done: list[int] = []

        @app.agent(topic)
        async def count(stream):
            async for key in stream:
                table[key] += 1
                done.append(1)

        await app.start()
        for ts, key in events:
            await topic.send(key=key, value=key, timestamp=ts)
        await wait_until(lambda: len(done) == len(events), what="events processed")
        raw = table.table
        open_windows = dict(raw.items())
        if close_all:
            raw.close_windows()
        await app.stop()
        return open_windows, raw

    open_windows, raw = run(main())
    return closed, open_windows, raw


@pytest.mark.parametrize("disorder", [0.0, 6.0])
def test_tumbling_matches_reference_with_out_of_order_times(disorder: float) -> None:
    events = _events(300, seed=11, disorder=disorder)
    size, expires = 10.0, 12.0

    def make(app, on_close):
        return app.Table("counts", default=int, on_window_close=on_close).tumbling(
            size, expires=expires
        )

    closed, open_windows, raw = _run_windowed(events, make)
    want_open, want_closed, want_late = reference(events, size, size, expires)
    assert closed == want_closed
    assert open_windows == want_open
    assert len(raw) == len(want_open)
    assert raw.late_updates == want_late
    assert raw.windows_closed == len(want_closed)
    if disorder:
        assert want_late > 0  # the test exercises late events
    # each window closes once
    assert len({k for k, _ in closed}) == len(closed)


def test_hopping_matches_reference() -> None:
    events = _events(200, seed=12, disorder=3.0)
    size, step, expires = 20.0, 5.0, 30.0

    def make(app, on_close):
        return app.Table("counts", default=int, on_window_close=on_close).hopping(
            timedelta(seconds=size), timedelta(seconds=step), expires=timedelta(seconds=expires)
        )

    closed, open_windows, raw = _run_windowed(events, make, close_all=True)
    want_open, want_closed, want_late = reference(events, size, step, expires)
    assert open_windows == want_open
    assert raw.late_updates == want_late
    # close_windows() at the end closes the rest, in window order
    rest = sorted(want_open.items(), key=lambda c: (c[0][1][0], c[0][0]))
    assert closed == want_closed + rest


def test_on_window_close_exactly_once_across_a_restart() -> None:
    events = _events(240, seed=13, disorder=6.0)
    size, expires = 10.0, 20.0
    broker = f"memory://{unique('shared')}"
    app_id = unique("restart")

    def make(app, on_close):
        return app.Table("counts", default=int, on_window_close=on_close).tumbling(
            size, expires=expires
        )

    closed1, _, _ = _run_windowed(events[:120], make, app_id=app_id, broker=broker)
    closed2, open2, _ = _run_windowed(events[120:], make, app_id=app_id, broker=broker)
    want_open, want_closed, _ = reference(events, size, size, expires)
    assert closed1 + closed2 == want_closed
    assert open2 == want_open


def test_windows_never_close_without_expires() -> None:
    events = _events(50, seed=14, disorder=0.0)

    def make(app, on_close):
        return app.Table("counts", default=int, on_window_close=on_close).tumbling(10)

    closed, open_windows, raw = _run_windowed(events, make)
    assert closed == [] and raw.late_updates == 0
    assert sum(open_windows.values()) == len(events)


class Order(faust.Record):
    user: str
    amount: float
    placed: datetime


def test_relative_to_field_current_delta_and_views() -> None:
    t0 = datetime(2024, 3, 1, 12, 0, 0, tzinfo=UTC)
    orders = [
        Order("ann", 10.0, t0),
        Order("bob", 5.0, t0 + timedelta(seconds=30)),
        Order("ann", 2.5, t0 + timedelta(seconds=59)),
        Order("ann", 1.0, t0 + timedelta(seconds=61)),
        Order("bob", 4.0, t0 + timedelta(seconds=62)),
    ]
    seen: list[tuple] = []

    async def main():
        app = faust.App(unique("field"), broker="memory://", topic_partitions=1)
        topic = app.topic("orders", value_type=Order, partitions=1)
        sums = (
            app.Table("sums", default=float)
            .tumbling(60, expires=600)
            .relative_to_field(Order.placed)
        )

        @app.agent(topic)
        async def total(stream):
            async for order in stream:
                sums[order.user] += order.amount
                seen.append(
                    (
                        order.user,
                        sums[order.user].current(),
                        sums[order.user].delta(60),
                        sorted(sums.items()),
                    )
                )

        await app.start()
        # the message times are far from the order times: the field decides
        for o in orders:
            await topic.send(key=o.user, value=o, timestamp=BASE)
        await wait_until(lambda: len(seen) == len(orders), what="orders")
        start = t0.timestamp()
        assert seen[2] == ("ann", 12.5, 0.0, [("ann", 12.5), ("bob", 5.0)])
        assert seen[3] == ("ann", 1.0, 12.5, [("ann", 1.0)])
        assert seen[4] == ("bob", 4.0, 5.0, [("ann", 1.0), ("bob", 4.0)])
        assert sums["ann"][(start, start + 59.9)] == 12.5
        assert sorted(sums.keys()) == ["ann", "bob"]
        assert sorted(sums.table.items()) == [
            (("ann", (start, start + 59.9)), 12.5),
            (("ann", (start + 60, start + 119.9)), 1.0),
            (("bob", (start, start + 59.9)), 5.0),
            (("bob", (start + 60, start + 119.9)), 4.0),
        ]
        assert sorted(sums.items().delta(60, _Event(start + 61))) == [("ann", 12.5), ("bob", 5.0)]
        await app.stop()

    run(main())


class _Event:
    """An event-like object whose value carries a time (for views' event=)."""

    def __init__(self, ts: float) -> None:
        self.value = Order("x", 0.0, datetime.fromtimestamp(ts, UTC))


def test_relative_to_now_and_now() -> None:
    async def main():
        app = faust.App(unique("now"), broker="memory://")
        # windows of ~31 years: the wall clock stays in one window during the test
        hits = app.Table("hits", default=int).tumbling(1e9, expires=2e9).relative_to_now()
        await app.start()
        hits["page"] += 1
        hits["page"] += 2
        assert hits["page"].now() == 3
        assert hits["page"].current() == 3
        assert dict(hits.items().now()) == {"page": 3}
        window = TumblingWindow(1e9).current(time.time())
        assert hits.table[("page", window)] == 3
        hits["page"] = 10
        assert hits["page"].value() == 10
        del hits["page"]
        assert hits["page"].now() == 0
        await app.stop()

    run(main())


def test_window_ranges_as_faust_computes_them() -> None:
    w = HoppingWindow(10, 5, expires=20)
    assert w.ranges(12.0) == [(5.0, 14.9), (10.0, 19.9)]
    assert w.current(12.0) == (10.0, 19.9)
    assert w.earliest(12.0) == (5.0, 14.9)
    assert w.delta(12.0, 5) == (5.0, 14.9)
    assert not w.stale(10.0, 29.0) and w.stale(10.0, 30.0)
    t = TumblingWindow(timedelta(minutes=1))
    assert t.ranges(125.0) == [(120.0, 179.9)]
    assert not t.stale(0.0, 1e12)  # no expires: never stale
    with pytest.raises(ValueError, match="step 20.0 is larger than its size 10.0"):
        HoppingWindow(10, 20)


def test_async_and_failing_window_close_callbacks() -> None:
    closed: list = []

    async def main():
        app = faust.App(unique("cb"), broker="memory://")

        async def record(key, value):
            await asyncio.sleep(0)
            closed.append((key, value))

        def explode(key, value):
            raise RuntimeError("callback bug")

        good = app.Table("good", default=int, on_window_close=record).tumbling(10, expires=10)
        bad = app.Table("bad", default=int, on_window_close=explode).tumbling(10, expires=10)
        await app.start()
        for view in (good, bad):
            view.relative_to(1.0)["a"] += 1
            view.relative_to(2.0)["a"] += 1
            view.relative_to(25.0)["a"] += 5  # closes [0, 9.9]
        await good.table.flush()
        assert closed == [(("a", (0.0, 9.9)), 2)]
        assert bad.table.window_close_errors == 1 and bad.table.windows_closed == 1
        assert ("a", (0.0, 9.9)) not in bad.table  # closed even though the callback failed
        await app.stop()

    run(main())
