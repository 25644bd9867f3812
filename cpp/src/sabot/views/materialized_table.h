// The latest row per key of a changelog stream (docs/design/changelog.md):
// what a materialized view serves and what the file upsert sink writes.
//
// Rows are not copied: the table keeps the input batches (without `_op`) and,
// per key, where its current row is. When most kept rows are dead (replaced or
// deleted) the live ones are compacted into one batch. Applying a batch, a
// point lookup and a scan are column-at-a-time Arrow work plus one hash probe
// per row.
//
/// Threading contract: not thread-safe; MaterializedView (view.h) guards one
/// with a reader/writer lock.
#pragma once

#include <arrow/record_batch.h>
#include <arrow/result.h>
#include <arrow/table.h>

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "sabot/operators/row_key.h"

namespace sabot {

class MaterializedTable {
 public:
  /// `what` names the owner in errors (e.g. "view 'counts'").
  MaterializedTable(std::vector<std::string> key_columns, std::string what,
                    arrow::MemoryPool* pool = arrow::default_memory_pool());

  /// Applies one batch in row order. With an `_op` column: +I and +U insert or
  /// replace the row of their key, -U and -D delete it (a -U is always followed
  /// by the +U of its update, so the pair is an upsert); without one, every
  /// row is an upsert. `owner` tags the rows (the writing instance) for Scan.
  arrow::Status Apply(const std::shared_ptr<arrow::RecordBatch>& batch, int owner = 0);

  /// The row of the key given as one value per key column (arrays of length
  /// 1, cast to the key column types when they differ), or null.
  arrow::Result<std::shared_ptr<arrow::RecordBatch>> Get(
      const std::vector<std::shared_ptr<arrow::Array>>& key) const;

  /// Every row (owner < 0) or the rows written by `owner`, in no particular
  /// order. An empty table (schema() or `empty_schema`) before any data.
  arrow::Result<std::shared_ptr<arrow::Table>> Scan(int owner = -1) const;

  /// Removes every row.
  void Clear();

  int64_t num_rows() const { return static_cast<int64_t>(rows_.size()); }
  /// The row schema (input without `_op`); null before the first batch.
  const std::shared_ptr<arrow::Schema>& schema() const { return schema_; }
  const std::vector<std::string>& key_columns() const { return key_columns_; }
  /// Types of the key columns (empty before the first batch).
  const std::vector<std::shared_ptr<arrow::DataType>>& key_types() const {
    return key_types_;
  }

 private:
  struct Location {
    uint64_t batch_id;
    int32_t row;
    int32_t owner;
  };
  struct Stored {
    std::shared_ptr<arrow::RecordBatch> batch;
    int64_t live = 0;
  };

  arrow::Status Init(const arrow::Schema& schema);
  void Release(const Location& loc);
  arrow::Status MaybeCompact();
  /// Takes the rows at `locations` into one batch.
  arrow::Result<std::shared_ptr<arrow::RecordBatch>> Gather(
      const std::vector<Location>& locations) const;

  std::vector<std::string> key_columns_;
  std::string what_;
  arrow::MemoryPool* pool_;
  std::shared_ptr<arrow::Schema> schema_;
  std::shared_ptr<arrow::Schema> input_schema_;  // with _op when the input has it
  std::vector<int> value_columns_;               // input columns kept (all but _op)
  std::vector<int> key_indices_;                 // in the row schema
  int op_index_ = -1;
  std::vector<std::shared_ptr<arrow::DataType>> key_types_;
  RowKeyMap<Location> rows_;
  std::unordered_map<uint64_t, Stored> batches_;
  uint64_t next_batch_id_ = 0;
  int64_t stored_rows_ = 0;  // rows of all kept batches, live or dead
};

}  // namespace sabot
