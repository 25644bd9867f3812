#include "sabot/connectors/kafka/batch_consumer.h"

#include <arrow/builder.h>
#include <arrow/type.h>

#include <algorithm>
#include <utility>

namespace sabot::kafka {
namespace {

constexpr size_t kConsumeChunk = 4096;

std::shared_ptr<arrow::Schema> MessageSchema() {
  static const auto schema = arrow::schema({
      arrow::field("topic", arrow::utf8(), false),
      arrow::field("partition", arrow::int32(), false),
      arrow::field("offset", arrow::int64(), false),
      arrow::field("timestamp", arrow::int64(), false),
      arrow::field("key", arrow::binary()),
      arrow::field("value", arrow::binary()),
      arrow::field("headers", arrow::map(arrow::utf8(), arrow::binary())),
  });
  return schema;
}

/// Column builders for one poll's messages.
struct MessageColumns {
  explicit MessageColumns(arrow::MemoryPool* pool)
      : topic(pool),
        partition(pool),
        offset(pool),
        timestamp(pool),
        key(pool),
        value(pool),
        headers(pool, std::make_shared<arrow::StringBuilder>(pool),
                std::make_shared<arrow::BinaryBuilder>(pool)) {}

  arrow::Status Reserve(int64_t n) {
    ARROW_RETURN_NOT_OK(topic.Reserve(n));
    ARROW_RETURN_NOT_OK(partition.Reserve(n));
    ARROW_RETURN_NOT_OK(offset.Reserve(n));
    ARROW_RETURN_NOT_OK(timestamp.Reserve(n));
    ARROW_RETURN_NOT_OK(key.Reserve(n));
    return value.Reserve(n);
  }

  arrow::Status Append(const rd_kafka_message_t* m) {
    ARROW_RETURN_NOT_OK(topic.Append(rd_kafka_topic_name(m->rkt)));
    partition.UnsafeAppend(m->partition);
    offset.UnsafeAppend(m->offset);
    rd_kafka_timestamp_type_t type;
    const int64_t ts = rd_kafka_message_timestamp(m, &type);
    timestamp.UnsafeAppend(type == RD_KAFKA_TIMESTAMP_NOT_AVAILABLE ? -1 : ts);
    if (m->key) {
      ARROW_RETURN_NOT_OK(key.Append(static_cast<const uint8_t*>(m->key),
                                     static_cast<int32_t>(m->key_len)));
    } else {
      ARROW_RETURN_NOT_OK(key.AppendNull());
    }
    if (m->payload) {
      ARROW_RETURN_NOT_OK(value.Append(static_cast<const uint8_t*>(m->payload),
                                       static_cast<int32_t>(m->len)));
    } else {
      ARROW_RETURN_NOT_OK(value.AppendNull());
    }
    return AppendMessageHeaders(m, &headers);
  }

  arrow::Result<std::shared_ptr<arrow::RecordBatch>> Finish() {
    const int64_t n = partition.length();
    std::vector<std::shared_ptr<arrow::Array>> columns(7);
    ARROW_RETURN_NOT_OK(topic.Finish(&columns[0]));
    ARROW_RETURN_NOT_OK(partition.Finish(&columns[1]));
    ARROW_RETURN_NOT_OK(offset.Finish(&columns[2]));
    ARROW_RETURN_NOT_OK(timestamp.Finish(&columns[3]));
    ARROW_RETURN_NOT_OK(key.Finish(&columns[4]));
    ARROW_RETURN_NOT_OK(value.Finish(&columns[5]));
    ARROW_RETURN_NOT_OK(headers.Finish(&columns[6]));
    return arrow::RecordBatch::Make(MessageSchema(), n, std::move(columns));
  }

  arrow::StringBuilder topic;
  arrow::Int32Builder partition;
  arrow::Int64Builder offset;
  arrow::Int64Builder timestamp;
  arrow::BinaryBuilder key;
  arrow::BinaryBuilder value;
  arrow::MapBuilder headers;
};

std::string Where(const rd_kafka_message_t* m) {
  std::string topic = m->rkt ? rd_kafka_topic_name(m->rkt) : "?";
  return topic + "[" + std::to_string(m->partition) + "]";
}

}  // namespace

KafkaBatchConsumer::KafkaBatchConsumer(BatchConsumerOptions options,
                                       arrow::MemoryPool* pool)
    : options_(std::move(options)), pool_(pool), scratch_(kConsumeChunk) {}

KafkaBatchConsumer::~KafkaBatchConsumer() { (void)Close(); }

arrow::Result<std::unique_ptr<KafkaBatchConsumer>> KafkaBatchConsumer::Open(
    BatchConsumerOptions options, arrow::MemoryPool* pool) {
  if (options.bootstrap.empty()) {
    return arrow::Status::Invalid("kafka batch consumer: bootstrap is empty");
  }
  if (options.topics.empty()) {
    return arrow::Status::Invalid("kafka batch consumer: no topics given");
  }
  if (options.group.empty()) {
    return arrow::Status::Invalid("kafka batch consumer: a consumer group is required");
  }
  if (options.reset != "earliest" && options.reset != "latest") {
    return arrow::Status::Invalid("kafka batch consumer: reset '", options.reset,
                                  "' must be 'earliest' or 'latest'");
  }
  std::unique_ptr<KafkaBatchConsumer> consumer(
      new KafkaBatchConsumer(std::move(options), pool));
  ARROW_RETURN_NOT_OK(consumer->Start());
  return consumer;
}

arrow::Status KafkaBatchConsumer::Start() {
  if (options_.decode) {
    ARROW_ASSIGN_OR_RAISE(decoder_, MakeDecoder(options_.format, pool_));
  }
  ClientConfig config = {
      {"group.id", options_.group},          {"enable.auto.commit", "false"},
      {"enable.auto.offset.store", "false"}, {"auto.offset.reset", options_.reset},
      {"fetch.wait.max.ms", "10"},           {"queued.max.messages.kbytes", "65536"},
      {"allow.auto.create.topics", "false"}, {"log.connection.close", "false"},
  };
  for (const auto& [k, v] : options_.config) config[k] = v;
  ARROW_ASSIGN_OR_RAISE(auto conf, MakeConf(options_.bootstrap, config));
  ARROW_ASSIGN_OR_RAISE(consumer_, MakeClient(RD_KAFKA_CONSUMER, std::move(conf)));
  ARROW_RETURN_NOT_OK(
      KafkaStatus(rd_kafka_poll_set_consumer(consumer_.get()), "poll_set_consumer"));
  queue_ = rd_kafka_queue_get_consumer(consumer_.get());
  for (const auto& topic : options_.topics) {
    auto count = TopicPartitionCount(consumer_.get(), topic);
    if (!count.ok()) {
      return count.status().WithMessage("kafka batch consumer: cannot read topic '",
                                        topic, "' at ", options_.bootstrap, ": ",
                                        count.status().message());
    }
  }
  PartitionList topics(
      rd_kafka_topic_partition_list_new(static_cast<int>(options_.topics.size())));
  for (const auto& topic : options_.topics) {
    rd_kafka_topic_partition_list_add(topics.get(), topic.c_str(), RD_KAFKA_PARTITION_UA);
  }
  return KafkaStatus(rd_kafka_subscribe(consumer_.get(), topics.get()), "subscribe");
}

arrow::Result<PolledBatch> KafkaBatchConsumer::Poll(int64_t max_messages,
                                                    int timeout_ms) {
  if (!consumer_)
    return arrow::Status::Invalid("kafka batch consumer: polled after close");
  PolledBatch out;
  MessageColumns columns(pool_);
  max_messages = std::max<int64_t>(max_messages, 1);

  auto take = [&](rd_kafka_message_t* m) -> arrow::Status {
    arrow::Status st;
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      st = columns.Append(m);
    } else if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      out.warnings.push_back(Where(m) + ": " + rd_kafka_message_errstr(m));
    }
    rd_kafka_message_destroy(m);
    return st;
  };

  // The first message may be waited for; the rest are taken if already fetched.
  rd_kafka_message_t* first = rd_kafka_consumer_poll(consumer_.get(), timeout_ms);
  if (first != nullptr) {
    ARROW_RETURN_NOT_OK(columns.Reserve(std::min<int64_t>(max_messages, 1024)));
    ARROW_RETURN_NOT_OK(take(first));
    int64_t taken = 1;
    while (taken < max_messages) {
      const size_t n = static_cast<size_t>(
          std::min<int64_t>(max_messages - taken, static_cast<int64_t>(kConsumeChunk)));
      ARROW_RETURN_NOT_OK(columns.Reserve(static_cast<int64_t>(n)));
      const ssize_t got = rd_kafka_consume_batch_queue(queue_, 0, scratch_.data(), n);
      if (got < 0)
        return KafkaStatus(rd_kafka_last_error(), "kafka batch consumer: consume");
      arrow::Status st;
      for (ssize_t i = 0; i < got; ++i) {
        arrow::Status one = take(scratch_[i]);  // always destroys the message
        if (st.ok()) st = one;
      }
      ARROW_RETURN_NOT_OK(st);
      if (got == 0) break;
      taken += got;
    }
  }
  char reason[512];
  if (rd_kafka_resp_err_t fatal =
          rd_kafka_fatal_error(consumer_.get(), reason, sizeof(reason));
      fatal != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return arrow::Status::IOError("kafka batch consumer (group '", options_.group,
                                  "'): fatal error: ", reason);
  }
  ARROW_ASSIGN_OR_RAISE(out.messages, columns.Finish());
  if (decoder_ != nullptr && out.messages->num_rows() > 0) {
    const auto& values = static_cast<const arrow::BinaryArray&>(*out.messages->column(5));
    ARROW_ASSIGN_OR_RAISE(DecodedBatch decoded, decoder_->Decode(values));
    out.rows = std::move(decoded.rows);
    out.row_message = std::move(decoded.row_message);
    out.errors = std::move(decoded.errors);
  }
  return out;
}

arrow::Status KafkaBatchConsumer::Commit(
    const std::vector<TopicPartitionOffset>& offsets) {
  if (!consumer_)
    return arrow::Status::Invalid("kafka batch consumer: commit after close");
  if (offsets.empty()) return arrow::Status::OK();
  PartitionList list(rd_kafka_topic_partition_list_new(static_cast<int>(offsets.size())));
  for (const auto& o : offsets) {
    rd_kafka_topic_partition_list_add(list.get(), o.topic.c_str(), o.partition)->offset =
        o.offset;
  }
  ARROW_RETURN_NOT_OK(
      KafkaStatus(rd_kafka_commit(consumer_.get(), list.get(), 0),
                  "kafka batch consumer (group '" + options_.group + "'): commit"));
  for (int i = 0; i < list->cnt; ++i) {
    const auto& e = list->elems[i];
    if (e.err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return KafkaStatus(e.err, "kafka batch consumer: commit of " +
                                    std::string(e.topic) + "[" +
                                    std::to_string(e.partition) + "] at offset " +
                                    std::to_string(e.offset));
    }
  }
  return arrow::Status::OK();
}

arrow::Result<std::vector<TopicPartitionOffset>> KafkaBatchConsumer::Assignment() {
  if (!consumer_) return arrow::Status::Invalid("kafka batch consumer: closed");
  rd_kafka_topic_partition_list_t* raw = nullptr;
  ARROW_RETURN_NOT_OK(KafkaStatus(rd_kafka_assignment(consumer_.get(), &raw),
                                  "kafka batch consumer: assignment"));
  PartitionList list(raw);
  std::vector<TopicPartitionOffset> out;
  for (int i = 0; i < list->cnt; ++i) {
    out.push_back(
        {list->elems[i].topic, list->elems[i].partition, list->elems[i].offset});
  }
  return out;
}

arrow::Status KafkaBatchConsumer::Close() {
  if (!consumer_) return arrow::Status::OK();
  arrow::Status st = KafkaStatus(rd_kafka_consumer_close(consumer_.get()),
                                 "kafka batch consumer: close");
  if (queue_ != nullptr) {
    rd_kafka_queue_destroy(queue_);
    queue_ = nullptr;
  }
  consumer_.reset();
  return st;
}

}  // namespace sabot::kafka
