// Deduplication ("deduplicate"): keeps one row per key and emits it as an
// updating stream (operators/changelog.h). The kept rows live in the job's
// keyed state backend (state/backend.h: memory or RocksDB), so the state is
// checkpointed, restored at any parallelism and may be larger than memory.
#pragma once

#include <string>
#include <vector>

#include "sabot/plan/plan.h"
#include "sabot/plan/registry.h"

namespace sabot {

/// Output schema: the input columns and `_op` (int8). Upsert key: `keys`.
///
/// keep_last = false (keep first): +I for the first row of each key (by arrival,
/// or the smallest `time_column` value), never retracted when ordered by
/// arrival. keep_last = true: +I for the first row, then -U/+U whenever a later
/// row arrives (or, with `time_column`, a row with a greater or equal time).
/// Rows whose time is null are dropped. Column types: those RowCodec encodes
/// (state/value_codec.h; keep first by arrival keeps no row and takes any).
struct DeduplicateOptions : NodeOptions {
  std::vector<std::string> keys;
  bool keep_last = false;
  std::string time_column;  ///< empty: arrival order
  std::string ToString() const override;
};

void RegisterDeduplicate(OperatorRegistry* registry);

}  // namespace sabot
