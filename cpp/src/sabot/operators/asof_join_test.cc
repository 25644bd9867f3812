// ASOF and temporal join tests through the C++ DataStream API, checked against
// a brute-force reference on out-of-order input.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <tuple>

#include "sabot/api/datastream.h"

namespace sabot {
namespace {

// Rows: key k, event time ts, row id v, deleted flag d.
std::shared_ptr<arrow::RecordBatch> Rows(const std::vector<int64_t>& keys,
                                         const std::vector<int64_t>& ts,
                                         const std::vector<int64_t>& ids,
                                         const std::vector<bool>& deleted) {
  arrow::Int64Builder k, t, v;
  arrow::BooleanBuilder d;
  EXPECT_TRUE(k.AppendValues(keys).ok());
  EXPECT_TRUE(t.AppendValues(ts).ok());
  EXPECT_TRUE(v.AppendValues(ids).ok());
  EXPECT_TRUE(d.AppendValues(deleted).ok());
  auto schema = arrow::schema(
      {arrow::field("k", arrow::int64()), arrow::field("ts", arrow::int64()),
       arrow::field("v", arrow::int64()), arrow::field("d", arrow::boolean())});
  return arrow::RecordBatch::Make(schema, static_cast<int64_t>(keys.size()),
                                  {k.Finish().ValueOrDie(), t.Finish().ValueOrDie(),
                                   v.Finish().ValueOrDie(), d.Finish().ValueOrDie()});
}

struct Side {
  std::vector<int64_t> keys, ts, ids;
  std::vector<bool> deleted;
  std::vector<std::shared_ptr<arrow::RecordBatch>> batches;
};

// Rows with distinct timestamps, each at most `bound` ms behind the largest
// before it.
Side MakeSide(std::mt19937_64* rng, int n, int64_t bound, int batch_rows) {
  Side s;
  std::vector<std::pair<int64_t, int64_t>> order;  // (arrival, ts)
  for (int i = 0; i < n; ++i) {
    int64_t t = i * 10 + static_cast<int64_t>((*rng)() % 10);
    order.emplace_back(t + static_cast<int64_t>((*rng)() % bound), t);
  }
  std::sort(order.begin(), order.end());
  for (int i = 0; i < n; ++i) {
    s.keys.push_back(static_cast<int64_t>((*rng)() % 5));
    s.ts.push_back(order[i].second);
    s.ids.push_back(i);
    s.deleted.push_back((*rng)() % 5 == 0);
  }
  for (int b = 0; b < n; b += batch_rows) {
    int e = std::min(n, b + batch_rows);
    s.batches.push_back(Rows({s.keys.begin() + b, s.keys.begin() + e},
                             {s.ts.begin() + b, s.ts.begin() + e},
                             {s.ids.begin() + b, s.ids.begin() + e},
                             {s.deleted.begin() + b, s.deleted.begin() + e}));
  }
  return s;
}

using Pairs = std::vector<std::pair<int64_t, int64_t>>;  // (left id, right id or -1)

Pairs Collected(const CollectBuffer& buffer) {
  Pairs out;
  for (const auto& b : buffer.batches()) {
    auto l = std::static_pointer_cast<arrow::Int64Array>(b->GetColumnByName("v"));
    auto r = std::static_pointer_cast<arrow::Int64Array>(b->GetColumnByName("right_v"));
    for (int64_t i = 0; i < b->num_rows(); ++i) {
      out.emplace_back(l->Value(i), r->IsNull(i) ? -1 : r->Value(i));
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

// (join type, parallelism, temporal?)
class AsofJoinTest : public ::testing::TestWithParam<std::tuple<JoinType, int, bool>> {};

TEST_P(AsofJoinTest, MatchesBruteForce) {
  const auto [type, parallelism, temporal] = GetParam();
  std::mt19937_64 rng(static_cast<uint64_t>(type) * 31 + parallelism * 7 + temporal);
  Side left = MakeSide(&rng, 300, 100, 17);
  Side right = MakeSide(&rng, 300, 100, 23);
  const int64_t tolerance = temporal ? 0 : 40;
  Pairs want;
  for (size_t i = 0; i < left.ids.size(); ++i) {
    int best = -1;
    for (size_t j = 0; j < right.ids.size(); ++j) {
      if (right.keys[j] != left.keys[i] || right.ts[j] > left.ts[i]) continue;
      if (best < 0 || right.ts[j] > right.ts[best]) best = static_cast<int>(j);
    }
    if (best >= 0 && temporal && right.deleted[best]) best = -1;
    if (best >= 0 && tolerance > 0 && left.ts[i] - right.ts[best] > tolerance) best = -1;
    if (best >= 0) {
      want.emplace_back(left.ids[i], right.ids[best]);
    } else if (type == JoinType::kLeft) {
      want.emplace_back(left.ids[i], -1);
    }
  }
  std::sort(want.begin(), want.end());

  JobOptions options;
  options.parallelism = parallelism;
  auto env = StreamEnvironment::Make(options);
  WatermarkOptions wm;
  wm.time_column = "ts";
  wm.max_out_of_orderness_ms = 100;
  auto schema = left.batches[0]->schema();
  auto l = env->FromBatches(schema, left.batches).AssignWatermarks(wm);
  auto r = env->FromBatches(schema, right.batches).AssignWatermarks(wm);
  DataStream joined = l;
  if (temporal) {
    TemporalJoinOptions o;
    o.left_keys = o.right_keys = {"k"};
    o.left_time = o.right_time = "ts";
    o.deleted_column = "d";
    o.type = type;
    joined = l.TemporalJoin(r, o);
  } else {
    AsofJoinOptions o;
    o.left_keys = o.right_keys = {"k"};
    o.left_time = o.right_time = "ts";
    o.tolerance_ms = tolerance;
    o.type = type;
    joined = l.AsofJoin(r, o);
  }
  auto collected = joined.Collect();
  auto late = joined.SideOutput("late").Collect();
  auto result = env->Execute();
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(Collected(*collected), want);
  EXPECT_TRUE(late->batches().empty());
}

INSTANTIATE_TEST_SUITE_P(TypesAndParallelism, AsofJoinTest,
                         ::testing::Combine(::testing::Values(JoinType::kInner,
                                                              JoinType::kLeft),
                                            ::testing::Values(1, 4), ::testing::Bool()));

TEST(AsofJoinErrorTest, RightAndFullJoinsAreRejected) {
  JobOptions options;
  options.parallelism = 1;
  auto env = StreamEnvironment::Make(options);
  auto batch = Rows({1}, {1}, {1}, {false});
  auto l = env->FromBatches(batch->schema(), {batch});
  auto r = env->FromBatches(batch->schema(), {batch});
  AsofJoinOptions o;
  o.left_keys = o.right_keys = {"k"};
  o.left_time = o.right_time = "ts";
  o.type = JoinType::kFull;
  l.AsofJoin(r, o).Collect();
  auto result = env->Execute();
  ASSERT_FALSE(result.ok());
  EXPECT_NE(result.status().message().find("asof_join"), std::string::npos)
      << result.status().ToString();
}

}  // namespace
}  // namespace sabot
