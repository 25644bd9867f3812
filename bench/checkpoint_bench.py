"""Throughput of a stateful Nexmark query with checkpoints every second versus
none, measured in one run: rounds alternate between the two so that a busy
machine slows both alike, and the medians are compared. Besides events per
second of wall time it reports events per CPU second of the process (all
threads, user + system), which a machine shared with other work disturbs far
less.

    .venv/bin/python bench/checkpoint_bench.py --query q5 --events 40000000 --rounds 3

Prints one line per run and a JSON summary (docs/benchmarks.md, "Checkpoints").
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import tempfile
from typing import Any

import sabot as sb
from sabot import nexmark


def run_once(
    query: str, events: int, parallelism: int, checkpoint_dir: str | None, interval_ms: int
) -> dict[str, Any]:
    env = sb.Environment(parallelism=parallelism, num_threads=parallelism)
    bids = nexmark.bids(env, events=events, parallelism=parallelism)
    nexmark.QUERIES[query](bids).discard()
    options: dict[str, Any] = {}
    if checkpoint_dir is not None:
        options = {
            "checkpoint_dir": checkpoint_dir,
            "checkpoint_interval_ms": interval_ms,
            "retain_checkpoints": 2,
            "job_name": f"checkpoint-bench-{query}",
        }
    before = resource.getrusage(resource.RUSAGE_SELF)
    handle = env.start(**options)
    result = handle.wait()
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    stats = handle.checkpoint_stats()
    seconds = result.elapsed_seconds
    return {
        "checkpoints": checkpoint_dir is not None,
        "seconds": round(seconds, 3),
        "cpu_seconds": round(cpu, 3),
        "events_per_second": round(events / seconds),
        "events_per_cpu_second": round(events / cpu),
        "completed": stats["completed"],
        "failed": stats["failed"],
        "skipped": stats["skipped"],
        "last_size_bytes": stats["last_size_bytes"],
        "last_duration_ms": stats["last_duration_ms"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--query", default="q5", choices=sorted(nexmark.QUERIES))
    parser.add_argument("--events", type=int, default=40_000_000)
    parser.add_argument("--parallelism", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--interval-ms", type=int, default=1000)
    parser.add_argument("--dir", help="checkpoint directory (default: a temporary one)")
    args = parser.parse_args()

    root = args.dir or tempfile.mkdtemp(prefix="sabot-checkpoint-bench-")
    runs: list[dict[str, Any]] = []
    try:
        for r in range(args.rounds):
            for with_checkpoints in (False, True):
                directory = None
                if with_checkpoints:
                    directory = os.path.join(root, f"round-{r}")
                run = run_once(
                    args.query, args.events, args.parallelism, directory, args.interval_ms
                )
                runs.append(run)
                print(json.dumps(run), flush=True)
    finally:
        if not args.dir:
            shutil.rmtree(root, ignore_errors=True)

    def median(with_checkpoints: bool, key: str) -> float:
        return statistics.median(r[key] for r in runs if r["checkpoints"] == with_checkpoints)

    none = median(False, "events_per_second")
    checkpointed = median(True, "events_per_second")
    none_cpu = median(False, "events_per_cpu_second")
    checkpointed_cpu = median(True, "events_per_cpu_second")
    summary = {
        "query": args.query,
        "events": args.events,
        "parallelism": args.parallelism,
        "rounds": args.rounds,
        "interval_ms": args.interval_ms,
        "events_per_second_without": round(none),
        "events_per_second_with": round(checkpointed),
        "slowdown_percent": round(100.0 * (none - checkpointed) / none, 1),
        "events_per_cpu_second_without": round(none_cpu),
        "events_per_cpu_second_with": round(checkpointed_cpu),
        "cpu_slowdown_percent": round(100.0 * (none_cpu - checkpointed_cpu) / none_cpu, 1),
        "checkpoints_per_run": median(True, "completed"),
        "checkpoint_bytes": median(True, "last_size_bytes"),
        "checkpoint_ms": median(True, "last_duration_ms"),
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
