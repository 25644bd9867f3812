// Keyed state backends: the byte-level store of one operator instance's keyed
// state, in memory (hash maps) or in RocksDB (one database per instance, one
// column family per state).
//
// Keys are storage keys (state/key_codec.h: 2-byte key group + key bytes); map
// states store entries under MapEntryKey(storage key, user key). Values are
// opaque bytes; a state with TTL stores [8-byte expiry, ms][payload] (see
// state/ttl.h) and list states hold a sequence of [4-byte length][element]
// that an append extends (a RocksDB merge, no read).
//
// Access is batched: one MultiGet for the distinct keys of an input batch and
// one Write of a StateWriteBatch, so a built-in operator makes two backend
// calls per input batch whatever the backend.
//
// Checkpoints go through the contract of state/snapshot.h: the memory backend
// writes its entries as keyed Arrow tables ("kv/<state>"), RocksDB hands a
// native checkpoint to AddFiles (SST files shared, so checkpoints are
// incremental). Either backend restores from either form, at any parallelism.
//
/// Threading contract: a backend belongs to one operator instance and is used
/// from its task's thread only (RocksDB's own background threads flush and
/// compact). Views returned by a backend stay valid until its next call.
#pragma once

#include <arrow/memory_pool.h>
#include <arrow/result.h>
#include <arrow/status.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sabot/state/snapshot.h"

namespace sabot {

struct OperatorContext;
struct StateConfig;

/// How a state's values are stored.
enum class StateType : uint8_t {
  kValue = 0,  ///< one value per key (also reducing and aggregating state)
  kList = 1,   ///< a list per key; appends are merges
  kMap = 2,    ///< user key -> value per key
};
const char* StateTypeName(StateType type);

/// Time-to-live of state entries, in processing time (the backend's clock).
/// Expired entries are never returned; they are removed lazily when read, by a
/// RocksDB compaction filter, and when a snapshot is taken (memory backend) or
/// restored (both).
struct StateTtlConfig {
  enum class Update : uint8_t {
    kOnCreateAndWrite = 0,  ///< a write (put, append, add) restarts the TTL
    kOnReadAndWrite = 1,    ///< reads restart it too
  };
  int64_t ttl_ms = 0;  ///< 0: no TTL
  Update update = Update::kOnCreateAndWrite;
  bool enabled() const { return ttl_ms > 0; }
  bool operator==(const StateTtlConfig& o) const {
    return ttl_ms == o.ttl_ms && (ttl_ms == 0 || update == o.update);
  }
};

/// A state an operator declares: its name (unique in the operator), storage
/// type and TTL.
struct StateSpec {
  std::string name;
  StateType type = StateType::kValue;
  StateTtlConfig ttl;
};

/// Processing-time clock (ms) for TTL; tests inject one.
using StateClock = std::function<int64_t()>;
/// Milliseconds since the epoch (the default clock).
int64_t WallClockMs();

struct KeyedStateBackendOptions {
  std::string backend = "memory";  ///< "memory" or "rocksdb"
  /// Parent of RocksDB's working directory (one subdirectory per instance,
  /// removed when the backend is destroyed); empty: the system temp directory.
  std::string local_dir;
  /// RocksDB block cache + write buffers, per instance.
  int64_t rocksdb_memory_bytes = 64 << 20;
  /// RocksDB compaction style, "level" or "universal" (benchmarks: level
  /// uploads less per incremental checkpoint on average and without the
  /// spikes of universal's full merges; see docs/benchmarks.md).
  std::string rocksdb_compaction = "level";
  std::string operator_name = "operator";
  int instance_index = 0;
  /// The key groups this instance owns (restores keep these).
  KeyGroupRange key_groups{0, 127};
  int max_parallelism = 128;
  /// Memory of the memory backend's tables (the job's pool: counted and capped).
  arrow::MemoryPool* pool = arrow::default_memory_pool();
  StateClock clock;  ///< empty: WallClockMs

  /// The backend the job configured (ctx.state; memory when unset), for the
  /// instance `ctx` describes.
  static KeyedStateBackendOptions FromContext(const OperatorContext& ctx);
};

/// Values read for a list of keys: found or not, and the bytes (owned).
class ValueBatch {
 public:
  void Reset(size_t n);
  size_t size() const { return ranges_.size(); }
  bool found(size_t i) const { return ranges_[i].second != kAbsent; }
  std::string_view value(size_t i) const {
    return std::string_view(bytes_.data() + ranges_[i].first, ranges_[i].second);
  }
  std::optional<std::string_view> get(size_t i) const {
    if (!found(i)) return std::nullopt;
    return value(i);
  }
  void Set(size_t i, std::string_view value);
  void SetAbsent(size_t i) { ranges_[i].second = kAbsent; }
  /// Drops the first `bytes` of value i (a TTL header).
  void SkipPrefix(size_t i, size_t bytes) {
    ranges_[i].first += bytes;
    ranges_[i].second -= bytes;
  }

 private:
  static constexpr size_t kAbsent = ~size_t{0};
  std::string bytes_;
  std::vector<std::pair<size_t, size_t>> ranges_;  // offset, length (kAbsent)
};

/// Mutations applied together by KeyedStateBackend::Write (RocksDB: one
/// WriteBatch). Keys and values are copied in.
class StateWriteBatch {
 public:
  enum class Op : uint8_t { kPut, kDelete, kMerge, kDeletePrefix };
  struct Entry {
    Op op;
    int state;
    size_t key_offset, key_size, value_offset, value_size;
  };
  /// `expiry`: prepend a TTL header (for states with TTL).
  void Put(int state, std::string_view key, std::string_view value,
           std::optional<int64_t> expiry = std::nullopt);
  void Delete(int state, std::string_view key);
  /// List append: `elements` are encoded list elements.
  void Merge(int state, std::string_view key, std::string_view elements,
             std::optional<int64_t> expiry = std::nullopt);
  /// Deletes every entry whose key starts with `prefix` (clearing a map).
  void DeletePrefix(int state, std::string_view prefix);

  bool empty() const { return entries_.empty(); }
  size_t size() const { return entries_.size(); }
  size_t bytes() const { return arena_.size(); }
  void Clear() {
    entries_.clear();
    arena_.clear();
  }
  const std::vector<Entry>& entries() const { return entries_; }
  std::string_view key(const Entry& e) const {
    return std::string_view(arena_.data() + e.key_offset, e.key_size);
  }
  std::string_view value(const Entry& e) const {
    return std::string_view(arena_.data() + e.value_offset, e.value_size);
  }

 private:
  void Add(Op op, int state, std::string_view key, std::string_view value,
           std::optional<int64_t> expiry);
  std::string arena_;
  std::vector<Entry> entries_;
};

class KeyedStateBackend {
 public:
  static arrow::Result<std::unique_ptr<KeyedStateBackend>> Make(
      KeyedStateBackendOptions options);
  virtual ~KeyedStateBackend() = default;

  /// "memory" or "rocksdb".
  virtual const char* kind() const = 0;
  const KeyedStateBackendOptions& options() const { return options_; }
  int64_t NowMs() const { return options_.clock(); }

  /// Declares a state and returns its id. Declaring a declared name again
  /// returns its id when the spec is the same and fails otherwise.
  arrow::Result<int> Declare(const StateSpec& spec);
  const StateSpec& spec(int state) const { return specs_[state]; }
  int num_states() const { return static_cast<int>(specs_.size()); }
  /// The id of a declared state, or -1.
  int Find(const std::string& name) const;

  /// Reads `keys` of `state` into `out` (values as stored, TTL header included).
  virtual arrow::Status MultiGet(int state, const std::vector<std::string_view>& keys,
                                 ValueBatch* out) = 0;
  /// Applies `batch` (in order).
  virtual arrow::Status Write(const StateWriteBatch& batch) = 0;
  /// The entries of map `state` under `storage_key` (fn(user key, stored value)).
  virtual arrow::Status ScanMap(
      int state, std::string_view storage_key,
      const std::function<arrow::Status(std::string_view, std::string_view)>& fn) = 0;

  /// Hands the state to a checkpoint (synchronous part; the writer persists).
  virtual arrow::Status Snapshot(SnapshotWriter* writer) = 0;
  /// Restores what `reader` holds for this instance's key groups. Call after
  /// declaring the states and before any other access.
  arrow::Status Restore(SnapshotReader* reader);
  /// Checkpoint `checkpoint_id` (and every earlier one) is complete: local
  /// checkpoint files may go.
  virtual arrow::Status NotifyCheckpointComplete(int64_t checkpoint_id) {
    return arrow::Status::OK();
  }

  /// Waits until background work (RocksDB flushes and compactions) is done
  /// (benchmarks and tests).
  virtual arrow::Status WaitForBackgroundWork() { return arrow::Status::OK(); }

  /// Logical size of the state (keys + values), bytes; RocksDB: an estimate.
  virtual arrow::Result<int64_t> ApproximateSizeBytes() = 0;
  /// Memory the backend holds now (memory: its tables; RocksDB: block cache,
  /// with the memtables charged to it, and table readers).
  virtual int64_t MemoryUsageBytes() = 0;

  /// Every entry of `state` in this instance's key groups:
  /// fn(storage key, user key (map states; empty otherwise), stored value).
  virtual arrow::Status ForEach(
      int state, const std::function<arrow::Status(std::string_view, std::string_view,
                                                   std::string_view)>& fn) = 0;

  /// Name of the keyed table that holds `state` in a snapshot of the memory
  /// backend, and of the file set of the RocksDB backend.
  static std::string TableName(const std::string& state) { return "kv/" + state; }
  static constexpr const char* kFileSetName = "rocksdb";

 protected:
  explicit KeyedStateBackend(KeyedStateBackendOptions options);
  /// A state was declared (RocksDB creates its column family once open).
  virtual arrow::Status OnDeclare(int state) { return arrow::Status::OK(); }
  /// Restores the RocksDB file sets of the snapshot (the default iterates them).
  virtual arrow::Status RestoreFileSets(const std::vector<SnapshotReader::FileSet>& sets);
  /// A directory for restore scratch files (removed by the caller).
  virtual arrow::Result<std::string> MakeScratchDir();
  /// Writes one restored entry (value without TTL header; expiry if it had one).
  arrow::Status AddRestored(int state, std::string_view storage_key,
                            std::string_view user_key, std::string_view payload,
                            std::optional<int64_t> expiry, StateWriteBatch* batch);

  /// Context for error messages: "state 'name' of operator 'op' (instance i)".
  std::string Describe(int state) const;

  KeyedStateBackendOptions options_;
  std::vector<StateSpec> specs_;
};

}  // namespace sabot
