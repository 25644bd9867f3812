"""The transport interface the Faust layer runs on (memory and Kafka).

A transport creates topics, produces records and hands out consumers. A
consumer returns whole *batches* (:class:`Batch`): columns of the records of one
poll, so the agent runtime touches Python objects only for what the agent body
needs. Offsets are committed explicitly by the agent runtime, only up to the
first record still in flight (see docs/design/faust.md).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class RecordMetadata:
    """Where a produced record landed."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int


class Batch:
    """The records of one consumer poll, as columns (Python lists, built lazily
    from ``arrow`` for Kafka). ``positions`` maps (topic, partition) to the offset
    after the last record of that partition in the batch: what may be committed
    once the whole batch is processed."""

    __slots__ = (
        "n",
        "topics",
        "partitions",
        "offsets",
        "timestamps",
        "keys",
        "values",
        "headers",
        "positions",
        "arrow",
        "decoded",
        "objects",
    )

    def __init__(
        self,
        *,
        n: int,
        topics: list[str],
        partitions: list[int],
        offsets: list[int],
        timestamps: list[int],
        keys: list[Any],
        values: list[Any],
        headers: list[dict[str, bytes] | None] | None,
        positions: dict[tuple[str, int], int],
        arrow: Any = None,
        decoded: Any = None,
        objects: bool = False,
    ) -> None:
        self.n = n
        self.topics = topics
        self.partitions = partitions
        self.offsets = offsets
        self.timestamps = timestamps  # epoch milliseconds
        self.keys = keys
        self.values = values
        self.headers = headers
        self.positions = positions
        self.arrow = arrow  # raw record batch: key, value, topic, partition, offset, timestamp
        self.decoded = decoded  # natively decoded values (pyarrow.RecordBatch) or None
        self.objects = objects  # values are Python objects (channels), not bytes


class Consumer:
    """A member of a consumer group reading some topics."""

    async def getmany(self, max_records: int, timeout: float) -> Batch | None:
        """The next batch of at most ``max_records`` records, or None when none
        arrived within ``timeout`` seconds."""
        raise NotImplementedError

    async def commit(self, positions: dict[tuple[str, int], int]) -> None:
        """Commits, per (topic, partition), the offset of the next record to read."""
        raise NotImplementedError

    def assignment(self) -> set[tuple[str, int]]:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError


class Transport:
    """What ``app.transport`` offers (memory:// and kafka://)."""

    url: str

    async def create_topic(self, name: str, partitions: int, compacted: bool = False) -> None:
        raise NotImplementedError

    async def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        partition: int | None = None,
        headers: Any = None,
        timestamp_ms: int | None = None,
    ) -> RecordMetadata:
        raise NotImplementedError

    def send_soon(
        self,
        topic: str,
        key: Any,
        value: Any,
        partition: int | None = None,
        headers: Any = None,
        timestamp_ms: int | None = None,
    ) -> Any:
        """Enqueues a record; returns a future of its RecordMetadata (raises
        BufferError when the producer queue is full)."""
        raise NotImplementedError

    async def send_many(self, topic: str, records: Sequence[tuple[Any, Any]]) -> None:
        """Sends (key, value) pairs; returns when all are acknowledged."""
        for k, v in records:
            await self.send(topic, k, v)

    def read_to_end(self, topic: str) -> AsyncIterator[Any]:
        """Every message of every partition of ``topic`` from the beginning up to
        the end offsets at call time (table recovery)."""
        raise NotImplementedError

    def partitions(self, topic: str) -> int:
        raise NotImplementedError

    def consumer(self, topics: Sequence[str], group: str, *, value_format: Any = None) -> Consumer:
        raise NotImplementedError

    async def flush(self) -> None:
        return None

    async def close(self) -> None:
        return None


def normalize_headers(headers: Any) -> dict[str, bytes]:
    if not headers:
        return {}
    items = headers.items() if isinstance(headers, dict) else headers
    out = {}
    for k, v in items:
        if isinstance(v, str):
            v = v.encode()
        out[str(k)] = v
    return out
