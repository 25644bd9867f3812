from __future__ import annotations

import random

import pyarrow as pa
import pytest


def make_table(n: int = 10_000, seed: int = 7) -> pa.Table:
    rng = random.Random(seed)
    return pa.table(
        {
            "id": pa.array(range(n), pa.int64()),
            "key": pa.array([rng.randrange(50) for _ in range(n)], pa.int64()),
            "price": pa.array([rng.random() * 1000 for _ in range(n)], pa.float64()),
            "name": pa.array([f"item-{rng.randrange(1000)}" for _ in range(n)], pa.string()),
        }
    )


@pytest.fixture
def table() -> pa.Table:
    return make_table()


def rows(t: pa.Table) -> list[tuple]:
    """The rows of a table as a sorted list (a multiset, order-insensitive)."""
    cols = [t.column(i).to_pylist() for i in range(t.num_columns)]
    return sorted(zip(*cols, strict=True), key=repr)


# -- PostgreSQL (lookup joins): the repo's server, scripts/postgres.sh ---------


@pytest.fixture(scope="session")
def postgres_dsn() -> str:
    """The DSN of the repo's PostgreSQL server (``make postgres-up``). Tests that
    use it skip when it is not reachable, unless SABOT_REQUIRE_POSTGRES=1
    (``make test`` sets it)."""
    import os

    import sabot as sb

    dsn = sb.lookup.DEFAULT_POSTGRES_DSN
    if not sb.lookup.postgres_available(dsn):
        if os.environ.get("SABOT_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"no PostgreSQL at {dsn!r}; run make postgres-up")
        pytest.skip(f"no PostgreSQL at {dsn!r} (make postgres-up)")
    return dsn


# -- Kafka: the repo's broker, scripts/kafka.sh --------------------------------


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    """The bootstrap address of the repo's broker (``make kafka-up``). Tests that
    use it skip when it is not reachable, unless SABOT_REQUIRE_KAFKA=1
    (``make test`` sets it)."""
    import os

    import sabot as sb

    bootstrap = sb.kafka.DEFAULT_BOOTSTRAP
    if not sb.kafka.broker_available(bootstrap):
        if os.environ.get("SABOT_REQUIRE_KAFKA") == "1":
            pytest.fail(f"no Kafka broker at {bootstrap}; run make kafka-up")
        pytest.skip(f"no Kafka broker at {bootstrap} (make kafka-up)")
    return bootstrap
