"""Transports of the Faust layer: ``memory://`` and ``kafka://``."""

from __future__ import annotations

from sabot.faust.transport.base import Batch, Consumer, RecordMetadata, Transport


def make_transport(url: str, *, default_partitions: int = 8) -> Transport:
    """The transport for a broker URL (``memory://[name]`` or ``kafka://host:port``)."""
    if isinstance(url, (list, tuple)):
        url = url[0]
    url = str(url)
    if url.startswith("memory:"):
        from sabot.faust.transport.memory import MemoryTransport

        return MemoryTransport(url, default_partitions)
    if url.startswith("kafka://") or "://" not in url:
        from sabot.faust.transport.kafka import KafkaTransport

        return KafkaTransport(url, default_partitions)
    raise ValueError(f"unsupported broker URL {url!r}; expected memory:// or kafka://host:port")


__all__ = ["Batch", "Consumer", "RecordMetadata", "Transport", "make_transport"]
