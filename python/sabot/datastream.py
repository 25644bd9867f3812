"""The Python DataStream API: a thin, typed layer over the native plan builder.

Every operator runs natively on Arrow record batches. Python functions given to
:meth:`DataStream.map` and :meth:`DataStream.flat_map` receive a
``pyarrow.RecordBatch`` (zero-copy, through the Arrow C Data Interface) and
return one; the GIL is taken once per batch, never per row.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from sabot import _sabot

JobError = _sabot.JobError
"""Raised when a job fails; the message names the operator and the cause."""

Expression = pc.Expression


def col(name: str) -> pc.Expression:
    """A column reference, usable in expressions: ``sb.col("price") * 0.908``."""
    return pc.field(name)


def lit(value: Any) -> pc.Expression:
    """A literal value in an expression."""
    return pc.scalar(value)


def call(function: str, *args: Any) -> pc.Expression:
    """A call of any Arrow compute function: ``sb.call("modulo", sb.col("auction"), 123)``."""
    exprs = [a if isinstance(a, pc.Expression) else pc.scalar(a) for a in args]
    return pc.Expression._call(function, exprs)


def _expr_bytes(expr: pc.Expression) -> bytes:
    if not isinstance(expr, pc.Expression):
        raise TypeError(f"expected a sabot/pyarrow expression, got {type(expr).__name__}")
    # Arrow's own expression serialization (what pickling an Expression uses).
    _, (buffer,) = expr.__reduce__()
    return buffer.to_pybytes()


def _to_batch(value: Any, what: str) -> pa.RecordBatch:
    if isinstance(value, pa.RecordBatch):
        return value
    if isinstance(value, pa.Table):
        return (
            value.combine_chunks().to_batches()[0]
            if value.num_rows
            else pa.RecordBatch.from_pylist([], schema=value.schema)
        )
    raise TypeError(f"{what} must return a pyarrow.RecordBatch, got {type(value).__name__}")


def _callable_name(fn: Callable[..., Any]) -> str:
    return getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn)


@dataclass
class JobResult:
    """Metrics of a finished job (per operator, per task, memory)."""

    metrics: dict[str, Any]

    @property
    def elapsed_seconds(self) -> float:
        return float(self.metrics["elapsed_seconds"])

    def operator(self, name_prefix: str) -> dict[str, Any]:
        """The metrics of the first operator whose name starts with ``name_prefix``."""
        for op in self.metrics["operators"]:
            if op["name"].startswith(name_prefix):
                return op
        raise KeyError(name_prefix)

    def report(self) -> str:
        """A readable table of the metrics (what ``sabot run`` prints at the end)."""
        return str(self.metrics["report"])


class JobHandle:
    """A running job: wait for it, watch its metrics, cancel it."""

    def __init__(self, native: Any) -> None:
        self._native = native

    def wait(self) -> JobResult:
        return JobResult(self._native.wait())

    def metrics(self) -> dict[str, Any]:
        """Live metrics: rows in/out, busy/idle/backpressured time, memory."""
        return self._native.metrics()

    def done(self) -> bool:
        return bool(self._native.done())

    def cancel(self) -> None:
        self._native.cancel()

    def trigger_checkpoint(self, checkpoint_id: int) -> None:
        self._native.trigger_checkpoint(checkpoint_id)

    def physical_plan(self) -> str:
        return str(self._native.physical_plan())


class Collected:
    """Rows a ``collect()`` sink gathered; read :meth:`table` after the job ran."""

    def __init__(self, native: Any, schema: pa.Schema | None = None) -> None:
        self._native = native
        self._schema = schema

    @property
    def num_rows(self) -> int:
        return int(self._native.num_rows)

    def table(self) -> pa.Table:
        capsule = self._native.to_stream_capsule(
            self._schema.__arrow_c_schema__() if self._schema is not None else None
        )
        return pa.RecordBatchReader._import_from_c_capsule(capsule).read_all()


class DataStream:
    """A stream of Arrow record batches that share one schema.

    Methods return new streams; nothing runs until :meth:`Environment.execute`.
    """

    def __init__(self, env: Environment, native: Any) -> None:
        self._env = env
        self._native = native

    # -- transformations ----------------------------------------------------

    def map(
        self,
        fn: Callable[[pa.RecordBatch], pa.RecordBatch],
        *,
        schema: pa.Schema | None = None,
        name: str | None = None,
    ) -> DataStream:
        """Applies ``fn`` to every batch. ``schema`` (optional) declares the output
        schema; otherwise the first output fixes it and later outputs must match."""
        what = f"Python map function {name or _callable_name(fn)}"

        def adapter(schema_capsule: Any, array_capsule: Any) -> Any:
            batch = pa.RecordBatch._import_from_c_capsule(schema_capsule, array_capsule)
            return _to_batch(fn(batch), what).__arrow_c_array__()

        capsule = schema.__arrow_c_schema__() if schema is not None else None
        return DataStream(self._env, self._native.map(adapter, what, capsule))

    def flat_map(
        self,
        fn: Callable[[pa.RecordBatch], Iterable[pa.RecordBatch]],
        *,
        schema: pa.Schema | None = None,
        name: str | None = None,
    ) -> DataStream:
        """Applies ``fn`` to every batch; it returns zero or more batches."""
        what = f"Python flat_map function {name or _callable_name(fn)}"

        def adapter(schema_capsule: Any, array_capsule: Any) -> Any:
            batch = pa.RecordBatch._import_from_c_capsule(schema_capsule, array_capsule)
            out = fn(batch)
            if out is None:
                return []
            return [_to_batch(b, what).__arrow_c_array__() for b in out]

        capsule = schema.__arrow_c_schema__() if schema is not None else None
        return DataStream(self._env, self._native.flat_map(adapter, what, capsule))

    def filter(self, predicate: pc.Expression) -> DataStream:
        """Keeps rows where ``predicate`` is true (null counts as false)."""
        return DataStream(self._env, self._native.filter(_expr_bytes(predicate)))

    def select(self, *columns: str | pc.Expression, **named: pc.Expression) -> DataStream:
        """Projects columns: names keep a column (zero-copy), keyword arguments add
        computed columns: ``select("auction", price_eur=sb.col("price") * 0.908)``."""
        exprs: list[bytes] = []
        names: list[str] = []
        for c in columns:
            if isinstance(c, str):
                exprs.append(_expr_bytes(pc.field(c)))
                names.append(c)
            else:
                raise TypeError(
                    "positional select() arguments are column names; "
                    "name computed columns with keywords"
                )
        for name, expr in named.items():
            exprs.append(_expr_bytes(expr if isinstance(expr, pc.Expression) else pc.scalar(expr)))
            names.append(name)
        return DataStream(self._env, self._native.select(exprs, names))

    def key_by(self, *keys: str) -> DataStream:
        """Partitions by the key columns: rows with one key reach one instance of
        the next operator (vectorized hashing, key groups as in Flink)."""
        if not keys:
            raise ValueError("key_by needs at least one key column")
        return DataStream(self._env, self._native.key_by(list(keys)))

    def rebalance(self) -> DataStream:
        """Spreads batches round robin over the next operator's instances."""
        return DataStream(self._env, self._native.rebalance())

    def broadcast(self) -> DataStream:
        """Sends every batch to every instance of the next operator."""
        return DataStream(self._env, self._native.broadcast())

    def union(self, *others: DataStream) -> DataStream:
        """Merges streams of the same schema."""
        return DataStream(self._env, self._native.union([o._native for o in others]))

    def parallelism(self, parallelism: int) -> DataStream:
        """Sets the number of parallel instances of this stream's operator."""
        if parallelism < 1:
            raise ValueError("parallelism must be at least 1")
        return DataStream(self._env, self._native.set_parallelism(parallelism))

    # -- sinks ------------------------------------------------------------

    def collect(self, schema: pa.Schema | None = None) -> Collected:
        """Collects the rows in memory; read ``.table()`` after the job ran."""
        return Collected(self._native.collect(), schema)

    def to_table(self) -> pa.Table:
        """Collects the stream and runs the environment's job: the rows as a Table."""
        collected = self.collect()
        self._env.execute()
        return collected.table()

    def print(self, max_rows: int = 20, title: str = "") -> None:
        """Prints each batch as a readable table (``max_rows`` per batch)."""
        self._native.print(max_rows, title)

    def discard(self) -> None:
        """Drops every row (for benchmarks); rows are still counted in metrics."""
        self._native.discard()

    def write_parquet(self, path: str | os.PathLike[str]) -> None:
        """Writes ``path/part-<i>.parquet`` per parallel instance."""
        self._native.write_files(os.fspath(path), "parquet")

    def write_csv(self, path: str | os.PathLike[str]) -> None:
        self._native.write_files(os.fspath(path), "csv")

    def write_jsonl(self, path: str | os.PathLike[str]) -> None:
        self._native.write_files(os.fspath(path), "jsonl")

    def write_ipc(self, path: str | os.PathLike[str]) -> None:
        self._native.write_files(os.fspath(path), "ipc")


class Environment:
    """Where a job is built and run.

    Args:
        parallelism: default instances per operator (default: number of cores).
        num_threads: worker threads (default: number of cores).
        channel_max_rows / channel_max_bytes: bounds of each channel between
            tasks; a full channel blocks its producer (backpressure).
        memory_cap_bytes: cap of the job's Arrow memory pool (0: none).
        max_parallelism: number of key groups.
    """

    def __init__(
        self,
        parallelism: int | None = None,
        *,
        num_threads: int | None = None,
        channel_max_rows: int = 131072,
        channel_max_bytes: int = 32 << 20,
        memory_cap_bytes: int = 0,
        max_parallelism: int = 128,
    ) -> None:
        self._native = _sabot.Environment.create(
            parallelism or 0,
            num_threads or 0,
            channel_max_rows,
            channel_max_bytes,
            memory_cap_bytes,
            max_parallelism,
        )
        self._handle: JobHandle | None = None

    # -- sources ------------------------------------------------------------

    def from_table(
        self, table: pa.Table, *, batch_size: int = 65536, parallelism: int = 1
    ) -> DataStream:
        """A bounded stream over a pyarrow Table (zero-copy)."""
        batches = table.to_batches(max_chunksize=batch_size)
        return self.from_batches(batches, schema=table.schema, parallelism=parallelism)

    def from_batches(
        self,
        batches: Sequence[pa.RecordBatch],
        *,
        schema: pa.Schema | None = None,
        parallelism: int = 1,
    ) -> DataStream:
        """A bounded stream over record batches; instance i of P takes batches
        i, i+P, ..."""
        if schema is None:
            if not batches:
                raise ValueError("from_batches needs a schema when there are no batches")
            schema = batches[0].schema
        reader = pa.RecordBatchReader.from_batches(schema, list(batches))
        return DataStream(
            self, self._native.from_stream_capsule(reader.__arrow_c_stream__(), parallelism)
        )

    def from_iterable(
        self,
        rows: Iterable[Mapping[str, Any]],
        *,
        schema: pa.Schema | None = None,
        batch_size: int = 4096,
    ) -> DataStream:
        """A stream over Python dicts (any iterable, also unbounded generators),
        gathered into batches of ``batch_size`` rows. Runs with parallelism 1."""
        iterator = iter(rows)
        state: dict[str, Any] = {"schema": schema}

        def next_batch() -> Any:
            chunk = []
            for row in iterator:
                chunk.append(row)
                if len(chunk) >= batch_size:
                    break
            if not chunk:
                return None
            batch = pa.RecordBatch.from_pylist(chunk, schema=state["schema"])
            if state["schema"] is None:
                state["schema"] = batch.schema
            return batch.__arrow_c_array__()

        return DataStream(self, self._native.from_function(next_batch, "Python iterable"))

    def from_files(
        self,
        paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
        format: str,
        *,
        schema: pa.Schema | None = None,
        batch_size: int = 65536,
        parallelism: int = 1,
    ) -> DataStream:
        """Reads Parquet, CSV, JSON lines or Arrow IPC files (a file or a
        directory each); files are split over the parallel instances."""
        if isinstance(paths, (str, os.PathLike)):
            paths = [paths]
        capsule = schema.__arrow_c_schema__() if schema is not None else None
        return DataStream(
            self,
            self._native.from_files(
                [os.fspath(p) for p in paths], format, capsule, batch_size, parallelism
            ),
        )

    def from_nexmark(self, *, parallelism: int = 0, **config: Any) -> DataStream:
        """The built-in Nexmark generator; see :mod:`sabot.nexmark`."""
        return DataStream(self, self._native.from_nexmark(config, parallelism))

    # -- running ------------------------------------------------------------

    def plan_json(self) -> str:
        """The logical plan as JSON."""
        return str(self._native.plan_json())

    def start(self) -> JobHandle:
        """Starts the job built so far and returns at once."""
        self._handle = JobHandle(self._native.start())
        return self._handle

    def execute(self) -> JobResult:
        """Runs the job to completion (bounded sources) and returns its metrics.

        Under ``sabot run`` the metrics report is printed to stderr at the end."""
        result = self.start().wait()
        if os.environ.get("SABOT_PRINT_METRICS") == "1":
            print(result.report(), end="", file=sys.stderr, flush=True)
        return result
