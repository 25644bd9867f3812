// union: merges several streams of one schema into one.
#pragma once

#include "sabot/plan/plan.h"
#include "sabot/plan/registry.h"

namespace sabot {

struct UnionOptions : NodeOptions {
  std::string ToString() const override { return "union"; }
};

void RegisterUnionOperator(OperatorRegistry* registry);

}  // namespace sabot
