// Top-N per key ("top_n"): maintains the N best rows of each key and emits the
// changes of that set as an updating stream (operators/changelog.h).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "sabot/plan/plan.h"
#include "sabot/plan/registry.h"

namespace sabot {

/// Output schema: the input columns, `rank` (int64, 1-based; only with
/// `with_rank`), `_op` (int8).
///
/// Without rank: +I for a row entering its key's top N, -D for a row leaving it
/// (materialize with retraction semantics, no upsert key). With rank: upsert key
/// (keys, rank): per rank whose row changed, -U/+U (or +I for a new rank, -D for
/// a rank that disappeared). Ties keep the earlier row ahead; rows whose `by`
/// value is null never enter. `by` must be numeric or temporal (compared as
/// float64).
struct TopNOptions : NodeOptions {
  std::vector<std::string> keys;
  int64_t n = 1;
  std::string by;
  bool descending = true;
  bool with_rank = false;
  std::string ToString() const override;
};

void RegisterTopN(OperatorRegistry* registry);

}  // namespace sabot
