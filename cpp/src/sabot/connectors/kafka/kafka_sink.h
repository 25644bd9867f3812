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
///
/// Delivery "at_least_once" (default): messages are produced as rows arrive; a
/// checkpoint (SnapshotState) waits until every message produced before it is
/// acknowledged, so a restore loses nothing (but may repeat).
///
/// Delivery "exactly_once": two-phase commit over checkpoints. Encoded messages
/// are buffered per checkpoint epoch; SnapshotState(N) writes the messages of
/// the epochs not yet committed into the checkpoint (operator state
/// "kafka_sink_pending": pre-commit); NotifyCheckpointComplete(N) produces them
/// in one transaction of transactional id `<job_name>-<uid>-<instance>` together
/// with a marker (offset N committed to group `<transactional id>-commits`).
/// Open fences older producers of the id and re-commits the restored epochs
/// the marker shows as not committed. Close (end of input) commits the rest.
/// read_committed consumers see every message once. See
/// docs/design/exactly_once.md.
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

enum class Delivery { kAtLeastOnce, kExactlyOnce };

arrow::Result<Delivery> ParseDelivery(const std::string& name);

/// Operator-state tables of the exactly-once sink.
inline constexpr const char* kKafkaSinkPendingState = "kafka_sink_pending";
inline constexpr const char* kKafkaSinkInstancesState = "kafka_sink_instances";

/// Counters shared by all instances of one sink node.
struct KafkaSinkStats {
  std::atomic<int64_t> messages{0};   ///< messages handed to librdkafka
  std::atomic<int64_t> delivered{0};  ///< acknowledged by the broker
  std::atomic<int64_t> failed{0};     ///< delivery reports with an error
  std::atomic<int64_t> bytes{0};
  // exactly-once
  std::atomic<int64_t> transactions_started{0};  ///< transactions begun
  std::atomic<int64_t> transactions{0};          ///< transactions committed
  std::atomic<int64_t> aborted{0};               ///< transactions aborted (retried later)
  std::atomic<int64_t> committed_messages{0};    ///< messages in committed transactions
  std::atomic<int64_t> recommitted_epochs{0};    ///< restored epochs committed on open
  std::atomic<int64_t> skipped_epochs{0};        ///< restored epochs already committed
  std::atomic<int64_t> pending_bytes{0};         ///< buffered, waiting for a checkpoint
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

  Delivery delivery = Delivery::kAtLeastOnce;
  /// exactly_once: stable id of this sink within the job; transactional ids are
  /// `<job_name>-<uid>-<instance>` (the Python binding also makes it the node's
  /// state uid). Empty: the node's state uid (PlanNode::state_uid(), by default
  /// its plan name: stable as long as the job builds the same plan).
  std::string uid;
  /// exactly_once: the transaction timeout (transaction.timeout.ms) and the
  /// limit of each transactional call.
  int64_t transaction_timeout_ms = 60000;
  /// exactly_once: bound of the encoded bytes buffered per instance while they
  /// wait for a checkpoint to complete; past it the job fails (checkpoint more
  /// often or raise it).
  int64_t max_pending_bytes = 256 << 20;

  std::shared_ptr<KafkaSinkStats> stats = std::make_shared<KafkaSinkStats>();

  std::string ToString() const override;
  arrow::Status Validate() const;
};

void RegisterKafkaSink(OperatorRegistry* registry);

}  // namespace sabot::kafka
