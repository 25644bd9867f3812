#include "sabot/formats/raw_format.h"

#include <arrow/array.h>
#include <arrow/array/builder_binary.h>
#include <arrow/builder.h>
#include <arrow/record_batch.h>

#include <string>
#include <utility>

#include "sabot/formats/decoded_batch_builder.h"
#include "sabot/formats/value_text.h"

namespace sabot {

namespace {

class RawDecoder : public Decoder {
 public:
  RawDecoder(bool utf8, arrow::MemoryPool* pool)
      : utf8_(utf8),
        schema_(arrow::schema(
            {arrow::field("value", utf8 ? arrow::utf8() : arrow::binary(), false)})),
        pool_(pool) {}

  std::shared_ptr<arrow::Schema> schema() const override { return schema_; }

  arrow::Result<DecodedBatch> Decode(const arrow::BinaryArray& messages) override {
    const int64_t n = messages.length();
    std::vector<int64_t> bad;
    if (utf8_) {
      for (int64_t i = 0; i < n; ++i) {
        if (messages.IsValid(i) && !IsValidUtf8(messages.GetView(i))) bad.push_back(i);
      }
    }
    DecodedBatch out;
    for (int64_t i : bad) {
      out.errors.push_back(DecodeError{i, "invalid UTF-8 in field 'value'"});
    }
    if (messages.null_count() == 0 && bad.empty()) {
      // Same layout as the input: share its buffers.
      auto data = messages.data()->Copy();
      data->type = schema_->field(0)->type();
      arrow::Int32Builder row_message(pool_);
      ARROW_RETURN_NOT_OK(row_message.Reserve(n));
      for (int64_t i = 0; i < n; ++i) row_message.UnsafeAppend(static_cast<int32_t>(i));
      ARROW_ASSIGN_OR_RAISE(auto rm, row_message.Finish());
      out.row_message = std::static_pointer_cast<arrow::Int32Array>(rm);
      out.rows = arrow::RecordBatch::Make(schema_, n, {arrow::MakeArray(data)});
      return out;
    }
    ARROW_ASSIGN_OR_RAISE(auto builder, DecodedBatchBuilder::Make(schema_, pool_));
    auto* values =
        static_cast<arrow::BaseBinaryBuilder<arrow::BinaryType>*>(builder->column(0));
    size_t next_bad = 0;
    for (int64_t i = 0; i < n; ++i) {
      if (messages.IsNull(i)) continue;
      if (next_bad < bad.size() && bad[next_bad] == i) {
        ++next_bad;
        continue;
      }
      ARROW_RETURN_NOT_OK(values->Append(messages.GetView(i)));
      ARROW_RETURN_NOT_OK(builder->AddRows(i));
    }
    ARROW_ASSIGN_OR_RAISE(auto decoded, builder->Finish());
    decoded.errors = std::move(out.errors);
    return decoded;
  }

 private:
  bool utf8_;
  std::shared_ptr<arrow::Schema> schema_;
  arrow::MemoryPool* pool_;
};

class RawEncoder : public Encoder {
 public:
  explicit RawEncoder(int column) : column_(column) {}

  arrow::Result<std::shared_ptr<arrow::BinaryArray>> Encode(
      const arrow::RecordBatch& batch) override {
    if (column_ >= batch.num_columns()) {
      return arrow::Status::Invalid("raw encoder: batch has no column ", column_);
    }
    auto data = batch.column_data(column_)->Copy();
    if (data->type->id() != arrow::Type::BINARY &&
        data->type->id() != arrow::Type::STRING) {
      return arrow::Status::TypeError("raw encoder: column type ", data->type->ToString(),
                                      " is not binary/utf8");
    }
    data->type = arrow::binary();
    return std::static_pointer_cast<arrow::BinaryArray>(arrow::MakeArray(data));
  }

 private:
  int column_;
};

}  // namespace

std::unique_ptr<Decoder> MakeRawDecoder(bool utf8, arrow::MemoryPool* pool) {
  return std::make_unique<RawDecoder>(utf8, pool);
}

arrow::Result<std::unique_ptr<Encoder>> MakeRawEncoder(
    const std::shared_ptr<arrow::Schema>& schema) {
  int column = schema->GetFieldIndex("value");
  if (column < 0 && schema->num_fields() == 1) column = 0;
  if (column < 0) {
    return arrow::Status::Invalid(
        "raw/string encoder needs a column named 'value' or exactly one column, got ",
        schema->ToString());
  }
  const auto id = schema->field(column)->type()->id();
  if (id != arrow::Type::BINARY && id != arrow::Type::STRING) {
    return arrow::Status::TypeError(
        "raw/string encoder: column '", schema->field(column)->name(), "' has type ",
        schema->field(column)->type()->ToString(), ", expected binary or utf8");
  }
  return std::make_unique<RawEncoder>(column);
}

}  // namespace sabot
