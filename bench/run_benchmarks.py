"""Runs the engine-core Nexmark benchmarks (q0-q2, parallelism 1 and 2) and
writes the results table into docs/benchmarks.md between the BEGIN/END markers.

    .venv/bin/python bench/run_benchmarks.py [--events 10000000] [--repeat 3]

Each configuration runs ``sabot bench nexmark`` in a fresh process ``repeat``
times; the table shows the median run."""

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
SABOT = str(Path(sys.executable).parent / "sabot")
BEGIN, END = "<!-- BEGIN core-results -->", "<!-- END core-results -->"


def run(query: str, events: int, parallelism: int, source: str) -> dict[str, float]:
    cmd = [
        SABOT,
        "bench",
        "nexmark",
        "--query",
        query,
        "--events",
        str(events),
        "--parallelism",
        str(parallelism),
        "--source",
        source,
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--queries", default="q0,q1,q2,q5,q11,q12,q15,q16,q17", help="comma-separated list"
    )
    args = parser.parse_args()

    lines = [
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
        f"{args.events:,} events per run, median of {args.repeat} runs.",
        "",
        "| query | source | parallelism | seconds | events/s | events/s per core | peak RSS MB |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    configs = [(s, q) for s in ("view", "combined") for q in ("q0", "q1", "q2")]
    configs += [("view", q) for q in ("q5", "q11", "q12", "q15", "q16", "q17")]
    for source, query in configs:
        if query not in args.queries.split(","):
            continue
        for parallelism in (1, 2):
            runs = [run(query, args.events, parallelism, source) for _ in range(args.repeat)]
            med = sorted(runs, key=lambda r: r["seconds"])[len(runs) // 2]
            lines.append(
                f"| {query} | {source} | {parallelism} | {med['seconds']:.3f} | "
                f"{med['events_per_second']:,} | {med['events_per_second_per_core']:,} | "
                f"{med['peak_rss_mb']} |"
            )
            print(lines[-1], flush=True)
    text = DOC.read_text()
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    DOC.write_text(text[:start] + "\n" + "\n".join(lines) + "\n" + text[end:])
    return 0


if __name__ == "__main__":
    sys.exit(main())
