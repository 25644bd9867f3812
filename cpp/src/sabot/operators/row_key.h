// Row keys as bytes: the key columns of every row encoded, column at a time,
// into one contiguous buffer, so keys can be hashed and compared without a
// per-row Arrow call. Used by the lookup join's cache and by materialized views
// (and the upsert sinks built on them).
//
/// Encoding (per key column, in order): a tag byte (0 null, 1 value, 2 an
/// unsigned value above INT64_MAX), then the value. Integers of any width and
/// signedness that hold the same number encode the same, so an int32 column
/// and an int64 column compare equal (a lookup key against a PostgreSQL
/// integer column); floats as canonical doubles (-0.0 == 0.0, one NaN);
/// strings and binaries of any offset width as length + bytes; temporal
/// types as their int64 value in their own unit; decimal128 as 16 bytes.
#pragma once

#include <arrow/array.h>
#include <arrow/result.h>
#include <arrow/status.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace sabot {

/// The encoded keys of a batch: row i is data[offsets[i], offsets[i + 1]).
struct EncodedKeys {
  std::string data;
  std::vector<int64_t> offsets;   ///< num_rows + 1 entries
  std::vector<uint8_t> has_null;  ///< 1 where any key column of the row is null

  int64_t num_rows() const { return offsets.empty() ? 0 : offsets.size() - 1; }
  std::string_view key(int64_t i) const {
    return std::string_view(data).substr(offsets[i], offsets[i + 1] - offsets[i]);
  }
};

/// OK when columns of `type` can be key columns; NotImplemented naming `what`
/// (e.g. "view 'counts' key column 'user'") otherwise.
arrow::Status CheckRowKeyType(const arrow::DataType& type, const std::string& what);

/// Encodes the rows of `columns` (all of one length). `what` names the caller
/// for errors.
arrow::Status EncodeRowKeys(const std::vector<std::shared_ptr<arrow::Array>>& columns,
                            EncodedKeys* out, const std::string& what = "key");

/// Hash and equality for unordered containers keyed by std::string that are
/// probed with std::string_view (no allocation per probe).
struct RowKeyHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

template <typename V>
using RowKeyMap = std::unordered_map<std::string, V, RowKeyHash, std::equal_to<>>;

}  // namespace sabot
