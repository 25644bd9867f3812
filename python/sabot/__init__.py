"""Sabot: an Arrow-native stream processing engine with a C++20 core.

import sabot as sb

env = sb.Environment(parallelism=2)
bids = sb.nexmark.bids(env, events=1_000_000)
bids.filter(sb.col("price") > 1_000_000).select("auction", "price").print()
env.execute()
"""

from sabot import changelog, join, kafka, lookup, nexmark, state, upsert, views, window
from sabot.datastream import (
    Collected,
    DataStream,
    Environment,
    JobError,
    JobHandle,
    JobResult,
    WindowedStream,
    call,
    col,
    lit,
)
from sabot.lookup import postgres_table
from sabot.window import (
    Aggregate,
    Window,
    collect_list,
    count,
    count_distinct,
    count_window,
    cumulate,
    first,
    global_window,
    hopping,
    last,
    max,
    mean,
    min,
    session,
    stddev,
    stddev_pop,
    sum,
    tumbling,
    udaf,
    var,
    var_pop,
)

__version__ = "0.1.0"

__all__ = [
    "Aggregate",
    "Window",
    "WindowedStream",
    "collect_list",
    "count",
    "count_distinct",
    "count_window",
    "cumulate",
    "first",
    "global_window",
    "hopping",
    "last",
    "max",
    "mean",
    "min",
    "session",
    "stddev",
    "stddev_pop",
    "sum",
    "tumbling",
    "udaf",
    "var",
    "var_pop",
    "window",
    "Collected",
    "DataStream",
    "Environment",
    "JobError",
    "JobHandle",
    "JobResult",
    "__version__",
    "call",
    "col",
    "lit",
    "changelog",
    "join",
    "kafka",
    "nexmark",
    "state",
    "lookup",
    "postgres_table",
    "upsert",
    "views",
]


# -- Faust-compatible API (sabot.faust): `import sabot as faust` ---------------------
# App, Record, Stream, Topic, Channel, Event, current_event, TumblingWindow,
# HoppingWindow, uuid, ... resolve lazily so `import sabot` stays light.
def __getattr__(name: str):  # noqa: ANN202
    if not name.startswith("_"):
        import importlib

        _faust = importlib.import_module("sabot.faust")
        if name in _faust.FAUST_NAMES:
            return getattr(_faust, name)
    raise AttributeError(f"module 'sabot' has no attribute {name!r}")
