#include "sabot/operators/deduplicate.h"

#include <arrow/builder.h>
#include <arrow/compute/api_scalar.h>
#include <arrow/compute/cast.h>
#include <arrow/util/logging.h>

#include "sabot/exec/partitioner.h"
#include "sabot/operators/changelog.h"
#include "sabot/operators/key_table.h"
#include "sabot/operators/retained_rows.h"

namespace sabot {

std::string DeduplicateOptions::ToString() const {
  std::string s = "deduplicate(keys [";
  for (size_t i = 0; i < keys.size(); ++i) s += (i ? ", " : "") + keys[i];
  s += std::string("], keep ") + (keep_last ? "last" : "first");
  if (!time_column.empty()) s += " by " + time_column;
  return s + ")";
}

namespace {

constexpr int64_t kNone = -1;

class DeduplicateOperator : public Operator {
 public:
  explicit DeduplicateOperator(const DeduplicateOptions& o) : o_(o) {}

  arrow::Status ProcessBatch(int, const std::shared_ptr<arrow::RecordBatch>& batch,
                             OperatorContext* ctx, Collector* out) override {
    if (!key_table_) ARROW_RETURN_NOT_OK(Init(*batch->schema(), ctx));
    const int64_t n = batch->num_rows();
    if (n == 0) return arrow::Status::OK();
    std::vector<std::shared_ptr<arrow::Array>> keys;
    for (int i : key_indices_) keys.push_back(batch->column(i));
    ARROW_ASSIGN_OR_RAISE(auto ids, key_table_->Consume(keys, n));
    const uint32_t num_groups = key_table_->num_groups();
    current_.resize(num_groups, kNone);
    current_time_.resize(num_groups, 0);
    std::shared_ptr<arrow::Int64Array> times;
    if (time_index_ >= 0) {
      ARROW_ASSIGN_OR_RAISE(
          auto cast, arrow::compute::Cast(*batch->column(time_index_), arrow::int64()));
      times = std::static_pointer_cast<arrow::Int64Array>(cast);
    }
    const bool arrival_first = !o_.keep_last && time_index_ < 0;
    const int64_t base = arrival_first ? 0 : rows_.Add(batch);
    // The winning row per key after this batch, and its row before the batch
    // (previous_ is kept across batches and reset only where touched, so a
    // batch costs O(its rows), not O(keys)).
    std::vector<uint32_t> touched;
    previous_.resize(num_groups, kNone - 1);  // kNone - 1: not touched
    auto& previous = previous_;
    const uint32_t* gid = ids->raw_values();
    for (int64_t i = 0; i < n; ++i) {
      const uint32_t g = gid[i];
      int64_t t = 0;
      if (times) {
        if (times->IsNull(i)) continue;
        t = times->Value(i);
      }
      bool take;
      if (current_[g] == kNone) {
        take = true;
      } else if (times) {
        take = o_.keep_last ? t >= current_time_[g] : t < current_time_[g];
      } else {
        take = o_.keep_last;
      }
      if (!take) continue;
      if (previous[g] == kNone - 1) {
        previous[g] = current_[g];
        touched.push_back(g);
      }
      current_[g] = base + i;
      current_time_[g] = t;
    }
    std::vector<int64_t> before(touched.size());
    for (size_t t = 0; t < touched.size(); ++t) {
      before[t] = previous[touched[t]];
      previous[touched[t]] = kNone - 1;
    }
    if (touched.empty()) return arrow::Status::OK();
    std::vector<ChangeOp> ops;
    if (arrival_first) {
      // Only new keys: the rows come straight from this batch.
      std::vector<int64_t> rows;
      for (uint32_t g : touched) {
        rows.push_back(current_[g]);
        ops.push_back(ChangeOp::kInsert);
      }
      arrow::Int64Builder b(pool_);
      ARROW_RETURN_NOT_OK(b.AppendValues(rows));
      ARROW_ASSIGN_OR_RAISE(auto indices, b.Finish());
      ARROW_ASSIGN_OR_RAISE(arrow::Datum taken, arrow::compute::Take(batch, indices));
      ARROW_ASSIGN_OR_RAISE(auto result,
                            MakeChangelogBatch(taken.record_batch(), ops, pool_));
      return out->Emit(std::move(result));
    }
    std::vector<int64_t> rows;
    for (size_t t = 0; t < touched.size(); ++t) {
      const uint32_t g = touched[t];
      if (before[t] != kNone) {
        rows.push_back(before[t]);
        ops.push_back(ChangeOp::kUpdateBefore);
        ops.push_back(ChangeOp::kUpdateAfter);
      } else {
        ops.push_back(ChangeOp::kInsert);
      }
      rows.push_back(current_[g]);
    }
    ARROW_ASSIGN_OR_RAISE(auto taken, rows_.Take(rows, pool_));
    ARROW_ASSIGN_OR_RAISE(auto result, MakeChangelogBatch(taken, ops, pool_));
    ARROW_RETURN_NOT_OK(out->Emit(std::move(result)));
    // Keep the retained rows within twice the live ones (plus one batch).
    if (rows_.num_rows() > 2 * static_cast<int64_t>(num_groups) + 4096) {
      std::vector<int64_t*> live;
      for (auto& r : current_) {
        if (r != kNone) live.push_back(&r);
      }
      ARROW_RETURN_NOT_OK(rows_.Compact(live, pool_));
    }
    return arrow::Status::OK();
  }

  std::vector<StateDescriptor> state_tables() const override {
    return {{"current_row", "value"}};
  }

 private:
  arrow::Status Init(const arrow::Schema& schema, OperatorContext* ctx) {
    pool_ = ctx->pool;
    std::vector<std::shared_ptr<arrow::DataType>> key_types;
    ARROW_ASSIGN_OR_RAISE(key_indices_,
                          ResolveKeyColumns(schema, o_.keys, ctx->operator_name));
    for (int i : key_indices_) key_types.push_back(schema.field(i)->type());
    if (schema.GetFieldIndex(kChangeOpColumn) >= 0) {
      return arrow::Status::Invalid(ctx->operator_name,
                                    ": the input already has an '_op' column");
    }
    if (!o_.time_column.empty()) {
      time_index_ = schema.GetFieldIndex(o_.time_column);
      if (time_index_ < 0) {
        return arrow::Status::KeyError(ctx->operator_name, ": time column '",
                                       o_.time_column, "' is not in the input schema (",
                                       schema.ToString(false), ")");
      }
    }
    ARROW_ASSIGN_OR_RAISE(key_table_,
                          KeyTable::Make(key_types, false, ctx->exec_context, pool_));
    return arrow::Status::OK();
  }

  const DeduplicateOptions& o_;
  arrow::MemoryPool* pool_ = nullptr;
  std::vector<int> key_indices_;
  int time_index_ = -1;
  std::unique_ptr<KeyTable> key_table_;
  std::vector<int64_t> current_;  // row id of each key's row (kNone: none yet)
  std::vector<int64_t> current_time_;
  std::vector<int64_t> previous_;  // per key, scratch of ProcessBatch
  RetainedRows rows_;
};

}  // namespace

void RegisterDeduplicate(OperatorRegistry* registry) {
  ARROW_CHECK_OK(registry->AddOperator(
      "deduplicate",
      [](const PlanNode& node, int, int) -> arrow::Result<std::unique_ptr<Operator>> {
        return std::make_unique<DeduplicateOperator>(
            node.options_as<DeduplicateOptions>());
      }));
}

}  // namespace sabot
