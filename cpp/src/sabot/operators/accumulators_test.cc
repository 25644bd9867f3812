// The count_distinct accumulator for fixed-width values (chunked, prefetching
// inserts; high-bit slots; tables of several MiB in ZeroedTable) against a
// std::set reference: many groups, nulls, resets, merges, checkpoint round trip.
#include "sabot/operators/accumulators.h"

#include <gtest/gtest.h>

#include <random>
#include <set>

namespace sabot {
namespace {

using Reference = std::vector<std::set<int64_t>>;

std::shared_ptr<arrow::Array> Values(const std::vector<int64_t>& v,
                                     const std::vector<bool>& valid) {
  arrow::Int64Builder b;
  for (size_t i = 0; i < v.size(); ++i) {
    if (valid[i]) {
      EXPECT_TRUE(b.Append(v[i]).ok());
    } else {
      EXPECT_TRUE(b.AppendNull().ok());
    }
  }
  return b.Finish().ValueOrDie();
}

std::vector<int64_t> Counts(Accumulator* acc, size_t groups) {
  std::vector<uint32_t> ids(groups);
  for (size_t g = 0; g < groups; ++g) ids[g] = static_cast<uint32_t>(g);
  auto out = std::static_pointer_cast<arrow::Int64Array>(acc->Finalize(ids).ValueOrDie());
  return std::vector<int64_t>(out->raw_values(), out->raw_values() + out->length());
}

std::vector<int64_t> Sizes(const Reference& ref) {
  std::vector<int64_t> out;
  for (const auto& s : ref) out.push_back(static_cast<int64_t>(s.size()));
  return out;
}

// Feeds `rows` random (group, value) rows in batches of random sizes (values
// from a range that gives both repeats and ~rows/2 distinct pairs).
void Feed(Accumulator* acc, Reference* ref, int64_t rows, uint32_t groups,
          std::mt19937_64* rng) {
  std::uniform_int_distribution<uint32_t> group(0, groups - 1);
  std::uniform_int_distribution<int64_t> value(-rows / 4, rows / 4);
  std::uniform_int_distribution<int64_t> batch(1, 5000);
  for (int64_t done = 0; done < rows;) {
    const int64_t n = std::min(rows - done, batch(*rng));
    std::vector<int64_t> v(n);
    std::vector<bool> valid(n);
    std::vector<uint32_t> ids(n);
    for (int64_t i = 0; i < n; ++i) {
      ids[i] = group(*rng);
      v[i] = value(*rng);
      valid[i] = (*rng)() % 7 != 0;
      if (valid[i]) (*ref)[ids[i]].insert(v[i]);
    }
    auto array = Values(v, valid);
    ASSERT_TRUE(acc->Consume(array, ids.data(), n).ok());
    done += n;
  }
}

TEST(CountDistinctAccumulator, LargeTablesMatchReference) {
  std::mt19937_64 rng(42);
  const uint32_t groups = 300;
  AggregateSpec spec{"count_distinct", "v", "d", nullptr};
  auto acc =
      MakeAccumulator(spec, arrow::int64(), arrow::default_memory_pool()).ValueOrDie();
  acc->Resize(groups);
  Reference ref(groups);
  // ~400k distinct pairs: the table grows past 2 MiB (mapped, huge pages).
  Feed(acc.get(), &ref, 600000, groups, &rng);
  EXPECT_EQ(Counts(acc.get(), groups), Sizes(ref));

  // Reset some groups, keep feeding: their old values must not count.
  for (uint32_t g = 0; g < groups; g += 3) {
    acc->ResetGroup(g);
    ref[g].clear();
  }
  Feed(acc.get(), &ref, 200000, groups, &rng);
  EXPECT_EQ(Counts(acc.get(), groups), Sizes(ref));

  // MergeGroup and MergeFrom (another accumulator mapped onto this one).
  acc->MergeGroup(1, 2);
  ref[1].insert(ref[2].begin(), ref[2].end());
  auto other = acc->MakeEmpty();
  other->Resize(groups);
  Reference other_ref(groups);
  Feed(other.get(), &other_ref, 50000, groups, &rng);
  std::vector<uint32_t> mapping(groups);
  for (uint32_t g = 0; g < groups; ++g) mapping[g] = (g * 7) % groups;
  ASSERT_TRUE(acc->MergeFrom(*other, mapping.data()).ok());
  for (uint32_t g = 0; g < groups; ++g)
    ref[mapping[g]].insert(other_ref[g].begin(), other_ref[g].end());
  EXPECT_EQ(Counts(acc.get(), groups), Sizes(ref));

  // Checkpoint round trip into a fresh accumulator.
  std::vector<uint32_t> ids(groups);
  for (uint32_t g = 0; g < groups; ++g) ids[g] = g;
  std::vector<std::string> names;
  arrow::ArrayVector columns;
  ASSERT_TRUE(acc->ExportState(ids, &names, &columns).ok());
  auto restored = acc->MakeEmpty();
  restored->Resize(groups);
  ASSERT_TRUE(restored->MergeState(columns, ids.data(), groups).ok());
  EXPECT_EQ(Counts(restored.get(), groups), Sizes(ref));
}

TEST(CountDistinctAccumulator, SlicedInputAndDoubles) {
  AggregateSpec spec{"count_distinct", "v", "d", nullptr};
  auto acc =
      MakeAccumulator(spec, arrow::float64(), arrow::default_memory_pool()).ValueOrDie();
  acc->Resize(2);
  arrow::DoubleBuilder b;
  ASSERT_TRUE(b.AppendValues({9.0, 1.0, -0.0, 0.0, 1.0}).ok());
  ASSERT_TRUE(b.AppendNull().ok());
  ASSERT_TRUE(b.Append(2.5).ok());
  auto all = b.Finish().ValueOrDie();
  auto sliced = all->Slice(1);  // 1.0, -0.0, 0.0, 1.0, null, 2.5
  std::vector<uint32_t> ids = {0, 0, 0, 1, 1, 1};
  ASSERT_TRUE(acc->Consume(sliced, ids.data(), 6).ok());
  EXPECT_EQ(Counts(acc.get(), 2), (std::vector<int64_t>{2, 2}));  // {1, 0}, {1, 2.5}
}

}  // namespace
}  // namespace sabot
