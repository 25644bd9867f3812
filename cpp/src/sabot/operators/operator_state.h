// Building blocks the built-in stateful operators use to hand their columnar
// working state to a checkpoint (state/snapshot.h) and to rebuild it on
// restore: keyed state tables with key columns k0..kn-1, input rows carried as
// one struct column (zero-copy), aggregate states, and a one-row "meta" operator
// state per instance (watermark, input schemas, counters).
//
/// Design: docs/design/operator_state.md. Everything here is used on the
/// operator's task thread only (no locks).
#pragma once

#include <arrow/array.h>
#include <arrow/record_batch.h>
#include <arrow/result.h>
#include <arrow/type.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "sabot/operators/accumulators.h"
#include "sabot/state/snapshot.h"

namespace sabot {

/// Name of key column `i` in a keyed state table ("k0", "k1", ...). Key columns
/// are hashed exactly as key_by hashes them, so names do not matter; fixed names
/// keep them apart from the operator's own columns.
std::string StateKeyColumn(size_t i);
/// "k0", ..., "k{n-1}".
std::vector<std::string> StateKeyColumns(size_t n);

/// Columns of a state batch under construction.
class StateColumns {
 public:
  void Add(std::string name, std::shared_ptr<arrow::Array> column);
  /// Key columns as k0..kn-1.
  void AddKeys(const std::vector<std::shared_ptr<arrow::Array>>& keys);
  /// A constant int64 column.
  arrow::Status AddConstant(std::string name, int64_t value, int64_t length,
                            arrow::MemoryPool* pool);
  /// The accumulators' exported state of `groups`, named "a{i}_{name}".
  arrow::Status AddAccumulators(const std::vector<std::unique_ptr<Accumulator>>& accs,
                                const std::vector<uint32_t>& groups);
  arrow::Result<std::shared_ptr<arrow::RecordBatch>> Finish(int64_t num_rows);

 private:
  arrow::FieldVector fields_;
  arrow::ArrayVector columns_;
};

/// Merges the accumulator state columns of `state` (as AddAccumulators wrote
/// them) into groups `ids` of `accs`.
arrow::Status MergeAccumulators(const arrow::RecordBatch& state,
                                const std::vector<std::unique_ptr<Accumulator>>& accs,
                                const uint32_t* ids, const std::string& operator_name);

/// The key columns k0..kn-1 of a state batch.
arrow::Result<std::vector<std::shared_ptr<arrow::Array>>> StateKeys(
    const arrow::RecordBatch& state, size_t num_keys, const std::string& operator_name);

/// An int64 / boolean column of a state batch, by name.
arrow::Result<std::shared_ptr<arrow::Int64Array>> StateInt64(
    const arrow::RecordBatch& state, const std::string& name,
    const std::string& operator_name);
arrow::Result<std::shared_ptr<arrow::BooleanArray>> StateBool(
    const arrow::RecordBatch& state, const std::string& name,
    const std::string& operator_name);

/// The columns of `rows` as one struct column (zero-copy: shares the buffers).
arrow::Result<std::shared_ptr<arrow::Array>> RowsAsStruct(const arrow::RecordBatch& rows);
/// The inverse of RowsAsStruct (a sliced or taken struct column) as a batch.
arrow::Result<std::shared_ptr<arrow::RecordBatch>> StructAsRows(
    const std::shared_ptr<arrow::Array>& column, const std::string& operator_name);

/// Every batch of keyed table `table` this instance owns, concatenated into one
/// batch; null when there is none.
arrow::Result<std::shared_ptr<arrow::RecordBatch>> ReadKeyedTable(
    SnapshotReader* reader, const std::string& table, arrow::MemoryPool* pool);

/// Operator-wide facts of one operator instance ("meta" operator state): named
/// int64 values and schemas. On restore every old instance's meta is returned.
struct InstanceMeta {
  int instance_index = 0;
  int parallelism = 1;
  std::map<std::string, int64_t> values;
  std::map<std::string, std::shared_ptr<arrow::Schema>> schemas;  ///< null: unknown
};

/// Name of the meta operator-state table.
inline constexpr char kMetaTable[] = "meta";

arrow::Status WriteInstanceMeta(SnapshotWriter* writer, const InstanceMeta& meta);
arrow::Result<std::vector<InstanceMeta>> ReadInstanceMeta(SnapshotReader* reader);

/// Restore helpers over the old instances' metas.
/// The smallest value of `name` (or `fallback` when no old instance had it).
int64_t MinMetaValue(const std::vector<InstanceMeta>& metas, const std::string& name,
                     int64_t fallback);
/// The value of the old instance with the same index when the parallelism is
/// unchanged, else `fallback`.
int64_t SameInstanceValue(const std::vector<InstanceMeta>& metas, int index,
                          int parallelism, const std::string& name, int64_t fallback);
/// The first known schema `name` of any old instance (null if none).
std::shared_ptr<arrow::Schema> MetaSchema(const std::vector<InstanceMeta>& metas,
                                          const std::string& name);

}  // namespace sabot
