"""Fixtures of the Faust-layer tests (core helper owns this file)."""

from __future__ import annotations

import os

import pytest
from sabot import kafka as sk


@pytest.fixture
def kafka_bootstrap() -> str:
    """The repo's broker; tests skip when it is not running (fail with
    SABOT_REQUIRE_KAFKA=1, as ``make test`` sets)."""
    if not sk.broker_available(sk.DEFAULT_BOOTSTRAP):
        if os.environ.get("SABOT_REQUIRE_KAFKA") == "1":
            pytest.fail(f"no Kafka broker at {sk.DEFAULT_BOOTSTRAP}")
        pytest.skip(f"no Kafka broker at {sk.DEFAULT_BOOTSTRAP} (make kafka-up)")
    return sk.DEFAULT_BOOTSTRAP
