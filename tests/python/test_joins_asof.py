"""ASOF and temporal joins, checked against a plain-Python reference on
randomized out-of-order input (within the watermark bound), at parallelism 1
and 4 and batch sizes 1, 50 and 1000."""

from __future__ import annotations

import random

import pyarrow as pa
import pytest
import sabot as sb

BOUND = 300  # max out-of-orderness of the generated input (ms)


def rows_then_pause_then(first: list[dict], last: dict):
    """Yields `first`, waits 300 ms (so that the other join input, a few rows,
    has delivered its watermark), then yields `last`."""
    import threading

    yield from first
    threading.Event().wait(0.3)
    yield last


def shuffled(rng: random.Random, ts: list[int]) -> list[int]:
    """Row order in which each row is at most BOUND ms behind the largest before it."""
    return sorted(range(len(ts)), key=lambda i: ts[i] + rng.randrange(BOUND))


def gen_left(rng: random.Random, n: int, keys: int, span: int) -> pa.Table:
    ts = sorted(rng.randrange(span) for _ in range(n))
    k = [None if rng.random() < 0.03 else rng.randrange(keys) for _ in range(n)]
    order = shuffled(rng, ts)
    return pa.table(
        {
            "k": pa.array([k[i] for i in order], pa.int64()),
            "ts": pa.array([ts[i] for i in order], pa.int64()),
            "lv": pa.array([f"l{i}" for i in order], pa.string()),
        }
    )


def gen_right(rng: random.Random, n: int, keys: int, span: int) -> pa.Table:
    # Distinct timestamps, so that "the latest version" is never a tie.
    ts = sorted(rng.sample(range(span), n))
    k = [None if rng.random() < 0.03 else rng.randrange(keys) for _ in range(n)]
    gone = [rng.random() < 0.2 for _ in range(n)]
    order = shuffled(rng, ts)
    return pa.table(
        {
            "k": pa.array([k[i] for i in order], pa.int64()),
            "ts": pa.array([ts[i] for i in order], pa.int64()),
            "rv": pa.array([f"r{i}" for i in order], pa.string()),
            "gone": pa.array([gone[i] for i in order], pa.bool_()),
        }
    )


def reference(left, right, how, tolerance=None, deleted=None):
    out = []
    for lrow in left:
        best = None
        if lrow["k"] is not None:
            for r in right:
                if r["k"] == lrow["k"] and r["ts"] <= lrow["ts"]:
                    if best is None or r["ts"] > best["ts"]:
                        best = r
        if best is not None and tolerance is not None and lrow["ts"] - best["ts"] > tolerance:
            best = None
        if best is not None and deleted is not None and best[deleted]:
            best = None
        if best is not None:
            out.append((lrow["lv"], best["rv"]))
        elif how == "left":
            out.append((lrow["lv"], None))
    return sorted(out, key=repr)


def streams(left: pa.Table, right: pa.Table, parallelism: int, batch_size: int):
    env = sb.Environment(parallelism=parallelism)
    ls = env.from_table(left, batch_size=batch_size).with_watermarks(
        "ts", max_out_of_orderness=BOUND
    )
    rs = env.from_table(right, batch_size=batch_size).with_watermarks(
        "ts", max_out_of_orderness=BOUND
    )
    return env, ls, rs


def pairs(out: pa.Table) -> list:
    return sorted(zip(out["lv"].to_pylist(), out["rv"].to_pylist(), strict=True), key=repr)


@pytest.mark.parametrize("how", ["inner", "left"])
@pytest.mark.parametrize("parallelism", [1, 4])
@pytest.mark.parametrize("batch_size", [1, 50, 1000])
@pytest.mark.parametrize("tolerance", [None, 150])
def test_asof_join_matches_reference(how, parallelism, batch_size, tolerance) -> None:
    rng = random.Random(hash((how, parallelism, batch_size, tolerance)) & 0xFFFF)
    n = 60 if batch_size == 1 else 400
    left = gen_left(rng, n, 8, 5_000)
    right = gen_right(rng, n, 8, 5_000)
    env, ls, rs = streams(left, right, parallelism, batch_size)
    joined = ls.asof_join(rs, on="k", tolerance=tolerance, how=how)
    late = joined.late().collect()
    out = joined.to_table()
    assert out.column_names == ["k", "ts", "lv", "right_k", "right_ts", "rv", "gone"]
    want = reference(left.to_pylist(), right.to_pylist(), how, tolerance=tolerance)
    assert pairs(out) == want
    assert late.table().num_rows == 0


@pytest.mark.parametrize("how", ["inner", "left"])
@pytest.mark.parametrize("parallelism", [1, 4])
@pytest.mark.parametrize("batch_size", [1, 50, 1000])
def test_temporal_join_matches_reference(how, parallelism, batch_size) -> None:
    rng = random.Random(hash(("temporal", how, parallelism, batch_size)) & 0xFFFF)
    n = 60 if batch_size == 1 else 400
    left = gen_left(rng, n, 6, 5_000)
    right = gen_right(rng, n // 2, 6, 5_000)
    env, ls, rs = streams(left, right, parallelism, batch_size)
    out = ls.temporal_join(rs, on="k", deleted="gone", how=how).to_table()
    want = reference(left.to_pylist(), right.to_pylist(), how, deleted="gone")
    assert pairs(out) == want


def test_late_left_rows_go_to_the_side_output() -> None:
    env = sb.Environment(parallelism=1)
    left = env.from_iterable(
        rows_then_pause_then(
            [{"k": 1, "t": 1_000, "x": "early"}, {"k": 1, "t": 20_000, "x": "moves the watermark"}],
            {"k": 1, "t": 2_000, "x": "late"},
        ),
        batch_size=1,
    ).with_watermarks("t")
    # The right watermark is far ahead, so once it arrived the left one alone
    # decides lateness; the pause lets the right side deliver it first.
    right = env.from_iterable(
        [{"k": 1, "t": 500, "y": "v1"}, {"k": 1, "t": 10_000, "y": "v2"}]
    ).with_watermarks("t", custom=lambda batch, max_ms: 1_000_000)
    joined = left.asof_join(right, on="k", how="left")
    late = joined.late().collect()
    out = joined.to_table()
    assert sorted(zip(out["x"].to_pylist(), out["y"].to_pylist(), strict=True)) == [
        ("early", "v1"),
        ("moves the watermark", "v2"),
    ]
    assert late.table()["x"].to_pylist() == ["late"]
    assert late.table()["y"].to_pylist() == [None]


def test_temporal_join_deletes_and_asof_ignores_them() -> None:
    def run(kind: str) -> list:
        env = sb.Environment(parallelism=1)
        orders = env.from_iterable(
            [{"cur": "EUR", "ts": t, "id": t} for t in (50, 150, 250, 350)]
        ).with_watermarks("ts")
        rates = env.from_iterable(
            [
                {"cur": "EUR", "ts": 100, "rate": 1.1, "gone": False},
                {"cur": "EUR", "ts": 200, "rate": None, "gone": True},
                {"cur": "EUR", "ts": 300, "rate": 1.3, "gone": False},
            ]
        ).with_watermarks("ts")
        if kind == "temporal":
            joined = orders.temporal_join(rates, on="cur", deleted="gone", how="left")
        else:
            joined = orders.asof_join(rates, on="cur", how="left")
        return joined.to_table().sort_by("id")["rate"].to_pylist()

    assert run("temporal") == [None, 1.1, None, 1.3]
    assert run("asof") == [None, 1.1, None, 1.3]  # the delete row's rate is null


def test_asof_tolerance() -> None:
    env = sb.Environment(parallelism=1)
    trades = env.from_iterable(
        [{"s": "A", "ts": 1_000, "id": 1}, {"s": "A", "ts": 5_000, "id": 2}]
    ).with_watermarks("ts")
    quotes = env.from_iterable([{"s": "A", "ts": 900, "bid": 9.5}]).with_watermarks("ts")
    out = trades.asof_join(quotes, on="s", tolerance="1s", how="left").to_table()
    assert out.sort_by("id")["bid"].to_pylist() == [9.5, None]


def test_asof_join_errors() -> None:
    env = sb.Environment(parallelism=1)
    left = env.from_iterable([{"k": 1, "ts": 1}]).with_watermarks("ts")
    right = env.from_iterable([{"k": 1, "ts": 1, "d": 3}]).with_watermarks("ts")
    with pytest.raises(ValueError, match="inner and left"):
        left.asof_join(right, on="k", how="full")
    with pytest.raises(ValueError, match="tolerance"):
        left.asof_join(right, on="k", tolerance=0)
    left.temporal_join(right, on="k", deleted="d").collect()
    with pytest.raises(sb.JobError, match=r"temporal_join#\d+: deleted column 'd' must be boolean"):
        env.execute()

    env = sb.Environment(parallelism=1)
    left = env.from_iterable([{"k": 1, "ts": 1}]).with_watermarks("ts")
    right = env.from_iterable([{"k": "x", "ts": 1}]).with_watermarks("ts")
    left.asof_join(right, on="k").collect()
    with pytest.raises(sb.JobError, match=r"asof_join#\d+: key type mismatch"):
        env.execute()
