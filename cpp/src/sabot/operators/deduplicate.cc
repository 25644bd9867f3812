#include "sabot/operators/deduplicate.h"

#include <arrow/builder.h>
#include <arrow/compute/api_scalar.h>
#include <arrow/compute/cast.h>
#include <arrow/table.h>
#include <arrow/util/logging.h>

#include <cstring>

#include "sabot/exec/partitioner.h"
#include "sabot/operators/changelog.h"
#include "sabot/state/backend.h"
#include "sabot/state/key_codec.h"
#include "sabot/state/value_codec.h"

namespace sabot {

std::string DeduplicateOptions::ToString() const {
  std::string s = "deduplicate(keys [";
  for (size_t i = 0; i < keys.size(); ++i) s += (i ? ", " : "") + keys[i];
  s += std::string("], keep ") + (keep_last ? "last" : "first");
  if (!time_column.empty()) s += " by " + time_column;
  return s + ")";
}

namespace {

// Where a key's winning row is while a batch is processed.
constexpr int64_t kNone = -1;       // no row (new key)
constexpr int64_t kStored = -2;     // the row in state (from an earlier batch)
constexpr int64_t kUntouched = -3;  // (previous[]) the batch did not change the key

/// Keyed state: per key one value in the state backend (state/backend.h),
/// "current_row": empty for keep-first by arrival (the key was seen), else the
/// kept row's time (8 bytes, when ordered by a time column) followed by the row
/// (RowCodec). Per input batch: one MultiGet of the batch's distinct keys and
/// one write of the changed keys, whatever the backend.
class DeduplicateOperator : public Operator {
 public:
  explicit DeduplicateOperator(const DeduplicateOptions& o) : o_(o) {}

  arrow::Status Open(OperatorContext* ctx) override {
    pool_ = ctx->pool;
    max_parallelism_ = ctx->max_parallelism;
    ARROW_ASSIGN_OR_RAISE(
        backend_, KeyedStateBackend::Make(KeyedStateBackendOptions::FromContext(*ctx)));
    ARROW_ASSIGN_OR_RAISE(state_,
                          backend_->Declare({"current_row", StateType::kValue, {}}));
    return backend_->Restore(ctx->restore);
  }

  arrow::Status ProcessBatch(int, const std::shared_ptr<arrow::RecordBatch>& batch,
                             OperatorContext* ctx, Collector* out) override {
    if (!initialized_) ARROW_RETURN_NOT_OK(Init(batch->schema(), ctx));
    const int64_t n = batch->num_rows();
    if (n == 0) return arrow::Status::OK();
    ARROW_ASSIGN_OR_RAISE(KeyBatch keys,
                          EncodeKeys(*batch, key_indices_, max_parallelism_));
    const int64_t num_keys = keys.num_keys();
    std::shared_ptr<arrow::Int64Array> times;
    if (time_index_ >= 0) {
      ARROW_ASSIGN_OR_RAISE(
          auto cast, arrow::compute::Cast(*batch->column(time_index_), arrow::int64()));
      times = std::static_pointer_cast<arrow::Int64Array>(cast);
    }
    ValueBatch stored;
    ARROW_RETURN_NOT_OK(backend_->MultiGet(state_, keys.storage_keys(), &stored));
    std::vector<int64_t> current(static_cast<size_t>(num_keys), kNone);
    std::vector<int64_t> current_time(static_cast<size_t>(num_keys), 0);
    for (int64_t k = 0; k < num_keys; ++k) {
      if (!stored.found(k)) continue;
      current[k] = kStored;
      if (times) {
        if (stored.value(k).size() < 8) {
          return arrow::Status::Invalid(ctx->operator_name,
                                        ": corrupt deduplicate state");
        }
        std::memcpy(&current_time[k], stored.value(k).data(), 8);
      }
    }
    // The winning row per key after this batch, and its row before the batch.
    const bool arrival_first = !o_.keep_last && time_index_ < 0;
    std::vector<int64_t> touched;
    std::vector<int64_t> previous(static_cast<size_t>(num_keys), kUntouched);
    for (int64_t i = 0; i < n; ++i) {
      const int64_t g = keys.row_key(i);
      int64_t t = 0;
      if (times) {
        if (times->IsNull(i)) continue;
        t = times->Value(i);
      }
      bool take;
      if (current[g] == kNone) {
        take = true;
      } else if (times) {
        take = o_.keep_last ? t >= current_time[g] : t < current_time[g];
      } else {
        take = o_.keep_last;
      }
      if (!take) continue;
      if (previous[g] == kUntouched) {
        previous[g] = current[g];
        touched.push_back(g);
      }
      current[g] = i;
      current_time[g] = t;
    }
    if (touched.empty()) return arrow::Status::OK();

    // New state of the touched keys (one write).
    std::vector<int64_t> winners;
    winners.reserve(touched.size());
    for (int64_t g : touched) winners.push_back(current[g]);
    StateWriteBatch writes;
    if (arrival_first) {
      for (int64_t g : touched) writes.Put(state_, keys.storage_key(g), {});
    } else {
      std::vector<std::string> values(touched.size());
      std::vector<std::string*> outs;
      for (size_t j = 0; j < touched.size(); ++j) {
        if (times)
          values[j].append(reinterpret_cast<const char*>(&current_time[touched[j]]), 8);
        outs.push_back(&values[j]);
      }
      ARROW_RETURN_NOT_OK(row_codec_->Encode(*batch, winners, outs));
      for (size_t j = 0; j < touched.size(); ++j) {
        writes.Put(state_, keys.storage_key(touched[j]), values[j]);
      }
    }
    ARROW_RETURN_NOT_OK(backend_->Write(writes));

    std::vector<ChangeOp> ops;
    if (arrival_first) {
      // Only new keys: the rows come straight from this batch.
      ops.assign(touched.size(), ChangeOp::kInsert);
      ARROW_ASSIGN_OR_RAISE(auto taken, TakeRows(batch, nullptr, winners));
      ARROW_ASSIGN_OR_RAISE(auto result, MakeChangelogBatch(taken, ops, pool_));
      return out->Emit(std::move(result));
    }
    // Rows replaced by this batch come from state; rows >= n index them.
    std::vector<std::string_view> replaced;
    std::vector<int64_t> rows;
    for (int64_t g : touched) {
      if (previous[g] == kStored) {
        rows.push_back(n + static_cast<int64_t>(replaced.size()));
        replaced.push_back(stored.value(g).substr(times ? 8 : 0));
        ops.push_back(ChangeOp::kUpdateBefore);
        ops.push_back(ChangeOp::kUpdateAfter);
      } else {
        ops.push_back(ChangeOp::kInsert);
      }
      rows.push_back(current[g]);
    }
    std::shared_ptr<arrow::RecordBatch> before;
    if (!replaced.empty()) {
      ARROW_ASSIGN_OR_RAISE(auto decoded, row_codec_->Decode(replaced, pool_));
      before = arrow::RecordBatch::Make(batch->schema(), decoded->num_rows(),
                                        decoded->columns());
    }
    ARROW_ASSIGN_OR_RAISE(auto taken, TakeRows(batch, before, rows));
    ARROW_ASSIGN_OR_RAISE(auto result, MakeChangelogBatch(taken, ops, pool_));
    return out->Emit(std::move(result));
  }

  arrow::Status SnapshotState(SnapshotWriter* writer, OperatorContext* ctx) override {
    return backend_->Snapshot(writer);
  }

  arrow::Status NotifyCheckpointComplete(int64_t checkpoint_id,
                                         OperatorContext* ctx) override {
    return backend_->NotifyCheckpointComplete(checkpoint_id);
  }

  std::vector<StateDescriptor> state_tables() const override {
    return {{"current_row", "value"}};
  }

 private:
  arrow::Status Init(const std::shared_ptr<arrow::Schema>& schema, OperatorContext* ctx) {
    ARROW_ASSIGN_OR_RAISE(key_indices_,
                          ResolveKeyColumns(*schema, o_.keys, ctx->operator_name));
    if (schema->GetFieldIndex(kChangeOpColumn) >= 0) {
      return arrow::Status::Invalid(ctx->operator_name,
                                    ": the input already has an '_op' column");
    }
    if (!o_.time_column.empty()) {
      time_index_ = schema->GetFieldIndex(o_.time_column);
      if (time_index_ < 0) {
        return arrow::Status::KeyError(ctx->operator_name, ": time column '",
                                       o_.time_column, "' is not in the input schema (",
                                       schema->ToString(false), ")");
      }
    }
    if (o_.keep_last || time_index_ >= 0) {  // keep-first by arrival keeps no rows
      ARROW_ASSIGN_OR_RAISE(auto codec, RowCodec::Make(schema, ctx->operator_name));
      row_codec_ = std::make_unique<RowCodec>(std::move(codec));
    }
    initialized_ = true;
    return arrow::Status::OK();
  }

  // Rows `rows` of `batch` (indices < its length) and of `extra` (the rest).
  arrow::Result<std::shared_ptr<arrow::RecordBatch>> TakeRows(
      const std::shared_ptr<arrow::RecordBatch>& batch,
      const std::shared_ptr<arrow::RecordBatch>& extra,
      const std::vector<int64_t>& rows) {
    arrow::Int64Builder b(pool_);
    ARROW_RETURN_NOT_OK(b.AppendValues(rows));
    ARROW_ASSIGN_OR_RAISE(auto indices, b.Finish());
    if (!extra) {
      ARROW_ASSIGN_OR_RAISE(arrow::Datum taken, arrow::compute::Take(batch, indices));
      return taken.record_batch();
    }
    ARROW_ASSIGN_OR_RAISE(auto table, arrow::Table::FromRecordBatches({batch, extra}));
    ARROW_ASSIGN_OR_RAISE(arrow::Datum taken, arrow::compute::Take(table, indices));
    return taken.table()->CombineChunksToBatch(pool_);
  }

  const DeduplicateOptions& o_;
  arrow::MemoryPool* pool_ = nullptr;
  int max_parallelism_ = 128;
  std::vector<int> key_indices_;
  int time_index_ = -1;
  std::unique_ptr<KeyedStateBackend> backend_;
  int state_ = -1;
  std::unique_ptr<RowCodec> row_codec_;
  bool initialized_ = false;
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
