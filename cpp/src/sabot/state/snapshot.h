// The contract between stateful operators (and sources and sinks) and the
// checkpoint layer: what an operator instance writes into a checkpoint, and
// what it reads back on restore, possibly at another parallelism.
//
// Keyed state is written as Arrow batches whose rows each belong to one key;
// the writer records each row's key group, so a restore keeps exactly the rows
// of the key groups the new instance owns (rescaling moves whole key groups).
// Operator state (not keyed: source positions, pending sink transactions) is
// returned on restore as the union of what every old instance wrote; each new
// instance keeps what it needs.
#pragma once

#include <arrow/array.h>
#include <arrow/record_batch.h>
#include <arrow/result.h>
#include <arrow/status.h>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace sabot {

/// Name of the key-group column the writer adds to keyed tables.
inline constexpr const char* kKeyGroupColumn = "__sabot_kg";

/// The contiguous key groups [first, last] an operator instance owns.
struct KeyGroupRange {
  int first = 0;
  int last = -1;
  bool Contains(int key_group) const { return key_group >= first && key_group <= last; }
  bool empty() const { return last < first; }
  /// The range of instance `index` of `parallelism` (the inverse of
  /// InstanceOfKeyGroup in exec/partitioner.h).
  static KeyGroupRange ForInstance(int index, int parallelism, int max_parallelism);
};

/// What one operator instance writes into checkpoint `checkpoint_id`.
///
/// Threading contract: called on the task's thread during SnapshotState. The
/// batches handed over must not be mutated afterwards: the writer may persist
/// them asynchronously, after SnapshotState returned, while processing goes on.
class SnapshotWriter {
 public:
  virtual ~SnapshotWriter() = default;
  virtual int64_t checkpoint_id() const = 0;

  /// Keyed state: each row belongs to the key in `key_columns` (hashed exactly
  /// as key_by hashes them). Several calls with one table append.
  virtual arrow::Status WriteKeyed(const std::string& table,
                                   std::shared_ptr<arrow::RecordBatch> rows,
                                   const std::vector<std::string>& key_columns) = 0;
  /// Keyed state whose key groups the operator already knows (one per row).
  virtual arrow::Status WriteKeyedWithGroups(
      const std::string& table, std::shared_ptr<arrow::RecordBatch> rows,
      std::shared_ptr<arrow::Int32Array> key_groups) = 0;
  /// Operator (non-keyed) state; restored as the union over old instances.
  virtual arrow::Status WriteOperatorState(const std::string& table,
                                           std::shared_ptr<arrow::RecordBatch> rows) = 0;
  /// Files an operator produced for this checkpoint in `local_dir` (e.g. a
  /// RocksDB checkpoint). `shared_files` are immutable and uniquely named (SST
  /// files): stored once and referenced by later checkpoints (incremental).
  /// `private_files` are copied for this checkpoint only. Names are relative
  /// to `local_dir`. The files must stay until the checkpoint completed or
  /// was aborted (see Operator::NotifyCheckpointComplete).
  virtual arrow::Status AddFiles(const std::string& table, const std::string& local_dir,
                                 const std::vector<std::string>& private_files,
                                 const std::vector<std::string>& shared_files) = 0;
};

/// What an operator instance reads back when it restores (ctx->restore in Open).
class SnapshotReader {
 public:
  virtual ~SnapshotReader() = default;
  virtual int64_t checkpoint_id() const = 0;
  /// The key groups this (new) instance owns.
  virtual KeyGroupRange key_groups() const = 0;

  /// Rows of keyed `table` from every old instance, keeping only rows whose key
  /// group this instance owns; the key-group column is removed. Empty when the
  /// table was never written.
  virtual arrow::Result<std::vector<std::shared_ptr<arrow::RecordBatch>>> ReadKeyed(
      const std::string& table) = 0;
  /// Operator state `table` written by every old instance.
  virtual arrow::Result<std::vector<std::shared_ptr<arrow::RecordBatch>>>
  ReadOperatorState(const std::string& table) = 0;

  /// One old instance's files (AddFiles), materialized in a local directory.
  struct FileSet {
    KeyGroupRange key_groups;  ///< what the old instance owned
    std::string dir;           ///< directory holding the files under their names
  };
  /// The file sets of `table` of the old instances whose key groups overlap
  /// this instance's; files are materialized under `scratch_dir`.
  virtual arrow::Result<std::vector<FileSet>> ReadFiles(
      const std::string& table, const std::string& scratch_dir) = 0;
};

/// Computes the key-group column for WriteKeyed (exposed for tests and for
/// writers other than the checkpoint storage).
arrow::Result<std::shared_ptr<arrow::Int32Array>> ComputeKeyGroups(
    const arrow::RecordBatch& rows, const std::vector<std::string>& key_columns,
    int max_parallelism, arrow::MemoryPool* pool);

/// Keeps the rows of `batch` (with kKeyGroupColumn) whose key group is in
/// `range`, and drops the key-group column.
arrow::Result<std::shared_ptr<arrow::RecordBatch>> FilterKeyGroups(
    const std::shared_ptr<arrow::RecordBatch>& batch, const KeyGroupRange& range,
    arrow::MemoryPool* pool);

/// A checkpoint held in memory: the state of every operator instance of one
/// checkpoint, as written. Used by operator tests (snapshot, then restore at
/// any parallelism) and by jobs that checkpoint without a directory.
class MemorySnapshot {
 public:
  explicit MemorySnapshot(int64_t checkpoint_id, int max_parallelism = 128)
      : checkpoint_id_(checkpoint_id), max_parallelism_(max_parallelism) {}

  /// A writer for instance `index` of `parallelism` of operator `op`.
  std::unique_ptr<SnapshotWriter> Writer(const std::string& op, int index,
                                         int parallelism);
  /// A reader for instance `index` of `parallelism` of operator `op` (the
  /// parallelism may differ from the one that wrote).
  std::unique_ptr<SnapshotReader> Reader(const std::string& op, int index,
                                         int parallelism);
  int max_parallelism() const { return max_parallelism_; }

  struct InstanceState {
    KeyGroupRange key_groups;
    // table -> batches with kKeyGroupColumn appended
    std::map<std::string, std::vector<std::shared_ptr<arrow::RecordBatch>>> keyed;
    std::map<std::string, std::vector<std::shared_ptr<arrow::RecordBatch>>> op_state;
    // table -> file set (files copied into memory as bytes)
    std::map<std::string, std::map<std::string, std::string>> files;
  };

 private:
  friend class MemorySnapshotWriter;
  friend class MemorySnapshotReader;
  int64_t checkpoint_id_;
  int max_parallelism_;
  std::mutex mutex_;
  // op -> old instance index -> state
  std::map<std::string, std::map<int, InstanceState>> ops_;
};

}  // namespace sabot
