"""Bad input: a clear error naming the operator, column or file and the cause; the
job stops cleanly (no hang, no crash) and ``sabot run`` exits non-zero."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sabot as sb

SABOT = str(Path(sys.executable).parent / "sabot")


def small() -> pa.Table:
    return pa.table({"id": list(range(100)), "name": [f"n{i}" for i in range(100)]})


def run_and_expect_error(build, *fragments: str) -> str:
    env = sb.Environment(parallelism=2, num_threads=2)
    build(env)
    with pytest.raises(sb.JobError) as info:
        env.execute()
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, message
    return message


def test_unknown_column_in_filter() -> None:
    run_and_expect_error(
        lambda env: env.from_table(small()).filter(sb.col("pricee") > 1).discard(),
        "filter#1",
        "pricee",
    )


def test_unknown_column_in_select() -> None:
    run_and_expect_error(
        lambda env: env.from_table(small()).select("id", "nope").discard(), "select#1", "nope"
    )


def test_unknown_key_column() -> None:
    run_and_expect_error(
        lambda env: env.from_table(small()).key_by("missing").discard(), "missing", "key"
    )


def test_type_mismatch() -> None:
    run_and_expect_error(
        lambda env: env.from_table(small()).filter(sb.col("name") > 5).discard(),
        "filter#1",
        "name",
    )


def test_filter_predicate_not_boolean() -> None:
    run_and_expect_error(
        lambda env: env.from_table(small()).filter(sb.col("id") + 1).discard(),
        "filter#1",
        "expected bool",
    )


def test_python_udf_raises() -> None:
    def boom(batch: pa.RecordBatch) -> pa.RecordBatch:
        raise ValueError("no prices today")

    run_and_expect_error(
        lambda env: env.from_table(small()).map(boom).discard(),
        "map#1",
        "boom",
        "ValueError",
        "no prices today",
    )


def test_python_udf_wrong_schema() -> None:
    calls = {"n": 0}

    def drift(batch: pa.RecordBatch) -> pa.RecordBatch:
        calls["n"] += 1
        if calls["n"] == 1:
            return batch
        return batch.select(["id"])

    run_and_expect_error(
        lambda env: env.from_table(small(), batch_size=10).map(drift).discard(),
        "map#1",
        "schema",
    )


def test_python_udf_declared_schema_mismatch() -> None:
    declared = pa.schema([("id", pa.int64()), ("extra", pa.string())])
    run_and_expect_error(
        lambda env: env.from_table(small()).map(lambda b: b, schema=declared).discard(),
        "map#1",
        "extra",
    )


def test_python_udf_returns_wrong_type() -> None:
    run_and_expect_error(
        lambda env: env.from_table(small()).map(lambda b: 42).discard(),
        "map#1",
        "RecordBatch",
    )


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.parquet"
    run_and_expect_error(
        lambda env: env.from_files(missing, "parquet").discard(), "file_source#0", str(missing)
    )


def test_malformed_parquet(tmp_path: Path) -> None:
    good = tmp_path / "good.parquet"
    pq.write_table(small(), good)
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    run_and_expect_error(lambda env: env.from_files(bad, "parquet").discard(), str(bad))


def test_malformed_csv(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n3,4,5\n")
    run_and_expect_error(lambda env: env.from_files(bad, "csv").discard(), str(bad))


def test_sabot_run_exits_nonzero_with_message(tmp_path: Path) -> None:
    job = tmp_path / "job.py"
    job.write_text(
        "import pyarrow as pa\n"
        "import sabot as sb\n"
        "env = sb.Environment(parallelism=1)\n"
        "env.from_table(pa.table({'x': [1, 2]})).filter(sb.col('y') > 0).discard()\n"
        "env.execute()\n"
    )
    proc = subprocess.run([SABOT, "run", str(job)], capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert "filter#1" in proc.stderr and "y" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_sabot_run_success(tmp_path: Path) -> None:
    job = tmp_path / "job.py"
    job.write_text(
        "import pyarrow as pa\n"
        "import sabot as sb\n"
        "env = sb.Environment(parallelism=1)\n"
        "t = env.from_table(pa.table({'x': [1, 2, 3]})).filter(sb.col('x') > 1).to_table()\n"
        "print('rows', t.num_rows)\n"
    )
    proc = subprocess.run([SABOT, "run", str(job)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "rows 2" in proc.stdout
    assert "filter#1" in proc.stderr and "rows_out" in proc.stderr  # metrics at the end
