// In-memory sources and sinks: record batches in, collected batches out.
#pragma once

#include <arrow/record_batch.h>
#include <arrow/table.h>

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "sabot/plan/plan.h"
#include "sabot/plan/registry.h"

namespace sabot {

/// Source "batches_source": instance i of P emits batches i, i+P, i+2P, ...
struct BatchesSourceOptions : NodeOptions {
  std::shared_ptr<arrow::Schema> schema;
  std::vector<std::shared_ptr<arrow::RecordBatch>> batches;
  std::string ToString() const override {
    return "batches(" + std::to_string(batches.size()) + " batches)";
  }
};

/// Source "function_source": one instance that calls `next` until it returns null.
/// Used for Python iterables (the binding takes the GIL per batch).
struct FunctionSourceOptions : NodeOptions {
  std::function<arrow::Result<std::shared_ptr<arrow::RecordBatch>>()> next;
  std::string description = "function";
  std::string ToString() const override { return "function_source(" + description + ")"; }
};

/// Where a "collect_sink" puts its batches; read it after the job finished.
class CollectBuffer {
 public:
  void Append(std::shared_ptr<arrow::RecordBatch> batch);
  std::vector<std::shared_ptr<arrow::RecordBatch>> batches() const;
  /// All collected rows as one table; `schema` is used when nothing was collected.
  arrow::Result<std::shared_ptr<arrow::Table>> ToTable(
      const std::shared_ptr<arrow::Schema>& schema = nullptr) const;
  int64_t num_rows() const;

 private:
  mutable std::mutex mutex_;
  std::vector<std::shared_ptr<arrow::RecordBatch>> batches_;
};

struct CollectSinkOptions : NodeOptions {
  std::shared_ptr<CollectBuffer> buffer = std::make_shared<CollectBuffer>();
  std::string ToString() const override { return "collect"; }
};

/// Sink "blackhole": counts and drops (for benchmarks).
struct BlackholeSinkOptions : NodeOptions {
  std::shared_ptr<std::atomic<int64_t>> rows = std::make_shared<std::atomic<int64_t>>(0);
  std::string ToString() const override { return "blackhole"; }
};

void RegisterMemoryConnectors(OperatorRegistry* registry);

}  // namespace sabot
