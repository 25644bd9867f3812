"""Codec and model access for the core (sabot.faust.codecs / models)."""

from __future__ import annotations

from typing import Any

from sabot.faust.codecs import dumps, loads

try:
    from sabot.faust.models import maybe_model  # type: ignore[attr-defined]
except ImportError:

    def maybe_model(value_type: Any, data: Any) -> Any:
        """``dict`` -> Record when ``value_type`` is a Record (else ``data``)."""
        if value_type is None or data is None:
            return data
        from_data = getattr(value_type, "from_data", None)
        if from_data is not None and isinstance(data, dict):
            return from_data(data)
        if value_type is str and isinstance(data, bytes):
            return data.decode()
        if value_type in (int, float) and isinstance(data, (bytes, str)):
            return value_type(data)
        return data


__all__ = ["dumps", "loads", "maybe_model"]
