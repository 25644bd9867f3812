// Event time: reading a time column as milliseconds since the epoch, and the
// watermark assigner operator ("assign_watermarks").
#pragma once

#include <arrow/array.h>
#include <arrow/result.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "sabot/plan/plan.h"
#include "sabot/plan/registry.h"

namespace sabot {

/// The unit of an int64 event-time column ("s", "ms", "us", "ns"). Timestamp
/// columns carry their own unit.
arrow::Result<int64_t> UnitsPerMilli(const std::string& unit, bool* divide);

/// An event-time column as int64 milliseconds since the epoch (nulls kept).
/// Zero-copy for int64 "ms" and timestamp[ms] columns.
arrow::Result<std::shared_ptr<arrow::Int64Array>> EventTimeMillis(
    const std::shared_ptr<arrow::Array>& column, const std::string& int_unit,
    arrow::MemoryPool* pool);

/// Returns the watermark to emit after `batch` given the largest event time seen
/// so far (ms), or nullopt to emit none. Called once per batch.
using WatermarkFunction = std::function<arrow::Result<std::optional<int64_t>>(
    const arrow::RecordBatch& batch, int64_t max_event_time_ms)>;

/// Options of "assign_watermarks", chained after a source so that watermarks are
/// generated per source split (per generator instance, file split, partition).
///
/// Rule for bad timestamps: a row whose event time is null or outside
/// [min_valid_ms, max_valid_ms] never reaches windows. It goes to the side output
/// "invalid_time" with an added `error` column saying why (counted in the
/// operator's side_rows_unconsumed metric when nobody reads that output).
struct WatermarkOptions : NodeOptions {
  std::string time_column;
  std::string int_unit = "ms";  ///< unit of an int64 time column
  /// "bounded" (max event time - max_out_of_orderness_ms - 1), "monotonous"
  /// (bounded with 0), or "custom" (`custom`).
  std::string strategy = "bounded";
  int64_t max_out_of_orderness_ms = 0;
  WatermarkFunction custom;
  /// Declares this split idle when it produced no row for this long (0: never),
  /// so it stops holding back the watermark downstream; active again on data.
  int64_t idle_timeout_ms = 0;
  /// Optional integer column naming the split inside this instance (e.g. the
  /// Kafka `partition`): watermarks are then tracked per split and the
  /// instance emits the minimum over its active splits, so a lagging partition
  /// is never overtaken by a faster one read by the same instance. Idleness is
  /// tracked per split too.
  std::string split_column;
  int64_t min_valid_ms = 0;              ///< 1970-01-01
  int64_t max_valid_ms = 7258118400000;  ///< 2200-01-01
  std::string ToString() const override;
};

void RegisterWatermarkAssigner(OperatorRegistry* registry);

}  // namespace sabot
