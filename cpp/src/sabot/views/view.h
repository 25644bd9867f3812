// Materialized views: the latest row per key of a changelog stream (an
// updating group-by, a join, any stream keyed by some columns), maintained by
// the sink "materialized_view" (view_sink.h) and readable while the job runs:
// a point lookup by key and a full scan, from C++, Python and HTTP
// (http_server.h). See docs/views.md.
//
// Consistency, chosen per view:
//  - kLatest (default): latest processed input. Each input batch is applied
//    atomically under a writer lock; a reader (Get, Scan) holds the reader
//    lock, so it sees every batch entirely or not at all, across all parallel
//    writers (one snapshot of the whole view, never a half-applied batch).
//  - kCheckpoint: as of the last completed checkpoint. Writers hand over the
//    changes of each completed checkpoint (Commit); the view applies those of
//    checkpoint N, of every writer, in one step once every writer committed N
//    (or later). A read never sees input that a restore could roll back.
//
/// Threading contract: thread-safe. Writers are the view's sink instances (one
/// per task), readers any thread.
#pragma once

#include <arrow/record_batch.h>
#include <arrow/result.h>
#include <arrow/table.h>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <utility>
#include <vector>

#include "sabot/views/materialized_table.h"

namespace sabot {

enum class ViewConsistency : uint8_t { kLatest, kCheckpoint };

/// "latest" / "checkpoint".
const char* ViewConsistencyName(ViewConsistency c);

class MaterializedView {
 public:
  MaterializedView(std::string name, std::vector<std::string> key_columns,
                   arrow::MemoryPool* pool = arrow::default_memory_pool(),
                   ViewConsistency consistency = ViewConsistency::kLatest);

  const std::string& name() const { return name_; }
  const std::vector<std::string>& key_columns() const { return key_columns_; }
  ViewConsistency consistency() const { return consistency_; }

  // --- writers ---
  /// Applies one batch of sink instance `owner` atomically (kLatest; in
  /// kCheckpoint mode for state restored from a completed checkpoint).
  arrow::Status Apply(const std::shared_ptr<arrow::RecordBatch>& batch, int owner);
  /// kCheckpoint: instance `owner` of `num_writers` writes this view.
  void AttachWriter(int owner, int num_writers);
  /// kCheckpoint: the batches `owner` received up to the barrier of completed
  /// checkpoint `checkpoint_id` (since its previous commit). Published, with
  /// every other writer's, once all writers committed `checkpoint_id` or later.
  arrow::Status Commit(int owner, int64_t checkpoint_id,
                       std::vector<std::shared_ptr<arrow::RecordBatch>> batches);
  /// kCheckpoint: end of input of `owner`; `batches` are all it has not
  /// committed. The final result is published once every writer finished.
  arrow::Status Finish(int owner,
                       std::vector<std::shared_ptr<arrow::RecordBatch>> batches);
  /// kCheckpoint: the newest checkpoint published (-1: none; INT64_MAX: the
  /// end of input).
  int64_t published_checkpoint() const;
  /// The rows written by `owner` (for its checkpoint); null before any data.
  arrow::Result<std::shared_ptr<arrow::Table>> ScanOwner(int owner) const;

  // --- readers ---
  /// The row of `key` (one array of length 1 per key column), or null.
  arrow::Result<std::shared_ptr<arrow::RecordBatch>> Get(
      const std::vector<std::shared_ptr<arrow::Array>>& key) const;
  /// The row of a key given as text, one string per key column, parsed as the
  /// key column types (HTTP query parameters); null when absent.
  arrow::Result<std::shared_ptr<arrow::RecordBatch>> GetByText(
      const std::vector<std::string>& key) const;
  /// Every row (no particular order); null before any data arrived.
  arrow::Result<std::shared_ptr<arrow::Table>> Scan() const;
  /// The row schema (the input without `_op`); null before any data.
  std::shared_ptr<arrow::Schema> schema() const;
  /// Key column types (empty before any data).
  std::vector<std::shared_ptr<arrow::DataType>> key_types() const;
  int64_t num_rows() const;
  /// Batches applied so far (grows by one per applied batch).
  int64_t version() const;

 private:
  arrow::Status PublishLocked();

  std::string name_;
  std::vector<std::string> key_columns_;
  ViewConsistency consistency_;
  mutable std::shared_mutex mutex_;
  MaterializedTable table_;
  int64_t version_ = 0;
  // kCheckpoint, under mutex_: committed batches by checkpoint id, in commit
  // order, and the newest id each writer committed.
  std::map<int64_t, std::vector<std::pair<int, std::shared_ptr<arrow::RecordBatch>>>>
      committed_;
  std::vector<int64_t> writer_commits_;
  int64_t published_ = -1;
};

/// The views of this process by name (what the HTTP server serves).
/// Thread-safe.
class ViewRegistry {
 public:
  static ViewRegistry* Global();
  /// Adds `view`, replacing a view of the same name (whose holders keep it).
  void Register(std::shared_ptr<MaterializedView> view);
  std::shared_ptr<MaterializedView> Find(const std::string& name) const;
  /// Removes the view `name`; false when there is none.
  bool Remove(const std::string& name);
  std::vector<std::shared_ptr<MaterializedView>> List() const;

 private:
  mutable std::mutex mutex_;
  std::map<std::string, std::shared_ptr<MaterializedView>> views_;
};

}  // namespace sabot
