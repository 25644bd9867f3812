"""Checkpoint duration and size of RocksDB keyed state: about 1 GB of state,
a full checkpoint, then an incremental one after updating a few percent of the
keys, then a restore.

    .venv/bin/python bench/state_bench.py [--gb 1.0] [--update-percent 2] [--memory-mb 64]

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
        )
        proc = subprocess.run(
            [str(TESTS), "--gtest_filter=StateBench.*"],
            env=env,
            capture_output=True,
            text=True,
        )
    results = {}
    for line in proc.stdout.splitlines():
        if line.startswith("STATE_BENCH "):
            record = json.loads(line[len("STATE_BENCH ") :])
            results[record["phase"]] = record
            print(json.dumps(record))
    if proc.returncode != 0 or "restore" not in results:
        print(proc.stdout[-4000:], proc.stderr[-4000:], file=sys.stderr)
        return 1
    load = results["load"]
    mib = 1 << 20
    print()
    print(
        f"state: {load['keys']:,} keys, {load['logical_bytes'] / mib:,.0f} MiB logical, "
        f"loaded in {load['seconds']:.1f} s; RocksDB budget {load['memory_budget'] / mib:.0f} MiB"
    )
    print()
    print("| checkpoint | duration (sync + upload) | SST files (new) | size | uploaded |")
    print("| --- | --- | --- | --- | --- |")
    for phase, label in (("checkpoint_full", "full"), ("checkpoint_incremental", "incremental")):
        r = results[phase]
        print(
            f"| {label} | {r['seconds']:.2f} s ({r['sync_seconds']:.2f} + "
            f"{r['upload_seconds']:.2f}) | {r['sst_files']} ({r['new_sst_files']}) | "
            f"{r['checkpoint_bytes'] / mib:,.0f} MiB | {r['uploaded_bytes'] / mib:,.1f} MiB |"
        )
    print()
    print(
        f"update: {results['update']['keys']:,} keys in {results['update']['seconds']:.1f} s; "
        f"restore (same parallelism, from the files): {results['restore']['seconds']:.2f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
