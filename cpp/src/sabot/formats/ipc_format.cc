#include "sabot/formats/ipc_format.h"

#include <arrow/array.h>
#include <arrow/array/builder_binary.h>
#include <arrow/array/builder_primitive.h>
#include <arrow/array/concatenate.h>
#include <arrow/buffer.h>
#include <arrow/io/memory.h>
#include <arrow/ipc/reader.h>
#include <arrow/ipc/writer.h>
#include <arrow/record_batch.h>

#include <limits>
#include <string>
#include <utility>
#include <vector>

namespace sabot {

namespace {

class IpcDecoder : public Decoder {
 public:
  IpcDecoder(const FormatOptions& options, arrow::MemoryPool* pool)
      : schema_(options.schema), pool_(pool) {
    read_options_.memory_pool = pool;
    read_options_.use_threads = false;
    // Payloads sit at arbitrary offsets of the message array; copy misaligned
    // buffers rather than read them misaligned.
    read_options_.ensure_alignment = arrow::ipc::Alignment::kDataTypeSpecificAlignment;
  }

  std::shared_ptr<arrow::Schema> schema() const override { return schema_; }

  arrow::Result<DecodedBatch> Decode(const arrow::BinaryArray& messages) override {
    std::vector<std::shared_ptr<arrow::RecordBatch>> batches;
    arrow::Int32Builder row_message(pool_);
    DecodedBatch out;
    const auto& data = messages.value_data();
    for (int64_t i = 0; i < messages.length(); ++i) {
      if (messages.IsNull(i)) continue;
      std::shared_ptr<arrow::Buffer> payload;
      if (data != nullptr) {
        payload =
            arrow::SliceBuffer(data, messages.value_offset(i), messages.value_length(i));
      } else {
        payload = std::make_shared<arrow::Buffer>(nullptr, 0);
      }
      const size_t first = batches.size();
      arrow::Status st = ReadMessage(payload, &batches);
      if (!st.ok()) {
        batches.resize(first);
        out.errors.push_back(DecodeError{i, st.message()});
        continue;
      }
      for (size_t b = first; b < batches.size(); ++b) {
        ARROW_RETURN_NOT_OK(row_message.Reserve(batches[b]->num_rows()));
        for (int64_t r = 0; r < batches[b]->num_rows(); ++r) {
          row_message.UnsafeAppend(static_cast<int32_t>(i));
        }
      }
    }
    ARROW_ASSIGN_OR_RAISE(auto rm, row_message.Finish());
    out.row_message = std::static_pointer_cast<arrow::Int32Array>(rm);
    auto schema = schema_ != nullptr ? schema_ : arrow::schema({});
    if (batches.size() == 1) {
      out.rows = batches[0];
    } else if (batches.empty()) {
      ARROW_ASSIGN_OR_RAISE(out.rows, arrow::RecordBatch::MakeEmpty(schema, pool_));
    } else {
      arrow::ArrayVector columns;
      for (int c = 0; c < schema->num_fields(); ++c) {
        arrow::ArrayVector pieces;
        for (const auto& batch : batches) pieces.push_back(batch->column(c));
        ARROW_ASSIGN_OR_RAISE(auto column, arrow::Concatenate(pieces, pool_));
        columns.push_back(std::move(column));
      }
      out.rows =
          arrow::RecordBatch::Make(schema, out.row_message->length(), std::move(columns));
    }
    return out;
  }

 private:
  arrow::Status ReadMessage(const std::shared_ptr<arrow::Buffer>& payload,
                            std::vector<std::shared_ptr<arrow::RecordBatch>>* batches) {
    auto input = std::make_shared<arrow::io::BufferReader>(payload);
    ARROW_ASSIGN_OR_RAISE(
        auto reader, arrow::ipc::RecordBatchStreamReader::Open(input, read_options_));
    const auto& message_schema = reader->schema();
    if (schema_ != nullptr &&
        !message_schema->Equals(*schema_, /*check_metadata=*/false)) {
      return arrow::Status::Invalid("IPC schema ", message_schema->ToString(),
                                    " differs from the expected ", schema_->ToString());
    }
    int64_t rows = 0;
    bool any_batch = false;
    while (true) {
      ARROW_ASSIGN_OR_RAISE(auto batch, reader->Next());
      if (batch == nullptr) break;
      ARROW_RETURN_NOT_OK(batch->ValidateFull());
      any_batch = true;
      rows += batch->num_rows();
      if (rows > std::numeric_limits<int32_t>::max()) {
        return arrow::Status::Invalid("IPC message with more than 2^31 rows");
      }
      if (batch->num_rows() > 0) batches->push_back(std::move(batch));
    }
    if (!any_batch) return arrow::Status::Invalid("IPC stream holds no record batch");
    if (schema_ == nullptr) schema_ = message_schema;
    return arrow::Status::OK();
  }

  std::shared_ptr<arrow::Schema> schema_;
  arrow::MemoryPool* pool_;
  arrow::ipc::IpcReadOptions read_options_ = arrow::ipc::IpcReadOptions::Defaults();
};

class IpcEncoder : public Encoder {
 public:
  IpcEncoder(std::shared_ptr<arrow::Schema> schema, arrow::MemoryPool* pool)
      : schema_(std::move(schema)), pool_(pool) {
    write_options_.memory_pool = pool;
    write_options_.use_threads = false;
  }

  arrow::Result<std::shared_ptr<arrow::BinaryArray>> Encode(
      const arrow::RecordBatch& batch) override {
    ARROW_ASSIGN_OR_RAISE(auto sink, arrow::io::BufferOutputStream::Create(4096, pool_));
    ARROW_ASSIGN_OR_RAISE(
        auto writer, arrow::ipc::MakeStreamWriter(sink, batch.schema(), write_options_));
    ARROW_RETURN_NOT_OK(writer->WriteRecordBatch(batch));
    ARROW_RETURN_NOT_OK(writer->Close());
    ARROW_ASSIGN_OR_RAISE(auto buffer, sink->Finish());
    if (buffer->size() > std::numeric_limits<int32_t>::max()) {
      return arrow::Status::CapacityError(
          "ipc encoder: batch encodes to more than 2 GiB");
    }
    arrow::BinaryBuilder out(pool_);
    ARROW_RETURN_NOT_OK(out.Append(buffer->data(), buffer->size()));
    ARROW_ASSIGN_OR_RAISE(auto array, out.Finish());
    return std::static_pointer_cast<arrow::BinaryArray>(array);
  }

 private:
  std::shared_ptr<arrow::Schema> schema_;
  arrow::MemoryPool* pool_;
  arrow::ipc::IpcWriteOptions write_options_ = arrow::ipc::IpcWriteOptions::Defaults();
};

}  // namespace

arrow::Result<std::unique_ptr<Decoder>> MakeIpcDecoder(const FormatOptions& options,
                                                       arrow::MemoryPool* pool) {
  return std::make_unique<IpcDecoder>(options, pool);
}

arrow::Result<std::unique_ptr<Encoder>> MakeIpcEncoder(
    const FormatOptions& options, std::shared_ptr<arrow::Schema> schema,
    arrow::MemoryPool* pool) {
  return std::make_unique<IpcEncoder>(std::move(schema), pool);
}

}  // namespace sabot
