"""Updating streams: the changelog representation (docs/design/changelog.md).

An updating stream is an ordinary Arrow stream with one extra int8 column
``_op``: :data:`INSERT` (+I), :data:`UPDATE_BEFORE` (-U), :data:`UPDATE_AFTER`
(+U), :data:`DELETE` (-D). :func:`materialize` applies a collected changelog and
returns the final table.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import pyarrow as pa
import pyarrow.compute as pc

OP_COLUMN = "_op"
INSERT = 0
UPDATE_BEFORE = 1
UPDATE_AFTER = 2
DELETE = 3

OP_NAMES = {INSERT: "+I", UPDATE_BEFORE: "-U", UPDATE_AFTER: "+U", DELETE: "-D"}


def materialize(table: pa.Table, key: str | Sequence[str] | None = None) -> pa.Table:
    """Applies the changes of ``table`` in row order; returns the rows that remain
    (without ``_op``).

    With ``key`` (the upsert key, e.g. the group-by keys), the last change of each
    key wins: the key is present iff its last op is +I or +U; rows come in order
    of each key's first appearance. Without ``key``, retraction semantics: +I/+U
    add the row, -U/-D remove one equal row (``ValueError`` if it is absent)."""
    if OP_COLUMN not in table.column_names:
        raise ValueError(f"materialize: the table has no {OP_COLUMN!r} column")
    keys = [key] if isinstance(key, str) else list(key or [])
    data = table.drop_columns([OP_COLUMN])
    if not keys:
        return _materialize_retract(table, data)
    row = pa.array(range(table.num_rows), pa.int64())
    work = data.select(keys).append_column("__row", row)
    work = work.append_column("__op", table.column(OP_COLUMN))
    grouped = work.group_by(keys, use_threads=False).aggregate([("__row", "max"), ("__row", "min")])
    last = grouped.column("__row_max")
    first = grouped.column("__row_min")
    ops = pc.take(table.column(OP_COLUMN), last)
    alive = pc.or_(pc.equal(ops, INSERT), pc.equal(ops, UPDATE_AFTER))
    last = pc.filter(last, alive)
    first = pc.filter(first, alive)
    order = pc.sort_indices(first)
    return data.take(pc.take(last, order))


def _materialize_retract(table: pa.Table, data: pa.Table) -> pa.Table:
    ops = table.column(OP_COLUMN).to_pylist()
    rows = list(zip(*(c.to_pylist() for c in data.columns), strict=True))
    counts: Counter[tuple[object, ...]] = Counter()
    first_index: dict[tuple[object, ...], int] = {}
    for i, (op, r) in enumerate(zip(ops, rows, strict=True)):
        if op in (INSERT, UPDATE_AFTER):
            counts[r] += 1
            first_index.setdefault(r, i)
        elif counts[r] == 0:
            raise ValueError(
                f"materialize: row {i} retracts ({OP_NAMES.get(op)}) {r!r}, which is not present"
            )
        else:
            counts[r] -= 1
    take = [
        first_index[r]
        for r in sorted(first_index, key=first_index.__getitem__)
        for _ in range(counts[r])
    ]
    return data.take(pa.array(take, pa.int64()))


__all__ = [
    "DELETE",
    "INSERT",
    "OP_COLUMN",
    "OP_NAMES",
    "UPDATE_AFTER",
    "UPDATE_BEFORE",
    "materialize",
]
