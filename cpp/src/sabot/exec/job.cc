#include "sabot/exec/job.h"

#include <set>
#include <sstream>

#include "sabot/checkpoint/coordinator.h"
#include "sabot/plan/registry.h"

namespace sabot {

namespace {
int DefaultCores() {
  unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(n);
}
}  // namespace

Job::Job(const LogicalPlan& plan, JobOptions options) : plan_(plan), options_(options) {
  if (options_.parallelism <= 0) options_.parallelism = DefaultCores();
  if (options_.num_threads <= 0) options_.num_threads = DefaultCores();
  pool_ = new JobMemoryPool(options_.memory_cap_bytes);
  exec_context_ = std::make_unique<arrow::compute::ExecContext>(pool_);
  scheduler_ = std::make_unique<Scheduler>(options_.num_threads);
}

Job::~Job() {
  Cancel();
  if (coordinator_) coordinator_->Shutdown();
  scheduler_->Stop();
  {
    std::lock_guard<std::mutex> lock(timer_mutex_);
    timer_stop_ = true;
  }
  timer_cv_.notify_all();
  if (timer_thread_.joinable()) timer_thread_.join();
}

void Job::ScheduleWakeup(Task* task, int64_t wall_time_ms) {
  {
    std::lock_guard<std::mutex> lock(timer_mutex_);
    wakeups_.push({wall_time_ms, task});
    if (!timer_thread_.joinable()) timer_thread_ = std::thread([this] { TimerLoop(); });
  }
  timer_cv_.notify_all();
}

void Job::TimerLoop() {
  std::unique_lock<std::mutex> lock(timer_mutex_);
  while (!timer_stop_) {
    if (wakeups_.empty()) {
      timer_cv_.wait(lock);
      continue;
    }
    auto [due, task] = wakeups_.top();
    int64_t now = WallClockMillis();
    if (due > now) {
      timer_cv_.wait_for(lock, std::chrono::milliseconds(due - now));
      continue;
    }
    wakeups_.pop();
    lock.unlock();
    task->Wake();
    lock.lock();
  }
}

arrow::Result<std::shared_ptr<Job>> Job::Make(const LogicalPlan& plan,
                                              JobOptions options) {
  ARROW_RETURN_NOT_OK(plan.Validate());
  std::shared_ptr<Job> job(new Job(plan, options));
  ARROW_RETURN_NOT_OK(job->Build());
  return job;
}

arrow::Status Job::Build() {
  const auto& nodes = plan_.nodes();
  const size_t num_nodes = nodes.size();
  auto* registry = OperatorRegistry::Global();

  node_parallelism_.resize(num_nodes);
  std::vector<std::vector<int>> consumers(num_nodes);
  for (const auto& node : nodes) {
    int p = node.parallelism > 0 ? node.parallelism : options_.parallelism;
    if (p > options_.max_parallelism) {
      return arrow::Status::Invalid("operator '", node.name, "' has parallelism ", p,
                                    " above the job's max_parallelism ",
                                    options_.max_parallelism);
    }
    node_parallelism_[node.id] = p;
    bool is_source = registry->IsSource(node.kind);
    if (is_source && !node.inputs.empty()) {
      return arrow::Status::Invalid("source '", node.name, "' cannot have inputs");
    }
    if (!is_source && node.inputs.empty()) {
      return arrow::Status::Invalid("operator '", node.name, "' has no input");
    }
    for (const auto& edge : node.inputs) consumers[edge.from].push_back(node.id);
  }
  std::set<std::string> uids;
  for (const auto& node : nodes) {
    if (!uids.insert(node.state_uid()).second) {
      return arrow::Status::Invalid("operator uid '", node.state_uid(),
                                    "' is used twice (uids must be unique in a job)");
    }
  }

  // Chaining.
  next_in_chain_.assign(num_nodes, -1);
  std::vector<int> chain_of(num_nodes, -1);
  for (const auto& node : nodes) {
    bool chained = false;
    if (node.inputs.size() == 1) {
      const auto& edge = node.inputs[0];
      if (edge.partitioning == Partitioning::kForward && edge.side_output.empty() &&
          node_parallelism_[edge.from] == node_parallelism_[node.id] &&
          consumers[edge.from].size() == 1) {
        chained = true;
        next_in_chain_[edge.from] = node.id;
        chain_of[node.id] = chain_of[edge.from];
        chains_[chain_of[node.id]].push_back(node.id);
      }
    }
    if (!chained) {
      chain_of[node.id] = static_cast<int>(chains_.size());
      chains_.push_back({node.id});
    }
  }

  // Metrics.
  op_metrics_.resize(num_nodes);
  for (const auto& node : nodes) {
    for (int i = 0; i < node_parallelism_[node.id]; ++i) {
      op_metrics_[node.id].push_back(std::make_unique<OperatorMetrics>());
    }
  }

  // Tasks: chain_tasks[chain][instance].
  std::vector<std::vector<Task*>> chain_tasks(chains_.size());
  for (size_t c = 0; c < chains_.size(); ++c) {
    const auto& chain = chains_[c];
    const int p = node_parallelism_[chain.front()];
    for (int i = 0; i < p; ++i) {
      std::string name;
      for (size_t k = 0; k < chain.size(); ++k) {
        if (k) name += " -> ";
        name += nodes[chain[k]].name;
      }
      name += " [" + std::to_string(i + 1) + "/" + std::to_string(p) + "]";
      auto task = std::make_unique<Task>(this, scheduler_.get(), name);
      task->unaligned_checkpoints = options_.checkpoint.unaligned;
      auto make_ctx = [&](const PlanNode& node) {
        OperatorContext ctx;
        ctx.operator_name = node.name;
        ctx.instance_index = i;
        ctx.parallelism = p;
        ctx.max_parallelism = options_.max_parallelism;
        ctx.pool = pool_;
        ctx.exec_context = exec_context_.get();
        ctx.key_groups = KeyGroupRange::ForInstance(i, p, options_.max_parallelism);
        ctx.state = &options_.state;
        ctx.job_name = options_.job_name;
        return ctx;
      };
      size_t first_op = 0;
      const PlanNode& head = nodes[chain.front()];
      if (registry->IsSource(head.kind)) {
        ARROW_ASSIGN_OR_RAISE(task->source, registry->MakeSource(head, i, p));
        task->source_ctx = make_ctx(head);
        task->source_uid = head.state_uid();
        task->source_metrics = op_metrics_[head.id][i].get();
        first_op = 1;
      }
      for (size_t k = first_op; k < chain.size(); ++k) {
        const PlanNode& node = nodes[chain[k]];
        auto slot = std::make_unique<OperatorSlot>();
        slot->node_id = node.id;
        slot->uid = node.state_uid();
        ARROW_ASSIGN_OR_RAISE(slot->op, registry->MakeOperator(node, i, p));
        slot->ctx = make_ctx(node);
        slot->metrics = op_metrics_[node.id][i].get();
        slot->ctx.side_rows_unconsumed = &slot->metrics->side_rows_unconsumed;
        task->slots.push_back(std::move(slot));
      }
      // Link the chain.
      for (size_t k = 0; k < task->slots.size(); ++k) {
        auto& slot = *task->slots[k];
        slot.out.metrics = slot.metrics;
        slot.out.next = k + 1 < task->slots.size() ? task->slots[k + 1].get() : nullptr;
        slot.out.router = &task->router;
      }
      if (task->source) {
        for (auto& slot : task->slots) slot->ctx.source = task->source.get();
        task->source_out.metrics = task->source_metrics;
        task->source_out.next = task->slots.empty() ? nullptr : task->slots.front().get();
        task->source_out.router = &task->router;
      }
      task->router.producer_name = nodes[chain.back()].name;
      task->router.producer_metrics = op_metrics_[chain.back()][i].get();
      task->router.max_parallelism = options_.max_parallelism;
      task->router.pool = pool_;
      chain_tasks[c].push_back(task.get());
      tasks_.push_back(std::move(task));
    }
  }

  // Channels between chains.
  for (size_t c = 0; c < chains_.size(); ++c) {
    const PlanNode& head = nodes[chains_[c].front()];
    for (size_t e = 0; e < head.inputs.size(); ++e) {
      PlanEdge edge = head.inputs[e];
      const int up_chain = chain_of[edge.from];
      auto& producers = chain_tasks[up_chain];
      auto& consumers_tasks = chain_tasks[c];
      if (edge.partitioning == Partitioning::kForward &&
          producers.size() != consumers_tasks.size()) {
        edge.partitioning = Partitioning::kRebalance;
      }
      for (size_t pi = 0; pi < producers.size(); ++pi) {
        OutputEdge out;
        out.partitioning = edge.partitioning;
        out.keys = edge.keys;
        out.side_output = edge.side_output;
        for (size_t ci = 0; ci < consumers_tasks.size(); ++ci) {
          bool connected = edge.partitioning != Partitioning::kForward || pi == ci;
          if (!connected) continue;
          auto channel = std::make_unique<Channel>(options_.channel_max_rows,
                                                   options_.channel_max_bytes);
          channel->Connect(producers[pi], consumers_tasks[ci]);
          InputChannelState in;
          in.channel = channel.get();
          in.logical_input = static_cast<int>(e);
          in.partitioning = edge.partitioning;
          in.keys = edge.keys;
          consumers_tasks[ci]->inputs.push_back(in);
          out.channels.push_back(channel.get());
          channels_.push_back(std::move(channel));
        }
        producers[pi]->router.edges.push_back(std::move(out));
      }
    }
  }

  // Checkpoints and restore.
  checkpoint::CheckpointCoordinator::JobHooks hooks;
  hooks.inject_barriers = [this](int64_t id, bool stop) { InjectBarriers(id, stop); };
  hooks.notify_complete = [this](int64_t id) { NotifyCheckpointComplete(id); };
  hooks.fail_job = [this](const arrow::Status& st) { Fail(st); };
  hooks.cancel_job = [this] { Cancel(); };
  hooks.resume_sources = [this] { ResumeSources(); };
  coordinator_ = std::make_unique<checkpoint::CheckpointCoordinator>(
      options_.checkpoint, options_.job_name, options_.max_parallelism, tasks_.size(),
      pool_, std::move(hooks));
  return coordinator_->PrepareRestore(uids);
}

arrow::Status Job::Start() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (started_) return arrow::Status::Invalid("job already started");
    started_ = true;
    start_ns_ = NowNanos();
  }
  coordinator_->Start();
  // Tasks start in the queued state: enqueue each once.
  for (auto& task : tasks_) scheduler_->Enqueue(task.get());
  scheduler_->Start();
  return arrow::Status::OK();
}

arrow::Status Job::Wait() {
  {
    std::unique_lock<std::mutex> lock(mutex_);
    done_cv_.wait(lock, [this] { return finished_tasks_ == tasks_.size(); });
  }
  // No checkpoint I/O goes on after Wait returned.
  coordinator_->Shutdown();
  std::lock_guard<std::mutex> lock(mutex_);
  return status_;
}

bool Job::done() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return finished_tasks_ == tasks_.size();
}

void Job::Cancel() {
  if (cancelled_.exchange(true)) return;
  for (auto& task : tasks_) task->Wake();
}

void Job::Fail(const arrow::Status& status) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (status_.ok()) status_ = status;
  }
  Cancel();
}

void Job::TaskFinished(Task* task) {
  // A finishing task aborts the checkpoint in flight and prevents new ones.
  coordinator_->TaskFinished(task->name());
  std::lock_guard<std::mutex> lock(mutex_);
  ++finished_tasks_;
  if (finished_tasks_ == tasks_.size()) {
    end_ns_ = NowNanos();
    done_cv_.notify_all();
  }
}

arrow::Status Job::TriggerCheckpoint(int64_t checkpoint_id) {
  if (checkpoint_id < 0) return arrow::Status::Invalid("checkpoint ids are positive");
  return coordinator_->TriggerCheckpoint(checkpoint_id).status();
}

arrow::Result<int64_t> Job::TriggerCheckpoint() {
  return coordinator_->TriggerCheckpoint(-1);
}

int64_t Job::completed_checkpoints() const { return coordinator_->completed(); }

bool Job::AwaitCheckpoints(int64_t count, int64_t timeout_ms) {
  return coordinator_->AwaitCompleted(count, timeout_ms);
}

arrow::Result<std::string> Job::TriggerSavepoint(const std::string& path) {
  return coordinator_->TriggerSavepoint(path, false);
}

arrow::Result<std::string> Job::StopWithSavepoint(const std::string& path) {
  ARROW_ASSIGN_OR_RAISE(auto dir, coordinator_->TriggerSavepoint(path, true));
  Cancel();
  return dir;
}

checkpoint::CheckpointStats Job::CheckpointStatistics() const {
  return coordinator_->stats();
}

void Job::AcknowledgeCheckpoint(int64_t checkpoint_id) {
  coordinator_->Acknowledge(checkpoint_id);
}

void Job::InjectBarriers(int64_t checkpoint_id, bool stop) {
  for (auto& task : tasks_) {
    if (task->source) task->InjectBarrier(checkpoint_id, stop);
  }
}

void Job::NotifyCheckpointComplete(int64_t checkpoint_id) {
  for (auto& task : tasks_) task->NotifyCheckpointComplete(checkpoint_id);
}

void Job::ResumeSources() {
  for (auto& task : tasks_) {
    if (task->source) task->ResumeSource();
  }
}

JobMetrics Job::Metrics() const {
  JobMetrics m;
  for (const auto& node : plan_.nodes()) {
    OperatorMetricsSnapshot s;
    s.node_id = node.id;
    s.name = node.name;
    s.parallelism = node_parallelism_[node.id];
    const int next = next_in_chain_[node.id];
    for (size_t i = 0; i < op_metrics_[node.id].size(); ++i) {
      const auto& om = *op_metrics_[node.id][i];
      s.rows_in += om.rows_in.load(std::memory_order_relaxed);
      s.rows_out += om.rows_out.load(std::memory_order_relaxed);
      s.batches_in += om.batches_in.load(std::memory_order_relaxed);
      s.batches_out += om.batches_out.load(std::memory_order_relaxed);
      int64_t busy = om.busy_ns_inclusive.load(std::memory_order_relaxed);
      if (next >= 0)
        busy -= op_metrics_[next][i]->busy_ns_inclusive.load(std::memory_order_relaxed);
      s.busy_ns += busy > 0 ? busy : 0;
      s.side_rows_unconsumed += om.side_rows_unconsumed.load(std::memory_order_relaxed);
    }
    m.operators.push_back(std::move(s));
  }
  for (const auto& task : tasks_) m.tasks.push_back(task->MetricsSnapshot());
  m.memory = pool_->stats();
  std::lock_guard<std::mutex> lock(mutex_);
  int64_t end = finished_tasks_ == tasks_.size() && end_ns_ ? end_ns_ : NowNanos();
  m.elapsed_seconds = started_ ? static_cast<double>(end - start_ns_) / 1e9 : 0.0;
  auto stats = coordinator_->stats();
  m.completed_checkpoints = stats.completed;
  m.failed_checkpoints = stats.failed;
  m.last_checkpoint_failure = stats.last_failure;
  return m;
}

std::string Job::DescribePhysicalPlan() const {
  std::ostringstream os;
  for (const auto& chain : chains_) {
    os << "task ";
    for (size_t k = 0; k < chain.size(); ++k) {
      if (k) os << " -> ";
      os << plan_.node(chain[k]).name;
    }
    os << " x" << node_parallelism_[chain.front()];
    const auto& head = plan_.node(chain.front());
    for (const auto& e : head.inputs) {
      os << " <-" << PartitioningName(e.partitioning) << "- " << plan_.node(e.from).name;
    }
    os << "\n";
  }
  return os.str();
}

std::string JobMetrics::ToString() const {
  std::ostringstream os;
  char line[512];
  std::snprintf(line, sizeof(line), "%-28s %5s %14s %14s %10s %10s\n", "operator", "par",
                "rows_in", "rows_out", "batches", "busy_ms");
  os << line;
  for (const auto& o : operators) {
    std::snprintf(line, sizeof(line), "%-28s %5d %14lld %14lld %10lld %10.1f\n",
                  o.name.c_str(), o.parallelism, static_cast<long long>(o.rows_in),
                  static_cast<long long>(o.rows_out),
                  static_cast<long long>(o.batches_in ? o.batches_in : o.batches_out),
                  static_cast<double>(o.busy_ns) / 1e6);
    os << line;
    if (o.side_rows_unconsumed > 0) {
      os << "  " << o.name << ": " << o.side_rows_unconsumed
         << " rows sent to side outputs nobody consumes (e.g. late rows)\n";
    }
  }
  std::snprintf(line, sizeof(line), "%-52s %10s %10s %10s\n", "task", "busy_ms",
                "idle_ms", "backpr_ms");
  os << line;
  for (const auto& t : tasks) {
    std::string name = t.name.size() > 52 ? t.name.substr(0, 49) + "..." : t.name;
    std::snprintf(line, sizeof(line), "%-52s %10.1f %10.1f %10.1f\n", name.c_str(),
                  static_cast<double>(t.busy_ns) / 1e6,
                  static_cast<double>(t.idle_ns) / 1e6,
                  static_cast<double>(t.backpressured_ns) / 1e6);
    os << line;
  }
  std::snprintf(
      line, sizeof(line),
      "memory: %.1f MiB in use, %.1f MiB peak, %lld allocations; elapsed %.3f s\n",
      static_cast<double>(memory.bytes_allocated) / (1 << 20),
      static_cast<double>(memory.peak_bytes) / (1 << 20),
      static_cast<long long>(memory.num_allocations), elapsed_seconds);
  os << line;
  if (completed_checkpoints > 0 || failed_checkpoints > 0) {
    os << "checkpoints: " << completed_checkpoints << " completed, " << failed_checkpoints
       << " failed";
    if (!last_checkpoint_failure.empty())
      os << " (last failure: " << last_checkpoint_failure << ")";
    os << "\n";
  }
  return os.str();
}

}  // namespace sabot
