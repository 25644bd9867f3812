// The changelog representation of updating streams (docs/design/changelog.md):
// an ordinary Arrow stream with one extra int8 column `_op` holding a ChangeOp,
// as Flink's RowKind. Used by group_aggregate, deduplicate and top_n, by sinks
// and by `collect` (MaterializeChangelog).
#pragma once

#include <arrow/record_batch.h>
#include <arrow/result.h>
#include <arrow/table.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace sabot {

/// The kind of change a row of an updating stream carries.
enum class ChangeOp : int8_t {
  kInsert = 0,        ///< +I: a new row (or a new key)
  kUpdateBefore = 1,  ///< -U: the previous version of an updated row (retraction)
  kUpdateAfter = 2,   ///< +U: the new version; always right after its -U
  kDelete = 3,        ///< -D: the row is gone
};

/// Name of the op column.
inline constexpr char kChangeOpColumn[] = "_op";

/// "+I", "-U", "+U", "-D".
const char* ChangeOpToString(ChangeOp op);

/// `schema` with the `_op` (int8, not null) column appended.
std::shared_ptr<arrow::Schema> ChangelogSchema(
    const std::shared_ptr<arrow::Schema>& schema);

/// Appends `ops` (one per row) to `batch` as the `_op` column.
arrow::Result<std::shared_ptr<arrow::RecordBatch>> MakeChangelogBatch(
    const std::shared_ptr<arrow::RecordBatch>& batch, const std::vector<ChangeOp>& ops,
    arrow::MemoryPool* pool = arrow::default_memory_pool());

/// Applies a changelog, in row order, and returns the resulting rows (without
/// `_op`). With `upsert_keys`, the last change of each key wins: the key is in
/// the result iff its last op is +I or +U (order of first appearance of the
/// key). Without keys, retraction semantics: +I/+U add the row, -U/-D remove one
/// equal row (an error names a retraction of a row that is not present).
arrow::Result<std::shared_ptr<arrow::Table>> MaterializeChangelog(
    const std::shared_ptr<arrow::Table>& changelog,
    const std::vector<std::string>& upsert_keys,
    arrow::MemoryPool* pool = arrow::default_memory_pool());

}  // namespace sabot
