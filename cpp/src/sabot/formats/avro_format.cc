#include "sabot/formats/avro_format.h"

#include <arrow/array.h>
#include <arrow/array/builder_binary.h>
#include <arrow/array/builder_nested.h>
#include <arrow/array/builder_primitive.h>
#include <arrow/builder.h>
#include <arrow/record_batch.h>

#include <cstring>
#include <limits>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sabot/formats/avro_schema.h"
#include "sabot/formats/decoded_batch_builder.h"
#include "sabot/formats/json_lines.h"
#include "sabot/formats/value_text.h"

namespace sabot {

namespace {

constexpr int64_t kConfluentHeaderSize = 5;
// Items that encode to zero bytes (arrays of null, of empty records) are not
// bounded by the payload size; cap them per message.
constexpr int64_t kMaxZeroByteItems = int64_t{1} << 20;

// ---------------------------------------------------------------------------
// Arrow <-> Avro type mapping

int TimeUnitExponent(arrow::TimeUnit::type unit) {
  switch (unit) {
    case arrow::TimeUnit::SECOND:
      return 0;
    case arrow::TimeUnit::MILLI:
      return 3;
    case arrow::TimeUnit::MICRO:
      return 6;
    case arrow::TimeUnit::NANO:
      return 9;
  }
  return 0;
}

// The unit of a timestamp logical type, or -1.
int AvroTimestampExponent(AvroLogicalType logical) {
  switch (logical) {
    case AvroLogicalType::kTimestampMillis:
    case AvroLogicalType::kLocalTimestampMillis:
      return 3;
    case AvroLogicalType::kTimestampMicros:
    case AvroLogicalType::kLocalTimestampMicros:
      return 6;
    case AvroLogicalType::kTimestampNanos:
    case AvroLogicalType::kLocalTimestampNanos:
      return 9;
    default:
      return -1;
  }
}

arrow::Result<std::shared_ptr<arrow::DataType>> DefaultArrowType(const AvroNode& node,
                                                                 bool* nullable);

arrow::Result<arrow::FieldVector> DefaultArrowFields(const AvroNode& record) {
  arrow::FieldVector fields;
  for (size_t k = 0; k < record.children.size(); ++k) {
    bool nullable = false;
    ARROW_ASSIGN_OR_RAISE(auto type, DefaultArrowType(*record.children[k], &nullable));
    fields.push_back(arrow::field(record.field_names[k], std::move(type), nullable));
  }
  return fields;
}

arrow::Result<std::shared_ptr<arrow::DataType>> DefaultArrowType(const AvroNode& node,
                                                                 bool* nullable) {
  *nullable = false;
  switch (node.type) {
    case AvroType::kNull:
      *nullable = true;
      return arrow::null();
    case AvroType::kBoolean:
      return arrow::boolean();
    case AvroType::kInt:
      if (node.logical == AvroLogicalType::kDate) return arrow::date32();
      if (node.logical == AvroLogicalType::kTimeMillis) {
        return arrow::time32(arrow::TimeUnit::MILLI);
      }
      return arrow::int32();
    case AvroType::kLong:
      switch (node.logical) {
        case AvroLogicalType::kTimeMicros:
          return arrow::time64(arrow::TimeUnit::MICRO);
        case AvroLogicalType::kTimestampMillis:
          return arrow::timestamp(arrow::TimeUnit::MILLI, "UTC");
        case AvroLogicalType::kTimestampMicros:
          return arrow::timestamp(arrow::TimeUnit::MICRO, "UTC");
        case AvroLogicalType::kTimestampNanos:
          return arrow::timestamp(arrow::TimeUnit::NANO, "UTC");
        case AvroLogicalType::kLocalTimestampMillis:
          return arrow::timestamp(arrow::TimeUnit::MILLI);
        case AvroLogicalType::kLocalTimestampMicros:
          return arrow::timestamp(arrow::TimeUnit::MICRO);
        case AvroLogicalType::kLocalTimestampNanos:
          return arrow::timestamp(arrow::TimeUnit::NANO);
        default:
          return arrow::int64();
      }
    case AvroType::kFloat:
      return arrow::float32();
    case AvroType::kDouble:
      return arrow::float64();
    case AvroType::kBytes:
      return arrow::binary();
    case AvroType::kString:
    case AvroType::kEnum:
      return arrow::utf8();
    case AvroType::kFixed:
      return arrow::fixed_size_binary(static_cast<int32_t>(node.fixed_size));
    case AvroType::kRecord: {
      ARROW_ASSIGN_OR_RAISE(auto fields, DefaultArrowFields(node));
      return arrow::struct_(std::move(fields));
    }
    case AvroType::kArray: {
      bool item_nullable;
      ARROW_ASSIGN_OR_RAISE(auto item,
                            DefaultArrowType(*node.children[0], &item_nullable));
      return arrow::list(arrow::field("item", std::move(item), item_nullable));
    }
    case AvroType::kMap: {
      bool item_nullable;
      ARROW_ASSIGN_OR_RAISE(auto item,
                            DefaultArrowType(*node.children[0], &item_nullable));
      return std::make_shared<arrow::MapType>(
          arrow::field("key", arrow::utf8(), false),
          arrow::field("value", std::move(item), item_nullable));
    }
    case AvroType::kUnion: {
      std::shared_ptr<arrow::DataType> type;
      for (const AvroNode* branch : node.children) {
        if (branch->type == AvroType::kNull) {
          *nullable = true;
        } else if (type == nullptr) {
          bool ignored;
          ARROW_ASSIGN_OR_RAISE(type, DefaultArrowType(*branch, &ignored));
        }
      }
      if (type == nullptr) return arrow::null();
      return type;
    }
  }
  return arrow::Status::NotImplemented("Avro type ", AvroTypeName(node.type));
}

arrow::Status AppendAvroType(const arrow::DataType& type, const std::string& name_hint,
                             std::string* out);

arrow::Status AppendAvroFields(const arrow::FieldVector& fields,
                               const std::string& record_name, std::string* out) {
  out->append("{\"type\":\"record\",\"name\":");
  AppendJsonString(record_name, out);
  out->append(",\"fields\":[");
  for (size_t i = 0; i < fields.size(); ++i) {
    const auto& field = fields[i];
    if (i > 0) out->push_back(',');
    out->append("{\"name\":");
    AppendJsonString(field->name(), out);
    out->append(",\"type\":");
    // A null-typed field is already nullable: ["null", "null"] is not a union.
    const bool as_union = field->nullable() && field->type()->id() != arrow::Type::NA;
    if (as_union) out->append("[\"null\",");
    ARROW_RETURN_NOT_OK(
        AppendAvroType(*field->type(), record_name + "_" + field->name(), out));
    if (as_union) out->append("],\"default\":null");
    out->push_back('}');
  }
  out->append("]}");
  return arrow::Status::OK();
}

arrow::Status AppendAvroType(const arrow::DataType& type, const std::string& name_hint,
                             std::string* out) {
  switch (type.id()) {
    case arrow::Type::NA:
      out->append("\"null\"");
      return arrow::Status::OK();
    case arrow::Type::BOOL:
      out->append("\"boolean\"");
      return arrow::Status::OK();
    case arrow::Type::INT8:
    case arrow::Type::INT16:
    case arrow::Type::INT32:
      out->append("\"int\"");
      return arrow::Status::OK();
    case arrow::Type::INT64:
      out->append("\"long\"");
      return arrow::Status::OK();
    case arrow::Type::FLOAT:
      out->append("\"float\"");
      return arrow::Status::OK();
    case arrow::Type::DOUBLE:
      out->append("\"double\"");
      return arrow::Status::OK();
    case arrow::Type::STRING:
    case arrow::Type::LARGE_STRING:
      out->append("\"string\"");
      return arrow::Status::OK();
    case arrow::Type::BINARY:
    case arrow::Type::LARGE_BINARY:
      out->append("\"bytes\"");
      return arrow::Status::OK();
    case arrow::Type::FIXED_SIZE_BINARY:
      out->append("{\"type\":\"fixed\",\"name\":");
      AppendJsonString(name_hint, out);
      out->append(",\"size\":" +
                  std::to_string(
                      static_cast<const arrow::FixedSizeBinaryType&>(type).byte_width()) +
                  "}");
      return arrow::Status::OK();
    case arrow::Type::DATE32:
      out->append("{\"type\":\"int\",\"logicalType\":\"date\"}");
      return arrow::Status::OK();
    case arrow::Type::TIME32:
      if (static_cast<const arrow::Time32Type&>(type).unit() != arrow::TimeUnit::MILLI)
        break;
      out->append("{\"type\":\"int\",\"logicalType\":\"time-millis\"}");
      return arrow::Status::OK();
    case arrow::Type::TIME64:
      if (static_cast<const arrow::Time64Type&>(type).unit() != arrow::TimeUnit::MICRO)
        break;
      out->append("{\"type\":\"long\",\"logicalType\":\"time-micros\"}");
      return arrow::Status::OK();
    case arrow::Type::TIMESTAMP: {
      const auto& ts = static_cast<const arrow::TimestampType&>(type);
      const char* unit = ts.unit() == arrow::TimeUnit::MILLI   ? "millis"
                         : ts.unit() == arrow::TimeUnit::MICRO ? "micros"
                         : ts.unit() == arrow::TimeUnit::NANO  ? "nanos"
                                                               : nullptr;
      if (unit == nullptr) {
        out->append("\"long\"");
      } else {
        out->append(std::string("{\"type\":\"long\",\"logicalType\":\"") +
                    (ts.timezone().empty() ? "local-" : "") + "timestamp-" + unit +
                    "\"}");
      }
      return arrow::Status::OK();
    }
    case arrow::Type::STRUCT:
      return AppendAvroFields(type.fields(), name_hint, out);
    case arrow::Type::LIST:
    case arrow::Type::LARGE_LIST: {
      const auto& item = type.field(0);
      out->append("{\"type\":\"array\",\"items\":");
      if (item->nullable()) out->append("[\"null\",");
      ARROW_RETURN_NOT_OK(AppendAvroType(*item->type(), name_hint + "_item", out));
      if (item->nullable()) out->push_back(']');
      out->push_back('}');
      return arrow::Status::OK();
    }
    case arrow::Type::MAP: {
      const auto& map = static_cast<const arrow::MapType&>(type);
      if (map.key_type()->id() != arrow::Type::STRING) break;
      out->append("{\"type\":\"map\",\"values\":");
      if (map.item_field()->nullable()) out->append("[\"null\",");
      ARROW_RETURN_NOT_OK(AppendAvroType(*map.item_type(), name_hint + "_value", out));
      if (map.item_field()->nullable()) out->push_back(']');
      out->push_back('}');
      return arrow::Status::OK();
    }
    default:
      break;
  }
  return arrow::Status::NotImplemented("no Avro type for Arrow ", type.ToString());
}

// ---------------------------------------------------------------------------
// The codec plan: an Avro writer-schema node paired with the Arrow type its
// values decode to / encode from.

struct AvroColumn {
  const AvroNode* avro = nullptr;
  std::shared_ptr<arrow::DataType> type;  // null: decoded and skipped
  bool nullable = true;
  std::string name;  // dotted field path, for errors
  std::vector<std::unique_ptr<AvroColumn>> children;
  // Record: the Arrow child index of each writer field (-1: not in Arrow), and
  // the Arrow children no writer field feeds (null when decoding).
  std::vector<int> arrow_index;
  std::vector<int> missing;
  // Union: the null branch (or -1) and the branch the encoder writes values with.
  int null_branch = -1;
  int value_branch = -1;
  // Timestamps: arrow = avro * mul / div.
  int64_t mul = 1;
  int64_t div = 1;
  bool map_as_list = false;  // map -> list<struct<key, value>>
  // Bound builders (decoding).
  arrow::ArrayBuilder* builder = nullptr;
  arrow::ArrayBuilder* key_builder = nullptr;     // map keys
  arrow::StructBuilder* entry_builder = nullptr;  // map_as_list entries
  std::vector<arrow::ArrayBuilder*> missing_builders;
};

arrow::Status Incompatible(const AvroNode& avro, const arrow::DataType& type,
                           const std::string& name) {
  return arrow::Status::TypeError("field '", name, "': Avro type ",
                                  AvroTypeName(avro.type), " does not map to Arrow ",
                                  type.ToString());
}

arrow::Result<std::unique_ptr<AvroColumn>> Compile(const AvroNode& avro,
                                                   std::shared_ptr<arrow::DataType> type,
                                                   bool nullable, const std::string& name,
                                                   bool encode) {
  auto column = std::make_unique<AvroColumn>();
  column->avro = &avro;
  column->type = type;
  column->nullable = nullable;
  column->name = name;
  if (type == nullptr) {
    // Skipped (decoding only): children are skipped too.
    for (const AvroNode* child : avro.children) {
      ARROW_ASSIGN_OR_RAISE(auto c, Compile(*child, nullptr, true, name, encode));
      column->children.push_back(std::move(c));
    }
    return column;
  }
  const arrow::Type::type id = type->id();
  auto fail = [&] { return Incompatible(avro, *type, name); };
  switch (avro.type) {
    case AvroType::kNull:
      break;
    case AvroType::kBoolean:
      if (id != arrow::Type::BOOL) return fail();
      break;
    case AvroType::kInt:
      if (id != arrow::Type::INT8 && id != arrow::Type::INT16 &&
          id != arrow::Type::INT32 && id != arrow::Type::INT64 &&
          id != arrow::Type::DATE32 && id != arrow::Type::TIME32) {
        return fail();
      }
      break;
    case AvroType::kLong: {
      if (id != arrow::Type::INT64 && id != arrow::Type::TIMESTAMP &&
          id != arrow::Type::TIME64) {
        return fail();
      }
      const int avro_exp = AvroTimestampExponent(avro.logical);
      if (id == arrow::Type::TIMESTAMP && avro_exp >= 0) {
        const int arrow_exp =
            TimeUnitExponent(static_cast<const arrow::TimestampType&>(*type).unit());
        for (int e = avro_exp; e < arrow_exp; ++e) column->mul *= 10;
        for (int e = arrow_exp; e < avro_exp; ++e) column->div *= 10;
      }
      break;
    }
    case AvroType::kFloat:
      if (id != arrow::Type::FLOAT && id != arrow::Type::DOUBLE) return fail();
      break;
    case AvroType::kDouble:
      if (id != arrow::Type::DOUBLE) return fail();
      break;
    case AvroType::kBytes:
      if (id != arrow::Type::BINARY && id != arrow::Type::LARGE_BINARY) return fail();
      break;
    case AvroType::kString:
      if (id != arrow::Type::STRING && id != arrow::Type::LARGE_STRING &&
          id != arrow::Type::BINARY && id != arrow::Type::LARGE_BINARY) {
        return fail();
      }
      break;
    case AvroType::kEnum:
      if (id != arrow::Type::STRING && id != arrow::Type::LARGE_STRING) return fail();
      break;
    case AvroType::kFixed:
      if (id == arrow::Type::FIXED_SIZE_BINARY) {
        if (static_cast<const arrow::FixedSizeBinaryType&>(*type).byte_width() !=
            avro.fixed_size) {
          return fail();
        }
      } else if (id != arrow::Type::BINARY && id != arrow::Type::LARGE_BINARY) {
        return fail();
      }
      break;
    case AvroType::kArray: {
      if (id != arrow::Type::LIST && id != arrow::Type::LARGE_LIST) return fail();
      const auto& item = type->field(0);
      ARROW_ASSIGN_OR_RAISE(auto c, Compile(*avro.children[0], item->type(),
                                            item->nullable(), name + "[]", encode));
      column->children.push_back(std::move(c));
      break;
    }
    case AvroType::kMap: {
      std::shared_ptr<arrow::Field> key, value;
      if (id == arrow::Type::MAP) {
        const auto& map = static_cast<const arrow::MapType&>(*type);
        key = map.key_field();
        value = map.item_field();
      } else if (id == arrow::Type::LIST &&
                 type->field(0)->type()->id() == arrow::Type::STRUCT &&
                 type->field(0)->type()->num_fields() == 2) {
        key = type->field(0)->type()->field(0);
        value = type->field(0)->type()->field(1);
        column->map_as_list = true;
      } else {
        return fail();
      }
      if (key->type()->id() != arrow::Type::STRING) return fail();
      ARROW_ASSIGN_OR_RAISE(auto c, Compile(*avro.children[0], value->type(),
                                            value->nullable(), name + "{}", encode));
      column->children.push_back(std::move(c));
      break;
    }
    case AvroType::kRecord: {
      if (id != arrow::Type::STRUCT) return fail();
      std::vector<bool> fed(static_cast<size_t>(type->num_fields()), false);
      for (size_t k = 0; k < avro.children.size(); ++k) {
        const std::string& field_name = avro.field_names[k];
        const int index =
            static_cast<const arrow::StructType&>(*type).GetFieldIndex(field_name);
        const std::string path = name.empty() ? field_name : name + "." + field_name;
        column->arrow_index.push_back(index);
        std::unique_ptr<AvroColumn> c;
        if (index >= 0) {
          fed[static_cast<size_t>(index)] = true;
          const auto& field = type->field(index);
          ARROW_ASSIGN_OR_RAISE(c, Compile(*avro.children[k], field->type(),
                                           field->nullable(), path, encode));
        } else if (encode) {
          const AvroNode& child = *avro.children[k];
          bool has_null = child.type == AvroType::kNull;
          for (const AvroNode* b : child.children) {
            if (child.type == AvroType::kUnion && b->type == AvroType::kNull)
              has_null = true;
          }
          if (!has_null) {
            return arrow::Status::Invalid(
                "Avro field '", path,
                "' is not nullable and missing from the Arrow schema");
          }
          ARROW_ASSIGN_OR_RAISE(c, Compile(child, nullptr, true, path, encode));
          for (size_t b = 0; b < child.children.size(); ++b) {
            if (child.children[b]->type == AvroType::kNull)
              c->null_branch = static_cast<int>(b);
          }
        } else {
          ARROW_ASSIGN_OR_RAISE(c,
                                Compile(*avro.children[k], nullptr, true, path, encode));
        }
        column->children.push_back(std::move(c));
      }
      for (int j = 0; j < type->num_fields(); ++j) {
        if (fed[static_cast<size_t>(j)] || encode) continue;
        if (!type->field(j)->nullable()) {
          return arrow::Status::Invalid(
              "field '", type->field(j)->name(),
              "' is not in the Avro writer schema and not nullable");
        }
        column->missing.push_back(j);
      }
      break;
    }
    case AvroType::kUnion:
      for (size_t b = 0; b < avro.children.size(); ++b) {
        const AvroNode& branch = *avro.children[b];
        if (branch.type == AvroType::kNull) {
          column->null_branch = static_cast<int>(b);
          ARROW_ASSIGN_OR_RAISE(auto c, Compile(branch, type, nullable, name, encode));
          column->children.push_back(std::move(c));
          continue;
        }
        auto c = Compile(branch, type, nullable, name, encode);
        if (!c.ok()) {
          if (!encode) return c.status();
          column->children.push_back(nullptr);  // never written
          continue;
        }
        if (column->value_branch < 0) column->value_branch = static_cast<int>(b);
        column->children.push_back(std::move(c).ValueOrDie());
      }
      if (encode && column->value_branch < 0 && id != arrow::Type::NA) {
        return Incompatible(avro, *type, name);
      }
      break;
  }
  return column;
}

void Bind(AvroColumn* column, arrow::ArrayBuilder* builder) {
  column->builder = builder;
  if (builder == nullptr || column->type == nullptr) return;
  switch (column->avro->type) {
    case AvroType::kArray: {
      arrow::ArrayBuilder* values =
          column->type->id() == arrow::Type::LIST
              ? static_cast<arrow::ListBuilder*>(builder)->value_builder()
              : static_cast<arrow::LargeListBuilder*>(builder)->value_builder();
      Bind(column->children[0].get(), values);
      break;
    }
    case AvroType::kMap:
      if (column->map_as_list) {
        auto* entries = static_cast<arrow::StructBuilder*>(
            static_cast<arrow::ListBuilder*>(builder)->value_builder());
        column->entry_builder = entries;
        column->key_builder = entries->field_builder(0);
        Bind(column->children[0].get(), entries->field_builder(1));
      } else {
        auto* map = static_cast<arrow::MapBuilder*>(builder);
        column->key_builder = map->key_builder();
        Bind(column->children[0].get(), map->item_builder());
      }
      break;
    case AvroType::kRecord:
      for (size_t k = 0; k < column->children.size(); ++k) {
        const int index = column->arrow_index[k];
        if (index >= 0) {
          Bind(column->children[k].get(), builder->child_builder(index).get());
        }
      }
      column->missing_builders.clear();
      for (int j : column->missing) {
        column->missing_builders.push_back(builder->child_builder(j).get());
      }
      break;
    case AvroType::kUnion:
      for (auto& child : column->children) {
        if (child) Bind(child.get(), builder);
      }
      break;
    default:
      break;
  }
}

// ---------------------------------------------------------------------------
// Decoding

// Reads one datum. Read<false> checks every byte and value against the plan
// without touching a builder; Read<true> appends, and runs only on data that
// passed the check, so builders never hold a partial row.
class AvroReader {
 public:
  void Reset(const uint8_t* data, size_t size, int64_t base_offset) {
    begin_ = pos_ = data;
    end_ = data + size;
    base_ = base_offset;
    zero_byte_items_ = 0;
    error_.clear();
    error_fields_.clear();
    status_ = arrow::Status::OK();
  }

  size_t remaining() const { return static_cast<size_t>(end_ - pos_); }
  int64_t offset() const { return base_ + (pos_ - begin_); }
  const arrow::Status& status() const { return status_; }

  std::string Reason() const {
    std::string field;
    for (auto it = error_fields_.rbegin(); it != error_fields_.rend(); ++it) {
      if (!field.empty()) field += ".";
      field += **it;
    }
    return field.empty() ? error_ : "field '" + field + "': " + error_;
  }

  bool Fail(const std::string& what) {
    error_ = what + " at byte " + std::to_string(offset());
    return false;
  }

  template <bool kBuild>
  bool Read(const AvroColumn& c) {
    const bool target = c.type != nullptr;
    arrow::ArrayBuilder* b = kBuild ? c.builder : nullptr;
    switch (c.avro->type) {
      case AvroType::kNull:
        if (target && !c.nullable && c.type->id() != arrow::Type::NA) {
          return Fail("null for a non-nullable field");
        }
        return b == nullptr || Ok(b->AppendNull());
      case AvroType::kBoolean: {
        if (remaining() < 1) return Fail("truncated boolean");
        const uint8_t v = *pos_;
        if (v > 1) return Fail("invalid boolean byte " + std::to_string(v));
        ++pos_;
        return b == nullptr || Ok(static_cast<arrow::BooleanBuilder*>(b)->Append(v == 1));
      }
      case AvroType::kInt: {
        int64_t v;
        if (!ReadLong(&v)) return false;
        if (v < std::numeric_limits<int32_t>::min() ||
            v > std::numeric_limits<int32_t>::max()) {
          return Fail("int value " + std::to_string(v) + " out of range");
        }
        if (!target) return true;
        return AppendInt<kBuild>(c, b, v);
      }
      case AvroType::kLong: {
        int64_t v;
        if (!ReadLong(&v)) return false;
        if (!target) return true;
        if (c.mul != 1 && __builtin_mul_overflow(v, c.mul, &v)) {
          return Fail("timestamp out of range");
        }
        if (c.div != 1) v = FloorDiv(v, c.div);
        if (b == nullptr) return true;
        switch (c.type->id()) {
          case arrow::Type::INT64:
            return Ok(static_cast<arrow::Int64Builder*>(b)->Append(v));
          case arrow::Type::TIMESTAMP:
            return Ok(static_cast<arrow::TimestampBuilder*>(b)->Append(v));
          default:
            return Ok(static_cast<arrow::Time64Builder*>(b)->Append(v));
        }
      }
      case AvroType::kFloat: {
        if (remaining() < 4) return Fail("truncated float");
        float v;
        std::memcpy(&v, pos_, 4);
        pos_ += 4;
        if (b == nullptr) return true;
        if (c.type->id() == arrow::Type::FLOAT) {
          return Ok(static_cast<arrow::FloatBuilder*>(b)->Append(v));
        }
        return Ok(static_cast<arrow::DoubleBuilder*>(b)->Append(v));
      }
      case AvroType::kDouble: {
        if (remaining() < 8) return Fail("truncated double");
        double v;
        std::memcpy(&v, pos_, 8);
        pos_ += 8;
        return b == nullptr || Ok(static_cast<arrow::DoubleBuilder*>(b)->Append(v));
      }
      case AvroType::kBytes:
      case AvroType::kString: {
        std::string_view v;
        if (!ReadBytes(&v)) return false;
        if (target && c.avro->type == AvroType::kString && IsUtf8Target(c) &&
            !IsValidUtf8(v)) {
          return Fail("invalid UTF-8 in string");
        }
        return b == nullptr || AppendBinary(c, b, v);
      }
      case AvroType::kEnum: {
        int64_t v;
        const int64_t at = offset();
        if (!ReadLong(&v)) return false;
        if (v < 0 || v >= static_cast<int64_t>(c.avro->symbols.size())) {
          error_ = "enum index " + std::to_string(v) + " out of range at byte " +
                   std::to_string(at);
          return false;
        }
        return b == nullptr ||
               AppendBinary(c, b, c.avro->symbols[static_cast<size_t>(v)]);
      }
      case AvroType::kFixed: {
        if (static_cast<int64_t>(remaining()) < c.avro->fixed_size) {
          return Fail("truncated fixed of " + std::to_string(c.avro->fixed_size) +
                      " bytes");
        }
        std::string_view v(reinterpret_cast<const char*>(pos_),
                           static_cast<size_t>(c.avro->fixed_size));
        pos_ += c.avro->fixed_size;
        if (b == nullptr) return true;
        if (c.type->id() == arrow::Type::FIXED_SIZE_BINARY) {
          return Ok(static_cast<arrow::FixedSizeBinaryBuilder*>(b)->Append(v));
        }
        return AppendBinary(c, b, v);
      }
      case AvroType::kArray: {
        if (b != nullptr) {
          if (c.type->id() == arrow::Type::LIST) {
            if (!Ok(static_cast<arrow::ListBuilder*>(b)->Append())) return false;
          } else if (!Ok(static_cast<arrow::LargeListBuilder*>(b)->Append())) {
            return false;
          }
        }
        const AvroColumn& item = *c.children[0];
        return ReadBlocks(item.avro->min_bytes, [&] { return Read<kBuild>(item); });
      }
      case AvroType::kMap: {
        if (b != nullptr) {
          const arrow::Status st = c.map_as_list
                                       ? static_cast<arrow::ListBuilder*>(b)->Append()
                                       : static_cast<arrow::MapBuilder*>(b)->Append();
          if (!Ok(st)) return false;
        }
        const AvroColumn& value = *c.children[0];
        return ReadBlocks(1 + value.avro->min_bytes, [&] {
          std::string_view key;
          if (!ReadBytes(&key)) return false;
          if (target && !IsValidUtf8(key)) return Fail("invalid UTF-8 in map key");
          if (b != nullptr) {
            if (c.entry_builder != nullptr && !Ok(c.entry_builder->Append()))
              return false;
            if (!Ok(static_cast<arrow::StringBuilder*>(c.key_builder)->Append(key))) {
              return false;
            }
          }
          return Read<kBuild>(value);
        });
      }
      case AvroType::kRecord: {
        // The root has no builder of its own: its fields are the batch columns.
        if (b != nullptr && !Ok(static_cast<arrow::StructBuilder*>(b)->Append())) {
          return false;
        }
        for (size_t k = 0; k < c.children.size(); ++k) {
          if (!Read<kBuild>(*c.children[k])) {
            error_fields_.push_back(&c.avro->field_names[k]);
            return false;
          }
        }
        if (kBuild) {
          for (arrow::ArrayBuilder* missing : c.missing_builders) {
            if (!Ok(missing->AppendNull())) return false;
          }
        }
        return true;
      }
      case AvroType::kUnion: {
        int64_t index;
        const int64_t at = offset();
        if (!ReadLong(&index)) return false;
        if (index < 0 || index >= static_cast<int64_t>(c.children.size())) {
          error_ = "union branch " + std::to_string(index) + " out of range at byte " +
                   std::to_string(at);
          return false;
        }
        return Read<kBuild>(*c.children[static_cast<size_t>(index)]);
      }
    }
    return Fail("unknown Avro type");
  }

 private:
  bool Ok(const arrow::Status& st) {
    if (st.ok()) return true;
    status_ = st;
    error_ = st.ToString();
    return false;
  }

  static bool IsUtf8Target(const AvroColumn& c) {
    return c.type->id() == arrow::Type::STRING ||
           c.type->id() == arrow::Type::LARGE_STRING;
  }

  static int64_t FloorDiv(int64_t a, int64_t b) {
    int64_t q = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
    return q;
  }

  bool ReadLong(int64_t* out) {
    uint64_t value = 0;
    const int64_t at = offset();
    for (int shift = 0; shift < 70; shift += 7) {
      if (pos_ >= end_) {
        error_ = "truncated varint at byte " + std::to_string(at);
        return false;
      }
      const uint8_t byte = *pos_++;
      if (shift == 63 && (byte & 0x7E) != 0) break;
      value |= static_cast<uint64_t>(byte & 0x7F) << shift;
      if ((byte & 0x80) == 0) {
        *out = static_cast<int64_t>((value >> 1) ^ (~(value & 1) + 1));
        return true;
      }
    }
    error_ = "varint longer than 64 bits at byte " + std::to_string(at);
    return false;
  }

  bool ReadBytes(std::string_view* out) {
    int64_t length;
    const int64_t at = offset();
    if (!ReadLong(&length)) return false;
    if (length < 0) {
      error_ =
          "negative length " + std::to_string(length) + " at byte " + std::to_string(at);
      return false;
    }
    if (static_cast<uint64_t>(length) > remaining()) {
      error_ = "length " + std::to_string(length) + " at byte " + std::to_string(at) +
               " exceeds the " + std::to_string(remaining()) + " remaining bytes";
      return false;
    }
    *out = std::string_view(reinterpret_cast<const char*>(pos_),
                            static_cast<size_t>(length));
    pos_ += length;
    return true;
  }

  // Array/map blocks: a count (negative: followed by a byte size), items, and a
  // zero count at the end. Counts are capped by what the remaining bytes can hold.
  template <typename ReadItem>
  bool ReadBlocks(int64_t item_min_bytes, ReadItem&& read_item) {
    while (true) {
      int64_t count;
      const int64_t at = offset();
      if (!ReadLong(&count)) return false;
      if (count == 0) return true;
      if (count < 0) {
        if (count == std::numeric_limits<int64_t>::min()) {
          error_ = "invalid block count at byte " + std::to_string(at);
          return false;
        }
        count = -count;
        int64_t block_bytes;
        if (!ReadLong(&block_bytes)) return false;
        if (block_bytes < 0) {
          error_ = "negative block size at byte " + std::to_string(at);
          return false;
        }
      }
      const bool too_many =
          item_min_bytes > 0 ? count > static_cast<int64_t>(remaining()) / item_min_bytes
                             : (zero_byte_items_ += count) > kMaxZeroByteItems ||
                                   count > kMaxZeroByteItems;
      if (too_many) {
        error_ = "block count " + std::to_string(count) + " at byte " +
                 std::to_string(at) + " exceeds what the " + std::to_string(remaining()) +
                 " remaining bytes can hold";
        return false;
      }
      for (int64_t i = 0; i < count; ++i) {
        if (!read_item()) return false;
      }
    }
  }

  template <bool kBuild>
  bool AppendInt(const AvroColumn& c, arrow::ArrayBuilder* b, int64_t v) {
    switch (c.type->id()) {
      case arrow::Type::INT8:
        if (v < -128 || v > 127)
          return Fail("value " + std::to_string(v) + " out of range for int8");
        return b == nullptr ||
               Ok(static_cast<arrow::Int8Builder*>(b)->Append(static_cast<int8_t>(v)));
      case arrow::Type::INT16:
        if (v < -32768 || v > 32767) {
          return Fail("value " + std::to_string(v) + " out of range for int16");
        }
        return b == nullptr ||
               Ok(static_cast<arrow::Int16Builder*>(b)->Append(static_cast<int16_t>(v)));
      case arrow::Type::INT32:
        return b == nullptr ||
               Ok(static_cast<arrow::Int32Builder*>(b)->Append(static_cast<int32_t>(v)));
      case arrow::Type::INT64:
        return b == nullptr || Ok(static_cast<arrow::Int64Builder*>(b)->Append(v));
      case arrow::Type::DATE32:
        return b == nullptr ||
               Ok(static_cast<arrow::Date32Builder*>(b)->Append(static_cast<int32_t>(v)));
      default:
        return b == nullptr ||
               Ok(static_cast<arrow::Time32Builder*>(b)->Append(static_cast<int32_t>(v)));
    }
  }

  bool AppendBinary(const AvroColumn& c, arrow::ArrayBuilder* b, std::string_view v) {
    switch (c.type->id()) {
      case arrow::Type::STRING:
        return Ok(static_cast<arrow::StringBuilder*>(b)->Append(v));
      case arrow::Type::LARGE_STRING:
        return Ok(static_cast<arrow::LargeStringBuilder*>(b)->Append(v));
      case arrow::Type::BINARY:
        return Ok(static_cast<arrow::BinaryBuilder*>(b)->Append(v));
      default:
        return Ok(static_cast<arrow::LargeBinaryBuilder*>(b)->Append(v));
    }
  }

  const uint8_t* begin_ = nullptr;
  const uint8_t* pos_ = nullptr;
  const uint8_t* end_ = nullptr;
  int64_t base_ = 0;
  int64_t zero_byte_items_ = 0;
  std::string error_;
  std::vector<const std::string*> error_fields_;
  arrow::Status status_;
};

class AvroDecoder : public Decoder {
 public:
  explicit AvroDecoder(const FormatOptions& options)
      : confluent_(options.confluent_wire_format),
        expected_schema_id_(options.confluent_schema_id) {}

  arrow::Status Init(std::shared_ptr<AvroSchema> writer,
                     std::shared_ptr<arrow::Schema> schema, arrow::MemoryPool* pool) {
    if (writer->root().type != AvroType::kRecord) {
      return arrow::Status::NotImplemented("Avro writer schema must be a record, got ",
                                           AvroTypeName(writer->root().type));
    }
    writer_ = std::move(writer);
    ARROW_ASSIGN_OR_RAISE(
        root_, Compile(writer_->root(), arrow::struct_(schema->fields()), false, "",
                       /*encode=*/false));
    ARROW_ASSIGN_OR_RAISE(batch_, DecodedBatchBuilder::Make(schema, pool));
    for (size_t k = 0; k < root_->children.size(); ++k) {
      const int index = root_->arrow_index[k];
      if (index >= 0) Bind(root_->children[k].get(), batch_->column(index));
    }
    for (int j : root_->missing) root_->missing_builders.push_back(batch_->column(j));
    schema_ = std::move(schema);
    return arrow::Status::OK();
  }

  std::shared_ptr<arrow::Schema> schema() const override { return schema_; }

  arrow::Result<DecodedBatch> Decode(const arrow::BinaryArray& messages) override {
    for (int64_t i = 0; i < messages.length(); ++i) {
      if (messages.IsNull(i)) continue;
      const std::string_view bytes = messages.GetView(i);
      const auto* data = reinterpret_cast<const uint8_t*>(bytes.data());
      size_t size = bytes.size();
      int64_t base = 0;
      if (confluent_) {
        std::string reason;
        if (!CheckHeader(data, size, &reason)) {
          batch_->AddError(i, std::move(reason));
          continue;
        }
        data += kConfluentHeaderSize;
        size -= kConfluentHeaderSize;
        base = kConfluentHeaderSize;
      }
      reader_.Reset(data, size, base);
      if (!reader_.Read<false>(*root_)) {
        batch_->AddError(i, reader_.Reason());
        continue;
      }
      if (reader_.remaining() != 0) {
        batch_->AddError(i, std::to_string(reader_.remaining()) +
                                " trailing bytes after the record at byte " +
                                std::to_string(reader_.offset()));
        continue;
      }
      reader_.Reset(data, size, base);
      if (!reader_.Read<true>(*root_)) {
        if (!reader_.status().ok()) return reader_.status();
        return arrow::Status::UnknownError(
            "Avro decode: check and build passes disagree: ", reader_.Reason());
      }
      ARROW_RETURN_NOT_OK(batch_->AddRows(i));
    }
    return batch_->Finish();
  }

 private:
  bool CheckHeader(const uint8_t* data, size_t size, std::string* reason) const {
    if (size < static_cast<size_t>(kConfluentHeaderSize)) {
      *reason = "message of " + std::to_string(size) +
                " bytes is shorter than the 5-byte Confluent header";
      return false;
    }
    if (data[0] != 0) {
      *reason = "Confluent magic byte is " + std::to_string(data[0]) +
                ", expected 0 (at byte 0)";
      return false;
    }
    const int32_t id =
        static_cast<int32_t>((uint32_t{data[1]} << 24) | (uint32_t{data[2]} << 16) |
                             (uint32_t{data[3]} << 8) | uint32_t{data[4]});
    if (expected_schema_id_ >= 0 && id != expected_schema_id_) {
      *reason = "Confluent schema id " + std::to_string(id) + " (bytes 1-4), expected " +
                std::to_string(expected_schema_id_);
      return false;
    }
    return true;
  }

  bool confluent_;
  int32_t expected_schema_id_;
  std::shared_ptr<AvroSchema> writer_;
  std::shared_ptr<arrow::Schema> schema_;
  std::unique_ptr<AvroColumn> root_;
  std::unique_ptr<DecodedBatchBuilder> batch_;
  AvroReader reader_;
};

// ---------------------------------------------------------------------------
// Encoding

void WriteLong(int64_t v, std::string* out) {
  uint64_t z = (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63);
  while (z >= 0x80) {
    out->push_back(static_cast<char>((z & 0x7F) | 0x80));
    z >>= 7;
  }
  out->push_back(static_cast<char>(z));
}

void WriteBytes(std::string_view v, std::string* out) {
  WriteLong(static_cast<int64_t>(v.size()), out);
  out->append(v);
}

std::string_view BinaryView(const arrow::Array& a, int64_t i) {
  switch (a.type_id()) {
    case arrow::Type::STRING:
    case arrow::Type::BINARY:
      return static_cast<const arrow::BinaryArray&>(a).GetView(i);
    case arrow::Type::LARGE_STRING:
    case arrow::Type::LARGE_BINARY:
      return static_cast<const arrow::LargeBinaryArray&>(a).GetView(i);
    default:
      return static_cast<const arrow::FixedSizeBinaryArray&>(a).GetView(i);
  }
}

arrow::Status Write(const AvroColumn& c, const arrow::Array& a, int64_t i,
                    std::string* out) {
  const AvroNode& avro = *c.avro;
  if (avro.type == AvroType::kUnion) {
    if (a.IsNull(i)) {
      if (c.null_branch < 0) {
        return arrow::Status::Invalid(
            "field '", c.name, "': null value, but the Avro union has no null branch");
      }
      WriteLong(c.null_branch, out);
      return arrow::Status::OK();
    }
    WriteLong(c.value_branch, out);
    return Write(*c.children[static_cast<size_t>(c.value_branch)], a, i, out);
  }
  if (avro.type == AvroType::kNull) return arrow::Status::OK();
  if (a.IsNull(i)) {
    return arrow::Status::Invalid("field '", c.name,
                                  "': null value for non-nullable Avro ",
                                  AvroTypeName(avro.type));
  }
  switch (avro.type) {
    case AvroType::kBoolean:
      out->push_back(static_cast<const arrow::BooleanArray&>(a).Value(i) ? 1 : 0);
      return arrow::Status::OK();
    case AvroType::kInt:
    case AvroType::kLong: {
      int64_t v;
      switch (a.type_id()) {
        case arrow::Type::INT8:
          v = static_cast<const arrow::Int8Array&>(a).Value(i);
          break;
        case arrow::Type::INT16:
          v = static_cast<const arrow::Int16Array&>(a).Value(i);
          break;
        case arrow::Type::INT32:
        case arrow::Type::DATE32:
        case arrow::Type::TIME32:
          v = a.data()->GetValues<int32_t>(1)[i];
          break;
        default:
          v = a.data()->GetValues<int64_t>(1)[i];
          break;
      }
      if (avro.type == AvroType::kInt) {
        if (v < std::numeric_limits<int32_t>::min() ||
            v > std::numeric_limits<int32_t>::max()) {
          return arrow::Status::Invalid("field '", c.name, "': value ", v,
                                        " out of range for Avro int");
        }
      } else {
        if (c.mul != 1) {
          int64_t q = v / c.mul;
          if ((v % c.mul != 0) && (v < 0)) --q;
          v = q;
        }
        if (c.div != 1 && __builtin_mul_overflow(v, c.div, &v)) {
          return arrow::Status::Invalid("field '", c.name, "': timestamp out of range");
        }
      }
      WriteLong(v, out);
      return arrow::Status::OK();
    }
    case AvroType::kFloat: {
      float v =
          a.type_id() == arrow::Type::FLOAT
              ? static_cast<const arrow::FloatArray&>(a).Value(i)
              : static_cast<float>(static_cast<const arrow::DoubleArray&>(a).Value(i));
      char buf[4];
      std::memcpy(buf, &v, 4);
      out->append(buf, 4);
      return arrow::Status::OK();
    }
    case AvroType::kDouble: {
      const double v = static_cast<const arrow::DoubleArray&>(a).Value(i);
      char buf[8];
      std::memcpy(buf, &v, 8);
      out->append(buf, 8);
      return arrow::Status::OK();
    }
    case AvroType::kBytes:
    case AvroType::kString:
      WriteBytes(BinaryView(a, i), out);
      return arrow::Status::OK();
    case AvroType::kEnum: {
      const std::string_view v = BinaryView(a, i);
      for (size_t s = 0; s < avro.symbols.size(); ++s) {
        if (avro.symbols[s] == v) {
          WriteLong(static_cast<int64_t>(s), out);
          return arrow::Status::OK();
        }
      }
      return arrow::Status::Invalid("field '", c.name, "': '", v,
                                    "' is not a symbol of enum ", avro.name);
    }
    case AvroType::kFixed: {
      const std::string_view v = BinaryView(a, i);
      if (static_cast<int64_t>(v.size()) != avro.fixed_size) {
        return arrow::Status::Invalid("field '", c.name, "': value of ", v.size(),
                                      " bytes for Avro fixed of ", avro.fixed_size);
      }
      out->append(v);
      return arrow::Status::OK();
    }
    case AvroType::kArray: {
      int64_t begin, count;
      std::shared_ptr<arrow::Array> values;
      if (a.type_id() == arrow::Type::LIST) {
        const auto& list = static_cast<const arrow::ListArray&>(a);
        begin = list.value_offset(i);
        count = list.value_length(i);
        values = list.values();
      } else {
        const auto& list = static_cast<const arrow::LargeListArray&>(a);
        begin = list.value_offset(i);
        count = list.value_length(i);
        values = list.values();
      }
      if (count > 0) {
        WriteLong(count, out);
        for (int64_t k = begin; k < begin + count; ++k) {
          ARROW_RETURN_NOT_OK(Write(*c.children[0], *values, k, out));
        }
      }
      WriteLong(0, out);
      return arrow::Status::OK();
    }
    case AvroType::kMap: {
      const auto& list = static_cast<const arrow::ListArray&>(a);
      const int64_t begin = list.value_offset(i);
      const int64_t count = list.value_length(i);
      std::shared_ptr<arrow::Array> keys, items;
      if (c.map_as_list) {
        const auto& entries = static_cast<const arrow::StructArray&>(*list.values());
        keys = entries.field(0);
        items = entries.field(1);
      } else {
        const auto& map = static_cast<const arrow::MapArray&>(a);
        keys = map.keys();
        items = map.items();
      }
      if (count > 0) {
        WriteLong(count, out);
        for (int64_t k = begin; k < begin + count; ++k) {
          if (keys->IsNull(k)) {
            return arrow::Status::Invalid("field '", c.name, "': null map key");
          }
          WriteBytes(BinaryView(*keys, k), out);
          ARROW_RETURN_NOT_OK(Write(*c.children[0], *items, k, out));
        }
      }
      WriteLong(0, out);
      return arrow::Status::OK();
    }
    case AvroType::kRecord: {
      const auto& record = static_cast<const arrow::StructArray&>(a);
      for (size_t k = 0; k < c.children.size(); ++k) {
        const int index = c.arrow_index[k];
        if (index < 0) {
          // Not in the batch: Compile checked the field can hold null.
          if (c.children[k]->avro->type == AvroType::kUnion) {
            WriteLong(c.children[k]->null_branch, out);
          }
          continue;
        }
        ARROW_RETURN_NOT_OK(Write(*c.children[k], *record.field(index), i, out));
      }
      return arrow::Status::OK();
    }
    default:
      return arrow::Status::NotImplemented("Avro encoding of ", AvroTypeName(avro.type));
  }
}

class AvroEncoder : public Encoder {
 public:
  AvroEncoder(const FormatOptions& options, arrow::MemoryPool* pool)
      : confluent_(options.confluent_wire_format),
        schema_id_(options.confluent_schema_id),
        pool_(pool) {}

  arrow::Status Init(std::shared_ptr<AvroSchema> writer, const arrow::Schema& schema) {
    if (writer->root().type != AvroType::kRecord) {
      return arrow::Status::NotImplemented("Avro writer schema must be a record");
    }
    writer_ = std::move(writer);
    ARROW_ASSIGN_OR_RAISE(root_, Compile(writer_->root(), arrow::struct_(schema.fields()),
                                         false, "", /*encode=*/true));
    return arrow::Status::OK();
  }

  arrow::Result<std::shared_ptr<arrow::BinaryArray>> Encode(
      const arrow::RecordBatch& batch) override {
    ARROW_ASSIGN_OR_RAISE(auto rows, batch.ToStructArray());
    arrow::BinaryBuilder out(pool_);
    ARROW_RETURN_NOT_OK(out.Reserve(batch.num_rows()));
    for (int64_t i = 0; i < batch.num_rows(); ++i) {
      datum_.clear();
      if (confluent_) {
        const auto id = static_cast<uint32_t>(schema_id_);
        const char header[5] = {0, static_cast<char>(id >> 24),
                                static_cast<char>(id >> 16), static_cast<char>(id >> 8),
                                static_cast<char>(id)};
        datum_.append(header, 5);
      }
      ARROW_RETURN_NOT_OK(Write(*root_, *rows, i, &datum_));
      ARROW_RETURN_NOT_OK(out.Append(datum_));
    }
    ARROW_ASSIGN_OR_RAISE(auto array, out.Finish());
    return std::static_pointer_cast<arrow::BinaryArray>(array);
  }

 private:
  bool confluent_;
  int32_t schema_id_;
  arrow::MemoryPool* pool_;
  std::shared_ptr<AvroSchema> writer_;
  std::unique_ptr<AvroColumn> root_;
  std::string datum_;
};

}  // namespace

arrow::Result<std::string> AvroSchemaFromArrow(const arrow::Schema& schema,
                                               const std::string& record_name) {
  std::string out;
  ARROW_RETURN_NOT_OK(AppendAvroFields(schema.fields(), record_name, &out));
  return out;
}

arrow::Result<std::shared_ptr<arrow::Schema>> ArrowSchemaFromAvro(
    std::string_view avro_schema_json) {
  ARROW_ASSIGN_OR_RAISE(auto avro, AvroSchema::Parse(avro_schema_json));
  if (avro->root().type != AvroType::kRecord) {
    return arrow::Status::NotImplemented("Avro schema must be a record, got ",
                                         AvroTypeName(avro->root().type));
  }
  ARROW_ASSIGN_OR_RAISE(auto fields, DefaultArrowFields(avro->root()));
  return arrow::schema(std::move(fields));
}

arrow::Result<std::unique_ptr<Decoder>> MakeAvroDecoder(const FormatOptions& options,
                                                        arrow::MemoryPool* pool) {
  std::shared_ptr<arrow::Schema> schema = options.schema;
  std::string writer_json = options.avro_schema_json;
  if (writer_json.empty()) {
    if (schema == nullptr) {
      return arrow::Status::Invalid("avro format needs a schema or avro_schema_json");
    }
    ARROW_ASSIGN_OR_RAISE(writer_json, AvroSchemaFromArrow(*schema));
  }
  ARROW_ASSIGN_OR_RAISE(auto writer, AvroSchema::Parse(writer_json));
  if (schema == nullptr) {
    ARROW_ASSIGN_OR_RAISE(schema, ArrowSchemaFromAvro(writer_json));
  }
  auto decoder = std::make_unique<AvroDecoder>(options);
  ARROW_RETURN_NOT_OK(decoder->Init(std::move(writer), std::move(schema), pool));
  return decoder;
}

arrow::Result<std::unique_ptr<Encoder>> MakeAvroEncoder(
    const FormatOptions& options, std::shared_ptr<arrow::Schema> schema,
    arrow::MemoryPool* pool) {
  if (options.confluent_wire_format && options.confluent_schema_id < 0) {
    return arrow::Status::Invalid(
        "avro encoder with confluent_wire_format needs confluent_schema_id >= 0");
  }
  std::string writer_json = options.avro_schema_json;
  if (writer_json.empty()) {
    ARROW_ASSIGN_OR_RAISE(writer_json, AvroSchemaFromArrow(*schema));
  }
  ARROW_ASSIGN_OR_RAISE(auto writer, AvroSchema::Parse(writer_json));
  auto encoder = std::make_unique<AvroEncoder>(options, pool);
  ARROW_RETURN_NOT_OK(encoder->Init(std::move(writer), *schema));
  return encoder;
}

}  // namespace sabot
