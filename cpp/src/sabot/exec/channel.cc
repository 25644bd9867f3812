#include "sabot/exec/channel.h"

#include <algorithm>

#include "sabot/exec/task.h"

namespace sabot {

namespace {
constexpr int64_t kControlElementBytes = 64;
}

void Channel::Push(StreamElement element) {
  int64_t bytes = element.batch ? BatchBytes(*element.batch) : kControlElementBytes;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    rows_ += element.num_rows();
    bytes_ += bytes;
    peak_rows_ = std::max(peak_rows_, rows_);
    peak_bytes_ = std::max(peak_bytes_, bytes_);
    queue_.emplace_back(std::move(element), bytes);
  }
  if (consumer_) consumer_->Wake();
}

bool Channel::TryPop(StreamElement* out) {
  bool made_room = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (queue_.empty()) return false;
    bool was_full = FullLocked();
    auto& [element, bytes] = queue_.front();
    rows_ -= element.num_rows();
    bytes_ -= bytes;
    *out = std::move(element);
    queue_.pop_front();
    made_room = was_full && !FullLocked();
  }
  if (made_room && producer_) producer_->Wake();
  return true;
}

bool Channel::Full() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return FullLocked();
}

bool Channel::Empty() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return queue_.empty();
}

int64_t Channel::rows() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return rows_;
}
int64_t Channel::bytes() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return bytes_;
}
int64_t Channel::peak_rows() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return peak_rows_;
}
int64_t Channel::peak_bytes() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return peak_bytes_;
}

}  // namespace sabot
