// "ipc" message format: each message is one Arrow IPC stream (schema + record
// batches), so one message may carry many rows.
#pragma once

#include <arrow/memory_pool.h>
#include <arrow/result.h>
#include <arrow/type.h>

#include <memory>

#include "sabot/formats/format.h"

namespace sabot {

/// Decodes each message as an IPC stream; every batch is validated
/// (ValidateFull) before its rows are accepted. With `options.schema` set, a
/// message of another schema is a DecodeError; without it, the first message
/// that decodes fixes the schema. The rows of one Decode call are
/// concatenated, except that a call whose rows come from one message returns
/// that message's batch zero-copy (it references the message buffer).
arrow::Result<std::unique_ptr<Decoder>> MakeIpcDecoder(const FormatOptions& options,
                                                       arrow::MemoryPool* pool);

/// Encodes the whole batch as ONE message (an IPC stream with the schema and the
/// batch), i.e. Encode returns a one-element array.
arrow::Result<std::unique_ptr<Encoder>> MakeIpcEncoder(
    const FormatOptions& options, std::shared_ptr<arrow::Schema> schema,
    arrow::MemoryPool* pool);

}  // namespace sabot
