#include "sabot/operators/row_key.h"

#include <arrow/array/array_binary.h>
#include <arrow/array/array_decimal.h>
#include <arrow/array/array_primitive.h>
#include <arrow/util/float16.h>

#include <cmath>
#include <cstring>
#include <limits>

namespace sabot {

namespace {

enum class KeyKind { kSigned, kUnsigned, kBool, kFloat, kBinary, kDecimal, kUnsupported };

KeyKind KindOf(const arrow::DataType& type) {
  switch (type.id()) {
    case arrow::Type::INT8:
    case arrow::Type::INT16:
    case arrow::Type::INT32:
    case arrow::Type::INT64:
    case arrow::Type::DATE32:
    case arrow::Type::DATE64:
    case arrow::Type::TIMESTAMP:
    case arrow::Type::TIME32:
    case arrow::Type::TIME64:
    case arrow::Type::DURATION:
      return KeyKind::kSigned;
    case arrow::Type::UINT8:
    case arrow::Type::UINT16:
    case arrow::Type::UINT32:
    case arrow::Type::UINT64:
      return KeyKind::kUnsigned;
    case arrow::Type::BOOL:
      return KeyKind::kBool;
    case arrow::Type::HALF_FLOAT:
    case arrow::Type::FLOAT:
    case arrow::Type::DOUBLE:
      return KeyKind::kFloat;
    case arrow::Type::STRING:
    case arrow::Type::BINARY:
    case arrow::Type::LARGE_STRING:
    case arrow::Type::LARGE_BINARY:
    case arrow::Type::STRING_VIEW:
    case arrow::Type::BINARY_VIEW:
    case arrow::Type::FIXED_SIZE_BINARY:
      return KeyKind::kBinary;
    case arrow::Type::DECIMAL128:
      return KeyKind::kDecimal;
    default:
      return KeyKind::kUnsupported;
  }
}

// The int64 value of row i of a signed integer or temporal column.
int64_t SignedAt(const arrow::Array& a, int64_t i) {
  const auto& data = *a.data();
  switch (a.type_id()) {
    case arrow::Type::INT8:
      return data.GetValues<int8_t>(1)[i];
    case arrow::Type::INT16:
      return data.GetValues<int16_t>(1)[i];
    case arrow::Type::INT32:
    case arrow::Type::DATE32:
    case arrow::Type::TIME32:
      return data.GetValues<int32_t>(1)[i];
    default:
      return data.GetValues<int64_t>(1)[i];
  }
}

uint64_t UnsignedAt(const arrow::Array& a, int64_t i) {
  const auto& data = *a.data();
  switch (a.type_id()) {
    case arrow::Type::UINT8:
      return data.GetValues<uint8_t>(1)[i];
    case arrow::Type::UINT16:
      return data.GetValues<uint16_t>(1)[i];
    case arrow::Type::UINT32:
      return data.GetValues<uint32_t>(1)[i];
    default:
      return data.GetValues<uint64_t>(1)[i];
  }
}

double FloatAt(const arrow::Array& a, int64_t i) {
  switch (a.type_id()) {
    case arrow::Type::HALF_FLOAT:
      return arrow::util::Float16::FromBits(
                 static_cast<const arrow::HalfFloatArray&>(a).Value(i))
          .ToDouble();
    case arrow::Type::FLOAT:
      return static_cast<const arrow::FloatArray&>(a).Value(i);
    default:
      return static_cast<const arrow::DoubleArray&>(a).Value(i);
  }
}

std::string_view BinaryAt(const arrow::Array& a, int64_t i) {
  switch (a.type_id()) {
    case arrow::Type::STRING:
    case arrow::Type::BINARY:
      return static_cast<const arrow::BinaryArray&>(a).GetView(i);
    case arrow::Type::LARGE_STRING:
    case arrow::Type::LARGE_BINARY:
      return static_cast<const arrow::LargeBinaryArray&>(a).GetView(i);
    case arrow::Type::FIXED_SIZE_BINARY:
      return static_cast<const arrow::FixedSizeBinaryArray&>(a).GetView(i);
    default:
      return static_cast<const arrow::BinaryViewArray&>(a).GetView(i);
  }
}

// Bytes a non-null value of column `a` at row i takes after its tag.
int64_t ValueSize(KeyKind kind, const arrow::Array& a, int64_t i) {
  switch (kind) {
    case KeyKind::kBool:
      return 1;
    case KeyKind::kDecimal:
      return 16;
    case KeyKind::kBinary:
      return 4 + static_cast<int64_t>(BinaryAt(a, i).size());
    default:
      return 8;
  }
}

}  // namespace

arrow::Status CheckRowKeyType(const arrow::DataType& type, const std::string& what) {
  if (KindOf(type) == KeyKind::kUnsupported) {
    return arrow::Status::NotImplemented(
        what, ": key columns of type ", type.ToString(),
        " are not supported (integers, floats, bool, "
        "strings, binaries, temporal types, decimal128)");
  }
  return arrow::Status::OK();
}

arrow::Status EncodeRowKeys(const std::vector<std::shared_ptr<arrow::Array>>& columns,
                            EncodedKeys* out, const std::string& what) {
  const int64_t n = columns.empty() ? 0 : columns[0]->length();
  std::vector<KeyKind> kinds;
  for (const auto& c : columns) {
    if (c->length() != n) {
      return arrow::Status::Invalid(what, ": key columns of different lengths");
    }
    kinds.push_back(KindOf(*c->type()));
    if (kinds.back() == KeyKind::kUnsupported) {
      return CheckRowKeyType(*c->type(), what);
    }
  }
  // Pass 1: the size of every row.
  out->offsets.assign(n + 1, 0);
  out->has_null.assign(n, 0);
  for (size_t c = 0; c < columns.size(); ++c) {
    const arrow::Array& a = *columns[c];
    const KeyKind kind = kinds[c];
    const bool fixed = kind != KeyKind::kBinary;
    const int64_t fixed_size = fixed ? 1 + ValueSize(kind, a, 0) : 0;
    for (int64_t i = 0; i < n; ++i) {
      if (a.IsNull(i)) {
        out->offsets[i + 1] += 1;
        out->has_null[i] = 1;
      } else {
        out->offsets[i + 1] += fixed ? fixed_size : 1 + ValueSize(kind, a, i);
      }
    }
  }
  for (int64_t i = 0; i < n; ++i) out->offsets[i + 1] += out->offsets[i];
  out->data.assign(static_cast<size_t>(out->offsets[n]), '\0');
  // Pass 2: column at a time, each row's bytes at its cursor.
  std::vector<int64_t> cursor(out->offsets.begin(), out->offsets.end() - (n > 0 ? 1 : 0));
  char* base = out->data.data();
  for (size_t c = 0; c < columns.size(); ++c) {
    const arrow::Array& a = *columns[c];
    const KeyKind kind = kinds[c];
    for (int64_t i = 0; i < n; ++i) {
      char* p = base + cursor[i];
      if (a.IsNull(i)) {
        *p = 0;
        cursor[i] += 1;
        continue;
      }
      switch (kind) {
        case KeyKind::kSigned: {
          *p = 1;
          int64_t v = SignedAt(a, i);
          std::memcpy(p + 1, &v, 8);
          cursor[i] += 9;
          break;
        }
        case KeyKind::kUnsigned: {
          uint64_t v = UnsignedAt(a, i);
          *p = v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) ? 2 : 1;
          std::memcpy(p + 1, &v, 8);
          cursor[i] += 9;
          break;
        }
        case KeyKind::kBool: {
          *p = 1;
          p[1] = static_cast<const arrow::BooleanArray&>(a).Value(i) ? 1 : 0;
          cursor[i] += 2;
          break;
        }
        case KeyKind::kFloat: {
          *p = 1;
          double v = FloatAt(a, i);
          if (v == 0.0) v = 0.0;  // -0.0 == 0.0
          if (std::isnan(v)) v = std::numeric_limits<double>::quiet_NaN();
          std::memcpy(p + 1, &v, 8);
          cursor[i] += 9;
          break;
        }
        case KeyKind::kBinary: {
          *p = 1;
          std::string_view v = BinaryAt(a, i);
          uint32_t len = static_cast<uint32_t>(v.size());
          std::memcpy(p + 1, &len, 4);
          if (len > 0) std::memcpy(p + 5, v.data(), len);
          cursor[i] += 5 + len;
          break;
        }
        case KeyKind::kDecimal: {
          *p = 1;
          std::memcpy(p + 1, static_cast<const arrow::Decimal128Array&>(a).GetValue(i),
                      16);
          cursor[i] += 17;
          break;
        }
        case KeyKind::kUnsupported:
          break;
      }
    }
  }
  return arrow::Status::OK();
}

}  // namespace sabot
