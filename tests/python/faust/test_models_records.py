"""faust.Record: construction, Faust payloads, validation, Arrow schemas."""

# Faust apps annotate with typing.Optional/List/Dict; the tests do too.
# ruff: noqa: UP006, UP035, UP045

from __future__ import annotations

import datetime as dt
import enum
import json
from decimal import Decimal
from typing import Dict, List, Optional, Set, Tuple

import pyarrow as pa
import pytest
from sabot.faust import codecs
from sabot.faust.models import (
    DecimalField,
    FieldDescriptor,
    MissingFieldError,
    Record,
    StringField,
    ValidationError,
    maybe_model,
    registry,
)


class Point(Record, serializer="json"):
    x: int
    y: float = 0.0
    label: Optional[str] = None


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Shape(Record):
    name: str
    points: List[Point]
    center: Point
    tags: Dict[str, int] = {}
    at: Optional[dt.datetime] = None
    price: Decimal = Decimal("0")
    color: Color = Color.RED
    ids: Set[int] = set()


class Node(Record):
    value: int
    children: List[Node] = []  # a forward reference to itself


class Animal(Record, allow_blessed_key=True):
    name: str


class Dog(Animal):
    barks: bool = True


def test_positional_keywords_and_defaults() -> None:
    assert Point(1) == Point(x=1, y=0.0, label=None)
    p = Point(1, 2.5, "a")
    assert (p.x, p.y, p.label) == (1, 2.5, "a")
    assert Point._options.fields == ["x", "y", "label"]
    assert Point._options.defaults == {"y": 0.0, "label": None}


def test_mutable_defaults_are_not_shared() -> None:
    a = Shape("a", [], Point(0))
    b = Shape("b", [], Point(0))
    a.tags["k"] = 1
    assert b.tags == {}


def test_payload_has_faust_metadata_and_round_trips() -> None:
    p = Point(1, 2.5)
    payload = json.loads(p.dumps())
    assert payload == {"x": 1, "y": 2.5, "label": None, "__faust": {"ns": f"{__name__}.Point"}}
    assert p.to_representation()["__faust"] == {"ns": f"{__name__}.Point"}
    assert p.asdict() == {"x": 1, "y": 2.5, "label": None}
    assert Point.loads(p.dumps()) == p


def test_reads_a_payload_written_by_faust() -> None:
    # the bytes faust-streaming writes for this model (json, include_metadata)
    raw = (
        b'{"name": "tri", "points": [{"x": 1, "y": 2.0, "label": "p", "__faust": '
        b'{"ns": "elsewhere.Point"}}], "center": {"x": 0, "y": 0.0, "label": null}, '
        b'"tags": {"a": 1}, "at": "2024-01-02T03:04:05.123456+00:00", "price": "12.50", '
        b'"color": "blue", "ids": [3, 1], "__faust": {"ns": "elsewhere.Shape"}}'
    )
    s = Shape.loads(raw)
    assert s.points == [Point(1, 2.0, "p")]
    assert s.center == Point(0)
    assert s.at == dt.datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=dt.UTC)
    assert s.price == Decimal("12.50") and isinstance(s.price, Decimal)
    assert s.color is Color.BLUE
    assert s.ids == {1, 3}
    again = Shape.loads(s.dumps())
    assert again == s


def test_nested_structures_serialize_as_faust_does() -> None:
    s = Shape("a", [Point(1)], Point(2), at=dt.datetime(2024, 1, 1), price=Decimal("1.5"))
    payload = json.loads(s.dumps())
    assert payload["points"][0]["__faust"] == {"ns": f"{__name__}.Point"}
    assert payload["at"] == "2024-01-01T00:00:00"
    assert payload["price"] == "1.5"
    assert payload["color"] == "red"


def test_blessed_key_picks_the_subclass() -> None:
    d = Dog("rex", barks=False)
    back = Animal.loads(d.dumps())
    assert type(back) is Dog and back == d
    assert maybe_model(None, json.loads(d.dumps())) == d
    # a payload cannot swap in a model unrelated to the one asked for
    assert type(Point.loads(Dog("x").dumps().replace(b'"name"', b'"x"'))) is Point


def test_include_metadata_false() -> None:
    class Plain(Record, include_metadata=False):
        a: int

    assert json.loads(Plain(1).dumps()) == {"a": 1}


def test_forward_reference_to_itself() -> None:
    tree = Node.from_data({"value": 1, "children": [{"value": 2}, {"value": 3, "children": []}]})
    assert [c.value for c in tree.children] == [2, 3]
    assert isinstance(tree.children[0], Node)


def test_inheritance_keeps_field_order() -> None:
    assert Dog._options.fields == ["name", "barks"]
    assert registry[f"{__name__}.Dog"] is Dog


def test_field_descriptors_on_the_class() -> None:
    assert isinstance(Point.x, FieldDescriptor)
    assert Point.x.ident == "Point.x"
    assert Point.x.model is Point
    assert Point.x.getattr(Point(7)) == 7
    assert Dog.name.model is Dog


def test_missing_and_unknown_fields_name_model_and_field() -> None:
    with pytest.raises(MissingFieldError, match=r"^Point\.x: missing required field"):
        Point(y=1.0)
    with pytest.raises(TypeError, match=r"Point\.z: unknown field 'z'"):
        Point(1, z=3)
    # from_data is lenient about extra keys, as Faust's is
    assert Point.from_data({"x": 1, "z": 3}) == Point(1)


def test_conversion_errors_name_model_and_field() -> None:
    with pytest.raises(
        ValidationError, match=r"^Shape\.at: expected Optional\[datetime\].*ISO 8601"
    ):
        Shape("a", [], Point(0), at="yesterday")
    with pytest.raises(ValidationError, match=r"^Shape\.price: expected Decimal.*not a decimal"):
        Shape("a", [], Point(0), price="ten")
    with pytest.raises(
        ValidationError, match=r"^Shape\.center: in nested Point: Point\.x: missing"
    ):
        Shape("a", [], {"y": 1.0})
    with pytest.raises(ValidationError, match=r"^Shape\.color: expected Color"):
        Shape("a", [], Point(0), color="green")


def test_validation_option_and_validate() -> None:
    class Strict(Record, validation=True):
        n: int
        s: str = StringField(max_length=3, default="")

    assert Strict(1, "abc").is_valid()
    with pytest.raises(ValidationError, match=r"^Strict\.n: expected int, got str 'x'"):
        Strict("x")
    with pytest.raises(ValidationError, match=r"^Strict\.s: longer than max_length 3"):
        Strict(1, "abcd")

    lax = Point("not-an-int")  # Faust does not check types unless asked
    errors = lax.validate()
    assert [(e.model, e.field) for e in errors] == [("Point", "x")]
    assert not lax.is_valid()


def test_coerce_option() -> None:
    class Coerced(Record, coerce=True):
        n: int
        f: float
        ok: bool

    c = Coerced.from_data({"n": "12", "f": "2.5", "ok": "true"})
    assert (c.n, c.f, c.ok) == (12, 2.5, True)
    with pytest.raises(ValidationError, match=r"Coerced\.n: expected int"):
        Coerced(n="twelve", f=1.0, ok=False)


def test_equality_hash_order_and_derive() -> None:
    assert Point(1) == Point(1) and Point(1) != Point(2)
    assert len({Point(1), Point(1), Point(2)}) == 2
    assert sorted([Point(3), Point(1)]) == [Point(1), Point(3)]
    assert Point(1).derive(y=5.0) == Point(1, 5.0)


def test_serializer_override_and_binary() -> None:
    p = Point(4, 1.0)
    data = p.dumps(serializer="json|binary")
    assert Point.loads(data, serializer="json|binary") == p
    with pytest.raises(codecs.CodecError, match="codec 'json'"):
        Point.loads(b"{oops")


def test_arrow_schema() -> None:
    expected = pa.schema(
        [
            pa.field("name", pa.string(), nullable=False),
            pa.field(
                "points",
                pa.list_(
                    pa.struct(
                        [
                            pa.field("x", pa.int64(), nullable=False),
                            pa.field("y", pa.float64(), nullable=False),
                            pa.field("label", pa.string()),
                        ]
                    )
                ),
                nullable=False,
            ),
            pa.field(
                "center",
                pa.struct(
                    [
                        pa.field("x", pa.int64(), nullable=False),
                        pa.field("y", pa.float64(), nullable=False),
                        pa.field("label", pa.string()),
                    ]
                ),
                nullable=False,
            ),
            pa.field("tags", pa.map_(pa.string(), pa.int64()), nullable=False),
            pa.field("at", pa.timestamp("us")),
            pa.field("price", pa.decimal128(38, 18), nullable=False),
            pa.field("color", pa.string(), nullable=False),
            pa.field("ids", pa.list_(pa.int64()), nullable=False),
        ]
    )
    assert Shape.arrow_schema().equals(expected)
    assert Shape.arrow_schema().metadata == {b"faust.ns": f"{__name__}.Shape".encode()}


def test_arrow_scalar_types() -> None:
    class Money(Record):
        amount: Decimal = DecimalField(max_digits=12, max_decimal_places=2)
        day: dt.date = dt.date(2024, 1, 1)
        at: dt.time = dt.time(0)
        blob: bytes = b""
        flag: bool = False
        pair: Tuple[int, ...] = ()

    schema = Money.arrow_schema()
    assert [f.type for f in schema] == [
        pa.decimal128(12, 2),
        pa.date32(),
        pa.time64("us"),
        pa.binary(),
        pa.bool_(),
        pa.list_(pa.int64()),
    ]


def test_arrow_schema_errors_name_the_field() -> None:
    with pytest.raises(ValidationError, match=r"Node\.children\[\]: Node contains itself"):
        Node.arrow_schema()

    class Odd(Record):
        thing: object

    with pytest.raises(ValidationError, match=r"Odd\.thing: annotation Any has no Arrow type"):
        Odd.arrow_schema()


def _shapes(n: int) -> list[Shape]:
    return [
        Shape(
            name=f"s{i}",
            points=[Point(j, j / 2, None if j % 2 else f"p{j}") for j in range(i % 4)],
            center=Point(i, -i),
            tags={f"t{k}": k for k in range(i % 3)},
            at=None if i % 5 == 0 else dt.datetime(2024, 1, 1) + dt.timedelta(seconds=i),
            price=Decimal(i) / 4,
            color=Color.BLUE if i % 2 else Color.RED,
            ids={i, i + 1},
        )
        for i in range(n)
    ]


def test_to_arrow_from_arrow_round_trip() -> None:
    shapes = _shapes(50)
    batch = Shape.to_arrow(shapes)
    assert batch.schema.equals(Shape.arrow_schema())
    assert batch.num_rows == 50
    # an independent reference: the JSON payloads, column by column
    payloads = [json.loads(s.dumps()) for s in shapes]
    assert batch.column("name").to_pylist() == [p["name"] for p in payloads]
    assert batch.column("center").field("x").to_pylist() == [p["center"]["x"] for p in payloads]
    assert [str(v) if v is not None else None for v in batch.column("price").to_pylist()] == [
        str(Decimal(p["price"]).quantize(Decimal(10) ** -18)) for p in payloads
    ]
    assert Shape.from_arrow(batch) == shapes
    assert Shape.from_arrow(pa.Table.from_batches([batch])) == shapes


def test_from_arrow_by_name_with_defaults_and_errors() -> None:
    batch = pa.record_batch({"extra": ["z", "w"], "x": [1, 2]})
    assert Point.from_arrow(batch) == [Point(1), Point(2)]
    with pytest.raises(MissingFieldError, match=r"Point\.x: column missing from the batch"):
        Point.from_arrow(pa.record_batch({"y": [1.0]}))
    with pytest.raises(ValidationError, match=r"Shape\.at: row 1: expected Optional\[datetime\]"):
        Shape.from_arrow(
            pa.record_batch(
                {
                    "name": ["a", "b"],
                    "points": pa.array([[], []], pa.list_(pa.struct([("x", pa.int64())]))),
                    "center": [{"x": 1}, {"x": 2}],
                    "at": [None, "soon"],
                }
            )
        )


def test_to_arrow_errors_name_the_field() -> None:
    bad = Point("abc")
    with pytest.raises(ValidationError, match=r"Point\.x: cannot convert to Arrow int64"):
        Point.to_arrow([bad])


def test_maybe_model() -> None:
    assert maybe_model(Point, {"x": 1}) == Point(1)
    assert maybe_model(None, {"x": 1}) == {"x": 1}
    assert maybe_model(Point, b"raw") == b"raw"
    assert maybe_model(None, json.loads(Point(3).dumps())) == Point(3)
