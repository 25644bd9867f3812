// "json" message format: one JSON object per message, parsed with simdjson
// straight into Arrow builders.
#pragma once

#include <arrow/array.h>
#include <arrow/memory_pool.h>
#include <arrow/result.h>
#include <arrow/type.h>

#include <cstdint>
#include <memory>

#include "sabot/formats/format.h"

namespace sabot {

/// Decodes against `options.schema`, or infers the schema from the first
/// `options.infer_sample_size` messages of the first batch that parse as JSON
/// objects (see docs/formats.md for the rules). NotImplemented for schema
/// types the decoder does not handle.
arrow::Result<std::unique_ptr<Decoder>> MakeJsonDecoder(const FormatOptions& options,
                                                        arrow::MemoryPool* pool);

/// One JSON object per row (the AppendJsonLines value mapping, no newline).
arrow::Result<std::unique_ptr<Encoder>> MakeJsonEncoder(
    const FormatOptions& options, std::shared_ptr<arrow::Schema> schema,
    arrow::MemoryPool* pool);

/// Infers a row schema from up to `max_messages` messages of `messages` that
/// parse as JSON objects: integers -> int64, other numbers -> float64 (a field
/// seen with both -> float64), booleans -> bool, strings -> utf8, objects ->
/// struct, arrays -> list; fields seen only as null (and empty arrays' items)
/// -> utf8; a field seen with incompatible kinds -> utf8 (holding the value's
/// JSON text). Every field is nullable; fields keep the order of first
/// appearance. Returns nullptr when no message is a JSON object.
arrow::Result<std::shared_ptr<arrow::Schema>> InferJsonSchema(
    const arrow::BinaryArray& messages, int64_t max_messages);

}  // namespace sabot
