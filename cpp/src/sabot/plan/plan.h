// Logical plan: what the C++ DataStream API, the Python API and (later) SQL all
// build. Plan nodes name their operator by registry key; the runtime creates the
// operator instances from the registry (see plan/registry.h).
#pragma once

#include <arrow/status.h>

#include <memory>
#include <string>
#include <vector>

namespace sabot {

/// How rows travel from one node's instances to the next node's instances.
enum class Partitioning {
  kForward,    ///< instance i -> instance i (same parallelism); chainable
  kHash,       ///< by hash of key columns: one key always reaches one instance
  kRebalance,  ///< round robin over all downstream instances
  kBroadcast,  ///< every row to every downstream instance
};

const char* PartitioningName(Partitioning p);

struct PlanEdge {
  int from = -1;  ///< upstream node id
  Partitioning partitioning = Partitioning::kForward;
  std::vector<std::string> keys;  ///< key columns for kHash
  /// Non-empty: this edge carries the upstream's side output with this tag
  /// (e.g. "late") instead of its main output.
  std::string side_output;
};

/// Operator-specific options. `ToString` is the node's serialized form in plan
/// descriptions; options holding code (C++ functions, Python UDFs) describe it
/// by name.
class NodeOptions {
 public:
  virtual ~NodeOptions() = default;
  virtual std::string ToString() const = 0;
};

struct PlanNode {
  int id = -1;
  std::string kind;  ///< registry key, e.g. "filter", "nexmark_source"
  std::string name;  ///< display name, unique in the plan, e.g. "filter#3"
  /// Stable identity of the node's state across runs of the job (checkpoints,
  /// savepoints); empty: the name. Set it when the plan may change between runs.
  std::string uid;
  int parallelism = 0;  ///< 0: the job's default parallelism
  std::vector<PlanEdge> inputs;
  std::shared_ptr<const NodeOptions> options;

  /// The uid under which checkpoints keep this node's state.
  const std::string& state_uid() const { return uid.empty() ? name : uid; }

  template <typename T>
  const T& options_as() const {
    return static_cast<const T&>(*options);
  }
};

/// A DAG of plan nodes in insertion (topological) order.
class LogicalPlan {
 public:
  /// Adds a node and returns its id. Inputs must already be in the plan.
  int AddNode(std::string kind, std::vector<PlanEdge> inputs,
              std::shared_ptr<const NodeOptions> options, int parallelism = 0);

  const std::vector<PlanNode>& nodes() const { return nodes_; }
  const PlanNode& node(int id) const { return nodes_.at(static_cast<size_t>(id)); }
  PlanNode* mutable_node(int id) { return &nodes_.at(static_cast<size_t>(id)); }

  /// Checks ids, edges and keys; names the offending node on error.
  arrow::Status Validate() const;

  /// A JSON description of the plan (nodes, edges, options).
  std::string ToJson() const;

 private:
  std::vector<PlanNode> nodes_;
};

}  // namespace sabot
