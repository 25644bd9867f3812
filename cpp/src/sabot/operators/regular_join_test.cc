// Regular join tests: randomized append-only and updating inputs through the
// DataStream API at parallelism 1 and 4, checked against a nested-loop join of
// the final input tables; snapshot and restore at another parallelism and state
// TTL at operator level.
#include "sabot/operators/regular_join.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <map>
#include <random>
#include <tuple>

#include "sabot/api/datastream.h"
#include "sabot/exec/partitioner.h"
#include "sabot/operators/changelog.h"

namespace sabot {
namespace {

// A row of a side: key (-1: null), value id; op for updating inputs.
struct Row {
  int64_t key;
  int64_t id;
  ChangeOp op = ChangeOp::kInsert;
};

std::shared_ptr<arrow::Schema> SideSchema(bool updating) {
  arrow::FieldVector f{arrow::field("k", arrow::int64()),
                       arrow::field("v", arrow::int64()),
                       arrow::field("s", arrow::utf8())};
  auto schema = arrow::schema(f);
  return updating ? ChangelogSchema(schema) : schema;
}

std::shared_ptr<arrow::RecordBatch> MakeBatch(const std::vector<Row>& rows,
                                              bool updating) {
  arrow::Int64Builder k, v;
  arrow::StringBuilder s;
  arrow::Int8Builder op;
  for (const auto& r : rows) {
    EXPECT_TRUE((r.key < 0 ? k.AppendNull() : k.Append(r.key)).ok());
    EXPECT_TRUE(v.Append(r.id).ok());
    EXPECT_TRUE(s.Append("s" + std::to_string(r.id * 7 % 13)).ok());
    EXPECT_TRUE(op.Append(static_cast<int8_t>(r.op)).ok());
  }
  std::vector<std::shared_ptr<arrow::Array>> cols{
      k.Finish().ValueOrDie(), v.Finish().ValueOrDie(), s.Finish().ValueOrDie()};
  if (updating) cols.push_back(op.Finish().ValueOrDie());
  return arrow::RecordBatch::Make(SideSchema(updating), static_cast<int64_t>(rows.size()),
                                  cols);
}

std::vector<std::shared_ptr<arrow::RecordBatch>> Batches(const std::vector<Row>& rows,
                                                         bool updating, int batch_rows) {
  std::vector<std::shared_ptr<arrow::RecordBatch>> out;
  for (size_t b = 0; b < rows.size(); b += batch_rows) {
    const size_t e = std::min(rows.size(), b + batch_rows);
    out.push_back(MakeBatch({rows.begin() + b, rows.begin() + e}, updating));
  }
  return out;
}

// Random rows with keys in [0, keys) (some null); with `updating`, about a
// quarter of the changes retract a row inserted before (as -D or a -U/+U pair).
std::vector<Row> MakeSide(std::mt19937_64* rng, int n, int keys, bool updating,
                          int64_t id_base, uint64_t retract_percent = 25) {
  std::vector<Row> out;
  std::vector<Row> present;
  int64_t next_id = id_base;
  while (static_cast<int>(out.size()) < n) {
    const uint64_t dice = (*rng)() % 100;
    if (updating && !present.empty() && dice < retract_percent) {
      const size_t i = (*rng)() % present.size();
      Row gone = present[i];
      present[i] = present.back();
      present.pop_back();
      if (dice < retract_percent / 2) {
        gone.op = ChangeOp::kDelete;
        out.push_back(gone);
      } else {
        gone.op = ChangeOp::kUpdateBefore;
        out.push_back(gone);
        Row after{gone.key, next_id++, ChangeOp::kUpdateAfter};
        out.push_back(after);
        after.op = ChangeOp::kInsert;
        present.push_back(after);
      }
      continue;
    }
    const int64_t key = dice < 95 ? static_cast<int64_t>((*rng)() % keys) : -1;
    Row r{key, next_id++, ChangeOp::kInsert};
    // Duplicates: equal rows must be retracted one at a time.
    if (!present.empty() && dice > 97) r = present[(*rng)() % present.size()];
    out.push_back(r);
    present.push_back(r);
  }
  return out;
}

// The final multiset of a side after applying its changes.
std::vector<Row> Final(const std::vector<Row>& changes) {
  std::map<std::pair<int64_t, int64_t>, int> count;
  for (const auto& c : changes) {
    int& n = count[{c.key, c.id}];
    if (c.op == ChangeOp::kInsert || c.op == ChangeOp::kUpdateAfter) {
      ++n;
    } else {
      EXPECT_GT(n, 0);
      --n;
    }
  }
  std::vector<Row> rows;
  for (const auto& [row, n] : count) {
    for (int i = 0; i < n; ++i) rows.push_back(Row{row.first, row.second});
  }
  return rows;
}

using Result = std::vector<std::pair<int64_t, int64_t>>;  // (left v, right v), -1: null

using Predicate = std::function<bool(const Row&, const Row&)>;

Result NestedLoop(const std::vector<Row>& left, const std::vector<Row>& right,
                  JoinType type, const Predicate& holds = nullptr) {
  Result out;
  std::vector<bool> right_hit(right.size(), false);
  std::multimap<int64_t, size_t> right_by_key;
  for (size_t j = 0; j < right.size(); ++j) right_by_key.emplace(right[j].key, j);
  for (const auto& l : left) {
    bool hit = false;
    auto [begin, end] = right_by_key.equal_range(l.key);
    for (auto it = begin; it != end; ++it) {
      const size_t j = it->second;
      if (l.key < 0) break;
      if (holds && !holds(l, right[j])) continue;
      out.emplace_back(l.id, right[j].id);
      hit = right_hit[j] = true;
    }
    if (!hit && EmitsUnmatched(type, 0)) out.emplace_back(l.id, -1);
  }
  for (size_t j = 0; j < right.size(); ++j) {
    if (!right_hit[j] && EmitsUnmatched(type, 1)) out.emplace_back(-1, right[j].id);
  }
  std::sort(out.begin(), out.end());
  return out;
}

// Materializes collected output (retraction semantics; fails on a retraction
// of a row not present) into (left v, right v) pairs.
Result Materialized(const std::vector<std::shared_ptr<arrow::RecordBatch>>& batches,
                    bool updating) {
  Result out;
  if (batches.empty()) return out;
  auto table = arrow::Table::FromRecordBatches(batches).ValueOrDie();
  if (updating) {
    auto m = MaterializeChangelog(table, {});
    EXPECT_TRUE(m.ok()) << m.status().ToString();
    if (!m.ok()) return out;
    table = *m;
  }
  auto combined = table->CombineChunksToBatch().ValueOrDie();
  auto l = std::static_pointer_cast<arrow::Int64Array>(combined->GetColumnByName("v"));
  auto r =
      std::static_pointer_cast<arrow::Int64Array>(combined->GetColumnByName("right_v"));
  auto ls = std::static_pointer_cast<arrow::StringArray>(combined->GetColumnByName("s"));
  for (int64_t i = 0; i < combined->num_rows(); ++i) {
    const int64_t lv = l->IsNull(i) ? -1 : l->Value(i);
    out.emplace_back(lv, r->IsNull(i) ? -1 : r->Value(i));
    if (lv >= 0) EXPECT_EQ(ls->GetString(i), "s" + std::to_string(lv * 7 % 13));
  }
  std::sort(out.begin(), out.end());
  return out;
}

class RegularJoinTest
    : public ::testing::TestWithParam<std::tuple<JoinType, int, bool, bool>> {};

TEST_P(RegularJoinTest, MatchesNestedLoopOfFinalInputs) {
  const auto [type, parallelism, left_updating, right_updating] = GetParam();
  std::mt19937_64 rng(static_cast<uint64_t>(type) * 1000 + parallelism * 10 +
                      left_updating * 2 + right_updating);
  auto left = MakeSide(&rng, 600, 25, left_updating, 0);
  auto right = MakeSide(&rng, 500, 25, right_updating, 100000);
  JobOptions jo;
  jo.parallelism = parallelism;
  auto env = StreamEnvironment::Make(jo);
  auto l = env->FromBatches(SideSchema(left_updating), Batches(left, left_updating, 7));
  auto r =
      env->FromBatches(SideSchema(right_updating), Batches(right, right_updating, 11));
  RegularJoinOptions o;
  o.left_keys = {"k"};
  o.right_keys = {"k"};
  o.type = type;
  auto collected = l.Join(r, o).Collect();
  ASSERT_TRUE(env->Execute().ok());
  const bool updating = left_updating || right_updating || type != JoinType::kInner;
  auto batches = collected->batches();
  if (!batches.empty()) {
    EXPECT_EQ(batches[0]->schema()->GetFieldIndex(kChangeOpColumn) >= 0, updating);
  }
  EXPECT_EQ(Materialized(batches, updating), NestedLoop(Final(left), Final(right), type));
}

INSTANTIATE_TEST_SUITE_P(
    Types, RegularJoinTest,
    ::testing::Combine(::testing::Values(JoinType::kInner, JoinType::kLeft,
                                         JoinType::kRight, JoinType::kFull),
                       ::testing::Values(1, 4), ::testing::Bool(), ::testing::Bool()));

namespace cp = arrow::compute;

// (v + right_v) odd, s != "s3" (left only), right_v % 4 != 0 (right only).
cp::Expression TestCondition() {
  auto odd = cp::not_equal(
      cp::call("bit_wise_and",
               {cp::call("add", {cp::field_ref("v"), cp::field_ref("right_v")}),
                cp::literal(int64_t{1})}),
      cp::literal(int64_t{0}));
  auto not_s3 = cp::not_equal(cp::field_ref("s"), cp::literal("s3"));
  auto right_only = cp::not_equal(
      cp::call("bit_wise_and", {cp::field_ref("right_v"), cp::literal(int64_t{3})}),
      cp::literal(int64_t{0}));
  return cp::and_({odd, cp::and_(not_s3, right_only)});
}

bool TestConditionHolds(const Row& l, const Row& r) {
  return (l.id + r.id) % 2 == 1 && l.id * 7 % 13 != 3 && r.id % 4 != 0;
}

class RegularJoinConditionTest
    : public ::testing::TestWithParam<std::tuple<JoinType, int, bool>> {};

TEST_P(RegularJoinConditionTest, ConditionDecidesWhatMatches) {
  const auto [type, parallelism, updating] = GetParam();
  std::mt19937_64 rng(static_cast<uint64_t>(type) * 100 + parallelism * 2 + updating);
  auto left = MakeSide(&rng, 500, 12, updating, 0);
  auto right = MakeSide(&rng, 400, 12, updating, 100000);
  JobOptions jo;
  jo.parallelism = parallelism;
  auto env = StreamEnvironment::Make(jo);
  auto l = env->FromBatches(SideSchema(updating), Batches(left, updating, 13));
  auto r = env->FromBatches(SideSchema(updating), Batches(right, updating, 7));
  RegularJoinOptions o;
  o.left_keys = {"k"};
  o.right_keys = {"k"};
  o.type = type;
  o.condition = TestCondition();
  auto collected = l.Join(r, o).Collect();
  auto st = env->Execute();
  ASSERT_TRUE(st.ok()) << st.status().ToString();
  const bool updating_output = updating || type != JoinType::kInner;
  EXPECT_EQ(Materialized(collected->batches(), updating_output),
            NestedLoop(Final(left), Final(right), type, TestConditionHolds));
}

INSTANTIATE_TEST_SUITE_P(
    Types, RegularJoinConditionTest,
    ::testing::Combine(::testing::Values(JoinType::kInner, JoinType::kLeft,
                                         JoinType::kRight, JoinType::kFull),
                       ::testing::Values(1, 4), ::testing::Bool()));

// Right rows with unique keys (some keys never arrive, some right rows fail the
// condition); left rows arrive before and after their right row.
class RegularJoinUniqueTest : public ::testing::TestWithParam<std::tuple<JoinType, int>> {
};

TEST_P(RegularJoinUniqueTest, UniqueRightSideGivesTheSameResult) {
  const auto [type, parallelism] = GetParam();
  std::mt19937_64 rng(static_cast<uint64_t>(type) * 10 + parallelism);
  std::vector<Row> right;
  for (int64_t k = 0; k < 300; ++k) {
    if (rng() % 5 != 0) right.push_back(Row{k, 100000 + k});
  }
  std::shuffle(right.begin(), right.end(), rng);
  std::vector<Row> left;
  for (int64_t i = 0; i < 2000; ++i) {
    left.push_back(Row{rng() % 20 == 0 ? -1 : static_cast<int64_t>(rng() % 320), i});
  }
  JobOptions jo;
  jo.parallelism = parallelism;
  auto env = StreamEnvironment::Make(jo);
  auto l = env->FromBatches(SideSchema(false), Batches(left, false, 16));
  auto r = env->FromBatches(SideSchema(false), Batches(right, false, 3));
  RegularJoinOptions o;
  o.left_keys = {"k"};
  o.right_keys = {"k"};
  o.type = type;
  o.condition = TestCondition();
  o.right_unique = true;
  auto collected = l.Join(r, o).Collect();
  auto st = env->Execute();
  ASSERT_TRUE(st.ok()) << st.status().ToString();
  EXPECT_EQ(Materialized(collected->batches(), type != JoinType::kInner),
            NestedLoop(left, right, type, TestConditionHolds));
}

INSTANTIATE_TEST_SUITE_P(
    Types, RegularJoinUniqueTest,
    ::testing::Combine(::testing::Values(JoinType::kInner, JoinType::kLeft,
                                         JoinType::kRight, JoinType::kFull),
                       ::testing::Values(1, 4)));

TEST(RegularJoinOperatorTest, DuplicateKeyOnAUniqueSideFails) {
  JobOptions jo;
  jo.parallelism = 1;
  auto env = StreamEnvironment::Make(jo);
  auto l = env->FromBatches(SideSchema(false), {MakeBatch({{1, 1}}, false)});
  auto r = env->FromBatches(SideSchema(false), {MakeBatch({{1, 101}, {1, 102}}, false)});
  RegularJoinOptions o;
  o.left_keys = {"k"};
  o.right_keys = {"k"};
  o.right_unique = true;
  l.Join(r, o).Collect();
  auto result = env->Execute();
  ASSERT_FALSE(result.ok());
  EXPECT_NE(result.status().message().find("declared unique"), std::string::npos)
      << result.status().ToString();
}

// Enough retractions and small batches that both sides are compacted and
// their small batches merged while the job runs.
TEST(RegularJoinLargeTest, CompactionKeepsResults) {
  std::mt19937_64 rng(7);
  auto left = MakeSide(&rng, 60000, 3000, true, 0, 45);
  auto right = MakeSide(&rng, 50000, 3000, true, 1000000, 45);
  JobOptions jo;
  jo.parallelism = 1;
  auto env = StreamEnvironment::Make(jo);
  auto l = env->FromBatches(SideSchema(true), Batches(left, true, 5));
  auto r = env->FromBatches(SideSchema(true), Batches(right, true, 3000));
  RegularJoinOptions o;
  o.left_keys = {"k"};
  o.right_keys = {"k"};
  o.type = JoinType::kFull;
  auto collected = l.Join(r, o).Collect();
  ASSERT_TRUE(env->Execute().ok());
  EXPECT_EQ(Materialized(collected->batches(), true),
            NestedLoop(Final(left), Final(right), JoinType::kFull));
}

// --- operator level ---------------------------------------------------------

class Sink : public Collector {
 public:
  arrow::Status Emit(std::shared_ptr<arrow::RecordBatch> batch) override {
    batches.push_back(std::move(batch));
    return arrow::Status::OK();
  }
  arrow::Status EmitWatermark(int64_t) override { return arrow::Status::OK(); }
  std::vector<std::shared_ptr<arrow::RecordBatch>> batches;
};

struct Instance {
  std::unique_ptr<Operator> op;
  OperatorContext ctx;
};

std::vector<Instance> MakeInstances(const PlanNode& node, int parallelism,
                                    MemorySnapshot* restore_from) {
  // The compute functions conditions use (a job initializes them itself).
  EXPECT_TRUE(InitializeRuntime().ok());
  std::vector<Instance> out(static_cast<size_t>(parallelism));
  for (int i = 0; i < parallelism; ++i) {
    auto& in = out[i];
    in.op = OperatorRegistry::Global()->MakeOperator(node, i, parallelism).ValueOrDie();
    in.ctx.operator_name = "regular_join#0";
    in.ctx.instance_index = i;
    in.ctx.parallelism = parallelism;
    in.ctx.key_groups = KeyGroupRange::ForInstance(i, parallelism, 128);
    std::unique_ptr<SnapshotReader> reader;
    if (restore_from) {
      reader = restore_from->Reader("join", i, parallelism);
      in.ctx.restore = reader.get();
    }
    EXPECT_TRUE(in.op->Open(&in.ctx).ok());
    in.ctx.restore = nullptr;
  }
  return out;
}

// Routes `batch` of `input` to the instances that own its keys.
void Feed(std::vector<Instance>* instances, int input,
          const std::shared_ptr<arrow::RecordBatch>& batch, Sink* sink) {
  std::vector<std::shared_ptr<arrow::RecordBatch>> parts;
  ASSERT_TRUE(PartitionByKey(batch, {0}, static_cast<int>(instances->size()), 128,
                             arrow::default_memory_pool(), &parts)
                  .ok());
  for (size_t i = 0; i < parts.size(); ++i) {
    if (!parts[i]) continue;
    auto& in = (*instances)[i];
    auto st = in.op->ProcessBatch(input, parts[i], &in.ctx, sink);
    ASSERT_TRUE(st.ok()) << st.ToString();
  }
}

TEST(RegularJoinOperatorTest, SnapshotAndRestoreAtAnotherParallelism) {
  for (JoinType type : {JoinType::kInner, JoinType::kLeft, JoinType::kFull}) {
    for (auto [before, after] : {std::pair{2, 3}, std::pair{3, 1}, std::pair{1, 4}}) {
      for (bool with_condition : {false, true}) {
        std::mt19937_64 rng(static_cast<uint64_t>(before * 10 + after) +
                            static_cast<uint64_t>(type) * 100);
        auto left = MakeSide(&rng, 400, 30, true, 0);
        auto right = MakeSide(&rng, 300, 30, false, 100000);
        auto lb = Batches(left, true, 9);
        auto rb = Batches(right, false, 13);
        auto options = std::make_shared<RegularJoinOptions>();
        options->left_keys = {"k"};
        options->right_keys = {"k"};
        options->type = type;
        if (with_condition) options->condition = TestCondition();
        PlanNode node;
        node.kind = "regular_join";
        node.name = "regular_join#0";
        node.options = options;
        Sink sink;
        MemorySnapshot snapshot(1);
        {
          auto first = MakeInstances(node, before, nullptr);
          for (size_t b = 0; b < std::max(lb.size(), rb.size()) / 2; ++b) {
            if (b < lb.size()) Feed(&first, 0, lb[b], &sink);
            if (b < rb.size()) Feed(&first, 1, rb[b], &sink);
          }
          for (int i = 0; i < before; ++i) {
            auto writer = snapshot.Writer("join", i, before);
            ASSERT_TRUE(first[i].op->SnapshotState(writer.get(), &first[i].ctx).ok());
          }
        }
        auto second = MakeInstances(node, after, &snapshot);
        for (size_t b = std::max(lb.size(), rb.size()) / 2;
             b < std::max(lb.size(), rb.size()); ++b) {
          if (b < lb.size()) Feed(&second, 0, lb[b], &sink);
          if (b < rb.size()) Feed(&second, 1, rb[b], &sink);
        }
        EXPECT_EQ(Materialized(sink.batches, true),
                  NestedLoop(Final(left), Final(right), type,
                             with_condition ? Predicate(TestConditionHolds) : nullptr))
            << JoinTypeName(type) << " " << before << " -> " << after;
      }
    }
  }
}

TEST(RegularJoinOperatorTest, ExpiredRowsNoLongerMatchAndAreNotRetracted) {
  auto options = std::make_shared<RegularJoinOptions>();
  options->left_keys = {"k"};
  options->right_keys = {"k"};
  options->type = JoinType::kLeft;
  options->left_ttl_ms = 3'600'000;
  options->right_ttl_ms = 3'600'000;
  PlanNode node;
  node.kind = "regular_join";
  node.name = "regular_join#0";
  node.options = options;
  auto instances = MakeInstances(node, 1, nullptr);
  auto& in = instances[0];
  Sink sink;
  // Left 1 and right 1 join; left 2 is padded.
  Feed(&instances, 0, MakeBatch({{1, 1}, {2, 2}}, false), &sink);
  Feed(&instances, 1, MakeBatch({{1, 101}}, false), &sink);
  // Within the TTL nothing expires.
  Timer sweep{TimeDomain::kProcessingTime, WallClockMillis(), "regular_join_ttl"};
  ASSERT_TRUE(in.op->OnTimer(sweep, &in.ctx, &sink).ok());
  Feed(&instances, 1, MakeBatch({{2, 102}}, false), &sink);
  // Two hours later every row has expired: a new right row finds no partner,
  // and nothing is retracted.
  sweep.time = WallClockMillis() + 2 * 3'600'000;
  const size_t before = sink.batches.size();
  ASSERT_TRUE(in.op->OnTimer(sweep, &in.ctx, &sink).ok());
  EXPECT_EQ(sink.batches.size(), before);
  Feed(&instances, 1, MakeBatch({{1, 103}}, false), &sink);
  Feed(&instances, 0, MakeBatch({{1, 3}}, false), &sink);
  // (3, null): right 103 is stored after the sweep, so it joins left 3.
  EXPECT_EQ(Materialized(sink.batches, true), (Result{{1, 101}, {2, 102}, {3, 103}}));
}

TEST(RegularJoinOperatorTest, OuterRowsWaitForTheOtherSchema) {
  auto options = std::make_shared<RegularJoinOptions>();
  options->left_keys = {"k"};
  options->right_keys = {"k"};
  options->type = JoinType::kLeft;
  PlanNode node;
  node.kind = "regular_join";
  node.name = "regular_join#0";
  node.options = options;
  auto instances = MakeInstances(node, 1, nullptr);
  Sink sink;
  Feed(&instances, 0, MakeBatch({{1, 1}, {2, 2}}, false), &sink);
  EXPECT_TRUE(sink.batches.empty());
  Feed(&instances, 1, MakeBatch({{1, 101}}, false), &sink);
  EXPECT_EQ(Materialized(sink.batches, true), (Result{{1, 101}, {2, -1}}));
  // The first output has the padded rows, then -D (1, null), +I (1, 101).
  int deletes = 0;
  for (const auto& b : sink.batches) {
    auto ops = std::static_pointer_cast<arrow::Int8Array>(b->GetColumnByName("_op"));
    for (int64_t i = 0; i < b->num_rows(); ++i) deletes += ops->Value(i) == 3;
  }
  EXPECT_EQ(deletes, 1);
}

// At parallelism 4 most instances get left rows but no right row: they learn
// the right schema from the broadcast schema input and still pad.
TEST(RegularJoinLargeTest, OuterRowsOnInstancesWithoutOtherSideRows) {
  std::vector<Row> left, right{{3, 100}};
  for (int64_t i = 0; i < 40; ++i) left.push_back(Row{i, i});
  JobOptions jo;
  jo.parallelism = 4;
  auto env = StreamEnvironment::Make(jo);
  auto l = env->FromBatches(SideSchema(false), Batches(left, false, 8));
  auto r = env->FromBatches(SideSchema(false), Batches(right, false, 8));
  RegularJoinOptions o;
  o.left_keys = {"k"};
  o.right_keys = {"k"};
  o.type = JoinType::kLeft;
  auto collected = l.Join(r, o).Collect();
  ASSERT_TRUE(env->Execute().ok());
  EXPECT_EQ(Materialized(collected->batches(), true),
            NestedLoop(left, right, JoinType::kLeft));
}

TEST(RegularJoinOperatorTest, KeyTypeMismatchIsAnError) {
  JobOptions jo;
  jo.parallelism = 1;
  auto env = StreamEnvironment::Make(jo);
  auto l = env->FromBatches(SideSchema(false), {MakeBatch({{1, 1}}, false)});
  auto rs = arrow::schema({arrow::field("k", arrow::utf8())});
  arrow::StringBuilder b;
  ASSERT_TRUE(b.Append("x").ok());
  auto r =
      env->FromBatches(rs, {arrow::RecordBatch::Make(rs, 1, {b.Finish().ValueOrDie()})});
  RegularJoinOptions o;
  o.left_keys = {"k"};
  o.right_keys = {"k"};
  l.Join(r, o).Collect();
  auto result = env->Execute();
  ASSERT_FALSE(result.ok());
  EXPECT_NE(result.status().message().find("key type mismatch"), std::string::npos)
      << result.status().ToString();
}

}  // namespace
}  // namespace sabot
