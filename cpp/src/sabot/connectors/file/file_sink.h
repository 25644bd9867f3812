// File sink: writes a stream of record batches as Parquet, CSV, JSON-lines or
// Arrow IPC files (plan node kind "file_sink").
#pragma once

#include <arrow/result.h>
#include <arrow/status.h>

#include <memory>
#include <string>

#include "sabot/exec/operator.h"
#include "sabot/plan/plan.h"

namespace sabot {

class OperatorRegistry;

/// Options of a "file_sink" plan node.
///
/// Parallel instance i writes `<path>/part-<i>.<ext>` (ext: parquet, csv, jsonl,
/// arrow), creating the directory. The file is written as
/// `.part-<i>.<ext>.inprogress` and renamed into place when the sink closes, so a
/// reader never sees a half-written part file under its final name. An instance
/// that receives no batch writes no file.
///
/// With checkpoints the sink commits in two phases (exactly-once): at each
/// checkpoint N it finishes the open file under its in-progress name
/// (`.part-<i>-<e>.<ext>.inprogress`, fsynced) and records it as pending in the
/// checkpoint (operator state "file_sink_pending"); when N completes it renames
/// it to `part-<i>-<e>.<ext>` (e: the epoch, the last checkpoint id + 1 when the
/// file was opened). On restore it renames the pending files of the restored
/// checkpoint and deletes in-progress files it does not know (old instance j is
/// handled by new instance j % parallelism).
struct FileSinkOptions : NodeOptions {
  std::string path;    ///< output directory
  std::string format;  ///< "parquet" | "csv" | "jsonl" | "ipc"

  std::string ToString() const override;
};

/// Name of the operator-state table of pending (written, uncommitted) files.
inline constexpr const char* kFileSinkPendingState = "file_sink_pending";

/// The file extension (without dot) that `format` writes; Invalid for an
/// unknown format.
arrow::Result<std::string> FileSinkExtension(const std::string& format);

/// Creates sink instance `instance_index`. The operator emits nothing.
///
/// Lifecycle: Open creates the directory; the first ProcessBatch opens the
/// writer with that batch's schema; later batches must have the same field
/// names and types (else Invalid naming the sink, the file and the field);
/// Close finalizes the file (Parquet footer, IPC footer) and renames it into
/// place. Single-threaded like every operator; memory comes from ctx->pool.
arrow::Result<std::unique_ptr<Operator>> MakeFileSink(const FileSinkOptions& options,
                                                      int instance_index);

/// Registers kind "file_sink" (options: FileSinkOptions).
void RegisterFileSink(OperatorRegistry* registry);

}  // namespace sabot
