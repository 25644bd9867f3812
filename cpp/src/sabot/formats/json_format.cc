#include "sabot/formats/json_format.h"

#include <arrow/array/builder_binary.h>
#include <arrow/array/builder_nested.h>
#include <arrow/array/builder_primitive.h>
#include <arrow/buffer.h>
#include <arrow/builder.h>
#include <arrow/record_batch.h>
#include <simdjson.h>

#include <cstring>
#include <limits>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "sabot/formats/decoded_batch_builder.h"
#include "sabot/formats/json_lines.h"
#include "sabot/formats/value_text.h"

namespace sabot {

namespace {

using simdjson::dom::element;
using simdjson::dom::element_type;

// A message copied into a buffer with the padding simdjson reads past the end.
class PaddedBuffer {
 public:
  const uint8_t* Assign(std::string_view bytes) {
    const size_t need = bytes.size() + simdjson::SIMDJSON_PADDING;
    if (need > data_.size()) data_.resize(need * 2);
    std::memcpy(data_.data(), bytes.data(), bytes.size());
    std::memset(data_.data() + bytes.size(), 0, simdjson::SIMDJSON_PADDING);
    return data_.data();
  }

 private:
  std::vector<uint8_t> data_;
};

const char* KindName(element_type type) {
  switch (type) {
    case element_type::ARRAY:
      return "array";
    case element_type::OBJECT:
      return "object";
    case element_type::INT64:
    case element_type::UINT64:
      return "integer";
    case element_type::DOUBLE:
      return "number";
    case element_type::STRING:
      return "string";
    case element_type::BOOL:
      return "boolean";
    case element_type::NULL_VALUE:
      return "null";
  }
  return "value";
}

// ---------------------------------------------------------------------------
// Schema inference

struct InferNode {
  enum Kind { kNull, kBool, kInt, kFloat, kString, kObject, kArray };
  Kind kind = kNull;
  std::vector<std::pair<std::string, std::unique_ptr<InferNode>>> fields;
  std::unordered_map<std::string, size_t> field_index;
  std::unique_ptr<InferNode> item;
};

InferNode::Kind KindOf(element value) {
  switch (value.type()) {
    case element_type::ARRAY:
      return InferNode::kArray;
    case element_type::OBJECT:
      return InferNode::kObject;
    case element_type::INT64:
      return InferNode::kInt;
    case element_type::UINT64:
    case element_type::DOUBLE:
      return InferNode::kFloat;
    case element_type::STRING:
      return InferNode::kString;
    case element_type::BOOL:
      return InferNode::kBool;
    case element_type::NULL_VALUE:
      return InferNode::kNull;
  }
  return InferNode::kString;
}

void MergeValue(InferNode* node, element value) {
  const InferNode::Kind kind = KindOf(value);
  if (kind == InferNode::kNull) return;
  if (node->kind == InferNode::kNull) {
    node->kind = kind;
  } else if (node->kind != kind) {
    const bool numeric =
        (node->kind == InferNode::kInt || node->kind == InferNode::kFloat) &&
        (kind == InferNode::kInt || kind == InferNode::kFloat);
    node->kind = numeric ? InferNode::kFloat : InferNode::kString;
    node->fields.clear();
    node->field_index.clear();
    node->item.reset();
    return;
  }
  if (kind == InferNode::kObject) {
    simdjson::dom::object object;
    if (value.get_object().get(object) != simdjson::SUCCESS) return;
    for (auto field : object) {
      std::string key(field.key);
      auto it = node->field_index.find(key);
      InferNode* child;
      if (it == node->field_index.end()) {
        node->field_index.emplace(key, node->fields.size());
        node->fields.emplace_back(std::move(key), std::make_unique<InferNode>());
        child = node->fields.back().second.get();
      } else {
        child = node->fields[it->second].second.get();
      }
      MergeValue(child, field.value);
    }
  } else if (kind == InferNode::kArray) {
    simdjson::dom::array array;
    if (value.get_array().get(array) != simdjson::SUCCESS) return;
    for (element item : array) {
      if (!node->item) node->item = std::make_unique<InferNode>();
      MergeValue(node->item.get(), item);
    }
  }
}

std::shared_ptr<arrow::DataType> ToArrowType(const InferNode* node) {
  if (node == nullptr) return arrow::utf8();
  switch (node->kind) {
    case InferNode::kNull:
    case InferNode::kString:
      return arrow::utf8();
    case InferNode::kBool:
      return arrow::boolean();
    case InferNode::kInt:
      return arrow::int64();
    case InferNode::kFloat:
      return arrow::float64();
    case InferNode::kObject: {
      arrow::FieldVector fields;
      for (const auto& [name, child] : node->fields) {
        fields.push_back(arrow::field(name, ToArrowType(child.get())));
      }
      return arrow::struct_(std::move(fields));
    }
    case InferNode::kArray:
      return arrow::list(ToArrowType(node->item.get()));
  }
  return arrow::utf8();
}

// ---------------------------------------------------------------------------
// Compiled schema

// One node of the row schema with the builder it appends to. Struct nodes look
// their fields up by key; `seen` is scratch for the message being decoded (a
// node never contains itself, so one buffer per node suffices).
struct JsonColumn {
  std::string name;
  std::shared_ptr<arrow::DataType> type;
  arrow::Type::type id = arrow::Type::NA;
  bool nullable = true;
  arrow::ArrayBuilder* builder = nullptr;
  std::vector<std::unique_ptr<JsonColumn>> children;
  std::unordered_map<std::string_view, int> index;
  mutable std::vector<uint8_t> seen;

  /// The child for object member number `position` named `key`, or -1. Messages
  /// usually list fields in schema order, so the positional guess is tried before
  /// the hash lookup.
  int ChildIndex(std::string_view key, size_t position) const {
    if (position < children.size() && children[position]->name == key) {
      return static_cast<int>(position);
    }
    auto it = index.find(key);
    return it == index.end() ? -1 : it->second;
  }
};

arrow::Status Compile(const std::string& name,
                      const std::shared_ptr<arrow::DataType>& type, bool nullable,
                      std::unique_ptr<JsonColumn>* out) {
  auto column = std::make_unique<JsonColumn>();
  column->name = name;
  column->type = type;
  column->id = type->id();
  column->nullable = nullable;
  switch (type->id()) {
    case arrow::Type::NA:
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
    case arrow::Type::FIXED_SIZE_BINARY:
    case arrow::Type::DATE32:
    case arrow::Type::TIMESTAMP:
      break;
    case arrow::Type::STRUCT:
      for (const auto& field : type->fields()) {
        std::unique_ptr<JsonColumn> child;
        ARROW_RETURN_NOT_OK(
            Compile(field->name(), field->type(), field->nullable(), &child));
        column->children.push_back(std::move(child));
      }
      break;
    case arrow::Type::LIST:
    case arrow::Type::LARGE_LIST: {
      const auto& item = type->field(0);
      std::unique_ptr<JsonColumn> child;
      ARROW_RETURN_NOT_OK(Compile(item->name(), item->type(), item->nullable(), &child));
      column->children.push_back(std::move(child));
      break;
    }
    case arrow::Type::MAP: {
      const auto& map_type = static_cast<const arrow::MapType&>(*type);
      if (map_type.key_type()->id() != arrow::Type::STRING) {
        return arrow::Status::NotImplemented("json format: map keys must be utf8, got ",
                                             type->ToString());
      }
      std::unique_ptr<JsonColumn> key, item;
      ARROW_RETURN_NOT_OK(Compile("key", map_type.key_type(), false, &key));
      ARROW_RETURN_NOT_OK(Compile("value", map_type.item_type(),
                                  map_type.item_field()->nullable(), &item));
      column->children.push_back(std::move(key));
      column->children.push_back(std::move(item));
      break;
    }
    default:
      return arrow::Status::NotImplemented("json format: field '", name, "' of type ",
                                           type->ToString());
  }
  if (column->id == arrow::Type::STRUCT) {
    for (size_t i = 0; i < column->children.size(); ++i) {
      column->index.emplace(column->children[i]->name, static_cast<int>(i));
    }
    column->seen.resize(column->children.size());
  }
  *out = std::move(column);
  return arrow::Status::OK();
}

void Bind(JsonColumn* column, arrow::ArrayBuilder* builder) {
  column->builder = builder;
  switch (column->id) {
    case arrow::Type::STRUCT:
      for (size_t i = 0; i < column->children.size(); ++i) {
        Bind(column->children[i].get(),
             builder->child_builder(static_cast<int>(i)).get());
      }
      break;
    case arrow::Type::LIST:
      Bind(column->children[0].get(),
           static_cast<arrow::ListBuilder*>(builder)->value_builder());
      break;
    case arrow::Type::LARGE_LIST:
      Bind(column->children[0].get(),
           static_cast<arrow::LargeListBuilder*>(builder)->value_builder());
      break;
    case arrow::Type::MAP: {
      auto* map = static_cast<arrow::MapBuilder*>(builder);
      Bind(column->children[0].get(), map->key_builder());
      Bind(column->children[1].get(), map->item_builder());
      break;
    }
    default:
      break;
  }
}

// The location of the value being checked, as a stack-allocated chain: built
// into text only when a message fails.
struct PathFrame {
  const PathFrame* parent;
  std::string_view key;  // object member, or empty for an array element
  int64_t index;         // array element index when `key` is empty
};

template <typename T>
bool InRange(int64_t v) {
  return v >= static_cast<int64_t>(std::numeric_limits<T>::min()) &&
         v <= static_cast<int64_t>(std::numeric_limits<T>::max());
}

// Checks one message against the schema (pass 1), then appends it (pass 2).
// Pass 2 runs only on messages pass 1 accepted, so the builders never hold a
// partial row.
class JsonRowReader {
 public:
  const std::string& error() const { return error_; }

  bool CheckObject(const JsonColumn& column, simdjson::dom::object object,
                   const PathFrame* path) {
    auto& seen = column.seen;
    std::fill(seen.begin(), seen.end(), 0);
    size_t position = 0;
    for (auto member : object) {
      const int found = column.ChildIndex(member.key, position++);
      if (found < 0) continue;
      const auto i = static_cast<size_t>(found);
      if (seen[i]) continue;  // first occurrence of a duplicate key wins
      seen[i] = 1;
      const PathFrame frame{path, column.children[i]->name, 0};
      if (!Check(*column.children[i], member.value, &frame)) return false;
    }
    for (size_t i = 0; i < seen.size(); ++i) {
      if (!seen[i] && !column.children[i]->nullable) {
        const PathFrame frame{path, column.children[i]->name, 0};
        return Fail(*column.children[i], &frame, "missing required field");
      }
    }
    return true;
  }

  bool Check(const JsonColumn& column, element value, const PathFrame* path) {
    const element_type type = value.type();
    if (type == element_type::NULL_VALUE) {
      return column.nullable || Fail(column, path, "null for a non-nullable field");
    }
    switch (column.id) {
      case arrow::Type::NA:
        return Mismatch(column, value, path);
      case arrow::Type::BOOL:
        return type == element_type::BOOL || Mismatch(column, value, path);
      case arrow::Type::INT8:
        return CheckSigned<int8_t>(column, value, path);
      case arrow::Type::INT16:
        return CheckSigned<int16_t>(column, value, path);
      case arrow::Type::INT32:
        return CheckSigned<int32_t>(column, value, path);
      case arrow::Type::INT64:
        return CheckSigned<int64_t>(column, value, path);
      case arrow::Type::UINT8:
        return CheckUnsigned<uint8_t>(column, value, path);
      case arrow::Type::UINT16:
        return CheckUnsigned<uint16_t>(column, value, path);
      case arrow::Type::UINT32:
        return CheckUnsigned<uint32_t>(column, value, path);
      case arrow::Type::UINT64:
        return CheckUnsigned<uint64_t>(column, value, path);
      case arrow::Type::FLOAT:
      case arrow::Type::DOUBLE:
        return type == element_type::INT64 || type == element_type::UINT64 ||
               type == element_type::DOUBLE || Mismatch(column, value, path);
      case arrow::Type::STRING:
      case arrow::Type::LARGE_STRING:
        return true;  // non-strings are kept as their JSON text
      case arrow::Type::BINARY:
      case arrow::Type::LARGE_BINARY:
      case arrow::Type::FIXED_SIZE_BINARY: {
        std::string_view text;
        if (value.get_string().get(text) != simdjson::SUCCESS) {
          return Mismatch(column, value, path);
        }
        if (!DecodeBase64(text, &scratch_)) return Fail(column, path, "invalid base64");
        if (column.id == arrow::Type::FIXED_SIZE_BINARY &&
            static_cast<int64_t>(scratch_.size()) !=
                static_cast<const arrow::FixedSizeBinaryType&>(*column.type)
                    .byte_width()) {
          return Fail(column, path,
                      "wrong length " + std::to_string(scratch_.size()) + " for " +
                          column.type->ToString());
        }
        return true;
      }
      case arrow::Type::DATE32: {
        int32_t days;
        return ReadDate(value, &days) || Mismatch(column, value, path);
      }
      case arrow::Type::TIMESTAMP: {
        int64_t ts;
        return ReadTimestamp(column, value, &ts) || Mismatch(column, value, path);
      }
      case arrow::Type::STRUCT: {
        simdjson::dom::object object;
        if (value.get_object().get(object) != simdjson::SUCCESS) {
          return Mismatch(column, value, path);
        }
        return CheckObject(column, object, path);
      }
      case arrow::Type::LIST:
      case arrow::Type::LARGE_LIST: {
        simdjson::dom::array array;
        if (value.get_array().get(array) != simdjson::SUCCESS) {
          return Mismatch(column, value, path);
        }
        int64_t i = 0;
        for (element item : array) {
          const PathFrame frame{path, {}, i++};
          if (!Check(*column.children[0], item, &frame)) return false;
        }
        return true;
      }
      case arrow::Type::MAP:
        return CheckMap(column, value, path);
      default:
        return Fail(column, path, "unsupported type");
    }
  }

  arrow::Status AppendObject(const JsonColumn& column, simdjson::dom::object object) {
    auto& seen = column.seen;
    std::fill(seen.begin(), seen.end(), 0);
    size_t position = 0;
    for (auto member : object) {
      const int found = column.ChildIndex(member.key, position++);
      if (found < 0) continue;
      const auto i = static_cast<size_t>(found);
      if (seen[i]) continue;
      seen[i] = 1;
      ARROW_RETURN_NOT_OK(Append(*column.children[i], member.value));
    }
    for (size_t i = 0; i < seen.size(); ++i) {
      if (!seen[i]) ARROW_RETURN_NOT_OK(column.children[i]->builder->AppendNull());
    }
    return arrow::Status::OK();
  }

  arrow::Status Append(const JsonColumn& column, element value) {
    arrow::ArrayBuilder* builder = column.builder;
    if (value.type() == element_type::NULL_VALUE) return builder->AppendNull();
    switch (column.id) {
      case arrow::Type::BOOL:
        return static_cast<arrow::BooleanBuilder*>(builder)->Append(
            value.get_bool().value_unsafe());
      case arrow::Type::INT8:
        return AppendInt<arrow::Int8Builder>(builder, value);
      case arrow::Type::INT16:
        return AppendInt<arrow::Int16Builder>(builder, value);
      case arrow::Type::INT32:
        return AppendInt<arrow::Int32Builder>(builder, value);
      case arrow::Type::INT64:
        return AppendInt<arrow::Int64Builder>(builder, value);
      case arrow::Type::UINT8:
        return AppendInt<arrow::UInt8Builder>(builder, value);
      case arrow::Type::UINT16:
        return AppendInt<arrow::UInt16Builder>(builder, value);
      case arrow::Type::UINT32:
        return AppendInt<arrow::UInt32Builder>(builder, value);
      case arrow::Type::UINT64:
        return AppendInt<arrow::UInt64Builder>(builder, value);
      case arrow::Type::FLOAT:
        return static_cast<arrow::FloatBuilder*>(builder)->Append(
            static_cast<float>(ToDouble(value)));
      case arrow::Type::DOUBLE:
        return static_cast<arrow::DoubleBuilder*>(builder)->Append(ToDouble(value));
      case arrow::Type::STRING:
        return AppendText<arrow::StringBuilder>(builder, value);
      case arrow::Type::LARGE_STRING:
        return AppendText<arrow::LargeStringBuilder>(builder, value);
      case arrow::Type::BINARY:
        DecodeBase64(value.get_string().value_unsafe(), &scratch_);
        return static_cast<arrow::BinaryBuilder*>(builder)->Append(scratch_);
      case arrow::Type::LARGE_BINARY:
        DecodeBase64(value.get_string().value_unsafe(), &scratch_);
        return static_cast<arrow::LargeBinaryBuilder*>(builder)->Append(scratch_);
      case arrow::Type::FIXED_SIZE_BINARY:
        DecodeBase64(value.get_string().value_unsafe(), &scratch_);
        return static_cast<arrow::FixedSizeBinaryBuilder*>(builder)->Append(scratch_);
      case arrow::Type::DATE32: {
        int32_t days = 0;
        ReadDate(value, &days);
        return static_cast<arrow::Date32Builder*>(builder)->Append(days);
      }
      case arrow::Type::TIMESTAMP: {
        int64_t ts = 0;
        ReadTimestamp(column, value, &ts);
        return static_cast<arrow::TimestampBuilder*>(builder)->Append(ts);
      }
      case arrow::Type::STRUCT:
        ARROW_RETURN_NOT_OK(static_cast<arrow::StructBuilder*>(builder)->Append());
        return AppendObject(column, value.get_object().value_unsafe());
      case arrow::Type::LIST:
        ARROW_RETURN_NOT_OK(static_cast<arrow::ListBuilder*>(builder)->Append());
        return AppendItems(column, value.get_array().value_unsafe());
      case arrow::Type::LARGE_LIST:
        ARROW_RETURN_NOT_OK(static_cast<arrow::LargeListBuilder*>(builder)->Append());
        return AppendItems(column, value.get_array().value_unsafe());
      case arrow::Type::MAP:
        return AppendMap(column, value);
      default:
        return arrow::Status::NotImplemented("json append of ", column.type->ToString());
    }
  }

 private:
  bool Fail(const JsonColumn& column, const PathFrame* path, const std::string& what) {
    // Field: the member names from the root; path: the JSONPath with indices.
    std::vector<const PathFrame*> frames;
    for (const PathFrame* f = path; f != nullptr; f = f->parent) frames.push_back(f);
    std::string field, json_path = "$";
    for (auto it = frames.rbegin(); it != frames.rend(); ++it) {
      if ((*it)->key.empty()) {
        json_path += "[" + std::to_string((*it)->index) + "]";
      } else {
        if (!field.empty()) field += ".";
        field.append((*it)->key);
        json_path += ".";
        json_path.append((*it)->key);
      }
    }
    error_ = "field '" + field + "' at " + json_path + ": " + what + " (expected " +
             column.type->ToString() + ")";
    return false;
  }

  bool Mismatch(const JsonColumn& column, element value, const PathFrame* path) {
    std::string got = KindName(value.type());
    std::string_view text;
    if (value.get_string().get(text) == simdjson::SUCCESS) {
      got += " \"";
      got.append(text.substr(0, 40));
      got += text.size() > 40 ? "...\"" : "\"";
    } else if (value.type() != element_type::ARRAY &&
               value.type() != element_type::OBJECT) {
      got += " " + simdjson::minify(value);
    }
    return Fail(column, path, "got " + got);
  }

  template <typename T>
  bool CheckSigned(const JsonColumn& column, element value, const PathFrame* path) {
    int64_t v;
    if (value.type() != element_type::INT64 ||
        value.get_int64().get(v) != simdjson::SUCCESS) {
      return Mismatch(column, value, path);
    }
    return InRange<T>(v) ||
           Fail(column, path, "value " + std::to_string(v) + " out of range");
  }

  template <typename T>
  bool CheckUnsigned(const JsonColumn& column, element value, const PathFrame* path) {
    uint64_t v;
    if ((value.type() != element_type::INT64 && value.type() != element_type::UINT64) ||
        value.get_uint64().get(v) != simdjson::SUCCESS) {
      if (value.type() == element_type::INT64) {
        return Fail(column, path, "negative value " + simdjson::minify(value));
      }
      return Mismatch(column, value, path);
    }
    return v <= std::numeric_limits<T>::max() ||
           Fail(column, path, "value " + std::to_string(v) + " out of range");
  }

  bool ReadDate(element value, int32_t* days) {
    int64_t v;
    std::string_view text;
    if (value.type() == element_type::INT64 &&
        value.get_int64().get(v) == simdjson::SUCCESS && InRange<int32_t>(v)) {
      *days = static_cast<int32_t>(v);
      return true;
    }
    return value.get_string().get(text) == simdjson::SUCCESS &&
           ParseDate32Text(text, days);
  }

  bool ReadTimestamp(const JsonColumn& column, element value, int64_t* out) {
    std::string_view text;
    if (value.type() == element_type::INT64) {
      return value.get_int64().get(*out) == simdjson::SUCCESS;
    }
    return value.get_string().get(text) == simdjson::SUCCESS &&
           ParseTimestampText(
               text, static_cast<const arrow::TimestampType&>(*column.type).unit(), out);
  }

  bool CheckMap(const JsonColumn& column, element value, const PathFrame* path) {
    const JsonColumn& item = *column.children[1];
    simdjson::dom::object object;
    if (value.get_object().get(object) == simdjson::SUCCESS) {
      for (auto member : object) {
        const PathFrame frame{
            path, member.key.empty() ? std::string_view("\"\"") : member.key, 0};
        if (!Check(item, member.value, &frame)) return false;
      }
      return true;
    }
    // The encoder's form: [{"key": k, "value": v}, ...].
    simdjson::dom::array array;
    if (value.get_array().get(array) != simdjson::SUCCESS)
      return Mismatch(column, value, path);
    int64_t i = 0;
    for (element entry : array) {
      const PathFrame frame{path, {}, i++};
      simdjson::dom::object kv;
      element key;
      if (entry.get_object().get(kv) != simdjson::SUCCESS ||
          kv.at_key("key").get(key) != simdjson::SUCCESS ||
          key.type() != element_type::STRING) {
        return Fail(column, &frame, "map entry is not {\"key\": string, \"value\": ...}");
      }
      element entry_value;
      if (kv.at_key("value").get(entry_value) == simdjson::SUCCESS) {
        const PathFrame value_frame{&frame, "value", 0};
        if (!Check(item, entry_value, &value_frame)) return false;
      } else if (!item.nullable) {
        return Fail(item, &frame, "missing map value");
      }
    }
    return true;
  }

  arrow::Status AppendMap(const JsonColumn& column, element value) {
    auto* builder = static_cast<arrow::MapBuilder*>(column.builder);
    ARROW_RETURN_NOT_OK(builder->Append());
    auto* keys = static_cast<arrow::StringBuilder*>(builder->key_builder());
    const JsonColumn& item = *column.children[1];
    simdjson::dom::object object;
    if (value.get_object().get(object) == simdjson::SUCCESS) {
      for (auto member : object) {
        ARROW_RETURN_NOT_OK(keys->Append(member.key));
        ARROW_RETURN_NOT_OK(Append(item, member.value));
      }
      return arrow::Status::OK();
    }
    simdjson::dom::array array = value.get_array().value_unsafe();
    for (element entry : array) {
      simdjson::dom::object kv = entry.get_object().value_unsafe();
      ARROW_RETURN_NOT_OK(keys->Append(kv.at_key("key").get_string().value_unsafe()));
      element entry_value;
      if (kv.at_key("value").get(entry_value) == simdjson::SUCCESS) {
        ARROW_RETURN_NOT_OK(Append(item, entry_value));
      } else {
        ARROW_RETURN_NOT_OK(item.builder->AppendNull());
      }
    }
    return arrow::Status::OK();
  }

  arrow::Status AppendItems(const JsonColumn& column, simdjson::dom::array array) {
    for (element item : array) ARROW_RETURN_NOT_OK(Append(*column.children[0], item));
    return arrow::Status::OK();
  }

  template <typename BuilderType>
  arrow::Status AppendInt(arrow::ArrayBuilder* builder, element value) {
    using T = typename BuilderType::value_type;
    T v;
    if constexpr (std::is_signed_v<T>) {
      v = static_cast<T>(value.get_int64().value_unsafe());
    } else {
      v = static_cast<T>(value.get_uint64().value_unsafe());
    }
    return static_cast<BuilderType*>(builder)->Append(v);
  }

  static double ToDouble(element value) {
    switch (value.type()) {
      case element_type::INT64:
        return static_cast<double>(value.get_int64().value_unsafe());
      case element_type::UINT64:
        return static_cast<double>(value.get_uint64().value_unsafe());
      default:
        return value.get_double().value_unsafe();
    }
  }

  template <typename BuilderType>
  arrow::Status AppendText(arrow::ArrayBuilder* builder, element value) {
    std::string_view text;
    if (value.get_string().get(text) == simdjson::SUCCESS) {
      return static_cast<BuilderType*>(builder)->Append(text);
    }
    return static_cast<BuilderType*>(builder)->Append(simdjson::minify(value));
  }

  std::string error_;
  std::string scratch_;
};

class JsonDecoder : public Decoder {
 public:
  JsonDecoder(const FormatOptions& options, arrow::MemoryPool* pool)
      : sample_size_(std::max<int64_t>(1, options.infer_sample_size)), pool_(pool) {}

  arrow::Status SetSchema(std::shared_ptr<arrow::Schema> schema) {
    ARROW_RETURN_NOT_OK(Compile("", arrow::struct_(schema->fields()), false, &root_));
    ARROW_ASSIGN_OR_RAISE(batch_, DecodedBatchBuilder::Make(schema, pool_));
    for (int i = 0; i < batch_->num_columns(); ++i) {
      Bind(root_->children[static_cast<size_t>(i)].get(), batch_->column(i));
    }
    schema_ = std::move(schema);
    return arrow::Status::OK();
  }

  std::shared_ptr<arrow::Schema> schema() const override { return schema_; }

  arrow::Result<DecodedBatch> Decode(const arrow::BinaryArray& messages) override {
    if (schema_ == nullptr) {
      ARROW_ASSIGN_OR_RAISE(auto inferred, InferJsonSchema(messages, sample_size_));
      if (inferred != nullptr) ARROW_RETURN_NOT_OK(SetSchema(std::move(inferred)));
    }
    std::unique_ptr<DecodedBatchBuilder> no_schema;
    DecodedBatchBuilder* out = batch_.get();
    if (out == nullptr) {
      // No message so far was a JSON object: every message here is an error.
      ARROW_ASSIGN_OR_RAISE(no_schema,
                            DecodedBatchBuilder::Make(arrow::schema({}), pool_));
      out = no_schema.get();
    }
    // simdjson reads up to SIMDJSON_PADDING bytes past a document's end (their
    // content does not matter). Messages followed by enough bytes of the same
    // values buffer are parsed in place; only the last few are copied.
    const uint8_t* values_end = messages.value_data() ? messages.value_data()->data() +
                                                            messages.value_data()->size()
                                                      : nullptr;
    for (int64_t i = 0; i < messages.length(); ++i) {
      if (messages.IsNull(i)) continue;
      const std::string_view bytes = messages.GetView(i);
      const auto* start = reinterpret_cast<const uint8_t*>(bytes.data());
      const bool in_place =
          values_end != nullptr && values_end - (start + bytes.size()) >=
                                       static_cast<ptrdiff_t>(simdjson::SIMDJSON_PADDING);
      simdjson::dom::element doc;
      const auto error =
          parser_
              .parse(in_place ? start : buffer_.Assign(bytes), bytes.size(),
                     /*realloc_if_needed=*/false)
              .get(doc);
      if (error != simdjson::SUCCESS) {
        out->AddError(i, std::string("invalid JSON: ") + simdjson::error_message(error));
        continue;
      }
      simdjson::dom::object object;
      if (doc.get_object().get(object) != simdjson::SUCCESS) {
        out->AddError(i, std::string("message is not a JSON object (got ") +
                             KindName(doc.type()) + ")");
        continue;
      }
      if (root_ == nullptr) {
        out->AddError(i, "no schema");
        continue;
      }
      if (!reader_.CheckObject(*root_, object, nullptr)) {
        out->AddError(i, reader_.error());
        continue;
      }
      ARROW_RETURN_NOT_OK(reader_.AppendObject(*root_, object));
      ARROW_RETURN_NOT_OK(out->AddRows(i));
    }
    return out->Finish();
  }

 private:
  int64_t sample_size_;
  arrow::MemoryPool* pool_;
  std::shared_ptr<arrow::Schema> schema_;
  std::unique_ptr<JsonColumn> root_;
  std::unique_ptr<DecodedBatchBuilder> batch_;
  simdjson::dom::parser parser_;
  PaddedBuffer buffer_;
  JsonRowReader reader_;
};

class JsonEncoder : public Encoder {
 public:
  explicit JsonEncoder(arrow::MemoryPool* pool) : pool_(pool) {}

  arrow::Result<std::shared_ptr<arrow::BinaryArray>> Encode(
      const arrow::RecordBatch& batch) override {
    data_.clear();
    ends_.clear();
    ARROW_RETURN_NOT_OK(AppendJsonObjects(batch, &data_, &ends_));
    if (data_.size() > static_cast<size_t>(std::numeric_limits<int32_t>::max())) {
      return arrow::Status::CapacityError(
          "json encoder: batch encodes to more than 2 GiB");
    }
    const int64_t n = batch.num_rows();
    ARROW_ASSIGN_OR_RAISE(auto offsets,
                          arrow::AllocateBuffer((n + 1) * sizeof(int32_t), pool_));
    auto* raw_offsets = offsets->mutable_data_as<int32_t>();
    raw_offsets[0] = 0;
    for (int64_t i = 0; i < n; ++i) {
      raw_offsets[i + 1] = static_cast<int32_t>(ends_[static_cast<size_t>(i)]);
    }
    ARROW_ASSIGN_OR_RAISE(
        auto values, arrow::AllocateBuffer(static_cast<int64_t>(data_.size()), pool_));
    if (!data_.empty()) std::memcpy(values->mutable_data(), data_.data(), data_.size());
    return std::make_shared<arrow::BinaryArray>(n, std::move(offsets), std::move(values));
  }

 private:
  arrow::MemoryPool* pool_;
  std::string data_;
  std::vector<int64_t> ends_;
};

}  // namespace

arrow::Result<std::shared_ptr<arrow::Schema>> InferJsonSchema(
    const arrow::BinaryArray& messages, int64_t max_messages) {
  simdjson::dom::parser parser;
  PaddedBuffer buffer;
  InferNode root;
  root.kind = InferNode::kObject;
  int64_t sampled = 0;
  for (int64_t i = 0; i < messages.length() && sampled < max_messages; ++i) {
    if (messages.IsNull(i)) continue;
    const std::string_view bytes = messages.GetView(i);
    simdjson::dom::element doc;
    if (parser.parse(buffer.Assign(bytes), bytes.size(), false).get(doc) !=
            simdjson::SUCCESS ||
        doc.type() != element_type::OBJECT) {
      continue;
    }
    MergeValue(&root, doc);
    ++sampled;
  }
  if (sampled == 0) return nullptr;
  return arrow::schema(ToArrowType(&root)->fields());
}

arrow::Result<std::unique_ptr<Decoder>> MakeJsonDecoder(const FormatOptions& options,
                                                        arrow::MemoryPool* pool) {
  auto decoder = std::make_unique<JsonDecoder>(options, pool);
  if (options.schema != nullptr) ARROW_RETURN_NOT_OK(decoder->SetSchema(options.schema));
  return decoder;
}

arrow::Result<std::unique_ptr<Encoder>> MakeJsonEncoder(
    const FormatOptions& options, std::shared_ptr<arrow::Schema> schema,
    arrow::MemoryPool* pool) {
  return std::make_unique<JsonEncoder>(pool);
}

}  // namespace sabot
