"""Table recovery on the real Kafka broker: a worker counts words into a table,
is killed (SIGKILL), and a new app with the same id gets the table back from
the changelog topic before its agents start."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

pytest.importorskip("sabot.faust.app")  # the App (core) lands in another branch

import sabot as faust  # noqa: E402
from faust_testutil import run, unique  # noqa: E402

APP = """
import asyncio, json, sys
import sabot as faust

app = faust.App({app_id!r}, broker="kafka://{bootstrap}", store={store!r}, topic_partitions=3)
words = app.topic({topic!r}, key_type=str, value_type=str, partitions=3)
counts = app.Table("counts", default=int)
seen = 0


@app.agent(words)
async def count(stream):
    global seen
    async for word in stream:
        counts[word] += 1
        seen += 1
        if seen == {n}:
            await counts.flush()
            print("READY", json.dumps(dict(counts.items()), sort_keys=True), flush=True)


async def main():
    await app.start()
    await asyncio.Event().wait()  # until killed


asyncio.run(main())
"""


def _produce(topic: str, words: list[str], bootstrap: str) -> None:
    import confluent_kafka as ck

    p = ck.Producer({"bootstrap.servers": bootstrap})
    for w in words:
        p.produce(topic, key=w.encode(), value=json.dumps(w).encode())
    assert p.flush(30) == 0


def _wait_for_line(proc: subprocess.Popen, prefix: str, timeout: float) -> str:
    found: list[str] = []
    ready = threading.Event()

    def reader() -> None:
        for line in proc.stdout:
            if line.startswith(prefix):
                found.append(line)
                ready.set()
                return
        ready.set()

    threading.Thread(target=reader, daemon=True).start()
    ready.wait(timeout)
    if not found:
        proc.kill()
        raise AssertionError(f"worker never printed {prefix!r}: {proc.stderr.read()[-3000:]}")
    return found[0]


def test_killed_worker_table_comes_back_from_the_changelog(
    tmp_path: Path, kafka_bootstrap: str
) -> None:
    app_id, topic = unique("ft-app"), unique("ft-words")
    rng = random.Random(21)
    words = [f"w{rng.randrange(60)}" for _ in range(3000)]
    expected = dict(Counter(words))
    (tmp_path / "wapp.py").write_text(
        APP.format(
            app_id=app_id,
            bootstrap=kafka_bootstrap,
            store=f"rocksdb://{tmp_path}",
            topic=topic,
            n=len(words),
        )
    )
    proc = subprocess.Popen(
        [sys.executable, "wapp.py"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        # the worker creates the topic; produce once it exists
        import confluent_kafka.admin as cka

        admin = cka.AdminClient({"bootstrap.servers": kafka_bootstrap})
        deadline = time.monotonic() + 300
        while topic not in admin.list_topics(timeout=10).topics:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise AssertionError(f"worker did not create {topic}: {proc.stderr.read()[-3000:]}")
            threading.Event().wait(0.1)
        _produce(topic, words, kafka_bootstrap)
        line = _wait_for_line(proc, "READY", timeout=300)
        assert json.loads(line.split(" ", 1)[1]) == expected
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)

    async def recover() -> None:
        app = faust.App(app_id, broker=f"kafka://{kafka_bootstrap}", topic_partitions=3)
        counts = app.Table("counts", default=int)
        await app.start()
        try:
            assert dict(counts.items()) == expected
            assert counts.recovered_records >= len(expected)
            info = counts.info()
            assert info["changelog_topic"] == f"{app_id}-counts-changelog"
        finally:
            await app.stop()

    run(recover(), timeout=300)
