// Lookup join ("lookup_join"): enriches each row of a stream with the rows of
// an external table (PostgreSQL: connectors/postgres/postgres_table.h) whose key
// equals the row's key columns, as Flink's lookup join. See docs/lookup_join.md
// and docs/design/lookup_and_views.md.
//
// Per input batch the operator looks up the distinct keys that are not in its
// LRU cache with one query, on lookup threads of its own: the task never waits
// for the database. Up to `max_in_flight` batches are in flight per instance;
// results are emitted in input order (or, unordered, as they complete, but
// never across a watermark). Inner join: rows without a table row are dropped;
// left join: they get nulls. A key with several table rows yields one output
// row per table row. Rows with a null key never match.
//
/// Threading contract: the operator is driven by one task (as every operator);
/// its lookup threads share nothing with it but a request queue and a
/// completion queue under one mutex, and wake the task through
/// ctx->async_notifier (Operator::OnAsyncReady).
///
/// Errors: a lookup that fails is retried on a fresh connection (connection
/// errors only, `max_retries` times with backoff); when retries are exhausted,
/// or for non-retryable errors (bad SQL, unknown table or column, key type
/// mismatch), the job fails with an error naming the operator, the table and
/// the column; with on_error = "dead_letter" the batch's rows go to the side
/// output "lookup_errors" with an `error` column instead.
#pragma once

#include <arrow/record_batch.h>
#include <arrow/result.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "sabot/operators/join_output.h"
#include "sabot/plan/plan.h"
#include "sabot/plan/registry.h"

namespace sabot {

/// One connection to a lookup table, used by one lookup thread at a time.
class LookupClient {
 public:
  virtual ~LookupClient() = default;
  /// Connects and returns the schema of looked-up rows: the key columns (in
  /// LookupTable::key_columns order), then the value columns.
  virtual arrow::Result<std::shared_ptr<arrow::Schema>> Connect() = 0;
  /// Checks the stream's key types against the table's key columns (once,
  /// before the first Lookup); TypeError names the columns on a mismatch.
  virtual arrow::Status CheckKeyTypes(
      const std::vector<std::shared_ptr<arrow::DataType>>& key_types,
      const std::vector<std::string>& stream_keys) = 0;
  /// The rows whose key equals one of the `keys` rows (distinct, non-null; one
  /// array per key column), in the schema Connect returned. An IOError whose
  /// message ends in "(retryable)" may be cured by a new connection.
  virtual arrow::Result<std::shared_ptr<arrow::RecordBatch>> Lookup(
      const std::vector<std::shared_ptr<arrow::Array>>& keys) = 0;
  /// Interrupts a running Lookup; may be called from any thread.
  virtual void Cancel() {}
};

/// An external table a lookup join reads: makes a client per lookup thread.
class LookupTable {
 public:
  virtual ~LookupTable() = default;
  virtual arrow::Result<std::unique_ptr<LookupClient>> MakeClient(
      arrow::MemoryPool* pool) const = 0;
  virtual std::vector<std::string> key_columns() const = 0;
  /// For messages and plan descriptions, e.g. "postgres table 'customers'".
  virtual std::string ToString() const = 0;
};

/// Counters shared by all instances of one lookup join node.
struct LookupJoinStats {
  /// Input rows (with a non-null key) whose key was cached or already being
  /// looked up (for an earlier batch or an earlier row of the batch): as in
  /// Caffeine's async cache, a key being loaded counts as a hit.
  std::atomic<int64_t> cache_hits{0};
  std::atomic<int64_t> cache_misses{
      0};  ///< rows whose key started a lookup (one per key)
  /// The hits that waited for a lookup in flight (included in cache_hits).
  std::atomic<int64_t> inflight_waits{0};
  std::atomic<int64_t> queries{0};         ///< lookup queries that succeeded
  std::atomic<int64_t> keys_queried{0};    ///< distinct keys sent in those queries
  std::atomic<int64_t> rows_fetched{0};    ///< table rows they returned
  std::atomic<int64_t> query_ns{0};        ///< time spent in them
  std::atomic<int64_t> retries{0};         ///< failed attempts that were retried
  std::atomic<int64_t> failed_batches{0};  ///< batches sent to "lookup_errors"
  std::atomic<int64_t> cache_entries{0};   ///< keys cached now (all instances)
  std::atomic<int64_t> cache_evictions{0};
};

struct LookupJoinOptions : NodeOptions {
  std::shared_ptr<const LookupTable> table;
  /// Stream columns matched, in order, against table->key_columns().
  std::vector<std::string> keys;
  JoinType type = JoinType::kInner;  ///< kInner or kLeft
  /// Cached keys per instance (LRU); 0 disables the cache. Keys without a
  /// table row are cached too (as "no row").
  int64_t cache_max_entries = 100000;
  /// A cached key older than this is looked up again; 0: never expires.
  int64_t cache_ttl_ms = 0;
  /// Input batches per instance that may wait for lookups; at the bound the
  /// task takes no more input (backpressure).
  int max_in_flight = 8;
  /// Emit results in input order (else as lookups complete, but never ahead
  /// of a watermark that followed their input).
  bool ordered = true;
  /// Lookup threads per instance, one connection each.
  int connections = 1;
  /// Retries of a failed lookup on a new connection (retryable errors only).
  int max_retries = 3;
  int64_t retry_backoff_ms = 100;  ///< doubled after every retry
  /// "fail" (the job fails) or "dead_letter" (side output "lookup_errors").
  std::string on_error = "fail";
  std::shared_ptr<LookupJoinStats> stats = std::make_shared<LookupJoinStats>();

  std::string ToString() const override;
  arrow::Status Validate() const;
};

/// Name of the side output of failed lookups (on_error = "dead_letter").
inline constexpr char kLookupErrorsTag[] = "lookup_errors";

void RegisterLookupJoin(OperatorRegistry* registry);

}  // namespace sabot
