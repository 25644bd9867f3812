// Pieces shared by the event-time join operators (interval_join, window_join):
// join types, resolving a side's key and time columns, the output schema, and
// gathering matched row pairs from stored batches into one output batch.
#pragma once

#include <arrow/compute/exec.h>
#include <arrow/record_batch.h>
#include <arrow/result.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace sabot {

/// Which unmatched rows a join emits (with the other side's columns null).
enum class JoinType : uint8_t { kInner, kLeft, kRight, kFull };

/// "inner", "left", "right", "full" (also "left_outer", "right_outer", "outer",
/// "full_outer").
arrow::Result<JoinType> JoinTypeFromString(const std::string& name);
const char* JoinTypeName(JoinType type);
/// "l1 = r1, l2 = r2" for plan descriptions.
std::string JoinKeysToString(const std::vector<std::string>& left,
                             const std::vector<std::string>& right);

/// Whether unmatched rows of side `side` (0 left, 1 right) are emitted.
inline bool EmitsUnmatched(JoinType type, int side) {
  return type == JoinType::kFull ||
         (side == 0 ? type == JoinType::kLeft : type == JoinType::kRight);
}

/// The key and event-time columns of one join input, resolved against its schema.
struct JoinSideColumns {
  std::shared_ptr<arrow::Schema> schema;
  std::vector<int> key_indices;
  std::vector<std::shared_ptr<arrow::DataType>> key_types;
  int time_index = -1;
};

/// Resolves `keys` and `time_column` in `schema`; errors name `op_name` and
/// `side` ("left"/"right").
arrow::Result<JoinSideColumns> ResolveJoinSide(
    const std::shared_ptr<arrow::Schema>& schema, const std::vector<std::string>& keys,
    const std::string& time_column, const std::string& op_name, const char* side);

/// Checks that both sides have the same number of keys and equal key types.
arrow::Status CheckJoinKeyTypes(const JoinSideColumns& left, const JoinSideColumns& right,
                                const std::vector<std::string>& left_keys,
                                const std::vector<std::string>& right_keys,
                                const std::string& op_name);

/// Left fields, then right fields (a right name that clashes with a left name,
/// or with `extra`, gets the prefix "right_"), then `extra`. All nullable.
arrow::Result<std::shared_ptr<arrow::Schema>> JoinOutputSchema(
    const arrow::Schema& left, const arrow::Schema& right,
    const arrow::FieldVector& extra, const std::string& op_name);

/// One output row: a left row and a right row, either of them absent
/// (batch == nullptr) for an unmatched row of an outer join.
struct JoinPair {
  const arrow::RecordBatch* left = nullptr;
  int64_t left_row = 0;
  const arrow::RecordBatch* right = nullptr;
  int64_t right_row = 0;
};

/// Builds the left and right columns of `pairs` (reordered in place: rows come
/// out grouped by source batches). One Take per (left batch, right batch) run.
arrow::Result<std::vector<std::shared_ptr<arrow::Array>>> GatherJoinColumns(
    std::vector<JoinPair>* pairs, const arrow::Schema& left_schema,
    const arrow::Schema& right_schema, arrow::compute::ExecContext* exec);

/// Whether row `row` has a null in any key column (such rows never match).
bool HasNullKey(const arrow::RecordBatch& batch, const std::vector<int>& key_indices,
                int64_t row);

}  // namespace sabot
