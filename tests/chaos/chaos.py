"""Chaos test of end-to-end exactly-once: kill the worker, restart it, compare.

A producer thread writes records (id, key, ts, value) to an input topic, with a
share of exact duplicates (same id) for the job's deduplication. The worker
(tests/chaos/worker.py: Kafka -> dedup -> keyed 1 s tumbling windows -> Kafka
exactly-once, checkpoints every few hundred ms, restore="latest") is killed with
SIGKILL at least ``--kills`` times and restarted each time. The kills are aimed:
some at a random moment (also during start-up and restore), some right when a
checkpoint is in flight, some right when the sink's transaction started. The
broker is restarted once in the middle of the run. At the end every window is
flushed (a record far in the future per partition) and the output, read with
``isolation.level=read_committed``, must equal exactly the windows computed in
plain Python from the input topic as it is stored: no loss, no duplicate.

The run uses its own broker (started with scripts/kafka.sh on the first free
port pair from 29092, so concurrent runs do not share one) because it restarts
it; it is stopped at the end unless it was running before. Prints a summary
and writes a JSON report (kills with their phase and recovery time, p50/max
recovery, records).

    .venv/bin/python tests/chaos/chaos.py --kills 20 --report build/chaos/short.json
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
PARTITIONS = 4


class Broker:
    """The chaos run's own broker, through scripts/kafka.sh."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.bootstrap = f"127.0.0.1:{port}"
        self.env = dict(
            os.environ,
            SABOT_KAFKA_PORT=str(port),
            SABOT_KAFKA_CONTROLLER_PORT=str(port + 1),
        )
        self.was_up = self._run("status", check=False) == 0

    def _run(self, command: str, check: bool = True) -> int:
        r = subprocess.run(
            ["bash", str(ROOT / "scripts" / "kafka.sh"), command],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        if check and r.returncode != 0:
            raise RuntimeError(f"kafka.sh {command} on port {self.port} failed: {r.stderr}")
        return r.returncode

    def up(self) -> None:
        self._run("up")

    def down(self) -> None:
        self._run("down")


class Worker:
    """One worker process; its stdout phase lines go to a queue with timestamps."""

    def __init__(self, args: list[str], log: Path) -> None:
        self.lines: queue.Queue[tuple[float, str]] = queue.Queue()
        self.log = open(log, "a")  # noqa: SIM115 (closed in wait_dead)
        self.spawned = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "tests" / "chaos" / "worker.py"), *args],
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
            bufsize=1,
        )
        self.in_checkpoint: int | None = None
        self.in_commit = False
        self.restored: int | None = None
        self.completed: list[tuple[float, int]] = []
        self.last_line = ""
        self.recommitted = self.skipped = 0
        # The kill this worker recovers from: (its record, the time of the kill).
        self.origin: tuple[dict[str, Any], float] | None = None
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put((time.monotonic(), line.strip()))

    def pump(self, timeout: float = 0.0) -> tuple[float, str] | None:
        """Takes one phase line (waiting up to `timeout`) and tracks the phase."""
        try:
            at, line = self.lines.get(timeout=timeout) if timeout > 0 else self.lines.get_nowait()
        except queue.Empty:
            return None
        word, _, rest = line.partition(" ")
        self.last_line = line
        if word == "restored":
            self.restored = int(rest)
        elif word == "checkpoint":
            self.in_checkpoint = int(rest)
        elif word == "checkpointed":
            self.in_checkpoint = None
            if int(rest) >= 0:
                self.completed.append((at, int(rest)))
        elif word == "commit":
            self.in_commit = True
        elif word == "committed":
            self.in_commit = False
        elif word == "recovered":
            self.recommitted, self.skipped = (int(x) for x in rest.split())
        return at, line

    def phase(self) -> str:
        if self.restored is None:
            return "starting"
        if self.in_commit:
            return "commit"
        if self.in_checkpoint is not None:
            return "checkpoint"
        if not self.completed:
            return "restoring"
        return "processing"

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> float:
        at = time.monotonic()
        if self.alive():
            os.kill(self.proc.pid, signal.SIGKILL)
        self.wait_dead()
        return at

    def wait_dead(self) -> None:
        self.proc.wait()
        self.log.close()
        self.settle()

    def settle(self) -> None:
        """Records, for the kill this worker replaced, the restored checkpoint and
        the recovery time (kill -> this worker's first completed checkpoint;
        None when it was killed again before that)."""
        if self.origin is None:
            return
        record, killed_at = self.origin
        record["restored_id"] = self.restored
        record["epochs_recommitted"] = self.recommitted
        record["epochs_already_committed"] = self.skipped
        record["recovery_ms"] = (
            round((self.completed[0][0] - killed_at) * 1000) if self.completed else None
        )


class Producer(threading.Thread):
    """Writes the input: ids in order, event time 1 ms per id, some exact duplicates."""

    def __init__(self, bootstrap: str, topic: str, rate: int, keys: int, dups: float) -> None:
        super().__init__(daemon=True)
        from confluent_kafka import Producer as KafkaProducer

        self.producer = KafkaProducer(
            {
                "bootstrap.servers": bootstrap,
                "enable.idempotence": True,
                "linger.ms": 5,
                "message.timeout.ms": 300_000,
            }
        )
        self.topic = topic
        self.rate = rate
        self.keys = keys
        self.dups = dups
        self.stop = threading.Event()
        self.rng = random.Random(7)
        self.sent = 0
        self.errors: list[str] = []
        self.max_ts = 0

    def _delivered(self, err: Any, msg: Any) -> None:
        if err is not None:
            self.errors.append(str(err))

    def _send(self, record: dict[str, int], partition: int | None = None) -> None:
        value = json.dumps(record).encode()
        kwargs: dict[str, Any] = {"on_delivery": self._delivered}
        if partition is not None:
            kwargs["partition"] = partition
        while True:
            try:
                self.producer.produce(self.topic, value, str(record["id"]).encode(), **kwargs)
                break
            except BufferError:
                self.producer.poll(0.05)
        self.sent += 1

    def run(self) -> None:
        base_ts = 1_700_000_000_000
        recent: list[dict[str, int]] = []
        next_id = 0
        tick = threading.Event()
        started = time.monotonic()
        while not self.stop.is_set():
            due = int((time.monotonic() - started) * self.rate)
            while next_id < due:
                record = {
                    "id": next_id,
                    "key": self.rng.randrange(self.keys),
                    "ts": base_ts + next_id,
                    "value": self.rng.randrange(1, 100),
                }
                self._send(record)
                self.max_ts = record["ts"]
                recent.append(record)
                if len(recent) > 200:
                    recent.pop(0)
                if self.rng.random() < self.dups:
                    self._send(dict(self.rng.choice(recent)))  # an exact duplicate
                next_id += 1
            self.producer.poll(0)
            tick.wait(0.01)
        # Far-future records close every window (they open a window that never fires).
        for p in range(PARTITIONS):
            self._send({"id": -1 - p, "key": -1, "ts": self.max_ts + 60_000, "value": 0}, p)
        left = self.producer.flush(120)
        if left:
            self.errors.append(f"{left} input messages not delivered")


def read_topic(bootstrap: str, topic: str, committed: bool, timeout: float = 60.0) -> list[dict]:
    """Every message of `topic` from the beginning to its end (the last stable
    offset for read_committed), decoded from JSON."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"chaos-read-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "isolation.level": "read_committed" if committed else "read_uncommitted",
        }
    )
    parts = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    consumer.assign([TopicPartition(topic, p, 0) for p in parts])
    out: list[dict] = []
    at_end: set[int] = set()
    deadline = time.monotonic() + timeout
    while len(at_end) < len(parts):
        if time.monotonic() > deadline:
            raise TimeoutError(f"reading {topic}: no end of partitions {set(parts) - at_end}")
        for m in consumer.consume(1000, timeout=0.5):
            if m.error():
                if m.error().code() == -191:  # _PARTITION_EOF
                    at_end.add(m.partition())
                    continue
                raise RuntimeError(m.error())
            at_end.discard(m.partition())
            out.append(json.loads(m.value()))
    consumer.close()
    return out


def reference(records: list[dict]) -> Counter:
    """The windows the job must produce, in plain Python: dedup on id (keep the
    first), then count and sum per (key, 1 s window); the future records' own
    window never closes."""
    seen: set[int] = set()
    windows: dict[tuple[int, int], list[int]] = {}
    for r in records:
        if r["id"] in seen or r["key"] < 0:
            continue
        seen.add(r["id"])
        w = windows.setdefault((r["key"], r["ts"] // 1000 * 1000), [0, 0])
        w[0] += 1
        w[1] += r["value"]
    return Counter((k, start, n, total) for (k, start), (n, total) in windows.items())


def output_rows(rows: list[dict]) -> Counter:
    def ms(v: Any) -> int:
        return int(v) if not isinstance(v, str) else int(v)

    return Counter((r["key"], ms(r["window_start"]), r["n"], r["total"]) for r in rows)


def free_port_pair(first: int = 29092) -> int:
    """The first port p >= `first` (stepping by 2) where p and p + 1 (the
    controller) are free: runs on one machine (several worktrees' make test)
    each get their own broker, since a run restarts its broker."""
    import socket

    for port in range(first, first + 200, 2):
        try:
            with socket.socket() as a, socket.socket() as b:
                a.bind(("127.0.0.1", port))
                b.bind(("127.0.0.1", port + 1))
            return port
        except OSError:
            continue
    raise RuntimeError(f"no free port pair from {first}")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def run(args: argparse.Namespace) -> dict[str, Any]:
    from confluent_kafka.admin import AdminClient, NewTopic

    broker = Broker(args.port)
    broker.up()
    run_id = uuid.uuid4().hex[:8]
    topic_in, topic_out = f"chaos-in-{run_id}", f"chaos-out-{run_id}"
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    for f in admin.create_topics(
        [NewTopic(topic_in, PARTITIONS, 1), NewTopic(topic_out, 2, 1)]
    ).values():
        f.result(30)
    workdir = Path(tempfile.mkdtemp(prefix=f"chaos-{run_id}-", dir=args.workdir))
    worker_args = [
        "--bootstrap", broker.bootstrap,
        "--input", topic_in,
        "--output", topic_out,
        "--checkpoint-dir", str(workdir / "checkpoints"),
        "--job-name", f"chaos-{run_id}",
        "--interval-ms", str(args.interval_ms),
        "--parallelism", str(args.parallelism),
        "--delivery", args.delivery,
    ]  # fmt: skip
    log = workdir / "worker.log"
    rng = random.Random(args.seed)
    started = time.monotonic()
    producer = Producer(broker.bootstrap, topic_in, args.rate, args.keys, args.duplicates)
    producer.start()

    kills: list[dict[str, Any]] = []
    worker_exits = 0
    broker_restart: dict[str, Any] = {}
    worker = Worker(worker_args, log)

    exit_messages: list[str] = []

    def restart_if_dead() -> None:
        """A worker that exited by itself (the job failed) is restarted too."""
        nonlocal worker, worker_exits
        if not worker.alive():
            while worker.pump() is not None:
                pass
            worker.wait_dead()
            worker_exits += 1
            exit_messages.append(f"exit {worker.proc.returncode}: {worker.last_line}")
            # A kill not yet recovered from is recovered by the next worker.
            carry = worker.origin if not worker.completed else None
            worker = Worker(worker_args, log)
            worker.origin = carry

    def wait_recovered(timeout: float) -> float | None:
        """Waits for the worker's first completed checkpoint after its start."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if worker.completed:
                return worker.completed[0][0]
            if worker.pump(0.05) is None and not worker.alive():
                restart_if_dead()
        return None

    targets = ["random", "checkpoint", "commit"]
    attempt = 0
    while len(kills) < args.kills:
        k = len(kills)
        attempt += 1
        if k == args.kills // 2 and args.broker_restart and not broker_restart:
            # The broker goes down and comes back while the worker runs.
            if wait_recovered(120) is None:
                raise RuntimeError("the worker did not recover before the broker restart")
            t0 = time.monotonic()
            broker.down()
            broker.up()
            broker_restart = {
                "at_s": round(t0 - started, 1),
                "down_up_s": round(time.monotonic() - t0, 1),
            }
            since = time.monotonic()
            n_before = len(worker.completed)
            deadline = since + 180
            while time.monotonic() < deadline:
                restart_if_dead()
                worker.pump(0.05)
                if len(worker.completed) > n_before and worker.completed[-1][0] > since:
                    break
            broker_restart["checkpoint_after_s"] = round(time.monotonic() - since, 1)
            broker_restart["worker_exits"] = worker_exits
        target = targets[attempt % 3]
        if target == "random":
            # Any moment after the start: also during start-up and restore.
            delay = rng.uniform(0.05, 2.5)
            deadline = worker.spawned + delay
            while time.monotonic() < deadline and worker.alive():
                worker.pump(max(0.001, min(0.05, deadline - time.monotonic())))
        else:
            # Right when the phase begins (a checkpoint in flight, a transaction).
            word = "checkpoint" if target == "checkpoint" else "commit"
            if wait_recovered(120) is None and not worker.alive():
                restart_if_dead()
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and worker.alive():
                got = worker.pump(0.05)
                if got and got[1].split(" ")[0] == word:
                    break
        while worker.pump() is not None:  # lines already written before the kill
            pass
        phase = worker.phase()
        if not worker.alive():
            restart_if_dead()
            continue
        last_line = worker.last_line
        killed_at = worker.kill()
        kills.append(
            {
                "kill": len(kills) + 1,
                "target": target,
                "phase": phase,
                "last_line": last_line,
                "at_s": round(killed_at - started, 2),
            }
        )
        worker = Worker(worker_args, log)
        worker.origin = (kills[-1], killed_at)

    # Drain: stop the input (the future records flush every window), let the
    # worker commit everything, then compare.
    producer.stop.set()
    producer.join(180)
    if producer.errors:
        raise RuntimeError(f"input producer errors: {producer.errors[:3]}")
    input_records = read_topic(broker.bootstrap, topic_in, committed=False)
    want = reference(input_records)
    deadline = time.monotonic() + args.drain_timeout
    got: Counter = Counter()
    while time.monotonic() < deadline:
        restart_if_dead()
        while worker.pump() is not None:
            pass
        got = output_rows(read_topic(broker.bootstrap, topic_out, committed=True))
        if sum(got.values()) >= sum(want.values()):
            break
        threading.Event().wait(1.0)
    # A few more checkpoints: anything committed twice would show up now.
    n = len(worker.completed)
    deadline = time.monotonic() + 30
    while len(worker.completed) < n + 3 and time.monotonic() < deadline and worker.alive():
        worker.pump(0.1)
    worker.kill()
    for record in kills:
        record.setdefault("recovery_ms", None)
    got = output_rows(read_topic(broker.bootstrap, topic_out, committed=True))
    missing = want - got
    extra = got - want

    recoveries = [k["recovery_ms"] for k in kills if k["recovery_ms"] is not None]
    report: dict[str, Any] = {
        "kills": len(kills),
        "kills_by_phase": dict(Counter(k["phase"] for k in kills)),
        "kills_by_target": dict(Counter(k["target"] for k in kills)),
        "recovery_ms_p50": percentile(recoveries, 0.5) if recoveries else None,
        "recovery_ms_max": max(recoveries) if recoveries else None,
        "recoveries_measured": len(recoveries),
        "restored_epochs_recommitted": sum(k.get("epochs_recommitted", 0) for k in kills),
        "restored_epochs_already_committed": sum(
            k.get("epochs_already_committed", 0) for k in kills
        ),
        "worker_exits_without_kill": worker_exits,
        "worker_exit_messages": exit_messages[:5],
        "broker_restart": broker_restart,
        "input_records": len(input_records),
        "unique_records": len({r["id"] for r in input_records if r["key"] >= 0}),
        "expected_rows": sum(want.values()),
        "output_rows": sum(got.values()),
        "missing_rows": sum(missing.values()),
        "duplicate_or_wrong_rows": sum(extra.values()),
        "exact": not missing and not extra,
        "seconds": round(time.monotonic() - started, 1),
        "checkpoint_interval_ms": args.interval_ms,
        "parallelism": args.parallelism,
        "broker": broker.bootstrap,
        "kill_log": kills,
        "worker_log": str(log),
    }
    if missing or extra:
        report["missing_sample"] = [list(r) for r in list(missing)[:5]]
        report["extra_sample"] = [list(r) for r in list(extra)[:5]]
    else:
        admin.delete_topics([topic_in, topic_out])
        shutil.rmtree(workdir, ignore_errors=True)  # kept (with the log) on failure
        report["worker_log"] = None
    if not broker.was_up and not args.keep_broker:
        broker.down()
    return report


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--rate", type=int, default=2000, help="input records per second")
    parser.add_argument("--keys", type=int, default=50)
    parser.add_argument("--duplicates", type=float, default=0.1, help="share of re-sent records")
    parser.add_argument("--interval-ms", type=int, default=300, help="checkpoint interval")
    parser.add_argument("--parallelism", type=int, default=2)
    parser.add_argument(
        "--port",
        type=int,
        default=None,
        help="the run's own broker (default: the first free pair from 29092; "
        "a broker already running there is used, and restarted)",
    )
    parser.add_argument("--no-broker-restart", dest="broker_restart", action="store_false")
    parser.add_argument("--keep-broker", action="store_true", help="leave the broker running")
    parser.add_argument("--drain-timeout", type=float, default=180.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--delivery",
        default="exactly_once",
        help="the sink's delivery; at_least_once shows that the comparison catches duplicates",
    )
    parser.add_argument("--workdir", default=str(ROOT / "build" / "chaos"))
    parser.add_argument("--report", default=str(ROOT / "build" / "chaos" / "last_run.json"))
    args = parser.parse_args()
    Path(args.workdir).mkdir(parents=True, exist_ok=True)
    if args.port is None:
        args.port = free_port_pair()
    report = run(args)
    Path(args.report).parent.mkdir(parents=True, exist_ok=True)
    Path(args.report).write_text(json.dumps(report, indent=2) + "\n")
    summary = {k: v for k, v in report.items() if k != "kill_log"}
    print(json.dumps(summary, indent=2))
    if not report["exact"]:
        print("chaos: the output differs from the reference", file=sys.stderr)
        return 1
    if report["kills"] < args.kills:
        print(f"chaos: only {report['kills']} kills", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
