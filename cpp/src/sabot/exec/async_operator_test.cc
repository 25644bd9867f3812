// The runtime's support for asynchronous operators (AsyncNotifier,
// OnAsyncReady, CanAcceptInput, HasPendingWork), with an operator that hands
// each batch to a thread of its own, which may be held closed by the test.
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "sabot/api/datastream.h"
#include "sabot/plan/registry.h"

namespace sabot {
namespace {

// Shared by all instances of one plan node.
struct AsyncTestState {
  std::mutex mutex;
  std::condition_variable cv;
  bool open = true;         // the worker threads may complete work
  int64_t max_pending = 0;  // most batches an instance held at once
  int64_t closed_with_pending = 0;
  void SetOpen(bool value) {
    {
      std::lock_guard<std::mutex> lock(mutex);
      open = value;
    }
    cv.notify_all();
  }
};

struct AsyncTestOptions : NodeOptions {
  int max_in_flight = 2;
  std::shared_ptr<AsyncTestState> state = std::make_shared<AsyncTestState>();
  std::string ToString() const override { return "test_async"; }
};

// Emits every batch unchanged, in order, after its thread has seen it.
class AsyncTestOperator : public Operator {
 public:
  explicit AsyncTestOperator(const AsyncTestOptions& o) : options_(o) {}
  ~AsyncTestOperator() override {
    {
      std::lock_guard<std::mutex> lock(options_.state->mutex);
      stop_ = true;
    }
    options_.state->cv.notify_all();
    if (thread_.joinable()) thread_.join();
  }

  arrow::Status Open(OperatorContext* ctx) override {
    if (!ctx->async_notifier) return arrow::Status::Invalid("no async notifier");
    notifier_ = ctx->async_notifier;
    thread_ = std::thread([this] { Loop(); });
    return arrow::Status::OK();
  }

  arrow::Status ProcessBatch(int, const std::shared_ptr<arrow::RecordBatch>& batch,
                             OperatorContext*, Collector*) override {
    std::lock_guard<std::mutex> lock(options_.state->mutex);
    waiting_.push_back(batch);
    ++pending_;
    options_.state->max_pending = std::max(options_.state->max_pending, pending_);
    options_.state->cv.notify_all();
    return arrow::Status::OK();
  }

  arrow::Status OnAsyncReady(OperatorContext*, Collector* out) override {
    std::deque<std::shared_ptr<arrow::RecordBatch>> done;
    {
      std::lock_guard<std::mutex> lock(options_.state->mutex);
      done.swap(done_);
      pending_ -= static_cast<int64_t>(done.size());
    }
    for (auto& b : done) ARROW_RETURN_NOT_OK(out->Emit(std::move(b)));
    return arrow::Status::OK();
  }

  bool CanAcceptInput() const override {
    std::lock_guard<std::mutex> lock(options_.state->mutex);
    return pending_ < options_.max_in_flight;
  }
  bool HasPendingWork() const override {
    std::lock_guard<std::mutex> lock(options_.state->mutex);
    return pending_ > 0;
  }

  arrow::Status Close(OperatorContext*, Collector*) override {
    std::lock_guard<std::mutex> lock(options_.state->mutex);
    if (pending_ > 0) ++options_.state->closed_with_pending;
    return arrow::Status::OK();
  }

 private:
  void Loop() {
    std::unique_lock<std::mutex> lock(options_.state->mutex);
    for (;;) {
      options_.state->cv.wait(
          lock, [this] { return stop_ || (options_.state->open && !waiting_.empty()); });
      if (stop_) return;
      done_.push_back(std::move(waiting_.front()));
      waiting_.pop_front();
      lock.unlock();
      notifier_->Notify();
      lock.lock();
    }
  }

  const AsyncTestOptions& options_;
  std::shared_ptr<AsyncNotifier> notifier_;
  std::thread thread_;
  bool stop_ = false;
  int64_t pending_ = 0;
  std::deque<std::shared_ptr<arrow::RecordBatch>> waiting_;
  std::deque<std::shared_ptr<arrow::RecordBatch>> done_;
};

void RegisterOnce() {
  static bool done = [] {
    ARROW_CHECK_OK(OperatorRegistry::Global()->AddOperator(
        "test_async",
        [](const PlanNode& node, int, int) -> arrow::Result<std::unique_ptr<Operator>> {
          return std::make_unique<AsyncTestOperator>(node.options_as<AsyncTestOptions>());
        }));
    return true;
  }();
  (void)done;
}

std::vector<std::shared_ptr<arrow::RecordBatch>> Batches(int n, int rows) {
  std::vector<std::shared_ptr<arrow::RecordBatch>> out;
  for (int b = 0; b < n; ++b) {
    arrow::Int64Builder v;
    for (int i = 0; i < rows; ++i) EXPECT_TRUE(v.Append(b * rows + i).ok());
    out.push_back(
        arrow::RecordBatch::Make(arrow::schema({arrow::field("v", arrow::int64())}), rows,
                                 {v.Finish().ValueOrDie()}));
  }
  return out;
}

std::vector<int64_t> Values(const CollectBuffer& buffer) {
  std::vector<int64_t> out;
  for (const auto& b : buffer.batches()) {
    auto v = std::static_pointer_cast<arrow::Int64Array>(b->column(0));
    for (int64_t i = 0; i < b->num_rows(); ++i) out.push_back(v->Value(i));
  }
  return out;
}

TEST(AsyncOperatorTest, ChainedAfterSourceEmitsEverythingInOrderWithinItsBound) {
  RegisterOnce();
  auto batches = Batches(50, 10);
  auto options = std::make_shared<AsyncTestOptions>();
  options->max_in_flight = 3;
  JobOptions job;
  job.parallelism = 1;
  job.num_threads = 2;
  auto env = StreamEnvironment::Make(job);
  // source -> test_async -> filter -> collect, all chained in one task.
  auto buffer =
      env->FromBatches(batches[0]->schema(), batches)
          .Apply("test_async", options)
          .Filter(arrow::compute::greater_equal(arrow::compute::field_ref("v"),
                                                arrow::compute::literal(int64_t{0})))
          .Collect();
  ASSERT_TRUE(env->Execute().ok());
  auto values = Values(*buffer);
  ASSERT_EQ(values.size(), 500u);
  for (size_t i = 0; i < values.size(); ++i)
    EXPECT_EQ(values[i], static_cast<int64_t>(i));
  EXPECT_LE(options->state->max_pending, 3);
  EXPECT_EQ(options->state->closed_with_pending, 0);
}

TEST(AsyncOperatorTest, HeldWorkDoesNotHoldTheOnlyWorkerThread) {
  RegisterOnce();
  auto options = std::make_shared<AsyncTestOptions>();
  options->state->SetOpen(false);  // the operator's thread completes nothing yet
  JobOptions job;
  job.parallelism = 2;
  job.num_threads = 1;
  auto env = StreamEnvironment::Make(job);
  auto a = Batches(20, 5);
  auto held =
      env->FromBatches(a[0]->schema(), a, 2).Apply("test_async", options).Collect();
  auto b = Batches(200, 5);
  auto other = env->FromBatches(b[0]->schema(), b, 2).KeyBy({"v"}).Collect();
  auto handle = env->Start().ValueOrDie();
  // The other pipeline finishes on the one worker thread while the async
  // operator holds its batches (bounded by max_in_flight per instance).
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (other->num_rows() < 1000 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(other->num_rows(), 1000);
  EXPECT_EQ(held->num_rows(), 0);
  EXPECT_FALSE(handle->done());
  EXPECT_LE(options->state->max_pending, 2);
  options->state->SetOpen(true);
  ASSERT_TRUE(handle->Wait().ok());
  EXPECT_EQ(held->num_rows(), 100);
  EXPECT_EQ(options->state->closed_with_pending, 0);
}

}  // namespace
}  // namespace sabot
