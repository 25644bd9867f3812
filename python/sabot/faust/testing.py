"""``agent.test_context()``: unit-test an agent without a broker.

.. code-block:: python

    async with add.test_context() as agent:
        event = await agent.put({"a": 4, "b": 5})
        assert agent.results[event.message.offset] == 9
"""

from __future__ import annotations

import asyncio
from typing import Any

from sabot.faust.events import Event


class AgentTestContext:
    """Runs a copy of an agent on a fresh in-process channel."""

    def __init__(self, agent: Any, *, timeout: float = 10.0, **kw: Any) -> None:
        from sabot.faust.agents import Agent

        self.original = agent
        app = agent.app
        self.channel = app.channel(
            key_type=getattr(agent.channel, "key_type", None),
            value_type=getattr(agent.channel, "value_type", None),
        )
        self.agent = Agent(
            agent.fun,
            app=app,
            channel=self.channel,
            name=f"{agent.name}-test",
            concurrency=1,
            sink=[
                s for s in agent.sinks if not hasattr(s, "topics") or getattr(s, "objects", False)
            ],
            supervisor_strategy=agent.strategy,
            restart_backoff=(0.0, 0.0),
        )
        self.agent.results = {}
        self.timeout = timeout
        self.results = self.agent.results
        self.sent_offset = -1
        self.processed_offset = -1

    async def __aenter__(self) -> AgentTestContext:
        await self.agent.start(group=f"test-{self.channel.name}")
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.agent.stop()

    async def put(
        self,
        value: Any = None,
        key: Any = None,
        *,
        partition: int | None = None,
        timestamp: float | None = None,
        headers: Any = None,
        wait: bool = True,
    ) -> Event:
        """Sends ``value`` to the agent and (``wait``) returns its Event once the
        agent processed it; an exception the agent raised on it is re-raised here."""
        md = await (
            await self.channel.send(key=key, value=value, timestamp=timestamp, headers=headers)
        )
        self.sent_offset = md.offset
        from sabot.faust.events import Message

        msg = Message(
            md.topic,
            md.partition,
            md.offset,
            md.timestamp_ms / 1000.0,
            key,
            value,
            dict(headers or {}),
        )
        if wait:
            await self._wait_processed(md.offset)
        return Event(self.agent.app, key, value, msg)

    async def _wait_processed(self, offset: int) -> None:
        src = self.agent.source
        tp = (self.channel.name, 0)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        while src.committable.get(tp, 0) <= offset:
            err = self.agent._test_error
            if err is not None:
                self.agent._test_error = None
                raise err
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(
                    f"agent {self.agent.name} did not process offset {offset} "
                    f"within {self.timeout}s"
                )
            src._progress.clear()
            try:
                await asyncio.wait_for(src._progress.wait(), min(remaining, 0.05))
            except TimeoutError:
                pass
        err = self.agent._test_error
        if err is not None:
            self.agent._test_error = None
            raise err
        self.processed_offset = offset

    async def send(self, **kw: Any) -> Any:
        return await self.put(kw.get("value"), kw.get("key"))
