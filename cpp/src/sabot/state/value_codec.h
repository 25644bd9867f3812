// Byte serialization of state values.
//
// Two layers:
// - StateSerde<T>: one C++ value <-> bytes (int64_t, int32_t, double, bool,
//   std::string built in; any type with the same two static functions works as
//   a user serde). Used by the typed handles of state/keyed_state.h.
// - ArrowValueCodec: values of an Arrow type <-> bytes, a column at a time
//   (the type is dispatched once per column, never per value). Used for Arrow
//   rows (deduplicate keeps whole rows; RowCodec) and for the Python state API,
//   whose values are pyarrow arrays.
//
// Arrow value encoding: NA types take no bytes; every other value starts with a
// validity byte (0 null, 1 valid) followed, when valid, by: fixed-width types
// (integers, floats, temporal, decimal, fixed_size_binary, intervals) their
// little-endian bytes; booleans one byte; binary/string (and large) a 4-byte
// length and the bytes; list/large_list/map a 4-byte count and the child
// values; fixed_size_list its child values; struct its child values. Child
// values of nested types are laid out child by child (column-major within one
// value), which is what lets encoding and decoding run column at a time.
#pragma once

#include <arrow/array.h>
#include <arrow/record_batch.h>
#include <arrow/result.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sabot {

// --- C++ values ----------------------------------------------------------------

template <typename T>
struct StateSerde;

template <typename T>
struct FixedStateSerde {
  static void Encode(const T& value, std::string* out) {
    out->append(reinterpret_cast<const char*>(&value), sizeof(T));
  }
  static arrow::Result<T> Decode(std::string_view bytes) {
    if (bytes.size() != sizeof(T)) {
      return arrow::Status::Invalid("corrupt state value: ", bytes.size(),
                                    " bytes where ", sizeof(T), " were expected");
    }
    T value;
    std::memcpy(&value, bytes.data(), sizeof(T));
    return value;
  }
};

template <>
struct StateSerde<int64_t> : FixedStateSerde<int64_t> {};
template <>
struct StateSerde<int32_t> : FixedStateSerde<int32_t> {};
template <>
struct StateSerde<uint64_t> : FixedStateSerde<uint64_t> {};
template <>
struct StateSerde<double> : FixedStateSerde<double> {};
template <>
struct StateSerde<bool> {
  static void Encode(bool value, std::string* out) { out->push_back(value ? 1 : 0); }
  static arrow::Result<bool> Decode(std::string_view bytes) {
    if (bytes.size() != 1) return arrow::Status::Invalid("corrupt boolean state value");
    return bytes[0] != 0;
  }
};
template <>
struct StateSerde<std::string> {
  static void Encode(const std::string& value, std::string* out) { out->append(value); }
  static arrow::Result<std::string> Decode(std::string_view bytes) {
    return std::string(bytes);
  }
};

// --- Arrow values --------------------------------------------------------------

/// Encodes and decodes values of one Arrow type, column at a time.
/// Stateless after Make; safe to share between threads.
class ArrowValueCodec {
 public:
  /// Fails with NotImplemented (naming `what` and the type) for types without an
  /// encoding (dictionary, extension, view and union types).
  static arrow::Result<ArrowValueCodec> Make(std::shared_ptr<arrow::DataType> type,
                                             const std::string& what);

  const std::shared_ptr<arrow::DataType>& type() const { return type_; }

  /// Appends the encoding of `array[rows[j]]` to `*outs[j]` for every j.
  arrow::Status Encode(const arrow::Array& array, const std::vector<int64_t>& rows,
                       const std::vector<std::string*>& outs) const;
  /// Decodes one value from each of `values` (nullopt: absent, decoded as null)
  /// into an array of length values.size().
  arrow::Result<std::shared_ptr<arrow::Array>> Decode(
      const std::vector<std::optional<std::string_view>>& values,
      arrow::MemoryPool* pool) const;

 private:
  explicit ArrowValueCodec(std::shared_ptr<arrow::DataType> type)
      : type_(std::move(type)) {}
  std::shared_ptr<arrow::DataType> type_;
};

/// Whole rows of a schema as one value (a struct of the columns).
class RowCodec {
 public:
  static arrow::Result<RowCodec> Make(std::shared_ptr<arrow::Schema> schema,
                                      const std::string& what);
  const std::shared_ptr<arrow::Schema>& schema() const { return schema_; }
  /// Appends the encoding of row rows[j] of `batch` to *outs[j].
  arrow::Status Encode(const arrow::RecordBatch& batch, const std::vector<int64_t>& rows,
                       const std::vector<std::string*>& outs) const;
  /// One row per value (every value present).
  arrow::Result<std::shared_ptr<arrow::RecordBatch>> Decode(
      const std::vector<std::string_view>& values, arrow::MemoryPool* pool) const;

 private:
  RowCodec(std::shared_ptr<arrow::Schema> schema, ArrowValueCodec codec)
      : schema_(std::move(schema)), codec_(std::move(codec)) {}
  std::shared_ptr<arrow::Schema> schema_;
  ArrowValueCodec codec_;
};

}  // namespace sabot
