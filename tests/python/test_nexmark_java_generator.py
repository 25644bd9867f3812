"""The Java port of the Nexmark generator (bench/flink/.../gen, the Flink source of
bench/nexmark_vs_flink.py) generates exactly Sabot's events.

Compiles the plain-Java part (NexmarkConfig, NexmarkGenerator, DumpEvents: no Flink
jars needed) with javac and compares its JSON lines with Sabot's generator: in order
for one split, as multisets for several. Skipped where no JDK is installed."""

from __future__ import annotations

import collections
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GEN = ROOT / "bench" / "flink" / "src" / "main" / "java" / "sabot" / "bench" / "flink" / "gen"
sys.path.insert(0, str(ROOT / "bench"))

import nexmark_vs_flink  # noqa: E402

pytestmark = pytest.mark.skipif(
    shutil.which("javac") is None, reason="needs a JDK (javac) for the Java generator"
)


@pytest.fixture(scope="module")
def classes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("java-gen")
    sources = [GEN / f"{name}.java" for name in ("NexmarkConfig", "NexmarkGenerator", "DumpEvents")]
    subprocess.run(["javac", "-d", str(out), *map(str, sources)], check=True)
    return out


def java_events(classes: Path, tmp_path: Path, events: int, splits: int) -> list[dict]:
    out = tmp_path / f"java-{splits}.jsonl"
    subprocess.run(
        ["java", "-cp", str(classes), "sabot.bench.flink.gen.DumpEvents"]
        + ["--events", str(events), "--splits", str(splits), "--out", str(out)],
        check=True,
    )
    return [json.loads(line) for line in out.read_text().splitlines()]


def test_one_split_equals_sabot_in_order(classes: Path, tmp_path: Path) -> None:
    expected = nexmark_vs_flink.sabot_events(20_000, 1)
    got = java_events(classes, tmp_path, 20_000, 1)
    assert len(got) == len(expected) == 20_000
    for i, (a, b) in enumerate(zip(got, expected, strict=True)):
        assert a == b, f"event {i}"
    kinds = collections.Counter(e["event_type"] for e in got)
    assert kinds == {0: 400, 1: 1200, 2: 18400}


@pytest.mark.parametrize("splits", [2, 3])
def test_splits_equal_sabot_parallel_instances(classes: Path, tmp_path: Path, splits: int) -> None:
    expected = nexmark_vs_flink.sabot_events(9_001, splits)
    got = java_events(classes, tmp_path, 9_001, splits)
    assert nexmark_vs_flink._multiset(got) == nexmark_vs_flink._multiset(expected)
    # Disjoint id ranges: every person id and every auction id occurs once.
    for kind in ("person", "auction"):
        ids = [e[kind]["id"] for e in got if e[kind]]
        assert ids and len(ids) == len(set(ids)), kind
