// Message formats: decode message payloads (Kafka values, lines) into Arrow rows
// and encode Arrow rows into message payloads. Used by the Kafka connector and
// any other message-oriented connector.
#pragma once

#include <arrow/array.h>
#include <arrow/record_batch.h>
#include <arrow/result.h>
#include <arrow/type.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace sabot {

/// Which format and how to configure it.
struct FormatOptions {
  /// "json" | "avro" | "ipc" | "csv" | "raw" (binary column `value`) |
  /// "string" (utf8 column `value`).
  std::string name = "json";
  /// Decoding: the row schema. Required for "avro" and "csv" (column order);
  /// optional for "json" (inferred from the first `infer_sample_size` messages
  /// when absent); ignored for "raw"/"string"; for "ipc", checked if given.
  std::shared_ptr<arrow::Schema> schema;
  int64_t infer_sample_size = 1000;
  /// Avro: the writer schema as Avro JSON. When empty it is derived from
  /// `schema` (records of primitive/nullable/nested fields).
  std::string avro_schema_json;
  /// Avro: payloads carry the Confluent wire header (magic byte 0 + 4-byte
  /// big-endian schema id). Decoding checks the magic byte and, when
  /// `confluent_schema_id >= 0`, the id; encoding writes them.
  bool confluent_wire_format = false;
  int32_t confluent_schema_id = -1;
  /// CSV: field delimiter; messages hold one record each (no header).
  char csv_delimiter = ',';
};

/// One message that could not be decoded. Nothing is dropped silently: the
/// connector routes it by its bad-record policy (fail, skip+count, dead-letter).
struct DecodeError {
  int64_t message_index = 0;  ///< index into the input messages
  std::string reason;         ///< what is wrong, with the field/byte offset when known
};

/// The result of decoding a batch of messages.
struct DecodedBatch {
  std::shared_ptr<arrow::RecordBatch> rows;  ///< rows of the messages that decoded
  /// Message index of each row (one row per message for json/avro/csv/raw/string;
  /// an IPC message may hold many rows). Lets the caller attach key, partition,
  /// offset and timestamp columns with one Take.
  std::shared_ptr<arrow::Int32Array> row_message;
  std::vector<DecodeError> errors;  ///< messages that failed, in input order
};

/// Decodes message payloads. Not thread-safe: one instance per operator
/// instance. Must never crash or hang on any input bytes (fuzzed).
class Decoder {
 public:
  virtual ~Decoder() = default;
  /// The schema of decoded rows (known after the first Decode when inferred).
  virtual std::shared_ptr<arrow::Schema> schema() const = 0;
  /// Decodes every non-null value of `messages` (a binary array, one payload per
  /// element). A malformed message goes to `errors`; the others still decode.
  /// A non-OK Status is for failures that are not about one message (e.g.
  /// out of memory).
  virtual arrow::Result<DecodedBatch> Decode(const arrow::BinaryArray& messages) = 0;
};

/// Encodes rows into message payloads, one per row ("ipc": one per batch).
class Encoder {
 public:
  virtual ~Encoder() = default;
  virtual arrow::Result<std::shared_ptr<arrow::BinaryArray>> Encode(
      const arrow::RecordBatch& batch) = 0;
};

arrow::Result<std::unique_ptr<Decoder>> MakeDecoder(const FormatOptions& options,
                                                    arrow::MemoryPool* pool);
/// `schema`: the schema of the batches the encoder will receive.
arrow::Result<std::unique_ptr<Encoder>> MakeEncoder(const FormatOptions& options,
                                                    std::shared_ptr<arrow::Schema> schema,
                                                    arrow::MemoryPool* pool);

}  // namespace sabot
