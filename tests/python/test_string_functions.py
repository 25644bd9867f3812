"""split_index and regexp_extract (sabot.functions) against plain-Python
references: directly through pyarrow.compute and inside a Sabot job."""

from __future__ import annotations

import re

import pyarrow as pa
import pyarrow.compute as pc
import pytest
import sabot as sb
from sabot.functions import regexp_extract, split_index

URLS = [
    "https://www.nexmark.com/abc/def/item.htm?query=1&channel_id=1234",
    None,
    "",
    "/",
    "//",
    "a/b",
    "a/b/",
    "/a/b/c/d/e/f",
    "https://www.nexmark.com/ünï/cödé/ß?channel_id=é&x=1",
    "no separators at all",
    "channel_id=first&channel_id=second",
    "x&channel_id=",
    "xchannel_id=5&channel_id=6",
    "&&channel_id=7",
    "日本/語/テキスト",
]


def split_reference(s: str | None, sep: str, index: int) -> str | None:
    """Flink's SPLIT_INDEX: the empty string has no fields."""
    if s is None or s == "" or index < 0:
        return None
    fields = s.split(sep)
    return fields[index] if index < len(fields) else None


def extract_reference(s: str | None, pattern: str, group: int) -> str | None:
    if s is None:
        return None
    m = re.search(pattern, s)
    return None if m is None else m.group(group)


@pytest.mark.parametrize("string_type", [pa.string(), pa.large_string()])
@pytest.mark.parametrize("sep", ["/", "//", "channel_id", "é", "語"])
def test_split_index_matches_python(string_type: pa.DataType, sep: str) -> None:
    urls = pa.array(URLS, string_type)
    for index in [-3, -1, 0, 1, 2, 3, 4, 5, 6, 7, 50]:
        out = pc.call_function("split_index", [urls, pa.scalar(sep), pa.scalar(index)])
        assert out.type == string_type
        out.validate(full=True)
        assert out.to_pylist() == [split_reference(u, sep, index) for u in URLS], (sep, index)


def test_split_index_sliced_input() -> None:
    urls = pa.array(URLS)
    for offset in [1, 4, 9]:
        sliced = urls.slice(offset, 5)
        out = pc.call_function("split_index", [sliced, pa.scalar("/"), pa.scalar(2, pa.int32())])
        out.validate(full=True)
        assert out.to_pylist() == [split_reference(u, "/", 2) for u in URLS[offset : offset + 5]]


def test_split_index_empty_separator_is_an_error() -> None:
    with pytest.raises(ValueError, match="split_index"):
        split_index(sb.col("url"), "", 1)
    with pytest.raises(pa.ArrowInvalid, match="split_index: the separator is empty"):
        pc.call_function("split_index", [pa.array(["a"]), pa.scalar(""), pa.scalar(0)])


PATTERNS = [
    ("(&|^)channel_id=([^&]*)", 2),
    ("(&|^)channel_id=([^&]*)", 1),
    ("(&|^)channel_id=([^&]*)", 0),
    ("(^|&)channel_id=([^&]*)", 2),
    ("(?:&|^)channel_id=([^&]*)", 1),
    ("^https://([^/]*)", 1),
    ("cödé/([^?]*)", 1),
    ("item\\.htm", 0),
    # not in the fast-path class: Arrow's extract_regex (RE2)
    ("channel_id=(\\d+)", 1),
    ("/([a-z]+)/([a-z]+)/", 2),
    ("(?P<host>[a-z]+)\\.com", 1),
    ("(ab|&)channel_id=([^&]+)", 2),
]


@pytest.mark.parametrize("string_type", [pa.string(), pa.large_string()])
@pytest.mark.parametrize(("pattern", "group"), PATTERNS)
def test_regexp_extract_matches_python(string_type: pa.DataType, pattern: str, group: int) -> None:
    urls = pa.array(URLS, string_type)
    for sliced_from in [0, 3]:
        values = urls.slice(sliced_from)
        out = pc.call_function("regexp_extract", [values, pa.scalar(pattern), pa.scalar(group)])
        assert out.type == string_type
        out.validate(full=True)
        expected = [extract_reference(u, pattern, group) for u in URLS[sliced_from:]]
        assert out.to_pylist() == expected


@pytest.mark.parametrize(
    ("pattern", "group", "message"),
    [
        ("(unclosed", 1, "unbalanced"),
        ("a{2,1}", 0, "invalid pattern"),
        ("(a)", 2, "past the last group"),
        ("(a)", -1, "negative"),
    ],
)
def test_regexp_extract_errors_name_function_and_pattern(
    pattern: str, group: int, message: str
) -> None:
    with pytest.raises(pa.ArrowInvalid, match=message) as info:
        regexp_extract(sb.col("url"), pattern, group)
    assert "regexp_extract" in str(info.value)
    assert pattern in str(info.value)


def test_functions_in_a_job() -> None:
    table = pa.table({"id": list(range(len(URLS))), "url": URLS})
    env = sb.Environment(parallelism=2)
    out = (
        env.from_table(table, batch_size=4, parallelism=2)
        .select(
            "id",
            dir=split_index(sb.col("url"), "/", 1),
            channel=regexp_extract(sb.col("url"), "(&|^)channel_id=([^&]*)", 2),
            host=sb.call("regexp_extract", sb.col("url"), "//([^/]*)", 1),
        )
        .to_table()
        .sort_by("id")
    )
    assert out.column("dir").to_pylist() == [split_reference(u, "/", 1) for u in URLS]
    assert out.column("channel").to_pylist() == [
        extract_reference(u, "(&|^)channel_id=([^&]*)", 2) for u in URLS
    ]
    assert out.column("host").to_pylist() == [extract_reference(u, "//([^/]*)", 1) for u in URLS]


def test_invalid_pattern_by_name_fails_the_job_naming_the_pattern() -> None:
    table = pa.table({"url": ["a", "b"]})
    env = sb.Environment(parallelism=1)
    stream = env.from_table(table).select(x=sb.call("regexp_extract", sb.col("url"), "(bad", 1))
    with pytest.raises(sb.JobError, match=r"regexp_extract: invalid pattern '\(bad'"):
        stream.to_table()
