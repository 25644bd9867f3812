#include "sabot/connectors/kafka/kafka_client.h"

#include <arrow/builder.h>

#include <chrono>
#include <thread>

namespace sabot::kafka {

namespace {

struct QueueDeleter {
  void operator()(rd_kafka_queue_t* q) const { rd_kafka_queue_destroy(q); }
};
using QueuePtr = std::unique_ptr<rd_kafka_queue_t, QueueDeleter>;

struct EventDeleter {
  void operator()(rd_kafka_event_t* e) const { rd_kafka_event_destroy(e); }
};
using EventPtr = std::unique_ptr<rd_kafka_event_t, EventDeleter>;

struct MetadataDeleter {
  void operator()(const rd_kafka_metadata_t* md) const { rd_kafka_metadata_destroy(md); }
};

// Waits for the admin result event of type `type` on `queue`.
arrow::Result<EventPtr> WaitForEvent(rd_kafka_queue_t* queue, rd_kafka_event_type_t type,
                                     int timeout_ms, const std::string& what) {
  auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    EventPtr event(rd_kafka_queue_poll(queue, 100));
    if (!event) continue;
    if (rd_kafka_event_type(event.get()) != type) continue;
    if (rd_kafka_event_error(event.get()) != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return arrow::Status::IOError(
          "kafka: ", what, " failed: ", rd_kafka_event_error_string(event.get()));
    }
    return event;
  }
  return arrow::Status::IOError("kafka: ", what, " timed out after ", timeout_ms,
                                " ms (retryable)");
}

arrow::Result<KafkaHandle> MakeAdminClient(const std::string& bootstrap) {
  ARROW_ASSIGN_OR_RAISE(auto conf, MakeConf(bootstrap, {}));
  // A producer handle is the lightest client that can run admin requests.
  return MakeClient(RD_KAFKA_PRODUCER, std::move(conf));
}

}  // namespace

bool IsRetryable(rd_kafka_resp_err_t err) {
  switch (err) {
    case RD_KAFKA_RESP_ERR__TRANSPORT:
    case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
    case RD_KAFKA_RESP_ERR__TIMED_OUT:
    case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
    case RD_KAFKA_RESP_ERR__MSG_TIMED_OUT:
    case RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION:
    case RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS:
    case RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND:
    case RD_KAFKA_RESP_ERR_NETWORK_EXCEPTION:
    case RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS:
    case RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_NOT_COORDINATOR:
    case RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS:
    case RD_KAFKA_RESP_ERR__QUEUE_FULL:
      return true;
    default:
      return false;
  }
}

arrow::Status KafkaStatus(rd_kafka_resp_err_t err, const std::string& context) {
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR) return arrow::Status::OK();
  std::string hint = IsRetryable(err) ? " (retryable)" : "";
  return arrow::Status::IOError("kafka: ", context, ": ", rd_kafka_err2str(err), " [",
                                rd_kafka_err2name(err), "]", hint);
}

arrow::Result<ConfPtr> MakeConf(const std::string& bootstrap,
                                const ClientConfig& config) {
  ConfPtr conf(rd_kafka_conf_new());
  char errstr[512];
  auto set = [&](const std::string& key, const std::string& value) -> arrow::Status {
    if (rd_kafka_conf_set(conf.get(), key.c_str(), value.c_str(), errstr,
                          sizeof(errstr)) != RD_KAFKA_CONF_OK) {
      return arrow::Status::Invalid("kafka: bad client property '", key, "'='", value,
                                    "': ", errstr);
    }
    return arrow::Status::OK();
  };
  if (bootstrap.empty() && !config.count("bootstrap.servers")) {
    return arrow::Status::Invalid("kafka: no bootstrap servers given");
  }
  if (!bootstrap.empty()) ARROW_RETURN_NOT_OK(set("bootstrap.servers", bootstrap));
  ARROW_RETURN_NOT_OK(set("client.id", "sabot"));
  for (const auto& [key, value] : config) ARROW_RETURN_NOT_OK(set(key, value));
  return conf;
}

arrow::Result<KafkaHandle> MakeClient(rd_kafka_type_t type, ConfPtr conf) {
  char errstr[512];
  rd_kafka_t* rk = rd_kafka_new(type, conf.get(), errstr, sizeof(errstr));
  if (rk == nullptr) {
    return arrow::Status::Invalid("kafka: cannot create client: ", errstr);
  }
  conf.release();  // owned by rk now
  return KafkaHandle(rk);
}

arrow::Result<int32_t> TopicPartitionCount(rd_kafka_t* rk, const std::string& topic,
                                           int timeout_ms) {
  const rd_kafka_metadata_t* raw = nullptr;
  // All topics: asking for one named topic could auto-create it on some brokers.
  rd_kafka_resp_err_t err =
      rd_kafka_metadata(rk, /*all_topics=*/1, nullptr, &raw, timeout_ms);
  ARROW_RETURN_NOT_OK(KafkaStatus(err, "metadata request for topic '" + topic + "'"));
  std::unique_ptr<const rd_kafka_metadata_t, MetadataDeleter> md(raw);
  for (int i = 0; i < md->topic_cnt; ++i) {
    const auto& t = md->topics[i];
    if (topic != t.topic) continue;
    if (t.err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) break;
    ARROW_RETURN_NOT_OK(KafkaStatus(t.err, "metadata of topic '" + topic + "'"));
    return t.partition_cnt;
  }
  return arrow::Status::KeyError("kafka: topic '", topic, "' does not exist");
}

arrow::Status CreateTopic(const std::string& bootstrap, const std::string& topic,
                          int32_t partitions, const ClientConfig& config, bool exist_ok,
                          int timeout_ms) {
  if (partitions < 1) {
    return arrow::Status::Invalid("kafka: a topic needs at least one partition, not ",
                                  partitions);
  }
  ARROW_ASSIGN_OR_RAISE(auto rk, MakeAdminClient(bootstrap));
  char errstr[512];
  rd_kafka_NewTopic_t* new_topic = rd_kafka_NewTopic_new(
      topic.c_str(), partitions, /*replication_factor=*/1, errstr, sizeof(errstr));
  if (new_topic == nullptr) {
    return arrow::Status::Invalid("kafka: cannot create topic '", topic, "': ", errstr);
  }
  std::unique_ptr<rd_kafka_NewTopic_t, void (*)(rd_kafka_NewTopic_t*)> guard(
      new_topic, rd_kafka_NewTopic_destroy);
  for (const auto& [key, value] : config) {
    ARROW_RETURN_NOT_OK(
        KafkaStatus(rd_kafka_NewTopic_set_config(new_topic, key.c_str(), value.c_str()),
                    "topic config '" + key + "'"));
  }
  QueuePtr queue(rd_kafka_queue_new(rk.get()));
  rd_kafka_CreateTopics(rk.get(), &new_topic, 1, nullptr, queue.get());
  ARROW_ASSIGN_OR_RAISE(auto event,
                        WaitForEvent(queue.get(), RD_KAFKA_EVENT_CREATETOPICS_RESULT,
                                     timeout_ms, "creating topic " + topic));
  size_t count = 0;
  const rd_kafka_topic_result_t** results = rd_kafka_CreateTopics_result_topics(
      rd_kafka_event_CreateTopics_result(event.get()), &count);
  for (size_t i = 0; i < count; ++i) {
    rd_kafka_resp_err_t err = rd_kafka_topic_result_error(results[i]);
    if (err == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS && exist_ok)
      return arrow::Status::OK();
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      const char* msg = rd_kafka_topic_result_error_string(results[i]);
      return arrow::Status::IOError("kafka: creating topic '", topic,
                                    "' failed: ", msg ? msg : rd_kafka_err2str(err), " [",
                                    rd_kafka_err2name(err), "]");
    }
  }
  // The controller answered; wait until the broker serves the topic's metadata.
  auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    auto count_or = TopicPartitionCount(rk.get(), topic, 5000);
    if (count_or.ok() && *count_or == partitions) return arrow::Status::OK();
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return arrow::Status::IOError("kafka: topic '", topic,
                                "' was created but its metadata did not appear in ",
                                timeout_ms, " ms (retryable)");
}

arrow::Status DeleteTopic(const std::string& bootstrap, const std::string& topic,
                          bool missing_ok, int timeout_ms) {
  ARROW_ASSIGN_OR_RAISE(auto rk, MakeAdminClient(bootstrap));
  rd_kafka_DeleteTopic_t* del = rd_kafka_DeleteTopic_new(topic.c_str());
  std::unique_ptr<rd_kafka_DeleteTopic_t, void (*)(rd_kafka_DeleteTopic_t*)> guard(
      del, rd_kafka_DeleteTopic_destroy);
  QueuePtr queue(rd_kafka_queue_new(rk.get()));
  rd_kafka_DeleteTopics(rk.get(), &del, 1, nullptr, queue.get());
  ARROW_ASSIGN_OR_RAISE(auto event,
                        WaitForEvent(queue.get(), RD_KAFKA_EVENT_DELETETOPICS_RESULT,
                                     timeout_ms, "deleting topic " + topic));
  size_t count = 0;
  const rd_kafka_topic_result_t** results = rd_kafka_DeleteTopics_result_topics(
      rd_kafka_event_DeleteTopics_result(event.get()), &count);
  for (size_t i = 0; i < count; ++i) {
    rd_kafka_resp_err_t err = rd_kafka_topic_result_error(results[i]);
    if (err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART && missing_ok) continue;
    ARROW_RETURN_NOT_OK(KafkaStatus(err, "deleting topic '" + topic + "'"));
  }
  return arrow::Status::OK();
}

arrow::Result<std::vector<std::pair<int64_t, int64_t>>> WatermarkOffsets(
    const std::string& bootstrap, const std::string& topic, int timeout_ms) {
  ARROW_ASSIGN_OR_RAISE(auto rk, MakeAdminClient(bootstrap));
  ARROW_ASSIGN_OR_RAISE(int32_t partitions,
                        TopicPartitionCount(rk.get(), topic, timeout_ms));
  std::vector<std::pair<int64_t, int64_t>> out;
  for (int32_t p = 0; p < partitions; ++p) {
    int64_t low = 0, high = 0;
    ARROW_RETURN_NOT_OK(
        KafkaStatus(rd_kafka_query_watermark_offsets(rk.get(), topic.c_str(), p, &low,
                                                     &high, timeout_ms),
                    "watermark offsets of " + topic + "[" + std::to_string(p) + "]"));
    out.emplace_back(low, high);
  }
  return out;
}

int32_t JavaDefaultPartition(const void* key, size_t key_size, int32_t partitions) {
  // librdkafka's murmur2 partitioner is Java's: (murmur2(key) & 0x7fffffff) % n.
  return rd_kafka_msg_partitioner_murmur2(nullptr, key, key_size, partitions, nullptr,
                                          nullptr);
}

arrow::Status AppendMessageHeaders(const rd_kafka_message_t* msg,
                                   arrow::MapBuilder* headers) {
  rd_kafka_headers_t* hdrs = nullptr;
  // librdkafka's accessor takes a non-const message (it parses headers lazily).
  auto* m = const_cast<rd_kafka_message_t*>(msg);
  if (rd_kafka_message_headers(m, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR ||
      hdrs == nullptr) {
    return headers->AppendNull();
  }
  ARROW_RETURN_NOT_OK(headers->Append());
  auto* names = static_cast<arrow::StringBuilder*>(headers->key_builder());
  auto* values = static_cast<arrow::BinaryBuilder*>(headers->item_builder());
  const char* name;
  const void* value;
  size_t size;
  for (size_t i = 0; rd_kafka_header_get_all(hdrs, i, &name, &value, &size) ==
                     RD_KAFKA_RESP_ERR_NO_ERROR;
       ++i) {
    ARROW_RETURN_NOT_OK(names->Append(name));
    if (value == nullptr) {
      ARROW_RETURN_NOT_OK(values->AppendNull());
    } else {
      ARROW_RETURN_NOT_OK(
          values->Append(static_cast<const uint8_t*>(value), static_cast<int32_t>(size)));
    }
  }
  return arrow::Status::OK();
}

}  // namespace sabot::kafka
