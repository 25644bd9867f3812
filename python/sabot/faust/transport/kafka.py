"""``kafka://host:port``: the Kafka transport (librdkafka).

Agents consume through the engine's consumer (``_sabot.KafkaBatchConsumer``, the
one behind :class:`sabot.kafka.BatchConsumer`): whole batches as Arrow columns
(keys, values, headers, ...), polled on one worker thread per consumer, so the
event loop never blocks on the broker and polling overlaps with the agent
bodies; columns become Python lists in C++, so a per-record worker never imports
pyarrow. Records are produced by the engine's librdkafka too
(``_sabot.FaustProducer``). confluent-kafka is only imported for reading a
changelog with records to its end (``read_to_end`` assigns partitions without a
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

from sabot import _sabot
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


class _Capsules:
    """(schema, array) capsules as an object with ``__arrow_c_array__``."""

    __slots__ = ("caps",)

    def __init__(self, caps: Any) -> None:
        self.caps = caps

    def __arrow_c_array__(self, requested_schema: Any = None) -> Any:
        return self.caps


class KafkaBatch(Batch):
    """A batch polled by the native consumer (a ``_sabot.KafkaPolled``): its
    columns become Python lists in C++ only when (and as far as) the agent needs
    them; ``arrow`` / ``decoded`` (pyarrow RecordBatches, for ``stream.batches()``)
    import pyarrow on first use only (docs/design/faust_memory.md)."""

    __slots__ = ("_cols", "_polled", "_arrow", "_decoded", "_has_decoded")

    def __init__(self, polled: Any, has_decoded: bool) -> None:
        self._cols: dict[str, Any] = {}
        self._polled = polled
        self._arrow: Any = None
        self._decoded: Any = None
        self._has_decoded = has_decoded
        self.n = polled.num_rows
        self.positions = polled.positions()
        self.objects = False

    def _col(self, name: str) -> Any:
        v = self._cols.get(name)
        if v is None:
            v = self._cols[name] = self._polled.column(name)
        return v

    @property  # type: ignore[override]
    def arrow(self) -> Any:
        rb = self._arrow
        if rb is None:
            import pyarrow as pa

            rb = self._arrow = pa.record_batch(_Capsules(self._polled.messages()))
        return rb

    @property  # type: ignore[override]
    def decoded(self) -> Any:
        if not self._has_decoded:
            return None
        rb = self._decoded
        if rb is None:
            import pyarrow as pa

            rb = self._decoded = pa.record_batch(_Capsules(self._polled.rows()))
        return rb

    def select_topics(self, names: Sequence[str]) -> KafkaBatch:
        """The records of these topics (filtered natively)."""
        part = self._polled.select_topics(list(names))
        return KafkaBatch(part, self._has_decoded and part.num_decoded == part.num_rows)

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
        if not self._polled.has_column("headers"):
            return None
        # map<utf8, binary>: a dict per row, or None (converted in C++)
        return self._col("headers")


class NativeKafkaConsumer(Consumer):
    """The engine's consumer (``_sabot.KafkaBatchConsumer``, the one behind
    :class:`sabot.kafka.BatchConsumer`): librdkafka batches land in Arrow
    columns and, for topics with a Record value type, are decoded to Arrow
    natively, all without the GIL. Used directly (not through sabot.kafka) so
    that a per-record worker does not import pyarrow.

    librdkafka prefetches up to 64 MiB (and 100,000 messages) per consumer by
    default. A consumer of per-record agents prefetches at most 1 MiB: that
    keeps one Python worker busy and is 10 MiB less peak RSS on the Faust
    benchmark than 8 MiB; one feeding ``stream.batches()`` (``arrow=True``)
    prefetches 8 MiB, without which the batch path ran at a third of its
    throughput (docs/design/faust_memory.md). ``config`` overrides both."""

    RECORD_PREFETCH: dict[str, Any] = {  # noqa: RUF012
        "queued.max.messages.kbytes": 1024,
        # Not 2,000: once a partition's queue holds queued.min.messages,
        # librdkafka (2.0.2, Debian 12) stops fetching it until its broker
        # thread wakes again (up to a second later): 2,000 messages per
        # partition stalled the worker, 11,400 events/s at p99 300 ms; 10,000
        # runs 15,400 events/s at p99 59 ms for +3 MiB peak RSS.
        "queued.min.messages": 10000,
        "fetch.max.bytes": 1024 * 1024,
    }
    ARROW_PREFETCH: dict[str, Any] = {  # noqa: RUF012
        "queued.max.messages.kbytes": 8192,
        "queued.min.messages": 20000,
        "fetch.max.bytes": 8 * 1024 * 1024,
    }

    def __init__(
        self,
        bootstrap: str,
        topics: Sequence[str],
        group: str,
        config: dict[str, Any],
        value_format: Any,
        arrow: bool = False,
    ) -> None:
        fmt: dict[str, Any] | None = None
        if value_format is not None:
            schema = value_format.get("schema")  # a Record value type's Arrow schema
            if hasattr(schema, "__arrow_c_schema__"):
                schema = schema.__arrow_c_schema__()
            fmt = {"name": value_format["name"], "infer_sample_size": 1000}
            if schema is not None:
                fmt["schema"] = schema
        self.group = group
        self.topics = list(topics)
        self._exec = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix=f"kafka-{group}")
        conf = {
            "session.timeout.ms": 10000,
            "heartbeat.interval.ms": 1000,
            "fetch.wait.max.ms": 50,
            "topic.metadata.refresh.interval.ms": 5000,
            **(self.ARROW_PREFETCH if arrow else self.RECORD_PREFETCH),
        }
        conf.update(config)
        self.arrow = arrow
        self.config = conf
        self._native = _sabot.KafkaBatchConsumer(
            bootstrap,
            self.topics,
            group,
            "earliest",
            fmt,
            {k: str(v) for k, v in conf.items()},
        )
        self.closed = False
        self.decode_failures = 0

    def assignment(self) -> set[tuple[str, int]]:
        return {(t, p) for t, p, *_ in self._native.assignment()}

    def _poll(self, max_records: int, timeout: float) -> Batch | None:
        polled = self._native.poll_batch(int(max_records), int(timeout * 1000))
        for w in polled.warnings:
            log.warning("consumer %s: %s", self.group, w)
        n = polled.num_rows
        if n == 0:
            return None
        has_decoded = polled.num_decoded == n
        errors = polled.errors
        if errors:
            self.decode_failures += len(errors)
            log.warning(
                "consumer %s: %d values did not decode to the Record schema (first: %s); "
                "decoding this batch per record",
                self.group,
                len(errors),
                errors[0][1],
            )
            has_decoded = False
        return KafkaBatch(polled, has_decoded)

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
        self.url = url
        self.bootstrap = _bootstrap(url)
        self.default_partitions = default_partitions
        self.consumer_config: dict[str, Any] = {}
        # librdkafka producer properties over PRODUCER_DEFAULTS (e.g. a larger
        # "queue.buffering.max.messages" for bursts of big fan-outs)
        self.producer_config: dict[str, Any] = {}
        self._producer: Any = None
        self._poller: threading.Thread | None = None
        self._closing = threading.Event()
        self._partitions: dict[str, int] = {}
        self._inflight: dict[int, tuple[asyncio.Future, str]] = {}
        self._space: asyncio.Event | None = None  # set when deliveries drained
        self.arrow_batches = False  # an agent iterates stream.batches()
        self.producer_queue = 0  # the producer's queue bound, once it exists
        self._token = 0

    # -- producer ------------------------------------------------------------------

    PRODUCER_DEFAULTS: dict[str, Any] = {  # noqa: RUF012
        "partitioner": "murmur2_random",
        "linger.ms": 5,
        "enable.idempotence": True,
        "acks": "all",
    }
    # Records awaiting delivery (librdkafka's default: 100,000); each holds a
    # copy in librdkafka and a future, and a full queue makes send() wait. An
    # app of per-record agents sends steadily: 2,000 is 11 MiB less peak RSS
    # than 20,000 on the Faust benchmark. Agents on `stream.batches()` send in
    # bursts (one output per key and batch): with 2,000 the batch path ran at a
    # third of its throughput, so such an app gets 20,000
    # (docs/design/faust_memory.md). producer_config overrides both.
    PRODUCER_QUEUE_RECORDS = 2000
    PRODUCER_QUEUE_BATCHES = 20000

    def _ensure_producer(self) -> Any:
        if self._producer is None:
            queue = (
                self.PRODUCER_QUEUE_BATCHES if self.arrow_batches else self.PRODUCER_QUEUE_RECORDS
            )
            conf = {
                **self.PRODUCER_DEFAULTS,
                "queue.buffering.max.messages": queue,
                **self.producer_config,
            }
            self.producer_queue = int(conf["queue.buffering.max.messages"])
            # the engine's librdkafka (no confluent-kafka in a worker)
            self._producer = _sabot.FaustProducer(
                self.bootstrap,
                {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in conf.items()},
            )
            self._poller = threading.Thread(
                target=self._poll_producer, name="kafka-producer", daemon=True
            )
            self._poller.start()
        return self._producer

    def _poll_producer(self) -> None:
        # Delivery reports are collected here (librdkafka waits without the GIL)
        # and resolved on the event loop in one call per poll round.
        while not self._closing.is_set():
            self._hand_over(self._producer.poll(20))

    def _hand_over(self, reports: list[Any]) -> None:
        if not reports:
            return
        inflight = self._inflight
        by_loop: dict[Any, list] = {}
        for token, err, partition, offset, ts in reports:
            entry = inflight.pop(token, None)
            if entry is None:
                continue
            fut, topic = entry
            by_loop.setdefault(fut.get_loop(), []).append((fut, topic, err, partition, offset, ts))
        for loop, items in by_loop.items():
            try:
                loop.call_soon_threadsafe(self._delivered, items)
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
        hdrs = None
        if headers:
            items = headers.items() if isinstance(headers, dict) else headers
            hdrs = [(str(k), v.encode() if isinstance(v, str) else v) for k, v in items]
        self._token += 1
        token = self._token
        self._inflight[token] = (fut, topic)
        if not producer.produce(
            topic,
            key,
            value,
            -1 if partition is None else int(partition),
            hdrs,
            0 if timestamp_ms is None else int(timestamp_ms),
            token,
        ):
            del self._inflight[token]
            raise BufferError(f"Kafka producer queue full (topic {topic})")
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
                await self.wait_for_space()
        return await fut

    def _delivered(self, items: list[Any]) -> None:
        _resolve_all(items)
        space = self._space
        if space is not None:
            space.set()

    async def wait_for_space(self) -> None:
        """Returns once delivery reports made room in the producer's queue (or
        after 50 ms): a sender that found the queue full resumes as soon as it
        drains, not after a fixed sleep."""
        space = self._space
        if space is None:
            space = self._space = asyncio.Event()
        space.clear()
        try:
            await asyncio.wait_for(space.wait(), 0.05)
        except TimeoutError:
            pass

    async def flush(self) -> None:
        if self._producer is not None:
            remaining = await asyncio.get_running_loop().run_in_executor(
                None, self._producer.flush, 30000
            )
            self._hand_over(self._producer.take_deliveries())
            if remaining:
                raise RuntimeError(f"Kafka producer: {remaining} records not delivered after 30s")

    async def close(self) -> None:
        await self.flush()
        self._closing.set()
        if self._poller is not None:
            self._poller.join(5)
            self._poller = None
        if self._producer is not None:
            self._hand_over(self._producer.take_deliveries())
            self._producer.close()
            self._producer = None

    # -- admin ---------------------------------------------------------------------

    async def create_topic(self, name: str, partitions: int, compacted: bool = False) -> None:
        config = {"cleanup.policy": "compact"} if compacted else {}
        await asyncio.get_running_loop().run_in_executor(
            None,
            lambda: retry_call(
                lambda: _sabot.kafka_create_topic(
                    self.bootstrap, name, partitions, config, True, 30_000
                ),
                f"creating Kafka topic {name} at {self.bootstrap}",
            ),
        )

    def watermarks(self, topic: str, deadline_s: float = 60.0) -> list[tuple[int, int]]:
        """(low, high) of every partition; retryable errors (a topic created a
        moment ago whose leaders are still moving) are retried until
        ``deadline_s``."""
        return retry_call(
            lambda: [tuple(p) for p in _sabot.kafka_watermarks(self.bootstrap, topic, 10_000)],
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
        import confluent_kafka as ck  # monitoring only, not in a worker's hot path

        c = ck.Consumer({"bootstrap.servers": self.bootstrap, "group.id": group})
        try:
            tps = [ck.TopicPartition(topic, p) for p in range(self.partitions(topic))]
            return {(tp.topic, tp.partition): tp.offset for tp in c.committed(tps, timeout=10)}
        finally:
            c.close()

    async def read_to_end(self, topic: str) -> AsyncIterator[Message]:
        loop = asyncio.get_running_loop()
        marks = await loop.run_in_executor(None, self.watermarks, topic)
        want = {p: hi for p, (lo, hi) in enumerate(marks) if hi > lo}
        if not want:
            return
        import confluent_kafka as ck  # only when a changelog has records to recover

        c = ck.Consumer(
            {
                "bootstrap.servers": self.bootstrap,
                "group.id": f"sabot-recovery-{uuid.uuid4().hex[:8]}",
                "enable.auto.commit": False,
            }
        )
        ex = concurrent.futures.ThreadPoolExecutor(1)
        try:
            c.assign([ck.TopicPartition(topic, p, ck.OFFSET_BEGINNING) for p in want])
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
        arrow: bool = False,
    ) -> Consumer:
        """A group member: the engine's consumer (sabot.kafka.BatchConsumer),
        which returns keys, values and headers (``ask`` replies find their
        address there) as Arrow columns. ``needs_headers`` is accepted for the
        transport interface; headers always come along. ``arrow``: the records
        feed ``stream.batches()`` (a larger prefetch, see NativeKafkaConsumer)."""
        return NativeKafkaConsumer(
            self.bootstrap, topics, group, self.consumer_config, value_format, arrow
        )


def _resolve_all(items: list[Any]) -> None:
    for fut, topic, err, partition, offset, ts in items:
        if fut.done():
            continue
        if err is not None:
            fut.set_exception(RuntimeError(f"Kafka delivery to {topic} failed: {err}"))
        else:
            fut.set_result(RecordMetadata(topic, partition, offset, ts))


def _set_result(fut: asyncio.Future, value: Any) -> None:
    if not fut.done():
        fut.set_result(value)


def _set_exc(fut: asyncio.Future, exc: BaseException) -> None:
    if not fut.done():
        fut.set_exception(exc)
