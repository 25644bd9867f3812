// select / project: computes output columns from expressions over the input.
#pragma once

#include <arrow/compute/expression.h>

#include <string>
#include <vector>

#include "sabot/plan/plan.h"
#include "sabot/plan/registry.h"

namespace sabot {

/// Output column i is `expressions[i]` named `names[i]`. A bare field reference
/// keeps the input column without copying it.
struct ProjectOptions : NodeOptions {
  std::vector<arrow::compute::Expression> expressions;
  std::vector<std::string> names;
  std::string ToString() const override;
};

void RegisterProjectOperator(OperatorRegistry* registry);

}  // namespace sabot
