#include "sabot/state/key_codec.h"

#include <arrow/buffer.h>
#include <arrow/util/bit_util.h>

#include <cstring>

#include "sabot/exec/partitioner.h"

namespace sabot {

namespace {

bool IsValid(const arrow::ArrayData& data, int64_t i) {
  const uint8_t* validity = data.buffers[0] ? data.buffers[0]->data() : nullptr;
  return !validity || arrow::bit_util::GetBit(validity, data.offset + i);
}

// Byte width of a fixed-width key type (0: not fixed width), as HashColumns
// accepts them.
int FixedKeyWidth(arrow::Type::type id) {
  switch (id) {
    case arrow::Type::INT8:
    case arrow::Type::UINT8:
      return 1;
    case arrow::Type::INT16:
    case arrow::Type::UINT16:
      return 2;
    case arrow::Type::INT32:
    case arrow::Type::UINT32:
    case arrow::Type::DATE32:
    case arrow::Type::TIME32:
    case arrow::Type::FLOAT:
      return 4;
    case arrow::Type::INT64:
    case arrow::Type::UINT64:
    case arrow::Type::DATE64:
    case arrow::Type::TIME64:
    case arrow::Type::TIMESTAMP:
    case arrow::Type::DURATION:
    case arrow::Type::DOUBLE:
      return 8;
    default:
      return 0;
  }
}

template <typename OffsetT>
void AddBinaryLengths(const arrow::ArrayData& data, std::vector<uint32_t>* lengths) {
  const OffsetT* offsets = data.GetValues<OffsetT>(1);
  for (int64_t i = 0; i < data.length; ++i) {
    (*lengths)[i] += 1;
    if (IsValid(data, i))
      (*lengths)[i] += 4 + static_cast<uint32_t>(offsets[i + 1] - offsets[i]);
  }
}

template <typename OffsetT>
void WriteBinary(const arrow::ArrayData& data, char* bytes,
                 std::vector<uint32_t>* cursor) {
  const OffsetT* offsets = data.GetValues<OffsetT>(1);
  const char* values =
      data.buffers[2] ? reinterpret_cast<const char*>(data.buffers[2]->data()) : "";
  for (int64_t i = 0; i < data.length; ++i) {
    char* p = bytes + (*cursor)[i];
    if (!IsValid(data, i)) {
      *p = 0;
      (*cursor)[i] += 1;
      continue;
    }
    const uint32_t len = static_cast<uint32_t>(offsets[i + 1] - offsets[i]);
    *p++ = 1;
    std::memcpy(p, &len, 4);
    std::memcpy(p + 4, values + offsets[i], len);
    (*cursor)[i] += 5 + len;
  }
}

}  // namespace

std::vector<std::string_view> KeyBatch::storage_keys() const {
  std::vector<std::string_view> out;
  out.reserve(first_row_.size());
  for (int64_t k = 0; k < num_keys(); ++k) out.push_back(storage_key(k));
  return out;
}

std::vector<int64_t> KeyBatch::last_rows() const {
  std::vector<int64_t> out(first_row_.size(), 0);
  for (int64_t r = 0; r < num_rows(); ++r) out[row_key_[r]] = r;
  return out;
}

arrow::Result<KeyBatch> EncodeKeys(const arrow::RecordBatch& batch,
                                   const std::vector<int>& key_indices,
                                   int max_parallelism) {
  if (max_parallelism < 1 || max_parallelism > kMaxKeyGroups) {
    return arrow::Status::Invalid("keyed state supports 1 to ", kMaxKeyGroups,
                                  " key groups (max_parallelism), not ", max_parallelism);
  }
  const int64_t n = batch.num_rows();
  KeyBatch out;
  std::vector<uint64_t> hashes;
  ARROW_RETURN_NOT_OK(HashColumns(batch, key_indices, &hashes));
  if (key_indices.empty()) hashes.assign(static_cast<size_t>(n), 0);

  // Row lengths, column at a time.
  std::vector<uint32_t> lengths(static_cast<size_t>(n), kKeyGroupPrefixBytes);
  for (int index : key_indices) {
    const arrow::ArrayData& data = *batch.column_data(index);
    const auto id = data.type->id();
    if (int width = FixedKeyWidth(id)) {
      for (int64_t i = 0; i < n; ++i) lengths[i] += IsValid(data, i) ? 1 + width : 1;
    } else if (id == arrow::Type::BOOL) {
      for (int64_t i = 0; i < n; ++i) lengths[i] += IsValid(data, i) ? 2 : 1;
    } else if (id == arrow::Type::STRING || id == arrow::Type::BINARY) {
      AddBinaryLengths<int32_t>(data, &lengths);
    } else if (id == arrow::Type::LARGE_STRING || id == arrow::Type::LARGE_BINARY) {
      AddBinaryLengths<int64_t>(data, &lengths);
    } else {
      return arrow::Status::TypeError("cannot use column '",
                                      batch.schema()->field(index)->name(), "' of type ",
                                      data.type->ToString(), " as a state key");
    }
  }
  out.offsets_.resize(static_cast<size_t>(n) + 1);
  out.offsets_[0] = 0;
  for (int64_t i = 0; i < n; ++i) {
    const uint64_t next = uint64_t{out.offsets_[i]} + lengths[i];
    if (next > UINT32_MAX) {
      return arrow::Status::CapacityError("state keys of one batch exceed 4 GiB");
    }
    out.offsets_[i + 1] = static_cast<uint32_t>(next);
  }
  out.bytes_.resize(out.offsets_[n]);
  char* bytes = out.bytes_.data();
  std::vector<int> groups(static_cast<size_t>(n));
  std::vector<uint32_t> cursor(out.offsets_.begin(), out.offsets_.end() - 1);
  for (int64_t i = 0; i < n; ++i) {
    groups[i] = KeyGroupOf(hashes[i], max_parallelism);
    bytes[cursor[i]] = static_cast<char>((groups[i] >> 8) & 0xff);
    bytes[cursor[i] + 1] = static_cast<char>(groups[i] & 0xff);
    cursor[i] += kKeyGroupPrefixBytes;
  }
  for (int index : key_indices) {
    const arrow::ArrayData& data = *batch.column_data(index);
    const auto id = data.type->id();
    if (int width = FixedKeyWidth(id)) {
      const uint8_t* values = data.buffers[1]->data() + data.offset * width;
      const bool is_float = id == arrow::Type::FLOAT || id == arrow::Type::DOUBLE;
      for (int64_t i = 0; i < n; ++i) {
        char* p = bytes + cursor[i];
        if (!IsValid(data, i)) {
          *p = 0;
          cursor[i] += 1;
          continue;
        }
        *p = 1;
        std::memcpy(p + 1, values + i * width, static_cast<size_t>(width));
        if (is_float) {  // -0.0 == 0.0, as the key hash
          if (width == 8) {
            double v;
            std::memcpy(&v, p + 1, 8);
            if (v == 0) std::memset(p + 1, 0, 8);
          } else {
            float v;
            std::memcpy(&v, p + 1, 4);
            if (v == 0) std::memset(p + 1, 0, 4);
          }
        }
        cursor[i] += 1 + width;
      }
    } else if (id == arrow::Type::BOOL) {
      const uint8_t* bits = data.buffers[1]->data();
      for (int64_t i = 0; i < n; ++i) {
        char* p = bytes + cursor[i];
        if (!IsValid(data, i)) {
          *p = 0;
          cursor[i] += 1;
          continue;
        }
        p[0] = 1;
        p[1] = arrow::bit_util::GetBit(bits, data.offset + i) ? 1 : 0;
        cursor[i] += 2;
      }
    } else if (id == arrow::Type::STRING || id == arrow::Type::BINARY) {
      WriteBinary<int32_t>(data, bytes, &cursor);
    } else {
      WriteBinary<int64_t>(data, bytes, &cursor);
    }
  }

  // Distinct keys: open addressing over the row hashes.
  size_t capacity = 16;
  while (capacity < static_cast<size_t>(n) * 2) capacity <<= 1;
  const size_t mask = capacity - 1;
  std::vector<int32_t> slots(capacity, -1);
  std::vector<uint64_t> key_hash;
  out.row_key_.resize(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const uint64_t h = hashes[i];
    const uint32_t len = out.offsets_[i + 1] - out.offsets_[i];
    const char* key = bytes + out.offsets_[i];
    size_t slot = static_cast<size_t>(h * 0x9E3779B97F4A7C15ULL >> 7) & mask;
    while (true) {
      int32_t k = slots[slot];
      if (k < 0) {
        k = static_cast<int32_t>(out.first_row_.size());
        slots[slot] = k;
        out.first_row_.push_back(i);
        out.key_group_.push_back(groups[i]);
        key_hash.push_back(h);
        out.row_key_[i] = k;
        break;
      }
      if (key_hash[k] == h) {
        const int64_t r = out.first_row_[k];
        if (out.offsets_[r + 1] - out.offsets_[r] == len &&
            std::memcmp(bytes + out.offsets_[r], key, len) == 0) {
          out.row_key_[i] = k;
          break;
        }
      }
      slot = (slot + 1) & mask;
    }
  }
  return out;
}

arrow::Result<KeyBatch> EncodeKeyColumns(
    const std::vector<std::shared_ptr<arrow::Array>>& columns, int max_parallelism) {
  arrow::FieldVector fields;
  std::vector<int> indices;
  int64_t length = columns.empty() ? 0 : columns[0]->length();
  for (size_t i = 0; i < columns.size(); ++i) {
    if (columns[i]->length() != length) {
      return arrow::Status::Invalid("key columns have different lengths: ", length,
                                    " and ", columns[i]->length());
    }
    fields.push_back(arrow::field("key" + std::to_string(i), columns[i]->type()));
    indices.push_back(static_cast<int>(i));
  }
  auto batch = arrow::RecordBatch::Make(arrow::schema(fields), length, columns);
  return EncodeKeys(*batch, indices, max_parallelism);
}

arrow::Result<std::vector<std::shared_ptr<arrow::Array>>> DecodeKeyColumns(
    const std::vector<std::string_view>& storage_keys,
    const std::vector<std::shared_ptr<arrow::DataType>>& types, arrow::MemoryPool* pool) {
  const int64_t n = static_cast<int64_t>(storage_keys.size());
  std::vector<size_t> pos(storage_keys.size(), kKeyGroupPrefixBytes);
  for (const auto& key : storage_keys) {
    if (key.size() < kKeyGroupPrefixBytes) {
      return arrow::Status::Invalid("corrupt state key (", key.size(), " bytes)");
    }
  }
  auto need = [&](int64_t i, size_t bytes) -> arrow::Status {
    if (pos[i] + bytes > storage_keys[i].size()) {
      return arrow::Status::Invalid("corrupt state key: truncated");
    }
    return arrow::Status::OK();
  };
  std::vector<std::shared_ptr<arrow::Array>> out;
  for (const auto& type : types) {
    const auto id = type->id();
    ARROW_ASSIGN_OR_RAISE(auto validity, arrow::AllocateEmptyBitmap(n, pool));
    int64_t nulls = 0;
    auto read_flag = [&](int64_t i, bool* valid) -> arrow::Status {
      ARROW_RETURN_NOT_OK(need(i, 1));
      *valid = storage_keys[i][pos[i]++] != 0;
      if (*valid) {
        arrow::bit_util::SetBit(validity->mutable_data(), i);
      } else {
        ++nulls;
      }
      return arrow::Status::OK();
    };
    std::vector<std::shared_ptr<arrow::Buffer>> buffers;
    if (int width = FixedKeyWidth(id)) {
      ARROW_ASSIGN_OR_RAISE(auto values, arrow::AllocateBuffer(n * width, pool));
      std::memset(values->mutable_data(), 0, static_cast<size_t>(n * width));
      for (int64_t i = 0; i < n; ++i) {
        bool valid;
        ARROW_RETURN_NOT_OK(read_flag(i, &valid));
        if (!valid) continue;
        ARROW_RETURN_NOT_OK(need(i, static_cast<size_t>(width)));
        std::memcpy(values->mutable_data() + i * width, storage_keys[i].data() + pos[i],
                    static_cast<size_t>(width));
        pos[i] += static_cast<size_t>(width);
      }
      buffers = {nullptr, std::move(values)};
    } else if (id == arrow::Type::BOOL) {
      ARROW_ASSIGN_OR_RAISE(auto bits, arrow::AllocateEmptyBitmap(n, pool));
      for (int64_t i = 0; i < n; ++i) {
        bool valid;
        ARROW_RETURN_NOT_OK(read_flag(i, &valid));
        if (!valid) continue;
        ARROW_RETURN_NOT_OK(need(i, 1));
        if (storage_keys[i][pos[i]++]) arrow::bit_util::SetBit(bits->mutable_data(), i);
      }
      buffers = {nullptr, std::move(bits)};
    } else if (id == arrow::Type::STRING || id == arrow::Type::BINARY ||
               id == arrow::Type::LARGE_STRING || id == arrow::Type::LARGE_BINARY) {
      const bool large =
          id == arrow::Type::LARGE_STRING || id == arrow::Type::LARGE_BINARY;
      const int64_t offset_width = large ? 8 : 4;
      ARROW_ASSIGN_OR_RAISE(auto offsets,
                            arrow::AllocateBuffer((n + 1) * offset_width, pool));
      std::string data;
      auto set_offset = [&](int64_t i) {
        if (large) {
          reinterpret_cast<int64_t*>(offsets->mutable_data())[i] =
              static_cast<int64_t>(data.size());
        } else {
          reinterpret_cast<int32_t*>(offsets->mutable_data())[i] =
              static_cast<int32_t>(data.size());
        }
      };
      set_offset(0);
      for (int64_t i = 0; i < n; ++i) {
        bool valid;
        ARROW_RETURN_NOT_OK(read_flag(i, &valid));
        if (valid) {
          ARROW_RETURN_NOT_OK(need(i, 4));
          uint32_t len;
          std::memcpy(&len, storage_keys[i].data() + pos[i], 4);
          pos[i] += 4;
          ARROW_RETURN_NOT_OK(need(i, len));
          data.append(storage_keys[i].data() + pos[i], len);
          pos[i] += len;
        }
        set_offset(i + 1);
      }
      if (!large && data.size() > INT32_MAX) {
        return arrow::Status::CapacityError("decoded state keys exceed 2 GiB");
      }
      ARROW_ASSIGN_OR_RAISE(
          auto values, arrow::AllocateBuffer(static_cast<int64_t>(data.size()), pool));
      if (!data.empty()) std::memcpy(values->mutable_data(), data.data(), data.size());
      buffers = {nullptr, std::move(offsets), std::move(values)};
    } else {
      return arrow::Status::TypeError("cannot decode state keys of type ",
                                      type->ToString());
    }
    if (nulls > 0) buffers[0] = validity;
    out.push_back(arrow::MakeArray(arrow::ArrayData::Make(type, n, buffers, nulls)));
  }
  for (int64_t i = 0; i < n; ++i) {
    if (pos[i] != storage_keys[i].size()) {
      return arrow::Status::Invalid(
          "corrupt state key: ", storage_keys[i].size() - pos[i], " trailing bytes");
    }
  }
  return out;
}

std::string MapEntryPrefix(std::string_view storage_key) {
  std::string out;
  const uint32_t len = static_cast<uint32_t>(storage_key.size() - kKeyGroupPrefixBytes);
  out.reserve(storage_key.size() + 4);
  out.append(storage_key.substr(0, kKeyGroupPrefixBytes));
  for (int shift = 24; shift >= 0; shift -= 8) {
    out.push_back(static_cast<char>((len >> shift) & 0xff));
  }
  out.append(storage_key.substr(kKeyGroupPrefixBytes));
  return out;
}

std::string MapEntryKey(std::string_view storage_key, std::string_view user_key) {
  std::string out = MapEntryPrefix(storage_key);
  out.append(user_key);
  return out;
}

arrow::Status SplitMapEntryKey(std::string_view entry_key, std::string* storage_key,
                               std::string_view* user_key) {
  constexpr size_t kHeader = kKeyGroupPrefixBytes + 4;
  if (entry_key.size() < kHeader) {
    return arrow::Status::Invalid("corrupt map state entry key (", entry_key.size(),
                                  " bytes)");
  }
  uint32_t len = 0;
  for (size_t i = 0; i < 4; ++i) {
    len = (len << 8) | static_cast<uint8_t>(entry_key[kKeyGroupPrefixBytes + i]);
  }
  if (kHeader + len > entry_key.size()) {
    return arrow::Status::Invalid("corrupt map state entry key (key length ", len, " of ",
                                  entry_key.size(), " bytes)");
  }
  storage_key->assign(entry_key.substr(0, kKeyGroupPrefixBytes));
  storage_key->append(entry_key.substr(kHeader, len));
  *user_key = entry_key.substr(kHeader + len);
  return arrow::Status::OK();
}

}  // namespace sabot
