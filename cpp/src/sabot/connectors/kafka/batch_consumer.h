// A Kafka consumer that hands out whole Arrow batches to a host runtime which
// drives it itself (the Faust-compatible App's agents), instead of a source
// inside a job. librdkafka fetches; each Poll turns the messages it got into
// columns (topic, partition, offset, timestamp, key, value) and, when a format
// is set, decodes the values into rows with the connector's decoders — no
// per-message object ever reaches the host language. Offsets are committed only
// when the host says so (auto commit is off), so a host that tracks which
// messages are still in flight never commits past them.
//
// Threading: one thread at a time may call Poll/Commit/Close (the host's
// consumer thread); Poll blocks for at most `timeout_ms`.
#pragma once

#include <arrow/array.h>
#include <arrow/memory_pool.h>
#include <arrow/record_batch.h>
#include <arrow/result.h>
#include <arrow/status.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "sabot/connectors/kafka/kafka_client.h"
#include "sabot/formats/format.h"

namespace sabot::kafka {

struct BatchConsumerOptions {
  std::string bootstrap;
  std::vector<std::string> topics;
  /// Consumer group (required: offsets are committed to it).
  std::string group;
  /// Where a partition without a committed offset starts: "earliest" | "latest".
  std::string reset = "earliest";
  /// Decode values with this format into `PolledBatch::rows`; unset: no decoding.
  bool decode = false;
  FormatOptions format;
  /// librdkafka consumer properties, applied after Sabot's defaults.
  ClientConfig config;
};

/// One topic-partition and the offset of the next message to read from it.
struct TopicPartitionOffset {
  std::string topic;
  int32_t partition = 0;
  int64_t offset = 0;
};

struct PolledBatch {
  /// One row per message: topic utf8, partition int32, offset int64,
  /// timestamp int64 (ms since the epoch, -1 when absent), key binary (null when
  /// absent), value binary (null for tombstones), headers map<utf8, binary>
  /// (null when the message has none).
  std::shared_ptr<arrow::RecordBatch> messages;
  /// Decoded values (only when `decode`): one row per decoded message, in order.
  std::shared_ptr<arrow::RecordBatch> rows;
  /// For each row of `rows`, its index in `messages`.
  std::shared_ptr<arrow::Int32Array> row_message;
  /// Messages whose value failed to decode (index into `messages` and the reason).
  std::vector<DecodeError> errors;
  /// Consumer errors librdkafka reported during this poll (non-fatal: the client
  /// retries on its own), as "topic[partition]: reason".
  std::vector<std::string> warnings;
};

class KafkaBatchConsumer {
 public:
  static arrow::Result<std::unique_ptr<KafkaBatchConsumer>> Open(
      BatchConsumerOptions options, arrow::MemoryPool* pool);
  ~KafkaBatchConsumer();

  /// Waits up to `timeout_ms` for the first message, then takes what is already
  /// fetched, up to `max_messages`. An empty `messages` batch means none came.
  arrow::Result<PolledBatch> Poll(int64_t max_messages, int timeout_ms);

  /// Synchronously commits the given positions (offset = next message to read)
  /// to the group.
  arrow::Status Commit(const std::vector<TopicPartitionOffset>& offsets);

  /// The partitions currently assigned to this consumer.
  arrow::Result<std::vector<TopicPartitionOffset>> Assignment();

  /// Leaves the group (a final rebalance) and releases the client. Idempotent.
  arrow::Status Close();

  const BatchConsumerOptions& options() const { return options_; }

 private:
  KafkaBatchConsumer(BatchConsumerOptions options, arrow::MemoryPool* pool);
  arrow::Status Start();

  BatchConsumerOptions options_;
  arrow::MemoryPool* pool_;
  KafkaHandle consumer_;
  rd_kafka_queue_t* queue_ = nullptr;
  std::unique_ptr<Decoder> decoder_;
  std::vector<rd_kafka_message_t*> scratch_;
};

}  // namespace sabot::kafka
