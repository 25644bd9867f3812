#include "sabot/operators/union.h"

#include "sabot/operators/map.h"

namespace sabot {

namespace {

class UnionOperator : public Operator {
 public:
  arrow::Status ProcessBatch(int input, const std::shared_ptr<arrow::RecordBatch>& batch,
                             OperatorContext* ctx, Collector* out) override {
    std::string what = "input " + std::to_string(input);
    ARROW_RETURN_NOT_OK(guard_.Check(*batch, ctx->operator_name, what.c_str()));
    return out->Emit(batch);
  }

 private:
  SchemaGuard guard_{nullptr};
};

}  // namespace

void RegisterUnionOperator(OperatorRegistry* registry) {
  ARROW_CHECK_OK(registry->AddOperator(
      "union", [](const PlanNode&, int, int) -> arrow::Result<std::unique_ptr<Operator>> {
        return std::make_unique<UnionOperator>();
      }));
}

}  // namespace sabot
