// Event-time joins of two keyed streams: the interval join ("interval_join"),
// the window join ("window_join"), the ASOF join ("asof_join") and the temporal
// join against a versioned table ("temporal_join"). Input 0 is the left side, input 1 the
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
/// behind the forwarded watermark. ASOF and temporal joins hold every left row
/// until the watermark reaches its ts, then emit it once, final (matched or,
/// for left joins, unmatched); right rows behind the watermark are still applied.
///
/// Late rows (event time <= the current watermark, so partners may already have
/// been dropped from state; window join: all of the row's windows fired) go to
/// the side output "late" in the output schema with the other side's columns
/// null (window join: window_start/window_end null).
///
/// State lives in operator memory: buffered rows per side and key (ASOF and
/// temporal joins: pending left rows, right rows per key in time order).
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

/// Options of "asof_join": each left row joins the right row with an equal key
/// and the greatest right.ts <= left.ts (ties: the one that arrived last),
/// provided left.ts - right.ts <= tolerance_ms (0: no limit). A left row is
/// emitted once the watermark reaches its ts (no right row it could match can
/// arrive after that, except late ones). Types: inner and left.
struct AsofJoinOptions : NodeOptions {
  std::vector<std::string> left_keys;
  std::vector<std::string> right_keys;
  std::string left_time;
  std::string right_time;
  std::string int_unit = "ms";
  int64_t tolerance_ms = 0;
  JoinType type = JoinType::kInner;
  std::string ToString() const override;
};

/// Options of "temporal_join": the right input is the changelog of a table
/// versioned by the join key (each row a new version of its key, valid from its
/// ts; a true `deleted_column` value deletes the key from that ts on). Each left
/// row joins the version valid at left.ts, if it is not a delete (Flink's
/// FOR SYSTEM_TIME AS OF on event time). Emitted like "asof_join"; inner and left.
struct TemporalJoinOptions : NodeOptions {
  std::vector<std::string> left_keys;
  std::vector<std::string> right_keys;
  std::string left_time;
  std::string right_time;
  std::string int_unit = "ms";
  std::string deleted_column;  ///< boolean right column; empty: no deletes
  JoinType type = JoinType::kInner;
  std::string ToString() const override;
};

void RegisterIntervalJoin(OperatorRegistry* registry);
void RegisterWindowJoin(OperatorRegistry* registry);
/// Registers "asof_join" and "temporal_join" (one operator, operators/asof_join.cc).
void RegisterAsofJoins(OperatorRegistry* registry);

}  // namespace sabot
