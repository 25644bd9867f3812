"""Runs every ```python block of the README and docs/ (documentation is code)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)

CASES = [
    pytest.param(doc, i, code, id=f"{doc.relative_to(ROOT)}#{i}")
    for doc in DOCS
    if doc.exists()
    for i, code in enumerate(BLOCK.findall(doc.read_text()))
]


@pytest.mark.parametrize(("doc", "index", "code"), CASES)
def test_doc_example_runs(doc: Path, index: int, code: str, tmp_path: Path) -> None:
    if "sb.kafka." in code:
        _require_kafka()
    if "postgres" in code:  # lookup joins: sb.postgres_table, sb.lookup.postgres_*
        _require_postgres()
    script = tmp_path / "example.py"
    script.write_text(code)
    proc = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, f"{doc.name} block {index} failed:\n{proc.stderr}"


def test_examples_directory_runs(tmp_path: Path) -> None:
    for example in sorted((ROOT / "examples" / "python").glob("*.py")):
        proc = subprocess.run(
            [sys.executable, str(example)],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 0, f"{example.name} failed:\n{proc.stderr}"


def _require_kafka() -> None:
    """Kafka examples need the repo's broker (``make kafka-up``; ``make test`` starts it)."""
    import os

    import sabot as sb

    if not sb.kafka.broker_available():
        if os.environ.get("SABOT_REQUIRE_KAFKA") == "1":
            pytest.fail(f"no Kafka broker at {sb.kafka.DEFAULT_BOOTSTRAP}")
        pytest.skip(f"no Kafka broker at {sb.kafka.DEFAULT_BOOTSTRAP} (make kafka-up)")


def _require_postgres() -> None:
    """Lookup-join examples need the repo's PostgreSQL (``make postgres-up``;
    ``make test`` starts it)."""
    import os

    import sabot as sb

    if not sb.lookup.postgres_available():
        dsn = sb.lookup.DEFAULT_POSTGRES_DSN
        if os.environ.get("SABOT_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"no PostgreSQL at {dsn!r}")
        pytest.skip(f"no PostgreSQL at {dsn!r} (make postgres-up)")
