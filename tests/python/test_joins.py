"""Interval and window joins, checked against a plain-Python nested-loop reference
on randomized out-of-order input (within the watermark bound), at parallelism 1
and 4 and several batch sizes."""

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


def gen_side(rng: random.Random, n: int, value: str, keys: int, span: int) -> pa.Table:
    """Rows with keys 0..keys-1 (some null), timestamps spread over `span`,
    shuffled so that each row is at most BOUND ms behind the largest before it."""
    ts = sorted(rng.randrange(span) for _ in range(n))
    order = sorted(range(n), key=lambda i: ts[i] + rng.randrange(BOUND))
    k = [None if rng.random() < 0.03 else rng.randrange(keys) for _ in range(n)]
    return pa.table(
        {
            "k": pa.array([k[i] for i in order], pa.int64()),
            "ts": pa.array([ts[i] for i in order], pa.int64()),
            value: pa.array([f"{value}{i}" for i in order], pa.string()),
        }
    )


def pylist(t: pa.Table) -> list[dict]:
    return t.to_pylist()


def ref_interval(left, right, lower, upper, how):
    out = []
    matched_r = set()
    for lrow in left:
        hit = False
        for j, r in enumerate(right):
            if lrow["k"] is None or lrow["k"] != r["k"]:
                continue
            if lrow["ts"] + lower <= r["ts"] <= lrow["ts"] + upper:
                out.append((lrow["lv"], r["rv"]))
                matched_r.add(j)
                hit = True
        if not hit and how in ("left", "full"):
            out.append((lrow["lv"], None))
    if how in ("right", "full"):
        out += [(None, r["rv"]) for j, r in enumerate(right) if j not in matched_r]
    return sorted(out, key=repr)


def windows_of(ts: int, size: int, slide: int) -> list[int]:
    last = ts - ts % slide
    return list(range(last, ts - size, -slide))


def ref_window(left, right, size, slide, how):
    out = []
    starts = {s for r in left + right for s in windows_of(r["ts"], size, slide)}
    for s in starts:
        lw = [x for x in left if s <= x["ts"] < s + size]
        rw = [x for x in right if s <= x["ts"] < s + size]
        matched_r = set()
        for lrow in lw:
            hit = False
            for j, r in enumerate(rw):
                if lrow["k"] is not None and lrow["k"] == r["k"]:
                    out.append((lrow["lv"], r["rv"], s))
                    matched_r.add(j)
                    hit = True
            if not hit and how in ("left", "full"):
                out.append((lrow["lv"], None, s))
        if how in ("right", "full"):
            out += [(None, r["rv"], s) for j, r in enumerate(rw) if j not in matched_r]
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


@pytest.mark.parametrize("how", ["inner", "left", "right", "full"])
@pytest.mark.parametrize("parallelism", [1, 4])
@pytest.mark.parametrize("batch_size", [1, 7, 1000])
def test_interval_join_matches_reference(how: str, parallelism: int, batch_size: int) -> None:
    rng = random.Random(hash((how, parallelism, batch_size)) & 0xFFFF)
    n = 60 if batch_size == 1 else 300
    left = gen_side(rng, n, "lv", 8, 5_000)
    right = gen_side(rng, n, "rv", 8, 5_000)
    lower, upper = -200, 400
    env, ls, rs = streams(left, right, parallelism, batch_size)
    joined = ls.interval_join(rs, on="k", between=(lower, upper), how=how)
    late = joined.late().collect()
    out = joined.to_table()
    assert out.column_names == ["k", "ts", "lv", "right_k", "right_ts", "rv"]
    got = sorted(zip(out["lv"].to_pylist(), out["rv"].to_pylist(), strict=True), key=repr)
    assert got == ref_interval(pylist(left), pylist(right), lower, upper, how)
    assert late.table().num_rows == 0


@pytest.mark.parametrize("how", ["inner", "left", "right", "full"])
@pytest.mark.parametrize("parallelism", [1, 4])
@pytest.mark.parametrize(("size", "slide"), [(1000, 1000), (1000, 400)])
def test_window_join_matches_reference(how: str, parallelism: int, size: int, slide: int) -> None:
    rng = random.Random(hash((how, parallelism, size, slide)) & 0xFFFF)
    left = gen_side(rng, 250, "lv", 6, 6_000)
    right = gen_side(rng, 250, "rv", 6, 6_000)
    env, ls, rs = streams(left, right, parallelism, 13)
    window = sb.tumbling(size) if size == slide else sb.hopping(size, slide)
    out = ls.window_join(rs, window, on=("k", "k"), how=how).to_table()
    assert out.column_names[-2:] == ["window_start", "window_end"]
    starts = [
        None if s is None else int(s.timestamp() * 1000) for s in out["window_start"].to_pylist()
    ]
    got = sorted(zip(out["lv"].to_pylist(), out["rv"].to_pylist(), starts, strict=True), key=repr)
    assert got == ref_window(pylist(left), pylist(right), size, slide, how)


def test_interval_join_different_key_names_and_late_rows() -> None:
    env = sb.Environment(parallelism=1)
    left = env.from_iterable(
        rows_then_pause_then(
            [{"a": 1, "t": 1_000, "x": "early"}, {"a": 1, "t": 20_000, "x": "moves the watermark"}],
            {"a": 1, "t": 2_000, "x": "late"},
        ),
        batch_size=1,
    ).with_watermarks("t")
    # The right side's watermark is far ahead, so once it arrived the left one
    # alone decides which rows are late; the pause lets the (one-row) right side
    # deliver it before the late row comes.
    right = env.from_iterable([{"b": 1, "t2": 20_500, "y": "r"}]).with_watermarks(
        "t2", custom=lambda batch, max_ms: 1_000_000
    )
    joined = left.interval_join(right, on=("a", "b"), between=(0, "1s"), how="left")
    late = joined.late().collect()
    out = joined.to_table()
    assert sorted(zip(out["x"].to_pylist(), out["y"].to_pylist(), strict=True), key=repr) == [
        ("early", None),
        ("moves the watermark", "r"),
    ]
    assert late.table()["x"].to_pylist() == ["late"]
    assert late.table()["y"].to_pylist() == [None]


def test_join_errors() -> None:
    env = sb.Environment(parallelism=1)
    left = env.from_iterable([{"k": 1, "ts": 1}]).with_watermarks("ts")
    right = env.from_iterable([{"k": "x", "ts": 1}]).with_watermarks("ts")
    left.interval_join(right, on="k", between=(0, 10)).collect()
    with pytest.raises(sb.JobError, match=r"interval_join#\d+: key type mismatch.*int64.*string"):
        env.execute()

    env = sb.Environment(parallelism=1)
    left = env.from_iterable([{"k": 1, "ts": 1}]).with_watermarks("ts")
    right = env.from_iterable([{"k": 1, "ts": 1}]).with_watermarks("ts")
    left.window_join(right, sb.tumbling("1s"), on=("nope", "k")).collect()
    with pytest.raises(sb.JobError, match=r"key column 'nope' is not in the input schema"):
        env.execute()

    with pytest.raises(ValueError, match="lower bound is above"):
        left.interval_join(right, on="k", between=("10s", "-5s"))
    with pytest.raises(ValueError, match="how="):
        left.interval_join(right, on="k", between=(0, 1), how="outer-ish")
    with pytest.raises(ValueError, match="no event-time column"):
        env.from_iterable([{"k": 1}]).interval_join(right, on="k", between=(0, 1))
