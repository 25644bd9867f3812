// Sink "kafka_sink": produces one Kafka message per row (per batch for "ipc").
//
// The value is the row encoded by a sabot::Encoder (formats/format.h); the key
// comes from a column (or none) and is partitioned like Kafka's Java default
// partitioner (murmur2 of the key bytes; keyless messages are spread by
// librdkafka). Headers may come from a map<string, binary|string> column.
//
/// Threading contract: one instance per task, single-threaded; delivery reports
/// are served by rd_kafka_poll on the task's thread.
///
/// Errors: a message the broker refuses (or that times out) fails the job at the
/// next batch or at Close, naming topic, partition and reason. Close flushes
/// and waits for every delivery report; nothing is swallowed.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "sabot/connectors/kafka/kafka_client.h"
#include "sabot/formats/format.h"
#include "sabot/plan/plan.h"
#include "sabot/plan/registry.h"

namespace sabot::kafka {

/// Counters shared by all instances of one sink node.
struct KafkaSinkStats {
  std::atomic<int64_t> messages{0};   ///< messages handed to librdkafka
  std::atomic<int64_t> delivered{0};  ///< acknowledged by the broker
  std::atomic<int64_t> failed{0};     ///< delivery reports with an error
  std::atomic<int64_t> bytes{0};
};

struct KafkaSinkOptions : NodeOptions {
  std::string bootstrap;
  std::string topic;
  FormatOptions format;
  /// Column whose value is the message key; empty: no key. Binary and string
  /// columns are used as bytes; other types are cast to their string form.
  std::string key_column;
  /// map<string, binary|string> column written as message headers; empty: none.
  std::string headers_column;
  /// Drop the key / headers columns from the encoded value.
  bool exclude_key_from_value = false;
  bool exclude_headers_from_value = true;
  /// librdkafka producer properties (compression.type, linger.ms, batch.size,
  /// acks, message.timeout.ms, ...), applied after Sabot's defaults.
  ClientConfig producer_config;
  /// Larger input batches are split into slices of at most this many rows before
  /// encoding ("ipc" writes one message per slice: keep it under message.max.bytes).
  int64_t max_rows_per_batch = 8192;
  /// How long Close waits for outstanding deliveries.
  int64_t flush_timeout_ms = 120000;

  std::shared_ptr<KafkaSinkStats> stats = std::make_shared<KafkaSinkStats>();

  std::string ToString() const override;
  arrow::Status Validate() const;
};

void RegisterKafkaSink(OperatorRegistry* registry);

}  // namespace sabot::kafka
