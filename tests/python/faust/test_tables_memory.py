"""Tables on the memory:// broker: contents against a plain-Python reference,
the changelog, recovery by a new app, Record keys and values, SetTable,
GlobalTable, both state backends."""

from __future__ import annotations

import random
from collections import Counter

import pytest

pytest.importorskip("sabot.faust.app")  # the App (core) lands in another branch

import sabot as faust  # noqa: E402
from faust_testutil import run, unique, wait_until
from sabot.faust.events import current_event
from sabot.faust.tables import TableError


class Account(faust.Record):
    user: str
    region: str


class Balance(faust.Record):
    amount: float
    count: int = 0


async def _changelog(app, table) -> dict:
    """The last record per (partition, key) of the table's changelog."""
    out = {}
    async for msg in app.transport.read_to_end(table.changelog_topic_name):
        out[(msg.partition, msg.key)] = msg.value
    return out


def _words(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [f"w{rng.randrange(40)}" for _ in range(n)]


@pytest.mark.parametrize("store", ["memory://", "rocksdb://"])
def test_counts_match_reference_and_changelog(store: str, tmp_path) -> None:
    words = _words(2000, seed=1)
    if store == "rocksdb://":
        store = f"rocksdb://{tmp_path}"

    async def main() -> None:
        app = faust.App(unique("tables"), broker="memory://", store=store, topic_partitions=4)
        topic = app.topic("words", key_type=str, value_type=str, partitions=4)
        counts = app.Table("counts", default=int)
        partitions_seen: dict[str, set[int]] = {}
        done: list[int] = []

        @app.agent(topic)
        async def count(stream):
            async for word in stream:
                counts[word] += 1
                partitions_seen.setdefault(word, set()).add(current_event().message.partition)
                done.append(1)

        await app.start()
        for w in words:
            await topic.send(key=w, value=w)
        await wait_until(lambda: len(done) == len(words), what="all words counted")
        await counts.flush()

        expected = Counter(words)
        assert dict(counts.items()) == dict(expected)
        assert len(counts) == len(expected)
        assert counts["never-seen"] == 0 and "never-seen" not in counts
        assert counts._get_store().kind == store.split(":")[0]

        # the changelog holds each key's last value in the partition of its events
        log = await _changelog(app, counts)
        assert {k: int(v) for (_, k), v in log.items()} == {
            f'"{w}"'.encode(): n for w, n in expected.items()
        }
        for (partition, key), _ in log.items():
            assert partitions_seen[key.decode().strip('"')] == {partition}
        info = counts.info()
        assert info["changelog_topic"] == f"{app.conf.id}-counts-changelog"
        assert counts.changelog_topic.get_topic_name() == info["changelog_topic"]
        assert counts.changelog_topic.partitions == 4
        assert info["changelog_pending"] == 0
        await app.stop()

    run(main())


def test_new_app_recovers_table_before_agents_start() -> None:
    broker = f"memory://{unique('shared')}"
    app_id = unique("recover")
    first = _words(1500, seed=2)
    second = _words(700, seed=3)

    async def process(words: list[str]) -> tuple[dict, dict]:
        app = faust.App(app_id, broker=broker, topic_partitions=3)
        topic = app.topic("words", key_type=str, value_type=str, partitions=3)
        counts = app.Table("counts", default=int)
        at_first_event: dict = {}
        done: list[int] = []

        @app.agent(topic)
        async def count(stream):
            async for word in stream:
                if not at_first_event:
                    at_first_event.update(counts.items())
                    at_first_event["<seen>"] = True
                counts[word] += 1
                done.append(1)

        await app.start()
        recovered = dict(counts.items())
        for w in words:
            await topic.send(key=w, value=w)
        await wait_until(lambda: len(done) == len(words), what="words counted")
        result = dict(counts.items())
        await app.stop()
        return recovered, result

    async def main() -> None:
        recovered, after_first = await process(first)
        assert recovered == {}
        assert after_first == dict(Counter(first))
        recovered, after_second = await process(second)
        assert recovered == dict(Counter(first))
        assert after_second == dict(Counter(first + second))

    run(main())


def test_delete_writes_a_tombstone_and_recovery_drops_the_key() -> None:
    broker = f"memory://{unique('shared')}"
    app_id = unique("del")

    async def main() -> None:
        app = faust.App(app_id, broker=broker)
        table = app.Table("t")
        await app.start()
        table["a"] = 1
        table["b"] = {"nested": [1, 2]}
        table["c"] = "x"
        del table["a"]
        assert table.pop("c") == "x"
        with pytest.raises(KeyError):
            table["a"]
        with pytest.raises(KeyError):
            del table["zz"]
        assert len(table) == 1 and table.info()["keys"] == 1
        await app.stop()
        log = await _changelog(app, table)
        assert sorted((k, v) for (_, k), v in log.items()) == [
            (b'"a"', None),
            (b'"b"', b'{"nested": [1, 2]}'),
            (b'"c"', None),
        ]

        app2 = faust.App(app_id, broker=broker)
        table2 = app2.Table("t")
        await app2.start()
        assert dict(table2.items()) == {"b": {"nested": [1, 2]}}
        assert len(table2) == 1
        await app2.stop()

    run(main())


def test_record_keys_and_values_survive_recovery() -> None:
    broker = f"memory://{unique('shared')}"
    app_id = unique("records")
    rows = [(Account(f"u{i % 5}", "eu" if i % 2 else "us"), float(i)) for i in range(50)]
    expected: dict[Account, Balance] = {}
    for acct, amount in rows:
        old = expected.get(acct, Balance(0.0))
        expected[acct] = Balance(old.amount + amount, old.count + 1)

    async def main() -> None:
        app = faust.App(app_id, broker=broker)
        balances = app.Table("balances", key_type=Account, value_type=Balance)
        await app.start()
        for acct, amount in rows:
            old = balances.get(acct) or Balance(0.0)
            balances[acct] = Balance(old.amount + amount, old.count + 1)
        await app.stop()

        app2 = faust.App(app_id, broker=broker)
        balances2 = app2.Table("balances", key_type=Account, value_type=Balance)
        await app2.start()
        got = dict(balances2.items())
        assert got == expected
        assert all(type(k) is Account and type(v) is Balance for k, v in got.items())
        await app2.stop()

    run(main())


def test_set_table_add_discard_through_the_changelog() -> None:
    broker = f"memory://{unique('shared')}"
    app_id = unique("sets")
    rng = random.Random(4)
    ops = [
        (f"k{rng.randrange(6)}", rng.choice(["add", "discard"]), rng.randrange(10))
        for _ in range(400)
    ]
    reference: dict[str, set[int]] = {}
    for key, op, member in ops:
        members = reference.setdefault(key, set())
        getattr(members, op)(member)
    reference = {k: v for k, v in reference.items() if v}

    async def main() -> None:
        app = faust.App(app_id, broker=broker, topic_partitions=2)
        topic = app.topic("ops", key_type=str, value_type=dict, partitions=2)
        sets = app.SetTable("members")
        done: list[int] = []

        @app.agent(topic)
        async def apply(stream):
            async for op in stream:
                getattr(sets[op["key"]], op["op"])(op["member"])
                done.append(1)

        await app.start()
        for key, op, member in ops:
            await topic.send(key=key, value={"key": key, "op": op, "member": member})
        await wait_until(lambda: len(done) == len(ops), what="set operations")
        assert dict(sets.items()) == reference
        assert set(sets["k-new"]) == set() and "k-new" not in sets
        sets["extra"] |= {1, 2}
        sets["extra"] -= {1}
        assert set(sets["extra"]) == {2}
        await app.stop()

        app2 = faust.App(app_id, broker=broker, topic_partitions=2)
        sets2 = app2.SetTable("members")
        await app2.start()
        assert dict(sets2.items()) == {**reference, "extra": {2}}
        await app2.stop()

    run(main())


def test_global_table_recovers_every_partition() -> None:
    broker = f"memory://{unique('shared')}"
    app_id = unique("global")

    async def main() -> None:
        app = faust.App(app_id, broker=broker, topic_partitions=4)
        table = app.GlobalTable("config")
        await app.start()
        for i in range(20):
            table[f"k{i}"] = i * i
        await app.stop()
        log = await _changelog(app, table)
        assert len({p for p, _ in log}) > 1  # the keys spread over partitions

        app2 = faust.App(app_id, broker=broker, topic_partitions=4)
        table2 = app2.GlobalTable("config")
        await app2.start()
        assert table2.is_global
        assert dict(table2.items()) == {f"k{i}": i * i for i in range(20)}
        await app2.stop()

    run(main())


def test_on_recover_callback_and_errors_name_the_table() -> None:
    async def main() -> None:
        app = faust.App(unique("errs"), broker="memory://")
        table = app.Table("things")
        recovered: list[int] = []

        @table.on_recover
        async def note() -> None:
            recovered.append(len(table))

        await app.start()
        assert recovered == [0]
        with pytest.raises(TableError, match=r"table 'things': cannot encode key"):
            table[object()] = 1
        with pytest.raises(TableError, match=r"table 'things': cannot encode value"):
            table["k"] = object()
        await app.stop()
        with pytest.raises(ValueError, match="use memory:// or rocksdb://"):
            faust.App(unique("errs"), broker="memory://", store="redis://").Table("x")
        with pytest.raises(TypeError, match=r"table 'y': default must be a callable"):
            app.Table("y", default=0)

    run(main())
