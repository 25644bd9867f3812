"""File sources and sinks round trip, checked with pyarrow's own readers."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.dataset as ds
import pyarrow.json as pajson
import pyarrow.parquet as pq
import pytest
import sabot as sb
from conftest import make_table, rows

FORMATS = ["parquet", "csv", "jsonl", "ipc"]


def read_back(path: Path, fmt: str) -> pa.Table:
    files = sorted(p for p in path.iterdir() if not p.name.startswith("."))
    assert files and all(not f.name.endswith(".inprogress") for f in files)
    if fmt == "parquet":
        return pa.concat_tables([pq.read_table(f) for f in files])
    if fmt == "csv":
        return pa.concat_tables([pacsv.read_csv(f) for f in files])
    if fmt == "jsonl":
        return pa.concat_tables([pajson.read_json(f) for f in files])
    return pa.concat_tables([pa.ipc.open_file(f).read_all() for f in files])


@pytest.mark.parametrize("fmt", FORMATS)
def test_sink_then_source_round_trip(tmp_path: Path, fmt: str) -> None:
    table = make_table(5000)
    out = tmp_path / "out"
    env = sb.Environment(parallelism=2, num_threads=2)
    s = env.from_table(table, batch_size=700, parallelism=2).filter(sb.col("key") < 40)
    getattr(s, f"write_{fmt}")(out)
    env.execute()
    want = table.filter(pc.less(table["key"], 40))
    assert len(list(out.iterdir())) == 2  # one part file per instance
    assert rows(read_back(out, fmt)) == rows(want)

    env = sb.Environment(parallelism=2, num_threads=2)
    got = env.from_files(out, fmt, schema=table.schema, parallelism=2).to_table()
    assert rows(got) == rows(want)


def test_parquet_directory_source_split_over_instances(tmp_path: Path) -> None:
    table = make_table(9000)
    for i, part in enumerate(table.to_batches(max_chunksize=3000)):
        pq.write_table(pa.Table.from_batches([part]), tmp_path / f"f{i}.parquet")
    env = sb.Environment(parallelism=2, num_threads=2)
    got = env.from_files(tmp_path, "parquet", parallelism=2).to_table()
    assert rows(got) == rows(ds.dataset(tmp_path).to_table())
