"""Sabot's Nexmark results checked against Apache Flink's on the same events.

    python bench/nexmark_compare.py [--events 1000000] [--queries all|q0,q5,...]
                                    [--parallelism 1] [--flink-parallelism 1]
                                    [--workdir build/nexmark_compare]

1. Writes the event file once (``sabot.nexmark.write_events``: JSON lines in the
   layout of the suite's ``datagen`` table) and the q13 side input ("i,i" for
   i = 0..9999).
2. Runs every query on Flink (``scripts/flink.sh run``: the queries as Flink SQL
   over the file, a MiniCluster in one JVM, results collected with their RowKind
   applied) and on Sabot (``sabot bench nexmark --events-file ... --output ...``).
3. Compares the two result files of each query as multisets of rows (columns in
   select-list order; floating-point columns with a relative tolerance of 1e-9,
   everything else exactly) and prints a table. q12 runs on processing-time
   windows, which no two runs share: its check is the total bid count per bidder.

Exit status 1 when any query present on both sides differs (or fails).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
FLINK_SQL = ROOT / "bench" / "flink" / "src" / "main" / "resources" / "nexmark"
FLINK_SH = ROOT / "scripts" / "flink.sh"

# Queries whose windows follow processing time: no two runs (or engines) cut the
# same windows, so only a window-free aggregate of the result is compared.
PROCESSING_TIME = {"q12"}

Row = tuple[Any, ...]


def flink_queries() -> list[str]:
    return sorted((p.stem for p in FLINK_SQL.glob("q*.sql")), key=lambda q: int(q[1:]))


def sabot_queries() -> list[str]:
    from sabot import nexmark

    return nexmark.query_names()


# --- inputs ------------------------------------------------------------------


def write_events(path: Path, events: int) -> None:
    from sabot import nexmark

    nexmark.write_events(path, events=events)  # written under a temporary name


def write_side_input(path: Path) -> None:
    from sabot import nexmark

    nexmark.write_side_input(path)  # "i,i" for i = 0..9999, the suite's side input


# --- running both engines -----------------------------------------------------


def run_flink(
    queries: list[str], events_file: Path, side_input: Path, out_dir: Path, parallelism: int
) -> dict[str, dict[str, Any]]:
    """Runs the queries in one Flink JVM; returns its JSON line per query."""
    out_dir.mkdir(parents=True, exist_ok=True)
    cmd = [
        "bash",
        str(FLINK_SH),
        "run",
        "--query",
        ",".join(queries),
        "--source",
        f"file:{events_file}",
        "--parallelism",
        str(parallelism),
        "--sink",
        f"collect:{out_dir}/{{q}}.jsonl",
        "--side-input",
        str(side_input),
    ]
    log = out_dir / "flink.log"
    with open(log, "w") as err:
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=err, text=True, check=False)
    lines: dict[str, dict[str, Any]] = {}
    for line in proc.stdout.splitlines():
        if line.startswith("{"):
            rec = json.loads(line)
            lines[rec["query"]] = rec
    if not lines:
        tail = "".join(log.read_text().splitlines(keepends=True)[-30:])
        raise RuntimeError(f"Flink runner exited {proc.returncode} with no result; {log}:\n{tail}")
    return lines


def sabot_cmd() -> list[str]:
    exe = Path(sys.executable).parent / "sabot"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "sabot.cli"]


def run_sabot(query: str, events_file: Path, out: Path, parallelism: int) -> dict[str, Any]:
    out.parent.mkdir(parents=True, exist_ok=True)
    cmd = [
        *sabot_cmd(),
        "bench",
        "nexmark",
        "--query",
        query,
        "--events-file",
        str(events_file),
        "--output",
        str(out),
        "--parallelism",
        str(parallelism),
    ]
    if query == "q10":  # its partitioned CSV files (the rows compared come from --output)
        cmd += ["--output-dir", str(out.parent / "q10_files")]
    t0 = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    rec: dict[str, Any] = {"query": query, "wall_seconds": round(time.monotonic() - t0, 3)}
    if proc.returncode != 0:
        rec["error"] = (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1]
        return rec
    for line in proc.stdout.splitlines():
        if line.startswith("{"):
            rec.update(json.loads(line))
    return rec


# --- comparison ----------------------------------------------------------------


def load(path: Path) -> tuple[list[str], list[Row]]:
    names: list[str] = []
    rows: list[Row] = []
    with open(path) as f:
        for line in f:
            if not line.strip():
                continue
            obj = json.loads(line)
            if not names:
                names = list(obj)
            rows.append(tuple(obj.values()))
    return names, rows


def _norm(v: Any) -> Any:
    # Floats match within a relative 1e-9: compare them rounded to 9 significant
    # digits here, and pair what rounding splits in _loose_leftovers.
    if isinstance(v, float):
        if v == 0 or not math.isfinite(v):
            return v
        return round(v, 8 - int(math.floor(math.log10(abs(v)))))
    return v


def _close(a: Any, b: Any) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        if isinstance(a, float) or isinstance(b, float):
            return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    return a == b


def _loose_leftovers(left: Counter[Row], right: Counter[Row]) -> tuple[Counter, Counter]:
    """Pairs rows that differ only by float rounding (the rounding in _norm can put
    two close values on either side of a digit)."""
    lrows = list(left.elements())
    rrows = list(right.elements())
    unmatched_r = list(rrows)
    unmatched_l = []
    for lr in lrows:
        for i, rr in enumerate(unmatched_r):
            if len(lr) == len(rr) and all(_close(a, b) for a, b in zip(lr, rr, strict=True)):
                del unmatched_r[i]
                break
        else:
            unmatched_l.append(lr)
    return Counter(unmatched_l), Counter(unmatched_r)


def compare_rows(sabot: list[Row], flink: list[Row]) -> tuple[list[Row], list[Row]]:
    """(rows only Sabot has, rows only Flink has), as multisets."""
    s = Counter(tuple(_norm(v) for v in r) for r in sabot)
    f = Counter(tuple(_norm(v) for v in r) for r in flink)
    only_s, only_f = s - f, f - s
    if only_s and only_f and sum(only_s.values()) * sum(only_f.values()) <= 4_000_000:
        only_s, only_f = _loose_leftovers(only_s, only_f)
    return list(only_s.elements()), list(only_f.elements())


def per_bidder_totals(names: list[str], rows: list[Row]) -> list[Row]:
    bidder, count = names.index("bidder"), names.index("bid_count")
    totals: dict[Any, int] = defaultdict(int)
    for r in rows:
        totals[r[bidder]] += r[count]
    return sorted(totals.items())


def compare_query(query: str, sabot_out: Path, flink_out: Path) -> dict[str, Any]:
    s_names, s_rows = load(sabot_out)
    f_names, f_rows = load(flink_out)
    rec: dict[str, Any] = {"rows_sabot": len(s_rows), "rows_flink": len(f_rows)}
    if s_names and f_names and s_names != f_names:
        rec["columns"] = {"sabot": s_names, "flink": f_names}
    if query in PROCESSING_TIME:
        # Not comparable row by row; say whether the per-bidder totals agree (they do
        # only where both engines fired every window before the input ended).
        rec["equal"] = None
        if not s_rows or not f_rows:
            side = "Flink" if not f_rows else "Sabot"
            rec["note"] = f"processing time: not compared ({side} fired no window)"
        else:
            only_s, only_f = compare_rows(
                per_bidder_totals(s_names, s_rows), per_bidder_totals(f_names, f_rows)
            )
            agree = "agree" if not only_s and not only_f else "differ"
            rec["note"] = f"processing time: not compared; per-bidder totals {agree}"
        return rec
    only_s, only_f = compare_rows(s_rows, f_rows)
    rec["equal"] = not only_s and not only_f
    if not rec["equal"]:
        rec["only_sabot"] = len(only_s)
        rec["only_flink"] = len(only_f)
        rec["examples_sabot"] = [list(r) for r in sorted(only_s, key=repr)[:5]]
        rec["examples_flink"] = [list(r) for r in sorted(only_f, key=repr)[:5]]
    return rec


# --- driver ---------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--queries", default="all")
    ap.add_argument("--parallelism", type=int, default=1, help="Sabot's parallelism")
    ap.add_argument("--flink-parallelism", type=int, default=1)
    ap.add_argument("--workdir", type=Path, default=ROOT / "build" / "nexmark_compare")
    ap.add_argument("--report", type=Path, help="also write the results as JSON here")
    args = ap.parse_args(argv)

    fq, sq = flink_queries(), sabot_queries()
    wanted = (
        sorted(set(fq) | set(sq), key=lambda q: int(q[1:]))
        if args.queries == "all"
        else [q.strip() for q in args.queries.split(",") if q.strip()]
    )
    both = [q for q in wanted if q in fq and q in sq]

    work: Path = args.workdir
    work.mkdir(parents=True, exist_ok=True)
    events_file = work / f"events-{args.events}.jsonl"
    if not events_file.exists():
        t0 = time.monotonic()
        write_events(events_file, args.events)
        print(f"wrote {events_file} in {time.monotonic() - t0:.1f} s", file=sys.stderr)
    side_input = work / "side_input.csv"
    write_side_input(side_input)

    run_dir = work / f"run-{args.events}"
    shutil.rmtree(run_dir, ignore_errors=True)
    results: dict[str, dict[str, Any]] = {q: {"query": q} for q in wanted}
    if both:
        t0 = time.monotonic()
        flink = run_flink(both, events_file, side_input, run_dir / "flink", args.flink_parallelism)
        print(f"flink: {len(both)} queries in {time.monotonic() - t0:.1f} s", file=sys.stderr)
    for q in wanted:
        rec = results[q]
        if q not in both:
            rec["equal"] = None
            rec["note"] = "only on " + ("Flink" if q in fq else "Sabot" if q in sq else "neither")
            continue
        s = run_sabot(q, events_file, run_dir / "sabot" / f"{q}.jsonl", args.parallelism)
        f = flink.get(q, {"error": "no result line"})
        rec["flink_seconds"] = f.get("seconds")
        rec["sabot_seconds"] = s.get("seconds")
        if "error" in s or "error" in f:
            rec["equal"] = False
            rec["error"] = {k: v["error"] for k, v in (("sabot", s), ("flink", f)) if "error" in v}
            continue
        outs = (run_dir / "sabot" / f"{q}.jsonl", run_dir / "flink" / f"{q}.jsonl")
        rec.update(compare_query(q, *outs))

    print_table(results.values(), args.events)
    report = {
        "events": args.events,
        "parallelism": args.parallelism,
        "flink_parallelism": args.flink_parallelism,
        "queries": list(results.values()),
    }
    (work / f"report-{args.events}.json").write_text(json.dumps(report, indent=1))
    if args.report:
        args.report.write_text(json.dumps(report, indent=1))
    bad = [r["query"] for r in results.values() if r.get("equal") is False]
    if bad:
        print(f"differ: {', '.join(bad)} (details: {work}/report-{args.events}.json)")
    return 1 if bad else 0


def print_table(recs: Any, events: int) -> None:
    print(f"Nexmark, Sabot vs Apache Flink, {events:,} events")
    print(f"{'query':<6} {'rows Sabot':>11} {'rows Flink':>11}  {'equal?':<7} note")
    for r in recs:
        eq = {True: "yes", False: "NO", None: "-"}[r.get("equal")]
        note = r.get("note", "")
        if "error" in r:
            note = "; ".join(f"{k}: {v}" for k, v in r["error"].items())
        elif "columns" in r:
            note = (note + "; " if note else "") + "column names differ"
        rs, rf = r.get("rows_sabot", ""), r.get("rows_flink", "")
        print(f"{r['query']:<6} {rs!s:>11} {rf!s:>11}  {eq:<7} {note}")
    sys.stdout.flush()


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
