#include "sabot/connectors/kafka/kafka_sink.h"

#include <arrow/compute/api_scalar.h>
#include <arrow/compute/cast.h>
#include <arrow/util/logging.h>

#include <algorithm>
#include <optional>
#include <sstream>
#include <string_view>
#include <vector>

#include "sabot/exec/operator.h"

namespace sabot::kafka {

std::string KafkaSinkOptions::ToString() const {
  std::ostringstream s;
  s << "kafka_sink(topic=" << topic << ", format=" << format.name;
  if (!key_column.empty()) s << ", key=" << key_column;
  s << ")";
  return s.str();
}

arrow::Status KafkaSinkOptions::Validate() const {
  if (bootstrap.empty() && !producer_config.count("bootstrap.servers"))
    return arrow::Status::Invalid("kafka_sink: no bootstrap servers given");
  if (topic.empty()) return arrow::Status::Invalid("kafka_sink: no topic given");
  return arrow::Status::OK();
}

namespace {

// Views of a binary-like column, whatever its width; null for null rows.
class BytesColumn {
 public:
  static arrow::Result<BytesColumn> Make(std::shared_ptr<arrow::Array> array,
                                         arrow::MemoryPool* pool) {
    switch (array->type_id()) {
      case arrow::Type::BINARY:
      case arrow::Type::STRING:
      case arrow::Type::LARGE_BINARY:
      case arrow::Type::LARGE_STRING:
      case arrow::Type::BINARY_VIEW:
      case arrow::Type::STRING_VIEW:
        break;
      default: {
        // Numbers and the like are keyed by their string form, as Java's
        // StringSerializer would see them.
        arrow::compute::ExecContext exec(pool);
        ARROW_ASSIGN_OR_RAISE(
            auto cast, arrow::compute::Cast(array, arrow::utf8(),
                                            arrow::compute::CastOptions::Safe(), &exec));
        array = cast.make_array();
      }
    }
    return BytesColumn(std::move(array));
  }

  bool IsNull(int64_t i) const { return array_->IsNull(i); }

  std::string_view View(int64_t i) const {
    switch (array_->type_id()) {
      case arrow::Type::BINARY:
      case arrow::Type::STRING:
        return static_cast<const arrow::BinaryArray&>(*array_).GetView(i);
      case arrow::Type::LARGE_BINARY:
      case arrow::Type::LARGE_STRING:
        return static_cast<const arrow::LargeBinaryArray&>(*array_).GetView(i);
      default:
        return static_cast<const arrow::BinaryViewArray&>(*array_).GetView(i);
    }
  }

 private:
  explicit BytesColumn(std::shared_ptr<arrow::Array> array) : array_(std::move(array)) {}
  std::shared_ptr<arrow::Array> array_;
};

class KafkaSink : public Operator {
 public:
  explicit KafkaSink(const KafkaSinkOptions& options) : options_(options) {}

  ~KafkaSink() override {
    if (producer_) {
      // Not closed normally (the job failed): drop what is still queued.
      rd_kafka_purge(producer_.get(), RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
      rd_kafka_poll(producer_.get(), 0);
      if (topic_) rd_kafka_topic_destroy(topic_);
    }
  }

  arrow::Status Open(OperatorContext* ctx) override {
    ARROW_RETURN_NOT_OK(options_.Validate());
    name_ = ctx->operator_name + "[" + std::to_string(ctx->instance_index) + "/" +
            std::to_string(ctx->parallelism) + "]";
    pool_ = ctx->pool;
    ClientConfig config = {
        {"linger.ms", "5"},
        {"batch.num.messages", "10000"},
        {"queue.buffering.max.kbytes", "65536"},
        {"log.connection.close", "false"},
    };
    for (const auto& [k, v] : options_.producer_config) config[k] = v;
    ARROW_ASSIGN_OR_RAISE(auto conf, MakeConf(options_.bootstrap, config));
    rd_kafka_conf_set_opaque(conf.get(), this);
    rd_kafka_conf_set_dr_msg_cb(conf.get(), &KafkaSink::Delivered);
    // Kafka's Java default partitioner for keyed messages (murmur2); keyless
    // messages go to a random partition.
    rd_kafka_topic_conf_t* topic_conf = rd_kafka_topic_conf_new();
    char errstr[512];
    if (rd_kafka_topic_conf_set(topic_conf, "partitioner", "murmur2_random", errstr,
                                sizeof(errstr)) != RD_KAFKA_CONF_OK) {
      rd_kafka_topic_conf_destroy(topic_conf);
      return arrow::Status::Invalid("kafka_sink: ", errstr);
    }
    rd_kafka_conf_set_default_topic_conf(conf.get(), topic_conf);
    ARROW_ASSIGN_OR_RAISE(producer_, MakeClient(RD_KAFKA_PRODUCER, std::move(conf)));
    auto count = TopicPartitionCount(producer_.get(), options_.topic);
    if (!count.ok()) {
      return count.status().WithMessage("kafka_sink: cannot write topic '",
                                        options_.topic, "' at ", options_.bootstrap, ": ",
                                        count.status().message());
    }
    topic_ = rd_kafka_topic_new(producer_.get(), options_.topic.c_str(), nullptr);
    if (topic_ == nullptr) {
      return KafkaStatus(rd_kafka_last_error(), name_ + ": topic handle");
    }
    return arrow::Status::OK();
  }

  arrow::Status ProcessBatch(int, const std::shared_ptr<arrow::RecordBatch>& batch,
                             OperatorContext*, Collector*) override {
    rd_kafka_poll(producer_.get(), 0);
    ARROW_RETURN_NOT_OK(CheckDelivery());
    const int64_t max_rows = std::max<int64_t>(1, options_.max_rows_per_batch);
    for (int64_t offset = 0; offset < batch->num_rows(); offset += max_rows) {
      ARROW_RETURN_NOT_OK(ProduceSlice(
          batch->num_rows() <= max_rows ? batch : batch->Slice(offset, max_rows)));
    }
    return arrow::Status::OK();
  }

 private:
  arrow::Status ProduceSlice(const std::shared_ptr<arrow::RecordBatch>& batch) {
    if (batch->num_rows() == 0) return arrow::Status::OK();
    if (!encoder_) ARROW_RETURN_NOT_OK(MakeEncoderFor(*batch->schema()));
    std::shared_ptr<arrow::RecordBatch> value_batch = batch;
    if (!value_columns_.empty()) {
      ARROW_ASSIGN_OR_RAISE(value_batch, batch->SelectColumns(value_columns_));
    }
    ARROW_ASSIGN_OR_RAISE(auto values, encoder_->Encode(*value_batch));
    const int64_t n = values->length();
    const bool per_row = n == batch->num_rows();

    std::optional<BytesColumn> keys;
    if (key_index_ >= 0 && per_row) {
      ARROW_ASSIGN_OR_RAISE(keys, BytesColumn::Make(batch->column(key_index_), pool_));
    }
    const arrow::MapArray* headers = nullptr;
    if (headers_index_ >= 0 && per_row) {
      headers = static_cast<const arrow::MapArray*>(batch->column(headers_index_).get());
    }
    if (headers) return ProduceWithHeaders(*values, keys, *headers);

    // Fast path: one rd_kafka_produce per message (payload copied into librdkafka).
    // A full local queue is retried for the same message, so order is kept.
    int64_t bytes = 0;
    for (int64_t i = 0; i < n; ++i) {
      std::string_view value, key;
      const bool has_value = values->IsValid(i);
      if (has_value) value = values->GetView(i);
      const bool has_key = keys && !keys->IsNull(i);
      if (has_key) key = keys->View(i);
      while (rd_kafka_produce(topic_, RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY,
                              has_value ? const_cast<char*>(value.data()) : nullptr,
                              value.size(), has_key ? key.data() : nullptr, key.size(),
                              nullptr) != 0) {
        rd_kafka_resp_err_t err = rd_kafka_last_error();
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
          return KafkaStatus(err, "kafka_sink " + name_ + ": producing to topic '" +
                                      options_.topic + "'");
        }
        // Backpressure from Kafka: wait for deliveries to make room.
        rd_kafka_poll(producer_.get(), 10);
        ARROW_RETURN_NOT_OK(CheckDelivery());
      }
      bytes += static_cast<int64_t>(value.size() + key.size());
    }
    options_.stats->messages.fetch_add(n, std::memory_order_relaxed);
    options_.stats->bytes.fetch_add(bytes, std::memory_order_relaxed);
    rd_kafka_poll(producer_.get(), 0);
    return CheckDelivery();
  }

 public:
  arrow::Status Close(OperatorContext*, Collector*) override {
    if (!producer_) return arrow::Status::OK();
    rd_kafka_resp_err_t err =
        rd_kafka_flush(producer_.get(), static_cast<int>(options_.flush_timeout_ms));
    ARROW_RETURN_NOT_OK(CheckDelivery());
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return arrow::Status::IOError(
          "kafka_sink ", name_, ": ", rd_kafka_outq_len(producer_.get()),
          " message(s) to topic '", options_.topic, "' not delivered within ",
          options_.flush_timeout_ms, " ms: ", rd_kafka_err2str(err), " (retryable)");
    }
    rd_kafka_topic_destroy(topic_);
    topic_ = nullptr;
    producer_.reset();
    return arrow::Status::OK();
  }

 private:
  arrow::Status MakeEncoderFor(const arrow::Schema& schema) {
    if (!options_.key_column.empty()) {
      key_index_ = schema.GetFieldIndex(options_.key_column);
      if (key_index_ < 0) {
        return arrow::Status::Invalid("kafka_sink: key column '", options_.key_column,
                                      "' not in ", schema.ToString());
      }
    }
    if (!options_.headers_column.empty()) {
      headers_index_ = schema.GetFieldIndex(options_.headers_column);
      if (headers_index_ < 0) {
        return arrow::Status::Invalid("kafka_sink: headers column '",
                                      options_.headers_column, "' not in ",
                                      schema.ToString());
      }
      const auto& type = schema.field(headers_index_)->type();
      bool ok = type->id() == arrow::Type::MAP;
      if (ok) {
        const auto& map = static_cast<const arrow::MapType&>(*type);
        ok = map.key_type()->id() == arrow::Type::STRING &&
             (map.item_type()->id() == arrow::Type::BINARY ||
              map.item_type()->id() == arrow::Type::STRING);
      }
      if (!ok) {
        return arrow::Status::TypeError(
            "kafka_sink: headers column '", options_.headers_column,
            "' must be map<string, binary|string>, not ", type->ToString());
      }
    }
    arrow::FieldVector fields;
    for (int i = 0; i < schema.num_fields(); ++i) {
      if (i == key_index_ && options_.exclude_key_from_value) continue;
      if (i == headers_index_ && options_.exclude_headers_from_value) continue;
      value_columns_.push_back(i);
      fields.push_back(schema.field(i));
    }
    if (static_cast<int>(value_columns_.size()) == schema.num_fields()) {
      value_columns_.clear();  // all columns: no projection needed
    }
    ARROW_ASSIGN_OR_RAISE(encoder_,
                          MakeEncoder(options_.format, arrow::schema(fields), pool_));
    return arrow::Status::OK();
  }

  arrow::Status ProduceWithHeaders(const arrow::BinaryArray& values,
                                   const std::optional<BytesColumn>& keys,
                                   const arrow::MapArray& headers) {
    const auto& names = static_cast<const arrow::StringArray&>(*headers.keys());
    const auto& items = static_cast<const arrow::BinaryArray&>(*headers.items());
    for (int64_t i = 0; i < values.length(); ++i) {
      rd_kafka_headers_t* hdrs = nullptr;
      if (headers.IsValid(i)) {
        hdrs = rd_kafka_headers_new(
            static_cast<size_t>(headers.value_offset(i + 1) - headers.value_offset(i)));
        for (int64_t j = headers.value_offset(i); j < headers.value_offset(i + 1); ++j) {
          std::string name(names.GetView(j));
          if (items.IsNull(j)) {
            rd_kafka_header_add(hdrs, name.c_str(), -1, nullptr, 0);
          } else {
            std::string_view v = items.GetView(j);
            rd_kafka_header_add(hdrs, name.c_str(), -1, v.data(),
                                static_cast<ssize_t>(v.size()));
          }
        }
      }
      std::string_view value, key;
      const bool has_value = values.IsValid(i);
      if (has_value) value = values.GetView(i);
      const bool has_key = keys && !keys->IsNull(i);
      if (has_key) key = keys->View(i);
      for (;;) {
        rd_kafka_resp_err_t err = rd_kafka_producev(
            producer_.get(), RD_KAFKA_V_RKT(topic_),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_VALUE(has_value ? const_cast<char*>(value.data()) : nullptr,
                             has_value ? value.size() : 0),
            RD_KAFKA_V_KEY(has_key ? key.data() : nullptr, has_key ? key.size() : 0),
            RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_END);
        if (err == RD_KAFKA_RESP_ERR_NO_ERROR) break;  // librdkafka owns hdrs now
        if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
          rd_kafka_poll(producer_.get(), 10);
          ARROW_RETURN_NOT_OK(CheckDelivery());
          continue;
        }
        if (hdrs) rd_kafka_headers_destroy(hdrs);
        return KafkaStatus(
            err, "kafka_sink " + name_ + ": producing to topic '" + options_.topic + "'");
      }
      options_.stats->messages.fetch_add(1, std::memory_order_relaxed);
      options_.stats->bytes.fetch_add(static_cast<int64_t>(value.size() + key.size()),
                                      std::memory_order_relaxed);
    }
    rd_kafka_poll(producer_.get(), 0);
    return CheckDelivery();
  }

  arrow::Status CheckDelivery() const {
    if (failed_ == 0) return arrow::Status::OK();
    return arrow::Status::IOError("kafka_sink ", name_, ": delivery to topic '",
                                  options_.topic, "' failed for ", failed_,
                                  " message(s); first: ", first_error_);
  }

  static void Delivered(rd_kafka_t*, const rd_kafka_message_t* msg, void* opaque) {
    auto* self = static_cast<KafkaSink*>(opaque);
    if (msg->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      self->options_.stats->delivered.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    self->options_.stats->failed.fetch_add(1, std::memory_order_relaxed);
    if (self->failed_++ == 0) {
      std::ostringstream s;
      s << "partition " << msg->partition << ": " << rd_kafka_err2str(msg->err) << " ["
        << rd_kafka_err2name(msg->err) << "]"
        << (IsRetryable(msg->err) ? " (retryable)" : "");
      self->first_error_ = s.str();
    }
  }

  const KafkaSinkOptions& options_;
  std::string name_ = "kafka_sink";
  arrow::MemoryPool* pool_ = arrow::default_memory_pool();
  KafkaHandle producer_;
  rd_kafka_topic_t* topic_ = nullptr;
  std::unique_ptr<Encoder> encoder_;
  int key_index_ = -1;
  int headers_index_ = -1;
  std::vector<int> value_columns_;
  int64_t failed_ = 0;
  std::string first_error_;
};

}  // namespace

void RegisterKafkaSink(OperatorRegistry* registry) {
  ARROW_CHECK_OK(registry->AddOperator(
      "kafka_sink",
      [](const PlanNode& node, int, int) -> arrow::Result<std::unique_ptr<Operator>> {
        return std::make_unique<KafkaSink>(node.options_as<KafkaSinkOptions>());
      }));
}

}  // namespace sabot::kafka
