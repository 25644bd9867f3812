"""The app that bench/faust_bench.py runs on faust-streaming and on Sabot.

One source file for both: ``BENCH_IMPL=faust`` imports ``faust`` (faust-streaming,
from ``.venv-faust``), anything else runs ``import sabot as faust``. That import
is the only difference between the two per-record runs.

JSON events ``{"key": str, "ts": ms, "amount": int}`` -> per-key counts in a
tumbling table (10 s windows by the event's Kafka timestamp) -> one JSON
message per event on the output topic ``{"key", "count", "ts", "n": 1}``.

``BENCH_MODE=batches`` (Sabot only) runs the same logic on Arrow record batches
from ``stream.batches()``: counts are taken per key and batch with pyarrow,
added to the same table, and one output message per key and batch carries
``n`` (the events it covers) and ``ts`` (the oldest event time among them).

The agent reads two topics: the shared backlog (``BENCH_IN_TOPIC``) and the
run's own topic of live events for the latency phase (``BENCH_LIVE_TOPIC``).

Environment: BENCH_APP_ID, BENCH_IN_TOPIC, BENCH_LIVE_TOPIC, BENCH_OUT_TOPIC, BENCH_PARTITIONS,
BENCH_BOOTSTRAP (default 127.0.0.1:19092).
"""

from __future__ import annotations

import os
from datetime import timedelta

if os.environ.get("BENCH_IMPL") == "faust":
    import faust
else:
    import sabot as faust

IN_TOPIC = os.environ.get("BENCH_IN_TOPIC", "faust-bench-in")
OUT_TOPIC = os.environ.get("BENCH_OUT_TOPIC", "faust-bench-out")
PARTITIONS = int(os.environ.get("BENCH_PARTITIONS", "4"))
BOOTSTRAP = os.environ.get("BENCH_BOOTSTRAP", "127.0.0.1:19092")
MODE = os.environ.get("BENCH_MODE", "record")
WINDOW_SECONDS = 10.0

app = faust.App(
    os.environ.get("BENCH_APP_ID", "faust-bench"),
    broker=f"kafka://{BOOTSTRAP}",
    store="memory://",
    topic_partitions=PARTITIONS,
    value_serializer="json",
)
LIVE_TOPIC = os.environ.get("BENCH_LIVE_TOPIC", "faust-bench-live")
events_topic = app.topic(IN_TOPIC, LIVE_TOPIC, key_type=str, value_serializer="json")
out_topic = app.topic(OUT_TOPIC, key_type=str, value_serializer="json")
counts = (
    app.Table("bench-counts", default=int, partitions=PARTITIONS)
    .tumbling(WINDOW_SECONDS, expires=timedelta(hours=1))
    .relative_to_stream()
)


if MODE == "batches":

    @app.agent(events_topic)
    async def count_batches(stream):
        import pyarrow as pa

        async for batch in stream.batches():
            per_key = (
                pa.table(batch)
                .group_by("key")
                .aggregate([("key", "count"), ("ts", "min")])
                .to_pydict()
            )
            for key, n, ts in zip(
                per_key["key"], per_key["key_count"], per_key["ts_min"], strict=True
            ):
                counts[key] += n
                await out_topic.send(
                    key=key,
                    value={"key": key, "count": counts[key].current(), "ts": ts, "n": n},
                )

else:

    @app.agent(events_topic)
    async def count_events(stream):
        async for event in stream:
            key = event["key"]
            counts[key] += 1
            await out_topic.send(
                key=key,
                value={"key": key, "count": counts[key].current(), "ts": event["ts"], "n": 1},
            )


if __name__ == "__main__":
    app.main()
