"""One consumer per app (per worker) for all agents in the app's group.

Faust runs one consumer per worker, subscribed to the topics of every agent,
and dispatches what it fetches to the agents by topic. With one consumer per
agent instead, all of them join the same group one after the other, and each
join rebalances the group while the agents that joined earlier are already
processing: their partitions are revoked and re-read from the last commit by
the new owner (thousands of duplicate outputs at start-up).

:class:`SharedConsumer` owns the one group member. Each agent's
:class:`~sabot.faust.agents.Source` gets a :class:`TopicView` (the Consumer
interface): ``getmany`` returns the next part of a fetched batch that belongs to
the view's topics, ``commit`` commits through the shared member. Every
(topic, partition) belongs to exactly one view (agents reading the same topic
get groups of their own, see ``App._group_for``), so each Source still commits
only the completed prefix of its own batches: never past a record in flight.

The dispatcher stops polling while some view holds ``max_pending`` records not
yet taken by its Source (backpressure, as a Source's own fetch loop does).
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Sequence
from typing import Any

from sabot.faust.transport.base import Batch, Consumer

log = logging.getLogger("sabot.faust.shared")


def split_by_topic(batch: Any, topics_of: dict[str, Any]) -> dict[Any, Any]:
    """``batch`` cut into one batch per view (``topics_of`` maps topic -> view)."""
    owners = {topics_of.get(tp[0]) for tp in batch.positions}
    if len(owners) == 1:
        return {owners.pop(): batch}
    out: dict[Any, Any] = {}
    select = getattr(batch, "select_topics", None)
    if select is not None:  # a native Kafka batch: filtered in C++, no pyarrow
        for view in owners:
            out[view] = select([t for t, v in topics_of.items() if v is view])
        return out
    idx: dict[Any, list[int]] = collections.defaultdict(list)
    for i, t in enumerate(batch.topics):
        idx[topics_of.get(t)].append(i)
    for view, rows in idx.items():

        def pick(col: Any, rows: list[int] = rows) -> Any:
            return None if col is None else [col[i] for i in rows]

        out[view] = Batch(
            n=len(rows),
            topics=pick(batch.topics),
            partitions=pick(batch.partitions),
            offsets=pick(batch.offsets),
            timestamps=pick(batch.timestamps),
            keys=pick(batch.keys),
            values=pick(batch.values),
            headers=pick(batch.headers),
            positions={tp: o for tp, o in batch.positions.items() if topics_of.get(tp[0]) is view},
            objects=batch.objects,
        )
    return out


class TopicView(Consumer):
    """What one Source sees of the shared consumer: its topics' records."""

    def __init__(self, hub: SharedConsumer, topics: Sequence[str], value_format: Any) -> None:
        self.hub = hub
        self.topics = list(topics)
        self.value_format = value_format
        self.queue: collections.deque[Any] = collections.deque()
        self.pending = 0
        self._data = asyncio.Event()
        self.closed = False
        self.needs_headers = False

    def put(self, batch: Any) -> None:
        self.queue.append(batch)
        self.pending += batch.n
        self._data.set()

    async def getmany(self, max_records: int, timeout: float) -> Any:
        if not self.queue and not self.closed:
            self._data.clear()
            try:
                await asyncio.wait_for(self._data.wait(), timeout)
            except TimeoutError:
                pass
        if self.hub.error is not None:
            raise self.hub.error
        if not self.queue:
            return None
        batch = self.queue.popleft()
        self.pending -= batch.n
        self.hub.space.set()
        return batch

    async def commit(self, positions: dict[tuple[str, int], int]) -> None:
        mine = {tp: o for tp, o in positions.items() if tp[0] in self.topics}
        await self.hub.commit(mine)

    def assignment(self) -> set[tuple[str, int]]:
        return {tp for tp in self.hub.assignment() if tp[0] in self.topics}

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._data.set()
        await self.hub.release(self)


class SharedConsumer:
    """The one group member of an app's agents (``group`` = the app id)."""

    def __init__(self, transport: Any, group: str, batch_size: int, max_pending: int) -> None:
        self.transport = transport
        self.group = group
        self.batch_size = batch_size
        self.max_pending = max(1, max_pending)
        self.views: list[TopicView] = []
        self.topics_of: dict[str, TopicView] = {}
        self.consumer: Any = None
        self.opened = False
        self.closed = False
        self.error: BaseException | None = None
        self.space = asyncio.Event()
        self._task: asyncio.Task | None = None
        self.polls = 0
        self.arrow_batches = False  # some agent iterates stream.batches()
        self._value_format: Any = None

    def view(
        self, topics: Sequence[str], value_format: Any, needs_headers: bool = False
    ) -> TopicView | None:
        """A view for a Source on ``topics``; None once the member is running
        (a late subscription would rebalance it) or when a topic is taken."""
        if self.opened or any(t in self.topics_of for t in topics):
            return None
        v = TopicView(self, topics, value_format)
        v.needs_headers = needs_headers
        self.views.append(v)
        for t in topics:
            self.topics_of[t] = v
        return v

    def open(self) -> None:
        """Subscribes to the topics of every view and starts dispatching."""
        if self.opened or not self.views:
            return
        self.opened = True
        formats = {repr(v.value_format) for v in self.views}
        # One decode schema for the member: only when every view wants the same
        # (else values are decoded per topic by the agents' runtime).
        value_format = self.views[0].value_format if len(formats) == 1 else None
        self._value_format = value_format
        self._task = asyncio.get_running_loop().create_task(
            self._dispatch(), name=f"fetch:{self.group}:shared"
        )

    def _open_consumer(self) -> None:
        kw: dict[str, Any] = {}
        if self.arrow_batches:  # only transports that take it (kafka)
            kw["arrow"] = True
        self.consumer = self.transport.consumer(
            list(self.topics_of),
            self.group,
            value_format=self._value_format,
            needs_headers=any(v.needs_headers for v in self.views),
            **kw,
        )

    def assignment(self) -> set[tuple[str, int]]:
        return self.consumer.assignment() if self.consumer is not None else set()

    async def _dispatch(self) -> None:
        # The consumer is made here, not in open(): by now the agents' bodies
        # started iterating, so a `stream.batches()` agent has said so
        # (use_arrow_batches) and gets the larger prefetch. A body that iterates
        # later only misses that tuning.
        for _ in range(3):
            await asyncio.sleep(0)
        try:
            self._open_consumer()
        except Exception as exc:  # surfaces in every view's getmany
            log.error("shared consumer of group %s: cannot open: %r", self.group, exc)
            self.error = exc
            for v in self.views:
                v._data.set()
            return
        failures = 0
        while not self.closed:
            if any(v.pending >= self.max_pending for v in self.views if not v.closed):
                self.space.clear()
                try:
                    await asyncio.wait_for(self.space.wait(), 0.5)
                except TimeoutError:
                    pass
                continue
            try:
                batch = await self.consumer.getmany(self.batch_size, 0.2)
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the views' fetch loops log and count it
                failures += 1
                delay = min(0.1 * 2 ** (failures - 1), 5.0)
                log.error(
                    "shared consumer of group %s: poll failed (%r); retry #%d in %.1fs",
                    self.group,
                    exc,
                    failures,
                    delay,
                )
                await asyncio.sleep(delay)
                continue
            self.polls += 1
            if batch is None:
                continue
            for view, part in split_by_topic(batch, self.topics_of).items():
                if view is None or view.closed:
                    continue  # not committed: read again by the next owner
                view.put(part)

    async def commit(self, positions: dict[tuple[str, int], int]) -> None:
        if positions and self.consumer is not None and not self.closed:
            await self.consumer.commit(positions)

    async def release(self, view: TopicView) -> None:
        """Closes the member once every view is closed (each Source committed first)."""
        if all(v.closed for v in self.views) and not self.closed:
            self.closed = True
            self.space.set()
            if self._task is not None:
                self._task.cancel()
                try:
                    await self._task
                except (asyncio.CancelledError, Exception):
                    pass
            if self.consumer is not None:
                await self.consumer.close()
