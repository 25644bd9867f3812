// Updating group-by aggregation through a checkpoint: part of a randomized input
// at parallelism P1, a snapshot, fresh instances at P2 restored from it, the
// rest. The changelog (every +I / -U / +U) must equal the uninterrupted run's
// and a reference computed batch by batch.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <optional>
#include <random>
#include <set>

#include "sabot/operators/changelog.h"
#include "sabot/operators/group_aggregate.h"
#include "sabot/operators/snapshot_test_util.h"

namespace sabot {
namespace {

using snapshot_test::Cell;
using snapshot_test::Driver;
using snapshot_test::MakeNode;
using snapshot_test::NullCell;
using snapshot_test::Rescalings;
using snapshot_test::Row;
using snapshot_test::SortedRows;
using snapshot_test::Step;

struct InputRow {
  int64_t k;
  std::optional<int64_t> v;
};

std::string Name(int64_t k) { return "user-" + std::to_string(k * 31 % 97); }

std::shared_ptr<arrow::RecordBatch> MakeBatch(const std::vector<InputRow>& rows) {
  arrow::Int64Builder k, v;
  arrow::StringBuilder s;
  for (const auto& r : rows) {
    EXPECT_TRUE(k.Append(r.k).ok());
    EXPECT_TRUE(s.Append(Name(r.k)).ok());
    EXPECT_TRUE((r.v ? v.Append(*r.v) : v.AppendNull()).ok());
  }
  auto schema =
      arrow::schema({arrow::field("k", arrow::int64()), arrow::field("s", arrow::utf8()),
                     arrow::field("v", arrow::int64())});
  return arrow::RecordBatch::Make(
      schema, static_cast<int64_t>(rows.size()),
      {k.Finish().ValueOrDie(), s.Finish().ValueOrDie(), v.Finish().ValueOrDie()});
}

std::vector<std::vector<InputRow>> MakeBatches(uint64_t seed, int num_batches,
                                               int num_keys) {
  std::mt19937_64 rng(seed);
  std::vector<std::vector<InputRow>> batches;
  for (int b = 0; b < num_batches; ++b) {
    std::vector<InputRow> rows;
    const int n = 1 + static_cast<int>(rng() % 30);
    for (int i = 0; i < n; ++i) {
      InputRow r{static_cast<int64_t>(rng() % static_cast<uint64_t>(num_keys)),
                 std::nullopt};
      if (rng() % 20 != 0) r.v = static_cast<int64_t>(rng() % 100) - 30;
      rows.push_back(r);
    }
    batches.push_back(std::move(rows));
  }
  return batches;
}

std::vector<AggregateSpec> Aggregates() {
  return {{"count", "", "n", nullptr},
          {"count", "v", "nv", nullptr},
          {"sum", "v", "sum", nullptr},
          {"min", "v", "mn", nullptr},
          {"max", "v", "mx", nullptr},
          {"mean", "v", "avg", nullptr},
          {"var_samp", "v", "var", nullptr},
          {"count_distinct", "v", "nd", nullptr},
          {"count_distinct", "s", "nds", nullptr},
          {"first", "v", "first", nullptr},
          {"last", "v", "last", nullptr},
          {"collect_list", "v", "list", nullptr}};
}

const std::vector<std::string> kColumns = {"n",   "nv", "sum",   "mn",   "mx", "avg",
                                           "var", "nd", "first", "last", "_op"};

// The result cells of a key's rows so far (columns of kColumns without _op).
std::vector<std::string> Result(const std::vector<std::optional<int64_t>>& values) {
  int64_t nv = 0, sum = 0;
  std::optional<int64_t> mn, mx;
  std::set<int64_t> distinct;
  for (const auto& v : values) {
    if (!v) continue;
    ++nv;
    sum += *v;
    mn = mn ? std::min(*mn, *v) : *v;
    mx = mx ? std::max(*mx, *v) : *v;
    distinct.insert(*v);
  }
  std::vector<std::string> cells = {Cell(static_cast<int64_t>(values.size())), Cell(nv)};
  if (nv == 0) {
    for (int i = 0; i < 4; ++i) cells.push_back(NullCell());
  } else {
    cells.insert(cells.end(), {Cell(sum), Cell(*mn), Cell(*mx),
                               Cell(static_cast<double>(sum) / static_cast<double>(nv))});
  }
  if (nv < 2) {
    cells.push_back(NullCell());
  } else {
    const double mean = static_cast<double>(sum) / static_cast<double>(nv);
    double m2 = 0;
    for (const auto& v : values) {
      if (v) m2 += (static_cast<double>(*v) - mean) * (static_cast<double>(*v) - mean);
    }
    cells.push_back(Cell(m2 / static_cast<double>(nv - 1)));
  }
  cells.push_back(Cell(static_cast<int64_t>(distinct.size())));
  cells.push_back(values.front() ? Cell(*values.front()) : NullCell());
  cells.push_back(values.back() ? Cell(*values.back()) : NullCell());
  return cells;
}

// The changelog, batch by batch: per touched key -U old / +U new, or +I.
std::vector<std::string> ReferenceChangelog(
    const std::vector<std::vector<InputRow>>& batches, bool keyed) {
  std::map<int64_t, std::vector<std::optional<int64_t>>> values;
  std::vector<std::string> out;
  auto row = [&](int64_t k, int op) {
    std::vector<std::string> cells;
    if (keyed) cells.push_back(Cell(k));
    auto r = Result(values[k]);
    cells.insert(cells.end(), r.begin(), r.end());
    cells.push_back(Cell(static_cast<int64_t>(op)));
    out.push_back(Row(cells));
  };
  for (const auto& batch : batches) {
    std::vector<int64_t> touched;
    std::set<int64_t> seen;
    for (const auto& r : batch) {
      const int64_t k = keyed ? r.k : 0;
      if (seen.insert(k).second) touched.push_back(k);
    }
    std::set<int64_t> existed;
    for (int64_t k : touched) {
      if (!values[k].empty()) {
        existed.insert(k);
        row(k, static_cast<int>(ChangeOp::kUpdateBefore));
      }
    }
    for (const auto& r : batch) values[keyed ? r.k : 0].push_back(r.v);
    for (int64_t k : touched) {
      row(k, static_cast<int>(existed.count(k) ? ChangeOp::kUpdateAfter
                                               : ChangeOp::kInsert));
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

void CheckGroupAggregate(const std::vector<std::string>& keys, uint64_t seed) {
  auto batches = MakeBatches(seed, 120, 13);
  std::vector<Step> steps;
  for (const auto& b : batches) steps.push_back(Step::Batch(0, MakeBatch(b)));
  auto o = std::make_shared<GroupAggregateOptions>();
  o->keys = keys;
  o->aggregates = Aggregates();
  auto node = MakeNode("group_aggregate", o);
  Driver driver{node.get(), {keys}};
  auto columns = keys;
  columns.insert(columns.end(), kColumns.begin(), kColumns.end());
  const auto reference = ReferenceChangelog(batches, !keys.empty());
  for (auto [p1, p2] : Rescalings()) {
    for (size_t cut : {steps.size() / 4, steps.size() * 3 / 4}) {
      SCOPED_TRACE("restore " + std::to_string(p1) + " -> " + std::to_string(p2) +
                   " at step " + std::to_string(cut));
      auto run = driver.RunWithRestore(p1, p2, steps, cut);
      ASSERT_TRUE(run.ok()) << run.status().ToString();
      auto& r = **run;
      EXPECT_GT(r.snapshot.RowsIn("groups"), 0);
      EXPECT_ROWS_EQ(SortedRows(r.restored.main), SortedRows(r.straight.main));
      EXPECT_ROWS_EQ(SortedRows(r.restored.main, columns), reference);
    }
  }
}

TEST(GroupAggregateSnapshotTest, KeyedChangelogSurvivesRestoreAndRescale) {
  CheckGroupAggregate({"k"}, 21);
}

TEST(GroupAggregateSnapshotTest, NonKeyedRestores) { CheckGroupAggregate({}, 22); }

TEST(GroupAggregateSnapshotTest, RestoreWithoutInputKeepsNothing) {
  // A snapshot taken before any row restores to an empty operator.
  auto o = std::make_shared<GroupAggregateOptions>();
  o->keys = {"k"};
  o->aggregates = {{"count", "", "n", nullptr}};
  auto node = MakeNode("group_aggregate", o);
  Driver driver{node.get(), {{"k"}}};
  std::vector<Step> steps = {Step::Batch(0, MakeBatch({{1, 5}, {2, 6}, {1, 7}}))};
  auto run = driver.RunWithRestore(2, 3, steps, 0);
  ASSERT_TRUE(run.ok()) << run.status().ToString();
  EXPECT_ROWS_EQ(SortedRows((*run)->restored.main), SortedRows((*run)->straight.main));
  EXPECT_EQ((*run)->snapshot.RowsIn("groups"), 0);
}

}  // namespace
}  // namespace sabot
