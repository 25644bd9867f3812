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

/// map and flat_map: runs a user function and checks what it returns. A map's
/// function must return a batch for every input (`one_to_one`).
class UserFunctionOperator : public Operator {
 public:
  UserFunctionOperator(FlatMapFunction fn, std::string description,
                       std::shared_ptr<arrow::Schema> output_schema, bool one_to_one)
      : fn_(std::move(fn)),
        description_(std::move(description)),
        guard_(std::move(output_schema)),
        one_to_one_(one_to_one) {}

  arrow::Status ProcessBatch(int, const std::shared_ptr<arrow::RecordBatch>& batch,
                             OperatorContext* ctx, Collector* out) override {
    auto result = fn_(batch);
    if (!result.ok()) {
      return result.status().WithMessage(ctx->operator_name, ": ", description_,
                                         " failed: ", result.status().message());
    }
    for (auto& output : *result) {
      if (!output) {
        if (!one_to_one_) continue;
        return arrow::Status::Invalid(ctx->operator_name, ": ", description_,
                                      " returned no batch (None/null)");
      }
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
  bool one_to_one_;
};

}  // namespace

void RegisterMapOperators(OperatorRegistry* registry) {
  ARROW_CHECK_OK(registry->AddOperator(
      "map",
      [](const PlanNode& node, int, int) -> arrow::Result<std::unique_ptr<Operator>> {
        const auto& options = node.options_as<MapOptions>();
        FlatMapFunction one =
            [fn = options.fn](const std::shared_ptr<arrow::RecordBatch>& b)
            -> arrow::Result<std::vector<std::shared_ptr<arrow::RecordBatch>>> {
          ARROW_ASSIGN_OR_RAISE(auto output, fn(b));
          return std::vector<std::shared_ptr<arrow::RecordBatch>>{std::move(output)};
        };
        return std::make_unique<UserFunctionOperator>(std::move(one), options.description,
                                                      options.output_schema, true);
      }));
  ARROW_CHECK_OK(registry->AddOperator(
      "flat_map",
      [](const PlanNode& node, int, int) -> arrow::Result<std::unique_ptr<Operator>> {
        const auto& options = node.options_as<FlatMapOptions>();
        return std::make_unique<UserFunctionOperator>(options.fn, options.description,
                                                      options.output_schema, false);
      }));
}

}  // namespace sabot
