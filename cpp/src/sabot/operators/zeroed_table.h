// ZeroedTable<T>: a fixed-size, zero-initialized array for large open-addressing
// hash tables (the count_distinct accumulator's).
//
/// Why not std::vector: vector::assign writes every element (a memset pass over
/// memory the kernel has just zeroed) and, for tables of many MiB, glibc maps
/// them with 4 KiB pages, so filling a table costs one page fault per 4 KiB.
/// Tables of 2 MiB and more are mapped here directly (already zero), 2 MiB
/// aligned and advised as transparent huge pages where the kernel allows it
/// (THP "madvise" mode) and populated writable at once (no read fault on the
/// zero page followed by a copy-on-write fault). Smaller tables use calloc. T must
/// be trivially copyable with all-zero bytes as its empty value.
#pragma once

#include <sys/mman.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <type_traits>
#include <utility>

namespace sabot {

template <typename T>
class ZeroedTable {
  static_assert(std::is_trivially_copyable_v<T>);

 public:
  static constexpr size_t kHugePage = size_t{2} << 20;
#ifdef MADV_POPULATE_WRITE
  static constexpr int kMadvPopulateWrite = MADV_POPULATE_WRITE;
#else
  static constexpr int kMadvPopulateWrite = 23;  // Linux 5.14+
#endif

  ZeroedTable() = default;
  explicit ZeroedTable(size_t n) { Reset(n); }
  ~ZeroedTable() { Release(); }
  ZeroedTable(ZeroedTable&& o) noexcept { *this = std::move(o); }
  ZeroedTable& operator=(ZeroedTable&& o) noexcept {
    if (this != &o) {
      Release();
      std::swap(data_, o.data_);
      std::swap(size_, o.size_);
      std::swap(map_, o.map_);
      std::swap(map_bytes_, o.map_bytes_);
    }
    return *this;
  }
  ZeroedTable(const ZeroedTable&) = delete;
  ZeroedTable& operator=(const ZeroedTable&) = delete;

  /// Replaces the contents with `n` zeroed elements. Throws std::bad_alloc when
  /// the memory is not available (as std::vector would).
  void Reset(size_t n) {
    Release();
    const size_t bytes = n * sizeof(T);
    if (bytes >= kHugePage) {
      // Room for the table rounded up to whole huge pages after aligning.
      map_bytes_ = ((bytes + kHugePage - 1) & ~(kHugePage - 1)) + kHugePage;
      void* p = mmap(nullptr, map_bytes_, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (p == MAP_FAILED) {
        map_bytes_ = 0;
        throw std::bad_alloc();
      }
      map_ = p;
      auto aligned = (reinterpret_cast<uintptr_t>(p) + kHugePage - 1) & ~(kHugePage - 1);
      data_ = reinterpret_cast<T*>(aligned);
      const size_t span = (bytes + kHugePage - 1) & ~(kHugePage - 1);
#ifdef MADV_HUGEPAGE
      madvise(data_, span, MADV_HUGEPAGE);
#endif
      // Fault the table in now, writable: a hash table's first access to a
      // page is often a read (probing an empty slot), which would map the
      // shared zero page and take a second, copy-on-write fault at the first
      // insert. Kernels before 5.14 refuse the advice; the pages then fault
      // in on use as before.
      madvise(data_, span, kMadvPopulateWrite);
    } else if (n > 0) {
      data_ = static_cast<T*>(std::calloc(n, sizeof(T)));
      if (data_ == nullptr) throw std::bad_alloc();
    }
    size_ = n;
  }

  size_t size() const { return size_; }
  T* data() { return data_; }
  const T* data() const { return data_; }
  T& operator[](size_t i) { return data_[i]; }
  const T& operator[](size_t i) const { return data_[i]; }
  T* begin() { return data_; }
  T* end() { return data_ + size_; }
  const T* begin() const { return data_; }
  const T* end() const { return data_ + size_; }

 private:
  void Release() {
    if (map_ != nullptr) {
      munmap(map_, map_bytes_);
    } else {
      std::free(data_);
    }
    data_ = nullptr;
    map_ = nullptr;
    size_ = map_bytes_ = 0;
  }

  T* data_ = nullptr;
  size_t size_ = 0;
  void* map_ = nullptr;
  size_t map_bytes_ = 0;
};

}  // namespace sabot
