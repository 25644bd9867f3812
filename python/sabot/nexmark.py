"""The built-in Nexmark generator (Person / Auction / Bid, as the Flink Nexmark
suite generates them) and the Nexmark queries Sabot implements.

The generator is native C++; parallel instances split the event space without
overlap and share one event-time timeline. Same seed, same events.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from sabot import _sabot
from sabot.datastream import DataStream, Environment, call, col, lit
from sabot.functions import regexp_extract, split_index
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
        .select("auction", "dateTime")  # only these cross the key_by exchange
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
        .select("bidder", "dateTime")  # only these cross the key_by exchange
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


def _ranked(
    b: DataStream,
    keep: tuple[str, ...],
    of: tuple[str, ...] = ("bid", "bidder", "auction"),
) -> DataStream:
    """The bid columns ``keep`` and the rank columns q15-q17 count with:
    rank-filtered copies of the bid columns (null outside the rank), so that
    count / count_distinct of them are Flink's FILTER (WHERE price < ...)
    aggregates. ``of`` names the copies a query uses ("bid": a 1 per row,
    "bidder", "auction"). Only what the query reads is kept: every column is
    carried through the key_by exchange."""
    p = col("price")
    ranks = {"r1": p < 10_000, "r2": (p >= 10_000) & (p < 1_000_000), "r3": p >= 1_000_000}
    copies = {"bid": lit(1), "bidder": col("bidder"), "auction": col("auction")}
    cols: dict[str, Any] = {}
    for r, cond in ranks.items():
        for name in of:
            cols[f"{name}_{r}"] = call("if_else", cond, copies[name], lit(None).cast("int64"))
    return b.select(*keep, **cols)


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
    ranked = _ranked(_timed(b), keep=("auction", "bidder", "dateTime"))
    daily = ranked.window(tumbling("1d")).agg(**_day_aggregates())
    return daily.select(day=_day(), **{k: col(k) for k in _day_aggregates()})


def q16(b: DataStream) -> DataStream:
    """q15 per (channel, day), with the last bid's minute -> channel, day,
    minute + 12 counts."""
    aggs = {"last_time": max("dateTime"), **_day_aggregates()}
    ranked = _ranked(_timed(b), keep=("auction", "bidder", "channel", "dateTime"))
    daily = ranked.key_by("channel").window(tumbling("1d")).agg(**aggs)
    minute = call("strftime", col("last_time"), options=pc.StrftimeOptions("%H:%M", "C"))
    return daily.select(
        "channel", day=_day(), minute=minute, **{k: col(k) for k in _day_aggregates()}
    )


def q17(b: DataStream) -> DataStream:
    """Per (auction, day): bids in total and per rank, and min, max, avg and sum
    of price."""
    daily = (
        _ranked(_timed(b), keep=("auction", "price", "dateTime"), of=("bid",))
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


def q14(b: DataStream) -> DataStream:
    """Calculation: bids with 1,000,000 < 0.908 * price < 50,000,000 -> auction,
    bidder, price (0.908 * price, float64; Flink: DECIMAL(23,3)), bidTimeType
    (from the UTC hour: 8-18 'dayTime', <= 6 or >= 20 'nightTime', else
    'otherTime'), dateTime, extra, c_counts (the 'c' characters of extra).

    The range test is exact: 908 * price against 10^9 and 5 * 10^10 in int64."""
    scaled = col("price") * 908
    in_range = b.filter((scaled > 1_000_000_000) & (scaled < 50_000_000_000))
    hour = call("hour", col("dateTime"))
    bid_time_type = call(
        "if_else",
        (hour >= 8) & (hour <= 18),
        lit("dayTime"),
        call("if_else", (hour <= 6) | (hour >= 20), lit("nightTime"), lit("otherTime")),
    )
    c_counts = call("count_substring", col("extra"), options=pc.MatchSubstringOptions("c"))
    return in_range.select(
        "auction",
        "bidder",
        price=col("price") * 0.908,
        bidTimeType=bid_time_type,
        dateTime=col("dateTime"),
        extra=col("extra"),
        c_counts=c_counts.cast("int64"),
    )


_CHANNEL_IDS = {"apple": "0", "google": "1", "facebook": "2", "baidu": "3"}
CHANNEL_ID_PATTERN = "(&|^)channel_id=([^&]*)"
"""q21's REGEXP_EXTRACT pattern (group 2 is the channel id)."""


def q21(b: DataStream) -> DataStream:
    """Add channel id: bids whose url carries a channel_id parameter
    (REGEXP_EXTRACT(url, '(&|^)channel_id=([^&]*)', 2) not null) or whose
    lower-cased channel is apple, google, facebook or baidu -> auction, bidder,
    price, channel, channel_id ('0'-'3' for those four channels, else the
    extracted value).

    regexp_extract runs this pattern as a native scan (sabot.functions); the
    channel id is null exactly where a row is dropped (no extracted value and
    not one of the four channels), so one select computes it and the filter
    keeps its non-null rows."""
    step = b.select(
        "auction",
        "bidder",
        "price",
        "channel",
        lower=call("utf8_lower", col("channel")),
        extracted=regexp_extract(col("url"), CHANNEL_ID_PATTERN, 2),
    )
    lower = col("lower")
    channel_id = col("extracted")
    for name, code in reversed(_CHANNEL_IDS.items()):
        channel_id = call("if_else", lower == name, lit(code), channel_id)
    with_id = step.select("auction", "bidder", "price", "channel", channel_id=channel_id)
    return with_id.filter(call("is_valid", col("channel_id")))


def q22(b: DataStream) -> DataStream:
    """Get URL directories: auction, bidder, price, channel, dir1-dir3 =
    SPLIT_INDEX(url, '/', 3 / 4 / 5), the three path segments of the url
    (empty fields kept, null past the last field), with the native
    split_index kernel (sabot.functions)."""
    url = col("url")
    return b.select(
        "auction",
        "bidder",
        "price",
        "channel",
        dir1=split_index(url, "/", 3),
        dir2=split_index(url, "/", 4),
        dir3=split_index(url, "/", 5),
    )


QUERIES: dict[str, Callable[[DataStream], DataStream]] = {
    "q0": q0,
    "q1": q1,
    "q2": q2,
    "q5": q5,
    "q11": q11,
    "q12": q12,
    "q14": q14,
    "q15": q15,
    "q16": q16,
    "q17": q17,
    "q21": q21,
    "q22": q22,
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
        side_input: str | os.PathLike[str] | None = None,
        output_dir: str | os.PathLike[str] | None = None,
        **config: Any,
    ) -> None:
        if source not in ("view", "combined"):
            raise ValueError(f"source={source!r}: use 'view' or 'combined'")
        self.env = env
        self._side_input = os.fspath(side_input) if side_input is not None else None
        self._output_dir = os.fspath(output_dir) if output_dir is not None else None
        self._args = {"events": events, "parallelism": parallelism, **config}
        self._source = source
        self._streams: dict[str, DataStream] = {}

    @classmethod
    def from_file(
        cls,
        env: Environment,
        path: str | os.PathLike[str],
        *,
        parallelism: int = 0,
        side_input: str | os.PathLike[str] | None = None,
        output_dir: str | os.PathLike[str] | None = None,
    ) -> Sources:
        """The same streams read from an event file of :func:`write_events`.

        One file is one split: a single reader decodes it and splits it into the
        three entities (flattened, timestamps parsed) in its own instance, so
        event time stays in file order; the queries then assign the suite's
        watermark (dateTime - 4 s). ``parallelism`` > 0 runs the flattened
        streams with that many instances (rows dealt round robin); 0 keeps them
        with the reader."""
        sources = cls(env, parallelism=parallelism, side_input=side_input, output_dir=output_dir)
        sources._source = "file"
        sources._path = os.fspath(path)
        if not os.path.isfile(sources._path):
            raise FileNotFoundError(f"Nexmark event file {sources._path} does not exist")
        return sources

    def _get(self, view: str) -> DataStream:
        if view not in self._streams:
            if self._source == "file":
                if "combined" not in self._streams:
                    self._streams["combined"] = self.env.from_files(
                        self._path, "jsonl", schema=file_schema(), parallelism=1
                    )
                stream = _file_view(self._streams["combined"], view)
                p = self._args["parallelism"]
                self._streams[view] = stream.parallelism(p) if p > 0 else stream
            elif self._source == "view":
                make = {"bid": bids, "auction": auctions, "person": persons}[view]
                self._streams[view] = make(self.env, **self._args)
            else:
                if "combined" not in self._streams:
                    self._streams["combined"] = events(self.env, **self._args)
                self._streams[view] = _flatten(self._streams["combined"], view)
        return self._streams[view]

    @property
    def side_input(self) -> str:
        """q13's side input file (made on first use when none was given)."""
        if self._side_input is None:
            self._side_input = os.fspath(_default_side_input())
        return self._side_input

    @property
    def output_dir(self) -> str:
        """Where q10 writes its files (a new temporary directory when none was
        given)."""
        if self._output_dir is None:
            self._output_dir = tempfile.mkdtemp(prefix="sabot-nexmark-q10-")
        return self._output_dir

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
        timed.select("price", "dateTime")  # only these reach the global window
        .window(tumbling("10s"))
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


Q6_PRECEDING = 10
"""q6 averages the current and the 10 preceding winning prices of a seller."""


def q6(s: Sources) -> DataStream:
    """Average selling price by seller: the winning bid of each auction (the
    highest within its lifetime, ties: the earlier bid; an updating top-1, as
    q9), then per seller the average of the current and the 10 preceding
    winning prices in bid-time order (ties: the auction id) -> seller, id,
    avg_price (BIGINT: sum div count), _op; upsert key id (the suite's result
    has seller, avg_price).

    Flink's suite leaves q6 out: its OVER aggregate cannot consume the updates
    the winning bids make. Here the averages are maintained under them
    (:meth:`DataStream.over_rows`)."""
    winning = _winning_bids(
        s,
        ["id", "seller", "dateTime", "expires"],
        {"auction": col("auction"), "price": col("price")},
    )
    since_open = call("subtract", col("bid_time").cast("int64"), col("dateTime").cast("int64"))
    tie = call("min_element_wise", since_open, lit(_TIE_BITS - 1))
    ranked = winning.select(
        "id",
        "seller",
        "price",
        "bid_time",
        rank_key=col("price") * _TIE_BITS + (_TIE_BITS - 1) - tie,
    )
    top = ranked.key_by("id").top_n(1, "rank_key", descending=True)
    changes = top.select("id", "seller", "price", "bid_time", _op=col("_op"))
    # A native ROWS OVER aggregate over the winning bids' changelog: -U/-D
    # remove an auction's row, +I/+U add or replace it; per batch the touched
    # sellers' averages are recomputed and those that changed re-emitted
    # (-U/+U, +I, -D).
    frame = changes.key_by("seller").over_rows(
        preceding=Q6_PRECEDING, order_by="bid_time", row_key="id"
    )
    return frame.agg(avg_price=mean("price"))


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


SIDE_INPUT_ROWS = 10_000


def write_side_input(path: str | os.PathLike[str], rows: int = SIDE_INPUT_ROWS) -> Path:
    """Writes q13's side input as the suite makes it: CSV lines "i,i" for i = 0 ..
    rows - 1, no header (columns key BIGINT, value VARCHAR). Returns the path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.inprogress")
    tmp.write_text("".join(f"{i},{i}\n" for i in range(rows)))
    os.replace(tmp, target)
    return target


def read_side_input(path: str | os.PathLike[str]) -> pa.Table:
    """q13's side input file as a table (key int64, value string)."""
    from pyarrow import csv

    return csv.read_csv(
        path,
        read_options=csv.ReadOptions(column_names=["key", "value"]),
        convert_options=csv.ConvertOptions(
            column_types={"key": pa.int64(), "value": pa.string()},
            strings_can_be_null=False,
        ),
    )


def _default_side_input() -> Path:
    path = Path(tempfile.gettempdir()) / f"sabot-nexmark-side-input-{SIDE_INPUT_ROWS}.csv"
    if not path.is_file():
        write_side_input(path)
    return path


def q13(s: Sources) -> DataStream:
    """Bounded side input join: each bid enriched with the side input row whose
    key is auction mod 10,000 -> auction, bidder, price, dateTime, value.

    The side input is a CSV file (``Sources(..., side_input=PATH)``, default a
    file of :func:`write_side_input`) read into a bounded stream and joined with
    the bids by a regular join whose right side is unique per key: a bid whose
    key row has arrived is emitted at once and not kept; only bids that arrive
    before their key row wait in state. The suite's lookup join against the
    file gives the same rows (every key 0..9999 is present)."""
    side = s.env.from_table(read_side_input(s.side_input))
    keyed = s.bids.select(
        "auction",
        "bidder",
        "price",
        "dateTime",
        side_key=call("modulo", col("auction"), SIDE_INPUT_ROWS),
    )
    joined = keyed.join(side, on=("side_key", "key"), unique="right")
    return joined.select("auction", "bidder", "price", "dateTime", "value")


SUCCESS_FILE = "_SUCCESS"


def commit_partitions(path: str | os.PathLike[str]) -> list[str]:
    """Marks every partition of a q10 output directory done, as Flink's
    partition-commit policy 'success-file' does once the watermark passes the
    partition's time + 1 min (at the end of a bounded input: all of them).
    Returns the committed partition directories, relative to ``path``."""
    root = Path(path)
    committed = []
    for directory in sorted(p.parent for p in root.glob("*/*/part-*.csv")):
        (directory / SUCCESS_FILE).touch()
        committed.append(str(directory.relative_to(root)))
    return sorted(set(committed))


def q10(s: Sources) -> DataStream:
    """Log to file system: every bid with dt = 'yyyy-MM-dd' and hm = 'HH:mm' of
    its dateTime (UTC), written as CSV into ``s.output_dir`` partitioned by (dt,
    hm) -> auction, bidder, price, dateTime, extra, dt, hm (the rows written).

    The native partitioned file sink (:meth:`DataStream.write_partitioned_files`)
    writes ``dt=<dt>/hm=<hh>%3A<mm>/part-<instance>-<n>.csv`` (no header,
    timestamps as SQL text) and, at the end of input, each partition's
    ``_SUCCESS`` file. :func:`commit_partitions` does the same for a directory
    after the fact."""
    # DATE_FORMAT(dateTime, 'yyyy-MM-dd') and 'HH:mm' are slices of the
    # timestamp's text "yyyy-MM-dd HH:mm:ss.SSS".
    with_text = s.bids.select(
        "auction", "bidder", "price", "dateTime", "extra", text=_time_text_expr(col("dateTime"))
    )
    logged = with_text.select(
        "auction",
        "bidder",
        "price",
        "dateTime",
        "extra",
        dt=call("utf8_slice_codeunits", col("text"), options=pc.SliceOptions(0, 10)),
        hm=call("utf8_slice_codeunits", col("text"), options=pc.SliceOptions(11, 16)),
    )
    # Keyed by the partition, so all rows of a partition reach one instance
    # (one open file per partition and instance).
    return logged.key_by("dt", "hm").write_partitioned_files(
        s.output_dir, partition_by=["dt", "hm"], format="csv"
    )


JOIN_QUERIES: dict[str, Callable[[Sources], DataStream]] = {
    "q3": q3,
    "q4": q4,
    "q6": q6,
    "q7": q7,
    "q8": q8,
    "q9": q9,
    "q10": q10,
    "q13": q13,
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


# --- event files and result files (issue #8: the comparison with Flink) -------
#
# write_events() writes the combined event sequence as JSON lines in the layout
# of Flink's Nexmark `datagen` table; Sources.from_file() reads such a file back
# into the person / auction / bid streams; result_table() / write_result() turn
# a query's collected output into the suite's result form (select-list names
# and order, the final table of an updating query, timestamps as SQL text).

_TIMESTAMP = pa.timestamp("ms", tz="UTC")


def _time_text_expr(value: pc.Expression) -> pc.Expression:
    """timestamp[ms] -> its SQL TIMESTAMP(3) text in UTC, "2026-01-01 00:00:01.250"
    (Arrow's cast of a zone-less timestamp to string; much faster than strftime)."""
    return value.cast(pa.timestamp("ms")).cast(pa.string())


def _time_text(values: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    return pc.cast(pc.cast(values, pa.timestamp("ms")), pa.string())


def _textual(t: pa.DataType) -> pa.DataType:
    """``t`` with every timestamp replaced by utf8 (the event file's types)."""
    if pa.types.is_timestamp(t):
        return pa.utf8()
    if pa.types.is_struct(t):
        return pa.struct([pa.field(f.name, _textual(f.type), f.nullable) for f in t])
    return t


def file_schema() -> pa.Schema:
    """The schema of an event file: the combined schema with timestamps as text."""
    return pa.schema([pa.field(f.name, _textual(f.type), f.nullable) for f in schema("combined")])


def _datagen_batch(batch: pa.RecordBatch) -> pa.RecordBatch:
    """A combined batch with every timestamp (nested ones too) as SQL text."""
    columns = []
    for field, column in zip(batch.schema, batch.columns, strict=True):
        if pa.types.is_timestamp(field.type):
            column = _time_text(column)
        elif pa.types.is_struct(field.type):
            children = [
                _time_text(column.field(i)) if pa.types.is_timestamp(f.type) else column.field(i)
                for i, f in enumerate(field.type)
            ]
            column = pa.StructArray.from_arrays(
                children,
                fields=[pa.field(f.name, _textual(f.type), f.nullable) for f in field.type],
                mask=pc.is_null(column),
            )
        columns.append(column)
    return pa.RecordBatch.from_arrays(columns, schema=file_schema())


def write_events(
    path: str | os.PathLike[str], *, events: int, format: str = "jsonl", **config: Any
) -> int:
    """Writes ``events`` events of the generated sequence (one split, config keys as
    :meth:`Environment.from_nexmark`) to the file ``path`` as JSON lines in the
    layout of Flink's Nexmark ``datagen`` table::

        {"event_type": 2, "person": null, "auction": null,
         "bid": {"auction": 1000, ..., "dateTime": "2026-01-01 00:00:00.004", ...},
         "dateTime": "2026-01-01 00:00:00.004"}

    Timestamps are SQL ``TIMESTAMP(3)`` text in UTC. The file is written under a
    temporary name and renamed into place. Returns the number of events written."""
    if format != "jsonl":
        raise ValueError(f"write_events: format={format!r}; only 'jsonl' is supported")
    if events <= 0:
        raise ValueError(f"write_events: events={events}; give a positive number of events")
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    env = Environment(parallelism=1, num_threads=1)
    stream = env.from_nexmark(num_events=events, view="combined", parallelism=1, **config)
    with tempfile.TemporaryDirectory(prefix=".events-", dir=target.parent) as tmp:
        stream.map(_datagen_batch, schema=file_schema(), name="datagen_text").write_jsonl(tmp)
        env.execute()
        os.replace(Path(tmp) / "part-0.jsonl", target)
    return events


def _from_text(value: pc.Expression) -> pc.Expression:
    """SQL TIMESTAMP(3) text (UTC wall time) -> timestamp[ms, UTC]."""
    return value.cast(pa.timestamp("ms")).cast(_TIMESTAMP)


def _file_view(combined: DataStream, view: str) -> DataStream:
    """One entity's rows of an event file, flattened, timestamps parsed; dateTime
    is the top-level one (the event-time attribute of the suite's views). Runs
    with the reader (parallelism 1, chained)."""
    columns: dict[str, pc.Expression] = {}
    for f in schema(view):
        if f.name == "dateTime":
            columns[f.name] = _from_text(pc.field("dateTime"))
        elif pa.types.is_timestamp(f.type):
            columns[f.name] = _from_text(pc.field(view, f.name))
        else:
            columns[f.name] = pc.field(view, f.name)
    kind = combined.filter(col("event_type") == _EVENT_TYPES[view]).parallelism(1)
    return kind.select(**columns).parallelism(1)


def count_events(path: str | os.PathLike[str]) -> int:
    """The number of events (lines) in an event file."""
    n = 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 24):
            n += chunk.count(b"\n")
    return n


_BID_RESULT = ["auction", "bidder", "price", "channel", "url", "dateTime", "extra"]
_DAY_COUNTS = [
    f"{rank}_{what}"
    for what in ("bids", "bidders", "auctions")
    for rank in ("total", "rank1", "rank2", "rank3")
]

RESULT_COLUMNS: dict[str, list[str]] = {
    "q0": ["auction", "bidder", "price", "dateTime", "extra"],
    "q1": ["auction", "bidder", "price", "dateTime", "extra"],
    "q2": ["auction", "price"],
    "q3": ["name", "city", "state", "id"],
    "q4": ["category", "avg"],
    "q5": ["auction", "num"],
    "q6": ["seller", "avg_price"],
    "q7": ["auction", "price", "bidder", "dateTime", "extra"],
    "q8": ["id", "name", "starttime"],
    "q9": [*AUCTION_COLUMNS, "auction", "bidder", "price", "bid_dateTime", "bid_extra"],
    "q10": ["auction", "bidder", "price", "dateTime", "extra", "dt", "hm"],
    "q11": ["bidder", "bid_count", "starttime", "endtime"],
    "q12": ["bidder", "bid_count", "window_start", "window_end"],
    "q13": ["auction", "bidder", "price", "dateTime", "value"],
    "q14": ["auction", "bidder", "price", "bidTimeType", "dateTime", "extra", "c_counts"],
    "q15": ["day", *_DAY_COUNTS],
    "q16": ["channel", "day", "minute", *_DAY_COUNTS],
    "q17": [
        "auction",
        "day",
        "total_bids",
        "rank1_bids",
        "rank2_bids",
        "rank3_bids",
        "min_price",
        "max_price",
        "avg_price",
        "sum_price",
    ],
    "q18": _BID_RESULT,
    "q19": [*_BID_RESULT, "rank_number"],
    "q20": [
        *_BID_RESULT[:5],
        "bid_dateTime",
        "bid_extra",
        "itemName",
        "description",
        "initialBid",
        "reserve",
        "auction_dateTime",
        "expires",
        "seller",
        "category",
        "auction_extra",
    ],
    "q21": ["auction", "bidder", "price", "channel", "channel_id"],
    "q22": ["auction", "bidder", "price", "channel", "dir1", "dir2", "dir3"],
}
"""The columns of each query's result form, named and ordered as the suite's SQL
select list (an unnamed expression or a repeated name takes the sink table's
column name: q4's ``avg``, q10's ``dt``/``hm``, q20's ``bid_*``/``auction_*``)."""

UPSERT_KEYS: dict[str, list[str]] = {
    "q4": ["category"],
    "q6": ["id"],
    "q9": ["id"],
    "q18": ["bidder", "auction"],
    "q19": ["auction", "rank_number"],
}
"""The upsert key of each query whose Sabot stream is a changelog (``_op``)."""

_RENAMED: dict[str, dict[str, str]] = {}
"""Result column -> column of Sabot's stream, where the two differ."""

_DECIMAL_3 = {"q1": ["price"], "q14": ["price"]}
"""float64 columns that the suite computes as DECIMAL(23, 3): rounded to 3 places."""


def result_table(query: str, table: pa.Table) -> pa.Table:
    """A query's collected output in the suite's result form: an updating result
    (``_op``) reduced to its final table (one row per upsert key), the columns of
    :data:`RESULT_COLUMNS` in order, DECIMAL(23, 3) values rounded to 3 places and
    q17's ``avg_price`` as the suite's BIGINT average (sum div count)."""
    from sabot import changelog

    if query not in RESULT_COLUMNS:
        raise ValueError(f"no result form for query {query!r}")
    if changelog.OP_COLUMN in table.column_names:
        table = changelog.materialize(table, key=UPSERT_KEYS.get(query))
    if query == "q17":
        avg = pc.divide(table["sum_price"], table["total_bids"])  # int64: truncates
        table = table.set_column(table.column_names.index("avg_price"), "avg_price", avg)
    renamed = _RENAMED.get(query, {})
    columns = {name: table[renamed.get(name, name)] for name in RESULT_COLUMNS[query]}
    for name in _DECIMAL_3.get(query, []):
        # The nearest double to the 3-place decimal: an exact integer of
        # thousandths divided by 1000 (pc.round(x, 3) can land one ulp off).
        thousandths = pc.round(pc.multiply(columns[name], 1000.0))
        columns[name] = pc.divide(thousandths, 1000.0)
    return pa.table(columns)


def write_result(table: pa.Table, path: str | os.PathLike[str]) -> int:
    """Writes a result table as JSON lines (one object per row, keys in column
    order, timestamps as SQL TIMESTAMP(3) text in UTC). Returns the row count."""
    for i, field in enumerate(table.schema):
        if pa.types.is_timestamp(field.type):
            text = _time_text(table[field.name].cast(_TIMESTAMP))
            table = table.set_column(i, field.name, text)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    if table.num_rows == 0:
        target.write_bytes(b"")
        return 0
    env = Environment(parallelism=1, num_threads=1)
    with tempfile.TemporaryDirectory(prefix=".result-", dir=target.parent) as tmp:
        env.from_table(table).write_jsonl(tmp)
        env.execute()
        os.replace(Path(tmp) / "part-0.jsonl", target)
    return table.num_rows
