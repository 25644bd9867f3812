"""The Faust layer's memory footprint (docs/design/faust_memory.md): a
per-record worker loads neither pyarrow, numpy nor confluent-kafka (checked in
fresh subprocesses, memory broker and real Kafka), and the C++ conversions and
native producer it uses instead agree with pyarrow / the broker."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import subprocess
import sys
import textwrap
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
import sabot
from faust_testutil import run, unique, wait_until
from sabot import _sabot
from sabot import kafka as sk

HEAVY = ("pyarrow", "numpy", "confluent_kafka", "sabot.datastream", "sabot.nexmark")


def _run_script(body: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Runs ``body`` in a fresh interpreter; it ends by printing one JSON line."""
    out = subprocess.run(
        [sys.executable, "-c", body],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
        env=env,
    )
    assert out.returncode == 0, out.stderr[-4000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


REPORT = """
import json, sys
heavy = sorted(m for m in {heavy!r} if m in sys.modules)
print(json.dumps({{"heavy": heavy, **result}}))
"""


def test_import_sabot_and_faust_is_light() -> None:
    body = textwrap.dedent(
        """
        import sabot, sabot.faust, sabot.cli
        import sabot as faust
        faust.App, faust.Record, faust.TumblingWindow, faust.Topic
        result = {}
        """
    )
    res = _run_script(body + REPORT.format(heavy=HEAVY))
    assert res["heavy"] == []


def test_public_names_resolve_lazily() -> None:
    for name in sabot.__all__:
        assert getattr(sabot, name) is not None, name
    assert set(sabot.__all__) <= set(dir(sabot))
    assert sabot.Environment is sabot.datastream.Environment
    assert sabot.max is sabot.window.max  # the DataStream aggregate, not the builtin
    assert sabot.Window is sabot.window.Window  # the DataStream API's wins over Faust's
    assert sabot.App is sabot.faust.App
    with pytest.raises(AttributeError):
        sabot.no_such_name  # noqa: B018


AGENT_APP = """
import asyncio, sys
from datetime import timedelta
import sabot as faust

app = faust.App(APP_ID, broker=BROKER, store="memory://", value_serializer="json")
src = app.topic(SRC, key_type=str, value_serializer="json", partitions=2)
dst = app.topic(DST, key_type=str, value_serializer="json", partitions=1)
counts = (
    app.Table("counts", default=int, partitions=2)
    .tumbling(3600.0, expires=timedelta(hours=2))
    .relative_to_stream()
)
seen = []

@app.agent(src)
async def count(stream):
    async for ev in stream:
        counts[ev["key"]] += 1
        await dst.send(key=ev["key"], value={"key": ev["key"], "n": counts[ev["key"]].current()})
        seen.append(ev["i"])

async def main():
    await app.start()
    futs = [await src.send(key=f"k{i % 7}", value={"key": f"k{i % 7}", "i": i}) for i in range(N)]
    await asyncio.gather(*futs)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 90
    while len(seen) < N and loop.time() < deadline:
        await asyncio.sleep(0.01)
    await app.stop()
    await app.close()

asyncio.run(main())
final = {k: counts[k].current() for k in sorted({f"k{i % 7}" for i in range(N)})}
result = {"seen": sorted(seen), "counts": final}
"""


def _expected_counts(n: int) -> dict[str, int]:
    out: dict[str, int] = {}
    for i in range(n):
        out[f"k{i % 7}"] = out.get(f"k{i % 7}", 0) + 1
    return out


def test_per_record_agent_memory_broker_needs_no_pyarrow() -> None:
    n = 300
    head = f"APP_ID, BROKER, SRC, DST, N = 'fp-mem', 'memory://', 'ev', 'out', {n}\n"
    res = _run_script(head + AGENT_APP + REPORT.format(heavy=HEAVY))
    assert res["seen"] == list(range(n))
    assert res["counts"] == _expected_counts(n)
    assert res["heavy"] == []


def test_per_record_agent_kafka_needs_no_pyarrow_nor_confluent(kafka_bootstrap: str) -> None:
    n = 300
    head = (
        f"APP_ID, BROKER, SRC, DST, N = {unique('fp-app')!r}, 'kafka://{kafka_bootstrap}', "
        f"{unique('fp-src')!r}, {unique('fp-dst')!r}, {n}\n"
    )
    res = _run_script(head + AGENT_APP + REPORT.format(heavy=HEAVY))
    assert res["seen"] == list(range(n))
    assert res["counts"] == _expected_counts(n)
    assert res["heavy"] == []


# -- C++ Arrow -> Python conversion (faust_columns.cc) against pyarrow -------------------


def _native(arr: pa.Array) -> list[Any]:
    return _sabot.arrow_to_pylist(arr.__arrow_c_array__())


CASES = [
    pa.array([True, None, False]),
    pa.array([-128, None, 127], pa.int8()),
    pa.array([-(2**15), None, 2**15 - 1], pa.int16()),
    pa.array([-(2**31), None, 2**31 - 1], pa.int32()),
    pa.array([-(2**63), None, 2**63 - 1], pa.int64()),
    pa.array([0, None, 255], pa.uint8()),
    pa.array([0, None, 2**16 - 1], pa.uint16()),
    pa.array([0, None, 2**32 - 1], pa.uint32()),
    pa.array([0, None, 2**64 - 1], pa.uint64()),
    pa.array(np.array([1.5, -2.25, 65504.0], dtype=np.float16)),
    pa.array([1.5, None, -3.25e30], pa.float32()),
    pa.array([1.5, None, -1e300], pa.float64()),
    pa.array(["a", None, "", "ünï©ødé ✓"]),
    pa.array(["x", None, "yy"], pa.large_string()),
    pa.array([b"\x00\xff", None, b""]),
    pa.array([b"ab", None], pa.large_binary()),
    pa.array([None, None], pa.null()),
    pa.array(["a", None, "b", "a"]).dictionary_encode(),
]


@pytest.mark.parametrize("arr", CASES, ids=[str(a.type) for a in CASES])
def test_arrow_to_pylist_matches_pyarrow(arr: pa.Array) -> None:
    assert _native(arr) == arr.to_pylist()
    sliced = arr.slice(1)
    assert _native(sliced) == sliced.to_pylist()


def test_arrow_to_pylist_headers_map_as_dicts() -> None:
    ty = pa.map_(pa.string(), pa.binary())
    arr = pa.array([[("a", b"1"), ("b", None)], None, [], [("c", b"")]], type=ty)
    expected = [None if x is None else dict(x) for x in arr.to_pylist()]
    assert _native(arr) == expected
    assert _native(arr.slice(2)) == expected[2:]


@pytest.mark.parametrize(
    ("arr", "raw"),
    [
        (pa.array([dt.datetime(2024, 1, 2, 3, 4, 5), None], pa.timestamp("ms", "UTC")), pa.int64()),
        (pa.array([dt.date(2024, 1, 2), None], pa.date32()), pa.int32()),
        (pa.array([dt.date(2024, 1, 2), None], pa.date64()), pa.int64()),
        (pa.array([dt.time(1, 2, 3), None], pa.time32("s")), pa.int32()),
        (pa.array([dt.time(1, 2, 3, 4), None], pa.time64("us")), pa.int64()),
        (pa.array([dt.timedelta(seconds=3), None], pa.duration("ms")), pa.int64()),
    ],
    ids=["timestamp", "date32", "date64", "time32", "time64", "duration"],
)
def test_arrow_to_pylist_temporal_as_raw_integers(arr: pa.Array, raw: pa.DataType) -> None:
    assert _native(arr) == arr.cast(raw).to_pylist()


def test_arrow_to_pylist_rejects_unsupported_types() -> None:
    with pytest.raises(TypeError, match="unsupported Arrow type"):
        _native(pa.array([[1, 2], None]))


# -- the native poll and producer against the broker ---------------------------------


def test_poll_batch_columns_match_pyarrow_poll(kafka_bootstrap: str) -> None:
    """Two topics; one poll handle's columns (C++) equal the pyarrow batch's
    to_pylist, its positions equal max offset + 1 per partition, and
    select_topics keeps exactly one topic's rows."""
    t1, t2 = unique("fp-poll-a"), unique("fp-poll-b")
    for t in (t1, t2):
        sk.create_topic(t, 2, bootstrap=kafka_bootstrap)

    async def produce() -> None:
        from sabot.faust.transport.kafka import KafkaTransport

        tr = KafkaTransport(f"kafka://{kafka_bootstrap}")
        futs = []
        for i in range(40):
            key = None if i % 5 == 0 else f"k{i}".encode()
            value = None if i % 9 == 0 else json.dumps({"i": i}).encode()
            headers = {"h": f"v{i}"} if i % 3 == 0 else None
            futs.append(
                tr.send_soon(t1 if i % 2 else t2, key, value, None, headers, 1_700_000_000_000 + i)
            )
        mds = await asyncio.gather(*futs)
        assert all(md.offset >= 0 for md in mds)
        await tr.close()

    run(produce(), timeout=60)
    native = _sabot.KafkaBatchConsumer(
        kafka_bootstrap, [t1, t2], unique("fp-g"), "earliest", None, {}
    )
    handles = []
    got = 0
    for _ in range(200):
        h = native.poll_batch(1000, 200)
        if h.num_rows:
            handles.append(h)
            got += h.num_rows
        if got >= 40:
            break
    native.close()
    assert got == 40
    rows: list[dict[str, Any]] = []
    for h in handles:
        rb = pa.record_batch(_Caps(h.messages()))
        for name in ("topic", "partition", "offset", "timestamp", "key", "value"):
            assert h.column(name) == rb.column(name).to_pylist(), name
        hdrs = [None if x is None else dict(x) for x in rb.column("headers").to_pylist()]
        assert h.column("headers") == hdrs
        pos: dict[tuple[str, int], int] = {}
        for t, p, o in zip(
            h.column("topic"), h.column("partition"), h.column("offset"), strict=True
        ):
            pos[(t, p)] = max(pos.get((t, p), 0), o + 1)
        assert h.positions() == pos
        only = h.select_topics([t1])
        assert set(only.column("topic")) <= {t1}
        assert only.column("offset") == [
            o for t, o in zip(h.column("topic"), h.column("offset"), strict=True) if t == t1
        ]
        rows += rb.to_pylist()
    values = sorted(json.loads(r["value"])["i"] for r in rows if r["value"] is not None)
    assert values == [i for i in range(40) if i % 9]
    assert sum(1 for r in rows if r["headers"]) == len(range(0, 40, 3))
    assert all(r["timestamp"] >= 1_700_000_000_000 for r in rows)


class _Caps:
    def __init__(self, caps: Any) -> None:
        self.caps = caps

    def __arrow_c_array__(self, requested_schema: Any = None) -> Any:
        return self.caps


def test_native_producer_metadata_and_keys(kafka_bootstrap: str) -> None:
    """Delivery metadata of the native producer: partitions as Kafka's Java
    partitioner, offsets dense per partition; a send to a partition that does
    not exist fails instead of hanging."""
    topic = unique("fp-prod")
    sk.create_topic(topic, 3, bootstrap=kafka_bootstrap)

    async def main() -> None:
        from sabot.faust.transport.kafka import KafkaTransport

        tr = KafkaTransport(f"kafka://{kafka_bootstrap}")
        tr.producer_config = {"message.timeout.ms": 10000}
        mds = [await tr.send(topic, f"key{i}".encode(), b"v", None) for i in range(30)]
        for i, md in enumerate(mds):
            assert md.topic == topic
            assert md.partition == sk.partition_for_key(f"key{i}", 3)
        per_part: dict[int, list[int]] = {}
        for md in mds:
            per_part.setdefault(md.partition, []).append(md.offset)
        for offsets in per_part.values():
            assert offsets == list(range(len(offsets)))
        with pytest.raises(RuntimeError):
            await tr.send(topic, b"k", b"v", 7)
        await tr.close()

    run(main(), timeout=90)


# -- the worker's memory-lean defaults --------------------------------------------------

LEAN_SCRIPT = textwrap.dedent(
    """
    import json, os
    from sabot import _sabot
    from sabot.faust.worker import lean_memory_defaults
    lean_memory_defaults()
    import pyarrow as pa
    print(json.dumps({
        "env": os.environ.get("ARROW_DEFAULT_MEMORY_POOL"),
        "pool": pa.default_memory_pool().backend_name,
        "arena_cap_supported": _sabot.malloc_arena_max(2),
    }))
    """
)


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("ARROW_DEFAULT_MEMORY_POOL",)}
    env.pop("SABOT_FAUST_LEAN_MEMORY", None)
    env.update(extra)
    return env


def test_lean_memory_defaults_apply_and_yield_to_the_user() -> None:
    res = _run_script(LEAN_SCRIPT, _clean_env())
    assert res["env"] == "system"
    assert res["pool"] == "system"
    assert res["arena_cap_supported"] is True  # glibc on the CI machines
    # the user's choice wins
    res = _run_script(LEAN_SCRIPT, _clean_env(ARROW_DEFAULT_MEMORY_POOL="mimalloc"))
    assert (res["env"], res["pool"]) == ("mimalloc", "mimalloc")
    # and all of it can be turned off
    res = _run_script(LEAN_SCRIPT, _clean_env(SABOT_FAUST_LEAN_MEMORY="0"))
    assert res["env"] is None
    assert res["pool"] != "system"


def test_app_defaults_poll_sizes() -> None:
    app = sabot.App("fp-conf", broker="memory://")
    assert app.conf.batch_size == 512
    assert app.conf.arrow_batch_size == 4096
    app = sabot.App("fp-conf2", broker="memory://", batch_size=300, arrow_batch_size=9000)
    assert (app.conf.batch_size, app.conf.arrow_batch_size) == (300, 9000)


@pytest.mark.parametrize("mode", ["records", "batches"])
def test_prefetch_follows_the_agent_kind(kafka_bootstrap: str, mode: str) -> None:
    """A per-record agent's consumer prefetches 1 MiB and polls 512 records,
    its producer queues 2,000; a stream.batches() agent's prefetches 8 MiB,
    polls arrow_batch_size and its producer queues 20,000."""
    topic = unique("fp-pref")

    async def main() -> None:
        app = sabot.App(unique("fp-pref-app"), broker=f"kafka://{kafka_bootstrap}")
        src = app.topic(topic, value_serializer="json", partitions=1)
        seen: list[int] = []

        if mode == "batches":

            @app.agent(src)
            async def agent(stream):
                async for batch in stream.batches():
                    seen.append(batch.num_rows)

        else:

            @app.agent(src)
            async def agent(stream):  # noqa: F811 - one of the two per run
                async for _value in stream:
                    seen.append(1)

        await app.start()
        hub = app._shared_consumer
        # the consumer is made once the bodies started iterating
        await wait_until(lambda: hub.consumer is not None, timeout=30, what="the consumer")
        await src.send(value={"x": 1})
        await wait_until(lambda: sum(seen) >= 1, timeout=60, what="the record")
        consumer = hub.consumer
        if mode == "batches":
            assert consumer.arrow
            assert consumer.config["queued.max.messages.kbytes"] == 8192
            assert hub.batch_size == app.conf.arrow_batch_size
            assert app.transport.producer_queue == 20000
        else:
            assert not consumer.arrow
            assert consumer.config["queued.max.messages.kbytes"] == 1024
            assert hub.batch_size == app.conf.batch_size
            assert app.transport.producer_queue == 2000
        await app.stop()
        await app.close()

    run(main(), timeout=120)
