// The watermark assigner through a checkpoint: per-split (or per-instance)
// event-time maxima and the last emitted watermark are operator state. A
// restored assigner never emits a watermark below what was emitted, continues
// exactly as the uninterrupted one at the same parallelism, and reaches the
// same final watermark at another parallelism.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <thread>

#include "sabot/exec/stream_element.h"
#include "sabot/operators/event_time.h"
#include "sabot/operators/snapshot_test_util.h"

namespace sabot {
namespace {

using snapshot_test::Driver;
using snapshot_test::MakeNode;
using snapshot_test::ParallelOperator;
using snapshot_test::RecordedSnapshot;
using snapshot_test::Rescalings;
using snapshot_test::SortedRows;
using snapshot_test::Step;

constexpr int kSplits = 6;

std::shared_ptr<arrow::RecordBatch> MakeBatch(
    int64_t split, const std::vector<std::optional<int64_t>>& ts, int64_t first_id) {
  arrow::Int64Builder s, t, id;
  for (size_t i = 0; i < ts.size(); ++i) {
    EXPECT_TRUE(s.Append(split).ok());
    EXPECT_TRUE((ts[i] ? t.Append(*ts[i]) : t.AppendNull()).ok());
    EXPECT_TRUE(id.Append(first_id + static_cast<int64_t>(i)).ok());
  }
  auto schema = arrow::schema({arrow::field("split", arrow::int64()),
                               arrow::field("ts", arrow::int64()),
                               arrow::field("id", arrow::int64())});
  return arrow::RecordBatch::Make(
      schema, static_cast<int64_t>(ts.size()),
      {s.Finish().ValueOrDie(), t.Finish().ValueOrDie(), id.Finish().ValueOrDie()});
}

// Batches of one split each (as a source reader polls them); splits advance at
// different speeds, rows are out of order, a few have no or an invalid time.
std::vector<Step> MakeSteps(uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<Step> steps;
  std::vector<int64_t> clock(kSplits, 1000);
  int64_t id = 0;
  for (int b = 0; b < 240; ++b) {
    const int64_t split = static_cast<int64_t>(rng() % kSplits);
    std::vector<std::optional<int64_t>> ts;
    const int n = 1 + static_cast<int>(rng() % 12);
    for (int i = 0; i < n; ++i) {
      clock[split] += 1 + static_cast<int64_t>(rng() % (3 + split));
      int64_t t = clock[split] - static_cast<int64_t>(rng() % 30);
      if (rng() % 40 == 0) {
        ts.push_back(std::nullopt);
      } else if (rng() % 50 == 0) {
        ts.push_back(-5);  // before 1970: invalid
      } else {
        ts.push_back(t);
      }
    }
    steps.push_back(Step::Batch(0, MakeBatch(split, ts, id)));
    id += n;
  }
  return steps;
}

int SplitOf(const arrow::RecordBatch& batch) {
  return static_cast<int>(
      static_cast<const arrow::Int64Array&>(*batch.column(0)).Value(0));
}

std::vector<int64_t> WithoutEnd(std::vector<int64_t> w) {
  w.erase(std::remove(w.begin(), w.end(), kMaxWatermark), w.end());
  return w;
}

void CheckAssigner(const std::shared_ptr<WatermarkOptions>& o, uint64_t seed) {
  auto steps = MakeSteps(seed);
  auto node = MakeNode("assign_watermarks", o);
  Driver driver;
  driver.node = node.get();
  driver.side_tags = {"invalid_time"};
  driver.route = [](int, const arrow::RecordBatch& b, int parallelism) {
    return SplitOf(b) % parallelism;
  };
  for (auto [p1, p2] : Rescalings()) {
    for (size_t cut : {steps.size() / 3, steps.size() * 2 / 3}) {
      SCOPED_TRACE("restore " + std::to_string(p1) + " -> " + std::to_string(p2) +
                   " at step " + std::to_string(cut));
      auto run_or = driver.RunWithRestore(p1, p2, steps, cut);
      ASSERT_TRUE(run_or.ok()) << run_or.status().ToString();
      auto& run = **run_or;
      // Rows pass through unchanged; bad times go to the side output.
      EXPECT_ROWS_EQ(SortedRows(run.restored.main), SortedRows(run.straight.main));
      EXPECT_ROWS_EQ(SortedRows(run.restored.side["invalid_time"]),
                     SortedRows(run.straight.side["invalid_time"]));
      EXPECT_GT(run.straight.side["invalid_time"].size(), 0u);
      // What each old instance had emitted when the snapshot was taken.
      std::vector<int64_t> last_at_snapshot;
      for (const auto& w : run.old_watermarks_at_snapshot)
        last_at_snapshot.push_back(w.empty() ? kMinWatermark : w.back());
      const int64_t min_at_snapshot =
          *std::min_element(last_at_snapshot.begin(), last_at_snapshot.end());
      ASSERT_GT(min_at_snapshot, kMinWatermark);
      for (int j = 0; j < p2; ++j) {
        const auto emitted = WithoutEnd(run.new_watermarks[j]);
        const int64_t floor = p1 == p2 ? last_at_snapshot[j] : min_at_snapshot;
        ASSERT_FALSE(emitted.empty()) << "instance " << j;
        EXPECT_GT(emitted.front(), floor) << "instance " << j << " went back in time";
        EXPECT_TRUE(std::is_sorted(emitted.begin(), emitted.end()));
        EXPECT_EQ(std::adjacent_find(emitted.begin(), emitted.end()), emitted.end());
        if (p1 == p2) {
          // The same instance goes on exactly as the uninterrupted one.
          const auto& before = run.old_watermarks_at_snapshot[j];
          const auto all = WithoutEnd(run.old_watermarks[j]);
          std::vector<int64_t> after(
              all.begin() + static_cast<std::ptrdiff_t>(before.size()), all.end());
          EXPECT_EQ(emitted, after) << "instance " << j;
        }
      }
      // The merged watermark downstream (minimum over instances) ends equal.
      auto merged = [](const std::vector<std::vector<int64_t>>& per_instance) {
        int64_t m = kMaxWatermark;
        for (const auto& w : per_instance) {
          auto e = WithoutEnd(w);
          m = std::min(m, e.empty() ? kMinWatermark : e.back());
        }
        return m;
      };
      EXPECT_EQ(merged(run.new_watermarks), merged(run.old_watermarks));
    }
  }
}

TEST(WatermarkAssignerSnapshotTest, PerSplitWatermarksRestoreAtOtherParallelism) {
  auto o = std::make_shared<WatermarkOptions>();
  o->time_column = "ts";
  o->max_out_of_orderness_ms = 40;
  o->split_column = "split";
  CheckAssigner(o, 41);
}

TEST(WatermarkAssignerSnapshotTest, PerInstanceWatermarkRestores) {
  // Without a split column the floor alone must hold: the restored maximum
  // event time makes the same instance continue exactly.
  auto o = std::make_shared<WatermarkOptions>();
  o->time_column = "ts";
  o->strategy = "monotonous";
  auto steps = MakeSteps(42);
  auto node = MakeNode("assign_watermarks", o);
  Driver driver;
  driver.node = node.get();
  driver.side_tags = {"invalid_time"};
  // Every split to instance 0 of 2: instance 1 never sees a row.
  driver.route = [](int, const arrow::RecordBatch&, int) { return 0; };
  auto run_or = driver.RunWithRestore(2, 2, steps, steps.size() / 2);
  ASSERT_TRUE(run_or.ok()) << run_or.status().ToString();
  auto& run = **run_or;
  const auto& before = run.old_watermarks_at_snapshot[0];
  ASSERT_FALSE(before.empty());
  const auto all = WithoutEnd(run.old_watermarks[0]);
  EXPECT_EQ(WithoutEnd(run.new_watermarks[0]),
            std::vector<int64_t>(all.begin() + static_cast<std::ptrdiff_t>(before.size()),
                                 all.end()));
  EXPECT_TRUE(WithoutEnd(run.new_watermarks[1]).empty());
}

TEST(WatermarkAssignerSnapshotTest, RestoredInstanceWithoutDataGoesIdle) {
  auto o = std::make_shared<WatermarkOptions>();
  o->time_column = "ts";
  o->max_out_of_orderness_ms = 10;
  o->idle_timeout_ms = 1;
  auto node = MakeNode("assign_watermarks", o);
  auto old_op = ParallelOperator::Make(*node, 1);
  ASSERT_TRUE(old_op.ok());
  ASSERT_TRUE((*old_op)->ProcessOn(0, 0, MakeBatch(0, {100, 120}, 0)).ok());
  RecordedSnapshot snapshot(1);
  ASSERT_TRUE((*old_op)->Snapshot(&snapshot).ok());
  MemorySnapshot memory(1);
  ASSERT_TRUE(snapshot.ToMemorySnapshot(&memory).ok());
  auto restored = ParallelOperator::Make(*node, 2, 128, &memory);
  ASSERT_TRUE(restored.ok()) << restored.status().ToString();
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ((*restored)->instance(i).timers.num_processing_timers(), 1u);
  }
  // Idleness is measured on the wall clock from the restore: poll the timers
  // (each firing re-arms until the timeout passed) with a generous deadline.
  const int64_t deadline = WallClockMillis() + 10'000;
  auto all_idle = [&] {
    return (*restored)->instance(0).out.idles.size() == 1 &&
           (*restored)->instance(1).out.idles.size() == 1;
  };
  while (!all_idle() && WallClockMillis() < deadline) {
    ASSERT_TRUE((*restored)->FireProcessingTimers(WallClockMillis() + 60'000).ok());
    std::this_thread::yield();
  }
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ((*restored)->instance(i).out.idles, std::vector<bool>{true});
  }
  // Data makes it active again, and its watermark resumes above the old one.
  ASSERT_TRUE((*restored)->ProcessOn(0, 0, MakeBatch(0, {130}, 2)).ok());
  EXPECT_EQ((*restored)->instance(0).out.idles, (std::vector<bool>{true, false}));
  EXPECT_EQ((*restored)->instance(0).out.watermarks, std::vector<int64_t>{119});
}

}  // namespace
}  // namespace sabot
