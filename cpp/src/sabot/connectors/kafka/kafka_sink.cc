#include "sabot/connectors/kafka/kafka_sink.h"

#include <arrow/array/builder_binary.h>
#include <arrow/array/builder_primitive.h>
#include <arrow/array/util.h>
#include <arrow/compute/api_scalar.h>
#include <arrow/compute/cast.h>
#include <arrow/util/logging.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string_view>
#include <vector>

#include "sabot/connectors/kafka/kafka_transactions.h"
#include "sabot/exec/operator.h"

namespace sabot::kafka {

arrow::Result<Delivery> ParseDelivery(const std::string& name) {
  if (name == "at_least_once") return Delivery::kAtLeastOnce;
  if (name == "exactly_once") return Delivery::kExactlyOnce;
  return arrow::Status::Invalid("kafka_sink: unknown delivery '", name,
                                "' (expected at_least_once or exactly_once)");
}

std::string KafkaSinkOptions::ToString() const {
  std::ostringstream s;
  s << "kafka_sink(topic=" << topic << ", format=" << format.name;
  if (!key_column.empty()) s << ", key=" << key_column;
  if (delivery == Delivery::kExactlyOnce) s << ", exactly_once";
  s << ")";
  return s.str();
}

arrow::Status KafkaSinkOptions::Validate() const {
  if (bootstrap.empty() && !producer_config.count("bootstrap.servers"))
    return arrow::Status::Invalid("kafka_sink: no bootstrap servers given");
  if (topic.empty()) return arrow::Status::Invalid("kafka_sink: no topic given");
  if (transaction_timeout_ms < 1000)
    return arrow::Status::Invalid(
        "kafka_sink: transaction_timeout_ms must be >= 1000, not ",
        transaction_timeout_ms);
  if (max_pending_bytes < 1)
    return arrow::Status::Invalid("kafka_sink: max_pending_bytes must be positive");
  if (delivery == Delivery::kExactlyOnce && producer_config.count("transactional.id"))
    return arrow::Status::Invalid(
        "kafka_sink: exactly_once sets transactional.id itself (from the job name, "
        "uid and instance); remove it from producer_config");
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
  /// `default_uid`: the node's state uid, the transactional ids' middle part
  /// unless options.uid is set.
  KafkaSink(const KafkaSinkOptions& options, std::string default_uid)
      : options_(options), default_uid_(std::move(default_uid)) {}

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
    if (options_.delivery == Delivery::kExactlyOnce) return OpenExactlyOnce(ctx);
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
    if (producer_) {
      rd_kafka_poll(producer_.get(), 0);
      ARROW_RETURN_NOT_OK(CheckDelivery());
    }
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
    if (exactly_once_) return Buffer(values, keys, headers);
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
  arrow::Status SnapshotState(SnapshotWriter* writer, OperatorContext*) override {
    if (exactly_once_) return SnapshotExactlyOnce(writer);
    if (!producer_) return arrow::Status::OK();
    // At-least-once: everything produced before the barrier must be stored
    // before the checkpoint counts.
    rd_kafka_resp_err_t err =
        rd_kafka_flush(producer_.get(), static_cast<int>(options_.flush_timeout_ms));
    ARROW_RETURN_NOT_OK(CheckDelivery());
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return arrow::Status::IOError(
          "kafka_sink ", name_, ": checkpoint ", writer->checkpoint_id(), ": ",
          rd_kafka_outq_len(producer_.get()), " message(s) to topic '", options_.topic,
          "' not delivered within ", options_.flush_timeout_ms,
          " ms: ", rd_kafka_err2str(err), " (retryable)");
    }
    return arrow::Status::OK();
  }

  arrow::Status NotifyCheckpointComplete(int64_t checkpoint_id,
                                         OperatorContext*) override {
    if (!exactly_once_ || !txn_) return arrow::Status::OK();
    auto end = pending_.upper_bound(checkpoint_id);
    if (end == pending_.begin()) return arrow::Status::OK();
    std::vector<std::shared_ptr<arrow::RecordBatch>> batches;
    int64_t rows = 0, bytes = 0;
    for (auto it = pending_.begin(); it != end; ++it) {
      batches.insert(batches.end(), it->second.batches.begin(), it->second.batches.end());
      rows += it->second.rows;
      bytes += it->second.bytes;
    }
    if (rows > 0) {
      options_.stats->transactions_started.fetch_add(1, std::memory_order_relaxed);
      ARROW_ASSIGN_OR_RAISE(bool committed, txn_->Commit(batches, checkpoint_id));
      if (!committed) {
        // Nothing became visible; the epochs stay pending (and in the next
        // checkpoint) and go with the next completed checkpoint.
        options_.stats->aborted.fetch_add(1, std::memory_order_relaxed);
        return arrow::Status::OK();
      }
      options_.stats->transactions.fetch_add(1, std::memory_order_relaxed);
      CountCommitted(rows, bytes);
    }
    pending_.erase(pending_.begin(), end);
    pending_bytes_ -= bytes;
    options_.stats->pending_bytes.fetch_sub(bytes, std::memory_order_relaxed);
    return arrow::Status::OK();
  }

  arrow::Status Close(OperatorContext*, Collector*) override {
    if (exactly_once_) return CloseExactlyOnce();
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

  // --- exactly-once --------------------------------------------------------------

  /// The buffered messages of one checkpoint epoch.
  struct Epoch {
    std::vector<std::shared_ptr<arrow::RecordBatch>> batches;  // MessageSchema
    int64_t rows = 0;
    int64_t bytes = 0;
  };

  static std::string UidOf(const std::string& operator_name) {
    std::string uid = operator_name;
    for (char& c : uid) {
      const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                      (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
      if (!ok) c = '-';
    }
    return uid.empty() ? "kafka_sink" : uid;
  }

  static std::shared_ptr<arrow::Schema> PendingSchema() {
    arrow::FieldVector fields = {arrow::field("instance", arrow::int32(), false),
                                 arrow::field("transactional_id", arrow::utf8(), false),
                                 arrow::field("epoch", arrow::int64(), false)};
    for (const auto& f : MessageSchema()->fields()) fields.push_back(f);
    static const auto schema = arrow::schema(std::move(fields));
    return schema;
  }

  static std::shared_ptr<arrow::Schema> InstancesSchema() {
    static const auto schema =
        arrow::schema({arrow::field("instance", arrow::int32(), false),
                       arrow::field("parallelism", arrow::int32(), false),
                       arrow::field("transactional_id", arrow::utf8(), false)});
    return schema;
  }

  arrow::Status OpenExactlyOnce(OperatorContext* ctx) {
    exactly_once_ = true;
    instance_ = ctx->instance_index;
    parallelism_ = ctx->parallelism;
    job_name_ = ctx->job_name.empty() ? "sabot-job" : ctx->job_name;
    if (job_name_ == "sabot-job" && ctx->instance_index == 0) {
      std::fprintf(stderr,
                   "sabot kafka_sink %s: exactly_once under the default job name "
                   "'sabot-job': set job_name so that no other job uses the same "
                   "transactional ids (they would fence each other)\n",
                   name_.c_str());
    }
    uid_ = !options_.uid.empty()   ? options_.uid
           : !default_uid_.empty() ? UidOf(default_uid_)
                                   : UidOf(ctx->operator_name);
    config_ = {
        {"linger.ms", "5"},
        {"batch.num.messages", "10000"},
        {"queue.buffering.max.kbytes", "65536"},
        {"log.connection.close", "false"},
        {"transaction.timeout.ms", std::to_string(options_.transaction_timeout_ms)},
    };
    for (const auto& [k, v] : options_.producer_config) config_[k] = v;
    ARROW_ASSIGN_OR_RAISE(
        txn_, TransactionalProducer::Open(options_.bootstrap, config_,
                                          TransactionalId(job_name_, uid_, instance_),
                                          options_.topic, "kafka_sink " + name_,
                                          options_.transaction_timeout_ms));
    restored_id_ = ctx->restore ? ctx->restore->checkpoint_id() : 0;
    last_snapshot_ = restored_id_;

    // The transactional ids this instance answers for: its own, and after a
    // restore at a lower parallelism those of old instances j with
    // j % parallelism == instance.
    std::map<std::string, std::map<int64_t, Epoch>> restored;
    std::set<std::string> ids = {txn_->transactional_id()};
    if (ctx->restore) ARROW_RETURN_NOT_OK(ReadRestored(ctx->restore, &restored, &ids));
    for (const auto& id : ids) {
      TransactionalProducer* producer = txn_.get();
      std::unique_ptr<TransactionalProducer> adopted;
      if (id != txn_->transactional_id()) {
        // Fences a zombie of the old instance and resolves its transaction.
        ARROW_ASSIGN_OR_RAISE(
            adopted, TransactionalProducer::Open(options_.bootstrap, config_, id,
                                                 options_.topic, "kafka_sink " + name_,
                                                 options_.transaction_timeout_ms));
        producer = adopted.get();
      }
      ARROW_RETURN_NOT_OK(Recover(producer, restored[id]));
    }
    return arrow::Status::OK();
  }

  /// Commits the restored epochs the marker does not cover yet (pre-committed
  /// into the checkpoint, not yet in Kafka), then makes sure the marker is not
  /// ahead of the restored checkpoint (a marker left by an earlier run of the
  /// same job name would hide the epochs of this one).
  arrow::Status Recover(TransactionalProducer* producer,
                        std::map<int64_t, Epoch>& epochs) {
    ARROW_ASSIGN_OR_RAISE(int64_t marker, producer->ReadMarker());
    std::vector<std::shared_ptr<arrow::RecordBatch>> redo;
    int64_t newest = -1, rows = 0, bytes = 0;
    for (auto& [epoch, e] : epochs) {
      if (epoch <= marker) {
        options_.stats->skipped_epochs.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      redo.insert(redo.end(), e.batches.begin(), e.batches.end());
      newest = std::max(newest, epoch);
      rows += e.rows;
      bytes += e.bytes;
      options_.stats->recommitted_epochs.fetch_add(1, std::memory_order_relaxed);
    }
    if (newest >= 0) {
      ARROW_RETURN_NOT_OK(CommitWithRetries(producer, redo, newest, "restored epochs"));
      CountCommitted(rows, bytes);
      marker = newest;
    }
    if (marker > restored_id_) {
      ARROW_RETURN_NOT_OK(CommitWithRetries(producer, {}, restored_id_, "marker reset"));
    }
    return arrow::Status::OK();
  }

  arrow::Status CommitWithRetries(
      TransactionalProducer* producer,
      const std::vector<std::shared_ptr<arrow::RecordBatch>>& batches, int64_t marker,
      const std::string& what) {
    for (int attempt = 0; attempt < 3; ++attempt) {
      options_.stats->transactions_started.fetch_add(1, std::memory_order_relaxed);
      ARROW_ASSIGN_OR_RAISE(bool committed, producer->Commit(batches, marker));
      if (committed) {
        options_.stats->transactions.fetch_add(1, std::memory_order_relaxed);
        return arrow::Status::OK();
      }
      options_.stats->aborted.fetch_add(1, std::memory_order_relaxed);
    }
    return arrow::Status::IOError("kafka_sink ", name_, ": could not commit ", what,
                                  " (checkpoint ", marker, ") for transactional id '",
                                  producer->transactional_id(), "' to topic '",
                                  options_.topic, "' after 3 attempts");
  }

  void CountCommitted(int64_t rows, int64_t bytes) {
    options_.stats->committed_messages.fetch_add(rows, std::memory_order_relaxed);
    options_.stats->messages.fetch_add(rows, std::memory_order_relaxed);
    options_.stats->delivered.fetch_add(rows, std::memory_order_relaxed);
    options_.stats->bytes.fetch_add(bytes, std::memory_order_relaxed);
  }

  /// Reads the pending messages and old transactional ids of the instances this
  /// one answers for.
  arrow::Status ReadRestored(SnapshotReader* restore,
                             std::map<std::string, std::map<int64_t, Epoch>>* restored,
                             std::set<std::string>* ids) {
    auto mine = [&](int32_t old_instance) {
      return old_instance >= 0 && old_instance % parallelism_ == instance_;
    };
    auto bad_schema = [&](const char* table, const arrow::Schema& got,
                          const arrow::Schema& want) {
      return arrow::Status::Invalid("kafka_sink ", name_, ": checkpoint ",
                                    restore->checkpoint_id(), " holds table '", table,
                                    "' with schema ", got.ToString(), ", expected ",
                                    want.ToString());
    };
    ARROW_ASSIGN_OR_RAISE(auto instances,
                          restore->ReadOperatorState(kKafkaSinkInstancesState));
    for (const auto& batch : instances) {
      if (!batch->schema()->Equals(*InstancesSchema(), false)) {
        return bad_schema(kKafkaSinkInstancesState, *batch->schema(), *InstancesSchema());
      }
      const auto& index = static_cast<const arrow::Int32Array&>(*batch->column(0));
      const auto& id = static_cast<const arrow::StringArray&>(*batch->column(2));
      for (int64_t i = 0; i < batch->num_rows(); ++i) {
        if (mine(index.Value(i))) ids->insert(std::string(id.GetView(i)));
      }
    }
    ARROW_ASSIGN_OR_RAISE(auto pending,
                          restore->ReadOperatorState(kKafkaSinkPendingState));
    for (const auto& batch : pending) {
      if (!batch->schema()->Equals(*PendingSchema(), false)) {
        return bad_schema(kKafkaSinkPendingState, *batch->schema(), *PendingSchema());
      }
      const auto& index = static_cast<const arrow::Int32Array&>(*batch->column(0));
      const auto& id = static_cast<const arrow::StringArray&>(*batch->column(1));
      const auto& epoch = static_cast<const arrow::Int64Array&>(*batch->column(2));
      ARROW_ASSIGN_OR_RAISE(auto messages, batch->SelectColumns({3, 4, 5}));
      const auto& values = static_cast<const arrow::BinaryArray&>(*messages->column(1));
      const auto& keys = static_cast<const arrow::BinaryArray&>(*messages->column(0));
      // Runs of rows of one (instance, id, epoch), in order.
      int64_t start = 0;
      for (int64_t i = 1; i <= batch->num_rows(); ++i) {
        if (i < batch->num_rows() && index.Value(i) == index.Value(start) &&
            id.GetView(i) == id.GetView(start) && epoch.Value(i) == epoch.Value(start)) {
          continue;
        }
        if (mine(index.Value(start))) {
          std::string tid(id.GetView(start));
          ids->insert(tid);
          Epoch& e = (*restored)[tid][epoch.Value(start)];
          auto slice = messages->Slice(start, i - start);
          e.batches.push_back(arrow::RecordBatch::Make(MessageSchema(), slice->num_rows(),
                                                       slice->columns()));
          e.rows += i - start;
          e.bytes += values.value_offset(i) - values.value_offset(start) +
                     keys.value_offset(i) - keys.value_offset(start);
        }
        start = i;
      }
    }
    return arrow::Status::OK();
  }

  /// The headers column as map<string, binary> (string items share the layout).
  static std::shared_ptr<arrow::Array> CanonicalHeaders(const arrow::MapArray& headers) {
    const auto& type = MessageSchema()->field(2)->type();
    const auto& map_type = static_cast<const arrow::MapType&>(*type);
    auto data = headers.data()->Copy();
    data->type = type;
    auto entries = data->child_data[0]->Copy();
    entries->type = map_type.value_type();
    auto items = entries->child_data[1]->Copy();
    items->type = arrow::binary();
    entries->child_data[1] = std::move(items);
    data->child_data[0] = std::move(entries);
    return arrow::MakeArray(std::move(data));
  }

  arrow::Status Buffer(const std::shared_ptr<arrow::BinaryArray>& values,
                       const std::optional<BytesColumn>& keys,
                       const arrow::MapArray* headers) {
    const int64_t n = values->length();
    std::shared_ptr<arrow::Array> key_array, header_array;
    int64_t bytes = values->total_values_length();
    if (keys) {
      arrow::BinaryBuilder builder(pool_);
      ARROW_RETURN_NOT_OK(builder.Reserve(n));
      for (int64_t i = 0; i < n; ++i) {
        if (keys->IsNull(i)) {
          ARROW_RETURN_NOT_OK(builder.AppendNull());
        } else {
          ARROW_RETURN_NOT_OK(builder.Append(keys->View(i)));
        }
      }
      ARROW_RETURN_NOT_OK(builder.Finish(&key_array));
      bytes += static_cast<const arrow::BinaryArray&>(*key_array).total_values_length();
    } else {
      ARROW_ASSIGN_OR_RAISE(key_array, arrow::MakeArrayOfNull(arrow::binary(), n, pool_));
    }
    if (headers) {
      header_array = CanonicalHeaders(*headers);
    } else {
      ARROW_ASSIGN_OR_RAISE(
          header_array,
          arrow::MakeArrayOfNull(MessageSchema()->field(2)->type(), n, pool_));
    }
    current_.batches.push_back(arrow::RecordBatch::Make(
        MessageSchema(), n, {std::move(key_array), values, std::move(header_array)}));
    current_.rows += n;
    current_.bytes += bytes;
    pending_bytes_ += bytes;
    options_.stats->pending_bytes.fetch_add(bytes, std::memory_order_relaxed);
    if (pending_bytes_ > options_.max_pending_bytes) {
      return arrow::Status::CapacityError(
          "kafka_sink ", name_, ": ", pending_bytes_, " bytes of output to topic '",
          options_.topic,
          "' wait for a checkpoint to complete, more than max_pending_bytes (",
          options_.max_pending_bytes,
          "); exactly_once holds output until the next completed checkpoint: take "
          "checkpoints more often or raise max_pending_bytes");
    }
    return arrow::Status::OK();
  }

  arrow::Status SnapshotExactlyOnce(SnapshotWriter* writer) {
    const int64_t id = writer->checkpoint_id();
    if (id <= last_snapshot_) {
      return arrow::Status::Invalid(
          "kafka_sink ", name_, ": checkpoint id ", id, " is not newer than ",
          last_snapshot_,
          "; exactly_once needs checkpoint ids that increase, also across restores");
    }
    if (current_.rows > 0) pending_[id] = std::move(current_);
    current_ = Epoch{};
    last_snapshot_ = id;
    const std::string& tid = txn_->transactional_id();
    {
      arrow::Int32Builder index(pool_), parallelism(pool_);
      arrow::StringBuilder ids(pool_);
      ARROW_RETURN_NOT_OK(index.Append(instance_));
      ARROW_RETURN_NOT_OK(parallelism.Append(parallelism_));
      ARROW_RETURN_NOT_OK(ids.Append(tid));
      std::shared_ptr<arrow::Array> a, b, c;
      ARROW_RETURN_NOT_OK(index.Finish(&a));
      ARROW_RETURN_NOT_OK(parallelism.Finish(&b));
      ARROW_RETURN_NOT_OK(ids.Finish(&c));
      ARROW_RETURN_NOT_OK(writer->WriteOperatorState(
          kKafkaSinkInstancesState,
          arrow::RecordBatch::Make(InstancesSchema(), 1, {a, b, c})));
    }
    for (const auto& [epoch, e] : pending_) {
      for (const auto& batch : e.batches) {
        const int64_t n = batch->num_rows();
        ARROW_ASSIGN_OR_RAISE(auto index, arrow::MakeArrayFromScalar(
                                              arrow::Int32Scalar(instance_), n, pool_));
        ARROW_ASSIGN_OR_RAISE(
            auto ids, arrow::MakeArrayFromScalar(arrow::StringScalar(tid), n, pool_));
        ARROW_ASSIGN_OR_RAISE(
            auto epochs, arrow::MakeArrayFromScalar(arrow::Int64Scalar(epoch), n, pool_));
        arrow::ArrayVector columns = {index, ids, epochs};
        for (const auto& c : batch->columns()) columns.push_back(c);
        ARROW_RETURN_NOT_OK(writer->WriteOperatorState(
            kKafkaSinkPendingState,
            arrow::RecordBatch::Make(PendingSchema(), n, std::move(columns))));
      }
    }
    return arrow::Status::OK();
  }

  /// End of input: the rest goes in one transaction (marker: the last checkpoint).
  arrow::Status CloseExactlyOnce() {
    if (!txn_) return arrow::Status::OK();
    std::vector<std::shared_ptr<arrow::RecordBatch>> batches;
    int64_t rows = current_.rows, bytes = current_.bytes;
    for (const auto& [epoch, e] : pending_) {
      batches.insert(batches.end(), e.batches.begin(), e.batches.end());
      rows += e.rows;
      bytes += e.bytes;
    }
    batches.insert(batches.end(), current_.batches.begin(), current_.batches.end());
    if (rows > 0) {
      ARROW_RETURN_NOT_OK(
          CommitWithRetries(txn_.get(), batches, last_snapshot_, "the final output"));
      CountCommitted(rows, bytes);
    }
    pending_.clear();
    current_ = Epoch{};
    options_.stats->pending_bytes.fetch_sub(pending_bytes_, std::memory_order_relaxed);
    pending_bytes_ = 0;
    txn_.reset();
    return arrow::Status::OK();
  }

  const KafkaSinkOptions& options_;
  const std::string default_uid_;
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

  // exactly-once
  bool exactly_once_ = false;
  int instance_ = 0;
  int parallelism_ = 1;
  std::string job_name_;
  std::string uid_;
  ClientConfig config_;
  std::unique_ptr<TransactionalProducer> txn_;
  int64_t restored_id_ = 0;
  int64_t last_snapshot_ = 0;
  Epoch current_;                     // since the last checkpoint
  std::map<int64_t, Epoch> pending_;  // checkpoint id -> snapshotted, not committed
  int64_t pending_bytes_ = 0;         // current_ + pending_
};

}  // namespace

void RegisterKafkaSink(OperatorRegistry* registry) {
  ARROW_CHECK_OK(registry->AddOperator(
      "kafka_sink",
      [](const PlanNode& node, int, int) -> arrow::Result<std::unique_ptr<Operator>> {
        return std::make_unique<KafkaSink>(node.options_as<KafkaSinkOptions>(),
                                           node.state_uid());
      }));
}

}  // namespace sabot::kafka
