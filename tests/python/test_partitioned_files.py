"""DataStream.write_partitioned_files (the native partitioned file sink) against
plain-Python references: CSV and Parquet, parallelism 1 and 2, committed
through checkpoints, success files, and bad input."""

from __future__ import annotations

import csv
import datetime as dt
import random
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sabot as sb

SCHEMA = pa.schema(
    [
        ("id", pa.int64()),
        ("region", pa.string()),
        ("note", pa.string()),
        ("at", pa.timestamp("ms", tz="UTC")),
        ("day", pa.string()),
        ("hm", pa.string()),
    ]
)


def rows(n: int = 2000, seed: int = 3) -> list[dict]:
    rng = random.Random(seed)
    start = dt.datetime(2026, 1, 1, 23, 58, tzinfo=dt.UTC)
    out = []
    for i in range(n):
        at = start + dt.timedelta(milliseconds=rng.randrange(4 * 60_000))
        out.append(
            {
                "id": i,
                "region": rng.choice(["eu", "us", "a/b"]),
                "note": rng.choice(["plain", 'with "quotes"', "a,b", ""]),
                "at": at,
                "day": at.strftime("%Y-%m-%d"),
                "hm": at.strftime("%H:%M"),
            }
        )
    return out


def text(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def escape(value: str) -> str:
    return "".join(f"%{ord(c):02X}" if c in "\"#%'*/:=?\\{[]^" else c for c in value)


def expected(data: list[dict]) -> Counter:
    return Counter(
        (
            f"day={escape(r['day'])}/hm={escape(r['hm'])}",
            str(r["id"]),
            r["region"],
            r["note"],
            text(r["at"]),
        )
        for r in data
    )


def read_csv_tree(root: Path) -> Counter:
    got: Counter = Counter()
    for f in root.glob("day=*/hm=*/part-*.csv"):
        partition = str(f.parent.relative_to(root))
        with open(f, newline="") as fh:
            for row in csv.reader(fh):
                got[(partition, *row)] += 1
    return got


@pytest.mark.parametrize("parallelism", [1, 2])
def test_csv_partitions_match_reference(parallelism: int, tmp_path: Path) -> None:
    data = rows()
    out = tmp_path / "out"
    env = sb.Environment(parallelism=parallelism, num_threads=2)
    source = env.from_batches(pa.Table.from_pylist(data, SCHEMA).to_batches(max_chunksize=100))
    passed = (
        source.key_by("day", "hm")
        .write_partitioned_files(out, partition_by=["day", "hm"])
        .collect()
    )
    env.execute()
    want = expected(data)
    assert len({k[0] for k in want}) >= 4  # the minutes around midnight
    assert read_csv_tree(out) == want
    partitions = {k[0] for k in want}
    for p in partitions:
        assert (out / p / "_SUCCESS").is_file()
        assert all(f.name.startswith("part-") for f in (out / p).iterdir() if f.name != "_SUCCESS")
    assert not list(out.rglob("*.inprogress"))
    # The rows pass through unchanged.
    assert passed.table().num_rows == len(data)
    assert passed.table().schema == SCHEMA


def test_parquet_partitions_with_checkpoints(tmp_path: Path) -> None:
    data = rows(seed=5)
    out = tmp_path / "out"
    env = sb.Environment(parallelism=2, num_threads=2)
    source = env.from_batches(pa.Table.from_pylist(data, SCHEMA).to_batches(max_chunksize=50))
    source.key_by("region").write_partitioned_files(
        out, partition_by="region", format="parquet", success_file=False
    ).discard()
    env.execute(checkpoint_dir=tmp_path / "ckpt", checkpoint_interval_ms=5)
    got: Counter = Counter()
    for f in out.glob("region=*/part-*.parquet"):
        region = f.parent.name.split("=", 1)[1]
        for r in pq.read_table(f).to_pylist():
            got[(region, r["id"], r["note"], r["at"], r["day"], r["hm"])] += 1
    want = Counter(
        (escape(r["region"]), r["id"], r["note"], r["at"], r["day"], r["hm"]) for r in data
    )
    assert got == want
    assert not list(out.rglob("_SUCCESS"))


def test_null_partition_value_names_sink_and_column(tmp_path: Path) -> None:
    t = pa.table({"id": [1, 2], "p": ["x", None]})
    env = sb.Environment(parallelism=1)
    env.from_table(t).write_partitioned_files(tmp_path / "o", partition_by="p").discard()
    with pytest.raises(sb.JobError, match=r"partitioned_file_sink#\d+.*'p'"):
        env.execute()


def test_unwritable_directory_names_it(tmp_path: Path) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    env = sb.Environment(parallelism=1)
    target = blocker / "out"
    env.from_table(pa.table({"id": [1], "p": ["x"]})).write_partitioned_files(
        target, partition_by="p"
    ).discard()
    with pytest.raises(sb.JobError, match=str(target)):
        env.execute()


def test_bad_options(tmp_path: Path) -> None:
    env = sb.Environment(parallelism=1)
    s = env.from_table(pa.table({"id": [1], "p": ["x"]}))
    with pytest.raises(ValueError, match="format"):
        s.write_partitioned_files(tmp_path, partition_by="p", format="orc")
    with pytest.raises(ValueError, match="partition_by"):
        s.write_partitioned_files(tmp_path, partition_by=[])


@pytest.mark.parametrize(("p1", "p2"), [(2, 3), (3, 1)])
def test_exactly_once_through_savepoint_and_restore(p1: int, p2: int, tmp_path: Path) -> None:
    """A job stopped with a savepoint in the middle and restored at another
    parallelism into the same directory: every row is in the committed files
    exactly once, and no in-progress file is left."""
    from test_restore_golden import run_with_restore

    data = rows(seed=9)
    out = tmp_path / "out"
    batches = pa.Table.from_pylist(data, SCHEMA).to_batches(max_chunksize=40)

    def build(env: sb.Environment, gates: list) -> list[sb.Collected]:
        s = gates[0].hold(env.from_batches(batches))
        return [
            s.key_by("day", "hm").write_partitioned_files(out, partition_by=["day", "hm"]).collect()
        ]

    first, second = run_with_restore(build, p1, p2, 1, tmp_path)
    assert first[0].num_rows > 0 and second[0].num_rows > 0
    assert first[0].num_rows + second[0].num_rows == len(data)
    assert read_csv_tree(out) == expected(data)
    assert not list(out.rglob("*.inprogress"))
