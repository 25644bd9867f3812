#include "sabot/operators/bound_expression.h"

#include <arrow/compute/exec.h>

namespace sabot {

arrow::Result<arrow::Datum> BoundExpression::Evaluate(
    const arrow::RecordBatch& batch, const std::string& operator_name,
    arrow::compute::ExecContext* exec_context) {
  if (!bound_schema_ || !(bound_schema_ == batch.schema() ||
                          bound_schema_->Equals(*batch.schema(), false))) {
    auto bound = expr_.Bind(*batch.schema(), exec_context);
    if (!bound.ok()) {
      return arrow::Status::Invalid(operator_name, ": cannot apply expression ",
                                    expr_.ToString(), " to input with schema (",
                                    batch.schema()->ToString(false),
                                    "): ", bound.status().message());
    }
    bound_ = bound.MoveValueUnsafe();
    bound_schema_ = batch.schema();
  }
  arrow::compute::ExecBatch input(batch);
  auto result = arrow::compute::ExecuteScalarExpression(bound_, input, exec_context);
  if (!result.ok()) {
    return result.status().WithMessage(operator_name, ": evaluating ", expr_.ToString(),
                                       " failed: ", result.status().message());
  }
  return result.MoveValueUnsafe();
}

}  // namespace sabot
