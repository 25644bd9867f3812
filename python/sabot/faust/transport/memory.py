"""``memory://``: an in-process broker for tests and demos.

Topics are lists of records per partition; consumer groups split partitions by
``partition % members`` and keep committed offsets, so restarts, rebalances and
commit safety behave as with Kafka (within one process). ``memory://`` gives each
App its own broker; ``memory://NAME`` is shared by every App in the process that
names it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

from sabot import _sabot
from sabot.faust.events import Message
from sabot.faust.transport.base import Batch, Consumer, RecordMetadata, Transport, normalize_headers

_SHARED: dict[str, MemoryBroker] = {}


class _Partition:
    __slots__ = ("keys", "values", "timestamps", "headers")

    def __init__(self) -> None:
        self.keys: list[Any] = []
        self.values: list[Any] = []
        self.timestamps: list[int] = []
        self.headers: list[dict[str, bytes] | None] = []


class _Topic:
    def __init__(self, name: str, partitions: int, compacted: bool) -> None:
        self.name = name
        self.parts = [_Partition() for _ in range(partitions)]
        self.compacted = compacted
        self.rr = 0


class MemoryBroker:
    """The broker state: topics, committed offsets, group membership."""

    def __init__(self, default_partitions: int = 8) -> None:
        self.topics: dict[str, _Topic] = {}
        self.committed: dict[str, dict[tuple[str, int], int]] = {}
        self.groups: dict[str, list[MemoryConsumer]] = {}
        self.default_partitions = default_partitions
        self._waiters: list[asyncio.Future] = []

    def topic(self, name: str, partitions: int | None = None, compacted: bool = False) -> _Topic:
        t = self.topics.get(name)
        if t is None:
            t = self.topics[name] = _Topic(name, partitions or self.default_partitions, compacted)
        return t

    def notify(self) -> None:
        waiters, self._waiters = self._waiters, []
        for w in waiters:
            if not w.done():
                w.set_result(None)

    def wait(self) -> asyncio.Future:
        fut = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        return fut

    def append(
        self,
        topic: str,
        key: Any,
        value: Any,
        partition: int | None,
        headers: dict[str, bytes] | None,
        timestamp_ms: int | None,
    ) -> RecordMetadata:
        t = self.topic(topic)
        n = len(t.parts)
        if partition is None:
            if key is None:
                partition = t.rr % n
                t.rr += 1
            else:
                kb = key if isinstance(key, (bytes, bytearray)) else repr(key).encode()
                # Kafka's Java default partitioner (murmur2), as the Kafka transport
                partition = int(_sabot.kafka_partition_for_key(bytes(kb), n))
        if not 0 <= partition < n:
            raise ValueError(
                f"topic {topic!r} has {n} partitions; partition {partition} does not exist"
            )
        p = t.parts[partition]
        ts = int(time.time() * 1000) if timestamp_ms is None else int(timestamp_ms)
        p.keys.append(key)
        p.values.append(value)
        p.timestamps.append(ts)
        p.headers.append(headers or None)
        self.notify()
        return RecordMetadata(topic, partition, len(p.keys) - 1, ts)

    def join(self, group: str, consumer: MemoryConsumer) -> None:
        self.groups.setdefault(group, []).append(consumer)
        self._rebalance(group)

    def leave(self, group: str, consumer: MemoryConsumer) -> None:
        members = self.groups.get(group, [])
        if consumer in members:
            members.remove(consumer)
        self._rebalance(group)

    def _rebalance(self, group: str) -> None:
        members = self.groups.get(group, [])
        committed = self.committed.setdefault(group, {})
        assigned: dict[int, dict[tuple[str, int], int]] = {id(c): {} for c in members}
        topics = sorted({t for c in members for t in c.topic_names})
        for name in topics:
            subs = [c for c in members if name in c.topic_names]
            for p in range(len(self.topic(name).parts)):
                c = subs[p % len(subs)]
                tp = (name, p)
                # A partition the member keeps continues where it is; a moved
                # one starts at the group's committed offset.
                assigned[id(c)][tp] = c.positions.get(tp, committed.get(tp, 0))
        for c in members:
            c.positions = assigned[id(c)]
        self.notify()


class MemoryConsumer(Consumer):
    def __init__(
        self, broker: MemoryBroker, topics: Sequence[str], group: str, objects: bool
    ) -> None:
        self.broker = broker
        self.topic_names = list(topics)
        self.group = group
        self.objects = objects
        self.positions: dict[tuple[str, int], int] = {}
        self.closed = False
        for name in self.topic_names:
            broker.topic(name)
        broker.join(group, self)

    def assignment(self) -> set[tuple[str, int]]:
        return set(self.positions)

    def _take(self, max_records: int) -> Batch | None:
        topics: list[str] = []
        partitions: list[int] = []
        offsets: list[int] = []
        timestamps: list[int] = []
        keys: list[Any] = []
        values: list[Any] = []
        headers: list[Any] = []
        positions: dict[tuple[str, int], int] = {}
        room = max_records
        for tp, pos in self.positions.items():
            if room <= 0:
                break
            part = self.broker.topics[tp[0]].parts[tp[1]]
            end = min(len(part.keys), pos + room)
            if end <= pos:
                continue
            k = end - pos
            topics.extend([tp[0]] * k)
            partitions.extend([tp[1]] * k)
            offsets.extend(range(pos, end))
            timestamps.extend(part.timestamps[pos:end])
            keys.extend(part.keys[pos:end])
            values.extend(part.values[pos:end])
            headers.extend(part.headers[pos:end])
            positions[tp] = end
            self.positions[tp] = end
            room -= k
        n = len(offsets)
        if n == 0:
            return None
        return Batch(
            n=n,
            topics=topics,
            partitions=partitions,
            offsets=offsets,
            timestamps=timestamps,
            keys=keys,
            values=values,
            headers=headers if any(h for h in headers) else None,
            positions=positions,
            objects=self.objects,
        )

    async def getmany(self, max_records: int, timeout: float) -> Batch | None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self.closed:
            batch = self._take(max_records)
            if batch is not None:
                return batch
            remaining = deadline - loop.time()
            if remaining <= 0:
                return None
            fut = self.broker.wait()
            try:
                await asyncio.wait_for(fut, remaining)
            except TimeoutError:
                return None
        return None

    async def commit(self, positions: dict[tuple[str, int], int]) -> None:
        committed = self.broker.committed.setdefault(self.group, {})
        for tp, off in positions.items():
            if off > committed.get(tp, 0):
                committed[tp] = off

    async def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.broker.leave(self.group, self)


class MemoryTransport(Transport):
    """``memory://`` transport over a :class:`MemoryBroker`."""

    def __init__(self, url: str = "memory://", default_partitions: int = 8) -> None:
        self.url = url
        name = url[len("memory://") :].strip("/")
        if name:
            broker = _SHARED.get(name)
            if broker is None:
                broker = _SHARED[name] = MemoryBroker(default_partitions)
        else:
            broker = MemoryBroker(default_partitions)
        self.broker = broker

    async def create_topic(self, name: str, partitions: int, compacted: bool = False) -> None:
        self.broker.topic(name, partitions, compacted)

    def create_topic_sync(self, name: str, partitions: int, compacted: bool = False) -> None:
        self.broker.topic(name, partitions, compacted)

    async def send(
        self,
        topic: str,
        key: Any,
        value: Any,
        partition: int | None = None,
        headers: Any = None,
        timestamp_ms: int | None = None,
    ) -> RecordMetadata:
        return self.broker.append(
            topic, key, value, partition, normalize_headers(headers), timestamp_ms
        )

    def send_soon(
        self,
        topic: str,
        key: Any,
        value: Any,
        partition: int | None = None,
        headers: Any = None,
        timestamp_ms: int | None = None,
    ) -> asyncio.Future:
        fut = asyncio.get_running_loop().create_future()
        fut.set_result(
            self.broker.append(
                topic, key, value, partition, normalize_headers(headers), timestamp_ms
            )
        )
        return fut

    async def read_to_end(self, topic: str) -> AsyncIterator[Message]:
        t = self.broker.topic(topic)
        ends = [len(p.keys) for p in t.parts]
        for pi, part in enumerate(t.parts):
            for off in range(ends[pi]):
                yield Message(
                    topic,
                    pi,
                    off,
                    part.timestamps[off] / 1000.0,
                    part.keys[off],
                    part.values[off],
                    part.headers[off] or {},
                )

    def partitions(self, topic: str) -> int:
        return len(self.broker.topic(topic).parts)

    def committed(self, group: str) -> dict[tuple[str, int], int]:
        return dict(self.broker.committed.get(group, {}))

    def end_offsets(self, topic: str) -> list[int]:
        return [len(p.keys) for p in self.broker.topic(topic).parts]

    def consumer(
        self,
        topics: Sequence[str],
        group: str,
        *,
        value_format: Any = None,
        objects: bool = False,
        needs_headers: bool = False,
    ) -> MemoryConsumer:
        return MemoryConsumer(self.broker, topics, group, objects)
