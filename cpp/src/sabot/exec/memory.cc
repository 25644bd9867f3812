#include "sabot/exec/memory.h"

namespace sabot {

arrow::Status JobMemoryPool::Reserve(int64_t delta) {
  int64_t now = bytes_.fetch_add(delta, std::memory_order_relaxed) + delta;
  if (cap_bytes_ > 0 && delta > 0 && now > cap_bytes_) {
    bytes_.fetch_sub(delta, std::memory_order_relaxed);
    return arrow::Status::OutOfMemory("job memory cap of ", cap_bytes_,
                                      " bytes exceeded: allocating ", delta,
                                      " bytes with ", now - delta, " in use");
  }
  int64_t peak = peak_.load(std::memory_order_relaxed);
  while (now > peak &&
         !peak_.compare_exchange_weak(peak, now, std::memory_order_relaxed)) {
  }
  return arrow::Status::OK();
}

arrow::Status JobMemoryPool::Allocate(int64_t size, int64_t alignment, uint8_t** out) {
  ARROW_RETURN_NOT_OK(Reserve(size));
  auto st = parent_->Allocate(size, alignment, out);
  if (!st.ok()) {
    bytes_.fetch_sub(size, std::memory_order_relaxed);
    return st;
  }
  total_.fetch_add(size, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  return st;
}

arrow::Status JobMemoryPool::Reallocate(int64_t old_size, int64_t new_size,
                                        int64_t alignment, uint8_t** ptr) {
  ARROW_RETURN_NOT_OK(Reserve(new_size - old_size));
  auto st = parent_->Reallocate(old_size, new_size, alignment, ptr);
  if (!st.ok()) {
    bytes_.fetch_sub(new_size - old_size, std::memory_order_relaxed);
    return st;
  }
  if (new_size > old_size)
    total_.fetch_add(new_size - old_size, std::memory_order_relaxed);
  return st;
}

void JobMemoryPool::Free(uint8_t* buffer, int64_t size, int64_t alignment) {
  parent_->Free(buffer, size, alignment);
  bytes_.fetch_sub(size, std::memory_order_relaxed);
}

MemoryStats JobMemoryPool::stats() const {
  MemoryStats s;
  s.bytes_allocated = bytes_allocated();
  s.peak_bytes = max_memory();
  s.total_bytes_allocated = total_bytes_allocated();
  s.num_allocations = num_allocations();
  s.cap_bytes = cap_bytes_;
  return s;
}

}  // namespace sabot
