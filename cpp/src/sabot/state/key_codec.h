// Key encoding of keyed state: the key columns of a batch become, once per
// batch, one byte string per distinct key, prefixed with its key group.
//
// Storage key layout (both backends):
//
//   [key group: 2 bytes, big-endian][key bytes]
//
// so all keys of one key group, and all key groups of a contiguous range, are
// contiguous in a sorted store (RocksDB): a rescale restores a key-group range
// by one seek and one scan. Key bytes encode each key column as a null flag
// byte (0 null, 1 valid) and, when valid, the value: fixed-width values as
// their little-endian bytes (-0.0 written as 0.0, as the key hash treats them),
// booleans as one byte, binary/string as a 4-byte length and the bytes. The
// encoding is self-delimiting, so no key is a prefix of another key.
//
// Key groups are computed with HashColumns/KeyGroupOf (exec/partitioner.h), the
// functions key_by routes with: a key's state lives in the instance key_by sends
// the key to.
#pragma once

#include <arrow/array.h>
#include <arrow/record_batch.h>
#include <arrow/result.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace sabot {

/// Bytes of the key-group prefix of every storage key.
inline constexpr int kKeyGroupPrefixBytes = 2;
/// Largest max_parallelism (number of key groups) keyed state supports.
inline constexpr int kMaxKeyGroups = 32768;

/// Writes the 2-byte big-endian key-group prefix.
inline void AppendKeyGroupPrefix(int key_group, std::string* out) {
  out->push_back(static_cast<char>((key_group >> 8) & 0xff));
  out->push_back(static_cast<char>(key_group & 0xff));
}
/// The key group of a storage key (its first two bytes).
inline int KeyGroupOfStorageKey(std::string_view key) {
  return (static_cast<int>(static_cast<uint8_t>(key[0])) << 8) |
         static_cast<int>(static_cast<uint8_t>(key[1]));
}

/// The distinct keys of one batch, encoded once.
///
/// Row r has key `row_key(r)` (an index into the distinct keys, in order of
/// first appearance); distinct key k has its key group, the row it first
/// appeared in, and its storage key (prefix + key bytes). Immutable after
/// EncodeKeys; views stay valid as long as the KeyBatch.
class KeyBatch {
 public:
  int64_t num_rows() const { return static_cast<int64_t>(row_key_.size()); }
  int64_t num_keys() const { return static_cast<int64_t>(first_row_.size()); }
  int32_t row_key(int64_t row) const { return row_key_[row]; }
  const std::vector<int32_t>& row_keys() const { return row_key_; }
  int64_t first_row(int64_t key) const { return first_row_[key]; }
  int key_group(int64_t key) const { return key_group_[key]; }
  /// Storage key: key-group prefix followed by the key bytes.
  std::string_view storage_key(int64_t key) const {
    const int64_t row = first_row_[key];
    return std::string_view(bytes_.data() + offsets_[row],
                            offsets_[row + 1] - offsets_[row]);
  }
  /// The key bytes without the prefix.
  std::string_view key_bytes(int64_t key) const {
    return storage_key(key).substr(kKeyGroupPrefixBytes);
  }
  /// Storage keys of every distinct key, in key order.
  std::vector<std::string_view> storage_keys() const;
  /// For each distinct key, the last row that has it.
  std::vector<int64_t> last_rows() const;

 private:
  friend arrow::Result<KeyBatch> EncodeKeys(const arrow::RecordBatch&,
                                            const std::vector<int>&, int);
  std::vector<int32_t> row_key_;
  std::vector<int64_t> first_row_;
  std::vector<int> key_group_;
  std::string bytes_;              // every row's storage key
  std::vector<uint32_t> offsets_;  // num_rows + 1
};

/// Encodes the key columns `key_indices` of `batch` (key types as HashColumns
/// supports). `max_parallelism` is the number of key groups (<= kMaxKeyGroups).
arrow::Result<KeyBatch> EncodeKeys(const arrow::RecordBatch& batch,
                                   const std::vector<int>& key_indices,
                                   int max_parallelism);

/// Same, for key columns given as arrays of one length.
arrow::Result<KeyBatch> EncodeKeyColumns(
    const std::vector<std::shared_ptr<arrow::Array>>& columns, int max_parallelism);

/// The key columns of storage keys written by EncodeKeys from key columns of
/// `types` (the inverse of the encoding; errors on malformed keys).
arrow::Result<std::vector<std::shared_ptr<arrow::Array>>> DecodeKeyColumns(
    const std::vector<std::string_view>& storage_keys,
    const std::vector<std::shared_ptr<arrow::DataType>>& types, arrow::MemoryPool* pool);

/// Map state entries are stored under
///   [key group][4-byte big-endian length of the key bytes][key bytes][user key]
/// so the entries of one key are contiguous (one prefix) and an entry key splits
/// back into key and user key.
std::string MapEntryPrefix(std::string_view storage_key);
std::string MapEntryKey(std::string_view storage_key, std::string_view user_key);
/// Splits a map entry key into the storage key of its key and the user key.
arrow::Status SplitMapEntryKey(std::string_view entry_key, std::string* storage_key,
                               std::string_view* user_key);

}  // namespace sabot
