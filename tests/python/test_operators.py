"""Every operator checked against the same computation done directly with pyarrow,
at parallelism 1 and 4 and with different batch sizes."""

from __future__ import annotations

import threading

import pyarrow as pa
import pyarrow.compute as pc
import pytest
import sabot as sb
from conftest import make_table, rows
from hypothesis import given, settings
from hypothesis import strategies as st

PARALLELISM = [1, 4]


def run(build, table: pa.Table, parallelism: int, batch_size: int = 1000) -> pa.Table:
    env = sb.Environment(parallelism=parallelism, num_threads=2)
    source = env.from_table(table, batch_size=batch_size, parallelism=min(parallelism, 2))
    out = build(source).collect()
    env.execute()
    return out.table()


@pytest.mark.parametrize("p", PARALLELISM)
def test_filter(table: pa.Table, p: int) -> None:
    got = run(lambda s: s.filter((sb.col("price") > 500) & (sb.col("key") != 3)), table, p)
    want = table.filter(pc.and_(pc.greater(table["price"], 500), pc.not_equal(table["key"], 3)))
    assert rows(got) == rows(want)


@pytest.mark.parametrize("p", PARALLELISM)
def test_select_computed(table: pa.Table, p: int) -> None:
    got = run(lambda s: s.select("id", eur=sb.col("price") * 0.908, k2=sb.col("key") + 1), table, p)
    want = pa.table(
        {
            "id": table["id"],
            "eur": pc.multiply(table["price"], 0.908),
            "k2": pc.add(table["key"], 1),
        }
    )
    assert got.schema.names == ["id", "eur", "k2"]
    assert rows(got) == rows(want)


@pytest.mark.parametrize("p", PARALLELISM)
def test_python_map(table: pa.Table, p: int) -> None:
    def double(batch: pa.RecordBatch) -> pa.RecordBatch:
        return batch.set_column(2, "price", pc.multiply(batch.column(2), 2))

    got = run(lambda s: s.map(double), table, p)
    want = table.set_column(2, "price", pc.multiply(table["price"], 2))
    assert rows(got) == rows(want)


@pytest.mark.parametrize("p", PARALLELISM)
def test_python_flat_map(table: pa.Table, p: int) -> None:
    def split(batch: pa.RecordBatch) -> list[pa.RecordBatch]:
        mask = pc.less(batch.column(1), 25)
        return [batch.filter(mask), batch.filter(pc.invert(mask)), batch.slice(0, 1)]

    got = run(lambda s: s.flat_map(split), table, p)
    firsts = [b.slice(0, 1) for b in table.to_batches(max_chunksize=1000)]
    want = pa.concat_tables([table, pa.Table.from_batches(firsts)])
    assert rows(got) == rows(want)


@pytest.mark.parametrize("p", PARALLELISM)
def test_key_by_keeps_every_row_and_groups_keys(table: pa.Table, p: int) -> None:
    got = run(lambda s: s.key_by("key").select("id", "key", "price", "name"), table, p)
    assert rows(got) == rows(table)


def test_key_by_routes_each_key_to_one_instance(table: pa.Table) -> None:
    # After key_by, a keyed map at parallelism 4 sees disjoint key sets: every
    # batch it receives holds keys of one instance only, so the union of the
    # per-batch key sets must partition the keys.
    env = sb.Environment(parallelism=4, num_threads=2)
    batches_keys: list[frozenset[int]] = []

    def record(batch: pa.RecordBatch) -> pa.RecordBatch:
        batches_keys.append(frozenset(batch.column(1).to_pylist()))
        return batch

    out = env.from_table(table, batch_size=500, parallelism=2).key_by("key").map(record).collect()
    env.execute()
    assert out.num_rows == table.num_rows
    # Group batches into instances by key overlap: with hashing, two batches that
    # share a key must come from the same instance, so the overlap classes number
    # at most 4 (the parallelism).
    classes: list[set[int]] = []
    for keys in batches_keys:
        merged = [c for c in classes if c & keys]
        new = set(keys)
        for c in merged:
            new |= c
            classes.remove(c)
        classes.append(new)
    assert 1 <= len(classes) <= 4
    assert set().union(*classes) == set(table["key"].to_pylist())


@pytest.mark.parametrize("p", PARALLELISM)
def test_rebalance_and_union(table: pa.Table, p: int) -> None:
    env = sb.Environment(parallelism=p, num_threads=2)
    a = env.from_table(table.slice(0, 4000), batch_size=700)
    b = env.from_table(table.slice(4000), batch_size=300).rebalance()
    out = a.union(b).filter(sb.col("key") < 10).collect()
    env.execute()
    want = table.filter(pc.less(table["key"], 10))
    assert rows(out.table()) == rows(want)


def test_parallelism_1_and_4_agree(table: pa.Table) -> None:
    def build(s: sb.DataStream) -> sb.DataStream:
        return (
            s.filter(sb.col("price") < 700).key_by("key").select("key", "name", p=sb.col("price"))
        )

    assert rows(run(build, table, 1)) == rows(run(build, table, 4))


@settings(max_examples=15, deadline=None)
@given(batch_size=st.integers(min_value=1, max_value=3000), p=st.sampled_from([1, 2, 4]))
def test_results_do_not_depend_on_batch_size(batch_size: int, p: int) -> None:
    table = make_table(2000, seed=11)

    def build(s: sb.DataStream) -> sb.DataStream:
        return s.filter(sb.col("key") > 20).select("id", x=sb.col("price") + sb.col("key"))

    got = run(build, table, p, batch_size=batch_size)
    f = table.filter(pc.greater(table["key"], 20))
    want = pa.table({"id": f["id"], "x": pc.add(f["price"], f["key"])})
    assert rows(got) == rows(want)


def test_from_iterable_of_dicts() -> None:
    data = [{"user": f"u{i % 7}", "amount": i} for i in range(10_003)]
    env = sb.Environment(parallelism=2, num_threads=2)
    out = env.from_iterable(iter(data), batch_size=1000).filter(sb.col("amount") >= 5000).collect()
    env.execute()
    got = out.table()
    want = [d for d in data if d["amount"] >= 5000]
    assert sorted(got.to_pylist(), key=lambda r: r["amount"]) == want


def test_from_batches_and_to_table(table: pa.Table) -> None:
    env = sb.Environment(parallelism=2, num_threads=2)
    got = env.from_batches(table.to_batches(max_chunksize=999), parallelism=2).to_table()
    assert rows(got) == rows(table)


def test_metrics_available_while_running_and_at_end() -> None:
    env = sb.Environment(parallelism=2, num_threads=2)
    sb.nexmark.bids(env, events=300_000, parallelism=2, rate_limit=200_000).filter(
        sb.col("price") > 1000
    ).discard()
    handle = env.start()
    live = handle.metrics()
    assert {"operators", "tasks", "memory"} <= set(live)
    result = handle.wait()
    src = result.operator("nexmark_source")
    flt = result.operator("filter")
    assert src["rows_out"] == flt["rows_in"] > 0
    assert flt["rows_out"] <= flt["rows_in"]
    assert all(t["state"] == "finished" for t in result.metrics["tasks"])
    assert result.metrics["memory"]["peak_bytes"] > 0
    assert "operator" in result.report()


def test_unbounded_job_runs_until_cancelled() -> None:
    env = sb.Environment(parallelism=2, num_threads=2)
    sb.nexmark.bids(env, events=0, parallelism=2, rate_limit=50_000).discard()
    handle = env.start()
    seen = 0
    for _ in range(2000):  # bounded wait: until rows flow, at most ~20 s
        seen = handle.metrics()["operators"][0]["rows_out"]
        if seen > 0 or handle.done():
            break
        threading.Event().wait(0.01)
    assert seen > 0 and not handle.done()
    handle.cancel()
    result = handle.wait()
    assert all(t["state"] == "finished" for t in result.metrics["tasks"])


def test_dropping_a_running_job_cancels_it_without_hanging() -> None:
    import gc

    def slow(batch: pa.RecordBatch) -> pa.RecordBatch:
        threading.Event().wait(0.005)  # a Python UDF that holds the GIL per batch
        return batch

    env = sb.Environment(parallelism=1, num_threads=1)
    sb.nexmark.bids(env, events=0, rate_limit=100_000).map(slow).discard()
    handle = env.start()
    for _ in range(500):
        if handle.metrics()["operators"][0]["rows_out"] > 0:
            break
        threading.Event().wait(0.01)
    del handle
    env._handle = None
    del env
    gc.collect()  # destroys the native job: cancels, joins the workers
