"""Sabot: an Arrow-native stream processing engine with a C++20 core.

import sabot as sb

env = sb.Environment(parallelism=2)
bids = sb.nexmark.bids(env, events=1_000_000)
bids.filter(sb.col("price") > 1_000_000).select("auction", "price").print()
env.execute()
"""

# Every public name resolves lazily (PEP 562 module __getattr__): `import sabot`
# loads nothing but this file, and each subsystem (with pyarrow, numpy and the
# native module) is imported on first use. A Faust-style worker (`import sabot as
# faust`) thus never loads the DataStream API, nexmark or pyarrow unless it uses
# them (docs/design/faust_memory.md). The TYPE_CHECKING block below lets type
# checkers and IDEs see the same names as eager imports would.

from typing import TYPE_CHECKING

__version__ = "0.1.0"

if TYPE_CHECKING:  # pragma: no cover
    from sabot import (
        changelog,
        functions,
        join,
        kafka,
        lookup,
        nexmark,
        state,
        upsert,
        views,
        window,
    )
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

_SUBMODULES = frozenset(
    (
        "changelog",
        "checkpoint",
        "datastream",
        "functions",
        "join",
        "kafka",
        "lookup",
        "nexmark",
        "state",
        "upsert",
        "views",
        "window",
    )
)

# name -> the submodule that defines it
_NAMES = {
    **dict.fromkeys(
        (
            "Collected",
            "DataStream",
            "Environment",
            "JobError",
            "JobHandle",
            "JobResult",
            "WindowedStream",
            "call",
            "col",
            "lit",
        ),
        "sabot.datastream",
    ),
    "postgres_table": "sabot.lookup",
    **dict.fromkeys(
        (
            "Aggregate",
            "Window",
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
        ),
        "sabot.window",
    ),
}

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
    "functions",
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
# HoppingWindow, uuid, ... resolve lazily too. Where a name exists in both
# (Window), the DataStream API's wins, as it did with eager imports.
def __getattr__(name: str):  # noqa: ANN202
    import importlib

    if name in _SUBMODULES:
        mod = importlib.import_module(f"sabot.{name}")
        globals()[name] = mod
        return mod
    owner = _NAMES.get(name)
    if owner is not None:
        value = getattr(importlib.import_module(owner), name)
        globals()[name] = value
        return value
    if not name.startswith("_"):
        _faust = importlib.import_module("sabot.faust")
        if name in _faust.FAUST_NAMES:
            return getattr(_faust, name)
    raise AttributeError(f"module 'sabot' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__) | _SUBMODULES)
