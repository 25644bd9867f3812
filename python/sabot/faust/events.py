"""Event, Message and ``current_event()``: what an agent is processing.

An agent's stream hands out values; the record they came from is reachable as
``current_event()`` (a contextvar set per agent actor task, so concurrent actors
each see their own). Events are built lazily from the batch the value came from,
so the per-record path creates no Event unless the agent asks for one.
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class Message:
    """The broker record behind an event (Faust's ``faust.types.Message``).

    ``key`` / ``value`` are the raw bytes as stored in the broker (for channels,
    the objects sent); ``timestamp`` is in seconds since the epoch (float)."""

    topic: str
    partition: int
    offset: int
    timestamp: float
    key: Any
    value: Any
    headers: dict[str, bytes] = field(default_factory=dict)

    @property
    def timestamp_ms(self) -> int:
        return int(round(self.timestamp * 1000))

    @property
    def tp(self) -> tuple[str, int]:
        return (self.topic, self.partition)


class Event:
    """One record as an agent sees it: decoded ``key`` and ``value`` plus the
    broker ``message``. ``ack()`` acknowledges it (only needed in streams opened
    with ``noack()``); ``send``/``forward`` re-publish the value or the original
    message to another topic or channel."""

    __slots__ = ("app", "key", "value", "message", "headers", "_acker")

    def __init__(
        self,
        app: Any,
        key: Any,
        value: Any,
        message: Message,
        acker: Any = None,
    ) -> None:
        self.app = app
        self.key = key
        self.value = value
        self.message = message
        self.headers = message.headers
        self._acker = acker

    def ack(self) -> bool:
        """Marks the event processed; its offset may be committed once every
        earlier event of its partition is processed too. Idempotent."""
        acker, self._acker = self._acker, None
        if acker is None:
            return False
        acker()
        return True

    @property
    def acked(self) -> bool:
        return self._acker is None

    async def send(self, channel: Any, key: Any = None, value: Any = None, **kw: Any) -> Any:
        """Sends ``value`` (default: this event's value) with ``key`` (default:
        this event's key) to ``channel`` (a topic, channel, agent or name)."""
        app = self.app
        target = app._resolve_channel(channel)
        return await target.send(
            key=self.key if key is None else key,
            value=self.value if value is None else value,
            **kw,
        )

    async def forward(self, channel: Any, **kw: Any) -> Any:
        """Sends the original (undecoded) key and value bytes to ``channel``."""
        target = self.app._resolve_channel(channel)
        return await target.send_raw(self.message.key, self.message.value, **kw)

    def __repr__(self) -> str:
        m = self.message
        return f"<Event {m.topic}[{m.partition}]@{m.offset} key={self.key!r} value={self.value!r}>"


_current: contextvars.ContextVar[Any] = contextvars.ContextVar("sabot_faust_current", default=None)


def current_event() -> Event | None:
    """The Event the running agent (actor task) is processing, or None outside
    an agent."""
    src = _current.get()
    if src is None:
        return None
    return src.current_event()


def _set_current_source(src: Any) -> contextvars.Token:
    return _current.set(src)


__all__ = ["Event", "Message", "current_event"]
