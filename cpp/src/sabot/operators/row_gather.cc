#include "sabot/operators/row_gather.h"

#include <arrow/array/util.h>
#include <arrow/builder.h>
#include <arrow/util/bit_util.h>

#include <cstring>

namespace sabot {

namespace {

class ColumnGather {
 public:
  ColumnGather(const RowRefs& refs, int column, arrow::MemoryPool* pool)
      : refs_(refs), n_(static_cast<int64_t>(refs.source.size())), pool_(pool) {
    for (const auto* b : refs.batches) sources_.push_back(b->column_data(column).get());
  }

  arrow::Result<std::shared_ptr<arrow::Array>> Run(
      const std::shared_ptr<arrow::DataType>& type) {
    const arrow::Type::type id = type->id();
    if (sources_.empty() || id == arrow::Type::NA) {
      return arrow::MakeArrayOfNull(type, n_, pool_);
    }
    ARROW_RETURN_NOT_OK(Validity());
    if (id == arrow::Type::STRING || id == arrow::Type::BINARY)
      return Binary<int32_t>(type);
    if (id == arrow::Type::LARGE_STRING || id == arrow::Type::LARGE_BINARY) {
      return Binary<int64_t>(type);
    }
    if (id == arrow::Type::BOOL) return Bool(type);
    if (arrow::is_fixed_width(id) && id != arrow::Type::DICTIONARY &&
        id != arrow::Type::FIXED_SIZE_LIST && id != arrow::Type::EXTENSION) {
      switch (type->byte_width()) {
        case 1:
          return Fixed<1>(type);
        case 2:
          return Fixed<2>(type);
        case 4:
          return Fixed<4>(type);
        case 8:
          return Fixed<8>(type);
        case 16:
          return Fixed<16>(type);
        default:
          break;
      }
    }
    return Generic(type);
  }

 private:
  // The output validity bitmap (none when no output row can be null).
  arrow::Status Validity() {
    bool any_null = false;
    for (int32_t s : refs_.source) {
      if (s < 0) {
        any_null = true;
        break;
      }
    }
    for (const auto* d : sources_) any_null |= d->GetNullCount() != 0;
    if (!any_null) return arrow::Status::OK();
    ARROW_ASSIGN_OR_RAISE(validity_, arrow::AllocateBitmap(n_, pool_));
    uint8_t* bits = validity_->mutable_data();
    for (int64_t i = 0; i < n_; ++i) {
      bool valid = false;
      const int32_t s = refs_.source[i];
      if (s >= 0) {
        const arrow::ArrayData* d = sources_[s];
        const uint8_t* v = d->buffers[0] ? d->buffers[0]->data() : nullptr;
        valid = v == nullptr || arrow::bit_util::GetBit(v, d->offset + refs_.row[i]);
      }
      arrow::bit_util::SetBitTo(bits, i, valid);
      null_count_ += !valid;
    }
    return arrow::Status::OK();
  }

  template <int kWidth>
  arrow::Result<std::shared_ptr<arrow::Array>> Fixed(
      const std::shared_ptr<arrow::DataType>& type) {
    std::vector<const uint8_t*> base;
    for (const auto* d : sources_) {
      base.push_back(d->buffers[1]->data() + d->offset * kWidth);
    }
    ARROW_ASSIGN_OR_RAISE(auto values, arrow::AllocateBuffer(n_ * kWidth, pool_));
    uint8_t* out = values->mutable_data();
    const int32_t* source = refs_.source.data();
    const int64_t* row = refs_.row.data();
    for (int64_t i = 0; i < n_; ++i) {
      if (source[i] >= 0) {
        std::memcpy(out + i * kWidth, base[source[i]] + row[i] * kWidth, kWidth);
      } else {
        std::memset(out + i * kWidth, 0, kWidth);
      }
    }
    return arrow::MakeArray(arrow::ArrayData::Make(
        type, n_, {std::move(validity_), std::move(values)}, null_count_));
  }

  arrow::Result<std::shared_ptr<arrow::Array>> Bool(
      const std::shared_ptr<arrow::DataType>& type) {
    ARROW_ASSIGN_OR_RAISE(auto values, arrow::AllocateBitmap(n_, pool_));
    uint8_t* out = values->mutable_data();
    for (int64_t i = 0; i < n_; ++i) {
      bool bit = false;
      const int32_t s = refs_.source[i];
      if (s >= 0) {
        const arrow::ArrayData* d = sources_[s];
        bit = arrow::bit_util::GetBit(d->buffers[1]->data(), d->offset + refs_.row[i]);
      }
      arrow::bit_util::SetBitTo(out, i, bit);
    }
    return arrow::MakeArray(arrow::ArrayData::Make(
        type, n_, {std::move(validity_), std::move(values)}, null_count_));
  }

  template <typename Offset>
  arrow::Result<std::shared_ptr<arrow::Array>> Binary(
      const std::shared_ptr<arrow::DataType>& type) {
    std::vector<const Offset*> offsets;
    std::vector<const uint8_t*> bytes;
    for (const auto* d : sources_) {
      offsets.push_back(d->GetValues<Offset>(1));
      bytes.push_back(d->buffers[2] ? d->buffers[2]->data() : nullptr);
    }
    ARROW_ASSIGN_OR_RAISE(auto out_offsets,
                          arrow::AllocateBuffer((n_ + 1) * sizeof(Offset), pool_));
    auto* o = reinterpret_cast<Offset*>(out_offsets->mutable_data());
    const int32_t* source = refs_.source.data();
    const int64_t* row = refs_.row.data();
    int64_t total = 0;
    o[0] = 0;
    for (int64_t i = 0; i < n_; ++i) {
      if (source[i] >= 0) {
        const Offset* off = offsets[source[i]];
        total += off[row[i] + 1] - off[row[i]];
      }
      o[i + 1] = static_cast<Offset>(total);
    }
    if (sizeof(Offset) == 4 && total > INT32_MAX) {
      return arrow::Status::CapacityError("gathering rows: more than 2 GiB of '",
                                          type->ToString(), "' data in one batch");
    }
    ARROW_ASSIGN_OR_RAISE(auto data, arrow::AllocateBuffer(total, pool_));
    uint8_t* out = data->mutable_data();
    for (int64_t i = 0; i < n_; ++i) {
      if (source[i] < 0) continue;
      const Offset* off = offsets[source[i]];
      const int64_t len = off[row[i] + 1] - off[row[i]];
      if (len > 0) std::memcpy(out + o[i], bytes[source[i]] + off[row[i]], len);
    }
    return arrow::MakeArray(arrow::ArrayData::Make(
        type, n_, {std::move(validity_), std::move(out_offsets), std::move(data)},
        null_count_));
  }

  arrow::Result<std::shared_ptr<arrow::Array>> Generic(
      const std::shared_ptr<arrow::DataType>& type) {
    std::vector<arrow::ArraySpan> spans;
    for (const auto* d : sources_) spans.emplace_back(*d);
    std::unique_ptr<arrow::ArrayBuilder> builder;
    ARROW_RETURN_NOT_OK(arrow::MakeBuilder(pool_, type, &builder));
    ARROW_RETURN_NOT_OK(builder->Reserve(n_));
    for (int64_t i = 0; i < n_; ++i) {
      const int32_t s = refs_.source[i];
      if (s < 0) {
        ARROW_RETURN_NOT_OK(builder->AppendNull());
      } else {
        ARROW_RETURN_NOT_OK(builder->AppendArraySlice(spans[s], refs_.row[i], 1));
      }
    }
    return builder->Finish();
  }

  const RowRefs& refs_;
  const int64_t n_;
  arrow::MemoryPool* pool_;
  std::vector<const arrow::ArrayData*> sources_;
  std::shared_ptr<arrow::Buffer> validity_;
  int64_t null_count_ = 0;
};

}  // namespace

arrow::Result<std::shared_ptr<arrow::Array>> GatherColumn(
    const RowRefs& refs, int column, const std::shared_ptr<arrow::DataType>& type,
    arrow::MemoryPool* pool) {
  return ColumnGather(refs, column, pool).Run(type);
}

arrow::Result<std::vector<std::shared_ptr<arrow::Array>>> GatherColumns(
    const RowRefs& refs, const arrow::Schema& schema, arrow::MemoryPool* pool) {
  std::vector<std::shared_ptr<arrow::Array>> out;
  out.reserve(static_cast<size_t>(schema.num_fields()));
  for (int c = 0; c < schema.num_fields(); ++c) {
    ARROW_ASSIGN_OR_RAISE(auto a, GatherColumn(refs, c, schema.field(c)->type(), pool));
    out.push_back(std::move(a));
  }
  return out;
}

}  // namespace sabot
