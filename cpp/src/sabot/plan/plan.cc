#include "sabot/plan/plan.h"

#include <sstream>

namespace sabot {

const char* PartitioningName(Partitioning p) {
  switch (p) {
    case Partitioning::kForward:
      return "forward";
    case Partitioning::kHash:
      return "hash";
    case Partitioning::kRebalance:
      return "rebalance";
    case Partitioning::kBroadcast:
      return "broadcast";
  }
  return "?";
}

int LogicalPlan::AddNode(std::string kind, std::vector<PlanEdge> inputs,
                         std::shared_ptr<const NodeOptions> options, int parallelism) {
  PlanNode node;
  node.id = static_cast<int>(nodes_.size());
  node.name = kind + "#" + std::to_string(node.id);
  node.kind = std::move(kind);
  node.inputs = std::move(inputs);
  node.options = std::move(options);
  node.parallelism = parallelism;
  nodes_.push_back(std::move(node));
  return nodes_.back().id;
}

arrow::Status LogicalPlan::Validate() const {
  if (nodes_.empty()) return arrow::Status::Invalid("the job has no operators");
  for (const auto& node : nodes_) {
    for (const auto& edge : node.inputs) {
      if (edge.from < 0 || edge.from >= node.id) {
        return arrow::Status::Invalid("operator '", node.name,
                                      "' has an input from unknown node ", edge.from);
      }
      if (edge.partitioning == Partitioning::kHash && edge.keys.empty()) {
        return arrow::Status::Invalid("operator '", node.name,
                                      "' is keyed but its key_by names no key column");
      }
    }
    if (node.parallelism < 0) {
      return arrow::Status::Invalid("operator '", node.name,
                                    "' has negative parallelism ", node.parallelism);
    }
  }
  return arrow::Status::OK();
}

namespace {
std::string JsonEscape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        out += c;
    }
  }
  return out;
}
}  // namespace

std::string LogicalPlan::ToJson() const {
  std::ostringstream os;
  os << "{\"nodes\":[";
  for (size_t i = 0; i < nodes_.size(); ++i) {
    const auto& n = nodes_[i];
    if (i) os << ",";
    os << "{\"id\":" << n.id << ",\"kind\":\"" << JsonEscape(n.kind) << "\",\"name\":\""
       << JsonEscape(n.name) << "\",\"parallelism\":" << n.parallelism
       << ",\"options\":\"" << JsonEscape(n.options ? n.options->ToString() : "")
       << "\",\"inputs\":[";
    for (size_t j = 0; j < n.inputs.size(); ++j) {
      const auto& e = n.inputs[j];
      if (j) os << ",";
      os << "{\"from\":" << e.from << ",\"partitioning\":\""
         << PartitioningName(e.partitioning) << "\",\"side_output\":\""
         << JsonEscape(e.side_output) << "\",\"keys\":[";
      for (size_t k = 0; k < e.keys.size(); ++k) {
        if (k) os << ",";
        os << "\"" << JsonEscape(e.keys[k]) << "\"";
      }
      os << "]}";
    }
    os << "]}";
  }
  os << "]}";
  return os.str();
}

}  // namespace sabot
