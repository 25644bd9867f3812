"""Windows of windowed tables, as in Faust: tumbling and hopping.

A window is a pair ``(start, end)`` of float seconds with ``end = start + size
- 0.1`` (Faust's ranges, so that windows of a tumbling table do not share an
edge); the changelog key of a windowed value is ``[key, [start, end]]``.

``TumblingWindow(size, expires=)`` is ``HoppingWindow(size, size, expires=)``.
A window is *stale* (closed) once the table's time has reached ``start +
expires`` (aligned to the step, as Faust computes it); without ``expires``
windows never close. Sizes, steps and expiries are seconds or
``datetime.timedelta``.
"""

from __future__ import annotations

import datetime as _dt
import math
import operator
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

__all__ = [
    "HoppingWindow",
    "SlidingWindow",
    "TumblingWindow",
    "Window",
    "WindowRange",
    "WindowSet",
    "WindowWrapper",
    "WindowedItemsView",
    "WindowedKeysView",
    "WindowedValuesView",
    "want_seconds",
]

WindowRange = tuple[float, float]


def want_seconds(value: Any, what: str = "a duration") -> float:
    """Seconds of a number or a ``timedelta``."""
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{what} must be seconds or a timedelta, got {type(value).__name__}")
    return float(value)


class Window:
    """Base class of windows."""

    size: float
    step: float
    expires: float | None

    def ranges(self, timestamp: float) -> list[WindowRange]:
        raise NotImplementedError

    def current(self, timestamp: float) -> WindowRange:
        raise NotImplementedError

    def stale(self, timestamp: float, latest_timestamp: float) -> bool:
        raise NotImplementedError


class HoppingWindow(Window):
    """Windows of ``size`` seconds starting every ``step`` seconds."""

    def __init__(self, size: Any, step: Any, expires: Any = None) -> None:
        self.size = want_seconds(size, "window size")
        self.step = want_seconds(step, "window step")
        if self.size <= 0 or self.step <= 0:
            raise ValueError(f"window size and step must be > 0, got {self.size}, {self.step}")
        if self.step > self.size:
            raise ValueError(f"window step {self.step} is larger than its size {self.size}")
        self.expires = want_seconds(expires, "window expires") if expires else None

    def _range(self, start: float) -> WindowRange:
        return (float(start), float(start + self.size - 0.1))

    def _current_start(self, timestamp: float) -> float:
        return math.floor(timestamp / self.step) * self.step

    def _earliest_start(self, timestamp: float) -> float:
        return self._current_start(timestamp) - self.size + self.step

    def ranges(self, timestamp: float) -> list[WindowRange]:
        """Every window that contains ``timestamp``, earliest first."""
        start = self._earliest_start(timestamp)
        last = self._current_start(timestamp)
        out = []
        while start <= last + 1e-9:
            out.append(self._range(start))
            start += self.step
        return out

    def current(self, timestamp: float) -> WindowRange:
        """The latest window that contains ``timestamp``."""
        return self._range(self._current_start(timestamp))

    def earliest(self, timestamp: float) -> WindowRange:
        """The earliest window that contains ``timestamp``."""
        return self._range(self._earliest_start(timestamp))

    def delta(self, timestamp: float, d: Any) -> WindowRange:
        """The current window ``d`` seconds before ``timestamp``."""
        return self.current(timestamp - want_seconds(d))

    def stale_before(self, latest_timestamp: float) -> float | None:
        """Windows starting at or before this are stale (None: none ever is)."""
        if not self.expires:
            return None
        return self._current_start(latest_timestamp - self.expires)

    def stale(self, timestamp: float, latest_timestamp: float) -> bool:
        """Whether a window starting at ``timestamp`` is stale once the table
        has seen ``latest_timestamp``."""
        before = self.stale_before(latest_timestamp)
        return before is not None and timestamp <= before

    def __repr__(self) -> str:
        return f"{type(self).__name__}(size={self.size}, step={self.step}, expires={self.expires})"


class TumblingWindow(HoppingWindow):
    """Back-to-back windows of ``size`` seconds."""

    def __init__(self, size: Any, expires: Any = None) -> None:
        super().__init__(size, size, expires)

    def __repr__(self) -> str:
        return f"TumblingWindow(size={self.size}, expires={self.expires})"


class SlidingWindow(Window):
    """Faust's sliding window (``before``/``after`` a timestamp) names a range
    per event; it is accepted for completeness, but tables take tumbling and
    hopping windows only."""

    def __init__(self, before: Any, after: Any, expires: Any = None) -> None:
        self.before = want_seconds(before)
        self.after = want_seconds(after)
        self.size = self.before + self.after
        self.step = self.size
        self.expires = want_seconds(expires) if expires else None

    def ranges(self, timestamp: float) -> list[WindowRange]:
        return [(timestamp - self.before, timestamp + self.after)]

    def current(self, timestamp: float) -> WindowRange:
        return self.ranges(timestamp)[0]

    def stale(self, timestamp: float, latest_timestamp: float) -> bool:
        return bool(self.expires) and timestamp <= latest_timestamp - self.expires


# --------------------------------------------------------------------------
# Windowed tables: ``table.tumbling(...)`` / ``table.hopping(...)`` return a
# WindowWrapper; ``wrapper[key]`` is a WindowSet.


def _current_event() -> Any:
    try:
        from sabot.faust.events import current_event
    except ImportError:
        return None
    return current_event()


def _timestamp_of(value: Any, what: str) -> float:
    if isinstance(value, _dt.datetime):
        return value.timestamp()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    raise TypeError(f"{what} must be a datetime or seconds, got {type(value).__name__}")


class WindowWrapper:
    """The windowed view of a table. ``wrapper[key]`` is the key's
    :class:`WindowSet`; ``wrapper[key] += 1`` updates every window that
    contains the event's time, which is (as in Faust) the time of the message
    being processed unless the view is ``relative_to_now()`` (the wall clock),
    ``relative_to_field(Model.field)`` (a field of the event's value) or
    ``relative_to(fn)``; with no event, the wall clock."""

    def __init__(self, table: Any, *, relative_to: Any = None, now: bool = False) -> None:
        self.table = table
        self._relative_to = relative_to
        self._now = now
        self._fixed: float | None = None

    # -- time

    def clone(self, *, relative_to: Any = None, now: bool = False) -> WindowWrapper:
        return WindowWrapper(self.table, relative_to=relative_to, now=now)

    def relative_to(self, ts: Any) -> WindowWrapper:
        """Windows by ``ts``: a callable of the event, a field descriptor, or a
        fixed datetime / seconds."""
        from sabot.faust.models import FieldDescriptor

        if isinstance(ts, FieldDescriptor):
            return self.relative_to_field(ts)
        if callable(ts):
            return self.clone(relative_to=ts)
        fixed = _timestamp_of(ts, "relative_to")
        wrapper = self.clone()
        wrapper._fixed = fixed
        return wrapper

    def relative_to_now(self) -> WindowWrapper:
        """Windows by the wall clock (expiry follows it too)."""
        return self.clone(now=True)

    def relative_to_field(self, field: Any) -> WindowWrapper:
        """Windows by a field of the event's value (``Model.field``; seconds or
        a datetime)."""
        from sabot.faust.models import FieldDescriptor

        if not isinstance(field, FieldDescriptor):
            raise TypeError(
                f"relative_to_field takes a Record field (Model.field), got {type(field).__name__}"
            )

        def of(event: Any) -> float:
            return _timestamp_of(field.getattr(event.value), f"field {field.ident}")

        return self.clone(relative_to=of)

    def relative_to_stream(self) -> WindowWrapper:
        """Windows by the time of the message being processed (the default)."""
        return self.clone()

    def get_timestamp(self, event: Any = None) -> float:
        if self._now:
            return time.time()
        if self._fixed is not None:
            return self._fixed
        event = event if event is not None else _current_event()
        if event is None:
            return time.time()
        if self._relative_to is not None:
            return _timestamp_of(self._relative_to(event), "relative_to")
        return float(event.message.timestamp)

    @property
    def _wall_clock(self) -> bool:
        return self._now or (self._fixed is None and _current_event() is None)

    # -- mapping

    @property
    def name(self) -> str:
        return self.table.name

    def __getitem__(self, key: Any) -> WindowSet:
        return WindowSet(key, self.table, self, _current_event())

    def __setitem__(self, key: Any, value: Any) -> None:
        if isinstance(value, WindowSet):
            if value.table is self.table and value.key == key:
                return  # ``wrapper[k] += n`` already applied itself
            value = value.value()
        self.table._windowed_update(
            key, self.get_timestamp(), lambda old: value, wall_clock=self._wall_clock
        )

    def __delitem__(self, key: Any) -> None:
        self.table._windowed_delete(key, self.get_timestamp())

    def __contains__(self, key: Any) -> bool:
        return self.table._windowed_contains(key, self.get_timestamp())

    def __iter__(self) -> Iterator[Any]:
        return iter(self.keys())

    def __len__(self) -> int:
        return len(self.keys())

    def keys(self) -> WindowedKeysView:
        """Keys with a value in some open window."""
        return WindowedKeysView(self)

    def items(self, event: Any = None) -> WindowedItemsView:
        """(key, value) of the window current at the view's time; ``.now()``,
        ``.current()`` and ``.delta(d)`` pick another window."""
        return WindowedItemsView(self, event)

    def values(self, event: Any = None) -> WindowedValuesView:
        return WindowedValuesView(self, event)

    def on_recover(self, fn: Any) -> Any:
        return self.table.on_recover(fn)

    def as_ansitable(self, **kwargs: Any) -> str:
        rows = [f"{k!r}: {v!r}" for k, v in self.items()]
        return "\n".join([self.name, *rows])

    def __repr__(self) -> str:
        return f"<WindowWrapper of {self.table!r}>"


class WindowSet:
    """The windows of one key. Arithmetic assignment (``+=``, ``-=``, ...)
    applies to every window containing the event's time; ``current()`` /
    ``value()`` read the latest window containing it, ``now()`` the one
    containing the wall clock, ``delta(d)`` the one ``d`` earlier."""

    def __init__(self, key: Any, table: Any, wrapper: WindowWrapper, event: Any = None) -> None:
        self.key = key
        self.table = table
        self.wrapper = wrapper
        self.event = event

    def apply(self, op: Callable[[Any, Any], Any], value: Any, event: Any = None) -> WindowSet:
        wrapper = self.wrapper
        self.table._windowed_update(
            self.key,
            wrapper.get_timestamp(event if event is not None else self.event),
            lambda old: op(old, value),
            wall_clock=wrapper._wall_clock,
        )
        return self

    def value(self, event: Any = None) -> Any:
        ts = self.wrapper.get_timestamp(event if event is not None else self.event)
        return self.table._windowed_get(self.key, self.table.window.current(ts))

    def current(self, event: Any = None) -> Any:
        return self.value(event)

    def now(self) -> Any:
        return self.table._windowed_get(self.key, self.table.window.current(time.time()))

    def delta(self, d: Any, event: Any = None) -> Any:
        ts = self.wrapper.get_timestamp(event if event is not None else self.event)
        return self.table._windowed_get(self.key, self.table.window.delta(ts, d))

    def __getitem__(self, w: Any) -> Any:
        if isinstance(w, tuple) and len(w) == 2:
            return self.table._windowed_get(self.key, (float(w[0]), float(w[1])))
        return self.value(w)

    def __iadd__(self, other: Any) -> WindowSet:
        return self.apply(operator.add, other)

    def __isub__(self, other: Any) -> WindowSet:
        return self.apply(operator.sub, other)

    def __imul__(self, other: Any) -> WindowSet:
        return self.apply(operator.mul, other)

    def __itruediv__(self, other: Any) -> WindowSet:
        return self.apply(operator.truediv, other)

    def __ifloordiv__(self, other: Any) -> WindowSet:
        return self.apply(operator.floordiv, other)

    def __imod__(self, other: Any) -> WindowSet:
        return self.apply(operator.mod, other)

    def __ipow__(self, other: Any) -> WindowSet:
        return self.apply(operator.pow, other)

    def __ilshift__(self, other: Any) -> WindowSet:
        return self.apply(operator.lshift, other)

    def __irshift__(self, other: Any) -> WindowSet:
        return self.apply(operator.rshift, other)

    def __iand__(self, other: Any) -> WindowSet:
        return self.apply(operator.and_, other)

    def __ixor__(self, other: Any) -> WindowSet:
        return self.apply(operator.xor, other)

    def __ior__(self, other: Any) -> WindowSet:
        return self.apply(operator.or_, other)

    def __repr__(self) -> str:
        return f"<WindowSet {self.key!r} of table {self.table.name!r}>"


class _WindowedView:
    def __init__(self, wrapper: WindowWrapper, event: Any = None) -> None:
        self.wrapper = wrapper
        self.event = event

    def _items(self, window_range: WindowRange) -> Iterator[tuple[Any, Any]]:
        return self.wrapper.table._window_items(window_range)

    def _range_at(self, ts: float) -> WindowRange:
        return self.wrapper.table.window.current(ts)

    def _default_range(self) -> WindowRange:
        return self._range_at(self.wrapper.get_timestamp(self.event))


class WindowedItemsView(_WindowedView):
    """(key, value) pairs of one window of every key."""

    def __iter__(self) -> Iterator[tuple[Any, Any]]:
        return self._items(self._default_range())

    def now(self) -> Iterator[tuple[Any, Any]]:
        return self._items(self._range_at(time.time()))

    def current(self, event: Any = None) -> Iterator[tuple[Any, Any]]:
        ts = self.wrapper.get_timestamp(event if event is not None else self.event)
        return self._items(self._range_at(ts))

    def delta(self, d: Any, event: Any = None) -> Iterator[tuple[Any, Any]]:
        ts = self.wrapper.get_timestamp(event if event is not None else self.event)
        return self._items(self.wrapper.table.window.delta(ts, d))


class WindowedValuesView(WindowedItemsView):
    """Values of one window of every key."""

    def __iter__(self) -> Iterator[Any]:
        return (v for _, v in super().__iter__())

    def now(self) -> Iterator[Any]:  # type: ignore[override]
        return (v for _, v in super().now())

    def current(self, event: Any = None) -> Iterator[Any]:  # type: ignore[override]
        return (v for _, v in super().current(event))

    def delta(self, d: Any, event: Any = None) -> Iterator[Any]:  # type: ignore[override]
        return (v for _, v in super().delta(d, event))


class WindowedKeysView(_WindowedView):
    """Keys that have a value in some open window."""

    def __iter__(self) -> Iterator[Any]:
        return iter(self.wrapper.table._window_keys())

    def __len__(self) -> int:
        return len(self.wrapper.table._window_keys())

    def __contains__(self, key: object) -> bool:
        return key in self.wrapper.table._window_keys()
