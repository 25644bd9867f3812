#include "sabot/api/datastream.h"

#include <arrow/compute/initialize.h>

#include "sabot/functions/string_functions.h"
#include "sabot/operators/filter.h"
#include "sabot/operators/project.h"
#include "sabot/operators/union.h"
#include "sabot/views/view_sink.h"

namespace sabot {

arrow::Status InitializeRuntime() {
  static arrow::Status status = [] {
    ARROW_RETURN_NOT_OK(arrow::compute::Initialize());
    // split_index, regexp_extract (functions/string_functions.h)
    return EnsureStringFunctionsRegistered();
  }();
  return status;
}

arrow::Result<JobResult> JobHandle::Wait() {
  ARROW_RETURN_NOT_OK(job_->Wait());
  return JobResult{job_->Metrics()};
}

DataStream DataStream::WithEdge(Partitioning p, std::vector<std::string> keys) const {
  DataStream s = *this;
  s.partitioning_ = p;
  s.keys_ = std::move(keys);
  return s;
}

DataStream DataStream::Apply(const std::string& kind,
                             std::shared_ptr<const NodeOptions> options) const {
  int id = env_->plan()->AddNode(kind, {edge()}, std::move(options));
  return DataStream(env_, id);
}

DataStream DataStream::Map(BatchFunction fn, std::string description,
                           std::shared_ptr<arrow::Schema> output_schema) const {
  auto options = std::make_shared<MapOptions>();
  options->fn = std::move(fn);
  options->description = std::move(description);
  options->output_schema = std::move(output_schema);
  return Apply("map", options);
}

DataStream DataStream::FlatMap(FlatMapFunction fn, std::string description,
                               std::shared_ptr<arrow::Schema> output_schema) const {
  auto options = std::make_shared<FlatMapOptions>();
  options->fn = std::move(fn);
  options->description = std::move(description);
  options->output_schema = std::move(output_schema);
  return Apply("flat_map", options);
}

DataStream DataStream::Filter(arrow::compute::Expression predicate) const {
  auto options = std::make_shared<FilterOptions>();
  options->predicate = std::move(predicate);
  return Apply("filter", options);
}

DataStream DataStream::Select(std::vector<arrow::compute::Expression> expressions,
                              std::vector<std::string> names) const {
  auto options = std::make_shared<ProjectOptions>();
  options->expressions = std::move(expressions);
  options->names = std::move(names);
  return Apply("select", options);
}

DataStream DataStream::Select(const std::vector<std::string>& columns) const {
  std::vector<arrow::compute::Expression> exprs;
  for (const auto& c : columns) exprs.push_back(arrow::compute::field_ref(c));
  return Select(std::move(exprs), columns);
}

DataStream DataStream::AssignWatermarks(WatermarkOptions options) const {
  // Runs at its input's parallelism so that it chains to it: watermarks are then
  // generated per source split, not per arbitrary re-distribution of the rows.
  auto result =
      Apply("assign_watermarks", std::make_shared<WatermarkOptions>(std::move(options)));
  if (partitioning_ == Partitioning::kForward) {
    result.SetParallelism(env_->plan()->node(node_id_).parallelism);
  }
  return result;
}

DataStream DataStream::Window(WindowAggregateOptions options) const {
  if (options.keys.empty() && partitioning_ == Partitioning::kHash) options.keys = keys_;
  bool keyed = !options.keys.empty();
  DataStream input = *this;
  if (keyed && partitioning_ != Partitioning::kHash) input = KeyBy(options.keys);
  auto result = input.Apply("window_aggregate",
                            std::make_shared<WindowAggregateOptions>(std::move(options)));
  if (!keyed) result.SetParallelism(1);
  return result;
}

DataStream DataStream::KeyBy(std::vector<std::string> keys) const {
  return WithEdge(Partitioning::kHash, std::move(keys));
}

DataStream DataStream::SideOutput(const std::string& tag) const {
  DataStream s = *this;
  s.side_output_ = tag;
  return s;
}

DataStream DataStream::Rebalance() const { return WithEdge(Partitioning::kRebalance); }

DataStream DataStream::Broadcast() const { return WithEdge(Partitioning::kBroadcast); }

DataStream DataStream::Union(const std::vector<DataStream>& others) const {
  std::vector<PlanEdge> inputs{edge()};
  for (const auto& o : others) inputs.push_back(o.edge());
  int id =
      env_->plan()->AddNode("union", std::move(inputs), std::make_shared<UnionOptions>());
  return DataStream(env_, id);
}

// --- event-time joins ------------------------------------------------------------

DataStream DataStream::IntervalJoin(const DataStream& right,
                                    IntervalJoinOptions options) const {
  PlanEdge l = KeyBy(options.left_keys).edge();
  PlanEdge r = right.KeyBy(options.right_keys).edge();
  int id = env_->plan()->AddNode(
      "interval_join", {l, r}, std::make_shared<IntervalJoinOptions>(std::move(options)));
  return DataStream(env_, id);
}

DataStream DataStream::WindowJoin(const DataStream& right,
                                  WindowJoinOptions options) const {
  PlanEdge l = KeyBy(options.left_keys).edge();
  PlanEdge r = right.KeyBy(options.right_keys).edge();
  int id = env_->plan()->AddNode("window_join", {l, r},
                                 std::make_shared<WindowJoinOptions>(std::move(options)));
  return DataStream(env_, id);
}

DataStream DataStream::AsofJoin(const DataStream& right, AsofJoinOptions options) const {
  PlanEdge l = KeyBy(options.left_keys).edge();
  PlanEdge r = right.KeyBy(options.right_keys).edge();
  int id = env_->plan()->AddNode("asof_join", {l, r},
                                 std::make_shared<AsofJoinOptions>(std::move(options)));
  return DataStream(env_, id);
}

DataStream DataStream::TemporalJoin(const DataStream& versions,
                                    TemporalJoinOptions options) const {
  PlanEdge l = KeyBy(options.left_keys).edge();
  PlanEdge r = versions.KeyBy(options.right_keys).edge();
  int id = env_->plan()->AddNode(
      "temporal_join", {l, r}, std::make_shared<TemporalJoinOptions>(std::move(options)));
  return DataStream(env_, id);
}

// --- end of event-time joins -----------------------------------------------------

// --- updating operators ----------------------------------------------------------

DataStream DataStream::ApplyKeyed(
    const std::string& kind, std::vector<std::string>* keys,
    std::function<std::shared_ptr<const NodeOptions>()> make) const {
  if (keys->empty() && partitioning_ == Partitioning::kHash) *keys = keys_;
  const bool keyed = !keys->empty();
  DataStream input = *this;
  if (keyed && (partitioning_ != Partitioning::kHash || keys_ != *keys))
    input = KeyBy(*keys);
  DataStream result = input.Apply(kind, make());
  if (!keyed) result.SetParallelism(1);
  return result;
}

DataStream DataStream::GroupAggregate(GroupAggregateOptions options) const {
  return ApplyKeyed("group_aggregate", &options.keys, [&] {
    return std::make_shared<GroupAggregateOptions>(std::move(options));
  });
}

DataStream DataStream::Deduplicate(DeduplicateOptions options) const {
  return ApplyKeyed("deduplicate", &options.keys, [&] {
    return std::make_shared<DeduplicateOptions>(std::move(options));
  });
}

DataStream DataStream::TopN(TopNOptions options) const {
  return ApplyKeyed("top_n", &options.keys,
                    [&] { return std::make_shared<TopNOptions>(std::move(options)); });
}

// --- end of updating operators ---------------------------------------------------

// --- regular join ------------------------------------------------------------------

DataStream DataStream::Join(const DataStream& right, RegularJoinOptions options) const {
  // Outer rows are padded with the other side's columns: every join instance
  // must learn that side's schema even when none of its rows hash to it, so
  // its first row is broadcast to all instances (extra inputs 2, 3).
  std::vector<PlanEdge> inputs;
  options.schema_inputs.clear();
  DataStream sides[2] = {*this, right};
  for (int side = 0; side < 2; ++side) {
    if (!EmitsUnmatched(options.type, 1 - side)) continue;
    const int parallelism = env_->plan()->node(sides[side].node_id_).parallelism;
    sides[side] =
        sides[side]
            .Apply("regular_join_schema", std::make_shared<RegularJoinSchemaOptions>())
            .SetParallelism(parallelism);
    options.schema_inputs.push_back(side);
  }
  inputs.push_back(sides[0].KeyBy(options.left_keys).edge());
  inputs.push_back(sides[1].KeyBy(options.right_keys).edge());
  for (int side : options.schema_inputs) {
    inputs.push_back(sides[side].SideOutput(kRegularJoinSchemaTag).Broadcast().edge());
  }
  int id =
      env_->plan()->AddNode("regular_join", std::move(inputs),
                            std::make_shared<RegularJoinOptions>(std::move(options)));
  return DataStream(env_, id);
}

// --- end of regular join -----------------------------------------------------------

// --- keyed state (operators/keyed_process.h) -----------------------------------------

DataStream DataStream::Process(KeyedProcessOptions options) const {
  return ApplyKeyed("keyed_process", &options.keys, [&] {
    return std::make_shared<KeyedProcessOptions>(std::move(options));
  });
}

// --- end of keyed state --------------------------------------------------------------

// --- lookup join, materialized views, upsert sinks ---------------------------------

DataStream DataStream::LookupJoin(LookupJoinOptions options, bool key_by) const {
  DataStream input = key_by ? KeyBy(options.keys) : *this;
  return input.Apply("lookup_join",
                     std::make_shared<LookupJoinOptions>(std::move(options)));
}

std::shared_ptr<MaterializedView> DataStream::Materialize(
    const std::string& name, std::vector<std::string> keys,
    ViewConsistency consistency) const {
  auto options = std::make_shared<ViewSinkOptions>();
  options->view = std::make_shared<MaterializedView>(
      name, keys, arrow::default_memory_pool(), consistency);
  ViewRegistry::Global()->Register(options->view);
  auto view = options->view;
  KeyBy(std::move(keys)).Sink("materialized_view", std::move(options));
  return view;
}

std::shared_ptr<KafkaUpsertSinkStats> DataStream::WriteKafkaUpsert(
    KafkaUpsertSinkOptions options) const {
  auto o = std::make_shared<KafkaUpsertSinkOptions>(std::move(options));
  auto stats = o->stats;
  KeyBy(o->key_columns).Sink("kafka_upsert_sink", std::move(o));
  return stats;
}

std::shared_ptr<std::atomic<int64_t>> DataStream::WriteUpsertFiles(
    FileUpsertSinkOptions options) const {
  auto o = std::make_shared<FileUpsertSinkOptions>(std::move(options));
  auto files = o->files_written;
  KeyBy(o->key_columns).Sink("file_upsert_sink", std::move(o));
  return files;
}

// --- end of lookup join, materialized views, upsert sinks --------------------------

DataStream DataStream::SetParallelism(int parallelism) const {
  env_->plan()->mutable_node(node_id_)->parallelism = parallelism;
  return *this;
}

std::shared_ptr<CollectBuffer> DataStream::Collect() const {
  auto options = std::make_shared<CollectSinkOptions>();
  auto buffer = options->buffer;
  Sink("collect_sink", options);
  return buffer;
}

std::shared_ptr<std::atomic<int64_t>> DataStream::Discard() const {
  auto options = std::make_shared<BlackholeSinkOptions>();
  auto rows = options->rows;
  Sink("blackhole_sink", options);
  return rows;
}

void DataStream::Sink(const std::string& kind,
                      std::shared_ptr<const NodeOptions> options) const {
  // A sink runs at the parallelism of its input unless the stream was re-partitioned.
  int id = env_->plan()->AddNode(kind, {edge()}, std::move(options));
  if (partitioning_ == Partitioning::kForward) {
    env_->plan()->mutable_node(id)->parallelism =
        env_->plan()->node(node_id_).parallelism;
  }
}

std::shared_ptr<StreamEnvironment> StreamEnvironment::Make(JobOptions options) {
  ARROW_CHECK_OK(InitializeRuntime());
  return std::shared_ptr<StreamEnvironment>(new StreamEnvironment(options));
}

DataStream StreamEnvironment::FromBatches(
    std::shared_ptr<arrow::Schema> schema,
    std::vector<std::shared_ptr<arrow::RecordBatch>> batches, int parallelism) {
  auto options = std::make_shared<BatchesSourceOptions>();
  options->schema = std::move(schema);
  options->batches = std::move(batches);
  return FromSource("batches_source", options, parallelism);
}

arrow::Result<DataStream> StreamEnvironment::FromTable(const arrow::Table& table,
                                                       int64_t batch_size,
                                                       int parallelism) {
  arrow::TableBatchReader reader(table);
  reader.set_chunksize(batch_size);
  ARROW_ASSIGN_OR_RAISE(auto batches, reader.ToRecordBatches());
  return FromBatches(table.schema(), std::move(batches), parallelism);
}

DataStream StreamEnvironment::FromSource(const std::string& kind,
                                         std::shared_ptr<const NodeOptions> options,
                                         int parallelism) {
  int id = plan_.AddNode(kind, {}, std::move(options), parallelism);
  return DataStream(shared_from_this(), id);
}

arrow::Result<std::unique_ptr<JobHandle>> StreamEnvironment::Start() {
  ARROW_RETURN_NOT_OK(InitializeRuntime());
  ARROW_ASSIGN_OR_RAISE(auto job, Job::Make(plan_, options_));
  ARROW_RETURN_NOT_OK(job->Start());
  return std::make_unique<JobHandle>(std::move(job));
}

arrow::Result<JobResult> StreamEnvironment::Execute() {
  ARROW_ASSIGN_OR_RAISE(auto handle, Start());
  return handle->Wait();
}

}  // namespace sabot
