// ROWS-based OVER aggregate over an updating input ("over_rows"): per key, the
// aggregates of each row and the `preceding` rows before it in order-column
// order, maintained under the input's updates and retractions.
//
/// Design: docs/design/over_aggregate.md. Single-threaded like every operator.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "sabot/operators/accumulators.h"
#include "sabot/plan/plan.h"
#include "sabot/plan/registry.h"

namespace sabot {

/// Options of an "over_rows" plan node: AGG(col) OVER (PARTITION BY keys ORDER
/// BY order_by, row_key ROWS BETWEEN preceding PRECEDING AND CURRENT ROW).
///
/// Input: an updating stream (`_op`; a stream without `_op` is all +I) whose
/// rows are identified within a key by `row_key` (an integer column): +I/+U
/// add or replace the row with that row key, -U/-D remove it. Per input batch
/// the changes are applied first, then every touched key's rows are ordered by
/// (order_by, row_key) and their aggregates recomputed; per row whose result
/// changed the operator emits -U (old) / +U (new), +I for a new row, -D for a
/// removed row.
///
/// Output schema: the key columns, row_key, one column per aggregate, `_op`;
/// upsert key: (keys, row_key). Aggregates: count, sum, min, max, mean (alias
/// avg) over integer (int64 results; mean rounds down) or floating columns
/// (float64 results). Null keys, row keys, order values or aggregated values
/// are rejected (Invalid, naming the operator and the column).
struct OverRowsOptions : NodeOptions {
  std::vector<std::string> keys;  ///< empty: the keys of the input's key_by
  std::string order_by;           ///< integer or temporal column
  std::string row_key;            ///< integer column identifying a row in its key
  int64_t preceding = 0;          ///< rows before the current one in the frame
  std::vector<AggregateSpec> aggregates;
  std::string ToString() const override;
};

void RegisterOverAggregate(OperatorRegistry* registry);

}  // namespace sabot
