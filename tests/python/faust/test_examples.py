"""The Faust-style examples (examples/faust/) run as real workers,
``sabot -A examples.faust.<name>:app worker``, against the real broker; inputs
are produced and outputs read with confluent-kafka (not through Sabot), and
outputs are checked against plain-Python references."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[3]
# The `sabot` console script of this interpreter's environment.
SABOT = Path(sys.executable).parent / "sabot"
SABOT_CMD = [str(SABOT)] if SABOT.exists() else [sys.executable, "-m", "sabot.cli"]
DEADLINE_S = 90.0


@pytest.fixture
def broker(kafka_bootstrap: str) -> str:
    return kafka_bootstrap


def precreate(bootstrap: str, topics: dict[str, int], compacted: bool = False) -> None:
    """Creates topics and waits until every partition answers offset requests
    (a busy broker can still lack a leader right after creating a topic)."""
    from confluent_kafka import Consumer, TopicPartition
    from confluent_kafka.admin import AdminClient, NewTopic

    config = {"cleanup.policy": "compact"} if compacted else {}
    admin = AdminClient({"bootstrap.servers": bootstrap})
    new = [NewTopic(t, n, 1, config=config) for t, n in topics.items()]
    for fut in admin.create_topics(new).values():
        fut.result(30)
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "precreate"})
    deadline = time.monotonic() + DEADLINE_S
    try:
        for topic, n in topics.items():
            for p in range(n):
                while True:
                    try:
                        c.get_watermark_offsets(TopicPartition(topic, p), timeout=5)
                        break
                    except Exception:
                        if time.monotonic() > deadline:
                            raise
                        threading.Event().wait(0.2)
    finally:
        c.close()


class Worker:
    """``sabot -A examples.faust.<name>:app worker`` in a subprocess. ``tables``
    names the app's tables (4 partitions each) whose changelog topics are
    created first."""

    def __init__(
        self,
        name: str,
        bootstrap: str,
        extra: list[str] | None = None,
        app_id: str | None = None,
        tables: tuple[str, ...] = (),
        members: int = 0,
    ) -> None:
        self.suffix = f"-{uuid.uuid4().hex[:8]}"
        if tables:
            precreate(
                bootstrap,
                {f"{app_id}{self.suffix}-{t}-changelog": 4 for t in tables},
                compacted=True,
            )
        env = dict(
            os.environ,
            SABOT_BROKER=f"kafka://{bootstrap}",
            SABOT_EXAMPLE_SUFFIX=self.suffix,
            PYTHONUNBUFFERED="1",
        )
        self.proc = subprocess.Popen(
            [
                *SABOT_CMD,
                "-A",
                f"examples.faust.{name}:app",
                "worker",
                "-l",
                "info",
                *(extra or ["--web-port", str(free_port())]),
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self.ready = threading.Event()
        self.changed = threading.Condition()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        if not self.ready.wait(DEADLINE_S) or self.proc.poll() is not None:
            self.stop()
            raise AssertionError(f"worker {name} did not start:\n{self.output()}")
        if members:
            try:
                self.wait_group_stable(bootstrap, f"{app_id}{self.suffix}", members)
            except BaseException:
                self.stop()
                raise

    def wait_group_stable(self, bootstrap: str, group: str, members: int) -> None:
        """Waits until the app's consumer group has settled: ``members``
        consumers (one per app, shared by its agents), each assigned
        partitions. Records sent before that can be fetched by a consumer that
        then loses their partition in the start-up rebalance and be processed
        again by the new owner (at-least-once)."""
        from confluent_kafka import ConsumerGroupState
        from confluent_kafka.admin import AdminClient

        admin = AdminClient({"bootstrap.servers": bootstrap})
        deadline = time.monotonic() + DEADLINE_S
        seen = None
        while time.monotonic() < deadline and self.proc.poll() is None:
            d = admin.describe_consumer_groups([group])[group].result(10)
            seen = (d.state, [len(m.assignment.topic_partitions) for m in d.members])
            if d.state == ConsumerGroupState.STABLE and len(d.members) == members and all(seen[1]):
                return
            threading.Event().wait(0.2)
        raise AssertionError(f"group {group} did not settle ({seen}):\n{self.output()}")

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self.changed:
                self.lines.append(line.rstrip("\n"))
                self.changed.notify_all()
            if "worker ready" in line:
                self.ready.set()
        self.ready.set()

    def output(self) -> str:
        return "\n".join(self.lines[-60:])

    def wait_lines(self, pred: Callable[[list[str]], bool], what: str) -> None:
        deadline = time.monotonic() + DEADLINE_S
        with self.changed:
            while not pred(self.lines):
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    raise AssertionError(f"timed out waiting for {what}:\n{self.output()}")
                self.changed.wait(min(left, 0.5))

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.reader.join(10)
        return self.proc.returncode


def produce(
    bootstrap: str, topic: str, records: list[tuple[str | None, Any]], raw: bool = False
) -> None:
    from confluent_kafka import Producer

    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for key, value in records:
        data = value.encode() if raw else json.dumps(value).encode()
        p.produce(topic, data, key.encode() if key is not None else None)
    assert p.flush(30) == 0, f"undelivered records to {topic}"


def _decode(data: bytes | None) -> Any:
    if data is None:
        return None
    try:
        return json.loads(data)
    except ValueError:
        return data.decode()


def consume_until(
    bootstrap: str,
    topic: str,
    done: Callable[[list[tuple[Any, Any]]], bool],
    what: str,
    worker: Worker,
    explain: Callable[[list[tuple[Any, Any]]], str] | None = None,
) -> list[tuple[Any, Any]]:
    """Reads ``topic`` from the beginning until ``done(records)``."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    c = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"check-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
        }
    )
    deadline = time.monotonic() + DEADLINE_S
    try:
        while True:  # the worker creates the topic; wait for its metadata
            md = c.list_topics(topic, timeout=5).topics.get(topic)
            if md is not None and md.error is None and md.partitions:
                break
            if time.monotonic() > deadline:
                raise AssertionError(f"topic {topic} never appeared:\n{worker.output()}")
            threading.Event().wait(0.2)
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in md.partitions])
        records: list[tuple[Any, Any]] = []
        while not done(records):
            if time.monotonic() > deadline or worker.proc.poll() is not None:
                detail = explain(records) if explain else f"last: {records[-5:]}"
                raise AssertionError(
                    f"timed out waiting for {what} on {topic} ({len(records)} records, "
                    f"{detail}):\n{worker.output()}"
                )
            for m in c.consume(500, timeout=0.2):
                if m.error() is None:
                    records.append((_decode(m.key()), _decode(m.value())))
        return records
    finally:
        c.close()


def wait_committed(bootstrap: str, group: str, topic: str, worker: Worker) -> None:
    """Waits until ``group`` committed the end offsets of every partition of
    ``topic`` (the worker commits only what its agents processed)."""
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    deadline = time.monotonic() + DEADLINE_S
    try:
        md = c.list_topics(topic, timeout=10).topics[topic]
        parts = [TopicPartition(topic, p) for p in md.partitions]
        ends = {tp.partition: c.get_watermark_offsets(tp, timeout=10)[1] for tp in parts}
        while True:
            committed = {tp.partition: tp.offset for tp in c.committed(parts, timeout=10)}
            if all(committed[p] >= end for p, end in ends.items() if end > 0):
                return
            if time.monotonic() > deadline or worker.proc.poll() is not None:
                raise AssertionError(
                    f"group {group} committed {committed}, end offsets {ends}:\n{worker.output()}"
                )
            threading.Event().wait(0.2)
    finally:
        c.close()


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_hello_world(broker: str) -> None:
    w = Worker("hello_world", broker, app_id="hello-world", members=1)
    try:
        names = [f"name-{i}" for i in range(20)]
        produce(broker, f"greetings{w.suffix}", [(None, n) for n in names], raw=True)
        expected = [f"Hello, {n}!" for n in names]
        w.wait_lines(
            lambda lines: sum(line in expected for line in lines) >= len(names), "20 greetings"
        )
    finally:
        assert w.stop() == 0, w.output()
    greeted = [line for line in w.lines if line.startswith("Hello, ")]
    assert sorted(greeted) == sorted(expected)  # each exactly once
    assert any("worker stopped" in line for line in w.lines)


def test_word_count(broker: str) -> None:
    port = free_port()
    w = Worker(
        "word_count",
        broker,
        ["--web-port", str(port)],
        app_id="word-counts",
        tables=("word_counts",),
        members=1,  # one consumer per app for both agents (transport/shared.py)
    )
    rng = random.Random(3)
    vocab = ["the", "cat", "sat", "on", "mat", "a", "hat", "and", "dog", "ran"]
    posts = [" ".join(rng.choice(vocab) for _ in range(rng.randrange(1, 12))) for _ in range(300)]
    reference = Counter(word for post in posts for word in post.split())
    try:
        produce(broker, f"posts{w.suffix}", [(None, p) for p in posts])
        changelog = f"word-counts{w.suffix}-word_counts-changelog"

        def final_counts(records: list[tuple[Any, Any]]) -> dict[str, int]:
            last: dict[str, int] = {}
            for k, v in records:
                last[k] = v
            return last

        records = consume_until(
            broker,
            changelog,
            lambda r: final_counts(r) == dict(reference),
            "the reference counts",
            w,
            lambda r: f"got {sorted(final_counts(r).items())}, want {sorted(reference.items())}",
        )
        assert final_counts(records) == dict(reference)
        # The web page reads the table.
        for word in ("the", "dog", "unicorn"):
            with urllib.request.urlopen(
                f"http://127.0.0.1:{port}/count/{word}/", timeout=10
            ) as resp:
                assert json.load(resp) == {word: reference.get(word, 0)}
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/status", timeout=10) as resp:
            status = json.load(resp)
        assert {a["name"].rsplit(".", 1)[-1] for a in status["agents"]} == {
            "shuffle_words",
            "count_words",
        }
        assert sum(a["crashes"] for a in status["agents"]) == 0
    finally:
        assert w.stop() == 0, w.output()


def test_page_views(broker: str) -> None:
    w = Worker("page_views", broker, app_id="page-views", tables=("page_views",), members=1)
    rng = random.Random(5)
    t0 = 1_700_000_000.0
    views = [
        {
            "id": rng.choice(["/", "/docs", "/blog", "/pricing", "/about"]),
            "user": f"user-{rng.randrange(30)}",
            "timestamp": t0 + rng.uniform(0, 45),
        }
        for _ in range(400)
    ]
    reference = Counter((v["id"], v["timestamp"] // 10 * 10) for v in views)
    try:
        produce(broker, f"page_views{w.suffix}", [(v["user"], v) for v in views])

        def max_counts(records: list[tuple[Any, Any]]) -> dict[tuple[str, float], int]:
            best: dict[tuple[str, float], int] = {}
            for _, v in records:
                k = (v["page"], v["window"])
                best[k] = max(best.get(k, 0), v["views"])
            return best

        records = consume_until(
            broker,
            f"page-view-counts{w.suffix}",
            lambda r: len(r) >= len(views),
            "one count per view",
            w,
        )
    finally:
        assert w.stop() == 0, w.output()
    assert len(records) == len(views)
    assert max_counts(records) == dict(reference)
    # Each page's counts in a window rise 1, 2, 3, ... (one partition per page).
    per_window: dict[tuple[str, float], list[int]] = defaultdict(list)
    for _, v in records:
        per_window[(v["page"], v["window"])].append(v["views"])
    for counts in per_window.values():
        assert counts == list(range(1, len(counts) + 1))


def test_withdrawals(broker: str) -> None:
    w = Worker("withdrawals", broker, app_id="withdrawals", tables=("user_to_total",), members=1)
    rng = random.Random(9)
    t0 = datetime(2024, 1, 1, 12, 0, tzinfo=UTC)
    users = [f"user-{i}" for i in range(12)]
    rows = []
    for _ in range(500):
        amount = round(rng.choice([rng.uniform(1, 200), rng.uniform(1000, 3000)]), 2)
        rows.append(
            {
                "user": rng.choice(users),
                "country": rng.choice(["NO", "SE", "DK"]),
                "amount": amount,
                "date": (t0 + timedelta(seconds=rng.uniform(0, 299))).isoformat(),
            }
        )
    reference: dict[tuple[str, str], float] = defaultdict(float)
    for r in rows:
        at = datetime.fromisoformat(r["date"])
        start = at.replace(second=0, microsecond=0)
        reference[(r["user"], start.isoformat())] += r["amount"]
    large = sorted((r["user"], r["amount"]) for r in rows if r["amount"] >= 1000)
    topic = f"withdrawals{w.suffix}"
    try:
        produce(broker, topic, [(r["user"], r) for r in rows])
        # Once everything is processed, a withdrawal an hour later moves the
        # table's time past every window's expiry: all of them close.
        wait_committed(broker, f"withdrawals{w.suffix}", topic, w)
        late = {
            "user": "closer",
            "country": "NO",
            "amount": 1.0,
            "date": (t0 + timedelta(hours=1)).isoformat(),
        }
        produce(broker, topic, [("closer", late)])
        totals = consume_until(
            broker,
            f"withdrawal-totals{w.suffix}",
            lambda r: len(r) >= len(reference),
            "a total per window",
            w,
            lambda r: (
                f"missing {sorted(set(reference) - {(v['user'], v['window']) for _, v in r})}"
            ),
        )
        alerts = consume_until(
            broker,
            f"large-withdrawals{w.suffix}",
            lambda r: len(r) >= len(large),
            "the large withdrawals",
            w,
        )
    finally:
        assert w.stop() == 0, w.output()
    got = {
        (v["user"], datetime.fromisoformat(v["window"]).isoformat()): v["total"] for _, v in totals
    }
    assert len(totals) == len(reference)  # each window closed exactly once
    assert got.keys() == reference.keys()
    for k, total in reference.items():
        assert got[k] == pytest.approx(total, rel=1e-9), k
    assert sorted((v["user"], v["amount"]) for _, v in alerts) == large


def test_ask(broker: str) -> None:
    w = Worker("ask", broker, app_id="sums", members=1)  # one consumer for both agents
    rng = random.Random(11)
    reqs = [
        {"id": i, "x": rng.randrange(-1000, 1000), "y": rng.randrange(-1000, 1000)}
        for i in range(40)
    ]
    try:
        produce(broker, f"sums-requests{w.suffix}", [(str(r["id"]), r) for r in reqs])
        results = consume_until(
            broker, f"sums-results{w.suffix}", lambda r: len(r) >= len(reqs), "a sum per request", w
        )
    finally:
        assert w.stop() == 0, w.output()
    assert sorted((v["id"], v["sum"]) for _, v in results) == sorted(
        (r["id"], r["x"] + r["y"]) for r in reqs
    )
