"""Event-time joins of two streams: interval, window, ASOF and temporal joins.

    import sabot as sb

    pairs = bids.interval_join(auctions, on="auction", between=("-5s", "10s"))
    per_window = clicks.window_join(views, sb.tumbling("10s"), on="user", how="left")
    with_quote = trades.asof_join(quotes, on="symbol", tolerance="1s")
    with_rate = orders.temporal_join(rates, on="currency", deleted="gone", how="left")

Output rows: the left columns, then the right columns (a right column whose name
clashes gets the prefix ``right_``), then, for window joins, ``window_start`` and
``window_end``. Rows with a null key never match. Outer joins (``how="left"``,
``"right"``, ``"full"``) emit each unmatched row once, final, with the other
side's columns null, when the watermark shows no partner can arrive any more.
Rows behind the watermark go to ``.late()``. ASOF and temporal joins emit a
left row once the watermark reaches its time and support inner and left only.
See docs/joins.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sabot import _sabot
from sabot.window import Duration, Window, to_millis

if TYPE_CHECKING:
    from sabot.datastream import DataStream

_HOW = ("inner", "left", "right", "full")

On = str | Sequence[str] | tuple[str | Sequence[str], str | Sequence[str]]


def _keys(on: On) -> tuple[list[str], list[str]]:
    if isinstance(on, str):
        return [on], [on]
    if isinstance(on, tuple) and len(on) == 2 and not all(isinstance(x, str) for x in on):
        left, right = on
        lk = [left] if isinstance(left, str) else list(left)
        rk = [right] if isinstance(right, str) else list(right)
    elif isinstance(on, tuple) and len(on) == 2:
        # ("a", "b"): one key column named differently on each side.
        lk, rk = [on[0]], [on[1]]
    else:
        lk = rk = list(on)
    if not lk or len(lk) != len(rk):
        raise ValueError(f"on={on!r}: give the same number (>= 1) of left and right keys")
    return lk, rk


def _signed_millis(value: Duration) -> int:
    if isinstance(value, str) and value.strip().startswith("-"):
        return -to_millis(value.strip()[1:])
    if isinstance(value, str) and value.strip().startswith("+"):
        return to_millis(value.strip()[1:])
    return to_millis(value)


def _common(
    left: DataStream,
    right: DataStream,
    on: On,
    how: str,
    left_time: str | None,
    right_time: str | None,
    time_unit: str,
) -> dict[str, Any]:
    if how not in _HOW:
        raise ValueError(f"how={how!r}: use one of {', '.join(_HOW)}")
    lk, rk = _keys(on)
    lt = left_time or left._time
    rt = right_time or right._time
    if lt is None or rt is None:
        side = "left" if lt is None else "right"
        raise ValueError(
            f"the {side} stream has no event-time column: call with_watermarks(...) on it "
            f"or pass {side}_time=..."
        )
    return {
        "left_keys": lk,
        "right_keys": rk,
        "left_time": lt,
        "right_time": rt,
        "how": how,
        "time_unit": time_unit,
    }


def interval_join(
    left: DataStream,
    right: DataStream,
    *,
    on: On,
    between: tuple[Duration, Duration],
    how: str = "inner",
    left_time: str | None = None,
    right_time: str | None = None,
    time_unit: str = "ms",
) -> DataStream:
    """Rows of ``left`` and ``right`` with equal keys where
    ``right.time BETWEEN left.time + lower AND left.time + upper`` (inclusive),
    ``between=(lower, upper)``; durations may be negative (``"-5s"``)."""
    from sabot.datastream import DataStream

    options = _common(left, right, on, how, left_time, right_time, time_unit)
    lower, upper = (_signed_millis(b) for b in between)
    if lower > upper:
        raise ValueError(f"between={between!r}: the lower bound is above the upper bound")
    options["lower_ms"], options["upper_ms"] = lower, upper
    native = _sabot.interval_join(left._native, right._native, options)
    return DataStream(left._env, native, None)


def window_join(
    left: DataStream,
    right: DataStream,
    window: Window,
    *,
    on: On,
    how: str = "inner",
    left_time: str | None = None,
    right_time: str | None = None,
    time_unit: str = "ms",
) -> DataStream:
    """Rows of ``left`` and ``right`` with equal keys in the same tumbling or
    hopping window, emitted when the watermark passes the window's end."""
    from sabot.datastream import DataStream

    if not isinstance(window, Window) or window.kind not in ("tumbling", "hopping"):
        raise ValueError("window_join takes sb.tumbling(...) or sb.hopping(...)")
    options = _common(left, right, on, how, left_time, right_time, time_unit)
    options.update(window.params)
    options["kind"] = window.kind
    native = _sabot.window_join(left._native, right._native, options)
    return DataStream(left._env, native, None)


def _inner_or_left(how: str) -> None:
    if how not in ("inner", "left"):
        raise ValueError(f"how={how!r}: ASOF and temporal joins support inner and left")


def asof_join(
    left: DataStream,
    right: DataStream,
    *,
    on: On,
    tolerance: Duration | None = None,
    how: str = "inner",
    left_time: str | None = None,
    right_time: str | None = None,
    time_unit: str = "ms",
) -> DataStream:
    """Each left row with the right row of equal key and the greatest
    ``right.time <= left.time`` (ties: the one that arrived last), if
    ``left.time - right.time <= tolerance`` (``None``: no limit). A left row is
    emitted once the watermark reaches its time; ``how="left"`` keeps unmatched
    left rows with null right columns."""
    from sabot.datastream import DataStream

    _inner_or_left(how)
    options = _common(left, right, on, how, left_time, right_time, time_unit)
    if tolerance is not None:
        ms = _signed_millis(tolerance)
        if ms <= 0:
            raise ValueError(f"tolerance={tolerance!r}: must be > 0 (None for no limit)")
        options["tolerance_ms"] = ms
    native = _sabot.asof_join(left._native, right._native, options)
    return DataStream(left._env, native, None)


def temporal_join(
    left: DataStream,
    versions: DataStream,
    *,
    on: On,
    deleted: str | None = None,
    how: str = "inner",
    left_time: str | None = None,
    right_time: str | None = None,
    time_unit: str = "ms",
) -> DataStream:
    """Each left row with the version of its key valid at ``left.time`` in
    ``versions``, the changelog of a table keyed by ``on`` (each row a new
    version from its time on; a true value in the boolean column ``deleted``
    deletes the key from that time on). Flink's ``FOR SYSTEM_TIME AS OF``."""
    from sabot.datastream import DataStream

    _inner_or_left(how)
    options = _common(left, versions, on, how, left_time, right_time, time_unit)
    if deleted is not None:
        options["deleted"] = deleted
    native = _sabot.temporal_join(left._native, versions._native, options)
    return DataStream(left._env, native, None)


# -- regular join (operators/regular_join.h) -----------------------------------


def regular_join(
    left: DataStream,
    right: DataStream,
    *,
    on: On,
    how: str = "inner",
    where: Any = None,
    unique: str | None = None,
    state_ttl: Duration | None = None,
    left_ttl: Duration | None = None,
    right_ttl: Duration | None = None,
) -> DataStream:
    """The regular (unbounded) join: rows of ``left`` and ``right`` with equal
    keys, whatever their times, over append-only or updating inputs (an input
    with an ``_op`` column is a changelog: +I/+U rows are added, -U/-D rows
    retract an equal row added before).

    The result is updating (an ``_op`` column of +I and -D rows, no upsert key)
    unless it is an inner join of two append-only inputs, which emits plain
    rows. Outer joins emit an unmatched row at once, padded with nulls; when a
    partner arrives later, the padded row is retracted (-D) before the joined
    row is inserted (+I).

    ``where``: an extra condition over the output columns (a right column whose
    name clashes with a left one is ``right_<name>``); rows with equal keys join
    only where it is true, and for outer joins it decides what "matched" means.

    ``unique="right"`` (or ``"left"``) declares that side never has two rows with
    one key (a primary key, e.g. auctions by id); rows of the other side whose
    partner has arrived are then not kept in state. Both inputs must be
    append-only; a repeated key fails the job.

    ``state_ttl`` (or ``left_ttl`` / ``right_ttl`` per side) drops rows not
    written for that long (processing time); expiry emits nothing."""
    from sabot.datastream import DataStream, _expr_bytes

    if how not in _HOW:
        raise ValueError(f"how={how!r}: use one of {', '.join(_HOW)}")
    lk, rk = _keys(on)
    default = to_millis(state_ttl) if state_ttl is not None else 0
    lt = to_millis(left_ttl) if left_ttl is not None else default
    rt = to_millis(right_ttl) if right_ttl is not None else default
    if lt < 0 or rt < 0:
        raise ValueError("a state TTL must not be negative")
    if unique not in (None, "left", "right", "both"):
        raise ValueError(f"unique={unique!r}: use 'left', 'right', 'both' or None")
    options = {
        "left_keys": lk,
        "right_keys": rk,
        "how": how,
        "left_ttl_ms": lt,
        "right_ttl_ms": rt,
        "condition": _expr_bytes(where) if where is not None else None,
        "left_unique": unique in ("left", "both"),
        "right_unique": unique in ("right", "both"),
    }
    native = _sabot.regular_join(left._native, right._native, options)
    return DataStream(left._env, native, None)


# -- end of regular join --------------------------------------------------------
