"""The ``sabot`` command line: ``sabot run [--restore PATH] JOB.py``, ``sabot demo``,
``sabot bench nexmark --query q0 --events N --parallelism P [--events-file PATH]
[--output OUT.jsonl]``,
``sabot savepoint CHECKPOINT_DIR [--stop]``."""

from __future__ import annotations

import argparse
import json
import os
import resource
import runpy
import sys
import tempfile
import threading
from collections.abc import Sequence

import sabot

# nexmark and the DataStream API are imported where used, so `sabot -A app worker`
# (a Faust-style worker) does not load them (docs/design/faust_memory.md).


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _cmd_run(args: argparse.Namespace) -> int:
    from sabot.datastream import JobError

    sys.argv = [args.job, *args.job_args]
    os.environ["SABOT_PRINT_METRICS"] = "1"  # each finished job prints its metrics
    if args.restore:  # sabot/checkpoint.py: the default restore= of every job
        os.environ["SABOT_RESTORE"] = args.restore
    try:
        runpy.run_path(args.job, run_name="__main__")
    except JobError as e:
        print(f"sabot: job failed: {e}", file=sys.stderr)
        return 1
    except FileNotFoundError as e:
        print(f"sabot: cannot run {args.job}: {e}", file=sys.stderr)
        return 2
    return 0


def run_demo(events: int = 1_000_000, parallelism: int = 2, rate: int = 250_000) -> int:
    """The demo job: Nexmark bids -> filter -> computed column -> key_by -> print,
    with a live progress line. Returns the number of events processed."""
    from sabot import nexmark
    from sabot.datastream import Environment, col

    env = Environment(parallelism=parallelism)
    per_split_rate = max(1, rate // parallelism)
    bids = nexmark.bids(env, events=events, parallelism=parallelism, rate_limit=per_split_rate)
    jackpots = bids.filter(col("price") >= 99_950_000).select(
        "auction",
        "bidder",
        "channel",
        price_usd=col("price").cast("float64") / 100,
        dateTime=col("dateTime"),
    )
    jackpots.key_by("auction").print(max_rows=10, title="bids over $999,500")
    print(
        f"sabot {sabot.__version__} demo: Nexmark generator, {events:,} events at "
        f"{rate:,} events/s, parallelism {parallelism}",
        flush=True,
    )
    handle = env.start()
    stop = threading.Event()

    def progress() -> None:
        while not stop.wait(1.0):
            m = handle.metrics()
            source = m["operators"][0]
            covered = source["rows_out"]
            print(
                f"  .. {m['elapsed_seconds']:.1f}s: {covered:,} bids generated, "
                f"memory {m['memory']['bytes_allocated'] / 2**20:.1f} MiB",
                flush=True,
            )

    thread = threading.Thread(target=progress, daemon=True)
    thread.start()
    result = handle.wait()
    stop.set()
    thread.join()
    seconds = result.elapsed_seconds
    print(result.report(), end="")
    print(f"events processed: {events:,} in {seconds:.2f} s = {events / seconds:,.0f} events/s")
    return events


def _cmd_demo(args: argparse.Namespace) -> int:
    run_demo(args.events, args.parallelism, args.rate)
    return 0


def run_nexmark_bench(
    query: str,
    events: int,
    parallelism: int,
    source: str = "view",
    *,
    events_file: str | None = None,
    output: str | None = None,
    output_dir: str | None = None,
    side_input: str | None = None,
) -> dict[str, object]:
    """Runs one Nexmark query on the built-in generator into a blackhole sink.

    ``source="view"`` generates only the rows of the entity the query reads (the
    event_type filter pushed into the generator); ``"combined"`` generates every
    event and filters/flattens in the job, as Flink's suite does. ``events``
    counts all events of the sequence either way.

    ``events_file`` reads the events from a file of :func:`sabot.nexmark.write_events`
    instead (``events`` is then its line count). ``output`` collects the result
    and writes it in the suite's result form (:func:`sabot.nexmark.result_table`)
    as JSON lines; the time reported includes the collection, not the writing.

    q10 writes its partitioned files into ``output_dir`` (default: a temporary
    directory, deleted after the run); q13 reads ``side_input`` (default: the
    suite's file, made in the temp directory)."""
    from sabot import nexmark
    from sabot.datastream import Environment

    if query not in nexmark.query_names():
        raise ValueError(f"unknown query {query!r}; available: {', '.join(nexmark.query_names())}")
    env = Environment(parallelism=parallelism, num_threads=parallelism)
    scratch = None
    if query == "q10" and output_dir is None:
        scratch = tempfile.TemporaryDirectory(prefix="sabot-nexmark-q10-")
        output_dir = scratch.name
    try:
        if events_file is not None:
            events = nexmark.count_events(events_file)
            sources = nexmark.Sources.from_file(
                env, events_file, output_dir=output_dir, side_input=side_input
            )
            stream = nexmark.build(query, sources)
        elif query in nexmark.QUERIES:
            make_bids = nexmark.bids if source == "view" else nexmark.bids_from_combined
            bids = make_bids(env, events=events, parallelism=parallelism)
            stream = nexmark.QUERIES[query](bids)
        else:  # queries over several streams (nexmark.JOIN_QUERIES)
            sources = nexmark.Sources(
                env,
                events=events,
                parallelism=parallelism,
                source=source,
                output_dir=output_dir,
                side_input=side_input,
            )
            stream = nexmark.build(query, sources)
        collected = stream.collect() if output is not None else None
        if collected is None:
            stream.discard()
        result = env.execute()
        if query == "q10" and output_dir is not None:
            nexmark.commit_partitions(output_dir)
        if collected is not None and output is not None:
            nexmark.write_result(nexmark.result_table(query, collected.table()), output)
    finally:
        if scratch is not None:
            scratch.cleanup()
    seconds = result.elapsed_seconds
    eps = events / seconds if seconds > 0 else float("inf")
    return {
        "query": query,
        "events": events,
        "parallelism": parallelism,
        "seconds": round(seconds, 4),
        "events_per_second": round(eps),
        "events_per_second_per_core": round(eps / parallelism),
        "peak_rss_mb": round(_peak_rss_mb(), 1),
    }


def _cmd_bench(args: argparse.Namespace) -> int:
    from sabot.datastream import JobError

    if args.suite != "nexmark":
        print(f"sabot: unknown benchmark suite {args.suite!r}", file=sys.stderr)
        return 2
    try:
        out = run_nexmark_bench(
            args.query,
            args.events,
            args.parallelism,
            args.source,
            events_file=args.events_file,
            output=args.output,
            output_dir=args.output_dir,
            side_input=args.side_input,
        )
    except (ValueError, JobError, OSError) as e:
        print(f"sabot: {e}", file=sys.stderr)
        return 1
    print(json.dumps(out))
    return 0


# -- checkpoints (sabot/checkpoint.py) ------------------------------------------


def _cmd_savepoint(args: argparse.Namespace) -> int:
    from sabot import checkpoint

    try:
        answer = checkpoint.request_savepoint(
            args.checkpoint_dir, path=args.path, stop=args.stop, timeout=args.timeout
        )
    except RuntimeError as e:
        print(f"sabot: {e}", file=sys.stderr)
        return 1
    print(json.dumps({"path": answer["path"], "checkpoint_id": answer["checkpoint_id"]}))
    return 0


# -- end of checkpoints -----------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    # -- Faust worker CLI: `sabot -A module:app worker|agents|tables|send|status` --
    faust_argv = list(sys.argv[1:] if argv is None else argv)
    if faust_argv and (faust_argv[0] in ("-A", "--app") or faust_argv[0].startswith("--app=")):
        from sabot.faust.worker import main as faust_main

        return faust_main(faust_argv)
    parser = argparse.ArgumentParser(prog="sabot", description="Sabot stream processing engine")
    parser.add_argument("--version", action="version", version=f"sabot {sabot.__version__}")
    sub = parser.add_subparsers(dest="command")

    run = sub.add_parser("run", help="run a Python job file")
    run.add_argument(
        "--restore",
        metavar="PATH",
        help="restore the job's state from a checkpoint or savepoint directory "
        "(or 'latest' in its checkpoint_dir)",
    )
    run.add_argument("job")
    run.add_argument("job_args", nargs=argparse.REMAINDER)
    run.set_defaults(fn=_cmd_run)

    savepoint = sub.add_parser(
        "savepoint", help="take a savepoint of the job running with a checkpoint directory"
    )
    savepoint.add_argument("checkpoint_dir")
    savepoint.add_argument(
        "--path", help="where to put it (default: <checkpoint_dir>/savepoints/savepoint-<id>)"
    )
    savepoint.add_argument(
        "--stop", action="store_true", help="stop the job right after the savepoint"
    )
    savepoint.add_argument("--timeout", type=float, default=60.0, help="seconds to wait")
    savepoint.set_defaults(fn=_cmd_savepoint)

    demo = sub.add_parser("demo", help="run the built-in Nexmark demo job")
    demo.add_argument("--events", type=int, default=1_000_000)
    demo.add_argument("--parallelism", type=int, default=2)
    demo.add_argument("--rate", type=int, default=250_000, help="events per second in all")
    demo.set_defaults(fn=_cmd_demo)

    bench = sub.add_parser("bench", help="run a benchmark query")
    bench.add_argument("suite", choices=["nexmark"])
    bench.add_argument("--query", default="q0")
    bench.add_argument("--events", type=int, default=10_000_000)
    bench.add_argument("--parallelism", type=int, default=1)
    bench.add_argument(
        "--source",
        choices=["view", "combined"],
        default="view",
        help="view: generate only bids (filter pushed into the generator); "
        "combined: generate all events and filter in the job, as Flink does",
    )
    bench.add_argument(
        "--events-file",
        metavar="PATH",
        help="read the events from a JSON-lines file of sabot.nexmark.write_events "
        "(--events is then its line count)",
    )
    bench.add_argument(
        "--output",
        metavar="OUT.jsonl",
        help="write the query's final result as JSON lines (the suite's select-list "
        "columns; an updating result after applying its changelog)",
    )
    bench.add_argument(
        "--output-dir",
        metavar="DIR",
        help="where q10 writes its partitioned CSV files (default: a temporary "
        "directory, deleted after the run)",
    )
    bench.add_argument(
        "--side-input",
        metavar="PATH",
        help="q13's side input CSV (lines 'key,value', no header; default: the "
        "suite's 'i,i' for i = 0..9999 in the temp directory)",
    )
    bench.set_defaults(fn=_cmd_bench)

    args = parser.parse_args(argv)
    if not getattr(args, "fn", None):
        parser.print_help()
        return 2
    return int(args.fn(args))


if __name__ == "__main__":
    sys.exit(main())
