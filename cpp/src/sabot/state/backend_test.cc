// Keyed state backends (memory and RocksDB, same tests for both): reads and
// writes, TTL, snapshots through MemorySnapshot, restore at the same and at
// other parallelisms, restore across backends, and RocksDB's incremental
// checkpoints (SST files shared between successive checkpoints).
#include "sabot/state/backend.h"

#include <arrow/api.h>
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <map>
#include <random>
#include <set>

#include "sabot/exec/memory.h"
#include "sabot/exec/partitioner.h"
#include "sabot/state/key_codec.h"
#include "sabot/state/keyed_state.h"

namespace sabot {
namespace {

constexpr int kMaxParallelism = 128;

std::string TestDir() {
  auto dir = std::filesystem::temp_directory_path() / "sabot-state-tests";
  std::filesystem::create_directories(dir);
  return dir.string();
}

struct ManualClock {
  std::atomic<int64_t> now{1'000'000};
  StateClock clock() {
    return [this] { return now.load(); };
  }
};

std::unique_ptr<KeyedStateBackend> MakeBackend(const std::string& kind, int index,
                                               int parallelism, ManualClock* clock,
                                               int64_t memory = 8 << 20) {
  KeyedStateBackendOptions o;
  o.backend = kind;
  o.local_dir = TestDir();
  o.rocksdb_memory_bytes = memory;
  o.operator_name = "op";
  o.instance_index = index;
  o.max_parallelism = kMaxParallelism;
  o.key_groups = KeyGroupRange::ForInstance(index, parallelism, kMaxParallelism);
  o.clock = clock->clock();
  return KeyedStateBackend::Make(o).ValueOrDie();
}

KeyBatch Keys(const std::vector<int64_t>& keys) {
  arrow::Int64Builder b;
  EXPECT_TRUE(b.AppendValues(keys).ok());
  return EncodeKeyColumns({b.Finish().ValueOrDie()}, kMaxParallelism).ValueOrDie();
}

// The keys of 0..n-1 that instance `index` of `parallelism` owns.
std::vector<int64_t> OwnedKeys(int64_t n, int index, int parallelism) {
  auto all = Keys([&] {
    std::vector<int64_t> v(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) v[i] = i;
    return v;
  }());
  auto range = KeyGroupRange::ForInstance(index, parallelism, kMaxParallelism);
  std::vector<int64_t> out;
  for (int64_t k = 0; k < all.num_keys(); ++k) {
    if (range.Contains(all.key_group(k))) out.push_back(k);
  }
  return out;
}

class BackendTest : public ::testing::TestWithParam<std::string> {
 protected:
  ManualClock clock_;
};

TEST_P(BackendTest, ValueListAndMapStates) {
  auto backend = MakeBackend(GetParam(), 0, 1, &clock_);
  auto count = ValueState<int64_t>::Declare(backend.get(), "count").ValueOrDie();
  auto names = ListState<std::string>::Declare(backend.get(), "names").ValueOrDie();
  auto fields =
      MapState<std::string, double>::Declare(backend.get(), "fields").ValueOrDie();
  auto keys = Keys({7, 8, 7, 9});
  ASSERT_EQ(keys.num_keys(), 3);
  auto got = count.Get(keys).ValueOrDie();
  EXPECT_EQ(got, (std::vector<std::optional<int64_t>>{std::nullopt, std::nullopt,
                                                      std::nullopt}));
  ASSERT_TRUE(count.Put(keys, {1, 2, std::nullopt}).ok());
  got = count.Get(keys).ValueOrDie();
  EXPECT_EQ(got, (std::vector<std::optional<int64_t>>{1, 2, std::nullopt}));

  ASSERT_TRUE(names.AddRows(keys, {"a", "b", "c", "d"}).ok());
  ASSERT_TRUE(names.AddRows(Keys({9}), {"e"}).ok());
  auto lists = names.Get(keys).ValueOrDie();
  EXPECT_EQ(lists[0], (std::vector<std::string>{"a", "c"}));
  EXPECT_EQ(lists[1], (std::vector<std::string>{"b"}));
  EXPECT_EQ(lists[2], (std::vector<std::string>{"d", "e"}));
  ASSERT_TRUE(names.Update(keys, {{"z"}, {}, {"y", "x"}}).ok());
  lists = names.Get(keys).ValueOrDie();
  EXPECT_EQ(lists[0], (std::vector<std::string>{"z"}));
  EXPECT_TRUE(lists[1].empty());
  EXPECT_EQ(lists[2], (std::vector<std::string>{"y", "x"}));

  ASSERT_TRUE(fields.Put(keys, {{0, "x", 1.5}, {0, "y", 2.5}, {2, "x", 9.0}}).ok());
  auto values = fields.Get(keys, {{0, "x"}, {0, "z"}, {2, "x"}, {1, "x"}}).ValueOrDie();
  EXPECT_EQ(values,
            (std::vector<std::optional<double>>{1.5, std::nullopt, 9.0, std::nullopt}));
  auto entries = fields.Entries(keys, 0).ValueOrDie();
  std::map<std::string, double> as_map(entries.begin(), entries.end());
  EXPECT_EQ(as_map, (std::map<std::string, double>{{"x", 1.5}, {"y", 2.5}}));
  ASSERT_TRUE(fields.Remove(keys, {{0, "x"}}).ok());
  EXPECT_EQ(fields.Entries(keys, 0).ValueOrDie().size(), 1u);
  ASSERT_TRUE(fields.Clear(Keys({7})).ok());
  EXPECT_TRUE(fields.Entries(keys, 0).ValueOrDie().empty());
  EXPECT_EQ(fields.Entries(keys, 2).ValueOrDie().size(), 1u);
  ASSERT_TRUE(count.Clear(keys).ok());
  got = count.Get(keys).ValueOrDie();
  EXPECT_FALSE(got[0] || got[1] || got[2]);
  EXPECT_GT(backend->ApproximateSizeBytes().ValueOrDie(), 0);
}

TEST_P(BackendTest, ReducingAndAggregatingStates) {
  auto backend = MakeBackend(GetParam(), 0, 1, &clock_);
  auto sum =
      ReducingState<int64_t>::Declare(
          backend.get(), "sum", [](const int64_t& a, const int64_t& b) { return a + b; })
          .ValueOrDie();
  AggregateFunction<int64_t, std::string, double> mean{
      [] { return std::string(16, '\0'); },
      [](std::string* acc, const int64_t& v) {
        int64_t s, n;
        std::memcpy(&s, acc->data(), 8);
        std::memcpy(&n, acc->data() + 8, 8);
        s += v;
        ++n;
        std::memcpy(acc->data(), &s, 8);
        std::memcpy(acc->data() + 8, &n, 8);
      },
      [](const std::string& acc) {
        int64_t s, n;
        std::memcpy(&s, acc.data(), 8);
        std::memcpy(&n, acc.data() + 8, 8);
        return static_cast<double>(s) / static_cast<double>(n);
      }};
  auto avg =
      AggregatingState<int64_t, std::string, double>::Declare(backend.get(), "avg", mean)
          .ValueOrDie();
  auto keys = Keys({1, 2, 1, 1});
  ASSERT_TRUE(sum.AddRows(keys, {10, 20, 30, 40}).ok());
  ASSERT_TRUE(sum.AddRows(Keys({2}), {5}).ok());
  auto sums = sum.Get(keys).ValueOrDie();
  EXPECT_EQ(sums, (std::vector<std::optional<int64_t>>{80, 25}));
  ASSERT_TRUE(avg.AddRows(keys, {1, 2, 2, 3}).ok());
  auto avgs = avg.Get(keys).ValueOrDie();
  EXPECT_DOUBLE_EQ(*avgs[0], 2.0);
  EXPECT_DOUBLE_EQ(*avgs[1], 2.0);
}

TEST_P(BackendTest, DeclaringTwiceMustAgree) {
  auto backend = MakeBackend(GetParam(), 0, 1, &clock_);
  int a = backend->Declare({"s", StateType::kValue, {}}).ValueOrDie();
  EXPECT_EQ(backend->Declare({"s", StateType::kValue, {}}).ValueOrDie(), a);
  EXPECT_FALSE(backend->Declare({"s", StateType::kList, {}}).ok());
  EXPECT_FALSE(backend->Declare({"s", StateType::kValue, {1000}}).ok());
  EXPECT_FALSE(backend->Declare({"default", StateType::kValue, {}}).ok());
  EXPECT_FALSE(backend->Declare({"", StateType::kValue, {}}).ok());
}

TEST_P(BackendTest, TtlNeverReturnsExpiredEntries) {
  auto backend = MakeBackend(GetParam(), 0, 1, &clock_);
  StateTtlConfig ttl{1000, StateTtlConfig::Update::kOnCreateAndWrite};
  StateTtlConfig ttl_read{1000, StateTtlConfig::Update::kOnReadAndWrite};
  auto v = ValueState<int64_t>::Declare(backend.get(), "v", ttl).ValueOrDie();
  auto r = ValueState<int64_t>::Declare(backend.get(), "r", ttl_read).ValueOrDie();
  auto l = ListState<int64_t>::Declare(backend.get(), "l", ttl).ValueOrDie();
  auto m = MapState<int64_t, int64_t>::Declare(backend.get(), "m", ttl).ValueOrDie();
  auto keys = Keys({1, 2});
  ASSERT_TRUE(v.Put(keys, {10, 20}).ok());
  ASSERT_TRUE(r.Put(keys, {10, 20}).ok());
  ASSERT_TRUE(l.AddRows(keys, {1, 2}).ok());
  ASSERT_TRUE(m.Put(keys, {{0, 1, 100}}).ok());
  clock_.now += 600;
  ASSERT_TRUE(v.Put(Keys({2}), {21}).ok());       // write restarts key 2's TTL
  EXPECT_TRUE(r.Get(Keys({1})).ValueOrDie()[0]);  // read restarts key 1's TTL
  ASSERT_TRUE(l.AddRows(Keys({2}), {3}).ok());    // append restarts the list's TTL
  ASSERT_TRUE(m.Put(keys, {{0, 2, 200}}).ok());   // per-entry TTL
  clock_.now += 500;                              // 1100 after the first writes
  auto vs = v.Get(keys).ValueOrDie();
  EXPECT_FALSE(vs[0]);
  EXPECT_EQ(vs[1], 21);
  auto rs = r.Get(keys).ValueOrDie();
  EXPECT_EQ(rs[0], 10);
  EXPECT_FALSE(rs[1]);
  auto ls = l.Get(keys).ValueOrDie();
  EXPECT_TRUE(ls[0].empty());
  EXPECT_EQ(ls[1], (std::vector<int64_t>{2, 3}));
  auto entries = m.Entries(keys, 0).ValueOrDie();
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].first, 2);
  // An append to an expired list starts a new list.
  clock_.now += 2000;
  ASSERT_TRUE(l.AddRows(Keys({2}), {4}).ok());
  EXPECT_EQ(l.Get(Keys({2})).ValueOrDie()[0], (std::vector<int64_t>{4}));
  // Expired entries are not part of a snapshot.
  ASSERT_TRUE(v.Put(Keys({5}), {50}).ok());
  MemorySnapshot snapshot(1, kMaxParallelism);
  ASSERT_TRUE(backend->Snapshot(snapshot.Writer("op", 0, 1).get()).ok());
  auto restored = MakeBackend("memory", 0, 1, &clock_);
  auto v2 = ValueState<int64_t>::Declare(restored.get(), "v", ttl).ValueOrDie();
  ASSERT_TRUE(restored->Declare({"r", StateType::kValue, ttl_read}).ok());
  ASSERT_TRUE(restored->Declare({"l", StateType::kList, ttl}).ok());
  ASSERT_TRUE(restored->Declare({"m", StateType::kMap, ttl}).ok());
  ASSERT_TRUE(restored->Restore(snapshot.Reader("op", 0, 1).get()).ok());
  int64_t entries_left = 0;
  ASSERT_TRUE(restored
                  ->ForEach(v2.id(),
                            [&](std::string_view, std::string_view, std::string_view) {
                              ++entries_left;
                              return arrow::Status::OK();
                            })
                  .ok());
  EXPECT_EQ(entries_left, 1);  // only key 5
  EXPECT_EQ(v2.Get(Keys({5})).ValueOrDie()[0], 50);
  // ... and the TTL carried over: it still expires 1000 ms after its write.
  clock_.now += 1000;
  EXPECT_FALSE(v2.Get(Keys({5})).ValueOrDie()[0]);
}

// Writes key -> key * 10 (value), [key] (list), {key: key} (map) for the keys
// each old instance owns, snapshots, restores at `new_p` and checks that every
// key comes back exactly once, in the instance that owns it.
void CheckRescale(const std::string& write_kind, const std::string& read_kind, int old_p,
                  int new_p, ManualClock* clock) {
  constexpr int64_t kKeys = 3000;
  MemorySnapshot snapshot(7, kMaxParallelism);
  for (int i = 0; i < old_p; ++i) {
    auto backend = MakeBackend(write_kind, i, old_p, clock);
    auto v = ValueState<int64_t>::Declare(backend.get(), "v").ValueOrDie();
    auto l = ListState<int64_t>::Declare(backend.get(), "l").ValueOrDie();
    auto m = MapState<int64_t, int64_t>::Declare(backend.get(), "m").ValueOrDie();
    auto owned = OwnedKeys(kKeys, i, old_p);
    auto keys = Keys(owned);
    std::vector<std::optional<int64_t>> values;
    std::vector<MapState<int64_t, int64_t>::Entry> entries;
    for (int64_t k = 0; k < keys.num_keys(); ++k) {
      values.push_back(owned[k] * 10);
      entries.push_back({k, owned[k], owned[k]});
    }
    ASSERT_TRUE(v.Put(keys, values).ok());
    ASSERT_TRUE(l.AddRows(keys, owned).ok());
    ASSERT_TRUE(m.Put(keys, entries).ok());
    ASSERT_TRUE(backend->Snapshot(snapshot.Writer("op", i, old_p).get()).ok());
  }
  std::map<int64_t, int> seen;
  for (int i = 0; i < new_p; ++i) {
    auto backend = MakeBackend(read_kind, i, new_p, clock);
    auto v = ValueState<int64_t>::Declare(backend.get(), "v").ValueOrDie();
    auto l = ListState<int64_t>::Declare(backend.get(), "l").ValueOrDie();
    auto m = MapState<int64_t, int64_t>::Declare(backend.get(), "m").ValueOrDie();
    ASSERT_TRUE(backend->Restore(snapshot.Reader("op", i, new_p).get()).ok());
    auto owned = OwnedKeys(kKeys, i, new_p);
    int64_t entries = 0;
    ASSERT_TRUE(backend
                    ->ForEach(v.id(),
                              [&](std::string_view, std::string_view, std::string_view) {
                                ++entries;
                                return arrow::Status::OK();
                              })
                    .ok());
    EXPECT_EQ(entries, static_cast<int64_t>(owned.size()));
    auto keys = Keys(owned);
    auto values = v.Get(keys).ValueOrDie();
    auto lists = l.Get(keys).ValueOrDie();
    for (int64_t k = 0; k < keys.num_keys(); ++k) {
      ++seen[owned[k]];
      ASSERT_EQ(values[k], owned[k] * 10) << "key " << owned[k];
      ASSERT_EQ(lists[k], (std::vector<int64_t>{owned[k]}));
    }
    for (int64_t k = 0; k < std::min<int64_t>(keys.num_keys(), 50); ++k) {
      auto e = m.Entries(keys, k).ValueOrDie();
      ASSERT_EQ(e.size(), 1u);
      EXPECT_EQ(e[0], std::make_pair(owned[k], owned[k]));
    }
  }
  ASSERT_EQ(static_cast<int64_t>(seen.size()), kKeys);
  for (const auto& [key, n] : seen) ASSERT_EQ(n, 1) << "key " << key;
}

TEST_P(BackendTest, RestoreAtSameParallelism) {
  CheckRescale(GetParam(), GetParam(), 2, 2, &clock_);
}
TEST_P(BackendTest, RestoreScaleOut1To3) {
  CheckRescale(GetParam(), GetParam(), 1, 3, &clock_);
}
TEST_P(BackendTest, RestoreScaleIn4To2) {
  CheckRescale(GetParam(), GetParam(), 4, 2, &clock_);
}
TEST_P(BackendTest, RestoreIntoTheOtherBackend) {
  const std::string other = GetParam() == "memory" ? "rocksdb" : "memory";
  CheckRescale(GetParam(), other, 2, 3, &clock_);
}

INSTANTIATE_TEST_SUITE_P(Backends, BackendTest, ::testing::Values("memory", "rocksdb"),
                         [](const auto& info) { return info.param; });

/// Records what a RocksDB backend hands to AddFiles, then stores it in a
/// MemorySnapshot.
class RecordingWriter : public SnapshotWriter {
 public:
  RecordingWriter(std::unique_ptr<SnapshotWriter> inner) : inner_(std::move(inner)) {}
  int64_t checkpoint_id() const override { return inner_->checkpoint_id(); }
  arrow::Status WriteKeyed(const std::string& t, std::shared_ptr<arrow::RecordBatch> r,
                           const std::vector<std::string>& k) override {
    return inner_->WriteKeyed(t, std::move(r), k);
  }
  arrow::Status WriteKeyedWithGroups(const std::string& t,
                                     std::shared_ptr<arrow::RecordBatch> r,
                                     std::shared_ptr<arrow::Int32Array> g) override {
    return inner_->WriteKeyedWithGroups(t, std::move(r), std::move(g));
  }
  arrow::Status WriteOperatorState(const std::string& t,
                                   std::shared_ptr<arrow::RecordBatch> r) override {
    return inner_->WriteOperatorState(t, std::move(r));
  }
  arrow::Status AddFiles(const std::string& table, const std::string& dir,
                         const std::vector<std::string>& private_files,
                         const std::vector<std::string>& shared_files) override {
    table_ = table;
    private_ = private_files;
    shared_ = shared_files;
    for (const auto& f : shared_files) {
      sizes_[f] = std::filesystem::file_size(std::filesystem::path(dir) / f);
    }
    return inner_->AddFiles(table, dir, private_files, shared_files);
  }
  std::string table_;
  std::vector<std::string> private_, shared_;
  std::map<std::string, uintmax_t> sizes_;

 private:
  std::unique_ptr<SnapshotWriter> inner_;
};

TEST(RocksDbBackendTest, CheckpointsShareSstFilesIncrementally) {
  ManualClock clock;
  auto backend = MakeBackend("rocksdb", 0, 1, &clock);
  auto v = ValueState<std::string>::Declare(backend.get(), "v").ValueOrDie();
  auto write = [&](int64_t from, int64_t to) {
    std::vector<int64_t> ks;
    std::vector<std::optional<std::string>> values;
    for (int64_t k = from; k < to; ++k) {
      ks.push_back(k);
      values.push_back(std::string(100, static_cast<char>('a' + k % 26)));
    }
    ASSERT_TRUE(v.Put(Keys(ks), values).ok());
  };
  write(0, 20000);
  MemorySnapshot first(1, kMaxParallelism);
  RecordingWriter w1(first.Writer("op", 0, 1));
  ASSERT_TRUE(backend->Snapshot(&w1).ok());
  EXPECT_EQ(w1.table_, "rocksdb");
  ASSERT_FALSE(w1.shared_.empty());
  for (const auto& name : {"CURRENT", "SABOT_STATES", "SABOT_SST_NAMES"}) {
    EXPECT_NE(std::find(w1.private_.begin(), w1.private_.end(), name), w1.private_.end())
        << name;
  }
  for (const auto& f : w1.shared_) EXPECT_TRUE(f.size() > 4 && f.ends_with(".sst")) << f;
  ASSERT_TRUE(backend->NotifyCheckpointComplete(1).ok());

  write(20000, 20500);  // 2.5% more
  MemorySnapshot second(2, kMaxParallelism);
  RecordingWriter w2(second.Writer("op", 0, 1));
  ASSERT_TRUE(backend->Snapshot(&w2).ok());
  std::set<std::string> old_files(w1.shared_.begin(), w1.shared_.end());
  std::vector<std::string> added;
  uintmax_t added_bytes = 0, total_bytes = 0;
  for (const auto& f : w2.shared_) {
    total_bytes += w2.sizes_[f];
    if (!old_files.count(f)) {
      added.push_back(f);
      added_bytes += w2.sizes_[f];
    }
  }
  // Every SST of the first checkpoint is still shared (no compaction ran at
  // this size), and the second adds exactly the one flushed since.
  for (const auto& f : w1.shared_) {
    EXPECT_NE(std::find(w2.shared_.begin(), w2.shared_.end(), f), w2.shared_.end()) << f;
  }
  ASSERT_EQ(added.size(), 1u);
  EXPECT_LT(added_bytes * 10, total_bytes);

  // Each checkpoint restores on its own (same parallelism: opened from files).
  for (auto* snapshot : {&first, &second}) {
    auto restored = MakeBackend("rocksdb", 0, 1, &clock);
    auto rv = ValueState<std::string>::Declare(restored.get(), "v").ValueOrDie();
    ASSERT_TRUE(restored->Restore(snapshot->Reader("op", 0, 1).get()).ok());
    auto got = rv.Get(Keys({0, 19999, 20000, 20499})).ValueOrDie();
    EXPECT_EQ(*got[0], std::string(100, 'a'));
    EXPECT_TRUE(got[1].has_value());
    EXPECT_EQ(got[2].has_value(), snapshot == &second);
    EXPECT_EQ(got[3].has_value(), snapshot == &second);
    // A restored database keeps the names of the SSTs it came from, so the
    // next checkpoint shares them again.
    MemorySnapshot third(3, kMaxParallelism);
    RecordingWriter w3(third.Writer("op", 0, 1));
    ASSERT_TRUE(restored->Snapshot(&w3).ok());
    const auto& source = snapshot == &first ? w1.shared_ : w2.shared_;
    EXPECT_EQ(w3.shared_, source);
  }
}

TEST(RocksDbBackendTest, StaysWithinItsMemoryBudget) {
  ManualClock clock;
  const int64_t budget = 4 << 20;
  auto backend = MakeBackend("rocksdb", 0, 1, &clock, budget);
  auto v = ValueState<std::string>::Declare(backend.get(), "v").ValueOrDie();
  int64_t peak = 0;
  auto value_of = [](int64_t k) {  // incompressible, reproducible
    std::mt19937_64 r(static_cast<uint64_t>(k));
    std::string s(200, ' ');
    for (auto& c : s) c = static_cast<char>(r());
    return s;
  };
  for (int64_t round = 0; round < 40; ++round) {
    std::vector<int64_t> ks;
    std::vector<std::optional<std::string>> values;
    for (int64_t k = round * 5000; k < (round + 1) * 5000; ++k) {
      ks.push_back(k);
      values.push_back(value_of(k));
    }
    ASSERT_TRUE(v.Put(Keys(ks), values).ok());
    peak = std::max(peak, backend->MemoryUsageBytes());
  }
  // 200k values of 200 bytes: ~40 MB of state, ten times the budget.
  EXPECT_GT(backend->ApproximateSizeBytes().ValueOrDie(), 5 * budget);
  RecordProperty("peak_cache_bytes", std::to_string(peak));
  EXPECT_LE(peak, budget + (budget / 4));
  auto got = v.Get(Keys({0, 123456, 199999})).ValueOrDie();
  EXPECT_EQ(got[0], value_of(0));
  EXPECT_EQ(got[1], value_of(123456));
  EXPECT_EQ(got[2], value_of(199999));
}

TEST(MemoryBackendTest, StateCountsInThePoolAndTheCapStopsIt) {
  ManualClock clock;
  auto pool = std::make_unique<arrow::ProxyMemoryPool>(arrow::default_memory_pool());
  KeyedStateBackendOptions o;
  o.pool = pool.get();
  o.clock = clock.clock();
  o.key_groups = {0, 127};
  auto backend = KeyedStateBackend::Make(o).ValueOrDie();
  auto v = ValueState<std::string>::Declare(backend.get(), "v").ValueOrDie();
  ASSERT_TRUE(v.Put(Keys({1, 2, 3}), {std::string(1000, 'x'), "y", "z"}).ok());
  EXPECT_GT(pool->bytes_allocated(), 1000);
  EXPECT_EQ(backend->MemoryUsageBytes(), pool->bytes_allocated());
  backend.reset();
  EXPECT_EQ(pool->bytes_allocated(), 0);

  JobMemoryPool capped(256 << 10);
  o.pool = &capped;
  backend = KeyedStateBackend::Make(o).ValueOrDie();
  v = ValueState<std::string>::Declare(backend.get(), "v").ValueOrDie();
  std::vector<int64_t> ks;
  std::vector<std::optional<std::string>> values;
  for (int64_t k = 0; k < 1000; ++k) {
    ks.push_back(k);
    values.push_back(std::string(1000, 'x'));
  }
  auto st = v.Put(Keys(ks), values);
  EXPECT_TRUE(st.IsOutOfMemory()) << st.ToString();
  EXPECT_NE(st.message().find("state 'v' of operator"), std::string::npos);
  backend.reset();  // before the pool it allocated from
}

}  // namespace
}  // namespace sabot
