// "csv" message format: one delimited record per message, no header, columns in
// schema order, quoting per RFC 4180.
#pragma once

#include <arrow/memory_pool.h>
#include <arrow/result.h>
#include <arrow/type.h>

#include <memory>

#include "sabot/formats/format.h"

namespace sabot {

/// Needs `options.schema` of flat columns: bool, (u)int8-64, float32/64,
/// utf8/large_utf8, binary/large_binary, date32, timestamp.
arrow::Result<std::unique_ptr<Decoder>> MakeCsvDecoder(const FormatOptions& options,
                                                       arrow::MemoryPool* pool);

/// One record per row, no trailing newline; the same column types as the
/// decoder.
arrow::Result<std::unique_ptr<Encoder>> MakeCsvEncoder(
    const FormatOptions& options, std::shared_ptr<arrow::Schema> schema,
    arrow::MemoryPool* pool);

}  // namespace sabot
