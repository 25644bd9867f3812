#include <arrow/compute/cast.h>
#include <arrow/util/logging.h>

#include <sstream>
#include <string_view>

#include "sabot/connectors/upsert/upsert_sinks.h"
#include "sabot/exec/operator.h"
#include "sabot/formats/json_lines.h"
#include "sabot/operators/changelog.h"

namespace sabot {

std::string KafkaUpsertSinkOptions::ToString() const {
  std::ostringstream s;
  s << "kafka_upsert_sink(topic=" << topic << ", key=";
  for (size_t i = 0; i < key_columns.size(); ++i) s << (i ? "," : "") << key_columns[i];
  s << ", key_format=" << key_format << ")";
  return s.str();
}

arrow::Status KafkaUpsertSinkOptions::Validate() const {
  if (bootstrap.empty() && !producer_config.count("bootstrap.servers"))
    return arrow::Status::Invalid("kafka_upsert_sink: no bootstrap servers given");
  if (topic.empty()) return arrow::Status::Invalid("kafka_upsert_sink: no topic given");
  if (key_columns.empty()) {
    return arrow::Status::Invalid(
        "kafka_upsert_sink: no key columns given (the upsert key)");
  }
  if (key_format != "json" && key_format != "string") {
    return arrow::Status::Invalid("kafka_upsert_sink: key_format must be 'json' or ",
                                  "'string', not '", key_format, "'");
  }
  if (key_format == "string" && key_columns.size() != 1) {
    return arrow::Status::Invalid(
        "kafka_upsert_sink: key_format 'string' needs exactly one key column");
  }
  return arrow::Status::OK();
}

namespace {

// Row i of data[ends[i-1], ends[i]).
std::string_view Piece(const std::string& data, const std::vector<int64_t>& ends,
                       int64_t i) {
  int64_t begin = i == 0 ? 0 : ends[i - 1];
  return std::string_view(data).substr(begin, ends[i] - begin);
}

class KafkaUpsertSink : public Operator {
 public:
  explicit KafkaUpsertSink(const KafkaUpsertSinkOptions& options) : options_(options) {}

  ~KafkaUpsertSink() override {
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
    kafka::ClientConfig config = {
        {"linger.ms", "5"},
        {"enable.idempotence", "true"},
        {"batch.num.messages", "10000"},
        {"log.connection.close", "false"},
    };
    for (const auto& [k, v] : options_.producer_config) config[k] = v;
    ARROW_ASSIGN_OR_RAISE(auto conf, kafka::MakeConf(options_.bootstrap, config));
    rd_kafka_conf_set_opaque(conf.get(), this);
    rd_kafka_conf_set_dr_msg_cb(conf.get(), &KafkaUpsertSink::Delivered);
    rd_kafka_topic_conf_t* topic_conf = rd_kafka_topic_conf_new();
    char errstr[512];
    // Kafka's Java default partitioner: every change of a key in one partition.
    if (rd_kafka_topic_conf_set(topic_conf, "partitioner", "murmur2_random", errstr,
                                sizeof(errstr)) != RD_KAFKA_CONF_OK) {
      rd_kafka_topic_conf_destroy(topic_conf);
      return arrow::Status::Invalid("kafka_upsert_sink: ", errstr);
    }
    rd_kafka_conf_set_default_topic_conf(conf.get(), topic_conf);
    ARROW_ASSIGN_OR_RAISE(producer_,
                          kafka::MakeClient(RD_KAFKA_PRODUCER, std::move(conf)));
    auto count = kafka::TopicPartitionCount(producer_.get(), options_.topic);
    if (!count.ok()) {
      return count.status().WithMessage(
          "kafka_upsert_sink ", name_, ": cannot write topic '", options_.topic, "' at ",
          options_.bootstrap, ": ", count.status().message());
    }
    topic_ = rd_kafka_topic_new(producer_.get(), options_.topic.c_str(), nullptr);
    if (topic_ == nullptr) {
      return kafka::KafkaStatus(rd_kafka_last_error(), name_ + ": topic handle");
    }
    return arrow::Status::OK();
  }

  arrow::Status ProcessBatch(int, const std::shared_ptr<arrow::RecordBatch>& batch,
                             OperatorContext*, Collector*) override {
    rd_kafka_poll(producer_.get(), 0);
    ARROW_RETURN_NOT_OK(CheckDelivery());
    if (batch->num_rows() == 0) return arrow::Status::OK();
    if (key_indices_.empty()) ARROW_RETURN_NOT_OK(Resolve(*batch->schema()));

    const int8_t* ops = nullptr;
    if (op_index_ >= 0) {
      if (batch->column(op_index_)->null_count() > 0) {
        return arrow::Status::Invalid("kafka_upsert_sink ", name_, ": null in column '",
                                      kChangeOpColumn, "'");
      }
      ops = batch->column(op_index_)->data()->GetValues<int8_t>(1);
    }
    // Keys and values, each encoded column at a time for the whole batch.
    std::string keys, values;
    std::vector<int64_t> key_ends, value_ends;
    ARROW_ASSIGN_OR_RAISE(auto key_batch, batch->SelectColumns(key_indices_));
    std::shared_ptr<arrow::Array> key_text;
    if (options_.key_format == "json") {
      ARROW_RETURN_NOT_OK(AppendJsonObjects(*key_batch, &keys, &key_ends));
    } else {
      arrow::compute::ExecContext exec(pool_);
      ARROW_ASSIGN_OR_RAISE(
          key_text, arrow::compute::Cast(*key_batch->column(0), arrow::large_utf8(),
                                         arrow::compute::CastOptions::Safe(), &exec));
    }
    std::shared_ptr<arrow::RecordBatch> value_batch = batch;
    if (op_index_ >= 0) {
      ARROW_ASSIGN_OR_RAISE(value_batch, batch->SelectColumns(value_columns_));
    }
    ARROW_RETURN_NOT_OK(AppendJsonObjects(*value_batch, &values, &value_ends));

    const auto* text =
        key_text ? static_cast<const arrow::LargeStringArray*>(key_text.get()) : nullptr;
    int64_t upserts = 0, tombstones = 0, dropped = 0;
    for (int64_t i = 0; i < batch->num_rows(); ++i) {
      const int8_t op = ops ? ops[i] : static_cast<int8_t>(ChangeOp::kInsert);
      if (op == static_cast<int8_t>(ChangeOp::kUpdateBefore)) {
        ++dropped;
        continue;
      }
      const bool tombstone = op == static_cast<int8_t>(ChangeOp::kDelete);
      if (!tombstone && op != static_cast<int8_t>(ChangeOp::kInsert) &&
          op != static_cast<int8_t>(ChangeOp::kUpdateAfter)) {
        return arrow::Status::Invalid("kafka_upsert_sink ", name_,
                                      ": unknown changelog op ", static_cast<int>(op),
                                      " in row ", i);
      }
      std::string_view key;
      if (text) {
        if (text->IsNull(i)) {
          return arrow::Status::Invalid("kafka_upsert_sink ", name_, ": null key in row ",
                                        i, " (column '", options_.key_columns[0], "')");
        }
        key = text->GetView(i);
      } else {
        key = Piece(keys, key_ends, i);
      }
      std::string_view value =
          tombstone ? std::string_view() : Piece(values, value_ends, i);
      ARROW_RETURN_NOT_OK(Produce(key, tombstone ? nullptr : &value));
      (tombstone ? tombstones : upserts) += 1;
    }
    options_.stats->upserts.fetch_add(upserts, std::memory_order_relaxed);
    options_.stats->tombstones.fetch_add(tombstones, std::memory_order_relaxed);
    options_.stats->dropped_update_before.fetch_add(dropped, std::memory_order_relaxed);
    rd_kafka_poll(producer_.get(), 0);
    return CheckDelivery();
  }

  arrow::Status SnapshotState(SnapshotWriter*, OperatorContext*) override {
    // At least once: everything before the barrier is acknowledged before the
    // checkpoint can complete.
    return Flush();
  }

  arrow::Status Close(OperatorContext*, Collector*) override {
    if (!producer_) return arrow::Status::OK();
    ARROW_RETURN_NOT_OK(Flush());
    rd_kafka_topic_destroy(topic_);
    topic_ = nullptr;
    producer_.reset();
    return arrow::Status::OK();
  }

 private:
  arrow::Status Resolve(const arrow::Schema& schema) {
    op_index_ = schema.GetFieldIndex(kChangeOpColumn);
    for (const auto& k : options_.key_columns) {
      int i = schema.GetFieldIndex(k);
      if (i < 0 || i == op_index_) {
        return arrow::Status::Invalid("kafka_upsert_sink ", name_, ": key column '", k,
                                      "' not in ", schema.ToString());
      }
      key_indices_.push_back(i);
    }
    for (int i = 0; i < schema.num_fields(); ++i) {
      if (i != op_index_) value_columns_.push_back(i);
    }
    return arrow::Status::OK();
  }

  arrow::Status Produce(std::string_view key, const std::string_view* value) {
    for (;;) {
      if (rd_kafka_produce(topic_, RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY,
                           value ? const_cast<char*>(value->data()) : nullptr,
                           value ? value->size() : 0, key.data(), key.size(),
                           nullptr) == 0) {
        return arrow::Status::OK();
      }
      rd_kafka_resp_err_t err = rd_kafka_last_error();
      if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
        return kafka::KafkaStatus(err, "kafka_upsert_sink " + name_ +
                                           ": producing to topic '" + options_.topic +
                                           "'");
      }
      rd_kafka_poll(producer_.get(), 10);  // Kafka's backpressure: wait for room
      ARROW_RETURN_NOT_OK(CheckDelivery());
    }
  }

  arrow::Status Flush() {
    if (!producer_) return arrow::Status::OK();
    rd_kafka_resp_err_t err =
        rd_kafka_flush(producer_.get(), static_cast<int>(options_.flush_timeout_ms));
    ARROW_RETURN_NOT_OK(CheckDelivery());
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return arrow::Status::IOError(
          "kafka_upsert_sink ", name_, ": ", rd_kafka_outq_len(producer_.get()),
          " message(s) to topic '", options_.topic, "' not delivered within ",
          options_.flush_timeout_ms, " ms: ", rd_kafka_err2str(err), " (retryable)");
    }
    return arrow::Status::OK();
  }

  arrow::Status CheckDelivery() const {
    if (failed_ == 0) return arrow::Status::OK();
    return arrow::Status::IOError("kafka_upsert_sink ", name_, ": delivery to topic '",
                                  options_.topic, "' failed for ", failed_,
                                  " message(s); first: ", first_error_);
  }

  static void Delivered(rd_kafka_t*, const rd_kafka_message_t* msg, void* opaque) {
    auto* self = static_cast<KafkaUpsertSink*>(opaque);
    if (msg->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      self->options_.stats->delivered.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    self->options_.stats->failed.fetch_add(1, std::memory_order_relaxed);
    if (self->failed_++ == 0) {
      std::ostringstream s;
      s << "partition " << msg->partition << ": " << rd_kafka_err2str(msg->err) << " ["
        << rd_kafka_err2name(msg->err) << "]"
        << (kafka::IsRetryable(msg->err) ? " (retryable)" : "");
      self->first_error_ = s.str();
    }
  }

  const KafkaUpsertSinkOptions& options_;
  std::string name_ = "kafka_upsert_sink";
  arrow::MemoryPool* pool_ = arrow::default_memory_pool();
  kafka::KafkaHandle producer_;
  rd_kafka_topic_t* topic_ = nullptr;
  int op_index_ = -1;
  std::vector<int> key_indices_;
  std::vector<int> value_columns_;
  int64_t failed_ = 0;
  std::string first_error_;
};

}  // namespace

void RegisterKafkaUpsertSink(OperatorRegistry* registry) {
  ARROW_CHECK_OK(registry->AddOperator(
      "kafka_upsert_sink",
      [](const PlanNode& node, int, int) -> arrow::Result<std::unique_ptr<Operator>> {
        const auto& o = node.options_as<KafkaUpsertSinkOptions>();
        ARROW_RETURN_NOT_OK(o.Validate());
        return std::make_unique<KafkaUpsertSink>(o);
      }));
}

}  // namespace sabot
