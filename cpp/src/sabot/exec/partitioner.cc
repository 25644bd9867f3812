#include "sabot/exec/partitioner.h"

#include <arrow/compute/api_vector.h>
#include <arrow/visit_type_inline.h>

#include <cstring>

namespace sabot {

namespace {

constexpr uint64_t kNullHash = 0x6a09e667f3bcc908ULL;

inline uint64_t Mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

inline uint64_t HashBytes(const uint8_t* data, int64_t length) {
  uint64_t h = 0x9E3779B97F4A7C15ULL ^ static_cast<uint64_t>(length);
  int64_t i = 0;
  for (; i + 8 <= length; i += 8) {
    uint64_t word;
    std::memcpy(&word, data + i, 8);
    h = Mix64(h ^ word);
  }
  if (i < length) {
    uint64_t word = 0;
    std::memcpy(&word, data + i, static_cast<size_t>(length - i));
    h = Mix64(h ^ word ^ 0xff51afd7ed558ccdULL);
  }
  return h;
}

// Folds one column's per-row hash into `hashes`.
template <typename ValueHash>
void FoldColumn(const arrow::ArrayData& data, bool first, ValueHash&& value_hash,
                uint64_t* hashes) {
  const int64_t n = data.length;
  const uint8_t* validity = data.buffers[0] ? data.buffers[0]->data() : nullptr;
  for (int64_t i = 0; i < n; ++i) {
    bool valid = !validity || arrow::bit_util::GetBit(validity, data.offset + i);
    uint64_t h = valid ? value_hash(i) : kNullHash;
    hashes[i] = first ? h : Mix64(hashes[i] * 0x9E3779B97F4A7C15ULL ^ h);
  }
}

template <typename T>
void FoldFixed(const arrow::ArrayData& data, bool first, uint64_t* hashes) {
  const T* values = data.GetValues<T>(1);
  FoldColumn(
      data, first,
      [values](int64_t i) {
        uint64_t bits = 0;
        if constexpr (std::is_floating_point_v<T>) {
          T v = values[i] == 0 ? T(0) : values[i];  // -0.0 == 0.0
          std::memcpy(&bits, &v, sizeof(T));
        } else {
          bits = static_cast<uint64_t>(values[i]);
        }
        return Mix64(bits);
      },
      hashes);
}

template <typename OffsetT>
void FoldBinary(const arrow::ArrayData& data, bool first, uint64_t* hashes) {
  const OffsetT* offsets = data.GetValues<OffsetT>(1);
  const uint8_t* bytes = data.buffers[2] ? data.buffers[2]->data() : nullptr;
  FoldColumn(
      data, first,
      [offsets, bytes](int64_t i) {
        return HashBytes(bytes + offsets[i],
                         static_cast<int64_t>(offsets[i + 1] - offsets[i]));
      },
      hashes);
}

}  // namespace

arrow::Status HashColumns(const arrow::RecordBatch& batch,
                          const std::vector<int>& key_indices,
                          std::vector<uint64_t>* hashes) {
  hashes->assign(static_cast<size_t>(batch.num_rows()), 0);
  uint64_t* out = hashes->data();
  bool first = true;
  for (int index : key_indices) {
    const auto& data = *batch.column_data(index);
    switch (data.type->id()) {
      case arrow::Type::INT8:
        FoldFixed<int8_t>(data, first, out);
        break;
      case arrow::Type::UINT8:
        FoldFixed<uint8_t>(data, first, out);
        break;
      case arrow::Type::INT16:
        FoldFixed<int16_t>(data, first, out);
        break;
      case arrow::Type::UINT16:
        FoldFixed<uint16_t>(data, first, out);
        break;
      case arrow::Type::INT32:
      case arrow::Type::DATE32:
      case arrow::Type::TIME32:
        FoldFixed<int32_t>(data, first, out);
        break;
      case arrow::Type::UINT32:
        FoldFixed<uint32_t>(data, first, out);
        break;
      case arrow::Type::INT64:
      case arrow::Type::DATE64:
      case arrow::Type::TIME64:
      case arrow::Type::TIMESTAMP:
      case arrow::Type::DURATION:
        FoldFixed<int64_t>(data, first, out);
        break;
      case arrow::Type::UINT64:
        FoldFixed<uint64_t>(data, first, out);
        break;
      case arrow::Type::FLOAT:
        FoldFixed<float>(data, first, out);
        break;
      case arrow::Type::DOUBLE:
        FoldFixed<double>(data, first, out);
        break;
      case arrow::Type::BOOL: {
        const uint8_t* bits = data.buffers[1]->data();
        int64_t offset = data.offset;
        FoldColumn(
            data, first,
            [bits, offset](int64_t i) {
              return Mix64(arrow::bit_util::GetBit(bits, offset + i) ? 1 : 2);
            },
            out);
        break;
      }
      case arrow::Type::STRING:
      case arrow::Type::BINARY:
        FoldBinary<int32_t>(data, first, out);
        break;
      case arrow::Type::LARGE_STRING:
      case arrow::Type::LARGE_BINARY:
        FoldBinary<int64_t>(data, first, out);
        break;
      default:
        return arrow::Status::TypeError(
            "cannot use column '", batch.schema()->field(index)->name(), "' of type ",
            data.type->ToString(), " as a key: unsupported key type");
    }
    first = false;
  }
  return arrow::Status::OK();
}

arrow::Result<std::vector<int>> ResolveKeyColumns(const arrow::Schema& schema,
                                                  const std::vector<std::string>& keys,
                                                  const std::string& operator_name) {
  std::vector<int> indices;
  for (const auto& key : keys) {
    int index = schema.GetFieldIndex(key);
    if (index < 0) {
      return arrow::Status::KeyError(operator_name, ": key column '", key,
                                     "' is not in the input schema (",
                                     schema.ToString(false), ")");
    }
    indices.push_back(index);
  }
  return indices;
}

arrow::Status PartitionByKey(const std::shared_ptr<arrow::RecordBatch>& batch,
                             const std::vector<int>& key_indices, int parallelism,
                             int max_parallelism, arrow::MemoryPool* pool,
                             std::vector<std::shared_ptr<arrow::RecordBatch>>* out) {
  out->assign(static_cast<size_t>(parallelism), nullptr);
  const int64_t n = batch->num_rows();
  if (n == 0) return arrow::Status::OK();
  std::vector<uint64_t> hashes;
  ARROW_RETURN_NOT_OK(HashColumns(*batch, key_indices, &hashes));
  std::vector<int32_t> target(static_cast<size_t>(n));
  std::vector<int64_t> counts(static_cast<size_t>(parallelism) + 1, 0);
  for (int64_t i = 0; i < n; ++i) {
    int instance = InstanceOfKeyGroup(KeyGroupOf(hashes[i], max_parallelism),
                                      max_parallelism, parallelism);
    target[i] = instance;
    ++counts[instance + 1];
  }
  // Fast path: all rows to one instance.
  for (int p = 0; p < parallelism; ++p) {
    if (counts[p + 1] == n) {
      (*out)[p] = batch;
      return arrow::Status::OK();
    }
  }
  for (int p = 0; p < parallelism; ++p) counts[p + 1] += counts[p];
  ARROW_ASSIGN_OR_RAISE(auto index_buffer,
                        arrow::AllocateBuffer(n * sizeof(int32_t), pool));
  auto* indices = reinterpret_cast<int32_t*>(index_buffer->mutable_data());
  std::vector<int64_t> cursor(counts.begin(), counts.end() - 1);
  for (int64_t i = 0; i < n; ++i) indices[cursor[target[i]]++] = static_cast<int32_t>(i);
  auto all_indices = std::make_shared<arrow::Int32Array>(n, std::move(index_buffer));
  arrow::compute::ExecContext ctx(pool);
  for (int p = 0; p < parallelism; ++p) {
    int64_t begin = counts[p], length = counts[p + 1] - counts[p];
    if (length == 0) continue;
    ARROW_ASSIGN_OR_RAISE(
        auto taken,
        arrow::compute::Take(batch, all_indices->Slice(begin, length),
                             arrow::compute::TakeOptions::NoBoundsCheck(), &ctx));
    (*out)[p] = taken.record_batch();
  }
  return arrow::Status::OK();
}

}  // namespace sabot
