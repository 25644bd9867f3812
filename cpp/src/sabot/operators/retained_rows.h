// RetainedRows: input rows an operator keeps referring to (the current row of a
// deduplicated key, the members of a top-N set), addressed by a row id.
//
/// Not thread-safe: owned by one operator instance. Batches are kept whole until
/// Compact copies the live rows into one batch, so memory stays within a small
/// factor of the live rows when the owner compacts as LiveRatio suggests.
#pragma once

#include <arrow/array.h>
#include <arrow/builder.h>
#include <arrow/compute/api_vector.h>
#include <arrow/record_batch.h>
#include <arrow/result.h>
#include <arrow/table.h>

#include <memory>
#include <vector>

namespace sabot {

class RetainedRows {
 public:
  /// Keeps `batch`; its row r gets id `returned + r`.
  int64_t Add(std::shared_ptr<arrow::RecordBatch> batch) {
    const int64_t base = num_rows_;
    num_rows_ += batch->num_rows();
    batches_.push_back(std::move(batch));
    return base;
  }

  int64_t num_rows() const { return num_rows_; }

  /// The rows `ids`, in that order, as one batch.
  arrow::Result<std::shared_ptr<arrow::RecordBatch>> Take(const std::vector<int64_t>& ids,
                                                          arrow::MemoryPool* pool) const {
    ARROW_ASSIGN_OR_RAISE(auto table, arrow::Table::FromRecordBatches(batches_));
    arrow::Int64Builder b(pool);
    ARROW_RETURN_NOT_OK(b.AppendValues(ids));
    ARROW_ASSIGN_OR_RAISE(auto indices, b.Finish());
    ARROW_ASSIGN_OR_RAISE(arrow::Datum taken, arrow::compute::Take(table, indices));
    return taken.table()->CombineChunksToBatch(pool);
  }

  /// Keeps only the rows `*live[i]` and renumbers them 0, 1, ... in that order.
  arrow::Status Compact(const std::vector<int64_t*>& live, arrow::MemoryPool* pool) {
    if (batches_.empty()) return arrow::Status::OK();
    std::vector<int64_t> ids;
    ids.reserve(live.size());
    for (const int64_t* id : live) ids.push_back(*id);
    ARROW_ASSIGN_OR_RAISE(auto batch, Take(ids, pool));
    batches_.clear();
    num_rows_ = 0;
    Add(std::move(batch));
    for (size_t i = 0; i < live.size(); ++i) *live[i] = static_cast<int64_t>(i);
    return arrow::Status::OK();
  }

 private:
  std::vector<std::shared_ptr<arrow::RecordBatch>> batches_;
  int64_t num_rows_ = 0;
};

}  // namespace sabot
