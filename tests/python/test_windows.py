"""Windows checked against an independent plain-Python reference: randomized,
out-of-order input, parallelism 1 and 4, different batch sizes and shuffled batch
boundaries; late data, allowed lateness, triggers and bad timestamps."""

from __future__ import annotations

import random
from builtins import max as builtins_max

import pyarrow as pa
import pytest
import sabot as sb
from window_reference import close, sessions, time_windows

AGGS = {
    "n": ("count", None),
    "total": ("sum", "v"),
    "lo": ("min", "v"),
    "hi": ("max", "v"),
    "avg": ("mean", "v"),
    "distinct": ("count_distinct", "v"),
    "var": ("var_samp", "v"),
}
BUILD = {
    "count": lambda c: sb.count(),
    "sum": sb.sum,
    "min": sb.min,
    "max": sb.max,
    "mean": sb.mean,
    "count_distinct": sb.count_distinct,
    "var_samp": sb.var,
}


def random_rows(seed: int, n: int = 6000, keys: int = 7, disorder: int = 3000) -> list[dict]:
    """Rows in arrival order: time grows by ~10 ms per row with up to `disorder`
    ms of jitter (out of order, but within the watermark bound used below)."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        ts = 1_000_000 + i * 10 + rng.randrange(disorder)
        rows.append({"k": rng.randrange(keys), "ts": ts, "v": rng.randrange(-50, 1000)})
    return rows


def run_windows(rows, window, parallelism, batch_sizes, keyed=True, **window_kwargs) -> pa.Table:
    env = sb.Environment(parallelism=parallelism, num_threads=2)
    schema = pa.schema([("k", pa.int64()), ("ts", pa.int64()), ("v", pa.int64())])
    batches, i, b = [], 0, 0
    while i < len(rows):
        size = batch_sizes[b % len(batch_sizes)]
        batches.append(pa.RecordBatch.from_pylist(rows[i : i + size], schema=schema))
        i += size
        b += 1
    s = env.from_batches(batches, schema=schema).with_watermarks("ts", max_out_of_orderness=4000)
    if keyed:
        s = s.key_by("k")
    aggs = {name: BUILD[fn](col) for name, (fn, col) in AGGS.items()}
    out = s.window(window, **window_kwargs).agg(**aggs).collect()
    env.execute()
    return out.table()


def as_dict(table: pa.Table, keyed: bool = True) -> dict[tuple, dict]:
    out = {}
    for r in table.to_pylist():
        start = int(r["window_start"].timestamp() * 1000)
        end = int(r["window_end"].timestamp() * 1000)
        key = (r["k"] if keyed else None, start, end)
        assert key not in out, f"window emitted twice: {key}"
        out[key] = {name: r[name] for name in AGGS}
    return out


def assert_same(got: dict, want: dict) -> None:
    assert set(got) == set(want), (sorted(set(got) ^ set(want))[:5], len(got), len(want))
    for g, w in want.items():
        for name in AGGS:
            assert close(got[g][name], w[name]), (g, name, got[g][name], w[name])


def reference(rows, kind, params, keyed=True):
    fns = {name: ("count" if fn == "count" else fn) for name, (fn, _) in AGGS.items()}
    return time_windows(rows, "k" if keyed else None, "ts", "v", kind, params, fns)


CASES = [
    (sb.tumbling("5s"), "tumbling", {"size_ms": 5000}),
    (sb.hopping("6s", "2s"), "hopping", {"size_ms": 6000, "slide_ms": 2000}),
    (sb.hopping("5s", "2s"), "hopping", {"size_ms": 5000, "slide_ms": 2000}),  # gcd panes
    (sb.cumulate("8s", "2s"), "cumulate", {"size_ms": 8000, "slide_ms": 2000}),
]


@pytest.mark.parametrize(
    ("window", "kind", "params"), CASES, ids=[c[1] + str(i) for i, c in enumerate(CASES)]
)
@pytest.mark.parametrize("parallelism", [1, 4])
@pytest.mark.parametrize("seed", [1, 2])
def test_time_windows_match_reference(window, kind, params, parallelism, seed) -> None:
    rows = random_rows(seed)
    rng = random.Random(seed * 31)
    sizes = [rng.choice([1, 7, 100, 513, 2048]) for _ in range(20)]  # shuffled boundaries
    got = as_dict(run_windows(rows, window, parallelism, sizes))
    assert_same(got, reference(rows, kind, params))


def test_results_identical_across_batch_sizes_and_parallelism() -> None:
    rows = random_rows(5)
    runs = [
        run_windows(rows, sb.hopping("4s", "1s"), p, sizes)
        for p, sizes in [(1, [10_000]), (4, [3]), (2, [97, 1, 500]), (4, [4096, 17])]
    ]
    first = as_dict(runs[0])
    for other in runs[1:]:
        assert_same(as_dict(other), first)


@pytest.mark.parametrize("parallelism", [1, 4])
def test_global_aggregate_without_keys(parallelism: int) -> None:
    rows = random_rows(9)
    got = as_dict(
        run_windows(rows, sb.tumbling("3s"), parallelism, [250], keyed=False), keyed=False
    )
    assert_same(got, reference(rows, "tumbling", {"size_ms": 3000}, keyed=False))


@pytest.mark.parametrize("parallelism", [1, 4])
def test_session_windows(parallelism: int) -> None:
    rng = random.Random(3)
    rows, t = [], 5_000_000
    for _ in range(3000):
        t += rng.choice([5, 20, 50, 900, 2500])  # bursts with gaps
        rows.append({"k": rng.randrange(5), "ts": t + rng.randrange(300), "v": rng.randrange(100)})
    env = sb.Environment(parallelism=parallelism, num_threads=2)
    s = env.from_iterable(rows, batch_size=111).with_watermarks("ts", max_out_of_orderness=1000)
    out = s.key_by("k").window(sb.session("1s")).agg(n=sb.count(), total=sb.sum("v")).collect()
    env.execute()
    got = {
        (
            r["k"],
            int(r["window_start"].timestamp() * 1000),
            int(r["window_end"].timestamp() * 1000),
        ): (
            r["n"],
            r["total"],
        )
        for r in out.table().to_pylist()
    }
    want = {
        g: (a["n"], a["total"])
        for g, a in sessions(rows, "k", "ts", "v", 1000, {"n": "count", "total": "sum"}).items()
    }
    assert got == want


@pytest.mark.parametrize("parallelism", [1, 4])
def test_count_windows_tumbling_and_sliding(parallelism: int) -> None:
    rng = random.Random(4)
    rows = [{"k": rng.randrange(4), "ts": 1000 + i, "v": rng.randrange(100)} for i in range(2000)]
    for size, slide in [(10, None), (10, 5)]:
        env = sb.Environment(parallelism=parallelism, num_threads=2)
        s = env.from_iterable(rows, batch_size=64)
        out = (
            s.key_by("k")
            .window(sb.count_window(size, slide), time="ts")
            .agg(total=sb.sum("v"), n=sb.count(), items=sb.collect_list("v"))
            .collect()
        )
        env.execute()
        got = sorted((r["k"], r["items"], r["total"], r["n"]) for r in out.table().to_pylist())
        want = []
        for k in range(4):
            vals = [r["v"] for r in rows if r["k"] == k]
            step = slide or size
            for end in range(step, len(vals) + 1, step):
                window = vals[max(0, end - size) : end]
                want.append((k, window, sum(window), len(window)))
        assert got == sorted(want)


def test_global_window_with_count_trigger_emits_updates() -> None:
    rows = [{"k": i % 2, "v": i} for i in range(20)]
    env = sb.Environment(parallelism=1)
    out = (
        env.from_iterable(rows, batch_size=3)
        .key_by("k")
        .window(sb.global_window(), every_rows=4)
        .agg(total=sb.sum("v"))
        .collect()
    )
    env.execute()
    got = [(r["k"], r["total"], r["emit_kind"]) for r in out.table().to_pylist()]
    evens = [i for i in range(20) if i % 2 == 0]
    want_k0 = [sum(evens[:4]), sum(evens[:8]), sum(evens)]  # every 4 rows, then final at end
    assert [t for k, t, _ in got if k == 0] == want_k0
    assert {e for _, _, e in got} <= {"update", "final"}


def test_late_rows_go_to_side_output_and_lateness_updates() -> None:
    # One source split, watermark = max - 0 - 1 after each batch: a deterministic
    # sequence whose late rows the test can name.
    batches = [
        [{"k": 1, "ts": 1000, "v": 1}, {"k": 1, "ts": 9000, "v": 2}],  # wm 8999
        [{"k": 1, "ts": 12000, "v": 3}],  # wm 11999: fires [0, 10000)
        [{"k": 1, "ts": 9500, "v": 4}],  # window [0,10000) fired, within lateness 5s: late update
        [{"k": 1, "ts": 20000, "v": 5}],  # wm 19999: purges [0, 10000) (9999 + 5000 <= 19999)
        [{"k": 1, "ts": 3000, "v": 6}],  # too late: side output
    ]
    env = sb.Environment(parallelism=1)
    schema = pa.schema([("k", pa.int64()), ("ts", pa.int64()), ("v", pa.int64())])
    s = env.from_batches([pa.RecordBatch.from_pylist(b, schema=schema) for b in batches])
    w = (
        s.with_watermarks("ts")
        .key_by("k")
        .window(sb.tumbling("10s"), allowed_lateness="5s")
        .agg(total=sb.sum("v"))
    )
    main = w.collect()
    late = w.late().collect()
    env.execute()
    got = [
        (int(r["window_start"].timestamp()), r["total"], r["emit_kind"])
        for r in main.table().to_pylist()
    ]
    assert got == [(0, 3, "on_time"), (0, 7, "late"), (10, 3, "on_time"), (20, 5, "on_time")]
    assert late.table().to_pylist() == [{"k": 1, "ts": 3000, "v": 6}]


def test_late_rows_without_consumer_are_counted() -> None:
    batches = [[{"ts": 50_000, "v": 1}], [{"ts": 1_000, "v": 2}]]
    env = sb.Environment(parallelism=1)
    schema = pa.schema([("ts", pa.int64()), ("v", pa.int64())])
    s = env.from_batches([pa.RecordBatch.from_pylist(b, schema=schema) for b in batches])
    s.with_watermarks("ts").window(sb.tumbling("10s")).agg(n=sb.count()).discard()
    result = env.execute()
    assert result.operator("window_aggregate")["side_rows_unconsumed"] == 1
    assert "nobody consumes" in result.report()


def test_early_firing_marks_updates() -> None:
    rows = [{"ts": 1000 + i, "v": 1} for i in range(100)]
    env = sb.Environment(parallelism=1)
    out = (
        env.from_iterable(rows, batch_size=10)
        .with_watermarks("ts")
        .window(sb.tumbling("1h"), early_every_rows=30)
        .agg(n=sb.count())
        .collect()
    )
    env.execute()
    t = out.table().to_pylist()
    assert [r["emit_kind"] for r in t][-1] == "on_time" and t[-1]["n"] == 100
    assert all(r["emit_kind"] == "early" for r in t[:-1]) and len(t) >= 3
    assert [r["n"] for r in t] == sorted(r["n"] for r in t)


def test_bad_timestamps_go_to_invalid_time_side_output() -> None:
    rows = [
        {"ts": 1000, "v": 1},
        {"ts": None, "v": 2},
        {"ts": 99_999_999_999_999, "v": 3},  # year 5138
        {"ts": -5, "v": 4},
        {"ts": 2000, "v": 5},
    ]
    env = sb.Environment(parallelism=1)
    s = env.from_iterable(rows, schema=pa.schema([("ts", pa.int64()), ("v", pa.int64())]))
    timed = s.with_watermarks("ts")
    bad = timed.invalid_time().collect()
    out = timed.window(sb.tumbling("10s")).agg(total=sb.sum("v")).collect()
    env.execute()
    assert out.table()["total"].to_pylist() == [6]
    errors = bad.table().to_pylist()
    assert [r["v"] for r in errors] == [2, 3, 4]
    assert "null event time" in errors[0]["error"] and "outside" in errors[1]["error"]


def test_timestamp_column_and_units() -> None:
    ts = pa.array([1_000_000, 2_500_000, 11_000_000], pa.timestamp("us", tz="UTC"))
    table = pa.table({"t": ts, "v": [1, 2, 3]})
    env = sb.Environment(parallelism=1)
    out = (
        env.from_table(table)
        .with_watermarks("t")
        .window(sb.tumbling("10s"))
        .agg(s=sb.sum("v"))
        .collect()
    )
    env.execute()
    assert out.table()["s"].to_pylist() == [3, 3]


def test_idle_split_does_not_stall_watermark() -> None:
    # Split 1 produces a few rows then nothing (an idle partition); without idle
    # detection its watermark would hold back every window until end of input.
    import threading

    fired_before_end = threading.Event()
    first = [{"ts": 1000, "v": 1}]

    def busy():
        t = 1000
        for _ in range(400):
            t += 100
            yield {"ts": t, "v": 1}

    env = sb.Environment(parallelism=1, num_threads=2)
    quiet = env.from_iterable(iter(first)).with_watermarks("ts", idle_timeout="50ms")
    active = env.from_iterable(busy(), batch_size=20).with_watermarks("ts", idle_timeout="50ms")

    def mark(batch: pa.RecordBatch) -> pa.RecordBatch:
        fired_before_end.set()
        return batch

    out = quiet.union(active).window(sb.tumbling("5s")).agg(n=sb.count()).map(mark).collect()
    env.execute()
    assert out.table()["n"].to_pylist()[0] >= 1
    assert fired_before_end.is_set()


def test_processing_time_window() -> None:
    env = sb.Environment(parallelism=1)
    rows = [{"user": f"u{i % 3}"} for i in range(300)]
    out = (
        env.from_iterable(rows, batch_size=50)
        .key_by("user")
        .window(sb.tumbling("1h"), processing_time=True)
        .agg(n=sb.count())
        .collect()
    )
    env.execute()
    got = {r["user"]: r["n"] for r in out.table().to_pylist()}
    assert got == {"u0": 100, "u1": 100, "u2": 100}


def test_python_udaf_and_first_last_collect() -> None:
    import pyarrow.compute as pc

    def spread(lists: pa.ListArray) -> pa.Array:
        # Vectorized over all groups of a firing: max - min per list.
        flat = pc.list_flatten(lists)
        parents = pc.list_parent_indices(lists)
        t = (
            pa.table({"p": parents, "x": flat})
            .group_by("p")
            .aggregate([("x", "max"), ("x", "min")])
        )
        t = t.sort_by("p")
        return pc.subtract(t["x_max"], t["x_min"]).combine_chunks()

    rows = [{"k": i % 2, "ts": i * 100, "v": (i * 37) % 101} for i in range(200)]
    env = sb.Environment(parallelism=2)
    out = (
        env.from_iterable(rows, batch_size=33)
        .with_watermarks("ts")
        .key_by("k")
        .window(sb.tumbling("5s"))
        .agg(
            spread=sb.udaf(spread, "v"),
            f=sb.first("v"),
            last=sb.last("v"),
            all=sb.collect_list("v"),
            sd=sb.stddev("v"),
        )
        .collect()
    )
    env.execute()
    for r in out.table().to_pylist():
        start = int(r["window_start"].timestamp() * 1000)
        vals = [x["v"] for x in rows if x["k"] == r["k"] and start <= x["ts"] < start + 5000]
        assert r["all"] == vals and r["f"] == vals[0] and r["last"] == vals[-1]
        assert r["spread"] == max(vals) - min(vals)


def test_window_errors_name_the_operator() -> None:
    env = sb.Environment(parallelism=1)
    rows = [{"ts": 1, "name": "x"}]
    env.from_iterable(rows).with_watermarks("ts").window(sb.tumbling("1s")).agg(
        s=sb.sum("name")
    ).discard()
    with pytest.raises(sb.JobError, match=r"window_aggregate#\d.*sum\(name\).*not numeric"):
        env.execute()
    env = sb.Environment(parallelism=1)
    env.from_iterable(rows).with_watermarks("ts").window(sb.global_window()).agg(
        n=sb.count()
    ).discard()
    with pytest.raises(sb.JobError, match="needs a trigger"):
        env.execute()
    with pytest.raises(ValueError, match="needs event time"):
        sb.Environment().from_iterable(rows).window(sb.tumbling("1s"))


@pytest.mark.parametrize("parallelism", [1, 4])
@pytest.mark.parametrize("batch", [1, 50, 400])
def test_randomized_late_data_matches_reference(parallelism: int, batch: int) -> None:
    # Disorder (up to 6 s) exceeds the watermark bound (2 s): some rows are late.
    # One source split, so the watermark after each batch is known:
    # max time so far - 2000 - 1. A row is late when its window [s, s+5s) already
    # had end - 1 <= watermark (lateness 0: fired means purged).
    rng = random.Random(batch * 7 + parallelism)
    rows = [
        {"k": rng.randrange(3), "ts": 10_000 + i * 20 + rng.randrange(6000), "v": rng.randrange(50)}
        for i in range(3000)
    ]
    wm, max_ts = None, None
    on_time, late = [], []
    for start in range(0, len(rows), batch):
        chunk = rows[start : start + batch]
        for r in chunk:
            end = (r["ts"] // 5000) * 5000 + 5000
            (late if wm is not None and end - 1 <= wm else on_time).append(r)
        max_ts = builtins_max([max_ts or 0, *[r["ts"] for r in chunk]])
        wm = max_ts - 2000 - 1
    want: dict[tuple, int] = {}
    for r in on_time:
        key = (r["k"], (r["ts"] // 5000) * 5000)
        want[key] = want.get(key, 0) + r["v"]
    env = sb.Environment(parallelism=parallelism, num_threads=2)
    schema = pa.schema([("k", pa.int64()), ("ts", pa.int64()), ("v", pa.int64())])
    batches = [
        pa.RecordBatch.from_pylist(rows[i : i + batch], schema=schema)
        for i in range(0, len(rows), batch)
    ]
    w = (
        env.from_batches(batches)
        .with_watermarks("ts", max_out_of_orderness="2s")
        .key_by("k")
        .window(sb.tumbling("5s"))
        .agg(total=sb.sum("v"))
    )
    main, side = w.collect(), w.late().collect()
    env.execute()
    got = {
        (r["k"], int(r["window_start"].timestamp() * 1000)): r["total"]
        for r in main.table().to_pylist()
    }
    assert got == want
    assert sorted(r["ts"] for r in side.table().to_pylist()) == sorted(r["ts"] for r in late)
    assert len(late) > 0


def test_custom_watermark_function() -> None:
    calls = []

    def every_second(batch: pa.RecordBatch, max_ts: int) -> int | None:
        calls.append(max_ts)
        return (max_ts // 1000) * 1000 - 1  # watermark on whole seconds only

    rows = [{"ts": t, "v": 1} for t in range(0, 5000, 100)]
    env = sb.Environment(parallelism=1)
    out = (
        env.from_iterable(rows, batch_size=7)
        .with_watermarks("ts", custom=every_second)
        .window(sb.tumbling("1s"))
        .agg(n=sb.count())
        .collect()
    )
    env.execute()
    assert out.table()["n"].to_pylist() == [10] * 5
    assert calls and calls == sorted(calls)


def test_early_firing_by_processing_time_interval() -> None:
    def slow_rows():
        import time as _time

        for i in range(30):
            if i % 10 == 0:
                _time.sleep(0.1)
            yield {"ts": 1000 + i, "v": 1}

    env = sb.Environment(parallelism=1)
    out = (
        env.from_iterable(slow_rows(), batch_size=5)
        .with_watermarks("ts")
        .window(sb.tumbling("1h"), every="30ms")
        .agg(n=sb.count())
        .collect()
    )
    env.execute()
    kinds = out.table()["emit_kind"].to_pylist()
    assert kinds[-1] == "on_time" and "early" in kinds


def test_per_split_watermarks_follow_the_slowest_split() -> None:
    # One instance reads two "partitions": p0 runs 60 s ahead of p1. With a
    # watermark per split, p1's rows are on time; with one watermark for the
    # instance they would all be late.
    rows = []
    for i in range(200):
        rows.append({"partition": 0, "ts": 60_000 + i * 100, "v": 1})
        rows.append({"partition": 1, "ts": i * 100, "v": 1})
    schema = pa.schema([("partition", pa.int32()), ("ts", pa.int64()), ("v", pa.int64())])

    def run(per_split: str | None) -> tuple[int, int]:
        env = sb.Environment(parallelism=1)
        w = (
            env.from_iterable(rows, schema=schema, batch_size=20)
            .with_watermarks("ts", max_out_of_orderness="1s", per_split=per_split)
            .window(sb.tumbling("10s"))
            .agg(n=sb.count())
        )
        main, late = w.collect(), w.late().collect()
        env.execute()
        return sum(main.table()["n"].to_pylist()), late.num_rows

    assert run("partition") == (400, 0)
    on_time, late = run(None)
    assert late > 0 and on_time + late == 400
