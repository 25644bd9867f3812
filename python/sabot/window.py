"""Event time, watermarks and windows for the DataStream API.

    import sabot as sb

    counts = (
        bids.with_watermarks("dateTime", max_out_of_orderness="4s")
        .key_by("auction")
        .window(sb.hopping("10s", "2s"))
        .agg(num=sb.count(), top=sb.max("price"))
    )

Windows: :func:`tumbling`, :func:`hopping`, :func:`cumulate`, :func:`session`,
:func:`count_window`, :func:`global_window`. Aggregates: :func:`count`,
:func:`count_distinct`, :func:`sum`, :func:`min`, :func:`max`, :func:`mean`,
:func:`first`, :func:`last`, :func:`var`, :func:`stddev`, :func:`var_pop`,
:func:`stddev_pop`, :func:`collect_list`, :func:`udaf`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

Duration = int | str
"""Milliseconds as an int, or a string: ``"500ms"``, ``"10s"``, ``"5m"``, ``"1h"``, ``"1d"``."""

_UNITS = {"ms": 1, "s": 1000, "m": 60_000, "min": 60_000, "h": 3_600_000, "d": 86_400_000}


def to_millis(value: Duration) -> int:
    """Converts a :data:`Duration` to milliseconds."""
    if isinstance(value, bool):
        raise TypeError("a duration is an int (ms) or a string like '10s'")
    if isinstance(value, int):
        return value
    m = re.fullmatch(r"\s*(\d+)\s*(ms|s|m|min|h|d)\s*", str(value))
    if not m:
        raise ValueError(
            f"cannot read duration {value!r}; use e.g. '500ms', '10s', '5m', '1h', '1d'"
        )
    return int(m.group(1)) * _UNITS[m.group(2)]


@dataclass(frozen=True)
class Window:
    """A window assigner; build one with :func:`tumbling`, :func:`hopping`, ..."""

    kind: str
    params: dict[str, int] = field(default_factory=dict)


def tumbling(size: Duration, *, offset: Duration = 0) -> Window:
    """Fixed, non-overlapping windows of ``size``: ``[k*size + offset, (k+1)*size + offset)``."""
    return Window("tumbling", {"size_ms": to_millis(size), "offset_ms": to_millis(offset)})


def hopping(size: Duration, slide: Duration, *, offset: Duration = 0) -> Window:
    """Windows of ``size`` starting every ``slide`` (sliding windows). Rows are
    aggregated once into panes of gcd(size, slide) that the windows share."""
    return Window(
        "hopping",
        {"size_ms": to_millis(size), "slide_ms": to_millis(slide), "offset_ms": to_millis(offset)},
    )


def cumulate(max_size: Duration, step: Duration, *, offset: Duration = 0) -> Window:
    """Flink's CUMULATE: windows ``[start, start + k*step)`` for k = 1 ..
    max_size/step, all starting at the same multiple of ``max_size``."""
    return Window(
        "cumulate",
        {
            "size_ms": to_millis(max_size),
            "slide_ms": to_millis(step),
            "offset_ms": to_millis(offset),
        },
    )


def session(gap: Duration) -> Window:
    """Per key, rows closer than ``gap`` (inclusive) form one session; a session
    ends ``gap`` after its last row."""
    return Window("session", {"gap_ms": to_millis(gap)})


def count_window(size: int, slide: int | None = None) -> Window:
    """Windows of ``size`` rows per key; with ``slide``, one every ``slide`` rows
    over the last ``size`` rows (size must be a multiple of slide)."""
    if slide is None:
        return Window("count", {"count": size})
    return Window("count_sliding", {"count": size, "count_slide": slide})


def global_window() -> Window:
    """One window per key that never ends; it fires by its trigger
    (``every_rows`` / ``every``) and at end of input."""
    return Window("global", {})


@dataclass(frozen=True)
class Aggregate:
    """One aggregate: a function, its input column and, once named, its output."""

    function: str
    column: str | None = None
    fn: Callable[[pa.ListArray], pa.Array] | None = None


def count(column: str | None = None) -> Aggregate:
    """Rows (``count()``) or non-null values of ``column``."""
    return Aggregate("count", column)


def count_distinct(column: str) -> Aggregate:
    """Exact number of distinct non-null values."""
    return Aggregate("count_distinct", column)


def sum(column: str) -> Aggregate:  # noqa: A001
    return Aggregate("sum", column)


def min(column: str) -> Aggregate:  # noqa: A001
    return Aggregate("min", column)


def max(column: str) -> Aggregate:  # noqa: A001
    return Aggregate("max", column)


def mean(column: str) -> Aggregate:
    return Aggregate("mean", column)


def first(column: str) -> Aggregate:
    """The first value in arrival order."""
    return Aggregate("first", column)


def last(column: str) -> Aggregate:
    """The last value in arrival order."""
    return Aggregate("last", column)


def var(column: str) -> Aggregate:
    """Sample variance."""
    return Aggregate("var_samp", column)


def stddev(column: str) -> Aggregate:
    """Sample standard deviation."""
    return Aggregate("stddev_samp", column)


def var_pop(column: str) -> Aggregate:
    return Aggregate("var_pop", column)


def stddev_pop(column: str) -> Aggregate:
    return Aggregate("stddev_pop", column)


def collect_list(column: str) -> Aggregate:
    """All values, as a list column."""
    return Aggregate("collect_list", column)


def udaf(fn: Callable[[pa.ListArray], pa.Array], column: str) -> Aggregate:
    """A Python aggregate over Arrow arrays: ``fn`` gets a ``pyarrow.ListArray``
    (one element per group, holding that group's values) and returns an array
    with one result per element. Called once per window firing, not per row."""
    return Aggregate("udaf", column, fn)


def _aggregate_dicts(aggs: dict[str, Aggregate]) -> list[dict[str, Any]]:
    out = []
    for name, agg in aggs.items():
        if not isinstance(agg, Aggregate):
            raise TypeError(f"aggregate {name!r} must be built with sb.count(), sb.sum(...), ...")
        entry: dict[str, Any] = {"function": agg.function, "column": agg.column, "output": name}
        if agg.fn is not None:
            user_fn = agg.fn

            def adapter(schema_capsule: Any, array_capsule: Any, _fn: Any = user_fn) -> Any:
                lists = pa.Array._import_from_c_capsule(schema_capsule, array_capsule)
                result = _fn(lists)
                if not isinstance(result, pa.Array):
                    result = pa.array(result)
                return result.__arrow_c_array__()

            entry["udaf"] = adapter
        out.append(entry)
    return out


__all__ = [
    "Aggregate",
    "Duration",
    "Window",
    "collect_list",
    "count",
    "count_distinct",
    "count_window",
    "cumulate",
    "first",
    "global_window",
    "hopping",
    "last",
    "max",
    "mean",
    "min",
    "session",
    "stddev",
    "stddev_pop",
    "sum",
    "to_millis",
    "tumbling",
    "udaf",
    "var",
    "var_pop",
]
