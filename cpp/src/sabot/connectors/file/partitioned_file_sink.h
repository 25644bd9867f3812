// Partitioned file sink ("partitioned_file_sink"): writes the rows of a stream
// into one directory per value of the partition columns, Hive / Flink style
// (`<path>/dt=2026-01-01/hm=10%3A05/part-<instance>-<n>.csv`), and passes the
// rows on.
#pragma once

#include <string>
#include <vector>

#include "sabot/plan/plan.h"

namespace sabot {

class OperatorRegistry;

/// Options of a "partitioned_file_sink" plan node.
///
/// Each batch is split by the values of `partition_by` (vectorized: the rows
/// are grouped by a hash table over the partition columns, then taken per
/// partition, one write per partition and batch). Instance i keeps one open
/// file per partition, `<path>/<c1>=<v1>/.../.part-<i>-<n>.<ext>.inprogress`,
/// and commits it as `part-<i>-<n>.<ext>` (n: a per-instance counter kept in
/// checkpoints, so names never repeat across restores):
/// - without checkpoints, at the end of input;
/// - with checkpoints, in two phases (exactly-once): at checkpoint N every open
///   file is finished (fsynced) and recorded as pending in the checkpoint; when
///   N completes the pending files are renamed into place. On restore the
///   pending files of the restored checkpoint are committed and in-progress
///   files this instance answers for are deleted (old instance j is handled by
///   new instance j % parallelism), as the plain file sink does.
///
/// Values are written into the path as text (partition columns are not in the
/// files), escaped as Flink / Hive escape path names ('%' + two hex digits for
/// control characters and `"#%'*/:=?\{[]^`, e.g. ':' -> '%3A'). A null
/// partition value fails the job (Invalid naming the sink and the column).
///
/// CSV: no header, fields quoted where needed, timestamps as SQL text in UTC
/// ("2026-01-01 10:05:00.250"). Parquet: the columns as they are.
///
/// With `success_file`, at the end of input the sink writes an empty `_SUCCESS`
/// file into every partition directory it wrote to (Flink's partition-commit
/// policy "success-file", for all partitions once the input is complete).
///
/// The operator emits its input batches unchanged.
struct PartitionedFileSinkOptions : NodeOptions {
  std::string path;
  std::string format = "csv";  ///< "csv" | "parquet"
  std::vector<std::string> partition_by;
  bool success_file = true;
  std::string ToString() const override;
};

/// Name of the operator-state table of pending (written, uncommitted) files.
inline constexpr const char* kPartitionedFileSinkPendingState =
    "partitioned_file_sink_pending";
/// Name of the success file.
inline constexpr const char* kSuccessFileName = "_SUCCESS";

/// `value` escaped for a path segment as Flink's PartitionPathUtils does.
std::string EscapePartitionValue(const std::string& value);

void RegisterPartitionedFileSink(OperatorRegistry* registry);

}  // namespace sabot
