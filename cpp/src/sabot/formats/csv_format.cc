#include "sabot/formats/csv_format.h"

#include <arrow/array.h>
#include <arrow/array/builder_binary.h>
#include <arrow/array/builder_primitive.h>
#include <arrow/record_batch.h>

#include <charconv>
#include <cmath>
#include <limits>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sabot/formats/decoded_batch_builder.h"
#include "sabot/formats/value_text.h"

namespace sabot {

namespace {

arrow::Status CheckCsvType(const arrow::Field& field) {
  switch (field.type()->id()) {
    case arrow::Type::BOOL:
    case arrow::Type::INT8:
    case arrow::Type::INT16:
    case arrow::Type::INT32:
    case arrow::Type::INT64:
    case arrow::Type::UINT8:
    case arrow::Type::UINT16:
    case arrow::Type::UINT32:
    case arrow::Type::UINT64:
    case arrow::Type::FLOAT:
    case arrow::Type::DOUBLE:
    case arrow::Type::STRING:
    case arrow::Type::LARGE_STRING:
    case arrow::Type::BINARY:
    case arrow::Type::LARGE_BINARY:
    case arrow::Type::DATE32:
    case arrow::Type::TIMESTAMP:
      return arrow::Status::OK();
    default:
      return arrow::Status::NotImplemented("csv format: column '", field.name(),
                                           "' of type ", field.type()->ToString());
  }
}

// One field of a record: its text (unescaped) and whether it was quoted. An
// empty unquoted field is null; a quoted empty field is an empty string.
struct CsvField {
  std::string_view text;
  bool quoted = false;
};

// A parsed value, ready to append.
struct CsvValue {
  bool is_null = false;
  int64_t i = 0;
  uint64_t u = 0;
  double d = 0;
  std::string_view s;
};

class CsvDecoder : public Decoder {
 public:
  CsvDecoder(const FormatOptions& options) : delimiter_(options.csv_delimiter) {}

  arrow::Status Init(std::shared_ptr<arrow::Schema> schema, arrow::MemoryPool* pool) {
    for (const auto& field : schema->fields()) ARROW_RETURN_NOT_OK(CheckCsvType(*field));
    ARROW_ASSIGN_OR_RAISE(batch_, DecodedBatchBuilder::Make(schema, pool));
    schema_ = std::move(schema);
    values_.resize(static_cast<size_t>(schema_->num_fields()));
    return arrow::Status::OK();
  }

  std::shared_ptr<arrow::Schema> schema() const override { return schema_; }

  arrow::Result<DecodedBatch> Decode(const arrow::BinaryArray& messages) override {
    for (int64_t i = 0; i < messages.length(); ++i) {
      if (messages.IsNull(i)) continue;
      if (!Split(messages.GetView(i)) || !ParseValues()) {
        batch_->AddError(i, error_);
        continue;
      }
      ARROW_RETURN_NOT_OK(AppendValues());
      ARROW_RETURN_NOT_OK(batch_->AddRows(i));
    }
    return batch_->Finish();
  }

 private:
  // Splits `record` into fields_ (RFC 4180 quoting; a trailing "\n" or "\r\n"
  // is dropped). Unescaped quoted text goes to unescaped_, which is reserved
  // up front so views into it stay valid.
  bool Split(std::string_view record) {
    if (!record.empty() && record.back() == '\n') record.remove_suffix(1);
    if (!record.empty() && record.back() == '\r') record.remove_suffix(1);
    fields_.clear();
    unescaped_.clear();
    unescaped_.reserve(record.size());
    size_t pos = 0;
    while (true) {
      CsvField field;
      if (pos < record.size() && record[pos] == '"') {
        field.quoted = true;
        const size_t start = unescaped_.size();
        ++pos;
        while (true) {
          if (pos >= record.size()) {
            error_ = "column " + std::to_string(fields_.size() + 1) +
                     ": unterminated quoted field";
            return false;
          }
          const char c = record[pos++];
          if (c == '"') {
            if (pos < record.size() && record[pos] == '"') {
              unescaped_.push_back('"');
              ++pos;
              continue;
            }
            break;
          }
          unescaped_.push_back(c);
        }
        field.text = std::string_view(unescaped_).substr(start);
        if (pos < record.size() && record[pos] != delimiter_) {
          error_ = "column " + std::to_string(fields_.size() + 1) +
                   ": unexpected character after closing quote at byte " +
                   std::to_string(pos);
          return false;
        }
      } else {
        size_t end = record.find(delimiter_, pos);
        if (end == std::string_view::npos) end = record.size();
        field.text = record.substr(pos, end - pos);
        pos = end;
      }
      fields_.push_back(field);
      if (pos >= record.size()) break;
      ++pos;  // the delimiter
    }
    if (static_cast<int>(fields_.size()) != schema_->num_fields()) {
      error_ = "expected " + std::to_string(schema_->num_fields()) + " columns, got " +
               std::to_string(fields_.size());
      return false;
    }
    return true;
  }

  bool Fail(int column, const CsvField& field) {
    const auto& f = schema_->field(column);
    error_ = "column '" + f->name() + "' (" + std::to_string(column + 1) +
             "): cannot parse \"" + std::string(field.text.substr(0, 40)) + "\" as " +
             f->type()->ToString();
    return false;
  }

  bool ParseValues() {
    for (int c = 0; c < schema_->num_fields(); ++c) {
      const CsvField& field = fields_[static_cast<size_t>(c)];
      CsvValue& value = values_[static_cast<size_t>(c)];
      value = CsvValue{};
      const auto& type = *schema_->field(c)->type();
      if (field.text.empty() && !field.quoted) {
        if (!schema_->field(c)->nullable()) {
          error_ = "column '" + schema_->field(c)->name() + "' (" +
                   std::to_string(c + 1) + "): empty value for a non-nullable column";
          return false;
        }
        value.is_null = true;
        continue;
      }
      bool ok = true;
      switch (type.id()) {
        case arrow::Type::BOOL: {
          bool b;
          ok = ParseBoolText(field.text, &b);
          value.i = b;
          break;
        }
        case arrow::Type::INT8:
          ok = ParseSigned<int8_t>(field.text, &value.i);
          break;
        case arrow::Type::INT16:
          ok = ParseSigned<int16_t>(field.text, &value.i);
          break;
        case arrow::Type::INT32:
          ok = ParseSigned<int32_t>(field.text, &value.i);
          break;
        case arrow::Type::INT64:
          ok = ParseSigned<int64_t>(field.text, &value.i);
          break;
        case arrow::Type::UINT8:
          ok = ParseUnsigned<uint8_t>(field.text, &value.u);
          break;
        case arrow::Type::UINT16:
          ok = ParseUnsigned<uint16_t>(field.text, &value.u);
          break;
        case arrow::Type::UINT32:
          ok = ParseUnsigned<uint32_t>(field.text, &value.u);
          break;
        case arrow::Type::UINT64:
          ok = ParseUnsigned<uint64_t>(field.text, &value.u);
          break;
        case arrow::Type::FLOAT:
        case arrow::Type::DOUBLE:
          ok = ParseDoubleText(field.text, &value.d);
          break;
        case arrow::Type::STRING:
        case arrow::Type::LARGE_STRING:
          ok = IsValidUtf8(field.text);
          value.s = field.text;
          break;
        case arrow::Type::BINARY:
        case arrow::Type::LARGE_BINARY:
          value.s = field.text;
          break;
        case arrow::Type::DATE32: {
          int32_t days;
          ok = ParseDate32Text(field.text, &days);
          value.i = days;
          break;
        }
        case arrow::Type::TIMESTAMP:
          ok = ParseInt64Text(field.text, &value.i) ||
               ParseTimestampText(field.text,
                                  static_cast<const arrow::TimestampType&>(type).unit(),
                                  &value.i);
          break;
        default:
          ok = false;
      }
      if (!ok) return Fail(c, field);
    }
    return true;
  }

  template <typename T>
  static bool ParseSigned(std::string_view text, int64_t* out) {
    return ParseInt64Text(text, out) &&
           *out >= static_cast<int64_t>(std::numeric_limits<T>::min()) &&
           *out <= static_cast<int64_t>(std::numeric_limits<T>::max());
  }
  template <typename T>
  static bool ParseUnsigned(std::string_view text, uint64_t* out) {
    return ParseUInt64Text(text, out) && *out <= std::numeric_limits<T>::max();
  }

  arrow::Status AppendValues() {
    for (int c = 0; c < schema_->num_fields(); ++c) {
      const CsvValue& value = values_[static_cast<size_t>(c)];
      arrow::ArrayBuilder* builder = batch_->column(c);
      if (value.is_null) {
        ARROW_RETURN_NOT_OK(builder->AppendNull());
        continue;
      }
      switch (schema_->field(c)->type()->id()) {
        case arrow::Type::BOOL:
          ARROW_RETURN_NOT_OK(
              static_cast<arrow::BooleanBuilder*>(builder)->Append(value.i != 0));
          break;
        case arrow::Type::INT8:
          ARROW_RETURN_NOT_OK(static_cast<arrow::Int8Builder*>(builder)->Append(
              static_cast<int8_t>(value.i)));
          break;
        case arrow::Type::INT16:
          ARROW_RETURN_NOT_OK(static_cast<arrow::Int16Builder*>(builder)->Append(
              static_cast<int16_t>(value.i)));
          break;
        case arrow::Type::INT32:
          ARROW_RETURN_NOT_OK(static_cast<arrow::Int32Builder*>(builder)->Append(
              static_cast<int32_t>(value.i)));
          break;
        case arrow::Type::INT64:
          ARROW_RETURN_NOT_OK(
              static_cast<arrow::Int64Builder*>(builder)->Append(value.i));
          break;
        case arrow::Type::UINT8:
          ARROW_RETURN_NOT_OK(static_cast<arrow::UInt8Builder*>(builder)->Append(
              static_cast<uint8_t>(value.u)));
          break;
        case arrow::Type::UINT16:
          ARROW_RETURN_NOT_OK(static_cast<arrow::UInt16Builder*>(builder)->Append(
              static_cast<uint16_t>(value.u)));
          break;
        case arrow::Type::UINT32:
          ARROW_RETURN_NOT_OK(static_cast<arrow::UInt32Builder*>(builder)->Append(
              static_cast<uint32_t>(value.u)));
          break;
        case arrow::Type::UINT64:
          ARROW_RETURN_NOT_OK(
              static_cast<arrow::UInt64Builder*>(builder)->Append(value.u));
          break;
        case arrow::Type::FLOAT:
          ARROW_RETURN_NOT_OK(static_cast<arrow::FloatBuilder*>(builder)->Append(
              static_cast<float>(value.d)));
          break;
        case arrow::Type::DOUBLE:
          ARROW_RETURN_NOT_OK(
              static_cast<arrow::DoubleBuilder*>(builder)->Append(value.d));
          break;
        case arrow::Type::STRING:
          ARROW_RETURN_NOT_OK(
              static_cast<arrow::StringBuilder*>(builder)->Append(value.s));
          break;
        case arrow::Type::LARGE_STRING:
          ARROW_RETURN_NOT_OK(
              static_cast<arrow::LargeStringBuilder*>(builder)->Append(value.s));
          break;
        case arrow::Type::BINARY:
          ARROW_RETURN_NOT_OK(
              static_cast<arrow::BinaryBuilder*>(builder)->Append(value.s));
          break;
        case arrow::Type::LARGE_BINARY:
          ARROW_RETURN_NOT_OK(
              static_cast<arrow::LargeBinaryBuilder*>(builder)->Append(value.s));
          break;
        case arrow::Type::DATE32:
          ARROW_RETURN_NOT_OK(static_cast<arrow::Date32Builder*>(builder)->Append(
              static_cast<int32_t>(value.i)));
          break;
        case arrow::Type::TIMESTAMP:
          ARROW_RETURN_NOT_OK(
              static_cast<arrow::TimestampBuilder*>(builder)->Append(value.i));
          break;
        default:
          // Unreachable: the decoder checks every column type when it is made.
          return arrow::Status::NotImplemented(
              "csv format: column '", schema_->field(c)->name(), "' of type ",
              schema_->field(c)->type()->ToString(), " cannot be decoded");
      }
    }
    return arrow::Status::OK();
  }

  char delimiter_;
  std::shared_ptr<arrow::Schema> schema_;
  std::unique_ptr<DecodedBatchBuilder> batch_;
  std::vector<CsvField> fields_;
  std::vector<CsvValue> values_;
  std::string unescaped_;
  std::string error_;
};

class CsvEncoder : public Encoder {
 public:
  CsvEncoder(char delimiter, arrow::MemoryPool* pool)
      : delimiter_(delimiter), pool_(pool) {}

  arrow::Result<std::shared_ptr<arrow::BinaryArray>> Encode(
      const arrow::RecordBatch& batch) override {
    arrow::BinaryBuilder out(pool_);
    ARROW_RETURN_NOT_OK(out.Reserve(batch.num_rows()));
    for (int64_t row = 0; row < batch.num_rows(); ++row) {
      line_.clear();
      for (int c = 0; c < batch.num_columns(); ++c) {
        if (c > 0) line_.push_back(delimiter_);
        ARROW_RETURN_NOT_OK(AppendValue(*batch.column(c), row));
      }
      ARROW_RETURN_NOT_OK(out.Append(line_));
    }
    ARROW_ASSIGN_OR_RAISE(auto array, out.Finish());
    return std::static_pointer_cast<arrow::BinaryArray>(array);
  }

 private:
  template <typename T>
  void AppendNumber(T value) {
    char buf[64];
    auto res = std::to_chars(buf, buf + sizeof(buf), value);
    line_.append(buf, static_cast<size_t>(res.ptr - buf));
  }

  template <typename T>
  void AppendFloat(T value) {
    if (std::isnan(value)) {
      line_.append("nan");
    } else if (std::isinf(value)) {
      line_.append(value > 0 ? "inf" : "-inf");
    } else {
      AppendNumber(value);
    }
  }

  void AppendText(std::string_view text) {
    const char specials[4] = {delimiter_, '"', '\r', '\n'};
    const bool quote = text.empty() || text.find_first_of(std::string_view(
                                           specials, 4)) != std::string_view::npos;
    if (!quote) {
      line_.append(text);
      return;
    }
    line_.push_back('"');
    for (char c : text) {
      if (c == '"') line_.push_back('"');
      line_.push_back(c);
    }
    line_.push_back('"');
  }

  arrow::Status AppendValue(const arrow::Array& array, int64_t row) {
    if (array.IsNull(row)) return arrow::Status::OK();
    switch (array.type_id()) {
      case arrow::Type::BOOL:
        line_.append(static_cast<const arrow::BooleanArray&>(array).Value(row) ? "true"
                                                                               : "false");
        break;
      case arrow::Type::INT8:
        AppendNumber(static_cast<const arrow::Int8Array&>(array).Value(row));
        break;
      case arrow::Type::INT16:
        AppendNumber(static_cast<const arrow::Int16Array&>(array).Value(row));
        break;
      case arrow::Type::INT32:
        AppendNumber(static_cast<const arrow::Int32Array&>(array).Value(row));
        break;
      case arrow::Type::INT64:
        AppendNumber(static_cast<const arrow::Int64Array&>(array).Value(row));
        break;
      case arrow::Type::UINT8:
        AppendNumber(static_cast<const arrow::UInt8Array&>(array).Value(row));
        break;
      case arrow::Type::UINT16:
        AppendNumber(static_cast<const arrow::UInt16Array&>(array).Value(row));
        break;
      case arrow::Type::UINT32:
        AppendNumber(static_cast<const arrow::UInt32Array&>(array).Value(row));
        break;
      case arrow::Type::UINT64:
        AppendNumber(static_cast<const arrow::UInt64Array&>(array).Value(row));
        break;
      case arrow::Type::FLOAT:
        AppendFloat(static_cast<const arrow::FloatArray&>(array).Value(row));
        break;
      case arrow::Type::DOUBLE:
        AppendFloat(static_cast<const arrow::DoubleArray&>(array).Value(row));
        break;
      case arrow::Type::STRING:
        AppendText(static_cast<const arrow::StringArray&>(array).GetView(row));
        break;
      case arrow::Type::LARGE_STRING:
        AppendText(static_cast<const arrow::LargeStringArray&>(array).GetView(row));
        break;
      case arrow::Type::BINARY:
        AppendText(static_cast<const arrow::BinaryArray&>(array).GetView(row));
        break;
      case arrow::Type::LARGE_BINARY:
        AppendText(static_cast<const arrow::LargeBinaryArray&>(array).GetView(row));
        break;
      case arrow::Type::DATE32:
        AppendDate32Text(static_cast<const arrow::Date32Array&>(array).Value(row),
                         &line_);
        break;
      case arrow::Type::TIMESTAMP:
        AppendNumber(static_cast<const arrow::TimestampArray&>(array).Value(row));
        break;
      default:
        return arrow::Status::NotImplemented("csv encoding of ",
                                             array.type()->ToString());
    }
    return arrow::Status::OK();
  }

  char delimiter_;
  arrow::MemoryPool* pool_;
  std::string line_;
};

}  // namespace

arrow::Result<std::unique_ptr<Decoder>> MakeCsvDecoder(const FormatOptions& options,
                                                       arrow::MemoryPool* pool) {
  if (options.schema == nullptr) {
    return arrow::Status::Invalid("csv format needs a schema (the column order)");
  }
  if (options.csv_delimiter == '"' || options.csv_delimiter == '\n' ||
      options.csv_delimiter == '\r') {
    return arrow::Status::Invalid("csv format: invalid delimiter");
  }
  auto decoder = std::make_unique<CsvDecoder>(options);
  ARROW_RETURN_NOT_OK(decoder->Init(options.schema, pool));
  return decoder;
}

arrow::Result<std::unique_ptr<Encoder>> MakeCsvEncoder(
    const FormatOptions& options, std::shared_ptr<arrow::Schema> schema,
    arrow::MemoryPool* pool) {
  for (const auto& field : schema->fields()) ARROW_RETURN_NOT_OK(CheckCsvType(*field));
  return std::make_unique<CsvEncoder>(options.csv_delimiter, pool);
}

}  // namespace sabot
