"""Keyed state for Python functions: ``stream.key_by("k").process(MyFn())``.

A keyed function is a class with ``open(ctx)``, where it declares its states,
and ``process_batch(batch, ctx)``, called once per input batch (the GIL is
taken once per batch, never per row), where it reads and writes the state of
the batch's keys in bulk and returns a ``pyarrow.RecordBatch`` (or a Table, a
list of batches, or None for no output)::

    class Count(sb.KeyedProcessFunction):
        def open(self, ctx):
            self.count = ctx.value_state("count", pa.int64())

        def process_batch(self, batch, ctx):
            keys = ctx.keys(batch)                       # the key column(s)
            before = pc.fill_null(self.count.get_many(keys), 0)
            ...

State values are Arrow values of a declared type; every method takes the keys
as the key column values of the rows it is about (an array, or a list of arrays
for several key columns) and returns arrays aligned with them. States are kept
by the job's state backend (memory or RocksDB, see
:meth:`sabot.Environment.set_state_backend`), partitioned by key group like
``key_by``, and restored from checkpoints, also at another parallelism.

Each parallel instance works on its own copy of the function object
(``copy.deepcopy``), so attributes set in ``open`` belong to one instance.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sabot import _sabot

if TYPE_CHECKING:
    from sabot.datastream import DataStream

Keys = pa.Array | pa.ChunkedArray | Sequence[pa.Array | pa.ChunkedArray] | pa.RecordBatch | pa.Table
"""Key values: one array per key column (a single array for one key column)."""

__all__ = [
    "AggregatingState",
    "KeyedProcessFunction",
    "ListState",
    "MapState",
    "ReducingState",
    "StateContext",
    "ValueState",
]


def _array(values: Any, what: str) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):
        return values.combine_chunks()
    if isinstance(values, pa.Array):
        return values
    raise TypeError(f"{what} must be a pyarrow.Array, got {type(values).__name__}")


def _key_arrays(keys: Keys) -> list[pa.Array]:
    if isinstance(keys, (pa.RecordBatch, pa.Table)):
        columns = [keys.column(i) for i in range(keys.num_columns)]
    elif isinstance(keys, (pa.Array, pa.ChunkedArray)):
        columns = [keys]
    elif isinstance(keys, Sequence) and not isinstance(keys, (str, bytes)):
        columns = list(keys)
    else:
        raise TypeError(
            "keys must be the key column values: a pyarrow.Array, a list of arrays, "
            f"or a RecordBatch/Table of the key columns, got {type(keys).__name__}"
        )
    return [_array(c, "keys") for c in columns]


def _key_capsules(keys: Keys) -> list[Any]:
    return [a.__arrow_c_array__() for a in _key_arrays(keys)]


def _import(capsules: Any) -> pa.Array:
    return pa.Array._import_from_c_capsule(*capsules)


def _type_capsule(type_: pa.DataType) -> Any:
    if not isinstance(type_, pa.DataType):
        raise TypeError(f"a state type must be a pyarrow.DataType, got {type(type_).__name__}")
    return type_.__arrow_c_schema__()


class ValueState:
    """One value (of the declared Arrow type) per key."""

    def __init__(self, native: Any, type_: pa.DataType) -> None:
        self._native = native
        self.type = type_

    def get_many(self, keys: Keys) -> pa.Array:
        """The value of each row's key (null where the key has none)."""
        return _import(self._native.get(_key_capsules(keys)))

    def put_many(self, keys: Keys, values: pa.Array | pa.ChunkedArray) -> None:
        """Sets each row's key to the row's value (for a repeated key, its last
        row wins; a null value clears the key)."""
        values = _array(values, "values")
        if not values.type.equals(self.type):
            values = values.cast(self.type)
        self._native.put(_key_capsules(keys), values.__arrow_c_array__())

    def clear_many(self, keys: Keys) -> None:
        """Removes the value of each given key."""
        self._native.clear(_key_capsules(keys))


class ListState:
    """A list of values (of the declared Arrow type) per key. Appends do not
    read the list (with RocksDB they are merges)."""

    def __init__(self, native: Any, type_: pa.DataType) -> None:
        self._native = native
        self.type = type_

    def get_many(self, keys: Keys) -> pa.ListArray:
        """The list of each row's key (empty when it has none)."""
        return _import(self._native.get(_key_capsules(keys)))

    def add_many(self, keys: Keys, values: pa.Array | pa.ChunkedArray) -> None:
        """Appends each row's value to its key's list, in row order."""
        values = _array(values, "values")
        if not values.type.equals(self.type):
            values = values.cast(self.type)
        self._native.add(_key_capsules(keys), values.__arrow_c_array__())

    def update_many(self, keys: Keys, lists: pa.Array | pa.ChunkedArray) -> None:
        """Replaces each row's key's list (for a repeated key, its last row wins;
        null or empty clears it)."""
        lists = _array(lists, "lists")
        want = pa.list_(self.type)
        if not lists.type.equals(want):
            lists = lists.cast(want)
        self._native.update(_key_capsules(keys), lists.__arrow_c_array__())

    def clear_many(self, keys: Keys) -> None:
        self._native.clear(_key_capsules(keys))


class MapState:
    """A map of user keys to values per key (both of declared Arrow types);
    TTL applies to each entry."""

    def __init__(self, native: Any, key_type: pa.DataType, value_type: pa.DataType) -> None:
        self._native = native
        self.key_type = key_type
        self.value_type = value_type

    def _user_keys(self, user_keys: Any) -> Any:
        user_keys = _array(user_keys, "user_keys")
        if not user_keys.type.equals(self.key_type):
            user_keys = user_keys.cast(self.key_type)
        return user_keys.__arrow_c_array__()

    def get_many(self, keys: Keys, user_keys: pa.Array) -> pa.Array:
        """The value of (row's key, row's user key) for each row (null: none)."""
        return _import(self._native.get(_key_capsules(keys), self._user_keys(user_keys)))

    def put_many(self, keys: Keys, user_keys: pa.Array, values: pa.Array) -> None:
        """Puts (row's key, row's user key) -> row's value, in row order; a null
        value removes the entry."""
        values = _array(values, "values")
        if not values.type.equals(self.value_type):
            values = values.cast(self.value_type)
        self._native.put(
            _key_capsules(keys), self._user_keys(user_keys), values.__arrow_c_array__()
        )

    def remove_many(self, keys: Keys, user_keys: pa.Array) -> None:
        self._native.remove(_key_capsules(keys), self._user_keys(user_keys))

    def entries_many(self, keys: Keys) -> pa.MapArray:
        """Each row's key's whole map (a MapArray aligned with the rows)."""
        return _import(self._native.entries(_key_capsules(keys)))

    def clear_many(self, keys: Keys) -> None:
        self._native.clear(_key_capsules(keys))


_INT64 = pa.int64()

_NAMED_REDUCERS: dict[str, Callable[[pa.Array, pa.Array], pa.Array]] = {
    "sum": pc.add,
    "min": pc.min_element_wise,
    "max": pc.max_element_wise,
}


def _ranks(row_key: np.ndarray, num_keys: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows ordered by key (stable) and each row's rank among its key's rows."""
    order = np.argsort(row_key, kind="stable")
    counts = np.bincount(row_key, minlength=num_keys)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.empty(len(row_key), dtype=np.int64)
    rank[order] = np.arange(len(row_key)) - starts[row_key[order]]
    return order, rank


def _scatter(current: pa.Array, positions: np.ndarray, new: pa.Array) -> pa.Array:
    """``current`` with ``current[positions[i]] = new[i]``."""
    index = np.arange(len(current), dtype=np.int64)
    index[positions] = len(current) + np.arange(len(positions), dtype=np.int64)
    return pa.concat_arrays([current, new.cast(current.type)]).take(pa.array(index))


class _Folding:
    """A value state whose values fold the rows of a batch per key (what
    reducing and aggregating state share): rows are folded in row order, in as
    many vectorized rounds as the most frequent key has rows in the batch, or in
    log2 rounds when a merge function lets accumulators combine pairwise."""

    def __init__(
        self,
        ctx: StateContext,
        value: ValueState,
        add: Callable[[pa.Array, pa.Array], pa.Array],
        merge: Callable[[pa.Array, pa.Array], pa.Array] | None,
    ) -> None:
        self._ctx = ctx
        self._value = value
        self._add = add
        self._merge = merge

    def _accumulate(self, keys: Keys, values: pa.Array) -> None:
        values = _array(values, "values")
        first, row_key = self._ctx._key_index(keys)
        num_keys = len(first)
        if num_keys == 0:
            return
        key_columns = [a.take(first) for a in _key_arrays(keys)]
        acc = self._value.get_many(key_columns)  # one per distinct key, null: none
        rk = row_key.to_numpy()
        order, rank = _ranks(rk, num_keys)
        if self._merge is not None:
            # Each row becomes an accumulator, merged pairwise per key (in order).
            singles = self._add(pa.nulls(len(values), acc.type), values).cast(acc.type)
            vals = singles.take(pa.array(order))
            groups = rk[order]
            while len(vals) > num_keys:
                first_of_group = np.concatenate([[True], groups[1:] != groups[:-1]])
                pos = np.arange(len(groups)) - np.maximum.accumulate(
                    np.where(first_of_group, np.arange(len(groups)), 0)
                )
                even = np.nonzero(pos % 2 == 0)[0]
                partner = even + 1
                has = (partner < len(groups)) & (
                    groups[np.minimum(partner, len(groups) - 1)] == groups[even]
                )
                partner = np.where(has, partner, even)
                left = vals.take(pa.array(even))
                right = vals.take(pa.array(partner))
                vals = pc.if_else(pa.array(has), self._merge(left, right), left)
                groups = groups[even]
            batch_acc = _scatter(pa.nulls(num_keys, acc.type), groups, vals)
            merged = self._merge(acc, batch_acc)
            acc = pc.if_else(pc.is_null(acc), batch_acc, merged)
        else:
            for r in range(int(rank.max()) + 1):
                rows = np.nonzero(rank == r)[0]
                ks = rk[rows]
                current = acc.take(pa.array(ks))
                updated = self._add(current, values.take(pa.array(rows)))
                acc = _scatter(acc, ks, updated)
        self._value.put_many(key_columns, acc)


class ReducingState(_Folding):
    """One value per key, combined with every added value by ``reduce``
    (``"sum"``, ``"min"``, ``"max"`` or an element-wise function of two arrays,
    e.g. ``pc.add``; it must be associative: values are combined pairwise, in
    row order)."""

    def __init__(self, ctx: StateContext, value: ValueState, reduce: Any) -> None:
        fn = _NAMED_REDUCERS.get(reduce) if isinstance(reduce, str) else reduce
        if fn is None or not callable(fn):
            raise ValueError(f"reduce must be 'sum', 'min', 'max' or a function, not {reduce!r}")

        def add(acc: pa.Array, values: pa.Array) -> pa.Array:
            return pc.if_else(pc.is_null(acc), values.cast(acc.type), fn(acc, values))

        super().__init__(ctx, value, add, fn)
        self.type = value.type

    def get_many(self, keys: Keys) -> pa.Array:
        return self._value.get_many(keys)

    def add_many(self, keys: Keys, values: pa.Array | pa.ChunkedArray) -> None:
        """Folds each row's value into its key's value (in row order)."""
        self._accumulate(keys, values)

    def clear_many(self, keys: Keys) -> None:
        self._value.clear_many(keys)


class AggregatingState(_Folding):
    """An accumulator (of ``acc_type``) per key: ``add(acc, values)`` folds
    values into accumulators element-wise (``acc`` is null for a key without
    one), ``result(acc)`` reads the output (default: the accumulator), and the
    optional ``merge(acc1, acc2)`` combines two accumulators (lets a batch with
    many rows of one key fold in log2 rounds instead of one round per row)."""

    def __init__(
        self,
        ctx: StateContext,
        value: ValueState,
        add: Callable[[pa.Array, pa.Array], pa.Array],
        result: Callable[[pa.Array], pa.Array] | None,
        merge: Callable[[pa.Array, pa.Array], pa.Array] | None,
    ) -> None:
        super().__init__(ctx, value, add, merge)
        self._result = result

    def get_many(self, keys: Keys) -> pa.Array:
        acc = self._value.get_many(keys)
        return self._result(acc) if self._result is not None else acc

    def add_many(self, keys: Keys, values: pa.Array | pa.ChunkedArray) -> None:
        self._accumulate(keys, values)

    def clear_many(self, keys: Keys) -> None:
        self._value.clear_many(keys)


class StateContext:
    """What a keyed function gets in ``open`` and ``process_batch``."""

    def __init__(self, native: Any) -> None:
        self._native = native

    @property
    def key_columns(self) -> list[str]:
        """The columns the stream is keyed by."""
        return list(self._native.key_columns)

    @property
    def instance_index(self) -> int:
        return int(self._native.instance_index)

    @property
    def parallelism(self) -> int:
        return int(self._native.parallelism)

    @property
    def backend(self) -> str:
        """``"memory"`` or ``"rocksdb"``."""
        return str(self._native.backend)

    def now_ms(self) -> int:
        """Processing time (the clock of state TTL), ms since the epoch."""
        return int(self._native.now_ms())

    def keys(self, batch: pa.RecordBatch) -> pa.Array | list[pa.Array]:
        """The key column(s) of ``batch``: one array, or a list for several."""
        columns = [batch.column(name) for name in self.key_columns]
        return columns[0] if len(columns) == 1 else columns

    def _key_index(self, keys: Keys) -> tuple[pa.Array, pa.Array]:
        first, row_key = self._native.key_index(_key_capsules(keys))
        return _import(first), _import(row_key)

    def distinct_keys(self, keys: Keys) -> tuple[pa.Array, pa.Array]:
        """(first row of each distinct key, distinct-key index of each row): the
        grouping state uses, to pre-aggregate a batch per key."""
        return self._key_index(keys)

    def value_state(
        self,
        name: str,
        type: pa.DataType = _INT64,  # noqa: A002
        *,
        ttl_ms: int = 0,
        update_ttl_on_read: bool = False,
    ) -> ValueState:
        """Declares a value state (call in ``open``). ``ttl_ms`` > 0 expires a
        key's value that long after its last write (or read, with
        ``update_ttl_on_read``); expired values are never returned."""
        native = self._native.value_state(
            name, _type_capsule(type), int(ttl_ms), bool(update_ttl_on_read)
        )
        return ValueState(native, type)

    def list_state(
        self,
        name: str,
        type: pa.DataType = _INT64,  # noqa: A002
        *,
        ttl_ms: int = 0,
        update_ttl_on_read: bool = False,
    ) -> ListState:
        """Declares a list state; the TTL applies to each key's whole list and
        restarts with every append."""
        native = self._native.list_state(
            name, _type_capsule(type), int(ttl_ms), bool(update_ttl_on_read)
        )
        return ListState(native, type)

    def map_state(
        self,
        name: str,
        key_type: pa.DataType,
        value_type: pa.DataType,
        *,
        ttl_ms: int = 0,
        update_ttl_on_read: bool = False,
    ) -> MapState:
        """Declares a map state; the TTL applies to each entry."""
        native = self._native.map_state(
            name,
            _type_capsule(key_type),
            _type_capsule(value_type),
            int(ttl_ms),
            bool(update_ttl_on_read),
        )
        return MapState(native, key_type, value_type)

    def reducing_state(
        self,
        name: str,
        type: pa.DataType = _INT64,  # noqa: A002
        reduce: str | Callable[[pa.Array, pa.Array], pa.Array] = "sum",
        *,
        ttl_ms: int = 0,
        update_ttl_on_read: bool = False,
    ) -> ReducingState:
        """Declares a reducing state (see :class:`ReducingState`)."""
        value = self.value_state(name, type, ttl_ms=ttl_ms, update_ttl_on_read=update_ttl_on_read)
        return ReducingState(self, value, reduce)

    def aggregating_state(
        self,
        name: str,
        acc_type: pa.DataType,
        add: Callable[[pa.Array, pa.Array], pa.Array],
        result: Callable[[pa.Array], pa.Array] | None = None,
        *,
        merge: Callable[[pa.Array, pa.Array], pa.Array] | None = None,
        ttl_ms: int = 0,
        update_ttl_on_read: bool = False,
    ) -> AggregatingState:
        """Declares an aggregating state (see :class:`AggregatingState`)."""
        value = self.value_state(
            name, acc_type, ttl_ms=ttl_ms, update_ttl_on_read=update_ttl_on_read
        )
        return AggregatingState(self, value, add, result, merge)


class KeyedProcessFunction:
    """Base class of keyed functions (optional: any object with
    ``process_batch`` works)."""

    def open(self, ctx: StateContext) -> None:
        """Declares the states; called once per parallel instance, before any
        restore and any batch."""

    def process_batch(self, batch: pa.RecordBatch, ctx: StateContext) -> Any:
        """One input batch: returns a RecordBatch, a Table, a list of them, or None."""
        raise NotImplementedError

    def close(self, ctx: StateContext) -> Any:
        """End of input: returns what to emit last (same forms), or None."""
        return None


def _outputs(result: Any, what: str) -> list[Any]:
    if result is None:
        return []
    if isinstance(result, pa.RecordBatch):
        return [result.__arrow_c_array__()]
    if isinstance(result, pa.Table):
        return [b.__arrow_c_array__() for b in result.to_batches()]
    if isinstance(result, Iterable) and not isinstance(result, (str, bytes, dict)):
        out = []
        for item in result:
            out.extend(_outputs(item, what))
        return out
    raise TypeError(
        f"{what} must return a pyarrow.RecordBatch, a Table, a list of them or None, "
        f"got {type(result).__name__}"
    )


class _Adapter:
    """What the native operator calls (one per parallel instance)."""

    def __init__(self, fn: Any, what: str) -> None:
        self._fn = fn
        self._what = what
        self._ctx: StateContext | None = None

    def open(self, native_ctx: Any) -> None:
        self._ctx = StateContext(native_ctx)
        if not self._ctx.key_columns:
            raise ValueError("process() needs a keyed stream: call key_by(...) before it")
        opener = getattr(self._fn, "open", None)
        if opener is not None:
            opener(self._ctx)

    def process(self, native_ctx: Any, schema_capsule: Any, array_capsule: Any) -> list[Any]:
        batch = pa.RecordBatch._import_from_c_capsule(schema_capsule, array_capsule)
        return _outputs(self._fn.process_batch(batch, self._ctx), self._what)

    def close(self, native_ctx: Any) -> list[Any]:
        closer = getattr(self._fn, "close", None)
        return _outputs(closer(self._ctx), self._what) if closer is not None else []


def process(
    stream: DataStream,
    fn: Any,
    *,
    schema: pa.Schema | None = None,
    name: str | None = None,
) -> DataStream:
    """``stream.process(fn)``: see :meth:`sabot.DataStream.process`."""
    from sabot.datastream import DataStream

    if not callable(getattr(fn, "process_batch", None)):
        raise TypeError(
            "process() takes an object with process_batch(batch, ctx) "
            "(e.g. a sabot.KeyedProcessFunction)"
        )
    what = f"keyed function {name or type(fn).__qualname__}"

    def factory() -> _Adapter:
        return _Adapter(copy.deepcopy(fn), what)

    options = {
        "keys": None,
        "what": what,
        "schema": schema.__arrow_c_schema__() if schema is not None else None,
    }
    native = _sabot.keyed_process(stream._native, options, factory)
    return DataStream(stream._env, native, stream._time)


def set_state_backend(
    env: Any,
    backend: str = "memory",
    *,
    local_dir: str | None = None,
    rocksdb_memory_bytes: int = 64 << 20,
) -> None:
    """See :meth:`sabot.Environment.set_state_backend`."""
    _sabot.set_state_backend(env._native, backend, local_dir or "", int(rocksdb_memory_bytes))
