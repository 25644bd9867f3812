"""Agents: ``@app.agent(topic, concurrency=, sink=[...])``.

Runtime per agent (docs/design/faust.md):

- a :class:`Source` owns the consumer of the agent's topic. Its fetch loop takes
  whole batches from the transport (for Kafka: polled and decoded by the native
  consumer in a worker thread), wraps each in a :class:`BatchState` (keys and
  values decoded once per batch, lazily) and splits it into :class:`Chunk`\\ s
  (index ranges) on a queue shared by the agent's actors;
- ``concurrency`` actor tasks each run the agent body on their own
  :class:`~sabot.faust.streams.Stream`, pulling chunks from the queue;
- acknowledgements count down per batch; batches complete in any order, but the
  committable position only advances over the completed *prefix* of batches, so
  a commit never passes a record still in flight, whatever the concurrency;
- a supervisor restarts crashed actors with exponential backoff (one-for-one or
  one-for-all) and opens a circuit breaker when an agent keeps crashing.
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import inspect
import logging
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sabot.faust.events import Event, Message, _current
from sabot.faust.streams import Stream

if TYPE_CHECKING:
    from sabot.faust.app import App

log = logging.getLogger("sabot.faust.agents")

REPLY_TO = "sabot-reply-to"
CORRELATION_ID = "sabot-correlation-id"

ONE_FOR_ONE = "one_for_one"
ONE_FOR_ALL = "one_for_all"

# Sources (group_by / through consumers) created by one actor incarnation.
_actor_scope: contextvars.ContextVar[list | None] = contextvars.ContextVar(
    "sabot_faust_actor_scope", default=None
)


class BatchState:
    """One consumer batch in flight: decoded columns (lazy) and the number of
    records not yet acknowledged."""

    __slots__ = ("source", "batch", "pending", "_values", "_keys", "_arrow", "bad")

    def __init__(self, source: Source, batch: Any) -> None:
        self.source = source
        self.batch = batch
        self.pending = batch.n
        self._values: list[Any] | None = None
        self._keys: list[Any] | None = None
        self._arrow: Any = None
        self.bad: dict[int, Exception] | None = None  # values that did not decode

    def values(self) -> list[Any]:
        v = self._values
        if v is None:
            batch = self.batch
            channel = self.source.channel
            from_arrow = getattr(channel.value_type, "from_arrow", None)
            if batch.decoded is not None and from_arrow is not None:
                v = from_arrow(batch.decoded)  # natively decoded: no JSON parse in Python
            else:
                v, bad = channel.decode_values_safe(batch.values)
                if bad:
                    self._report_bad(bad)
                    self.bad = bad
            self._values = v
        return v

    def _report_bad(self, bad: dict[int, Exception]) -> None:
        b = self.batch
        src = self.source
        src.app.monitor.decode_errors += len(bad)
        for i, exc in list(bad.items())[:10]:
            log.error(
                "agent %s: value at %s[%s]@%s does not decode (%s: %s); skipped",
                src.agent_name,
                b.topics[i],
                b.partitions[i],
                b.offsets[i],
                type(exc).__name__,
                exc,
            )
        if len(bad) > 10:
            log.error("agent %s: %d more undecodable values skipped", src.agent_name, len(bad) - 10)

    def keys(self) -> list[Any]:
        k = self._keys
        if k is None:
            k = self._keys = self.source.channel.decode_keys(self.batch.keys)
        return k

    def arrow(self) -> Any:
        rb = self._arrow
        if rb is None:
            rb = self._arrow = _values_to_arrow(self)
        return rb

    def ack(self, k: int) -> None:
        self.pending -= k
        if self.pending <= 0:
            self.source._advance()


def _values_to_arrow(bs: BatchState) -> Any:
    """The values of a batch as a RecordBatch: decoded by the native consumer,
    else decoded natively from the raw value column (JSON), else built from the
    Python values."""
    import pyarrow as pa

    batch = bs.batch
    if batch.decoded is not None:
        return batch.decoded
    channel = bs.source.channel
    schema_fn = getattr(channel.value_type, "arrow_schema", None)
    raw = batch.arrow
    if raw is not None and channel.value_serializer == "json" and bs._values is None:
        rb = _native_decode(bs.source, raw.column("value"), schema_fn)
        if rb is not None:
            return rb
    values = bs.values()
    rows = [v.asdict() if hasattr(v, "asdict") else v for v in values]
    if rows and not isinstance(rows[0], dict):
        return pa.RecordBatch.from_pydict({"value": rows})
    if schema_fn is not None:
        return pa.RecordBatch.from_pylist(rows, schema=schema_fn())
    return pa.RecordBatch.from_pylist(rows)


def _native_decode(source: Any, values: Any, schema_fn: Any) -> Any:
    """JSON -> Arrow with the engine's decoder (schema from the Record type, or
    inferred); None when unavailable or when some value does not fit."""
    import pyarrow as pa

    dec = getattr(source, "_decoder", None)
    if dec is None:
        from sabot import _sabot

        if not hasattr(_sabot, "FaustDecoder"):
            return None
        fmt: dict[str, Any] = {"name": "json"}
        if schema_fn is not None:
            fmt["schema"] = schema_fn().__arrow_c_schema__()
        dec = source._decoder = _sabot.FaustDecoder(fmt)
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    rows, errors = dec.decode(values.__arrow_c_array__())
    if errors or rows is None:
        log.warning(
            "%d values of %s did not decode natively (first: %s); decoding per record",
            len(errors),
            source.channel,
            errors[0][1] if errors else "?",
        )
        return None

    class _Caps:
        def __arrow_c_array__(self, requested_schema: Any = None) -> Any:
            return rows

    return pa.record_batch(_Caps())


class Chunk:
    """A range [start, end) of a batch handed to one actor; ``pos`` is the record
    the actor is at."""

    __slots__ = ("bs", "start", "end", "pos", "acked_to", "acked", "owner")

    def __init__(self, bs: BatchState, start: int, end: int) -> None:
        self.bs = bs
        self.start = start
        self.end = end
        self.pos = start
        self.acked_to = start  # auto-ack: records [start, acked_to) acknowledged
        self.acked: bytearray | None = None  # noack mode: per-record flags
        self.owner: Any = None  # the stream iterating it

    def values(self) -> list[Any]:
        return self.bs.values()

    def keys(self) -> list[Any]:
        return self.bs.keys()

    def arrow_values(self) -> Any:
        rb = self.bs.arrow()
        if self.start == 0 and self.end == rb.num_rows:
            return rb
        return rb.slice(self.start, self.end - self.start)

    def ack_to(self, i: int) -> None:
        """Acknowledges records [acked_to, i) (auto-ack mode)."""
        if self.acked is not None:
            for j in range(self.acked_to, i):
                self.ack_index(j)
            self.acked_to = max(self.acked_to, i)
            return
        k = i - self.acked_to
        if k > 0:
            self.acked_to = i
            self.bs.ack(k)

    def ack_index(self, i: int) -> None:
        """Acknowledges record i (noack mode); a second ack of it is a no-op."""
        flags = self.acked
        if flags is None:
            flags = self.acked = bytearray(self.end - self.start)
            for j in range(self.start, self.acked_to):
                flags[j - self.start] = 1
        if not flags[i - self.start]:
            flags[i - self.start] = 1
            self.bs.ack(1)

    def message(self, i: int) -> Message:
        b = self.bs.batch
        headers = b.headers[i] if b.headers is not None else None
        return Message(
            b.topics[i],
            b.partitions[i],
            b.offsets[i],
            b.timestamps[i] / 1000.0,
            b.keys[i],
            b.values[i],
            headers or {},
        )

    def event(self, i: int, noack: bool) -> Event:
        bs = self.bs
        acker = (lambda: self.ack_index(i)) if noack else None
        return Event(bs.source.app, bs.keys()[i], bs.values()[i], self.message(i), acker)


class ActorInbox:
    """Where one actor takes chunks: a chunk left over from a crash first, then
    the shared queue of its source."""

    __slots__ = ("source", "resume", "agent_name")

    def __init__(self, source: Source) -> None:
        self.source = source
        self.resume: Chunk | None = None
        self.agent_name = source.agent_name

    async def next_chunk(self) -> Chunk | None:
        c = self.resume
        if c is not None:
            self.resume = None
            return c
        return await self.source.next_chunk()

    def chunk_done(self, chunk: Chunk) -> None:
        pass

    def requeue(self, chunk: Chunk) -> None:
        if self.resume is None:
            self.resume = chunk
        else:
            self.source.requeue(chunk)


class Source:
    """The consumer of one channel for one agent (or one group_by/through
    stream): fetch loop, chunk queue, acknowledgement tracking and commits."""

    def __init__(
        self,
        app: App,
        channel: Any,
        group: str,
        *,
        concurrency: int = 1,
        needs_headers: bool = False,
    ) -> None:
        self.app = app
        self.needs_headers = needs_headers
        self.channel = channel
        self.group = group
        self.concurrency = max(1, concurrency)
        self.agent_name = "stream"  # short name: repartition topic names, logs
        self.monitor_name: str | None = None  # app.monitor key: the agent's full name
        self.queue: collections.deque[Chunk] = collections.deque()
        self.queued = 0
        self.max_queued = max(app.conf.stream_buffer_maxsize, 1)
        self.batch_size = app.conf.batch_size
        self.tracker: collections.deque[BatchState] = collections.deque()
        self.committable: dict[tuple[str, int], int] = {}
        self.committed: dict[tuple[str, int], int] = {}
        self.consumer: Any = None
        self._data = asyncio.Event()
        self._space = asyncio.Event()
        self._progress = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self._pump: Callable[[], Any] | None = None
        self.started = False
        self.stopping = False
        self.fetch_done = False
        self.closed = False
        self.error: BaseException | None = None
        self.batches = 0
        self.records = 0
        self._decoder: Any = None
        self.arrow_batches = False  # iterated by stream.batches()

    def inbox(self) -> ActorInbox:
        return ActorInbox(self)

    def use_arrow_batches(self) -> None:
        """The agent iterates ``stream.batches()``: poll ``arrow_batch_size``
        records at a time (Arrow columns are compact; per-batch costs dominate)."""
        self.arrow_batches = True
        transport = self.channel.transport
        if hasattr(transport, "arrow_batches"):  # kafka: a deeper producer queue
            transport.arrow_batches = True
        size = max(self.batch_size, self.app.conf.arrow_batch_size)
        self.batch_size = size
        hub = getattr(self.consumer, "hub", None)
        if hub is not None:
            hub.batch_size = max(hub.batch_size, size)
            hub.arrow_batches = True

    def attach_pump(self, pump: Callable[[], Any]) -> None:
        self._pump = pump

    async def ensure_started(self) -> None:
        if not self.started:
            scope = _actor_scope.get()
            if scope is not None:
                scope.append(self)
            await self.start()

    async def start(self) -> None:
        if self.started:
            return
        self.started = True
        await self.channel.maybe_declare()
        hub = self.app._shared_consumer
        if (
            hub is not None
            and self.group == hub.group
            and self.channel.transport is hub.transport
            and not self.channel.objects
        ):
            # the app's one group member (transport/shared.py): no rebalance
            # per agent joining the group
            self.consumer = hub.view(
                list(self.channel.topics),
                _native_value_format(self.channel),
                needs_headers=self.needs_headers,
            )
        if self.consumer is None:
            self.consumer = self.channel.transport.consumer(
                list(self.channel.topics),
                self.group,
                value_format=_native_value_format(self.channel),
                objects=self.channel.objects,
                needs_headers=self.needs_headers,
            )
        if self.arrow_batches:
            self.use_arrow_batches()
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self._fetch_loop(), name=f"fetch:{self.group}"))
        self._tasks.append(loop.create_task(self._commit_loop(), name=f"commit:{self.group}"))
        if self._pump is not None:
            self._tasks.append(loop.create_task(self._run_pump(), name=f"pump:{self.group}"))

    async def _run_pump(self) -> None:
        try:
            await self._pump()  # type: ignore[misc]
            # The upstream ended (the agent stops): records forwarded but not yet
            # read stay uncommitted in the target topic for the next run.
            self.stop_fetching()
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # surfaces in the reading stream
            self.error = exc
            self._data.set()

    async def _fetch_loop(self) -> None:
        consumer = self.consumer
        monitor = self.app.monitor
        name = self.monitor_name or self.agent_name
        failures = 0
        try:
            while not self.stopping:
                if self.queued >= self.max_queued:
                    self._space.clear()
                    if self.queued >= self.max_queued:
                        await self._space.wait()
                    continue
                try:
                    batch = await consumer.getmany(self.batch_size, 0.2)
                    failures = 0
                except Exception as exc:  # broker trouble: retry, never stop silently
                    failures += 1
                    monitor.fetch_errors += 1
                    delay = min(0.1 * 2 ** (failures - 1), 5.0)
                    log.error(
                        "consumer of %s (group %s): poll failed (%r); retry #%d in %.1fs",
                        self.channel,
                        self.group,
                        exc,
                        failures,
                        delay,
                    )
                    await asyncio.sleep(delay)
                    continue
                if batch is None or self.stopping:
                    if batch is not None:
                        # Taken but not handed out: never acknowledged, so never
                        # committed; the next owner reads it again.
                        pass
                    continue
                bs = BatchState(self, batch)
                self.tracker.append(bs)
                self.batches += 1
                self.records += batch.n
                monitor.on_batch(name, _topic_counts(batch), batch.n)
                n = batch.n
                parts = self.concurrency
                if parts == 1:
                    self.queue.append(Chunk(bs, 0, n))
                else:
                    step = max(1, min(1024, -(-n // (parts * 4))))
                    for s in range(0, n, step):
                        self.queue.append(Chunk(bs, s, min(n, s + step)))
                self.queued += n
                self._data.set()
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            log.exception("consumer of %s (group %s) failed", self.channel, self.group)
            self.error = exc
        finally:
            self.fetch_done = True
            self._data.set()

    async def next_chunk(self) -> Chunk | None:
        while True:
            q = self.queue
            if q:
                c = q.popleft()
                self.queued -= c.end - c.pos
                if self.queued < self.max_queued:
                    self._space.set()
                return c
            if self.error is not None:
                err, self.error = self.error, None
                raise err
            if self.fetch_done or self.closed:
                return None
            self._data.clear()
            await self._data.wait()

    def chunk_done(self, chunk: Chunk) -> None:
        pass

    def requeue(self, chunk: Chunk) -> None:
        """Puts an unfinished chunk back at the front of the queue."""
        self.queue.appendleft(chunk)
        self.queued += chunk.end - chunk.pos
        self._data.set()

    def _advance(self) -> None:
        tracker = self.tracker
        committable = self.committable
        while tracker and tracker[0].pending <= 0:
            committable.update(tracker.popleft().batch.positions)
        self._progress.set()

    def in_flight(self) -> int:
        return sum(bs.pending for bs in self.tracker)

    async def commit(self) -> None:
        """Commits the completed prefix (offsets after the last record of every
        fully acknowledged leading batch)."""
        pending = {tp: o for tp, o in self.committable.items() if self.committed.get(tp) != o}
        if not pending or self.consumer is None:
            return
        # What the processed records produced (sinks, sends, table changelogs)
        # must be durable before their input offsets are committed.
        sends = self.app._pending_sends
        if sends:
            await asyncio.gather(*list(sends), return_exceptions=True)
        for table in list(self.app.tables.values()):
            flush = getattr(table, "flush", None)
            if flush is not None:
                await flush()
        await self.app.transport.flush()
        await self.consumer.commit(pending)
        self.committed.update(pending)
        self.app.monitor.commits += 1

    async def _commit_loop(self) -> None:
        """Every ``broker_commit_interval`` seconds: commit the completed prefix."""
        interval = self.app.conf.broker_commit_interval
        while not self.closed:
            await asyncio.sleep(interval)
            try:
                await self.commit()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("offset commit of %s (group %s) failed", self.channel, self.group)

    def stop_fetching(self) -> None:
        self.stopping = True
        self._space.set()

    async def close(self) -> None:
        """Stops fetching, commits what was processed and leaves the group."""
        if self.closed:
            return
        self.stop_fetching()
        for t in self._tasks:
            if t.get_name().startswith("fetch:"):
                try:
                    await asyncio.wait_for(t, 5.0)
                except (TimeoutError, asyncio.CancelledError, Exception):
                    t.cancel()
        self.closed = True
        self._data.set()
        for t in self._tasks:
            if not t.done():
                t.cancel()
        for t in self._tasks:
            try:
                await t
            except (asyncio.CancelledError, Exception):
                pass
        if self.consumer is not None:
            try:
                await self.commit()
            except Exception:
                log.exception(
                    "final offset commit of %s (group %s) failed", self.channel, self.group
                )
            await self.consumer.close()


def _topic_counts(batch: Any) -> Any:
    positions = batch.positions
    first = next(iter(positions))[0]
    if all(tp[0] == first for tp in positions):
        return ((first, batch.n),)
    return collections.Counter(batch.topics).items()


def _native_value_format(channel: Any) -> Any:
    """What the native Kafka consumer decodes besides the raw bytes: a JSON
    schema from a Record value type, for the Arrow fast path."""
    vt = getattr(channel, "value_type", None)
    schema_fn = getattr(vt, "arrow_schema", None)
    if schema_fn is not None and channel.value_serializer in ("json", None):
        try:
            return {"name": "json", "schema": schema_fn()}
        except Exception:
            return None
    return None


class CircuitBreaker:
    """Opens when an agent crashed ``max_failures`` times within ``window``
    seconds; while open the agent processes nothing (its records stay
    uncommitted) and it is retried after ``reset_after`` seconds (half-open)."""

    def __init__(
        self, max_failures: int = 5, window: float = 60.0, reset_after: float = 30.0
    ) -> None:
        self.max_failures = max_failures
        self.window = window
        self.reset_after = reset_after
        self.failures: collections.deque[float] = collections.deque()
        self.open = False
        self.trips = 0

    def record_failure(self) -> bool:
        now = time.monotonic()
        self.failures.append(now)
        while self.failures and now - self.failures[0] > self.window:
            self.failures.popleft()
        if len(self.failures) >= self.max_failures:
            self.open = True
            self.trips += 1
            self.failures.clear()
        return self.open


class Actor:
    """One of an agent's ``concurrency`` workers."""

    def __init__(self, agent: Agent, index: int) -> None:
        self.agent = agent
        self.index = index
        self.inbox = agent.source.inbox() if agent.source is not None else None
        self.task: asyncio.Task | None = None
        self.crashes = 0
        self.restarts = 0
        self.consecutive = 0


class Agent:
    """An agent: an async function processing a stream (Faust's ``faust.Agent``)."""

    def __init__(
        self,
        fun: Callable[..., Any],
        *,
        app: App,
        channel: Any = None,
        name: str | None = None,
        concurrency: int = 1,
        sink: Any = None,
        supervisor_strategy: Any = None,
        isolated_partitions: bool = False,
        restart_backoff: tuple[float, float] = (0.05, 5.0),
        max_failures: int = 5,
        failure_window: float = 60.0,
        circuit_reset: float = 30.0,
        shutdown_timeout: float = 30.0,
        group: str | None = None,
        **kwargs: Any,
    ) -> None:
        self.fun = fun
        self.app = app
        self.name = name or f"{fun.__module__}.{fun.__qualname__}"
        self.short_name = name or fun.__name__
        self.concurrency = max(1, int(concurrency))
        self.sinks = list(sink) if isinstance(sink, (list, tuple)) else ([sink] if sink else [])
        strategy = supervisor_strategy or app.conf.agent_supervisor
        if not isinstance(strategy, str):
            strategy = getattr(strategy, "__name__", str(strategy))
        strategy = strategy.lower().replace("supervisor", "").replace("-", "_").strip("_")
        if strategy in ("oneforone", "one_for_one", ""):
            strategy = ONE_FOR_ONE
        elif strategy in ("oneforall", "one_for_all", "crashing"):
            strategy = ONE_FOR_ALL
        else:
            raise ValueError(
                f"agent {self.name}: unknown supervisor strategy {supervisor_strategy!r}"
            )
        self.strategy = strategy
        self.restart_backoff = restart_backoff
        self.breaker = CircuitBreaker(max_failures, failure_window, circuit_reset)
        self.shutdown_timeout = shutdown_timeout
        # Faust: @app.agent(key_type=, value_type=, ...) without a topic types
        # the agent's own topic <app id>-<agent name>.
        topic_opts = {
            k: kwargs.pop(k)
            for k in (
                "key_type",
                "value_type",
                "key_serializer",
                "value_serializer",
                "partitions",
            )
            if k in kwargs
        }
        if channel is None:
            channel = app.topic(f"{app.conf.id}-{self.short_name}", **topic_opts)
        elif isinstance(channel, str):
            channel = app.topic(channel, **topic_opts)
        self.channel = channel
        self.group = group
        self.source: Source | None = None
        self.actors: list[Actor] = []
        self._supervisor: asyncio.Task | None = None
        self._stop_event: asyncio.Event | None = None  # created in start() (needs a loop)
        self.stopping = False
        self.started = False
        self.results: dict[int, Any] | None = None  # test_context: offset -> last yield
        self._test_error: BaseException | None = None
        self.crashed_with: BaseException | None = None
        self.__wrapped__ = fun
        self.__name__ = getattr(fun, "__name__", self.short_name)
        self.__doc__ = fun.__doc__

    def __repr__(self) -> str:
        return f"<Agent {self.name} channel={self.channel!r} concurrency={self.concurrency}>"

    @property
    def topic(self) -> Any:
        return self.channel

    # -- lifecycle ----------------------------------------------------------------------

    async def start(self, *, group: str | None = None) -> None:
        if self.started:
            return
        self.started = True
        self.stopping = False
        self._stop_event = asyncio.Event()
        g = group or self.group or self.app._group_for(self)
        # An agent that yields can answer `ask` requests, which carry their
        # reply address in record headers.
        self.source = Source(
            self.app,
            self.channel,
            g,
            concurrency=self.concurrency,
            needs_headers=inspect.isasyncgenfunction(self.fun),
        )
        self.source.agent_name = self.short_name
        self.source.monitor_name = self.name
        await self.source.start()
        self.actors = [Actor(self, i) for i in range(self.concurrency)]
        self.app.monitor.circuit_open[self.name] = False
        self._supervisor = asyncio.get_running_loop().create_task(
            self._supervise(), name=f"supervisor:{self.name}"
        )

    async def stop(self) -> None:
        """Graceful: stop fetching, let the actors finish the records already
        fetched (up to ``shutdown_timeout``), commit, leave the group."""
        if not self.started:
            return
        self.stopping = True
        src = self.source
        assert src is not None
        src.stop_fetching()
        self._stop_event.set()
        sup = self._supervisor
        if sup is not None:
            try:
                await asyncio.wait_for(asyncio.shield(sup), self.shutdown_timeout)
            except TimeoutError:
                log.warning(
                    "agent %s: records still in flight after %.1fs; cancelling "
                    "(they stay uncommitted)",
                    self.name,
                    self.shutdown_timeout,
                )
                sup.cancel()
                try:
                    await sup
                except (asyncio.CancelledError, Exception):
                    pass
            except (asyncio.CancelledError, Exception):
                pass
        await src.close()
        self.started = False

    # -- supervision --------------------------------------------------------------------

    def _spawn(self, actor: Actor, delay: float = 0.0) -> asyncio.Task:
        ctx = contextvars.copy_context()
        task = asyncio.get_running_loop().create_task(
            self._run_actor(actor, delay), name=f"agent:{self.name}:{actor.index}", context=ctx
        )
        actor.task = task
        return task

    async def _sleep(self, seconds: float) -> bool:
        """Waits ``seconds`` unless the agent stops first; True if stopping."""
        if seconds <= 0:
            return self.stopping
        try:
            await asyncio.wait_for(self._stop_event.wait(), seconds)
        except TimeoutError:
            pass
        return self.stopping

    async def _supervise(self) -> None:
        tasks = {self._spawn(a): a for a in self.actors}
        monitor = self.app.monitor
        while tasks:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            restart: list[Actor] = []
            for t in done:
                actor = tasks.pop(t)
                if t.cancelled():
                    continue
                exc = t.exception()
                if exc is None:
                    actor.consecutive = 0
                    continue
                if self.stopping:
                    continue
                restart.append(actor)
            if not restart:
                continue
            if self.strategy == ONE_FOR_ALL:
                for t in list(tasks):
                    t.cancel()
                for t, a in list(tasks.items()):
                    try:
                        await t
                    except (asyncio.CancelledError, Exception):
                        pass
                    restart.append(a)
                tasks.clear()
            failures = max(a.consecutive for a in restart)
            delay = min(
                self.restart_backoff[0] * (2 ** max(0, failures - 1)), self.restart_backoff[1]
            )
            if self.breaker.open:
                monitor.circuit_open[self.name] = True
                log.error(
                    "agent %s: circuit breaker OPEN after repeated crashes; pausing for %.1fs "
                    "(records stay uncommitted) before a trial restart",
                    self.name,
                    self.breaker.reset_after,
                )
                delay = self.breaker.reset_after
            for a in restart:
                a.restarts += 1
                monitor.agent_restarts[self.name] += 1
                log.warning(
                    "agent %s actor %d: restarting in %.2fs (restart #%d, strategy %s)",
                    self.name,
                    a.index,
                    delay,
                    a.restarts,
                    self.strategy,
                )
                tasks[self._spawn(a, delay)] = a

    async def _run_actor(self, actor: Actor, delay: float) -> None:
        if delay and await self._sleep(delay):
            return
        if self.breaker.open:
            log.warning("agent %s: circuit breaker half-open, trial restart", self.name)
        scope: list[Source] = []
        _actor_scope.set(scope)
        stream = Stream(self.app, source=actor.inbox, channel=self.channel)
        stream.concurrency_index = actor.index
        try:
            await self._execute(stream)
            if self.breaker.open:
                self.breaker.open = False
                self.app.monitor.circuit_open[self.name] = False
            if not self.stopping:
                log.warning(
                    "agent %s actor %d: the agent body returned; this actor stops",
                    self.name,
                    actor.index,
                )
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            actor.crashes += 1
            actor.consecutive += 1
            self.crashed_with = exc
            self.app.monitor.agent_crashes[self.name] += 1
            where = self._skip_failed(actor)
            self.breaker.record_failure()
            log.error(
                "agent %s actor %d crashed%s: %r", self.name, actor.index, where, exc, exc_info=exc
            )
            if self.results is not None:  # test_context: surface to put()
                self._test_error = exc
            raise
        finally:
            await stream._close()
            for s in scope:
                await s.close()

    def _skip_failed(self, actor: Actor) -> str:
        """Acknowledges the record the body failed on (it is logged, not retried,
        so a poison record cannot stop the agent) and keeps the rest of its chunk
        for the restarted actor."""
        cur = _current.get()
        if cur is None:
            return ""
        chunk = cur._root._chunk
        if chunk is None or chunk.pos >= chunk.end:
            return ""
        i = chunk.pos
        msg = chunk.message(i)
        if cur._root._autoack:
            chunk.ack_to(i + 1)
        else:
            chunk.ack_index(i)
        chunk.pos = i + 1
        chunk.owner = None  # the failed iteration must not requeue it again
        if chunk.pos < chunk.end:
            cur._root._source.requeue(chunk)
        return f" on {msg.topic}[{msg.partition}]@{msg.offset}"

    async def _execute(self, stream: Stream) -> None:
        res = self.fun(stream)
        if inspect.isasyncgen(res):
            deliver = self._deliver
            async for out in res:
                await deliver(out)
        else:
            await res

    async def _deliver(self, out: Any) -> None:
        ev = None
        if self.results is not None:
            ev = _current.get().current_event()
            self.results[ev.message.offset] = out
        cur = _current.get()
        chunk = cur._root._chunk if cur is not None else None
        if chunk is not None and chunk.bs.batch.headers is not None:
            ev = ev or cur.current_event()
            reply_to = ev.headers.get(REPLY_TO)
            if reply_to:
                await self.app._replies().reply(reply_to, ev.headers.get(CORRELATION_ID), out)
        for s in self.sinks:
            if isinstance(s, Agent):
                await s.send(value=out)
            elif hasattr(s, "send") and hasattr(s, "topics"):
                await s.send(value=out)
            elif callable(s):
                r = s(out)
                if inspect.isawaitable(r):
                    await r
            else:
                raise TypeError(f"agent {self.name}: unsupported sink {s!r}")

    # -- sending ------------------------------------------------------------------------

    async def send(
        self,
        *,
        key: Any = None,
        value: Any = None,
        partition: int | None = None,
        timestamp: float | None = None,
        headers: Any = None,
        reply_to: Any = None,
        correlation_id: str | None = None,
        **kw: Any,
    ) -> Any:
        """Sends a record to the agent's topic/channel."""
        if reply_to is not None:
            headers = dict(headers or {})
            headers[REPLY_TO] = _reply_name(reply_to).encode()
            headers[CORRELATION_ID] = (correlation_id or uuid.uuid4().hex).encode()
        return await self.channel.send(
            key=key, value=value, partition=partition, timestamp=timestamp, headers=headers
        )

    async def cast(
        self,
        value: Any = None,
        *,
        key: Any = None,
        partition: int | None = None,
        timestamp: float | None = None,
        headers: Any = None,
    ) -> None:
        """Sends without waiting for a reply (Faust's ``cast``)."""
        await self.send(
            key=key, value=value, partition=partition, timestamp=timestamp, headers=headers
        )

    async def ask(
        self,
        value: Any = None,
        *,
        key: Any = None,
        partition: int | None = None,
        timestamp: float | None = None,
        headers: Any = None,
        reply_to: Any = None,
        correlation_id: str | None = None,
        timeout: float = 30.0,
    ) -> Any:
        """Sends a request and waits for the value the agent yields for it (the
        agent must be an async generator). Replies travel on the reply topic
        ``<app id>-reply`` (or ``reply_to``)."""
        replies = self.app._replies(reply_to)
        await replies.ensure_started()
        cid = correlation_id or uuid.uuid4().hex
        fut = replies.expect(cid)
        await self.send(
            key=key,
            value=value,
            partition=partition,
            timestamp=timestamp,
            headers=headers,
            reply_to=replies.topic_name,
            correlation_id=cid,
        )
        try:
            return await asyncio.wait_for(fut, timeout)
        finally:
            replies.forget(cid)

    async def map(self, values: Any, *, key: Any = None, timeout: float = 30.0) -> Any:
        """Asks the agent for each value (concurrently); yields the replies in order."""
        futs = [asyncio.ensure_future(self.ask(value=v, key=key, timeout=timeout)) for v in values]
        for f in futs:
            yield await f

    async def kvmap(self, items: Any, *, timeout: float = 30.0) -> Any:
        """Asks for each (key, value); yields (key, reply) in order."""
        items = list(items.items() if isinstance(items, dict) else items)
        futs = [asyncio.ensure_future(self.ask(value=v, key=k, timeout=timeout)) for k, v in items]
        for (k, _), f in zip(items, futs, strict=True):
            yield k, await f

    async def join(self, values: Any, *, key: Any = None, timeout: float = 30.0) -> list[Any]:
        """Asks for every value concurrently; the replies as a list, in order."""
        return list(
            await asyncio.gather(*(self.ask(value=v, key=key, timeout=timeout) for v in values))
        )

    async def kvjoin(self, items: Any, *, timeout: float = 30.0) -> list[Any]:
        items = list(items.items() if isinstance(items, dict) else items)
        return list(
            await asyncio.gather(*(self.ask(value=v, key=k, timeout=timeout) for k, v in items))
        )

    def test_context(self, **kw: Any) -> Any:
        """``async with agent.test_context() as agent:``: runs the agent on an
        in-process channel; ``await agent.put(value)`` returns the Event once the
        agent processed it, ``agent.results[offset]`` holds what it yielded."""
        from sabot.faust.testing import AgentTestContext

        return AgentTestContext(self, **kw)

    def info(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "topic": str(self.channel),
            "concurrency": self.concurrency,
            "strategy": self.strategy,
            "sinks": [repr(s) for s in self.sinks],
            "help": (self.fun.__doc__ or "").strip().splitlines()[0] if self.fun.__doc__ else "",
        }


def _reply_name(reply_to: Any) -> str:
    if isinstance(reply_to, str):
        return reply_to
    return getattr(reply_to, "name", None) or str(reply_to)


class ReplyService:
    """Consumes the reply topic and resolves ``agent.ask`` futures by correlation id."""

    def __init__(self, app: App, topic_name: str) -> None:
        self.app = app
        self.topic_name = topic_name
        self.topic = app.topic(topic_name, partitions=1, internal=True)
        self.futures: dict[str, asyncio.Future] = {}
        self.source: Source | None = None
        self.task: asyncio.Task | None = None

    async def ensure_started(self) -> None:
        if self.source is None:
            self.source = Source(
                self.app, self.topic, f"{self.app.conf.id}-reply-{uuid.uuid4().hex[:8]}"
            )
            self.source.agent_name = "reply"
            await self.source.start()
            self.task = asyncio.get_running_loop().create_task(self._run(), name="replies")

    def expect(self, cid: str) -> asyncio.Future:
        fut = asyncio.get_running_loop().create_future()
        self.futures[cid] = fut
        return fut

    def forget(self, cid: str) -> None:
        self.futures.pop(cid, None)

    async def reply(self, reply_to: Any, cid: Any, value: Any) -> None:
        if isinstance(reply_to, bytes):
            reply_to = reply_to.decode()
        if isinstance(cid, bytes):
            cid = cid.decode()
        topic = self.app.topics.get(reply_to) or self.app.topic(
            reply_to, partitions=1, internal=True
        )
        await topic.send(key=cid, value=value, headers={CORRELATION_ID: (cid or "").encode()})

    async def _run(self) -> None:
        assert self.source is not None
        inbox = self.source.inbox()
        while True:
            chunk = await inbox.next_chunk()
            if chunk is None:
                return
            keys = chunk.bs.batch.keys
            values = chunk.values()
            for i in range(chunk.start, chunk.end):
                k = keys[i]
                cid = k.decode() if isinstance(k, bytes) else k
                fut = self.futures.get(cid)
                if fut is not None and not fut.done():
                    fut.set_result(values[i])
            chunk.ack_to(chunk.end)

    async def stop(self) -> None:
        if self.source is not None:
            await self.source.close()
        if self.task is not None:
            self.task.cancel()
            try:
                await self.task
            except (asyncio.CancelledError, Exception):
                pass
        for f in self.futures.values():
            if not f.done():
                f.cancel()


class AgentManager:
    """The service (priority 20) that starts and stops all agents of an app."""

    def __init__(self, app: App) -> None:
        self.app = app

    async def start(self) -> None:
        app = self.app
        if getattr(app.transport, "shared_consumer", False):
            from sabot.faust.transport.shared import SharedConsumer

            # One group member for all agents in the app's group (as Faust):
            # subscribed once all of them are registered.
            app._shared_consumer = SharedConsumer(
                app.transport,
                app.conf.id,
                app.conf.batch_size,
                max(app.conf.stream_buffer_maxsize, 1),
            )
        for agent in app.agents.values():
            await agent.start()
        if app._shared_consumer is not None:
            app._shared_consumer.open()

    async def stop(self) -> None:
        agents = list(self.app.agents.values())
        for agent in agents:  # stop fetching everywhere first
            if agent.source is not None:
                agent.source.stop_fetching()
        await asyncio.gather(*(a.stop() for a in reversed(agents)), return_exceptions=True)
        self.app._shared_consumer = None
