"""Keyed state from Python (``key_by(...).process(fn)``) on both state backends,
checked against plain-Python references; deduplicate on RocksDB; and a job
whose state is several times its memory cap."""

from __future__ import annotations

import collections
import math
import random
import threading

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
import sabot as sb

BACKENDS = ["memory", "rocksdb"]


def make_env(backend: str, parallelism: int, **kwargs) -> sb.Environment:
    env = sb.Environment(parallelism=parallelism, **kwargs)
    return env.set_state_backend(backend, rocksdb_memory_bytes=8 << 20)


def random_table(seed: int, n: int = 3000, keys: int = 40) -> pa.Table:
    rng = random.Random(seed)
    return pa.table(
        {
            "k": pa.array([f"key-{rng.randrange(keys)}" for _ in range(n)]),
            "g": pa.array([rng.randrange(3) for _ in range(n)], pa.int32()),
            "v": pa.array([rng.randrange(-100, 1000) for _ in range(n)], pa.int64()),
        }
    )


class Everything(sb.state.KeyedProcessFunction):
    """Per key: row count (value), values (list), count per v % 5 (map), sum
    (reducing, built-in), max (reducing, function), mean (aggregating with and
    without merge). Emits the running values of the batch's distinct keys."""

    def open(self, ctx):
        self.count = ctx.value_state("count", pa.int64())
        self.values = ctx.list_state("values", pa.int64())
        self.buckets = ctx.map_state("buckets", pa.int64(), pa.int64())
        self.total = ctx.reducing_state("total", pa.int64(), "sum")
        self.top = ctx.reducing_state("top", pa.int64(), pc.max_element_wise)
        acc = pa.struct([("s", pa.int64()), ("n", pa.int64())])

        def add(a, v):
            s = pc.add(pc.fill_null(pc.struct_field(a, "s"), 0), v)
            n = pc.add(pc.fill_null(pc.struct_field(a, "n"), 0), 1)
            return pa.StructArray.from_arrays([s, n], names=["s", "n"])

        def merge(a, b):
            s = pc.add(pc.struct_field(a, "s"), pc.struct_field(b, "s"))
            n = pc.add(pc.struct_field(a, "n"), pc.struct_field(b, "n"))
            return pa.StructArray.from_arrays([s, n], names=["s", "n"])

        def result(a):
            return pc.divide(
                pc.cast(pc.struct_field(a, "s"), pa.float64()), pc.struct_field(a, "n")
            )

        self.mean = ctx.aggregating_state("mean", acc, add, result, merge=merge)
        self.mean_rounds = ctx.aggregating_state("mean_rounds", acc, add, result)

    def process_batch(self, batch, ctx):
        keys = ctx.keys(batch)
        v = batch.column("v")
        first, row_key = ctx.distinct_keys(keys)
        ukeys = keys.take(first)
        counts = pc.fill_null(self.count.get_many(ukeys), 0)
        added = np.bincount(row_key.to_numpy(), minlength=len(first))
        self.count.put_many(ukeys, pc.add(counts, pa.array(added)))
        self.values.add_many(keys, v)
        bucket = pc.cast(pc.abs(pc.remainder(v, 5)), pa.int64())
        # Count per (key, bucket): read the batch's pairs, add their multiplicity.
        pairs = pa.table({"k": keys, "b": bucket}).group_by(["k", "b"]).aggregate([("b", "count")])
        before = pc.fill_null(self.buckets.get_many(pairs["k"], pairs["b"]), 0)
        self.buckets.put_many(pairs["k"], pairs["b"], pc.add(before, pairs["b_count"]))
        self.total.add_many(keys, v)
        self.top.add_many(keys, v)
        self.mean.add_many(keys, v)
        self.mean_rounds.add_many(keys, v)
        lists = self.values.get_many(ukeys)
        maps = self.buckets.entries_many(ukeys)
        return pa.record_batch(
            {
                "k": ukeys,
                "count": self.count.get_many(ukeys),
                "n_values": pc.list_value_length(lists),
                "last_value": pa.array([lst[-1] for lst in lists.to_pylist()], pa.int64()),
                "buckets": pa.array(
                    [sorted(dict(m).items()) for m in maps.to_pylist()],
                    pa.list_(pa.list_(pa.int64())),
                ),
                "total": self.total.get_many(ukeys),
                "top": self.top.get_many(ukeys),
                "mean": self.mean.get_many(ukeys),
                "mean_rounds": self.mean_rounds.get_many(ukeys),
            }
        )


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("parallelism", [1, 3])
def test_every_state_kind_matches_reference(backend: str, parallelism: int) -> None:
    table = random_table(parallelism * 7 + len(backend))
    env = make_env(backend, parallelism)
    out = env.from_table(table, batch_size=97).key_by("k").process(Everything()).to_table()
    # The last output row of each key holds its final values.
    final = {}
    for row in out.to_pylist():
        final[row["k"]] = row
    by_key = collections.defaultdict(list)
    for k, v in zip(table["k"].to_pylist(), table["v"].to_pylist(), strict=True):
        by_key[k].append(v)
    assert final.keys() == by_key.keys()
    for k, vs in by_key.items():
        row = final[k]
        assert row["count"] == len(vs), k
        assert row["n_values"] == len(vs)
        assert row["last_value"] == vs[-1]
        buckets = collections.Counter(abs(int(math.fmod(v, 5))) for v in vs)  # as pc.remainder
        want_buckets = sorted(buckets.items())
        assert [tuple(b) for b in row["buckets"]] == want_buckets
        assert row["total"] == sum(vs)
        assert row["top"] == max(vs)
        assert row["mean"] == pytest.approx(sum(vs) / len(vs))
        assert row["mean_rounds"] == pytest.approx(sum(vs) / len(vs))


class RunningCount(sb.state.KeyedProcessFunction):
    """Emits (key columns..., count) with each row's running count per key."""

    def __init__(self, ttl_ms: int = 0) -> None:
        self.ttl_ms = ttl_ms

    def open(self, ctx):
        self.count = ctx.value_state("count", pa.int64(), ttl_ms=self.ttl_ms)

    def process_batch(self, batch, ctx):
        keys = ctx.keys(batch)
        first, row_key = ctx.distinct_keys(keys)
        ukeys = [a.take(first) for a in keys] if isinstance(keys, list) else keys.take(first)
        base = pc.fill_null(self.count.get_many(ukeys), 0).to_numpy()
        rk = row_key.to_numpy()
        # running count within the batch: occurrence rank + 1
        order = np.argsort(rk, kind="stable")
        counts = np.bincount(rk, minlength=len(first))
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        rank = np.empty(len(rk), dtype=np.int64)
        rank[order] = np.arange(len(rk)) - starts[rk[order]]
        self.count.put_many(ukeys, pa.array(base + counts))
        names = ctx.key_columns
        columns = {n: batch.column(n) for n in names}
        columns["count"] = pa.array(base[rk] + rank + 1)
        return pa.record_batch(columns)


@pytest.mark.parametrize("backend", BACKENDS)
def test_composite_keys_and_running_counts(backend: str) -> None:
    table = random_table(11, n=2000, keys=7)
    env = make_env(backend, 2)
    out = (
        env.from_table(table, batch_size=33)
        .key_by("k", "g")
        .process(RunningCount(), schema=None)
        .to_table()
    )
    seen = collections.Counter()
    want = set()
    for k, g in zip(table["k"].to_pylist(), table["g"].to_pylist(), strict=True):
        seen[(k, g)] += 1
        want.add((k, g, seen[(k, g)]))
    got = set(
        zip(out["k"].to_pylist(), out["g"].to_pylist(), out["count"].to_pylist(), strict=True)
    )
    assert got == want
    assert out.num_rows == table.num_rows


class TtlProbe(sb.state.KeyedProcessFunction):
    """Writes each key's value in the first batch; in the second batch, after
    waiting past the TTL, reads it again (must be gone) and writes again."""

    def __init__(self, ttl_ms: int) -> None:
        self.ttl_ms = ttl_ms
        self.batches = 0

    def open(self, ctx):
        self.v = ctx.value_state("v", pa.string(), ttl_ms=self.ttl_ms)
        self.l = ctx.list_state("l", pa.int64(), ttl_ms=self.ttl_ms)

    def process_batch(self, batch, ctx):
        self.batches += 1
        keys = ctx.keys(batch)
        before = self.v.get_many(keys)
        lists = self.l.get_many(keys)
        if self.batches == 1:
            self.v.put_many(keys, pa.array(["x"] * len(keys)))
            self.l.add_many(keys, pa.array([1] * len(keys), pa.int64()))
            # Still there right after the write.
            assert self.v.get_many(keys).to_pylist() == ["x"] * len(keys)
            threading.Event().wait(self.ttl_ms * 3 / 1000)
        return pa.record_batch(
            {
                "k": keys,
                "batch": pa.array([self.batches] * len(keys), pa.int64()),
                "before": before,
                "list_len": pc.list_value_length(lists),
            }
        )


@pytest.mark.parametrize("backend", BACKENDS)
def test_ttl_expires_values(backend: str) -> None:
    t = pa.table({"k": pa.array([1, 2, 1, 2], pa.int64())})
    env = make_env(backend, 1)
    out = env.from_table(t, batch_size=2).key_by("k").process(TtlProbe(50)).to_table()
    rows = out.to_pylist()
    assert [r["batch"] for r in rows] == [1, 1, 2, 2]
    assert [r["before"] for r in rows] == [None, None, None, None]
    assert [r["list_len"] for r in rows] == [0, 0, 0, 0]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("keep", ["first", "last"])
def test_deduplicate_on_each_backend(backend: str, keep: str) -> None:
    table = random_table(5, n=4000, keys=300)
    env = make_env(backend, 2)
    out = env.from_table(table, batch_size=128).key_by("k").deduplicate(keep=keep).to_table()
    want = {}
    for row in table.to_pylist():
        if row["k"] not in want or keep == "last":
            want[row["k"]] = row
    got = {r["k"]: r for r in sb.changelog.materialize(out, key="k").to_pylist()}
    assert got == want


def test_process_needs_key_by_and_matching_key_types() -> None:
    t = pa.table({"k": pa.array([1, 2, 3], pa.int64())})
    env = sb.Environment(parallelism=1)
    env.from_table(t).process(RunningCount()).discard()
    with pytest.raises(sb.JobError, match="key_by"):
        env.execute()

    class WrongKeys(sb.state.KeyedProcessFunction):
        def open(self, ctx):
            self.v = ctx.value_state("v", pa.int64())

        def process_batch(self, batch, ctx):
            self.v.get_many(pa.array(["not", "the", "key"]))

    env = sb.Environment(parallelism=2)
    env.from_table(t).key_by("k").process(WrongKeys()).discard()
    with pytest.raises(sb.JobError, match="WrongKeys"):
        env.execute()

    with pytest.raises(TypeError, match="process_batch"):
        env.from_table(t).key_by("k").process(lambda b: b)
    with pytest.raises(ValueError, match="rocksdb"):
        sb.Environment().set_state_backend("leveldb")


def test_state_larger_than_the_memory_cap() -> None:
    """Deduplication (keep last) over 800k distinct keys with 40-byte payloads:
    about 60 MB of state, almost four times the job's 16 MB memory cap. The
    memory backend hits the cap; RocksDB with 4 MB per instance finishes with
    the result of a pyarrow reference."""
    rows, distinct = 1_200_000, 800_000
    rng = np.random.default_rng(42)
    k = rng.integers(0, distinct, rows)
    k[:distinct] = np.arange(distinct)  # every key appears
    rng.shuffle(k)
    v = np.arange(rows, dtype=np.int64)
    payload = pc.utf8_lpad(pc.cast(pa.array(v), pa.string()), 40, "x")
    table = pa.table({"k": pa.array(k), "v": pa.array(v), "payload": payload})
    # Per key: the storage key (2 + 1 + 8 bytes) and the kept row (1 + 9 + 9 + 45).
    state_bytes = distinct * (11 + 64)
    cap = 16 << 20
    assert state_bytes > 3.5 * cap

    # Reference: the last row per key (arrival order), summed.
    want_sum = int(
        table.group_by("k", use_threads=False).aggregate([("v", "last")])["v_last"].to_numpy().sum()
    )

    def run(backend: str) -> tuple[int, int]:
        totals = {"inserts": 0, "sum": 0}
        lock = threading.Lock()

        def check(batch: pa.RecordBatch) -> pa.RecordBatch:
            op = batch.column("_op").to_numpy()
            vs = batch.column("v").to_numpy()
            sign = np.where(op == 1, -1, 1)
            with lock:
                totals["inserts"] += int((op == 0).sum())
                totals["sum"] += int((sign * vs).sum())
            return batch.slice(0, 0)

        env = sb.Environment(
            parallelism=2, memory_cap_bytes=cap, channel_max_bytes=4 << 20, channel_max_rows=32768
        )
        env.set_state_backend(backend, rocksdb_memory_bytes=4 << 20)
        (
            env.from_table(table, batch_size=16384)
            .key_by("k")
            .deduplicate(keep="last")
            .map(check)
            .discard()
        )
        env.execute()
        return totals["inserts"], totals["sum"]

    with pytest.raises(sb.JobError, match="memory cap"):
        run("memory")
    inserts, total = run("rocksdb")
    assert inserts == distinct
    assert total == want_sum


def wait_for(condition, timeout: float = 60.0) -> bool:
    """Polls ``condition`` until it holds or ``timeout`` seconds passed."""
    pause = threading.Event()
    waited = 0.0
    while not condition():
        if waited > timeout:
            return False
        pause.wait(0.01)
        waited += 0.01
    return True


@pytest.mark.parametrize(("backend", "new_parallelism"), [("rocksdb", 3), ("memory", 1)])
def test_state_survives_a_savepoint_and_a_rescale(
    tmp_path, backend: str, new_parallelism: int
) -> None:
    """A job with keyed-function state and deduplication stops with a savepoint
    part-way; the job restored from it at another parallelism continues the
    running counts and the deduplication exactly where they were."""
    table = random_table(21, n=6000, keys=50)
    table = table.append_column("t", pa.array(range(table.num_rows), pa.int64()))
    batches = table.to_batches(max_chunksize=100)
    release = threading.Event()

    def held(batch: pa.RecordBatch) -> pa.RecordBatch:
        release.wait(60)
        return batch

    def build(env: sb.Environment, parallelism: int):
        src = env.from_batches(batches, parallelism=2).map(held)
        counts = src.key_by("k").process(RunningCount()).collect()
        latest = src.key_by("k").deduplicate(keep="last", time="t").collect()
        return counts, latest

    env = sb.Environment(parallelism=2, num_threads=2, channel_max_rows=1000)
    counts1, latest1 = build(env, 2)
    handle = env.start(checkpoint_dir=tmp_path / "ckpt", state_backend=backend)
    result: dict[str, str] = {}
    taker = threading.Thread(
        target=lambda: result.update(path=handle.stop_with_savepoint(tmp_path / "sp"))
    )
    taker.start()
    assert wait_for(lambda: handle.checkpoint_stats()["in_progress_id"] > 0)
    release.set()
    taker.join(60)
    handle.wait()
    assert "path" in result

    env2 = sb.Environment(parallelism=new_parallelism, num_threads=2)
    counts2, latest2 = build(env2, new_parallelism)
    env2.execute(restore=result["path"], state_backend=backend)
    assert 0 < counts1.num_rows < table.num_rows  # the savepoint cut the input

    counts = pa.concat_tables([counts1.table(), counts2.table()])
    seen: collections.Counter = collections.Counter()
    want = []
    for k in table["k"].to_pylist():
        seen[k] += 1
        want.append((k, seen[k]))
    got = list(zip(counts["k"].to_pylist(), counts["count"].to_pylist(), strict=True))
    assert sorted(got) == sorted(want)

    changes = pa.concat_tables([latest1.table(), latest2.table()])
    final = {r["k"]: r for r in sb.changelog.materialize(changes, key="k").to_pylist()}
    # keep="last" by a unique time: the row with the greatest t of each key,
    # whatever order the two source splits interleave in.
    want_rows = {}
    for row in table.to_pylist():
        if row["k"] not in want_rows or row["t"] > want_rows[row["k"]]["t"]:
            want_rows[row["k"]] = row
    assert final == want_rows
