#include "sabot/formats/format.h"

#include <utility>

#include "sabot/formats/avro_format.h"
#include "sabot/formats/csv_format.h"
#include "sabot/formats/ipc_format.h"
#include "sabot/formats/json_format.h"
#include "sabot/formats/raw_format.h"

namespace sabot {

arrow::Result<std::unique_ptr<Decoder>> MakeDecoder(const FormatOptions& options,
                                                    arrow::MemoryPool* pool) {
  if (pool == nullptr) pool = arrow::default_memory_pool();
  const std::string& name = options.name;
  if (name == "json") return MakeJsonDecoder(options, pool);
  if (name == "avro") return MakeAvroDecoder(options, pool);
  if (name == "ipc") return MakeIpcDecoder(options, pool);
  if (name == "csv") return MakeCsvDecoder(options, pool);
  if (name == "raw") return MakeRawDecoder(/*utf8=*/false, pool);
  if (name == "string") return MakeRawDecoder(/*utf8=*/true, pool);
  return arrow::Status::Invalid("unknown message format '", name,
                                "' (expected json, avro, ipc, csv, raw or string)");
}

arrow::Result<std::unique_ptr<Encoder>> MakeEncoder(const FormatOptions& options,
                                                    std::shared_ptr<arrow::Schema> schema,
                                                    arrow::MemoryPool* pool) {
  if (pool == nullptr) pool = arrow::default_memory_pool();
  if (schema == nullptr) return arrow::Status::Invalid("MakeEncoder: schema is null");
  const std::string& name = options.name;
  if (name == "json") return MakeJsonEncoder(options, std::move(schema), pool);
  if (name == "avro") return MakeAvroEncoder(options, std::move(schema), pool);
  if (name == "ipc") return MakeIpcEncoder(options, std::move(schema), pool);
  if (name == "csv") return MakeCsvEncoder(options, std::move(schema), pool);
  if (name == "raw" || name == "string") return MakeRawEncoder(schema);
  return arrow::Status::Invalid("unknown message format '", name,
                                "' (expected json, avro, ipc, csv, raw or string)");
}

}  // namespace sabot
