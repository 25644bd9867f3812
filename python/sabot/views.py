"""Materialized views: the latest row per key of a stream, readable while the
job runs, from Python and over HTTP as JSON.

    view = counts.materialize("counts", key="user")
    server = sb.views.serve(port=0)      # http://127.0.0.1:<server.port>/views/counts
    job = env.start()
    view.get("ann")    # {"user": "ann", "n": 3, ...} or None
    view.scan()        # pyarrow.Table

Consistency: ``consistency="latest"`` (default), the latest processed input:
every input batch is applied atomically (across all parallel writers of the
view), so a read sees each batch entirely or not at all. Or
``consistency="checkpoint"``: as of the last completed checkpoint (and the
final result at the end of input). See docs/views.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from sabot import _sabot

if TYPE_CHECKING:
    from sabot.datastream import DataStream


class View:
    """A materialized view: point lookups by key and full scans, any time."""

    def __init__(self, native: Any) -> None:
        self._native = native

    @property
    def name(self) -> str:
        return str(self._native.name)

    @property
    def keys(self) -> list[str]:
        """The key columns."""
        return list(self._native.keys)

    @property
    def num_rows(self) -> int:
        return int(self._native.num_rows)

    @property
    def version(self) -> int:
        """Updates applied so far: one per input batch ("latest"), one per
        published checkpoint ("checkpoint")."""
        return int(self._native.version)

    @property
    def consistency(self) -> str:
        """``"latest"`` or ``"checkpoint"``."""
        return str(self._native.consistency)

    @property
    def checkpoint(self) -> int | None:
        """For ``consistency="checkpoint"``: the id of the checkpoint the view
        shows (None before the first; ``sys.maxsize`` once the input ended)."""
        if self.consistency != "checkpoint":
            return None
        published = int(self._native.published_checkpoint)
        return None if published < 0 else published

    @property
    def schema(self) -> pa.Schema | None:
        """The row schema (the input without ``_op``); None before any data."""
        capsule = self._native.schema_capsule()
        return None if capsule is None else pa.Schema._import_from_c_capsule(capsule)

    def get(self, key: Any) -> dict[str, Any] | None:
        """The row of ``key`` as a dict, or None. ``key`` is the value of the key
        column, or a tuple with one value per key column."""
        schema = self.schema
        if schema is None:
            return None
        values = key if isinstance(key, tuple) else (key,)
        if len(values) != len(self.keys):
            raise ValueError(
                f"view {self.name!r} is keyed by {self.keys}; got {len(values)} value(s)"
            )
        arrays = []
        for column, value in zip(self.keys, values, strict=True):
            array = pa.array([value], type=schema.field(column).type)
            arrays.append(array.__arrow_c_array__())
        row = self._native.get(arrays)
        if row is None:
            return None
        return pa.RecordBatch._import_from_c_capsule(*row).to_pylist()[0]

    def scan(self) -> pa.Table:
        """Every row (in no particular order) as one consistent snapshot."""
        capsule = self._native.scan()
        if capsule is None:
            return pa.table({})
        return pa.RecordBatchReader._import_from_c_capsule(capsule).read_all()

    def to_dict(self) -> dict[Any, dict[str, Any]]:
        """The rows by key (a tuple for several key columns)."""
        out: dict[Any, dict[str, Any]] = {}
        for row in self.scan().to_pylist():
            k = tuple(row[c] for c in self.keys)
            out[k[0] if len(k) == 1 else k] = row
        return out

    def __repr__(self) -> str:
        return f"View({self.name!r}, keys={self.keys}, num_rows={self.num_rows})"


def materialize(
    stream: DataStream, name: str, *, key: str | Sequence[str], consistency: str = "latest"
) -> View:
    """Maintains the view ``name``: the latest row per ``key`` of ``stream``.

    ``stream`` is an updating stream (an ``_op`` column: +I/+U upsert, -U/-D
    delete by key; e.g. ``key_by(...).aggregate(...)``) or a plain stream (each
    row replaces the previous row of its key). It is hash-partitioned by
    ``key`` first. ``consistency``: ``"latest"`` (each processed batch, at once)
    or ``"checkpoint"`` (the changes up to a checkpoint's barrier, once that
    checkpoint completed; everything at the end of input). The view is
    registered under ``name`` (replacing a view of that name) and served by
    :func:`serve`."""
    keys = [key] if isinstance(key, str) else list(key)
    return View(_sabot.materialize(stream._native, name, keys, consistency))


def get_view(name: str) -> View | None:
    """The registered view ``name``, or None."""
    native = _sabot.find_view(name)
    return None if native is None else View(native)


def list_views() -> list[str]:
    """Names of the registered views."""
    return list(_sabot.list_views())


def drop_view(name: str) -> bool:
    """Unregisters the view ``name`` (handles to it keep working)."""
    return bool(_sabot.drop_view(name))


class ViewServer:
    """The HTTP server of :func:`serve`; a context manager that stops it."""

    def __init__(self, native: Any) -> None:
        self._native = native

    @property
    def port(self) -> int:
        return int(self._native.port)

    @property
    def url(self) -> str:
        """``http://<host>:<port>``."""
        return f"http://{self._native.host}:{self.port}"

    def stop(self) -> None:
        self._native.stop()

    def __enter__(self) -> ViewServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve(port: int = 0, host: str = "127.0.0.1") -> ViewServer:
    """Serves every registered view over HTTP/1.1 as JSON on ``host:port``
    (``port=0``: a free port, see ``.port``):

    - ``GET /views``: the views with their keys and row counts
    - ``GET /views/<name>``: every row (``{"name", "num_rows", "rows": [...]}``)
    - ``GET /views/<name>?key=<value>``: one row as an object (404 when absent);
      several key columns: ``?<column>=<value>&...``
    """
    return ViewServer(_sabot.serve_views(host, port))


__all__ = ["View", "ViewServer", "drop_view", "get_view", "list_views", "materialize", "serve"]
