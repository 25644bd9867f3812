// Event-time joins through a checkpoint: interval, window, ASOF and temporal
// joins run on randomized, out-of-order two-sided input; a snapshot in the
// middle restores fresh instances at another parallelism. The union of outputs
// (and of late side outputs) must equal the uninterrupted run and a
// nested-loop reference.
#include <gtest/gtest.h>

#include <map>
#include <optional>
#include <random>

#include "sabot/exec/stream_element.h"
#include "sabot/operators/event_time_join.h"
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

struct JoinRow {
  int side;
  std::optional<int64_t> k;  // null keys never match
  int64_t ts;
  int64_t id;  // unique per side
  bool deleted = false;
  size_t step;        // index of the step that delivered it
  int64_t wm_before;  // the watermark when it arrived
};

std::shared_ptr<arrow::RecordBatch> MakeBatch(const std::vector<JoinRow>& rows,
                                              bool with_deleted) {
  arrow::Int64Builder k, ts, id;
  arrow::StringBuilder note;
  arrow::BooleanBuilder deleted;
  for (const auto& r : rows) {
    EXPECT_TRUE((r.k ? k.Append(*r.k) : k.AppendNull()).ok());
    EXPECT_TRUE(ts.Append(r.ts).ok());
    EXPECT_TRUE(id.Append(r.id).ok());
    EXPECT_TRUE(note.Append((r.side == 0 ? "L" : "R") + std::to_string(r.id)).ok());
    EXPECT_TRUE(deleted.Append(r.deleted).ok());
  }
  arrow::FieldVector fields = {
      arrow::field("k", arrow::int64()), arrow::field("ts", arrow::int64()),
      arrow::field("id", arrow::int64()), arrow::field("note", arrow::utf8())};
  arrow::ArrayVector columns = {k.Finish().ValueOrDie(), ts.Finish().ValueOrDie(),
                                id.Finish().ValueOrDie(), note.Finish().ValueOrDie()};
  if (with_deleted) {
    fields.push_back(arrow::field("deleted", arrow::boolean()));
    columns.push_back(deleted.Finish().ValueOrDie());
  }
  return arrow::RecordBatch::Make(arrow::schema(fields),
                                  static_cast<int64_t>(rows.size()), columns);
}

struct Input {
  std::vector<JoinRow> rows;
  std::vector<Step> steps;
};

// Rounds of a left batch, a right batch, then the merged watermark (the
// minimum of both sides' largest time - bound - 1). A few rows are later than
// the bound, a few have a null key.
Input MakeInput(uint64_t seed, int rounds, int num_keys, int64_t bound,
                bool right_deletes = false) {
  std::mt19937_64 rng(seed);
  Input in;
  int64_t max_ts[2] = {kMinWatermark, kMinWatermark};
  int64_t wm = kMinWatermark;
  int64_t next_id[2] = {0, 0};
  for (int r = 0; r < rounds; ++r) {
    for (int side = 0; side < 2; ++side) {
      std::vector<JoinRow> rows;
      const int n = 1 + static_cast<int>(rng() % 12);
      for (int i = 0; i < n; ++i) {
        JoinRow row;
        row.side = side;
        if (rng() % 30 != 0)
          row.k = static_cast<int64_t>(rng() % static_cast<uint64_t>(num_keys));
        row.ts = r * 20 + static_cast<int64_t>(rng() % static_cast<uint64_t>(bound));
        if (rng() % 20 == 0) row.ts = std::max<int64_t>(0, row.ts - 3 * bound);
        row.id = next_id[side]++;
        row.deleted = right_deletes && side == 1 && rng() % 6 == 0;
        row.step = in.steps.size();
        row.wm_before = wm;
        max_ts[side] = std::max(max_ts[side], row.ts);
        rows.push_back(row);
        in.rows.push_back(row);
      }
      in.steps.push_back(Step::Batch(side, MakeBatch(rows, right_deletes && side == 1)));
    }
    const int64_t merged = std::min(max_ts[0], max_ts[1]) - bound - 1;
    if (merged > wm) {
      wm = merged;
      in.steps.push_back(Step::Watermark(wm));
    }
  }
  return in;
}

bool Late(const JoinRow& r) {
  return r.wm_before != kMinWatermark && r.ts <= r.wm_before;
}

std::string Id(const JoinRow* r) { return r ? Cell(r->id) : NullCell(); }

// Runs every rescaling at two cut points; compares with the uninterrupted run
// and with `reference` (rows over `columns`), and the late side output with
// `late` (rows over `late_columns`).
void CheckJoin(const std::string& kind, std::shared_ptr<const NodeOptions> options,
               const Input& input, const std::vector<std::string>& columns,
               const std::vector<std::string>& reference,
               const std::vector<std::string>& late_columns,
               const std::vector<std::string>& late, const std::string& state_table) {
  auto node = MakeNode(kind, std::move(options));
  Driver driver;
  driver.node = node.get();
  driver.keys = {{"k"}, {"k"}};
  ASSERT_FALSE(reference.empty());
  ASSERT_FALSE(late.empty());
  for (auto [p1, p2] : Rescalings()) {
    for (double fraction : {0.35, 0.75}) {
      SCOPED_TRACE(kind + ": restore " + std::to_string(p1) + " -> " +
                   std::to_string(p2) + " after " + std::to_string(fraction));
      const auto cut = snapshot_test::CutAfterWatermark(input.steps, fraction);
      auto run = driver.RunWithRestore(p1, p2, input.steps, cut);
      ASSERT_TRUE(run.ok()) << run.status().ToString();
      auto& r = **run;
      EXPECT_GT(r.snapshot.RowsIn(state_table), 0) << "the snapshot holds no rows";
      EXPECT_ROWS_EQ(SortedRows(r.restored.main), SortedRows(r.straight.main));
      EXPECT_ROWS_EQ(SortedRows(r.restored.side["late"]),
                     SortedRows(r.straight.side["late"]));
      EXPECT_ROWS_EQ(SortedRows(r.restored.main, columns), reference);
      EXPECT_ROWS_EQ(SortedRows(r.restored.side["late"], late_columns), late);
    }
  }
}

std::vector<std::string> LateRows(const Input& input) {
  std::vector<std::string> late;
  for (const auto& r : input.rows) {
    if (!Late(r)) continue;
    late.push_back(r.side == 0 ? Row({Cell(r.id), NullCell()})
                               : Row({NullCell(), Cell(r.id)}));
  }
  std::sort(late.begin(), late.end());
  return late;
}

TEST(IntervalJoinSnapshotTest, FullJoinRestoresAtOtherParallelism) {
  auto input = MakeInput(51, 90, 6, 50);
  auto o = std::make_shared<IntervalJoinOptions>();
  o->left_keys = {"k"};
  o->right_keys = {"k"};
  o->left_time = "ts";
  o->right_time = "ts";
  o->lower_ms = -15;
  o->upper_ms = 25;
  o->type = JoinType::kFull;
  // Reference: every pair of non-late rows with equal (non-null) keys and
  // right.ts in [left.ts - 15, left.ts + 25]; unmatched non-late rows once.
  std::vector<std::string> reference;
  std::map<const JoinRow*, bool> matched;
  for (const auto& l : input.rows) {
    if (l.side != 0 || Late(l)) continue;
    for (const auto& r : input.rows) {
      if (r.side != 1 || Late(r) || !l.k || !r.k || *l.k != *r.k) continue;
      if (r.ts < l.ts + o->lower_ms || r.ts > l.ts + o->upper_ms) continue;
      reference.push_back(Row({Id(&l), Id(&r)}));
      matched[&l] = matched[&r] = true;
    }
  }
  for (const auto& row : input.rows) {
    if (Late(row) || matched[&row]) continue;
    reference.push_back(row.side == 0 ? Row({Id(&row), NullCell()})
                                      : Row({NullCell(), Id(&row)}));
  }
  std::sort(reference.begin(), reference.end());
  CheckJoin("interval_join", o, input, {"id", "right_id"}, reference, {"id", "right_id"},
            LateRows(input), "left_rows");
}

struct Window {
  int64_t start, end;
  bool operator<(const Window& o) const {
    return start != o.start ? start < o.start : end < o.end;
  }
};

TEST(WindowJoinSnapshotTest, HoppingFullJoinRestoresAtOtherParallelism) {
  auto input = MakeInput(52, 90, 5, 40);
  const int64_t size = 60, slide = 20;
  auto o = std::make_shared<WindowJoinOptions>();
  o->left_keys = {"k"};
  o->right_keys = {"k"};
  o->left_time = "ts";
  o->right_time = "ts";
  o->window.kind = WindowSpec::Kind::kHopping;
  o->window.size_ms = size;
  o->window.slide_ms = slide;
  o->type = JoinType::kFull;
  // Reference: a row joins every window that contains it and had not fired on
  // its arrival (end - 1 > watermark); a row with no such window is late.
  std::map<Window, std::vector<const JoinRow*>> members[2];
  std::vector<std::string> late;
  for (const auto& r : input.rows) {
    bool assigned = false;
    for (int64_t s = r.ts / slide * slide; s > r.ts - size; s -= slide) {
      if (r.wm_before != kMinWatermark && s + size - 1 <= r.wm_before) continue;
      members[r.side][{s, s + size}].push_back(&r);
      assigned = true;
    }
    if (!assigned) {
      late.push_back(r.side == 0 ? Row({Cell(r.id), NullCell()})
                                 : Row({NullCell(), Cell(r.id)}));
    }
  }
  std::sort(late.begin(), late.end());
  std::vector<std::string> reference;
  std::set<Window> windows;
  for (int side = 0; side < 2; ++side) {
    for (const auto& [w, rows] : members[side]) windows.insert(w);
  }
  for (const auto& w : windows) {
    std::map<const JoinRow*, bool> matched;
    auto window_cells = [&](std::vector<std::string> cells) {
      cells.push_back(Cell(w.start));
      cells.push_back(Cell(w.end));
      return Row(cells);
    };
    for (const auto* l : members[0][w]) {
      for (const auto* r : members[1][w]) {
        if (!l->k || !r->k || *l->k != *r->k) continue;
        reference.push_back(window_cells({Id(l), Id(r)}));
        matched[l] = matched[r] = true;
      }
    }
    for (int side = 0; side < 2; ++side) {
      for (const auto* row : members[side][w]) {
        if (matched[row]) continue;
        reference.push_back(
            window_cells(side == 0 ? std::vector<std::string>{Id(row), NullCell()}
                                   : std::vector<std::string>{NullCell(), Id(row)}));
      }
    }
  }
  std::sort(reference.begin(), reference.end());
  CheckJoin("window_join", o, input, {"id", "right_id", "window_start", "window_end"},
            reference, {"id", "right_id"}, late, "left_rows");
}

// ASOF / temporal reference: a non-late left row is emitted at the first
// watermark at or past its ts; it joins, among the right rows of its key that
// arrived before that watermark, the one with the greatest ts <= left.ts
// (ties: the last arrived), within the tolerance and not a delete.
std::vector<std::string> AsofReference(const Input& input, int64_t tolerance,
                                       bool left_join) {
  std::vector<std::string> out;
  for (const auto& l : input.rows) {
    if (l.side != 0 || Late(l)) continue;
    size_t emitted_at = input.steps.size();
    for (size_t s = l.step + 1; s < input.steps.size(); ++s) {
      if (!input.steps[s].batch && input.steps[s].watermark >= l.ts) {
        emitted_at = s;
        break;
      }
    }
    const JoinRow* best = nullptr;
    for (const auto& r : input.rows) {
      if (r.side != 1 || r.step >= emitted_at || !l.k || !r.k || *l.k != *r.k) continue;
      if (r.ts > l.ts) continue;
      if (!best || r.ts >= best->ts) best = &r;  // rows are in arrival order
    }
    if (best && (best->deleted || (tolerance > 0 && l.ts - best->ts > tolerance)))
      best = nullptr;
    if (best || left_join) out.push_back(Row({Id(&l), Id(best)}));
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> LateLeftRows(const Input& input) {
  std::vector<std::string> late;
  for (const auto& r : input.rows) {
    if (r.side == 0 && Late(r)) late.push_back(Row({Cell(r.id), NullCell()}));
  }
  std::sort(late.begin(), late.end());
  return late;
}

TEST(AsofJoinSnapshotTest, LeftJoinWithToleranceRestoresAtOtherParallelism) {
  auto input = MakeInput(53, 90, 5, 40);
  auto o = std::make_shared<AsofJoinOptions>();
  o->left_keys = {"k"};
  o->right_keys = {"k"};
  o->left_time = "ts";
  o->right_time = "ts";
  o->tolerance_ms = 30;
  o->type = JoinType::kLeft;
  CheckJoin("asof_join", o, input, {"id", "right_id"}, AsofReference(input, 30, true),
            {"id", "right_id"}, LateLeftRows(input), "right_versions");
}

TEST(AsofJoinSnapshotTest, InnerJoinWithoutTolerance) {
  auto input = MakeInput(54, 80, 4, 40);
  auto o = std::make_shared<AsofJoinOptions>();
  o->left_keys = {"k"};
  o->right_keys = {"k"};
  o->left_time = "ts";
  o->right_time = "ts";
  o->type = JoinType::kInner;
  CheckJoin("asof_join", o, input, {"id", "right_id"}, AsofReference(input, 0, false),
            {"id", "right_id"}, LateLeftRows(input), "left_pending");
}

TEST(TemporalJoinSnapshotTest, VersionedTableWithDeletesRestores) {
  auto input = MakeInput(55, 90, 5, 40, /*right_deletes=*/true);
  auto o = std::make_shared<TemporalJoinOptions>();
  o->left_keys = {"k"};
  o->right_keys = {"k"};
  o->left_time = "ts";
  o->right_time = "ts";
  o->deleted_column = "deleted";
  o->type = JoinType::kLeft;
  CheckJoin("temporal_join", o, input, {"id", "right_id"}, AsofReference(input, 0, true),
            {"id", "right_id"}, LateLeftRows(input), "right_versions");
}

}  // namespace
}  // namespace sabot
