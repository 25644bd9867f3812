#include "sabot/formats/avro_schema.h"

#include <simdjson.h>

#include <unordered_map>
#include <unordered_set>
#include <utility>

namespace sabot {

const char* AvroTypeName(AvroType type) {
  switch (type) {
    case AvroType::kNull:
      return "null";
    case AvroType::kBoolean:
      return "boolean";
    case AvroType::kInt:
      return "int";
    case AvroType::kLong:
      return "long";
    case AvroType::kFloat:
      return "float";
    case AvroType::kDouble:
      return "double";
    case AvroType::kBytes:
      return "bytes";
    case AvroType::kString:
      return "string";
    case AvroType::kRecord:
      return "record";
    case AvroType::kEnum:
      return "enum";
    case AvroType::kArray:
      return "array";
    case AvroType::kMap:
      return "map";
    case AvroType::kUnion:
      return "union";
    case AvroType::kFixed:
      return "fixed";
  }
  return "?";
}

namespace {

bool PrimitiveType(std::string_view name, AvroType* out) {
  static constexpr std::pair<std::string_view, AvroType> kPrimitives[] = {
      {"null", AvroType::kNull},   {"boolean", AvroType::kBoolean},
      {"int", AvroType::kInt},     {"long", AvroType::kLong},
      {"float", AvroType::kFloat}, {"double", AvroType::kDouble},
      {"bytes", AvroType::kBytes}, {"string", AvroType::kString}};
  for (const auto& [n, t] : kPrimitives) {
    if (n == name) {
      *out = t;
      return true;
    }
  }
  return false;
}

AvroLogicalType LogicalType(AvroType type, std::string_view name) {
  if (type == AvroType::kInt) {
    if (name == "date") return AvroLogicalType::kDate;
    if (name == "time-millis") return AvroLogicalType::kTimeMillis;
  } else if (type == AvroType::kLong) {
    if (name == "time-micros") return AvroLogicalType::kTimeMicros;
    if (name == "timestamp-millis") return AvroLogicalType::kTimestampMillis;
    if (name == "timestamp-micros") return AvroLogicalType::kTimestampMicros;
    if (name == "timestamp-nanos") return AvroLogicalType::kTimestampNanos;
    if (name == "local-timestamp-millis") return AvroLogicalType::kLocalTimestampMillis;
    if (name == "local-timestamp-micros") return AvroLogicalType::kLocalTimestampMicros;
    if (name == "local-timestamp-nanos") return AvroLogicalType::kLocalTimestampNanos;
  }
  return AvroLogicalType::kNone;
}

}  // namespace

class AvroSchemaParser {
 public:
  explicit AvroSchemaParser(AvroSchema* schema) : schema_(schema) {}

  arrow::Result<const AvroNode*> Parse(simdjson::dom::element value,
                                       const std::string& ns, int depth) {
    if (depth > 64) return arrow::Status::Invalid("Avro schema nested too deeply");
    std::string_view text;
    if (value.get_string().get(text) == simdjson::SUCCESS) return ParseName(text, ns);
    simdjson::dom::array branches;
    if (value.get_array().get(branches) == simdjson::SUCCESS) {
      AvroNode* node = NewNode(AvroType::kUnion);
      for (simdjson::dom::element branch : branches) {
        ARROW_ASSIGN_OR_RAISE(auto child, Parse(branch, ns, depth + 1));
        if (child->type == AvroType::kUnion) {
          return arrow::Status::Invalid("Avro union directly inside a union");
        }
        node->children.push_back(child);
      }
      if (node->children.empty()) return arrow::Status::Invalid("empty Avro union");
      node->min_bytes = 1;
      return node;
    }
    simdjson::dom::object object;
    if (value.get_object().get(object) != simdjson::SUCCESS) {
      return arrow::Status::Invalid("Avro schema: expected a string, array or object");
    }
    simdjson::dom::element type_value;
    if (object.at_key("type").get(type_value) != simdjson::SUCCESS) {
      return arrow::Status::Invalid("Avro schema object without \"type\"");
    }
    std::string_view type_name;
    if (type_value.get_string().get(type_name) != simdjson::SUCCESS) {
      return Parse(type_value, ns, depth + 1);  // {"type": {...}} or {"type": [...]}
    }
    AvroType primitive;
    if (PrimitiveType(type_name, &primitive)) {
      AvroNode* node = NewNode(primitive);
      std::string_view logical;
      if (object.at_key("logicalType").get(logical) == simdjson::SUCCESS) {
        node->logical = LogicalType(primitive, logical);
      }
      node->min_bytes = MinBytes(primitive);
      return node;
    }
    if (type_name == "record" || type_name == "error")
      return ParseRecord(object, ns, depth);
    if (type_name == "enum") {
      ARROW_ASSIGN_OR_RAISE(AvroNode * node, NewNamed(AvroType::kEnum, object, ns));
      simdjson::dom::array symbols;
      if (object.at_key("symbols").get(symbols) != simdjson::SUCCESS) {
        return arrow::Status::Invalid("Avro enum '", node->name, "' without symbols");
      }
      for (simdjson::dom::element symbol : symbols) {
        std::string_view s;
        if (symbol.get_string().get(s) != simdjson::SUCCESS) {
          return arrow::Status::Invalid("Avro enum '", node->name,
                                        "': non-string symbol");
        }
        node->symbols.emplace_back(s);
      }
      node->min_bytes = 1;
      in_progress_.erase(node->name);
      return node;
    }
    if (type_name == "array" || type_name == "map") {
      const bool is_array = type_name == "array";
      simdjson::dom::element items;
      if (object.at_key(is_array ? "items" : "values").get(items) != simdjson::SUCCESS) {
        return arrow::Status::Invalid("Avro ", type_name, " without \"",
                                      is_array ? "items" : "values", "\"");
      }
      ARROW_ASSIGN_OR_RAISE(auto child, Parse(items, ns, depth + 1));
      AvroNode* node = NewNode(is_array ? AvroType::kArray : AvroType::kMap);
      node->children.push_back(child);
      node->min_bytes = 1;
      return node;
    }
    if (type_name == "fixed") {
      ARROW_ASSIGN_OR_RAISE(AvroNode * node, NewNamed(AvroType::kFixed, object, ns));
      int64_t size;
      if (object.at_key("size").get(size) != simdjson::SUCCESS || size < 0 ||
          size > (int64_t{1} << 30)) {
        return arrow::Status::Invalid("Avro fixed '", node->name, "': bad size");
      }
      node->fixed_size = size;
      node->min_bytes = size;
      in_progress_.erase(node->name);
      return node;
    }
    return ParseName(type_name, ns);
  }

 private:
  static int64_t MinBytes(AvroType type) {
    switch (type) {
      case AvroType::kNull:
        return 0;
      case AvroType::kFloat:
        return 4;
      case AvroType::kDouble:
        return 8;
      default:
        return 1;
    }
  }

  AvroNode* NewNode(AvroType type) {
    schema_->nodes_.push_back(std::make_unique<AvroNode>());
    schema_->nodes_.back()->type = type;
    return schema_->nodes_.back().get();
  }

  static std::string FullName(std::string_view name, const std::string& ns) {
    if (name.find('.') != std::string_view::npos || ns.empty()) return std::string(name);
    return ns + "." + std::string(name);
  }

  static std::string NamespaceOf(const std::string& fullname) {
    const size_t dot = fullname.rfind('.');
    return dot == std::string::npos ? std::string() : fullname.substr(0, dot);
  }

  // A record/enum/fixed: registers its full name (in progress until complete).
  arrow::Result<AvroNode*> NewNamed(AvroType type, simdjson::dom::object object,
                                    const std::string& ns) {
    std::string_view name;
    if (object.at_key("name").get(name) != simdjson::SUCCESS || name.empty()) {
      return arrow::Status::Invalid("Avro ", AvroTypeName(type), " without a name");
    }
    std::string_view own_ns;
    std::string fullname;
    if (name.find('.') == std::string_view::npos &&
        object.at_key("namespace").get(own_ns) == simdjson::SUCCESS) {
      fullname = FullName(name, std::string(own_ns));
    } else {
      fullname = FullName(name, ns);
    }
    if (named_.count(fullname) > 0) {
      return arrow::Status::Invalid("Avro type '", fullname, "' defined twice");
    }
    AvroNode* node = NewNode(type);
    node->name = fullname;
    named_.emplace(fullname, node);
    in_progress_.emplace(fullname);
    return node;
  }

  arrow::Result<const AvroNode*> ParseRecord(simdjson::dom::object object,
                                             const std::string& ns, int depth) {
    ARROW_ASSIGN_OR_RAISE(AvroNode * node, NewNamed(AvroType::kRecord, object, ns));
    const std::string record_ns = NamespaceOf(node->name);
    simdjson::dom::array fields;
    if (object.at_key("fields").get(fields) != simdjson::SUCCESS) {
      return arrow::Status::Invalid("Avro record '", node->name, "' without fields");
    }
    for (simdjson::dom::element field : fields) {
      std::string_view field_name;
      simdjson::dom::element field_type;
      if (field.at_key("name").get(field_name) != simdjson::SUCCESS ||
          field.at_key("type").get(field_type) != simdjson::SUCCESS) {
        return arrow::Status::Invalid("Avro record '", node->name,
                                      "': field without name or type");
      }
      ARROW_ASSIGN_OR_RAISE(auto child, Parse(field_type, record_ns, depth + 1));
      node->field_names.emplace_back(field_name);
      node->children.push_back(child);
      node->min_bytes += child->min_bytes;
    }
    in_progress_.erase(node->name);
    return node;
  }

  arrow::Result<const AvroNode*> ParseName(std::string_view name, const std::string& ns) {
    AvroType primitive;
    if (PrimitiveType(name, &primitive)) {
      AvroNode* node = NewNode(primitive);
      node->min_bytes = MinBytes(primitive);
      return node;
    }
    for (const std::string& candidate : {FullName(name, ns), std::string(name)}) {
      auto it = named_.find(candidate);
      if (it == named_.end()) continue;
      if (in_progress_.count(candidate) > 0) {
        return arrow::Status::NotImplemented("recursive Avro type '", candidate, "'");
      }
      return it->second;
    }
    return arrow::Status::Invalid("unknown Avro type '", name, "'");
  }

  AvroSchema* schema_;
  std::unordered_map<std::string, const AvroNode*> named_;
  std::unordered_set<std::string> in_progress_;  // records being defined
};

arrow::Result<std::shared_ptr<AvroSchema>> AvroSchema::Parse(std::string_view json) {
  simdjson::dom::parser parser;
  simdjson::padded_string padded(json);
  simdjson::dom::element doc;
  const auto error = parser.parse(padded).get(doc);
  if (error != simdjson::SUCCESS) {
    return arrow::Status::Invalid("Avro schema is not valid JSON: ",
                                  simdjson::error_message(error));
  }
  auto schema = std::make_shared<AvroSchema>();
  AvroSchemaParser p(schema.get());
  ARROW_ASSIGN_OR_RAISE(schema->root_, p.Parse(doc, "", 0));
  return schema;
}

}  // namespace sabot
