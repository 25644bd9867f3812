// PartitionByKey's one-pass column scatter against a plain reference: route
// every row by its key group, then compare each partition with arrow's Take of
// that partition's rows (all column kinds: fixed width with nulls, bool, string,
// large string, a list column through the Take fallback, a sliced batch).
#include "sabot/exec/partitioner.h"

#include <arrow/api.h>
#include <arrow/compute/api_vector.h>
#include <gtest/gtest.h>

#include <random>

namespace sabot {
namespace {

std::shared_ptr<arrow::RecordBatch> RandomBatch(int64_t n, std::mt19937_64* rng) {
  arrow::Int64Builder key, nullable;
  arrow::Int32Builder small;
  arrow::BooleanBuilder flag;
  arrow::StringBuilder str;
  arrow::LargeStringBuilder large;
  arrow::DoubleBuilder dbl;
  auto list_builder = std::make_shared<arrow::ListBuilder>(
      arrow::default_memory_pool(), std::make_shared<arrow::Int64Builder>());
  auto* list_values = static_cast<arrow::Int64Builder*>(list_builder->value_builder());
  for (int64_t i = 0; i < n; ++i) {
    const uint64_t r = (*rng)();
    EXPECT_TRUE(key.Append(static_cast<int64_t>(r % 1000)).ok());
    EXPECT_TRUE((r % 5 == 0 ? nullable.AppendNull() : nullable.Append(i)).ok());
    EXPECT_TRUE(small.Append(static_cast<int32_t>(r >> 40)).ok());
    EXPECT_TRUE((r % 7 == 0 ? flag.AppendNull() : flag.Append(((r >> 3) & 1) != 0)).ok());
    EXPECT_TRUE((r % 3 == 0 ? str.AppendNull()
                            : str.Append(std::string((r >> 8) % 13, 'a' + i % 26)))
                    .ok());
    EXPECT_TRUE(large.Append(std::to_string(r)).ok());
    EXPECT_TRUE(dbl.Append(static_cast<double>(r % 100) / 3).ok());
    EXPECT_TRUE(list_builder->Append().ok());
    for (uint64_t k = 0; k < r % 3; ++k) EXPECT_TRUE(list_values->Append(i).ok());
  }
  auto schema = arrow::schema(
      {arrow::field("key", arrow::int64()), arrow::field("nullable", arrow::int64()),
       arrow::field("small", arrow::int32()), arrow::field("flag", arrow::boolean()),
       arrow::field("str", arrow::utf8()), arrow::field("large", arrow::large_utf8()),
       arrow::field("dbl", arrow::float64()),
       arrow::field("list", arrow::list(arrow::int64()))});
  return arrow::RecordBatch::Make(
      schema, n,
      {key.Finish().ValueOrDie(), nullable.Finish().ValueOrDie(),
       small.Finish().ValueOrDie(), flag.Finish().ValueOrDie(), str.Finish().ValueOrDie(),
       large.Finish().ValueOrDie(), dbl.Finish().ValueOrDie(),
       list_builder->Finish().ValueOrDie()});
}

void CheckPartitions(const std::shared_ptr<arrow::RecordBatch>& batch,
                     const std::vector<int>& keys, int parallelism) {
  const int max_parallelism = 128;
  std::vector<std::shared_ptr<arrow::RecordBatch>> parts;
  ASSERT_TRUE(PartitionByKey(batch, keys, parallelism, max_parallelism,
                             arrow::default_memory_pool(), &parts)
                  .ok());
  ASSERT_EQ(parts.size(), static_cast<size_t>(parallelism));
  // Reference: each row's instance from its hash, rows in input order.
  std::vector<uint64_t> hashes;
  ASSERT_TRUE(HashColumns(*batch, keys, &hashes).ok());
  std::vector<std::vector<int32_t>> rows(static_cast<size_t>(parallelism));
  for (int64_t i = 0; i < batch->num_rows(); ++i) {
    int p = InstanceOfKeyGroup(KeyGroupOf(hashes[i], max_parallelism), max_parallelism,
                               parallelism);
    rows[p].push_back(static_cast<int32_t>(i));
  }
  for (int p = 0; p < parallelism; ++p) {
    if (rows[p].empty()) {
      EXPECT_EQ(parts[p], nullptr);
      continue;
    }
    ASSERT_NE(parts[p], nullptr);
    arrow::Int32Builder idx;
    ASSERT_TRUE(idx.AppendValues(rows[p]).ok());
    auto expected = arrow::compute::Take(batch, idx.Finish().ValueOrDie())
                        .ValueOrDie()
                        .record_batch();
    ASSERT_TRUE(parts[p]->Validate().ok());
    ASSERT_TRUE(parts[p]->ValidateFull().ok());
    EXPECT_TRUE(parts[p]->Equals(*expected)) << "partition " << p;
  }
}

TEST(PartitionByKeyTest, ScatterMatchesTakeForEveryColumnKind) {
  std::mt19937_64 rng(7);
  auto batch = RandomBatch(5000, &rng);
  for (int parallelism : {2, 3, 8}) {
    CheckPartitions(batch, {0}, parallelism);
    CheckPartitions(batch, {4, 2}, parallelism);  // string + int32 keys
    CheckPartitions(batch->Slice(1234, 2000), {0}, parallelism);
  }
}

}  // namespace
}  // namespace sabot
