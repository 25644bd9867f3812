#pragma once

// The commit protocol the file sinks share (file_sink.cc, partitioned_file_sink.cc):
// a file is written under an in-progress name, finished at a checkpoint, recorded
// in the checkpoint as pending, and renamed to its final name when the checkpoint
// completes (or when a restore finds it recorded in a completed checkpoint).

#include <arrow/record_batch.h>
#include <arrow/result.h>
#include <arrow/status.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "sabot/state/snapshot.h"

namespace sabot {

/// A finished file under its in-progress name and the name it gets on commit.
struct PendingFile {
  std::string temp;
  std::string final;
};

/// Pending files by the checkpoint whose completion commits them.
using PendingFiles = std::map<int64_t, std::vector<PendingFile>>;

/// fsyncs a file or directory so that a finished file or a rename survives a
/// crash of the machine, not only of the process.
arrow::Status SyncPath(const std::string& path, bool directory);

/// The instance index of an in-progress part file name (".part-<i>.<ext>.inprogress"
/// or ".part-<i>-<n>.<ext>.inprogress"), or -1 for other names.
int InProgressInstance(const std::string& name);

/// The operator-state table of pending files: instance, checkpoint, inprogress, final.
std::shared_ptr<arrow::Schema> PendingFilesSchema();

/// One instance's pending files as a batch of PendingFilesSchema().
arrow::Result<std::shared_ptr<arrow::RecordBatch>> PendingFilesBatch(
    const PendingFiles& pending, int32_t instance, arrow::MemoryPool* pool);

/// Renames `f` to its final name; done already (a rename before a crash) is fine.
/// `sink` names the operator in the error.
arrow::Status CommitPendingFile(const std::string& sink, const PendingFile& f,
                                int64_t checkpoint);

/// Calls `fn` for each file that `table` of the restored checkpoint records as
/// pending for the old instances instance `instance_index` of `parallelism`
/// answers for (old instance j goes to j % parallelism). Fails, naming `sink`,
/// on a table of another schema or a file that exists under neither name.
arrow::Status ForEachRestoredPendingFile(
    const std::string& sink, SnapshotReader* restore, const std::string& table,
    int instance_index, int parallelism,
    const std::function<arrow::Status(const PendingFile&, int64_t checkpoint)>& fn);

}  // namespace sabot
