"""Topics and channels (``app.topic(...)``, ``app.channel()``).

A Topic names one or more broker topics and how their keys and values are
(de)serialized. Decoding works on whole batches: :meth:`Topic.decode_batch`
turns the key and value columns of a consumer batch into Python objects in one
pass (``json.loads`` mapped over the column, or the Record model's Arrow
decoding), so the agent loop only indexes lists.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sabot.faust import codecs as _codecs
from sabot.faust.models import maybe_model
from sabot.faust.transport.base import RecordMetadata

if TYPE_CHECKING:
    from sabot.faust.app import App


def _is_model(t: Any) -> bool:
    return t is not None and hasattr(t, "from_data") and hasattr(t, "asdict")


_scan_json = json.JSONDecoder().scan_once


def _json_column(values: list[Any], bad: dict[int, Exception]) -> list[Any]:
    """``json.loads`` over a column, with the C scanner called directly (no
    per-call encoding detection); malformed values go to ``bad``."""
    out: list[Any] = []
    append = out.append
    scan = _scan_json
    for i, v in enumerate(values):
        if v is None:
            append(None)
            continue
        try:
            s = v.decode() if isinstance(v, (bytes, bytearray)) else v
            obj, end = scan(s, 0)
            if end != len(s):
                obj = json.loads(s)  # surrounding whitespace, or trailing garbage (raises)
        except StopIteration:
            try:
                obj = json.loads(v)
            except ValueError as exc:
                bad[i] = exc
                obj = None
        except (ValueError, UnicodeDecodeError) as exc:
            bad[i] = exc
            obj = None
        append(obj)
    return out


class Topic:
    """A broker topic of the app (Faust's ``app.topic``)."""

    objects = False  # values travel as bytes

    def __init__(
        self,
        app: App,
        *topics: str,
        key_type: Any = None,
        value_type: Any = None,
        partitions: int | None = None,
        key_serializer: Any = None,
        value_serializer: Any = None,
        retention: float | None = None,
        compacting: bool | None = None,
        deleting: bool | None = None,
        replicas: int | None = None,
        internal: bool = False,
        pattern: str | None = None,
        maxsize: int | None = None,
        allow_empty: bool = False,
        acks: bool = True,
        **kwargs: Any,
    ) -> None:
        if not topics and pattern is None:
            raise TypeError("topic() needs a name")
        self.app = app
        self.topics = tuple(topics)
        self.pattern = pattern
        self.key_type = key_type
        self.value_type = value_type
        self.partitions = partitions
        self.key_serializer = key_serializer
        self.value_serializer = (
            value_serializer if value_serializer is not None else app.conf.value_serializer
        )
        self.retention = retention
        self.compacting = compacting
        self.deleting = deleting
        self.replicas = replicas
        self.internal = internal
        self.maxsize = maxsize
        self.allow_empty = allow_empty
        self.acks = acks
        self._declared = False

    # -- naming -----------------------------------------------------------------

    def get_topic_name(self) -> str:
        if len(self.topics) != 1:
            raise TypeError(f"topic {self!r} has several names; send needs exactly one")
        return self.topics[0]

    @property
    def name(self) -> str:
        return self.topics[0] if self.topics else str(self.pattern)

    def __str__(self) -> str:
        return ",".join(self.topics)

    def __repr__(self) -> str:
        return f"<Topic {','.join(self.topics)}>"

    def derive(self, **kw: Any) -> Topic:
        opts = dict(
            key_type=self.key_type,
            value_type=self.value_type,
            partitions=self.partitions,
            key_serializer=self.key_serializer,
            value_serializer=self.value_serializer,
            internal=self.internal,
        )
        topics = kw.pop("topics", self.topics)
        prefix = kw.pop("prefix", "")
        suffix = kw.pop("suffix", "")
        opts.update(kw)
        return Topic(self.app, *[f"{prefix}{t}{suffix}" for t in topics], **opts)

    # -- declaration --------------------------------------------------------------

    async def declare(self) -> None:
        parts = self.partitions or self.app.conf.topic_partitions
        for t in self.topics:
            await self.app.transport.create_topic(t, parts, compacted=bool(self.compacting))
        self._declared = True

    async def maybe_declare(self) -> None:
        if not self._declared:
            await self.declare()

    # -- serialization ----------------------------------------------------------

    def prepare_key(self, key: Any, key_serializer: Any = None) -> bytes | None:
        if key is None:
            return None
        if isinstance(key, bytes):
            return key
        codec = key_serializer or self.key_serializer
        if codec is None:
            if isinstance(key, str):
                return key.encode()
            if hasattr(key, "dumps"):
                return key.dumps()
            codec = "json"
        return _codecs.dumps(codec, key)

    def prepare_value(self, value: Any, value_serializer: Any = None) -> bytes | None:
        if value is None or isinstance(value, bytes):
            return value
        codec = value_serializer or self.value_serializer
        if hasattr(value, "dumps") and hasattr(value, "asdict"):
            return value.dumps(serializer=codec)
        return _codecs.dumps(codec, value)

    def decode_key(self, data: Any) -> Any:
        if data is None:
            return None
        kt = self.key_type
        if kt is None or kt is bytes:
            return data
        if kt is str:
            return data.decode() if isinstance(data, bytes) else data
        if kt in (int, float):
            return kt(data)
        obj = _codecs.loads(self.key_serializer or "json", data)
        return maybe_model(kt, obj)

    def decode_value(self, data: Any) -> Any:
        if data is None:
            return None
        obj = _codecs.loads(self.value_serializer, data)
        vt = self.value_type
        if vt is None:
            return obj
        if vt is str and isinstance(obj, bytes):
            return obj.decode()
        if vt is bytes:
            return obj
        if vt in (int, float) and isinstance(obj, (bytes, str)):
            return vt(obj)  # e.g. value_serializer="raw", value_type=int
        return maybe_model(vt, obj)

    def decode_keys(self, keys: list[Any]) -> list[Any]:
        kt = self.key_type
        if kt is None or kt is bytes:
            return keys
        if kt is str:
            return [k.decode() if isinstance(k, bytes) else k for k in keys]
        return [self.decode_key(k) for k in keys]

    def decode_values(self, values: list[Any]) -> list[Any]:
        """Decodes a column of values; raises on the first value that does not
        decode (see :meth:`decode_values_safe`)."""
        out, bad = self.decode_values_safe(values)
        if bad:
            i, exc = next(iter(bad.items()))
            raise exc
        return out

    def decode_values_safe(self, values: list[Any]) -> tuple[list[Any], dict[int, Exception]]:
        """Decodes a column of values. Values that do not decode are None in
        the result and listed in the returned {index: exception}."""
        codec = self.value_serializer
        vt = self.value_type
        if (codec == "raw" or codec is None) and vt in (None, bytes):
            return values, {}
        bad: dict[int, Exception] = {}
        if codec == "json" and (vt is None or _is_model(vt)):
            out = _json_column(values, bad)
            if vt is not None:
                from_data = vt.from_data
                for i, obj in enumerate(out):
                    if obj is not None and i not in bad:
                        try:
                            out[i] = from_data(obj)
                        except Exception as exc:  # noqa: BLE001 - reported per record
                            bad[i] = exc
                            out[i] = None
            return out, bad
        out = []
        for i, v in enumerate(values):
            try:
                out.append(self.decode_value(v))
            except Exception as exc:  # noqa: BLE001 - reported per record
                bad[i] = exc
                out.append(None)
        return out, bad

    # -- producing --------------------------------------------------------------

    async def send(
        self,
        *,
        key: Any = None,
        value: Any = None,
        partition: int | None = None,
        timestamp: float | None = None,
        headers: Any = None,
        key_serializer: Any = None,
        value_serializer: Any = None,
        callback: Any = None,
        force: bool = False,
        **kw: Any,
    ) -> RecordMetadata:
        """Serializes and enqueues one record. As in Faust, the result is a
        future: ``md = await (await topic.send(value=v))`` waits for the
        broker's acknowledgement (RecordMetadata). Agents need not wait: offsets
        are committed only after the producer flushed what was sent."""
        app = self.app
        if not self._declared:
            await self.maybe_declare()
        name = self.get_topic_name()
        k = self.prepare_key(key, key_serializer)
        v = self.prepare_value(value, value_serializer)
        ts = None if timestamp is None else int(timestamp * 1000)
        transport = self.transport
        while True:
            try:
                fut = transport.send_soon(name, k, v, partition, headers, ts)
                break
            except BufferError:  # producer queue full: let deliveries drain
                wait = getattr(transport, "wait_for_space", None)
                await (wait() if wait is not None else asyncio.sleep(0.005))
        app.monitor.on_send(name)
        if callback is not None:
            fut.add_done_callback(lambda f: callback(f.result()) if not f.exception() else None)
        return fut

    def send_soon(self, *, key: Any = None, value: Any = None, **kw: Any) -> Any:
        """Schedules :meth:`send` on the running loop and returns the task. The
        app keeps it until it ran, and offset commits wait for such sends."""
        task = asyncio.get_running_loop().create_task(self.send(key=key, value=value, **kw))
        pending = self.app._pending_sends
        pending.add(task)
        task.add_done_callback(pending.discard)
        return task

    async def send_raw(self, key: Any, value: Any, **kw: Any) -> RecordMetadata:
        return await self.transport.send(self.get_topic_name(), key, value, **kw)

    def stream(self, **kw: Any) -> Any:
        """A stream of this topic's values (used by agents; also usable in an
        ``app.task`` with ``async for``)."""
        from sabot.faust.streams import Stream

        return Stream.from_channel(self.app, self, **kw)

    def __aiter__(self) -> Any:
        return self.stream().__aiter__()

    def datastream(self, env: Any, **options: Any) -> Any:
        """This topic as a :class:`sabot.DataStream` of ``env``, for the
        engine's operators (filter, windows, joins, ...). For ``kafka://`` it is
        the native Kafka source (JSON values, with the Record value type's Arrow
        schema when there is one; ``options`` go to :func:`sabot.kafka.source`,
        e.g. ``stop_at_end=True``, ``start="earliest"``, ``metadata=["key"]``).
        For ``memory://`` it is a bounded stream of the records in the topic now."""
        import pyarrow as pa

        schema_fn = getattr(self.value_type, "arrow_schema", None)
        schema = schema_fn() if schema_fn is not None else None
        transport = self.transport
        if getattr(transport, "bootstrap", None) is not None:
            from sabot import kafka as sk

            options.setdefault("format", "json" if self.value_serializer == "json" else "raw")
            if schema is not None:
                options.setdefault("schema", schema)
            options.setdefault("group", f"{self.app.conf.id}-datastream")
            return sk.source(env, list(self.topics), bootstrap=transport.bootstrap, **options)
        rows = []
        for name in self.topics:
            parts = transport.broker.topic(name).parts
            for part in parts:
                for v in part.values:
                    obj = v if self.objects else self.decode_value(v)
                    rows.append(obj.asdict() if hasattr(obj, "asdict") else obj)
        if rows and not isinstance(rows[0], dict):
            rows = [{"value": r} for r in rows]
        table = pa.Table.from_pylist(rows, schema=schema)
        return env.from_table(table)

    @property
    def transport(self) -> Any:
        return self.app.transport

    def subscriptions(self) -> Sequence[str]:
        return self.topics


class Channel(Topic):
    """An in-process channel (``app.channel()``): values are passed as objects,
    never serialized; it behaves like a topic of one partition."""

    objects = True

    def __init__(
        self,
        app: App,
        *,
        key_type: Any = None,
        value_type: Any = None,
        maxsize: int | None = None,
        name: str | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(
            app,
            name or f"channel-{uuid.uuid4().hex[:12]}",
            key_type=key_type,
            value_type=value_type,
            partitions=1,
            maxsize=maxsize,
        )

    @property
    def transport(self) -> Any:
        return self.app._channel_transport

    async def declare(self) -> None:
        await self.transport.create_topic(self.topics[0], 1)
        self._declared = True

    async def send(
        self,
        *,
        key: Any = None,
        value: Any = None,
        partition: int | None = None,
        timestamp: float | None = None,
        headers: Any = None,
        **kw: Any,
    ) -> RecordMetadata:
        if not self._declared:
            await self.declare()
        fut = self.transport.send_soon(
            self.topics[0],
            key,
            value,
            0,
            headers,
            None if timestamp is None else int(timestamp * 1000),
        )
        self.app.monitor.on_send(self.topics[0])
        return fut

    async def put(self, value: Any) -> RecordMetadata:
        return await self.send(value=value)

    async def send_raw(self, key: Any, value: Any, **kw: Any) -> RecordMetadata:
        return await self.send(key=key, value=value)

    def decode_keys(self, keys: list[Any]) -> list[Any]:
        return keys

    def decode_values(self, values: list[Any]) -> list[Any]:
        return values

    def decode_values_safe(self, values: list[Any]) -> tuple[list[Any], dict[int, Exception]]:
        return values, {}

    def __repr__(self) -> str:
        return f"<Channel {self.topics[0]}>"
