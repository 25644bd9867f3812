"""Streams: what an agent iterates (``async for value in stream``).

A stream reads *chunks*: index ranges of a consumer batch whose keys and values
were decoded once for the whole batch (see :mod:`sabot.faust.agents`). The
per-record loop only indexes lists and moves a cursor; Event objects are built
only when the agent asks for them (``events()``, ``current_event()``).

Acknowledgement: by default a record is acknowledged once the agent asks for the
next one (the chunk's records are acknowledged together when the stream moves
past the chunk). ``noack()`` streams leave acknowledging to ``event.ack()``.
Offsets are committed only up to the first unacknowledged record.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

from sabot.faust.events import Event, Message, _set_current_source

if TYPE_CHECKING:
    from sabot.faust.app import App


class Stream:
    """A stream of values (Faust's ``faust.Stream``)."""

    def __init__(
        self,
        app: App,
        *,
        source: Any = None,
        parent: Stream | None = None,
        gen: Callable[[], AsyncIterator[Any]] | None = None,
        channel: Any = None,
    ) -> None:
        self.app = app
        self._source = source  # root streams: the chunk source (agents.ActorInbox)
        self._parent = parent
        self._gen = gen
        self.channel = channel if channel is not None else (parent.channel if parent else None)
        self._root: Stream = parent._root if parent is not None else self
        self._chunk: Any = None  # root: chunk being read
        self._autoack = True
        self._owned: list[Any] = []  # sources/tasks created by operators (group_by ...)
        self._gens: list[Any] = []  # root iterations (closed when the actor ends)
        self.concurrency_index = 0

    # -- construction ------------------------------------------------------------------

    @classmethod
    def from_channel(cls, app: App, channel: Any, **kw: Any) -> Stream:
        """A stream with its own consumer of ``channel`` (for ``app.task`` or
        ``topic.stream()``); started on first iteration."""
        from sabot.faust.agents import Source

        src = Source(app, channel, group=kw.get("group") or f"{app.conf.id}-stream-{channel.name}")
        stream = cls(app, source=src.inbox(), channel=channel)
        stream._owned.append(src)
        return stream

    def _derive(self, gen: Callable[[], AsyncIterator[Any]]) -> Stream:
        return Stream(self.app, parent=self, gen=gen)

    # -- iteration ----------------------------------------------------------------------

    def __aiter__(self) -> AsyncIterator[Any]:
        if self._gen is not None:
            return self._gen()
        gen = self._iter_root()
        self._gens.append(gen)
        return gen

    async def _iter_root(self) -> AsyncIterator[Any]:
        src = self._source
        for owned in self._owned:
            await owned.ensure_started()
        _set_current_source(self)
        try:
            while True:
                chunk = await src.next_chunk()
                if chunk is None:
                    return
                chunk.owner = self
                self._chunk = chunk
                values = chunk.values()
                autoack = self._autoack
                end = chunk.end
                i = chunk.pos
                bad = chunk.bs.bad
                if bad is None:
                    while i < end:
                        chunk.pos = i
                        yield values[i]
                        i += 1
                else:  # undecodable values (logged) are skipped and acknowledged
                    while i < end:
                        chunk.pos = i
                        if i in bad:
                            if not autoack:
                                chunk.ack_index(i)
                        else:
                            yield values[i]
                        i += 1
                chunk.pos = end
                if autoack:
                    chunk.ack_to(end)
                src.chunk_done(chunk)
        finally:
            self._release_chunk()

    def _release_chunk(self) -> None:
        """The iteration stopped inside a chunk (cancelled, closed): the rest of
        it, from the record in process, goes back to the source, so its records
        are processed (and acknowledged) by the next reader instead of holding
        back the commits forever."""
        chunk, self._chunk = self._chunk, None
        if chunk is not None and chunk.owner is self and chunk.pos < chunk.end:
            chunk.owner = None
            self._source.requeue(chunk)

    async def _close(self) -> None:
        """Closes the root iterations of this stream (requeueing unfinished chunks)."""
        gens, self._gens = self._gens, []
        for g in gens:
            try:
                await g.aclose()
            except (Exception, asyncio.CancelledError):
                pass

    def batches(self) -> AsyncIterator[Any]:
        """The fast path: yields ``pyarrow.RecordBatch``es of the decoded values
        (natively decoded for Kafka topics with a Record value type or JSON). A
        batch is acknowledged when the next one is requested."""
        if self._root is not self:
            raise TypeError("batches() is only available on an agent's stream, not a derived one")
        gen = self._iter_batches()
        self._gens.append(gen)
        return gen

    async def _iter_batches(self) -> AsyncIterator[Any]:
        src = self._source
        use_arrow = getattr(getattr(src, "source", src), "use_arrow_batches", None)
        if use_arrow is not None:
            use_arrow()
        for owned in self._owned:
            await owned.ensure_started()
        _set_current_source(self)
        try:
            while True:
                chunk = await src.next_chunk()
                if chunk is None:
                    return
                chunk.owner = self
                self._chunk = chunk
                rb = chunk.arrow_values()
                yield rb
                chunk.pos = chunk.end
                if self._autoack:
                    chunk.ack_to(chunk.end)
                src.chunk_done(chunk)
        finally:
            self._release_chunk()

    # -- current record -----------------------------------------------------------------

    def current_event(self) -> Event | None:
        root = self._root
        chunk = root._chunk
        if chunk is None:
            return None
        return chunk.event(chunk.pos, not root._autoack)

    def current_key(self) -> Any:
        chunk = self._root._chunk
        return None if chunk is None else chunk.keys()[chunk.pos]

    @property
    def current_message(self) -> Message | None:
        ev = self.current_event()
        return None if ev is None else ev.message

    # -- operators ----------------------------------------------------------------------

    def items(self) -> Stream:
        """(key, value) pairs."""
        parent, root = self, self._root

        async def gen() -> AsyncIterator[Any]:
            async for v in parent:
                yield root.current_key(), v

        return self._derive(gen)

    def events(self) -> Stream:
        """:class:`~sabot.faust.events.Event` objects."""
        parent, root = self, self._root

        async def gen() -> AsyncIterator[Any]:
            async for _ in parent:
                yield root.current_event()

        return self._derive(gen)

    def filter(self, fun: Callable[[Any], Any]) -> Stream:
        """Values for which ``fun(value)`` (sync or async) is true; the others
        are acknowledged and dropped."""
        parent = self
        is_async = inspect.iscoroutinefunction(fun)

        async def gen() -> AsyncIterator[Any]:
            if is_async:
                async for v in parent:
                    if await fun(v):
                        yield v
            else:
                async for v in parent:
                    if fun(v):
                        yield v

        return self._derive(gen)

    def enumerate(self, start: int = 0) -> Stream:
        """(index, value) pairs."""
        parent = self

        async def gen() -> AsyncIterator[Any]:
            i = start
            async for v in parent:
                yield i, v
                i += 1

        return self._derive(gen)

    def noack(self) -> Stream:
        """A stream whose records are acknowledged only by ``event.ack()`` /
        ``stream.ack(event)``; offsets are never committed past an
        unacknowledged record."""
        self._root._autoack = False
        return self

    def ack(self, event: Event) -> bool:
        """Acknowledges ``event``."""
        return event.ack()

    def take(self, max_: int, within: float | None = None) -> Stream:
        """Lists of up to ``max_`` values; with ``within`` (seconds) a shorter
        list is yielded when that time passed since its first value. The values
        of a list are acknowledged once the next list is requested."""
        parent, root = self, self._root
        root._autoack = False

        async def gen() -> AsyncIterator[Any]:
            it = parent.__aiter__()
            buf: list[Any] = []
            acks: list[Any] = []
            pending: asyncio.Future | None = None
            loop = asyncio.get_running_loop()
            deadline: float | None = None
            handing: list[Any] = []  # acks of the list the body is processing
            _set_current_source(root)
            try:
                while True:
                    if pending is None:
                        pending = loop.create_task(it.__anext__())
                    timeout = None
                    if within is not None and buf:
                        timeout = max(0.0, deadline - loop.time())  # type: ignore[operator]
                    done, _ = await asyncio.wait({pending}, timeout=timeout)
                    if pending in done:
                        try:
                            v = pending.result()
                        except StopAsyncIteration:
                            pending = None
                            if buf:
                                handing = acks
                                yield buf
                                handing = []
                                for a in acks:
                                    a()
                            return
                        pending = None
                        if not buf and within is not None:
                            deadline = loop.time() + within
                        buf.append(v)
                        acks.append(root._acker_for_current())
                        if len(buf) < max_:
                            continue
                    if buf:
                        out, handing = buf, acks
                        buf, acks = [], []
                        yield out
                        done_acks, handing = handing, []
                        for a in done_acks:
                            a()
            finally:
                if pending is not None:
                    pending.cancel()
                # The body failed on (or abandoned) the list it held: acknowledged
                # like any failed record. Values buffered for the next list stay
                # unacknowledged: their offsets are not committed in this run.
                for a in handing:
                    a()

        return self._derive(gen)

    def _acker_for_current(self) -> Callable[[], None]:
        chunk = self._chunk
        i = chunk.pos

        return lambda: chunk.ack_index(i)

    def echo(self, *channels: Any) -> Stream:
        """The same values, each also sent to every one of ``channels``."""
        parent, root = self, self._root
        targets = [self.app._resolve_channel(c) for c in channels]

        async def gen() -> AsyncIterator[Any]:
            async for v in parent:
                k = root.current_key()
                for t in targets:
                    await t.send(key=k, value=v)
                yield v

        return self._derive(gen)

    def through(self, channel: Any) -> Stream:
        """Forwards every value to ``channel`` (a topic, channel or name) and
        returns the stream of that channel."""
        target = self.app._resolve_channel(channel)
        return self._forward(target, key_fun=None)

    def group_by(
        self, key: Any, *, name: str | None = None, topic: Any = None, partitions: int | None = None
    ) -> Stream:
        """Repartitions by ``key`` (a function of the value, or a Record field
        descriptor / field name): every value is sent with its new key to the
        repartition topic ``<app id>-<agent>-<name>-repartition`` (or ``topic``)
        and the returned stream reads that topic, so equal keys meet in the same
        partition."""
        app = self.app
        if callable(key) and not isinstance(key, str):
            key_fun = key
            label = name or getattr(key, "__name__", "key")
        else:
            field = key if isinstance(key, str) else getattr(key, "field", None) or str(key)
            label = name or field

            def key_fun(v: Any, _f: str = field) -> Any:
                return v[_f] if isinstance(v, dict) else getattr(v, _f)

        if topic is None:
            base = self.channel
            agent_name = getattr(self._root._source, "agent_name", None) or "stream"
            tname = f"{app.conf.id}-{agent_name}-{label}-repartition"
            topic = app.topic(
                tname,
                key_type=getattr(base, "key_type", None),
                value_type=getattr(base, "value_type", None),
                value_serializer=getattr(base, "value_serializer", None),
                partitions=partitions or getattr(base, "partitions", None),
                internal=True,
            )
        return self._forward(topic, key_fun=key_fun)

    def _forward(self, target: Any, key_fun: Callable[[Any], Any] | None) -> Stream:
        from sabot.faust.agents import Source

        app, parent, root = self.app, self, self._root
        agent_name = getattr(root._source, "agent_name", None) or "stream"
        src = Source(app, target, group=f"{app.conf.id}-{agent_name}-{target.name}")
        src.agent_name = agent_name
        owner = getattr(root._source, "source", root._source)  # an ActorInbox or a Source
        src.monitor_name = getattr(owner, "monitor_name", None)
        stream = Stream(app, source=src.inbox(), channel=target)

        async def pump() -> None:
            try:
                async for v in parent:
                    k = key_fun(v) if key_fun is not None else root.current_key()
                    await target.send(key=k, value=v)
            finally:
                await root._close()

        src.attach_pump(pump)
        stream._owned.append(src)
        root._owned_children().append(src)
        return stream

    def _owned_children(self) -> list[Any]:
        return self._owned

    def __repr__(self) -> str:
        return f"<Stream {self.channel!r}>"
