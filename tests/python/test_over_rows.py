"""DataStream.over_rows (a native ROWS OVER aggregate over an updating stream)
against plain-Python references: straight at parallelism 1 and 2, with a
savepoint in the middle restored at another parallelism, and bad input."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pytest
import sabot as sb
from sabot import changelog
from test_restore_golden import RESCALINGS, Gate, check_restore

PRECEDING = 3
TOP = 6


def table(seed: int = 7, n: int = 3000, keys: int = 11) -> pa.Table:
    rng = random.Random(seed)
    return pa.table(
        {
            "k": [rng.randrange(keys) for _ in range(n)],
            "v": [rng.randrange(-50, 100) for _ in range(n)],
            "ts": [rng.randrange(500) for _ in range(n)],  # ties broken by id
            "id": list(range(n)),
        }
    )


def build_stream(s: sb.DataStream) -> sb.DataStream:
    # An updating input: the TOP rows of each key by v (+I entering, -D leaving).
    top = s.key_by("k").top_n(TOP, "v", descending=True)
    frame = top.key_by("k").over_rows(preceding=PRECEDING, order_by="ts", row_key="id")
    return frame.agg(avg=sb.mean("v"), total=sb.sum("v"), n=sb.count(), hi=sb.max("v"))


def reference(t: pa.Table) -> Counter:
    """The final rows: per key the TOP rows by v (ties: the earlier row), ordered
    by (ts, id); each row's frame is itself and the PRECEDING rows before it."""
    by_key: dict[int, list[dict]] = {}
    for r in t.to_pylist():
        by_key.setdefault(r["k"], []).append(r)
    out: Counter = Counter()
    for k, rows in by_key.items():
        top = sorted(rows, key=lambda r: (-r["v"], r["id"]))[:TOP]
        ordered = sorted(top, key=lambda r: (r["ts"], r["id"]))
        for i, r in enumerate(ordered):
            frame = [x["v"] for x in ordered[max(0, i - PRECEDING) : i + 1]]
            total = sum(frame)
            out[(k, r["id"], total // len(frame), total, len(frame), max(frame))] += 1
    return out


def check_changelog(changes: pa.Table) -> None:
    """Every -U/-D retracts the row last emitted for its (k, id)."""
    last: dict[tuple, tuple] = {}
    for row in changes.to_pylist():
        key = (row["k"], row["id"])
        value = (row["avg"], row["total"], row["n"], row["hi"])
        if row["_op"] in (1, 3):
            assert last.pop(key) == value
        else:
            assert key not in last
            last[key] = value


def final_rows(changes: pa.Table) -> Counter:
    final = changelog.materialize(changes, key=["k", "id"])
    cols = ["k", "id", "avg", "total", "n", "hi"]
    return Counter(tuple(r[c] for c in cols) for r in final.to_pylist())


@pytest.mark.parametrize("parallelism", [1, 2])
def test_over_rows_matches_reference(parallelism: int) -> None:
    t = table()
    env = sb.Environment(parallelism=parallelism, num_threads=2)
    changes = build_stream(env.from_batches(t.to_batches(max_chunksize=64))).to_table()
    assert changes.column_names == ["k", "id", "avg", "total", "n", "hi", "_op"]
    assert changes.schema.field("avg").type == pa.int64()
    check_changelog(changes)
    assert final_rows(changes) == reference(t)
    assert set(changes["_op"].to_pylist()) == {0, 1, 2, 3}


def test_over_rows_on_insert_only_stream_with_float_mean() -> None:
    t = pa.table(
        {
            "k": [1, 1, 1, 2, 1],
            "id": [1, 2, 3, 4, 5],
            "ts": [5, 1, 3, 1, 9],
            "x": [1.0, 2.0, 4.0, 8.0, 16.0],
        }
    )
    env = sb.Environment(parallelism=1)
    out = (
        env.from_table(t)
        .key_by("k")
        .over_rows(preceding=1, order_by="ts", row_key="id")
        .agg(m=sb.mean("x"))
        .to_table()
    )
    final = changelog.materialize(out, key=["k", "id"])
    got = {(r["k"], r["id"]): r["m"] for r in final.to_pylist()}
    # k=1 in ts order: id2 (2.0), id3 (4.0), id1 (1.0), id5 (16.0)
    assert got == {(1, 2): 2.0, (1, 3): 3.0, (1, 1): 2.5, (1, 5): 8.5, (2, 4): 8.0}


@pytest.mark.parametrize(("p1", "p2"), RESCALINGS)
def test_over_rows_restore_at_another_parallelism(p1: int, p2: int, tmp_path: Path) -> None:
    t = table(seed=11)

    def build(env: sb.Environment, gates: list[Gate]) -> list[sb.Collected]:
        s = gates[0].hold(env.from_batches(t.to_batches(max_chunksize=40)))
        return [build_stream(s).collect()]

    straight = check_restore(build, p1, p2, tmp_path)
    assert final_rows(straight[0]) == reference(t)


def test_over_rows_null_order_value_names_operator_and_column() -> None:
    t = pa.table({"k": [1, 1], "id": [1, 2], "ts": [1, None], "v": [1, 2]})
    env = sb.Environment(parallelism=1)
    frame = env.from_table(t).key_by("k").over_rows(preceding=2, order_by="ts", row_key="id")
    with pytest.raises(sb.JobError, match=r"over_rows#\d+.*'ts'"):
        frame.agg(avg=sb.mean("v")).to_table()


def test_over_rows_bad_options() -> None:
    env = sb.Environment(parallelism=1)
    s = env.from_table(pa.table({"k": [1], "id": [1], "ts": [1], "v": [1]})).key_by("k")
    with pytest.raises(ValueError, match="preceding"):
        s.over_rows(preceding=-1, order_by="ts", row_key="id")
    with pytest.raises(ValueError, match="aggregate"):
        s.over_rows(preceding=1, order_by="ts", row_key="id").agg()
