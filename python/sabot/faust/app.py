"""The Faust-compatible App: configuration, topics, agents, services.

.. code-block:: python

    import sabot as faust

    app = faust.App("hello", broker="memory://")
    greetings = app.topic("greetings", value_type=str, value_serializer="raw")

    @app.agent(greetings)
    async def greet(stream):
        async for name in stream:
            print("hello", name)

See docs/faust.md for the reference and docs/design/faust.md for the design.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import sys
from collections.abc import Callable
from typing import Any

from sabot.faust.topics import Channel, Topic
from sabot.faust.transport import Transport, make_transport

log = logging.getLogger("sabot.faust")


class Settings:
    """``app.conf``: the App's settings (Faust names)."""

    def __init__(self, id: str, **kw: Any) -> None:
        self.id = id
        broker = kw.pop("broker", "memory://")
        if isinstance(broker, (list, tuple)):
            broker = broker[0]
        self.broker = str(broker)
        self.store = str(kw.pop("store", "memory://"))
        self.web_port = int(kw.pop("web_port", 6066))
        self.web_host = kw.pop("web_host", "127.0.0.1")
        self.web_enabled = bool(kw.pop("web_enabled", True))
        self.topic_partitions = int(kw.pop("topic_partitions", 8))
        self.value_serializer = kw.pop("value_serializer", "json")
        self.key_serializer = kw.pop("key_serializer", "raw")
        self.broker_commit_interval = float(kw.pop("broker_commit_interval", 1.0))
        self.stream_buffer_maxsize = int(kw.pop("stream_buffer_maxsize", 4096))
        # Records per consumer poll. Per-record iteration holds every record of a
        # batch as Python objects while it is in flight, so it polls 512 at a
        # time (peak RSS, docs/design/faust_memory.md); `stream.batches()` keeps
        # columns in Arrow and polls `arrow_batch_size`, where per-batch costs
        # (pyarrow calls) dominate.
        self.batch_size = int(kw.pop("batch_size", 512))
        self.arrow_batch_size = int(kw.pop("arrow_batch_size", 4096))
        self.agent_supervisor = kw.pop("agent_supervisor", "one_for_one")
        self.table_cleanup_interval = float(kw.pop("table_cleanup_interval", 30.0))
        self.datadir = kw.pop("datadir", f"{id}-data")
        self.version = int(kw.pop("version", 1))
        self.autodiscover = kw.pop("autodiscover", False)
        self.origin = kw.pop("origin", None)
        self.extra = dict(kw)

    def __getattr__(self, name: str) -> Any:
        extra = self.__dict__.get("extra", {})
        if name in extra:
            return extra[name]
        raise AttributeError(name)


class Monitor:
    """``app.monitor``: counters of the running app (events in per topic and per
    agent, events out per topic, agent crashes and restarts, commits)."""

    def __init__(self) -> None:
        self.events_in: collections.Counter[str] = collections.Counter()
        self.events_out: collections.Counter[str] = collections.Counter()
        self.agent_events: collections.Counter[str] = collections.Counter()
        self.agent_crashes: collections.Counter[str] = collections.Counter()
        self.agent_restarts: collections.Counter[str] = collections.Counter()
        self.circuit_open: dict[str, bool] = {}
        self.commits = 0
        self.decode_errors = 0
        self.fetch_errors = 0
        self.batches_in = 0
        self.messages_sent = 0

    def on_send(self, topic: str) -> None:
        self.events_out[topic] += 1
        self.messages_sent += 1

    def on_batch(self, agent: str, topic_counts: Any, n: int) -> None:
        self.batches_in += 1
        self.agent_events[agent] += n
        for t, c in topic_counts:
            self.events_in[t] += c

    def snapshot(self) -> dict[str, Any]:
        return {
            "events_in": dict(self.events_in),
            "events_out": dict(self.events_out),
            "agent_events": dict(self.agent_events),
            "agent_crashes": dict(self.agent_crashes),
            "agent_restarts": dict(self.agent_restarts),
            "circuit_open": dict(self.circuit_open),
            "commits": self.commits,
            "decode_errors": self.decode_errors,
            "fetch_errors": self.fetch_errors,
            "batches_in": self.batches_in,
            "messages_sent": self.messages_sent,
        }


class App:
    """A Faust application: ``faust.App(id, broker=..., store=..., ...)``."""

    def __init__(self, id: str, **kwargs: Any) -> None:
        self.conf = Settings(id, **kwargs)
        self.monitor = Monitor()
        self.agents: dict[str, Any] = {}
        self.tables: dict[str, Any] = {}
        self.topics: dict[str, Topic] = {}
        self.pages: list[Any] = []
        self._transport: Transport | None = None
        self._channel_transport_: Transport | None = None
        self._services: list[tuple[int, int, Any]] = []
        self._tasks: list[Callable[..., Any]] = []
        self._running_tasks: list[asyncio.Task] = []
        self._pending_sends: set[asyncio.Task] = set()  # topic.send_soon tasks
        self._started: list[Any] = []
        self.started = False
        self._agents_service: Any = None
        self._reply_service: Any = None
        self._shared_consumer: Any = None  # transport/shared.py, while agents run
        self.strict = False

    # -- settings-like attributes ---------------------------------------------------

    @property
    def id(self) -> str:
        return self.conf.id

    @property
    def transport(self) -> Transport:
        if self._transport is None:
            self._transport = make_transport(
                self.conf.broker, default_partitions=self.conf.topic_partitions
            )
        return self._transport

    @property
    def _channel_transport(self) -> Transport:
        if self._channel_transport_ is None:
            from sabot.faust.transport.memory import MemoryTransport

            self._channel_transport_ = MemoryTransport("memory://", 1)
        return self._channel_transport_

    # -- topics and channels ---------------------------------------------------------

    def topic(self, *topics: str, **kw: Any) -> Topic:
        """A topic of this app: ``app.topic(name, key_type=, value_type=,
        partitions=, value_serializer=, key_serializer=)``."""
        t = Topic(self, *topics, **kw)
        for name in t.topics:
            self.topics.setdefault(name, t)
        return t

    def channel(
        self, *, key_type: Any = None, value_type: Any = None, maxsize: int | None = None, **kw: Any
    ) -> Channel:
        """An in-process channel (values are not serialized)."""
        return Channel(self, key_type=key_type, value_type=value_type, maxsize=maxsize, **kw)

    def _resolve_channel(self, channel: Any) -> Any:
        if isinstance(channel, str):
            return self.topics.get(channel) or self.topic(channel)
        return channel

    # -- agents ----------------------------------------------------------------------

    def agent(
        self,
        channel: Any = None,
        *,
        name: str | None = None,
        concurrency: int = 1,
        sink: Any = None,
        supervisor_strategy: Any = None,
        isolated_partitions: bool = False,
        **kwargs: Any,
    ) -> Callable[[Callable[..., Any]], Any]:
        """Decorator: ``@app.agent(topic, concurrency=, sink=[...])`` turns an
        ``async def f(stream)`` into an :class:`~sabot.faust.agents.Agent`."""
        from sabot.faust.agents import Agent

        def decorate(fun: Callable[..., Any]) -> Agent:
            agent = Agent(
                fun,
                app=self,
                channel=channel,
                name=name,
                concurrency=concurrency,
                sink=sink,
                supervisor_strategy=supervisor_strategy,
                isolated_partitions=isolated_partitions,
                **kwargs,
            )
            self.agents[agent.name] = agent
            return agent

        return decorate

    actor = agent  # Faust alias

    def task(self, fun: Callable[..., Any] | None = None, *, on_leader: bool = False) -> Any:
        """Decorator: runs ``async def fun()`` (or ``fun(app)``) once the app started."""

        def decorate(f: Callable[..., Any]) -> Callable[..., Any]:
            self._tasks.append(f)
            return f

        return decorate(fun) if fun is not None else decorate

    def _group_for(self, agent: Any) -> str:
        """The consumer group of an agent: the app id (as Faust), or
        ``<app id>-<agent>`` when several agents of the app read the same topic
        (each then sees every record, as in Faust)."""
        mine = set(getattr(agent.channel, "topics", ()))
        for other in self.agents.values():
            if other is not agent and mine & set(getattr(other.channel, "topics", ())):
                return f"{self.conf.id}-{agent.short_name}"
        return self.conf.id

    def _replies(self, reply_to: Any = None) -> Any:
        from sabot.faust.agents import ReplyService

        if self._reply_service is None:
            self._reply_service = ReplyService(self, f"{self.conf.id}-reply")
        return self._reply_service

    # -- tables, timers, web (other modules; imported lazily) --------------------

    def Table(self, name: str, **kw: Any) -> Any:  # noqa: N802 - Faust name
        from sabot.faust.tables import Table

        t = Table(self, name, **kw)
        self.tables[name] = t
        return t

    def GlobalTable(self, name: str, **kw: Any) -> Any:  # noqa: N802
        from sabot.faust.tables import GlobalTable

        t = GlobalTable(self, name, **kw)
        self.tables[name] = t
        return t

    def SetTable(self, name: str, **kw: Any) -> Any:  # noqa: N802
        from sabot.faust.tables import SetTable

        t = SetTable(self, name, **kw)
        self.tables[name] = t
        return t

    def timer(self, interval: float, on_leader: bool = False, **kw: Any) -> Any:
        from sabot.faust.timers import timer

        return timer(self, interval, on_leader=on_leader, **kw)

    def crontab(self, cron_format: str, *, timezone: Any = None, **kw: Any) -> Any:
        from sabot.faust.timers import crontab

        return crontab(self, cron_format, timezone=timezone, **kw)

    def page(self, path: str, **kw: Any) -> Any:
        from sabot.faust.web import page

        return page(self, path, **kw)

    # -- services --------------------------------------------------------------------

    def add_service(self, obj: Any, priority: int = 50) -> Any:
        """Registers ``obj`` (with ``async start()`` / ``async stop()``): started
        in ascending ``priority`` by :meth:`start`, stopped in reverse. Tables use
        10, agents 20, timers 30, the web server 40."""
        self._services.append((priority, len(self._services), obj))
        if self.started:
            raise RuntimeError("add_service after the app started")
        return obj

    async def start(self) -> None:
        """Declares topics and starts every service (tables, agents, timers, web)
        and the ``app.task`` functions."""
        if self.started:
            return
        from sabot.faust.agents import AgentManager

        self.started = True
        if self._agents_service is None:
            self._agents_service = AgentManager(self)
            self._services.append((20, -1, self._agents_service))
        for _, _, svc in sorted(self._services, key=lambda s: (s[0], s[1])):
            await svc.start()
            self._started.append(svc)
        loop = asyncio.get_running_loop()
        for f in self._tasks:
            import inspect

            params = inspect.signature(f).parameters
            coro = f(self) if params else f()
            self._running_tasks.append(loop.create_task(coro, name=f"task:{f.__name__}"))

    async def stop(self) -> None:
        """Stops tasks, then the services in reverse order (agents finish the
        records they hold and commit their offsets)."""
        for t in self._running_tasks:
            t.cancel()
        for t in self._running_tasks:
            try:
                await t
            except (asyncio.CancelledError, Exception):
                pass
        self._running_tasks.clear()
        while self._started:
            svc = self._started.pop()
            try:
                await svc.stop()
            except Exception:
                log.exception("stopping %r failed", svc)
        if self._reply_service is not None:
            await self._reply_service.stop()
            self._reply_service = None
        if self._transport is not None:
            await self._transport.flush()
        self.started = False

    async def __aenter__(self) -> App:
        await self.start()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.stop()

    async def close(self) -> None:
        await self.stop()
        if self._transport is not None:
            await self._transport.close()
            self._transport = None

    def main(self, argv: list[str] | None = None) -> Any:
        """Runs the worker CLI for this app (``python app.py worker -l info``)."""
        from sabot.faust.worker import main_for_app

        return main_for_app(self, sys.argv[1:] if argv is None else argv)

    def __repr__(self) -> str:
        return f"<App {self.conf.id} broker={self.conf.broker}>"
