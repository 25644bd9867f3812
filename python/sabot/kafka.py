"""Kafka sources and sinks, and topic admin helpers.

Start the repo's broker with ``make kafka-up`` (``scripts/kafka.sh up``); it
listens on :data:`DEFAULT_BOOTSTRAP` (``127.0.0.1:19092``, or the
``SABOT_KAFKA_BOOTSTRAP`` environment variable).

.. code-block:: python

    import sabot as sb

    env = sb.Environment(parallelism=1)
    orders = sb.kafka.source(env, "orders", format="json", schema=schema,
                             start="earliest", stop_at_end=True)
    orders.filter(sb.col("amount") > 100).write_kafka("big-orders", key="customer")
    env.execute()

See docs/kafka.md for every option, the bad-record policies and the delivery
guarantees.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from sabot import _sabot

if TYPE_CHECKING:
    from sabot.datastream import DataStream, Environment

DEFAULT_BOOTSTRAP = os.environ.get("SABOT_KAFKA_BOOTSTRAP", "127.0.0.1:19092")
"""The bootstrap address of the repo's broker (``scripts/kafka.sh``)."""

METADATA_COLUMNS = ("key", "topic", "partition", "offset", "timestamp", "headers")
"""Metadata columns a source can add: key (binary), topic (string), partition
(int32), offset (int64), timestamp (timestamp[ms, UTC]), headers
(map<string, binary>)."""


class KafkaSourceStats:
    """Live counters of one Kafka source (summed over its parallel instances)."""

    def __init__(self, native: Any) -> None:
        self._native = native

    def snapshot(self) -> dict[str, int]:
        """messages, bytes, rows, batches, bad_records, skipped, dead_lettered,
        rebalances, assigned (partitions now), pauses, commits, commit_failures,
        stale_dropped, restored_partitions (resumed from a checkpoint),
        checkpoint_commits (offset commits on checkpoint completion)."""
        return dict(self._native.snapshot())


class KafkaSinkStats:
    """Live counters of one Kafka sink: messages, delivered, failed, bytes; with
    ``delivery="exactly_once"`` also transactions, aborted (retried with a later
    checkpoint), committed_messages, recommitted_epochs / skipped_epochs (restored
    epochs committed on open / found already committed) and pending_bytes
    (buffered until a checkpoint completes)."""

    def __init__(self, native: Any) -> None:
        self._native = native

    def snapshot(self) -> dict[str, int]:
        return dict(self._native.snapshot())


def _format_options(
    format: str,
    schema: pa.Schema | None,
    avro_schema: str | None,
    confluent_wire_format: bool,
    confluent_schema_id: int,
    csv_delimiter: str,
    infer_sample_size: int,
) -> dict[str, Any]:
    return {
        "name": format,
        "schema": schema.__arrow_c_schema__() if schema is not None else None,
        "avro_schema": avro_schema,
        "confluent_wire_format": confluent_wire_format,
        "confluent_schema_id": confluent_schema_id,
        "csv_delimiter": csv_delimiter,
        "infer_sample_size": infer_sample_size,
    }


def source(
    env: Environment,
    topics: str | Sequence[str],
    *,
    bootstrap: str = DEFAULT_BOOTSTRAP,
    group: str | None = None,
    format: str = "json",
    schema: pa.Schema | None = None,
    start: str = "committed",
    start_timestamp_ms: int = 0,
    reset: str = "earliest",
    assignment: str = "group",
    metadata: Sequence[str] = (),
    metadata_prefix: str = "",
    bad_records: str = "fail",
    dead_letter_topic: str | None = None,
    stop_at_end: bool = False,
    end_offsets: Mapping[tuple[str, int], int] | None = None,
    batch_size: int = 8192,
    max_wait_ms: int = 20,
    commit_interval_ms: int = 1000,
    pause_after_ms: int = 500,
    max_prefetch_bytes: int = 64 << 20,
    consumer_config: Mapping[str, Any] | None = None,
    dead_letter_config: Mapping[str, Any] | None = None,
    avro_schema: str | None = None,
    confluent_wire_format: bool = False,
    confluent_schema_id: int = -1,
    csv_delimiter: str = ",",
    infer_sample_size: int = 1000,
    parallelism: int = 1,
) -> DataStream:
    """A stream of the messages of ``topics`` (names, or one regex starting with
    ``^``), decoded by ``format`` (json, avro, ipc, csv, raw, string).

    All ``parallelism`` instances join consumer group ``group`` (default: a new
    group per job); Kafka assigns them the partitions. ``start`` is where a
    partition starts the first time this job reads it: ``committed`` (the group's
    committed offset, else ``reset``), ``earliest``, ``latest`` or ``timestamp``
    (``start_timestamp_ms``). ``assignment="static"`` instead spreads the
    partitions of the named topics over the instances by a fixed rule (no
    rebalances; the group is used only to commit offsets when checkpoints
    complete): required for exactly-once (docs/exactly_once.md). With checkpoints
    the source stores its offsets in them and resumes from there on restore, at
    any parallelism. ``bad_records``: ``fail`` | ``skip`` |
    ``dead_letter`` (needs ``dead_letter_topic``). ``stop_at_end`` makes the
    stream bounded: it ends when every partition reached the end offset it had
    when the job first read it. The returned stream has a ``kafka_stats``
    attribute (:class:`KafkaSourceStats`).
    """
    from sabot.datastream import DataStream

    if isinstance(topics, str):
        topics = [topics]
    for m in metadata:
        if m not in METADATA_COLUMNS:
            raise ValueError(f"unknown metadata column {m!r}; expected one of {METADATA_COLUMNS}")
    options = {
        "bootstrap": bootstrap,
        "topics": list(topics),
        "group": group,
        "start": start,
        "start_timestamp_ms": start_timestamp_ms,
        "reset": reset,
        "assignment": assignment,
        "format": _format_options(
            format,
            schema,
            avro_schema,
            confluent_wire_format,
            confluent_schema_id,
            csv_delimiter,
            infer_sample_size,
        ),
        "metadata": list(metadata),
        "metadata_prefix": metadata_prefix,
        "bad_records": bad_records,
        "dead_letter_topic": dead_letter_topic,
        "stop_at_end": stop_at_end,
        "end_offsets": dict(end_offsets) if end_offsets else None,
        "batch_size": batch_size,
        "max_wait_ms": max_wait_ms,
        "commit_interval_ms": commit_interval_ms,
        "pause_after_ms": pause_after_ms,
        "max_prefetch_bytes": max_prefetch_bytes,
        "consumer_config": dict(consumer_config or {}),
        "dead_letter_config": dict(dead_letter_config or {}),
    }
    native, stats = _sabot.kafka_source(env._native, options, parallelism)
    stream = DataStream(env, native)
    stream.kafka_stats = KafkaSourceStats(stats)  # type: ignore[attr-defined]
    return stream


def sink(
    stream: DataStream,
    topic: str,
    *,
    bootstrap: str = DEFAULT_BOOTSTRAP,
    format: str = "json",
    schema: pa.Schema | None = None,
    key: str | None = None,
    headers: str | None = None,
    exclude_key_from_value: bool = False,
    producer_config: Mapping[str, Any] | None = None,
    max_rows_per_batch: int = 8192,
    flush_timeout_ms: int = 120_000,
    delivery: str = "at_least_once",
    uid: str | None = None,
    transaction_timeout_ms: int = 60_000,
    max_pending_bytes: int = 256 << 20,
    avro_schema: str | None = None,
    confluent_wire_format: bool = False,
    confluent_schema_id: int = -1,
    csv_delimiter: str = ",",
) -> KafkaSinkStats:
    """Writes every row of ``stream`` as one message to ``topic`` (``ipc``: one
    message per batch). ``key`` names the key column (partitioned like Kafka's
    Java default partitioner); ``headers`` a map<string, binary|string> column.
    ``producer_config`` passes librdkafka producer properties (compression.type,
    linger.ms, batch.size, acks, message.timeout.ms, ...). Batches are encoded in
    slices of at most ``max_rows_per_batch`` rows (for ``ipc``: rows per message).
    A delivery error fails the job.

    ``delivery="at_least_once"`` (default) produces rows as they arrive; a
    checkpoint waits for their acknowledgement. ``delivery="exactly_once"`` holds
    the messages of each checkpoint interval (in memory, then in the checkpoint)
    and produces them in one Kafka transaction when the checkpoint completes, with
    transactional id ``<job_name>-<uid>-<instance>`` (``uid`` defaults to the
    operator name); consumers reading with ``isolation.level=read_committed`` see
    every result once. ``max_pending_bytes`` bounds the held bytes per instance.
    See docs/exactly_once.md."""
    options = {
        "bootstrap": bootstrap,
        "topic": topic,
        "format": _format_options(
            format,
            schema,
            avro_schema,
            confluent_wire_format,
            confluent_schema_id,
            csv_delimiter,
            1000,
        ),
        "key": key,
        "headers": headers,
        "exclude_key_from_value": exclude_key_from_value,
        "producer_config": dict(producer_config or {}),
        "max_rows_per_batch": max_rows_per_batch,
        "flush_timeout_ms": flush_timeout_ms,
        "delivery": delivery,
        "uid": uid,
        "transaction_timeout_ms": transaction_timeout_ms,
        "max_pending_bytes": max_pending_bytes,
    }
    return KafkaSinkStats(_sabot.kafka_sink(stream._native, options))


# -- admin --------------------------------------------------------------------------


def create_topic(
    name: str,
    partitions: int = 1,
    *,
    bootstrap: str = DEFAULT_BOOTSTRAP,
    config: Mapping[str, Any] | None = None,
    exist_ok: bool = False,
    timeout_ms: int = 30_000,
) -> None:
    """Creates a topic (replication factor 1) and waits until brokers serve it.
    ``config`` holds topic configs, e.g. ``{"max.message.bytes": 1000}``."""
    _sabot.kafka_create_topic(bootstrap, name, partitions, dict(config or {}), exist_ok, timeout_ms)


def delete_topic(
    name: str,
    *,
    bootstrap: str = DEFAULT_BOOTSTRAP,
    missing_ok: bool = True,
    timeout_ms: int = 30_000,
) -> None:
    """Deletes a topic."""
    _sabot.kafka_delete_topic(bootstrap, name, missing_ok, timeout_ms)


def watermarks(
    topic: str, *, bootstrap: str = DEFAULT_BOOTSTRAP, timeout_ms: int = 10_000
) -> list[tuple[int, int]]:
    """(low, high) offsets of every partition of ``topic``."""
    return [tuple(p) for p in _sabot.kafka_watermarks(bootstrap, topic, timeout_ms)]


def partition_for_key(key: bytes | str, partitions: int) -> int:
    """The partition Kafka's Java default partitioner picks for ``key``:
    ``(murmur2(key) & 0x7fffffff) % partitions``."""
    if isinstance(key, str):
        key = key.encode()
    return int(_sabot.kafka_partition_for_key(key, partitions))


def broker_available(bootstrap: str = DEFAULT_BOOTSTRAP, timeout_s: float = 1.0) -> bool:
    """True when something accepts TCP connections at ``bootstrap``."""
    import socket

    host, _, port = bootstrap.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout_s):
            return True
    except OSError:
        return False


__all__ = [
    "DEFAULT_BOOTSTRAP",
    "METADATA_COLUMNS",
    "KafkaSinkStats",
    "KafkaSourceStats",
    "broker_available",
    "create_topic",
    "delete_topic",
    "partition_for_key",
    "sink",
    "source",
    "watermarks",
]


# --- a consumer driven from Python (the Faust-compatible App) -----------------


class Polled:
    """What one :meth:`BatchConsumer.poll` returned.

    ``messages``: one row per message, columns topic, partition, offset,
    timestamp (ms, -1 when absent), key and value (binary). ``rows``: the
    decoded values when the consumer has a format (one row per decoded message,
    ``row_message[i]`` is its row in ``messages``), else None. ``errors``:
    ``(message index, reason)`` of values that failed to decode. ``warnings``:
    consumer errors librdkafka reported and retries on its own."""

    __slots__ = ("errors", "messages", "row_message", "rows", "warnings")

    def __init__(
        self,
        messages: pa.RecordBatch,
        rows: pa.RecordBatch | None,
        row_message: pa.Int32Array | None,
        errors: list[tuple[int, str]],
        warnings: list[str],
    ) -> None:
        self.messages = messages
        self.rows = rows
        self.row_message = row_message
        self.errors = errors
        self.warnings = warnings

    def __len__(self) -> int:
        return self.messages.num_rows


class BatchConsumer:
    """A group consumer whose polls come back as Arrow batches, fetched and
    decoded natively (librdkafka and Sabot's format decoders), with offsets
    committed only by :meth:`commit` (auto commit is off).

    .. code-block:: python

        c = sb.kafka.BatchConsumer(["events"], group="app", format="json", schema=schema)
        polled = c.poll(max_messages=10_000, timeout=0.1)
        ...  # process polled.rows
        c.commit([("events", 0, next_offset)])
        c.close()

    ``poll`` and ``commit`` release the GIL while they wait on the broker."""

    def __init__(
        self,
        topics: str | Sequence[str],
        *,
        group: str,
        bootstrap: str = DEFAULT_BOOTSTRAP,
        reset: str = "earliest",
        format: str | None = None,
        schema: pa.Schema | None = None,
        config: Mapping[str, Any] | None = None,
    ) -> None:
        topic_list = [topics] if isinstance(topics, str) else list(topics)
        fmt = None
        if format is not None:
            fmt = _format_options(format, schema, None, False, -1, ",", 1000)
        self.topics = topic_list
        self.group = group
        self._native = _sabot.KafkaBatchConsumer(
            bootstrap, topic_list, group, reset, fmt, {k: str(v) for k, v in (config or {}).items()}
        )

    def poll(self, max_messages: int = 8192, timeout: float = 0.1) -> Polled:
        """Waits up to ``timeout`` seconds for a first message, then takes what
        is already fetched, up to ``max_messages``."""
        msgs, rows, index, errors, warnings = self._native.poll(
            int(max_messages), int(timeout * 1000)
        )
        messages = pa.record_batch(_CapsuleBatch(msgs))
        decoded = pa.record_batch(_CapsuleBatch(rows)) if rows is not None else None
        row_message = pa.record_batch(_CapsuleBatch(index)).column(0) if index is not None else None
        return Polled(messages, decoded, row_message, list(errors), list(warnings))

    def commit(self, offsets: Sequence[tuple[str, int, int]]) -> None:
        """Commits ``(topic, partition, next offset to read)`` positions
        synchronously."""
        self._native.commit([(str(t), int(p), int(o)) for t, p, o in offsets])

    def assignment(self) -> list[tuple[str, int, int]]:
        """The partitions assigned to this consumer now."""
        return [tuple(x) for x in self._native.assignment()]

    def close(self) -> None:
        """Leaves the group. Idempotent."""
        self._native.close()

    def __enter__(self) -> BatchConsumer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _CapsuleBatch:
    """Adapts a (schema capsule, array capsule) pair to __arrow_c_array__."""

    __slots__ = ("_capsules",)

    def __init__(self, capsules: tuple[Any, Any]) -> None:
        self._capsules = capsules

    def __arrow_c_array__(self, requested_schema: Any = None) -> tuple[Any, Any]:
        return self._capsules
