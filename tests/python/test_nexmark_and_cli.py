"""The Nexmark generator from Python, the q0-q2 queries against pyarrow, and the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest
import sabot as sb
from conftest import rows

SABOT = str(Path(sys.executable).parent / "sabot")
EVENTS = 200_000


def generated_bids(parallelism: int) -> pa.Table:
    env = sb.Environment(parallelism=parallelism, num_threads=2)
    return sb.nexmark.bids(env, events=EVENTS, parallelism=parallelism).to_table()


def test_generator_is_deterministic_and_split_independent_of_parallelism() -> None:
    one = generated_bids(1)
    # Two splits cover other id ranges but the same number of bids of one timeline.
    two = generated_bids(2)
    assert one.num_rows == two.num_rows == EVENTS * 46 // 50
    assert rows(generated_bids(1)) == rows(one)
    assert one.schema == sb.nexmark.schema("bid")


def test_views_equal_filtered_combined_stream() -> None:
    env = sb.Environment(parallelism=1)
    combined = sb.nexmark.events(env, events=20_000).to_table()
    env = sb.Environment(parallelism=1)
    bids = sb.nexmark.bids(env, events=20_000).to_table()
    mask = pc.equal(combined["event_type"], 2)
    flattened = combined.filter(mask).column("bid").combine_chunks().flatten()
    want = pa.Table.from_arrays(
        flattened, names=[f.name for f in combined.schema.field("bid").type]
    )
    assert rows(bids) == rows(want)


@pytest.mark.parametrize("query", ["q0", "q1", "q2"])
@pytest.mark.parametrize("parallelism", [1, 2])
def test_queries_match_pyarrow(query: str, parallelism: int) -> None:
    bids = generated_bids(parallelism)
    env = sb.Environment(parallelism=parallelism, num_threads=2)
    source = sb.nexmark.bids(env, events=EVENTS, parallelism=parallelism)
    got = sb.nexmark.QUERIES[query](source).to_table()
    if query == "q0":
        want = bids.select(["auction", "bidder", "price", "dateTime", "extra"])
    elif query == "q1":
        want = pa.table(
            {
                "auction": bids["auction"],
                "bidder": bids["bidder"],
                "price": pc.multiply(bids["price"], 0.908),
                "dateTime": bids["dateTime"],
                "extra": bids["extra"],
            }
        )
    else:
        keep = [a % 123 == 0 for a in bids["auction"].to_pylist()]
        want = bids.filter(pa.array(keep)).select(["auction", "price"])
        assert want.num_rows > 0
    assert got.schema.names == want.schema.names
    assert rows(got) == rows(want)


def test_cli_version() -> None:
    out = subprocess.run([SABOT, "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"sabot {sb.__version__}"


@pytest.mark.parametrize("query", ["q1", "q5", "q11", "q16"])
def test_cli_bench_prints_json_last_line(query: str) -> None:
    out = subprocess.run(
        [SABOT, "bench", "nexmark", "--query", query, "--events", "100000", "--parallelism", "2"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert set(result) == {
        "query",
        "events",
        "parallelism",
        "seconds",
        "events_per_second",
        "events_per_second_per_core",
        "peak_rss_mb",
    }
    assert result["query"] == query and result["events"] == 100000 and result["parallelism"] == 2
    assert result["events_per_second"] > 0 and result["peak_rss_mb"] > 0


def test_cli_bench_unknown_query_fails_cleanly() -> None:
    out = subprocess.run(
        [SABOT, "bench", "nexmark", "--query", "q99", "--events", "10"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode != 0 and "q99" in out.stderr


def test_cli_demo_runs_and_ends() -> None:
    out = subprocess.run(
        [SABOT, "demo", "--events", "200000", "--rate", "400000"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    last = out.stdout.strip().splitlines()[-1]
    assert last.startswith("events processed: 200,000") and "events/s" in last
    assert "bids over $999,500" in out.stdout
