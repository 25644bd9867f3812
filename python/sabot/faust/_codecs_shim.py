"""Private stand-in for sabot.faust.codecs / models until the tables branch is
merged (deleted then). json, raw and binary only."""

from __future__ import annotations

import base64
import json
from typing import Any


def _json_default(o: Any) -> Any:
    if hasattr(o, "asdict"):
        return o.asdict()
    if isinstance(o, (bytes, bytearray)):
        return o.decode()
    raise TypeError(f"{type(o).__name__} is not JSON serializable")


def dumps(codec: Any, obj: Any) -> bytes:
    if obj is None:
        return None  # type: ignore[return-value]
    if codec is None or codec == "raw":
        if isinstance(obj, bytes):
            return obj
        if isinstance(obj, str):
            return obj.encode()
        if codec == "raw":
            return str(obj).encode()
        codec = "json"
    if codec == "json":
        return json.dumps(obj, default=_json_default, separators=(",", ":")).encode()
    if codec == "binary":
        return base64.b64encode(obj if isinstance(obj, bytes) else str(obj).encode())
    if hasattr(codec, "dumps"):
        return codec.dumps(obj)
    raise ValueError(f"unknown codec {codec!r}")


def loads(codec: Any, data: Any) -> Any:
    if data is None:
        return None
    if codec is None or codec == "raw":
        return data
    if codec == "json":
        return json.loads(data)
    if codec == "binary":
        return base64.b64decode(data)
    if hasattr(codec, "loads"):
        return codec.loads(data)
    raise ValueError(f"unknown codec {codec!r}")


def maybe_model(value_type: Any, data: Any) -> Any:
    if value_type is None or data is None:
        return data
    from_data = getattr(value_type, "from_data", None)
    if from_data is not None and isinstance(data, dict):
        return from_data(data)
    if value_type in (str,) and isinstance(data, bytes):
        return data.decode()
    if value_type in (int, float) and isinstance(data, (bytes, str)):
        return value_type(data)
    return data
