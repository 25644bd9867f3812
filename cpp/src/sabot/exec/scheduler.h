// A fixed pool of worker threads that runs task slices.
#pragma once

#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

namespace sabot {

class Task;

/// Workers take runnable tasks from one FIFO queue and run one slice each. A task
/// is in the queue at most once (Task guards its own scheduling state). Tasks
/// never block a worker: a task that cannot progress returns from its slice and
/// is re-queued when a channel wakes it.
class Scheduler {
 public:
  explicit Scheduler(int num_threads);
  ~Scheduler();

  void Start();
  /// Stops the workers after their current slice; idempotent.
  void Stop();
  void Enqueue(Task* task);
  int num_threads() const { return num_threads_; }

 private:
  void WorkerLoop();

  const int num_threads_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<Task*> ready_;
  bool stopping_ = false;
  std::vector<std::thread> workers_;
};

}  // namespace sabot
