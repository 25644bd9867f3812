// Checkpoint benchmark of the RocksDB keyed state backend: about 1 GB of state,
// a full checkpoint, then an incremental one after updating a few percent of
// the keys, and a restore. Skipped unless SABOT_STATE_BENCH=1 (bench/state_bench.py
// runs it and prints the figures).
//
// Checkpoint storage is modelled by DirectoryStore: private files are copied
// per checkpoint, shared (SST) files once, as the checkpoint storage does.
#include <arrow/api.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <random>
#include <set>

#include "sabot/state/backend.h"
#include "sabot/state/key_codec.h"
#include "sabot/state/keyed_state.h"

namespace fs = std::filesystem;

namespace sabot {
namespace {

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

int64_t EnvInt(const char* name, int64_t fallback) {
  const char* v = std::getenv(name);
  return v ? std::atoll(v) : fallback;
}

/// A checkpoint directory: <root>/shared/<sst> stored once, <root>/chk-<id>/
/// the private files of each checkpoint.
class DirectoryStore : public SnapshotWriter {
 public:
  DirectoryStore(fs::path root, int64_t id) : root_(std::move(root)), id_(id) {}
  int64_t checkpoint_id() const override { return id_; }
  arrow::Status WriteKeyed(const std::string&, std::shared_ptr<arrow::RecordBatch>,
                           const std::vector<std::string>&) override {
    return arrow::Status::NotImplemented("keyed tables");
  }
  arrow::Status WriteKeyedWithGroups(const std::string&,
                                     std::shared_ptr<arrow::RecordBatch>,
                                     std::shared_ptr<arrow::Int32Array>) override {
    return arrow::Status::NotImplemented("keyed tables");
  }
  arrow::Status WriteOperatorState(const std::string&,
                                   std::shared_ptr<arrow::RecordBatch>) override {
    return arrow::Status::NotImplemented("operator state");
  }
  arrow::Status AddFiles(const std::string&, const std::string& dir,
                         const std::vector<std::string>& private_files,
                         const std::vector<std::string>& shared_files) override {
    auto start = std::chrono::steady_clock::now();
    fs::create_directories(root_ / "shared");
    fs::create_directories(Private());
    for (const auto& f : private_files) {
      fs::copy_file(fs::path(dir) / f, Private() / f);
      private_bytes += static_cast<int64_t>(fs::file_size(Private() / f));
    }
    for (const auto& f : shared_files) {
      const auto size = static_cast<int64_t>(fs::file_size(fs::path(dir) / f));
      total_bytes += size;
      ++files;
      if (fs::exists(root_ / "shared" / f)) continue;
      fs::copy_file(fs::path(dir) / f, root_ / "shared" / f);
      new_bytes += size;
      ++new_files;
    }
    shared = shared_files;
    private_names = private_files;
    copy_seconds = Seconds(start);
    return arrow::Status::OK();
  }
  fs::path Private() const { return root_ / ("chk-" + std::to_string(id_)); }
  /// The checkpoint as one directory again (hard links), as a restore sees it.
  std::string Materialize(const fs::path& into) const {
    fs::create_directories(into);
    for (const auto& f : private_names) fs::create_hard_link(Private() / f, into / f);
    for (const auto& f : shared) fs::create_hard_link(root_ / "shared" / f, into / f);
    return into.string();
  }

  int64_t total_bytes = 0, new_bytes = 0, private_bytes = 0, files = 0, new_files = 0;
  double copy_seconds = 0;
  std::vector<std::string> shared, private_names;

 private:
  fs::path root_;
  int64_t id_;
};

/// Restores from one DirectoryStore checkpoint (one file set, range [0, 127]).
class DirectoryReader : public SnapshotReader {
 public:
  explicit DirectoryReader(const DirectoryStore* store) : store_(store) {}
  int64_t checkpoint_id() const override { return store_->checkpoint_id(); }
  KeyGroupRange key_groups() const override { return {0, 127}; }
  arrow::Result<std::vector<std::shared_ptr<arrow::RecordBatch>>> ReadKeyed(
      const std::string&) override {
    return std::vector<std::shared_ptr<arrow::RecordBatch>>{};
  }
  arrow::Result<std::vector<std::shared_ptr<arrow::RecordBatch>>> ReadOperatorState(
      const std::string&) override {
    return std::vector<std::shared_ptr<arrow::RecordBatch>>{};
  }
  arrow::Result<std::vector<FileSet>> ReadFiles(const std::string&,
                                                const std::string& scratch) override {
    return std::vector<FileSet>{
        FileSet{{0, 127}, store_->Materialize(fs::path(scratch) / "set")}};
  }

 private:
  const DirectoryStore* store_;
};

KeyBatch KeysOf(int64_t begin, int64_t end, const std::vector<int64_t>* picks = nullptr) {
  arrow::Int64Builder b;
  if (picks) {
    EXPECT_TRUE(b.AppendValues(*picks).ok());
  } else {
    for (int64_t k = begin; k < end; ++k) EXPECT_TRUE(b.Append(k).ok());
  }
  return EncodeKeyColumns({b.Finish().ValueOrDie()}, 128).ValueOrDie();
}

void Report(const std::string& phase, const std::string& fields) {
  std::cout << "STATE_BENCH {\"phase\": \"" << phase << "\", " << fields << "}"
            << std::endl;
}

TEST(StateBench, RocksDbCheckpointsFullAndIncremental) {
  if (std::getenv("SABOT_STATE_BENCH") == nullptr) {
    GTEST_SKIP() << "set SABOT_STATE_BENCH=1 (bench/state_bench.py)";
  }
  const int64_t target_bytes = EnvInt("SABOT_STATE_BENCH_BYTES", int64_t{1} << 30);
  const int64_t value_bytes = 100;
  const double update_fraction =
      static_cast<double>(EnvInt("SABOT_STATE_BENCH_UPDATE_PERMILLE", 20)) / 1000.0;
  const int64_t memory = EnvInt("SABOT_STATE_BENCH_MEMORY", int64_t{64} << 20);
  const int64_t num_keys = target_bytes / (value_bytes + 11);
  fs::path root = std::getenv("SABOT_STATE_BENCH_DIR")
                      ? fs::path(std::getenv("SABOT_STATE_BENCH_DIR"))
                      : fs::temp_directory_path() / "sabot-state-bench";
  fs::remove_all(root);
  fs::create_directories(root / "work");

  KeyedStateBackendOptions o;
  o.backend = "rocksdb";
  o.local_dir = (root / "work").string();
  o.rocksdb_memory_bytes = memory;
  if (const char* c = std::getenv("SABOT_STATE_BENCH_COMPACTION"))
    o.rocksdb_compaction = c;
  o.operator_name = "bench";
  o.key_groups = {0, 127};
  auto backend = KeyedStateBackend::Make(o).ValueOrDie();
  auto state = ValueState<std::string>::Declare(backend.get(), "v").ValueOrDie();

  std::mt19937_64 rng(7);
  auto random_value = [&] {  // incompressible
    std::string s(static_cast<size_t>(value_bytes), ' ');
    for (size_t i = 0; i < s.size(); i += 8) {
      uint64_t r = rng();
      std::memcpy(s.data() + i, &r, std::min<size_t>(8, s.size() - i));
    }
    return s;
  };
  constexpr int64_t kBatch = 50000;
  auto start = std::chrono::steady_clock::now();
  for (int64_t k = 0; k < num_keys; k += kBatch) {
    const int64_t end = std::min(num_keys, k + kBatch);
    auto keys = KeysOf(k, end);
    std::vector<std::optional<std::string>> values;
    values.reserve(static_cast<size_t>(keys.num_keys()));
    for (int64_t i = 0; i < keys.num_keys(); ++i) values.push_back(random_value());
    ASSERT_TRUE(state.Put(keys, values).ok());
  }
  const double load_seconds = Seconds(start);
  Report("load",
         "\"keys\": " + std::to_string(num_keys) +
             ", \"logical_bytes\": " + std::to_string(num_keys * (value_bytes + 11)) +
             ", \"seconds\": " + std::to_string(load_seconds) + ", \"memory_budget\": " +
             std::to_string(memory) + ", \"compaction\": \"" + o.rocksdb_compaction +
             "\"" + ", \"memory_usage\": " + std::to_string(backend->MemoryUsageBytes()));

  auto checkpoint = [&](int64_t id) {
    auto store = std::make_unique<DirectoryStore>(root / "checkpoints", id);
    auto t0 = std::chrono::steady_clock::now();
    EXPECT_TRUE(backend->Snapshot(store.get()).ok());
    const double total = Seconds(t0);
    EXPECT_TRUE(backend->NotifyCheckpointComplete(id).ok());
    Report(id == 1 ? "checkpoint_full" : "checkpoint_incremental",
           "\"checkpoint\": " + std::to_string(id) +
               ", \"sync_seconds\": " + std::to_string(total - store->copy_seconds) +
               ", \"upload_seconds\": " + std::to_string(store->copy_seconds) +
               ", \"seconds\": " + std::to_string(total) +
               ", \"sst_files\": " + std::to_string(store->files) +
               ", \"new_sst_files\": " + std::to_string(store->new_files) +
               ", \"checkpoint_bytes\": " + std::to_string(store->total_bytes) +
               ", \"uploaded_bytes\": " +
               std::to_string(store->new_bytes + store->private_bytes));
    return store;
  };
  ASSERT_TRUE(backend->WaitForBackgroundWork().ok());  // the load's compactions
  auto full = checkpoint(1);

  // Rounds of updates of a random few percent of the keys, each followed by a
  // checkpoint (compactions run meanwhile, as in a job).
  const int64_t updates =
      static_cast<int64_t>(static_cast<double>(num_keys) * update_fraction);
  const int64_t rounds = EnvInt("SABOT_STATE_BENCH_ROUNDS", 5);
  std::vector<int64_t> picks;
  std::unique_ptr<DirectoryStore> incremental;
  for (int64_t round = 1; round <= rounds; ++round) {
    picks.clear();
    std::set<int64_t> picked;
    while (static_cast<int64_t>(picks.size()) < updates) {
      int64_t k = static_cast<int64_t>(rng() % static_cast<uint64_t>(num_keys));
      if (picked.insert(k).second) picks.push_back(k);
    }
    start = std::chrono::steady_clock::now();
    for (size_t i = 0; i < picks.size(); i += kBatch) {
      std::vector<int64_t> part(
          picks.begin() + static_cast<int64_t>(i),
          picks.begin() + static_cast<int64_t>(std::min(picks.size(), i + kBatch)));
      auto keys = KeysOf(0, 0, &part);
      std::vector<std::optional<std::string>> values;
      for (int64_t j = 0; j < keys.num_keys(); ++j) values.push_back(random_value());
      ASSERT_TRUE(state.Put(keys, values).ok());
    }
    Report("update", "\"keys\": " + std::to_string(updates) +
                         ", \"seconds\": " + std::to_string(Seconds(start)));
    incremental = checkpoint(1 + round);
    EXPECT_LT(incremental->new_files, incremental->files);  // some SSTs shared
  }

  // Restore the incremental checkpoint (same key groups: opened from its files).
  KeyedStateBackendOptions r = o;
  auto restored = KeyedStateBackend::Make(r).ValueOrDie();
  auto restored_state =
      ValueState<std::string>::Declare(restored.get(), "v").ValueOrDie();
  DirectoryReader reader(incremental.get());
  start = std::chrono::steady_clock::now();
  ASSERT_TRUE(restored->Restore(&reader).ok());
  const double restore_seconds = Seconds(start);
  auto check = restored_state.Get(KeysOf(0, 0, &picks)).ValueOrDie();
  auto want = state.Get(KeysOf(0, 0, &picks)).ValueOrDie();
  ASSERT_EQ(check, want);
  Report("restore", "\"seconds\": " + std::to_string(restore_seconds));
  restored.reset();
  backend.reset();
  fs::remove_all(root);
}

}  // namespace
}  // namespace sabot
