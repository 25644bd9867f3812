"""The worker CLI (``sabot -A module:app ...``) against the real broker:
a worker processes records, SIGTERM shuts it down gracefully with every
processed offset committed; agents / send / status commands."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from faust_testutil import unique
from sabot import kafka as sk

APP = """
import sabot as faust

app = faust.App({app_id!r}, broker="kafka://{bootstrap}", broker_commit_interval=0.1)
numbers = app.topic({topic!r}, value_type=int, partitions=2)
out = app.topic({out!r}, value_type=int, partitions=1)


@app.agent(numbers, sink=[out])
async def double(stream):
    \"\"\"Doubles numbers.\"\"\"
    async for n in stream:
        yield n * 2
"""


def _cli(*args: str, cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sabot.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def _read_topic(topic: str, n: int, timeout: float = 60) -> list[int]:
    import confluent_kafka as ck

    c = ck.Consumer(
        {
            "bootstrap.servers": sk.DEFAULT_BOOTSTRAP,
            "group.id": unique("rd"),
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    c.subscribe([topic])
    out: list[int] = []
    import time

    deadline = time.monotonic() + timeout
    try:
        while len(out) < n and time.monotonic() < deadline:
            for m in c.consume(1000, 0.5):
                if m.error() is None:
                    out.append(json.loads(m.value()))
    finally:
        c.close()
    return out


def test_worker_runs_and_sigterm_commits(tmp_path: Path, kafka_bootstrap: str) -> None:
    app_id, topic, out = unique("fw-app"), unique("fw-in"), unique("fw-out")
    (tmp_path / "wapp.py").write_text(
        APP.format(app_id=app_id, bootstrap=kafka_bootstrap, topic=topic, out=out)
    )
    r = _cli("-A", "wapp:app", "agents", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "double" in r.stdout and topic in r.stdout and "Doubles numbers." in r.stdout

    proc = subprocess.Popen(
        [sys.executable, "-m", "sabot.cli", "-A", "wapp:app", "worker", "-l", "info"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    ready = threading.Event()
    lines: list[str] = []

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if "worker ready" in line:
                ready.set()

    threading.Thread(target=pump, daemon=True).start()
    try:
        assert ready.wait(60), "worker did not become ready"
        r = _cli("-A", "wapp:app", "send", topic, "0", "--key", "k0", cwd=tmp_path)
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["topic"] == topic
        import confluent_kafka as ck

        producer = ck.Producer({"bootstrap.servers": kafka_bootstrap})
        for i in range(1, 20):
            producer.produce(topic, key=f"k{i}".encode(), value=str(i).encode())
        assert producer.flush(30) == 0
        got = _read_topic(out, 20)
        assert sorted(got) == [2 * i for i in range(20)]
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    stderr = proc.stderr.read() if proc.stderr else ""
    assert rc == 0, stderr
    assert any("worker stopped" in line for line in lines), lines
    # every processed record's offset is committed
    r = _cli("-A", "wapp:app", "status", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    status = json.loads(r.stdout)
    parts = status["topics"][topic]["partitions"]
    assert sum(p["end"] for p in parts) == 20
    assert all(p["lag"] == 0 for p in parts), parts
