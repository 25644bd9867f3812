// Event-time and processing-time timers of one operator instance.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace sabot {

enum class TimeDomain : uint8_t { kEventTime, kProcessingTime };

/// A timer: fires once when event time (the watermark) or processing time (the
/// wall clock, ms since epoch) reaches `time`. `key` scopes it (keyed timers; an
/// empty key for operator-wide timers). Registering the same (time, key) twice
/// keeps one timer.
struct Timer {
  TimeDomain domain = TimeDomain::kEventTime;
  int64_t time = 0;
  std::string key;
  bool operator<(const Timer& o) const {
    return time != o.time ? time < o.time : key < o.key;
  }
};

/// Milliseconds since the Unix epoch, wall clock.
inline int64_t WallClockMillis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

/// Owned by the runtime, one per operator instance, used only from the task
/// that drives the operator (no locks). Event-time timers fire when the merged
/// watermark passes them, before the operator's OnWatermark; processing-time
/// timers fire at the start of the task's next slice after their time, and the
/// runtime wakes the task for the earliest one.
class TimerService {
 public:
  void RegisterEventTimeTimer(int64_t time, std::string key = {}) {
    event_timers_.insert(Timer{TimeDomain::kEventTime, time, std::move(key)});
  }
  void RegisterProcessingTimeTimer(int64_t time, std::string key = {}) {
    processing_timers_.insert(Timer{TimeDomain::kProcessingTime, time, std::move(key)});
    if (on_processing_timer_) on_processing_timer_(time);
  }
  void DeleteEventTimeTimer(int64_t time, const std::string& key = {}) {
    event_timers_.erase(Timer{TimeDomain::kEventTime, time, key});
  }
  void DeleteProcessingTimeTimer(int64_t time, const std::string& key = {}) {
    processing_timers_.erase(Timer{TimeDomain::kProcessingTime, time, key});
  }
  int64_t current_processing_time() const { return WallClockMillis(); }
  size_t num_event_timers() const { return event_timers_.size(); }
  size_t num_processing_timers() const { return processing_timers_.size(); }

  /// Removes and returns the timers due at `time` (runtime use).
  std::vector<Timer> TakeDue(TimeDomain domain, int64_t time) {
    auto& timers = domain == TimeDomain::kEventTime ? event_timers_ : processing_timers_;
    std::vector<Timer> due;
    while (!timers.empty() && timers.begin()->time <= time) {
      due.push_back(*timers.begin());
      timers.erase(timers.begin());
    }
    return due;
  }
  /// The earliest processing-time timer, or INT64_MAX.
  int64_t next_processing_time() const {
    return processing_timers_.empty() ? INT64_MAX : processing_timers_.begin()->time;
  }
  /// Called with the time of each new processing-time timer (runtime wiring).
  void set_on_processing_timer(std::function<void(int64_t)> fn) {
    on_processing_timer_ = std::move(fn);
  }

 private:
  std::set<Timer> event_timers_;
  std::set<Timer> processing_timers_;
  std::function<void(int64_t)> on_processing_timer_;
};

}  // namespace sabot
