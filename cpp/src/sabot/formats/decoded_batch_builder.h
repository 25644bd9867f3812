// Collects the rows and errors of one Decode call into a DecodedBatch.
#pragma once

#include <arrow/array/builder_base.h>
#include <arrow/array/builder_primitive.h>
#include <arrow/memory_pool.h>
#include <arrow/result.h>
#include <arrow/type.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "sabot/formats/format.h"

namespace sabot {

/// One builder per top-level field of `schema`, the row -> message index column
/// and the error list. A decoder appends a row's values to `column(i)` for every
/// column and then calls `AddRow`; `Finish` hands everything out and resets the
/// builder for the next batch. Not thread-safe.
class DecodedBatchBuilder {
 public:
  static arrow::Result<std::unique_ptr<DecodedBatchBuilder>> Make(
      std::shared_ptr<arrow::Schema> schema, arrow::MemoryPool* pool);

  const std::shared_ptr<arrow::Schema>& schema() const { return schema_; }
  arrow::ArrayBuilder* column(int i) const {
    return columns_[static_cast<size_t>(i)].get();
  }
  int num_columns() const { return static_cast<int>(columns_.size()); }

  /// Records that message `message_index` produced `num_rows` rows (already
  /// appended to every column).
  arrow::Status AddRows(int64_t message_index, int64_t num_rows = 1);
  void AddError(int64_t message_index, std::string reason);

  arrow::Result<DecodedBatch> Finish();

 private:
  DecodedBatchBuilder(std::shared_ptr<arrow::Schema> schema, arrow::MemoryPool* pool);

  std::shared_ptr<arrow::Schema> schema_;
  std::vector<std::unique_ptr<arrow::ArrayBuilder>> columns_;
  arrow::Int32Builder row_message_;
  std::vector<DecodeError> errors_;
};

}  // namespace sabot
