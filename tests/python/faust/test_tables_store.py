"""The tables' store binding (_sabot.FaustStore) on both state backends,
against a plain dict."""

from __future__ import annotations

import random

import pytest
from sabot import _sabot


@pytest.mark.parametrize("backend", ["memory", "rocksdb"])
def test_store_matches_a_dict(backend: str, tmp_path) -> None:
    store = _sabot.FaustStore(backend, str(tmp_path) if backend == "rocksdb" else "", "t")
    assert store.kind == backend
    reference: dict[tuple[int, bytes], bytes] = {}
    rng = random.Random(5)
    for i in range(3000):
        p, k = rng.randrange(4), f"k{rng.randrange(200)}".encode()
        if rng.random() < 0.2:
            store.delete(p, k)
            reference.pop((p, k), None)
        else:
            v = f"v{i}".encode()
            store.put(p, k, v)
            reference[(p, k)] = v
    assert sorted((p, k, v) for p, k, v in store.items()) == sorted(
        (p, k, v) for (p, k), v in reference.items()
    )
    for (p, k), v in list(reference.items())[:50]:
        assert store.get(p, k) == v
        assert store.contains(p, k)
        first = min(q for q, kk in reference if kk == k)
        assert store.get_any(4, k) == (first, reference[(first, k)])
    assert store.get(0, b"missing") is None and store.get_any(4, b"missing") is None

    store.put_many([(1, b"a", b"1"), (1, b"a", None), (2, b"b", b"2"), (3, b"b", b"3")])
    assert store.get(1, b"a") is None and store.get(2, b"b") == b"2"
    store.clear(2)
    assert all(p != 2 for p, _, _ in store.items())
    store.clear()
    assert store.items() == []
    assert store.memory_usage_bytes() >= 0


def test_store_errors_name_the_table() -> None:
    store = _sabot.FaustStore("memory", "", "orders")
    with pytest.raises(ValueError, match=r"table 'orders': partition 40000 is out of range"):
        store.put(40000, b"k", b"v")
    with pytest.raises(ValueError, match="table x: unknown state backend .leveldb."):
        _sabot.FaustStore("leveldb", "", "x")
