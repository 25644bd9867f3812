// Gathering rows scattered over several record batches (retained operator
// state) into new columns, in a given order, without concatenating the
// batches first. Used by the regular join and by RetainedRows.
#pragma once

#include <arrow/array.h>
#include <arrow/record_batch.h>
#include <arrow/result.h>

#include <cstdint>
#include <memory>
#include <vector>

namespace sabot {

/// The rows to gather: for output row i, `source[i]` indexes `batches` (-1: a
/// null row) and `row[i]` is the row within that batch. `batches` should hold
/// only the batches referenced (the work per column is linear in its size).
struct RowRefs {
  std::vector<const arrow::RecordBatch*> batches;
  std::vector<int32_t> source;
  std::vector<int64_t> row;
};

/// Column `column` (of type `type`) of the referenced rows. Typed copies for
/// fixed-width, boolean and (large) string/binary columns; other types are
/// appended slice by slice through a builder.
arrow::Result<std::shared_ptr<arrow::Array>> GatherColumn(
    const RowRefs& refs, int column, const std::shared_ptr<arrow::DataType>& type,
    arrow::MemoryPool* pool);

/// Every column of `schema` for the referenced rows.
arrow::Result<std::vector<std::shared_ptr<arrow::Array>>> GatherColumns(
    const RowRefs& refs, const arrow::Schema& schema, arrow::MemoryPool* pool);

}  // namespace sabot
