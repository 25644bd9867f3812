// A per-job Arrow memory pool with an optional cap.
#pragma once

#include <arrow/memory_pool.h>

#include <atomic>
#include <cstdint>

#include "sabot/exec/metrics.h"

namespace sabot {

/// Wraps a parent pool, counts what the job allocates and refuses allocations
/// beyond `cap_bytes` (0 = no cap) with Status::OutOfMemory. Thread-safe.
class JobMemoryPool : public arrow::MemoryPool {
 public:
  explicit JobMemoryPool(int64_t cap_bytes,
                         arrow::MemoryPool* parent = arrow::default_memory_pool())
      : parent_(parent), cap_bytes_(cap_bytes) {}

  using arrow::MemoryPool::Allocate;
  using arrow::MemoryPool::Free;
  using arrow::MemoryPool::Reallocate;

  arrow::Status Allocate(int64_t size, int64_t alignment, uint8_t** out) override;
  arrow::Status Reallocate(int64_t old_size, int64_t new_size, int64_t alignment,
                           uint8_t** ptr) override;
  void Free(uint8_t* buffer, int64_t size, int64_t alignment) override;

  int64_t bytes_allocated() const override {
    return bytes_.load(std::memory_order_relaxed);
  }
  int64_t max_memory() const override { return peak_.load(std::memory_order_relaxed); }
  int64_t total_bytes_allocated() const override {
    return total_.load(std::memory_order_relaxed);
  }
  int64_t num_allocations() const override {
    return count_.load(std::memory_order_relaxed);
  }
  std::string backend_name() const override { return parent_->backend_name(); }

  MemoryStats stats() const;

 private:
  arrow::Status Reserve(int64_t delta);
  arrow::MemoryPool* parent_;
  const int64_t cap_bytes_;
  std::atomic<int64_t> bytes_{0}, peak_{0}, total_{0}, count_{0};
};

}  // namespace sabot
