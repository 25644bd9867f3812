// Top-N per key through a checkpoint: the changelog of the restored run (at
// another parallelism) must equal the uninterrupted run's and a reference that
// recomputes every key's top N after each batch.
#include <gtest/gtest.h>

#include <map>
#include <optional>
#include <random>
#include <set>

#include "sabot/operators/changelog.h"
#include "sabot/operators/snapshot_test_util.h"
#include "sabot/operators/top_n.h"

namespace sabot {
namespace {

using snapshot_test::Cell;
using snapshot_test::Driver;
using snapshot_test::MakeNode;
using snapshot_test::Rescalings;
using snapshot_test::Row;
using snapshot_test::SortedRows;
using snapshot_test::Step;

struct InputRow {
  int64_t k;
  int64_t id;  // unique, arrival order
  std::optional<int64_t> v;
};

std::shared_ptr<arrow::RecordBatch> MakeBatch(const std::vector<InputRow>& rows) {
  arrow::Int64Builder k, id, v;
  arrow::StringBuilder s;
  for (const auto& r : rows) {
    EXPECT_TRUE(k.Append(r.k).ok());
    EXPECT_TRUE(id.Append(r.id).ok());
    EXPECT_TRUE(s.Append("item-" + std::to_string(r.id)).ok());
    EXPECT_TRUE((r.v ? v.Append(*r.v) : v.AppendNull()).ok());
  }
  auto schema = arrow::schema(
      {arrow::field("k", arrow::int64()), arrow::field("id", arrow::int64()),
       arrow::field("s", arrow::utf8()), arrow::field("v", arrow::int64())});
  return arrow::RecordBatch::Make(schema, static_cast<int64_t>(rows.size()),
                                  {k.Finish().ValueOrDie(), id.Finish().ValueOrDie(),
                                   s.Finish().ValueOrDie(), v.Finish().ValueOrDie()});
}

// The changelog batch by batch: each key's top n by (v, then arrival) before
// and after the batch; without rank -D for rows that left, +I for rows that
// entered; with rank per rank -U/+U, +I or -D.
std::vector<std::string> ReferenceChangelog(
    const std::vector<std::vector<InputRow>>& batches, size_t n, bool descending,
    bool with_rank, bool keyed) {
  std::map<int64_t, std::vector<InputRow>> all;  // per key, arrival order
  auto top = [&](int64_t k) {
    std::vector<InputRow> rows;
    for (const auto& r : all[k]) {
      if (r.v) rows.push_back(r);
    }
    std::stable_sort(rows.begin(), rows.end(), [&](const InputRow& a, const InputRow& b) {
      return descending ? *a.v > *b.v : *a.v < *b.v;
    });
    if (rows.size() > n) rows.resize(n);
    return rows;
  };
  std::vector<std::string> out;
  auto add = [&](const InputRow& r, int64_t rank, ChangeOp op) {
    std::vector<std::string> cells = {Cell(r.k), Cell(r.id), Cell(*r.v)};
    if (with_rank) cells.push_back(Cell(rank));
    cells.push_back(Cell(static_cast<int64_t>(op)));
    out.push_back(Row(cells));
  };
  for (const auto& batch : batches) {
    std::set<int64_t> touched;
    for (const auto& r : batch) touched.insert(keyed ? r.k : 0);
    std::map<int64_t, std::vector<InputRow>> before;
    for (int64_t k : touched) before[k] = top(k);
    for (const auto& r : batch) all[keyed ? r.k : 0].push_back(r);
    for (int64_t k : touched) {
      const auto& old_set = before[k];
      const auto new_set = top(k);
      if (with_rank) {
        for (size_t i = 0; i < std::max(old_set.size(), new_set.size()); ++i) {
          const auto rank = static_cast<int64_t>(i) + 1;
          if (i < old_set.size() && i < new_set.size()) {
            if (old_set[i].id == new_set[i].id) continue;
            add(old_set[i], rank, ChangeOp::kUpdateBefore);
            add(new_set[i], rank, ChangeOp::kUpdateAfter);
          } else if (i < new_set.size()) {
            add(new_set[i], rank, ChangeOp::kInsert);
          } else {
            add(old_set[i], rank, ChangeOp::kDelete);
          }
        }
        continue;
      }
      auto contains = [](const std::vector<InputRow>& set, int64_t id) {
        for (const auto& r : set) {
          if (r.id == id) return true;
        }
        return false;
      };
      for (const auto& r : old_set) {
        if (!contains(new_set, r.id)) add(r, 0, ChangeOp::kDelete);
      }
      for (const auto& r : new_set) {
        if (!contains(old_set, r.id)) add(r, 0, ChangeOp::kInsert);
      }
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

void CheckTopN(const std::vector<std::string>& keys, int64_t n, bool descending,
               bool with_rank, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<std::vector<InputRow>> batches;
  int64_t id = 0;
  for (int b = 0; b < 100; ++b) {
    std::vector<InputRow> rows;
    const int count = 1 + static_cast<int>(rng() % 25);
    for (int i = 0; i < count; ++i) {
      InputRow r{static_cast<int64_t>(rng() % 11), id++, std::nullopt};
      if (rng() % 15 != 0) r.v = static_cast<int64_t>(rng() % 40);  // many ties
      rows.push_back(r);
    }
    batches.push_back(std::move(rows));
  }
  std::vector<Step> steps;
  for (const auto& b : batches) steps.push_back(Step::Batch(0, MakeBatch(b)));
  auto o = std::make_shared<TopNOptions>();
  o->keys = keys;
  o->n = n;
  o->by = "v";
  o->descending = descending;
  o->with_rank = with_rank;
  auto node = MakeNode("top_n", o);
  Driver driver{node.get(), {keys}};
  std::vector<std::string> columns = {"k", "id", "v"};
  if (with_rank) columns.push_back("rank");
  columns.push_back("_op");
  const auto reference = ReferenceChangelog(batches, static_cast<size_t>(n), descending,
                                            with_rank, !keys.empty());
  for (auto [p1, p2] : Rescalings()) {
    for (size_t cut : {steps.size() / 3, steps.size() * 2 / 3}) {
      SCOPED_TRACE("restore " + std::to_string(p1) + " -> " + std::to_string(p2) +
                   " at step " + std::to_string(cut));
      auto run = driver.RunWithRestore(p1, p2, steps, cut);
      ASSERT_TRUE(run.ok()) << run.status().ToString();
      auto& r = **run;
      EXPECT_GT(r.snapshot.RowsIn("top_rows"), 0);
      EXPECT_ROWS_EQ(SortedRows(r.restored.main), SortedRows(r.straight.main));
      EXPECT_ROWS_EQ(SortedRows(r.restored.main, columns), reference);
    }
  }
}

TEST(TopNSnapshotTest, KeyedTopThreeWithoutRank) { CheckTopN({"k"}, 3, true, false, 31); }

TEST(TopNSnapshotTest, KeyedTopTwoAscendingWithRank) {
  CheckTopN({"k"}, 2, false, true, 32);
}

TEST(TopNSnapshotTest, NonKeyedTopFiveWithRank) { CheckTopN({}, 5, true, true, 33); }

}  // namespace
}  // namespace sabot
