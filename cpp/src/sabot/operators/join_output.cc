#include "sabot/operators/join_output.h"

#include <arrow/array/concatenate.h>
#include <arrow/builder.h>
#include <arrow/compute/api_vector.h>

#include <algorithm>
#include <set>

namespace sabot {

std::string JoinKeysToString(const std::vector<std::string>& left,
                             const std::vector<std::string>& right) {
  std::string s;
  for (size_t i = 0; i < left.size(); ++i) {
    s += (i ? ", " : "") + left[i] + " = " + (i < right.size() ? right[i] : "?");
  }
  return s;
}

namespace cp = arrow::compute;

arrow::Result<JoinType> JoinTypeFromString(const std::string& name) {
  if (name == "inner") return JoinType::kInner;
  if (name == "left" || name == "left_outer") return JoinType::kLeft;
  if (name == "right" || name == "right_outer") return JoinType::kRight;
  if (name == "full" || name == "outer" || name == "full_outer") return JoinType::kFull;
  return arrow::Status::Invalid("unknown join type '", name,
                                "' (use inner, left, right or full)");
}

const char* JoinTypeName(JoinType type) {
  switch (type) {
    case JoinType::kInner:
      return "inner";
    case JoinType::kLeft:
      return "left";
    case JoinType::kRight:
      return "right";
    case JoinType::kFull:
      return "full";
  }
  return "?";
}

arrow::Result<JoinSideColumns> ResolveJoinSide(
    const std::shared_ptr<arrow::Schema>& schema, const std::vector<std::string>& keys,
    const std::string& time_column, const std::string& op_name, const char* side) {
  JoinSideColumns c;
  c.schema = schema;
  for (const auto& k : keys) {
    int i = schema->GetFieldIndex(k);
    if (i < 0) {
      return arrow::Status::KeyError(op_name, ": ", side, " key column '", k,
                                     "' is not in the ", side, " input schema (",
                                     schema->ToString(false), ")");
    }
    c.key_indices.push_back(i);
    c.key_types.push_back(schema->field(i)->type());
  }
  c.time_index = schema->GetFieldIndex(time_column);
  if (c.time_index < 0) {
    return arrow::Status::KeyError(op_name, ": ", side, " event-time column '",
                                   time_column, "' is not in the ", side,
                                   " input schema (", schema->ToString(false), ")");
  }
  return c;
}

arrow::Status CheckJoinKeyTypes(const JoinSideColumns& left, const JoinSideColumns& right,
                                const std::vector<std::string>& left_keys,
                                const std::vector<std::string>& right_keys,
                                const std::string& op_name) {
  for (size_t i = 0; i < left.key_types.size(); ++i) {
    if (!left.key_types[i]->Equals(*right.key_types[i])) {
      return arrow::Status::TypeError(
          op_name, ": key type mismatch: left key '", left_keys[i], "' is ",
          left.key_types[i]->ToString(), " but right key '", right_keys[i], "' is ",
          right.key_types[i]->ToString(), " (cast one side first)");
    }
  }
  return arrow::Status::OK();
}

arrow::Result<std::shared_ptr<arrow::Schema>> JoinOutputSchema(
    const arrow::Schema& left, const arrow::Schema& right,
    const arrow::FieldVector& extra, const std::string& op_name) {
  arrow::FieldVector fields;
  std::set<std::string> taken;
  for (const auto& f : left.fields()) {
    fields.push_back(arrow::field(f->name(), f->type()));
    taken.insert(f->name());
  }
  std::set<std::string> reserved = taken;
  for (const auto& f : extra) reserved.insert(f->name());
  for (const auto& f : right.fields()) {
    std::string name = reserved.count(f->name()) ? "right_" + f->name() : f->name();
    fields.push_back(arrow::field(name, f->type()));
  }
  for (const auto& f : extra) fields.push_back(f);
  std::set<std::string> names;
  for (const auto& f : fields) {
    if (!names.insert(f->name()).second) {
      return arrow::Status::Invalid(op_name, ": output column '", f->name(),
                                    "' appears twice (rename a column of one input)");
    }
  }
  return arrow::schema(std::move(fields));
}

bool HasNullKey(const arrow::RecordBatch& batch, const std::vector<int>& key_indices,
                int64_t row) {
  for (int k : key_indices) {
    const auto& col = batch.column_data(k);
    if (col->GetNullCount() > 0 && batch.column(k)->IsNull(row)) return true;
  }
  return false;
}

namespace {

arrow::Result<std::vector<std::shared_ptr<arrow::Array>>> TakeSide(
    const arrow::RecordBatch* batch, const arrow::Schema& schema,
    const std::vector<int64_t>& rows, cp::ExecContext* exec) {
  const int64_t n = static_cast<int64_t>(rows.size());
  std::vector<std::shared_ptr<arrow::Array>> out;
  if (batch == nullptr) {
    for (const auto& f : schema.fields()) {
      ARROW_ASSIGN_OR_RAISE(auto a,
                            arrow::MakeArrayOfNull(f->type(), n, exec->memory_pool()));
      out.push_back(std::move(a));
    }
    return out;
  }
  arrow::Int64Builder b(exec->memory_pool());
  ARROW_RETURN_NOT_OK(b.AppendValues(rows));
  ARROW_ASSIGN_OR_RAISE(auto indices, b.Finish());
  for (const auto& col : batch->columns()) {
    ARROW_ASSIGN_OR_RAISE(
        auto taken, cp::Take(*col, *indices, cp::TakeOptions::NoBoundsCheck(), exec));
    out.push_back(std::move(taken));
  }
  return out;
}

}  // namespace

arrow::Result<std::vector<std::shared_ptr<arrow::Array>>> GatherJoinColumns(
    std::vector<JoinPair>* pairs, const arrow::Schema& left_schema,
    const arrow::Schema& right_schema, cp::ExecContext* exec) {
  std::stable_sort(pairs->begin(), pairs->end(),
                   [](const JoinPair& a, const JoinPair& b) {
                     return a.left != b.left ? std::less<>()(a.left, b.left)
                                             : std::less<>()(a.right, b.right);
                   });
  const int num_left = left_schema.num_fields();
  const int num_columns = num_left + right_schema.num_fields();
  std::vector<arrow::ArrayVector> chunks(static_cast<size_t>(num_columns));
  std::vector<int64_t> left_rows, right_rows;
  size_t begin = 0;
  while (begin < pairs->size()) {
    const auto* lb = (*pairs)[begin].left;
    const auto* rb = (*pairs)[begin].right;
    size_t end = begin;
    left_rows.clear();
    right_rows.clear();
    while (end < pairs->size() && (*pairs)[end].left == lb && (*pairs)[end].right == rb) {
      left_rows.push_back((*pairs)[end].left_row);
      right_rows.push_back((*pairs)[end].right_row);
      ++end;
    }
    ARROW_ASSIGN_OR_RAISE(auto lcols, TakeSide(lb, left_schema, left_rows, exec));
    ARROW_ASSIGN_OR_RAISE(auto rcols, TakeSide(rb, right_schema, right_rows, exec));
    for (int c = 0; c < num_left; ++c) chunks[c].push_back(std::move(lcols[c]));
    for (int c = num_left; c < num_columns; ++c)
      chunks[c].push_back(std::move(rcols[c - num_left]));
    begin = end;
  }
  std::vector<std::shared_ptr<arrow::Array>> columns;
  for (auto& parts : chunks) {
    if (parts.size() == 1) {
      columns.push_back(std::move(parts[0]));
    } else {
      ARROW_ASSIGN_OR_RAISE(auto a, arrow::Concatenate(parts, exec->memory_pool()));
      columns.push_back(std::move(a));
    }
  }
  return columns;
}

}  // namespace sabot
