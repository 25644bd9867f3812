#include "sabot/exec/scheduler.h"

#include "sabot/exec/task.h"

namespace sabot {

Scheduler::Scheduler(int num_threads) : num_threads_(num_threads < 1 ? 1 : num_threads) {}

Scheduler::~Scheduler() { Stop(); }

void Scheduler::Start() {
  for (int i = 0; i < num_threads_; ++i) workers_.emplace_back([this] { WorkerLoop(); });
}

void Scheduler::Stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& w : workers_) {
    if (w.joinable()) w.join();
  }
  workers_.clear();
}

void Scheduler::Enqueue(Task* task) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    ready_.push_back(task);
  }
  cv_.notify_one();
}

void Scheduler::WorkerLoop() {
  for (;;) {
    Task* task = nullptr;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      cv_.wait(lock, [this] { return stopping_ || !ready_.empty(); });
      if (stopping_) return;
      task = ready_.front();
      ready_.pop_front();
    }
    Task::SliceResult result = task->RunSlice();
    if (result == Task::SliceResult::kNotReady) {
      // A polled source had nothing: don't spin on it if nothing else is runnable.
      bool idle;
      {
        std::lock_guard<std::mutex> lock(mutex_);
        idle = ready_.empty();
      }
      if (idle) std::this_thread::sleep_for(std::chrono::microseconds(500));
    }
    task->AfterSlice(result);
  }
}

}  // namespace sabot
