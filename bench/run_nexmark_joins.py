"""Runs the Nexmark join and updating queries (q3, q4, q7, q8, q9, q18, q19, q20)
at parallelism 1 and 2 and writes the results table into docs/benchmarks.md
between the BEGIN/END join-results markers.

    .venv/bin/python bench/run_nexmark_joins.py [--events 5000000] [--repeat 3]

Each run is one fresh process doing what ``sabot bench nexmark --query qN
--events N --parallelism P`` does, plus the process CPU time spent in the job
(all threads): on a shared machine the wall time depends on what else runs,
while events per CPU second is what one core sustains. The table shows the
median run by wall time."""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks.md"
BEGIN, END = "<!-- BEGIN join-results -->", "<!-- END join-results -->"
QUERIES = ["q3", "q4", "q7", "q8", "q9", "q18", "q19", "q20"]
TARGETS = {"q3": 2e6, "q8": 2e6, "q20": 2e6, "q4": 1e6, "q9": 1e6, "q18": 1e6, "q19": 1e6}

CHILD = """
import json, resource, sys
from sabot.cli import run_nexmark_bench

def cpu():
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime + u.ru_stime

query, events, parallelism = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
before = cpu()
out = run_nexmark_bench(query, events, parallelism)
out["cpu_seconds"] = cpu() - before
print(json.dumps(out))
"""


def run(query: str, events: int, parallelism: int) -> dict[str, float]:
    cmd = [sys.executable, "-c", CHILD, query, str(events), str(parallelism)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=5_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--queries", default=",".join(QUERIES), help="comma-separated list")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()

    load = os.getloadavg()[0]
    lines = [
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"load average {load:.1f} when the run started; {args.events:,} events per run, "
        f"median of {args.repeat} runs (by wall time).",
        "",
        "| query | parallelism | seconds | events/s | events/s per core | CPU seconds "
        "| events per CPU second | target per core | peak RSS MB |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for query in args.queries.split(","):
        for parallelism in (1, 2):
            runs = [run(query, args.events, parallelism) for _ in range(args.repeat)]
            med = sorted(runs, key=lambda r: r["seconds"])[len(runs) // 2]
            per_cpu = args.events / med["cpu_seconds"] if med["cpu_seconds"] > 0 else 0
            target = f"{TARGETS[query] / 1e6:.0f}M" if query in TARGETS else "-"
            lines.append(
                f"| {query} | {parallelism} | {med['seconds']:.3f} | "
                f"{med['events_per_second']:,} | {med['events_per_second_per_core']:,} | "
                f"{med['cpu_seconds']:.2f} | {per_cpu:,.0f} | {target} | {med['peak_rss_mb']} |"
            )
            print(lines[-1], flush=True)
    if not args.no_write:
        text = DOC.read_text()
        start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
        DOC.write_text(text[:start] + "\n" + "\n".join(lines) + "\n" + text[end:])
    return 0


if __name__ == "__main__":
    sys.exit(main())
