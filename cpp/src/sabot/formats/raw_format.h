// "raw" and "string" message formats: the payload itself is the row, in a single
// `value` column (binary for "raw", utf8 for "string").
#pragma once

#include <arrow/memory_pool.h>
#include <arrow/result.h>
#include <arrow/type.h>

#include <memory>

#include "sabot/formats/format.h"

namespace sabot {

/// `utf8`: false -> "raw" (binary `value`), true -> "string" (utf8 `value`;
/// invalid UTF-8 is a DecodeError). Zero-copy when `messages` has no nulls and,
/// for "string", every payload is valid UTF-8.
std::unique_ptr<Decoder> MakeRawDecoder(bool utf8, arrow::MemoryPool* pool);

/// Encodes the column named `value` (or the only column) of binary/utf8 type as
/// the payload, zero-copy; a null value gives a null payload (a tombstone).
arrow::Result<std::unique_ptr<Encoder>> MakeRawEncoder(
    const std::shared_ptr<arrow::Schema>& schema);

}  // namespace sabot
