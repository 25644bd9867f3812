"""The worker CLI (``sabot -A module:app ...``) against the real broker:
a worker processes records, SIGTERM shuts it down gracefully with every
processed offset committed; agents / send / status commands."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
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
        [
            sys.executable,
            "-m",
            "sabot.cli",
            "-A",
            "wapp:app",
            "worker",
            "-l",
            "info",
            "--web-port",
            "0",
        ],
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


CRASH_APP = """
import asyncio
import os
import sabot as faust

app = faust.App({app_id!r}, broker="kafka://{bootstrap}", broker_commit_interval=0.05,
                batch_size=32)
numbers = app.topic({topic!r}, value_type=int, partitions=2)
log = open({log!r}, "a", buffering=1)


@app.agent(numbers, concurrency=4)
async def work(stream):
    async for n in stream:
        if n % 7 == 0:
            await asyncio.sleep(0.01)   # out-of-order completion across actors
        log.write(f"{{n}}\\n")
"""


def test_sigkill_mid_stream_loses_nothing(tmp_path: Path, kafka_bootstrap: str) -> None:
    """A worker killed with SIGKILL while records are in flight (concurrency 4,
    out-of-order completion) restarts from its commits: every record is
    processed at least once, none is skipped."""
    import time

    import confluent_kafka as ck

    app_id, topic = unique("fk-app"), unique("fk-in")
    log = tmp_path / "processed.log"
    (tmp_path / "kapp.py").write_text(
        CRASH_APP.format(app_id=app_id, bootstrap=kafka_bootstrap, topic=topic, log=str(log))
    )
    sk.create_topic(topic, 2, bootstrap=kafka_bootstrap)
    producer = ck.Producer({"bootstrap.servers": kafka_bootstrap})
    total = 3000
    for i in range(total):
        producer.produce(topic, key=str(i).encode(), value=str(i).encode())
    assert producer.flush(30) == 0

    def processed() -> list[int]:
        if not log.exists():
            return []
        return [int(x) for x in log.read_text().split()]

    def start() -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-m", "sabot.cli", "-A", "kapp:app", "worker", "--web-port", "0"],
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )

    def wait_for(pred, timeout: float, what: str) -> None:  # noqa: ANN001
        deadline = time.monotonic() + timeout
        while not pred():
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            threading.Event().wait(0.05)

    proc = start()
    try:
        wait_for(lambda: len(processed()) >= 300, 90, "300 processed records")
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        first = len(processed())
        assert first < total, "the kill came too late to test anything"
        proc = start()
        wait_for(lambda: set(processed()) >= set(range(total)), 120, "every record")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    got = processed()
    assert set(got) == set(range(total))  # nothing skipped
    assert len(got) >= total  # at-least-once: re-processing allowed after the kill


def test_agents_and_tables_commands_in_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from sabot.faust.worker import main

    mod = unique("capp").replace("-", "_")
    (tmp_path / f"{mod}.py").write_text(
        textwrap.dedent(
            """
            import sabot as faust
            app = faust.App("capp", broker="memory://")
            counts = app.Table("counts", default=int)

            @app.agent(app.topic("words"), concurrency=2)
            async def count(stream):
                '''Counts words.'''
                async for w in stream:
                    counts[w] += 1
            """
        )
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert main(["-A", f"{mod}:app", "agents", "--json"]) == 0
    agents = json.loads(capsys.readouterr().out)
    assert agents == [
        {"name": "count", "topic": "words", "concurrency": "2", "help": "Counts words."}
    ]
    assert main(["-A", f"{mod}:app", "tables", "--json"]) == 0
    tables = json.loads(capsys.readouterr().out)
    assert [t["name"] for t in tables] == ["counts"] and tables[0]["kind"] == "Table"
