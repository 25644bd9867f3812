// The runtime operator interface. Every built-in and user operator implements it.
//
/// Threading contract: one operator instance is driven by exactly one task, and a
/// task runs on one worker thread at a time, so operator code is single-threaded
/// and needs no locks. The runtime (not the operator) merges watermarks from
/// several inputs, aligns checkpoint barriers and signals end of stream.
///
/// Lifecycle: Open -> (ProcessBatch | OnWatermark | OnTimer | SnapshotState |
/// NotifyCheckpointComplete)* -> Close. Close is called once at end of input and
/// may emit final results. When the job restores from a checkpoint, Open finds
/// the operator's state in ctx->restore.
#pragma once

#include <arrow/compute/exec.h>
#include <arrow/memory_pool.h>
#include <arrow/record_batch.h>
#include <arrow/status.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "sabot/exec/timer_service.h"
#include "sabot/state/snapshot.h"

namespace sabot {

/// Where an operator sends its output: the next operator of the chain, or the
/// task's output channels.
class Collector {
 public:
  virtual ~Collector() = default;
  virtual arrow::Status Emit(std::shared_ptr<arrow::RecordBatch> batch) = 0;
  virtual arrow::Status EmitWatermark(int64_t watermark) = 0;
  /// Rows for the side output `tag` (e.g. "late"). Side outputs go only to
  /// streams that asked for them; when nobody consumes the tag, the rows are
  /// counted in the operator's `side_rows_unconsumed` metric, never silently lost.
  virtual arrow::Status EmitSide(const std::string& tag,
                                 std::shared_ptr<arrow::RecordBatch> batch) {
    return arrow::Status::NotImplemented("this collector has no side output '", tag, "'");
  }
  /// This output is idle (no data, so its watermark must not hold back the
  /// merged watermark downstream) or active again.
  virtual arrow::Status EmitIdle(bool idle) { return arrow::Status::OK(); }
};

/// Wakes an operator that waits for asynchronous work it runs on threads of its
/// own (e.g. the lookup join's database queries). Notify() may be called from
/// any thread; the runtime then calls Operator::OnAsyncReady on the task's
/// thread (at the latest at the start of its next slice). A no-op once the task
/// ended.
class AsyncNotifier {
 public:
  virtual ~AsyncNotifier() = default;
  virtual void Notify() = 0;
};

/// A state table an operator declares, so the state layer can snapshot it.
struct StateDescriptor {
  std::string name;
  std::string kind;  // "value", "list", "map", ...
};

/// Where keyed state lives (see state/): the job's choice of backend.
struct StateConfig {
  std::string backend = "memory";  ///< "memory" or "rocksdb"
  /// Local working directory of disk-backed state (one subdirectory per
  /// operator instance); empty: a temporary directory.
  std::string local_dir;
  /// Memory budget of a RocksDB instance (block cache + write buffers).
  int64_t rocksdb_memory_bytes = 64 << 20;
};

/// Runtime facts and services available to an operator instance.
struct OperatorContext {
  std::string operator_name;  ///< e.g. "filter#3"
  int instance_index = 0;
  int parallelism = 1;
  int max_parallelism = 128;
  arrow::MemoryPool* pool = arrow::default_memory_pool();
  arrow::compute::ExecContext* exec_context = nullptr;
  int64_t current_watermark = 0;
  /// This instance's timers (event time and processing time).
  TimerService* timers = nullptr;
  /// The source reader of this task when the operator is chained to a source
  /// (null otherwise); lets a watermark assigner ask for the active splits.
  const class SourceReader* source = nullptr;
  /// Rows sent to side outputs nobody consumes (see Collector::EmitSide).
  std::atomic<int64_t>* side_rows_unconsumed = nullptr;
  /// The key groups this instance owns.
  KeyGroupRange key_groups;
  /// The state to restore from, valid during Open only; null on a fresh start.
  SnapshotReader* restore = nullptr;
  /// The job's state backend choice.
  const StateConfig* state = nullptr;
  /// Stable name of the job (sinks derive transactional ids from it).
  std::string job_name;
  /// Set by the runtime before Open (null where the driver of the operator
  /// offers no asynchronous wake-ups, e.g. a test harness): see AsyncNotifier.
  std::shared_ptr<AsyncNotifier> async_notifier;
};

class Operator {
 public:
  virtual ~Operator() = default;

  /// Called once before the first element; restores state when the state layer
  /// has a snapshot for this instance.
  virtual arrow::Status Open(OperatorContext* ctx) { return arrow::Status::OK(); }

  /// Processes one batch that arrived on input `input` (0 for single-input operators).
  virtual arrow::Status ProcessBatch(int input,
                                     const std::shared_ptr<arrow::RecordBatch>& batch,
                                     OperatorContext* ctx, Collector* out) = 0;

  /// Event time reached `watermark` (already merged over all inputs). The default
  /// forwards it; operators that hold back rows (windows) override this.
  virtual arrow::Status OnWatermark(int64_t watermark, OperatorContext* ctx,
                                    Collector* out) {
    return out->EmitWatermark(watermark);
  }

  /// A timer registered through ctx->timers is due.
  virtual arrow::Status OnTimer(const Timer& timer, OperatorContext* ctx,
                                Collector* out) {
    return arrow::Status::OK();
  }

  /// The (merged) input became idle or active again. The default forwards it.
  virtual arrow::Status OnIdle(bool idle, OperatorContext* ctx, Collector* out) {
    return out->EmitIdle(idle);
  }

  /// Barrier `writer->checkpoint_id()` is aligned on every input: hand the
  /// state to `writer` (the synchronous part: copy or share immutable batches;
  /// the writer persists them asynchronously). The runtime forwards the barrier
  /// afterwards.
  virtual arrow::Status SnapshotState(SnapshotWriter* writer, OperatorContext* ctx) {
    return arrow::Status::OK();
  }

  /// Checkpoint `checkpoint_id` is complete (durable, every task acknowledged):
  /// commit what was pre-committed for it (sink transactions, file renames).
  /// Called on the task's thread; a later id implies the earlier ones.
  virtual arrow::Status NotifyCheckpointComplete(int64_t checkpoint_id,
                                                 OperatorContext* ctx) {
    return arrow::Status::OK();
  }

  /// End of input on all inputs: flush what is pending.
  virtual arrow::Status Close(OperatorContext* ctx, Collector* out) {
    return arrow::Status::OK();
  }

  // --- asynchronous operators (see AsyncNotifier) ----------------------------
  // An operator that hands work to threads of its own never blocks the task:
  // it returns from ProcessBatch at once and emits the results later, from
  // OnAsyncReady. The runtime takes no input while CanAcceptInput() is false
  // and closes the operator (end of input) only once HasPendingWork() is false.

  /// Called on the task's thread after ctx->async_notifier->Notify().
  virtual arrow::Status OnAsyncReady(OperatorContext* ctx, Collector* out) {
    return arrow::Status::OK();
  }
  /// False while the operator's bound of in-flight work is reached.
  virtual bool CanAcceptInput() const { return true; }
  /// True while asynchronous work is outstanding (results not emitted yet).
  virtual bool HasPendingWork() const { return false; }

  /// The state tables this operator keeps (empty for stateless operators).
  virtual std::vector<StateDescriptor> state_tables() const { return {}; }
};

}  // namespace sabot
