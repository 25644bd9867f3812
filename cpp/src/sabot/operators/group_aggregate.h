// Non-windowed group-by aggregation ("group_aggregate"): an updating stream
// (operators/changelog.h). For every input batch it emits one changelog batch:
// per key touched by the batch, -U (previous result) then +U (new result), or +I
// for a new key.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "sabot/operators/accumulators.h"
#include "sabot/plan/plan.h"
#include "sabot/plan/registry.h"

namespace sabot {

/// Output schema: the key columns, the aggregates in order, `_op` (int8). Upsert
/// key: the key columns.
struct GroupAggregateOptions : NodeOptions {
  std::vector<std::string> keys;  ///< empty: one group (run at parallelism 1)
  std::vector<AggregateSpec> aggregates;
  /// Processing-time state TTL per key (0: keep forever). A key untouched for
  /// this long is dropped without a retraction; a later row restarts it (+I).
  int64_t state_ttl_ms = 0;
  std::string ToString() const override;
};

void RegisterGroupAggregate(OperatorRegistry* registry);

}  // namespace sabot
