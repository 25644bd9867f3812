"""Nexmark bids -> keep well-known channels -> key_by(channel) -> a per-batch
Python UDF that computes partial sums with pyarrow -> collect; the final sums
are checked against pyarrow over the same generated bids.

Run: .venv/bin/python examples/python/bid_channels.py
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
import sabot as sb

EVENTS = 300_000
CHANNELS = ["Google", "Facebook", "Baidu", "Apple"]


def partial_sums(batch: pa.RecordBatch) -> pa.RecordBatch:
    # Vectorized per batch: one group_by per batch, never a Python loop per row.
    table = pa.Table.from_batches([batch]).group_by("channel").aggregate([("price", "sum")])
    return table.combine_chunks().to_batches()[0]


def main() -> None:
    env = sb.Environment(parallelism=2)
    bids = sb.nexmark.bids(env, events=EVENTS, parallelism=2)
    known = bids.filter(pc.field("channel").isin(CHANNELS)).select("channel", "price")
    partial = known.key_by("channel").map(
        partial_sums, schema=pa.schema([("channel", pa.string()), ("price_sum", pa.int64())])
    )
    collected = partial.collect()
    result = env.execute()

    totals = collected.table().group_by("channel").aggregate([("price_sum", "sum")])
    got = dict(zip(totals["channel"].to_pylist(), totals["price_sum_sum"].to_pylist(), strict=True))

    env = sb.Environment(parallelism=2)
    reference = sb.nexmark.bids(env, events=EVENTS, parallelism=2).to_table()
    reference = reference.filter(pc.is_in(reference["channel"], pa.array(CHANNELS)))
    ref = reference.group_by("channel").aggregate([("price", "sum")])
    want = dict(zip(ref["channel"].to_pylist(), ref["price_sum"].to_pylist(), strict=True))

    assert got == want, (got, want)
    for channel in sorted(got):
        print(f"{channel:10s} {got[channel] / 100:>20,.2f}")
    print(
        f"{result.operator('nexmark_source')['rows_out']:,} bids in {result.elapsed_seconds:.2f} s"
    )


if __name__ == "__main__":
    main()
