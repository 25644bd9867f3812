// The list of built-in operators, sources and sinks. One explicit list (rather
// than static registration objects) so that linking the static core library can
// never silently drop an operator.
#include "sabot/connectors/console/console_sink.h"
#include "sabot/connectors/file/file_sink.h"
#include "sabot/connectors/file/file_source.h"
#include "sabot/connectors/file/partitioned_file_sink.h"  // over_rows, partitioned files
#include "sabot/connectors/kafka/kafka_sink.h"
#include "sabot/connectors/kafka/kafka_source.h"
#include "sabot/connectors/memory/memory.h"
#include "sabot/connectors/nexmark/nexmark_source.h"
#include "sabot/connectors/upsert/upsert_sinks.h"
#include "sabot/operators/deduplicate.h"
#include "sabot/operators/event_time.h"
#include "sabot/operators/event_time_join.h"
#include "sabot/operators/filter.h"
#include "sabot/operators/group_aggregate.h"
#include "sabot/operators/keyed_process.h"
#include "sabot/operators/lookup_join.h"
#include "sabot/operators/map.h"
#include "sabot/operators/over_aggregate.h"  // over_rows, partitioned files
#include "sabot/operators/project.h"
#include "sabot/operators/regular_join.h"
#include "sabot/operators/top_n.h"
#include "sabot/operators/union.h"
#include "sabot/operators/window_aggregate.h"
#include "sabot/plan/registry.h"
#include "sabot/views/view_sink.h"

namespace sabot {

void RegisterBuiltins(OperatorRegistry* registry) {
  RegisterMapOperators(registry);
  RegisterFilterOperator(registry);
  RegisterProjectOperator(registry);
  RegisterUnionOperator(registry);
  RegisterWatermarkAssigner(registry);
  RegisterWindowAggregate(registry);
  RegisterGroupAggregate(registry);
  RegisterDeduplicate(registry);
  RegisterTopN(registry);
  RegisterKeyedProcess(registry);  // user keyed state (operators/keyed_process.h)
  RegisterIntervalJoin(registry);
  RegisterWindowJoin(registry);
  RegisterAsofJoins(registry);
  RegisterRegularJoin(registry);
  RegisterMemoryConnectors(registry);
  RegisterFileSource(registry);
  RegisterFileSink(registry);
  RegisterConsoleSink(registry);
  nexmark::RegisterNexmarkSource(registry);
  kafka::RegisterKafkaSource(registry);
  kafka::RegisterKafkaSink(registry);
  RegisterLookupJoin(registry);     // lookup join (operators/lookup_join.h)
  RegisterViewSink(registry);       // materialized views (views/view_sink.h)
  RegisterUpsertSinks(registry);    // Kafka / file upsert sinks (connectors/upsert/)
  RegisterOverAggregate(registry);  // over_rows (operators/over_aggregate.h)
  RegisterPartitionedFileSink(registry);  // connectors/file/partitioned_file_sink.h
}

}  // namespace sabot
