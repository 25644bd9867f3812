"""The lookup join against the repo's real PostgreSQL server (``make postgres-up``).

References are plain Python: the rows loaded into PostgreSQL are kept as dicts
and joined in Python. Skipped when no server is reachable, unless
SABOT_REQUIRE_POSTGRES=1 (``make test`` sets it).
"""

from __future__ import annotations

import datetime as dt
import decimal
import random
import shutil
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pyarrow as pa
import pytest
import sabot as sb

PSQL = Path("/usr/lib/postgresql/15/bin/psql")


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


@pytest.fixture
def customers(postgres_dsn: str):
    """A customers table (id -> name, tier, score) and its rows as a dict."""
    rng = random.Random(4)
    ids = [i for i in range(2_000) if i % 9 != 0]  # gaps: keys without a row
    rows = {i: {"name": f"cust-{i}", "tier": rng.randrange(4), "score": rng.random()} for i in ids}
    name = unique("customers")
    table = pa.table(
        {
            "id": pa.array(ids, pa.int64()),
            "name": [rows[i]["name"] for i in ids],
            "tier": pa.array([rows[i]["tier"] for i in ids], pa.int32()),
            "score": [rows[i]["score"] for i in ids],
        }
    )
    assert sb.lookup.postgres_load(name, table, primary_key="id", dsn=postgres_dsn) == len(ids)
    yield name, rows
    sb.lookup.postgres_execute(f'DROP TABLE IF EXISTS "{name}"', dsn=postgres_dsn)


def random_orders(n: int, seed: int, max_key: int = 2_400) -> pa.Table:
    rng = random.Random(seed)
    keys = [None if rng.random() < 0.02 else rng.randrange(max_key) for _ in range(n)]
    return pa.table(
        {
            "order": pa.array(range(n), pa.int64()),
            "customer": pa.array(keys, pa.int64()),
            "amount": [rng.randrange(1, 500) for _ in range(n)],
        }
    )


def reference_join(orders: pa.Table, rows: dict, how: str) -> dict:
    out = {}
    for o in orders.to_pylist():
        match = rows.get(o["customer"])
        if match is not None:
            out[o["order"]] = (o["customer"], match["name"], match["tier"], match["score"])
        elif how == "left":
            out[o["order"]] = (o["customer"], None, None, None)
    return out


def as_dict(table: pa.Table) -> dict:
    out = {}
    for r in table.to_pylist():
        assert r["order"] not in out, f"order {r['order']} emitted twice"
        out[r["order"]] = (r["customer"], r["name"], r["tier"], r["score"])
    return out


@pytest.mark.parametrize("parallelism", [1, 4])
@pytest.mark.parametrize("how", ["inner", "left"])
@pytest.mark.parametrize(
    ("cache", "ordered"), [(100_000, True), (50, True), (0, False), (200, False)]
)
def test_random_orders_match_python_join(customers, parallelism, how, cache, ordered):
    name, rows = customers
    orders = random_orders(6_000, seed=parallelism * 31 + cache)
    env = sb.Environment(parallelism=parallelism, num_threads=2)
    stream = env.from_table(orders, batch_size=137, parallelism=2)
    joined = stream.lookup_join(
        sb.postgres_table(None, name, key="id"),
        on="customer",
        how=how,
        cache_max_entries=cache,
        ordered=ordered,
        max_in_flight=3,
        connections=2,
    )
    table = joined.to_table()
    assert table.column_names == ["order", "customer", "amount", "name", "tier", "score"]
    assert as_dict(table) == reference_join(orders, rows, how)
    stats = joined.lookup_stats.snapshot()
    assert stats["cache_hits"] + stats["cache_misses"] == sum(
        1 for k in orders["customer"].to_pylist() if k is not None
    )
    if cache == 0:  # hits only from keys already in flight
        assert stats["cache_hits"] == stats["inflight_waits"]
    assert stats["retries"] == 0


def test_cache_hits_are_exact_with_one_batch_in_flight(customers):
    name, _ = customers
    rng = random.Random(8)
    keys = [rng.randrange(300) for _ in range(5_000)]
    orders = pa.table({"order": range(len(keys)), "customer": pa.array(keys, pa.int64())})
    env = sb.Environment(parallelism=1)
    joined = env.from_table(orders, batch_size=250).lookup_join(
        sb.postgres_table(None, name, key="id"), on="customer", how="left", max_in_flight=1
    )
    assert joined.to_table().num_rows == len(keys)
    # One batch at a time: the first row of a key not seen in an earlier batch
    # misses; later rows of that key in the same batch wait for its lookup.
    seen: set[int] = set()
    misses = waits = 0
    for start in range(0, len(keys), 250):
        batch = keys[start : start + 250]
        new = [k for k in batch if k not in seen]
        misses += len(set(new))
        waits += len(new) - len(set(new))
        seen.update(batch)
    stats = joined.lookup_stats.snapshot()
    assert stats["cache_misses"] == misses == len(seen) == stats["keys_queried"]
    assert stats["cache_hits"] == len(keys) - misses
    assert stats["inflight_waits"] == waits
    assert joined.lookup_stats.hit_rate == pytest.approx(1 - misses / len(keys))


def test_composite_string_key_and_several_rows_per_key(postgres_dsn):
    name = unique("prices")
    sb.lookup.postgres_execute(
        f'CREATE TABLE "{name}" (region text, sku integer, price numeric(10,2), '
        f"note varchar(20));"
        f"INSERT INTO \"{name}\" VALUES ('eu', 1, 9.99, 'a'), ('eu', 1, 8.50, 'b'), "
        f"('us', 1, 12.00, NULL), ('eu', 2, 1.25, 'c'), ('x\"y', 3, 0.01, 'quote')",
        dsn=postgres_dsn,
    )
    try:
        env = sb.Environment(parallelism=2)
        items = env.from_iterable(
            [
                {"id": 1, "region": "eu", "sku": 1},
                {"id": 2, "region": "us", "sku": 1},
                {"id": 3, "region": "us", "sku": 2},
                {"id": 4, "region": 'x"y', "sku": 3},
                {"id": 5, "region": "eu", "sku": 2},
            ]
        )
        table = (
            items.lookup_join(
                sb.postgres_table(None, name, key=["region", "sku"], columns=["price", "note"]),
                on=["region", "sku"],
            )
            .to_table()
            .sort_by([("id", "ascending"), ("note", "ascending")])
        )
        assert table.schema.field("price").type == pa.decimal128(10, 2)
        got = [(r["id"], r["price"], r["note"]) for r in table.to_pylist()]
        d = decimal.Decimal
        assert got == [
            (1, d("9.99"), "a"),
            (1, d("8.50"), "b"),
            (2, d("12.00"), None),
            (4, d("0.01"), "quote"),
            (5, d("1.25"), "c"),
        ]
    finally:
        sb.lookup.postgres_execute(f'DROP TABLE "{name}"', dsn=postgres_dsn)


def test_postgres_types_are_read_into_arrow(postgres_dsn):
    name = unique("types")
    sb.lookup.postgres_execute(
        f'CREATE TABLE "{name}" (id smallint PRIMARY KEY, b boolean, i integer, l bigint, '
        "f real, d double precision, t text, by bytea, day date, ts timestamp, "
        "tz timestamptz, tm time, u uuid, j jsonb, n numeric, arr integer[]);"
        f"INSERT INTO \"{name}\" VALUES (1, true, -7, 9000000000, 1.5, -2.25, 'héllo', "
        "'\\x00ff'::bytea, '2024-02-29', '2024-02-29 12:34:56.789', "
        "'2024-02-29 12:00:00+02', '23:59:59.5', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', "
        "'{\"a\": [1, 2]}', 3.14159265358979323846, '{1,2}'), "
        "(2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, "
        "NULL, NULL)",
        dsn=postgres_dsn,
    )
    try:
        env = sb.Environment(parallelism=1)
        keys = env.from_table(pa.table({"k": pa.array([1, 2], pa.int32())}))
        table = (
            keys.lookup_join(sb.postgres_table(None, name, key="id"), on="k")
            .to_table()
            .sort_by("k")
        )
        types = {f.name: f.type for f in table.schema}
        assert types["b"] == pa.bool_()
        assert types["i"] == pa.int32() and types["l"] == pa.int64()
        assert types["f"] == pa.float32() and types["d"] == pa.float64()
        assert types["by"] == pa.binary() and types["day"] == pa.date32()
        assert types["ts"] == pa.timestamp("us")
        assert types["tz"] == pa.timestamp("us", tz="UTC")
        assert types["tm"] == pa.time64("us")
        assert types["u"] == pa.string() and types["n"] == pa.string()
        first, second = table.to_pylist()
        assert first["b"] is True and first["i"] == -7 and first["l"] == 9_000_000_000
        assert first["f"] == 1.5 and first["d"] == -2.25 and first["t"] == "héllo"
        assert first["by"] == b"\x00\xff"
        assert first["day"] == dt.date(2024, 2, 29)
        assert first["ts"] == dt.datetime(2024, 2, 29, 12, 34, 56, 789000)
        assert first["tz"] == dt.datetime(2024, 2, 29, 10, 0, tzinfo=dt.UTC)
        assert first["tm"] == dt.time(23, 59, 59, 500000)
        assert first["u"] == "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"
        assert first["j"] == '{"a": [1, 2]}'
        assert first["n"] == "3.14159265358979323846"
        assert first["arr"] == "{1,2}"
        assert all(v is None for k, v in second.items() if k not in ("k", "id"))
    finally:
        sb.lookup.postgres_execute(f'DROP TABLE "{name}"', dsn=postgres_dsn)


def test_watermarks_are_not_overtaken_by_lookup_results(customers):
    """A window downstream of the lookup counts every row: no joined row is late."""
    name, rows = customers
    rng = random.Random(3)
    events = [
        {"ts": t * 10 + rng.randrange(10), "customer": rng.choice(list(rows))} for t in range(3_000)
    ]
    env = sb.Environment(parallelism=2)
    stream = env.from_iterable(events, batch_size=64).with_watermarks("ts", max_out_of_orderness=20)
    joined = stream.lookup_join(
        sb.postgres_table(None, name, key="id"), on="customer", cache_max_entries=100
    )
    counts = joined.key_by("tier").window(sb.tumbling(1_000)).agg(n=sb.count())
    late = counts.late().collect()
    table = counts.to_table()
    want: dict[tuple[int, int], int] = {}
    for e in events:
        key = (rows[e["customer"]]["tier"], e["ts"] // 1_000 * 1_000)
        want[key] = want.get(key, 0) + 1
    got = {
        (r["tier"], int(r["window_start"].timestamp() * 1000)): r["n"] for r in table.to_pylist()
    }
    assert got == want
    assert late.num_rows == 0


def test_errors_name_the_operator_table_and_column(customers, postgres_dsn):
    name, _ = customers
    env = sb.Environment(parallelism=1)
    orders = env.from_table(pa.table({"customer": pa.array(["1", "2"])}))
    orders.lookup_join(sb.postgres_table(None, name, key="id"), on="customer").discard()
    with pytest.raises(sb.JobError) as err:
        env.execute()
    message = str(err.value)
    assert "lookup_join" in message and name in message
    assert "key column 'id' is bigint" in message and "'customer' is string" in message

    env = sb.Environment(parallelism=1)
    orders = env.from_table(pa.table({"customer": pa.array([1, 2])}))
    bad = sb.postgres_table(None, name, key="id", columns=["name", "missing"])
    orders.lookup_join(bad, on="customer").discard()
    with pytest.raises(sb.JobError, match="no column 'missing'"):
        env.execute()

    env = sb.Environment(parallelism=1)
    orders = env.from_table(pa.table({"customer": pa.array([1, 2])}))
    down = sb.postgres_table("host=127.0.0.1 port=1 user=sabot connect_timeout=2", name, key="id")
    orders.lookup_join(down, on="customer", max_retries=1, retry_backoff=5).discard()
    with pytest.raises(sb.JobError) as err:
        env.execute()
    message = str(err.value)
    assert "cannot connect to PostgreSQL at 127.0.0.1:1" in message
    assert "gave up after 1 retries" in message

    with pytest.raises(ValueError, match="how='inner' or 'left'"):
        orders.lookup_join(sb.postgres_table(None, name, key="id"), on="customer", how="full")


def test_dead_letter_output(postgres_dsn):
    env = sb.Environment(parallelism=1)
    orders = env.from_table(pa.table({"customer": pa.array([1, 2, 3])}))
    joined = orders.lookup_join(
        sb.postgres_table(None, unique("missing"), key="id"),
        on="customer",
        on_error="dead_letter",
        max_retries=0,
    )
    errors = joined.lookup_errors().collect()
    main = joined.collect()
    env.execute()
    assert main.num_rows == 0
    failed = errors.table()
    assert failed["customer"].to_pylist() == [1, 2, 3]
    assert all("does not exist" in e for e in failed["error"].to_pylist())
    assert joined.lookup_stats.snapshot()["failed_batches"] == 1


@pytest.mark.skipif(not PSQL.exists() and shutil.which("psql") is None, reason="no psql")
def test_a_blocked_lookup_does_not_block_the_worker_thread(customers, postgres_dsn):
    """One worker thread, two pipelines: while the lookup query waits for a lock
    held by another session, the other pipeline still runs to its end."""
    name, rows = customers
    gated = unique("gated")
    sb.lookup.postgres_execute(
        f'CREATE VIEW "{gated}" AS SELECT c.* FROM "{name}" c, '
        "(SELECT pg_advisory_xact_lock_shared(4242)) g",
        dsn=postgres_dsn,
    )
    psql = str(PSQL) if PSQL.exists() else "psql"
    holder = subprocess.Popen(
        [psql, postgres_dsn, "-q", "-v", "ON_ERROR_STOP=1"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdin is not None and holder.stdout is not None
        holder.stdin.write("DO $$ BEGIN PERFORM pg_advisory_lock(4242); END $$;\n\\echo locked\n")
        holder.stdin.flush()
        assert holder.stdout.readline().strip() == "locked"

        env = sb.Environment(parallelism=1, num_threads=1)
        orders = env.from_table(pa.table({"order": [1, 2, 3], "customer": [1, 2, 3]}))
        joined = orders.lookup_join(sb.postgres_table(None, gated, key="id"), on="customer")
        out = joined.collect()
        other = env.from_table(pa.table({"k": list(range(1_000)), "v": list(range(1_000))}))
        view = other.materialize(unique("other"), key="k")
        job = env.start()
        deadline = time.monotonic() + 60
        while view.num_rows < 1_000 and time.monotonic() < deadline:
            threading.Event().wait(0.02)
        assert view.num_rows == 1_000  # the other pipeline ran on the only thread
        assert joined.lookup_stats.snapshot()["queries"] == 0  # the lookup still waits
        assert not job.done()
        holder.stdin.write("DO $$ BEGIN PERFORM pg_advisory_unlock(4242); END $$;\n\\q\n")
        holder.stdin.flush()
        job.wait()
        assert sorted(r["name"] for r in out.table().to_pylist()) == [
            rows[i]["name"] for i in (1, 2, 3)
        ]
    finally:
        if holder.poll() is None:
            holder.kill()
        holder.wait()
        sb.lookup.postgres_execute(f'DROP VIEW IF EXISTS "{gated}"', dsn=postgres_dsn)


@pytest.mark.skipif(not PSQL.exists() and shutil.which("psql") is None, reason="no psql")
def test_lookups_in_flight_at_a_savepoint_are_redone_after_restore(
    customers, postgres_dsn, tmp_path
):
    """Every lookup waits for a lock held by another session, so every batch
    is in flight when the savepoint's barrier passes; the job is cancelled, the
    lock released, and the job restored from the savepoint: it joins every row
    exactly once (against a Python join of the uninterrupted stream)."""
    name, rows = customers
    gated = unique("gated")
    sb.lookup.postgres_execute(
        f'CREATE VIEW "{gated}" AS SELECT c.* FROM "{name}" c, '
        "(SELECT pg_advisory_xact_lock_shared(4343)) g",
        dsn=postgres_dsn,
    )
    psql = str(PSQL) if PSQL.exists() else "psql"
    holder = subprocess.Popen(
        [psql, postgres_dsn, "-q", "-v", "ON_ERROR_STOP=1"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    events = 6_000

    def bids(env: sb.Environment) -> sb.DataStream:
        stream = sb.nexmark.bids(env, events=events, parallelism=1, rate_limit=2_000)
        # Bidders are 2000 and up; customers 0..1999 (every ninth id missing).
        return stream.select("auction", "price", customer=sb.col("bidder") - 1_990)

    def build(env: sb.Environment) -> sb.DataStream:
        return bids(env).lookup_join(
            sb.postgres_table(None, gated, key="id", columns=["name"]),
            on="customer",
            how="left",
            cache_max_entries=0,
            max_in_flight=100_000,
        )

    try:
        assert holder.stdin is not None and holder.stdout is not None
        holder.stdin.write("DO $$ BEGIN PERFORM pg_advisory_lock(4343); END $$;\n\\echo locked\n")
        holder.stdin.flush()
        assert holder.stdout.readline().strip() == "locked"

        env = sb.Environment(parallelism=1, num_threads=2)
        first = build(env).collect()
        handle = env.start(checkpoint_dir=tmp_path / "ckpt")

        def lookup_rows_in() -> int:
            ops = handle.metrics()["operators"]
            return next(op["rows_in"] for op in ops if op["name"].startswith("lookup_join"))

        deadline = time.monotonic() + 60
        while lookup_rows_in() < 500 and time.monotonic() < deadline:
            threading.Event().wait(0.01)
        assert lookup_rows_in() >= 500
        savepoint = handle.savepoint(tmp_path / "savepoint")
        handle.cancel()
        handle.wait()
        assert first.num_rows == 0  # every lookup was still waiting
        holder.stdin.write("DO $$ BEGIN PERFORM pg_advisory_unlock(4343); END $$;\n\\q\n")
        holder.stdin.flush()
        holder.wait(30)

        env2 = sb.Environment(parallelism=2, num_threads=2)
        restored = build(env2).to_table(restore=savepoint)
        all_bids = bids(sb.Environment(parallelism=1)).to_table().to_pylist()
        want = sorted(
            (b["auction"], b["customer"], b["price"], rows.get(b["customer"], {}).get("name"))
            for b in all_bids
        )
        got = sorted(
            (r["auction"], r["customer"], r["price"], r["name"]) for r in restored.to_pylist()
        )
        assert got == want
        assert sum(1 for w in want if w[3] is not None) > len(want) // 2
    finally:
        if holder.poll() is None:
            holder.kill()
        holder.wait()
        sb.lookup.postgres_execute(f'DROP VIEW IF EXISTS "{gated}"', dsn=postgres_dsn)
