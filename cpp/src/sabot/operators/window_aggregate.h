// Windowed aggregation ("window_aggregate"): tumbling, hopping, cumulating,
// session, count and global windows, keyed or not, over vectorized accumulators.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "sabot/operators/accumulators.h"
#include "sabot/plan/plan.h"
#include "sabot/plan/registry.h"

namespace sabot {

struct WindowSpec {
  enum class Kind {
    kTumbling,
    kHopping,
    kCumulate,
    kSession,
    kCountTumbling,
    kCountSliding,
    kGlobal
  };
  Kind kind = Kind::kTumbling;
  int64_t size_ms = 0;      ///< tumbling/hopping size; cumulate: max size
  int64_t slide_ms = 0;     ///< hopping slide; cumulate: step
  int64_t offset_ms = 0;    ///< window alignment offset (tumbling/hopping/cumulate)
  int64_t gap_ms = 0;       ///< session gap
  int64_t count = 0;        ///< count windows: rows per window
  int64_t count_slide = 0;  ///< sliding count windows: fire every this many rows
  std::string ToString() const;
};

/// When windows emit besides the default (event-time windows: once, when the
/// watermark passes the window end; count windows: when full).
struct TriggerSpec {
  /// Time windows: early firing of every open window after this many new rows
  /// (per operator instance). Global windows: fire a key every this many rows.
  int64_t every_rows = 0;
  /// Early firing (time windows) or firing (global windows) every this many
  /// milliseconds of processing time.
  int64_t every_ms = 0;
  /// Global windows: clear a key's state after it fired (otherwise it keeps
  /// accumulating and each firing is an update).
  bool purge = false;
};

/// Output schema: key columns, window_start, window_end (timestamp[ms, UTC]), the
/// aggregates in order, and, when a window can emit more than once (early or
/// late firings, global windows without purge), `emit_kind` (utf8: "early",
/// "on_time", "late", "update", "final"). Such rows are upserts keyed by (keys,
/// window_start, window_end): a later row replaces an earlier one.
///
/// Lateness: a row whose windows were all purged (watermark past window end - 1
/// + allowed_lateness) goes to the side output "late" unchanged; a row for a
/// window that fired but is not purged updates it and re-fires it ("late").
struct WindowAggregateOptions : NodeOptions {
  std::vector<std::string> keys;
  std::string time_column;  ///< event time (ms via EventTimeMillis)
  std::string int_unit = "ms";
  bool processing_time = false;  ///< assign rows by wall clock; fire by timers
  WindowSpec window;
  TriggerSpec trigger;
  std::vector<AggregateSpec> aggregates;
  int64_t allowed_lateness_ms = 0;
  std::string ToString() const override;
};

void RegisterWindowAggregate(OperatorRegistry* registry);

}  // namespace sabot
