// JSON-lines encoding of Arrow record batches (Arrow C++ ships a JSON reader but
// no writer).
#pragma once

#include <arrow/record_batch.h>
#include <arrow/status.h>

#include <string>
#include <string_view>
#include <vector>

namespace sabot {

/// Appends one JSON object per row of `batch` to `*out`, each followed by '\n'.
/// Keys are the field names, in schema order.
///
/// Value mapping:
///  - null -> null; bool -> true/false; integers -> JSON integers
///  - float/double (and half float) -> shortest round-trip decimal that always
///    carries a '.' or an exponent (so a reader infers a floating type); NaN and
///    +-Inf -> null
///  - utf8 / large_utf8 / utf8_view -> JSON string (quote, backslash and control
///    characters escaped, control characters as \u00XX; other bytes pass through)
///  - binary / large_binary / fixed_size_binary / binary_view -> base64 string
///  - timestamp, time32/64, duration -> integer in the type's unit (no zone
///    conversion)
///  - date32 / date64 -> "YYYY-MM-DD"; decimal128/256 -> string, e.g. "-12.340"
///  - struct -> object; list / large_list / fixed_size_list -> array; map ->
///    array of {"key":..,"value":..} objects; dictionary -> its decoded values
///
/// Work is done column-at-a-time: every column is rendered in one typed loop into
/// a contiguous buffer of per-row pieces, then rows are assembled by copying.
/// Returns NotImplemented for other types (e.g. unions). Thread-safe (no shared
/// state). On error `*out` may hold a partial line.
arrow::Status AppendJsonLines(const arrow::RecordBatch& batch, std::string* out);

/// Like AppendJsonLines, but with no newlines: appends one JSON object per row
/// to `*data` and, for each row, the offset in `*data` where the row ends to
/// `*end_offsets` (row i is data[end(i-1), end(i)), with end(-1) the size of
/// `*data` on entry). Used to encode one message per row.
arrow::Status AppendJsonObjects(const arrow::RecordBatch& batch, std::string* data,
                                std::vector<int64_t>* end_offsets);

/// Appends `value` to `*out` as a quoted, escaped JSON string.
void AppendJsonString(std::string_view value, std::string* out);

}  // namespace sabot
