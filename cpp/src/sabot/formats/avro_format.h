// "avro" message format: Avro binary encoding (specification 1.11), one datum
// per message, optionally behind the Confluent wire header (magic byte 0 +
// 4-byte big-endian schema id).
#pragma once

#include <arrow/memory_pool.h>
#include <arrow/result.h>
#include <arrow/type.h>

#include <memory>
#include <string>
#include <string_view>

#include "sabot/formats/format.h"

namespace sabot {

/// The writer schema is `options.avro_schema_json`, or derived from
/// `options.schema` (AvroSchemaFromArrow). Rows get `options.schema`, or, when
/// it is absent, ArrowSchemaFromAvro of the writer schema. Record fields match
/// by name: writer fields the row schema lacks are skipped, row fields the
/// writer lacks are null (they must be nullable).
arrow::Result<std::unique_ptr<Decoder>> MakeAvroDecoder(const FormatOptions& options,
                                                        arrow::MemoryPool* pool);

/// Writes each row as one datum of the writer schema (`options.avro_schema_json`
/// or AvroSchemaFromArrow(schema)); with `confluent_wire_format` the header
/// carries `confluent_schema_id` (which must then be >= 0).
arrow::Result<std::unique_ptr<Encoder>> MakeAvroEncoder(
    const FormatOptions& options, std::shared_ptr<arrow::Schema> schema,
    arrow::MemoryPool* pool);

/// The Avro schema (JSON text) of a record named `record_name` holding the
/// fields of `schema`: nullable fields become ["null", T] with default null,
/// structs nested records, lists arrays, maps with utf8 keys maps,
/// date32 "date", timestamps timestamp-millis/micros/nanos (local-* without a
/// time zone; seconds as plain long). NotImplemented for other types.
arrow::Result<std::string> AvroSchemaFromArrow(const arrow::Schema& schema,
                                               const std::string& record_name = "row");

/// The Arrow schema rows get for an Avro record schema (see docs/formats.md).
arrow::Result<std::shared_ptr<arrow::Schema>> ArrowSchemaFromAvro(
    std::string_view avro_schema_json);

}  // namespace sabot
