"""Nexmark q5, q11, q12, q15, q16, q17 checked against plain Python / pyarrow
references over the same generated bids."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

import pyarrow as pa
import pyarrow.compute as pc
import pytest
import sabot as sb
from window_reference import sessions

EVENTS = 60_000


def bids(parallelism: int = 1) -> pa.Table:
    env = sb.Environment(parallelism=parallelism, num_threads=2)
    return sb.nexmark.bids(env, events=EVENTS, parallelism=parallelism).to_table()


def run(query: str, parallelism: int) -> pa.Table:
    env = sb.Environment(parallelism=parallelism, num_threads=2)
    source = sb.nexmark.bids(env, events=EVENTS, parallelism=parallelism)
    return sb.nexmark.QUERIES[query](source).to_table()


def millis(t: pa.Table, column: str) -> list[int]:
    return pc.cast(t[column], pa.int64()).to_pylist()


@pytest.mark.parametrize("parallelism", [1, 2])
def test_q5_hot_items(parallelism: int) -> None:
    b = bids(parallelism)
    counts: dict[tuple[int, int], int] = defaultdict(int)
    for auction, ts in zip(b["auction"].to_pylist(), millis(b, "dateTime"), strict=True):
        last = ts // 2000 * 2000
        for start in range(last, ts - 10_000, -2000):
            counts[(start + 10_000, auction)] += 1
    best: dict[int, int] = defaultdict(int)
    for (end, _), n in counts.items():
        best[end] = max(best[end], n)
    want = sorted((a, n) for (end, a), n in counts.items() if n >= best[end])
    got = run("q5", parallelism)
    assert got.schema.names == ["auction", "num"]
    assert sorted(zip(got["auction"].to_pylist(), got["num"].to_pylist(), strict=True)) == want


@pytest.mark.parametrize("parallelism", [1, 2])
def test_q11_sessions(parallelism: int) -> None:
    b = bids(parallelism)
    rows = [
        {"bidder": x, "ts": t, "v": 1}
        for x, t in zip(b["bidder"].to_pylist(), millis(b, "dateTime"), strict=True)
    ]
    want = sorted(
        (k, a["n"], s, e)
        for (k, s, e), a in sessions(rows, "bidder", "ts", "v", 10_000, {"n": "count"}).items()
    )
    got = run("q11", parallelism)
    got_rows = sorted(
        zip(
            got["bidder"].to_pylist(),
            got["bid_count"].to_pylist(),
            millis(got, "starttime"),
            millis(got, "endtime"),
            strict=True,
        )
    )
    assert got_rows == want


def test_q12_processing_time_counts() -> None:
    got = run("q12", 2)
    b = bids(2)
    agg = b.group_by("bidder").aggregate([("bidder", "count")])
    want = dict(zip(agg["bidder"].to_pylist(), agg["bidder_count"].to_pylist(), strict=True))
    per_bidder: dict[int, int] = defaultdict(int)
    for bidder, n in zip(got["bidder"].to_pylist(), got["bid_count"].to_pylist(), strict=True):
        per_bidder[bidder] += n  # the run may straddle a processing-time window boundary
    assert per_bidder == want


def ranks(price: int) -> int:
    return 1 if price < 10_000 else 2 if price < 1_000_000 else 3


def day_stats(rows: list[tuple[int, int, int]]) -> dict[str, int]:
    out = {"total_bids": len(rows)}
    for r in (1, 2, 3):
        out[f"rank{r}_bids"] = sum(1 for _, _, p in rows if ranks(p) == r)
    out["total_bidders"] = len({b for b, _, _ in rows})
    for r in (1, 2, 3):
        out[f"rank{r}_bidders"] = len({b for b, _, p in rows if ranks(p) == r})
    out["total_auctions"] = len({a for _, a, _ in rows})
    for r in (1, 2, 3):
        out[f"rank{r}_auctions"] = len({a for _, a, p in rows if ranks(p) == r})
    return out


def day_of(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%d")


def test_q15_and_q16_daily_statistics() -> None:
    b = bids(2)
    days: dict[str, list] = defaultdict(list)
    by_channel: dict[tuple[str, str], list] = defaultdict(list)
    last_minute: dict[tuple[str, str], int] = {}
    for bidder, auction, price, channel, ts in zip(
        b["bidder"].to_pylist(),
        b["auction"].to_pylist(),
        b["price"].to_pylist(),
        b["channel"].to_pylist(),
        millis(b, "dateTime"),
        strict=True,
    ):
        days[day_of(ts)].append((bidder, auction, price))
        by_channel[(channel, day_of(ts))].append((bidder, auction, price))
        last_minute[(channel, day_of(ts))] = max(last_minute.get((channel, day_of(ts)), 0), ts)
    q15 = run("q15", 2).to_pylist()
    assert len(q15) == len(days)
    for row in q15:
        assert {k: v for k, v in row.items() if k != "day"} == day_stats(days[row["day"]])
    q16 = run("q16", 2).to_pylist()
    assert len(q16) == len(by_channel)
    for row in q16:
        key = (row["channel"], row["day"])
        stats = {k: v for k, v in row.items() if k not in ("channel", "day", "minute")}
        assert stats == day_stats(by_channel[key])
        minute = dt.datetime.fromtimestamp(last_minute[key] / 1000, dt.UTC).strftime("%H:%M")
        assert row["minute"] == minute


def test_q17_auction_daily_statistics() -> None:
    b = bids(2)
    groups: dict[tuple[int, str], list[int]] = defaultdict(list)
    for auction, price, ts in zip(
        b["auction"].to_pylist(), b["price"].to_pylist(), millis(b, "dateTime"), strict=True
    ):
        groups[(auction, day_of(ts))].append(price)
    got = run("q17", 2).to_pylist()
    assert len(got) == len(groups)
    for row in got:
        prices = groups[(row["auction"], row["day"])]
        assert row["total_bids"] == len(prices)
        assert [row[f"rank{r}_bids"] for r in (1, 2, 3)] == [
            sum(1 for p in prices if ranks(p) == r) for r in (1, 2, 3)
        ]
        assert (row["min_price"], row["max_price"], row["sum_price"]) == (
            min(prices),
            max(prices),
            sum(prices),
        )
        assert row["avg_price"] == pytest.approx(sum(prices) / len(prices))
