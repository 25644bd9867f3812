// Avro schemas (the JSON form of the Avro 1.11 specification), parsed into a
// tree the Avro binary codec walks.
#pragma once

#include <arrow/result.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace sabot {

enum class AvroType {
  kNull,
  kBoolean,
  kInt,
  kLong,
  kFloat,
  kDouble,
  kBytes,
  kString,
  kRecord,
  kEnum,
  kArray,
  kMap,
  kUnion,
  kFixed,
};

/// The logical types the codec maps to Arrow types; others are ignored (the
/// value decodes as its underlying type), as the specification asks.
enum class AvroLogicalType {
  kNone,
  kDate,                  // int: days since the epoch
  kTimeMillis,            // int
  kTimeMicros,            // long
  kTimestampMillis,       // long, UTC
  kTimestampMicros,       // long, UTC
  kTimestampNanos,        // long, UTC
  kLocalTimestampMillis,  // long, no zone
  kLocalTimestampMicros,  // long, no zone
  kLocalTimestampNanos,   // long, no zone
};

/// One node of a parsed schema. Named types referenced twice are one node.
struct AvroNode {
  AvroType type = AvroType::kNull;
  AvroLogicalType logical = AvroLogicalType::kNone;
  std::string name;                       ///< full name of record/enum/fixed
  std::vector<std::string> field_names;   ///< record
  std::vector<const AvroNode*> children;  ///< record fields, array items, map
                                          ///< values, union branches
  std::vector<std::string> symbols;       ///< enum
  int64_t fixed_size = 0;                 ///< fixed
  int64_t min_bytes = 0;                  ///< fewest bytes one value encodes to
};

/// A parsed Avro schema; immutable and thread-safe once parsed.
class AvroSchema {
 public:
  /// Parses the JSON text of a schema. Invalid for malformed schemas,
  /// NotImplemented for recursive types (no Arrow equivalent).
  static arrow::Result<std::shared_ptr<AvroSchema>> Parse(std::string_view json);

  const AvroNode& root() const { return *root_; }

 private:
  friend class AvroSchemaParser;
  std::vector<std::unique_ptr<AvroNode>> nodes_;
  const AvroNode* root_ = nullptr;
};

const char* AvroTypeName(AvroType type);

}  // namespace sabot
