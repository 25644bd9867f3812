"""Lookup joins: enrich a stream with rows of an external table, fetched by key.

    customers = sb.postgres_table(dsn, "customers", key="id")
    enriched = orders.lookup_join(customers, on="customer_id", how="left")

Each operator instance looks up the keys of a batch that are not in its LRU
cache with one query (``SELECT ... WHERE id = ANY($1)``) on lookup threads of
its own, so the job's worker threads never wait for the database. See
docs/lookup_join.md.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from sabot import _sabot
from sabot.window import Duration, to_millis

if TYPE_CHECKING:
    from sabot.datastream import DataStream

DEFAULT_POSTGRES_DSN = os.environ.get(
    "SABOT_POSTGRES_DSN", "host=127.0.0.1 port=15432 user=sabot dbname=sabot"
)
"""The DSN of the repo's PostgreSQL server (``make postgres-up``; ``make test``
starts it); ``SABOT_POSTGRES_DSN`` overrides it."""


@dataclass(frozen=True)
class PostgresTable:
    """A PostgreSQL table (or view) a lookup join reads, by ``key`` columns.

    ``columns`` picks the columns to fetch (default: every non-key column)."""

    dsn: str
    table: str
    key: tuple[str, ...]
    columns: tuple[str, ...] = field(default=())


def postgres_table(
    dsn: str | None,
    table: str,
    *,
    key: str | Sequence[str],
    columns: Sequence[str] | None = None,
) -> PostgresTable:
    """A PostgreSQL table for :meth:`DataStream.lookup_join`.

    ``dsn`` is a libpq connection string or URI (``None``: the repo's test
    server, :data:`DEFAULT_POSTGRES_DSN`); ``table`` may be schema-qualified;
    ``key`` names the table's key column(s)."""
    keys = (key,) if isinstance(key, str) else tuple(key)
    if not keys:
        raise ValueError("postgres_table needs at least one key column")
    return PostgresTable(dsn or DEFAULT_POSTGRES_DSN, table, keys, tuple(columns or ()))


class LookupStats:
    """Live counters of one lookup join (summed over its parallel instances)."""

    def __init__(self, native: Any) -> None:
        self._native = native

    def snapshot(self) -> dict[str, Any]:
        """Per input row with a non-null key, a cache hit or a miss:
        cache_hits (the key was cached, or already being looked up for an
        earlier batch: no new query; the latter also counted in
        inflight_waits), cache_misses (the row's key started a lookup). Then
        queries, keys_queried, rows_fetched, query_ms, retries,
        failed_batches, cache_entries, cache_evictions."""
        return dict(self._native.snapshot())

    @property
    def hit_rate(self) -> float:
        """cache_hits / (cache_hits + cache_misses); 0.0 before any row."""
        s = self.snapshot()
        total = s["cache_hits"] + s["cache_misses"]
        return s["cache_hits"] / total if total else 0.0


def lookup_join(
    stream: DataStream,
    table: PostgresTable,
    *,
    on: str | Sequence[str],
    how: str = "inner",
    cache_max_entries: int = 100_000,
    cache_ttl: Duration = 0,
    max_in_flight: int = 8,
    ordered: bool = True,
    connections: int = 1,
    max_retries: int = 3,
    retry_backoff: Duration = 100,
    on_error: str = "fail",
    key_by: bool = True,
) -> DataStream:
    """Joins each row of ``stream`` with the rows of ``table`` whose key equals
    the row's ``on`` columns (matched in order to ``table.key``).

    ``how``: ``"inner"`` (rows without a table row are dropped) or ``"left"``
    (they get nulls). A key with several table rows gives one row per table row.
    Output: the stream's columns, then the table's fetched columns (a name that
    is taken gets the prefix ``right_``).

    Cache: ``cache_max_entries`` keys per instance (LRU; 0 disables it), each
    valid for ``cache_ttl`` (0: until evicted); keys without a table row are
    cached too. ``max_in_flight`` batches per instance may wait for lookups
    (then the job applies backpressure); ``ordered=False`` emits each batch as
    soon as its lookups complete (never ahead of a later watermark).
    ``connections`` lookup threads (one database connection each) per instance.

    Errors: connection failures are retried ``max_retries`` times on a new
    connection (backoff ``retry_backoff``, doubling); then, or for errors a
    retry cannot cure (bad table, column or key type), the job fails naming the
    operator, table and column, or with ``on_error="dead_letter"`` the batch's
    rows go to :meth:`DataStream.lookup_errors` with an ``error`` column.

    ``key_by`` (default) hash-partitions the stream by ``on`` first, so each
    instance caches only its share of the keys. The returned stream has a
    ``lookup_stats`` attribute (:class:`LookupStats`)."""
    from sabot.datastream import DataStream

    if not isinstance(table, PostgresTable):
        raise TypeError("lookup_join takes a table from sb.postgres_table(...)")
    keys = [on] if isinstance(on, str) else list(on)
    if len(keys) != len(table.key):
        raise ValueError(
            f"lookup_join: on={keys} has {len(keys)} column(s) but the table's key "
            f"{list(table.key)} has {len(table.key)}"
        )
    if how not in ("inner", "left"):
        raise ValueError(f"lookup_join supports how='inner' or 'left', not {how!r}")
    if on_error not in ("fail", "dead_letter"):
        raise ValueError(f"on_error must be 'fail' or 'dead_letter', not {on_error!r}")
    options = {
        "dsn": table.dsn,
        "table": table.table,
        "table_keys": list(table.key),
        "columns": list(table.columns),
        "keys": keys,
        "how": how,
        "cache_max_entries": cache_max_entries,
        "cache_ttl_ms": to_millis(cache_ttl),
        "max_in_flight": max_in_flight,
        "ordered": ordered,
        "connections": connections,
        "max_retries": max_retries,
        "retry_backoff_ms": to_millis(retry_backoff),
        "on_error": on_error,
        "key_by": key_by,
    }
    native, stats = _sabot.postgres_lookup_join(stream._native, options)
    joined = DataStream(stream._env, native, stream._time)
    joined.lookup_stats = LookupStats(stats)  # type: ignore[attr-defined]
    return joined


# -- PostgreSQL helpers (tests, examples, benchmarks) --------------------------


def postgres_available(dsn: str | None = None) -> bool:
    """Whether a PostgreSQL server answers at ``dsn`` (default: the repo's)."""
    return bool(_sabot.postgres_available(dsn or DEFAULT_POSTGRES_DSN))


def postgres_execute(sql: str, *, dsn: str | None = None) -> int:
    """Runs ``sql`` (one or more statements); returns the rows affected."""
    return int(_sabot.postgres_execute(dsn or DEFAULT_POSTGRES_DSN, sql))


def postgres_load(
    name: str,
    table: pa.Table,
    *,
    primary_key: str | Sequence[str] | None = None,
    replace: bool = True,
    dsn: str | None = None,
) -> int:
    """Creates table ``name`` from ``table``'s schema (dropping an existing one
    when ``replace``), with ``primary_key``, and copies the rows in (COPY,
    CSV). Returns the number of rows loaded."""
    keys = [primary_key] if isinstance(primary_key, str) else list(primary_key or [])
    reader = pa.RecordBatchReader.from_batches(table.schema, table.to_batches())
    return int(
        _sabot.postgres_load(
            dsn or DEFAULT_POSTGRES_DSN, name, reader.__arrow_c_stream__(), keys, replace
        )
    )


__all__ = [
    "DEFAULT_POSTGRES_DSN",
    "LookupStats",
    "PostgresTable",
    "lookup_join",
    "postgres_available",
    "postgres_execute",
    "postgres_load",
    "postgres_table",
]
