// Event-time joins of two keyed streams: the interval join ("interval_join")
// and the window join ("window_join"). Input 0 is the left side, input 1 the
// right side; both are hash-partitioned on their key columns (the DataStream
// API adds the KeyBy on each side).
//
/// Output rows: the left columns, then the right columns (a right column whose
/// name clashes gets the prefix "right_"), then, for window joins, window_start
/// and window_end (timestamp[ms, UTC]). Rows with a null key never match.
///
/// Outer joins: an unmatched row is emitted once, final, with the other side's
/// columns null, when the watermark proves that no partner can arrive any more
/// (interval join: when the row is dropped from state; window join: when its
/// window fires). Such rows are therefore emitted at watermark time, possibly
/// behind the forwarded watermark.
///
/// Late rows (event time <= the current watermark, so partners may already have
/// been dropped from state; window join: all of the row's windows fired) go to
/// the side output "late" in the output schema with the other side's columns
/// null (window join: window_start/window_end null).
///
/// State lives in operator memory: buffered rows per side and key.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "sabot/operators/join_output.h"
#include "sabot/operators/window_aggregate.h"
#include "sabot/plan/plan.h"
#include "sabot/plan/registry.h"

namespace sabot {

/// Options of "interval_join": left ⋈ right on equal keys where
/// right.ts BETWEEN left.ts + lower_ms AND left.ts + upper_ms (inclusive).
struct IntervalJoinOptions : NodeOptions {
  std::vector<std::string> left_keys;
  std::vector<std::string> right_keys;
  std::string left_time;   ///< left event-time column (ms via EventTimeMillis)
  std::string right_time;  ///< right event-time column
  std::string int_unit = "ms";
  int64_t lower_ms = 0;
  int64_t upper_ms = 0;
  JoinType type = JoinType::kInner;
  std::string ToString() const override;
};

/// Options of "window_join": both sides assigned to the same tumbling or hopping
/// windows and joined on equal keys within each window, emitted when the
/// watermark passes the window end.
struct WindowJoinOptions : NodeOptions {
  std::vector<std::string> left_keys;
  std::vector<std::string> right_keys;
  std::string left_time;
  std::string right_time;
  std::string int_unit = "ms";
  WindowSpec window;  ///< tumbling or hopping
  JoinType type = JoinType::kInner;
  std::string ToString() const override;
};

void RegisterIntervalJoin(OperatorRegistry* registry);
void RegisterWindowJoin(OperatorRegistry* registry);

}  // namespace sabot
