#include "sabot/exec/task.h"

#include <algorithm>

#include "sabot/checkpoint/coordinator.h"
#include "sabot/exec/job.h"
#include "sabot/exec/partitioner.h"
#include "sabot/exec/scheduler.h"

namespace sabot {

namespace {

// A slice ends after this many elements or this much time, so that tasks share
// the worker threads fairly.
constexpr int kSliceMaxElements = 64;
constexpr int64_t kSliceMaxNanos = 2'000'000;

// Prefixes an error with the operator it came from, once.
arrow::Status WithOperator(const arrow::Status& st, const OperatorContext& ctx) {
  if (st.ok()) return st;
  const std::string& msg = st.message();
  if (msg.rfind("operator '", 0) == 0) return st;
  return st.WithMessage("operator '", ctx.operator_name, "' (instance ",
                        ctx.instance_index + 1, " of ", ctx.parallelism, "): ", msg);
}

}  // namespace

int64_t NowNanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// ---------------------------------------------------------------------------
// Output routing

arrow::Status OutputRouter::Emit(std::shared_ptr<arrow::RecordBatch> batch) {
  if (batch->num_rows() == 0) return arrow::Status::OK();
  return Route(std::string(), std::move(batch));
}

arrow::Status OutputRouter::EmitSide(const std::string& tag,
                                     std::shared_ptr<arrow::RecordBatch> batch) {
  if (batch->num_rows() == 0) return arrow::Status::OK();
  bool consumed = false;
  for (const auto& edge : edges) consumed |= edge.side_output == tag;
  if (!consumed) {
    if (producer_metrics) {
      producer_metrics->side_rows_unconsumed.fetch_add(batch->num_rows(),
                                                       std::memory_order_relaxed);
    }
    return arrow::Status::OK();
  }
  return Route(tag, std::move(batch));
}

arrow::Status OutputRouter::EmitIdle(bool idle) {
  Broadcast(StreamElement::Idle(idle));
  return arrow::Status::OK();
}

arrow::Status OutputRouter::Route(const std::string& tag,
                                  std::shared_ptr<arrow::RecordBatch> batch) {
  for (auto& edge : edges) {
    if (edge.side_output != tag) continue;
    const size_t n = edge.channels.size();
    switch (edge.partitioning) {
      case Partitioning::kForward:
        edge.channels[0]->Push(StreamElement::Batch(batch));
        break;
      case Partitioning::kRebalance:
        edge.channels[edge.next_channel]->Push(StreamElement::Batch(batch));
        edge.next_channel = (edge.next_channel + 1) % n;
        break;
      case Partitioning::kBroadcast:
        for (auto* ch : edge.channels) ch->Push(StreamElement::Batch(batch));
        break;
      case Partitioning::kHash: {
        if (edge.key_indices.empty()) {
          ARROW_ASSIGN_OR_RAISE(
              edge.key_indices,
              ResolveKeyColumns(*batch->schema(), edge.keys,
                                "key_by after '" + producer_name + "'"));
        }
        std::vector<std::shared_ptr<arrow::RecordBatch>> parts;
        ARROW_RETURN_NOT_OK(PartitionByKey(batch, edge.key_indices, static_cast<int>(n),
                                           max_parallelism, pool, &parts));
        for (size_t i = 0; i < n; ++i) {
          if (parts[i]) edge.channels[i]->Push(StreamElement::Batch(std::move(parts[i])));
        }
        break;
      }
    }
  }
  return arrow::Status::OK();
}

arrow::Status OutputRouter::EmitWatermark(int64_t watermark) {
  Broadcast(StreamElement::Watermark(watermark));
  return arrow::Status::OK();
}

void OutputRouter::Broadcast(const StreamElement& element) {
  for (auto& edge : edges) {
    for (auto* ch : edge.channels) ch->Push(element);
  }
}

bool OutputRouter::AnyFull() const {
  for (const auto& edge : edges) {
    for (const auto* ch : edge.channels) {
      if (ch->Full()) return true;
    }
  }
  return false;
}

// ---------------------------------------------------------------------------
// Chaining

arrow::Status SlotOutput::Emit(std::shared_ptr<arrow::RecordBatch> batch) {
  metrics->rows_out.fetch_add(batch->num_rows(), std::memory_order_relaxed);
  metrics->batches_out.fetch_add(1, std::memory_order_relaxed);
  if (next) return next->Process(0, batch);
  return router->Emit(std::move(batch));
}

arrow::Status SlotOutput::EmitWatermark(int64_t watermark) {
  if (next) return next->Watermark(watermark);
  return router->EmitWatermark(watermark);
}

arrow::Status SlotOutput::EmitSide(const std::string& tag,
                                   std::shared_ptr<arrow::RecordBatch> batch) {
  if (next) {
    // Only a chain's tail can have side-output consumers (a node with a side
    // consumer has two consumers and so never chains to the next operator).
    metrics->side_rows_unconsumed.fetch_add(batch->num_rows(), std::memory_order_relaxed);
    return arrow::Status::OK();
  }
  return router->EmitSide(tag, std::move(batch));
}

arrow::Status SlotOutput::EmitIdle(bool idle) {
  if (next) return next->Idle(idle);
  return router->EmitIdle(idle);
}

arrow::Status OperatorSlot::Process(int input,
                                    const std::shared_ptr<arrow::RecordBatch>& batch) {
  metrics->rows_in.fetch_add(batch->num_rows(), std::memory_order_relaxed);
  metrics->batches_in.fetch_add(1, std::memory_order_relaxed);
  int64_t start = NowNanos();
  auto st = op->ProcessBatch(input, batch, &ctx, &out);
  metrics->busy_ns_inclusive.fetch_add(NowNanos() - start, std::memory_order_relaxed);
  return WithOperator(st, ctx);
}

arrow::Status OperatorSlot::Watermark(int64_t watermark) {
  ctx.current_watermark = watermark;
  if (timers.num_event_timers() > 0) {
    for (const auto& timer : timers.TakeDue(TimeDomain::kEventTime, watermark)) {
      ARROW_RETURN_NOT_OK(WithOperator(op->OnTimer(timer, &ctx, &out), ctx));
    }
  }
  return WithOperator(op->OnWatermark(watermark, &ctx, &out), ctx);
}

arrow::Status OperatorSlot::Idle(bool idle) {
  return WithOperator(op->OnIdle(idle, &ctx, &out), ctx);
}

arrow::Status OperatorSlot::FireProcessingTimers(int64_t now) {
  if (timers.next_processing_time() > now) return arrow::Status::OK();
  for (const auto& timer : timers.TakeDue(TimeDomain::kProcessingTime, now)) {
    ARROW_RETURN_NOT_OK(WithOperator(op->OnTimer(timer, &ctx, &out), ctx));
  }
  return arrow::Status::OK();
}

// ---------------------------------------------------------------------------
// Asynchronous operators

/// The AsyncNotifier of one operator slot: flags the slot and wakes the task.
/// Detached when the task is destroyed, so a late Notify from an operator's
/// thread is a no-op.
class SlotNotifier : public AsyncNotifier {
 public:
  explicit SlotNotifier(Task* task) : task_(task) {}
  void Notify() override {
    ready_.store(true, std::memory_order_release);
    std::lock_guard<std::mutex> lock(mutex_);
    if (task_) task_->Wake();
  }
  void Detach() {
    std::lock_guard<std::mutex> lock(mutex_);
    task_ = nullptr;
  }
  bool TakeReady() { return ready_.exchange(false, std::memory_order_acq_rel); }

 private:
  std::mutex mutex_;
  Task* task_;
  std::atomic<bool> ready_{false};
};

// ---------------------------------------------------------------------------
// Task

Task::Task(Job* job, Scheduler* scheduler, std::string name)
    : job_(job), scheduler_(scheduler), name_(std::move(name)) {
  wait_since_ns_ = NowNanos();
}

Task::~Task() {
  for (auto& slot : slots) {
    if (slot->notifier) slot->notifier->Detach();
  }
}

arrow::Status Task::RunAsyncReady() {
  for (auto& slot : slots) {
    if (slot->notifier && slot->notifier->TakeReady()) {
      ARROW_RETURN_NOT_OK(
          WithOperator(slot->op->OnAsyncReady(&slot->ctx, &slot->out), slot->ctx));
    }
  }
  return arrow::Status::OK();
}

bool Task::AcceptsInput() const {
  for (const auto& slot : slots) {
    if (!slot->op->CanAcceptInput()) return false;
  }
  return true;
}

bool Task::HasPendingWork() const {
  for (const auto& slot : slots) {
    if (slot->op->HasPendingWork()) return true;
  }
  return false;
}

void Task::Wake() {
  std::lock_guard<std::mutex> lock(sched_mutex_);
  switch (sched_state_) {
    case SchedState::kWaiting:
      sched_state_ = SchedState::kQueued;
      scheduler_->Enqueue(this);
      break;
    case SchedState::kRunning:
      wake_pending_ = true;
      break;
    case SchedState::kQueued:
    case SchedState::kDone:
      break;
  }
}

void Task::InjectBarrier(int64_t checkpoint_id, bool stop) {
  injected_stop_.store(stop);
  injected_barrier_.store(checkpoint_id);
  Wake();
}

void Task::NotifyCheckpointComplete(int64_t checkpoint_id) {
  int64_t current = notify_id_.load();
  while (checkpoint_id > current &&
         !notify_id_.compare_exchange_weak(current, checkpoint_id)) {
  }
  Wake();
}

void Task::ResumeSource() {
  source_stopped_.store(false);
  Wake();
}

arrow::Status Task::DeliverCheckpointComplete() {
  const int64_t id = notify_id_.load();
  if (id <= notified_id_) return arrow::Status::OK();
  notified_id_ = id;
  if (source) {
    ARROW_RETURN_NOT_OK(WithOperator(source->NotifyCheckpointComplete(id), source_ctx));
  }
  for (auto& slot : slots) {
    ARROW_RETURN_NOT_OK(
        WithOperator(slot->op->NotifyCheckpointComplete(id, &slot->ctx), slot->ctx));
  }
  return arrow::Status::OK();
}

void Task::AfterSlice(SliceResult result) {
  int64_t now = NowNanos();
  bool finished = false;
  {
    std::lock_guard<std::mutex> lock(sched_mutex_);
    wait_since_ns_ = now;
    if (result == SliceResult::kFinished) {
      sched_state_ = SchedState::kDone;
      finished = true;
    } else if (result == SliceResult::kYield || result == SliceResult::kNotReady ||
               wake_pending_) {
      wake_pending_ = false;
      wait_reason_ = WaitReason::kNone;
      sched_state_ = SchedState::kQueued;
      scheduler_->Enqueue(this);
    } else {
      wait_reason_ = result == SliceResult::kBlockedOutput      ? WaitReason::kOutput
                     : result == SliceResult::kBlockedAlignment ? WaitReason::kAlignment
                                                                : WaitReason::kInput;
      sched_state_ = SchedState::kWaiting;
    }
  }
  if (finished) job_->TaskFinished(this);
}

Task::SliceResult Task::RunSlice() {
  int64_t start = NowNanos();
  {
    std::lock_guard<std::mutex> lock(sched_mutex_);
    int64_t waited = start - wait_since_ns_;
    if (wait_reason_ == WaitReason::kOutput) {
      metrics_.backpressured_ns.fetch_add(waited, std::memory_order_relaxed);
    } else if (wait_reason_ == WaitReason::kInput ||
               wait_reason_ == WaitReason::kAlignment) {
      metrics_.idle_ns.fetch_add(waited, std::memory_order_relaxed);
    }
    wait_reason_ = WaitReason::kNone;
    sched_state_ = SchedState::kRunning;
    wake_pending_ = false;
  }
  SliceResult result = SliceResult::kYield;
  arrow::Status st;
  if (finished_) {
    result = SliceResult::kFinished;
  } else if (job_->cancelled()) {
    // A completion that arrived before the cancellation is still delivered
    // (stop-with-savepoint commits what the savepoint covers).
    if (opened_) {
      auto notified = DeliverCheckpointComplete();
      if (!notified.ok()) job_->Fail(notified);
    }
    finished_ = true;
    result = SliceResult::kFinished;
  } else {
    if (!opened_) st = Open();
    if (st.ok()) st = DeliverCheckpointComplete();
    if (st.ok()) st = RunAsyncReady();
    if (st.ok() && has_processing_timers_) {
      int64_t now = WallClockMillis();
      for (auto& slot : slots) {
        if (!st.ok()) break;
        st = slot->FireProcessingTimers(now);
      }
    }
    if (st.ok()) st = source ? RunSource(&result) : RunInputs(&result);
    if (!st.ok()) {
      job_->Fail(st);
      finished_ = true;
      result = SliceResult::kFinished;
    }
  }
  metrics_.busy_ns.fetch_add(NowNanos() - start, std::memory_order_relaxed);
  metrics_.slices.fetch_add(1, std::memory_order_relaxed);
  return result;
}

arrow::Status Task::Open() {
  opened_ = true;
  for (auto& slot : slots) {
    slot->ctx.timers = &slot->timers;
    slot->notifier = std::make_shared<SlotNotifier>(this);
    slot->ctx.async_notifier = slot->notifier;
    slot->timers.set_on_processing_timer([this](int64_t time) {
      has_processing_timers_ = true;
      job_->ScheduleWakeup(this, time);
    });
  }
  // On restore each operator finds its state in ctx.restore during Open only.
  auto* checkpoints = job_->checkpoints();
  if (source) {
    auto reader = checkpoints->NewReader(source_uid, source_ctx.instance_index,
                                         source_ctx.parallelism);
    source_ctx.restore = reader.get();
    auto st = source->Open(&source_ctx);
    source_ctx.restore = nullptr;
    ARROW_RETURN_NOT_OK(WithOperator(st, source_ctx));
  }
  std::vector<std::unique_ptr<checkpoint::FileSnapshotReader>> readers;
  for (auto& slot_ptr : slots) {
    auto& slot = *slot_ptr;
    auto reader =
        checkpoints->NewReader(slot.uid, slot.ctx.instance_index, slot.ctx.parallelism);
    slot.ctx.restore = reader.get();
    auto st = slot.op->Open(&slot.ctx);
    slot.ctx.restore = nullptr;
    ARROW_RETURN_NOT_OK(WithOperator(st, slot.ctx));
    readers.push_back(std::move(reader));
  }
  // Channel state goes to the operator it was recorded for, also when that
  // operator is chained in this run (its input is then input 0).
  for (size_t k = 0; k < slots.size(); ++k) {
    if (readers[k])
      ARROW_RETURN_NOT_OK(RestoreChannelState(slots[k].get(), readers[k].get()));
  }
  return arrow::Status::OK();
}

arrow::Status Task::RestoreChannelState(OperatorSlot* slot,
                                        checkpoint::FileSnapshotReader* reader) {
  // Batches an unaligned checkpoint recorded in flight: replayed before any
  // new input, in the order of their logical inputs.
  const std::string prefix = kChannelStateTablePrefix;
  int num_inputs = 1;
  if (slot == slots.front().get() && !source) {
    for (const auto& in : inputs) num_inputs = std::max(num_inputs, in.logical_input + 1);
  }
  for (const auto& table : reader->KeyedTables()) {
    if (table.rfind(prefix, 0) != 0) continue;
    const std::string suffix = table.substr(prefix.size());
    int input = -1;
    try {
      input = std::stoi(suffix);
    } catch (...) {
    }
    if (input < 0 || input >= num_inputs) {
      return arrow::Status::Invalid("operator '", slot->ctx.operator_name,
                                    "': the checkpoint holds channel state of input ",
                                    suffix, " but the operator has ", num_inputs,
                                    " input(s)");
    }
    ARROW_ASSIGN_OR_RAISE(auto batches, reader->ReadKeyed(table));
    for (const auto& batch : batches) ARROW_RETURN_NOT_OK(slot->Process(input, batch));
  }
  return arrow::Status::OK();
}

Collector* Task::head() { return &source_out; }

arrow::Status Task::SnapshotAndForward(int64_t checkpoint_id) {
  // The synchronous part: each writer only records what the operator hands
  // over; the coordinator's I/O thread writes it while this task goes on.
  auto* checkpoints = job_->checkpoints();
  if (source) {
    auto writer = checkpoints->NewWriter(
        checkpoint_id, source_uid, source_ctx.instance_index, source_ctx.parallelism);
    writer->set_describe_positions(true);
    ARROW_RETURN_NOT_OK(WithOperator(source->SnapshotState(writer.get()), source_ctx));
    checkpoints->Submit(checkpoint_id, std::move(writer));
  }
  for (auto& slot : slots) {
    auto writer = checkpoints->NewWriter(checkpoint_id, slot->uid,
                                         slot->ctx.instance_index, slot->ctx.parallelism);
    ARROW_RETURN_NOT_OK(
        WithOperator(slot->op->SnapshotState(writer.get(), &slot->ctx), slot->ctx));
    checkpoints->Submit(checkpoint_id, std::move(writer));
  }
  router.Broadcast(StreamElement::Barrier(checkpoint_id));
  last_snapshot_id_ = checkpoint_id;
  return arrow::Status::OK();
}

arrow::Status Task::Snapshot(int64_t checkpoint_id) {
  ARROW_RETURN_NOT_OK(SnapshotAndForward(checkpoint_id));
  job_->AcknowledgeCheckpoint(checkpoint_id);
  return arrow::Status::OK();
}

arrow::Status Task::OnBarrier(InputChannelState* input, int64_t id) {
  if (unaligned_checkpoints && inputs.size() > 1) return OnBarrierUnaligned(input, id);
  // Barriers of one channel arrive in order. A barrier older than the one being
  // aligned (or than the last snapshot) belongs to a checkpoint that was given
  // up; a newer one means the one being aligned was given up (failed or
  // aborted), so alignment starts over for the newer one.
  if (id <= last_snapshot_id_) return arrow::Status::OK();
  if (aligning_checkpoint_ >= 0 && id < aligning_checkpoint_) return arrow::Status::OK();
  if (aligning_checkpoint_ >= 0 && id > aligning_checkpoint_) {
    for (auto& in : inputs) in.blocked_by_barrier = false;
  }
  aligning_checkpoint_ = id;
  input->blocked_by_barrier = true;
  return CheckAlignment();
}

arrow::Status Task::OnBarrierUnaligned(InputChannelState* input, int64_t id) {
  if (id <= last_snapshot_id_ && id != unaligned_checkpoint_) return arrow::Status::OK();
  if (unaligned_checkpoint_ >= 0 && id < unaligned_checkpoint_)
    return arrow::Status::OK();
  if (unaligned_checkpoint_ >= 0 && id > unaligned_checkpoint_) {
    channel_state_.reset();  // the older checkpoint was given up
    unaligned_checkpoint_ = -1;
    for (auto& in : inputs) in.barrier_seen = false;
  }
  if (unaligned_checkpoint_ < 0) {
    // First barrier: snapshot at once and forward it; keep reading every input
    // and record what arrives on channels whose barrier is still to come.
    unaligned_checkpoint_ = id;
    ARROW_RETURN_NOT_OK(SnapshotAndForward(id));
    const OperatorSlot& head = *slots.front();
    channel_state_ = job_->checkpoints()->NewWriter(id, head.uid, head.ctx.instance_index,
                                                    head.ctx.parallelism);
  }
  input->barrier_seen = true;
  return MaybeFinishUnaligned();
}

arrow::Status Task::MaybeFinishUnaligned() {
  if (unaligned_checkpoint_ < 0) return arrow::Status::OK();
  for (const auto& in : inputs) {
    if (!in.end_of_stream && !in.barrier_seen) return arrow::Status::OK();
  }
  const int64_t id = unaligned_checkpoint_;
  unaligned_checkpoint_ = -1;
  for (auto& in : inputs) in.barrier_seen = false;
  job_->checkpoints()->Submit(id, std::move(channel_state_));
  job_->AcknowledgeCheckpoint(id);
  return arrow::Status::OK();
}

arrow::Status Task::RecordChannelState(InputChannelState* input,
                                       const std::shared_ptr<arrow::RecordBatch>& batch) {
  const std::string table =
      kChannelStateTablePrefix + std::to_string(input->logical_input);
  if (input->partitioning == Partitioning::kHash) {
    // Keyed by the edge's keys: a restore at another parallelism replays each
    // row at the instance that owns its key.
    return channel_state_->WriteKeyed(table, batch, input->keys);
  }
  // Other edges: the rows go to whichever instance inherits this instance's
  // first key group.
  const OperatorSlot& head = *slots.front();
  ARROW_ASSIGN_OR_RAISE(auto groups, arrow::MakeArrayFromScalar(
                                         arrow::Int32Scalar(head.ctx.key_groups.first),
                                         batch->num_rows(), head.ctx.pool));
  return channel_state_->WriteKeyedWithGroups(
      table, batch, std::static_pointer_cast<arrow::Int32Array>(groups));
}

arrow::Status Task::Finish(bool* done) {
  *done = false;
  finishing_ = true;
  if (finish_step_ == 0) {
    finish_step_ = 1;
    if (current_watermark_ < kMaxWatermark)
      ARROW_RETURN_NOT_OK(DeliverWatermark(kMaxWatermark));
  }
  // An operator is closed only once no operator of the chain has asynchronous
  // work left: what an earlier operator emits on Close may start new work in a
  // later one, and results still to come must reach the operators after it.
  while (finish_step_ <= slots.size()) {
    if (HasPendingWork()) return arrow::Status::OK();
    auto& slot = slots[finish_step_++ - 1];
    ARROW_RETURN_NOT_OK(WithOperator(slot->op->Close(&slot->ctx, &slot->out), slot->ctx));
  }
  if (HasPendingWork()) return arrow::Status::OK();
  if (source) ARROW_RETURN_NOT_OK(WithOperator(source->Close(), source_ctx));
  router.Broadcast(StreamElement::EndOfStream());
  finished_ = true;
  *done = true;
  return arrow::Status::OK();
}

arrow::Status Task::DeliverWatermark(int64_t watermark) {
  current_watermark_ = watermark;
  if (source) return source_out.EmitWatermark(watermark);
  return slots.front()->Watermark(watermark);
}

arrow::Status Task::RunSource(SliceResult* result) {
  int64_t start = NowNanos();
  if (finishing_) {
    bool done = false;
    ARROW_RETURN_NOT_OK(Finish(&done));
    *result = done ? SliceResult::kFinished : SliceResult::kBlockedInput;
    return arrow::Status::OK();
  }
  for (int i = 0; i < kSliceMaxElements; ++i) {
    int64_t barrier = injected_barrier_.exchange(-1);
    if (barrier >= 0) {
      const bool stop = injected_stop_.exchange(false);
      ARROW_RETURN_NOT_OK(Snapshot(barrier));
      if (stop) source_stopped_.store(true);
    }
    if (source_stopped_.load()) {
      // Stopped by a stop-with-savepoint barrier: wait for the cancellation
      // (or for ResumeSource when the savepoint failed).
      *result = SliceResult::kBlockedInput;
      return arrow::Status::OK();
    }
    if (router.AnyFull()) {
      *result = SliceResult::kBlockedOutput;
      return arrow::Status::OK();
    }
    if (!AcceptsInput()) {  // an asynchronous operator is at its bound
      *result = SliceResult::kBlockedInput;
      return arrow::Status::OK();
    }
    StreamElement element;
    int64_t poll_start = NowNanos();
    ARROW_ASSIGN_OR_RAISE(PollResult poll, source->Poll(&element));
    if (poll == PollResult::kNotReady) {
      // A source waiting for data (or pacing itself) is idle, not busy.
      int64_t waited = NowNanos() - poll_start;
      metrics_.idle_ns.fetch_add(waited, std::memory_order_relaxed);
      metrics_.busy_ns.fetch_sub(waited, std::memory_order_relaxed);
      *result = SliceResult::kNotReady;
      return arrow::Status::OK();
    }
    if (poll == PollResult::kEndOfInput) {
      bool done = false;
      ARROW_RETURN_NOT_OK(Finish(&done));
      *result = done ? SliceResult::kFinished : SliceResult::kBlockedInput;
      return arrow::Status::OK();
    }
    if (element.kind == ElementKind::kBatch) {
      ARROW_RETURN_NOT_OK(
          WithOperator(source_out.Emit(std::move(element.batch)), source_ctx));
    } else if (element.kind == ElementKind::kWatermark) {
      if (element.value > current_watermark_)
        ARROW_RETURN_NOT_OK(DeliverWatermark(element.value));
    } else {
      return arrow::Status::Invalid(
          "source '", source_ctx.operator_name,
          "' produced a control element it may not produce: ", element.ToString());
    }
    if (NowNanos() - start > kSliceMaxNanos) break;
  }
  *result = SliceResult::kYield;
  return arrow::Status::OK();
}

arrow::Status Task::HandleElement(InputChannelState* input, StreamElement element) {
  if ((element.kind == ElementKind::kBatch || element.kind == ElementKind::kWatermark) &&
      input->idle) {
    input->idle = false;
    ARROW_RETURN_NOT_OK(UpdateIdleness());
  }
  switch (element.kind) {
    case ElementKind::kBatch:
      if (unaligned_checkpoint_ >= 0 && !input->barrier_seen) {
        ARROW_RETURN_NOT_OK(RecordChannelState(input, element.batch));
      }
      return slots.front()->Process(input->logical_input, element.batch);
    case ElementKind::kWatermark:
      input->watermark = std::max(input->watermark, element.value);
      return MergeWatermarks();
    case ElementKind::kIdle:
      input->idle = element.value != 0;
      ARROW_RETURN_NOT_OK(UpdateIdleness());
      // An idle channel no longer holds back the others.
      return MergeWatermarks();
    case ElementKind::kBarrier:
      return OnBarrier(input, element.value);
    case ElementKind::kEndOfStream:
      input->end_of_stream = true;
      ARROW_RETURN_NOT_OK(CheckAlignment());
      ARROW_RETURN_NOT_OK(MaybeFinishUnaligned());
      // The finished channel no longer holds back the merged watermark.
      return MergeWatermarks();
  }
  return arrow::Status::OK();
}

arrow::Status Task::MergeWatermarks() {
  // The minimum over channels that are open and active. When every open
  // channel is idle, event time does not advance.
  int64_t merged = kMaxWatermark;
  bool any_active = false;
  for (const auto& in : inputs) {
    if (in.end_of_stream || in.idle) continue;
    merged = std::min(merged, in.watermark);
    any_active = true;
  }
  if (any_active && merged > current_watermark_) return DeliverWatermark(merged);
  return arrow::Status::OK();
}

arrow::Status Task::UpdateIdleness() {
  bool all_idle = true;
  bool any_open = false;
  for (const auto& in : inputs) {
    if (in.end_of_stream) continue;
    any_open = true;
    all_idle &= in.idle;
  }
  bool idle = any_open && all_idle;
  if (idle == inputs_idle_) return arrow::Status::OK();
  inputs_idle_ = idle;
  return slots.front()->Idle(idle);
}

arrow::Status Task::CheckAlignment() {
  if (aligning_checkpoint_ < 0) return arrow::Status::OK();
  for (const auto& in : inputs) {
    if (!in.end_of_stream && !in.blocked_by_barrier) return arrow::Status::OK();
  }
  int64_t id = aligning_checkpoint_;
  aligning_checkpoint_ = -1;
  for (auto& in : inputs) in.blocked_by_barrier = false;
  return Snapshot(id);
}

arrow::Status Task::RunInputs(SliceResult* result) {
  int64_t start = NowNanos();
  const size_t n = inputs.size();
  for (int processed = 0; processed < kSliceMaxElements;) {
    if (router.AnyFull()) {
      *result = SliceResult::kBlockedOutput;
      return arrow::Status::OK();
    }
    if (!AcceptsInput()) {  // an asynchronous operator is at its bound
      *result = SliceResult::kBlockedInput;
      return arrow::Status::OK();
    }
    bool got = false;
    bool all_done = true;
    bool any_blocked = false;
    for (size_t k = 0; k < n; ++k) {
      InputChannelState& in = inputs[(next_input_ + k) % n];
      if (in.end_of_stream) continue;
      all_done = false;
      if (in.blocked_by_barrier) {
        any_blocked = true;
        continue;
      }
      StreamElement element;
      if (in.channel->TryPop(&element)) {
        next_input_ = (next_input_ + k + 1) % n;
        ARROW_RETURN_NOT_OK(HandleElement(&in, std::move(element)));
        got = true;
        ++processed;
        break;
      }
    }
    if (all_done) {
      bool done = false;
      ARROW_RETURN_NOT_OK(Finish(&done));
      *result = done ? SliceResult::kFinished : SliceResult::kBlockedInput;
      return arrow::Status::OK();
    }
    if (!got) {
      *result = any_blocked ? SliceResult::kBlockedAlignment : SliceResult::kBlockedInput;
      return arrow::Status::OK();
    }
    if (NowNanos() - start > kSliceMaxNanos) break;
  }
  *result = SliceResult::kYield;
  return arrow::Status::OK();
}

TaskMetricsSnapshot Task::MetricsSnapshot() const {
  TaskMetricsSnapshot s;
  s.name = name_;
  s.busy_ns = metrics_.busy_ns.load(std::memory_order_relaxed);
  s.idle_ns = metrics_.idle_ns.load(std::memory_order_relaxed);
  s.backpressured_ns = metrics_.backpressured_ns.load(std::memory_order_relaxed);
  auto* self = const_cast<Task*>(this);
  std::lock_guard<std::mutex> lock(self->sched_mutex_);
  switch (sched_state_) {
    case SchedState::kDone:
      s.state = "finished";
      break;
    case SchedState::kRunning:
      s.state = "running";
      break;
    case SchedState::kQueued:
      s.state = "runnable";
      break;
    case SchedState::kWaiting:
      s.state = wait_reason_ == WaitReason::kOutput      ? "backpressured"
                : wait_reason_ == WaitReason::kAlignment ? "aligning"
                                                         : "waiting-input";
      break;
  }
  return s;
}

}  // namespace sabot
