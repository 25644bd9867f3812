"""``kafka://host:port``: the Kafka transport (librdkafka).

Agents consume through the engine's consumer (:class:`sabot.kafka.BatchConsumer`):
whole batches as Arrow columns (keys, values, headers, ...), polled on one worker
thread per consumer, so the event loop never blocks on the broker and polling
overlaps with the agent bodies. confluent-kafka remains for the producer, for
reading a changelog to its end (``read_to_end`` assigns partitions without a
group, which BatchConsumer does not offer) and for ``committed()``. Offsets are
committed explicitly (``enable.auto.commit=false``) with the positions the
agent runtime hands over: never past a record still in flight. The producer
uses Kafka's Java-compatible murmur2 partitioner, so keys land in the same
partitions as with Faust or any Java client.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any

from sabot import kafka as sk
from sabot.faust.events import Message
from sabot.faust.transport.base import Batch, Consumer, RecordMetadata, Transport

log = logging.getLogger("sabot.faust.kafka")


def _bootstrap(url: str) -> str:
    hosts = []
    for part in str(url).split(";"):
        part = part.strip()
        if part.startswith("kafka://"):
            part = part[len("kafka://") :]
        hosts.append(part.rstrip("/"))
    return ",".join(h for h in hosts if h)


# librdkafka errors that go away by themselves: leadership moving right after a
# topic was created (NOT_LEADER_FOR_PARTITION, LEADER_NOT_AVAILABLE), metadata
# not propagated yet (UNKNOWN_TOPIC_OR_PART), a busy broker (timeouts).
_RETRYABLE = (
    "not_leader",
    "not leader",
    "leader_not_available",
    "leader not available",
    "unknown_topic",
    "unknown topic",
    "unknown partition",
    "timed out",
    "timed_out",
    "timeout",
    "not_coordinator",
    "coordinator_load",
    "_transport",
    "retriable",
    "does not exist",  # metadata of a topic created a moment ago not yet everywhere
)


def is_retryable(exc: BaseException) -> bool:
    """True for broker errors that a later attempt may not get."""
    text = str(exc).lower()
    return isinstance(exc, (RuntimeError, OSError, KeyError)) and any(m in text for m in _RETRYABLE)


def retry_call(fn: Any, what: str, deadline_s: float = 60.0) -> Any:
    """Calls ``fn()``; retries retryable broker errors with backoff (50 ms
    doubling up to 1 s) until ``deadline_s`` seconds passed, then raises with
    ``what`` (names the topic) and the last error."""
    deadline = time.monotonic() + deadline_s
    delay = 0.05
    attempts = 0
    while True:
        attempts += 1
        try:
            return fn()
        except Exception as exc:
            if not is_retryable(exc):
                raise
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError(
                    f"{what}: still failing after {attempts} attempts in {deadline_s:.0f}s: {exc}"
                ) from exc
            log.info("%s: %s; retry #%d in %.2fs", what, exc, attempts, delay)
            threading.Event().wait(min(delay, left))
            delay = min(delay * 2, 1.0)


class KafkaBatch(Batch):
    """A batch polled by the native consumer: Arrow columns, turned into Python
    lists only when (and as far as) the agent needs them."""

    __slots__ = ("_cols",)

    def __init__(self, raw: Any, decoded: Any, positions: dict[tuple[str, int], int]) -> None:
        self._cols: dict[str, Any] = {}
        self.n = raw.num_rows
        self.arrow = raw
        self.decoded = decoded
        self.positions = positions
        self.objects = False

    def _col(self, name: str) -> Any:
        v = self._cols.get(name)
        if v is None:
            v = self._cols[name] = self.arrow.column(name).to_pylist()
        return v

    @property
    def topics(self) -> list[str]:  # type: ignore[override]
        return self._col("topic")

    @property
    def partitions(self) -> list[int]:  # type: ignore[override]
        return self._col("partition")

    @property
    def offsets(self) -> list[int]:  # type: ignore[override]
        return self._col("offset")

    @property
    def timestamps(self) -> list[int]:  # type: ignore[override]
        return self._col("timestamp")

    @property
    def keys(self) -> list[Any]:  # type: ignore[override]
        return self._col("key")

    @property
    def values(self) -> list[Any]:  # type: ignore[override]
        return self._col("value")

    @property
    def headers(self) -> list[Any] | None:  # type: ignore[override]
        if self.arrow.schema.get_field_index("headers") < 0:
            return None
        h = self._cols.get("headers")
        if h is None:
            # map<utf8, binary>: each row a list of (key, value) pairs, or None
            h = self._cols["headers"] = [
                None if x is None else dict(x) for x in self.arrow.column("headers").to_pylist()
            ]
        return h


class NativeKafkaConsumer(Consumer):
    """The engine's consumer (:class:`sabot.kafka.BatchConsumer`): librdkafka
    batches land in Arrow columns and, for topics with a Record value type, are
    decoded to Arrow natively, all without the GIL."""

    def __init__(
        self,
        bootstrap: str,
        topics: Sequence[str],
        group: str,
        config: dict[str, Any],
        value_format: Any,
    ) -> None:
        fmt: dict[str, Any] = {}
        if value_format is not None:
            fmt = {"format": value_format["name"], "schema": value_format.get("schema")}
        self.group = group
        self.topics = list(topics)
        self._exec = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix=f"kafka-{group}")
        conf = {
            "session.timeout.ms": 10000,
            "heartbeat.interval.ms": 1000,
            "fetch.wait.max.ms": 50,
            "topic.metadata.refresh.interval.ms": 5000,
            # librdkafka prefetches up to 64 MiB (and 100,000 messages) per
            # consumer by default; 8 MiB keeps the pipeline full at the rates
            # one Python worker processes and cuts peak RSS.
            "queued.max.messages.kbytes": 8192,
            "queued.min.messages": 20000,
            "fetch.max.bytes": 8 * 1024 * 1024,
        }
        conf.update(config)
        self._native = sk.BatchConsumer(
            self.topics, group=group, bootstrap=bootstrap, reset="earliest", config=conf, **fmt
        )
        self.closed = False
        self.decode_failures = 0

    def assignment(self) -> set[tuple[str, int]]:
        return {(t, p) for t, p, *_ in self._native.assignment()}

    def _poll(self, max_records: int, timeout: float) -> Batch | None:
        import pyarrow as pa

        polled = self._native.poll(max_records, timeout)
        for w in polled.warnings:
            log.warning("consumer %s: %s", self.group, w)
        msgs = polled.messages
        if msgs.num_rows == 0:
            return None
        decoded = polled.rows
        if polled.errors:
            self.decode_failures += len(polled.errors)
            log.warning(
                "consumer %s: %d values did not decode to the Record schema (first: %s); "
                "decoding this batch per record",
                self.group,
                len(polled.errors),
                polled.errors[0][1],
            )
            decoded = None
        elif decoded is not None and decoded.num_rows != msgs.num_rows:
            decoded = None
        # per partition: the offset after its last message in this batch
        maxima = (
            pa.table(
                [msgs.column("topic"), msgs.column("partition"), msgs.column("offset")],
                names=["t", "p", "o"],
            )
            .group_by(["t", "p"])
            .aggregate([("o", "max")])
        )
        positions = {
            (t, p): o + 1
            for t, p, o in zip(
                maxima.column("t").to_pylist(),
                maxima.column("p").to_pylist(),
                maxima.column("o_max").to_pylist(),
                strict=True,
            )
        }
        return KafkaBatch(msgs, decoded, positions)

    async def getmany(self, max_records: int, timeout: float) -> Batch | None:
        if self.closed:
            return None
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._exec, self._poll, max_records, timeout)

    def _commit(self, positions: dict[tuple[str, int], int]) -> None:
        try:
            self._native.commit([(t, p, o) for (t, p), o in positions.items()])
        except RuntimeError as exc:
            # e.g. partitions revoked by a rebalance: their new owner re-reads
            # from the last commit (at-least-once), nothing is skipped.
            log.warning("consumer %s: offset commit failed: %s", self.group, exc)

    async def commit(self, positions: dict[tuple[str, int], int]) -> None:
        if self.closed or not positions:
            return
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._exec, self._commit, dict(positions))

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self._exec, self._native.close)
        except (RuntimeError, ValueError) as exc:
            log.warning("consumer %s: close: %s", self.group, exc)
        self._exec.shutdown(wait=False)


class KafkaTransport(Transport):
    """``kafka://host:port[;host2:port]``."""

    shared_consumer = True  # agents of the app's group share one member

    def __init__(self, url: str, default_partitions: int = 8, **config: Any) -> None:
        import confluent_kafka as ck

        self._ck = ck
        self.url = url
        self.bootstrap = _bootstrap(url)
        self.default_partitions = default_partitions
        self.consumer_config: dict[str, Any] = {}
        self._producer: Any = None
        self._poller: threading.Thread | None = None
        self._closing = threading.Event()
        self._partitions: dict[str, int] = {}
        self._delivered: list[Any] = []
        self._delivered_lock = threading.Lock()

    # -- producer ------------------------------------------------------------------

    def _ensure_producer(self) -> Any:
        if self._producer is None:
            self._producer = self._ck.Producer(
                {
                    "bootstrap.servers": self.bootstrap,
                    "partitioner": "murmur2_random",
                    "linger.ms": 5,
                    "enable.idempotence": True,
                    "acks": "all",
                    # at most 20,000 records awaiting delivery (default 100,000):
                    # each holds a future and a callback; a full queue makes
                    # send() wait (BufferError) instead of growing the heap.
                    "queue.buffering.max.messages": 20000,
                }
            )
            self._poller = threading.Thread(
                target=self._poll_producer, name="kafka-producer", daemon=True
            )
            self._poller.start()
        return self._producer

    def _poll_producer(self) -> None:
        # Delivery reports are collected here and resolved on the event loop in
        # one call per poll round (not one loop wake-up per record).
        while not self._closing.is_set():
            self._producer.poll(0.02)
            self._hand_over()

    def _delivered_append(self, item: Any) -> None:
        with self._delivered_lock:
            self._delivered.append(item)

    def _hand_over(self) -> None:
        with self._delivered_lock:
            batch, self._delivered = self._delivered, []
        if batch:
            by_loop: dict[Any, list] = {}
            for item in batch:
                by_loop.setdefault(item[0].get_loop(), []).append(item)
            for loop, items in by_loop.items():
                try:
                    loop.call_soon_threadsafe(_resolve_all, items)
                except RuntimeError:  # loop closed
                    pass

    def send_soon(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        partition: int | None = None,
        headers: Any = None,
        timestamp_ms: int | None = None,
    ) -> asyncio.Future:
        """Enqueues the record in the producer; the returned future resolves to
        its RecordMetadata once the broker acknowledged it. Raises BufferError
        when the producer's queue is full."""
        producer = self._ensure_producer()
        fut = asyncio.get_running_loop().create_future()

        delivered = self._delivered_append

        def done(err: Any, msg: Any) -> None:
            delivered((fut, err, msg))

        kw: dict[str, Any] = {"on_delivery": done}
        if partition is not None:
            kw["partition"] = partition
        if headers:
            items = headers.items() if isinstance(headers, dict) else headers
            kw["headers"] = [(k, v.encode() if isinstance(v, str) else v) for k, v in items]
        if timestamp_ms is not None:
            kw["timestamp"] = int(timestamp_ms)
        producer.produce(topic, value=value, key=key, **kw)
        return fut

    async def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        partition: int | None = None,
        headers: Any = None,
        timestamp_ms: int | None = None,
    ) -> RecordMetadata:
        while True:
            try:
                fut = self.send_soon(topic, key, value, partition, headers, timestamp_ms)
                break
            except BufferError:  # local queue full: let deliveries drain
                await asyncio.sleep(0.005)
        return await fut

    async def flush(self) -> None:
        if self._producer is not None:
            remaining = await asyncio.get_running_loop().run_in_executor(
                None, self._producer.flush, 30
            )
            self._hand_over()
            if remaining:
                raise RuntimeError(f"Kafka producer: {remaining} records not delivered after 30s")

    async def close(self) -> None:
        await self.flush()
        self._closing.set()
        if self._poller is not None:
            self._poller.join(5)

    # -- admin ---------------------------------------------------------------------

    async def create_topic(self, name: str, partitions: int, compacted: bool = False) -> None:
        config = {"cleanup.policy": "compact"} if compacted else {}
        await asyncio.get_running_loop().run_in_executor(
            None,
            lambda: retry_call(
                lambda: sk.create_topic(
                    name, partitions, bootstrap=self.bootstrap, config=config, exist_ok=True
                ),
                f"creating Kafka topic {name} at {self.bootstrap}",
            ),
        )

    def watermarks(self, topic: str, deadline_s: float = 60.0) -> list[tuple[int, int]]:
        """(low, high) of every partition; retryable errors (a topic created a
        moment ago whose leaders are still moving) are retried until
        ``deadline_s``."""
        return retry_call(
            lambda: sk.watermarks(topic, bootstrap=self.bootstrap),
            f"Kafka watermarks of topic {topic} at {self.bootstrap}",
            deadline_s,
        )

    def partitions(self, topic: str) -> int:
        n = self._partitions.get(topic)
        if n is None:
            n = self._partitions[topic] = len(self.watermarks(topic))
        return n

    def end_offsets(self, topic: str) -> list[int]:
        return [hi for _, hi in self.watermarks(topic)]

    def committed(self, group: str, topic: str) -> dict[tuple[str, int], int]:
        """The committed offsets of ``group`` on ``topic`` (monitoring, tests)."""
        c = self._ck.Consumer({"bootstrap.servers": self.bootstrap, "group.id": group})
        try:
            tps = [self._ck.TopicPartition(topic, p) for p in range(self.partitions(topic))]
            return {(tp.topic, tp.partition): tp.offset for tp in c.committed(tps, timeout=10)}
        finally:
            c.close()

    async def read_to_end(self, topic: str) -> AsyncIterator[Message]:
        loop = asyncio.get_running_loop()
        marks = await loop.run_in_executor(None, self.watermarks, topic)
        want = {p: hi for p, (lo, hi) in enumerate(marks) if hi > lo}
        if not want:
            return
        c = self._ck.Consumer(
            {
                "bootstrap.servers": self.bootstrap,
                "group.id": f"sabot-recovery-{uuid.uuid4().hex[:8]}",
                "enable.auto.commit": False,
            }
        )
        ex = concurrent.futures.ThreadPoolExecutor(1)
        try:
            c.assign([self._ck.TopicPartition(topic, p, self._ck.OFFSET_BEGINNING) for p in want])
            deadline = time.monotonic() + 120
            while want:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"reading {topic} to its end offsets took over 120s")
                msgs = await loop.run_in_executor(ex, lambda: c.consume(4096, 0.2))
                for m in msgs:
                    if m.error() is not None:
                        continue
                    p = m.partition()
                    end = want.get(p)
                    if end is None or m.offset() >= end:
                        continue
                    yield Message(
                        topic,
                        p,
                        m.offset(),
                        m.timestamp()[1] / 1000.0,
                        m.key(),
                        m.value(),
                        dict(m.headers() or []),
                    )
                    if m.offset() + 1 >= end:
                        del want[p]
        finally:
            await loop.run_in_executor(ex, c.close)
            ex.shutdown(wait=False)

    def consumer(
        self,
        topics: Sequence[str],
        group: str,
        *,
        value_format: Any = None,
        objects: bool = False,
        needs_headers: bool = False,
    ) -> Consumer:
        """A group member: the engine's consumer (sabot.kafka.BatchConsumer),
        which returns keys, values and headers (``ask`` replies find their
        address there) as Arrow columns. ``needs_headers`` is accepted for the
        transport interface; headers always come along."""
        return NativeKafkaConsumer(
            self.bootstrap, topics, group, self.consumer_config, value_format
        )


def _resolve_all(items: list[Any]) -> None:
    for fut, err, msg in items:
        if fut.done():
            continue
        if err is not None:
            fut.set_exception(RuntimeError(f"Kafka delivery to {msg.topic()} failed: {err}"))
        else:
            fut.set_result(
                RecordMetadata(msg.topic(), msg.partition(), msg.offset(), msg.timestamp()[1])
            )


def _set_result(fut: asyncio.Future, value: Any) -> None:
    if not fut.done():
        fut.set_result(value)


def _set_exc(fut: asyncio.Future, exc: BaseException) -> None:
    if not fut.done():
        fut.set_exception(exc)
