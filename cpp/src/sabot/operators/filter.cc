#include "sabot/operators/filter.h"

#include <arrow/compute/api_vector.h>

#include "sabot/operators/bound_expression.h"

namespace sabot {

namespace {

class FilterOperator : public Operator {
 public:
  explicit FilterOperator(const FilterOptions& options) : predicate_(options.predicate) {}

  arrow::Status ProcessBatch(int, const std::shared_ptr<arrow::RecordBatch>& batch,
                             OperatorContext* ctx, Collector* out) override {
    ARROW_ASSIGN_OR_RAISE(
        arrow::Datum mask,
        predicate_.Evaluate(*batch, ctx->operator_name, ctx->exec_context));
    if (!mask.type() || mask.type()->id() != arrow::Type::BOOL) {
      return arrow::Status::TypeError(
          ctx->operator_name, ": predicate ", predicate_.expression().ToString(),
          " has type ", mask.type() ? mask.type()->ToString() : "?", ", expected bool");
    }
    if (mask.is_scalar()) {
      const auto& scalar = mask.scalar_as<arrow::BooleanScalar>();
      if (scalar.is_valid && scalar.value) return out->Emit(batch);
      return arrow::Status::OK();
    }
    const auto& array = *mask.array();
    const int64_t kept = array.GetNullCount() == 0
                             ? arrow::internal::CountSetBits(array.buffers[1]->data(),
                                                             array.offset, array.length)
                             : -1;
    if (kept == batch->num_rows()) return out->Emit(batch);
    if (kept == 0) return arrow::Status::OK();
    ARROW_ASSIGN_OR_RAISE(
        arrow::Datum filtered,
        arrow::compute::Filter(batch, mask, arrow::compute::FilterOptions::Defaults(),
                               ctx->exec_context));
    auto result = filtered.record_batch();
    if (result->num_rows() == 0) return arrow::Status::OK();
    return out->Emit(std::move(result));
  }

 private:
  BoundExpression predicate_;
};

}  // namespace

void RegisterFilterOperator(OperatorRegistry* registry) {
  ARROW_CHECK_OK(registry->AddOperator(
      "filter",
      [](const PlanNode& node, int, int) -> arrow::Result<std::unique_ptr<Operator>> {
        return std::make_unique<FilterOperator>(node.options_as<FilterOptions>());
      }));
}

}  // namespace sabot
