// Upsert sinks for changelog streams (docs/design/changelog.md): the latest row
// per key, in Kafka (a compacted topic) or in files. See docs/upsert.md.
//
// Kafka ("kafka_upsert_sink"): one message per change. The message key is the
// encoded key columns (a JSON object of them, or the text of a single key
// column), so Kafka's default partitioner puts every change of a key in one
// partition, in order. +I and +U rows are written as the JSON row (without
// `_op`), -D rows as tombstones (null value), -U rows are dropped (the +U that
// follows replaces the row). A stream without `_op` is all upserts. Delivery
// is at least once: the producer is idempotent (no duplicates or reordering
// from retries) and a checkpoint waits until everything before its barrier is
// acknowledged; replays after a restore rewrite the same upserts, which a
// compacted topic (and any consumer that keeps the last value per key)
// absorbs.
//
// Files ("file_upsert_sink"): each instance keeps the materialized table of its
// keys (views/materialized_table.h) and writes it whole as
// `<path>/part-<i>.parquet` (or .csv): at each checkpoint barrier into a
// temporary file, renamed over the part file (atomically) when the checkpoint
// completes, and at end of input. A reader sees the table as of the latest
// completed checkpoint (then the final one), never a partial file.
//
/// Threading contract: one instance per task, single-threaded; Kafka delivery
/// reports are served by rd_kafka_poll on the task's thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "sabot/connectors/kafka/kafka_client.h"
#include "sabot/plan/plan.h"
#include "sabot/plan/registry.h"

namespace sabot {

/// Counters shared by all instances of one Kafka upsert sink.
struct KafkaUpsertSinkStats {
  std::atomic<int64_t> upserts{0};                ///< +I/+U messages produced
  std::atomic<int64_t> tombstones{0};             ///< -D messages produced (null value)
  std::atomic<int64_t> dropped_update_before{0};  ///< -U rows skipped
  std::atomic<int64_t> delivered{0};              ///< acknowledged by the broker
  std::atomic<int64_t> failed{0};                 ///< delivery reports with an error
};

struct KafkaUpsertSinkOptions : NodeOptions {
  std::string bootstrap;
  std::string topic;
  /// The upsert key columns (required).
  std::vector<std::string> key_columns;
  /// "json": the key is {"k1": v1, ...}; "string": the text of the single key
  /// column (as the plain Kafka sink writes keys).
  std::string key_format = "json";
  /// librdkafka producer properties, applied after Sabot's defaults
  /// (enable.idempotence=true, linger.ms=5).
  kafka::ClientConfig producer_config;
  int64_t flush_timeout_ms = 120000;
  std::shared_ptr<KafkaUpsertSinkStats> stats = std::make_shared<KafkaUpsertSinkStats>();

  std::string ToString() const override;
  arrow::Status Validate() const;
};

struct FileUpsertSinkOptions : NodeOptions {
  std::string path;                ///< output directory
  std::string format = "parquet";  ///< "parquet" or "csv"
  std::vector<std::string> key_columns;
  /// Part files published so far, all instances (each completed checkpoint
  /// and the end of input).
  std::shared_ptr<std::atomic<int64_t>> files_written =
      std::make_shared<std::atomic<int64_t>>(0);

  std::string ToString() const override;
  arrow::Status Validate() const;
};

void RegisterKafkaUpsertSink(OperatorRegistry* registry);
void RegisterFileUpsertSink(OperatorRegistry* registry);

/// Registers "kafka_upsert_sink" and "file_upsert_sink".
inline void RegisterUpsertSinks(OperatorRegistry* registry) {
  RegisterKafkaUpsertSink(registry);
  RegisterFileUpsertSink(registry);
}

}  // namespace sabot
