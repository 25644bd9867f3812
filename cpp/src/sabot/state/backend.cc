#include "sabot/state/backend.h"

#include <arrow/array/builder_binary.h>

#include <chrono>
#include <filesystem>
#include <random>

#include "sabot/exec/operator.h"
#include "sabot/state/key_codec.h"
#include "sabot/state/memory_backend.h"
#include "sabot/state/rocksdb_backend.h"
#include "sabot/state/ttl.h"

namespace sabot {

const char* StateTypeName(StateType type) {
  switch (type) {
    case StateType::kValue:
      return "value";
    case StateType::kList:
      return "list";
    case StateType::kMap:
      return "map";
  }
  return "?";
}

int64_t WallClockMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

KeyedStateBackendOptions KeyedStateBackendOptions::FromContext(
    const OperatorContext& ctx) {
  KeyedStateBackendOptions o;
  if (ctx.state) {
    o.backend = ctx.state->backend;
    o.local_dir = ctx.state->local_dir;
    o.rocksdb_memory_bytes = ctx.state->rocksdb_memory_bytes;
  }
  o.operator_name = ctx.operator_name;
  o.instance_index = ctx.instance_index;
  o.max_parallelism = ctx.max_parallelism;
  o.key_groups = ctx.key_groups.empty()
                     ? KeyGroupRange::ForInstance(ctx.instance_index, ctx.parallelism,
                                                  ctx.max_parallelism)
                     : ctx.key_groups;
  o.pool = ctx.pool;
  return o;
}

// --- ValueBatch / StateWriteBatch ---------------------------------------------

void ValueBatch::Reset(size_t n) {
  bytes_.clear();
  ranges_.assign(n, {0, kAbsent});
}

void ValueBatch::Set(size_t i, std::string_view value) {
  ranges_[i] = {bytes_.size(), value.size()};
  bytes_.append(value);
}

void StateWriteBatch::Add(Op op, int state, std::string_view key, std::string_view value,
                          std::optional<int64_t> expiry) {
  Entry e{op, state, arena_.size(), key.size(), 0, 0};
  arena_.append(key);
  e.value_offset = arena_.size();
  if (expiry) AppendExpiry(*expiry, &arena_);
  arena_.append(value);
  e.value_size = arena_.size() - e.value_offset;
  entries_.push_back(e);
}

void StateWriteBatch::Put(int state, std::string_view key, std::string_view value,
                          std::optional<int64_t> expiry) {
  Add(Op::kPut, state, key, value, expiry);
}
void StateWriteBatch::Delete(int state, std::string_view key) {
  Add(Op::kDelete, state, key, {}, std::nullopt);
}
void StateWriteBatch::Merge(int state, std::string_view key, std::string_view elements,
                            std::optional<int64_t> expiry) {
  Add(Op::kMerge, state, key, elements, expiry);
}
void StateWriteBatch::DeletePrefix(int state, std::string_view prefix) {
  Add(Op::kDeletePrefix, state, prefix, {}, std::nullopt);
}

// --- KeyedStateBackend ----------------------------------------------------------

KeyedStateBackend::KeyedStateBackend(KeyedStateBackendOptions options)
    : options_(std::move(options)) {
  if (!options_.clock) options_.clock = WallClockMs;
}

arrow::Result<std::unique_ptr<KeyedStateBackend>> KeyedStateBackend::Make(
    KeyedStateBackendOptions options) {
  if (options.max_parallelism < 1 || options.max_parallelism > kMaxKeyGroups) {
    return arrow::Status::Invalid(options.operator_name, ": keyed state supports 1 to ",
                                  kMaxKeyGroups, " key groups (max_parallelism), not ",
                                  options.max_parallelism);
  }
  if (options.backend == "memory") return MakeMemoryBackend(std::move(options));
  if (options.backend == "rocksdb") return MakeRocksDbBackend(std::move(options));
  return arrow::Status::Invalid(options.operator_name, ": unknown state backend '",
                                options.backend, "' (memory or rocksdb)");
}

std::string KeyedStateBackend::Describe(int state) const {
  return "state '" + specs_[state].name + "' of operator '" + options_.operator_name +
         "' (instance " + std::to_string(options_.instance_index + 1) + ")";
}

int KeyedStateBackend::Find(const std::string& name) const {
  for (size_t i = 0; i < specs_.size(); ++i) {
    if (specs_[i].name == name) return static_cast<int>(i);
  }
  return -1;
}

arrow::Result<int> KeyedStateBackend::Declare(const StateSpec& spec) {
  if (spec.name.empty()) {
    return arrow::Status::Invalid(options_.operator_name, ": a state needs a name");
  }
  for (unsigned char c : spec.name) {
    if (c < 0x20 || c == 0x7f) {
      return arrow::Status::Invalid(options_.operator_name,
                                    ": state names cannot hold control characters");
    }
  }
  if (spec.name == "default") {
    return arrow::Status::Invalid(options_.operator_name,
                                  ": 'default' is reserved, choose another state name");
  }
  if (spec.ttl.ttl_ms < 0) {
    return arrow::Status::Invalid(options_.operator_name, ": state '", spec.name,
                                  "' has a negative TTL");
  }
  int existing = Find(spec.name);
  if (existing >= 0) {
    const StateSpec& old = specs_[existing];
    if (old.type != spec.type || !(old.ttl == spec.ttl)) {
      return arrow::Status::Invalid(options_.operator_name, ": state '", spec.name,
                                    "' declared twice with different types or TTL (",
                                    StateTypeName(old.type), ", ",
                                    StateTypeName(spec.type), ")");
    }
    return existing;
  }
  specs_.push_back(spec);
  const int id = static_cast<int>(specs_.size()) - 1;
  auto st = OnDeclare(id);
  if (!st.ok()) {
    specs_.pop_back();
    return st;
  }
  return id;
}

arrow::Result<std::string> KeyedStateBackend::MakeScratchDir() {
  std::error_code ec;
  std::filesystem::path parent = options_.local_dir.empty()
                                     ? std::filesystem::temp_directory_path(ec)
                                     : std::filesystem::path(options_.local_dir);
  std::random_device rd;
  auto dir = parent / ("sabot-restore-" + std::to_string(rd()) + std::to_string(rd()));
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    return arrow::Status::IOError(options_.operator_name,
                                  ": cannot create restore directory '", dir.string(),
                                  "': ", ec.message());
  }
  return dir.string();
}

arrow::Status KeyedStateBackend::AddRestored(int state, std::string_view storage_key,
                                             std::string_view user_key,
                                             std::string_view payload,
                                             std::optional<int64_t> expiry,
                                             StateWriteBatch* batch) {
  const StateSpec& spec = specs_[state];
  if (storage_key.size() < kKeyGroupPrefixBytes ||
      !options_.key_groups.Contains(KeyGroupOfStorageKey(storage_key))) {
    return arrow::Status::Invalid(Describe(state), ": restored key outside key groups [",
                                  options_.key_groups.first, ", ",
                                  options_.key_groups.last, "]");
  }
  const int64_t now = NowMs();
  std::optional<int64_t> stored_expiry;
  if (spec.ttl.enabled()) {
    stored_expiry = expiry ? *expiry : now + spec.ttl.ttl_ms;
  }
  if (expiry && IsExpired(*expiry, now)) return arrow::Status::OK();
  if (spec.type == StateType::kMap) {
    batch->Put(state, MapEntryKey(storage_key, user_key), payload, stored_expiry);
  } else {
    batch->Put(state, storage_key, payload, stored_expiry);
  }
  if (batch->bytes() >= (8 << 20)) {
    ARROW_RETURN_NOT_OK(Write(*batch));
    batch->Clear();
  }
  return arrow::Status::OK();
}

arrow::Status KeyedStateBackend::RestoreFileSets(
    const std::vector<SnapshotReader::FileSet>& sets) {
  StateWriteBatch batch;
  for (const auto& set : sets) {
    ARROW_RETURN_NOT_OK(IterateRocksDbCheckpoint(
        set.dir, options_.key_groups,
        [&](const StateSpec& source, std::string_view storage_key,
            std::string_view user_key, std::string_view payload,
            std::optional<int64_t> expiry) -> arrow::Status {
          const int state = Find(source.name);
          if (state < 0) return arrow::Status::OK();  // no longer declared
          if (specs_[state].type != source.type) {
            return arrow::Status::Invalid(
                Describe(state), " is a ", StateTypeName(specs_[state].type),
                " state but the checkpoint holds a ", StateTypeName(source.type),
                " state of that name");
          }
          return AddRestored(state, storage_key, user_key, payload, expiry, &batch);
        }));
  }
  if (!batch.empty()) ARROW_RETURN_NOT_OK(Write(batch));
  return arrow::Status::OK();
}

namespace {

arrow::Status CheckKeyedTable(const arrow::RecordBatch& batch, const std::string& table) {
  auto want = arrow::schema({arrow::field("key", arrow::binary()),
                             arrow::field("user_key", arrow::binary()),
                             arrow::field("value", arrow::binary()),
                             arrow::field("expires_ms", arrow::int64())});
  if (!batch.schema()->Equals(*want, false)) {
    return arrow::Status::Invalid("keyed state table '", table, "' has schema (",
                                  batch.schema()->ToString(false), "), expected (",
                                  want->ToString(false), ")");
  }
  return arrow::Status::OK();
}

}  // namespace

arrow::Status KeyedStateBackend::Restore(SnapshotReader* reader) {
  if (!reader) return arrow::Status::OK();
  ARROW_ASSIGN_OR_RAISE(std::string scratch, MakeScratchDir());
  struct RemoveDir {
    std::string dir;
    ~RemoveDir() {
      std::error_code ec;
      std::filesystem::remove_all(dir, ec);
    }
  } remove{scratch};
  auto restore = [&]() -> arrow::Status {
    ARROW_ASSIGN_OR_RAISE(auto sets, reader->ReadFiles(kFileSetName, scratch));
    if (!sets.empty()) ARROW_RETURN_NOT_OK(RestoreFileSets(sets));
    StateWriteBatch batch;
    for (int state = 0; state < num_states(); ++state) {
      const std::string table = TableName(specs_[state].name);
      ARROW_ASSIGN_OR_RAISE(auto batches, reader->ReadKeyed(table));
      for (const auto& b : batches) {
        ARROW_RETURN_NOT_OK(CheckKeyedTable(*b, table));
        const auto& keys = static_cast<const arrow::BinaryArray&>(*b->column(0));
        const auto& user_keys = static_cast<const arrow::BinaryArray&>(*b->column(1));
        const auto& values = static_cast<const arrow::BinaryArray&>(*b->column(2));
        const auto& expires = static_cast<const arrow::Int64Array&>(*b->column(3));
        for (int64_t i = 0; i < b->num_rows(); ++i) {
          std::optional<int64_t> expiry;
          if (expires.IsValid(i)) expiry = expires.Value(i);
          ARROW_RETURN_NOT_OK(AddRestored(state, keys.GetView(i), user_keys.GetView(i),
                                          values.GetView(i), expiry, &batch));
        }
      }
    }
    if (!batch.empty()) ARROW_RETURN_NOT_OK(Write(batch));
    return arrow::Status::OK();
  };
  auto st = restore();
  if (!st.ok()) {
    return st.WithMessage(options_.operator_name, " (instance ",
                          options_.instance_index + 1, "): restoring keyed state of ",
                          "checkpoint ", reader->checkpoint_id(),
                          " failed: ", st.message());
  }
  return arrow::Status::OK();
}

}  // namespace sabot
