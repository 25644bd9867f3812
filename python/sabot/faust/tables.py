"""Tables, as in Faust: ``app.Table``, ``app.GlobalTable``, ``app.SetTable``.

A table is a dict-like view of keyed state that survives restarts::

    counts = app.Table("counts", default=int)

    @app.agent(topic)
    async def count(stream):
        async for word in stream:
            counts[word] += 1

Values live in Sabot's keyed state backend (``store="memory://"`` or
``"rocksdb://[dir]"``, from ``app.conf.store``), keyed by the table partition
and the key's bytes. Every change is also written to the compacted changelog
topic ``<app id>-<table>-changelog`` (a tombstone for a deletion) through
``app.transport``; when the app starts, each table reads its changelog to the
end (``transport.read_to_end``) before any agent runs (the tables' service
has priority 10, agents 20), so a new worker carries on where the last
stopped.

A key is written to the changelog partition of the event being processed
(``current_event().message.partition``, Faust's co-partitioning); outside an
agent, to the key's existing partition or, for a new key, Kafka's default
partition of its bytes.

Changelog records are sent in the background: each key's latest value is
queued (a key changed twice before its record is sent is sent once, with its
last value, which is all a compacted topic keeps), and ``await table.flush()``
waits until every queued record is acknowledged; ``app.stop()`` flushes.
A send that fails is raised by the next table operation and by ``flush``.

Windowed tables (``.tumbling()``, ``.hopping()``) are described in
:mod:`sabot.faust.windows` and in docs/faust_tables.md.
"""

from __future__ import annotations

import asyncio
import heapq
import inspect
import logging
import time
from collections.abc import Callable, Iterable, Iterator, MutableMapping
from typing import Any

from sabot.faust import codecs
from sabot.faust.models import Record, maybe_model
from sabot.faust.windows import HoppingWindow, TumblingWindow, Window, WindowRange

__all__ = [
    "ChangelogTopic",
    "ChangeloggedSet",
    "GlobalTable",
    "SetTable",
    "Table",
    "TableError",
]

log = logging.getLogger("sabot.faust.tables")

_MISSING: Any = object()
#: changelog key of a windowed table's "windows up to here are closed" mark
#: (not JSON, so no table key encodes to it); its value is the JSON start
WATERMARK_KEY = b"\x00sabot:closed-windows"
_SEND_CHUNK = 4096
_RECOVERY_CHUNK = 8192


class TableError(RuntimeError):
    """A table could not be recovered, stored or changelogged; the message
    names the table and the changelog topic."""


_current_event_fn: Callable[[], Any] | None = None


def _current_event() -> Any:
    global _current_event_fn
    if _current_event_fn is None:
        try:
            from sabot.faust.events import current_event
        except ImportError:  # the core module is not there (tables used on their own)
            return None
        _current_event_fn = current_event
    return _current_event_fn()


def _event_partition(event: Any) -> int | None:
    message = getattr(event, "message", None)
    partition = getattr(message, "partition", None)
    return partition if isinstance(partition, int) and partition >= 0 else None


def _parse_store(url: Any) -> tuple[str, str]:
    text = str(url or "memory://")
    scheme, sep, rest = text.partition("://")
    if not sep:
        scheme, rest = text, ""
    if scheme == "memory":
        return "memory", ""
    if scheme == "rocksdb":
        return "rocksdb", rest
    raise ValueError(f"table store {text!r}: use memory:// or rocksdb://[directory]")


def _as_repr(obj: Any) -> Any:
    """What a key or value is written as (Records as their Faust payload)."""
    if isinstance(obj, Record):
        return obj.to_representation()
    if isinstance(obj, (set, frozenset)):
        members = [_as_repr(m) for m in obj]
        try:
            return sorted(members)
        except TypeError:
            return sorted(members, key=repr)
    return obj


def _hashable(data: Any) -> Any:
    """JSON gives lists where a key was a tuple: make decoded keys hashable."""
    if isinstance(data, list):
        return tuple(_hashable(v) for v in data)
    return data


class _Conf:
    def __init__(self, app: Any) -> None:
        conf = getattr(app, "conf", None)
        self.id = str(getattr(conf, "id", None) or getattr(app, "id", None) or "app")
        self.store = getattr(conf, "store", None) or "memory://"
        self.topic_partitions = int(getattr(conf, "topic_partitions", None) or 8)
        self.tabledir = getattr(conf, "tabledir", None) or ""
        self.cleanup_interval = float(getattr(conf, "table_cleanup_interval", None) or 1.0)


class ChangelogTopic:
    """Names a table's changelog topic (what Faust's ``table.changelog_topic``
    is used for); making it declares nothing."""

    __slots__ = ("name", "partitions")

    def __init__(self, name: str, partitions: int) -> None:
        self.name = name
        self.partitions = partitions

    def get_topic_name(self) -> str:
        return self.name

    @property
    def topics(self) -> tuple[str, ...]:
        return (self.name,)

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"<ChangelogTopic {self.name} partitions={self.partitions}>"


class Table(MutableMapping):
    """A Faust table (see the module doc).

    Options: ``default`` (a callable giving the value of a missing key, e.g.
    ``int``), ``key_type`` / ``value_type`` (Records are decoded back into
    models), ``partitions`` (of the changelog; default
    ``app.conf.topic_partitions``), ``changelog_topic`` (a name),
    ``key_serializer`` / ``value_serializer`` (default json),
    ``on_recover`` (called, or awaited, after recovery), ``on_window_close``
    (windowed tables), ``store`` (overrides ``app.conf.store``), ``help``.
    """

    #: a GlobalTable is read whole by every worker
    is_global = False

    def __init__(
        self,
        app: Any,
        name: str,
        *,
        default: Callable[[], Any] | None = None,
        key_type: Any = None,
        value_type: Any = None,
        partitions: int | None = None,
        window: Window | None = None,
        changelog_topic: Any = None,
        help: str | None = None,  # noqa: A002 - Faust's keyword
        on_recover: Callable[[], Any] | None = None,
        on_window_close: Callable[[Any, Any], Any] | None = None,
        key_serializer: Any = None,
        value_serializer: Any = None,
        store: Any = None,
        cache_size: int = 100_000,
        **options: Any,
    ) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError(f"a table name must be a non-empty string, got {name!r}")
        if default is not None and not callable(default):
            raise TypeError(
                f"table {name!r}: default must be a callable (e.g. int), got {default!r}"
            )
        self.app = app
        self.name = name
        self.default = default
        self.key_type = key_type
        self.value_type = value_type
        self.help = help or ""
        self.options = options
        self._conf = _Conf(app)
        self.partitions = int(partitions or self._conf.topic_partitions)
        if self.partitions <= 0:
            raise ValueError(f"table {name!r}: partitions must be > 0, got {self.partitions}")
        self._changelog_name = changelog_topic if isinstance(changelog_topic, str) else None
        self.key_serializer = key_serializer or "json"
        self.value_serializer = value_serializer or "json"
        self._key_codec = codecs.get_codec(self.key_serializer)
        self._value_codec = codecs.get_codec(self.value_serializer)
        self._json = codecs.get_codec("json")
        self._backend, self._local_dir = _parse_store(store or self._conf.store)
        self._local_dir = self._local_dir or self._conf.tabledir
        self._store: Any = None
        self._cache: dict[Any, tuple[int, Any, bytes]] = {}
        self._cache_size = int(cache_size)
        self._num_keys = 0  # the store starts empty; kept exact on every write
        self._pending: dict[tuple[int, bytes], bytes | None] = {}
        self._drain_task: asyncio.Task | None = None
        self._send_error: BaseException | None = None
        self._callbacks: set[asyncio.Future] = set()
        self._recover_callbacks: list[Callable[[], Any]] = [on_recover] if on_recover else []
        self._started = False
        self._recovered = False
        self._cleanup_task: asyncio.Task | None = None
        # windows
        self.window: Window | None = None
        self.on_window_close = on_window_close
        self._stream_time: float | None = None
        self._closed_before: float | None = None
        self._uses_wall_clock = False
        self._window_heap: list[float] = []
        self._windows: dict[float, dict[WindowRange, set[Any]]] = {}
        # figures
        self.changelog_records_sent = 0
        self.recovered_records = 0
        self.recovery_seconds = 0.0
        self.windows_closed = 0
        self.late_updates = 0
        self.window_close_errors = 0
        if window is not None:
            self._use_window(window)
        self._register()

    # ---------------------------------------------------------------- wiring

    def _register(self) -> None:
        tables = getattr(self.app, "tables", None)
        if isinstance(tables, MutableMapping) and tables.get(self.name) is not self:
            tables[self.name] = self
        add_service = getattr(self.app, "add_service", None)
        if callable(add_service):
            add_service(self, priority=10)

    @property
    def changelog_topic_name(self) -> str:
        """``<app id>-<table>-changelog`` (or the ``changelog_topic`` given)."""
        return self._changelog_name or f"{self._conf.id}-{self.name}-changelog"

    @property
    def changelog_topic(self) -> ChangelogTopic:
        """The changelog topic: ``.name``, ``.partitions``, ``get_topic_name()``."""
        return ChangelogTopic(self.changelog_topic_name, self.partitions)

    @property
    def store_url(self) -> str:
        return f"{self._backend}://{self._local_dir}"

    def _get_store(self) -> Any:
        if self._store is None:
            from sabot import _sabot

            try:
                self._store = _sabot.FaustStore(self._backend, self._local_dir, self.name)
            except Exception as exc:
                raise TableError(
                    f"table {self.name!r}: cannot open its {self._backend} store "
                    f"(dir {self._local_dir or '<temp>'}): {exc}"
                ) from exc
        return self._store

    def on_recover(self, fn: Callable[[], Any]) -> Callable[[], Any]:
        """Decorator: ``fn`` runs (or is awaited) after the table is recovered."""
        self._recover_callbacks.append(fn)
        return fn

    # ------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        """Creates the changelog topic, recovers the table from it, then lets
        changes flow to it (the app calls this before starting agents)."""
        if self._started:
            return
        self._started = True
        transport = self.app.transport
        topic = self.changelog_topic_name
        try:
            await transport.create_topic(topic, self.partitions, compacted=True)
        except Exception as exc:  # an existing topic is fine if it has the partitions
            try:
                existing = transport.partitions(topic)
            except Exception:  # noqa: BLE001
                existing = None
            if not existing:
                raise TableError(
                    f"table {self.name!r}: cannot create changelog topic {topic!r}: {exc}"
                ) from exc
            if existing != self.partitions:
                raise TableError(
                    f"table {self.name!r}: changelog topic {topic!r} has {existing} partitions, "
                    f"the table {self.partitions}"
                ) from exc
        await self.recover()
        for fn in self._recover_callbacks:
            result = fn()
            if inspect.isawaitable(result):
                await result
        if self._pending:
            self._schedule_drain()
        if self.window is not None and self.window.expires:
            self._cleanup_task = asyncio.get_running_loop().create_task(self._cleanup_loop())

    async def recover(self) -> int:
        """Reads the changelog to its end into the store; returns the number
        of records read."""
        transport = self.app.transport
        topic = self.changelog_topic_name
        store = self._get_store()
        started = time.perf_counter()
        count = 0
        entries: list[tuple[int, bytes, bytes | None]] = []
        try:
            async for msg in transport.read_to_end(topic):
                if msg.key is None:
                    continue
                if msg.key == WATERMARK_KEY:
                    if msg.value is not None:
                        self._note_closed(float(self._json.loads(msg.value)), send=False)
                    continue
                partition = int(msg.partition)
                if partition >= self.partitions:
                    raise TableError(
                        f"table {self.name!r}: changelog {topic!r} has a record in partition "
                        f"{partition} (offset {msg.offset}), the table has {self.partitions}"
                    )
                entries.append((partition, bytes(msg.key), msg.value))
                count += 1
                if len(entries) >= _RECOVERY_CHUNK:
                    store.put_many(entries)
                    entries.clear()
            if entries:
                store.put_many(entries)
        except TableError:
            raise
        except Exception as exc:
            raise TableError(
                f"table {self.name!r}: recovery from changelog {topic!r} failed after "
                f"{count} records: {exc}"
            ) from exc
        self._cache.clear()
        self._num_keys = len(store.items())
        if self.window is not None:
            self._rebuild_window_index()
        self.recovered_records += count
        self.recovery_seconds += time.perf_counter() - started
        self._recovered = True
        log.info(
            "table %s: recovered %d changelog records from %s in %.3fs",
            self.name,
            count,
            topic,
            time.perf_counter() - started,
        )
        return count

    async def stop(self) -> None:
        """Sends what is queued for the changelog and stops."""
        if self._cleanup_task is not None:
            self._cleanup_task.cancel()
            try:
                await self._cleanup_task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001
                pass
            self._cleanup_task = None
        await self.flush()
        self._started = False

    async def flush(self) -> None:
        """Waits until every queued changelog record is acknowledged (and every
        async ``on_window_close`` call has finished); raises a failed send."""
        while True:
            if self._callbacks:
                await asyncio.gather(*list(self._callbacks), return_exceptions=True)
            task = self._drain_task
            if task is not None and not task.done():
                try:
                    await task
                except Exception:  # noqa: BLE001 - kept in _send_error
                    pass
                continue
            if self._pending and self._send_error is None:
                self._drain_task = asyncio.get_running_loop().create_task(self._drain())
                continue
            break
        self._raise_send_error()

    def _raise_send_error(self) -> None:
        if self._send_error is not None:
            exc = self._send_error
            raise TableError(
                f"table {self.name!r}: writing changelog {self.changelog_topic_name!r} "
                f"failed: {exc}"
            ) from exc

    # ------------------------------------------------------------- changelog

    def _changelog(self, partition: int, key: bytes, value: bytes | None) -> None:
        self._pending[(partition, key)] = value
        self._schedule_drain()

    def _schedule_drain(self) -> None:
        if not self._started or self._send_error is not None:
            return
        if self._drain_task is not None and not self._drain_task.done():
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop: flush() sends later
        self._drain_task = loop.create_task(self._drain())

    async def _drain(self) -> None:
        transport = self.app.transport
        topic = self.changelog_topic_name
        while self._pending:
            batch = self._pending
            self._pending = {}
            items = list(batch.items())
            try:
                # distinct keys only, so concurrent sends cannot reorder a key
                for i in range(0, len(items), _SEND_CHUNK):
                    chunk = items[i : i + _SEND_CHUNK]
                    await asyncio.gather(
                        *(transport.send(topic, k, v, partition=p) for (p, k), v in chunk)
                    )
                    self.changelog_records_sent += len(chunk)
            except Exception as exc:
                for k, v in items:
                    self._pending.setdefault(k, v)
                self._send_error = exc
                log.error("table %s: changelog %s send failed: %s", self.name, topic, exc)
                raise

    # ---------------------------------------------------------------- coding

    def _key_bytes(self, key: Any) -> bytes:
        try:
            if self.window is not None and isinstance(key, tuple) and len(key) == 2:
                inner, window = key
                if isinstance(window, tuple) and len(window) == 2:
                    return self._json.dumps([_as_repr(inner), [window[0], window[1]]])
            data = self._key_codec.dumps(_as_repr(key))
        except codecs.CodecError as exc:
            raise TableError(f"table {self.name!r}: cannot encode key {key!r}: {exc}") from exc
        if isinstance(data, str):
            data = data.encode("utf-8")
        if not isinstance(data, bytes):
            raise TableError(
                f"table {self.name!r}: key serializer {self.key_serializer!r} gave "
                f"{type(data).__name__}, not bytes, for key {key!r}"
            )
        return data

    def _decode_key(self, data: bytes) -> Any:
        if self.window is not None:
            raw = self._json.loads(data)
            if isinstance(raw, list) and len(raw) == 2 and isinstance(raw[1], list):
                inner = maybe_model(self.key_type, raw[0])
                return (_hashable(inner), (float(raw[1][0]), float(raw[1][1])))
        raw = self._key_codec.loads(data)
        return _hashable(maybe_model(self.key_type, raw))

    def _encode_value(self, value: Any) -> bytes:
        try:
            data = self._value_codec.dumps(_as_repr(value))
        except codecs.CodecError as exc:
            raise TableError(f"table {self.name!r}: cannot encode value {value!r}: {exc}") from exc
        if isinstance(data, str):
            data = data.encode("utf-8")
        return data

    def _decode_value(self, data: bytes) -> Any:
        try:
            return maybe_model(self.value_type, self._value_codec.loads(data))
        except codecs.CodecError as exc:
            raise TableError(f"table {self.name!r}: cannot decode a stored value: {exc}") from exc

    def _hash_partition(self, key: bytes) -> int:
        from sabot import _sabot

        return int(_sabot.kafka_partition_for_key(key, self.partitions))

    # ----------------------------------------------------------- key access

    def _cache_put(self, key: Any, entry: tuple[int, Any, bytes]) -> None:
        if len(self._cache) >= self._cache_size:
            self._cache.clear()
        self._cache[key] = entry

    def _lookup(self, key: Any, kb: bytes | None = None) -> tuple[int, Any, bytes] | None:
        """(partition, value, key bytes) of ``key``, or None."""
        entry = self._cache.get(key, _MISSING)
        if entry is not _MISSING:
            return entry
        if kb is None:
            kb = self._key_bytes(key)
        store = self._get_store()
        found = None
        partition = _event_partition(_current_event())
        if partition is not None and partition < self.partitions:
            data = store.get(partition, kb)
            if data is not None:
                found = (partition, data)
        if found is None:
            found = store.get_any(self.partitions, kb)
        if found is None:
            return None
        entry = (found[0], self._decode_value(found[1]), kb)
        self._cache_put(key, entry)
        return entry

    def _set_key(self, key: Any, value: Any) -> int:
        if self._send_error is not None:
            self._raise_send_error()
        old = self._cache.get(key)
        if old is not None:
            kb = old[2]
        else:
            kb = self._key_bytes(key)
            old = self._lookup(key, kb)
        partition = _event_partition(_current_event())
        if partition is None or partition >= self.partitions:
            partition = old[0] if old is not None else self._hash_partition(kb)
        vb = self._encode_value(value)
        store = self._get_store()
        if old is not None and old[0] != partition:
            # the key moved partition (not co-partitioned): retire the old record
            store.delete(old[0], kb)
            self._changelog(old[0], kb, None)
        store.put(partition, kb, vb)
        if old is None:
            self._num_keys += 1
        self._cache_put(key, (partition, value, kb))
        self._changelog(partition, kb, vb)
        return partition

    def _del_key(self, key: Any) -> Any:
        self._raise_send_error()
        kb = self._key_bytes(key)
        old = self._lookup(key, kb)
        if old is None:
            raise KeyError(key)
        self._get_store().delete(old[0], kb)
        self._num_keys -= 1
        self._cache.pop(key, None)
        self._changelog(old[0], kb, None)
        return old[1]

    # ------------------------------------------------------ mapping protocol

    def __getitem__(self, key: Any) -> Any:
        entry = self._lookup(key)
        if entry is not None:
            return entry[1]
        return self.__missing__(key)

    def __missing__(self, key: Any) -> Any:
        if self.default is not None:
            return self.default()
        raise KeyError(key)

    def __setitem__(self, key: Any, value: Any) -> None:
        self._set_key(key, value)

    def __delitem__(self, key: Any) -> None:
        self._del_key(key)

    def __contains__(self, key: Any) -> bool:
        return self._lookup(key) is not None

    def _entries(self) -> Iterator[tuple[int, Any, Any]]:
        for partition, kb, vb in self._get_store().items():
            yield partition, self._decode_key(kb), self._decode_value(vb)

    def __iter__(self) -> Iterator[Any]:
        for _, key, _value in self._entries():
            yield key

    def __len__(self) -> int:
        return self._num_keys

    def get(self, key: Any, default: Any = None) -> Any:
        entry = self._lookup(key)
        return entry[1] if entry is not None else default

    def items(self) -> list[tuple[Any, Any]]:  # type: ignore[override]
        return [(k, v) for _, k, v in self._entries()]

    def keys(self) -> list[Any]:  # type: ignore[override]
        return [k for _, k, _v in self._entries()]

    def values(self) -> list[Any]:  # type: ignore[override]
        return [v for _, _k, v in self._entries()]

    def clear(self) -> None:
        for partition, kb, _ in self._get_store().items():
            self._changelog(partition, kb, None)
        self._get_store().clear()
        self._num_keys = 0
        self._cache.clear()
        self._windows.clear()
        self._window_heap.clear()

    def as_dict(self) -> dict[Any, Any]:
        return dict(self.items())

    # identity, not contents, for hashing and ==
    __hash__ = object.__hash__

    def __eq__(self, other: object) -> bool:
        return self is other

    def __bool__(self) -> bool:
        return True

    def __repr__(self) -> str:
        window = f" window={self.window!r}" if self.window is not None else ""
        return (
            f"<{type(self).__name__} {self.name!r} changelog={self.changelog_topic_name!r} "
            f"partitions={self.partitions} store={self._backend}{window}>"
        )

    def info(self) -> dict[str, Any]:
        """What ``sabot -A app tables`` and the web /metrics show."""
        store = self._store
        return {
            "name": self.name,
            "type": type(self).__name__,
            "help": self.help,
            "keys": self._num_keys,
            "changelog_topic": self.changelog_topic_name,
            "partitions": self.partitions,
            "store": self._backend,
            "window": repr(self.window) if self.window is not None else None,
            "recovered_records": self.recovered_records,
            "recovery_seconds": round(self.recovery_seconds, 6),
            "changelog_records_sent": self.changelog_records_sent,
            "changelog_pending": len(self._pending),
            "windows_closed": self.windows_closed,
            "late_updates": self.late_updates,
            "memory_bytes": store.memory_usage_bytes() if store is not None else 0,
        }

    # --------------------------------------------------------------- windows

    def _use_window(self, window: Window) -> None:
        if not isinstance(window, HoppingWindow):
            raise TypeError(
                f"table {self.name!r}: windowed tables take TumblingWindow or HoppingWindow, "
                f"got {type(window).__name__}"
            )
        self.window = window

    def using_window(self, window: Window, *, key_index: bool = False) -> Any:
        from sabot.faust.windows import WindowWrapper

        self._use_window(window)
        return WindowWrapper(self)

    def tumbling(self, size: Any, expires: Any = None, key_index: bool = False) -> Any:
        """A tumbling-window view of this table (windows of ``size``)."""
        return self.using_window(TumblingWindow(size, expires=expires))

    def hopping(self, size: Any, step: Any, expires: Any = None, key_index: bool = False) -> Any:
        """A hopping-window view (windows of ``size`` every ``step``)."""
        return self.using_window(HoppingWindow(size, step, expires=expires))

    def _index_window(self, wkey: tuple[Any, WindowRange]) -> None:
        key, window = wkey
        start = window[0]
        by_range = self._windows.get(start)
        if by_range is None:
            by_range = self._windows[start] = {}
            heapq.heappush(self._window_heap, start)
        by_range.setdefault(window, set()).add(key)

    def _rebuild_window_index(self) -> None:
        self._windows.clear()
        self._window_heap.clear()
        latest = self._stream_time
        for _, key, _value in self._entries():
            if isinstance(key, tuple) and len(key) == 2 and isinstance(key[1], tuple):
                self._index_window(key)
                start = key[1][0]
                latest = start if latest is None else max(latest, start)
        self._stream_time = latest

    def _observe(self, timestamp: float) -> None:
        """The table's time advances to ``timestamp``; stale windows close."""
        if self._stream_time is None or timestamp > self._stream_time:
            self._stream_time = timestamp
            self._expire()

    def _expire(self) -> None:
        window = self.window
        if window is None or self._stream_time is None:
            return
        before = window.stale_before(self._stream_time)
        if before is None:
            return
        while self._window_heap and self._window_heap[0] <= before + 1e-9:
            start = heapq.heappop(self._window_heap)
            for window_range, keys in sorted(self._windows.pop(start, {}).items()):
                for key in sorted(keys, key=repr):
                    self._close_window((key, window_range))
        self._note_closed(before)

    def _note_closed(self, before: float, *, send: bool = True) -> None:
        """Windows starting at or before ``before`` are closed for good; the
        mark goes to the changelog so that a recovered table does not reopen
        them for late events (each window closes once)."""
        if self._closed_before is not None and before <= self._closed_before:
            return
        self._closed_before = before
        if send:
            self._changelog(0, WATERMARK_KEY, codecs.dumps("json", before))

    def _close_window(self, wkey: tuple[Any, WindowRange]) -> None:
        entry = self._lookup(wkey)
        if entry is None:
            return
        value = entry[1]
        kb = entry[2]
        self._get_store().delete(entry[0], kb)
        self._num_keys -= 1
        self._cache.pop(wkey, None)
        self._changelog(entry[0], kb, None)
        self.windows_closed += 1
        callback = self.on_window_close
        if callback is None:
            return
        try:
            result = callback(wkey, value)
        except Exception:  # noqa: BLE001 - reported, the window stays closed
            self.window_close_errors += 1
            log.exception("table %s: on_window_close failed for %r", self.name, wkey)
            return
        if inspect.isawaitable(result):
            try:
                future = asyncio.ensure_future(result)
            except RuntimeError:
                log.error("table %s: async on_window_close needs a running loop", self.name)
                return
            self._callbacks.add(future)
            future.add_done_callback(self._callback_done)

    def _callback_done(self, future: asyncio.Future) -> None:
        self._callbacks.discard(future)
        if not future.cancelled() and future.exception() is not None:
            self.window_close_errors += 1
            log.error("table %s: on_window_close failed: %r", self.name, future.exception())

    async def _cleanup_loop(self) -> None:
        interval = self._conf.cleanup_interval
        while True:
            await asyncio.sleep(interval)
            if self._uses_wall_clock:
                self._observe(time.time())

    def close_windows(self) -> int:
        """Closes every open window now (``on_window_close`` for each), e.g. at
        the end of a finite input; returns how many closed."""
        before = self.windows_closed
        last = None
        while self._window_heap:
            start = heapq.heappop(self._window_heap)
            last = start
            for window_range, keys in sorted(self._windows.pop(start, {}).items()):
                for key in sorted(keys, key=repr):
                    self._close_window((key, window_range))
        if last is not None:
            self._note_closed(last)
        return self.windows_closed - before

    def _window_open(self, window_range: WindowRange) -> bool:
        before = self._closed_before
        if self._stream_time is not None and self.window is not None:
            stale = self.window.stale_before(self._stream_time)
            if stale is not None and (before is None or stale > before):
                before = stale
        return before is None or window_range[0] > before + 1e-9

    def _windowed_update(
        self, key: Any, timestamp: float, op: Callable[[Any], Any], *, wall_clock: bool = False
    ) -> None:
        """Sets every open window of ``key`` containing ``timestamp`` to
        ``op(its value)`` (the value or the default)."""
        assert self.window is not None
        if wall_clock:
            self._uses_wall_clock = True
        self._observe(timestamp)
        for window_range in self.window.ranges(timestamp):
            if not self._window_open(window_range):
                self.late_updates += 1
                continue
            wkey = (key, window_range)
            entry = self._lookup(wkey)
            if entry is not None:
                old = entry[1]
            else:
                old = self.default() if self.default is not None else None
            self._set_key(wkey, op(old))
            self._index_window(wkey)

    def _windowed_delete(self, key: Any, timestamp: float) -> None:
        assert self.window is not None
        for window_range in self.window.ranges(timestamp):
            wkey = (key, window_range)
            if self._lookup(wkey) is not None:
                self._del_key(wkey)
                keys = self._windows.get(window_range[0], {}).get(window_range)
                if keys is not None:
                    keys.discard(key)

    def _windowed_get(self, key: Any, window_range: WindowRange) -> Any:
        entry = self._lookup((key, window_range))
        if entry is not None:
            return entry[1]
        return self.__missing__((key, window_range))

    def _windowed_contains(self, key: Any, timestamp: float) -> bool:
        assert self.window is not None
        return self._lookup((key, self.window.current(timestamp))) is not None

    def _window_items(self, window_range: WindowRange) -> Iterator[tuple[Any, Any]]:
        keys = self._windows.get(window_range[0], {}).get(window_range, set())
        for key in sorted(keys, key=repr):
            entry = self._lookup((key, window_range))
            if entry is not None:
                yield key, entry[1]

    def _window_keys(self) -> list[Any]:
        seen: dict[Any, None] = {}
        for start in sorted(self._windows):
            for keys in self._windows[start].values():
                for key in sorted(keys, key=repr):
                    seen.setdefault(key, None)
        return list(seen)


class GlobalTable(Table):
    """A table every worker holds whole: it recovers every partition of its
    changelog (as a Table does here; see docs/design/faust_tables.md)."""

    is_global = True


class ChangeloggedSet:
    """The set of one key of a SetTable: every change is written back to the
    table (and so to its changelog)."""

    def __init__(self, table: SetTable, key: Any) -> None:
        self.table = table
        self.key = key

    @property
    def data(self) -> set[Any]:
        entry = self.table._lookup(self.key)
        return set(entry[1]) if entry is not None else set()

    def _write(self, members: set[Any]) -> None:
        if members:
            self.table._set_key(self.key, members)
        elif self.table._lookup(self.key) is not None:
            self.table._del_key(self.key)

    def add(self, member: Any) -> None:
        members = self.data
        if member not in members:
            members.add(member)
            self._write(members)

    def discard(self, member: Any) -> None:
        members = self.data
        if member in members:
            members.discard(member)
            self._write(members)

    def remove(self, member: Any) -> None:
        members = self.data
        members.remove(member)
        self._write(members)

    def update(self, *others: Iterable[Any]) -> None:
        members = self.data
        before = len(members)
        for other in others:
            members.update(other)
        if len(members) != before:
            self._write(members)

    def difference_update(self, *others: Iterable[Any]) -> None:
        members = self.data
        before = len(members)
        for other in others:
            members.difference_update(other)
        if len(members) != before:
            self._write(members)

    def intersection_update(self, *others: Iterable[Any]) -> None:
        members = self.data
        before = len(members)
        members.intersection_update(*others)
        if len(members) != before:
            self._write(members)

    def clear(self) -> None:
        self._write(set())

    def __ior__(self, other: Iterable[Any]) -> ChangeloggedSet:
        self.update(other)
        return self

    def __isub__(self, other: Iterable[Any]) -> ChangeloggedSet:
        self.difference_update(other)
        return self

    def __iand__(self, other: Iterable[Any]) -> ChangeloggedSet:
        self.intersection_update(other)
        return self

    def __contains__(self, member: object) -> bool:
        return member in self.data

    def __iter__(self) -> Iterator[Any]:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ChangeloggedSet):
            return self.data == other.data
        if isinstance(other, (set, frozenset)):
            return self.data == other
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<ChangeloggedSet {self.key!r}: {self.data!r}>"


class SetTable(Table):
    """A table of sets: ``table[key].add(x)`` / ``.discard(x)`` (and the other
    set updates) change the key's set; each change writes the key's whole set
    to the changelog (compaction keeps the latest, so recovery is exact).
    ``value_type`` is the members' type (Records are decoded)."""

    def __init__(self, app: Any, name: str, **kwargs: Any) -> None:
        kwargs.setdefault("default", set)
        kwargs.pop("start_manager", None)
        kwargs.pop("manager_topic_suffix", None)
        super().__init__(app, name, **kwargs)

    def _decode_value(self, data: bytes) -> Any:
        try:
            members = self._value_codec.loads(data)
        except codecs.CodecError as exc:
            raise TableError(f"table {self.name!r}: cannot decode a stored set: {exc}") from exc
        if not isinstance(members, list):
            raise TableError(
                f"table {self.name!r}: a stored set is a {type(members).__name__}, not a list"
            )
        return frozenset(_hashable(maybe_model(self.value_type, m)) for m in members)

    def __getitem__(self, key: Any) -> ChangeloggedSet:
        return ChangeloggedSet(self, key)

    def __setitem__(self, key: Any, value: Any) -> None:
        if isinstance(value, ChangeloggedSet):
            if value.table is self and value.key == key:
                return  # ``table[k] |= {...}`` already wrote itself
            value = value.data
        members = set(value)
        if members:
            self._set_key(key, frozenset(members))
        elif key in self:
            self._del_key(key)

    def _entries(self) -> Iterator[tuple[int, Any, Any]]:
        for partition, key, members in super()._entries():
            yield partition, key, set(members)

    def get(self, key: Any, default: Any = None) -> Any:
        entry = self._lookup(key)
        return set(entry[1]) if entry is not None else default
