"""ROWS-based OVER aggregates over (updating) streams, and the partitioned file
sink: the Python side of ``DataStream.over_rows`` and
``DataStream.write_partitioned_files`` (both run natively; see docs/over.md and
docs/partitioned_files.md)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from sabot import _sabot
from sabot.window import Aggregate, _aggregate_dicts

if TYPE_CHECKING:
    from sabot.datastream import DataStream

__all__ = ["OverRowsStream", "write_partitioned_files"]


class OverRowsStream:
    """A keyed stream with a ROWS frame, waiting for its aggregates
    (:meth:`agg`); made by :meth:`DataStream.over_rows`."""

    def __init__(self, stream: DataStream, options: dict[str, Any]) -> None:
        self._stream = stream
        self._options = options

    def agg(self, **aggregates: Aggregate) -> DataStream:
        """The aggregates (``sb.count()``, ``sb.sum(c)``, ``sb.min(c)``,
        ``sb.max(c)``, ``sb.mean(c)``) of each row's frame -> an updating
        stream: the key columns, the row key, one column per aggregate, ``_op``;
        upsert key (keys, row key)."""
        from sabot.datastream import DataStream

        if not aggregates:
            raise ValueError("over_rows(...).agg() needs at least one aggregate")
        native = _sabot.over_rows(self._stream._native, self._options, _aggregate_dicts(aggregates))
        return DataStream(self._stream._env, native, None)


def over_rows(stream: DataStream, *, preceding: int, order_by: str, row_key: str) -> OverRowsStream:
    if preceding < 0:
        raise ValueError(f"over_rows(): preceding must be >= 0, got {preceding}")
    return OverRowsStream(
        stream, {"preceding": preceding, "order_by": order_by, "row_key": row_key}
    )


def write_partitioned_files(
    stream: DataStream,
    path: str | os.PathLike[str],
    *,
    partition_by: str | list[str] | tuple[str, ...],
    format: str = "csv",  # noqa: A002
    success_file: bool = True,
) -> DataStream:
    if isinstance(partition_by, str):
        partition_by = [partition_by]
    options = {
        "path": os.fspath(path),
        "partition_by": list(partition_by),
        "format": format,
        "success_file": success_file,
    }
    return stream._derive(_sabot.partitioned_file_sink(stream._native, options))
