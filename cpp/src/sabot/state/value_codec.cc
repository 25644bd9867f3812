#include "sabot/state/value_codec.h"

#include <arrow/buffer_builder.h>
#include <arrow/util/bit_util.h>
#include <arrow/util/checked_cast.h>

namespace sabot {

namespace {

// Byte width of a fixed-width value type, 0 when the type is not one.
int FixedWidth(const arrow::DataType& type) {
  if (type.id() == arrow::Type::BOOL || type.id() == arrow::Type::DICTIONARY ||
      type.id() == arrow::Type::EXTENSION) {
    return 0;
  }
  const auto* fixed = dynamic_cast<const arrow::FixedWidthType*>(&type);
  if (!fixed || fixed->bit_width() % 8 != 0) return 0;
  return fixed->bit_width() / 8;
}

bool IsList(arrow::Type::type id) {
  return id == arrow::Type::LIST || id == arrow::Type::MAP ||
         id == arrow::Type::LARGE_LIST;
}

arrow::Status CheckSupported(const arrow::DataType& type, const std::string& what) {
  switch (type.id()) {
    case arrow::Type::NA:
    case arrow::Type::BOOL:
    case arrow::Type::STRING:
    case arrow::Type::BINARY:
    case arrow::Type::LARGE_STRING:
    case arrow::Type::LARGE_BINARY:
      return arrow::Status::OK();
    case arrow::Type::LIST:
    case arrow::Type::LARGE_LIST:
    case arrow::Type::MAP:
    case arrow::Type::FIXED_SIZE_LIST:
    case arrow::Type::STRUCT:
      for (const auto& field : type.fields()) {
        ARROW_RETURN_NOT_OK(CheckSupported(*field->type(), what));
      }
      return arrow::Status::OK();
    default:
      if (FixedWidth(type) > 0) return arrow::Status::OK();
      return arrow::Status::NotImplemented(what, ": values of type ", type.ToString(),
                                           " cannot be kept in keyed state");
  }
}

bool IsValid(const arrow::ArrayData& data, int64_t i) {
  const uint8_t* validity = data.buffers[0] ? data.buffers[0]->data() : nullptr;
  return !validity || arrow::bit_util::GetBit(validity, data.offset + i);
}

void AppendU32(uint32_t v, std::string* out) {
  out->append(reinterpret_cast<const char*>(&v), 4);
}

template <typename OffsetT>
void EncodeBinary(const arrow::ArrayData& data, const int64_t* rows, int64_t n,
                  std::string* const* outs) {
  const OffsetT* offsets = data.GetValues<OffsetT>(1);
  const char* values =
      data.buffers[2] ? reinterpret_cast<const char*>(data.buffers[2]->data()) : "";
  for (int64_t j = 0; j < n; ++j) {
    const int64_t r = rows[j];
    if (!IsValid(data, r)) {
      outs[j]->push_back(0);
      continue;
    }
    outs[j]->push_back(1);
    const uint32_t len = static_cast<uint32_t>(offsets[r + 1] - offsets[r]);
    AppendU32(len, outs[j]);
    outs[j]->append(values + offsets[r], len);
  }
}

// Appends the encoding of data[rows[j]] (logical indices) to *outs[j].
arrow::Status EncodeItems(const arrow::ArrayData& data, const int64_t* rows, int64_t n,
                          std::string* const* outs) {
  const arrow::DataType& type = *data.type;
  switch (type.id()) {
    case arrow::Type::NA:
      return arrow::Status::OK();
    case arrow::Type::BOOL: {
      const uint8_t* bits = data.buffers[1]->data();
      for (int64_t j = 0; j < n; ++j) {
        const int64_t r = rows[j];
        if (!IsValid(data, r)) {
          outs[j]->push_back(0);
          continue;
        }
        outs[j]->push_back(1);
        outs[j]->push_back(arrow::bit_util::GetBit(bits, data.offset + r) ? 1 : 0);
      }
      return arrow::Status::OK();
    }
    case arrow::Type::STRING:
    case arrow::Type::BINARY:
      EncodeBinary<int32_t>(data, rows, n, outs);
      return arrow::Status::OK();
    case arrow::Type::LARGE_STRING:
    case arrow::Type::LARGE_BINARY:
      EncodeBinary<int64_t>(data, rows, n, outs);
      return arrow::Status::OK();
    case arrow::Type::LIST:
    case arrow::Type::MAP:
    case arrow::Type::LARGE_LIST: {
      const bool large = type.id() == arrow::Type::LARGE_LIST;
      std::vector<int64_t> child_rows;
      std::vector<std::string*> child_outs;
      for (int64_t j = 0; j < n; ++j) {
        const int64_t r = rows[j];
        if (!IsValid(data, r)) {
          outs[j]->push_back(0);
          continue;
        }
        int64_t begin, end;
        if (large) {
          begin = data.GetValues<int64_t>(1)[r];
          end = data.GetValues<int64_t>(1)[r + 1];
        } else {
          begin = data.GetValues<int32_t>(1)[r];
          end = data.GetValues<int32_t>(1)[r + 1];
        }
        outs[j]->push_back(1);
        AppendU32(static_cast<uint32_t>(end - begin), outs[j]);
        for (int64_t c = begin; c < end; ++c) {
          child_rows.push_back(c);
          child_outs.push_back(outs[j]);
        }
      }
      return EncodeItems(*data.child_data[0], child_rows.data(),
                         static_cast<int64_t>(child_rows.size()), child_outs.data());
    }
    case arrow::Type::FIXED_SIZE_LIST: {
      const int64_t size =
          arrow::internal::checked_cast<const arrow::FixedSizeListType&>(type)
              .list_size();
      std::vector<int64_t> child_rows;
      std::vector<std::string*> child_outs;
      for (int64_t j = 0; j < n; ++j) {
        const int64_t r = rows[j];
        if (!IsValid(data, r)) {
          outs[j]->push_back(0);
          continue;
        }
        outs[j]->push_back(1);
        for (int64_t c = 0; c < size; ++c) {
          child_rows.push_back((data.offset + r) * size + c);
          child_outs.push_back(outs[j]);
        }
      }
      return EncodeItems(*data.child_data[0], child_rows.data(),
                         static_cast<int64_t>(child_rows.size()), child_outs.data());
    }
    case arrow::Type::STRUCT: {
      std::vector<int64_t> child_rows;
      std::vector<std::string*> child_outs;
      for (int64_t j = 0; j < n; ++j) {
        const int64_t r = rows[j];
        if (!IsValid(data, r)) {
          outs[j]->push_back(0);
          continue;
        }
        outs[j]->push_back(1);
        child_rows.push_back(data.offset + r);  // children are not sliced with the parent
        child_outs.push_back(outs[j]);
      }
      for (const auto& child : data.child_data) {
        ARROW_RETURN_NOT_OK(EncodeItems(*child, child_rows.data(),
                                        static_cast<int64_t>(child_rows.size()),
                                        child_outs.data()));
      }
      return arrow::Status::OK();
    }
    default: {
      const int width = FixedWidth(type);
      if (width == 0) {
        return arrow::Status::NotImplemented("cannot encode state values of type ",
                                             type.ToString());
      }
      const uint8_t* base = data.buffers[1]->data();
      for (int64_t j = 0; j < n; ++j) {
        const int64_t r = rows[j];
        if (!IsValid(data, r)) {
          outs[j]->push_back(0);
          continue;
        }
        outs[j]->push_back(1);
        outs[j]->append(reinterpret_cast<const char*>(base + (data.offset + r) * width),
                        static_cast<size_t>(width));
      }
      return arrow::Status::OK();
    }
  }
}

// A read position in one encoded value; several items (the elements of one
// list) may share one cursor and are then read in order.
struct Cursor {
  const uint8_t* p;
  const uint8_t* end;
};

arrow::Status Truncated() {
  return arrow::Status::Invalid("corrupt state value: truncated");
}

// Reads the validity byte; an absent item (null cursor) is null.
arrow::Status ReadFlag(Cursor* c, bool* valid) {
  if (!c) {
    *valid = false;
    return arrow::Status::OK();
  }
  if (c->p + 1 > c->end) return Truncated();
  *valid = *c->p++ != 0;
  return arrow::Status::OK();
}

arrow::Status ReadU32(Cursor* c, uint32_t* v) {
  if (c->p + 4 > c->end) return Truncated();
  std::memcpy(v, c->p, 4);
  c->p += 4;
  return arrow::Status::OK();
}

struct Validity {
  std::shared_ptr<arrow::Buffer> buffer;
  int64_t null_count = 0;
};

arrow::Result<std::shared_ptr<arrow::ResizableBuffer>> ZeroedBuffer(
    int64_t bytes, arrow::MemoryPool* pool) {
  ARROW_ASSIGN_OR_RAISE(auto buffer, arrow::AllocateResizableBuffer(bytes, pool));
  if (bytes > 0) std::memset(buffer->mutable_data(), 0, static_cast<size_t>(bytes));
  return std::shared_ptr<arrow::ResizableBuffer>(std::move(buffer));
}

arrow::Result<std::shared_ptr<arrow::ArrayData>> DecodeItems(
    const std::shared_ptr<arrow::DataType>& type, Cursor* const* items, int64_t n,
    arrow::MemoryPool* pool) {
  if (type->id() == arrow::Type::NA) {
    return arrow::ArrayData::Make(type, n, {nullptr}, n);
  }
  // Validity of every item first (the encoding puts each item's flag before
  // any of its children, and items sharing a cursor are read in order).
  std::vector<uint8_t> valid(static_cast<size_t>(n));
  int64_t null_count = 0;
  ARROW_ASSIGN_OR_RAISE(auto validity,
                        ZeroedBuffer(arrow::bit_util::BytesForBits(n), pool));
  auto read_validity = [&]() -> arrow::Status {
    for (int64_t j = 0; j < n; ++j) {
      bool v;
      ARROW_RETURN_NOT_OK(ReadFlag(items[j], &v));
      valid[j] = v ? 1 : 0;
      if (v) {
        arrow::bit_util::SetBit(validity->mutable_data(), j);
      } else {
        ++null_count;
      }
    }
    return arrow::Status::OK();
  };
  std::shared_ptr<arrow::Buffer> validity_buffer;
  auto finish_validity = [&] { validity_buffer = null_count > 0 ? validity : nullptr; };

  switch (type->id()) {
    case arrow::Type::BOOL: {
      ARROW_ASSIGN_OR_RAISE(auto bits,
                            ZeroedBuffer(arrow::bit_util::BytesForBits(n), pool));
      for (int64_t j = 0; j < n; ++j) {
        bool v;
        ARROW_RETURN_NOT_OK(ReadFlag(items[j], &v));
        valid[j] = v;
        if (!v) {
          ++null_count;
          continue;
        }
        arrow::bit_util::SetBit(validity->mutable_data(), j);
        if (items[j]->p + 1 > items[j]->end) return Truncated();
        if (*items[j]->p++) arrow::bit_util::SetBit(bits->mutable_data(), j);
      }
      finish_validity();
      return arrow::ArrayData::Make(type, n, {validity_buffer, bits}, null_count);
    }
    case arrow::Type::STRING:
    case arrow::Type::BINARY:
    case arrow::Type::LARGE_STRING:
    case arrow::Type::LARGE_BINARY: {
      // Flag and value are interleaved per item for binary values.
      const bool large = type->id() == arrow::Type::LARGE_STRING ||
                         type->id() == arrow::Type::LARGE_BINARY;
      const int64_t width = large ? 8 : 4;
      ARROW_ASSIGN_OR_RAISE(auto offsets, ZeroedBuffer((n + 1) * width, pool));
      arrow::BufferBuilder values(pool);
      for (int64_t j = 0; j < n; ++j) {
        bool v;
        ARROW_RETURN_NOT_OK(ReadFlag(items[j], &v));
        if (v) {
          arrow::bit_util::SetBit(validity->mutable_data(), j);
          uint32_t len;
          ARROW_RETURN_NOT_OK(ReadU32(items[j], &len));
          if (items[j]->p + len > items[j]->end) return Truncated();
          ARROW_RETURN_NOT_OK(values.Append(items[j]->p, len));
          items[j]->p += len;
        } else {
          ++null_count;
        }
        if (large) {
          reinterpret_cast<int64_t*>(offsets->mutable_data())[j + 1] = values.length();
        } else {
          if (values.length() > INT32_MAX) {
            return arrow::Status::CapacityError("decoded state values exceed 2 GiB");
          }
          reinterpret_cast<int32_t*>(offsets->mutable_data())[j + 1] =
              static_cast<int32_t>(values.length());
        }
      }
      ARROW_ASSIGN_OR_RAISE(auto data, values.Finish());
      finish_validity();
      return arrow::ArrayData::Make(type, n, {validity_buffer, offsets, data},
                                    null_count);
    }
    case arrow::Type::LIST:
    case arrow::Type::MAP:
    case arrow::Type::LARGE_LIST: {
      const bool large = type->id() == arrow::Type::LARGE_LIST;
      const int64_t width = large ? 8 : 4;
      ARROW_ASSIGN_OR_RAISE(auto offsets, ZeroedBuffer((n + 1) * width, pool));
      std::vector<Cursor*> child_items;
      for (int64_t j = 0; j < n; ++j) {
        bool v;
        ARROW_RETURN_NOT_OK(ReadFlag(items[j], &v));
        if (v) {
          arrow::bit_util::SetBit(validity->mutable_data(), j);
          uint32_t count;
          ARROW_RETURN_NOT_OK(ReadU32(items[j], &count));
          if (count > static_cast<uint32_t>(items[j]->end - items[j]->p) * 8 + 8) {
            return arrow::Status::Invalid("corrupt state value: list of ", count,
                                          " elements");
          }
          child_items.insert(child_items.end(), count, items[j]);
        } else {
          ++null_count;
        }
        const int64_t end = static_cast<int64_t>(child_items.size());
        if (large) {
          reinterpret_cast<int64_t*>(offsets->mutable_data())[j + 1] = end;
        } else {
          reinterpret_cast<int32_t*>(offsets->mutable_data())[j + 1] =
              static_cast<int32_t>(end);
        }
      }
      ARROW_ASSIGN_OR_RAISE(auto child,
                            DecodeItems(type->field(0)->type(), child_items.data(),
                                        static_cast<int64_t>(child_items.size()), pool));
      finish_validity();
      auto out = arrow::ArrayData::Make(type, n, {validity_buffer, offsets}, null_count);
      out->child_data.push_back(std::move(child));
      return out;
    }
    case arrow::Type::FIXED_SIZE_LIST: {
      const int64_t size =
          arrow::internal::checked_cast<const arrow::FixedSizeListType&>(*type)
              .list_size();
      ARROW_RETURN_NOT_OK(read_validity());
      std::vector<Cursor*> child_items;
      child_items.reserve(static_cast<size_t>(n * size));
      for (int64_t j = 0; j < n; ++j) {
        child_items.insert(child_items.end(), static_cast<size_t>(size),
                           valid[j] ? items[j] : nullptr);
      }
      ARROW_ASSIGN_OR_RAISE(auto child,
                            DecodeItems(type->field(0)->type(), child_items.data(),
                                        static_cast<int64_t>(child_items.size()), pool));
      finish_validity();
      auto out = arrow::ArrayData::Make(type, n, {validity_buffer}, null_count);
      out->child_data.push_back(std::move(child));
      return out;
    }
    case arrow::Type::STRUCT: {
      ARROW_RETURN_NOT_OK(read_validity());
      std::vector<Cursor*> child_items(static_cast<size_t>(n));
      for (int64_t j = 0; j < n; ++j) child_items[j] = valid[j] ? items[j] : nullptr;
      finish_validity();
      auto out = arrow::ArrayData::Make(type, n, {validity_buffer}, null_count);
      for (const auto& field : type->fields()) {
        ARROW_ASSIGN_OR_RAISE(auto child,
                              DecodeItems(field->type(), child_items.data(), n, pool));
        out->child_data.push_back(std::move(child));
      }
      return out;
    }
    default: {
      const int width = FixedWidth(*type);
      if (width == 0) {
        return arrow::Status::NotImplemented("cannot decode state values of type ",
                                             type->ToString());
      }
      ARROW_ASSIGN_OR_RAISE(auto values, ZeroedBuffer(n * width, pool));
      for (int64_t j = 0; j < n; ++j) {
        bool v;
        ARROW_RETURN_NOT_OK(ReadFlag(items[j], &v));
        if (!v) {
          ++null_count;
          continue;
        }
        arrow::bit_util::SetBit(validity->mutable_data(), j);
        if (items[j]->p + width > items[j]->end) return Truncated();
        std::memcpy(values->mutable_data() + j * width, items[j]->p,
                    static_cast<size_t>(width));
        items[j]->p += width;
      }
      finish_validity();
      return arrow::ArrayData::Make(type, n, {validity_buffer, values}, null_count);
    }
  }
}

}  // namespace

arrow::Result<ArrowValueCodec> ArrowValueCodec::Make(
    std::shared_ptr<arrow::DataType> type, const std::string& what) {
  ARROW_RETURN_NOT_OK(CheckSupported(*type, what));
  return ArrowValueCodec(std::move(type));
}

arrow::Status ArrowValueCodec::Encode(const arrow::Array& array,
                                      const std::vector<int64_t>& rows,
                                      const std::vector<std::string*>& outs) const {
  if (!array.type()->Equals(*type_)) {
    return arrow::Status::TypeError("state values must be of type ", type_->ToString(),
                                    ", not ", array.type()->ToString());
  }
  if (rows.size() != outs.size()) {
    return arrow::Status::Invalid("state value encoding: ", rows.size(), " rows for ",
                                  outs.size(), " outputs");
  }
  return EncodeItems(*array.data(), rows.data(), static_cast<int64_t>(rows.size()),
                     outs.data());
}

arrow::Result<std::shared_ptr<arrow::Array>> ArrowValueCodec::Decode(
    const std::vector<std::optional<std::string_view>>& values,
    arrow::MemoryPool* pool) const {
  const int64_t n = static_cast<int64_t>(values.size());
  std::vector<Cursor> cursors(values.size());
  std::vector<Cursor*> items(values.size(), nullptr);
  for (int64_t j = 0; j < n; ++j) {
    if (!values[j]) continue;
    const auto* p = reinterpret_cast<const uint8_t*>(values[j]->data());
    cursors[j] = Cursor{p, p + values[j]->size()};
    items[j] = &cursors[j];
  }
  ARROW_ASSIGN_OR_RAISE(auto data, DecodeItems(type_, items.data(), n, pool));
  for (int64_t j = 0; j < n; ++j) {
    if (items[j] && cursors[j].p != cursors[j].end) {
      return arrow::Status::Invalid(
          "corrupt state value: ", cursors[j].end - cursors[j].p,
          " trailing bytes for type ", type_->ToString());
    }
  }
  return arrow::MakeArray(std::move(data));
}

arrow::Result<RowCodec> RowCodec::Make(std::shared_ptr<arrow::Schema> schema,
                                       const std::string& what) {
  auto type = arrow::struct_(schema->fields());
  for (const auto& field : schema->fields()) {
    auto st = CheckSupported(*field->type(), what);
    if (!st.ok()) {
      return st.WithMessage(what, ": column '", field->name(), "' of type ",
                            field->type()->ToString(), " cannot be kept in keyed state");
    }
  }
  ARROW_ASSIGN_OR_RAISE(auto codec, ArrowValueCodec::Make(type, what));
  return RowCodec(std::move(schema), std::move(codec));
}

arrow::Status RowCodec::Encode(const arrow::RecordBatch& batch,
                               const std::vector<int64_t>& rows,
                               const std::vector<std::string*>& outs) const {
  if (!batch.schema()->Equals(*schema_, /*check_metadata=*/false)) {
    return arrow::Status::TypeError("rows of schema (", batch.schema()->ToString(false),
                                    ") given to a row codec of schema (",
                                    schema_->ToString(false), ")");
  }
  if (rows.size() != outs.size()) {
    return arrow::Status::Invalid("row encoding: ", rows.size(), " rows for ",
                                  outs.size(), " outputs");
  }
  // The encoding of a valid struct of the columns.
  for (std::string* out : outs) out->push_back(1);
  for (int c = 0; c < batch.num_columns(); ++c) {
    ARROW_RETURN_NOT_OK(EncodeItems(*batch.column_data(c), rows.data(),
                                    static_cast<int64_t>(rows.size()), outs.data()));
  }
  return arrow::Status::OK();
}

arrow::Result<std::shared_ptr<arrow::RecordBatch>> RowCodec::Decode(
    const std::vector<std::string_view>& values, arrow::MemoryPool* pool) const {
  std::vector<std::optional<std::string_view>> present(values.begin(), values.end());
  ARROW_ASSIGN_OR_RAISE(auto array, codec_.Decode(present, pool));
  const auto& data = array->data();
  std::vector<std::shared_ptr<arrow::Array>> columns;
  for (const auto& child : data->child_data) columns.push_back(arrow::MakeArray(child));
  return arrow::RecordBatch::Make(schema_, array->length(), std::move(columns));
}

}  // namespace sabot
