// Interval and window join tests through the C++ DataStream API, checked
// against nested-loop references on out-of-order input.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <tuple>

#include "sabot/api/datastream.h"

namespace sabot {
namespace {

// A side: key k, event time ts, row id v (unique per side).
std::shared_ptr<arrow::RecordBatch> Rows(const std::vector<int64_t>& keys,
                                         const std::vector<int64_t>& ts,
                                         const std::vector<int64_t>& ids) {
  arrow::Int64Builder k, t, v;
  EXPECT_TRUE(k.AppendValues(keys).ok());
  EXPECT_TRUE(t.AppendValues(ts).ok());
  EXPECT_TRUE(v.AppendValues(ids).ok());
  auto schema = arrow::schema({arrow::field("k", arrow::int64()),
                               arrow::field("ts", arrow::int64()),
                               arrow::field("v", arrow::int64())});
  return arrow::RecordBatch::Make(
      schema, static_cast<int64_t>(keys.size()),
      {k.Finish().ValueOrDie(), t.Finish().ValueOrDie(), v.Finish().ValueOrDie()});
}

struct Side {
  std::vector<int64_t> keys, ts, ids;
  std::vector<std::shared_ptr<arrow::RecordBatch>> batches;
};

// Out-of-order rows, each at most `bound` ms behind the largest before it.
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
  }
  for (int b = 0; b < n; b += batch_rows) {
    int e = std::min(n, b + batch_rows);
    s.batches.push_back(Rows({s.keys.begin() + b, s.keys.begin() + e},
                             {s.ts.begin() + b, s.ts.begin() + e},
                             {s.ids.begin() + b, s.ids.begin() + e}));
  }
  return s;
}

using Pairs =
    std::vector<std::tuple<int64_t, int64_t, int64_t>>;  // (left, right, window)

Pairs Collected(const CollectBuffer& buffer, bool windowed) {
  Pairs out;
  for (const auto& b : buffer.batches()) {
    auto l = std::static_pointer_cast<arrow::Int64Array>(b->GetColumnByName("v"));
    auto r = std::static_pointer_cast<arrow::Int64Array>(b->GetColumnByName("right_v"));
    std::shared_ptr<arrow::TimestampArray> w;
    if (windowed) {
      w = std::static_pointer_cast<arrow::TimestampArray>(
          b->GetColumnByName("window_start"));
    }
    for (int64_t i = 0; i < b->num_rows(); ++i) {
      out.emplace_back(l->IsNull(i) ? -1 : l->Value(i), r->IsNull(i) ? -1 : r->Value(i),
                       w ? w->Value(i) : 0);
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

class JoinTest : public ::testing::TestWithParam<std::tuple<JoinType, int>> {
 protected:
  void SetUp() override {
    std::mt19937_64 rng(static_cast<uint64_t>(std::get<0>(GetParam())) * 31 +
                        static_cast<uint64_t>(std::get<1>(GetParam())));
    left_ = MakeSide(&rng, 400, 100, 17);
    right_ = MakeSide(&rng, 400, 100, 23);
  }

  // Both sides with watermarks (bound 100 ms) in `env`.
  std::pair<DataStream, DataStream> Streams(
      const std::shared_ptr<StreamEnvironment>& env) {
    WatermarkOptions wm;
    wm.time_column = "ts";
    wm.max_out_of_orderness_ms = 100;
    auto schema = left_.batches[0]->schema();
    return {env->FromBatches(schema, left_.batches).AssignWatermarks(wm),
            env->FromBatches(schema, right_.batches).AssignWatermarks(wm)};
  }

  Side left_, right_;
};

TEST_P(JoinTest, IntervalJoinMatchesNestedLoop) {
  const auto [type, parallelism] = GetParam();
  const int64_t lower = -30, upper = 50;
  Pairs want;
  std::vector<bool> right_matched(right_.ids.size(), false);
  for (size_t i = 0; i < left_.ids.size(); ++i) {
    bool hit = false;
    for (size_t j = 0; j < right_.ids.size(); ++j) {
      if (left_.keys[i] != right_.keys[j]) continue;
      if (right_.ts[j] < left_.ts[i] + lower || right_.ts[j] > left_.ts[i] + upper)
        continue;
      want.emplace_back(left_.ids[i], right_.ids[j], 0);
      hit = right_matched[j] = true;
    }
    if (!hit && EmitsUnmatched(type, 0)) want.emplace_back(left_.ids[i], -1, 0);
  }
  for (size_t j = 0; j < right_.ids.size(); ++j) {
    if (!right_matched[j] && EmitsUnmatched(type, 1))
      want.emplace_back(-1, right_.ids[j], 0);
  }
  std::sort(want.begin(), want.end());

  JobOptions options;
  options.parallelism = parallelism;
  auto env = StreamEnvironment::Make(options);
  auto [l, r] = Streams(env);
  IntervalJoinOptions o;
  o.left_keys = o.right_keys = {"k"};
  o.left_time = o.right_time = "ts";
  o.lower_ms = lower;
  o.upper_ms = upper;
  o.type = type;
  auto joined = l.IntervalJoin(r, o);
  auto collected = joined.Collect();
  auto late = joined.SideOutput("late").Collect();
  auto result = env->Execute();
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(Collected(*collected, false), want);
  EXPECT_TRUE(late->batches().empty());
}

TEST_P(JoinTest, TumblingWindowJoinMatchesNestedLoop) {
  const auto [type, parallelism] = GetParam();
  const int64_t size = 200;
  Pairs want;
  std::vector<bool> right_matched(right_.ids.size(), false);
  for (size_t i = 0; i < left_.ids.size(); ++i) {
    bool hit = false;
    const int64_t w = left_.ts[i] / size * size;
    for (size_t j = 0; j < right_.ids.size(); ++j) {
      if (left_.keys[i] != right_.keys[j] || right_.ts[j] / size * size != w) continue;
      want.emplace_back(left_.ids[i], right_.ids[j], w);
      hit = right_matched[j] = true;
    }
    if (!hit && EmitsUnmatched(type, 0)) want.emplace_back(left_.ids[i], -1, w);
  }
  for (size_t j = 0; j < right_.ids.size(); ++j) {
    if (!right_matched[j] && EmitsUnmatched(type, 1))
      want.emplace_back(-1, right_.ids[j], right_.ts[j] / size * size);
  }
  std::sort(want.begin(), want.end());

  JobOptions options;
  options.parallelism = parallelism;
  auto env = StreamEnvironment::Make(options);
  auto [l, r] = Streams(env);
  WindowJoinOptions o;
  o.left_keys = o.right_keys = {"k"};
  o.left_time = o.right_time = "ts";
  o.window.kind = WindowSpec::Kind::kTumbling;
  o.window.size_ms = size;
  o.type = type;
  auto collected = l.WindowJoin(r, o).Collect();
  auto result = env->Execute();
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(Collected(*collected, true), want);
}

INSTANTIATE_TEST_SUITE_P(
    TypesAndParallelism, JoinTest,
    ::testing::Combine(::testing::Values(JoinType::kInner, JoinType::kLeft,
                                         JoinType::kRight, JoinType::kFull),
                       ::testing::Values(1, 4)));

TEST(JoinErrorTest, KeyTypeMismatchNamesTheOperator) {
  // One instance, so that it sees both sides (instances see only their keys).
  JobOptions options;
  options.parallelism = 1;
  auto env = StreamEnvironment::Make(options);
  auto ints = Rows({1}, {1}, {1});
  arrow::StringBuilder sb;
  ASSERT_TRUE(sb.Append("x").ok());
  auto strings =
      arrow::RecordBatch::Make(arrow::schema({arrow::field("k", arrow::utf8()),
                                              arrow::field("ts", arrow::int64())}),
                               1, {sb.Finish().ValueOrDie(), ints->column(1)});
  IntervalJoinOptions o;
  o.left_keys = o.right_keys = {"k"};
  o.left_time = o.right_time = "ts";
  o.upper_ms = 10;
  env->FromBatches(ints->schema(), {ints})
      .IntervalJoin(env->FromBatches(strings->schema(), {strings}), o)
      .Collect();
  auto result = env->Execute();
  ASSERT_FALSE(result.ok());
  EXPECT_NE(result.status().message().find("interval_join#"), std::string::npos)
      << result.status().ToString();
  EXPECT_NE(result.status().message().find("key type mismatch"), std::string::npos)
      << result.status().ToString();
}

}  // namespace
}  // namespace sabot
