"""Upsert sinks: the latest row per key of an updating stream, in a Kafka topic
(keyed messages, tombstones for deletes: made for compacted topics) or in
files rewritten on every checkpoint. See docs/upsert.md.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sabot import _sabot

if TYPE_CHECKING:
    from sabot.datastream import DataStream


class KafkaUpsertStats:
    """Live counters of one Kafka upsert sink."""

    def __init__(self, native: Any) -> None:
        self._native = native

    def snapshot(self) -> dict[str, int]:
        """upserts, tombstones, dropped_update_before, delivered, failed."""
        return dict(self._native.snapshot())


class UpsertFiles:
    """The files of an upsert file sink: ``<path>/part-<i>.<format>``."""

    def __init__(self, native: Any, path: str, format: str) -> None:
        self._native = native
        self.path = path
        self.format = format

    @property
    def files_written(self) -> int:
        """Files written so far (each checkpoint and the end, all instances)."""
        return int(self._native.count)


def _keys(key: str | Sequence[str]) -> list[str]:
    keys = [key] if isinstance(key, str) else list(key)
    if not keys:
        raise ValueError("an upsert sink needs key columns (the upsert key)")
    return keys


def kafka(
    stream: DataStream,
    topic: str,
    *,
    key: str | Sequence[str],
    bootstrap: str | None = None,
    key_format: str = "json",
    producer_config: Mapping[str, Any] | None = None,
    flush_timeout_ms: int = 120_000,
) -> KafkaUpsertStats:
    """Writes ``stream`` to ``topic`` as upserts by ``key``.

    Message key: the key columns as a JSON object (``key_format="json"``) or the
    text of the one key column (``"string"``). Value: the row as JSON without
    ``_op``; a delete (-D) is a tombstone (null value); update-before rows (-U)
    are dropped. A plain stream (no ``_op``) is all upserts. At least once: the
    producer is idempotent and every checkpoint waits for the deliveries before
    its barrier."""
    from sabot.kafka import DEFAULT_BOOTSTRAP

    if key_format not in ("json", "string"):
        raise ValueError(f"key_format must be 'json' or 'string', not {key_format!r}")
    options = {
        "bootstrap": bootstrap or DEFAULT_BOOTSTRAP,
        "topic": topic,
        "keys": _keys(key),
        "key_format": key_format,
        "producer_config": dict(producer_config or {}),
        "flush_timeout_ms": flush_timeout_ms,
    }
    return KafkaUpsertStats(_sabot.kafka_upsert_sink(stream._native, options))


def files(
    stream: DataStream,
    path: str | os.PathLike[str],
    *,
    key: str | Sequence[str],
    format: str = "parquet",
) -> UpsertFiles:
    """Keeps the materialized table of ``stream`` by ``key`` and writes it whole
    as ``<path>/part-<i>.parquet`` (or ``.csv``), one file per parallel
    instance, on every checkpoint and at the end of input, each time through a
    temporary file and an atomic rename."""
    if format not in ("parquet", "csv"):
        raise ValueError(f"format must be 'parquet' or 'csv', not {format!r}")
    options = {"path": os.fspath(path), "format": format, "keys": _keys(key)}
    return UpsertFiles(_sabot.file_upsert_sink(stream._native, options), os.fspath(path), format)


__all__ = ["KafkaUpsertStats", "UpsertFiles", "files", "kafka"]
