"""Faust-compatible API on Sabot: ``import sabot as faust``.

Apps written for Faust (faust-streaming) run by changing the import: App,
topics and channels, agents with streams, tables and windows, Records, timers,
web pages and the worker CLI. Under the hood the native engine consumes and
decodes Kafka batches; Python runs the agent bodies. See docs/faust.md.
"""

from __future__ import annotations

import uuid as _uuid_mod
from typing import Any

from sabot.faust.app import App, Monitor, Settings
from sabot.faust.events import Event, Message, current_event
from sabot.faust.topics import Channel, Topic


def uuid() -> str:
    """A random UUID4 string (Faust's ``faust.uuid``)."""
    return str(_uuid_mod.uuid4())


_LAZY = {
    "Agent": ("sabot.faust.agents", "Agent"),
    "Stream": ("sabot.faust.streams", "Stream"),
    "Worker": ("sabot.faust.worker", "Worker"),
    "StreamT": ("sabot.faust.streams", "Stream"),
    "Record": ("sabot.faust.models", "Record"),
    "Table": ("sabot.faust.tables", "Table"),
    "GlobalTable": ("sabot.faust.tables", "GlobalTable"),
    "SetTable": ("sabot.faust.tables", "SetTable"),
    "TumblingWindow": ("sabot.faust.windows", "TumblingWindow"),
    "HoppingWindow": ("sabot.faust.windows", "HoppingWindow"),
    "Window": ("sabot.faust.windows", "Window"),
    "codecs": ("sabot.faust.codecs", None),
    "models": ("sabot.faust.models", None),
}


def __getattr__(name: str) -> Any:
    spec = _LAZY.get(name)
    if spec is None:
        raise AttributeError(f"module 'sabot.faust' has no attribute {name!r}")
    import importlib

    mod = importlib.import_module(spec[0])
    return mod if spec[1] is None else getattr(mod, spec[1])


FAUST_NAMES = (
    "App",
    "Channel",
    "Event",
    "Message",
    "Topic",
    "current_event",
    "uuid",
    *_LAZY,
)

__all__ = [
    "App",
    "Channel",
    "Event",
    "Message",
    "Monitor",
    "Settings",
    "Topic",
    "current_event",
    "uuid",
]
