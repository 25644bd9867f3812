"""Sabot: an Arrow-native stream processing engine with a C++20 core.

import sabot as sb

env = sb.Environment(parallelism=2)
bids = sb.nexmark.bids(env, events=1_000_000)
bids.filter(sb.col("price") > 1_000_000).select("auction", "price").print()
env.execute()
"""

from sabot import nexmark
from sabot.datastream import (
    Collected,
    DataStream,
    Environment,
    JobError,
    JobHandle,
    JobResult,
    call,
    col,
    lit,
)

__version__ = "0.1.0"

__all__ = [
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
    "nexmark",
]
