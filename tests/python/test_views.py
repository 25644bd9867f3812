"""Materialized views, read while the job runs from Python and over HTTP
(urllib), against plain-Python references of the changelog."""

from __future__ import annotations

import json
import random
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator

import pyarrow as pa
import pytest
import sabot as sb


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


def http_json(url: str) -> tuple[int, object]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


@pytest.fixture
def server() -> Iterator[sb.views.ViewServer]:
    with sb.views.serve(port=0) as s:
        yield s


def wait_until(condition, what: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        threading.Event().wait(0.01)


def test_group_by_view_is_readable_while_the_job_runs(server):
    """The source stops after each phase until the test has checked the view
    (Python and HTTP) against the reference of every row so far. Reads taken
    while batches are being applied must be consistent: each key's count and
    total are those of a prefix of that key's rows."""
    rng = random.Random(12)
    users = [f"user-{i}" for i in range(60)]
    phases = [
        [{"user": rng.choice(users), "amount": rng.randrange(100)} for _ in range(3_000)]
        for _ in range(3)
    ]
    gates = [threading.Event() for _ in phases]

    def rows() -> Iterator[dict]:
        for i, phase in enumerate(phases):
            if i > 0:
                gates[i - 1].wait()
            yield from phase

    # Per user, the running totals after each of its rows (the valid states).
    valid: dict[str, set[tuple[int, int]]] = {}
    running: dict[str, tuple[int, int]] = {}
    for row in (r for phase in phases for r in phase):
        n, total = running.get(row["user"], (0, 0))
        running[row["user"]] = (n + 1, total + row["amount"])
        valid.setdefault(row["user"], set()).add(running[row["user"]])

    name = unique("totals")
    env = sb.Environment(parallelism=2, num_threads=3)
    totals = (
        env.from_iterable(rows(), batch_size=100)
        .key_by("user")
        .aggregate(n=sb.count(), total=sb.sum("amount"))
    )
    view = totals.materialize(name, key="user")
    job = env.start()
    try:
        reads = 0
        for i in range(len(phases)):
            want: dict[str, dict] = {}
            for row in (r for phase in phases[: i + 1] for r in phase):
                cur = want.setdefault(row["user"], {"user": row["user"], "n": 0, "total": 0})
                cur["n"] += 1
                cur["total"] += row["amount"]

            def caught_up(want: dict[str, dict] = want) -> bool:
                nonlocal reads
                got = view.to_dict()
                reads += 1
                for user, r in got.items():
                    assert (r["n"], r["total"]) in valid[user], f"inconsistent read {r}"
                return got == want

            wait_until(caught_up, f"the view to reflect phase {i}")
            # Python point lookups.
            for user in users:
                assert view.get(user) == want.get(user)
            assert view.get("nobody") is None
            # HTTP: a full scan and point lookups.
            status, body = http_json(f"{server.url}/views/{name}")
            assert status == 200 and body["num_rows"] == len(want)
            assert {r["user"]: r for r in body["rows"]} == want
            for user in users[:10]:
                status, body = http_json(
                    f"{server.url}/views/{name}?key={urllib.parse.quote(user)}"
                )
                assert (status, body) == ((200, want[user]) if user in want else (404, body))
            gates[i].set()
        job.wait()
        assert reads >= len(phases)
    finally:
        for g in gates:
            g.set()
        sb.views.drop_view(name)


@pytest.mark.parametrize("parallelism", [1, 4])
def test_top_n_view_with_deletes_matches_materialized_changelog(parallelism):
    rng = random.Random(parallelism)
    bids = pa.table(
        {
            "auction": [rng.randrange(20) for _ in range(4_000)],
            "price": [rng.randrange(10_000) for _ in range(4_000)],
        }
    )
    name = unique("top")
    env = sb.Environment(parallelism=parallelism)
    top = (
        env.from_table(bids, batch_size=50)
        .key_by("auction")
        .top_n(n=3, by="price", descending=True, rank=True)
    )
    changes = top.collect()
    view = top.materialize(name, key=["auction", "rank"])
    env.execute()
    changelog = changes.table()
    assert 2 in changelog["_op"].to_pylist()  # ranks change: -U/+U pairs
    want = sb.changelog.materialize(changelog, key=["auction", "rank"])
    got = view.scan()
    key = [("auction", "ascending"), ("rank", "ascending")]
    assert got.sort_by(key).to_pylist() == want.sort_by(key).to_pylist()
    # Plain-Python reference: the three highest prices per auction (ties: earlier row).
    per_auction: dict[int, list[int]] = {}
    for a, p in zip(bids["auction"].to_pylist(), bids["price"].to_pylist(), strict=True):
        per_auction.setdefault(a, []).append(p)
    for a, prices in per_auction.items():
        best = sorted(prices, reverse=True)[:3]
        for rank, price in enumerate(best, start=1):
            assert view.get((a, rank))["price"] == price
    assert view.get((999, 1)) is None
    sb.views.drop_view(name)


def random_changelog(n: int, keys: int, seed: int) -> tuple[pa.Table, dict[int, dict]]:
    """A well-formed changelog (+I new key, -U/+U update, -D delete) and the
    plain-Python table it leaves behind."""
    rng = random.Random(seed)
    live: dict[int, dict] = {}
    rows = []
    for _ in range(n):
        k = rng.randrange(keys)
        row = {"k": k, "v": rng.randrange(1_000), "s": f"s{rng.randrange(50)}"}
        if k not in live:
            rows.append({**row, "_op": 0})
            live[k] = row
        elif rng.random() < 0.25:
            rows.append({**live.pop(k), "_op": 3})
        else:
            rows.append({**live[k], "_op": 1})
            rows.append({**row, "_op": 2})
            live[k] = row
    schema = pa.schema(
        [("k", pa.int64()), ("v", pa.int64()), ("s", pa.string()), ("_op", pa.int8())]
    )
    return pa.Table.from_pylist(rows, schema=schema), live


@pytest.mark.parametrize("parallelism", [1, 4])
def test_changelog_with_deletes_matches_python_reference(parallelism, server):
    changelog, live = random_changelog(5_000, 300, seed=parallelism)
    assert 3 in changelog["_op"].to_pylist()
    name = unique("changes")
    env = sb.Environment(parallelism=parallelism)
    view = env.from_table(changelog, batch_size=97).materialize(name, key="k")
    env.execute()
    assert view.to_dict() == live
    assert view.num_rows == len(live)
    for k in range(300):
        assert view.get(k) == live.get(k)
    status, body = http_json(f"{server.url}/views/{name}")
    assert status == 200 and {r["k"]: r for r in body["rows"]} == live
    sb.views.drop_view(name)


def test_plain_stream_view_keeps_latest_row_per_composite_key(server):
    name = unique("latest")
    rows = [
        {"region": "eu", "id": 1, "v": "a"},
        {"region": "us", "id": 1, "v": "b"},
        {"region": "eu", "id": 1, "v": "c"},
        {"region": "eu", "id": 2, "v": "d"},
    ]
    env = sb.Environment(parallelism=2)
    view = env.from_iterable(rows, batch_size=1).materialize(name, key=["region", "id"])
    env.execute()
    assert view.to_dict() == {
        ("eu", 1): {"region": "eu", "id": 1, "v": "c"},
        ("us", 1): {"region": "us", "id": 1, "v": "b"},
        ("eu", 2): {"region": "eu", "id": 2, "v": "d"},
    }
    assert view.get(("eu", 1)) == {"region": "eu", "id": 1, "v": "c"}
    with pytest.raises(ValueError, match="keyed by"):
        view.get("eu")
    status, body = http_json(f"{server.url}/views/{name}?region=us&id=1")
    assert (status, body) == (200, {"region": "us", "id": 1, "v": "b"})
    status, body = http_json(f"{server.url}/views/{name}?region=us")
    assert status == 400 and "every key column" in body["error"]
    status, body = http_json(f"{server.url}/views/{name}?region=us&id=x")
    assert status == 400 and "not a valid value" in body["error"]
    status, body = http_json(f"{server.url}/views")
    assert status == 200
    assert {"name": name, "keys": ["region", "id"], "num_rows": 3, "consistency": "latest"} == {
        k: v
        for k, v in next(x for x in body["views"] if x["name"] == name).items()
        if k != "version"
    }
    status, body = http_json(f"{server.url}/views/{unique('absent')}")
    assert status == 404 and "no view named" in body["error"]
    assert name in sb.views.list_views()
    assert sb.views.get_view(name).num_rows == 3
    assert sb.views.drop_view(name)
    assert sb.views.get_view(name) is None
    assert view.num_rows == 3  # a handle outlives its registration


def test_view_of_a_lookup_join(postgres_dsn, server):
    """A view over a join's output: the latest enriched row per order."""
    table = unique("cust")
    sb.lookup.postgres_load(
        table, pa.table({"id": [1, 2], "name": ["ann", "bob"]}), primary_key="id"
    )
    try:
        name = unique("orders")
        env = sb.Environment(parallelism=2)
        orders = env.from_iterable(
            [{"order": 1, "customer": 1}, {"order": 2, "customer": 2}, {"order": 1, "customer": 2}],
            batch_size=1,
        )
        joined = orders.lookup_join(sb.postgres_table(None, table, key="id"), on="customer")
        view = joined.materialize(name, key="order")
        env.execute()
        assert view.get(1)["name"] in ("ann", "bob")  # rows of one key: input order
        assert view.get(2) == {"order": 2, "customer": 2, "name": "bob"}
        status, body = http_json(f"{server.url}/views/{name}?key=2")
        assert (status, body) == (200, {"order": 2, "customer": 2, "name": "bob"})
        sb.views.drop_view(name)
    finally:
        sb.lookup.postgres_execute(f'DROP TABLE "{table}"')


def test_empty_view_and_bad_keys():
    name = unique("empty")
    env = sb.Environment(parallelism=1)
    stream = env.from_table(pa.table({"k": pa.array([], pa.int64())}))
    view = stream.materialize(name, key="k")
    assert view.get(1) is None and view.scan().num_rows == 0 and view.schema is None
    env.execute()
    with pytest.raises(ValueError, match="needs key columns"):
        sb.views.materialize(stream, unique("x"), key=[])
    env = sb.Environment(parallelism=1)
    env.from_table(pa.table({"k": [1]})).materialize(unique("bad"), key="nope")
    with pytest.raises(sb.JobError, match="nope"):
        env.execute()
    sb.views.drop_view(name)


def test_checkpoint_view_shows_the_last_completed_checkpoint(server):
    """Two views of one group-by: "latest" follows the input, "checkpoint" shows
    the rows before the barrier of the last completed checkpoint. The source
    triggers the checkpoint itself (so the barrier's place is known) and stops
    between phases until the test has checked."""
    rng = random.Random(21)
    batch = 50
    phases = [
        [{"user": f"u{rng.randrange(30)}", "x": rng.randrange(10)} for _ in range(n * batch)]
        for n in (8, 1, 5)
    ]
    box: dict[str, object] = {}
    started, checked, done = threading.Event(), threading.Event(), threading.Event()

    def rows() -> Iterator[dict]:
        yield from phases[0]
        started.wait(60)
        box["checkpoint"] = box["job"].trigger_checkpoint()  # type: ignore[attr-defined]
        yield from phases[1]  # one batch: the barrier follows it
        checked.wait(60)
        yield from phases[2]
        done.wait(60)

    def sums(rs: list[dict]) -> dict[str, dict]:
        out: dict[str, dict] = {}
        for r in rs:
            cur = out.setdefault(r["user"], {"user": r["user"], "s": 0})
            cur["s"] += r["x"]
        return out

    env = sb.Environment(parallelism=2, num_threads=4)
    totals = env.from_iterable(rows(), batch_size=batch).key_by("user").aggregate(s=sb.sum("x"))
    latest = totals.materialize(unique("latest"), key="user")
    stable = totals.materialize(unique("stable"), key="user", consistency="checkpoint")
    assert stable.consistency == "checkpoint" and latest.consistency == "latest"
    job = env.start()
    box["job"] = job
    try:
        assert stable.checkpoint is None and stable.num_rows == 0
        started.set()
        at_barrier = sums(phases[0] + phases[1])
        wait_until(
            lambda: "checkpoint" in box and stable.checkpoint == box["checkpoint"],
            "checkpoint 1",
        )
        assert stable.to_dict() == at_barrier
        status, body = http_json(f"{server.url}/views/{stable.name}")
        assert body["consistency"] == "checkpoint"
        assert body["checkpoint"] == box["checkpoint"]
        assert {r["user"]: r for r in body["rows"]} == at_barrier
        checked.set()
        # The latest view moves on with phase 3; the checkpoint view does not.
        everything = sums(phases[0] + phases[1] + phases[2])
        wait_until(lambda: latest.to_dict() == everything, "the latest view")
        assert stable.to_dict() == at_barrier
        assert stable.checkpoint == box["checkpoint"]
    finally:
        for event in (started, checked, done):
            event.set()
    job.wait()
    assert stable.checkpoint == sys.maxsize  # end of input: the final result
    assert stable.to_dict() == latest.to_dict() == sums([r for p in phases for r in p])
    sb.views.drop_view(latest.name)
    sb.views.drop_view(stable.name)
