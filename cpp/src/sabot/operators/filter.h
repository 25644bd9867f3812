// filter: keeps the rows for which a boolean expression is true (null = drop).
#pragma once

#include <arrow/compute/expression.h>

#include "sabot/plan/plan.h"
#include "sabot/plan/registry.h"

namespace sabot {

struct FilterOptions : NodeOptions {
  arrow::compute::Expression predicate;
  std::string ToString() const override { return "filter(" + predicate.ToString() + ")"; }
};

void RegisterFilterOperator(OperatorRegistry* registry);

}  // namespace sabot
