// The snapshot contract (state/snapshot.h): key-group ranges, key-group
// columns and filtering, and MemorySnapshot's keyed tables, operator state and
// file sets read back at other parallelisms.
#include "sabot/state/snapshot.h"

#include <arrow/api.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>

#include "sabot/exec/partitioner.h"

namespace sabot {
namespace {

TEST(SnapshotContractTest, InstanceRangesPartitionTheKeyGroups) {
  for (int p : {1, 2, 3, 4, 7, 128}) {
    int next = 0;
    for (int i = 0; i < p; ++i) {
      auto r = KeyGroupRange::ForInstance(i, p, 128);
      EXPECT_EQ(r.first, next);
      for (int g = r.first; g <= r.last; ++g) {
        EXPECT_EQ(InstanceOfKeyGroup(g, 128, p), i) << g << " " << p;
      }
      next = r.last + 1;
    }
    EXPECT_EQ(next, 128);
  }
}

std::shared_ptr<arrow::RecordBatch> Keyed(int64_t n) {
  arrow::Int64Builder k, v;
  for (int64_t i = 0; i < n; ++i) {
    EXPECT_TRUE(k.Append(i).ok());
    EXPECT_TRUE(v.Append(i * 10).ok());
  }
  auto schema = arrow::schema(
      {arrow::field("k", arrow::int64()), arrow::field("v", arrow::int64())});
  return arrow::RecordBatch::Make(schema, n,
                                  {k.Finish().ValueOrDie(), v.Finish().ValueOrDie()});
}

TEST(SnapshotContractTest, KeyGroupsAreKeyBysAndFilterKeepsOwnedRows) {
  auto batch = Keyed(500);
  auto groups =
      ComputeKeyGroups(*batch, {"k"}, 128, arrow::default_memory_pool()).ValueOrDie();
  std::vector<uint64_t> hashes;
  ASSERT_TRUE(HashColumns(*batch, {0}, &hashes).ok());
  for (int64_t i = 0; i < batch->num_rows(); ++i) {
    EXPECT_EQ(groups->Value(i), KeyGroupOf(hashes[i], 128));
  }
  auto with = batch->AddColumn(2, arrow::field(kKeyGroupColumn, arrow::int32()), groups)
                  .ValueOrDie();
  KeyGroupRange range{10, 50};
  auto kept = FilterKeyGroups(with, range, arrow::default_memory_pool()).ValueOrDie();
  EXPECT_EQ(kept->num_columns(), 2);
  int64_t want = 0;
  for (int64_t i = 0; i < batch->num_rows(); ++i)
    want += range.Contains(groups->Value(i));
  EXPECT_EQ(kept->num_rows(), want);
  EXPECT_FALSE(FilterKeyGroups(batch, range, arrow::default_memory_pool()).ok());
}

TEST(SnapshotContractTest, MemorySnapshotRestoresAtOtherParallelisms) {
  auto dir = std::filesystem::temp_directory_path() / "sabot-snapshot-contract";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir / "src");
  std::ofstream(dir / "src" / "a.sst") << "sst";
  std::ofstream(dir / "src" / "MANIFEST") << "manifest";
  MemorySnapshot snapshot(3);
  auto batch = Keyed(1000);
  for (int i = 0; i < 2; ++i) {
    auto writer = snapshot.Writer("op", i, 2);
    EXPECT_EQ(writer->checkpoint_id(), 3);
    auto range = KeyGroupRange::ForInstance(i, 2, 128);
    auto groups =
        ComputeKeyGroups(*batch, {"k"}, 128, arrow::default_memory_pool()).ValueOrDie();
    auto with = batch->AddColumn(2, arrow::field(kKeyGroupColumn, arrow::int32()), groups)
                    .ValueOrDie();
    auto mine = FilterKeyGroups(with, range, arrow::default_memory_pool()).ValueOrDie();
    ASSERT_TRUE(writer->WriteKeyed("t", mine, {"k"}).ok());
    ASSERT_TRUE(writer->WriteOperatorState("offsets", Keyed(1)).ok());
    ASSERT_TRUE(
        writer->AddFiles("db", (dir / "src").string(), {"MANIFEST"}, {"a.sst"}).ok());
  }
  std::map<int64_t, int> seen;
  for (int i = 0; i < 3; ++i) {
    auto reader = snapshot.Reader("op", i, 3);
    EXPECT_EQ(reader->key_groups().first, KeyGroupRange::ForInstance(i, 3, 128).first);
    auto keyed = reader->ReadKeyed("t").ValueOrDie();
    for (const auto& b : keyed) {
      const auto& k = static_cast<const arrow::Int64Array&>(*b->column(0));
      for (int64_t r = 0; r < b->num_rows(); ++r) ++seen[k.Value(r)];
    }
    EXPECT_EQ(reader->ReadOperatorState("offsets").ValueOrDie().size(), 2u);
    EXPECT_TRUE(reader->ReadKeyed("missing").ValueOrDie().empty());
    auto sets =
        reader->ReadFiles("db", (dir / ("r" + std::to_string(i))).string()).ValueOrDie();
    // Instance 1 of 3 ([43, 85]) overlaps both old instances, the others one.
    EXPECT_EQ(sets.size(), i == 1 ? 2u : 1u);
    for (const auto& s : sets) {
      EXPECT_TRUE(std::filesystem::exists(std::filesystem::path(s.dir) / "a.sst"));
      EXPECT_TRUE(std::filesystem::exists(std::filesystem::path(s.dir) / "MANIFEST"));
    }
  }
  ASSERT_EQ(seen.size(), 1000u);
  for (const auto& [k, n] : seen) EXPECT_EQ(n, 1) << k;
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace sabot
