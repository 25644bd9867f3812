"""Kafka end-to-end benchmark (one core for Sabot, broker on the same machine).

    make kafka-up
    .venv/bin/python bench/kafka_bench.py --messages 2000000

Measures, on the same topics in one run:

1. raw consume rate of librdkafka alone: ``kcat -C -e -q -o beginning -f '%o\\n'``
   (C, no decoding) and Sabot's source with the ``raw`` format into a blackhole
   (librdkafka + copying payloads into Arrow);
2. JSON job: Kafka -> decode JSON -> filter -> project -> encode JSON -> Kafka;
3. Arrow IPC job: the same with one IPC record batch per Kafka message.

Prints one JSON line per measurement and a markdown table at the end.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
import uuid

import pyarrow as pa
import pyarrow.compute as pc
import sabot as sb


def bids(n: int, seed: int = 1) -> pa.Table:
    """Nexmark-like bids, about 110 bytes each as JSON."""
    import numpy as np

    rng = np.random.default_rng(seed)
    return pa.table(
        {
            "auction": pa.array(rng.integers(1000, 2000, n), pa.int64()),
            "bidder": pa.array(rng.integers(1, 100_000, n), pa.int64()),
            "price": pa.array(rng.integers(100, 10_000_000, n), pa.int64()),
            "channel": pa.array(rng.choice(["Google", "Facebook", "Baidu", "Apple"], n)),
            "url": pa.array([f"https://www.nexmark.com/a/{i % 997}/item.htm" for i in range(n)]),
            "date_time": pa.array(1_700_000_000_000 + np.arange(n, dtype=np.int64)),
        }
    )


SCHEMA = bids(1).schema


def fill(topic: str, table: pa.Table, fmt: str, batch_size: int) -> float:
    env = sb.Environment(parallelism=1, num_threads=1)
    env.from_table(table, batch_size=batch_size).write_kafka(
        topic, format=fmt, producer_config={"linger.ms": 20, "compression.type": "none"}
    )
    start = time.perf_counter()
    env.execute()
    return time.perf_counter() - start


def run_job(build) -> tuple[float, dict]:
    env = sb.Environment(parallelism=1, num_threads=1)
    stream = build(env)
    start = time.perf_counter()
    env.execute()
    return time.perf_counter() - start, stream.kafka_stats.snapshot()


def kcat_rate(topic: str, messages: int) -> float | None:
    if shutil.which("kcat") is None:
        return None
    start = time.perf_counter()
    out = subprocess.run(
        [
            "kcat",
            "-C",
            "-b",
            sb.kafka.DEFAULT_BOOTSTRAP,
            "-t",
            topic,
            "-o",
            "beginning",
            "-e",
            "-q",
            "-f",
            "%o\n",
        ],
        stdout=subprocess.PIPE,
        check=True,
    ).stdout
    seconds = time.perf_counter() - start
    assert out.count(b"\n") == messages, (out.count(b"\n"), messages)
    return messages / seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2_000_000, help="JSON messages")
    parser.add_argument("--ipc-rows", type=int, default=20_000_000, help="rows in the IPC topic")
    parser.add_argument("--ipc-batch", type=int, default=8192, help="rows per IPC message")
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--keep", action="store_true", help="keep the topics")
    args = parser.parse_args()
    if not sb.kafka.broker_available():
        print(f"no broker at {sb.kafka.DEFAULT_BOOTSTRAP}: run make kafka-up", file=sys.stderr)
        return 2

    run_id = uuid.uuid4().hex[:8]
    json_in, json_out = f"bench-json-in-{run_id}", f"bench-json-out-{run_id}"
    ipc_in, ipc_out = f"bench-ipc-in-{run_id}", f"bench-ipc-out-{run_id}"
    for t in (json_in, json_out, ipc_in, ipc_out):
        sb.kafka.create_topic(t, args.partitions)
    results = []

    overhead = 0.0  # start-up + shutdown of a Kafka job (group join, leave), see below

    def report(name: str, count: int, seconds: float, unit: str, **extra) -> None:
        row = {
            "measurement": name,
            unit: count,
            "seconds": round(seconds, 3),
            f"{unit}_per_second": round(count / seconds),
            **extra,
        }
        # "Net" only where the run is long against the fixed start-up cost;
        # otherwise the difference is noise.
        if overhead and name.startswith(("raw consume: Sabot", "JSON job", "IPC job")):
            if seconds > 2 * overhead:
                row[f"{unit}_per_second_net"] = round(count / (seconds - overhead))
        results.append(row)
        print(json.dumps(row), flush=True)

    try:
        n = args.messages
        table = bids(n)
        fill_s = fill(json_in, table, "json", 65536)
        report("produce JSON (Sabot sink, fill)", n, fill_s, "messages")
        ipc_table = pa.concat_tables([table] * max(1, args.ipc_rows // n)).slice(0, args.ipc_rows)
        fill_ipc = fill(ipc_in, ipc_table, "ipc", args.ipc_batch)
        report("produce IPC (Sabot sink, fill)", ipc_table.num_rows, fill_ipc, "rows")

        # Fixed cost of one Kafka job (consumer group join and leave, producer
        # start): the same job over a one-message topic.
        tiny = f"bench-tiny-{run_id}"
        sb.kafka.create_topic(tiny, args.partitions)
        fill(tiny, table.slice(0, 1), "json", 1)
        overheads = []
        for _ in range(3):
            seconds, _ = run_job(
                lambda env: _discard(
                    sb.kafka.source(env, tiny, format="raw", start="earliest", stop_at_end=True)
                )
            )
            overheads.append(seconds)
        sb.kafka.delete_topic(tiny)
        overhead = min(overheads)
        print(
            json.dumps(
                {
                    "measurement": "job start-up + shutdown (1 message)",
                    "seconds": round(overhead, 3),
                }
            ),
            flush=True,
        )

        rate = kcat_rate(json_in, n)
        if rate is not None:
            report("raw consume: kcat (librdkafka alone)", n, n / rate, "messages")

        seconds, stats = run_job(
            lambda env: _discard(
                sb.kafka.source(
                    env, json_in, format="raw", start="earliest", stop_at_end=True, batch_size=16384
                )
            )
        )
        report("raw consume: Sabot source, format=raw -> blackhole", n, seconds, "messages")

        threshold = 9_000_000  # keeps about 10% of the bids

        def json_job(env):
            src = sb.kafka.source(
                env,
                json_in,
                format="json",
                schema=SCHEMA,
                start="earliest",
                stop_at_end=True,
                batch_size=16384,
            )
            (
                src.filter(pc.field("price") > threshold)
                .select("auction", "bidder", "price", channel=pc.utf8_upper(pc.field("channel")))
                .write_kafka(json_out, format="json", key="auction")
            )
            return src

        seconds, stats = run_job(json_job)
        report(
            "JSON job: decode -> filter -> project -> encode -> Kafka",
            n,
            seconds,
            "messages",
            rows_out=sb.kafka.watermarks(json_out)
            and sum(h for _, h in sb.kafka.watermarks(json_out)),
        )

        def ipc_job(env):
            src = sb.kafka.source(
                env, ipc_in, format="ipc", start="earliest", stop_at_end=True, batch_size=64
            )
            (
                src.filter(pc.field("price") > threshold)
                .select("auction", "bidder", "price", "channel")
                .write_kafka(ipc_out, format="ipc")
            )
            return src

        seconds, stats = run_job(ipc_job)
        report(
            "IPC job: decode -> filter -> project -> encode -> Kafka",
            ipc_table.num_rows,
            seconds,
            "rows",
            messages=stats["messages"],
        )
    finally:
        if not args.keep:
            for t in (json_in, json_out, ipc_in, ipc_out):
                sb.kafka.delete_topic(t)

    print(f"\nper-job start-up + shutdown: {overhead:.3f} s (subtracted in 'net')")
    print("\n| measurement | count | seconds | per second | net of start-up |")
    print("| --- | --- | --- | --- | --- |")
    for r in results:
        unit = "messages" if "messages_per_second" in r else "rows"
        net = r.get(unit + "_per_second_net")
        print(
            f"| {r['measurement']} | {r[unit]:,} {unit} | {r['seconds']} | "
            f"{r[unit + '_per_second']:,} | {f'{net:,}' if net else '-'} |"
        )
    return 0


def _discard(stream):
    stream.discard()
    return stream


if __name__ == "__main__":
    sys.exit(main())
