"""Codec and model access for the core: uses sabot.faust.codecs / models (the
tables helper's modules) when present, else the private shim."""

from __future__ import annotations

try:  # pragma: no cover - depends on the merged branches
    from sabot.faust.codecs import dumps, loads  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover
    from sabot.faust._codecs_shim import dumps, loads

try:  # pragma: no cover
    from sabot.faust.models import maybe_model  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover
    from sabot.faust._codecs_shim import maybe_model

__all__ = ["dumps", "loads", "maybe_model"]
