#include "sabot/state/rocksdb_backend.h"

#include <rocksdb/cache.h>
#include <rocksdb/compaction_filter.h>
#include <rocksdb/convenience.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/merge_operator.h>
#include <rocksdb/table.h>
#include <rocksdb/utilities/checkpoint.h>
#include <rocksdb/write_batch.h>
#include <rocksdb/write_buffer_manager.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <thread>

#include "sabot/state/key_codec.h"
#include "sabot/state/ttl.h"

namespace fs = std::filesystem;

namespace sabot {

namespace {

constexpr const char* kStatesFile = "SABOT_STATES";
constexpr const char* kSstNamesFile = "SABOT_SST_NAMES";

arrow::Status FromRocks(const rocksdb::Status& st, const std::string& context) {
  if (st.ok()) return arrow::Status::OK();
  if (st.IsIOError() || st.IsNoSpace()) {
    return arrow::Status::IOError(context, ": RocksDB: ", st.ToString());
  }
  return arrow::Status::UnknownError(context, ": RocksDB: ", st.ToString());
}

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// The smallest key greater than every key starting with `prefix` ("" if none).
std::string PrefixEnd(std::string prefix) {
  while (!prefix.empty()) {
    auto& last = reinterpret_cast<unsigned char&>(prefix.back());
    if (last != 0xff) {
      ++last;
      return prefix;
    }
    prefix.pop_back();
  }
  return prefix;
}

std::string KeyGroupKey(int key_group) {
  std::string out;
  AppendKeyGroupPrefix(key_group, &out);
  return out;
}

/// Drops entries of TTL states whose expiry passed (time taken once per
/// compaction). Merge operands are kept: the merge result is filtered later.
class TtlCompactionFilter : public rocksdb::CompactionFilter {
 public:
  explicit TtlCompactionFilter(int64_t now) : now_(now) {}
  Decision FilterV2(int, const rocksdb::Slice&, ValueType type,
                    const rocksdb::Slice& value, std::string*,
                    std::string*) const override {
    if (type != ValueType::kValue || value.size() < kTtlHeaderBytes) {
      return Decision::kKeep;
    }
    return IsExpired(ReadExpiry(std::string_view(value.data(), value.size())), now_)
               ? Decision::kRemove
               : Decision::kKeep;
  }
  const char* Name() const override { return "sabot.TtlCompactionFilter"; }

 private:
  int64_t now_;
};

class TtlCompactionFilterFactory : public rocksdb::CompactionFilterFactory {
 public:
  explicit TtlCompactionFilterFactory(StateClock clock) : clock_(std::move(clock)) {}
  std::unique_ptr<rocksdb::CompactionFilter> CreateCompactionFilter(
      const rocksdb::CompactionFilter::Context&) override {
    return std::make_unique<TtlCompactionFilter>(clock_());
  }
  const char* Name() const override { return "sabot.TtlCompactionFilterFactory"; }

 private:
  StateClock clock_;
};

/// List append (state/ttl.h MergeListValue).
class ListMergeOperator : public rocksdb::MergeOperator {
 public:
  explicit ListMergeOperator(int64_t ttl_ms) : ttl_ms_(ttl_ms) {}
  bool FullMergeV2(const MergeOperationInput& in,
                   MergeOperationOutput* out) const override {
    std::string acc, next;
    bool has = in.existing_value != nullptr;
    if (has) acc.assign(in.existing_value->data(), in.existing_value->size());
    for (const auto& operand : in.operand_list) {
      std::string_view existing(acc);
      MergeListValue(has ? &existing : nullptr,
                     std::string_view(operand.data(), operand.size()), ttl_ms_, &next);
      acc.swap(next);
      has = true;
    }
    out->new_value = std::move(acc);
    return true;
  }
  const char* Name() const override { return "sabot.ListAppend"; }

 private:
  int64_t ttl_ms_;
};

std::string SpecsToText(const std::vector<StateSpec>& specs) {
  std::ostringstream out;
  for (const auto& s : specs) {
    out << static_cast<int>(s.type) << '\t' << s.ttl.ttl_ms << '\t'
        << static_cast<int>(s.ttl.update) << '\t' << s.name << '\n';
  }
  return out.str();
}

arrow::Result<std::string> ReadText(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return arrow::Status::IOError("cannot read '", path.string(), "'");
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

arrow::Status WriteText(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out) return arrow::Status::IOError("cannot write '", path.string(), "'");
  return arrow::Status::OK();
}

arrow::Result<std::map<std::string, StateSpec>> ReadSpecs(const fs::path& dir) {
  ARROW_ASSIGN_OR_RAISE(std::string text, ReadText(dir / kStatesFile));
  std::map<std::string, StateSpec> out;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.empty()) continue;
    std::istringstream fields(line);
    int type, update;
    int64_t ttl;
    char tab;
    StateSpec spec;
    if (!(fields >> type >> ttl >> update) || !fields.get(tab) ||
        !std::getline(fields, spec.name) || type < 0 || type > 2) {
      return arrow::Status::Invalid("corrupt '", (dir / kStatesFile).string(),
                                    "' line: ", line);
    }
    spec.type = static_cast<StateType>(type);
    spec.ttl.ttl_ms = ttl;
    spec.ttl.update = static_cast<StateTtlConfig::Update>(update);
    out[spec.name] = spec;
  }
  return out;
}

// stored name -> RocksDB name
arrow::Result<std::map<std::string, std::string>> ReadSstNames(const fs::path& dir) {
  ARROW_ASSIGN_OR_RAISE(std::string text, ReadText(dir / kSstNamesFile));
  std::map<std::string, std::string> out;
  std::istringstream lines(text);
  std::string stored, name;
  while (lines >> stored >> name) out[stored] = name;
  return out;
}

rocksdb::ColumnFamilyOptions ReadOnlyCfOptions(const StateSpec& spec) {
  rocksdb::ColumnFamilyOptions cf;
  if (spec.type == StateType::kList) {
    cf.merge_operator = std::make_shared<ListMergeOperator>(spec.ttl.ttl_ms);
  }
  return cf;
}

arrow::Result<std::string> RandomHex() {
  std::random_device rd;
  std::ostringstream out;
  out << std::hex << rd() << rd();
  return out.str();
}

class RocksDbBackend : public KeyedStateBackend {
 public:
  explicit RocksDbBackend(KeyedStateBackendOptions options)
      : KeyedStateBackend(std::move(options)) {}

  ~RocksDbBackend() override {
    CloseDb();
    std::error_code ec;
    if (!work_dir_.empty()) fs::remove_all(work_dir_, ec);
  }

  arrow::Status Init() {
    if (options_.rocksdb_compaction != "universal" &&
        options_.rocksdb_compaction != "level") {
      return arrow::Status::Invalid(
          options_.operator_name,
          ": rocksdb_compaction must be 'universal' or 'level', not '",
          options_.rocksdb_compaction, "'");
    }
    ARROW_ASSIGN_OR_RAISE(session_, RandomHex());
    std::error_code ec;
    fs::path parent = options_.local_dir.empty() ? fs::temp_directory_path(ec)
                                                 : fs::path(options_.local_dir);
    std::string op;
    for (char c : options_.operator_name) op.push_back(std::isalnum(c) ? c : '_');
    work_dir_ = parent / ("sabot-state-" + op + "-" +
                          std::to_string(options_.instance_index) + "-" + session_);
    fs::create_directories(work_dir_ / "db", ec);
    if (!ec) fs::create_directories(work_dir_ / "checkpoints", ec);
    if (ec) {
      return arrow::Status::IOError(options_.operator_name,
                                    ": cannot create the RocksDB state directory '",
                                    work_dir_.string(), "': ", ec.message());
    }
    const int64_t budget = std::max<int64_t>(options_.rocksdb_memory_bytes, 1 << 20);
    rocksdb::LRUCacheOptions cache_options;
    cache_options.capacity = static_cast<size_t>(budget);
    cache_options.num_shard_bits = budget < (64 << 20) ? 0 : 4;
    cache_options.high_pri_pool_ratio = 0.1;
    cache_ = rocksdb::NewLRUCache(cache_options);
    write_buffers_ = std::make_shared<rocksdb::WriteBufferManager>(
        static_cast<size_t>(budget / 2), cache_);
    write_buffer_size_ = static_cast<size_t>(
        std::clamp<int64_t>(budget / 8, int64_t{1} << 20, int64_t{64} << 20));
    rocksdb::BlockBasedTableOptions table;
    table.block_cache = cache_;
    table.cache_index_and_filter_blocks = true;
    table.cache_index_and_filter_blocks_with_high_priority = true;
    table.pin_l0_filter_and_index_blocks_in_cache = false;
    table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
    // Partitioned index and filters: with a small cache only the partitions a
    // lookup needs are loaded, not a whole file's filter.
    table.index_type = rocksdb::BlockBasedTableOptions::kTwoLevelIndexSearch;
    table.partition_filters = true;
    table.metadata_block_size = 4096;
    table.pin_top_level_index_and_filter = true;
    table.block_size = 4 * 1024;
    table_factory_.reset(rocksdb::NewBlockBasedTableFactory(table));
    compression_ = rocksdb::kSnappyCompression;
    for (auto c : rocksdb::GetSupportedCompressions()) {
      if (c == rocksdb::kLZ4Compression) compression_ = c;
    }
    write_options_.disableWAL = true;
    return arrow::Status::OK();
  }

  const char* kind() const override { return "rocksdb"; }

  arrow::Status MultiGet(int state, const std::vector<std::string_view>& keys,
                         ValueBatch* out) override {
    ARROW_RETURN_NOT_OK(EnsureOpen());
    out->Reset(keys.size());
    constexpr size_t kChunk = 4096;
    std::vector<rocksdb::Slice> slices;
    std::vector<rocksdb::PinnableSlice> values(std::min(keys.size(), kChunk));
    std::vector<rocksdb::Status> statuses(values.size());
    for (size_t begin = 0; begin < keys.size(); begin += kChunk) {
      const size_t n = std::min(kChunk, keys.size() - begin);
      slices.clear();
      for (size_t i = 0; i < n; ++i) {
        slices.emplace_back(keys[begin + i].data(), keys[begin + i].size());
      }
      db_->MultiGet(read_options_, handles_[state], n, slices.data(), values.data(),
                    statuses.data(), /*sorted_input=*/false);
      for (size_t i = 0; i < n; ++i) {
        if (statuses[i].ok()) {
          out->Set(begin + i, std::string_view(values[i].data(), values[i].size()));
        } else if (!statuses[i].IsNotFound()) {
          return FromRocks(statuses[i], Describe(state) + ": read");
        }
        values[i].Reset();
      }
    }
    return arrow::Status::OK();
  }

  arrow::Status Write(const StateWriteBatch& batch) override {
    ARROW_RETURN_NOT_OK(EnsureOpen());
    rocksdb::WriteBatch wb(batch.bytes() + 64 * batch.size());
    for (const auto& e : batch.entries()) {
      auto key = batch.key(e);
      auto value = batch.value(e);
      rocksdb::Slice k(key.data(), key.size()), v(value.data(), value.size());
      rocksdb::Status st;
      switch (e.op) {
        case StateWriteBatch::Op::kPut:
          st = wb.Put(handles_[e.state], k, v);
          break;
        case StateWriteBatch::Op::kDelete:
          st = wb.Delete(handles_[e.state], k);
          break;
        case StateWriteBatch::Op::kMerge:
          if (specs_[e.state].type != StateType::kList) {
            return arrow::Status::Invalid(Describe(e.state), ": append on a ",
                                          StateTypeName(specs_[e.state].type), " state");
          }
          st = wb.Merge(handles_[e.state], k, v);
          break;
        case StateWriteBatch::Op::kDeletePrefix: {
          std::string end = PrefixEnd(std::string(key));
          if (end.empty()) {
            return arrow::Status::Invalid(
                Describe(e.state), ": cannot delete a prefix of ", "only 0xff bytes");
          }
          st = wb.DeleteRange(handles_[e.state], k, end);
          break;
        }
      }
      if (!st.ok()) return FromRocks(st, Describe(e.state) + ": write");
    }
    return FromRocks(db_->Write(write_options_, &wb),
                     "state of operator '" + options_.operator_name + "': write");
  }

  arrow::Status ScanMap(
      int state, std::string_view storage_key,
      const std::function<arrow::Status(std::string_view, std::string_view)>& fn)
      override {
    ARROW_RETURN_NOT_OK(EnsureOpen());
    const std::string prefix = MapEntryPrefix(storage_key);
    const std::string end = PrefixEnd(prefix);
    rocksdb::ReadOptions ro = read_options_;
    rocksdb::Slice upper(end);
    if (!end.empty()) ro.iterate_upper_bound = &upper;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, handles_[state]));
    for (it->Seek(prefix); it->Valid(); it->Next()) {
      auto key = it->key();
      if (key.size() < prefix.size() ||
          std::memcmp(key.data(), prefix.data(), prefix.size()))
        break;
      ARROW_RETURN_NOT_OK(
          fn(std::string_view(key.data() + prefix.size(), key.size() - prefix.size()),
             std::string_view(it->value().data(), it->value().size())));
    }
    return FromRocks(it->status(), Describe(state) + ": scan");
  }

  arrow::Status ForEach(
      int state, const std::function<arrow::Status(std::string_view, std::string_view,
                                                   std::string_view)>& fn) override {
    ARROW_RETURN_NOT_OK(EnsureOpen());
    return ScanRange(
        db_, handles_[state], specs_[state], options_.key_groups,
        [&](std::string_view storage_key, std::string_view user_key,
            std::string_view value) { return fn(storage_key, user_key, value); });
  }

  arrow::Status Snapshot(SnapshotWriter* writer) override {
    ARROW_RETURN_NOT_OK(EnsureOpen());
    const int64_t id = writer->checkpoint_id();
    const fs::path dir = work_dir_ / "checkpoints" / ("chk-" + std::to_string(id));
    const std::string context = options_.operator_name + " (instance " +
                                std::to_string(options_.instance_index + 1) +
                                "): RocksDB checkpoint " + std::to_string(id) + " in '" +
                                dir.string() + "'";
    std::error_code ec;
    fs::remove_all(dir, ec);
    rocksdb::Checkpoint* raw = nullptr;
    ARROW_RETURN_NOT_OK(FromRocks(rocksdb::Checkpoint::Create(db_, &raw), context));
    std::unique_ptr<rocksdb::Checkpoint> checkpoint(raw);
    ARROW_RETURN_NOT_OK(FromRocks(
        checkpoint->CreateCheckpoint(dir.string(), /*log_size_for_flush=*/0), context));
    std::vector<std::string> private_files, shared_files;
    std::string names;
    for (const auto& entry : fs::directory_iterator(dir, ec)) {
      const std::string name = entry.path().filename().string();
      if (!EndsWith(name, ".sst")) {
        private_files.push_back(name);
        continue;
      }
      auto it = sst_names_.find(name);
      if (it == sst_names_.end())
        it = sst_names_.emplace(name, session_ + "-" + name).first;
      fs::rename(dir / name, dir / it->second, ec);
      if (ec) {
        return arrow::Status::IOError(context, ": cannot rename '", name,
                                      "': ", ec.message());
      }
      shared_files.push_back(it->second);
      names += it->second + " " + name + "\n";
    }
    if (ec) return arrow::Status::IOError(context, ": ", ec.message());
    // SST files that left the database (compacted away) need no name any more.
    for (auto it = sst_names_.begin(); it != sst_names_.end();) {
      bool live = false;
      for (const auto& f : shared_files) live = live || f == it->second;
      it = live ? std::next(it) : sst_names_.erase(it);
    }
    std::vector<StateSpec> specs = specs_;
    for (const auto& [name, spec] : undeclared_) specs.push_back(spec);
    ARROW_RETURN_NOT_OK(WriteText(dir / kStatesFile, SpecsToText(specs)));
    ARROW_RETURN_NOT_OK(WriteText(dir / kSstNamesFile, names));
    private_files.push_back(kStatesFile);
    private_files.push_back(kSstNamesFile);
    std::sort(shared_files.begin(), shared_files.end());
    std::sort(private_files.begin(), private_files.end());
    pending_[id] = dir;
    return writer->AddFiles(kFileSetName, dir.string(), private_files, shared_files);
  }

  arrow::Status NotifyCheckpointComplete(int64_t checkpoint_id) override {
    for (auto it = pending_.begin();
         it != pending_.end() && it->first <= checkpoint_id;) {
      std::error_code ec;
      fs::remove_all(it->second, ec);
      it = pending_.erase(it);
    }
    return arrow::Status::OK();
  }

  arrow::Result<int64_t> ApproximateSizeBytes() override {
    ARROW_RETURN_NOT_OK(EnsureOpen());
    uint64_t total = 0;
    for (auto* handle : handles_) {
      uint64_t v = 0;
      if (db_->GetIntProperty(handle, "rocksdb.estimate-live-data-size", &v)) total += v;
      if (db_->GetIntProperty(handle, "rocksdb.cur-size-all-mem-tables", &v)) total += v;
    }
    return static_cast<int64_t>(total);
  }

  arrow::Status WaitForBackgroundWork() override {
    if (!db_) return arrow::Status::OK();
    ARROW_RETURN_NOT_OK(FromRocks(db_->Flush(rocksdb::FlushOptions(), handles_),
                                  options_.operator_name + ": flush"));
    // Done once nothing ran for a second ("compaction-pending" can stay set
    // when universal compaction finds nothing worth picking).
    int idle_polls = 0;
    while (idle_polls < 50) {
      uint64_t compactions = 0, flushes = 0;
      db_->GetIntProperty("rocksdb.num-running-compactions", &compactions);
      db_->GetIntProperty("rocksdb.num-running-flushes", &flushes);
      idle_polls = compactions + flushes == 0 ? idle_polls + 1 : 0;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return arrow::Status::OK();
  }

  int64_t MemoryUsageBytes() override {
    int64_t usage = cache_ ? static_cast<int64_t>(cache_->GetUsage()) : 0;
    return usage;
  }

  /// Total bytes of the live SST files (tests and benchmarks).
  int64_t SstBytes() {
    if (!db_) return 0;
    uint64_t total = 0, v = 0;
    for (auto* handle : handles_) {
      if (db_->GetIntProperty(handle, "rocksdb.total-sst-files-size", &v)) total += v;
    }
    return static_cast<int64_t>(total);
  }

 protected:
  arrow::Status OnDeclare(int state) override {
    if (!db_) return arrow::Status::OK();
    const StateSpec& spec = specs_[state];
    auto it = undeclared_handles_.find(spec.name);
    if (it != undeclared_handles_.end()) {
      const StateSpec& old = undeclared_.at(spec.name);
      if (old.type != spec.type || !(old.ttl == spec.ttl)) {
        return arrow::Status::Invalid(Describe(state),
                                      " was restored with another type or TTL");
      }
      handles_.push_back(it->second);
      undeclared_handles_.erase(it);
      undeclared_.erase(spec.name);
      return arrow::Status::OK();
    }
    rocksdb::ColumnFamilyHandle* handle = nullptr;
    ARROW_RETURN_NOT_OK(
        FromRocks(db_->CreateColumnFamily(CfOptions(spec), spec.name, &handle),
                  Describe(state) + ": create column family"));
    handles_.push_back(handle);
    return arrow::Status::OK();
  }

  arrow::Result<std::string> MakeScratchDir() override {
    std::random_device rd;
    fs::path dir = work_dir_ / ("restore-" + std::to_string(rd()));
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) {
      return arrow::Status::IOError(options_.operator_name, ": cannot create '",
                                    dir.string(), "': ", ec.message());
    }
    return dir.string();
  }

  arrow::Status RestoreFileSets(
      const std::vector<SnapshotReader::FileSet>& sets) override {
    if (!db_ && sets.size() == 1 &&
        sets[0].key_groups.first == options_.key_groups.first &&
        sets[0].key_groups.last == options_.key_groups.last) {
      ARROW_ASSIGN_OR_RAISE(bool opened, OpenFromCheckpoint(sets[0].dir));
      if (opened) return arrow::Status::OK();
    }
    ARROW_RETURN_NOT_OK(EnsureOpen());
    return KeyedStateBackend::RestoreFileSets(sets);
  }

 private:
  rocksdb::ColumnFamilyOptions CfOptions(const StateSpec& spec) const {
    rocksdb::ColumnFamilyOptions cf;
    cf.table_factory = table_factory_;
    cf.write_buffer_size = write_buffer_size_;
    cf.max_write_buffer_number = 2;
    cf.min_write_buffer_number_to_merge = 1;
    // Small SST files and levels sized from the bottom: a compaction rewrites
    // less, so incremental checkpoints share more files.
    cf.target_file_size_base = 16 << 20;
    cf.max_bytes_for_level_base = 128 << 20;
    cf.level_compaction_dynamic_level_bytes = true;
    // Upper levels are rewritten soon: compress only from L2 on.
    cf.compression_per_level = {rocksdb::kNoCompression,
                                rocksdb::kNoCompression,
                                compression_,
                                compression_,
                                compression_,
                                compression_,
                                compression_};
    cf.bottommost_compression = compression_;
    // A bloom filter over the memtable: lookups of absent keys (most lookups
    // of new keys) skip the skiplist search.
    cf.memtable_prefix_bloom_size_ratio = 0.05;
    cf.memtable_whole_key_filtering = true;
    if (options_.rocksdb_compaction == "universal") {
      cf.compaction_style = rocksdb::kCompactionStyleUniversal;
    }
    if (spec.type == StateType::kList) {
      cf.merge_operator = std::make_shared<ListMergeOperator>(spec.ttl.ttl_ms);
    }
    if (spec.ttl.enabled()) {
      cf.compaction_filter_factory =
          std::make_shared<TtlCompactionFilterFactory>(options_.clock);
    }
    return cf;
  }

  rocksdb::DBOptions DbOptions() const {
    rocksdb::DBOptions db;
    db.create_if_missing = true;
    db.create_missing_column_families = true;
    db.write_buffer_manager = write_buffers_;
    db.atomic_flush = true;  // column families flushed together (no WAL)
    db.max_background_jobs = 2;
    db.info_log_level = rocksdb::InfoLogLevel::WARN_LEVEL;
    db.keep_log_file_num = 2;
    db.max_log_file_size = 1 << 20;
    db.avoid_flush_during_shutdown = true;
    db.stats_dump_period_sec = 0;
    db.stats_persist_period_sec = 0;
    return db;
  }

  arrow::Status EnsureOpen() {
    if (db_) return arrow::Status::OK();
    const std::string path = (work_dir_ / "db").string();
    std::vector<std::string> existing;
    if (fs::exists(work_dir_ / "db" / "CURRENT")) {
      ARROW_RETURN_NOT_OK(FromRocks(
          rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), path, &existing),
          options_.operator_name + ": open state database '" + path + "'"));
    }
    std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
    descriptors.emplace_back(rocksdb::kDefaultColumnFamilyName, CfOptions(StateSpec{}));
    for (const auto& spec : specs_) descriptors.emplace_back(spec.name, CfOptions(spec));
    std::vector<std::string> extra;
    for (const auto& name : existing) {
      if (name == rocksdb::kDefaultColumnFamilyName || Find(name) >= 0) continue;
      auto spec = undeclared_.find(name);
      if (spec == undeclared_.end()) {
        return arrow::Status::Invalid(options_.operator_name, ": state database '", path,
                                      "' has column family '", name,
                                      "' with no recorded spec");
      }
      descriptors.emplace_back(name, CfOptions(spec->second));
      extra.push_back(name);
    }
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    rocksdb::DB* db = nullptr;
    ARROW_RETURN_NOT_OK(
        FromRocks(rocksdb::DB::Open(DbOptions(), path, descriptors, &handles, &db),
                  options_.operator_name + ": open state database '" + path + "'"));
    db_ = db;
    default_handle_ = handles[0];
    handles_.assign(handles.begin() + 1, handles.begin() + 1 + specs_.size());
    for (size_t i = 0; i < extra.size(); ++i) {
      undeclared_handles_[extra[i]] = handles[1 + specs_.size() + i];
    }
    // States no longer declared and absent from the database are dropped.
    for (auto it = undeclared_.begin(); it != undeclared_.end();) {
      it = undeclared_handles_.count(it->first) ? std::next(it) : undeclared_.erase(it);
    }
    return arrow::Status::OK();
  }

  // Opens the database from one checkpoint of exactly this instance's key
  // groups. False when the checkpoint's states do not match the declared ones
  // (the caller then scans it instead).
  arrow::Result<bool> OpenFromCheckpoint(const std::string& dir_name) {
    const fs::path dir(dir_name);
    ARROW_ASSIGN_OR_RAISE(auto specs, ReadSpecs(dir));
    for (const auto& spec : specs_) {
      auto it = specs.find(spec.name);
      if (it != specs.end() &&
          (it->second.type != spec.type || !(it->second.ttl == spec.ttl))) {
        return false;
      }
    }
    ARROW_ASSIGN_OR_RAISE(auto names, ReadSstNames(dir));
    const fs::path db = work_dir_ / "db";
    std::error_code ec;
    fs::remove_all(db, ec);
    fs::create_directories(db, ec);
    for (const auto& entry : fs::directory_iterator(dir, ec)) {
      std::string name = entry.path().filename().string();
      if (name == kStatesFile || name == kSstNamesFile) continue;
      std::string target = name;
      auto it = names.find(name);
      if (it != names.end()) {
        target = it->second;
        sst_names_[target] = name;  // keep the stored name: shared again
      }
      fs::rename(entry.path(), db / target, ec);
      if (ec) {
        ec.clear();
        fs::copy_file(entry.path(), db / target, fs::copy_options::overwrite_existing,
                      ec);
      }
      if (ec) {
        return arrow::Status::IOError(options_.operator_name, ": cannot move '",
                                      entry.path().string(), "' into '", db.string(),
                                      "': ", ec.message());
      }
    }
    if (ec) return arrow::Status::IOError(options_.operator_name, ": ", ec.message());
    for (const auto& [name, spec] : specs) {
      if (Find(name) < 0) undeclared_[name] = spec;
    }
    ARROW_RETURN_NOT_OK(EnsureOpen());
    return true;
  }

 public:
  // Scans `handle` over the key groups of `range`.
  static arrow::Status ScanRange(
      rocksdb::DB* db, rocksdb::ColumnFamilyHandle* handle, const StateSpec& spec,
      const KeyGroupRange& range,
      const std::function<arrow::Status(std::string_view, std::string_view,
                                        std::string_view)>& fn) {
    if (range.empty()) return arrow::Status::OK();
    const std::string begin = KeyGroupKey(range.first);
    const std::string end = range.last + 1 < 65536 ? KeyGroupKey(range.last + 1) : "";
    rocksdb::ReadOptions ro;
    ro.fill_cache = false;
    rocksdb::Slice upper(end);
    if (!end.empty()) ro.iterate_upper_bound = &upper;
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(ro, handle));
    std::string storage_key;
    for (it->Seek(begin); it->Valid(); it->Next()) {
      std::string_view key(it->key().data(), it->key().size());
      std::string_view value(it->value().data(), it->value().size());
      if (spec.type == StateType::kMap) {
        std::string_view user_key;
        ARROW_RETURN_NOT_OK(SplitMapEntryKey(key, &storage_key, &user_key));
        ARROW_RETURN_NOT_OK(fn(storage_key, user_key, value));
      } else {
        ARROW_RETURN_NOT_OK(fn(key, {}, value));
      }
    }
    return FromRocks(it->status(), "scan of state '" + spec.name + "'");
  }

 private:
  void CloseDb() {
    if (!db_) return;
    for (auto* h : handles_) db_->DestroyColumnFamilyHandle(h);
    for (auto& [name, h] : undeclared_handles_) db_->DestroyColumnFamilyHandle(h);
    db_->DestroyColumnFamilyHandle(default_handle_);
    handles_.clear();
    undeclared_handles_.clear();
    db_->Close();
    delete db_;
    db_ = nullptr;
  }

  std::string session_;
  fs::path work_dir_;
  std::shared_ptr<rocksdb::Cache> cache_;
  std::shared_ptr<rocksdb::WriteBufferManager> write_buffers_;
  std::shared_ptr<rocksdb::TableFactory> table_factory_;
  size_t write_buffer_size_ = 4 << 20;
  rocksdb::CompressionType compression_ = rocksdb::kSnappyCompression;
  rocksdb::WriteOptions write_options_;
  rocksdb::ReadOptions read_options_;
  rocksdb::DB* db_ = nullptr;
  rocksdb::ColumnFamilyHandle* default_handle_ = nullptr;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;  // by state id
  // Column families restored from a checkpoint that no state declared (yet).
  std::map<std::string, StateSpec> undeclared_;
  std::map<std::string, rocksdb::ColumnFamilyHandle*> undeclared_handles_;
  // RocksDB SST name -> name in checkpoints
  std::map<std::string, std::string> sst_names_;
  // checkpoint id -> local checkpoint directory (until complete)
  std::map<int64_t, fs::path> pending_;
};

}  // namespace

arrow::Result<std::unique_ptr<KeyedStateBackend>> MakeRocksDbBackend(
    KeyedStateBackendOptions options) {
  auto backend = std::make_unique<RocksDbBackend>(std::move(options));
  ARROW_RETURN_NOT_OK(backend->Init());
  return backend;
}

arrow::Status IterateRocksDbCheckpoint(
    const std::string& dir_name, const KeyGroupRange& range,
    const std::function<arrow::Status(const StateSpec&, std::string_view,
                                      std::string_view, std::string_view,
                                      std::optional<int64_t>)>& fn) {
  const fs::path dir(dir_name);
  ARROW_ASSIGN_OR_RAISE(auto specs, ReadSpecs(dir));
  ARROW_ASSIGN_OR_RAISE(auto names, ReadSstNames(dir));
  std::error_code ec;
  for (const auto& [stored, name] : names) {
    if (fs::exists(dir / stored)) fs::rename(dir / stored, dir / name, ec);
    if (ec) {
      return arrow::Status::IOError("cannot rename '", (dir / stored).string(),
                                    "': ", ec.message());
    }
  }
  std::vector<std::string> families;
  ARROW_RETURN_NOT_OK(FromRocks(
      rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), dir.string(), &families),
      "RocksDB state checkpoint '" + dir.string() + "'"));
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  std::vector<const StateSpec*> family_specs;
  for (const auto& name : families) {
    if (name == rocksdb::kDefaultColumnFamilyName) {
      descriptors.emplace_back(name, rocksdb::ColumnFamilyOptions());
      family_specs.push_back(nullptr);
      continue;
    }
    auto it = specs.find(name);
    if (it == specs.end()) {
      return arrow::Status::Invalid("RocksDB state checkpoint '", dir.string(),
                                    "' has column family '", name,
                                    "' that its SABOT_STATES does not describe");
    }
    descriptors.emplace_back(name, ReadOnlyCfOptions(it->second));
    family_specs.push_back(&it->second);
  }
  rocksdb::DBOptions db_options;
  db_options.info_log_level = rocksdb::InfoLogLevel::WARN_LEVEL;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  ARROW_RETURN_NOT_OK(FromRocks(
      rocksdb::DB::OpenForReadOnly(db_options, dir.string(), descriptors, &handles, &raw),
      "RocksDB state checkpoint '" + dir.string() + "'"));
  std::unique_ptr<rocksdb::DB> db(raw);
  arrow::Status st;
  for (size_t i = 0; i < handles.size() && st.ok(); ++i) {
    if (!family_specs[i]) continue;
    const StateSpec& spec = *family_specs[i];
    st = RocksDbBackend::ScanRange(
        db.get(), handles[i], spec, range,
        [&](std::string_view storage_key, std::string_view user_key,
            std::string_view value) -> arrow::Status {
          std::optional<int64_t> expiry;
          if (spec.ttl.enabled()) {
            if (value.size() < kTtlHeaderBytes) {
              return arrow::Status::Invalid("corrupt value of state '", spec.name,
                                            "' in '", dir.string(), "'");
            }
            expiry = ReadExpiry(value);
            value = value.substr(kTtlHeaderBytes);
          }
          return fn(spec, storage_key, user_key, value, expiry);
        });
  }
  for (auto* h : handles) db->DestroyColumnFamilyHandle(h);
  db->Close();
  return st;
}

}  // namespace sabot
