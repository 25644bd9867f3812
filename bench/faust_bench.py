"""faust-streaming vs Sabot, side by side, in one run (``make bench-faust``).

    make kafka-up
    make bench-faust            # or: .venv/bin/python bench/faust_bench.py

The same app (bench/faust_bench_app.py: JSON events -> per-key counts in a
tumbling table -> output topic) runs on the same broker and the same input
topic, one worker process each, one after the other:

* ``faust``: faust-streaming (pinned in bench/requirements-faust.txt, installed
  into ``.venv-faust`` by this script when missing), ``faust -A ... worker``;
* ``sabot-record``: the same file with ``import sabot as faust``,
  ``sabot -A ... worker`` (``async for event in stream``);
* ``sabot-batches``: Sabot's batch path (``async for batch in stream.batches()``).

Each worker starts with a fresh consumer group on a topic pre-filled with
``--events`` events (``--keys`` keys, keyed so tables are co-partitioned).
Measured per system:

* start-up: from spawning the worker process to the first output message
  arriving at the harness's consumer;
* throughput: backlog events / (time of the last backlog output - time of the
  first output), times taken from the output messages' timestamps;
* p99 end-to-end latency: once the backlog is done, the harness produces
  ``--latency-rate`` events/s for ``--latency-seconds`` s into a second topic
  of that run (the app reads both topics), each stamped with
  its send time; latency = arrival of its output at the harness - send time
  (for the batch path an output covers several events and counts with the
  oldest of them, an upper bound);
* peak RSS: the worker's VmHWM from /proc just before SIGTERM, with the
  shared libraries of its virtualenv loaded from disk (their page cache dropped
  before the start, see ``evict_library_cache``); ``rss_at_end_mib`` breaks the
  resident memory at that moment down by mapping.

The per-key counts of the record paths are checked against a plain-Python
count per key and 10 s window; the batch path's outputs must cover as many
events as were produced (their ``n`` fields add up). A failed check is
reported with the figures (``counts_checked``, ``check_error``). Prints one
JSON line per system and a markdown table; ``--report FILE`` writes the JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
FAUST_VENV = ROOT / ".venv-faust"
FAUST_REQUIREMENTS = BENCH / "requirements-faust.txt"
WINDOW_MS = 10_000
SYSTEMS = ("faust", "sabot-record", "sabot-batches")


def ensure_faust_venv(python: str = "python3") -> Path:
    """``.venv-faust`` with faust-streaming and its pinned dependencies."""
    faust_bin = FAUST_VENV / "bin" / "faust"
    marker = FAUST_VENV / ".requirements"
    if (
        faust_bin.exists()
        and marker.exists()
        and marker.read_text() == FAUST_REQUIREMENTS.read_text()
    ):
        return faust_bin
    if not (FAUST_VENV / "bin" / "python").exists():
        subprocess.run([python, "-m", "venv", str(FAUST_VENV)], check=True)
    subprocess.run(
        [
            str(FAUST_VENV / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "-q",
            "-r",
            str(FAUST_REQUIREMENTS),
        ],
        check=True,
    )
    marker.write_text(FAUST_REQUIREMENTS.read_text())
    return faust_bin


def evict_library_cache(venv: Path) -> int:
    """Drops the page-cache pages of the shared libraries in ``venv``
    (posix_fadvise DONTNEED; pages mapped by a running process stay), so every
    worker loads its libraries from disk as after a reboot. Why: a library file
    written a moment ago (a fresh pip install) sits in the page cache as large
    folios, and a process mapping it gets whole folios mapped on each fault, so
    its file-backed RSS grows with how recently the file was written: 28 MiB
    instead of 12 for libarrow (kernel 6.18, ext4). Done for every system
    alike. Returns the number of files."""
    n = 0
    for path in venv.rglob("*.so*"):
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            continue
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            n += 1
        finally:
            os.close(fd)
    return n


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def create_topics(
    bootstrap: str, names: list[str], partitions: int, config: dict | None = None
) -> None:
    """Creates the topics and waits until every partition has a leader that
    answers offset requests (a busy broker may still lack one right after)."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(n, partitions, 1, config=config or {}) for n in names])
    for name, fut in futures.items():
        try:
            fut.result(30)
        except Exception as e:  # noqa: BLE001 - the topic may exist from an earlier run
            if "TOPIC_ALREADY_EXISTS" not in str(e):
                raise RuntimeError(f"cannot create topic {name}: {e}") from e
    probe = Consumer({"bootstrap.servers": bootstrap, "group.id": "faust-bench-probe"})
    deadline = time.monotonic() + 60
    try:
        for name in names:
            for p in range(partitions):
                while True:
                    try:
                        probe.get_watermark_offsets(TopicPartition(name, p), timeout=5)
                        break
                    except Exception:
                        if time.monotonic() > deadline:
                            raise
                        time.sleep(0.2)
    finally:
        probe.close()


def delete_topics(bootstrap: str, prefix: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    names = [t for t in admin.list_topics(timeout=10).topics if prefix in t]
    if names:
        for fut in admin.delete_topics(names).values():
            try:
                fut.result(30)
            except Exception:  # noqa: BLE001, S110 - best-effort clean-up
                pass


def make_events(n: int, keys: int, seed: int) -> list[tuple[str, int]]:
    rng = random.Random(seed)
    return [(f"user-{rng.randrange(keys)}", rng.randrange(1, 1000)) for _ in range(n)]


def produce(bootstrap: str, topic: str, events: list[tuple[str, int]], ts_ms: int) -> list[dict]:
    """Produces the backlog (all stamped ``ts_ms``); returns the sent values."""
    producer = Producer(
        {"bootstrap.servers": bootstrap, "linger.ms": 20, "queue.buffering.max.messages": 1_000_000}
    )
    sent = []
    for key, amount in events:
        value = {"key": key, "ts": ts_ms, "amount": amount}
        while True:
            try:
                producer.produce(topic, json.dumps(value).encode(), key.encode(), timestamp=ts_ms)
                break
            except BufferError:
                producer.poll(0.05)
        sent.append(value)
    producer.flush(60)
    return sent


class OutputReader(threading.Thread):
    """Reads the output topic from the beginning; keeps (arrival, message time,
    value) and the number of input events covered so far."""

    def __init__(self, bootstrap: str, topic: str, partitions: int) -> None:
        super().__init__(daemon=True)
        self.consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": f"faust-bench-reader-{uuid.uuid4().hex}",
                "enable.auto.commit": False,
                "fetch.wait.max.ms": 5,
                "fetch.min.bytes": 1,
            }
        )
        self.consumer.assign(
            [TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)]
        )
        self.records: list[tuple[float, int, dict]] = []
        self.covered = 0
        self.stop = threading.Event()
        self.progress = threading.Condition()

    def run(self) -> None:
        while not self.stop.is_set():
            msgs = self.consumer.consume(num_messages=1000, timeout=0.05)
            if not msgs:
                continue
            now = time.time()
            batch = []
            covered = 0
            for m in msgs:
                if m.error():
                    continue
                value = json.loads(m.value())
                covered += int(value.get("n", 1))
                batch.append((now, m.timestamp()[1], value))
            with self.progress:
                self.records.extend(batch)
                self.covered += covered
                self.progress.notify_all()
        self.consumer.close()

    def wait_covered(self, n: int, proc: subprocess.Popen, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        with self.progress:
            while self.covered < n:
                if proc.poll() is not None:
                    raise RuntimeError(
                        f"worker exited with {proc.returncode} at {self.covered}/{n}"
                    )
                left = deadline - time.monotonic()
                if left <= 0:
                    raise RuntimeError(f"timed out at {self.covered}/{n} events covered")
                self.progress.wait(min(left, 0.5))


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


def rss_breakdown_mib(pid: int) -> dict[str, float]:
    """The worker's resident memory now (just before SIGTERM; the peak is
    VmHWM) by mapping, largest first: anonymous memory (heap and arenas) and
    each shared library or file, in MiB."""
    sizes: dict[str, int] = {}
    name = "[anon]"
    try:
        for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
            parts = line.split()
            if not parts:
                continue
            if "-" in parts[0] and len(parts) >= 5 and not parts[0].endswith(":"):
                name = parts[5].rsplit("/", 1)[-1] if len(parts) > 5 else "[anon]"
                if name.startswith("[") and name not in ("[heap]", "[stack]"):
                    name = "[anon]"
            elif parts[0] == "Rss:":
                sizes[name] = sizes.get(name, 0) + int(parts[1])
    except OSError:
        return {}
    top = sorted(sizes.items(), key=lambda kv: -kv[1])
    out = {k: round(v / 1024.0, 1) for k, v in top[:12]}
    out["(other)"] = round(sum(v for _, v in top[12:]) / 1024.0, 1)
    out["(total)"] = round(sum(sizes.values()) / 1024.0, 1)
    return out


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(q * len(values)))]


def run_system(
    system: str, args: argparse.Namespace, in_topic: str, backlog: list[dict], run_id: str
) -> dict:
    out_topic = f"faust-bench-{run_id}-out-{system}"
    app_id = f"faust-bench-{run_id}-{system}"
    live_topic = f"faust-bench-{run_id}-live-{system}"
    create_topics(args.bootstrap, [out_topic, live_topic], args.partitions)
    # The table's changelog, created up front for every system alike.
    create_topics(
        args.bootstrap,
        [f"{app_id}-bench-counts-changelog"],
        args.partitions,
        {"cleanup.policy": "compact"},
    )
    env = dict(
        os.environ,
        BENCH_IMPL="faust" if system == "faust" else "sabot",
        BENCH_MODE="batches" if system == "sabot-batches" else "record",
        BENCH_APP_ID=app_id,
        BENCH_IN_TOPIC=in_topic,
        BENCH_LIVE_TOPIC=live_topic,
        BENCH_OUT_TOPIC=out_topic,
        BENCH_PARTITIONS=str(args.partitions),
        BENCH_BOOTSTRAP=args.bootstrap,
        PYTHONPATH=os.pathsep.join(p for p in (str(BENCH), os.environ.get("PYTHONPATH")) if p),
    )
    if system == "faust":
        cmd = [str(ensure_faust_venv()), "-A", "faust_bench_app", "worker", "-l", "warn"]
    else:
        sabot = ROOT / ".venv" / "bin" / "sabot"
        cmd = [
            *([str(sabot)] if sabot.exists() else [sys.executable, "-m", "sabot.cli"]),
            "-A",
            "faust_bench_app",
            "worker",
            "-l",
            "warn",
        ]
    cmd += ["--web-port", str(free_port())]
    reader = OutputReader(args.bootstrap, out_topic, args.partitions)
    reader.start()
    log_path = ROOT / "build" / f"faust_bench_{system}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = open(log_path, "w")  # noqa: SIM115 - closed below
    spawn = time.time()
    workdir = ROOT / "build" / "faust_bench" / system  # Faust keeps its data dir here
    workdir.mkdir(parents=True, exist_ok=True)
    evict_library_cache(FAUST_VENV if system == "faust" else Path(sys.prefix))
    proc = subprocess.Popen(cmd, cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        n = len(backlog)
        reader.wait_covered(n, proc, args.timeout)
        backlog_records = list(reader.records)
        # Latency phase: a steady rate of fresh events into the same topic.
        producer = Producer({"bootstrap.servers": args.bootstrap, "linger.ms": 0})
        phase_start_ms = int(time.time() * 1000)
        live = make_events(args.latency_rate * args.latency_seconds, args.keys, seed=7)
        sent = []
        start = time.perf_counter()
        for i, (key, amount) in enumerate(live):
            target = start + i / args.latency_rate
            while (delay := target - time.perf_counter()) > 0:
                producer.poll(min(delay, 0.01))
            ts = int(time.time() * 1000)
            value = {"key": key, "ts": ts, "amount": amount}
            producer.produce(live_topic, json.dumps(value).encode(), key.encode(), timestamp=ts)
            producer.poll(0)
            sent.append(value)
        producer.flush(30)
        reader.wait_covered(n + len(live), proc, args.timeout)
        rss = peak_rss_mib(proc.pid)
        breakdown = rss_breakdown_mib(proc.pid)
    except Exception:
        proc.kill()
        proc.wait()
        log.close()
        sys.stderr.write(log_path.read_text()[-4000:])
        raise
    finally:
        reader.stop.set()
        reader.join()
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    log.close()

    first_arrival = backlog_records[0][0]
    first_ts = min(ts for _, ts, _ in backlog_records) / 1000.0
    last_ts = max(ts for _, ts, _ in backlog_records) / 1000.0
    latencies = []
    for arrival, _, value in reader.records:
        if value["ts"] >= phase_start_ms:
            latencies.extend([(arrival * 1000.0 - value["ts"])] * int(value.get("n", 1)))
    result = {
        "system": system,
        "events": n,
        "keys": args.keys,
        "partitions": args.partitions,
        "startup_s": round(first_arrival - spawn, 3),
        "throughput_eps": round(n / max(last_ts - first_ts, 1e-3)),
        "backlog_wall_s": round(last_ts - spawn, 3),
        "latency_rate_eps": args.latency_rate,
        "p50_latency_ms": round(percentile(latencies, 0.50), 1),
        "p99_latency_ms": round(percentile(latencies, 0.99), 1),
        "peak_rss_mib": round(rss, 1),
        "rss_at_end_mib": breakdown,
        "outputs": len(reader.records),
    }
    try:
        result["counts_checked"] = check_counts(system, reader.records, backlog + sent)
    except RuntimeError as e:  # reported with the figures, not hidden
        result["counts_checked"] = False
        result["check_error"] = str(e)[:500]
        print(f"WARNING: {e}", file=sys.stderr, flush=True)
    return result


def check_counts(system: str, records: list[tuple[float, int, dict]], inputs: list[dict]) -> bool:
    """Record paths: the highest count seen per (key, window) equals the number of
    input events of that key and window (plain-Python reference)."""
    if system == "sabot-batches":
        covered = sum(int(v["n"]) for _, _, v in records)
        if covered != len(inputs):
            raise RuntimeError(f"{system}: outputs cover {covered} events, input has {len(inputs)}")
        return True
    reference = Counter((v["key"], v["ts"] // WINDOW_MS) for v in inputs)
    seen: dict[tuple[str, int], int] = {}
    for _, _, v in records:
        k = (v["key"], v["ts"] // WINDOW_MS)
        seen[k] = max(seen.get(k, 0), int(v["count"]))
    if seen != dict(reference):
        diff = [
            (k, reference.get(k), seen.get(k))
            for k in set(reference) | set(seen)
            if reference.get(k) != seen.get(k)
        ]
        raise RuntimeError(f"{system}: per-key window counts differ from the reference: {diff[:5]}")
    return True


def markdown(results: list[dict]) -> str:
    base = next((r for r in results if r["system"] == "faust"), None)
    lines = [
        "| system | throughput (events/s) | vs Faust | p99 latency (ms) | peak RSS (MiB) "
        "| start to first output (s) |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        ratio = f"{r['throughput_eps'] / base['throughput_eps']:.1f}x" if base else "-"
        lines.append(
            f"| {r['system']} | {r['throughput_eps']:,} | {ratio} | {r['p99_latency_ms']} "
            f"| {r['peak_rss_mib']} | {r['startup_s']} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--keys", type=int, default=1000)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--latency-rate", type=int, default=200)
    parser.add_argument("--latency-seconds", type=int, default=10)
    parser.add_argument("--systems", default=",".join(SYSTEMS))
    parser.add_argument(
        "--bootstrap", default=os.environ.get("SABOT_KAFKA_BOOTSTRAP", "127.0.0.1:19092")
    )
    parser.add_argument("--timeout", type=float, default=900.0, help="per phase, seconds")
    parser.add_argument("--report", help="write the results as JSON to this file")
    args = parser.parse_args(argv)
    systems = [s for s in args.systems.split(",") if s]
    unknown = set(systems) - set(SYSTEMS)
    if unknown:
        parser.error(f"unknown systems {sorted(unknown)}; choose from {SYSTEMS}")
    if "faust" in systems:
        ensure_faust_venv()

    run_id = uuid.uuid4().hex[:8]
    in_topic = f"faust-bench-{run_id}-in"
    create_topics(args.bootstrap, [in_topic], args.partitions)
    t = time.perf_counter()
    backlog = produce(
        args.bootstrap,
        in_topic,
        make_events(args.events, args.keys, seed=1),
        int(time.time() * 1000),
    )
    print(
        f"filled {in_topic} with {args.events:,} events in {time.perf_counter() - t:.1f}s",
        flush=True,
    )
    results = []
    try:
        for system in systems:
            result = run_system(system, args, in_topic, backlog, run_id)
            print(json.dumps(result), flush=True)
            results.append(result)
    finally:
        delete_topics(args.bootstrap, f"faust-bench-{run_id}")
    print(markdown(results))
    if args.report:
        Path(args.report).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
