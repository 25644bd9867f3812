// An Arrow compute expression bound lazily to the schema of the batches it sees.
#pragma once

#include <arrow/compute/expression.h>
#include <arrow/datum.h>
#include <arrow/record_batch.h>

#include <memory>
#include <string>

namespace sabot {

/// Binds on the first batch and rebinds only when the schema changes, so the
/// per-batch cost is one schema pointer comparison plus the vectorized kernels.
class BoundExpression {
 public:
  explicit BoundExpression(arrow::compute::Expression expr) : expr_(std::move(expr)) {}

  /// Evaluates over `batch`; errors name the operator, the expression and the
  /// schema (e.g. an unknown column).
  arrow::Result<arrow::Datum> Evaluate(const arrow::RecordBatch& batch,
                                       const std::string& operator_name,
                                       arrow::compute::ExecContext* exec_context);

  const arrow::compute::Expression& expression() const { return expr_; }
  const arrow::compute::Expression& bound() const { return bound_; }

 private:
  arrow::compute::Expression expr_;
  arrow::compute::Expression bound_;
  std::shared_ptr<arrow::Schema> bound_schema_;
};

}  // namespace sabot
