"""Sabot's Nexmark results equal Apache Flink's on the same 20,000 events.

bench/nexmark_compare.py writes the event file with Sabot's generator, runs every
query as Flink SQL on Flink 2.x (a MiniCluster in one JVM, bench/flink, built with
Maven by scripts/flink.sh) and on Sabot, and compares the results as multisets.
Needs Java 17 (with javac) and Maven; skipped, saying so, where they are missing.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
EVENTS = 20_000

# Queries whose Sabot result differs from Flink's for a reason diagnosed in
# docs/nexmark_flink.md ("Differences"); reported to the owner of
# python/sabot/nexmark.py. Each still runs and is reported (xfail, not strict, so
# a fix turns it into an XPASS).
KNOWN_DIFFERENCES: dict[str, str] = {}

_missing = [tool for tool in ("java", "javac", "mvn") if shutil.which(tool) is None]
pytestmark = pytest.mark.skipif(
    bool(_missing),
    reason=f"Flink comparison needs a JDK 17 and Maven; missing: {', '.join(_missing)}",
)


def _compare_module() -> Any:
    spec = importlib.util.spec_from_file_location(
        "nexmark_compare", ROOT / "bench" / "nexmark_compare.py"
    )
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["nexmark_compare"] = mod
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def runner_jar() -> Path:
    """The Flink runner jar (built by scripts/flink.sh when missing or stale)."""
    build = subprocess.run(
        ["bash", str(ROOT / "scripts" / "flink.sh"), "jar"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert build.returncode == 0, f"building the Flink runner failed:\n{build.stderr[-3000:]}"
    return ROOT / "bench" / "flink" / "target" / "sabot-flink-bench.jar"


@pytest.fixture(scope="module")
def report(runner_jar: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    compare = _compare_module()
    work = tmp_path_factory.mktemp("nexmark_flink")
    out = work / "report.json"
    compare.main(["--events", str(EVENTS), "--workdir", str(work), "--report", str(out)])
    data = json.loads(out.read_text())
    assert data["events"] == EVENTS
    return {r["query"]: r for r in data["queries"]}


def _both_sides() -> list[str]:
    compare = _compare_module()
    from sabot import nexmark

    return [q for q in compare.flink_queries() if q in nexmark.query_names()]


@pytest.mark.parametrize("query", _both_sides())
def test_same_result_as_flink(query: str, report: dict[str, dict[str, Any]]) -> None:
    rec = report[query]
    if query in KNOWN_DIFFERENCES and rec.get("equal") is False:
        pytest.xfail(KNOWN_DIFFERENCES[query])
    assert "error" not in rec, rec["error"]
    if rec.get("equal") is None:  # processing-time windows: not comparable row by row
        assert query == "q12", rec
        return
    assert rec["rows_flink"] > 0 or query in ("q2",), f"{query}: Flink produced no rows"
    assert rec["equal"], (
        f"{query}: {rec.get('only_sabot')} rows only in Sabot, {rec.get('only_flink')} only "
        f"in Flink; e.g. Sabot {rec.get('examples_sabot', [])[:2]}, "
        f"Flink {rec.get('examples_flink', [])[:2]}"
    )


def test_every_flink_query_has_sql() -> None:
    compare = _compare_module()
    queries = compare.flink_queries()
    # q0-q22 as the suite runs them (q6 left out, as the suite does)
    assert queries == [f"q{i}" for i in range(23) if i != 6]


@pytest.mark.parametrize("parallelism", [1, 2])
def test_flink_generator_source_restores_from_a_checkpoint(
    parallelism: int, tmp_path: Path, runner_jar: Path
) -> None:
    """The Java generator's Flink source (the benchmark's Flink input) resumes from a
    checkpoint: FlinkSourceDump --fail-after fails each subtask's first attempt once a
    checkpoint past 3,000 rows has completed; Flink restarts from it, the readers
    resume at their split positions, and the (exactly-once) collected output is still
    Sabot's event sequence, every event once."""
    sys.path.insert(0, str(ROOT / "bench"))
    import nexmark_vs_flink

    out = tmp_path / "restored.jsonl"
    classpath = f"{runner_jar}:{runner_jar.parent / 'lib'}/*"
    run = subprocess.run(
        ["java", "-cp", classpath, "sabot.bench.flink.gen.FlinkSourceDump"]
        + ["--events", str(EVENTS), "--parallelism", str(parallelism)]
        + ["--out", str(out), "--fail-after", "3000"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    resumed = [line for line in run.stderr.splitlines() if "resumed at" in line]
    assert len(resumed) == parallelism, run.stderr[-3000:]
    assert all(int(line.rsplit(" ", 1)[1]) > 0 for line in resumed), resumed
    got = [json.loads(line) for line in out.read_text().splitlines()]
    expected = nexmark_vs_flink.sabot_events(EVENTS, parallelism)
    assert len(got) == EVENTS
    assert nexmark_vs_flink._multiset(got) == nexmark_vs_flink._multiset(expected)
