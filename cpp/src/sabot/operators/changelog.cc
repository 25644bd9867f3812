#include "sabot/operators/changelog.h"

#include <arrow/builder.h>
#include <arrow/compute/api_vector.h>
#include <arrow/compute/row/grouper.h>

#include <map>

namespace sabot {

namespace cp = arrow::compute;

const char* ChangeOpToString(ChangeOp op) {
  switch (op) {
    case ChangeOp::kInsert:
      return "+I";
    case ChangeOp::kUpdateBefore:
      return "-U";
    case ChangeOp::kUpdateAfter:
      return "+U";
    case ChangeOp::kDelete:
      return "-D";
  }
  return "?";
}

std::shared_ptr<arrow::Schema> ChangelogSchema(
    const std::shared_ptr<arrow::Schema>& schema) {
  auto fields = schema->fields();
  fields.push_back(arrow::field(kChangeOpColumn, arrow::int8(), /*nullable=*/false));
  return arrow::schema(std::move(fields), schema->metadata());
}

arrow::Result<std::shared_ptr<arrow::RecordBatch>> MakeChangelogBatch(
    const std::shared_ptr<arrow::RecordBatch>& batch, const std::vector<ChangeOp>& ops,
    arrow::MemoryPool* pool) {
  if (static_cast<int64_t>(ops.size()) != batch->num_rows()) {
    return arrow::Status::Invalid("changelog batch: ", ops.size(), " ops for ",
                                  batch->num_rows(), " rows");
  }
  arrow::Int8Builder b(pool);
  ARROW_RETURN_NOT_OK(b.AppendValues(reinterpret_cast<const int8_t*>(ops.data()),
                                     static_cast<int64_t>(ops.size())));
  ARROW_ASSIGN_OR_RAISE(auto op_array, b.Finish());
  auto columns = batch->columns();
  columns.push_back(op_array);
  return arrow::RecordBatch::Make(ChangelogSchema(batch->schema()), batch->num_rows(),
                                  std::move(columns));
}

arrow::Result<std::shared_ptr<arrow::Table>> MaterializeChangelog(
    const std::shared_ptr<arrow::Table>& changelog,
    const std::vector<std::string>& upsert_keys, arrow::MemoryPool* pool) {
  const int op_index = changelog->schema()->GetFieldIndex(kChangeOpColumn);
  if (op_index < 0) {
    return arrow::Status::KeyError("materialize: the table has no '", kChangeOpColumn,
                                   "' column (", changelog->schema()->ToString(false),
                                   ")");
  }
  ARROW_ASSIGN_OR_RAISE(auto combined, changelog->CombineChunksToBatch(pool));
  ARROW_ASSIGN_OR_RAISE(auto data, combined->RemoveColumn(op_index));
  auto ops = std::static_pointer_cast<arrow::Int8Array>(combined->column(op_index));
  const int64_t n = combined->num_rows();
  // Group id per row: the upsert key, or the whole row (retraction semantics).
  std::vector<std::string> keys = upsert_keys;
  if (keys.empty()) keys = data->schema()->field_names();
  std::vector<arrow::TypeHolder> types;
  std::vector<cp::ExecValue> values;
  for (const auto& k : keys) {
    auto column = data->GetColumnByName(k);
    if (!column) {
      return arrow::Status::KeyError("materialize: key column '", k,
                                     "' is not in the changelog");
    }
    types.emplace_back(column->type());
    values.emplace_back(*column->data());
  }
  ARROW_ASSIGN_OR_RAISE(auto grouper, cp::Grouper::Make(types));
  ARROW_ASSIGN_OR_RAISE(arrow::Datum ids_datum,
                        grouper->Consume(cp::ExecSpan(values, n)));
  auto ids = std::static_pointer_cast<arrow::UInt32Array>(ids_datum.make_array());
  const uint32_t num_groups = grouper->num_groups();
  std::vector<int64_t> first_row(num_groups, -1), last_row(num_groups, -1);
  std::vector<int64_t> count(num_groups, 0);
  const bool upsert = !upsert_keys.empty();
  for (int64_t i = 0; i < n; ++i) {
    const uint32_t g = ids->Value(i);
    const auto op = static_cast<ChangeOp>(ops->Value(i));
    if (first_row[g] < 0) first_row[g] = i;
    if (op == ChangeOp::kInsert || op == ChangeOp::kUpdateAfter) {
      ++count[g];
      last_row[g] = i;
    } else if (upsert) {
      count[g] = 0;
    } else if (count[g] == 0) {
      return arrow::Status::Invalid("materialize: row ", i, " retracts (",
                                    ChangeOpToString(op), ") a row that is not present");
    } else {
      --count[g];
    }
    if (upsert && count[g] > 1) count[g] = 1;
  }
  // Emit in order of each group's first appearance.
  std::vector<std::pair<int64_t, uint32_t>> order;
  for (uint32_t g = 0; g < num_groups; ++g) {
    if (count[g] > 0) order.emplace_back(first_row[g], g);
  }
  std::sort(order.begin(), order.end());
  arrow::Int64Builder take(pool);
  for (const auto& [first, g] : order) {
    for (int64_t c = 0; c < count[g]; ++c) ARROW_RETURN_NOT_OK(take.Append(last_row[g]));
  }
  ARROW_ASSIGN_OR_RAISE(auto indices, take.Finish());
  ARROW_ASSIGN_OR_RAISE(arrow::Datum taken, cp::Take(data, indices));
  return arrow::Table::FromRecordBatches({taken.record_batch()});
}

}  // namespace sabot
