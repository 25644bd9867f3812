"""Timers and cron jobs of a Faust app: ``@app.timer(interval)`` and
``@app.crontab("*/5 * * * *")``.

.. code-block:: python

    import sabot as faust

    app = faust.App("clock", broker="memory://")

    @app.timer(interval=5.0)
    async def every_five_seconds():
        print("tick")

    @app.crontab("0 3 * * mon-fri", timezone="Europe/Oslo", on_leader=True)
    async def nightly(app):
        print("03:00 on weekdays, Oslo time, on one worker of the group")

Both run as one service of the app (priority 30: after tables and agents have
started, stopped before them). Like Faust, a function that takes one argument
gets the app. A tick that raises is logged with its traceback and counted
(``TimerService.info()``, the web server's ``/status`` and ``/metrics``); the
timer keeps running. A tick that runs longer than the interval makes the next
tick wait for it (ticks of one timer never overlap); the missed ones are
skipped and counted as overlaps, with a warning like Faust's
"Timer ... is overlapping".

``on_leader=True`` runs the function only on the group's leader: the worker
that Kafka assigns partition 0 of the app's single-partition topic
``<app id>-__assignor-__leader`` (Faust's scheme), so exactly one worker of a
consumer group runs it and another takes over when it leaves.

The cron parser (:class:`CronSchedule`) reads the classic 5-field format
``minute hour day-of-month month day-of-week`` with ``*``, ``a-b``, ``*/n``,
``a-b/n``, lists, month and weekday names (``jan``, ``mon``; 0 and 7 are
Sunday) and the macros ``@yearly``/``@annually``, ``@monthly``, ``@weekly``,
``@daily``/``@midnight``, ``@hourly``. As in cron, when both day-of-month
and day-of-week are restricted a day matches either.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

log = logging.getLogger("sabot.faust.timers")

SERVICE_PRIORITY = 30

__all__ = ["CronSchedule", "CronSyntaxError", "TimerService", "crontab", "timer"]


# -- cron format ---------------------------------------------------------------------

_MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
_DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
_MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
# (name, low, high, names) of the five fields
_FIELDS = [
    ("minute", 0, 59, None),
    ("hour", 0, 23, None),
    ("day of month", 1, 31, None),
    ("month", 1, 12, _MONTHS),
    ("day of week", 0, 7, _DAYS),
]


class CronSyntaxError(ValueError):
    """A cron expression that cannot be parsed; the message names the field."""


def _value(token: str, field: str, low: int, high: int, names: list[str] | None, expr: str) -> int:
    t = token.lower()
    if names is not None and t in names:
        return names.index(t) + (1 if field == "month" else 0)
    if not t.isdigit():
        raise CronSyntaxError(f"cron {expr!r}: {field}: {token!r} is not a number or a name")
    v = int(t)
    if not low <= v <= high:
        raise CronSyntaxError(f"cron {expr!r}: {field}: {v} is outside {low}-{high}")
    return v


def _parse_field(
    text: str, field: str, low: int, high: int, names: list[str] | None, expr: str
) -> tuple[frozenset[int], bool]:
    """The set of values of one field and whether it is unrestricted (``*``)."""
    values: set[int] = set()
    for part in text.split(","):
        if not part:
            raise CronSyntaxError(f"cron {expr!r}: {field}: empty list element")
        rng, _, step_text = part.partition("/")
        step = 1
        if step_text:
            if not step_text.isdigit() or int(step_text) == 0:
                raise CronSyntaxError(f"cron {expr!r}: {field}: bad step {step_text!r}")
            step = int(step_text)
        if rng == "*":
            start, end = low, high
            if field == "day of week":
                end = 6
        elif "-" in rng:
            a, _, b = rng.partition("-")
            start = _value(a, field, low, high, names, expr)
            end = _value(b, field, low, high, names, expr)
            if end < start:
                raise CronSyntaxError(f"cron {expr!r}: {field}: range {rng!r} runs backwards")
        else:
            start = _value(rng, field, low, high, names, expr)
            end = high if step_text else start  # "5/15" means 5-59/15, as in Vixie cron
        values.update(range(start, end + 1, step))
    if field == "day of week" and 7 in values:
        values.discard(7)
        values.add(0)
    return frozenset(values), text == "*"


class CronSchedule:
    """A parsed 5-field cron expression; :meth:`next_after` gives fire times."""

    def __init__(self, expr: str) -> None:
        self.expr = expr
        text = _MACROS.get(expr.strip().lower(), expr)
        parts = text.split()
        if len(parts) != 5:
            raise CronSyntaxError(
                f"cron {expr!r}: expected 5 fields (minute hour day-of-month month "
                f"day-of-week) or a macro like @daily, got {len(parts)}"
            )
        parsed = [
            _parse_field(p, name, low, high, names, expr)
            for p, (name, low, high, names) in zip(parts, _FIELDS, strict=True)
        ]
        (
            (self.minutes, _),
            (self.hours, _),
            (self.days, dom_any),
            (self.months, _),
            (
                self.weekdays,
                dow_any,
            ),
        ) = parsed
        self._dom_any = dom_any
        self._dow_any = dow_any
        if not any(
            self._day_matches(y, m, d)
            for y in (2024, 2025, 2026, 2027)
            for m in self.months
            for d in self.days
        ):
            raise CronSyntaxError(f"cron {expr!r}: no day ever matches")

    def __repr__(self) -> str:
        return f"CronSchedule({self.expr!r})"

    def _day_matches(self, year: int, month: int, day: int) -> bool:
        try:
            weekday = (datetime(year, month, day).weekday() + 1) % 7  # cron: 0 = Sunday
        except ValueError:
            return False
        dom = day in self.days
        dow = weekday in self.weekdays
        if self._dom_any or self._dow_any:  # one side unrestricted: both must hold
            return dom and dow
        return dom or dow  # both restricted: either (cron's rule)

    def next_naive(self, after: datetime) -> datetime:
        """The first matching wall-clock minute strictly after ``after`` (naive)."""
        t = after.replace(second=0, microsecond=0) + timedelta(minutes=1)
        limit = t + timedelta(days=366 * 8)
        while t < limit:
            if t.month not in self.months:
                year, month = (t.year + 1, 1) if t.month == 12 else (t.year, t.month + 1)
                t = datetime(year, month, 1)
                continue
            if not self._day_matches(t.year, t.month, t.day):
                t = datetime(t.year, t.month, t.day) + timedelta(days=1)
                continue
            if t.hour not in self.hours:
                t = datetime(t.year, t.month, t.day, t.hour) + timedelta(hours=1)
                continue
            if t.minute not in self.minutes:
                t += timedelta(minutes=1)
                continue
            return t
        raise CronSyntaxError(f"cron {self.expr!r}: no time matches within 8 years")

    def next_after(self, after: datetime, tz: tzinfo | None = None) -> datetime:
        """The next fire time after the aware datetime ``after``, evaluated on the
        wall clock of ``tz`` (UTC when None); returned aware, in ``tz``. Wall
        times that a DST change skips do not fire; a repeated hour fires once."""
        tz = tz or UTC
        local = _to_local(after, tz)
        naive = local.replace(tzinfo=None)
        while True:
            naive = self.next_naive(naive)
            aware = _localize(naive, tz)
            if aware is None:  # skipped by a DST change
                continue
            if aware > after:
                return aware


def _to_local(dt: datetime, tz: tzinfo) -> datetime:
    if hasattr(tz, "normalize"):  # pytz
        return tz.normalize(dt.astimezone(tz))
    return dt.astimezone(tz)


def _localize(naive: datetime, tz: tzinfo) -> datetime | None:
    """``naive`` as an aware time in ``tz`` (the first of a repeated hour), or None
    when that wall time does not exist there."""
    if hasattr(tz, "localize"):  # pytz
        aware = tz.localize(naive, is_dst=True)
        aware = tz.normalize(aware)
    else:
        aware = naive.replace(tzinfo=tz, fold=0)
    back = _to_local(aware.astimezone(UTC), tz).replace(tzinfo=None)
    return aware if back == naive else None


def _resolve_tz(timezone: Any) -> tzinfo | None:
    if timezone is None or isinstance(timezone, tzinfo):
        return timezone
    if isinstance(timezone, str):
        from zoneinfo import ZoneInfo

        return ZoneInfo(timezone)
    raise TypeError(f"timezone must be a tzinfo or an IANA name, not {timezone!r}")


# -- the service -----------------------------------------------------------------------


class _Timer:
    """One timer or cron job and its counters."""

    def __init__(
        self,
        fun: Callable[..., Any],
        *,
        kind: str,
        on_leader: bool,
        interval: float | None = None,
        schedule: CronSchedule | None = None,
        tz: tzinfo | None = None,
        name: str | None = None,
    ) -> None:
        if not inspect.iscoroutinefunction(fun):
            raise TypeError(f"{kind} {getattr(fun, '__name__', fun)!r} must be an async def")
        self.fun = fun
        self.name = name or f"{fun.__module__}.{fun.__qualname__}"
        self.kind = kind
        self.on_leader = on_leader
        self.interval = interval
        self.schedule = schedule
        self.tz = tz
        self.runs = 0
        self.errors = 0
        self.overlaps = 0
        self.skipped_not_leader = 0
        self.last_run: float | None = None
        self.last_error: str | None = None
        self.next_run: float | None = None
        self._takes_app = len(inspect.signature(fun).parameters) > 0

    def info(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "interval": self.interval,
            "cron": self.schedule.expr if self.schedule else None,
            "timezone": str(self.tz) if self.tz else None,
            "on_leader": self.on_leader,
            "runs": self.runs,
            "errors": self.errors,
            "overlaps": self.overlaps,
            "skipped_not_leader": self.skipped_not_leader,
            "last_run": self.last_run,
            "next_run": self.next_run,
            "last_error": self.last_error,
        }


class LeaderElector:
    """Faust's leader election: a consumer of the app's group on the
    single-partition topic ``<app id>-__assignor-__leader``; the member that
    holds partition 0 is the leader."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.topic = f"{app.conf.id}-__assignor-__leader"
        self.consumer: Any = None
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        transport = self.app.transport
        await transport.create_topic(self.topic, 1)
        self.consumer = transport.consumer([self.topic], f"{self.app.conf.id}-__leader")
        self._task = asyncio.get_running_loop().create_task(self._poll(), name="leader-election")

    async def _poll(self) -> None:
        # Polling keeps the membership alive and lets rebalances happen.
        while True:
            try:
                await self.consumer.getmany(100, 0.5)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("leader election: polling %s failed", self.topic)
                await asyncio.sleep(1.0)

    def is_leader(self) -> bool:
        return self.consumer is not None and (self.topic, 0) in self.consumer.assignment()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
            self._task = None
        if self.consumer is not None:
            await self.consumer.close()
            self.consumer = None


class TimerService:
    """Runs the timers and cron jobs of one app (an app service, priority 30)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.timers: list[_Timer] = []
        self.leader: LeaderElector | None = None
        self._tasks: list[asyncio.Task] = []
        self.clock: Callable[[], float] = time.time  # wall clock, seconds

    def add(self, t: _Timer) -> None:
        if self._tasks:
            raise RuntimeError(f"{t.kind} {t.name} added after the app started")
        self.timers.append(t)

    def is_leader(self) -> bool:
        return self.leader is not None and self.leader.is_leader()

    async def start(self) -> None:
        if any(t.on_leader for t in self.timers):
            self.leader = LeaderElector(self.app)
            await self.leader.start()
        loop = asyncio.get_running_loop()
        for t in self.timers:
            runner = self._run_interval(t) if t.kind == "timer" else self._run_cron(t)
            self._tasks.append(loop.create_task(runner, name=f"{t.kind}:{t.name}"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass
        self._tasks.clear()
        if self.leader is not None:
            await self.leader.stop()
            self.leader = None

    def info(self) -> list[dict[str, Any]]:
        return [t.info() for t in self.timers]

    async def _tick(self, t: _Timer) -> None:
        if t.on_leader and not self.is_leader():
            t.skipped_not_leader += 1
            return
        t.last_run = self.clock()
        try:
            await (t.fun(self.app) if t._takes_app else t.fun())
        except asyncio.CancelledError:
            raise
        except Exception as e:
            t.errors += 1
            t.last_error = f"{type(e).__name__}: {e}"
            log.exception("%s %s raised (run %d); it keeps running", t.kind, t.name, t.runs + 1)
        finally:
            t.runs += 1

    async def _run_interval(self, t: _Timer) -> None:
        # Ticks at start + k * interval on the monotonic clock (no drift); the
        # first tick comes one interval after start, as in Faust.
        interval = float(t.interval or 0.0)
        loop = asyncio.get_running_loop()
        start = loop.time()
        k = 1
        while True:
            due = start + k * interval
            t.next_run = self.clock() + max(0.0, due - loop.time())
            await asyncio.sleep(max(0.0, due - loop.time()))
            await self._tick(t)
            now = loop.time()
            next_k = k + 1
            if start + next_k * interval < now:  # the tick ran past later ticks
                next_k = int((now - start) / interval) + 1
                t.overlaps += next_k - (k + 1)
                log.warning(
                    "Timer %s is overlapping (interval=%s runtime=%.3f)",
                    t.name,
                    interval,
                    now - due,
                )
            k = next_k

    async def _run_cron(self, t: _Timer) -> None:
        assert t.schedule is not None
        while True:
            now = datetime.fromtimestamp(self.clock(), UTC)
            due = t.schedule.next_after(now, t.tz).timestamp()
            t.next_run = due
            # Sleep in slices so a wall-clock jump (NTP, suspend) is noticed.
            while (left := due - self.clock()) > 0:
                await asyncio.sleep(min(left, 30.0))
            await self._tick(t)


def _service(app: Any) -> TimerService:
    svc = getattr(app, "_sabot_timer_service", None)
    if svc is None:
        svc = TimerService(app)
        app._sabot_timer_service = svc
        app.add_service(svc, priority=SERVICE_PRIORITY)
    return svc


def timer(
    app: Any,
    interval: float | timedelta,
    on_leader: bool = False,
    *,
    name: str | None = None,
    **_faust_options: Any,
) -> Callable[[Callable], Callable]:
    """``@app.timer(interval, on_leader=False)``: calls ``async def f()`` (or
    ``f(app)``) every ``interval`` seconds while the app runs. Faust's other
    options (``traced``, ``max_drift_correction``) are accepted and ignored."""
    seconds = interval.total_seconds() if isinstance(interval, timedelta) else float(interval)
    if seconds <= 0:
        raise ValueError(f"app.timer: interval must be positive, got {interval!r}")

    def decorate(fun: Callable[..., Any]) -> Callable[..., Any]:
        _service(app).add(
            _Timer(fun, kind="timer", on_leader=on_leader, interval=seconds, name=name)
        )
        return fun

    return decorate


def crontab(
    app: Any,
    cron_format: str,
    *,
    timezone: Any = None,
    on_leader: bool = False,
    name: str | None = None,
    **_faust_options: Any,
) -> Callable[[Callable], Callable]:
    """``@app.crontab("*/5 * * * *", timezone=None, on_leader=False)``: calls
    ``async def f()`` (or ``f(app)``) at each time the cron expression matches,
    on the wall clock of ``timezone`` (a tzinfo such as ``zoneinfo.ZoneInfo``
    or a pytz zone, or an IANA name; UTC when None)."""
    schedule = CronSchedule(cron_format)
    tz = _resolve_tz(timezone)

    def decorate(fun: Callable[..., Any]) -> Callable[..., Any]:
        _service(app).add(
            _Timer(fun, kind="crontab", on_leader=on_leader, schedule=schedule, tz=tz, name=name)
        )
        return fun

    return decorate
