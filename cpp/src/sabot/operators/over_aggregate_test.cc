// over_rows (ROWS OVER aggregate over a changelog) against a reference that
// recomputes every touched key's frames after each batch, straight and through
// a checkpoint restored at another parallelism; and its errors.
#include "sabot/operators/over_aggregate.h"

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <set>

#include "sabot/operators/changelog.h"
#include "sabot/operators/snapshot_test_util.h"

namespace sabot {
namespace {

using snapshot_test::Cell;
using snapshot_test::Driver;
using snapshot_test::MakeNode;
using snapshot_test::Rescalings;
using snapshot_test::Row;
using snapshot_test::SortedRows;
using snapshot_test::Step;

struct Change {
  int64_t k;
  int64_t id;
  int64_t t;
  int64_t v;
  double f;
  ChangeOp op;
};

std::shared_ptr<arrow::RecordBatch> MakeBatch(const std::vector<Change>& rows) {
  arrow::Int64Builder k, id, v;
  arrow::TimestampBuilder t(arrow::timestamp(arrow::TimeUnit::MILLI),
                            arrow::default_memory_pool());
  arrow::DoubleBuilder f;
  arrow::Int8Builder op;
  for (const auto& r : rows) {
    EXPECT_TRUE(k.Append(r.k).ok());
    EXPECT_TRUE(id.Append(r.id).ok());
    EXPECT_TRUE(t.Append(r.t).ok());
    EXPECT_TRUE(v.Append(r.v).ok());
    EXPECT_TRUE(f.Append(r.f).ok());
    EXPECT_TRUE(op.Append(static_cast<int8_t>(r.op)).ok());
  }
  auto schema = arrow::schema(
      {arrow::field("k", arrow::int64()), arrow::field("id", arrow::int64()),
       arrow::field("t", arrow::timestamp(arrow::TimeUnit::MILLI)),
       arrow::field("v", arrow::int64()), arrow::field("f", arrow::float64()),
       arrow::field("_op", arrow::int8())});
  return arrow::RecordBatch::Make(
      schema, static_cast<int64_t>(rows.size()),
      {k.Finish().ValueOrDie(), id.Finish().ValueOrDie(), t.Finish().ValueOrDie(),
       v.Finish().ValueOrDie(), f.Finish().ValueOrDie(), op.Finish().ValueOrDie()});
}

int64_t FloorDiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  if (a % b != 0 && ((a < 0) != (b < 0))) --q;
  return q;
}

// Per batch: apply the changes, then per touched key order the rows by (t, id)
// and compute avg(v) (rounded down), sum(v), max(f), count() over each row and
// its `preceding` predecessors; emit -D for rows gone, +I for new rows, -U/+U
// for rows whose results changed.
std::vector<std::string> Reference(const std::vector<std::vector<Change>>& batches,
                                   size_t preceding) {
  struct Live {
    int64_t t, v;
    double f;
  };
  std::map<int64_t, std::map<int64_t, Live>> live;                     // k -> id -> row
  std::map<int64_t, std::map<int64_t, std::vector<std::string>>> out;  // k -> id -> cells
  std::vector<std::string> rows;
  auto emit = [&](int64_t k, int64_t id, const std::vector<std::string>& r, ChangeOp op) {
    std::vector<std::string> cells = {Cell(k), Cell(id)};
    cells.insert(cells.end(), r.begin(), r.end());
    cells.push_back(Cell(static_cast<int64_t>(op)));
    rows.push_back(Row(cells));
  };
  for (const auto& batch : batches) {
    std::set<int64_t> touched;
    for (const auto& c : batch) {
      touched.insert(c.k);
      if (c.op == ChangeOp::kInsert || c.op == ChangeOp::kUpdateAfter)
        live[c.k][c.id] = Live{c.t, c.v, c.f};
      else
        live[c.k].erase(c.id);
    }
    for (int64_t k : touched) {
      std::vector<std::pair<std::pair<int64_t, int64_t>, Live>> sorted;
      for (const auto& [id, r] : live[k]) sorted.push_back({{r.t, id}, r});
      std::sort(sorted.begin(), sorted.end(),
                [](const auto& a, const auto& b) { return a.first < b.first; });
      std::map<int64_t, std::vector<std::string>> now;
      for (size_t i = 0; i < sorted.size(); ++i) {
        const size_t first = i >= preceding ? i - preceding : 0;
        int64_t sum = 0;
        double max = sorted[first].second.f;
        for (size_t j = first; j <= i; ++j) {
          sum += sorted[j].second.v;
          max = std::max(max, sorted[j].second.f);
        }
        const auto n = static_cast<int64_t>(i - first + 1);
        now[sorted[i].first.second] = {Cell(FloorDiv(sum, n)), Cell(sum), Cell(max),
                                       Cell(n)};
      }
      auto& before = out[k];
      for (const auto& [id, r] : before) {
        if (!now.count(id)) emit(k, id, r, ChangeOp::kDelete);
      }
      for (const auto& [id, r] : now) {
        auto it = before.find(id);
        if (it == before.end()) {
          emit(k, id, r, ChangeOp::kInsert);
        } else if (it->second != r) {
          emit(k, id, it->second, ChangeOp::kUpdateBefore);
          emit(k, id, r, ChangeOp::kUpdateAfter);
        }
      }
      before = std::move(now);
    }
  }
  std::sort(rows.begin(), rows.end());
  return rows;
}

// Random changelog: new rows (+I), updates (-U/+U in one batch, or the -U in
// one batch and the +U in the next), deletes (-D); negative values too.
std::vector<std::vector<Change>> RandomChanges(uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::map<int64_t, std::pair<int64_t, int64_t>> live;  // id -> (k, t)
  std::vector<Change> deferred;
  std::vector<std::vector<Change>> batches;
  int64_t next_id = 0;
  for (int b = 0; b < 80; ++b) {
    std::vector<Change> batch = std::move(deferred);
    deferred.clear();
    const int count = 1 + static_cast<int>(rng() % 20);
    for (int i = 0; i < count; ++i) {
      const int64_t v = static_cast<int64_t>(rng() % 200) - 50;
      const double f = static_cast<double>(rng() % 1000) / 8.0;
      const int64_t t = static_cast<int64_t>(rng() % 50);  // many equal times
      const int kind = live.empty() ? 0 : static_cast<int>(rng() % 6);
      if (kind <= 2) {
        const int64_t k = static_cast<int64_t>(rng() % 7);
        live[next_id] = {k, t};
        batch.push_back({k, next_id++, t, v, f, ChangeOp::kInsert});
        continue;
      }
      auto it = live.begin();
      std::advance(it, static_cast<int64_t>(rng() % live.size()));
      const int64_t id = it->first, k = it->second.first, old_t = it->second.second;
      if (kind == 5) {
        batch.push_back({k, id, old_t, 0, 0, ChangeOp::kDelete});
        live.erase(it);
        continue;
      }
      batch.push_back({k, id, old_t, 0, 0, ChangeOp::kUpdateBefore});
      Change after{k, id, t, v, f, ChangeOp::kUpdateAfter};
      it->second.second = t;
      if (kind == 4 && rng() % 2 == 0)
        deferred.push_back(after);
      else
        batch.push_back(after);
    }
    batches.push_back(std::move(batch));
  }
  if (!deferred.empty()) batches.push_back(deferred);
  return batches;
}

std::shared_ptr<OverRowsOptions> Options(int64_t preceding) {
  auto o = std::make_shared<OverRowsOptions>();
  o->keys = {"k"};
  o->order_by = "t";
  o->row_key = "id";
  o->preceding = preceding;
  o->aggregates = {{"mean", "v", "avg_v", nullptr},
                   {"sum", "v", "sum_v", nullptr},
                   {"max", "f", "max_f", nullptr},
                   {"count", "", "n", nullptr}};
  return o;
}

void CheckOverRows(int64_t preceding, uint64_t seed) {
  const auto batches = RandomChanges(seed);
  std::vector<Step> steps;
  for (const auto& b : batches) steps.push_back(Step::Batch(0, MakeBatch(b)));
  auto node = MakeNode("over_rows", Options(preceding));
  Driver driver{node.get(), {{"k"}}};
  const auto reference = Reference(batches, static_cast<size_t>(preceding));
  auto straight = driver.RunStraight(2, steps);
  ASSERT_TRUE(straight.ok()) << straight.status().ToString();
  EXPECT_ROWS_EQ(SortedRows(straight->main), reference);
  for (auto [p1, p2] : Rescalings()) {
    for (size_t cut : {steps.size() / 3, steps.size() * 2 / 3}) {
      SCOPED_TRACE("restore " + std::to_string(p1) + " -> " + std::to_string(p2) +
                   " at step " + std::to_string(cut));
      auto run = driver.RunWithRestore(p1, p2, steps, cut);
      ASSERT_TRUE(run.ok()) << run.status().ToString();
      auto& r = **run;
      EXPECT_GT(r.snapshot.RowsIn("over_rows"), 0);
      EXPECT_ROWS_EQ(SortedRows(r.restored.main), reference);
    }
  }
}

TEST(OverRowsTest, TenPrecedingThroughRestore) { CheckOverRows(10, 61); }

TEST(OverRowsTest, CurrentRowOnly) { CheckOverRows(0, 62); }

TEST(OverRowsTest, TwoPrecedingThroughRestore) { CheckOverRows(2, 63); }

TEST(OverRowsTest, FramesLongerThanMostKeys) { CheckOverRows(150, 64); }

TEST(OverRowsTest, OutputSchema) {
  auto node = MakeNode("over_rows", Options(3));
  Driver driver{node.get(), {{"k"}}};
  auto run = driver.RunStraight(
      1, {Step::Batch(0, MakeBatch({{1, 5, 10, 7, 1.5, ChangeOp::kInsert}}))});
  ASSERT_TRUE(run.ok()) << run.status().ToString();
  ASSERT_EQ(run->main.size(), 1u);
  EXPECT_EQ(run->main[0]->schema()->ToString(),
            "k: int64\nid: int64\navg_v: int64\nsum_v: int64\nmax_f: double\nn: int64\n"
            "_op: int8 not null");
}

TEST(OverRowsTest, NullOrderValueNamesOperatorAndColumn) {
  auto node = MakeNode("over_rows", Options(3));
  Driver driver{node.get(), {{"k"}}};
  auto batch = MakeBatch({{1, 5, 10, 7, 1.5, ChangeOp::kInsert}});
  arrow::TimestampBuilder t(arrow::timestamp(arrow::TimeUnit::MILLI),
                            arrow::default_memory_pool());
  ASSERT_TRUE(t.AppendNull().ok());
  batch = batch->SetColumn(2, batch->schema()->field(2), t.Finish().ValueOrDie())
              .ValueOrDie();
  auto run = driver.RunStraight(1, {Step::Batch(0, batch)});
  ASSERT_FALSE(run.ok());
  EXPECT_NE(run.status().message().find("over_rows#0"), std::string::npos)
      << run.status().ToString();
  EXPECT_NE(run.status().message().find("'t'"), std::string::npos)
      << run.status().ToString();
}

TEST(OverRowsTest, MissingColumnNamesIt) {
  auto o = Options(3);
  o->order_by = "nope";
  auto node = MakeNode("over_rows", o);
  Driver driver{node.get(), {{"k"}}};
  auto run = driver.RunStraight(
      1, {Step::Batch(0, MakeBatch({{1, 5, 10, 7, 1.5, ChangeOp::kInsert}}))});
  ASSERT_FALSE(run.ok());
  EXPECT_NE(run.status().message().find("'nope'"), std::string::npos)
      << run.status().ToString();
}

}  // namespace
}  // namespace sabot
