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
"""Queries over the bid stream alone: ``QUERIES[q](bids)``."""


# --- queries over several entities: joins, updating results (issue #6) --------


class Sources:
    """The person, auction and bid streams of one generated event sequence, made
    on first use (a query that reads a stream twice shares one source).

    ``source="view"`` generates each entity with its own generator walking the
    same sequence (so the three are consistent: same ids, same times);
    ``"combined"`` generates every event once and filters and flattens each
    entity in the job, as Flink's suite does."""

    def __init__(
        self,
        env: Environment,
        *,
        events: int = 0,
        parallelism: int = 0,
        source: str = "view",
        **config: Any,
    ) -> None:
        if source not in ("view", "combined"):
            raise ValueError(f"source={source!r}: use 'view' or 'combined'")
        self.env = env
        self._args = {"events": events, "parallelism": parallelism, **config}
        self._source = source
        self._streams: dict[str, DataStream] = {}

    def _get(self, view: str) -> DataStream:
        if view not in self._streams:
            if self._source == "view":
                make = {"bid": bids, "auction": auctions, "person": persons}[view]
                self._streams[view] = make(self.env, **self._args)
            else:
                if "combined" not in self._streams:
                    self._streams["combined"] = events(self.env, **self._args)
                self._streams[view] = _flatten(self._streams["combined"], view)
        return self._streams[view]

    @property
    def bids(self) -> DataStream:
        return self._get("bid")

    @property
    def auctions(self) -> DataStream:
        return self._get("auction")

    @property
    def persons(self) -> DataStream:
        return self._get("person")


_EVENT_TYPES = {"person": 0, "auction": 1, "bid": 2}


def _flatten(combined: DataStream, view: str) -> DataStream:
    fields = [f.name for f in schema(view)]
    flattened = combined.select("event_type", **{name: pc.field(view, name) for name in fields})
    return flattened.filter(col("event_type") == _EVENT_TYPES[view]).select(*fields)


def _between(value: str, low: str, high: str) -> pc.Expression:
    return (col(value) >= col(low)) & (col(value) <= col(high))


def q3(s: Sources) -> DataStream:
    """Local item suggestion: auctions of category 10 joined with their sellers
    from OR, ID or CA (a regular join; insert-only) -> name, city, state, id."""
    auctions_10 = s.auctions.filter(col("category") == 10).select("id", "seller")
    state = col("state")
    sellers = s.persons.filter((state == "OR") | (state == "ID") | (state == "CA")).select(
        "id", "name", "city", "state"
    )
    joined = auctions_10.join(sellers, on=("seller", "id"))
    return joined.select("name", "city", "state", "id")


def _winning_bids(
    s: Sources, auction_columns: list[str], bid_columns: dict[str, pc.Expression]
) -> DataStream:
    """Auctions joined with the bids placed within their lifetime
    (A.dateTime <= B.dateTime <= A.expires, the join condition). Auction ids are
    unique, so a bid whose auction has arrived is joined at once and not kept;
    only bids that arrive before their auction wait in state. Only the columns
    the query needs enter the join."""
    placed = s.bids.select(**bid_columns, bid_time=col("dateTime"))
    return s.auctions.select(*auction_columns).join(
        placed,
        on=("id", "auction"),
        where=_between("bid_time", "dateTime", "expires"),
        unique="left",
    )


def q4(s: Sources) -> DataStream:
    """Average closing price per category: the highest bid of each auction
    within its lifetime (an updating max per auction), then the average of
    those per category, maintained under the max's retractions (-U rows count
    negatively) -> category, avg (integer), _op; upsert key category."""
    closing = (
        _winning_bids(
            s,
            ["id", "category", "dateTime", "expires"],
            {"auction": col("auction"), "price": col("price")},
        )
        .select("id", "category", "price")
        .key_by("id", "category")
        .aggregate(final=max("price"))
    )
    adds = (col("_op") == 0) | (col("_op") == 2)
    signed = closing.select(
        "category",
        signed_final=call("if_else", adds, col("final"), call("negate", col("final"))),
        signed_count=call("if_else", adds, lit(1), lit(-1)),
    )
    per_category = signed.key_by("category").aggregate(
        total=sum("signed_final"), n=sum("signed_count")
    )
    return per_category.select(
        "category",
        avg=call("divide", col("total"), call("max_element_wise", col("n"), lit(1))),
        _op=col("_op"),
    )


def q7(s: Sources) -> DataStream:
    """Highest bid: the maximum price of each 10 s tumbling window, joined back
    with the bids of that price placed in [window_end - 10 s, window_end] (an
    interval join) -> auction, price, bidder, dateTime, extra."""
    timed = _timed(s.bids)
    maxes = (
        timed.window(tumbling("10s"))
        .agg(maxprice=max("price"))
        .select("maxprice", window_end=col("window_end"))
    )
    joined = maxes.interval_join(
        timed,
        on=("maxprice", "price"),
        between=("-10s", 0),
        left_time="window_end",
        right_time="dateTime",
    )
    return joined.select("auction", "price", "bidder", "dateTime", "extra")


def q8(s: Sources) -> DataStream:
    """Monitor new users: people who opened an auction in the 10 s tumbling
    window in which they registered (distinct persons per window joined with
    distinct sellers per window, a window join) -> id, name, starttime."""
    window = tumbling("10s")
    new_people = (
        _timed(s.persons)
        .key_by("id", "name")
        .window(window)
        .agg(n=count())
        .select("id", "name", t=call("subtract", col("window_end").cast("int64"), 1))
    )
    sellers = (
        _timed(s.auctions)
        .key_by("seller")
        .window(window)
        .agg(n=count())
        .select("seller", t=call("subtract", col("window_end").cast("int64"), 1))
    )
    joined = new_people.window_join(
        sellers, window, on=("id", "seller"), left_time="t", right_time="t"
    )
    return joined.select("id", "name", starttime=col("window_start"))


# Top-1 by price DESC, then bid time ASC, as one number (top_n compares one
# float64 column): price (< 2^27 cents) * 2^26 + (2^26 - 1 - ms since the
# auction opened, at most 2^26 - 1 ms = 18.6 h), exact below 2^53.
_TIE_BITS = 1 << 26


def q9(s: Sources) -> DataStream:
    """Winning bids: per auction, the highest bid within its lifetime (ties: the
    earlier bid), an updating top-1 (+I/-D) -> the 10 auction columns and
    auction, bidder, price, bid_dateTime, bid_extra.

    The top-1 runs on narrow rows (the auction's id and times, the bid); the
    winners are then joined back with the full auction rows (a regular join
    of an append-only and an updating input)."""
    winning = _winning_bids(
        s,
        ["id", "dateTime", "expires"],
        {
            "auction": col("auction"),
            "bidder": col("bidder"),
            "price": col("price"),
            "bid_extra": col("extra"),
        },
    )
    since_open = call("subtract", col("bid_time").cast("int64"), col("dateTime").cast("int64"))
    tie = call("min_element_wise", since_open, lit(_TIE_BITS - 1))
    ranked = winning.select(
        "id",
        "auction",
        "bidder",
        "price",
        bid_dateTime=col("bid_time"),
        bid_extra=col("bid_extra"),
        rank_key=col("price") * _TIE_BITS + (_TIE_BITS - 1) - tie,
    )
    top = ranked.key_by("id").top_n(1, "rank_key", descending=True)
    full = s.auctions.join(top, on="id")
    return full.select(
        *AUCTION_COLUMNS, "auction", "bidder", "price", "bid_dateTime", "bid_extra", "_op"
    )


AUCTION_COLUMNS = [
    "id",
    "itemName",
    "description",
    "initialBid",
    "reserve",
    "dateTime",
    "expires",
    "seller",
    "category",
    "extra",
]
BID_COLUMNS = ["auction", "bidder", "price", "channel", "url", "dateTime", "extra"]


def q18(s: Sources) -> DataStream:
    """Last bid of each (bidder, auction) by dateTime (keep-last deduplication;
    ties: the later arrival) -> the 7 bid columns, _op; upsert key (bidder,
    auction)."""
    return s.bids.key_by("bidder", "auction").deduplicate(keep="last", time="dateTime")


def q19(s: Sources) -> DataStream:
    """Top 10 bids of each auction by price (ties: the earlier bid) -> the 7 bid
    columns, rank_number, _op; upsert key (auction, rank_number)."""
    top = s.bids.key_by("auction").top_n(10, "price", descending=True, rank=True)
    return top.select(*BID_COLUMNS, rank_number=col("rank"), _op=col("_op"))


def q20(s: Sources) -> DataStream:
    """Bids on auctions of category 10, with the auction's details (a regular
    join; insert-only) -> the 7 bid columns, then the 9 auction columns but id
    (named as Flink's sink: bid_dateTime, bid_extra, ..., auction_dateTime,
    auction_extra).

    The category filter is the join condition rather than a filter before the
    join: the join then sees every auction id (ids are unique), so a bid whose
    auction has arrived is final and not kept, instead of keeping every bid on
    an auction of another category forever."""
    joined = s.bids.join(
        s.auctions, on=("auction", "id"), where=col("category") == 10, unique="right"
    )
    return joined.select(
        *BID_COLUMNS[:5],
        bid_dateTime=col("dateTime"),
        bid_extra=col("extra"),
        itemName=col("itemName"),
        description=col("description"),
        initialBid=col("initialBid"),
        reserve=col("reserve"),
        auction_dateTime=col("right_dateTime"),
        expires=col("expires"),
        seller=col("seller"),
        category=col("category"),
        auction_extra=col("right_extra"),
    )


JOIN_QUERIES: dict[str, Callable[[Sources], DataStream]] = {
    "q3": q3,
    "q4": q4,
    "q7": q7,
    "q8": q8,
    "q9": q9,
    "q18": q18,
    "q19": q19,
    "q20": q20,
}
"""Queries over several streams (or an updating result): ``JOIN_QUERIES[q](sources)``."""


def query_names() -> list[str]:
    """Every query ``build`` knows, in numeric order."""
    return sorted([*QUERIES, *JOIN_QUERIES], key=lambda q: int(q[1:]))


def build(query: str, sources: Sources) -> DataStream:
    """The stream of query ``query`` over ``sources`` (bid-only queries read
    ``sources.bids``)."""
    if query in QUERIES:
        return QUERIES[query](sources.bids)
    if query in JOIN_QUERIES:
        return JOIN_QUERIES[query](sources)
    raise ValueError(f"unknown query {query!r}; available: {', '.join(query_names())}")
