"""An independent reference for windowed aggregation, in plain Python: what each
window must contain, computed row by row with no shared code with the engine."""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Iterable


def windows_of(ts: int, kind: str, p: dict[str, int]) -> list[tuple[int, int]]:
    if kind == "tumbling":
        s = (ts // p["size_ms"]) * p["size_ms"]
        return [(s, s + p["size_ms"])]
    if kind == "hopping":
        size, slide = p["size_ms"], p["slide_ms"]
        last = (ts // slide) * slide
        out = []
        s = last
        while s > ts - size:
            out.append((s, s + size))
            s -= slide
        return out
    if kind == "cumulate":
        mx, step = p["size_ms"], p["slide_ms"]
        cs = (ts // mx) * mx
        return [(cs, cs + k * step) for k in range(1, mx // step + 1) if cs + k * step > ts]
    raise ValueError(kind)


def aggregate(fn: str, values: list) -> object:
    vals = [v for v in values if v is not None]
    if fn == "count":
        return len(values)
    if fn == "count_col":
        return len(vals)
    if fn == "sum":
        return sum(vals) if vals else None
    if fn == "min":
        return min(vals) if vals else None
    if fn == "max":
        return max(vals) if vals else None
    if fn == "mean":
        return sum(vals) / len(vals) if vals else None
    if fn == "count_distinct":
        return len(set(vals))
    if fn == "first":
        return values[0] if values else None
    if fn == "last":
        return values[-1] if values else None
    if fn == "var_samp":
        return statistics.variance(vals) if len(vals) > 1 else None
    if fn == "stddev_samp":
        return statistics.stdev(vals) if len(vals) > 1 else None
    if fn == "collect_list":
        return list(values)
    raise ValueError(fn)


def time_windows(
    rows: Iterable[dict],
    key: str | None,
    time: str,
    value: str,
    kind: str,
    params: dict[str, int],
    fns: dict[str, str],
) -> dict[tuple, dict]:
    groups: dict[tuple, list] = defaultdict(list)
    for r in rows:
        for w in windows_of(r[time], kind, params):
            groups[(r[key] if key else None, *w)].append(r[value])
    return {g: {name: aggregate(fn, vs) for name, fn in fns.items()} for g, vs in groups.items()}


def sessions(
    rows: Iterable[dict], key: str, time: str, value: str, gap: int, fns: dict[str, str]
) -> dict[tuple, dict]:
    by_key: dict[object, list] = defaultdict(list)
    for r in rows:
        by_key[r[key]].append((r[time], r[value]))
    out = {}
    for k, items in by_key.items():
        items.sort(key=lambda x: x[0])
        start, end, vals = None, None, []
        for ts, v in items:
            if start is not None and ts <= end:
                end = max(end, ts + gap)
                vals.append(v)
                continue
            if start is not None:
                out[(k, start, end)] = {n: aggregate(f, vals) for n, f in fns.items()}
            start, end, vals = ts, ts + gap, [v]
        if start is not None:
            out[(k, start, end)] = {n: aggregate(f, vals) for n, f in fns.items()}
    return out


def close(a: object, b: object) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        if a is None or b is None:
            return a is b
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    return a == b
