"""Flink-compatible scalar functions that Arrow lacks, as native vectorized
kernels (cpp/src/sabot/functions/string_functions.cc).

Each builds an expression usable in ``select`` / ``filter`` like any other;
``call("split_index", ...)`` and ``call("regexp_extract", ...)`` name the same
functions. Importing ``sabot`` registers them in Arrow's function registry, so
``pyarrow.compute.call_function("split_index", ...)`` works too.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from sabot import _sabot  # noqa: F401  (importing the module registers the kernels)
from sabot.datastream import call

__all__ = ["regexp_extract", "split_index"]


def _string_expr(value: Any) -> pc.Expression:
    return value if isinstance(value, pc.Expression) else pc.scalar(value)


def split_index(string: Any, separator: str, index: int) -> pc.Expression:
    """Field ``index`` (0-based) of ``string`` split at ``separator``, as Flink's
    ``SPLIT_INDEX(str, sep, index)``: ``split_index(col("url"), "/", 3)``.

    Splits at every occurrence of the separator (leftmost first,
    non-overlapping) and keeps empty fields. Null where the string is null or
    empty, or the index is negative or past the last field. One pass over the
    string data, no regex and no list arrays; utf8 and large_utf8.

    Raises ValueError for an empty separator (Flink would split at whitespace).
    """
    if not isinstance(separator, str) or not separator:
        raise ValueError(
            f"split_index: the separator must be a non-empty string, got {separator!r}"
        )
    return call("split_index", _string_expr(string), pc.scalar(separator), pc.scalar(int(index)))


def regexp_extract(string: Any, pattern: str, group: int = 1) -> pc.Expression:
    """Group ``group`` of the first (leftmost) match of ``pattern`` in ``string``,
    as Flink's ``REGEXP_EXTRACT(str, pattern, group)``; group 0 is the whole
    match. Null where the string is null or does not match.

    Patterns of the form ``[PREFIX]LITERAL[([^STOP]*)]`` (PREFIX one of ``^``,
    ``(C|^)``, ``(^|C)``, ``(?:C|^)``, ``(?:^|C)``; e.g.
    ``(&|^)channel_id=([^&]*)``) run as a hand-written scan; any other pattern
    runs through Arrow's RE2-based ``extract_regex`` (RE2 syntax: no
    backreferences or lookaround).

    Raises ValueError (pyarrow.ArrowInvalid) naming the function and the
    pattern when the pattern is invalid or has no group ``group``.
    """
    if not isinstance(pattern, str):
        raise TypeError(f"regexp_extract: the pattern must be a str, got {type(pattern).__name__}")
    # Check the pattern and group now rather than on the first batch.
    pc.call_function("regexp_extract", [pa.array(["x"]), pa.scalar(pattern), pa.scalar(int(group))])
    return call("regexp_extract", _string_expr(string), pc.scalar(pattern), pc.scalar(int(group)))
