#include "sabot/operators/map.h"

namespace sabot {

arrow::Status SchemaGuard::Check(const arrow::RecordBatch& batch,
                                 const std::string& operator_name, const char* what) {
  if (!schema_) {
    schema_ = batch.schema();
    return arrow::Status::OK();
  }
  if (batch.schema()->Equals(*schema_, /*check_metadata=*/false))
    return arrow::Status::OK();
  return arrow::Status::TypeError(
      operator_name, ": ", what, " returned a batch with schema (",
      batch.schema()->ToString(false), ") but the stream's schema is (",
      schema_->ToString(false), ")");
}

namespace {

class MapOperator : public Operator {
 public:
  explicit MapOperator(const MapOptions& options)
      : fn_(options.fn),
        description_(options.description),
        guard_(options.output_schema) {}

  arrow::Status ProcessBatch(int, const std::shared_ptr<arrow::RecordBatch>& batch,
                             OperatorContext* ctx, Collector* out) override {
    auto result = fn_(batch);
    if (!result.ok()) {
      return result.status().WithMessage(ctx->operator_name, ": ", description_,
                                         " failed: ", result.status().message());
    }
    auto output = result.MoveValueUnsafe();
    if (!output) {
      return arrow::Status::Invalid(ctx->operator_name, ": ", description_,
                                    " returned no batch (None/null)");
    }
    ARROW_RETURN_NOT_OK(guard_.Check(*output, ctx->operator_name, description_.c_str()));
    if (output->num_rows() == 0) return arrow::Status::OK();
    return out->Emit(std::move(output));
  }

 private:
  BatchFunction fn_;
  std::string description_;
  SchemaGuard guard_;
};

class FlatMapOperator : public Operator {
 public:
  explicit FlatMapOperator(const FlatMapOptions& options)
      : fn_(options.fn),
        description_(options.description),
        guard_(options.output_schema) {}

  arrow::Status ProcessBatch(int, const std::shared_ptr<arrow::RecordBatch>& batch,
                             OperatorContext* ctx, Collector* out) override {
    auto result = fn_(batch);
    if (!result.ok()) {
      return result.status().WithMessage(ctx->operator_name, ": ", description_,
                                         " failed: ", result.status().message());
    }
    for (auto& output : *result) {
      if (!output) continue;
      ARROW_RETURN_NOT_OK(
          guard_.Check(*output, ctx->operator_name, description_.c_str()));
      if (output->num_rows() > 0) ARROW_RETURN_NOT_OK(out->Emit(std::move(output)));
    }
    return arrow::Status::OK();
  }

 private:
  FlatMapFunction fn_;
  std::string description_;
  SchemaGuard guard_;
};

}  // namespace

void RegisterMapOperators(OperatorRegistry* registry) {
  ARROW_CHECK_OK(registry->AddOperator(
      "map",
      [](const PlanNode& node, int, int) -> arrow::Result<std::unique_ptr<Operator>> {
        return std::make_unique<MapOperator>(node.options_as<MapOptions>());
      }));
  ARROW_CHECK_OK(registry->AddOperator(
      "flat_map",
      [](const PlanNode& node, int, int) -> arrow::Result<std::unique_ptr<Operator>> {
        return std::make_unique<FlatMapOperator>(node.options_as<FlatMapOptions>());
      }));
}

}  // namespace sabot
