// Scalar values written as text (CSV fields, JSON strings): the parsers the
// message formats share, so "2024-01-02" or "1e3" mean the same in every format.
#pragma once

#include <arrow/type_fwd.h>

#include <cstdint>
#include <string>
#include <string_view>

namespace sabot {

/// Parses a whole decimal integer (optional '-'; no '+', spaces or
/// fraction). Returns false on anything else or overflow.
bool ParseInt64Text(std::string_view text, int64_t* out);
bool ParseUInt64Text(std::string_view text, uint64_t* out);

/// Parses a decimal or exponent floating-point number, "nan", "inf", "-inf".
bool ParseDoubleText(std::string_view text, double* out);

/// Parses "true"/"false" (any case) and "1"/"0".
bool ParseBoolText(std::string_view text, bool* out);

/// Parses "YYYY-MM-DD" (proleptic Gregorian) into days since 1970-01-01.
bool ParseDate32Text(std::string_view text, int32_t* out);

/// Parses an ISO-8601 timestamp ("2024-01-02T03:04:05.123Z", a space instead
/// of 'T', an optional zone offset that is converted to UTC) into `unit` since
/// the epoch. Returns false for other text or a value out of range.
bool ParseTimestampText(std::string_view text, arrow::TimeUnit::type unit, int64_t* out);

/// Decodes standard base64 (with or without '=' padding) into `*out`
/// (replacing its contents). Returns false on a character outside the
/// alphabet or a bad length.
bool DecodeBase64(std::string_view text, std::string* out);

/// Appends days since 1970-01-01 as "YYYY-MM-DD".
void AppendDate32Text(int32_t days, std::string* out);

/// True when `text` is valid UTF-8.
bool IsValidUtf8(std::string_view text);

}  // namespace sabot
