#include "sabot/plan/registry.h"

namespace sabot {

OperatorRegistry* OperatorRegistry::Global() {
  static OperatorRegistry* registry = [] {
    auto* r = new OperatorRegistry();
    RegisterBuiltins(r);
    return r;
  }();
  return registry;
}

arrow::Status OperatorRegistry::AddOperator(const std::string& kind,
                                            OperatorFactory factory) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (operators_.count(kind) || sources_.count(kind)) {
    return arrow::Status::AlreadyExists("operator kind '", kind,
                                        "' is already registered");
  }
  operators_[kind] = std::move(factory);
  return arrow::Status::OK();
}

arrow::Status OperatorRegistry::AddSource(const std::string& kind,
                                          SourceFactory factory) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (operators_.count(kind) || sources_.count(kind)) {
    return arrow::Status::AlreadyExists("source kind '", kind, "' is already registered");
  }
  sources_[kind] = std::move(factory);
  return arrow::Status::OK();
}

bool OperatorRegistry::IsSource(const std::string& kind) const {
  std::lock_guard<std::mutex> lock(mutex_);
  return sources_.count(kind) > 0;
}

arrow::Result<std::unique_ptr<Operator>> OperatorRegistry::MakeOperator(
    const PlanNode& node, int instance, int parallelism) const {
  OperatorFactory factory;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = operators_.find(node.kind);
    if (it == operators_.end()) {
      return arrow::Status::KeyError("no operator kind '", node.kind,
                                     "' is registered (node '", node.name, "')");
    }
    factory = it->second;
  }
  return factory(node, instance, parallelism);
}

arrow::Result<std::unique_ptr<SourceReader>> OperatorRegistry::MakeSource(
    const PlanNode& node, int instance, int parallelism) const {
  SourceFactory factory;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = sources_.find(node.kind);
    if (it == sources_.end()) {
      return arrow::Status::KeyError("no source kind '", node.kind,
                                     "' is registered (node '", node.name, "')");
    }
    factory = it->second;
  }
  return factory(node, instance, parallelism);
}

std::vector<std::string> OperatorRegistry::Kinds() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<std::string> kinds;
  for (const auto& [k, _] : operators_) kinds.push_back(k);
  for (const auto& [k, _] : sources_) kinds.push_back(k);
  return kinds;
}

}  // namespace sabot
