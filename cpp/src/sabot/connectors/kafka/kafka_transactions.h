// A transactional Kafka producer for the exactly-once sink: one transactional
// id, fenced on open, committing buffered messages together with a "marker"
// (a transactional offset commit to a marker consumer group) that records the
// newest checkpoint whose messages are committed.
//
// Why the marker: librdkafka cannot resume another producer's open
// transaction, so a sink pre-commits by writing its messages into the
// checkpoint and produces them only once the checkpoint completed. After a
// crash, the restored sink reads the marker to tell which restored epochs are
// already in Kafka (see docs/design/exactly_once.md).
//
/// Threading contract: one object is used by one task at a time; librdkafka's
/// delivery reports are served on that thread (rd_kafka_poll and the
/// transactional calls).
#pragma once

#include <arrow/record_batch.h>
#include <arrow/result.h>
#include <arrow/status.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "sabot/connectors/kafka/kafka_client.h"

namespace sabot::kafka {

/// The schema of buffered messages: key, value (binary, nullable) and headers
/// (map<string, binary>, nullable). Rows are produced in order.
std::shared_ptr<arrow::Schema> MessageSchema();

/// `<job_name>-<uid>-<instance>`.
std::string TransactionalId(const std::string& job_name, const std::string& uid,
                            int instance);

/// The consumer group whose committed offset is the marker of `transactional_id`.
std::string MarkerGroup(const std::string& transactional_id);

class TransactionalProducer {
 public:
  ~TransactionalProducer();

  /// Creates a producer with `transactional_id` for `topic` and calls
  /// init_transactions: any older producer with this id is fenced, and its
  /// open transaction is aborted (or, if its commit had started, completed)
  /// before this returns. `name` prefixes error messages.
  static arrow::Result<std::unique_ptr<TransactionalProducer>> Open(
      const std::string& bootstrap, const ClientConfig& config,
      const std::string& transactional_id, const std::string& topic,
      const std::string& name, int64_t timeout_ms);

  /// The marker: the checkpoint id of the last committed transaction of this
  /// id, or -1 when none was ever committed. Read with read_committed
  /// semantics (stable offsets only), after Open resolved older transactions.
  arrow::Result<int64_t> ReadMarker();

  /// Produces every row of `batches` (MessageSchema) and sets the marker to
  /// `marker`, in one transaction. Returns true once committed; false when the
  /// transaction was aborted and nothing of it became visible (retry later);
  /// an error when the outcome is unknown or the producer is unusable (fenced,
  /// fatal): the caller must fail, and a restore resolves it with the marker.
  arrow::Result<bool> Commit(
      const std::vector<std::shared_ptr<arrow::RecordBatch>>& batches, int64_t marker);

  const std::string& transactional_id() const { return transactional_id_; }
  int64_t produced() const { return produced_; }

 private:
  TransactionalProducer() = default;
  arrow::Status Produce(const arrow::RecordBatch& batch);
  /// Aborts the open transaction; false when that did not succeed.
  arrow::Result<bool> Abort(const std::string& why);
  static void Delivered(rd_kafka_t*, const rd_kafka_message_t* msg, void* opaque);

  std::string bootstrap_;
  std::string transactional_id_;
  std::string topic_name_;
  std::string name_;
  int64_t timeout_ms_ = 60000;
  KafkaHandle producer_;
  rd_kafka_topic_t* topic_ = nullptr;
  int64_t produced_ = 0;
  int64_t failed_ = 0;
  std::string first_error_;
};

}  // namespace sabot::kafka
