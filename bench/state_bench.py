"""Checkpoint duration and size of RocksDB keyed state: about 1 GB of state,
a full checkpoint, then rounds of updating a few percent of the keys, each
followed by an incremental checkpoint, then a restore.

    .venv/bin/python bench/state_bench.py [--gb 1.0] [--update-percent 2] [--memory-mb 64]
        [--rounds 5] [--compaction level|universal]

Runs the C++ benchmark ``StateBench.*`` of ``build/release/sabot_tests``
(cpp/src/sabot/state/state_bench_test.cc; skipped in normal test runs) and
prints its figures as JSON lines and a Markdown table (the one in
docs/benchmarks.md). The checkpoint store is a local directory that keeps
each SST file once, as the checkpoint storage does.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "build" / "release" / "sabot_tests"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gb", type=float, default=1.0, help="state size, GiB")
    parser.add_argument("--update-percent", type=float, default=2.0)
    parser.add_argument("--memory-mb", type=int, default=64, help="RocksDB memory budget")
    parser.add_argument("--rounds", type=int, default=5, help="update + checkpoint rounds")
    parser.add_argument("--compaction", default="level", choices=["level", "universal"])
    parser.add_argument("--dir", default=None, help="working directory (default: temp)")
    args = parser.parse_args()
    if not TESTS.exists():
        print(f"{TESTS} is missing: run `make build` first", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="sabot-state-bench-", dir=args.dir) as work:
        env = dict(
            os.environ,
            SABOT_STATE_BENCH="1",
            SABOT_STATE_BENCH_BYTES=str(int(args.gb * (1 << 30))),
            SABOT_STATE_BENCH_UPDATE_PERMILLE=str(int(args.update_percent * 10)),
            SABOT_STATE_BENCH_MEMORY=str(args.memory_mb << 20),
            SABOT_STATE_BENCH_DIR=work,
            SABOT_STATE_BENCH_ROUNDS=str(args.rounds),
            SABOT_STATE_BENCH_COMPACTION=args.compaction,
        )
        proc = subprocess.run(
            [str(TESTS), "--gtest_filter=StateBench.*"],
            env=env,
            capture_output=True,
            text=True,
        )
    results: dict[str, list[dict]] = {}
    for line in proc.stdout.splitlines():
        if line.startswith("STATE_BENCH "):
            record = json.loads(line[len("STATE_BENCH ") :])
            results.setdefault(record["phase"], []).append(record)
            print(json.dumps(record))
    if proc.returncode != 0 or "restore" not in results:
        print(proc.stdout[-4000:], proc.stderr[-4000:], file=sys.stderr)
        return 1
    load = results["load"][0]
    mib = 1 << 20
    print()
    print(
        f"state: {load['keys']:,} keys, {load['logical_bytes'] / mib:,.0f} MiB logical, "
        f"loaded in {load['seconds']:.1f} s; RocksDB budget {load['memory_budget'] / mib:.0f} "
        f"MiB, {load['compaction']} compaction"
    )
    print()
    print("| checkpoint | duration (sync + upload) | SST files (new) | size | uploaded |")
    print("| --- | --- | --- | --- | --- |")
    rows = [("full", results["checkpoint_full"][0])]
    rows += [(f"incremental {i + 1}", r) for i, r in enumerate(results["checkpoint_incremental"])]
    for label, r in rows:
        print(
            f"| {label} | {r['seconds']:.2f} s ({r['sync_seconds']:.2f} + "
            f"{r['upload_seconds']:.2f}) | {r['sst_files']} ({r['new_sst_files']}) | "
            f"{r['checkpoint_bytes'] / mib:,.0f} MiB | {r['uploaded_bytes'] / mib:,.1f} MiB |"
        )
    inc = results["checkpoint_incremental"]
    mean_upload = sum(r["uploaded_bytes"] for r in inc) / len(inc)
    updates = results["update"]
    print()
    print(
        f"each round updates {updates[0]['keys']:,} keys "
        f"({args.update_percent:g}%, {updates[0]['keys'] * 111 / mib:,.1f} MiB); "
        f"incremental checkpoints upload {mean_upload / mib:,.1f}"
        f" MiB on average, {max(r['uploaded_bytes'] for r in inc) / mib:,.1f} MiB at most; "
        f"restore (same parallelism, from the files): {results['restore'][0]['seconds']:.2f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
