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
from sabot.datastream import DataStream, Environment, call, col, lit
from sabot.window import (
    collect_list,
    count,
    count_distinct,
    hopping,
    max,
    mean,
    min,
    session,
    sum,
    tumbling,
)


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


# --- windowed queries (event time = dateTime, watermark = dateTime - 4 s) -----

WATERMARK_DELAY = "4s"


def _timed(b: DataStream) -> DataStream:
    return b.with_watermarks("dateTime", max_out_of_orderness=WATERMARK_DELAY)


def _keep_ties(batch: pa.RecordBatch) -> pa.RecordBatch:
    """q5's last step, vectorized: explode (auctions, nums) lists and keep the
    rows whose count equals the window's maximum."""
    auctions = pc.list_flatten(batch.column("auctions"))
    nums = pc.list_flatten(batch.column("nums"))
    parent = pc.list_parent_indices(batch.column("auctions"))
    maxn = pc.take(batch.column("maxn"), parent)
    keep = pc.greater_equal(nums, maxn)
    return pa.record_batch(
        {
            "auction": pc.filter(auctions, keep),
            "num": pc.filter(nums, keep),
            "window_end": pc.filter(pc.take(batch.column("w_end"), parent), keep),
        }
    )


def q5(b: DataStream) -> DataStream:
    """Hot items: bids per auction in 10 s windows sliding by 2 s, keeping the
    auctions with the most bids of each window (all ties) -> auction, num."""
    counts = (
        _timed(b)
        .key_by("auction")
        .window(hopping("10s", "2s"))
        .agg(num=count())
        .select(
            "auction",
            "num",
            w_end=col("window_end"),
            t=call("subtract", col("window_end").cast("int64"), 1),
        )
    )
    # All counts of one hopping window: key by its end, gather them in the
    # 2 s tumbling window that holds end - 1 ms.
    per_window = (
        counts.key_by("w_end")
        .window(tumbling("2s"), time="t")
        .agg(maxn=max("num"), auctions=collect_list("auction"), nums=collect_list("num"))
    )
    schema = pa.schema(
        [("auction", pa.int64()), ("num", pa.int64()), ("window_end", pa.timestamp("ms", tz="UTC"))]
    )
    return per_window.map(_keep_ties, schema=schema, name="keep_ties").select("auction", "num")


def q11(b: DataStream) -> DataStream:
    """User sessions: bids per bidder in sessions with a 10 s gap -> bidder,
    bid_count, starttime, endtime."""
    return (
        _timed(b)
        .key_by("bidder")
        .window(session("10s"))
        .agg(bid_count=count())
        .select("bidder", "bid_count", starttime=col("window_start"), endtime=col("window_end"))
    )


def q12(b: DataStream) -> DataStream:
    """Bids per bidder in 10 s processing-time windows -> bidder, bid_count,
    window_start, window_end."""
    return (
        b.key_by("bidder")
        .window(tumbling("10s"), processing_time=True)
        .agg(bid_count=count())
        .select("bidder", "bid_count", "window_start", "window_end")
    )


def _ranked(b: DataStream) -> DataStream:
    """Adds the rank columns q15-q17 count with: rank-filtered copies of the bid
    columns (null outside the rank), so that count / count_distinct of them are
    Flink's FILTER (WHERE price < ...) aggregates."""
    p = col("price")
    ranks = {"r1": p < 10_000, "r2": (p >= 10_000) & (p < 1_000_000), "r3": p >= 1_000_000}
    cols: dict[str, Any] = {}
    for r, cond in ranks.items():
        cols[f"bid_{r}"] = call("if_else", cond, lit(1), lit(None).cast("int64"))
        cols[f"bidder_{r}"] = call("if_else", cond, col("bidder"), lit(None).cast("int64"))
        cols[f"auction_{r}"] = call("if_else", cond, col("auction"), lit(None).cast("int64"))
    return b.select("auction", "bidder", "price", "channel", "dateTime", **cols)


def _day_aggregates() -> dict[str, Any]:
    return {
        "total_bids": count(),
        "rank1_bids": count("bid_r1"),
        "rank2_bids": count("bid_r2"),
        "rank3_bids": count("bid_r3"),
        "total_bidders": count_distinct("bidder"),
        "rank1_bidders": count_distinct("bidder_r1"),
        "rank2_bidders": count_distinct("bidder_r2"),
        "rank3_bidders": count_distinct("bidder_r3"),
        "total_auctions": count_distinct("auction"),
        "rank1_auctions": count_distinct("auction_r1"),
        "rank2_auctions": count_distinct("auction_r2"),
        "rank3_auctions": count_distinct("auction_r3"),
    }


def _day(column: str = "window_start") -> pc.Expression:
    return call("strftime", col(column), options=pc.StrftimeOptions("%Y-%m-%d", "C"))


def q15(b: DataStream) -> DataStream:
    """Bidding statistics per day: bids, bidders and auctions, in total and per
    price rank (< 10,000; < 1,000,000; above) -> day + 12 counts."""
    daily = _ranked(_timed(b)).window(tumbling("1d")).agg(**_day_aggregates())
    return daily.select(day=_day(), **{k: col(k) for k in _day_aggregates()})


def q16(b: DataStream) -> DataStream:
    """q15 per (channel, day), with the last bid's minute -> channel, day,
    minute + 12 counts."""
    aggs = {"last_time": max("dateTime"), **_day_aggregates()}
    daily = _ranked(_timed(b)).key_by("channel").window(tumbling("1d")).agg(**aggs)
    minute = call("strftime", col("last_time"), options=pc.StrftimeOptions("%H:%M", "C"))
    return daily.select(
        "channel", day=_day(), minute=minute, **{k: col(k) for k in _day_aggregates()}
    )


def q17(b: DataStream) -> DataStream:
    """Per (auction, day): bids in total and per rank, and min, max, avg and sum
    of price."""
    daily = (
        _ranked(_timed(b))
        .key_by("auction")
        .window(tumbling("1d"))
        .agg(
            total_bids=count(),
            rank1_bids=count("bid_r1"),
            rank2_bids=count("bid_r2"),
            rank3_bids=count("bid_r3"),
            min_price=min("price"),
            max_price=max("price"),
            avg_price=mean("price"),
            sum_price=sum("price"),
        )
    )
    return daily.select(
        "auction",
        day=_day(),
        **{
            k: col(k)
            for k in [
                "total_bids",
                "rank1_bids",
                "rank2_bids",
                "rank3_bids",
                "min_price",
                "max_price",
                "avg_price",
                "sum_price",
            ]
        },
    )


QUERIES: dict[str, Callable[[DataStream], DataStream]] = {
    "q0": q0,
    "q1": q1,
    "q2": q2,
    "q5": q5,
    "q11": q11,
    "q12": q12,
    "q15": q15,
    "q16": q16,
    "q17": q17,
}
