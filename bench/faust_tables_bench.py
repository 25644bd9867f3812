"""Faust tables: per-operation cost and recovery speed, memory and RocksDB stores.

    .venv/bin/python bench/faust_tables_bench.py [--ops 200000] [--keys 10000]

Measures, on the memory:// broker (so the figures are the table's own cost):
``table[k] += 1`` per second (changelog included, flushed at the end), the same
on a tumbling windowed table, and recovery of a new app from the changelog
(records per second).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
import time

import sabot as faust


async def bench_store(store: str, ops: int, keys: int) -> dict[str, float]:
    broker = f"memory://bench-{store.split(':')[0]}-{random.random()}"
    app = faust.App("bench-tables", broker=broker, store=store, topic_partitions=8)
    counts = app.Table("counts", default=int)
    windowed = app.Table("wcounts", default=int).tumbling(60, expires=120)
    await app.start()
    rng = random.Random(1)
    names = [f"key-{rng.randrange(keys)}" for _ in range(ops)]

    t0 = time.perf_counter()
    for k in names:
        counts[k] += 1
    await counts.flush()
    plain = ops / (time.perf_counter() - t0)

    t0 = time.perf_counter()
    w = windowed.relative_to(0.0)
    for i, k in enumerate(names):
        if i % 1000 == 0:
            w = windowed.relative_to(float(i // 1000))  # a minute passes every 60k ops
        w[k] += 1
    await windowed.table.flush()
    win = ops / (time.perf_counter() - t0)
    sent = counts.changelog_records_sent
    await app.stop()

    app2 = faust.App("bench-tables", broker=broker, store=store, topic_partitions=8)
    counts2 = app2.Table("counts", default=int)
    t0 = time.perf_counter()
    await app2.start()
    recovery = time.perf_counter() - t0
    records = counts2.recovered_records
    assert len(counts2) == len(set(names))
    await app2.stop()
    return {
        "ops_per_s": plain,
        "windowed_ops_per_s": win,
        "changelog_records": sent,
        "recovered_records": records,
        "recovery_records_per_s": records / recovery if recovery else 0.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ops", type=int, default=200_000)
    parser.add_argument("--keys", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for store in ("memory://", f"rocksdb://{tmp}"):
            r = asyncio.run(bench_store(store, args.ops, args.keys))
            print(
                f"{store.split(':')[0]:8s} table[k] += 1: {r['ops_per_s']:>10,.0f}/s  "
                f"windowed: {r['windowed_ops_per_s']:>10,.0f}/s  "
                f"changelog records: {r['changelog_records']:,}  "
                f"recovery: {r['recovered_records']:,} records at "
                f"{r['recovery_records_per_s']:,.0f}/s"
            )


if __name__ == "__main__":
    main()
