// Window aggregation through a checkpoint: the first part of a randomized,
// out-of-order input at parallelism P1, a snapshot, fresh instances at P2
// restored from it, the rest of the input. The union of outputs must equal the
// uninterrupted run and a brute-force reference.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <random>
#include <set>

#include "sabot/exec/stream_element.h"
#include "sabot/operators/snapshot_test_util.h"
#include "sabot/operators/window_aggregate.h"

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
  int64_t ts;
  std::optional<int64_t> v;
  int64_t wm_before;  // the watermark when the row arrived
};

std::string Name(int64_t k) { return "key-" + std::to_string(k * 7919 % 1000); }

std::shared_ptr<arrow::RecordBatch> MakeBatch(const std::vector<InputRow>& rows) {
  arrow::Int64Builder k, ts, v;
  arrow::StringBuilder s;
  for (const auto& r : rows) {
    EXPECT_TRUE(k.Append(r.k).ok());
    EXPECT_TRUE(s.Append(Name(r.k)).ok());
    EXPECT_TRUE(ts.Append(r.ts).ok());
    EXPECT_TRUE((r.v ? v.Append(*r.v) : v.AppendNull()).ok());
  }
  auto schema = arrow::schema(
      {arrow::field("k", arrow::int64()), arrow::field("s", arrow::utf8()),
       arrow::field("ts", arrow::int64()), arrow::field("v", arrow::int64())});
  return arrow::RecordBatch::Make(schema, static_cast<int64_t>(rows.size()),
                                  {k.Finish().ValueOrDie(), s.Finish().ValueOrDie(),
                                   ts.Finish().ValueOrDie(), v.Finish().ValueOrDie()});
}

// Randomized input: batches of rows, each followed by a bounded-out-of-orderness
// watermark (largest ts so far - bound - 1); a few rows are later than the bound.
struct Input {
  std::vector<InputRow> rows;
  std::vector<Step> steps;
};

Input MakeInput(uint64_t seed, int num_rows, int num_keys, int64_t step_ms, int64_t bound,
                int batch_rows = 40) {
  std::mt19937_64 rng(seed);
  Input in;
  int64_t max_ts = kMinWatermark, wm = kMinWatermark;
  std::vector<InputRow> batch;
  for (int i = 0; i < num_rows; ++i) {
    int64_t ts = i * step_ms + static_cast<int64_t>(rng() % static_cast<uint64_t>(bound));
    if (rng() % 25 == 0) ts -= 3 * bound;  // very late
    ts = std::max<int64_t>(ts, 0);
    InputRow r{static_cast<int64_t>(rng() % static_cast<uint64_t>(num_keys)), ts,
               std::nullopt, wm};
    if (rng() % 30 != 0) r.v = static_cast<int64_t>(rng() % 50) - 10;
    batch.push_back(r);
    in.rows.push_back(r);
    max_ts = std::max(max_ts, ts);
    if (static_cast<int>(batch.size()) == batch_rows || i + 1 == num_rows) {
      in.steps.push_back(Step::Batch(0, MakeBatch(batch)));
      batch.clear();
      if (max_ts - bound - 1 > wm) {
        wm = max_ts - bound - 1;
        in.steps.push_back(Step::Watermark(wm));
      }
    }
  }
  return in;
}

std::vector<AggregateSpec> AllAggregates() {
  return {{"count", "", "n", nullptr},
          {"count", "v", "nv", nullptr},
          {"sum", "v", "sum", nullptr},
          {"min", "v", "mn", nullptr},
          {"max", "v", "mx", nullptr},
          {"mean", "v", "avg", nullptr},
          {"stddev_pop", "v", "sd", nullptr},
          {"count_distinct", "v", "nd", nullptr},
          {"count_distinct", "s", "nds", nullptr},
          {"first", "v", "first", nullptr},
          {"last", "v", "last", nullptr},
          {"collect_list", "v", "list", nullptr}};
}

// Reference aggregates of `values` (arrival order) as cells, in the order of
// the columns `n nv sum mn mx avg sd nd`.
std::vector<std::string> ReferenceCells(
    const std::vector<std::optional<int64_t>>& values) {
  int64_t n = static_cast<int64_t>(values.size()), nv = 0, sum = 0;
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
  std::vector<std::string> cells = {Cell(n), Cell(nv)};
  if (nv == 0) {
    for (int i = 0; i < 5; ++i) cells.push_back(NullCell());
  } else {
    const double mean = static_cast<double>(sum) / static_cast<double>(nv);
    double m2 = 0;
    for (const auto& v : values) {
      if (v) m2 += (static_cast<double>(*v) - mean) * (static_cast<double>(*v) - mean);
    }
    cells.insert(cells.end(), {Cell(sum), Cell(*mn), Cell(*mx), Cell(mean),
                               Cell(std::sqrt(m2 / static_cast<double>(nv)))});
  }
  cells.push_back(Cell(static_cast<int64_t>(distinct.size())));
  return cells;
}

const std::vector<std::string> kCheckedAggregates = {"n",  "nv",  "sum", "mn",
                                                     "mx", "avg", "sd",  "nd"};

// The last emission of every (keys, window_start, window_end) over `columns`
// (output order matters: a later emission replaces an earlier one).
std::vector<std::string> LastEmissions(
    const std::vector<std::shared_ptr<arrow::RecordBatch>>& batches,
    const std::vector<std::string>& id_columns, const std::vector<std::string>& columns) {
  std::map<std::string, std::string> last;
  for (const auto& b : batches) {
    for (int64_t i = 0; i < b->num_rows(); ++i) {
      auto one = b->Slice(i, 1);
      last[SortedRows({one}, id_columns)[0]] = SortedRows({one}, columns)[0];
    }
  }
  std::vector<std::string> out;
  for (auto& [id, row] : last) out.push_back(row);
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> Concat(std::vector<std::string> a,
                                const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

struct Window {
  int64_t start, end;
};

// Reference for time windows: a row counts in window w iff the watermark at
// its arrival had not passed w.end - 1 + lateness (else w was purged, or the
// row's whole pane was: a late row).
std::vector<std::string> ReferenceTimeWindows(
    const std::vector<InputRow>& rows,
    const std::function<std::vector<Window>(int64_t)>& of, int64_t lateness,
    bool first_last) {
  std::map<std::tuple<int64_t, int64_t, int64_t>, std::vector<const InputRow*>> windows;
  for (const auto& r : rows) {
    for (const auto& w : of(r.ts)) {
      if (r.wm_before != kMinWatermark && w.end - 1 + lateness <= r.wm_before) continue;
      windows[{r.k, w.start, w.end}].push_back(&r);
    }
  }
  std::vector<std::string> out;
  for (const auto& [id, members] : windows) {
    std::vector<std::optional<int64_t>> values;
    for (const auto* r : members) values.push_back(r->v);
    std::vector<std::string> cells = {Cell(std::get<0>(id)), Cell(std::get<1>(id)),
                                      Cell(std::get<2>(id))};
    auto agg = ReferenceCells(values);
    cells.insert(cells.end(), agg.begin(), agg.end());
    if (first_last) {
      cells.push_back(values.front() ? Cell(*values.front()) : NullCell());
      cells.push_back(values.back() ? Cell(*values.back()) : NullCell());
    }
    out.push_back(Row(cells));
  }
  std::sort(out.begin(), out.end());
  return out;
}

int64_t FloorTo(int64_t t, int64_t size) { return t >= 0 ? t / size * size : -1; }

// Runs `options` straight and with a restore at every rescaling and cut point,
// checking the restored run against the uninterrupted one (every emission and
// the late side output) and the final emissions against `reference`.
// With `all_emissions`, every emission (not only the last per window) is
// compared with the reference.
void CheckRestores(const std::shared_ptr<WindowAggregateOptions>& options,
                   const Input& input, const std::vector<std::string>& keys,
                   const std::vector<std::string>& checked_columns,
                   const std::vector<std::string>& reference,
                   const std::string& state_table, bool all_emissions = false) {
  auto node = MakeNode("window_aggregate", options);
  Driver driver;
  driver.node = node.get();
  driver.keys = {keys};
  auto id_columns = keys;
  id_columns.push_back("window_start");
  id_columns.push_back("window_end");
  for (auto [p1, p2] : Rescalings()) {
    for (double fraction : {0.3, 0.7}) {
      SCOPED_TRACE("restore " + std::to_string(p1) + " -> " + std::to_string(p2) +
                   " after " + std::to_string(fraction) + " of the input");
      const auto cut = snapshot_test::CutAfterWatermark(input.steps, fraction);
      auto run = driver.RunWithRestore(p1, p2, input.steps, cut);
      ASSERT_TRUE(run.ok()) << run.status().ToString();
      auto& r = **run;
      EXPECT_GT(r.snapshot.RowsIn(state_table), 0) << "the snapshot holds no state";
      EXPECT_ROWS_EQ(SortedRows(r.restored.main), SortedRows(r.straight.main));
      EXPECT_ROWS_EQ(SortedRows(r.restored.side["late"]),
                     SortedRows(r.straight.side["late"]));
      if (all_emissions) {
        EXPECT_ROWS_EQ(SortedRows(r.restored.main, checked_columns), reference);
      } else {
        EXPECT_ROWS_EQ(LastEmissions(r.restored.main, id_columns, checked_columns),
                       reference);
      }
    }
  }
}

std::vector<std::string> Columns(const std::vector<std::string>& keys,
                                 const std::vector<std::string>& aggregates) {
  auto out = keys;
  out.push_back("window_start");
  out.push_back("window_end");
  out.insert(out.end(), aggregates.begin(), aggregates.end());
  return out;
}

TEST(WindowAggregateSnapshotTest, TumblingRestoresAtOtherParallelism) {
  auto input = MakeInput(11, 1500, 9, 4, 120);
  auto o = std::make_shared<WindowAggregateOptions>();
  o->keys = {"k"};
  o->time_column = "ts";
  o->window.kind = WindowSpec::Kind::kTumbling;
  o->window.size_ms = 200;
  o->aggregates = AllAggregates();
  auto aggs = kCheckedAggregates;
  aggs.push_back("first");
  aggs.push_back("last");
  auto reference = ReferenceTimeWindows(
      input.rows,
      [](int64_t t) {
        return std::vector<Window>{{FloorTo(t, 200), FloorTo(t, 200) + 200}};
      },
      0, true);
  CheckRestores(o, input, {"k"}, Columns({"k"}, aggs), reference, "panes");
  // Late rows: every row behind its window's end, and nothing else.
  std::vector<std::string> late;
  for (const auto& r : input.rows) {
    if (r.wm_before != kMinWatermark && FloorTo(r.ts, 200) + 199 <= r.wm_before)
      late.push_back(Row({Cell(r.k), Cell(r.ts)}));
  }
  ASSERT_GT(late.size(), 0u);
  auto node = MakeNode("window_aggregate", o);
  Driver driver{node.get(), {{"k"}}};
  auto run = driver.RunWithRestore(1, 3, input.steps, input.steps.size() / 2);
  ASSERT_TRUE(run.ok()) << run.status().ToString();
  EXPECT_ROWS_EQ(SortedRows((*run)->restored.side["late"], {"k", "ts"}),
                 snapshot_test::Sorted(late));
}

TEST(WindowAggregateSnapshotTest, HoppingWithLatenessByStringKey) {
  auto input = MakeInput(12, 1500, 7, 4, 100);
  auto o = std::make_shared<WindowAggregateOptions>();
  o->keys = {"s"};
  o->time_column = "ts";
  o->window.kind = WindowSpec::Kind::kHopping;
  o->window.size_ms = 300;
  o->window.slide_ms = 100;
  o->allowed_lateness_ms = 150;
  o->aggregates = AllAggregates();
  auto of = [](int64_t t) {
    std::vector<Window> ws;
    for (int64_t s = FloorTo(t, 100); s > t - 300; s -= 100) ws.push_back({s, s + 300});
    return ws;
  };
  // The reference is keyed by k; the key column here is s = Name(k).
  auto by_k = ReferenceTimeWindows(input.rows, of, 150, false);
  std::vector<std::string> reference;
  for (auto row : by_k) {
    const int64_t k = std::stoll(row.substr(0, row.find('|')));
    reference.push_back(Name(k) + row.substr(row.find('|')));
  }
  std::sort(reference.begin(), reference.end());
  CheckRestores(o, input, {"s"}, Columns({"s"}, kCheckedAggregates), reference, "panes");
}

TEST(WindowAggregateSnapshotTest, CumulateTwoKeys) {
  auto input = MakeInput(13, 1200, 5, 5, 80);
  auto o = std::make_shared<WindowAggregateOptions>();
  o->keys = {"k", "s"};
  o->time_column = "ts";
  o->window.kind = WindowSpec::Kind::kCumulate;
  o->window.size_ms = 400;
  o->window.slide_ms = 100;
  o->aggregates = AllAggregates();
  auto of = [](int64_t t) {
    std::vector<Window> ws;
    const int64_t cs = FloorTo(t, 400);
    for (int64_t e = FloorTo(t, 100) + 100; e <= cs + 400; e += 100)
      ws.push_back({cs, e});
    return ws;
  };
  auto by_k = ReferenceTimeWindows(input.rows, of, 0, false);
  std::vector<std::string> reference;
  for (auto row : by_k) {
    const int64_t k = std::stoll(row.substr(0, row.find('|')));
    reference.push_back(Cell(k) + "|" + Name(k) + row.substr(row.find('|')));
  }
  std::sort(reference.begin(), reference.end());
  CheckRestores(o, input, {"k", "s"}, Columns({"k", "s"}, kCheckedAggregates), reference,
                "panes");
}

TEST(WindowAggregateSnapshotTest, NonKeyedTumbling) {
  auto input = MakeInput(14, 800, 4, 4, 60);
  auto o = std::make_shared<WindowAggregateOptions>();
  o->time_column = "ts";
  o->window.kind = WindowSpec::Kind::kTumbling;
  o->window.size_ms = 150;
  o->aggregates = AllAggregates();
  // Without keys: one group per window; recompute the reference over all keys.
  std::vector<InputRow> all = input.rows;
  for (auto& r : all) r.k = 0;
  auto reference = ReferenceTimeWindows(
      all,
      [](int64_t t) {
        return std::vector<Window>{{FloorTo(t, 150), FloorTo(t, 150) + 150}};
      },
      0, false);
  for (auto& row : reference) row = row.substr(row.find('|') + 1);  // drop the fake key
  // A non-keyed window runs at parallelism 1; its state restores into the
  // instance that owns key group 0, at any parallelism.
  CheckRestores(o, input, {}, Columns({}, kCheckedAggregates), reference, "panes");
}

// Sessions: reference by sorting each key's rows by time and cutting at gaps,
// over the rows that were not late on arrival.
TEST(WindowAggregateSnapshotTest, SessionsRestoreAtOtherParallelism) {
  auto input = MakeInput(15, 1200, 8, 6, 90);
  const int64_t gap = 40;
  auto o = std::make_shared<WindowAggregateOptions>();
  o->keys = {"k"};
  o->time_column = "ts";
  o->window.kind = WindowSpec::Kind::kSession;
  o->window.gap_ms = gap;
  o->aggregates = AllAggregates();
  // Reference: a simulation in arrival order. A row whose own session
  // [ts, ts + gap) ended at or before the watermark is late; the others merge
  // with every live session they touch; a session is emitted (and dropped)
  // once the watermark reaches its end - 1.
  struct Live {
    int64_t start, end;
    std::vector<std::optional<int64_t>> values;
  };
  std::map<int64_t, std::vector<Live>> live;
  std::vector<std::string> reference, late;
  auto emit = [&](int64_t k, const Live& s) {
    std::vector<std::string> cells = {Cell(k), Cell(s.start), Cell(s.end)};
    auto agg = ReferenceCells(s.values);
    cells.insert(cells.end(), agg.begin(), agg.end());
    reference.push_back(Row(cells));
  };
  auto advance = [&](int64_t wm) {
    for (auto& [k, sessions] : live) {
      for (auto it = sessions.begin(); it != sessions.end();) {
        if (wm != kMinWatermark && it->end - 1 <= wm) {
          emit(k, *it);
          it = sessions.erase(it);
        } else {
          ++it;
        }
      }
    }
  };
  for (const auto& r : input.rows) {
    advance(r.wm_before);
    if (r.wm_before != kMinWatermark && r.ts + gap - 1 <= r.wm_before) {
      late.push_back(Row({Cell(r.k), Cell(r.ts)}));
      continue;
    }
    Live merged{r.ts, r.ts + gap, {r.v}};
    auto& sessions = live[r.k];
    for (auto it = sessions.begin(); it != sessions.end();) {
      if (it->end >= merged.start && it->start <= merged.end) {
        merged.start = std::min(merged.start, it->start);
        merged.end = std::max(merged.end, it->end);
        merged.values.insert(merged.values.end(), it->values.begin(), it->values.end());
        it = sessions.erase(it);
      } else {
        ++it;
      }
    }
    sessions.push_back(std::move(merged));
  }
  advance(kMaxWatermark - 1);
  std::sort(reference.begin(), reference.end());
  auto node = MakeNode("window_aggregate", o);
  Driver driver{node.get(), {{"k"}}};
  auto straight = driver.RunStraight(2, input.steps);
  ASSERT_TRUE(straight.ok()) << straight.status().ToString();
  EXPECT_ROWS_EQ(SortedRows(straight->side["late"], {"k", "ts"}),
                 snapshot_test::Sorted(late));
  CheckRestores(o, input, {"k"}, Columns({"k"}, kCheckedAggregates), reference,
                "sessions");
}

// Count windows: per key, every `count` rows in arrival order.
std::vector<std::string> ReferenceCountWindows(const std::vector<InputRow>& rows,
                                               int64_t count, int64_t slide) {
  std::map<int64_t, std::vector<const InputRow*>> by_key;
  std::vector<std::string> out;
  for (const auto& r : rows) {
    auto& list = by_key[r.k];
    list.push_back(&r);
    if (static_cast<int64_t>(list.size()) % slide != 0) continue;
    const size_t n = std::min<size_t>(list.size(), static_cast<size_t>(count));
    std::vector<std::optional<int64_t>> values;
    int64_t mn = INT64_MAX, mx = INT64_MIN;
    for (size_t i = list.size() - n; i < list.size(); ++i) {
      values.push_back(list[i]->v);
      mn = std::min(mn, list[i]->ts);
      mx = std::max(mx, list[i]->ts);
    }
    std::vector<std::string> cells = {Cell(r.k), Cell(mn), Cell(mx + 1)};
    auto agg = ReferenceCells(values);
    cells.insert(cells.end(), agg.begin(), agg.end());
    out.push_back(Row(cells));
  }
  std::sort(out.begin(), out.end());
  return out;
}

TEST(WindowAggregateSnapshotTest, CountWindowsRestore) {
  auto input = MakeInput(16, 1000, 6, 4, 50);
  for (auto [count, slide] : {std::pair<int64_t, int64_t>{7, 7}, {6, 2}}) {
    SCOPED_TRACE("count " + std::to_string(count) + " slide " + std::to_string(slide));
    auto o = std::make_shared<WindowAggregateOptions>();
    o->keys = {"k"};
    o->time_column = "ts";
    o->window.kind = count == slide ? WindowSpec::Kind::kCountTumbling
                                    : WindowSpec::Kind::kCountSliding;
    o->window.count = count;
    o->window.count_slide = slide;
    o->aggregates = AllAggregates();
    CheckRestores(o, input, {"k"}, Columns({"k"}, kCheckedAggregates),
                  ReferenceCountWindows(input.rows, count, slide), "count_windows",
                  /*all_emissions=*/true);
  }
}

TEST(WindowAggregateSnapshotTest, GlobalWindowsWithCountTrigger) {
  auto input = MakeInput(17, 900, 5, 4, 50);
  for (bool purge : {false, true}) {
    SCOPED_TRACE(purge ? "purge" : "accumulate");
    auto o = std::make_shared<WindowAggregateOptions>();
    o->keys = {"k"};
    o->time_column = "ts";
    o->window.kind = WindowSpec::Kind::kGlobal;
    o->trigger.every_rows = 9;
    o->trigger.purge = purge;
    o->aggregates = AllAggregates();
    // Reference: per key, a firing every 9 rows (over the rows since the last
    // purge, or all rows), and at the end of input the rest when dirty.
    std::map<int64_t, std::vector<const InputRow*>> by_key;
    std::map<int64_t, size_t> since;
    std::vector<std::string> reference;
    auto emit = [&](int64_t k, const std::vector<const InputRow*>& list, size_t from,
                    const char* kind) {
      std::vector<std::optional<int64_t>> values;
      int64_t mn = INT64_MAX, mx = INT64_MIN;
      for (size_t i = from; i < list.size(); ++i) {
        values.push_back(list[i]->v);
        mn = std::min(mn, list[i]->ts);
        mx = std::max(mx, list[i]->ts);
      }
      std::vector<std::string> cells = {Cell(k), Cell(mn), Cell(mx + 1)};
      auto agg = ReferenceCells(values);
      cells.insert(cells.end(), agg.begin(), agg.end());
      cells.push_back(kind);
      reference.push_back(Row(cells));
    };
    for (const auto& r : input.rows) {
      auto& list = by_key[r.k];
      list.push_back(&r);
      if ((list.size() - since[r.k]) % 9 == 0) {
        emit(r.k, list, purge ? since[r.k] : 0, purge ? "final" : "update");
        if (purge) since[r.k] = list.size();
      }
    }
    for (auto& [k, list] : by_key) {
      if (list.size() % 9 != 0) emit(k, list, purge ? since[k] : 0, "final");
    }
    std::sort(reference.begin(), reference.end());
    auto columns = Columns({"k"}, kCheckedAggregates);
    columns.push_back("emit_kind");
    if (purge) {
      // Without updates there is no emit_kind column: drop it from the reference.
      columns.pop_back();
      for (auto& row : reference) row = row.substr(0, row.rfind('|'));
      std::sort(reference.begin(), reference.end());
    }
    CheckRestores(o, input, {"k"}, columns, reference, "count_windows",
                  /*all_emissions=*/true);
  }
}

TEST(WindowAggregateSnapshotTest, EarlyFiringCounterRestoresIntoTheSameInstance) {
  // Early firings every N rows count per instance: at an unchanged parallelism
  // the restored counters make the run identical, early rows included.
  auto input = MakeInput(18, 1200, 7, 4, 80);
  auto o = std::make_shared<WindowAggregateOptions>();
  o->keys = {"k"};
  o->time_column = "ts";
  o->window.kind = WindowSpec::Kind::kTumbling;
  o->window.size_ms = 200;
  o->trigger.every_rows = 70;
  o->aggregates = AllAggregates();
  auto node = MakeNode("window_aggregate", o);
  Driver driver{node.get(), {{"k"}}};
  for (double fraction : {0.3, 0.6}) {
    auto run = driver.RunWithRestore(
        2, 2, input.steps, snapshot_test::CutAfterWatermark(input.steps, fraction));
    ASSERT_TRUE(run.ok()) << run.status().ToString();
    std::vector<std::string> kinds;
    for (const auto& row : SortedRows((*run)->straight.main, {"emit_kind"}))
      if (kinds.empty() || kinds.back() != row) kinds.push_back(row);
    EXPECT_EQ(kinds, (std::vector<std::string>{"early", "on_time"}));
    EXPECT_ROWS_EQ(SortedRows((*run)->restored.main), SortedRows((*run)->straight.main));
  }
}

TEST(WindowAggregateSnapshotTest, ProcessingTimeWindowsGetTheirTimersBack) {
  // Rows are assigned by the wall clock; a one-hour window holds them all (or
  // two windows across an hour boundary). After a restore at another
  // parallelism the open windows fire by their timers again, with every row.
  auto o = std::make_shared<WindowAggregateOptions>();
  o->keys = {"k"};
  o->processing_time = true;
  o->window.kind = WindowSpec::Kind::kTumbling;
  o->window.size_ms = 3'600'000;
  o->aggregates = {{"count", "", "n", nullptr}, {"sum", "v", "sum", nullptr}};
  auto node = MakeNode("window_aggregate", o);
  auto input = MakeInput(19, 300, 5, 4, 50);
  std::vector<Step> batches;
  int64_t rows = 0;
  for (const auto& step : input.steps) {
    if (!step.batch) continue;
    batches.push_back(step);
    rows += step.batch->num_rows();
  }
  auto old_op = snapshot_test::ParallelOperator::Make(*node, 2);
  ASSERT_TRUE(old_op.ok());
  Driver driver{node.get(), {{"k"}}};
  const size_t cut = batches.size() / 2;
  ASSERT_TRUE(driver.Feed(old_op->get(), batches, 0, cut).ok());
  snapshot_test::RecordedSnapshot snapshot(1);
  ASSERT_TRUE((*old_op)->Snapshot(&snapshot).ok());
  EXPECT_GT(snapshot.RowsIn("panes"), 0);
  MemorySnapshot memory(1);
  ASSERT_TRUE(snapshot.ToMemorySnapshot(&memory).ok());
  auto restored = snapshot_test::ParallelOperator::Make(*node, 3, 128, &memory);
  ASSERT_TRUE(restored.ok()) << restored.status().ToString();
  size_t timers = 0;
  for (int i = 0; i < 3; ++i)
    timers += (*restored)->instance(i).timers.num_processing_timers();
  EXPECT_GT(timers, 0u) << "restored processing-time windows must have timers";
  ASSERT_TRUE(driver.Feed(restored->get(), batches, cut, batches.size()).ok());
  ASSERT_TRUE((*restored)->FireProcessingTimers(WallClockMillis() + 3 * 3'600'000).ok());
  int64_t counted = 0;
  for (const auto& b : (*restored)->Output()) {
    const auto& n = static_cast<const arrow::Int64Array&>(*b->GetColumnByName("n"));
    for (int64_t i = 0; i < n.length(); ++i) counted += n.Value(i);
  }
  EXPECT_EQ(counted, rows);
}

}  // namespace
}  // namespace sabot
