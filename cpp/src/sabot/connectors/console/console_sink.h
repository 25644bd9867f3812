// Console sink: prints batches as text tables to stdout (plan node kind
// "console_sink"), for examples, demos and debugging.
#pragma once

#include <arrow/record_batch.h>
#include <arrow/result.h>

#include <cstdint>
#include <memory>
#include <string>

#include "sabot/exec/operator.h"
#include "sabot/plan/plan.h"

namespace sabot {

class OperatorRegistry;

/// Options of a "console_sink" plan node.
struct ConsoleSinkOptions : NodeOptions {
  int64_t max_rows_per_batch = 20;  ///< rows printed per batch; the rest is counted
  std::string title;                ///< printed above each table; default: node name

  std::string ToString() const override;
};

/// Renders the first `max_rows` rows of `batch` as an aligned text table: a
/// header row of field names, a separator, one line per row (numbers right
/// aligned, cells over 40 characters cut with "…", newlines shown as \n, nulls
/// as "null", timestamps as Arrow formats them, ISO-8601 like), and
/// "... N more rows" when rows were left out. Ends with '\n'.
std::string FormatTable(const arrow::RecordBatch& batch, int64_t max_rows);

/// Creates a console sink instance. It emits nothing; each batch is printed as
/// one block under a process-wide mutex (parallel instances never interleave
/// lines) and stdout is flushed after it.
arrow::Result<std::unique_ptr<Operator>> MakeConsoleSink(
    const ConsoleSinkOptions& options);

/// Registers kind "console_sink" (options: ConsoleSinkOptions, may be null).
void RegisterConsoleSink(OperatorRegistry* registry);

}  // namespace sabot
