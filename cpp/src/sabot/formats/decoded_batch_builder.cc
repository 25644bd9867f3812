#include "sabot/formats/decoded_batch_builder.h"

#include <arrow/array/builder_base.h>
#include <arrow/builder.h>
#include <arrow/record_batch.h>

#include <limits>
#include <utility>

namespace sabot {

DecodedBatchBuilder::DecodedBatchBuilder(std::shared_ptr<arrow::Schema> schema,
                                         arrow::MemoryPool* pool)
    : schema_(std::move(schema)), row_message_(pool) {}

arrow::Result<std::unique_ptr<DecodedBatchBuilder>> DecodedBatchBuilder::Make(
    std::shared_ptr<arrow::Schema> schema, arrow::MemoryPool* pool) {
  std::unique_ptr<DecodedBatchBuilder> out(new DecodedBatchBuilder(schema, pool));
  for (const auto& field : schema->fields()) {
    ARROW_ASSIGN_OR_RAISE(auto builder, arrow::MakeBuilder(field->type(), pool));
    out->columns_.push_back(std::move(builder));
  }
  return out;
}

arrow::Status DecodedBatchBuilder::AddRows(int64_t message_index, int64_t num_rows) {
  if (message_index > std::numeric_limits<int32_t>::max()) {
    return arrow::Status::CapacityError("more than 2^31 messages in one batch");
  }
  ARROW_RETURN_NOT_OK(row_message_.Reserve(num_rows));
  for (int64_t i = 0; i < num_rows; ++i) {
    row_message_.UnsafeAppend(static_cast<int32_t>(message_index));
  }
  return arrow::Status::OK();
}

void DecodedBatchBuilder::AddError(int64_t message_index, std::string reason) {
  errors_.push_back(DecodeError{message_index, std::move(reason)});
}

arrow::Result<DecodedBatch> DecodedBatchBuilder::Finish() {
  DecodedBatch out;
  arrow::ArrayVector arrays;
  arrays.reserve(columns_.size());
  for (auto& column : columns_) {
    ARROW_ASSIGN_OR_RAISE(auto array, column->Finish());
    arrays.push_back(std::move(array));
  }
  ARROW_ASSIGN_OR_RAISE(auto row_message, row_message_.Finish());
  out.row_message = std::static_pointer_cast<arrow::Int32Array>(row_message);
  out.rows =
      arrow::RecordBatch::Make(schema_, out.row_message->length(), std::move(arrays));
  out.errors = std::move(errors_);
  errors_.clear();
  return out;
}

}  // namespace sabot
