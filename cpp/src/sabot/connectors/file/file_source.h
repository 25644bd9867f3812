// File source: reads Parquet, CSV, JSON-lines or Arrow IPC files as a stream of
// record batches (plan node kind "file_source").
#pragma once

#include <arrow/result.h>
#include <arrow/status.h>
#include <arrow/type_fwd.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "sabot/exec/source.h"
#include "sabot/plan/plan.h"

namespace sabot {

class OperatorRegistry;

/// Options of a "file_source" plan node.
///
/// Each path is a file or a directory; a directory contributes its regular files
/// (not recursively), sorted by name, skipping names that start with '.' or '_'
/// and unfinished sink output ending in ".inprogress". The file list is `paths`
/// in order, each directory expanded in place. Files are the unit of splitting:
/// of P parallel instances, instance i reads files i, i+P, i+2P, ...
///
/// All files must have one schema. It is `schema` when given, otherwise the
/// schema of the first file of the list (every instance derives it from that
/// same file, so all instances agree). A file whose schema differs is an error
/// naming both files and the first differing field.
///
/// Formats: "parquet", "csv" (header line required; unquoted empty fields are
/// null, quoted "" is the empty string), "jsonl" (one JSON object per line) and
/// "ipc" (Arrow IPC file or stream format, detected from the magic bytes). For
/// csv/jsonl without `schema`, types are inferred from the first block of the
/// first file and then fixed for every later file. With a user schema, jsonl
/// timestamp / time / duration columns are read from integers in their unit and
/// date32 / date64 columns from "YYYY-MM-DD" strings: what the file sink writes.
struct FileSourceOptions : NodeOptions {
  std::vector<std::string> paths;
  std::string format;  ///< "parquet" | "csv" | "jsonl" | "ipc"
  /// Optional. For csv/jsonl: the column types to read with (jsonl: fields not
  /// in the schema are ignored). For parquet/ipc: checked against each file.
  std::shared_ptr<arrow::Schema> schema;
  /// Upper bound on rows per emitted batch (larger reader batches are sliced).
  int64_t batch_size = 65536;

  std::string ToString() const override;
};

/// Checks the options (format name, paths, batch size) without touching files.
/// `name` prefixes the message, e.g. "file_source#0".
arrow::Status ValidateFileSourceOptions(const FileSourceOptions& options,
                                        const std::string& name);

/// Name of the operator-state table of the source's positions (path, rows, done).
inline constexpr const char* kFilePositionsState = "file_positions";

/// The reader of split `instance_index` of `parallelism` (see FileSourceOptions).
///
/// Checkpoints: SnapshotState records per file the rows handed downstream and
/// whether it is finished; Open with ctx->restore skips finished files and the
/// rows already read of the others (at any parallelism: positions are looked up
/// by path). Files listed since the checkpoint are read from the start; a file
/// shorter than its restored position is an error.
///
/// Lifecycle: Open lists the files (missing paths fail here) and opens the first
/// one; each Poll returns one non-empty batch or kEndOfInput, reading files
/// incrementally (never a whole file at once); Close releases the open file.
/// Errors are Invalid (malformed data, schema mismatch, bad options) or IOError
/// (missing / unreadable file), prefixed with the operator name and the file.
/// Single-threaded, like every SourceReader; memory comes from ctx->pool.
arrow::Result<std::unique_ptr<SourceReader>> MakeFileSourceReader(
    const FileSourceOptions& options, int instance_index, int parallelism);

/// Lists the files `paths` expand to, in split order (see FileSourceOptions).
/// IOError naming the path when one does not exist or cannot be listed.
arrow::Result<std::vector<std::string>> ListSourceFiles(
    const std::vector<std::string>& paths);

/// Describes the first difference in field names or types between two schemas
/// (nullability and metadata are ignored), e.g. "expected 'b: int64', found
/// 'b: string' at field 1"; empty when they agree.
std::string DescribeSchemaDifference(const arrow::Schema& expected,
                                     const arrow::Schema& actual);

/// Registers kind "file_source" (options: FileSourceOptions).
void RegisterFileSource(OperatorRegistry* registry);

}  // namespace sabot
