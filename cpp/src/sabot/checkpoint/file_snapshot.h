// SnapshotWriter / SnapshotReader over checkpoint directories (storage.h).
#pragma once

#include <arrow/memory_pool.h>
#include <arrow/record_batch.h>
#include <arrow/result.h>

#include <memory>
#include <string>
#include <vector>

#include "sabot/checkpoint/metadata.h"
#include "sabot/checkpoint/storage.h"
#include "sabot/state/snapshot.h"

namespace sabot::checkpoint {

/// What one operator instance (or source reader) writes into one checkpoint.
///
/// Two phases. The synchronous part runs on the task's thread inside
/// SnapshotState: the Write*/AddFiles calls only record the batches and file
/// lists (no hashing, no I/O), so the task continues processing at once. The
/// asynchronous part, Persist, runs later on the job's checkpoint I/O thread:
/// it computes key groups, writes one Arrow IPC file per table (a new file when
/// a table's schema changes), copies private files and stores shared files.
/// Batches handed over must not be mutated afterwards (SnapshotWriter contract).
class FileSnapshotWriter : public SnapshotWriter {
 public:
  FileSnapshotWriter(int64_t checkpoint_id, std::string uid, int index, int parallelism,
                     int max_parallelism);

  int64_t checkpoint_id() const override { return checkpoint_id_; }
  arrow::Status WriteKeyed(const std::string& table,
                           std::shared_ptr<arrow::RecordBatch> rows,
                           const std::vector<std::string>& key_columns) override;
  arrow::Status WriteKeyedWithGroups(
      const std::string& table, std::shared_ptr<arrow::RecordBatch> rows,
      std::shared_ptr<arrow::Int32Array> key_groups) override;
  arrow::Status WriteOperatorState(const std::string& table,
                                   std::shared_ptr<arrow::RecordBatch> rows) override;
  arrow::Status AddFiles(const std::string& table, const std::string& local_dir,
                         const std::vector<std::string>& private_files,
                         const std::vector<std::string>& shared_files) override;

  const std::string& uid() const { return uid_; }
  int index() const { return index_; }
  int parallelism() const { return parallelism_; }
  /// Nothing was written.
  bool empty() const { return parts_.empty() && file_sets_.empty(); }
  /// Copy this instance's operator state into the metadata as readable JSON
  /// (sources: their read positions).
  void set_describe_positions(bool on) { describe_positions_ = on; }

  /// The asynchronous part: writes what was recorded below `metadata_dir` (the
  /// checkpoint or savepoint directory) and returns the instance's entry of the
  /// metadata. Shared files go through `store` (deduplicated) unless
  /// `self_contained`, or when `store` is null (then copied under
  /// `metadata_dir`/shared).
  arrow::Result<InstanceMetadata> Persist(const std::string& metadata_dir,
                                          CheckpointStore* store, bool self_contained,
                                          arrow::MemoryPool* pool);

 private:
  struct Part {
    std::string table;
    bool keyed = false;
    std::shared_ptr<arrow::RecordBatch> rows;
    std::vector<std::string> key_columns;       // keyed, groups computed in Persist
    std::shared_ptr<arrow::Int32Array> groups;  // keyed, groups given
  };
  struct FileSetPart {
    std::string table;
    std::string local_dir;
    std::vector<std::string> private_files, shared_files;
  };

  int64_t checkpoint_id_;
  std::string uid_;
  int index_, parallelism_, max_parallelism_;
  bool describe_positions_ = false;
  std::vector<Part> parts_;
  std::vector<FileSetPart> file_sets_;
};

/// Reads the state of operator `uid` for instance `index` of `parallelism` from
/// a loaded checkpoint (possibly written at another parallelism).
///
/// ReadKeyed keeps the rows of the key groups this instance owns (reading only
/// the files of old instances whose key groups overlap); ReadOperatorState
/// returns the union over every old instance; ReadFiles materializes the file
/// sets of overlapping old instances under scratch_dir/<table>-<old index>/,
/// hard-linking shared files (immutable) and copying private ones (an operator
/// may modify them, e.g. a RocksDB MANIFEST).
class FileSnapshotReader : public SnapshotReader {
 public:
  FileSnapshotReader(std::shared_ptr<const CheckpointMetadata> metadata, std::string uid,
                     int index, int parallelism, arrow::MemoryPool* pool);

  int64_t checkpoint_id() const override { return metadata_->checkpoint_id; }
  KeyGroupRange key_groups() const override { return range_; }
  arrow::Result<std::vector<std::shared_ptr<arrow::RecordBatch>>> ReadKeyed(
      const std::string& table) override;
  arrow::Result<std::vector<std::shared_ptr<arrow::RecordBatch>>> ReadOperatorState(
      const std::string& table) override;
  arrow::Result<std::vector<FileSet>> ReadFiles(const std::string& table,
                                                const std::string& scratch_dir) override;

  /// The keyed tables and operator-state tables this operator has (any instance).
  std::vector<std::string> KeyedTables() const;

 private:
  const OperatorMetadata* op() const;

  std::shared_ptr<const CheckpointMetadata> metadata_;
  std::string uid_;
  KeyGroupRange range_;
  arrow::MemoryPool* pool_;
};

/// Reads every batch of one Arrow IPC state file; errors name the file.
arrow::Result<std::vector<std::shared_ptr<arrow::RecordBatch>>> ReadStateFile(
    const std::string& path, arrow::MemoryPool* pool);

}  // namespace sabot::checkpoint
