"""Fixtures of the Faust-layer tests (core helper owns this file)."""

from __future__ import annotations

import pytest
from sabot import kafka as sk


@pytest.fixture
def kafka_bootstrap() -> str:
    """The repo's broker; tests skip when it is not running."""
    if not sk.broker_available(sk.DEFAULT_BOOTSTRAP):
        pytest.skip(f"no Kafka broker at {sk.DEFAULT_BOOTSTRAP} (make kafka-up)")
    return sk.DEFAULT_BOOTSTRAP
