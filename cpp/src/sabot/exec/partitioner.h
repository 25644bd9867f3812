// Vectorized key hashing and key-group routing, shared by key_by and (later)
// keyed state.
#pragma once

#include <arrow/record_batch.h>
#include <arrow/result.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace sabot {

/// One 64-bit hash per row over the given key columns, computed column at a
/// time. Equal keys hash equally regardless of batch boundaries or chunking.
/// Supported key types: integers, dates, timestamps, durations, booleans,
/// floating point (by value, -0.0 == 0.0), utf8/binary (and large variants).
arrow::Status HashColumns(const arrow::RecordBatch& batch,
                          const std::vector<int>& key_indices,
                          std::vector<uint64_t>* hashes);

/// Key group of a hash (stable across parallelism changes).
inline int KeyGroupOf(uint64_t hash, int max_parallelism) {
  return static_cast<int>(hash % static_cast<uint64_t>(max_parallelism));
}

/// The operator instance that owns a key group (contiguous ranges, as Flink).
inline int InstanceOfKeyGroup(int key_group, int max_parallelism, int parallelism) {
  return static_cast<int>(static_cast<int64_t>(key_group) * parallelism /
                          max_parallelism);
}

/// Resolves key column names against a schema; errors name the missing column.
arrow::Result<std::vector<int>> ResolveKeyColumns(const arrow::Schema& schema,
                                                  const std::vector<std::string>& keys,
                                                  const std::string& operator_name);

/// Splits `batch` into `parts` batches: row i goes to part target[i] (in
/// [0, parts)), rows keeping their order within a part; one pass per column for
/// fixed-width, boolean and string/binary columns, arrow's Take for others.
/// out[p] is null when no row goes to part p.
arrow::Status SplitByTarget(const std::shared_ptr<arrow::RecordBatch>& batch,
                            const int32_t* target, int parts, arrow::MemoryPool* pool,
                            std::vector<std::shared_ptr<arrow::RecordBatch>>* out);

/// Splits `batch` into `parallelism` batches by key group of the key columns.
/// out[i] is null when no row goes to instance i.
arrow::Status PartitionByKey(const std::shared_ptr<arrow::RecordBatch>& batch,
                             const std::vector<int>& key_indices, int parallelism,
                             int max_parallelism, arrow::MemoryPool* pool,
                             std::vector<std::shared_ptr<arrow::RecordBatch>>* out);

}  // namespace sabot
