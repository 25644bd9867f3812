"""The built-in Nexmark generator (Person / Auction / Bid, as the Flink Nexmark
suite generates them) and the Nexmark queries Sabot implements.

The generator is native C++; parallel instances split the event space without
overlap and share one event-time timeline. Same seed, same events.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from sabot import _sabot
from sabot.datastream import DataStream, Environment, call, col


def schema(view: str = "bid") -> pa.Schema:
    """The schema of a generator view: "combined", "bid", "auction" or "person"."""
    return pa.Schema._import_from_c_capsule(_sabot.nexmark_schema(view))


def events(env: Environment, *, events: int = 0, parallelism: int = 0, **config: Any) -> DataStream:
    """All events in Flink's combined layout (event_type + person/auction/bid structs)."""
    return env.from_nexmark(num_events=events, view="combined", parallelism=parallelism, **config)


def bids(env: Environment, *, events: int = 0, parallelism: int = 0, **config: Any) -> DataStream:
    """The bid view (auction, bidder, price, channel, url, dateTime, extra).

    ``events`` counts all events of the sequence (bids are 46 of every 50); only
    bid rows are built, which equals filtering the combined stream on
    event_type = 2 (a filter pushed into the generator)."""
    return env.from_nexmark(num_events=events, view="bid", parallelism=parallelism, **config)


def bids_from_combined(
    env: Environment, *, events: int = 0, parallelism: int = 0, **config: Any
) -> DataStream:
    """The bid view computed the way Flink's Nexmark suite does it: generate every
    event in the combined layout, filter on event_type = 2, flatten the bid struct.
    Slower than :func:`bids` (persons and auctions are built and dropped); used to
    benchmark without the generator-side filter."""
    combined = env.from_nexmark(
        num_events=events, view="combined", parallelism=parallelism, **config
    )
    fields = [f.name for f in schema("bid")]
    # Project first (taking struct children is cheap), then filter only the
    # seven bid columns instead of all three structs.
    flattened = combined.select("event_type", **{name: pc.field("bid", name) for name in fields})
    return flattened.filter(col("event_type") == 2).select(*fields)


def auctions(
    env: Environment, *, events: int = 0, parallelism: int = 0, **config: Any
) -> DataStream:
    return env.from_nexmark(num_events=events, view="auction", parallelism=parallelism, **config)


def persons(
    env: Environment, *, events: int = 0, parallelism: int = 0, **config: Any
) -> DataStream:
    return env.from_nexmark(num_events=events, view="person", parallelism=parallelism, **config)


def q0(b: DataStream) -> DataStream:
    """Pass-through: auction, bidder, price, dateTime, extra."""
    return b.select("auction", "bidder", "price", "dateTime", "extra")


def q1(b: DataStream) -> DataStream:
    """Currency conversion: price * 0.908 (float64; Flink uses DECIMAL(23,3))."""
    return b.select(
        "auction",
        "bidder",
        price=col("price") * 0.908,
        dateTime=col("dateTime"),
        extra=col("extra"),
    )


def q2(b: DataStream) -> DataStream:
    """Selection: bids whose auction id is a multiple of 123 -> auction, price."""
    return b.filter(call("modulo", col("auction"), 123) == 0).select("auction", "price")


QUERIES: dict[str, Callable[[DataStream], DataStream]] = {"q0": q0, "q1": q1, "q2": q2}
