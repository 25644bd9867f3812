"""Lookup join throughput against the repo's PostgreSQL server at cache hit
rates of 0 %, 90 % and 99 % (docs/benchmarks.md, "Lookup join").

    make postgres-up
    .venv/bin/python bench/lookup_bench.py [--rows 2000000] [--table-rows 1000000]

A table of ``--table-rows`` customers (id bigint primary key, name text, tier
int) is loaded once; the stream is ``--rows`` orders held in memory whose
customer ids come from a set of D = N * (1 - hit rate) ids: the first D rows
are those ids (each looked up once, as the cache warms up), the other rows draw
uniformly from them and, with a cache that holds every id, hit it. 0 % runs
with the cache off over shuffled passes through all ids of the table (every
row goes to PostgreSQL). Each configuration runs in a fresh process;
one JSON line per run: hit rate (target and measured), parallelism, seconds,
rows/s, queries, keys queried."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

TABLE = "bench_customers"


def load(table_rows: int) -> None:
    import pyarrow as pa
    import sabot as sb

    ids = pa.array(range(table_rows), pa.int64())
    table = pa.table(
        {
            "id": ids,
            "name": pa.array([f"customer-{i}" for i in range(table_rows)]),
            "tier": pa.array([i % 5 for i in range(table_rows)], pa.int32()),
        }
    )
    start = time.perf_counter()
    sb.lookup.postgres_load(TABLE, table, primary_key="id")
    print(
        f"loaded {table_rows:,} rows into {TABLE} in {time.perf_counter() - start:.1f} s",
        file=sys.stderr,
    )


def run_one(rows: int, table_rows: int, hit: float, parallelism: int, connections: int) -> dict:
    import numpy as np
    import pyarrow as pa
    import sabot as sb

    rng = np.random.default_rng(7)
    if hit == 0.0:
        # Every id of the table once (shuffled), again and again: no key repeats
        # within the batches in flight, so no row shares a lookup.
        repeats = -(-rows // table_rows)
        customers = np.concatenate([rng.permutation(table_rows) for _ in range(repeats)])
        customers = customers[:rows]
        cache = 0
    else:
        distinct = max(1, int(rows * (1.0 - hit)))
        ids = rng.choice(table_rows, size=distinct, replace=False)
        # Each id is first seen in the leading D rows (the cache warms up),
        # then the other rows draw uniformly from the same ids.
        customers = np.concatenate([ids, rng.choice(ids, size=rows - distinct)])
        cache = distinct + 1
    orders = pa.table(
        {"order": pa.array(np.arange(rows)), "customer": pa.array(customers.astype(np.int64))}
    )
    env = sb.Environment(parallelism=parallelism, num_threads=parallelism)
    joined = env.from_table(orders, batch_size=8192, parallelism=parallelism).lookup_join(
        sb.postgres_table(None, TABLE, key="id"),
        on="customer",
        how="left",
        cache_max_entries=cache,
        connections=connections,
        key_by=parallelism > 1,
    )
    joined.discard()
    start = time.perf_counter()
    result = env.execute()
    seconds = time.perf_counter() - start
    stats = joined.lookup_stats.snapshot()
    rows_out = result.operator("lookup_join")["rows_out"]
    assert rows_out == rows, (rows_out, rows)
    return {
        "hit_rate_target": hit,
        "hit_rate": round(joined.lookup_stats.hit_rate, 4),
        "parallelism": parallelism,
        "connections": connections,
        "rows": rows,
        "seconds": round(seconds, 3),
        "rows_per_second": round(rows / seconds),
        "inflight_waits": stats["inflight_waits"],
        "queries": stats["queries"],
        "keys_queried": stats["keys_queried"],
        "query_seconds": round(stats["query_ms"] / 1000, 3),
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--table-rows", type=int, default=1_000_000)
    parser.add_argument("--hit-rates", default="0,0.9,0.99")
    parser.add_argument("--parallelism", default="1,2")
    parser.add_argument("--connections", type=int, default=1)
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--hit", type=float, default=0.0, help=argparse.SUPPRESS)
    parser.add_argument("--p", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.one:
        print(json.dumps(run_one(args.rows, args.table_rows, args.hit, args.p, args.connections)))
        return 0
    import sabot as sb

    if not sb.lookup.postgres_available():
        print(
            f"no PostgreSQL at {sb.lookup.DEFAULT_POSTGRES_DSN}; make postgres-up", file=sys.stderr
        )
        return 1
    load(args.table_rows)
    for hit in (float(h) for h in args.hit_rates.split(",")):
        for p in (int(x) for x in args.parallelism.split(",")):
            cmd = [
                sys.executable,
                __file__,
                "--one",
                f"--rows={args.rows}",
                f"--table-rows={args.table_rows}",
                f"--hit={hit}",
                f"--p={p}",
                f"--connections={args.connections}",
            ]
            out = subprocess.run(cmd, capture_output=True, text=True, env=os.environ)
            if out.returncode != 0:
                print(out.stderr, file=sys.stderr)
                return out.returncode
            print(out.stdout.strip(), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
