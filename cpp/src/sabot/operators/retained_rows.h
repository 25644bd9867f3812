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

#include <algorithm>
#include <memory>
#include <vector>

#include "sabot/operators/row_gather.h"

namespace sabot {

class RetainedRows {
 public:
  /// Keeps `batch`; its row r gets id `returned + r`.
  int64_t Add(std::shared_ptr<arrow::RecordBatch> batch) {
    const int64_t base = num_rows_;
    num_rows_ += batch->num_rows();
    starts_.push_back(base);
    batches_.push_back(std::move(batch));
    return base;
  }

  int64_t num_rows() const { return num_rows_; }

  /// The rows `ids`, in that order, as one batch. Copies only those rows (the
  /// retained batches are not concatenated): linear in ids.size() plus the
  /// number of distinct batches referenced.
  arrow::Result<std::shared_ptr<arrow::RecordBatch>> Take(const std::vector<int64_t>& ids,
                                                          arrow::MemoryPool* pool) const {
    if (batches_.empty()) {
      return arrow::Status::Invalid("RetainedRows::Take: no rows retained");
    }
    RowRefs refs;
    refs.source.resize(ids.size());
    refs.row.resize(ids.size());
    std::vector<int32_t> slot(batches_.size(), -1);
    for (size_t i = 0; i < ids.size(); ++i) {
      const int64_t id = ids[i];
      if (id < 0 || id >= num_rows_) {
        return arrow::Status::IndexError("RetainedRows::Take: row ", id, " of ",
                                         num_rows_);
      }
      const auto b = static_cast<size_t>(
          std::upper_bound(starts_.begin(), starts_.end(), id) - starts_.begin() - 1);
      if (slot[b] < 0) {
        slot[b] = static_cast<int32_t>(refs.batches.size());
        refs.batches.push_back(batches_[b].get());
      }
      refs.source[i] = slot[b];
      refs.row[i] = id - starts_[b];
    }
    const auto& schema = batches_.front()->schema();
    ARROW_ASSIGN_OR_RAISE(auto columns, GatherColumns(refs, *schema, pool));
    return arrow::RecordBatch::Make(schema, static_cast<int64_t>(ids.size()),
                                    std::move(columns));
  }

  /// Keeps only the rows `*live[i]` and renumbers them 0, 1, ... in that order.
  arrow::Status Compact(const std::vector<int64_t*>& live, arrow::MemoryPool* pool) {
    if (batches_.empty()) return arrow::Status::OK();
    std::vector<int64_t> ids;
    ids.reserve(live.size());
    for (const int64_t* id : live) ids.push_back(*id);
    ARROW_ASSIGN_OR_RAISE(auto batch, Take(ids, pool));
    batches_.clear();
    starts_.clear();
    num_rows_ = 0;
    Add(std::move(batch));
    for (size_t i = 0; i < live.size(); ++i) *live[i] = static_cast<int64_t>(i);
    return arrow::Status::OK();
  }

 private:
  std::vector<std::shared_ptr<arrow::RecordBatch>> batches_;
  std::vector<int64_t> starts_;  // id of each batch's first row
  int64_t num_rows_ = 0;
};

}  // namespace sabot
