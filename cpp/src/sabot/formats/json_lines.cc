#include "sabot/formats/json_lines.h"

#include <arrow/array.h>
#include <arrow/type.h>
#include <arrow/type_traits.h>
#include <arrow/util/float16.h>
#include <arrow/visit_array_inline.h>

#include <charconv>
#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace sabot {

namespace {

// The JSON text of every value of one array, back to back: value i is
// data[offsets[i], offsets[i + 1]).
struct RenderedColumn {
  std::string data;
  std::vector<int64_t> offsets;

  std::string_view piece(int64_t i) const {
    return std::string_view(data).substr(
        static_cast<size_t>(offsets[i]),
        static_cast<size_t>(offsets[i + 1] - offsets[i]));
  }
};

constexpr char kHexDigits[] = "0123456789abcdef";

// Characters that need escaping inside a JSON string.
constexpr bool NeedsEscape(unsigned char c) { return c < 0x20 || c == '"' || c == '\\'; }

void AppendEscaped(std::string_view value, std::string* out) {
  out->push_back('"');
  const char* p = value.data();
  const char* end = p + value.size();
  while (p < end) {
    // Copy the longest run that needs no escaping in one go.
    const char* run = p;
    while (p < end && !NeedsEscape(static_cast<unsigned char>(*p))) ++p;
    out->append(run, static_cast<size_t>(p - run));
    if (p == end) break;
    const auto c = static_cast<unsigned char>(*p++);
    switch (c) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\r':
        out->append("\\r");
        break;
      case '\t':
        out->append("\\t");
        break;
      case '\b':
        out->append("\\b");
        break;
      case '\f':
        out->append("\\f");
        break;
      default: {
        const char esc[6] = {
            '\\', 'u', '0', '0', kHexDigits[c >> 4], kHexDigits[c & 0xF]};
        out->append(esc, sizeof(esc));
      }
    }
  }
  out->push_back('"');
}

void AppendBase64(std::string_view value, std::string* out) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  out->push_back('"');
  const auto* p = reinterpret_cast<const uint8_t*>(value.data());
  size_t n = value.size();
  size_t i = 0;
  for (; i + 3 <= n; i += 3) {
    const uint32_t v = (uint32_t{p[i]} << 16) | (uint32_t{p[i + 1]} << 8) | p[i + 2];
    const char quad[4] = {kAlphabet[v >> 18], kAlphabet[(v >> 12) & 63],
                          kAlphabet[(v >> 6) & 63], kAlphabet[v & 63]};
    out->append(quad, 4);
  }
  if (n - i == 1) {
    const uint32_t v = uint32_t{p[i]} << 16;
    const char quad[4] = {kAlphabet[v >> 18], kAlphabet[(v >> 12) & 63], '=', '='};
    out->append(quad, 4);
  } else if (n - i == 2) {
    const uint32_t v = (uint32_t{p[i]} << 16) | (uint32_t{p[i + 1]} << 8);
    const char quad[4] = {kAlphabet[v >> 18], kAlphabet[(v >> 12) & 63],
                          kAlphabet[(v >> 6) & 63], '='};
    out->append(quad, 4);
  }
  out->push_back('"');
}

template <typename Int>
void AppendInteger(Int value, std::string* out) {
  char buf[24];
  auto res = std::to_chars(buf, buf + sizeof(buf), value);
  out->append(buf, static_cast<size_t>(res.ptr - buf));
}

template <typename Float>
void AppendFloat(Float value, std::string* out) {
  if (!std::isfinite(value)) {
    out->append("null");
    return;
  }
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof(buf), value);
  std::string_view text(buf, static_cast<size_t>(res.ptr - buf));
  out->append(text);
  // Keep the value recognisably floating point for readers that infer types.
  if (text.find_first_of(".e") == std::string_view::npos) out->append(".0");
}

// Days since 1970-01-01 -> "YYYY-MM-DD" (proleptic Gregorian calendar).
void AppendDate(int64_t days, std::string* out) {
  // Shift the epoch to 0000-03-01 so leap days fall at the end of a 400-year era.
  const int64_t z = days + 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const int64_t day_of_era = z - era * 146097;
  const int64_t year_of_era =
      (day_of_era - day_of_era / 1460 + day_of_era / 36524 - day_of_era / 146096) / 365;
  const int64_t day_of_year =
      day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
  const int64_t mp = (5 * day_of_year + 2) / 153;
  const int64_t day = day_of_year - (153 * mp + 2) / 5 + 1;
  const int64_t month = mp < 10 ? mp + 3 : mp - 9;
  const int64_t year = year_of_era + era * 400 + (month <= 2 ? 1 : 0);

  char buf[32];
  char* p = buf;
  *p++ = '"';
  int64_t y = year;
  if (y < 0) {
    *p++ = '-';
    y = -y;
  }
  char ybuf[24];
  auto yres = std::to_chars(ybuf, ybuf + sizeof(ybuf), y);
  for (auto len = yres.ptr - ybuf; len < 4; ++len) *p++ = '0';
  for (const char* q = ybuf; q < yres.ptr; ++q) *p++ = *q;
  *p++ = '-';
  *p++ = static_cast<char>('0' + month / 10);
  *p++ = static_cast<char>('0' + month % 10);
  *p++ = '-';
  *p++ = static_cast<char>('0' + day / 10);
  *p++ = static_cast<char>('0' + day % 10);
  *p++ = '"';
  out->append(buf, static_cast<size_t>(p - buf));
}

int64_t FloorDiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

arrow::Status Render(const arrow::Array& array, RenderedColumn* out);

// Assembles JSON objects from rendered children. `keys[j]` is the already-quoted
// key of child j followed by ':'. Rows for which `is_null(i)` hold get "null".
// With `line_mode` each object is followed by '\n' and no offsets are recorded.
template <typename IsNull>
void AssembleObjects(const std::vector<std::string>& keys,
                     const std::vector<RenderedColumn>& children, int64_t length,
                     IsNull&& is_null, bool line_mode, std::string* out,
                     std::vector<int64_t>* offsets) {
  size_t extra = 0;
  for (const auto& child : children) extra += child.data.size();
  size_t key_bytes = 0;
  for (const auto& key : keys) key_bytes += key.size() + 1;
  out->reserve(out->size() + extra + static_cast<size_t>(length) * (key_bytes + 3));
  for (int64_t i = 0; i < length; ++i) {
    if (is_null(i)) {
      out->append("null");
    } else {
      out->push_back('{');
      for (size_t j = 0; j < children.size(); ++j) {
        if (j > 0) out->push_back(',');
        out->append(keys[j]);
        out->append(children[j].piece(i));
      }
      out->push_back('}');
    }
    if (line_mode) {
      out->push_back('\n');
    } else {
      offsets->push_back(static_cast<int64_t>(out->size()));
    }
  }
}

std::vector<std::string> RenderKeys(const arrow::FieldVector& fields) {
  std::vector<std::string> keys;
  keys.reserve(fields.size());
  for (const auto& field : fields) {
    std::string key;
    AppendEscaped(field->name(), &key);
    key.push_back(':');
    keys.push_back(std::move(key));
  }
  return keys;
}

// Renders every value of one array with one typed loop (dispatch happens once
// per array, in VisitArrayInline).
class RenderVisitor {
 public:
  explicit RenderVisitor(RenderedColumn* out) : out_(out) {}

  arrow::Status Visit(const arrow::NullArray& array) {
    Begin(array.length());
    for (int64_t i = 0; i < array.length(); ++i) {
      out_->data.append("null");
      out_->offsets.push_back(static_cast<int64_t>(out_->data.size()));
    }
    return arrow::Status::OK();
  }
  arrow::Status Visit(const arrow::BooleanArray& array) {
    return Each(array, [&](int64_t i, std::string* s) {
      s->append(array.Value(i) ? "true" : "false");
    });
  }
  arrow::Status Visit(const arrow::HalfFloatArray& array) {
    return Each(array, [&](int64_t i, std::string* s) {
      AppendFloat(arrow::util::Float16::FromBits(array.Value(i)).ToFloat(), s);
    });
  }
  arrow::Status Visit(const arrow::FloatArray& array) {
    return Each(array,
                [&](int64_t i, std::string* s) { AppendFloat(array.Value(i), s); });
  }
  arrow::Status Visit(const arrow::DoubleArray& array) {
    return Each(array,
                [&](int64_t i, std::string* s) { AppendFloat(array.Value(i), s); });
  }
  arrow::Status Visit(const arrow::Date32Array& array) {
    return Each(array, [&](int64_t i, std::string* s) { AppendDate(array.Value(i), s); });
  }
  arrow::Status Visit(const arrow::Date64Array& array) {
    return Each(array, [&](int64_t i, std::string* s) {
      AppendDate(FloorDiv(array.Value(i), 86400000), s);
    });
  }
  // Integers, timestamps, times and durations: the raw integer.
  template <typename ArrayType,
            typename T = typename arrow::TypeTraits<typename ArrayType::TypeClass>::CType>
  requires(std::is_integral_v<T> && !std::is_same_v<ArrayType, arrow::Date32Array> &&
           !std::is_same_v<ArrayType, arrow::Date64Array> &&
           !std::is_same_v<ArrayType, arrow::HalfFloatArray>) arrow::Status
      Visit(const ArrayType& array) {
    const T* values = array.raw_values();
    return Each(array, [&](int64_t i, std::string* s) { AppendInteger(values[i], s); });
  }
  arrow::Status Visit(const arrow::StringArray& array) { return Strings(array); }
  arrow::Status Visit(const arrow::LargeStringArray& array) { return Strings(array); }
  arrow::Status Visit(const arrow::StringViewArray& array) { return Strings(array); }
  arrow::Status Visit(const arrow::BinaryArray& array) { return Bytes(array); }
  arrow::Status Visit(const arrow::LargeBinaryArray& array) { return Bytes(array); }
  arrow::Status Visit(const arrow::BinaryViewArray& array) { return Bytes(array); }
  arrow::Status Visit(const arrow::FixedSizeBinaryArray& array) { return Bytes(array); }
  arrow::Status Visit(const arrow::Decimal32Array& array) { return Decimals(array); }
  arrow::Status Visit(const arrow::Decimal64Array& array) { return Decimals(array); }
  arrow::Status Visit(const arrow::Decimal128Array& array) { return Decimals(array); }
  arrow::Status Visit(const arrow::Decimal256Array& array) { return Decimals(array); }

  arrow::Status Visit(const arrow::StructArray& array) {
    const auto& fields = array.struct_type()->fields();
    std::vector<RenderedColumn> children(fields.size());
    for (int j = 0; j < array.num_fields(); ++j) {
      ARROW_RETURN_NOT_OK(Render(*array.field(j), &children[static_cast<size_t>(j)]));
    }
    Begin(array.length());
    AssembleObjects(
        RenderKeys(fields), children, array.length(),
        [&](int64_t i) { return array.IsNull(i); }, /*line_mode=*/false, &out_->data,
        &out_->offsets);
    return arrow::Status::OK();
  }
  arrow::Status Visit(const arrow::ListArray& array) { return Lists(array); }
  arrow::Status Visit(const arrow::LargeListArray& array) { return Lists(array); }
  arrow::Status Visit(const arrow::FixedSizeListArray& array) { return Lists(array); }
  arrow::Status Visit(const arrow::MapArray& array) { return Lists(array); }

  arrow::Status Visit(const arrow::DictionaryArray& array) {
    // Render each dictionary entry once, then copy per row.
    RenderedColumn dictionary;
    ARROW_RETURN_NOT_OK(Render(*array.dictionary(), &dictionary));
    return Each(array, [&](int64_t i, std::string* s) {
      s->append(dictionary.piece(array.GetValueIndex(i)));
    });
  }

  arrow::Status Visit(const arrow::Array& array) {
    return arrow::Status::NotImplemented("JSON lines encoding of type ",
                                         array.type()->ToString());
  }

 private:
  void Begin(int64_t length) {
    out_->data.clear();
    out_->offsets.clear();
    out_->offsets.reserve(static_cast<size_t>(length) + 1);
    out_->offsets.push_back(0);
  }

  // Calls append(i, &data) for each non-null row; nulls become "null".
  template <typename ArrayType, typename AppendValue>
  arrow::Status Each(const ArrayType& array, AppendValue&& append) {
    const int64_t length = array.length();
    Begin(length);
    std::string& data = out_->data;
    data.reserve(static_cast<size_t>(length) * 8);
    if (array.null_count() == 0) {
      for (int64_t i = 0; i < length; ++i) {
        append(i, &data);
        out_->offsets.push_back(static_cast<int64_t>(data.size()));
      }
    } else {
      for (int64_t i = 0; i < length; ++i) {
        if (array.IsNull(i)) {
          data.append("null");
        } else {
          append(i, &data);
        }
        out_->offsets.push_back(static_cast<int64_t>(data.size()));
      }
    }
    return arrow::Status::OK();
  }

  template <typename ArrayType>
  arrow::Status Strings(const ArrayType& array) {
    return Each(array,
                [&](int64_t i, std::string* s) { AppendEscaped(array.GetView(i), s); });
  }
  template <typename ArrayType>
  arrow::Status Bytes(const ArrayType& array) {
    return Each(array,
                [&](int64_t i, std::string* s) { AppendBase64(array.GetView(i), s); });
  }
  template <typename ArrayType>
  arrow::Status Decimals(const ArrayType& array) {
    return Each(array, [&](int64_t i, std::string* s) {
      s->push_back('"');
      s->append(array.FormatValue(i));
      s->push_back('"');
    });
  }

  template <typename ArrayType>
  arrow::Status Lists(const ArrayType& array) {
    const int64_t length = array.length();
    const int64_t begin = length > 0 ? array.value_offset(0) : 0;
    const int64_t end =
        length > 0 ? array.value_offset(length - 1) + array.value_length(length - 1) : 0;
    // Render only the child range this (possibly sliced) array covers.
    RenderedColumn values;
    ARROW_RETURN_NOT_OK(Render(*array.values()->Slice(begin, end - begin), &values));
    return Each(array, [&](int64_t i, std::string* s) {
      const int64_t first = array.value_offset(i) - begin;
      const int64_t count = array.value_length(i);
      s->push_back('[');
      if (count > 0) {
        // Pieces of consecutive children are contiguous; commas go between them.
        for (int64_t k = first; k < first + count; ++k) {
          if (k > first) s->push_back(',');
          s->append(values.piece(k));
        }
      }
      s->push_back(']');
    });
  }

  RenderedColumn* out_;
};

arrow::Status Render(const arrow::Array& array, RenderedColumn* out) {
  RenderVisitor visitor(out);
  return arrow::VisitArrayInline(array, &visitor);
}

}  // namespace

void AppendJsonString(std::string_view value, std::string* out) {
  AppendEscaped(value, out);
}

namespace {

arrow::Status RenderColumns(const arrow::RecordBatch& batch,
                            std::vector<RenderedColumn>* columns) {
  columns->resize(static_cast<size_t>(batch.num_columns()));
  for (int j = 0; j < batch.num_columns(); ++j) {
    arrow::Status st = Render(*batch.column(j), &(*columns)[static_cast<size_t>(j)]);
    if (!st.ok()) {
      return st.WithMessage("column '", batch.schema()->field(j)->name(),
                            "': ", st.message());
    }
  }
  return arrow::Status::OK();
}

}  // namespace

arrow::Status AppendJsonLines(const arrow::RecordBatch& batch, std::string* out) {
  std::vector<RenderedColumn> columns;
  ARROW_RETURN_NOT_OK(RenderColumns(batch, &columns));
  AssembleObjects(
      RenderKeys(batch.schema()->fields()), columns, batch.num_rows(),
      [](int64_t) { return false; }, /*line_mode=*/true, out, nullptr);
  return arrow::Status::OK();
}

arrow::Status AppendJsonObjects(const arrow::RecordBatch& batch, std::string* data,
                                std::vector<int64_t>* end_offsets) {
  std::vector<RenderedColumn> columns;
  ARROW_RETURN_NOT_OK(RenderColumns(batch, &columns));
  AssembleObjects(
      RenderKeys(batch.schema()->fields()), columns, batch.num_rows(),
      [](int64_t) { return false; }, /*line_mode=*/false, data, end_offsets);
  return arrow::Status::OK();
}

}  // namespace sabot
