#include "sabot/checkpoint/coordinator.h"

#include <simdjson.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <future>

#include "sabot/exec/timer_service.h"

namespace fs = std::filesystem;

namespace sabot::checkpoint {

namespace {

constexpr int64_t kRequestPollMs = 100;
constexpr size_t kMaxLogLines = 200;

int64_t SteadyNanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void MergeTables(std::map<std::string, std::vector<StoredFile>>* into,
                 std::map<std::string, std::vector<StoredFile>>&& from) {
  for (auto& [table, files] : from) {
    auto& dest = (*into)[table];
    dest.insert(dest.end(), files.begin(), files.end());
  }
}

void MergeInstance(InstanceMetadata* into, InstanceMetadata&& from) {
  MergeTables(&into->keyed, std::move(from.keyed));
  MergeTables(&into->operator_state, std::move(from.operator_state));
  for (auto& [table, set] : from.files) {
    auto& dest = into->files[table];
    dest.private_files.insert(dest.private_files.end(), set.private_files.begin(),
                              set.private_files.end());
    dest.shared_files.insert(dest.shared_files.end(), set.shared_files.begin(),
                             set.shared_files.end());
  }
  for (auto& [table, json] : from.positions_json) into->positions_json[table] = json;
}

bool IsEmptyOrMissingDir(const std::string& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) return true;
  return fs::is_directory(path, ec) && fs::is_empty(path, ec);
}

}  // namespace

struct CheckpointCoordinator::Pending {
  int64_t id = 0;
  bool savepoint = false;
  bool stop = false;
  std::string dir;  // empty: not persisted (no checkpoint directory)
  size_t acks_left = 0;
  int64_t writes_left = 0;
  bool finalizing = false;
  bool ended = false;
  int64_t start_ns = 0;
  std::map<std::string, int> parallelism;  // uid -> parallelism
  std::map<std::string, std::map<int, InstanceMetadata>> results;
  std::set<std::string> nonempty;  // uids that wrote something
  std::function<void(const arrow::Status&, int64_t, const std::string&)> done;
  // Why it ended when it failed or was aborted (the I/O thread cleans up).
  arrow::Status end_status;
};

CheckpointCoordinator::CheckpointCoordinator(const CheckpointOptions& options,
                                             std::string job_name, int max_parallelism,
                                             size_t num_tasks, arrow::MemoryPool* pool,
                                             JobHooks hooks)
    : options_(options),
      job_name_(std::move(job_name)),
      max_parallelism_(max_parallelism),
      num_tasks_(num_tasks),
      pool_(pool),
      hooks_(std::move(hooks)) {}

CheckpointCoordinator::~CheckpointCoordinator() { Shutdown(); }

void CheckpointCoordinator::Log(const std::string& line, bool important) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stats_.log.push_back(line);
    if (stats_.log.size() > kMaxLogLines) stats_.log.erase(stats_.log.begin());
  }
  if (important) {
    std::fprintf(stderr, "sabot checkpoint (%s): %s\n", job_name_.c_str(), line.c_str());
  }
}

// --- restore -----------------------------------------------------------------------

arrow::Status CheckpointCoordinator::PrepareRestore(
    const std::set<std::string>& plan_uids) {
  if (options_.restore_from.empty()) return arrow::Status::OK();
  std::vector<std::string> log;
  auto resolved = ResolveRestore(options_.restore_from, options_.directory, &log);
  for (const auto& line : log) Log(line, true);
  ARROW_RETURN_NOT_OK(resolved.status());
  if (!resolved->has_value()) return arrow::Status::OK();
  CheckpointMetadata& m = **resolved;
  if (m.max_parallelism != max_parallelism_) {
    return arrow::Status::Invalid(
        "cannot restore from '", m.directory, "': it was written with max_parallelism ",
        m.max_parallelism, " but the job has max_parallelism ", max_parallelism_,
        " (the number of key groups cannot change)");
  }
  std::vector<std::string> missing;
  for (const auto& [uid, op] : m.operators) {
    if (!plan_uids.count(uid)) missing.push_back(uid);
  }
  if (!missing.empty()) {
    std::string names;
    for (const auto& uid : missing) names += (names.empty() ? "'" : ", '") + uid + "'";
    if (!options_.allow_non_restored_state) {
      return arrow::Status::Invalid(
          "cannot restore from '", m.directory, "': it holds state of operator(s) ",
          names,
          " that the job does not have (operator uids must stay stable across runs; "
          "give operators explicit uids); set allow_non_restored_state to skip that "
          "state");
    }
    Log("not restoring the state of operator(s) " + names +
            " (absent from the job; allow_non_restored_state is set)",
        true);
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stats_.restored_id = m.checkpoint_id;
    stats_.restored_from = m.directory;
    last_id_ = std::max(last_id_, m.checkpoint_id);
  }
  restored_ = std::make_shared<const CheckpointMetadata>(std::move(m));
  return arrow::Status::OK();
}

std::unique_ptr<FileSnapshotReader> CheckpointCoordinator::NewReader(
    const std::string& uid, int index, int parallelism) const {
  if (!restored_) return nullptr;
  return std::make_unique<FileSnapshotReader>(restored_, uid, index, parallelism, pool_);
}

// --- lifecycle ---------------------------------------------------------------------

void CheckpointCoordinator::Start() {
  std::vector<std::string> log;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (started_) return;
    started_ = true;
    if (!options_.directory.empty()) {
      store_ = std::make_unique<CheckpointStore>(options_.directory, options_.retain);
      (void)store_->Open(&log);
      last_id_ = std::max(last_id_, store_->max_checkpoint_id());
    }
    const int64_t now = WallClockMillis();
    next_periodic_ms_ = now + options_.interval_ms;
    next_poll_ms_ = now;
    thread_ = std::thread([this] { Loop(); });
  }
  for (const auto& line : log) Log(line, false);
}

void CheckpointCoordinator::Shutdown() {
  // Abort what is in flight first (its cleanup is queued), then stop: the
  // thread finishes the queued work before it exits.
  for (;;) {
    std::shared_ptr<Pending> pending;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!thread_.joinable() || stopping_) return;
      pending = pending_;
      // A checkpoint every task acknowledged only waits for its I/O: the
      // thread finishes it before it exits.
      if (!pending || pending->acks_left == 0) {
        stopping_ = true;
        break;
      }
    }
    EndFailed(pending, arrow::Status::Cancelled("the job stopped"), true);
  }
  cv_.notify_all();
  thread_.join();
  std::deque<SavepointRequest> requests;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    requests.swap(savepoint_requests_);
  }
  for (auto& r : requests) {
    r.done(arrow::Status::Invalid("cannot take a savepoint: the job is not running"), -1,
           r.path);
  }
}

// --- triggering ----------------------------------------------------------------------

arrow::Result<std::shared_ptr<CheckpointCoordinator::Pending>>
CheckpointCoordinator::BeginLocked(int64_t id, bool savepoint, const std::string& path,
                                   bool stop) {
  const char* what = savepoint ? "savepoint" : "checkpoint";
  if (!started_ || stopping_) {
    return arrow::Status::Invalid("cannot take a ", what, ": the job is not running");
  }
  if (finished_tasks_ > 0) {
    return arrow::Status::Invalid("cannot take a ", what,
                                  ": some tasks have already finished");
  }
  if (pending_) {
    return arrow::Status::Invalid("checkpoint ", pending_->id, " is still in progress");
  }
  if (id < 0) {
    id = last_id_ + 1;
  } else if (id <= last_id_) {
    return arrow::Status::Invalid("checkpoint id ", id, " is not above the last id ",
                                  last_id_);
  }
  auto p = std::make_shared<Pending>();
  p->id = id;
  p->savepoint = savepoint;
  p->stop = stop;
  if (savepoint) {
    p->dir = fs::absolute(path).lexically_normal().string();
  } else if (store_) {
    p->dir = store_->CheckpointPath(id);
  }
  p->acks_left = num_tasks_;
  p->start_ns = SteadyNanos();
  pending_ = p;
  last_id_ = id;
  stats_.in_progress_id = id;
  return p;
}

arrow::Result<int64_t> CheckpointCoordinator::TriggerCheckpoint(int64_t id) {
  std::shared_ptr<Pending> p;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    ARROW_ASSIGN_OR_RAISE(p, BeginLocked(id, false, "", false));
  }
  hooks_.inject_barriers(p->id, false);
  return p->id;
}

void CheckpointCoordinator::StartSavepointRequest(SavepointRequest request) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (started_ && !stopping_ && finished_tasks_ == 0) {
      savepoint_requests_.push_back(std::move(request));
      cv_.notify_all();
      return;
    }
  }
  request.done(arrow::Status::Invalid("cannot take a savepoint: the job is not running"),
               -1, request.path);
}

arrow::Result<std::string> CheckpointCoordinator::TriggerSavepoint(
    const std::string& path, bool stop) {
  if (path.empty()) return arrow::Status::Invalid("a savepoint needs a target path");
  if (!IsEmptyOrMissingDir(path)) {
    return arrow::Status::Invalid("savepoint path '", path,
                                  "' already exists and is not an empty directory");
  }
  auto promise = std::make_shared<std::promise<arrow::Result<std::string>>>();
  auto future = promise->get_future();
  SavepointRequest request;
  request.path = path;
  request.stop = stop;
  request.done = [promise](const arrow::Status& st, int64_t, const std::string& dir) {
    if (st.ok()) {
      promise->set_value(dir);
    } else {
      promise->set_value(st);
    }
  };
  StartSavepointRequest(std::move(request));
  return future.get();
}

// --- task callbacks ------------------------------------------------------------------

std::unique_ptr<FileSnapshotWriter> CheckpointCoordinator::NewWriter(
    int64_t id, const std::string& uid, int index, int parallelism) const {
  return std::make_unique<FileSnapshotWriter>(id, uid, index, parallelism,
                                              max_parallelism_);
}

void CheckpointCoordinator::Submit(int64_t id,
                                   std::unique_ptr<FileSnapshotWriter> writer) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto p = pending_;
  if (!p || p->id != id || p->ended) return;  // failed or aborted: dropped
  p->parallelism[writer->uid()] = writer->parallelism();
  if (p->dir.empty()) {
    // No checkpoint directory: state is taken (and checked) but not persisted.
    if (!writer->empty()) p->nonempty.insert(writer->uid());
    return;
  }
  ++p->writes_left;
  work_.push_back(WorkItem{WorkItem::kPersist, p, std::move(writer)});
  cv_.notify_all();
}

void CheckpointCoordinator::Acknowledge(int64_t id) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto p = pending_;
  if (!p || p->id != id || p->ended) return;
  if (p->acks_left > 0) --p->acks_left;
  MaybeFinalizeLocked(p);
}

void CheckpointCoordinator::MaybeFinalizeLocked(const std::shared_ptr<Pending>& p) {
  if (p->acks_left == 0 && p->writes_left == 0 && !p->finalizing && !p->ended) {
    p->finalizing = true;
    work_.push_back(WorkItem{WorkItem::kFinalize, p, nullptr});
    cv_.notify_all();
  }
}

void CheckpointCoordinator::TaskFinished(const std::string& task_name) {
  std::shared_ptr<Pending> p;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    ++finished_tasks_;
    // A checkpoint every task acknowledged is complete but for its I/O; one
    // still waiting for acknowledgements cannot complete any more.
    if (pending_ && pending_->acks_left > 0) p = pending_;
    cv_.notify_all();
  }
  if (p) {
    EndFailed(p,
              arrow::Status::Cancelled("task '", task_name,
                                       "' finished before the checkpoint completed"),
              true);
  }
}

// --- the I/O thread --------------------------------------------------------------------

void CheckpointCoordinator::Loop() {
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    if (!work_.empty()) {
      WorkItem item = std::move(work_.front());
      work_.pop_front();
      lock.unlock();
      if (item.kind == WorkItem::kPersist) {
        Persist(item.pending, item.writer.get());
      } else if (item.kind == WorkItem::kCleanup) {
        // An ended checkpoint: remove its partial directory, tell the waiter.
        auto& p = *item.pending;
        if (!p.dir.empty()) (void)RemoveAll(p.dir);
        if (p.done) p.done(p.end_status, p.id, p.dir);
        if (p.stop && hooks_.resume_sources) hooks_.resume_sources();
      } else {
        Finalize(item.pending);
      }
      item.writer.reset();
      lock.lock();
      continue;
    }
    if (stopping_) break;
    if (!savepoint_requests_.empty() && (finished_tasks_ > 0)) {
      std::deque<SavepointRequest> requests;
      requests.swap(savepoint_requests_);
      lock.unlock();
      for (auto& r : requests) {
        r.done(arrow::Status::Invalid("cannot take a savepoint: the job is finishing"),
               -1, r.path);
      }
      lock.lock();
      continue;
    }
    if (!pending_ && !savepoint_requests_.empty()) {
      SavepointRequest request = std::move(savepoint_requests_.front());
      savepoint_requests_.pop_front();
      auto begun = BeginLocked(-1, true, request.path, request.stop);
      lock.unlock();
      if (!begun.ok()) {
        request.done(begun.status(), -1, request.path);
      } else {
        (*begun)->done = std::move(request.done);
        Log("savepoint " + std::to_string((*begun)->id) + " to '" + (*begun)->dir +
                "' started" + (request.stop ? " (stop)" : ""),
            true);
        hooks_.inject_barriers((*begun)->id, request.stop);
      }
      lock.lock();
      continue;
    }
    const int64_t now = WallClockMillis();
    if (options_.interval_ms > 0 && now >= next_periodic_ms_) {
      next_periodic_ms_ = now + options_.interval_ms;
      if (pending_) {
        ++stats_.skipped;
      } else if (finished_tasks_ == 0) {
        auto begun = BeginLocked(-1, false, "", false);
        if (begun.ok()) {
          lock.unlock();
          hooks_.inject_barriers((*begun)->id, false);
          lock.lock();
        }
      }
      continue;
    }
    if (!options_.directory.empty() && now >= next_poll_ms_) {
      next_poll_ms_ = now + kRequestPollMs;
      lock.unlock();
      PollRequestFile();
      lock.lock();
      continue;
    }
    int64_t deadline = -1;
    if (options_.interval_ms > 0) deadline = next_periodic_ms_;
    if (!options_.directory.empty()) {
      deadline = deadline < 0 ? next_poll_ms_ : std::min(deadline, next_poll_ms_);
    }
    if (deadline < 0) {
      cv_.wait(lock);
    } else {
      cv_.wait_for(lock, std::chrono::milliseconds(std::max<int64_t>(deadline - now, 1)));
    }
  }
}

void CheckpointCoordinator::Persist(const std::shared_ptr<Pending>& p,
                                    FileSnapshotWriter* writer) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (p->ended) {
      --p->writes_left;
      return;
    }
  }
  // Savepoints copy shared files into themselves (self-contained); the store
  // still serves its cache of checksums.
  auto result = writer->Persist(p->dir, store_.get(), p->savepoint, pool_);
  std::unique_lock<std::mutex> lock(mutex_);
  --p->writes_left;
  if (p->ended) return;
  if (!result.ok()) {
    lock.unlock();
    EndFailed(p,
              result.status().WithMessage(
                  p->savepoint ? "savepoint " : "checkpoint ", p->id,
                  " failed writing the state of operator '", writer->uid(),
                  "' (instance ", writer->index() + 1, " of ", writer->parallelism(),
                  "): ", result.status().message()),
              false);
    return;
  }
  auto& slot = p->results[writer->uid()];
  auto it = slot.find(writer->index());
  if (it == slot.end()) {
    slot.emplace(writer->index(), std::move(*result));
  } else {
    MergeInstance(&it->second, std::move(*result));
  }
  if (!writer->empty()) p->nonempty.insert(writer->uid());
  MaybeFinalizeLocked(p);
}

void CheckpointCoordinator::Finalize(const std::shared_ptr<Pending>& p) {
  CheckpointMetadata m;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (p->ended) return;
    m.checkpoint_id = p->id;
    m.kind = p->savepoint ? "savepoint" : "checkpoint";
    m.job_name = job_name_;
    m.timestamp_ms = WallClockMillis();
    m.max_parallelism = max_parallelism_;
    for (const auto& uid : p->nonempty) {
      OperatorMetadata op;
      op.uid = uid;
      op.parallelism = p->parallelism[uid];
      auto& results = p->results[uid];
      for (int i = 0; i < op.parallelism; ++i) {
        auto it = results.find(i);
        if (it != results.end()) {
          op.instances.push_back(std::move(it->second));
        } else {
          InstanceMetadata empty;
          empty.index = i;
          empty.key_groups =
              KeyGroupRange::ForInstance(i, op.parallelism, max_parallelism_);
          op.instances.push_back(std::move(empty));
        }
      }
      m.operators.emplace(uid, std::move(op));
    }
    m.directory = p->dir;
  }
  if (!p->dir.empty()) {
    // The commit point: every state file is durable; _metadata goes last.
    arrow::Status st = CreateDirectories(p->dir);
    if (st.ok()) {
      st = WriteFileAtomically(JoinPath(p->dir, kMetadataFileName), MetadataToJson(m));
    }
    if (!st.ok()) {
      EndFailed(p,
                st.WithMessage(p->savepoint ? "savepoint " : "checkpoint ", p->id,
                               " failed writing its metadata: ", st.message()),
                false);
      return;
    }
  }
  const int64_t duration_ms = (SteadyNanos() - p->start_ns) / 1'000'000;
  const int64_t size = p->dir.empty() ? 0 : m.TotalBytes();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    p->ended = true;
    if (pending_ == p) pending_.reset();
    stats_.in_progress_id = -1;
    if (p->savepoint) {
      ++stats_.savepoints;
    } else {
      ++stats_.completed;
      stats_.consecutive_failures = 0;
      stats_.last_completed_id = p->id;
      stats_.last_completed_path = p->dir;
      stats_.last_duration_ms = duration_ms;
      stats_.last_size_bytes = size;
    }
    cv_.notify_all();
  }
  Log(std::string(p->savepoint ? "savepoint " : "checkpoint ") + std::to_string(p->id) +
          " completed in " + std::to_string(duration_ms) + " ms, " +
          std::to_string(size) + " bytes" +
          (p->dir.empty() ? "" : " at '" + p->dir + "'"),
      p->savepoint);
  hooks_.notify_complete(p->id);
  if (!p->savepoint && store_ && !p->dir.empty()) {
    std::vector<std::string> log;
    auto st = store_->AddCompleted(std::move(m), &log);
    for (const auto& line : log) Log(line, false);
    if (!st.ok()) Log("cleaning up old checkpoints: " + st.message(), true);
  }
  if (p->done) p->done(arrow::Status::OK(), p->id, p->dir);
}

void CheckpointCoordinator::EndFailed(const std::shared_ptr<Pending>& p,
                                      const arrow::Status& status, bool aborted) {
  bool fail_job = false;
  int64_t consecutive = 0;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (p->ended) return;
    p->ended = true;
    if (pending_ == p) pending_.reset();
    stats_.in_progress_id = -1;
    if (aborted) {
      ++stats_.aborted;
    } else {
      ++stats_.failed;
      stats_.last_failed_id = p->id;
      stats_.last_failure = status.message();
      if (!p->savepoint) {
        consecutive = ++stats_.consecutive_failures;
        fail_job = consecutive > options_.tolerable_failures;
      }
    }
    p->end_status = status;
    work_.push_back(WorkItem{WorkItem::kCleanup, p, nullptr});
    cv_.notify_all();
  }
  if (aborted) {
    Log(std::string(p->savepoint ? "savepoint " : "checkpoint ") + std::to_string(p->id) +
            " aborted: " + status.message(),
        p->savepoint);
    return;
  }
  Log(status.message() + " (" + std::to_string(consecutive) +
          " consecutive failure(s), tolerable_failures=" +
          std::to_string(options_.tolerable_failures) + ")",
      true);
  if (fail_job) {
    hooks_.fail_job(arrow::Status::IOError(
        "the job fails after ", consecutive,
        " consecutive failed checkpoints (tolerable_failures=",
        options_.tolerable_failures, "); last: ", status.message()));
  }
}

// --- savepoint requests from `sabot savepoint`
// ------------------------------------------------

void CheckpointCoordinator::PollRequestFile() {
  const std::string request_path = JoinPath(options_.directory, kSavepointRequestFile);
  std::error_code ec;
  if (!fs::exists(request_path, ec)) return;
  std::string text;
  {
    FILE* f = std::fopen(request_path.c_str(), "rb");
    if (!f) return;
    char buffer[4096];
    size_t n;
    while ((n = std::fread(buffer, 1, sizeof(buffer), f)) > 0) text.append(buffer, n);
    std::fclose(f);
  }
  ::unlink(request_path.c_str());
  std::string id = "unknown";
  std::string path;
  bool stop = false;
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(text).get(doc) == simdjson::SUCCESS) {
    std::string_view v;
    if (doc["id"].get_string().get(v) == simdjson::SUCCESS) id = std::string(v);
    if (doc["path"].get_string().get(v) == simdjson::SUCCESS) path = std::string(v);
    bool b;
    if (doc["stop"].get_bool().get(b) == simdjson::SUCCESS) stop = b;
  } else {
    Log("ignoring an unreadable savepoint request '" + request_path + "'", true);
    return;
  }
  id = SanitizeName(id);
  if (path.empty()) path = JoinPath(options_.directory, "savepoints/savepoint-" + id);
  const std::string response_path =
      JoinPath(options_.directory, std::string(kSavepointResponsePrefix) + id + ".json");
  SavepointRequest request;
  request.path = path;
  request.stop = stop;
  request.done = [this, response_path, stop](const arrow::Status& st,
                                             int64_t checkpoint_id,
                                             const std::string& dir) {
    std::string json = "{\"status\": \"" + std::string(st.ok() ? "ok" : "error") +
                       "\", \"path\": \"" + JsonEscape(dir) +
                       "\", \"checkpoint_id\": " + std::to_string(checkpoint_id) +
                       ", \"stop\": " + (stop ? "true" : "false") + ", \"message\": \"" +
                       JsonEscape(st.ok() ? "" : st.message()) + "\"}\n";
    auto write = WriteFileAtomically(response_path, json);
    if (!write.ok()) Log("cannot answer a savepoint request: " + write.message(), true);
    if (st.ok() && stop && hooks_.cancel_job) hooks_.cancel_job();
  };
  if (!IsEmptyOrMissingDir(path)) {
    request.done(arrow::Status::Invalid("savepoint path '", path,
                                        "' already exists and is not an empty directory"),
                 -1, path);
    return;
  }
  StartSavepointRequest(std::move(request));
}

// --- queries
// ----------------------------------------------------------------------------

CheckpointStats CheckpointCoordinator::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stats_;
}

int64_t CheckpointCoordinator::completed() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stats_.completed;
}

bool CheckpointCoordinator::AwaitCompleted(int64_t count, int64_t timeout_ms) {
  std::unique_lock<std::mutex> lock(mutex_);
  auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (stats_.completed < count) {
    // Nothing in flight and none can start any more.
    if ((finished_tasks_ > 0 || stopping_) && !pending_) return false;
    if (cv_.wait_until(lock, deadline) == std::cv_status::timeout) {
      return stats_.completed >= count;
    }
  }
  return true;
}

}  // namespace sabot::checkpoint
