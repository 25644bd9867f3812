"""The chaos test's worker: one Sabot job, killed with SIGKILL and restarted by
tests/chaos/chaos.py.

Kafka (static assignment) -> watermarks per partition -> stateful deduplication on ``id`` ->
keyed 1 s tumbling windows (count and sum per ``key``) -> Kafka, exactly-once,
with checkpoints every ``--interval-ms`` into ``--checkpoint-dir`` and
``restore="latest"``. It runs until it is killed.

It reports its phase on stdout, one line per change, for the driver to time its
kills and to tell afterwards where each kill landed:

    started <pid>
    restored <checkpoint id, -1 for a fresh start>
    checkpoint <id>       checkpoint <id> is in flight
    checkpointed <id>     checkpoint <id> completed
    commit <n>            the sink started its n-th transaction
    committed <n>         ... and n transactions are done (committed or aborted)
    recovered <r> <s>     restored output: r epochs committed on open (the crash
                          came before their commit), s found already committed
    failed <message>      the job failed (the process then exits with 1)
"""

from __future__ import annotations

import argparse
import os
import sys
import threading

import pyarrow as pa
import sabot as sb

SCHEMA = pa.schema(
    [("id", pa.int64()), ("key", pa.int64()), ("ts", pa.int64()), ("value", pa.int64())]
)


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--input", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--checkpoint-dir", required=True)
    parser.add_argument("--job-name", required=True)
    parser.add_argument("--interval-ms", type=int, default=300)
    parser.add_argument("--parallelism", type=int, default=2)
    parser.add_argument("--delivery", default="exactly_once")
    args = parser.parse_args()

    say(f"started {os.getpid()}")
    p = args.parallelism
    env = sb.Environment(parallelism=p, num_threads=p)
    events = sb.kafka.source(
        env,
        args.input,
        bootstrap=args.bootstrap,
        group=f"{args.job_name}-input",
        format="json",
        schema=SCHEMA,
        assignment="static",
        start="earliest",
        metadata=["partition"],
        parallelism=p,
    ).uid("source")
    # Watermarks per partition: after a restore (or the broker restart) one
    # partition's backlog may be read well before another's.
    timed = events.with_watermarks("ts", max_out_of_orderness="2s", per_split="partition").uid(
        "watermarks"
    )
    unique = timed.key_by("id").deduplicate(keep="first").uid("dedup")
    windows = (
        unique.key_by("key")
        .window(sb.tumbling("1s"))
        .agg(n=sb.count(), total=sb.sum("value"))
        .uid("window")
    )
    sink = windows.write_kafka(
        args.output,
        bootstrap=args.bootstrap,
        format="json",
        key="key",
        delivery=args.delivery,
        uid="sink",
        transaction_timeout_ms=30_000,
    )
    handle = env.start(
        checkpoint_dir=args.checkpoint_dir,
        checkpoint_interval_ms=args.interval_ms,
        retain_checkpoints=3,
        restore="latest",
        job_name=args.job_name,
    )

    tick = threading.Event()
    restored_said = False
    in_progress = completed = started = done = -1
    recovered = (0, 0)
    while not handle.done():
        c = handle.checkpoint_stats()
        s = sink.snapshot()
        if not restored_said:
            say(f"restored {c.get('restored_id', -1)}")
            restored_said = True
        if c["in_progress_id"] >= 0 and c["in_progress_id"] != in_progress:
            in_progress = c["in_progress_id"]
            say(f"checkpoint {in_progress}")
        if c["last_completed_id"] != completed:
            completed = c["last_completed_id"]
            say(f"checkpointed {completed}")
        if s["transactions_started"] != started:
            started = s["transactions_started"]
            say(f"commit {started}")
        if (s["recommitted_epochs"], s["skipped_epochs"]) != recovered:
            recovered = (s["recommitted_epochs"], s["skipped_epochs"])
            say(f"recovered {recovered[0]} {recovered[1]}")
        finished = s["transactions"] + s["aborted"]
        if finished != done:
            done = finished
            say(f"committed {done}")
        tick.wait(0.002)
    try:
        handle.wait()
    except Exception as e:  # the driver restarts the worker; the message goes to its log
        say(f"failed {str(e).splitlines()[0] if str(e) else type(e).__name__}")
        print(e, file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
