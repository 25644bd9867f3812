#include "sabot/exec/partitioner.h"

#include <arrow/builder.h>
#include <arrow/compute/api_vector.h>
#include <arrow/util/bit_util.h>
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

namespace {

// Splits one column over the partitions in a single pass over its rows: row i
// goes to partition target[i] at position dest[i] (rows keep their order within
// a partition). Fixed-width, boolean and (large) string/binary columns; other
// types return nullptr (the caller takes them with arrow's Take).
class ColumnScatter {
 public:
  ColumnScatter(const int32_t* target, const int64_t* dest, const int64_t* counts,
                int parts, arrow::MemoryPool* pool)
      : target_(target), dest_(dest), counts_(counts), parts_(parts), pool_(pool) {}

  arrow::Result<std::vector<std::shared_ptr<arrow::ArrayData>>> Run(
      const arrow::ArrayData& in) {
    const auto id = in.type->id();
    out_.assign(static_cast<size_t>(parts_), nullptr);
    ARROW_RETURN_NOT_OK(Validity(in));
    if (id == arrow::Type::STRING || id == arrow::Type::BINARY) {
      ARROW_RETURN_NOT_OK(Binary<int32_t>(in));
    } else if (id == arrow::Type::LARGE_STRING || id == arrow::Type::LARGE_BINARY) {
      ARROW_RETURN_NOT_OK(Binary<int64_t>(in));
    } else if (id == arrow::Type::BOOL) {
      ARROW_RETURN_NOT_OK(Bool(in));
    } else if (arrow::is_fixed_width(id) && id != arrow::Type::DICTIONARY &&
               id != arrow::Type::FIXED_SIZE_LIST && id != arrow::Type::EXTENSION &&
               id != arrow::Type::NA) {
      switch (in.type->byte_width()) {
        case 1:
          ARROW_RETURN_NOT_OK(Fixed<1>(in));
          break;
        case 2:
          ARROW_RETURN_NOT_OK(Fixed<2>(in));
          break;
        case 4:
          ARROW_RETURN_NOT_OK(Fixed<4>(in));
          break;
        case 8:
          ARROW_RETURN_NOT_OK(Fixed<8>(in));
          break;
        case 16:
          ARROW_RETURN_NOT_OK(Fixed<16>(in));
          break;
        default:
          return std::vector<std::shared_ptr<arrow::ArrayData>>{};
      }
    } else {
      return std::vector<std::shared_ptr<arrow::ArrayData>>{};
    }
    return std::move(out_);
  }

 private:
  arrow::Status Validity(const arrow::ArrayData& in) {
    validity_.assign(static_cast<size_t>(parts_), nullptr);
    nulls_.assign(static_cast<size_t>(parts_), 0);
    if (in.GetNullCount() == 0 || in.buffers[0] == nullptr) return arrow::Status::OK();
    // Bits are appended to each partition in order: collect them in a 64-bit
    // word per partition and store whole words (bitmaps sized in words).
    std::vector<uint64_t*> words(static_cast<size_t>(parts_), nullptr);
    for (int p = 0; p < parts_; ++p) {
      if (counts_[p] == 0) continue;
      ARROW_ASSIGN_OR_RAISE(validity_[p],
                            arrow::AllocateBuffer((counts_[p] + 63) / 64 * 8, pool_));
      words[p] = reinterpret_cast<uint64_t*>(validity_[p]->mutable_data());
    }
    std::vector<uint64_t> word(static_cast<size_t>(parts_), 0);
    std::vector<int> filled(static_cast<size_t>(parts_), 0);
    std::vector<int64_t> valid(static_cast<size_t>(parts_), 0);
    const uint8_t* v = in.buffers[0]->data();
    for (int64_t i = 0; i < in.length; ++i) {
      const uint64_t bit = arrow::bit_util::GetBit(v, in.offset + i) ? 1 : 0;
      const int32_t p = target_[i];
      word[p] |= bit << filled[p];
      valid[p] += static_cast<int64_t>(bit);
      if (++filled[p] == 64) {
        *words[p]++ = word[p];
        word[p] = 0;
        filled[p] = 0;
      }
    }
    for (int p = 0; p < parts_; ++p) {
      if (counts_[p] == 0) continue;
      if (filled[p] > 0) *words[p] = word[p];
      nulls_[p] = counts_[p] - valid[p];
    }
    return arrow::Status::OK();
  }

  template <int kWidth>
  arrow::Status Fixed(const arrow::ArrayData& in) {
    std::vector<uint8_t*> outs(static_cast<size_t>(parts_), nullptr);
    std::vector<std::shared_ptr<arrow::Buffer>> values(static_cast<size_t>(parts_));
    for (int p = 0; p < parts_; ++p) {
      if (counts_[p] == 0) continue;
      ARROW_ASSIGN_OR_RAISE(values[p], arrow::AllocateBuffer(counts_[p] * kWidth, pool_));
      outs[p] = values[p]->mutable_data();
    }
    const uint8_t* src = in.buffers[1]->data() + in.offset * kWidth;
    for (int64_t i = 0; i < in.length; ++i) {
      std::memcpy(outs[target_[i]] + dest_[i] * kWidth, src + i * kWidth, kWidth);
    }
    for (int p = 0; p < parts_; ++p) {
      if (counts_[p] == 0) continue;
      out_[p] = arrow::ArrayData::Make(in.type, counts_[p],
                                       {std::move(validity_[p]), std::move(values[p])},
                                       nulls_[p]);
    }
    return arrow::Status::OK();
  }

  arrow::Status Bool(const arrow::ArrayData& in) {
    std::vector<uint8_t*> outs(static_cast<size_t>(parts_), nullptr);
    std::vector<std::shared_ptr<arrow::Buffer>> values(static_cast<size_t>(parts_));
    for (int p = 0; p < parts_; ++p) {
      if (counts_[p] == 0) continue;
      ARROW_ASSIGN_OR_RAISE(values[p], arrow::AllocateBitmap(counts_[p], pool_));
      outs[p] = values[p]->mutable_data();
    }
    const uint8_t* src = in.buffers[1]->data();
    for (int64_t i = 0; i < in.length; ++i) {
      arrow::bit_util::SetBitTo(outs[target_[i]], dest_[i],
                                arrow::bit_util::GetBit(src, in.offset + i));
    }
    for (int p = 0; p < parts_; ++p) {
      if (counts_[p] == 0) continue;
      out_[p] = arrow::ArrayData::Make(in.type, counts_[p],
                                       {std::move(validity_[p]), std::move(values[p])},
                                       nulls_[p]);
    }
    return arrow::Status::OK();
  }

  template <typename Offset>
  arrow::Status Binary(const arrow::ArrayData& in) {
    const Offset* off = in.GetValues<Offset>(1);
    const uint8_t* bytes = in.buffers[2] ? in.buffers[2]->data() : nullptr;
    std::vector<Offset*> offs(static_cast<size_t>(parts_), nullptr);
    std::vector<std::shared_ptr<arrow::Buffer>> offsets(static_cast<size_t>(parts_));
    std::vector<int64_t> total(static_cast<size_t>(parts_), 0);
    for (int p = 0; p < parts_; ++p) {
      if (counts_[p] == 0) continue;
      ARROW_ASSIGN_OR_RAISE(
          offsets[p], arrow::AllocateBuffer((counts_[p] + 1) * sizeof(Offset), pool_));
      offs[p] = reinterpret_cast<Offset*>(offsets[p]->mutable_data());
      offs[p][0] = 0;
    }
    // Rows of a partition come in order, so a running total per partition
    // gives its offsets.
    for (int64_t i = 0; i < in.length; ++i) {
      const int32_t p = target_[i];
      total[p] += off[i + 1] - off[i];
      offs[p][dest_[i] + 1] = static_cast<Offset>(total[p]);
    }
    std::vector<uint8_t*> outs(static_cast<size_t>(parts_), nullptr);
    std::vector<std::shared_ptr<arrow::Buffer>> data(static_cast<size_t>(parts_));
    for (int p = 0; p < parts_; ++p) {
      if (counts_[p] == 0) continue;
      ARROW_ASSIGN_OR_RAISE(data[p], arrow::AllocateBuffer(total[p], pool_));
      outs[p] = data[p]->mutable_data();
    }
    for (int64_t i = 0; i < in.length; ++i) {
      const int64_t len = off[i + 1] - off[i];
      if (len > 0) {
        const int32_t p = target_[i];
        std::memcpy(outs[p] + offs[p][dest_[i]], bytes + off[i],
                    static_cast<size_t>(len));
      }
    }
    for (int p = 0; p < parts_; ++p) {
      if (counts_[p] == 0) continue;
      out_[p] = arrow::ArrayData::Make(
          in.type, counts_[p],
          {std::move(validity_[p]), std::move(offsets[p]), std::move(data[p])},
          nulls_[p]);
    }
    return arrow::Status::OK();
  }

  const int32_t* target_;
  const int64_t* dest_;
  const int64_t* counts_;
  const int parts_;
  arrow::MemoryPool* pool_;
  std::vector<std::shared_ptr<arrow::Buffer>> validity_;
  std::vector<int64_t> nulls_;
  std::vector<std::shared_ptr<arrow::ArrayData>> out_;
};

}  // namespace

// One pass per column scatters its rows into every partition (instead of one
// Take per partition, each re-reading the column through an index array).
arrow::Status SplitByTarget(const std::shared_ptr<arrow::RecordBatch>& batch,
                            const int32_t* target, int parts, arrow::MemoryPool* pool,
                            std::vector<std::shared_ptr<arrow::RecordBatch>>* out) {
  out->assign(static_cast<size_t>(parts), nullptr);
  const int64_t n = batch->num_rows();
  if (n == 0) return arrow::Status::OK();
  std::vector<int64_t> dest(static_cast<size_t>(n));
  std::vector<int64_t> counts(static_cast<size_t>(parts), 0);
  for (int64_t i = 0; i < n; ++i) dest[i] = counts[target[i]]++;
  // Fast path: all rows to one part.
  for (int p = 0; p < parts; ++p) {
    if (counts[p] == n) {
      (*out)[p] = batch;
      return arrow::Status::OK();
    }
  }
  const int num_columns = batch->num_columns();
  std::vector<arrow::ArrayDataVector> columns(static_cast<size_t>(parts));
  for (auto& c : columns) c.resize(static_cast<size_t>(num_columns));
  ColumnScatter scatter(target, dest.data(), counts.data(), parts, pool);
  std::vector<std::shared_ptr<arrow::Int32Array>> indices;  // for Take, made on demand
  for (int c = 0; c < num_columns; ++c) {
    const auto& data = batch->column_data(c);
    ARROW_ASSIGN_OR_RAISE(auto scattered, scatter.Run(*data));
    if (!scattered.empty()) {
      for (int p = 0; p < parts; ++p) columns[p][c] = std::move(scattered[p]);
      continue;
    }
    // Other types (nested, dictionary, views): arrow's Take per part.
    if (indices.empty()) {
      std::vector<arrow::Int32Builder> builders(static_cast<size_t>(parts));
      for (int64_t i = 0; i < n; ++i) {
        ARROW_RETURN_NOT_OK(builders[target[i]].Append(static_cast<int32_t>(i)));
      }
      for (auto& b : builders) {
        std::shared_ptr<arrow::Int32Array> a;
        ARROW_RETURN_NOT_OK(b.Finish(&a));
        indices.push_back(std::move(a));
      }
    }
    arrow::compute::ExecContext ctx(pool);
    for (int p = 0; p < parts; ++p) {
      if (counts[p] == 0) continue;
      ARROW_ASSIGN_OR_RAISE(
          auto taken,
          arrow::compute::Take(arrow::Datum(data), indices[p],
                               arrow::compute::TakeOptions::NoBoundsCheck(), &ctx));
      columns[p][c] = taken.array();
    }
  }
  for (int p = 0; p < parts; ++p) {
    if (counts[p] == 0) continue;
    (*out)[p] =
        arrow::RecordBatch::Make(batch->schema(), counts[p], std::move(columns[p]));
  }
  return arrow::Status::OK();
}

arrow::Status PartitionByKey(const std::shared_ptr<arrow::RecordBatch>& batch,
                             const std::vector<int>& key_indices, int parallelism,
                             int max_parallelism, arrow::MemoryPool* pool,
                             std::vector<std::shared_ptr<arrow::RecordBatch>>* out) {
  const int64_t n = batch->num_rows();
  if (n == 0) {
    out->assign(static_cast<size_t>(parallelism), nullptr);
    return arrow::Status::OK();
  }
  std::vector<uint64_t> hashes;
  ARROW_RETURN_NOT_OK(HashColumns(*batch, key_indices, &hashes));
  std::vector<int32_t> target(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    target[i] = InstanceOfKeyGroup(KeyGroupOf(hashes[i], max_parallelism),
                                   max_parallelism, parallelism);
  }
  return SplitByTarget(batch, target.data(), parallelism, pool, out);
}

}  // namespace sabot
