// Runtime counters, written by the task that owns them and read (relaxed) by
// anyone while the job runs.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

namespace sabot {

struct OperatorMetrics {
  std::atomic<int64_t> rows_in{0};
  std::atomic<int64_t> rows_out{0};
  std::atomic<int64_t> batches_in{0};
  std::atomic<int64_t> batches_out{0};
  /// Time inside this operator's hooks, including operators chained after it.
  std::atomic<int64_t> busy_ns_inclusive{0};
  /// Rows sent to a side output that no stream consumes.
  std::atomic<int64_t> side_rows_unconsumed{0};
};

/// Why a task is not running.
enum class WaitReason : uint8_t { kNone, kInput, kOutput, kAlignment };

struct TaskMetrics {
  std::atomic<int64_t> busy_ns{0};           ///< running operator code
  std::atomic<int64_t> idle_ns{0};           ///< waiting for input
  std::atomic<int64_t> backpressured_ns{0};  ///< waiting for a full output channel
  std::atomic<int64_t> slices{0};
};

/// A point-in-time copy of one operator's counters, summed over its instances.
struct OperatorMetricsSnapshot {
  int node_id = -1;
  std::string name;
  int parallelism = 0;
  int64_t rows_in = 0, rows_out = 0, batches_in = 0, batches_out = 0;
  int64_t busy_ns = 0;  ///< exclusive of chained downstream operators
  int64_t side_rows_unconsumed = 0;
};

struct TaskMetricsSnapshot {
  std::string name;  ///< e.g. "nexmark_source#0 -> filter#1 [0/2]"
  int64_t busy_ns = 0, idle_ns = 0, backpressured_ns = 0;
  std::string state;  ///< running / waiting-input / backpressured / finished ...
};

struct MemoryStats {
  int64_t bytes_allocated = 0;
  int64_t peak_bytes = 0;
  int64_t total_bytes_allocated = 0;
  int64_t num_allocations = 0;
  int64_t cap_bytes = 0;  ///< 0: no cap
};

struct JobMetrics {
  std::vector<OperatorMetricsSnapshot> operators;
  std::vector<TaskMetricsSnapshot> tasks;
  MemoryStats memory;
  double elapsed_seconds = 0;
  int64_t completed_checkpoints = 0;
  int64_t failed_checkpoints = 0;
  std::string last_checkpoint_failure;  ///< "" when none failed

  /// A readable multi-line report (what a bounded job prints at the end).
  std::string ToString() const;
};

}  // namespace sabot
