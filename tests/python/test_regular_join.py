"""The regular (unbounded) join, checked against a plain-Python reference: the
changelog it emits is replayed into a multiset (checking that it never retracts
a row that is not present) and compared with a nested-loop join of the final
input tables. Randomized append-only and updating inputs, in random arrival
order and batch sizes, at parallelism 1 and 4."""

from __future__ import annotations

import random
import zlib
from collections import Counter

import pyarrow as pa
import pytest
import sabot as sb

INSERT, UPDATE_BEFORE, UPDATE_AFTER, DELETE = 0, 1, 2, 3


def gen_changes(rng: random.Random, n: int, keys: int, value: str, updating: bool) -> list[dict]:
    """Random changes of one side: inserts with keys 0..keys-1 (some null, some
    duplicate rows), and with ``updating`` deletes and -U/+U pairs of rows
    inserted before. Each row carries an event time that is out of order."""
    out: list[dict] = []
    present: list[dict] = []
    serial = 0
    while len(out) < n:
        dice = rng.random()
        if updating and present and dice < 0.3:
            row = present.pop(rng.randrange(len(present)))
            if dice < 0.15:
                out.append({**row, "_op": DELETE})
            else:
                out.append({**row, "_op": UPDATE_BEFORE})
                serial += 1
                new = {**row, value: f"{value}{serial}", "ts": rng.randrange(10_000)}
                out.append({**new, "_op": UPDATE_AFTER})
                present.append(new)
            continue
        if present and dice > 0.97:
            row = dict(rng.choice(present))  # an equal row a second time
        else:
            serial += 1
            key = None if rng.random() < 0.05 else rng.randrange(keys)
            row = {"k": key, "ts": rng.randrange(10_000), value: f"{value}{serial}"}
        out.append({**row, "_op": INSERT})
        present.append(row)
    if not updating:
        for row in out:
            del row["_op"]
    return out


def final_rows(changes: list[dict], value: str) -> list[tuple]:
    """The multiset an input changelog leaves, as (k, ts, value) tuples."""
    count: Counter[tuple] = Counter()
    for c in changes:
        row = (c["k"], c["ts"], c[value])
        if c.get("_op", INSERT) in (INSERT, UPDATE_AFTER):
            count[row] += 1
        else:
            assert count[row] > 0
            count[row] -= 1
    return list(count.elements())


def reference(left: list[tuple], right: list[tuple], how: str) -> Counter:
    out: Counter[tuple] = Counter()
    right_hit = [False] * len(right)
    for lrow in left:
        hit = False
        for j, rrow in enumerate(right):
            if lrow[0] is not None and lrow[0] == rrow[0]:
                out[lrow + rrow] += 1
                hit = right_hit[j] = True
        if not hit and how in ("left", "full"):
            out[lrow + (None, None, None)] += 1
    if how in ("right", "full"):
        for j, rrow in enumerate(right):
            if not right_hit[j]:
                out[(None, None, None) + rrow] += 1
    return out


def replay(table: pa.Table) -> Counter:
    """Applies a changelog in row order; fails on a retraction of a row that is
    not present (a malformed changelog)."""
    data = table.drop_columns(["_op"]) if "_op" in table.column_names else table
    ops = table["_op"].to_pylist() if "_op" in table.column_names else [INSERT] * len(table)
    rows = list(zip(*(c.to_pylist() for c in data.columns), strict=True))
    out: Counter[tuple] = Counter()
    for op, row in zip(ops, rows, strict=True):
        if op in (INSERT, UPDATE_AFTER):
            out[row] += 1
        else:
            assert out[row] > 0, f"retraction of a row that is not present: {row}"
            out[row] -= 1
    return +out


def side_table(changes: list[dict], value: str, updating: bool) -> pa.Table:
    fields = [("k", pa.int64()), ("ts", pa.int64()), (value, pa.string())]
    if updating:
        fields.append(("_op", pa.int8()))
    return pa.Table.from_pylist(changes, schema=pa.schema(fields))


@pytest.mark.parametrize("how", ["inner", "left", "right", "full"])
@pytest.mark.parametrize("parallelism", [1, 4])
@pytest.mark.parametrize(
    ("left_updating", "right_updating"), [(False, False), (True, False), (True, True)]
)
def test_matches_reference(
    how: str, parallelism: int, left_updating: bool, right_updating: bool
) -> None:
    seed = zlib.crc32(repr((how, parallelism, left_updating, right_updating)).encode())
    rng = random.Random(seed)
    left = gen_changes(rng, 700, 30, "lv", left_updating)
    right = gen_changes(rng, 500, 30, "rv", right_updating)
    env = sb.Environment(parallelism=parallelism, num_threads=2)
    # Sources at parallelism 1 keep each input's changes in order; the join
    # runs at `parallelism` with both inputs hash-partitioned on k.
    ls = env.from_table(side_table(left, "lv", left_updating), batch_size=rng.randrange(1, 40))
    rs = env.from_table(side_table(right, "rv", right_updating), batch_size=rng.randrange(1, 40))
    out = ls.join(rs, on="k", how=how).to_table()
    updating = left_updating or right_updating or how != "inner"
    assert ("_op" in out.column_names) == updating
    assert out.column_names[:6] == ["k", "ts", "lv", "right_k", "right_ts", "rv"]
    want = reference(final_rows(left, "lv"), final_rows(right, "rv"), how)
    assert replay(out) == want


def reference_where(left, right, how, holds) -> Counter:
    """``reference`` where a pair with equal keys joins only if ``holds``."""
    out: Counter[tuple] = Counter()
    right_hit = [False] * len(right)
    for lrow in left:
        hit = False
        for j, rrow in enumerate(right):
            if lrow[0] is not None and lrow[0] == rrow[0] and holds(lrow, rrow):
                out[lrow + rrow] += 1
                hit = right_hit[j] = True
        if not hit and how in ("left", "full"):
            out[lrow + (None, None, None)] += 1
    if how in ("right", "full"):
        for j, rrow in enumerate(right):
            if not right_hit[j]:
                out[(None, None, None) + rrow] += 1
    return out


@pytest.mark.parametrize("how", ["inner", "left", "right", "full"])
@pytest.mark.parametrize("parallelism", [1, 4])
@pytest.mark.parametrize("updating", [False, True])
def test_where_condition(how: str, parallelism: int, updating: bool) -> None:
    rng = random.Random(zlib.crc32(repr((how, parallelism, updating, "where")).encode()))
    left = gen_changes(rng, 500, 15, "lv", updating)
    right = gen_changes(rng, 400, 15, "rv", updating)
    env = sb.Environment(parallelism=parallelism, num_threads=2)
    ls = env.from_table(side_table(left, "lv", updating), batch_size=rng.randrange(1, 40))
    rs = env.from_table(side_table(right, "rv", updating), batch_size=rng.randrange(1, 40))
    # A pair condition, a left-only and a right-only conjunct.
    where = (
        (sb.col("ts") < sb.col("right_ts") + 3_000)
        & (sb.col("lv") != "lv7")
        & (sb.call("utf8_length", sb.col("rv")) > 3)
    )
    out = ls.join(rs, on="k", how=how, where=where).to_table()

    def holds(lrow: tuple, rrow: tuple) -> bool:
        return lrow[1] < rrow[1] + 3_000 and lrow[2] != "lv7" and len(rrow[2]) > 3

    want = reference_where(final_rows(left, "lv"), final_rows(right, "rv"), how, holds)
    assert replay(out) == want


@pytest.mark.parametrize("how", ["inner", "left", "right", "full"])
@pytest.mark.parametrize("parallelism", [1, 4])
def test_unique_side(how: str, parallelism: int) -> None:
    """A right side with unique keys (some never arrive); left rows arrive before
    and after their partner. Same result as without the declaration."""
    rng = random.Random(zlib.crc32(repr((how, parallelism, "unique")).encode()))
    keys = [k for k in range(200) if rng.random() < 0.8]
    rng.shuffle(keys)
    right = [{"k": k, "ts": rng.randrange(10_000), "rv": f"rv{k}"} for k in keys]
    left = gen_changes(rng, 1500, 220, "lv", False)
    env = sb.Environment(parallelism=parallelism, num_threads=2)
    ls = env.from_table(side_table(left, "lv", False), batch_size=rng.randrange(1, 64))
    rs = env.from_table(side_table(right, "rv", False), batch_size=rng.randrange(1, 8))
    where = sb.col("ts") > sb.col("right_ts")
    out = ls.join(rs, on="k", how=how, where=where, unique="right").to_table()
    want = reference_where(
        final_rows(left, "lv"),
        final_rows(right, "rv"),
        how,
        lambda lrow, rrow: lrow[1] > rrow[1],
    )
    assert replay(out) == want


def test_unique_side_rejects_a_repeated_key() -> None:
    env = sb.Environment(parallelism=1)
    a = env.from_iterable([{"k": 1}])
    b = env.from_iterable([{"k": 1, "v": 1}, {"k": 1, "v": 2}])
    a.join(b, on="k", unique="right").collect()
    with pytest.raises(sb.JobError, match="declared unique"):
        env.execute()


def test_keys_named_differently_and_ttl_within_bounds() -> None:
    env = sb.Environment(parallelism=2)
    orders = env.from_iterable([{"cust": i % 5, "order": i} for i in range(20)])
    customers = env.from_iterable([{"id": c, "name": f"c{c}"} for c in range(4)])
    out = orders.join(customers, on=("cust", "id"), how="left", state_ttl="1h").to_table()
    final = replay(out)
    want = Counter(
        (i % 5, i, i % 5 if i % 5 < 4 else None, f"c{i % 5}" if i % 5 < 4 else None)
        for i in range(20)
    )
    assert final == want


def test_updating_input_from_an_aggregation() -> None:
    """Joins the changelog of a group-by (its -U/+U pairs retract earlier
    results) with a table of names."""
    rng = random.Random(3)
    events = [{"k": rng.randrange(8), "v": rng.randrange(100)} for _ in range(500)]
    env = sb.Environment(parallelism=4, num_threads=2)
    totals = (
        env.from_table(pa.Table.from_pylist(events), batch_size=7)
        .key_by("k")
        .aggregate(total=sb.sum("v"))
    )
    names = env.from_iterable([{"k": k, "name": f"n{k}"} for k in range(0, 8, 2)])
    out = totals.join(names, on="k", how="full").to_table()
    sums: Counter[int] = Counter()
    for e in events:
        sums[e["k"]] += e["v"]
    want: Counter[tuple] = Counter()
    for k in range(8):
        want[(k, sums[k], k if k % 2 == 0 else None, f"n{k}" if k % 2 == 0 else None)] += 1
    assert replay(out) == want
    # The padded row of an odd key never appears while its aggregate changes:
    # only ever one row per key at a time.
    assert max(replay(out[: i + 1]).total() for i in range(0, out.num_rows, 50)) <= 8


def test_outer_row_is_retracted_when_a_partner_arrives() -> None:
    env = sb.Environment(parallelism=1)
    left = env.from_iterable([{"k": 1, "a": "x"}])
    right = env.from_iterable(iter_after_left([{"k": 1, "b": "y"}]))
    out = left.join(right, on="k", how="left").to_table()
    ops = out["_op"].to_pylist()
    b = out["b"].to_pylist()
    # Either the right row came first (one +I) or the padded row is retracted.
    assert (ops, b) in (([INSERT], ["y"]), ([INSERT, DELETE, INSERT], [None, None, "y"]))
    assert replay(out) == Counter({(1, "x", 1, "y"): 1})


def iter_after_left(rows: list[dict]):
    import threading

    threading.Event().wait(0.2)
    yield from rows


def test_errors() -> None:
    env = sb.Environment(parallelism=1)
    a = env.from_iterable([{"k": 1}])
    b = env.from_iterable([{"k": "1"}])
    with pytest.raises(ValueError, match="how="):
        a.join(b, on="k", how="outer-ish")
    with pytest.raises(ValueError, match="on="):
        a.join(b, on=(["k", "j"], ["k"]))
    with pytest.raises(ValueError, match="unique="):
        a.join(b, on="k", unique="yes")
    a.join(b, on="k").collect()
    with pytest.raises(sb.JobError, match="key type mismatch"):
        env.execute()
