"""Serialization codecs, as in Faust: ``json``, ``raw`` and ``binary``.

A codec turns a Python object into bytes (``dumps``) and back (``loads``)::

    from sabot.faust import codecs

    codecs.dumps("json", {"a": 1})          # b'{"a": 1}'
    codecs.loads("json", b'{"a": 1}')       # {'a': 1}

Codecs chain with ``|`` (``"json|binary"`` is JSON, then base64), as Faust's
do, and new ones are added with :func:`register`::

    class Upper(codecs.Codec):
        def _dumps(self, obj):
            return codecs.want_bytes(obj).upper()

        def _loads(self, s):
            return s.lower()

    codecs.register("upper", Upper())

``pickle`` runs code while it decodes, so it is not registered by default; an
app that trusts every producer of its topics can opt in with
``codecs.register("pickle", codecs.PickleCodec())``.

Every failure is a :class:`CodecError` that names the codec and says what
failed (encode or decode, the Python type or the first bytes of the payload).
"""

from __future__ import annotations

import base64
import binascii
import datetime as _dt
import decimal
import enum
import json as _json
import uuid
from collections.abc import Callable, Mapping
from typing import Any

__all__ = [
    "BinaryCodec",
    "Codec",
    "CodecError",
    "JSONCodec",
    "PickleCodec",
    "RawCodec",
    "UnknownCodecError",
    "codecs",
    "dumps",
    "get_codec",
    "loads",
    "register",
    "want_bytes",
    "want_str",
]


class CodecError(ValueError):
    """A value could not be encoded or decoded; the message names the codec."""

    def __init__(self, codec: str, what: str, cause: BaseException | None = None) -> None:
        self.codec = codec
        self.what = what
        detail = f": {type(cause).__name__}: {cause}" if cause is not None else ""
        super().__init__(f"codec {codec!r}: {what}{detail}")


class UnknownCodecError(CodecError, LookupError):
    """No codec is registered under the requested name."""


def want_bytes(s: Any) -> bytes:
    """``s`` as bytes: str is UTF-8 encoded, bytes-likes are copied as is."""
    if isinstance(s, bytes):
        return s
    if isinstance(s, str):
        return s.encode("utf-8")
    if isinstance(s, (bytearray, memoryview)):
        return bytes(s)
    raise TypeError(f"expected str or bytes, got {type(s).__name__}")


def want_str(s: Any) -> str:
    """``s`` as str: bytes are UTF-8 decoded."""
    if isinstance(s, str):
        return s
    if isinstance(s, (bytes, bytearray, memoryview)):
        return bytes(s).decode("utf-8")
    raise TypeError(f"expected str or bytes, got {type(s).__name__}")


def _preview(data: Any, limit: int = 40) -> str:
    if isinstance(data, (bytes, bytearray, memoryview)):
        raw = bytes(data)
        more = "..." if len(raw) > limit else ""
        return f"{len(raw)} bytes starting {raw[:limit]!r}{more}"
    return f"a {type(data).__name__}"


class Codec:
    """Base class of codecs: subclasses implement ``_dumps`` and ``_loads``.

    ``a | b`` is a codec that applies ``a`` then ``b`` when encoding and
    ``b`` then ``a`` when decoding (Faust's codec chaining).
    """

    #: the name the codec is registered under (used in error messages)
    name: str = "codec"

    def __init__(self, children: tuple[Codec, ...] | None = None, **kwargs: Any) -> None:
        self.nodes: tuple[Codec, ...] = (self,) + tuple(children or ())
        self.kwargs = kwargs

    def _dumps(self, obj: Any) -> bytes:
        raise NotImplementedError(f"{type(self).__name__} does not implement _dumps")

    def _loads(self, s: bytes) -> Any:
        raise NotImplementedError(f"{type(self).__name__} does not implement _loads")

    def dumps(self, obj: Any) -> bytes:
        """Encodes ``obj`` through every codec of the chain, in order."""
        if len(self.nodes) == 1:
            try:
                return self._dumps(obj)
            except CodecError:
                raise
            except Exception as exc:
                raise CodecError(self.name, f"cannot encode {_preview(obj)}", exc) from exc
        for node in self.nodes:
            try:
                obj = node._dumps(obj)
            except CodecError:
                raise
            except Exception as exc:
                raise CodecError(node.name, f"cannot encode {_preview(obj)}", exc) from exc
        return obj

    def loads(self, s: bytes) -> Any:
        """Decodes ``s`` through every codec of the chain, in reverse order."""
        if len(self.nodes) == 1:
            try:
                return self._loads(s)
            except CodecError:
                raise
            except Exception as exc:
                raise CodecError(self.name, f"cannot decode {_preview(s)}", exc) from exc
        for node in reversed(self.nodes):
            try:
                s = node._loads(s)
            except CodecError:
                raise
            except Exception as exc:
                raise CodecError(node.name, f"cannot decode {_preview(s)}", exc) from exc
        return s

    def clone(self, *children: Codec) -> Codec:
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)
        new.nodes = (new,) + tuple(self.nodes[1:]) + children
        return new

    def __or__(self, other: Any) -> Codec:
        if isinstance(other, Codec):
            return self.clone(*other.nodes)
        return NotImplemented

    def __repr__(self) -> str:
        return " | ".join(type(n).__name__ + "()" for n in self.nodes)


def _json_default(obj: Any) -> Any:
    """What Faust's JSON encoder writes for types json does not know."""
    as_json = getattr(obj, "__json__", None)
    if as_json is not None:
        return as_json()
    if isinstance(obj, (_dt.datetime, _dt.date, _dt.time)):
        return obj.isoformat()
    if isinstance(obj, decimal.Decimal):
        return str(obj)
    if isinstance(obj, uuid.UUID):
        return str(obj)
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, (set, frozenset)):
        return list(obj)
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return bytes(obj).decode("utf-8")
    if isinstance(obj, Mapping):
        return dict(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serializable")


_ENCODER = _json.JSONEncoder(default=_json_default)


class JSONCodec(Codec):
    """JSON (UTF-8). Records, datetimes (ISO 8601), Decimals and UUIDs (as
    strings), enums (their value) and sets (as lists) are written as Faust
    writes them."""

    name = "json"

    def _dumps(self, obj: Any) -> bytes:
        return _ENCODER.encode(obj).encode("utf-8")

    def _loads(self, s: bytes) -> Any:
        return _json.loads(s if isinstance(s, (bytes, bytearray, str)) else want_str(s))


class RawCodec(Codec):
    """Bytes as they are (str is UTF-8 encoded)."""

    name = "raw"

    def _dumps(self, obj: Any) -> bytes:
        return want_bytes(obj)

    def _loads(self, s: bytes) -> Any:
        return want_bytes(s)


class BinaryCodec(Codec):
    """Base64 of the bytes (str is UTF-8 encoded first)."""

    name = "binary"

    def _dumps(self, obj: Any) -> bytes:
        return base64.b64encode(want_bytes(obj))

    def _loads(self, s: bytes) -> Any:
        try:
            return base64.b64decode(want_bytes(s), validate=True)
        except binascii.Error as exc:
            raise CodecError(self.name, f"cannot decode {_preview(s)}: not base64", exc) from exc


class PickleCodec(Codec):
    """Python pickle. NOT registered by default: decoding a pickle runs code
    chosen by whoever wrote the message. Register it only when every producer
    is trusted: ``codecs.register("pickle", codecs.PickleCodec())``."""

    name = "pickle"

    def _dumps(self, obj: Any) -> bytes:
        import pickle

        return pickle.dumps(obj)

    def _loads(self, s: bytes) -> Any:
        import pickle

        return pickle.loads(want_bytes(s))  # noqa: S301 - opt-in codec, see docstring


#: name -> codec instance (Faust's ``faust.serializers.codecs.codecs``)
codecs: dict[str, Codec] = {
    "json": JSONCodec(),
    "raw": RawCodec(),
    "binary": BinaryCodec(),
}

_NOT_BY_DEFAULT = {
    "pickle": "pickle runs code while decoding, so it is not registered by default; "
    "opt in with codecs.register('pickle', codecs.PickleCodec()) if every producer is trusted",
    "yaml": "no yaml codec is registered; register one with codecs.register('yaml', codec)",
}


def register(name: str, codec: Codec | type[Codec] | Callable[[], Codec]) -> None:
    """Registers ``codec`` (an instance, or a class to instantiate) under ``name``."""
    if not isinstance(codec, Codec):
        codec = codec()
        if not isinstance(codec, Codec):
            raise TypeError(
                f"codecs.register({name!r}, ...): expected a Codec, got {type(codec).__name__}"
            )
    if "|" in name:
        raise ValueError(f"codecs.register({name!r}, ...): a codec name cannot contain '|'")
    if codec.name == Codec.name:
        codec.name = name  # error messages name the codec as registered
    codecs[name] = codec


def _lookup(name: str) -> Codec:
    name = name.strip()
    try:
        return codecs[name]
    except KeyError:
        hint = _NOT_BY_DEFAULT.get(name)
        known = ", ".join(sorted(codecs))
        what = hint or f"no such codec (registered: {known})"
        raise UnknownCodecError(name, what) from None


def get_codec(name_or_code: str | Codec) -> Codec:
    """The codec for a name (``"json"``, ``"json|binary"``) or a Codec."""
    if isinstance(name_or_code, Codec):
        return name_or_code
    if not isinstance(name_or_code, str):
        raise TypeError(f"a codec is a name or a Codec, got {type(name_or_code).__name__}")
    if "|" in name_or_code:
        parts = [_lookup(p) for p in name_or_code.split("|")]
        chained = parts[0]
        for part in parts[1:]:
            chained = chained | part
        return chained
    return _lookup(name_or_code)


def dumps(codec: str | Codec | None, obj: Any) -> Any:
    """Encodes ``obj`` with ``codec``; with no codec, ``obj`` is returned as is
    (as in Faust)."""
    return get_codec(codec).dumps(obj) if codec else obj


def loads(codec: str | Codec | None, s: bytes) -> Any:
    """Decodes ``s`` with ``codec``; with no codec, ``s`` is returned as is."""
    return get_codec(codec).loads(s) if codec else s
