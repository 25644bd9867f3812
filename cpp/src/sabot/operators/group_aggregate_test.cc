// Updating operators (group_aggregate, deduplicate, top_n) and the changelog
// helpers through the C++ DataStream API, checked against brute-force references.
#include <gtest/gtest.h>

#include <map>
#include <random>

#include "sabot/api/datastream.h"
#include "sabot/operators/changelog.h"

namespace sabot {
namespace {

std::shared_ptr<arrow::RecordBatch> Rows(const std::vector<int64_t>& keys,
                                         const std::vector<int64_t>& values) {
  arrow::Int64Builder k, v;
  EXPECT_TRUE(k.AppendValues(keys).ok());
  EXPECT_TRUE(v.AppendValues(values).ok());
  auto schema = arrow::schema(
      {arrow::field("k", arrow::int64()), arrow::field("v", arrow::int64())});
  return arrow::RecordBatch::Make(schema, static_cast<int64_t>(keys.size()),
                                  {k.Finish().ValueOrDie(), v.Finish().ValueOrDie()});
}

TEST(GroupAggregateTest, ChangelogMaterializesToBruteForceGroupBy) {
  std::mt19937_64 rng(11);
  std::vector<std::shared_ptr<arrow::RecordBatch>> batches;
  std::map<int64_t, std::pair<int64_t, int64_t>> want;  // k -> (count, sum)
  for (int b = 0; b < 30; ++b) {
    std::vector<int64_t> keys, values;
    for (int i = 0; i < 1 + static_cast<int>(rng() % 200); ++i) {
      int64_t k = static_cast<int64_t>(rng() % 17), v = static_cast<int64_t>(rng() % 50);
      keys.push_back(k);
      values.push_back(v);
      ++want[k].first;
      want[k].second += v;
    }
    batches.push_back(Rows(keys, values));
  }
  for (int p : {1, 3}) {
    JobOptions options;
    options.parallelism = p;
    options.num_threads = 2;
    auto env = StreamEnvironment::Make(options);
    GroupAggregateOptions g;
    g.aggregates = {{"count", "", "n", nullptr}, {"sum", "v", "s", nullptr}};
    auto buffer = env->FromBatches(batches[0]->schema(), batches)
                      .KeyBy({"k"})
                      .GroupAggregate(g)
                      .Collect();
    ASSERT_TRUE(env->Execute().ok());
    // Well-formed: every -U is followed by +U of the same key.
    for (const auto& out : buffer->batches()) {
      auto k = std::static_pointer_cast<arrow::Int64Array>(out->GetColumnByName("k"));
      auto op = std::static_pointer_cast<arrow::Int8Array>(
          out->GetColumnByName(kChangeOpColumn));
      for (int64_t i = 0; i < out->num_rows(); ++i) {
        if (op->Value(i) == static_cast<int8_t>(ChangeOp::kUpdateBefore)) {
          ASSERT_LT(i + 1, out->num_rows());
          EXPECT_EQ(op->Value(i + 1), static_cast<int8_t>(ChangeOp::kUpdateAfter));
          EXPECT_EQ(k->Value(i + 1), k->Value(i));
        }
      }
    }
    auto table = buffer->ToTable().ValueOrDie();
    auto final_table = MaterializeChangelog(table, {"k"}).ValueOrDie();
    auto rows = final_table->CombineChunksToBatch().ValueOrDie();
    ASSERT_EQ(rows->num_rows(), static_cast<int64_t>(want.size()));
    auto k = std::static_pointer_cast<arrow::Int64Array>(rows->GetColumnByName("k"));
    auto n = std::static_pointer_cast<arrow::Int64Array>(rows->GetColumnByName("n"));
    auto s = std::static_pointer_cast<arrow::Int64Array>(rows->GetColumnByName("s"));
    for (int64_t i = 0; i < rows->num_rows(); ++i) {
      EXPECT_EQ(n->Value(i), want[k->Value(i)].first) << "key " << k->Value(i);
      EXPECT_EQ(s->Value(i), want[k->Value(i)].second) << "key " << k->Value(i);
    }
  }
}

TEST(GroupAggregateTest, TopNAndDeduplicateMaterialize) {
  auto batch = Rows({1, 1, 2, 1, 2, 1}, {5, 9, 3, 7, 8, 1});
  auto env = StreamEnvironment::Make();
  TopNOptions t;
  t.keys = {"k"};
  t.n = 2;
  t.by = "v";
  auto stream = env->FromBatches(batch->schema(), {batch->Slice(0, 3), batch->Slice(3)});
  auto top = stream.TopN(t).Collect();
  DeduplicateOptions d;
  d.keys = {"k"};
  d.keep_last = true;
  auto dedup = stream.Deduplicate(d).Collect();
  ASSERT_TRUE(env->Execute().ok());
  auto top_rows = MaterializeChangelog(top->ToTable().ValueOrDie(), {}).ValueOrDie();
  EXPECT_EQ(top_rows->num_rows(), 4);  // k=1: 9, 7; k=2: 8, 3
  auto last = MaterializeChangelog(dedup->ToTable().ValueOrDie(), {"k"})
                  .ValueOrDie()
                  ->CombineChunksToBatch()
                  .ValueOrDie();
  ASSERT_EQ(last->num_rows(), 2);
  auto k = std::static_pointer_cast<arrow::Int64Array>(last->GetColumnByName("k"));
  auto v = std::static_pointer_cast<arrow::Int64Array>(last->GetColumnByName("v"));
  std::map<int64_t, int64_t> got{{k->Value(0), v->Value(0)}, {k->Value(1), v->Value(1)}};
  EXPECT_EQ(got, (std::map<int64_t, int64_t>{{1, 1}, {2, 8}}));  // each key's last row
}

TEST(ChangelogTest, MaterializeRejectsRetractionOfAbsentRow) {
  auto batch = Rows({1}, {2});
  auto log = MakeChangelogBatch(batch, {ChangeOp::kDelete}).ValueOrDie();
  auto table = arrow::Table::FromRecordBatches({log}).ValueOrDie();
  EXPECT_FALSE(MaterializeChangelog(table, {}).ok());
  EXPECT_EQ(MaterializeChangelog(table, {"k"}).ValueOrDie()->num_rows(), 0);
}

}  // namespace
}  // namespace sabot
