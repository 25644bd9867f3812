// The one operator registry: plan node kind -> factory of runtime instances.
#pragma once

#include <arrow/result.h>

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "sabot/exec/operator.h"
#include "sabot/exec/source.h"
#include "sabot/plan/plan.h"

namespace sabot {

/// Creates the operator instance `instance_index` of `node`.
using OperatorFactory = std::function<arrow::Result<std::unique_ptr<Operator>>(
    const PlanNode& node, int instance_index, int parallelism)>;
/// Creates the source reader for split `instance_index` of `parallelism` splits.
using SourceFactory = std::function<arrow::Result<std::unique_ptr<SourceReader>>(
    const PlanNode& node, int instance_index, int parallelism)>;

/// Thread-safe. Built-in operators are registered on first use of Global().
class OperatorRegistry {
 public:
  static OperatorRegistry* Global();

  arrow::Status AddOperator(const std::string& kind, OperatorFactory factory);
  arrow::Status AddSource(const std::string& kind, SourceFactory factory);

  bool IsSource(const std::string& kind) const;
  arrow::Result<std::unique_ptr<Operator>> MakeOperator(const PlanNode& node,
                                                        int instance,
                                                        int parallelism) const;
  arrow::Result<std::unique_ptr<SourceReader>> MakeSource(const PlanNode& node,
                                                          int instance,
                                                          int parallelism) const;
  std::vector<std::string> Kinds() const;

 private:
  mutable std::mutex mutex_;
  std::map<std::string, OperatorFactory> operators_;
  std::map<std::string, SourceFactory> sources_;
};

/// Registers every built-in operator, source and sink (called by Global()).
void RegisterBuiltins(OperatorRegistry* registry);

}  // namespace sabot
