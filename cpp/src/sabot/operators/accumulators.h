// Vectorized, mergeable aggregate states ("accumulators") over group ids: the
// building block of window and group-by aggregation.
#pragma once

#include <arrow/array.h>
#include <arrow/result.h>
#include <arrow/type.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace sabot {

/// A Python or C++ aggregate over Arrow arrays: gets each group's values as one
/// element of a ListArray and returns one result per element.
using UdafFunction = std::function<arrow::Result<std::shared_ptr<arrow::Array>>(
    const std::shared_ptr<arrow::ListArray>&)>;

/// One aggregate of a window or group-by.
///
/// Functions: count (rows; with a column, its non-null values), count_distinct
/// (exact), sum, min, max, mean, first, last (arrival order), var_samp, var_pop,
/// stddev_samp, stddev_pop, collect_list, udaf (with `udaf`).
struct AggregateSpec {
  std::string function;
  std::string column;  ///< empty for count(*)
  std::string output;  ///< output column name
  UdafFunction udaf;
  std::string ToString() const { return function + "(" + column + ") AS " + output; }
};

/// Aggregate state for a growing set of groups 0..n-1. Every operation is a
/// vectorized loop over a batch's rows or over groups; no per-row virtual call.
/// Not thread-safe (owned by one operator instance).
class Accumulator {
 public:
  virtual ~Accumulator() = default;
  /// Grows to `num_groups` groups; new groups are empty.
  virtual void Resize(int64_t num_groups) = 0;
  int64_t num_groups() const { return num_groups_; }
  /// Adds values[i] to group group_ids[i]; `values` is null for count(*).
  virtual arrow::Status Consume(const std::shared_ptr<arrow::Array>& values,
                                const uint32_t* group_ids, int64_t length) = 0;
  /// Adds group g of `other` (same kind) into group mapping[g] of this.
  virtual arrow::Status MergeFrom(const Accumulator& other, const uint32_t* mapping) = 0;
  /// Adds group `src` into group `dst` and leaves `src` unchanged.
  virtual void MergeGroup(uint32_t dst, uint32_t src) = 0;
  /// Empties one group (for reuse of its slot).
  virtual void ResetGroup(uint32_t group) = 0;
  /// The results of `groups`, in that order.
  virtual arrow::Result<std::shared_ptr<arrow::Array>> Finalize(
      const std::vector<uint32_t>& groups) = 0;
  /// A new, empty accumulator of the same kind and input type.
  virtual std::unique_ptr<Accumulator> MakeEmpty() const = 0;

  /// Checkpointing: the intermediate state of `groups` (not the final result),
  /// one row per group in that order, as num_state_columns() columns appended to
  /// `columns`; `names` gets a short name per column ("count", "mean", ...).
  /// One pass over the groups, no per-row virtual call.
  virtual arrow::Status ExportState(const std::vector<uint32_t>& groups,
                                    std::vector<std::string>* names,
                                    arrow::ArrayVector* columns) {
    return arrow::Status::NotImplemented("this aggregate cannot be checkpointed");
  }
  /// Number of columns ExportState appends.
  virtual int num_state_columns() const { return 0; }
  /// Restore: merges exported state row i (of `columns`, exactly the columns of
  /// one ExportState) into group ids[i], as MergeFrom would; the groups must
  /// exist (Resize first). Merging into empty groups restores them exactly.
  virtual arrow::Status MergeState(const arrow::ArrayVector& columns, const uint32_t* ids,
                                   int64_t length) {
    return arrow::Status::NotImplemented("this aggregate cannot be restored");
  }

 protected:
  int64_t num_groups_ = 0;
};

/// Checks `spec` against the input type; errors name the aggregate and column.
arrow::Result<std::unique_ptr<Accumulator>> MakeAccumulator(
    const AggregateSpec& spec, const std::shared_ptr<arrow::DataType>& input_type,
    arrow::MemoryPool* pool);

/// Resolves the input column of each aggregate (-1 for count(*)).
arrow::Result<std::vector<int>> ResolveAggregateColumns(
    const arrow::Schema& schema, const std::vector<AggregateSpec>& aggregates,
    const std::string& operator_name);

}  // namespace sabot
