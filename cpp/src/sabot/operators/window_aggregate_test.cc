// Window and accumulator tests through the C++ DataStream API, checked against
// brute-force references.
#include <gtest/gtest.h>

#include <map>
#include <random>

#include "sabot/api/datastream.h"

namespace sabot {
namespace {

std::shared_ptr<arrow::RecordBatch> Rows(const std::vector<int64_t>& keys,
                                         const std::vector<int64_t>& ts,
                                         const std::vector<int64_t>& values) {
  arrow::Int64Builder k, t, v;
  EXPECT_TRUE(k.AppendValues(keys).ok());
  EXPECT_TRUE(t.AppendValues(ts).ok());
  EXPECT_TRUE(v.AppendValues(values).ok());
  auto schema = arrow::schema({arrow::field("k", arrow::int64()),
                               arrow::field("ts", arrow::int64()),
                               arrow::field("v", arrow::int64())});
  return arrow::RecordBatch::Make(
      schema, static_cast<int64_t>(keys.size()),
      {k.Finish().ValueOrDie(), t.Finish().ValueOrDie(), v.Finish().ValueOrDie()});
}

// (key, window_start) -> (count, sum)
using Result = std::map<std::pair<int64_t, int64_t>, std::pair<int64_t, int64_t>>;

Result Collected(const CollectBuffer& buffer) {
  Result out;
  for (const auto& b : buffer.batches()) {
    auto k = std::static_pointer_cast<arrow::Int64Array>(b->GetColumnByName("k"));
    auto ws = std::static_pointer_cast<arrow::TimestampArray>(
        b->GetColumnByName("window_start"));
    auto n = std::static_pointer_cast<arrow::Int64Array>(b->GetColumnByName("n"));
    auto s = std::static_pointer_cast<arrow::Int64Array>(b->GetColumnByName("s"));
    for (int64_t i = 0; i < b->num_rows(); ++i) {
      auto [it, inserted] = out.emplace(std::make_pair(k->Value(i), ws->Value(i)),
                                        std::make_pair(n->Value(i), s->Value(i)));
      EXPECT_TRUE(inserted) << "window emitted twice";
    }
  }
  return out;
}

TEST(WindowAggregateTest, HoppingMatchesBruteForceAtSeveralParallelisms) {
  std::mt19937_64 rng(7);
  std::vector<std::shared_ptr<arrow::RecordBatch>> batches;
  Result want;
  for (int b = 0; b < 40; ++b) {
    std::vector<int64_t> keys, ts, values;
    for (int i = 0; i < 250; ++i) {
      int64_t t = (b * 250 + i) * 4 + static_cast<int64_t>(rng() % 900);  // out of order
      int64_t k = static_cast<int64_t>(rng() % 9), v = static_cast<int64_t>(rng() % 100);
      keys.push_back(k);
      ts.push_back(t);
      values.push_back(v);
      for (int64_t start = t / 500 * 500; start > t - 1500; start -= 500) {
        auto& w = want[{k, start}];
        ++w.first;
        w.second += v;
      }
    }
    batches.push_back(Rows(keys, ts, values));
  }
  for (int p : {1, 3}) {
    JobOptions options;
    options.parallelism = p;
    options.num_threads = 2;
    auto env = StreamEnvironment::Make(options);
    WatermarkOptions wm;
    wm.time_column = "ts";
    wm.max_out_of_orderness_ms = 1000;
    WindowAggregateOptions w;
    w.window.kind = WindowSpec::Kind::kHopping;
    w.window.size_ms = 1500;
    w.window.slide_ms = 500;
    w.time_column = "ts";
    w.aggregates = {{"count", "", "n", nullptr}, {"sum", "v", "s", nullptr}};
    auto out = env->FromBatches(batches[0]->schema(), batches, 1)
                   .AssignWatermarks(wm)
                   .KeyBy({"k"})
                   .Window(w)
                   .Collect();
    auto result = env->Execute();
    ASSERT_TRUE(result.ok()) << result.status().ToString();
    EXPECT_EQ(Collected(*out), want) << "parallelism " << p;
  }
}

TEST(WindowAggregateTest, SessionsMergeAcrossBatches) {
  // Key 1: rows at 0, 5 (one session), 100, 104, then 102 arriving late joins them.
  auto b1 = Rows({1, 1, 1}, {0, 5, 100}, {1, 2, 3});
  auto b2 = Rows({1, 1}, {104, 102}, {4, 5});
  auto env = StreamEnvironment::Make();
  WatermarkOptions wm;
  wm.time_column = "ts";
  wm.max_out_of_orderness_ms = 50;
  WindowAggregateOptions w;
  w.window.kind = WindowSpec::Kind::kSession;
  w.window.gap_ms = 10;
  w.time_column = "ts";
  w.aggregates = {{"count", "", "n", nullptr}, {"sum", "v", "s", nullptr}};
  auto out = env->FromBatches(b1->schema(), {b1, b2}, 1)
                 .AssignWatermarks(wm)
                 .KeyBy({"k"})
                 .Window(w)
                 .Collect();
  ASSERT_TRUE(env->Execute().ok());
  Result want = {{{1, 0}, {2, 3}}, {{1, 100}, {3, 12}}};
  EXPECT_EQ(Collected(*out), want);
}

TEST(AccumulatorTest, MergeFromMapsGroups) {
  AggregateSpec spec{"count_distinct", "v", "d", nullptr};
  auto a =
      MakeAccumulator(spec, arrow::int64(), arrow::default_memory_pool()).ValueOrDie();
  auto b = a->MakeEmpty();
  arrow::Int64Builder vb;
  ASSERT_TRUE(vb.AppendValues({1, 2, 2, 3}).ok());
  std::shared_ptr<arrow::Array> values = vb.Finish().ValueOrDie();
  uint32_t ids_a[] = {0, 0, 1, 1};
  uint32_t ids_b[] = {1, 1, 0, 0};
  a->Resize(2);
  b->Resize(2);
  ASSERT_TRUE(a->Consume(values, ids_a, 4).ok());
  ASSERT_TRUE(b->Consume(values, ids_b, 4).ok());
  uint32_t mapping[] = {0, 1};  // b's groups onto a's
  ASSERT_TRUE(a->MergeFrom(*b, mapping).ok());
  auto r = std::static_pointer_cast<arrow::Int64Array>(a->Finalize({0, 1}).ValueOrDie());
  EXPECT_EQ(r->Value(0), 3);  // {1,2} + {2,3}
  EXPECT_EQ(r->Value(1), 3);  // {2,3} + {1,2}
  a->ResetGroup(0);
  r = std::static_pointer_cast<arrow::Int64Array>(a->Finalize({0}).ValueOrDie());
  EXPECT_EQ(r->Value(0), 0);
}

}  // namespace
}  // namespace sabot
