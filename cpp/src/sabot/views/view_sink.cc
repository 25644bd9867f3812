#include "sabot/views/view_sink.h"

#include <arrow/util/logging.h>

#include <map>
#include <vector>

#include "sabot/exec/operator.h"

namespace sabot {

namespace {

constexpr char kRowsTable[] = "rows";

class ViewSink : public Operator {
 public:
  explicit ViewSink(std::shared_ptr<MaterializedView> view) : view_(std::move(view)) {}

  arrow::Status Open(OperatorContext* ctx) override {
    owner_ = ctx->instance_index;
    checkpointed_ = view_->consistency() == ViewConsistency::kCheckpoint;
    if (checkpointed_) {
      view_->AttachWriter(owner_, ctx->parallelism);
      // This instance's latest rows, for its checkpoints (the view only has
      // the rows of completed checkpoints).
      rows_ = std::make_unique<MaterializedTable>(
          view_->key_columns(), "view '" + view_->name() + "'", ctx->pool);
    }
    if (ctx->restore != nullptr) {
      // Rows of a completed checkpoint: published at once in either mode.
      ARROW_ASSIGN_OR_RAISE(auto batches, ctx->restore->ReadKeyed(kRowsTable));
      for (const auto& b : batches) {
        ARROW_RETURN_NOT_OK(view_->Apply(b, owner_));
        if (rows_) ARROW_RETURN_NOT_OK(rows_->Apply(b));
      }
    }
    return arrow::Status::OK();
  }

  arrow::Status ProcessBatch(int, const std::shared_ptr<arrow::RecordBatch>& batch,
                             OperatorContext*, Collector*) override {
    if (!checkpointed_) return view_->Apply(batch, owner_);
    ARROW_RETURN_NOT_OK(rows_->Apply(batch));
    staged_.push_back(batch);
    return arrow::Status::OK();
  }

  arrow::Status SnapshotState(SnapshotWriter* writer, OperatorContext*) override {
    std::shared_ptr<arrow::Table> rows;
    if (checkpointed_) {
      // The changes up to this barrier wait for the checkpoint to complete.
      sealed_[writer->checkpoint_id()] = std::move(staged_);
      staged_.clear();
      ARROW_ASSIGN_OR_RAISE(rows, rows_->Scan());
    } else {
      ARROW_ASSIGN_OR_RAISE(rows, view_->ScanOwner(owner_));
    }
    if (!rows || rows->num_rows() == 0) return arrow::Status::OK();
    ARROW_ASSIGN_OR_RAISE(auto batch, rows->CombineChunksToBatch());
    return writer->WriteKeyed(kRowsTable, std::move(batch), view_->key_columns());
  }

  arrow::Status NotifyCheckpointComplete(int64_t checkpoint_id,
                                         OperatorContext*) override {
    if (!checkpointed_) return arrow::Status::OK();
    std::vector<std::shared_ptr<arrow::RecordBatch>> batches;
    auto end = sealed_.upper_bound(checkpoint_id);
    for (auto it = sealed_.begin(); it != end; ++it) {
      for (auto& b : it->second) batches.push_back(std::move(b));
    }
    sealed_.erase(sealed_.begin(), end);
    return view_->Commit(owner_, checkpoint_id, std::move(batches));
  }

  arrow::Status Close(OperatorContext*, Collector*) override {
    if (!checkpointed_) return arrow::Status::OK();
    // End of input: everything is final.
    std::vector<std::shared_ptr<arrow::RecordBatch>> batches;
    for (auto& [id, list] : sealed_) {
      for (auto& b : list) batches.push_back(std::move(b));
    }
    for (auto& b : staged_) batches.push_back(std::move(b));
    sealed_.clear();
    staged_.clear();
    return view_->Finish(owner_, std::move(batches));
  }

  std::vector<StateDescriptor> state_tables() const override {
    return {{kRowsTable, "value"}};
  }

 private:
  std::shared_ptr<MaterializedView> view_;
  int owner_ = 0;
  bool checkpointed_ = false;
  // kCheckpoint only.
  std::unique_ptr<MaterializedTable> rows_;
  std::vector<std::shared_ptr<arrow::RecordBatch>> staged_;  // since the last barrier
  std::map<int64_t, std::vector<std::shared_ptr<arrow::RecordBatch>>> sealed_;
};

}  // namespace

std::string ViewSinkOptions::ToString() const {
  std::string keys;
  for (const auto& k : view->key_columns()) keys += (keys.empty() ? "" : ",") + k;
  return "materialized_view(" + view->name() + ", key=" + keys +
         ", consistency=" + ViewConsistencyName(view->consistency()) + ")";
}

void RegisterViewSink(OperatorRegistry* registry) {
  ARROW_CHECK_OK(registry->AddOperator(
      "materialized_view",
      [](const PlanNode& node, int, int) -> arrow::Result<std::unique_ptr<Operator>> {
        const auto& o = node.options_as<ViewSinkOptions>();
        if (!o.view) return arrow::Status::Invalid(node.name, ": no view given");
        return std::make_unique<ViewSink>(o.view);
      }));
}

}  // namespace sabot
