"""Fixtures of the Faust-layer tests (core helper owns this file)."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest
from sabot import kafka as sk

# pytest imports this file as the module "conftest", which then replaces
# tests/python/conftest.py in sys.modules; re-export that file's names so
# `from conftest import rows` in tests/python keeps working.
_spec = importlib.util.spec_from_file_location(
    "_sabot_tests_python_conftest", Path(__file__).resolve().parents[1] / "conftest.py"
)
if _spec is not None and _spec.loader is not None:
    _parent = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(_parent)
    for _name in dir(_parent):
        if not _name.startswith("_") and _name not in globals():
            globals()[_name] = getattr(_parent, _name)


@pytest.fixture
def kafka_bootstrap() -> str:
    """The repo's broker; tests skip when it is not running (fail with
    SABOT_REQUIRE_KAFKA=1, as ``make test`` sets)."""
    if not sk.broker_available(sk.DEFAULT_BOOTSTRAP):
        if os.environ.get("SABOT_REQUIRE_KAFKA") == "1":
            pytest.fail(f"no Kafka broker at {sk.DEFAULT_BOOTSTRAP}")
        pytest.skip(f"no Kafka broker at {sk.DEFAULT_BOOTSTRAP} (make kafka-up)")
    return sk.DEFAULT_BOOTSTRAP
