// The checkpoint coordinator of one job: triggers checkpoints (periodically or
// on request), hands writers to the tasks, persists what they wrote on its own
// I/O thread, completes a checkpoint when every task acknowledged and every
// write finished (then `_metadata`, then the notification), counts failures,
// and serves restore readers. Savepoints go through the same path.
#pragma once

#include <arrow/memory_pool.h>
#include <arrow/result.h>
#include <arrow/status.h>

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "sabot/checkpoint/file_snapshot.h"
#include "sabot/checkpoint/metadata.h"
#include "sabot/checkpoint/stats.h"
#include "sabot/checkpoint/storage.h"
#include "sabot/exec/job.h"

namespace sabot::checkpoint {

/// Threading contract: thread-safe. Tasks call NewWriter/Submit/Acknowledge on
/// their threads; persisting, `_metadata`, retention and the notification of
/// completion happen on the coordinator's own thread. Callbacks into the job
/// are made without holding the coordinator's lock.
class CheckpointCoordinator {
 public:
  /// What the coordinator needs from its job.
  struct JobHooks {
    /// Inject barrier `id` at every source (stop: sources stop after it).
    std::function<void(int64_t id, bool stop)> inject_barriers;
    /// Checkpoint `id` completed: notify every task.
    std::function<void(int64_t id)> notify_complete;
    /// Fail the job (too many consecutive checkpoint failures).
    std::function<void(const arrow::Status&)> fail_job;
    /// Stop-with-savepoint succeeded: cancel the job.
    std::function<void()> cancel_job;
    /// A stop-with-savepoint failed: sources resume.
    std::function<void()> resume_sources;
  };

  CheckpointCoordinator(const CheckpointOptions& options, std::string job_name,
                        int max_parallelism, size_t num_tasks, arrow::MemoryPool* pool,
                        JobHooks hooks);
  ~CheckpointCoordinator();

  /// Resolves options.restore_from. `plan_uids` are the operator uids of the new
  /// plan: state of a uid not among them is refused unless
  /// options.allow_non_restored_state.
  arrow::Status PrepareRestore(const std::set<std::string>& plan_uids);
  /// The checkpoint being restored from, or null.
  std::shared_ptr<const CheckpointMetadata> restored() const { return restored_; }
  /// A reader for (uid, index, parallelism) of the restored checkpoint; null
  /// when not restoring.
  std::unique_ptr<FileSnapshotReader> NewReader(const std::string& uid, int index,
                                                int parallelism) const;

  /// Opens the checkpoint directory and starts the coordinator thread (periodic
  /// triggers, savepoint request polling, asynchronous writes). Idempotent.
  void Start();
  /// Aborts what is in flight, finishes queued work and joins the thread.
  void Shutdown();

  /// Starts checkpoint `id` (-1: the next id). Fails when one is in flight,
  /// the job is not running, or a task already finished.
  arrow::Result<int64_t> TriggerCheckpoint(int64_t id = -1);
  /// Takes a self-contained savepoint at `path` and blocks until it completed;
  /// returns its path. `stop`: sources stop after the savepoint barrier (the
  /// caller cancels the job afterwards). Waits for a checkpoint in flight.
  arrow::Result<std::string> TriggerSavepoint(const std::string& path, bool stop);

  // --- called by tasks ---
  std::unique_ptr<FileSnapshotWriter> NewWriter(int64_t id, const std::string& uid,
                                                int index, int parallelism) const;
  /// Hands a writer's recorded state to the I/O thread (the asynchronous part).
  void Submit(int64_t id, std::unique_ptr<FileSnapshotWriter> writer);
  void Acknowledge(int64_t id);
  /// A task finished: a checkpoint in flight is aborted, no new one can start.
  void TaskFinished(const std::string& task_name);

  CheckpointStats stats() const;
  /// Waits until `count` checkpoints completed, the job can no longer
  /// checkpoint, or `timeout_ms` passed; true when `count` were reached.
  bool AwaitCompleted(int64_t count, int64_t timeout_ms);
  int64_t completed() const;

 private:
  struct Pending;
  struct SavepointRequest {
    std::string path;
    bool stop = false;
    /// Called once: status, checkpoint id (-1 if never started), directory.
    std::function<void(const arrow::Status&, int64_t, const std::string&)> done;
  };
  struct WorkItem {
    enum Kind { kPersist, kFinalize, kCleanup } kind = kPersist;
    std::shared_ptr<Pending> pending;
    std::unique_ptr<FileSnapshotWriter> writer;  // kPersist
  };

  void Loop();
  /// Starts a checkpoint or savepoint; caller holds mutex_. Returns the pending
  /// one to inject, or an error.
  arrow::Result<std::shared_ptr<Pending>> BeginLocked(int64_t id, bool savepoint,
                                                      const std::string& path, bool stop);
  void StartSavepointRequest(SavepointRequest request);
  void Persist(const std::shared_ptr<Pending>& pending, FileSnapshotWriter* writer);
  void Finalize(const std::shared_ptr<Pending>& pending);
  /// Ends `pending` with an error (failure) or as aborted; lock not held.
  void EndFailed(const std::shared_ptr<Pending>& pending, const arrow::Status& status,
                 bool aborted);
  void MaybeFinalizeLocked(const std::shared_ptr<Pending>& pending);
  void PollRequestFile();
  void Log(const std::string& line, bool important);

  CheckpointOptions options_;
  std::string job_name_;
  int max_parallelism_;
  size_t num_tasks_;
  arrow::MemoryPool* pool_;
  JobHooks hooks_;
  std::shared_ptr<const CheckpointMetadata> restored_;
  std::unique_ptr<CheckpointStore> store_;

  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::thread thread_;
  bool started_ = false;
  bool stopping_ = false;
  size_t finished_tasks_ = 0;
  int64_t last_id_ = 0;
  std::shared_ptr<Pending> pending_;
  std::deque<WorkItem> work_;
  std::deque<SavepointRequest> savepoint_requests_;
  CheckpointStats stats_;
  int64_t next_periodic_ms_ = 0;
  int64_t next_poll_ms_ = 0;
};

}  // namespace sabot::checkpoint
