#include "sabot/views/materialized_table.h"

#include <arrow/array/builder_primitive.h>
#include <arrow/array/concatenate.h>
#include <arrow/chunked_array.h>
#include <arrow/compute/api_vector.h>
#include <arrow/compute/cast.h>

#include "sabot/exec/partitioner.h"
#include "sabot/operators/changelog.h"

namespace sabot {

MaterializedTable::MaterializedTable(std::vector<std::string> key_columns,
                                     std::string what, arrow::MemoryPool* pool)
    : key_columns_(std::move(key_columns)), what_(std::move(what)), pool_(pool) {}

arrow::Status MaterializedTable::Init(const arrow::Schema& schema) {
  op_index_ = schema.GetFieldIndex(kChangeOpColumn);
  if (op_index_ >= 0 && schema.field(op_index_)->type()->id() != arrow::Type::INT8) {
    return arrow::Status::TypeError(what_, ": column '", kChangeOpColumn,
                                    "' must be int8 (a changelog op), not ",
                                    schema.field(op_index_)->type()->ToString());
  }
  arrow::FieldVector fields;
  value_columns_.clear();
  for (int i = 0; i < schema.num_fields(); ++i) {
    if (i == op_index_) continue;
    value_columns_.push_back(i);
    fields.push_back(schema.field(i));
  }
  auto row_schema = arrow::schema(std::move(fields));
  ARROW_ASSIGN_OR_RAISE(key_indices_,
                        ResolveKeyColumns(*row_schema, key_columns_, what_));
  key_types_.clear();
  for (size_t k = 0; k < key_indices_.size(); ++k) {
    const auto& type = row_schema->field(key_indices_[k])->type();
    ARROW_RETURN_NOT_OK(
        CheckRowKeyType(*type, what_ + " key column '" + key_columns_[k] + "'"));
    key_types_.push_back(type);
  }
  input_schema_ = std::make_shared<arrow::Schema>(schema.fields());
  schema_ = std::move(row_schema);
  return arrow::Status::OK();
}

void MaterializedTable::Release(const Location& loc) {
  auto it = batches_.find(loc.batch_id);
  if (it == batches_.end()) return;
  if (--it->second.live == 0 && loc.batch_id + 1 != next_batch_id_) {
    stored_rows_ -= it->second.batch->num_rows();
    batches_.erase(it);
  }
}

arrow::Status MaterializedTable::Apply(const std::shared_ptr<arrow::RecordBatch>& batch,
                                       int owner) {
  if (batch->num_rows() == 0) return arrow::Status::OK();
  if (!schema_) {
    ARROW_RETURN_NOT_OK(Init(*batch->schema()));
  } else if (!batch->schema()->Equals(*input_schema_, /*check_metadata=*/false)) {
    return arrow::Status::Invalid(
        what_, ": a batch with schema ", batch->schema()->ToString(),
        " does not match the earlier ", input_schema_->ToString());
  }
  std::shared_ptr<arrow::RecordBatch> values = batch;
  if (op_index_ >= 0) {
    ARROW_ASSIGN_OR_RAISE(values, batch->SelectColumns(value_columns_));
  }
  std::vector<std::shared_ptr<arrow::Array>> key_columns;
  for (int k : key_indices_) key_columns.push_back(values->column(k));
  EncodedKeys keys;
  ARROW_RETURN_NOT_OK(EncodeRowKeys(key_columns, &keys, what_));
  const int8_t* ops = nullptr;
  if (op_index_ >= 0) {
    const auto& op_column = *batch->column(op_index_);
    if (op_column.null_count() > 0) {
      return arrow::Status::Invalid(what_, ": null in column '", kChangeOpColumn, "'");
    }
    ops = op_column.data()->GetValues<int8_t>(1);
  }

  const int64_t n = values->num_rows();
  const uint64_t id = next_batch_id_++;
  Stored& stored = batches_[id];
  stored.batch = values;
  stored_rows_ += n;
  for (int64_t i = 0; i < n; ++i) {
    const int8_t op = ops ? ops[i] : static_cast<int8_t>(ChangeOp::kInsert);
    std::string_view key = keys.key(i);
    if (op == static_cast<int8_t>(ChangeOp::kInsert) ||
        op == static_cast<int8_t>(ChangeOp::kUpdateAfter)) {
      auto [it, inserted] = rows_.try_emplace(std::string(key));
      if (!inserted) Release(it->second);
      it->second = Location{id, static_cast<int32_t>(i), owner};
      ++stored.live;
    } else if (op == static_cast<int8_t>(ChangeOp::kUpdateBefore) ||
               op == static_cast<int8_t>(ChangeOp::kDelete)) {
      auto it = rows_.find(key);
      if (it != rows_.end()) {
        Release(it->second);
        rows_.erase(it);
      }
    } else {
      return arrow::Status::Invalid(what_, ": unknown changelog op ",
                                    static_cast<int>(op), " in row ", i,
                                    " (expected 0..3)");
    }
  }
  if (stored.live == 0) {
    stored_rows_ -= n;
    batches_.erase(id);
  }
  return MaybeCompact();
}

arrow::Result<std::shared_ptr<arrow::RecordBatch>> MaterializedTable::Gather(
    const std::vector<Location>& locations) const {
  std::vector<const Stored*> chunks;
  std::unordered_map<uint64_t, int64_t> start;
  int64_t total = 0;
  arrow::Int64Builder indices(pool_);
  ARROW_RETURN_NOT_OK(indices.Reserve(static_cast<int64_t>(locations.size())));
  for (const auto& loc : locations) {
    auto [it, inserted] = start.try_emplace(loc.batch_id, total);
    if (inserted) {
      const Stored& s = batches_.at(loc.batch_id);
      chunks.push_back(&s);
      total += s.batch->num_rows();
    }
    indices.UnsafeAppend(it->second + loc.row);
  }
  const int64_t n = static_cast<int64_t>(locations.size());
  if (chunks.empty()) {
    ARROW_ASSIGN_OR_RAISE(auto empty, arrow::RecordBatch::MakeEmpty(schema_, pool_));
    return empty;
  }
  std::shared_ptr<arrow::Array> take;
  ARROW_RETURN_NOT_OK(indices.Finish(&take));
  arrow::compute::ExecContext exec(pool_);
  arrow::ArrayVector columns;
  for (int c = 0; c < schema_->num_fields(); ++c) {
    arrow::Datum values;
    if (chunks.size() == 1) {
      values = chunks[0]->batch->column(c);
    } else {
      arrow::ArrayVector parts;
      for (const auto* s : chunks) parts.push_back(s->batch->column(c));
      values = std::make_shared<arrow::ChunkedArray>(std::move(parts),
                                                     schema_->field(c)->type());
    }
    ARROW_ASSIGN_OR_RAISE(
        arrow::Datum taken,
        arrow::compute::Take(values, take, arrow::compute::TakeOptions::NoBoundsCheck(),
                             &exec));
    if (taken.is_array()) {
      columns.push_back(taken.make_array());
    } else {
      const auto& parts = taken.chunked_array()->chunks();
      if (parts.size() == 1) {
        columns.push_back(parts[0]);
      } else {
        ARROW_ASSIGN_OR_RAISE(auto joined, arrow::Concatenate(parts, pool_));
        columns.push_back(std::move(joined));
      }
    }
  }
  return arrow::RecordBatch::Make(schema_, n, std::move(columns));
}

arrow::Status MaterializedTable::MaybeCompact() {
  const int64_t live = static_cast<int64_t>(rows_.size());
  if (stored_rows_ <= 2 * live + 4096) return arrow::Status::OK();
  std::vector<Location> locations;
  locations.reserve(rows_.size());
  for (const auto& [key, loc] : rows_) locations.push_back(loc);
  ARROW_ASSIGN_OR_RAISE(auto compacted, Gather(locations));
  const uint64_t id = next_batch_id_++;
  int32_t row = 0;
  for (auto& [key, loc] : rows_) loc = Location{id, row++, loc.owner};
  batches_.clear();
  batches_[id] = Stored{std::move(compacted), live};
  stored_rows_ = live;
  return arrow::Status::OK();
}

arrow::Result<std::shared_ptr<arrow::RecordBatch>> MaterializedTable::Get(
    const std::vector<std::shared_ptr<arrow::Array>>& key) const {
  if (!schema_) return nullptr;
  if (key.size() != key_types_.size()) {
    return arrow::Status::Invalid(what_, ": a key has ", key_types_.size(),
                                  " column(s), got ", key.size(), " value(s)");
  }
  std::vector<std::shared_ptr<arrow::Array>> columns;
  for (size_t k = 0; k < key.size(); ++k) {
    if (key[k]->length() != 1) {
      return arrow::Status::Invalid(what_, ": one value per key column expected");
    }
    if (key[k]->type()->Equals(*key_types_[k])) {
      columns.push_back(key[k]);
      continue;
    }
    arrow::compute::ExecContext exec(pool_);
    auto cast = arrow::compute::Cast(*key[k], key_types_[k],
                                     arrow::compute::CastOptions::Safe(), &exec);
    if (!cast.ok()) {
      return arrow::Status::TypeError(what_, ": key column '", key_columns_[k], "' is ",
                                      key_types_[k]->ToString(), "; cannot use a ",
                                      key[k]->type()->ToString(),
                                      " value: ", cast.status().message());
    }
    columns.push_back(*cast);
  }
  EncodedKeys encoded;
  ARROW_RETURN_NOT_OK(EncodeRowKeys(columns, &encoded, what_));
  auto it = rows_.find(encoded.key(0));
  if (it == rows_.end()) return nullptr;
  const Stored& s = batches_.at(it->second.batch_id);
  return s.batch->Slice(it->second.row, 1);
}

arrow::Result<std::shared_ptr<arrow::Table>> MaterializedTable::Scan(int owner) const {
  if (!schema_) return nullptr;
  std::vector<Location> locations;
  locations.reserve(rows_.size());
  for (const auto& [key, loc] : rows_) {
    if (owner < 0 || loc.owner == owner) locations.push_back(loc);
  }
  ARROW_ASSIGN_OR_RAISE(auto batch, Gather(locations));
  return arrow::Table::FromRecordBatches(schema_, {batch});
}

void MaterializedTable::Clear() {
  rows_.clear();
  batches_.clear();
  stored_rows_ = 0;
}

}  // namespace sabot
