// The C++ DataStream API: build a logical plan fluently, then execute it.
//
//   auto env = sabot::StreamEnvironment::Make();
//   auto collected = env->FromBatches(schema, batches)
//                        .Filter(greater(field_ref("price"), literal(100)))
//                        .KeyBy({"auction"})
//                        .Collect();
//   ARROW_ASSIGN_OR_RAISE(auto result, env->Execute());
//
/// Threading contract: build on one thread; Execute/Start run the job on the
/// environment's worker pool.
#pragma once

#include <arrow/compute/expression.h>
#include <arrow/record_batch.h>
#include <arrow/result.h>
#include <arrow/table.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "sabot/connectors/memory/memory.h"
#include "sabot/connectors/upsert/upsert_sinks.h"
#include "sabot/exec/job.h"
#include "sabot/operators/deduplicate.h"
#include "sabot/operators/event_time.h"
#include "sabot/operators/event_time_join.h"
#include "sabot/operators/group_aggregate.h"
#include "sabot/operators/keyed_process.h"
#include "sabot/operators/lookup_join.h"
#include "sabot/operators/map.h"
#include "sabot/operators/regular_join.h"
#include "sabot/operators/top_n.h"
#include "sabot/operators/window_aggregate.h"
#include "sabot/plan/plan.h"
#include "sabot/views/view.h"

namespace sabot {

class StreamEnvironment;

/// The result of a finished job.
struct JobResult {
  JobMetrics metrics;
};

/// A handle on a running job.
class JobHandle {
 public:
  explicit JobHandle(std::shared_ptr<Job> job) : job_(std::move(job)) {}
  arrow::Result<JobResult> Wait();
  void Cancel() { job_->Cancel(); }
  bool done() const { return job_->done(); }
  JobMetrics Metrics() const { return job_->Metrics(); }
  arrow::Status TriggerCheckpoint(int64_t id) { return job_->TriggerCheckpoint(id); }
  Job* job() { return job_.get(); }

 private:
  std::shared_ptr<Job> job_;
};

/// A stream in the plan being built: a node, plus how its rows are partitioned
/// to the next operator (forward unless KeyBy/Rebalance/Broadcast was called).
class DataStream {
 public:
  DataStream(std::shared_ptr<StreamEnvironment> env, int node_id)
      : env_(std::move(env)), node_id_(node_id) {}

  DataStream Map(BatchFunction fn, std::string description = "map",
                 std::shared_ptr<arrow::Schema> output_schema = nullptr) const;
  DataStream FlatMap(FlatMapFunction fn, std::string description = "flat_map",
                     std::shared_ptr<arrow::Schema> output_schema = nullptr) const;
  DataStream Filter(arrow::compute::Expression predicate) const;
  /// Computed columns: (expression, name) pairs.
  DataStream Select(std::vector<arrow::compute::Expression> expressions,
                    std::vector<std::string> names) const;
  /// Keeps the named columns.
  DataStream Select(const std::vector<std::string>& columns) const;
  /// Rows with equal key columns go to the same instance of the next operator.
  DataStream KeyBy(std::vector<std::string> keys) const;
  DataStream Rebalance() const;
  DataStream Broadcast() const;
  DataStream Union(const std::vector<DataStream>& others) const;
  /// The stream of rows this stream's operator sends to side output `tag`
  /// (e.g. "late" from a window).
  DataStream SideOutput(const std::string& tag) const;
  /// Event time from `options.time_column` and watermarks per parallel instance
  /// (per source split when chained right after a source).
  DataStream AssignWatermarks(WatermarkOptions options) const;
  /// Windowed aggregation. Keys come from a preceding KeyBy (or options.keys);
  /// without keys the window runs as one instance over the whole stream.
  DataStream Window(WindowAggregateOptions options) const;
  // --- event-time joins (operators/event_time_join.h) -------------------------
  /// Interval join of this stream (left) with `right`: rows with equal keys where
  /// right.time BETWEEN left.time + lower_ms AND left.time + upper_ms. Both sides
  /// are hash-partitioned on their keys. Unmatched rows of outer joins are emitted
  /// once the watermark passes their bound; late rows go to SideOutput("late").
  DataStream IntervalJoin(const DataStream& right, IntervalJoinOptions options) const;
  /// Window join of this stream (left) with `right`: rows with equal keys in the
  /// same tumbling/hopping window, emitted when the watermark passes the window end.
  DataStream WindowJoin(const DataStream& right, WindowJoinOptions options) const;
  /// ASOF join of this stream (left) with `right`: each left row with the right
  /// row of equal key and the greatest right.time <= left.time (within
  /// tolerance_ms if > 0), emitted once the watermark reaches left.time. Inner or
  /// left; late left rows go to SideOutput("late").
  DataStream AsofJoin(const DataStream& right, AsofJoinOptions options) const;
  /// Temporal join of this stream (left) with `versions`, the changelog of a
  /// table versioned by the key: each left row with the version valid at
  /// left.time unless it is a delete. Emitted like AsofJoin; inner or left.
  DataStream TemporalJoin(const DataStream& versions, TemporalJoinOptions options) const;
  // --- end of event-time joins -------------------------------------------------
  // --- updating operators (operators/changelog.h) -----------------------------
  /// These emit updating streams: the output carries an int8 `_op` column
  /// (ChangeOp). Keys come from a preceding KeyBy when options.keys is empty;
  /// without keys the operator runs as one instance over the whole stream.
  ///
  /// Non-windowed group-by: per input batch, -U/+U (or +I) for each touched key.
  DataStream GroupAggregate(GroupAggregateOptions options) const;
  /// One row per key: keep first or keep last (by arrival or event time).
  DataStream Deduplicate(DeduplicateOptions options) const;
  /// The N best rows per key: +I entering, -D leaving (or -U/+U per rank).
  DataStream TopN(TopNOptions options) const;
  // --- end of updating operators -----------------------------------------------
  // --- regular join (operators/regular_join.h) --------------------------------
  /// Regular (unbounded) join of this stream (left) with `right` on equal keys,
  /// over append-only or updating inputs; both sides are hash-partitioned on
  /// their keys. Updating output (+I/-D rows with `_op`) unless it is an inner
  /// join of two append-only inputs.
  DataStream Join(const DataStream& right, RegularJoinOptions options) const;
  // --- end of regular join -----------------------------------------------------

  // --- keyed state (operators/keyed_process.h) ---------------------------------
  /// A user function with keyed state over each batch. Keys come from a
  /// preceding KeyBy when options.keys is empty; without keys the function runs
  /// as one instance with one (global) key.
  DataStream Process(KeyedProcessOptions options) const;
  // --- end of keyed state --------------------------------------------------------

  // --- lookup join, materialized views, upsert sinks ---------------------------
  /// Lookup join with an external table (operators/lookup_join.h), e.g.
  /// postgres::MakePostgresLookupTable. The input is hash-partitioned by
  /// options.keys first (each instance caches its share of the keys) unless
  /// `key_by` is false.
  DataStream LookupJoin(LookupJoinOptions options, bool key_by = true) const;
  /// Maintains the view `name`: the latest row per `keys` of this (changelog)
  /// stream, readable while the job runs (as of the latest processed input or
  /// of the last completed checkpoint); registered in ViewRegistry::Global().
  std::shared_ptr<MaterializedView> Materialize(
      const std::string& name, std::vector<std::string> keys,
      ViewConsistency consistency = ViewConsistency::kLatest) const;
  /// Upserts by options.key_columns into a Kafka topic (tombstones for deletes).
  std::shared_ptr<KafkaUpsertSinkStats> WriteKafkaUpsert(
      KafkaUpsertSinkOptions options) const;
  /// The materialized table as files, rewritten on every checkpoint and at the
  /// end. Returns the counter of files written.
  std::shared_ptr<std::atomic<int64_t>> WriteUpsertFiles(
      FileUpsertSinkOptions options) const;
  // --- end of lookup join, materialized views, upsert sinks --------------------
  /// Sets the parallelism of this stream's operator.
  DataStream SetParallelism(int parallelism) const;
  /// Any registered operator kind.
  DataStream Apply(const std::string& kind,
                   std::shared_ptr<const NodeOptions> options) const;

  // Sinks.
  std::shared_ptr<CollectBuffer> Collect() const;
  std::shared_ptr<std::atomic<int64_t>> Discard() const;
  void Sink(const std::string& kind, std::shared_ptr<const NodeOptions> options) const;

  int node_id() const { return node_id_; }
  const std::shared_ptr<StreamEnvironment>& env() const { return env_; }

 private:
  /// Applies a keyed updating operator: keys from KeyBy if `keys` is empty.
  DataStream ApplyKeyed(const std::string& kind, std::vector<std::string>* keys,
                        std::function<std::shared_ptr<const NodeOptions>()> make) const;
  DataStream WithEdge(Partitioning p, std::vector<std::string> keys = {}) const;
  PlanEdge edge() const { return PlanEdge{node_id_, partitioning_, keys_, side_output_}; }

  std::shared_ptr<StreamEnvironment> env_;
  int node_id_;
  Partitioning partitioning_ = Partitioning::kForward;
  std::vector<std::string> keys_;
  std::string side_output_;
};

class StreamEnvironment : public std::enable_shared_from_this<StreamEnvironment> {
 public:
  static std::shared_ptr<StreamEnvironment> Make(JobOptions options = {});

  DataStream FromBatches(std::shared_ptr<arrow::Schema> schema,
                         std::vector<std::shared_ptr<arrow::RecordBatch>> batches,
                         int parallelism = 1);
  arrow::Result<DataStream> FromTable(const arrow::Table& table,
                                      int64_t batch_size = 65536, int parallelism = 1);
  DataStream FromSource(const std::string& kind,
                        std::shared_ptr<const NodeOptions> options, int parallelism = 0);

  /// Runs the plan to completion (bounded sources) and returns its metrics.
  arrow::Result<JobResult> Execute();
  arrow::Result<std::unique_ptr<JobHandle>> Start();

  LogicalPlan* plan() { return &plan_; }
  JobOptions* options() { return &options_; }

 private:
  explicit StreamEnvironment(JobOptions options) : options_(options) {}
  LogicalPlan plan_;
  JobOptions options_;
};

/// Initializes Arrow's compute function registry (needed once per process with
/// Arrow 21+). Idempotent; called by StreamEnvironment::Make.
arrow::Status InitializeRuntime();

}  // namespace sabot
