#include "sabot/state/memory_backend.h"

#include <arrow/array/builder_binary.h>
#include <arrow/array/builder_primitive.h>

#include <memory_resource>
#include <new>
#include <unordered_map>

#include "sabot/state/key_codec.h"
#include "sabot/state/ttl.h"

namespace sabot {

// --- snapshot tables -------------------------------------------------------------

struct KeyedStateTableBuilder::Impl {
  std::string table;
  SnapshotWriter* writer;
  arrow::MemoryPool* pool;
  arrow::BinaryBuilder key, user_key, value;
  arrow::Int64Builder expires;
  arrow::Int32Builder groups;
  int64_t rows = 0;
  Impl(std::string t, SnapshotWriter* w, arrow::MemoryPool* p)
      : table(std::move(t)),
        writer(w),
        pool(p),
        key(p),
        user_key(p),
        value(p),
        expires(p),
        groups(p) {}
};

KeyedStateTableBuilder::KeyedStateTableBuilder(const std::string& table,
                                               SnapshotWriter* writer,
                                               arrow::MemoryPool* pool)
    : impl_(std::make_unique<Impl>(table, writer, pool)) {}
KeyedStateTableBuilder::~KeyedStateTableBuilder() = default;

arrow::Status KeyedStateTableBuilder::Add(std::string_view storage_key,
                                          std::string_view user_key,
                                          std::string_view stored, bool has_ttl) {
  Impl& m = *impl_;
  ARROW_RETURN_NOT_OK(m.key.Append(storage_key));
  ARROW_RETURN_NOT_OK(m.user_key.Append(user_key));
  if (has_ttl) {
    if (stored.size() < kTtlHeaderBytes) {
      return arrow::Status::Invalid("corrupt state value in table '", m.table, "'");
    }
    ARROW_RETURN_NOT_OK(m.expires.Append(ReadExpiry(stored)));
    ARROW_RETURN_NOT_OK(m.value.Append(stored.substr(kTtlHeaderBytes)));
  } else {
    ARROW_RETURN_NOT_OK(m.expires.AppendNull());
    ARROW_RETURN_NOT_OK(m.value.Append(stored));
  }
  ARROW_RETURN_NOT_OK(m.groups.Append(KeyGroupOfStorageKey(storage_key)));
  if (++m.rows >= 65536) return Flush();
  return arrow::Status::OK();
}

arrow::Status KeyedStateTableBuilder::Flush() {
  Impl& m = *impl_;
  if (m.rows == 0) return arrow::Status::OK();
  std::shared_ptr<arrow::Array> key, user_key, value, expires;
  std::shared_ptr<arrow::Int32Array> groups;
  ARROW_RETURN_NOT_OK(m.key.Finish(&key));
  ARROW_RETURN_NOT_OK(m.user_key.Finish(&user_key));
  ARROW_RETURN_NOT_OK(m.value.Finish(&value));
  ARROW_RETURN_NOT_OK(m.expires.Finish(&expires));
  ARROW_RETURN_NOT_OK(m.groups.Finish(&groups));
  auto schema = arrow::schema({arrow::field("key", arrow::binary()),
                               arrow::field("user_key", arrow::binary()),
                               arrow::field("value", arrow::binary()),
                               arrow::field("expires_ms", arrow::int64())});
  auto batch = arrow::RecordBatch::Make(schema, m.rows, {key, user_key, value, expires});
  m.rows = 0;
  return m.writer->WriteKeyedWithGroups(m.table, std::move(batch), std::move(groups));
}

namespace {

// --- memory ------------------------------------------------------------------------

/// std::pmr memory from an Arrow pool, so the state counts in the job's memory
/// and a job memory cap bounds it (an allocation past the cap throws
/// std::bad_alloc, turned into Status::OutOfMemory by the backend).
class ArrowMemoryResource : public std::pmr::memory_resource {
 public:
  explicit ArrowMemoryResource(arrow::MemoryPool* pool) : pool_(pool) {}
  int64_t bytes() const { return bytes_; }

 private:
  void* do_allocate(size_t bytes, size_t alignment) override {
    uint8_t* out = nullptr;
    auto st = pool_->Allocate(static_cast<int64_t>(bytes),
                              static_cast<int64_t>(std::max<size_t>(alignment, 8)), &out);
    if (!st.ok()) throw std::bad_alloc();
    bytes_ += static_cast<int64_t>(bytes);
    return out;
  }
  void do_deallocate(void* p, size_t bytes, size_t alignment) override {
    pool_->Free(static_cast<uint8_t*>(p), static_cast<int64_t>(bytes),
                static_cast<int64_t>(std::max<size_t>(alignment, 8)));
    bytes_ -= static_cast<int64_t>(bytes);
  }
  bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override {
    return this == &other;
  }
  arrow::MemoryPool* pool_;
  int64_t bytes_ = 0;
};

struct BytesHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
struct BytesEq {
  using is_transparent = void;
  bool operator()(std::string_view a, std::string_view b) const { return a == b; }
};

using Bytes = std::pmr::string;
using KvMap = std::pmr::unordered_map<Bytes, Bytes, BytesHash, BytesEq>;
using MapOfMaps = std::pmr::unordered_map<Bytes, KvMap, BytesHash, BytesEq>;

struct Table {
  explicit Table(std::pmr::memory_resource* r) : kv(r), maps(r) {}
  KvMap kv;        // value and list states: storage key -> stored value
  MapOfMaps maps;  // map states: storage key -> user key -> stored value
};

void PutBytes(KvMap* map, std::string_view key, std::string_view value) {
  auto it = map->find(key);
  if (it == map->end()) {
    map->emplace(std::piecewise_construct, std::forward_as_tuple(key),
                 std::forward_as_tuple(value));
  } else {
    it->second.assign(value);
  }
}

class MemoryBackend : public KeyedStateBackend {
 public:
  explicit MemoryBackend(KeyedStateBackendOptions options)
      : KeyedStateBackend(std::move(options)), resource_(options_.pool) {}

  const char* kind() const override { return "memory"; }

  arrow::Status MultiGet(int state, const std::vector<std::string_view>& keys,
                         ValueBatch* out) override {
    out->Reset(keys.size());
    Table& t = *tables_[state];
    if (specs_[state].type == StateType::kMap) {
      std::string storage_key;
      std::string_view user_key;
      for (size_t i = 0; i < keys.size(); ++i) {
        ARROW_RETURN_NOT_OK(SplitMapEntryKey(keys[i], &storage_key, &user_key));
        auto outer = t.maps.find(std::string_view(storage_key));
        if (outer == t.maps.end()) continue;
        auto it = outer->second.find(user_key);
        if (it != outer->second.end()) out->Set(i, it->second);
      }
      return arrow::Status::OK();
    }
    for (size_t i = 0; i < keys.size(); ++i) {
      auto it = t.kv.find(keys[i]);
      if (it != t.kv.end()) out->Set(i, it->second);
    }
    return arrow::Status::OK();
  }

  arrow::Status Write(const StateWriteBatch& batch) override {
    int current = -1;
    try {
      for (const auto& e : batch.entries()) {
        current = e.state;
        ARROW_RETURN_NOT_OK(Apply(e, batch.key(e), batch.value(e)));
      }
    } catch (const std::bad_alloc&) {
      return arrow::Status::OutOfMemory(
          Describe(current),
          ": the in-memory state backend reached the job's memory cap; use the rocksdb "
          "state backend for state larger than memory");
    }
    return arrow::Status::OK();
  }

  arrow::Status ScanMap(
      int state, std::string_view storage_key,
      const std::function<arrow::Status(std::string_view, std::string_view)>& fn)
      override {
    Table& t = *tables_[state];
    auto outer = t.maps.find(storage_key);
    if (outer == t.maps.end()) return arrow::Status::OK();
    for (const auto& [user_key, value] : outer->second) {
      ARROW_RETURN_NOT_OK(fn(user_key, value));
    }
    return arrow::Status::OK();
  }

  arrow::Status ForEach(
      int state, const std::function<arrow::Status(std::string_view, std::string_view,
                                                   std::string_view)>& fn) override {
    Table& t = *tables_[state];
    for (const auto& [key, value] : t.kv) ARROW_RETURN_NOT_OK(fn(key, {}, value));
    for (const auto& [key, entries] : t.maps) {
      for (const auto& [user_key, value] : entries) {
        ARROW_RETURN_NOT_OK(fn(key, user_key, value));
      }
    }
    return arrow::Status::OK();
  }

  arrow::Status Snapshot(SnapshotWriter* writer) override {
    const int64_t now = NowMs();
    for (int state = 0; state < num_states(); ++state) {
      const bool ttl = specs_[state].ttl.enabled();
      if (ttl) RemoveExpired(state, now);
      KeyedStateTableBuilder table(TableName(specs_[state].name), writer, options_.pool);
      ARROW_RETURN_NOT_OK(ForEach(
          state,
          [&](std::string_view key, std::string_view user_key, std::string_view value) {
            return table.Add(key, user_key, value, ttl);
          }));
      ARROW_RETURN_NOT_OK(table.Flush());
    }
    return arrow::Status::OK();
  }

  arrow::Result<int64_t> ApproximateSizeBytes() override {
    int64_t bytes = 0;
    for (int state = 0; state < num_states(); ++state) {
      ARROW_RETURN_NOT_OK(ForEach(
          state,
          [&](std::string_view key, std::string_view user_key, std::string_view value) {
            bytes += static_cast<int64_t>(key.size() + user_key.size() + value.size());
            return arrow::Status::OK();
          }));
    }
    return bytes;
  }

  int64_t MemoryUsageBytes() override { return resource_.bytes(); }

 protected:
  arrow::Status OnDeclare(int state) override {
    try {
      tables_.push_back(std::make_unique<Table>(&resource_));
    } catch (const std::bad_alloc&) {
      return arrow::Status::OutOfMemory(Describe(state), ": out of memory");
    }
    return arrow::Status::OK();
  }

 private:
  arrow::Status Apply(const StateWriteBatch::Entry& e, std::string_view key,
                      std::string_view value) {
    Table& t = *tables_[e.state];
    const StateSpec& spec = specs_[e.state];
    if (spec.type == StateType::kMap) {
      std::string storage_key;
      std::string_view user_key;
      ARROW_RETURN_NOT_OK(SplitMapEntryKey(key, &storage_key, &user_key));
      auto outer = t.maps.find(std::string_view(storage_key));
      switch (e.op) {
        case StateWriteBatch::Op::kPut:
          if (outer == t.maps.end()) {
            outer =
                t.maps
                    .emplace(std::piecewise_construct, std::forward_as_tuple(storage_key),
                             std::forward_as_tuple())
                    .first;
          }
          PutBytes(&outer->second, user_key, value);
          return arrow::Status::OK();
        case StateWriteBatch::Op::kDelete:
          if (outer != t.maps.end()) {
            auto it = outer->second.find(user_key);
            if (it != outer->second.end()) outer->second.erase(it);
            if (outer->second.empty()) t.maps.erase(outer);
          }
          return arrow::Status::OK();
        case StateWriteBatch::Op::kDeletePrefix:
          if (!user_key.empty()) {
            return arrow::Status::NotImplemented(Describe(e.state),
                                                 ": prefix deletes within one key");
          }
          if (outer != t.maps.end()) t.maps.erase(outer);
          return arrow::Status::OK();
        case StateWriteBatch::Op::kMerge:
          return arrow::Status::Invalid(Describe(e.state),
                                        ": merge (append) on a map state");
      }
    }
    switch (e.op) {
      case StateWriteBatch::Op::kPut:
        PutBytes(&t.kv, key, value);
        return arrow::Status::OK();
      case StateWriteBatch::Op::kDelete: {
        auto it = t.kv.find(key);
        if (it != t.kv.end()) t.kv.erase(it);
        return arrow::Status::OK();
      }
      case StateWriteBatch::Op::kMerge: {
        if (spec.type != StateType::kList) {
          return arrow::Status::Invalid(Describe(e.state), ": append on a ",
                                        StateTypeName(spec.type), " state");
        }
        auto it = t.kv.find(key);
        std::string_view existing;
        if (it != t.kv.end()) existing = it->second;
        MergeListValue(it != t.kv.end() ? &existing : nullptr, value, spec.ttl.ttl_ms,
                       &scratch_);
        PutBytes(&t.kv, key, scratch_);
        return arrow::Status::OK();
      }
      case StateWriteBatch::Op::kDeletePrefix:
        return arrow::Status::NotImplemented(Describe(e.state),
                                             ": prefix deletes on a value/list state");
    }
    return arrow::Status::OK();
  }

  void RemoveExpired(int state, int64_t now) {
    Table& t = *tables_[state];
    auto expired = [now](const Bytes& stored) {
      return stored.size() < kTtlHeaderBytes || IsExpired(ReadExpiry(stored), now);
    };
    for (auto it = t.kv.begin(); it != t.kv.end();) {
      it = expired(it->second) ? t.kv.erase(it) : std::next(it);
    }
    for (auto outer = t.maps.begin(); outer != t.maps.end();) {
      auto& entries = outer->second;
      for (auto it = entries.begin(); it != entries.end();) {
        it = expired(it->second) ? entries.erase(it) : std::next(it);
      }
      outer = entries.empty() ? t.maps.erase(outer) : std::next(outer);
    }
  }

  ArrowMemoryResource resource_;  // declared before the tables: freed after them
  std::vector<std::unique_ptr<Table>> tables_;
  std::string scratch_;
};

}  // namespace

arrow::Result<std::unique_ptr<KeyedStateBackend>> MakeMemoryBackend(
    KeyedStateBackendOptions options) {
  return std::make_unique<MemoryBackend>(std::move(options));
}

}  // namespace sabot
