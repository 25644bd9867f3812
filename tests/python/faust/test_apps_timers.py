"""app.timer and app.crontab: the cron parser against a brute-force reference,
time zones and DST, and timers running in an app on the memory:// broker."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import sabot as faust
from faust_testutil import run, unique, wait_until
from sabot.faust.timers import CronSchedule, CronSyntaxError


def reference_next(
    expr_fields: dict[str, set[int]], after: datetime, dom_any: bool, dow_any: bool
) -> datetime:
    """Plain scan, day by day and then minute by minute, with cron's day rule."""
    first = after.replace(second=0, microsecond=0) + timedelta(minutes=1)
    day = datetime(first.year, first.month, first.day)
    for _ in range(366 * 8):
        dow = (day.weekday() + 1) % 7
        dom_ok = day.day in expr_fields["dom"]
        dow_ok = dow in expr_fields["dow"]
        day_ok = (dom_ok and dow_ok) if (dom_any or dow_any) else (dom_ok or dow_ok)
        if day_ok and day.month in expr_fields["month"]:
            for m in range(24 * 60):
                t = day + timedelta(minutes=m)
                if (
                    t >= first
                    and t.hour in expr_fields["hour"]
                    and (t.minute in expr_fields["minute"])
                ):
                    return t
        day += timedelta(days=1)
    raise AssertionError("no match")


CASES = {
    # expression: (minutes, hours, days of month, months, days of week) written out by hand
    "*/15 * * * *": (
        {0, 15, 30, 45},
        set(range(24)),
        set(range(1, 32)),
        set(range(1, 13)),
        set(range(7)),
        True,
        True,
    ),
    "5 4 * * sun": ({5}, {4}, set(range(1, 32)), set(range(1, 13)), {0}, True, False),
    "0 22 * * 1-5": ({0}, {22}, set(range(1, 32)), set(range(1, 13)), {1, 2, 3, 4, 5}, True, False),
    "23 0-20/2 * * *": (
        {23},
        set(range(0, 21, 2)),
        set(range(1, 32)),
        set(range(1, 13)),
        set(range(7)),
        True,
        True,
    ),
    "0 0 1,15 * 3": ({0}, {0}, {1, 15}, set(range(1, 13)), {3}, False, False),
    "30 9 29 feb *": ({30}, {9}, {29}, {2}, set(range(7)), False, True),
    "0 12 * jan-mar,oct 7": ({0}, {12}, set(range(1, 32)), {1, 2, 3, 10}, {0}, True, False),
    "@hourly": (
        {0},
        set(range(24)),
        set(range(1, 32)),
        set(range(1, 13)),
        set(range(7)),
        True,
        True,
    ),
    "@weekly": ({0}, {0}, set(range(1, 32)), set(range(1, 13)), {0}, True, False),
    "10/20 * * * *": (
        {10, 30, 50},
        set(range(24)),
        set(range(1, 32)),
        set(range(1, 13)),
        set(range(7)),
        True,
        True,
    ),
}


@pytest.mark.parametrize("expr", sorted(CASES))
def test_cron_fields_and_next_times_match_a_brute_force_scan(expr: str) -> None:
    minutes, hours, dom, months, dow, dom_any, dow_any = CASES[expr]
    sched = CronSchedule(expr)
    assert (sched.minutes, sched.hours, sched.days, sched.months, sched.weekdays) == (
        minutes,
        hours,
        dom,
        months,
        dow,
    )
    fields = {"minute": minutes, "hour": hours, "dom": dom, "month": months, "dow": dow}
    rng = random.Random(expr)
    for _ in range(25):
        after = datetime(2024, 1, 1) + timedelta(
            minutes=rng.randrange(60 * 24 * 365 * 3), seconds=rng.randrange(60)
        )
        expected = reference_next(fields, after, dom_any, dow_any)
        assert sched.next_naive(after) == expected, (expr, after)
        aware = after.replace(tzinfo=UTC)
        assert sched.next_after(aware) == expected.replace(tzinfo=UTC)


def test_cron_known_times() -> None:
    # 2026-11-29 is a Sunday.
    after = datetime(2026, 11, 29, 10, 7, 30, tzinfo=UTC)
    assert CronSchedule("*/5 * * * *").next_after(after) == datetime(
        2026, 11, 29, 10, 10, tzinfo=UTC
    )
    assert CronSchedule("0 9 * * mon").next_after(after) == datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    assert CronSchedule("@monthly").next_after(after) == datetime(2026, 12, 1, tzinfo=UTC)
    assert CronSchedule("@yearly").next_after(after) == datetime(2027, 1, 1, tzinfo=UTC)
    # Feb 29 only in leap years.
    assert CronSchedule("0 0 29 2 *").next_after(after) == datetime(2028, 2, 29, tzinfo=UTC)
    # Exactly on a fire time: the next one, not the same.
    on = datetime(2026, 11, 29, 10, 10, tzinfo=UTC)
    assert CronSchedule("*/5 * * * *").next_after(on) == datetime(2026, 11, 29, 10, 15, tzinfo=UTC)


def test_cron_timezone_and_dst() -> None:
    oslo = ZoneInfo("Europe/Oslo")
    # 03:00 Oslo time in winter is 02:00 UTC.
    after = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
    nxt = CronSchedule("0 3 * * *").next_after(after, oslo)
    assert nxt.astimezone(UTC) == datetime(2026, 11, 30, 2, 0, tzinfo=UTC)
    # 2026-03-29: clocks go 02:00 -> 03:00 in Oslo; 02:30 does not exist that day.
    before_spring = datetime(2026, 3, 28, 12, 0, tzinfo=UTC)
    sched = CronSchedule("30 2 * * *")
    nxt = sched.next_after(before_spring, oslo)
    assert nxt.astimezone(UTC) == datetime(2026, 3, 30, 0, 30, tzinfo=UTC)  # 02:30 CEST
    # 2026-10-25: 02:00-03:00 happens twice; 02:30 fires once (the first).
    before_fall = datetime(2026, 10, 24, 12, 0, tzinfo=UTC)
    first = sched.next_after(before_fall, oslo)
    assert first.astimezone(UTC) == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    second = sched.next_after(first.astimezone(UTC), oslo)
    assert second.astimezone(UTC) == datetime(2026, 10, 26, 1, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("expr", "words"),
    [
        ("* * * *", "expected 5 fields"),
        ("60 * * * *", "minute: 60 is outside 0-59"),
        ("* 24 * * *", "hour: 24"),
        ("* * 0 * *", "day of month: 0"),
        ("* * * 13 *", "month: 13"),
        ("* * * * funday", "day of week: 'funday'"),
        ("*/0 * * * *", "bad step"),
        ("5-1 * * * *", "runs backwards"),
        ("0 0 31 2 *", "no day ever matches"),
        ("1,,2 * * * *", "empty list element"),
    ],
)
def test_cron_syntax_errors_name_the_field(expr: str, words: str) -> None:
    with pytest.raises(CronSyntaxError, match=words.replace("(", r"\(")):
        CronSchedule(expr)


def test_timer_runs_repeatedly_passes_app_and_survives_errors() -> None:
    async def main() -> None:
        app = faust.App(unique("timers"), broker="memory://")
        calls: list[str] = []
        got_app: list[object] = []

        @app.timer(interval=0.01)
        async def plain():
            calls.append("plain")

        @app.timer(0.01)
        async def with_app(app_arg):
            got_app.append(app_arg)

        flaky_runs = []

        @app.timer(interval=0.01)
        async def flaky():
            flaky_runs.append(1)
            if len(flaky_runs) == 2:
                raise RuntimeError("boom in tick 2")

        assert plain.__name__ == "plain"  # the decorator returns the function
        await app.start()
        await wait_until(
            lambda: len(calls) >= 3 and len(got_app) >= 1 and len(flaky_runs) >= 4,
            what="three plain ticks and four flaky ones",
        )
        await app.stop()
        assert got_app[0] is app
        svc = app._sabot_timer_service
        info = {t["name"].rsplit(".", 1)[-1]: t for t in svc.info()}
        assert info["flaky"]["errors"] == 1
        assert "boom in tick 2" in info["flaky"]["last_error"]
        assert info["flaky"]["runs"] == len(flaky_runs)
        n = len(calls)
        # Stopped: no tick after stop.
        await asyncio.sleep(0.05)
        assert len(calls) == n

    run(main())


def test_timer_ticks_never_overlap() -> None:
    async def main() -> None:
        app = faust.App(unique("timers"), broker="memory://")
        active = [0]
        max_active = [0]
        runs = []
        release = asyncio.Event()

        @app.timer(interval=0.005)
        async def slow():
            active[0] += 1
            max_active[0] = max(max_active[0], active[0])
            runs.append(1)
            if len(runs) == 1:
                await release.wait()  # the first tick overruns many intervals
            active[0] -= 1

        await app.start()
        await wait_until(lambda: len(runs) == 1, what="first tick")
        await asyncio.sleep(0.05)
        release.set()
        await wait_until(lambda: len(runs) >= 3, what="later ticks")
        await app.stop()
        assert max_active[0] == 1
        (info,) = app._sabot_timer_service.info()
        assert info["overlaps"] >= 1

    run(main())


def test_crontab_fires_at_the_next_minute() -> None:
    async def main() -> None:
        app = faust.App(unique("cron"), broker="memory://")
        fired: list[float] = []

        @app.crontab("* * * * *", timezone="Europe/Oslo")
        async def every_minute():
            fired.append(svc.clock())

        svc = app._sabot_timer_service
        # A wall clock 50 ms before a minute boundary, so the job is due at once.
        import time

        base = time.time()
        offset = (60 - base % 60) - 0.05
        svc.clock = lambda: time.time() + offset
        await app.start()
        await wait_until(lambda: len(fired) == 1, what="the cron job")
        await app.stop()
        boundary = base + offset + 0.05  # a whole minute on the shifted clock
        assert round(boundary) % 60 == 0
        assert fired[0] >= boundary - 1e-3  # never before the minute
        (info,) = svc.info()
        assert info["cron"] == "* * * * *" and info["timezone"] == "Europe/Oslo"

    run(main())


def test_on_leader_timer_runs_on_the_single_memory_worker() -> None:
    async def main() -> None:
        app = faust.App(unique("leader"), broker="memory://")
        runs = []

        @app.timer(interval=0.01, on_leader=True)
        async def leader_only():
            runs.append(1)

        await app.start()
        await wait_until(lambda: len(runs) >= 2, what="leader ticks")
        assert app._sabot_timer_service.is_leader()
        await app.stop()

    run(main())


def test_timer_rejects_sync_functions_and_bad_intervals() -> None:
    app = faust.App(unique("bad"), broker="memory://")
    with pytest.raises(TypeError, match="must be an async def"):

        @app.timer(1.0)
        def not_async():
            pass

    with pytest.raises(ValueError, match="interval must be positive"):
        app.timer(0)
    with pytest.raises(CronSyntaxError):
        app.crontab("every day")


def test_on_leader_runs_on_exactly_one_worker_of_the_group() -> None:
    async def main() -> None:
        broker = f"memory://{unique('leaders')}"  # one in-process broker for both apps
        app_id = unique("leader")
        runs: dict[str, int] = {"a": 0, "b": 0}
        apps = {}
        for name in ("a", "b"):
            app = faust.App(app_id, broker=broker)

            def make(n: str):
                async def leader_only():
                    runs[n] += 1

                leader_only.__qualname__ = f"leader_only_{n}"
                return leader_only

            app.timer(interval=0.01, on_leader=True)(make(name))
            apps[name] = app
        await apps["a"].start()
        await apps["b"].start()

        def leaders() -> list[str]:
            return [n for n, a in apps.items() if a._sabot_timer_service.is_leader()]

        await wait_until(lambda: len(leaders()) == 1, what="one leader")
        (leader,) = leaders()
        other = "b" if leader == "a" else "a"
        before = runs[other]
        skipped = apps[other]._sabot_timer_service.timers[0]
        await wait_until(
            lambda: runs[leader] >= 3 and skipped.skipped_not_leader >= 2,
            what="leader ticks, skipped ticks on the other",
        )
        assert leaders() == [leader] and runs[other] == before
        await apps[leader].stop()
        await wait_until(lambda: apps[other]._sabot_timer_service.is_leader(), what="failover")
        n = runs[other]
        await wait_until(lambda: runs[other] >= n + 2, what="ticks on the new leader")
        await apps[other].stop()

    run(main())
