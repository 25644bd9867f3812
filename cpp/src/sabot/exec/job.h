// A running job: the physical plan built from a logical plan, its tasks, channels,
// worker pool, memory pool, metrics and checkpoint bookkeeping.
#pragma once

#include <arrow/compute/exec.h>
#include <arrow/result.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <queue>
#include <string>
#include <thread>
#include <vector>

#include "sabot/checkpoint/stats.h"
#include "sabot/exec/channel.h"
#include "sabot/exec/memory.h"
#include "sabot/exec/metrics.h"
#include "sabot/exec/scheduler.h"
#include "sabot/exec/task.h"
#include "sabot/plan/plan.h"

namespace sabot {

namespace checkpoint {
class CheckpointCoordinator;
}

/// Checkpointing of a job (see docs/checkpoints.md for the directory layout).
struct CheckpointOptions {
  /// Where completed checkpoints are kept; empty: checkpoints are taken (and
  /// acknowledged) but not persisted.
  std::string directory;
  /// Periodic checkpoints every `interval_ms`; 0: only when triggered.
  int64_t interval_ms = 0;
  /// Completed checkpoints kept; older ones are deleted.
  int retain = 3;
  /// Consecutive failed checkpoints tolerated before the job fails.
  int tolerable_failures = 3;
  /// Barriers overtake buffered data (unaligned checkpoints).
  bool unaligned = false;
  /// Restore on start: "" (fresh start), "latest" (latest completed checkpoint
  /// in `directory`, fresh when none), or the path of a checkpoint/savepoint.
  std::string restore_from;
  /// Restoring state of an operator uid the job no longer has is an error
  /// unless this is set (then that state is skipped).
  bool allow_non_restored_state = false;
};

struct JobOptions {
  /// Default parallelism of operators that set none; 0 = number of cores.
  int parallelism = 0;
  /// Worker threads; 0 = number of cores.
  int num_threads = 0;
  /// Bounds of each channel between tasks.
  int64_t channel_max_rows = 131072;
  int64_t channel_max_bytes = 32 << 20;
  /// Cap of the job's memory pool; 0 = no cap.
  int64_t memory_cap_bytes = 0;
  /// Number of key groups; the upper bound of any operator's parallelism.
  int max_parallelism = 128;
  /// Stable job name: names checkpoints, transactional ids, consumer groups.
  std::string job_name = "sabot-job";
  CheckpointOptions checkpoint;
  StateConfig state;
};

/// Physical planning: a node joins its upstream's chain when the edge is forward,
/// both have the same parallelism, the upstream has no other consumer and the
/// node has no other input. Every chain becomes `parallelism` tasks.
///
/// Threading contract: Start/Wait/Cancel/Metrics/TriggerCheckpoint may be called
/// from any thread. Wait returns the first error any task hit (with the name of
/// the operator) after every task stopped.
class Job {
 public:
  static arrow::Result<std::shared_ptr<Job>> Make(const LogicalPlan& plan,
                                                  JobOptions options);
  ~Job();

  arrow::Status Start();
  arrow::Status Wait();
  void Cancel();
  bool done() const;
  JobMetrics Metrics() const;
  std::string DescribePhysicalPlan() const;

  /// Injects barrier `checkpoint_id` at every source. The checkpoint completes
  /// when every task acknowledged it and its state is durable (see
  /// docs/checkpoints.md). Returns at once; fails when one is in flight.
  arrow::Status TriggerCheckpoint(int64_t checkpoint_id);
  /// The same with the next checkpoint id, which is returned.
  arrow::Result<int64_t> TriggerCheckpoint();
  int64_t completed_checkpoints() const;
  /// Waits until `count` checkpoints completed (true), or the job can no longer
  /// checkpoint, or `timeout_ms` passed (false).
  bool AwaitCheckpoints(int64_t count, int64_t timeout_ms);
  /// Takes a self-contained savepoint at `path` (which must not exist or be
  /// empty) and blocks until it is complete; returns its path.
  arrow::Result<std::string> TriggerSavepoint(const std::string& path);
  /// Takes a savepoint with the sources stopped right after its barrier, then
  /// cancels the job: a restore from it continues exactly where this run ended.
  /// When the savepoint fails the sources resume and the job keeps running.
  arrow::Result<std::string> StopWithSavepoint(const std::string& path);
  /// Counters, last failure, restore origin.
  checkpoint::CheckpointStats CheckpointStatistics() const;

  // Called by tasks.
  bool cancelled() const { return cancelled_.load(std::memory_order_relaxed); }
  void Fail(const arrow::Status& status);
  void TaskFinished(Task* task);
  void AcknowledgeCheckpoint(int64_t checkpoint_id);
  checkpoint::CheckpointCoordinator* checkpoints() { return coordinator_.get(); }
  const JobOptions& options() const { return options_; }

  JobMemoryPool* pool() { return pool_; }
  /// Wakes `task` at wall-clock time `wall_time_ms` (processing-time timers).
  void ScheduleWakeup(Task* task, int64_t wall_time_ms);
  int parallelism_of(int node_id) const { return node_parallelism_.at(node_id); }

 private:
  Job(const LogicalPlan& plan, JobOptions options);
  arrow::Status Build();
  void TimerLoop();
  // Checkpoint coordinator hooks.
  void InjectBarriers(int64_t checkpoint_id, bool stop);
  void NotifyCheckpointComplete(int64_t checkpoint_id);
  void ResumeSources();

  LogicalPlan plan_;
  JobOptions options_;
  // Never freed: buffers allocated by the job (collected results handed to Python,
  // batches kept by the caller) may outlive the job and free through the pool.
  JobMemoryPool* pool_;
  std::unique_ptr<arrow::compute::ExecContext> exec_context_;
  std::unique_ptr<Scheduler> scheduler_;
  std::vector<int> node_parallelism_;
  std::vector<std::vector<int>> chains_;  // node ids per chain
  std::vector<std::unique_ptr<Task>> tasks_;
  std::vector<std::unique_ptr<Channel>> channels_;
  // metrics_[node][instance]
  std::vector<std::vector<std::unique_ptr<OperatorMetrics>>> op_metrics_;
  std::vector<int> next_in_chain_;  // node id of the chained successor, or -1

  mutable std::mutex mutex_;
  std::condition_variable done_cv_;
  arrow::Status status_;
  size_t finished_tasks_ = 0;
  bool started_ = false;
  std::atomic<bool> cancelled_{false};
  int64_t start_ns_ = 0;
  int64_t end_ns_ = 0;
  std::unique_ptr<checkpoint::CheckpointCoordinator> coordinator_;

  // Processing-time wake-ups: a thread started on the first timer.
  using Wakeup = std::pair<int64_t, Task*>;
  std::mutex timer_mutex_;
  std::condition_variable timer_cv_;
  std::priority_queue<Wakeup, std::vector<Wakeup>, std::greater<Wakeup>> wakeups_;
  std::thread timer_thread_;
  bool timer_stop_ = false;
};

}  // namespace sabot
