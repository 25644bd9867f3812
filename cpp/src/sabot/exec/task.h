// A task: one parallel instance of a chain of forward-connected operators, fed by
// a source reader or by input channels, writing to output channels.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "sabot/exec/channel.h"
#include "sabot/exec/metrics.h"
#include "sabot/exec/operator.h"
#include "sabot/exec/source.h"
#include "sabot/plan/plan.h"

namespace sabot {

class Job;
class Scheduler;
namespace checkpoint {
class FileSnapshotWriter;
class FileSnapshotReader;
}  // namespace checkpoint

/// Keyed-table name prefix under which an unaligned checkpoint keeps the
/// batches in flight on logical input <n> of a task's head operator.
inline constexpr const char* kChannelStateTablePrefix = "__sabot_channel_state.";

/// The outgoing side of one plan edge, seen from one producer task.
struct OutputEdge {
  Partitioning partitioning = Partitioning::kForward;
  std::string side_output;  // empty: the main output
  std::vector<std::string> keys;
  std::vector<int> key_indices;    // resolved on the first batch
  std::vector<Channel*> channels;  // indexed by consumer instance
  size_t next_channel = 0;         // round robin cursor
};

/// Routes a task's output to its channels: partitions batches, broadcasts control.
class OutputRouter : public Collector {
 public:
  std::vector<OutputEdge> edges;
  std::string producer_name;
  int max_parallelism = 128;
  arrow::MemoryPool* pool = nullptr;
  OperatorMetrics* producer_metrics = nullptr;  // of the chain's tail

  arrow::Status Emit(std::shared_ptr<arrow::RecordBatch> batch) override;
  arrow::Status EmitWatermark(int64_t watermark) override;
  arrow::Status EmitSide(const std::string& tag,
                         std::shared_ptr<arrow::RecordBatch> batch) override;
  arrow::Status EmitIdle(bool idle) override;
  void Broadcast(const StreamElement& element);
  bool AnyFull() const;

 private:
  arrow::Status Route(const std::string& tag, std::shared_ptr<arrow::RecordBatch> batch);
};

struct OperatorSlot;

/// Collects one chained operator's output: counts it and hands it to the next
/// operator of the chain, or to the router at the chain's tail.
class SlotOutput : public Collector {
 public:
  OperatorMetrics* metrics = nullptr;
  OperatorSlot* next = nullptr;
  Collector* router = nullptr;

  arrow::Status Emit(std::shared_ptr<arrow::RecordBatch> batch) override;
  arrow::Status EmitWatermark(int64_t watermark) override;
  arrow::Status EmitSide(const std::string& tag,
                         std::shared_ptr<arrow::RecordBatch> batch) override;
  arrow::Status EmitIdle(bool idle) override;
};

class SlotNotifier;

/// One operator instance inside a task's chain.
struct OperatorSlot {
  int node_id = -1;
  std::string uid;  ///< stable identity of its state (PlanNode::state_uid)
  std::unique_ptr<Operator> op;
  OperatorContext ctx;
  OperatorMetrics* metrics = nullptr;
  SlotOutput out;
  TimerService timers;
  /// The operator's AsyncNotifier (also in ctx.async_notifier).
  std::shared_ptr<SlotNotifier> notifier;

  arrow::Status Process(int input, const std::shared_ptr<arrow::RecordBatch>& batch);
  /// Fires due event-time timers, then the operator's OnWatermark.
  arrow::Status Watermark(int64_t watermark);
  arrow::Status Idle(bool idle);
  arrow::Status FireProcessingTimers(int64_t now);
};

/// State of one input channel of a task.
struct InputChannelState {
  Channel* channel = nullptr;
  int logical_input = 0;  ///< index of the plan edge it belongs to
  Partitioning partitioning = Partitioning::kForward;  ///< of that edge
  std::vector<std::string> keys;                       ///< of a hash edge
  int64_t watermark = kMinWatermark;
  bool end_of_stream = false;
  bool blocked_by_barrier = false;
  /// Unaligned checkpoints: this channel's barrier arrived (its later batches
  /// are not channel state).
  bool barrier_seen = false;
  bool idle = false;
};

/// Threading contract: RunSlice is called by one worker at a time (the task is
/// queued at most once); Wake may be called from any thread.
class Task {
 public:
  enum class SliceResult {
    kYield,
    kNotReady,
    kBlockedInput,
    kBlockedOutput,
    kBlockedAlignment,
    kFinished
  };

  Task(Job* job, Scheduler* scheduler, std::string name);
  ~Task();

  /// Makes the task runnable if it was waiting; remembers the wake-up if running.
  void Wake();
  /// Runs until blocked, finished, or the slice budget is spent.
  SliceResult RunSlice();
  /// Called by the worker after RunSlice: re-queues or parks the task.
  void AfterSlice(SliceResult result);

  /// Asks a source task to emit checkpoint barrier `checkpoint_id` (any thread).
  /// `stop`: the source stops emitting after the barrier (stop-with-savepoint).
  void InjectBarrier(int64_t checkpoint_id, bool stop = false);
  /// Checkpoint `checkpoint_id` completed (any thread): the task calls
  /// NotifyCheckpointComplete on its source and operators, in chain order, on
  /// its own thread at the start of its next slice.
  void NotifyCheckpointComplete(int64_t checkpoint_id);
  /// A source stopped by a stop-with-savepoint barrier emits again (any thread).
  void ResumeSource();

  const std::string& name() const { return name_; }
  TaskMetricsSnapshot MetricsSnapshot() const;

  // Wiring, set up by the Job before start.
  std::unique_ptr<SourceReader> source;
  std::string source_uid;
  OperatorContext source_ctx;
  OperatorMetrics* source_metrics = nullptr;
  SlotOutput source_out;
  std::vector<InputChannelState> inputs;
  std::vector<std::unique_ptr<OperatorSlot>> slots;
  OutputRouter router;
  /// Unaligned checkpoints (CheckpointOptions::unaligned) for multi-input tasks.
  bool unaligned_checkpoints = false;

 private:
  enum class SchedState { kWaiting, kQueued, kRunning, kDone };

  arrow::Status Open();
  arrow::Status RunSource(SliceResult* result);
  arrow::Status RunInputs(SliceResult* result);
  arrow::Status HandleElement(InputChannelState* input, StreamElement element);
  arrow::Status DeliverWatermark(int64_t watermark);
  arrow::Status MergeWatermarks();
  arrow::Status UpdateIdleness();
  arrow::Status CheckAlignment();
  arrow::Status OnBarrier(InputChannelState* input, int64_t checkpoint_id);
  arrow::Status OnBarrierUnaligned(InputChannelState* input, int64_t checkpoint_id);
  arrow::Status MaybeFinishUnaligned();
  arrow::Status RecordChannelState(InputChannelState* input,
                                   const std::shared_ptr<arrow::RecordBatch>& batch);
  arrow::Status RestoreChannelState(OperatorSlot* slot,
                                    checkpoint::FileSnapshotReader* reader);
  /// Snapshots the source and every operator (the synchronous part), then
  /// forwards the barrier downstream.
  arrow::Status SnapshotAndForward(int64_t checkpoint_id);
  /// SnapshotAndForward, then acknowledges the checkpoint.
  arrow::Status Snapshot(int64_t checkpoint_id);
  arrow::Status DeliverCheckpointComplete();

  /// End of input: the max watermark, then Close of every operator in chain
  /// order, then end-of-stream downstream. Sets *done = false (and is called
  /// again after a wake-up) while an operator still has asynchronous work.
  arrow::Status Finish(bool* done);
  /// Asynchronous operators: runs OnAsyncReady of the notified ones.
  arrow::Status RunAsyncReady();
  bool AcceptsInput() const;
  bool HasPendingWork() const;
  Collector* head();

  Job* job_;
  Scheduler* scheduler_;
  std::string name_;
  bool opened_ = false;
  bool finished_ = false;
  // End of input reached; finish_step_: 0 = max watermark not delivered yet,
  // 1 + i = operator i is next to close.
  bool finishing_ = false;
  size_t finish_step_ = 0;
  int64_t current_watermark_ = kMinWatermark;
  bool inputs_idle_ = false;
  bool has_processing_timers_ = false;
  int64_t aligning_checkpoint_ = -1;
  size_t next_input_ = 0;
  std::atomic<int64_t> injected_barrier_{-1};
  std::atomic<bool> injected_stop_{false};
  std::atomic<bool> source_stopped_{false};
  std::atomic<int64_t> notify_id_{-1};
  int64_t notified_id_ = -1;
  int64_t last_snapshot_id_ = -1;
  // Unaligned checkpoint in progress: its id and the channel state recorded.
  int64_t unaligned_checkpoint_ = -1;
  std::unique_ptr<checkpoint::FileSnapshotWriter> channel_state_;

  std::mutex sched_mutex_;
  SchedState sched_state_ = SchedState::kQueued;
  bool wake_pending_ = false;
  WaitReason wait_reason_ = WaitReason::kNone;
  int64_t wait_since_ns_ = 0;
  TaskMetrics metrics_;
};

int64_t NowNanos();

}  // namespace sabot
