"""Faust models: ``faust.Record`` classes described by type annotations.

::

    class Point(faust.Record, serializer="json"):
        x: int
        y: float = 0.0
        label: Optional[str] = None

    p = Point(1, 2.5)                     # or Point(x=1, y=2.5)
    p.dumps()                             # b'{"x": 1, "y": 2.5, "label": null, "__faust": {...}}'
    Point.loads(p.dumps()) == p           # True
    Point.arrow_schema()                  # x: int64 not null, y: double not null, label: string
    Point.from_arrow(batch)               # [Point(...), ...]

As in Faust: fields come in annotation order (base classes first); a field
with a class attribute value has that default; ``Optional[X]`` fields default
to None; nested Records, ``List``/``Set``/``Tuple``/``Dict`` of them,
``datetime``/``date``/``time`` (from ISO 8601 strings), ``Decimal`` (from
strings or numbers), ``UUID`` and enums are converted when a Record is built
from data; the payload carries Faust's ``"__faust": {"ns": "<module>.<Class>"}``
metadata (``include_metadata=False`` turns it off) and ``loads`` reads it to
pick the model, so messages written by Faust apps and by Sabot apps are read by
either. Class options: ``serializer``, ``namespace``, ``include_metadata``,
``isodates``, ``coerce``, ``validation``, ``decimals``, ``abstract``,
``allow_blessed_key``, ``polymorphic_fields``, ``date_parser``.

A missing required field, an unknown keyword, and a value that cannot be
converted to its field's type raise :class:`ValidationError` naming the model
and the field. With ``validation=True`` every field's type is also checked on
construction; ``rec.validate()`` / ``rec.is_valid()`` check on demand.

``Record.arrow_schema()`` maps the annotations to Arrow types (int -> int64,
float -> float64, str -> string, bytes -> binary, bool -> bool, datetime ->
timestamp[us] (aware values stored as UTC), date -> date32, time -> time64[us],
Decimal -> decimal128 (``DecimalField(max_digits=, max_decimal_places=)``,
default 38, 18), UUID -> string, enum -> its values' type, nested Record ->
struct, List/Set/Tuple[X, ...] -> list, Dict[K, V] -> map); ``to_arrow`` and
``from_arrow`` convert between lists of Records and RecordBatches.
"""

from __future__ import annotations

import copy
import datetime as _dt
import decimal
import enum
import sys
import types
import typing
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, ClassVar

from sabot.faust import codecs

if typing.TYPE_CHECKING:
    import pyarrow as pa

# pyarrow is imported by the functions that need it (arrow_schema, to_arrow,
# from_arrow), not here: a per-record worker never loads it (faust_memory.md).

__all__ = [
    "BooleanField",
    "BytesField",
    "DatetimeField",
    "DecimalField",
    "FieldDescriptor",
    "FloatField",
    "IntegerField",
    "Model",
    "Record",
    "StringField",
    "ValidationError",
    "maybe_model",
    "registry",
]

BLESSED_KEY = "__faust"

#: namespace -> Record class (Faust's model registry, used by the ``__faust`` key)
registry: dict[str, type[Record]] = {}


class ValidationError(ValueError):
    """A field's value is missing, unknown or of the wrong type.

    ``model`` and ``field`` name where; the message says what was wrong."""

    def __init__(self, reason: str, *, model: str | None = None, field: str | None = None) -> None:
        self.reason = reason
        self.model = model
        self.field = field
        where = ".".join(p for p in (model, field) if p)
        super().__init__(f"{where}: {reason}" if where else reason)


class MissingFieldError(ValidationError, TypeError):
    """A required field was not given (also a TypeError, as a missing argument is)."""


class UnknownFieldError(ValidationError, TypeError):
    """A keyword that names no field of the model (also a TypeError)."""


class _NotSet:
    def __repr__(self) -> str:
        return "<NOT SET>"

    def __bool__(self) -> bool:
        return False


NOT_SET: Any = _NotSet()


# --------------------------------------------------------------------------
# Type plans: what an annotation means for conversion, checks and Arrow.


class _Type:
    """A resolved annotation. ``kind`` is one of: any, scalar, datetime, date,
    time, decimal, uuid, enum, record, list, set, tuple, dict."""

    __slots__ = ("args", "kind", "optional", "py")

    def __init__(
        self, kind: str, py: Any = None, args: tuple[_Type, ...] = (), optional: bool = False
    ) -> None:
        self.kind = kind
        self.py = py
        self.args = args
        self.optional = optional

    def describe(self) -> str:
        if self.kind in ("list", "set", "tuple", "dict"):
            inner = ", ".join(a.describe() for a in self.args)
            name = f"{self.kind}[{inner}]"
        elif self.kind == "any":
            name = "Any"
        else:
            name = getattr(self.py, "__name__", str(self.py))
        return f"Optional[{name}]" if self.optional else name


_SCALARS = (int, float, str, bytes, bool)


def _plan(annotation: Any) -> _Type:
    if annotation is Any or annotation is object or annotation is None:
        return _Type("any", optional=annotation is None)
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Union or (sys.version_info >= (3, 10) and origin is types.UnionType):
        rest = [a for a in args if a is not type(None)]
        optional = len(rest) < len(args)
        if len(rest) == 1:
            inner = _plan(rest[0])
            inner.optional = inner.optional or optional
            return inner
        return _Type("any", py=annotation, optional=optional)
    if origin is ClassVar:
        return _Type("classvar")
    if origin is typing.Literal:
        return _plan(type(args[0])) if args else _Type("any")
    if origin in (list, Sequence, Iterable) or origin is typing.MutableSequence:
        return _Type("list", list, (_plan(args[0]) if args else _Type("any"),))
    if origin in (set, frozenset, typing.AbstractSet) or origin is typing.MutableSet:
        return _Type(
            "set",
            origin if origin in (set, frozenset) else set,
            (_plan(args[0]) if args else _Type("any"),),
        )
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return _Type("tuple", tuple, (_plan(args[0]),))
        if not args:
            return _Type("tuple", tuple, (_Type("any"),))
        # a fixed-shape tuple: elements of one Arrow type only when they agree
        plans = tuple(_plan(a) for a in args)
        return _Type("tuple", tuple, plans)
    if origin in (dict, Mapping, typing.MutableMapping):
        k = _plan(args[0]) if args else _Type("any")
        v = _plan(args[1]) if len(args) > 1 else _Type("any")
        return _Type("dict", dict, (k, v))
    if annotation is list:
        return _Type("list", list, (_Type("any"),))
    if annotation in (set, frozenset):
        return _Type("set", annotation, (_Type("any"),))
    if annotation is tuple:
        return _Type("tuple", tuple, (_Type("any"),))
    if annotation is dict:
        return _Type("dict", dict, (_Type("any"), _Type("any")))
    if isinstance(annotation, type):
        if issubclass(annotation, Record):
            return _Type("record", annotation)
        if issubclass(annotation, enum.Enum):
            return _Type("enum", annotation)
        if issubclass(annotation, _dt.datetime):
            return _Type("datetime", annotation)
        if issubclass(annotation, _dt.date):
            return _Type("date", annotation)
        if issubclass(annotation, _dt.time):
            return _Type("time", annotation)
        if issubclass(annotation, decimal.Decimal):
            return _Type("decimal", annotation)
        if issubclass(annotation, uuid.UUID):
            return _Type("uuid", annotation)
        if annotation in _SCALARS:
            return _Type("scalar", annotation)
        return _Type("any", py=annotation)
    return _Type("any", py=annotation)


def _parse_datetime(value: str) -> _dt.datetime:
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    return _dt.datetime.fromisoformat(text)


class _Convert:
    """Converts an incoming value to a field's type; raises ValidationError."""

    def __init__(self, model: str, field: str, coerce: bool, date_parser: Callable | None) -> None:
        self.model = model
        self.field = field
        self.coerce = coerce
        self.date_parser = date_parser or _parse_datetime

    def fail(self, t: _Type, value: Any, why: str = "") -> ValidationError:
        shown = repr(value)
        if len(shown) > 60:
            shown = shown[:57] + "..."
        msg = f"expected {t.describe()}, got {type(value).__name__} {shown}"
        return ValidationError(
            msg + (f" ({why})" if why else ""), model=self.model, field=self.field
        )

    def __call__(self, t: _Type, value: Any) -> Any:
        if value is None:
            return None
        kind = t.kind
        if kind == "any":
            return value
        if kind == "record":
            if isinstance(value, Record):
                return value
            if isinstance(value, Mapping):
                try:
                    return t.py.from_data(value, preferred_type=t.py)
                except ValidationError as exc:
                    raise ValidationError(
                        f"in nested {t.py.__name__}: {exc}", model=self.model, field=self.field
                    ) from exc
            raise self.fail(t, value)
        if kind == "datetime":
            if isinstance(value, _dt.datetime):
                return value
            if isinstance(value, str):
                try:
                    return self.date_parser(value)
                except (ValueError, TypeError) as exc:
                    raise self.fail(t, value, f"not an ISO 8601 datetime: {exc}") from exc
            if isinstance(value, (int, float)) and not isinstance(value, bool) and self.coerce:
                return _dt.datetime.fromtimestamp(value, _dt.UTC)
            raise self.fail(t, value)
        if kind == "date":
            if isinstance(value, _dt.datetime):
                return value.date()
            if isinstance(value, _dt.date):
                return value
            if isinstance(value, str):
                try:
                    return _dt.date.fromisoformat(value.strip()[:10])
                except ValueError as exc:
                    raise self.fail(t, value, "not an ISO 8601 date") from exc
            raise self.fail(t, value)
        if kind == "time":
            if isinstance(value, _dt.time):
                return value
            if isinstance(value, str):
                try:
                    return _dt.time.fromisoformat(value.strip())
                except ValueError as exc:
                    raise self.fail(t, value, "not an ISO 8601 time") from exc
            raise self.fail(t, value)
        if kind == "decimal":
            if isinstance(value, decimal.Decimal):
                return value
            if isinstance(value, (str, int, float)) and not isinstance(value, bool):
                try:
                    return decimal.Decimal(str(value).strip())
                except decimal.InvalidOperation as exc:
                    raise self.fail(t, value, "not a decimal number") from exc
            raise self.fail(t, value)
        if kind == "uuid":
            if isinstance(value, uuid.UUID):
                return value
            if isinstance(value, str):
                try:
                    return uuid.UUID(value)
                except ValueError as exc:
                    raise self.fail(t, value, "not a UUID") from exc
            raise self.fail(t, value)
        if kind == "enum":
            if isinstance(value, t.py):
                return value
            try:
                return t.py(value)
            except ValueError as exc:
                raise self.fail(t, value, f"not a value of {t.py.__name__}") from exc
        if kind in ("list", "set", "tuple"):
            if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Iterable):
                raise self.fail(t, value)
            if len(t.args) == 1:
                inner = t.args[0]
                items = value if inner.kind == "any" else [self(inner, v) for v in value]
            else:
                values = list(value)
                if len(values) != len(t.args):
                    raise self.fail(t, value, f"a tuple of {len(t.args)} values")
                items = [self(a, v) for a, v in zip(t.args, values, strict=True)]
            if isinstance(items, t.py):
                return items
            return t.py(items)
        if kind == "dict":
            if isinstance(value, Mapping):
                pairs = value.items()
            elif isinstance(value, list):  # an Arrow map: [(key, value), ...]
                pairs = value
            else:
                raise self.fail(t, value)
            k_t, v_t = t.args
            if k_t.kind == "any" and v_t.kind == "any":
                return dict(pairs)
            try:
                return {self(k_t, k): self(v_t, v) for k, v in pairs}
            except (TypeError, ValueError) as exc:
                if isinstance(exc, ValidationError):
                    raise
                raise self.fail(t, value) from exc
        if kind == "scalar" and self.coerce and not isinstance(value, t.py):
            try:
                if t.py is bytes:
                    return codecs.want_bytes(value)
                if t.py is bool and isinstance(value, str):
                    return value.strip().lower() in ("1", "true", "yes", "on")
                return t.py(value)
            except (TypeError, ValueError) as exc:
                raise self.fail(t, value) from exc
        return value


def _type_errors(t: _Type, value: Any) -> str | None:
    """Why ``value`` is not of type ``t`` (None when it is)."""
    if value is None:
        return None if t.optional or t.kind == "any" else "is None (the field is not Optional)"
    kind = t.kind
    ok: bool
    if kind == "any":
        ok = True
    elif kind == "scalar":
        if t.py is float:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        elif t.py is int:
            ok = isinstance(value, int) and not isinstance(value, bool)
        else:
            ok = isinstance(value, t.py)
    elif kind == "record":
        if isinstance(value, t.py):
            errors = value.validate()
            return f"nested {t.py.__name__} is invalid: {errors[0]}" if errors else None
        ok = False
    elif kind in ("list", "set", "tuple"):
        if not isinstance(value, (list, set, frozenset, tuple)):
            ok = False
        else:
            elems = list(value)
            plans = t.args if len(t.args) != 1 else (t.args[0],) * len(elems)
            for i, (p, v) in enumerate(zip(plans, elems, strict=False)):
                why = _type_errors(p, v)
                if why:
                    return f"element {i} {why}"
            ok = True
    elif kind == "dict":
        if not isinstance(value, Mapping):
            ok = False
        else:
            for k, v in value.items():
                why = _type_errors(t.args[0], k) or _type_errors(t.args[1], v)
                if why:
                    return f"entry {k!r} {why}"
            ok = True
    else:
        ok = isinstance(value, t.py)
    if ok:
        return None
    shown = repr(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return f"expected {t.describe()}, got {type(value).__name__} {shown}"


# --------------------------------------------------------------------------
# Arrow


def _arrow_type(
    t: _Type, field: FieldDescriptor, where: str, seen: tuple[type, ...]
) -> pa.DataType:
    import pyarrow as pa

    kind = t.kind
    if kind == "scalar":
        return {
            int: pa.int64(),
            float: pa.float64(),
            str: pa.string(),
            bytes: pa.binary(),
            bool: pa.bool_(),
        }[t.py]
    if kind == "datetime":
        return pa.timestamp("us")
    if kind == "date":
        return pa.date32()
    if kind == "time":
        return pa.time64("us")
    if kind == "decimal":
        precision = getattr(field, "max_digits", None) or 38
        scale = getattr(field, "max_decimal_places", None)
        scale = 18 if scale is None else scale
        return pa.decimal128(precision, scale)
    if kind == "uuid":
        return pa.string()
    if kind == "enum":
        values = [m.value for m in t.py]
        if values and all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            return pa.int64()
        if values and all(isinstance(v, str) for v in values):
            return pa.string()
        raise ValidationError(f"enum {t.py.__name__} mixes value types; no Arrow type", field=where)
    if kind == "record":
        if t.py in seen:
            raise ValidationError(
                f"{t.py.__name__} contains itself; a recursive Record has no Arrow schema",
                field=where,
            )
        return pa.struct(t.py._arrow_fields(seen + (t.py,)))
    if kind in ("list", "set", "tuple"):
        inner = t.args
        if len(inner) != 1:
            types_ = {str(_arrow_type(a, field, where, seen)) for a in inner}
            if len(types_) != 1:
                raise ValidationError(
                    f"tuple of mixed types {t.describe()} has no Arrow list type", field=where
                )
        return pa.list_(_arrow_type(inner[0], field, f"{where}[]", seen))
    if kind == "dict":
        return pa.map_(
            _arrow_type(t.args[0], field, f"{where}.key", seen),
            _arrow_type(t.args[1], field, f"{where}.value", seen),
        )
    raise ValidationError(
        f"annotation {t.describe()} has no Arrow type (use int, float, str, bytes, bool, "
        "datetime, date, time, Decimal, UUID, an enum, a Record, or List/Set/Tuple/Dict of them)",
        field=where,
    )


def _to_arrow_value(t: _Type, value: Any) -> Any:
    """A Python value as pyarrow.array accepts it for the field's Arrow type."""
    if value is None:
        return None
    kind = t.kind
    if kind == "record":
        if isinstance(value, Record):
            return value._arrow_row()
        return value
    if kind == "uuid":
        return str(value)
    if kind == "enum":
        return value.value if isinstance(value, enum.Enum) else value
    if kind == "datetime" and isinstance(value, _dt.datetime) and value.tzinfo is not None:
        return value.astimezone(_dt.UTC).replace(tzinfo=None)
    if kind in ("list", "set", "tuple"):
        inner = t.args[0] if len(t.args) == 1 else t.args[0]
        if inner.kind in ("scalar", "any", "date", "time", "decimal"):
            return list(value)
        return [_to_arrow_value(inner, v) for v in value]
    if kind == "dict":
        k_t, v_t = t.args
        return [(_to_arrow_value(k_t, k), _to_arrow_value(v_t, v)) for k, v in value.items()]
    return value


# --------------------------------------------------------------------------
# Fields


class FieldDescriptor:
    """A Record field. ``Model.field`` (on the class) is the descriptor: it
    names the field for ``group_by(Model.field)`` and
    ``table.relative_to_field(Model.field)``; on an instance it is the value.

    It can also be the class attribute that declares the field, with options::

        class Order(faust.Record):
            amount: Decimal = faust.DecimalField(max_digits=12, max_decimal_places=2)
    """

    def __init__(
        self,
        *,
        field: str | None = None,
        type: Any = None,  # noqa: A002 - Faust's keyword
        model: type[Record] | None = None,
        required: bool = True,
        default: Any = NOT_SET,
        coerce: bool | None = None,
        exclude: bool = False,
        **options: Any,
    ) -> None:
        self.field = field or ""
        self.type = type
        self.model = model
        self.default = default
        self.required = required and default is NOT_SET
        self.coerce = coerce
        self.exclude = exclude
        self.options = options
        for name, value in options.items():
            setattr(self, name, value)
        self._plan: _Type | None = None
        self._convert: _Convert | None = None

    def _clone(self, **changes: Any) -> FieldDescriptor:
        new = copy.copy(self)
        new.__dict__.update(changes)
        return new

    def __set_name__(self, owner: type, name: str) -> None:
        if not self.field:
            self.field = name

    def __get__(self, obj: Any, objtype: type | None = None) -> Any:
        if obj is None:
            return self
        try:
            return obj.__dict__[self.field]
        except KeyError:
            raise AttributeError(self.field) from None

    def __set__(self, obj: Any, value: Any) -> None:
        obj.__dict__[self.field] = value

    def getattr(self, obj: Any) -> Any:
        """This field's value in ``obj``."""
        return getattr(obj, self.field)

    @property
    def ident(self) -> str:
        """``Model.field``."""
        model = self.model.__name__ if self.model is not None else "?"
        return f"{model}.{self.field}"

    @property
    def input_name(self) -> str:
        return self.field

    @property
    def output_name(self) -> str:
        return self.field

    def default_value(self) -> Any:
        default = self.default
        if isinstance(default, (list, dict, set)):
            return copy.copy(default)
        return default

    def validate(self, value: Any) -> Iterable[ValidationError]:
        """Extra checks of a field type (min/max, lengths); none by default."""
        return ()

    def __repr__(self) -> str:
        return f"<{type(self).__name__}: {self.ident}: {self.type!r}>"


class StringField(FieldDescriptor):
    """A str field with optional ``min_length``, ``max_length``, ``allow_blank``."""

    def validate(self, value: Any) -> Iterable[ValidationError]:
        if not isinstance(value, str):
            return
        min_length = self.options.get("min_length")
        max_length = self.options.get("max_length")
        if not self.options.get("allow_blank", True) and not value.strip():
            yield ValidationError("cannot be blank", field=self.field)
        if min_length is not None and len(value) < min_length:
            yield ValidationError(f"shorter than min_length {min_length}", field=self.field)
        if max_length is not None and len(value) > max_length:
            yield ValidationError(f"longer than max_length {max_length}", field=self.field)


class _NumberField(FieldDescriptor):
    def validate(self, value: Any) -> Iterable[ValidationError]:
        if value is None or isinstance(value, bool):
            return
        lo = self.options.get("min_value")
        hi = self.options.get("max_value")
        if lo is not None and value < lo:
            yield ValidationError(f"{value!r} is below min_value {lo}", field=self.field)
        if hi is not None and value > hi:
            yield ValidationError(f"{value!r} is above max_value {hi}", field=self.field)


class IntegerField(_NumberField):
    """An int field with optional ``min_value`` / ``max_value``."""


class FloatField(_NumberField):
    """A float field with optional ``min_value`` / ``max_value``."""


class DecimalField(_NumberField):
    """A Decimal field; ``max_digits`` and ``max_decimal_places`` bound it
    (and give its Arrow decimal128 precision and scale)."""

    def validate(self, value: Any) -> Iterable[ValidationError]:
        yield from super().validate(value)
        if not isinstance(value, decimal.Decimal) or not value.is_finite():
            return
        _, digits, exponent = value.as_tuple()
        places = max(0, -int(exponent))
        max_places = self.options.get("max_decimal_places")
        max_digits = self.options.get("max_digits")
        if max_places is not None and places > max_places:
            yield ValidationError(
                f"{value} has {places} decimal places, more than {max_places}", field=self.field
            )
        if max_digits is not None and max(len(digits), places) > max_digits:
            yield ValidationError(f"{value} has more than {max_digits} digits", field=self.field)


class DatetimeField(FieldDescriptor):
    """A datetime field (ISO 8601 strings are parsed)."""


class BooleanField(FieldDescriptor):
    """A bool field."""


class BytesField(FieldDescriptor):
    """A bytes field."""


# --------------------------------------------------------------------------
# Record


class _Options:
    """``Model._options``: the class options and its fields."""

    def __init__(self, **kw: Any) -> None:
        self.namespace: str = kw.pop("namespace")
        self.serializer: str | None = kw.pop("serializer", None)
        self.include_metadata: bool = kw.pop("include_metadata", True)
        self.isodates: bool = kw.pop("isodates", True)
        self.coerce: bool = kw.pop("coerce", False)
        self.validation: bool = kw.pop("validation", False)
        self.decimals: bool = kw.pop("decimals", False)
        self.allow_blessed_key: bool = kw.pop("allow_blessed_key", False)
        self.polymorphic_fields: bool = kw.pop("polymorphic_fields", False)
        self.date_parser: Callable | None = kw.pop("date_parser", None)
        self.abstract: bool = kw.pop("abstract", False)
        self.extra: dict[str, Any] = kw
        self.fields: list[str] = []
        self.descriptors: dict[str, FieldDescriptor] = {}
        self.resolved = False

    @property
    def fieldnames(self) -> list[str]:
        return self.fields

    @property
    def fieldpos(self) -> dict[int, str]:
        return dict(enumerate(self.fields))

    @property
    def defaults(self) -> dict[str, Any]:
        return {n: d.default for n, d in self.descriptors.items() if d.default is not NOT_SET}

    @property
    def optionalset(self) -> frozenset[str]:
        return frozenset(n for n, d in self.descriptors.items() if not d.required)

    @property
    def field_types(self) -> dict[str, Any]:
        return {n: d.type for n, d in self.descriptors.items()}


_OPTION_NAMES = (
    "serializer",
    "namespace",
    "include_metadata",
    "isodates",
    "coerce",
    "validation",
    "decimals",
    "allow_blessed_key",
    "polymorphic_fields",
    "date_parser",
    "abstract",
)


class Record:
    """Base class of models described by type annotations (see the module doc)."""

    _options: ClassVar[_Options]
    __is_model__: ClassVar[bool] = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        options = {k: kwargs.pop(k) for k in list(kwargs) if k in _OPTION_NAMES}
        super().__init_subclass__(**kwargs)
        parent: _Options | None = None
        for base in cls.__mro__[1:]:
            if "_options" in base.__dict__:
                parent = base.__dict__["_options"]
                break
        inherited = {}
        if parent is not None:
            inherited = {
                name: getattr(parent, name)
                for name in _OPTION_NAMES
                if name not in ("namespace", "abstract")
            }
        inherited.update(options)
        inherited.setdefault("namespace", f"{cls.__module__}.{cls.__qualname__}")
        cls._options = _Options(**inherited)
        cls._declare_fields(parent)
        if not cls._options.abstract:
            registry[cls._options.namespace] = cls
        cls._try_resolve()

    @classmethod
    def _declare_fields(cls, parent: _Options | None) -> None:
        opts = cls._options
        descriptors: dict[str, FieldDescriptor] = {}
        if parent is not None:
            for name in parent.fields:
                descriptors[name] = parent.descriptors[name]._clone(
                    model=cls, _plan=None, _convert=None
                )
        own = cls.__dict__.get("__annotations__", {})
        for name, annotation in own.items():
            if _is_classvar(annotation):
                continue
            value = cls.__dict__.get(name, NOT_SET)
            if isinstance(value, FieldDescriptor):
                desc = value._clone(field=name, model=cls, _plan=None)
                if desc.type is None:
                    desc.type = annotation
            else:
                if name in descriptors and value is NOT_SET:
                    desc = descriptors[name]._clone(type=annotation, _plan=None)
                else:
                    desc = FieldDescriptor(field=name, type=annotation, model=cls, default=value)
            descriptors.pop(name, None)
            descriptors[name] = desc
        # an inherited field overridden only by a new default
        for name in list(descriptors):
            if name not in own and name in cls.__dict__:
                value = cls.__dict__[name]
                if not isinstance(value, FieldDescriptor):
                    descriptors[name] = descriptors[name]._clone(default=value, required=False)
        for name, desc in descriptors.items():
            setattr(cls, name, desc)
        opts.descriptors = descriptors
        opts.fields = list(descriptors)

    @classmethod
    def _try_resolve(cls) -> None:
        try:
            cls._resolve()
        except NameError:
            pass  # a forward reference; resolved on first use

    @classmethod
    def _resolve(cls) -> None:
        opts = cls._options
        if opts.resolved:
            return
        module = sys.modules.get(cls.__module__)
        # models defined in functions are found by name, after the module's globals
        globalns = {m.__name__: m for m in registry.values()}
        if module is not None:
            globalns.update(vars(module))
        localns = {cls.__name__: cls}
        for name, desc in opts.descriptors.items():
            annotation = desc.type
            if isinstance(annotation, str):
                annotation = eval(annotation, globalns, localns)  # noqa: S307 - annotation text
            elif isinstance(annotation, typing.ForwardRef):
                annotation = annotation._evaluate(globalns, localns, frozenset())
            desc.type = annotation
            plan = _plan(annotation)
            desc._plan = plan
            if desc.default is NOT_SET and plan.optional:
                desc.default = None
            desc.required = desc.default is NOT_SET
            coerce = opts.coerce if desc.coerce is None else desc.coerce
            needs = plan.kind not in ("any", "scalar") or coerce
            desc._convert = (
                _Convert(cls.__name__, name, coerce, opts.date_parser) if needs else None
            )
        opts.resolved = True

    @classmethod
    def _descriptors(cls) -> dict[str, FieldDescriptor]:
        if not cls._options.resolved:
            try:
                cls._resolve()
            except NameError as exc:
                raise ValidationError(
                    f"cannot resolve a field annotation: {exc}", model=cls.__name__
                ) from exc
        return cls._options.descriptors

    # ------------------------------------------------------------------ init

    def __init__(self, *args: Any, __strict__: bool = True, **kwargs: Any) -> None:
        cls = type(self)
        descs = cls._descriptors()
        kwargs.pop(BLESSED_KEY, None)
        names = cls._options.fields
        if len(args) > len(names):
            raise UnknownFieldError(
                f"takes {len(names)} positional fields, got {len(args)}", model=cls.__name__
            )
        for name, value in zip(names, args, strict=False):
            if name in kwargs:
                raise ValidationError(
                    "given both by position and by keyword", model=cls.__name__, field=name
                )
            kwargs[name] = value
        if __strict__:
            unknown = [k for k in kwargs if k not in descs]
            if unknown:
                raise UnknownFieldError(
                    f"unknown field {unknown[0]!r} (fields: {', '.join(names)})",
                    model=cls.__name__,
                    field=unknown[0],
                )
        self._fill(descs, kwargs)

    def _fill(self, descs: dict[str, FieldDescriptor], data: Mapping[str, Any]) -> None:
        """Sets every field from ``data`` (or its default), converted."""
        values = self.__dict__
        for name, desc in descs.items():
            value = data.get(name, NOT_SET)
            if value is NOT_SET:
                if desc.default is NOT_SET:
                    raise MissingFieldError(
                        "missing required field", model=type(self).__name__, field=name
                    )
                value = desc.default_value()
            elif value is not None and desc._convert is not None:
                value = desc._convert(desc._plan, value)
            values[name] = value
        if self._options.validation:
            errors = self.validate()
            if errors:
                raise errors[0]
        post_init = getattr(self, "__post_init__", None)
        if post_init is not None:
            post_init()

    @classmethod
    def _maybe_namespace(
        cls, data: Any, *, preferred_type: type[Record] | None = None
    ) -> type[Record] | None:
        """The model a payload's ``__faust`` key names, where it may be used
        (Faust's rule: when no type, or an abstract one, is asked for, or when
        the named model allows blessed keys or polymorphic fields; here the
        named model must also be a subclass of the one asked for)."""
        if not isinstance(data, Mapping):
            return None
        meta = data.get(BLESSED_KEY)
        if not isinstance(meta, Mapping) or "ns" not in meta:
            return None
        abstract = preferred_type is None or preferred_type in (Record, Model)
        model = registry.get(meta["ns"])
        if model is None:
            if abstract:
                raise ValidationError(
                    f"payload names model {meta['ns']!r} in {BLESSED_KEY!r}, which is not "
                    "defined in this process (import the module that defines it)"
                )
            return None
        if abstract:
            return model
        # unlike Faust, a payload never swaps in a model unrelated to the one asked for
        related = isinstance(preferred_type, type) and issubclass(model, preferred_type)
        if related and (model._options.allow_blessed_key or model._options.polymorphic_fields):
            return model
        return None

    @classmethod
    def from_data(cls, data: Mapping[str, Any] | Record, *, preferred_type: Any = None) -> Record:
        """A Record from a dict of field values (unknown keys are ignored, the
        ``__faust`` metadata picks a subclass where Faust would)."""
        if isinstance(data, Record):
            return data
        if not isinstance(data, Mapping):
            raise ValidationError(
                f"from_data expects a mapping of field values, got {type(data).__name__}",
                model=cls.__name__,
            )
        model = cls
        if BLESSED_KEY in data:
            model = cls._maybe_namespace(data, preferred_type=preferred_type or cls) or cls
        record = model.__new__(model)
        record._fill(model._descriptors(), data)
        return record

    # --------------------------------------------------------------- output

    def asdict(self) -> dict[str, Any]:
        """The fields and their values (nested Records stay Records)."""
        descs = type(self)._descriptors()
        return {n: self.__dict__[n] for n, d in descs.items() if not d.exclude}

    _asdict = asdict

    def to_representation(self) -> dict[str, Any]:
        """The payload written by ``dumps``: the fields plus, unless
        ``include_metadata=False``, Faust's ``__faust`` namespace key."""
        payload = self.asdict()
        if self._options.include_metadata:
            payload[BLESSED_KEY] = {"ns": self._options.namespace}
        return payload

    def __json__(self) -> dict[str, Any]:
        return self.to_representation()

    def dumps(self, *, serializer: Any = None) -> bytes:
        """Bytes of the record with ``serializer`` (default: the class's, else json)."""
        codec = serializer or self._options.serializer or "json"
        return codecs.dumps(codec, self.to_representation())

    @classmethod
    def loads(cls, s: bytes, *, default_serializer: Any = None, serializer: Any = None) -> Record:
        """The record in ``s`` (decoded with ``serializer``, else the class's, else json)."""
        codec = serializer or cls._options.serializer or default_serializer or "json"
        data = codecs.loads(codec, s)
        return cls.from_data(data, preferred_type=cls)

    def derive(self, *objects: Record, **fields: Any) -> Record:
        """A copy with the fields of ``objects`` and then ``fields`` applied."""
        data = self.asdict()
        for obj in objects:
            data.update(obj.asdict())
        data.update(fields)
        return type(self)(**data)

    # ------------------------------------------------------------ validation

    def validate(self) -> list[ValidationError]:
        """Every type and field-option error of this record (empty: valid)."""
        errors: list[ValidationError] = []
        name = type(self).__name__
        for field, desc in type(self)._descriptors().items():
            value = self.__dict__.get(field)
            why = _type_errors(desc._plan, value)
            if why:
                errors.append(ValidationError(why, model=name, field=field))
                continue
            for err in desc.validate(value):
                errors.append(ValidationError(err.reason, model=name, field=field))
        return errors

    def is_valid(self) -> bool:
        return not self.validate()

    @property
    def validation_errors(self) -> list[ValidationError]:
        return self.validate()

    def validate_or_raise(self) -> None:
        errors = self.validate()
        if errors:
            raise errors[0]

    # ----------------------------------------------------------- comparison

    def _values(self) -> tuple[Any, ...]:
        return tuple(self.__dict__.get(n) for n in self._options.fields)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self._values() == other._values()

    def __lt__(self, other: Record) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self._values() < other._values()

    def __le__(self, other: Record) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self._values() <= other._values()

    def __gt__(self, other: Record) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self._values() > other._values()

    def __ge__(self, other: Record) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self._values() >= other._values()

    def __hash__(self) -> int:
        return hash((type(self), self._values()))

    def __repr__(self) -> str:
        fields = ", ".join(f"{n}={self.__dict__.get(n)!r}" for n in self._options.fields)
        return f"<{type(self).__name__}: {fields}>"

    # ----------------------------------------------------------------- arrow

    @classmethod
    def _arrow_fields(cls, seen: tuple[type, ...] = ()) -> list[pa.Field]:
        import pyarrow as pa

        out = []
        for name, desc in cls._descriptors().items():
            if desc.exclude:
                continue
            where = f"{cls.__name__}.{name}"
            arrow = _arrow_type(desc._plan, desc, where, seen or (cls,))
            nullable = desc._plan.optional or desc.default is None or desc._plan.kind == "any"
            out.append(pa.field(name, arrow, nullable=nullable))
        return out

    @classmethod
    def arrow_schema(cls) -> pa.Schema:
        """The Arrow schema of this model's fields (see the module doc)."""
        import pyarrow as pa

        return pa.schema(
            cls._arrow_fields(), metadata={b"faust.ns": cls._options.namespace.encode()}
        )

    def _arrow_row(self) -> dict[str, Any]:
        return {
            n: _to_arrow_value(d._plan, self.__dict__.get(n))
            for n, d in type(self)._descriptors().items()
            if not d.exclude
        }

    @classmethod
    def to_arrow(cls, records: Iterable[Record]) -> pa.RecordBatch:
        """A RecordBatch of ``records`` with :meth:`arrow_schema`."""
        import pyarrow as pa

        schema = cls.arrow_schema()
        rows = []
        for i, rec in enumerate(records):
            if not isinstance(rec, cls):
                raise ValidationError(
                    f"to_arrow row {i} is a {type(rec).__name__}, not a {cls.__name__}",
                    model=cls.__name__,
                )
            rows.append(rec._arrow_row())
        columns = []
        for f in schema:
            values = [r[f.name] for r in rows]
            try:
                columns.append(pa.array(values, type=f.type))
            except (pa.ArrowException, TypeError, ValueError, OverflowError) as exc:
                raise ValidationError(
                    f"cannot convert to Arrow {f.type}: {exc}", model=cls.__name__, field=f.name
                ) from exc
        return pa.RecordBatch.from_arrays(columns, schema=schema)

    @classmethod
    def from_arrow(cls, batch: pa.RecordBatch | pa.Table) -> list[Record]:
        """The rows of ``batch`` as Records (columns are matched by name; extra
        columns are ignored; a missing column of a field with a default takes
        the default)."""
        import pyarrow as pa

        if not isinstance(batch, (pa.RecordBatch, pa.Table)):
            raise ValidationError(
                f"from_arrow expects a pyarrow RecordBatch or Table, got {type(batch).__name__}",
                model=cls.__name__,
            )
        descs = cls._descriptors()
        names = set(batch.schema.names)
        for name, desc in descs.items():
            if desc.required and name not in names:
                raise MissingFieldError(
                    f"column missing from the batch (columns: {', '.join(batch.schema.names)})",
                    model=cls.__name__,
                    field=name,
                )
        present = [n for n in descs if n in names]
        columns = {n: batch.column(n).to_pylist() for n in present}
        out = []
        for i in range(batch.num_rows):
            data = {n: columns[n][i] for n in present}
            try:
                out.append(cls(__strict__=False, **data))
            except ValidationError as exc:
                raise ValidationError(
                    f"row {i}: {exc.reason}", model=exc.model, field=exc.field
                ) from exc
        return out


def _is_classvar(annotation: Any) -> bool:
    if isinstance(annotation, str):
        return annotation.startswith(("ClassVar", "typing.ClassVar"))
    return annotation is ClassVar or typing.get_origin(annotation) is ClassVar


#: Faust's base name for models
Model = Record


def maybe_model(value_type: Any, data: Any) -> Any:
    """``data`` as ``value_type`` when that is a Record (or, with no type,
    the Record its ``__faust`` key names); otherwise ``data`` unchanged."""
    if isinstance(data, Record):
        return data
    if isinstance(value_type, type) and issubclass(value_type, Record):
        if isinstance(data, Mapping):
            return value_type.from_data(data, preferred_type=value_type)
        return data
    if isinstance(data, Mapping) and isinstance(data.get(BLESSED_KEY), Mapping):
        model = registry.get(data[BLESSED_KEY].get("ns"))
        if model is not None:
            return model.from_data(data, preferred_type=None)
    return data
