// Shared by the libFuzzer targets of the message decoders: how one fuzz input
// becomes a batch of messages, the row schemas, and the invariants every
// decode must keep. Built only by scripts/fuzz.sh.
#pragma once

#include <arrow/api.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "sabot/formats/format.h"

namespace sabot::fuzz {

/// Messages within one fuzz input are separated by this byte sequence.
inline constexpr std::string_view kSeparator = "\n\xff\xfe\n";

inline std::shared_ptr<arrow::BinaryArray> SplitMessages(const uint8_t* data,
                                                         size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  arrow::BinaryBuilder builder;
  while (true) {
    const size_t end = input.find(kSeparator);
    if (!builder.Append(input.substr(0, end)).ok()) std::abort();
    if (end == std::string_view::npos) break;
    input.remove_prefix(end + kSeparator.size());
  }
  return std::static_pointer_cast<arrow::BinaryArray>(builder.Finish().ValueOrDie());
}

inline std::string JoinMessages(const std::vector<std::string>& messages) {
  std::string out;
  for (size_t i = 0; i < messages.size(); ++i) {
    if (i > 0) out.append(kSeparator);
    out.append(messages[i]);
  }
  return out;
}

/// A row schema with every kind of column the decoders handle.
inline std::shared_ptr<arrow::Schema> RichSchema() {
  auto point = arrow::struct_(
      {arrow::field("x", arrow::int64()), arrow::field("label", arrow::utf8())});
  return arrow::schema({
      arrow::field("id", arrow::int64(), false),
      arrow::field("small", arrow::int32()),
      arrow::field("score", arrow::float64()),
      arrow::field("ok", arrow::boolean()),
      arrow::field("name", arrow::utf8()),
      arrow::field("blob", arrow::binary()),
      arrow::field("day", arrow::date32()),
      arrow::field("ts", arrow::timestamp(arrow::TimeUnit::MILLI)),
      arrow::field("point", point),
      arrow::field("tags", arrow::list(arrow::int64())),
      arrow::field("attrs", arrow::map(arrow::utf8(), arrow::int64())),
  });
}

/// Flat columns (csv).
inline std::shared_ptr<arrow::Schema> FlatSchema() {
  return arrow::schema({
      arrow::field("id", arrow::int64()),
      arrow::field("small", arrow::int16()),
      arrow::field("score", arrow::float64()),
      arrow::field("ok", arrow::boolean()),
      arrow::field("name", arrow::utf8()),
      arrow::field("day", arrow::date32()),
      arrow::field("ts", arrow::timestamp(arrow::TimeUnit::MICRO)),
  });
}

[[noreturn]] inline void Violation(const char* what) {
  std::fprintf(stderr, "decoder invariant violated: %s\n", what);
  std::abort();
}

/// Decodes `messages` and aborts (a fuzzer crash) unless the result is a
/// valid batch in which every message is a row, an error, or (ipc only) a
/// message of zero rows.
inline void DecodeAndCheck(Decoder* decoder, const arrow::BinaryArray& messages) {
  auto decoded = decoder->Decode(messages);
  if (!decoded.ok()) Violation(decoded.status().ToString().c_str());
  if (!decoded->rows->ValidateFull().ok()) Violation("rows fail ValidateFull");
  if (decoded->row_message->length() != decoded->rows->num_rows()) {
    Violation("row_message length");
  }
  std::vector<int> seen(static_cast<size_t>(messages.length()), 0);
  int32_t previous = -1;
  for (int64_t i = 0; i < decoded->row_message->length(); ++i) {
    const int32_t m = decoded->row_message->Value(i);
    if (m < previous || m >= messages.length()) Violation("row_message order");
    previous = m;
    seen[static_cast<size_t>(m)] = 1;
  }
  for (const auto& error : decoded->errors) {
    if (error.message_index < 0 || error.message_index >= messages.length() ||
        seen[static_cast<size_t>(error.message_index)] != 0 || error.reason.empty()) {
      Violation("error index");
    }
    seen[static_cast<size_t>(error.message_index)] = 2;
  }
}

}  // namespace sabot::fuzz
