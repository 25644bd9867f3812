#include "sabot/views/view_sink.h"

#include <arrow/util/logging.h>

#include "sabot/exec/operator.h"

namespace sabot {

namespace {

constexpr char kRowsTable[] = "rows";

class ViewSink : public Operator {
 public:
  explicit ViewSink(std::shared_ptr<MaterializedView> view) : view_(std::move(view)) {}

  arrow::Status Open(OperatorContext* ctx) override {
    owner_ = ctx->instance_index;
    if (ctx->restore != nullptr) {
      ARROW_ASSIGN_OR_RAISE(auto batches, ctx->restore->ReadKeyed(kRowsTable));
      for (const auto& b : batches) ARROW_RETURN_NOT_OK(view_->Apply(b, owner_));
    }
    return arrow::Status::OK();
  }

  arrow::Status ProcessBatch(int, const std::shared_ptr<arrow::RecordBatch>& batch,
                             OperatorContext*, Collector*) override {
    return view_->Apply(batch, owner_);
  }

  arrow::Status SnapshotState(SnapshotWriter* writer, OperatorContext*) override {
    ARROW_ASSIGN_OR_RAISE(auto rows, view_->ScanOwner(owner_));
    if (!rows || rows->num_rows() == 0) return arrow::Status::OK();
    ARROW_ASSIGN_OR_RAISE(auto batch, rows->CombineChunksToBatch());
    return writer->WriteKeyed(kRowsTable, std::move(batch), view_->key_columns());
  }

  std::vector<StateDescriptor> state_tables() const override {
    return {{kRowsTable, "value"}};
  }

 private:
  std::shared_ptr<MaterializedView> view_;
  int owner_ = 0;
};

}  // namespace

std::string ViewSinkOptions::ToString() const {
  std::string keys;
  for (const auto& k : view->key_columns()) keys += (keys.empty() ? "" : ",") + k;
  return "materialized_view(" + view->name() + ", key=" + keys + ")";
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
