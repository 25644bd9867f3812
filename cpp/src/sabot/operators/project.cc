#include "sabot/operators/project.h"

#include "sabot/operators/bound_expression.h"

namespace sabot {

std::string ProjectOptions::ToString() const {
  std::string s = "select(";
  for (size_t i = 0; i < expressions.size(); ++i) {
    if (i) s += ", ";
    s += expressions[i].ToString() + " AS " + names[i];
  }
  return s + ")";
}

namespace {

class ProjectOperator : public Operator {
 public:
  explicit ProjectOperator(const ProjectOptions& options) : names_(options.names) {
    for (const auto& e : options.expressions) exprs_.emplace_back(e);
  }

  arrow::Status ProcessBatch(int, const std::shared_ptr<arrow::RecordBatch>& batch,
                             OperatorContext* ctx, Collector* out) override {
    std::vector<std::shared_ptr<arrow::Array>> columns;
    columns.reserve(exprs_.size());
    bool types_changed = !schema_;
    for (size_t i = 0; i < exprs_.size(); ++i) {
      ARROW_ASSIGN_OR_RAISE(
          arrow::Datum value,
          exprs_[i].Evaluate(*batch, ctx->operator_name, ctx->exec_context));
      std::shared_ptr<arrow::Array> column;
      if (value.is_scalar()) {
        ARROW_ASSIGN_OR_RAISE(column, arrow::MakeArrayFromScalar(
                                          *value.scalar(), batch->num_rows(), ctx->pool));
      } else {
        column = value.make_array();
      }
      if (schema_ &&
          !schema_->field(static_cast<int>(i))->type()->Equals(*column->type())) {
        types_changed = true;
      }
      columns.push_back(std::move(column));
    }
    if (types_changed) {
      arrow::FieldVector fields;
      for (size_t i = 0; i < columns.size(); ++i) {
        fields.push_back(arrow::field(names_[i], columns[i]->type()));
      }
      schema_ = arrow::schema(std::move(fields));
    }
    return out->Emit(
        arrow::RecordBatch::Make(schema_, batch->num_rows(), std::move(columns)));
  }

 private:
  std::vector<BoundExpression> exprs_;
  std::vector<std::string> names_;
  std::shared_ptr<arrow::Schema> schema_;
};

}  // namespace

void RegisterProjectOperator(OperatorRegistry* registry) {
  ARROW_CHECK_OK(registry->AddOperator(
      "select",
      [](const PlanNode& node, int, int) -> arrow::Result<std::unique_ptr<Operator>> {
        const auto& options = node.options_as<ProjectOptions>();
        if (options.expressions.size() != options.names.size()) {
          return arrow::Status::Invalid(node.name, ": ", options.expressions.size(),
                                        " expressions but ", options.names.size(),
                                        " names");
        }
        return std::make_unique<ProjectOperator>(options);
      }));
}

}  // namespace sabot
