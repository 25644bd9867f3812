// A bounded single-producer single-consumer channel between two tasks.
#pragma once

#include <cstdint>
#include <deque>
#include <mutex>

#include "sabot/exec/stream_element.h"

namespace sabot {

class Task;

/// Bounded by rows and by bytes. The bound is enforced by the producer: a task
/// takes no new input while any of its output channels is Full(), and yields its
/// worker thread instead (backpressure). One input element may produce several
/// output batches, so a channel can exceed its bound by at most the output of
/// one input element. Push and Pop wake the other side.
///
/// Thread-safe: one producer task and one consumer task, on any threads.
class Channel {
 public:
  Channel(int64_t max_rows, int64_t max_bytes)
      : max_rows_(max_rows), max_bytes_(max_bytes) {}

  void Connect(Task* producer, Task* consumer) {
    producer_ = producer;
    consumer_ = consumer;
  }

  /// Appends an element and wakes the consumer. Never blocks.
  void Push(StreamElement element);
  /// Takes the oldest element; wakes the producer if this made room.
  bool TryPop(StreamElement* out);
  bool Full() const;
  bool Empty() const;

  int64_t rows() const;
  int64_t bytes() const;
  int64_t peak_rows() const;
  int64_t peak_bytes() const;

 private:
  bool FullLocked() const { return rows_ >= max_rows_ || bytes_ >= max_bytes_; }

  const int64_t max_rows_, max_bytes_;
  Task* producer_ = nullptr;
  Task* consumer_ = nullptr;
  mutable std::mutex mutex_;
  std::deque<std::pair<StreamElement, int64_t>> queue_;  // element, its bytes
  int64_t rows_ = 0, bytes_ = 0, peak_rows_ = 0, peak_bytes_ = 0;
};

}  // namespace sabot
