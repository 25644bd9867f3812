// Thin RAII and error helpers over librdkafka's C API, shared by the Kafka source,
// sink and the topic admin functions.
//
/// Threading contract: the helpers are stateless; a KafkaHandle is as thread-safe
/// as librdkafka makes an rd_kafka_t (most calls may come from any thread).
#pragma once

#include <arrow/result.h>
#include <arrow/status.h>
#include <librdkafka/rdkafka.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace arrow {
class MapBuilder;
}  // namespace arrow

namespace sabot::kafka {

/// Key/value client properties (librdkafka names, mostly equal to the Java ones).
using ClientConfig = std::map<std::string, std::string>;

struct HandleDeleter {
  void operator()(rd_kafka_t* rk) const { rd_kafka_destroy(rk); }
};
using KafkaHandle = std::unique_ptr<rd_kafka_t, HandleDeleter>;

struct ConfDeleter {
  void operator()(rd_kafka_conf_t* conf) const { rd_kafka_conf_destroy(conf); }
};
using ConfPtr = std::unique_ptr<rd_kafka_conf_t, ConfDeleter>;

struct PartitionListDeleter {
  void operator()(rd_kafka_topic_partition_list_t* l) const {
    rd_kafka_topic_partition_list_destroy(l);
  }
};
using PartitionList =
    std::unique_ptr<rd_kafka_topic_partition_list_t, PartitionListDeleter>;

/// A Status for a librdkafka error. Errors a retry may cure (broker down,
/// timeouts, leader elections) say "(retryable)", so a caller or operator can tell.
arrow::Status KafkaStatus(rd_kafka_resp_err_t err, const std::string& context);

/// True when librdkafka flags the error as transient.
bool IsRetryable(rd_kafka_resp_err_t err);

/// A new rd_kafka_conf_t with `bootstrap` and every property of `config` set;
/// an unknown property or bad value is an Invalid status naming it.
arrow::Result<ConfPtr> MakeConf(const std::string& bootstrap, const ClientConfig& config);

/// Creates a client of `type` from `conf` (takes ownership of it).
arrow::Result<KafkaHandle> MakeClient(rd_kafka_type_t type, ConfPtr conf);

/// Number of partitions of `topic`, or NotFound when it does not exist.
arrow::Result<int32_t> TopicPartitionCount(rd_kafka_t* rk, const std::string& topic,
                                           int timeout_ms = 10000);

/// Admin: creates `topic` and waits until its metadata is visible. `config` holds
/// topic-level configs (e.g. {"max.message.bytes", "1000"}). AlreadyExists is an
/// error unless `exist_ok`.
arrow::Status CreateTopic(const std::string& bootstrap, const std::string& topic,
                          int32_t partitions, const ClientConfig& config = {},
                          bool exist_ok = false, int timeout_ms = 30000);

/// Admin: deletes `topic` (missing topics are fine when `missing_ok`).
arrow::Status DeleteTopic(const std::string& bootstrap, const std::string& topic,
                          bool missing_ok = true, int timeout_ms = 30000);

/// The (low, high) watermark offsets of every partition of `topic`, by partition.
arrow::Result<std::vector<std::pair<int64_t, int64_t>>> WatermarkOffsets(
    const std::string& bootstrap, const std::string& topic, int timeout_ms = 10000);

/// The partition Kafka's Java default partitioner picks for a non-null `key`:
/// positive(murmur2(key)) % partitions (librdkafka's "murmur2" partitioner).
int32_t JavaDefaultPartition(const void* key, size_t key_size, int32_t partitions);

/// Appends the headers of `msg` to `headers` (map<string, binary>): one map
/// entry per header in order (a header without a value maps to null), or a null
/// map when the message has none.
arrow::Status AppendMessageHeaders(const rd_kafka_message_t* msg,
                                   arrow::MapBuilder* headers);

}  // namespace sabot::kafka
