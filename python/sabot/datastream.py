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
from sabot.window import Aggregate, Duration, Window, _aggregate_dicts, to_millis

JobError = _sabot.JobError
"""Raised when a job fails; the message names the operator and the cause."""

Expression = pc.Expression


def col(name: str) -> pc.Expression:
    """A column reference, usable in expressions: ``sb.col("price") * 0.908``."""
    return pc.field(name)


def lit(value: Any) -> pc.Expression:
    """A literal value in an expression."""
    return pc.scalar(value)


def call(function: str, *args: Any, options: pc.FunctionOptions | None = None) -> pc.Expression:
    """A call of any Arrow compute function: ``sb.call("modulo", sb.col("auction"), 123)``,
    ``sb.call("strftime", sb.col("t"), options=pc.StrftimeOptions("%Y-%m-%d"))``."""
    exprs = [a if isinstance(a, pc.Expression) else pc.scalar(a) for a in args]
    return pc.Expression._call(function, exprs, options)


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

    def trigger_checkpoint(self, checkpoint_id: int | None = None) -> int:
        """Starts a checkpoint (the next id unless given) and returns its id at
        once; raises JobError when one is still in flight."""
        native = self._native.native_job()
        return int(native.trigger_checkpoint(-1 if checkpoint_id is None else checkpoint_id))

    def physical_plan(self) -> str:
        return str(self._native.physical_plan())

    # -- checkpoints and savepoints (sabot/checkpoint.py) ---------------------

    def savepoint(self, path: str | os.PathLike[str]) -> str:
        """Takes a self-contained savepoint at ``path`` (new or empty) and
        returns its path once it is complete; the job keeps running."""
        return str(self._native.native_job().savepoint(os.fspath(path)))

    def stop_with_savepoint(self, path: str | os.PathLike[str]) -> str:
        """Takes a savepoint with the sources stopped right after it, then
        cancels the job; ``restore=path`` continues exactly where it stopped."""
        return str(self._native.native_job().stop_with_savepoint(os.fspath(path)))

    def checkpoint_stats(self) -> dict[str, Any]:
        """Checkpoint counters: completed, failed, skipped, last_failure, ..."""
        return dict(self._native.native_job().checkpoint_stats())

    def await_checkpoints(self, count: int, timeout: float = 60.0) -> bool:
        """Waits until ``count`` checkpoints completed (True) or the job can no
        longer checkpoint or ``timeout`` seconds passed (False)."""
        return bool(self._native.native_job().await_checkpoints(count, timeout))

    # -- end of checkpoints and savepoints ------------------------------------


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

    def __init__(self, env: Environment, native: Any, time: str | None = None) -> None:
        self._env = env
        self._native = native
        self._time = time  # event-time column declared by with_watermarks()

    def _derive(self, native: Any) -> DataStream:
        return DataStream(self._env, native, self._time)

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
        return self._derive(self._native.map(adapter, what, capsule))

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
        return self._derive(self._native.flat_map(adapter, what, capsule))

    def filter(self, predicate: pc.Expression) -> DataStream:
        """Keeps rows where ``predicate`` is true (null counts as false)."""
        return self._derive(self._native.filter(_expr_bytes(predicate)))

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
        return self._derive(self._native.select(exprs, names))

    def key_by(self, *keys: str) -> DataStream:
        """Partitions by the key columns: rows with one key reach one instance of
        the next operator (vectorized hashing, key groups as in Flink)."""
        if not keys:
            raise ValueError("key_by needs at least one key column")
        return self._derive(self._native.key_by(list(keys)))

    def rebalance(self) -> DataStream:
        """Spreads batches round robin over the next operator's instances."""
        return self._derive(self._native.rebalance())

    def broadcast(self) -> DataStream:
        """Sends every batch to every instance of the next operator."""
        return self._derive(self._native.broadcast())

    def union(self, *others: DataStream) -> DataStream:
        """Merges streams of the same schema."""
        return self._derive(self._native.union([o._native for o in others]))

    def parallelism(self, parallelism: int) -> DataStream:
        """Sets the number of parallel instances of this stream's operator."""
        if parallelism < 1:
            raise ValueError("parallelism must be at least 1")
        return self._derive(self._native.set_parallelism(parallelism))

    # -- event time and windows ------------------------------------------

    def with_watermarks(
        self,
        time: str,
        *,
        max_out_of_orderness: Duration = 0,
        strategy: str = "bounded",
        custom: Callable[[pa.RecordBatch, int], int | None] | None = None,
        idle_timeout: Duration = 0,
        time_unit: str = "ms",
        valid_range: tuple[int, int] | None = None,
        per_split: str | None = None,
    ) -> DataStream:
        """Declares ``time`` the event-time column and generates watermarks per
        parallel instance (per source split when applied right after a source).

        Strategies: ``"bounded"`` (watermark = max event time -
        max_out_of_orderness - 1 ms), ``"monotonous"``, or ``"custom"`` with
        ``custom(batch, max_event_time_ms) -> watermark_ms | None``. An instance
        that sees no row for ``idle_timeout`` is marked idle and stops holding back
        the watermark. ``time`` is int64 in ``time_unit`` (s, ms, us, ns) or an
        Arrow timestamp. Rows with a null time or one outside ``valid_range`` (ms,
        default 1970-01-01 .. 2200-01-01) go to :meth:`invalid_time`.

        ``per_split`` names an integer column that tells the source split of each
        row (e.g. ``"partition"`` from a Kafka source with
        ``metadata=["partition"]``): watermarks are then kept per split and the
        instance emits the minimum, so one instance reading several partitions
        never lets a fast partition overtake a slow one."""
        options: dict[str, Any] = {
            "time": time,
            "time_unit": time_unit,
            "strategy": "custom" if custom is not None else strategy,
            "max_out_of_orderness_ms": to_millis(max_out_of_orderness),
            "idle_timeout_ms": to_millis(idle_timeout),
            "custom": None,
            "split_column": per_split,
        }
        if custom is not None:
            user = custom

            def adapter(schema_capsule: Any, array_capsule: Any, max_ts: int) -> int | None:
                batch = pa.RecordBatch._import_from_c_capsule(schema_capsule, array_capsule)
                return user(batch, max_ts)

            options["custom"] = adapter
        if valid_range is not None:
            options["min_valid_ms"], options["max_valid_ms"] = valid_range
        return DataStream(self._env, self._native.assign_watermarks(options), time)

    def invalid_time(self) -> DataStream:
        """Rows :meth:`with_watermarks` rejected (null or absurd event time), with
        an ``error`` column giving the reason."""
        return self._derive(self._native.side_output("invalid_time"))

    def late(self) -> DataStream:
        """Rows a window received after their windows were purged (side output)."""
        return self._derive(self._native.side_output("late"))

    def window(
        self,
        window: Window,
        *,
        time: str | None = None,
        processing_time: bool = False,
        allowed_lateness: Duration = 0,
        early_every_rows: int = 0,
        every: Duration = 0,
        every_rows: int = 0,
        purge: bool = False,
        time_unit: str = "ms",
    ) -> WindowedStream:
        """Groups the stream into windows; call :meth:`WindowedStream.agg` next.

        Keys come from a preceding :meth:`key_by`; without one the window is
        global over the stream (one instance). ``time`` defaults to the column
        given to :meth:`with_watermarks`; ``processing_time=True`` assigns rows
        by the wall clock instead. Triggers: time windows fire when the
        watermark passes their end; ``early_every_rows``/``every`` add early
        firings; ``allowed_lateness`` keeps windows to update them with late
        rows. Global windows fire every ``every_rows`` rows per key and/or every
        ``every``, keeping (default) or clearing (``purge``) their state."""
        if not isinstance(window, Window):
            raise TypeError(
                "window() takes sb.tumbling(...), sb.hopping(...), sb.session(...), ..."
            )
        spec: dict[str, Any] = dict(window.params)
        spec["kind"] = window.kind
        spec["time"] = time or self._time
        spec["time_unit"] = time_unit
        spec["processing_time"] = processing_time
        spec["allowed_lateness_ms"] = to_millis(allowed_lateness)
        if window.kind == "global":
            spec["trigger_every_rows"] = every_rows
        else:
            spec["trigger_every_rows"] = early_every_rows
        spec["trigger_every_ms"] = to_millis(every)
        spec["trigger_purge"] = purge
        needs_time = window.kind in ("tumbling", "hopping", "cumulate", "session")
        if needs_time and not processing_time and spec["time"] is None:
            raise ValueError(
                "this window needs event time: call with_watermarks(time_column, ...) first, "
                "pass time=..., or use processing_time=True"
            )
        return WindowedStream(self, spec)

    # -- event-time joins (sabot/join.py) ------------------------------------

    def interval_join(
        self,
        right: DataStream,
        *,
        on: Any,
        between: tuple[Duration, Duration],
        how: str = "inner",
        left_time: str | None = None,
        right_time: str | None = None,
        time_unit: str = "ms",
    ) -> DataStream:
        """Interval join: rows with equal keys (``on``: a column, a list, or
        ``(left_cols, right_cols)``) where ``right.time`` is between
        ``left.time + between[0]`` and ``left.time + between[1]``. ``how``:
        inner, left, right, full. See :func:`sabot.join.interval_join`."""
        from sabot import join

        return join.interval_join(
            self,
            right,
            on=on,
            between=between,
            how=how,
            left_time=left_time,
            right_time=right_time,
            time_unit=time_unit,
        )

    def window_join(
        self,
        right: DataStream,
        window: Window,
        *,
        on: Any,
        how: str = "inner",
        left_time: str | None = None,
        right_time: str | None = None,
        time_unit: str = "ms",
    ) -> DataStream:
        """Window join: rows with equal keys in the same tumbling/hopping window.
        See :func:`sabot.join.window_join`."""
        from sabot import join

        return join.window_join(
            self,
            right,
            window,
            on=on,
            how=how,
            left_time=left_time,
            right_time=right_time,
            time_unit=time_unit,
        )

    def asof_join(
        self,
        right: DataStream,
        *,
        on: Any,
        tolerance: Duration | None = None,
        how: str = "inner",
        left_time: str | None = None,
        right_time: str | None = None,
        time_unit: str = "ms",
    ) -> DataStream:
        """ASOF join: each row with the right row of equal key and the greatest
        ``right.time <= left.time`` (within ``tolerance`` if given). ``how``:
        inner or left. See :func:`sabot.join.asof_join`."""
        from sabot import join

        return join.asof_join(
            self,
            right,
            on=on,
            tolerance=tolerance,
            how=how,
            left_time=left_time,
            right_time=right_time,
            time_unit=time_unit,
        )

    def temporal_join(
        self,
        versions: DataStream,
        *,
        on: Any,
        deleted: str | None = None,
        how: str = "inner",
        left_time: str | None = None,
        right_time: str | None = None,
        time_unit: str = "ms",
    ) -> DataStream:
        """Temporal join: each row with the version of its key valid at its time
        in the changelog ``versions`` (``deleted``: a boolean column marking
        deletes). See :func:`sabot.join.temporal_join`."""
        from sabot import join

        return join.temporal_join(
            self,
            versions,
            on=on,
            deleted=deleted,
            how=how,
            left_time=left_time,
            right_time=right_time,
            time_unit=time_unit,
        )

    # -- end of event-time joins ----------------------------------------------

    # -- regular join (sabot/join.py) -------------------------------------------

    def join(
        self,
        right: DataStream,
        *,
        on: Any,
        how: str = "inner",
        where: pc.Expression | None = None,
        unique: str | None = None,
        state_ttl: Duration | None = None,
        left_ttl: Duration | None = None,
        right_ttl: Duration | None = None,
    ) -> DataStream:
        """Regular (unbounded) join on equal keys (``on``: a column, a list, or
        ``(left_cols, right_cols)``), over append-only or updating inputs.
        ``how``: inner, left, right, full. Updating output (+I/-D with ``_op``)
        unless inner over two append-only inputs. ``where``: an extra condition
        over the output columns. ``unique="right"``/``"left"``: that side has at
        most one row per key (keeps less state). ``state_ttl`` drops rows not
        written for that long (processing time). See :func:`sabot.join.regular_join`."""
        from sabot import join

        return join.regular_join(
            self,
            right,
            on=on,
            how=how,
            where=where,
            unique=unique,
            state_ttl=state_ttl,
            left_ttl=left_ttl,
            right_ttl=right_ttl,
        )

    # -- end of regular join ----------------------------------------------------

    # -- updating operators (sabot/changelog.py) ------------------------------

    def aggregate(self, *, state_ttl: Duration = 0, **aggregates: Aggregate) -> DataStream:
        """Non-windowed group-by: ``key_by("k").aggregate(total=sb.sum("v"))``.

        An updating stream: the keys, the aggregates and ``_op`` (int8; see
        :mod:`sabot.changelog`). Per input batch, each touched key emits -U (its
        previous result) then +U (its new one), or +I when it is new. Upsert key:
        the key columns. ``state_ttl`` (processing time) drops keys untouched for
        that long, without a retraction. Without :meth:`key_by`, one group."""
        if not aggregates:
            raise ValueError("aggregate() needs at least one aggregate, e.g. n=sb.count()")
        options = {"state_ttl_ms": to_millis(state_ttl)}
        native = _sabot.group_aggregate(self._native, options, _aggregate_dicts(aggregates))
        return DataStream(self._env, native, None)

    def deduplicate(self, *, keep: str = "first", time: str | None = None) -> DataStream:
        """One row per key of the preceding :meth:`key_by` (an updating stream
        with ``_op``). ``keep="first"``: +I for the first row of each key.
        ``keep="last"``: +I, then -U/+U whenever a later row arrives. With
        ``time``, "first"/"last" means the smallest/greatest value of that column
        (ties: the later row wins for "last"); rows with a null time are dropped."""
        options = {"keep": keep, "time": time}
        return DataStream(self._env, _sabot.deduplicate(self._native, options), self._time)

    def top_n(self, n: int, by: str, *, descending: bool = True, rank: bool = False) -> DataStream:
        """The ``n`` best rows by ``by`` per key of the preceding :meth:`key_by`,
        as an updating stream: +I for a row entering the set, -D for one leaving.
        With ``rank=True`` a 1-based ``rank`` column is added and each rank is an
        upsert (key, rank): -U/+U when its row changes. Ties keep the earlier row."""
        options = {"n": n, "by": by, "descending": descending, "rank": rank}
        return DataStream(self._env, _sabot.top_n(self._native, options), self._time)

    # -- end of updating operators --------------------------------------------

    # -- keyed state (sabot/state.py) -------------------------------------------

    def process(
        self, fn: Any, *, schema: pa.Schema | None = None, name: str | None = None
    ) -> DataStream:
        """Runs a keyed function with state over each batch of a keyed stream:
        ``stream.key_by("k").process(MyFn())``. ``fn`` has ``open(ctx)``, where it
        declares states (``ctx.value_state("count", pa.int64(), ttl_ms=...)``,
        list, map, reducing, aggregating), and ``process_batch(batch, ctx)``,
        which reads and writes the state of the batch's keys in bulk
        (``get_many``/``put_many`` with the key column values) and returns a
        RecordBatch, a Table, a list of them or None. The GIL is taken once per
        batch. ``schema`` (optional) declares the output schema. See
        :mod:`sabot.state` and docs/state.md."""
        from sabot import state

        return state.process(self, fn, schema=schema, name=name)

    # -- end of keyed state ------------------------------------------------------

    # -- lookup join, materialized views, upsert sinks (sabot/lookup.py, ----
    # -- sabot/views.py, sabot/upsert.py) ------------------------------------

    def lookup_join(self, table: Any, *, on: str | Sequence[str], **options: Any) -> DataStream:
        """Enriches each row with the rows of an external table whose key equals
        the row's ``on`` columns: ``orders.lookup_join(sb.postgres_table(dsn,
        "customers", key="id"), on="customer_id", how="left")``. Lookups run on
        threads of their own, with an LRU cache; options (how, cache_max_entries,
        cache_ttl, max_in_flight, ordered, ...) as :func:`sabot.lookup.lookup_join`.
        The result has a ``lookup_stats`` attribute."""
        from sabot import lookup

        return lookup.lookup_join(self, table, on=on, **options)

    def lookup_errors(self) -> DataStream:
        """Rows of a ``lookup_join(..., on_error="dead_letter")`` whose lookup
        failed, with an ``error`` column."""
        return self._derive(self._native.side_output("lookup_errors"))

    def materialize(
        self, name: str, *, key: str | Sequence[str], consistency: str = "latest"
    ) -> Any:
        """Maintains the materialized view ``name`` (the latest row per ``key``),
        readable while the job runs: ``view.get(k)``, ``view.scan()`` and over
        HTTP (:func:`sabot.views.serve`); ``consistency="checkpoint"`` shows it
        as of the last completed checkpoint. Returns a :class:`sabot.views.View`."""
        from sabot import views

        return views.materialize(self, name, key=key, consistency=consistency)

    def write_kafka_upsert(self, topic: str, *, key: str | Sequence[str], **options: Any) -> Any:
        """Upserts by ``key`` into ``topic`` (deletes as tombstones); options as
        :func:`sabot.upsert.kafka`. Returns its stats."""
        from sabot import upsert

        return upsert.kafka(self, topic, key=key, **options)

    def write_upsert_files(
        self, path: str | os.PathLike[str], *, key: str | Sequence[str], format: str = "parquet"
    ) -> Any:
        """The latest row per ``key`` as ``path/part-<i>.<format>`` (parquet or
        csv), rewritten on every checkpoint and at the end; see
        :func:`sabot.upsert.files`."""
        from sabot import upsert

        return upsert.files(self, path, key=key, format=format)

    # -- end of lookup join, materialized views, upsert sinks ------------------

    # -- sinks ------------------------------------------------------------

    def collect(self, schema: pa.Schema | None = None) -> Collected:
        """Collects the rows in memory; read ``.table()`` after the job ran."""
        return Collected(self._native.collect(), schema)

    def to_table(self, **job_options: Any) -> pa.Table:
        """Collects the stream and runs the environment's job: the rows as a Table.
        ``job_options`` as :meth:`Environment.execute`."""
        collected = self.collect()
        self._env.execute(**job_options)
        return collected.table()

    def uid(self, uid: str) -> DataStream:
        """Names this stream's operator stably for checkpoints and savepoints
        (default: its plan name, e.g. ``window#4``, which shifts when operators
        are added before it)."""
        _sabot.set_uid(self._native, uid)
        return self

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

    def write_kafka(self, topic: str, **options: Any) -> Any:
        """Writes every row as a Kafka message to ``topic``; options as
        :func:`sabot.kafka.sink` (bootstrap, format, key, headers,
        producer_config, ...). Returns the sink's :class:`~sabot.kafka.KafkaSinkStats`."""
        from sabot import kafka

        return kafka.sink(self, topic, **options)

    # -- OVER aggregate, partitioned files (sabot/over.py) ----------------------

    def over_rows(self, *, preceding: int, order_by: str, row_key: str) -> Any:
        """A ROWS frame per key of the preceding :meth:`key_by`: each row and the
        ``preceding`` rows before it in (``order_by``, ``row_key``) order, e.g.
        ``key_by("seller").over_rows(preceding=10, order_by="time",
        row_key="id").agg(avg=sb.mean("price"))``. The input may be updating
        (``_op``): +I/+U add or replace the row with that ``row_key`` (an
        integer column), -U/-D remove it; changed results are re-emitted. See
        docs/over.md."""
        from sabot import over

        return over.over_rows(self, preceding=preceding, order_by=order_by, row_key=row_key)

    def write_partitioned_files(
        self,
        path: str | os.PathLike[str],
        *,
        partition_by: str | Sequence[str],
        format: str = "csv",  # noqa: A002
        success_file: bool = True,
    ) -> DataStream:
        """Writes the rows into ``path/<col>=<value>/.../part-<i>-<n>.<format>``
        (csv or parquet; the partition columns only in the path), committed at
        checkpoints and at the end of input, then ``_SUCCESS`` per partition
        directory. Returns the rows written (pass-through). See
        docs/partitioned_files.md."""
        from sabot import over

        return over.write_partitioned_files(
            self,
            path,
            partition_by=list(partition_by) if not isinstance(partition_by, str) else partition_by,
            format=format,
            success_file=success_file,
        )

    # -- end of OVER aggregate, partitioned files ------------------------------


class WindowedStream:
    """A windowed stream waiting for its aggregates (:meth:`agg`)."""

    def __init__(self, stream: DataStream, spec: dict[str, Any]) -> None:
        self._stream = stream
        self._spec = spec

    def agg(self, **aggregates: Aggregate) -> DataStream:
        """Aggregates each window: ``agg(num=sb.count(), top=sb.max("price"))``.

        Output columns: the keys, ``window_start``, ``window_end``
        (timestamp[ms, UTC]), the aggregates in the order given, and
        ``emit_kind`` when a window can emit more than once (early/late firings,
        global windows): rows are then upserts keyed by (keys, window)."""
        if not aggregates:
            raise ValueError("agg() needs at least one aggregate, e.g. agg(n=sb.count())")
        native = self._stream._native.window(self._spec, _aggregate_dicts(aggregates))
        return DataStream(self._stream._env, native, None)


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

    # -- keyed state (sabot/state.py) -------------------------------------------

    def set_state_backend(
        self,
        backend: str = "memory",
        *,
        local_dir: str | os.PathLike[str] | None = None,
        rocksdb_memory_bytes: int = 64 << 20,
    ) -> Environment:
        """Where keyed state lives (deduplicate and ``process()`` state):
        ``"memory"`` (hash maps in the job's memory pool, so ``memory_cap_bytes``
        bounds them) or ``"rocksdb"`` (one database per operator instance under
        ``local_dir`` or the temp directory, bounded by ``rocksdb_memory_bytes``
        of block cache and write buffers: state larger than memory). Returns
        the environment."""
        from sabot import state

        state.set_state_backend(
            self,
            backend,
            local_dir=os.fspath(local_dir) if local_dir is not None else None,
            rocksdb_memory_bytes=rocksdb_memory_bytes,
        )
        return self

    # -- end of keyed state ------------------------------------------------------

    def plan_json(self) -> str:
        """The logical plan as JSON."""
        return str(self._native.plan_json())

    def start(self, **job_options: Any) -> JobHandle:
        """Starts the job built so far and returns at once; ``job_options`` as
        :meth:`execute`."""
        from sabot import checkpoint

        checkpoint.configure(self, job_options)
        self._handle = JobHandle(self._native.start())
        return self._handle

    def execute(self, **job_options: Any) -> JobResult:
        """Runs the job to completion (bounded sources) and returns its metrics.

        Checkpoint options (docs/checkpoints.md): ``checkpoint_dir``,
        ``checkpoint_interval_ms``, ``retain_checkpoints``,
        ``tolerable_checkpoint_failures``, ``unaligned_checkpoints``,
        ``restore`` ("latest" or a checkpoint/savepoint path),
        ``allow_non_restored_state``, ``job_name``, ``state_backend``
        ("memory" | "rocksdb"), ``state_dir``.

        Under ``sabot run`` the metrics report is printed to stderr at the end."""
        result = self.start(**job_options).wait()
        if os.environ.get("SABOT_PRINT_METRICS") == "1":
            print(result.report(), end="", file=sys.stderr, flush=True)
        return result
